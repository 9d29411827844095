"""Submission signing end to end: a private Dovecot (submission, passwd-file users, non-root)
signs what authenticated users submit and relays it to a sink; NSD serves the keys.

Covers: RSA, Ed25519 and dual signatures verified by dkim-verify (through NSD), dkimpy and
OpenDKIM; an OpenDKIM KeyTable/SigningTable pair in the guides' format (refile: wildcards,
several domains, '%'); the simple one-domain settings; who may sign what (own domain,
dkim_sign_from, foreign From unsigned or rejected, no/several From, a From without an author
domain: the spoofed forms of the security review, or one Dovecot reads differently from
dkimcore); DATA and BDAT; a 20 MB
message; the relayed bytes (signature fields + the original, exact size); the per-message log
line and its stats event; no errors or panics in Dovecot's log.
"""
import re
import smtplib

import dovecot
import nsd
import smtpsink
import submission_signing as ss
import tap

KEYTABLE = """\
# OpenDKIM KeyTable, as the guides write it
rsa2024._domainkey.example.com  example.com:rsa2024:{keys}/example.com/rsa2024.private
ed2024._domainkey.example.com   example.com:ed2024:{keys}/example.com/ed2024.private
mail._domainkey.example.net     example.net:mail:{keys}/example.net/mail.private
hosted                          %:hosted:{keys}/%/hosted.private
"""

SIGNINGTABLE = """\
# OpenDKIM SigningTable (refile:)
*@example.com    rsa2024._domainkey.example.com
*@example.com    ed2024._domainkey.example.com
*@example.net    mail._domainkey.example.net
*@*.example.org  hosted
"""


ALICE = "alice@example.com"
RUTH = "ruth@example.com"       # alice's colleague, under dkim_sign_unauthorized = reject


def plugin_settings(keys):
    return {"dkim_keytable": f"file:{keys.path('KeyTable')}",
            "dkim_signingtable": f"refile:{keys.path('SigningTable')}"}


def submit(dc, user, sender, data, bdat=False):
    """Submits; returns None when accepted, else (code, text) of the refusal."""
    try:
        dc.submit(user, sender, ["someone@remote.example"], data, bdat=bdat)
    except smtplib.SMTPDataError as exc:
        return exc.smtp_code, exc.smtp_error.decode("utf-8", "replace")
    return None


def main():
    with ss.KeyDirectory(ss.dovecot_run_user()) as keys:
        keys.genkey("example.com", "rsa2024")
        keys.genkey("example.com", "ed2024", key_type="ed25519")
        keys.genkey("example.net", "mail")
        keys.genkey("shop.example.org", "hosted")
        carol_key = keys.genkey("carol.example", "ed", key_type="ed25519")
        keys.write("KeyTable", KEYTABLE.format(keys=keys.directory))
        keys.write("SigningTable", SIGNINGTABLE)

        userdb = {
            # *example.info is unanchored: a warning at each of alice's logins
            "alice@example.com": {"dkim_sign_from": "*@example.net,*@*.example.org,*example.info"},
            "dave@example.com": {"dkim_sign": "no"},
            # the reject policy per user from userdb, for one who owns no domain and one who does
            "robert": {"dkim_sign_unauthorized": "reject"},
            RUTH: {"dkim_sign_unauthorized": "reject"},
            "carol": {"dkim_sign_domain": "carol.example", "dkim_sign_selector": "ed",
                      "dkim_sign_key": carol_key, "dkim_sign_from": "carol.example",
                      "dkim_sign_canonicalization": "relaxed/simple",
                      "dkim_sign_headers": "From:To:Subject:Date",
                      "dkim_oversign_headers": "From,Subject", "dkim_sign_expire": "2d"},
        }
        # Users log in with their full address (the harness' default format drops the
        # domain), so alice's own domain is example.com; bob has no domain of his own.
        with nsd.NsdServer(keys.records) as dns, smtpsink.SmtpSink() as sink, \
                dovecot.Dovecot(relay_port=sink.port, submission_plugins=[ss.PLUGIN],
                                plugin_settings=plugin_settings(keys), userdb_fields=userdb,
                                users=(ALICE, "bob", "carol", "dave@example.com", "robert", RUTH),
                                full_usernames=True,
                                metrics=[dovecot.Metric("dkim_sign", "event=dkim_sign_finished",
                                                        group_by=("result",))]) as dc:
            try:
                run_checks(dc, sink, dns, keys)
            except Exception:
                tap.diag("Dovecot's log:\n" + dc.log_text()[-30000:])
                raise


def run_checks(dc, sink, dns, keys):
    # -- what gets signed, and every verifier agrees ----------------------------------------
    start = len(dc.log_text())
    original = ss.message("alice@example.com", "dual")
    tap.eq(submit(dc, ALICE, "alice@example.com", original), None,
           "own domain: accepted")
    relayed = ss.relayed_one(sink, "own domain")
    ss.check_verifies(relayed.data, dns, [("example.com", "rsa2024"), ("example.com", "ed2024")],
                      "dual RSA + Ed25519 from two SigningTable lines")
    fields = b"".join(field.encode() for field in ss.signature_headers(relayed.data))
    head_end = relayed.data.index(b"\r\nReceived: ") + 2
    tap.ok(relayed.data.endswith(original) and relayed.data[:head_end].startswith(
               b"DKIM-Signature: ") and relayed.data[head_end:].startswith(b"Received: "),
           "relayed bytes: the new fields, then Dovecot's Received, then the original intact")
    tap.ok(len(fields) > 0 and all(len(line) <= 78 for line in
                                   relayed.data[:head_end].split(b"\r\n")),
           "signature fields are folded at 78 characters")
    lines = dc.log_lines(r"dkim: signed", start=start)
    tap.ok(len(lines) == 1 and "user=alice@example.com" in lines[0] and
           "from_domain=example.com" in lines[0] and "s=rsa2024" in lines[0] and
           "s=ed2024 a=ed25519-sha256" in lines[0],
           "one log line with user, From domain and selectors", "\n".join(lines))

    warnings = dc.log_lines(r"Warning: .*dkim_sign_from", start=start)
    tap.ok(len(warnings) == 1 and re.search(
               r"submission\(alice@example\.com\).*: Warning: dkim_sign_from: the pattern "
               r"'\*example\.info' also matches other domains ending in 'example\.info', such "
               r"as evil-example\.info; anchor it: '\*@example\.info' matches that domain, "
               r"'\*\.example\.info' its subdomains", warnings[0]),
           "an unanchored dkim_sign_from pattern: one warning per login, with the anchored "
           "forms; none for *@example.net or *@*.example.org", "\n".join(warnings))

    tap.eq(submit(dc, ALICE, "alice@example.com", ss.message("x@example.net", "rsa only")),
           None, "dkim_sign_from address: accepted")
    ss.check_verifies(ss.relayed_one(sink, "example.net").data, dns, [("example.net", "mail")],
                      "RSA-only domain, allowed by dkim_sign_from")

    tap.eq(submit(dc, ALICE, "alice@example.com", ss.message("orders@shop.example.org", "hosted")),
           None, "dkim_sign_from domain pattern: accepted")
    ss.check_verifies(ss.relayed_one(sink, "hosted").data, dns,
                      [("shop.example.org", "hosted")],
                      "refile wildcard *@*.example.org with '%' domain and key path")

    tap.eq(submit(dc, "carol", "carol@carol.example", ss.message("carol@carol.example", "ed")),
           None, "one-domain settings from userdb: accepted")
    relayed = ss.relayed_one(sink, "carol")
    ss.check_verifies(relayed.data, dns, [("carol.example", "ed")],
                      "Ed25519 only, with dkim_sign_domain/_selector/_key from userdb")
    tags = ss.signature_tags(relayed.data)[0]
    signed_fields = sorted(tags.get("h", "").lower().split(":"))
    tap.eq((tags.get("c"), signed_fields, int(tags.get("x", 0)) - int(tags.get("t", 0))),
           ("relaxed/simple", ["date", "from", "from", "subject", "subject", "to"], 2 * 86400),
           "userdb canonicalization, signed and oversigned fields, and expiry (c=, h=, x=)")

    data = ss.message("alice@example.com", "bdat")
    tap.eq(submit(dc, ALICE, "alice@example.com", data, bdat=True), None,
           "BDAT/CHUNKING: accepted")
    relayed = ss.relayed_one(sink, "BDAT")
    tap.ok(relayed.data.endswith(data), "BDAT: original intact after the signatures")
    ss.check_verifies(relayed.data, dns, [("example.com", "rsa2024"), ("example.com", "ed2024")],
                      "BDAT")

    line = b"A line of a large message, long enough to be realistic but not too long.\r\n"
    big = ss.message("alice@example.com", "20 MB", body=line * (20 * 1024 * 1024 // len(line)))
    tap.eq(submit(dc, ALICE, "alice@example.com", big, bdat=True), None,
           "20 MB message over BDAT: accepted")
    relayed = ss.relayed_one(sink, "20 MB")
    tap.ok(len(relayed.data) > 20_000_000 and relayed.data.endswith(big),
           "20 MB: relayed whole, exact size")
    ss.check_verifies(relayed.data, dns, [("example.com", "rsa2024"), ("example.com", "ed2024")],
                      "20 MB", verifiers=("dkim-verify", "dkimpy"))

    # -- who may sign what ------------------------------------------------------------------
    start = len(dc.log_text())
    foreign = ss.message("alice@example.com", "foreign")
    tap.eq(submit(dc, "bob", "bob@test.example", foreign), None,
           "foreign From, dkim_sign_unauthorized = unsigned: accepted")
    relayed = ss.relayed_one(sink, "foreign From")
    tap.ok(relayed.data.endswith(foreign) and not ss.signature_headers(relayed.data),
           "foreign From: relayed unsigned")
    tap.ok(dc.log_lines(r"dkim: not signed \(user=bob, "
                        r"from_domain=example\.com\): user may not sign for From", start=start),
           "foreign From: logged why")

    tap.eq(submit(dc, "dave@example.com", "dave@example.com",
                  ss.message("dave@example.com", "not for dave")), None,
           "dkim_sign = no from userdb: accepted")
    tap.ok(not ss.signature_headers(ss.relayed_one(sink, "dkim_sign = no").data),
           "dkim_sign = no: relayed unsigned")

    no_from = ss.message(None, "no From")
    two_from = ss.message("alice@example.com", "two From",
                          extra_headers=b"From: other@example.com\r\n")
    for data, what in ((no_from, "no From"), (two_from, "two From fields")):
        tap.eq(submit(dc, ALICE, "alice@example.com", data), None,
               f"{what}, unsigned policy: accepted")
        tap.ok(not ss.signature_headers(ss.relayed_one(sink, what).data),
               f"{what}: relayed unsigned")

    start = len(dc.log_text())
    refusal = submit(dc, "robert", "robert@test.example", foreign)
    tap.ok(refusal is not None and refusal[0] == 550 and "5.7.1" in refusal[1],
           "foreign From, dkim_sign_unauthorized = reject: 550 5.7.1", refusal)
    for data, what in ((no_from, "no From"), (two_from, "two From fields")):
        refusal = submit(dc, RUTH, RUTH, data)
        tap.ok(refusal is not None and refusal[0] == 550 and "5.7.1" in refusal[1],
               f"{what}, reject policy: 550 5.7.1", refusal)
    tap.eq(submit(dc, RUTH, RUTH, ss.message(RUTH)), None,
           "reject policy: the user's own mail still goes through")
    relayed = ss.relayed_one(sink, "reject policy")
    tap.eq(len(ss.signature_headers(relayed.data)), 2, "reject policy: own mail signed")
    tap.eq(len(dc.log_lines(r"dkim: rejected \(", count=3, start=start)), 3,
           "each rejection is logged")

    # -- a From without an author domain (dkim-verify(1), AUTHOR DOMAIN) -----------------------
    start = len(dc.log_text())
    syntax = "the From field is not valid address syntax"
    for value, why in ((b"alice@example.com@evil.example", syntax),
                       (b"alice@example.com x@evil.example", syntax),
                       (b"alice@example.com, x@evil.example",
                        "several mailboxes in the From field"),
                       (b'"alice".x@example.com',
                        "the From field reads differently to mail clients")):
        what = f"From: {value.decode()}"
        data = ss.message(None, "no author", extra_headers=b"From: " + value + b"\r\n")
        tap.eq(submit(dc, ALICE, "alice@example.com", data), None,
               f"{what}, unsigned policy: accepted")
        tap.ok(not ss.signature_headers(ss.relayed_one(sink, what).data),
               f"{what}: relayed unsigned")
        tap.ok(dc.log_lines(r"dkim: not signed \(user=alice@example\.com, "
                            r"from_domain=\(none\)\): no author domain \(" + re.escape(why),
                            start=start),
               f"{what}: logged why", dc.log_text()[start:])
        start = len(dc.log_text())
    refusal = submit(dc, RUTH, RUTH, ss.message(None, "no author", extra_headers=(
        b"From: ruth@example.com@evil.example\r\n")))
    tap.ok(refusal is not None and refusal[0] == 550 and "5.7.1" in refusal[1],
           "a From without an author domain, reject policy: 550 5.7.1", refusal)

    # -- the stats event ----------------------------------------------------------------------
    dump = dc.doveadm("stats", "dump")
    rows = [row.split("\t") for row in dump.splitlines()]
    counts = {}
    if rows:
        column = rows[0].index("count") if "count" in rows[0] else None
        counts = {row[0]: int(row[column]) for row in rows[1:]
                  if column is not None and row[0].startswith("dkim_sign_")}
    # dave's mail (dkim_sign = no) makes no event
    tap.ok(counts.get("dkim_sign_signed") == 7 and counts.get("dkim_sign_unsigned") == 7 and
           counts.get("dkim_sign_rejected") == 4,
           "dkim_sign_finished events counted by a stats metric, grouped by result", dump)

    errors = dc.error_lines()
    tap.ok(not errors, "Dovecot logged no errors or panics", "\n".join(errors))


tap.run(main)

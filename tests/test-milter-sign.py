"""dkim-milter signing our own mail through a real Postfix (private instance, SASL through a
private Dovecot's auth socket, relaying to an SMTP sink), keys served by NSD.

Who is signed: a logged-in user for their own domain (RSA, Ed25519, dual) and for what
SignFromTable allows them, never for a foreign From (passed on unsigned, or 550 with
On-UnauthorizedFrom reject); mail from InternalHosts (SMTP from 127.0.0.1, and local sendmail
through Postfix's pickup); not an outsider's mail, even with our domain in From. Mail already
carrying our own valid signature for the same d= is not signed twice (a forged one does not
count); RemoveOldSignatures replaces old signatures. Every signature is checked with dkim-verify,
dkimpy, OpenDKIM and Mail::DKIM; every run checks the milter's exit status and log and Postfix's
log.
"""

import dkimmilter
import milter_setup as ms
import nsd
import postfix
import smtpsink
import tap

KEYTABLE = """\
# KeyTable, as the OpenDKIM guides write it
rsa._domainkey.example.com  example.com:rsa2026:{keys}/example.com/rsa2026.private
ed._domainkey.example.com   example.com:ed2026:{keys}/example.com/ed2026.private
mail._domainkey.example.net example.net:mail:{keys}/example.net/mail.private
"""
SIGNINGTABLE = """\
*@example.com  rsa._domainkey.example.com
*@example.com  ed._domainkey.example.com
*@example.net  mail._domainkey.example.net
"""
SIGN_FROM = "carol@other.example  *@example.net\n"
ALICE, CAROL, BOB = "alice@example.com", "carol@other.example", "bob@example.org"
DUAL = [("example.com", "rsa2026"), ("example.com", "ed2026")]
OUTSIDE = postfix.EXTERNAL_CLIENT


def log_since(milter, start):
    return milter.log_text()[start:]


def main():
    if not ms.postfix_available():
        return
    with ms.KeyDirectory() as keys:
        keys.genkey("example.com", "rsa2026")
        keys.genkey("example.com", "ed2026", key_type="ed25519")
        keys.genkey("example.net", "mail")
        keys.write("KeyTable", KEYTABLE.format(keys=keys.directory))
        keys.write("SigningTable", SIGNINGTABLE)
        keys.write("SignFrom", SIGN_FROM)
        with nsd.NsdServer(keys.records) as dns, smtpsink.SmtpSink() as sink, \
                ms.dovecot_auth([ALICE, CAROL, BOB]) as (dc, auth_socket):
            config = ms.config(keys, dns, f"SignFromTable file:{keys.path('SignFrom')}\n")
            with dkimmilter.DkimMilter(config) as milter, postfix.Postfix(
                    relay_port=sink.port, milter=milter.postfix_socket,
                    sasl_path=auth_socket) as pf:
                with ms.logs_on_failure(milter, pf):
                    run_checks(milter, pf, sink, dns, keys, config)
                ms.check_milter_stop(milter)
                ms.check_postfix_log(pf)
            tap.ok(not dc.error_lines(), "Dovecot logged no errors", "\n".join(dc.error_lines()))


def run_checks(milter, pf, sink, dns, keys, config):
    # -- a logged-in user, their own domain ---------------------------------------------------
    start = len(milter.log_text())
    original = ms.message(ALICE, "dual")
    pf.send(ALICE, ["someone@remote.example"], original, client=OUTSIDE,
            login=(ALICE, ms.PASSWORD))
    data = ms.relayed(sink, "login, own domain")
    ms.check_signatures(data, dns, DUAL, "login, own domain: RSA + Ed25519")
    head = data.split(b"\r\n\r\n", 1)[0]
    tap.ok(head.startswith(b"DKIM-Signature: ") and
           head.index(b"\r\nReceived: ") > head.rindex(b"\r\nDKIM-Signature: ") and
           data.endswith(original.split(b"\r\n\r\n", 1)[1]),
           "the signatures are on top, above Postfix's Received; the body is intact")
    tap.ok(all(len(line) <= 78 for line in head.split(b"\r\n")
               if not line.startswith(b"Received")),
           "signature fields are folded at 78 characters")
    tags = ms.signature_tags(data)
    tap.ok(all(t.get("c") == "relaxed/relaxed" and "l" not in t and
               t.get("h", "").lower().split(":").count("from") == 2 for t in tags),
           "defaults: relaxed/relaxed, From oversigned, no l=", tags)
    log = log_since(milter, start)
    tap.ok(f"signed (login={ALICE}): d=example.com s=rsa2026 a=rsa-sha256, "
           "d=example.com s=ed2026 a=ed25519-sha256" in log, "one log line says what was "
           "signed for whom", log)

    # -- SignFromTable, and a foreign From ------------------------------------------------------
    pf.send(CAROL, ["someone@remote.example"], ms.message("sales@example.net", "allowed"),
            client=OUTSIDE, login=(CAROL, ms.PASSWORD))
    ms.check_signatures(ms.relayed(sink, "SignFromTable"), dns, [("example.net", "mail")],
                        "a From SignFromTable allows (*@example.net)")

    start = len(milter.log_text())
    foreign = ms.message("sales@example.net", "foreign")
    pf.send(ALICE, ["someone@remote.example"], foreign, client=OUTSIDE,
            login=(ALICE, ms.PASSWORD))
    data = ms.relayed(sink, "foreign From")
    tap.ok(not ms.signed_pairs(data) and data.endswith(foreign.split(b"\r\n\r\n", 1)[1]),
           "a logged-in user's foreign From: passed on unsigned (On-UnauthorizedFrom accept)")
    tap.ok(f"not signed (login={ALICE}): user may not sign for From address "
           "sales@example.net; accept" in log_since(milter, start), "and logged why")

    pf.send(BOB, ["someone@remote.example"], ms.message(BOB, "no key"), client=OUTSIDE,
            login=(BOB, ms.PASSWORD))
    tap.ok(not ms.signed_pairs(ms.relayed(sink, "no key")),
           "own domain without a SigningTable entry: unsigned")

    for what, data in (("no From", ms.message(None, "no From")),
                       ("two From", ms.message(ALICE, "two", extra_headers=b"From: "
                                               b"x@example.com\r\n")),
                       ("a group as From", b"From: undisclosed:;\r\nSubject: g\r\n\r\nx\r\n")):
        pf.send(ALICE, ["someone@remote.example"], data, client=OUTSIDE,
                login=(ALICE, ms.PASSWORD))
        tap.ok(not ms.signed_pairs(ms.relayed(sink, what)),
               f"{what}: not one valid mailbox, not signed")

    # -- InternalHosts: SMTP from 127.0.0.1, and local sendmail through pickup -----------------
    pf.send(ALICE, ["someone@remote.example"], ms.message(ALICE, "internal"))
    ms.check_signatures(ms.relayed(sink, "internal"), dns, DUAL, "SMTP from 127.0.0.1, no login")
    done = pf.sendmail(ALICE, ["someone@remote.example"], ms.message(ALICE, "sendmail"))
    tap.eq(done.returncode, 0, "sendmail exits 0")
    ms.check_signatures(ms.relayed(sink, "sendmail"), dns, DUAL,
                        "local sendmail (Postfix's pickup, non_smtpd_milters)")
    pf.sendmail("cron@mx.test.example", ["someone@remote.example"],
                ms.message("cron@mx.test.example", "cron"))
    tap.ok(not ms.signed_pairs(ms.relayed(sink, "cron")),
           "local mail from a domain the SigningTable lacks: unsigned")

    # -- an outsider with our domain in From -----------------------------------------------------
    start = len(milter.log_text())
    pf.send(ALICE, ["someone@remote.example"], ms.message(ALICE, "outsider"), client=OUTSIDE)
    data = ms.relayed(sink, "outsider")
    tap.ok(not ms.signed_pairs(data) and
           ms.header_values(data, "Authentication-Results") == [f"{ms.AUTHSERV_ID}; dkim=none"],
           "an outsider's mail with our domain in From: verified (dkim=none), never signed")

    # -- already signed (the submission plugin signed before relaying) ---------------------------
    start = len(milter.log_text())
    presigned = ms.sign_elsewhere(ms.message(ALICE, "presigned"), "example.com", "rsa2026",
                                  keys.path("example.com", "rsa2026.private"))
    pf.send(ALICE, ["someone@remote.example"], presigned, client=OUTSIDE,
            login=(ALICE, ms.PASSWORD))
    data = ms.relayed(sink, "already signed")
    ms.check_signatures(data, dns, [("example.com", "rsa2026")],
                        "our own valid signature for d=example.com: not signed twice")
    tap.ok("(already signed, kept)" in log_since(milter, start), "logged as already signed",
           log_since(milter, start))

    other_key = keys.genkey("example.com", "rsa2026", subdir="forger", publish=False)
    forged = ms.sign_elsewhere(ms.message(ALICE, "forged"), "example.com", "rsa2026", other_key)
    pf.send(ALICE, ["someone@remote.example"], forged, client=OUTSIDE,
            login=(ALICE, ms.PASSWORD))
    data = ms.relayed(sink, "forged signature")
    tap.eq(ms.signed_pairs(data), DUAL + [("example.com", "rsa2026")],
           "a signature with our d= and s= but another key does not count: signed anew")

    # -- configuration variants ------------------------------------------------------------------
    milter.restart(config + "On-UnauthorizedFrom reject\nRemoveOldSignatures yes\n"
                   "Canonicalization relaxed/simple\nSignHeaders From,Subject\n"
                   "OversignHeaders Subject\nSignatureTTL 86400\n")
    answer = ms.refusal(lambda: pf.send(ALICE, ["someone@remote.example"], foreign,
                                     client=OUTSIDE, login=(ALICE, ms.PASSWORD)))
    tap.ok(answer is not None and answer[0] == 550 and "5.7.1" in answer[1],
           "On-UnauthorizedFrom reject: 550 5.7.1", answer)
    tap.eq(sink.messages, [], "and nothing was relayed")
    pf.send(ALICE, ["someone@remote.example"], presigned, client=OUTSIDE,
            login=(ALICE, ms.PASSWORD))
    data = ms.relayed(sink, "RemoveOldSignatures")
    ms.check_signatures(data, dns, DUAL, "RemoveOldSignatures: the old signature replaced")
    tags = ms.signature_tags(data)[0]
    tap.eq((tags.get("c"), sorted(tags.get("h", "").lower().split(":")),
            int(tags.get("x", 0)) - int(tags.get("t", 0))),
           ("relaxed/simple", ["from", "from", "subject", "subject"], 86400),
           "Canonicalization, SignHeaders, OversignHeaders (From always) and SignatureTTL")
    tap.eq(milter.restart(config), 0, "restarts cleanly")


tap.run(main)

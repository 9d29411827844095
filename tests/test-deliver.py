#!/usr/bin/python3
"""DKIM verification at delivery (lib95_dkim_plugin.so) in a real Dovecot, keys in a real NSD.

Messages signed by dkimpy, OpenDKIM and our dkim-sign, plus tampered, unsigned, rsa-sha1 and
forged-Authentication-Results ones, go through LMTP (several recipients per transaction) and
dovecot-lda. Checked: the Authentication-Results field on every stored copy, one
verification per LMTP transaction, later recipients storing the first copy as it is (hard
links) without reading it again, forged fields with our authserv-id removed and others
kept, per-user settings from userdb (dkim_verify = no, dkim_min_key_bits, dkim_arc), the
dkim_verify_finished event as Dovecot's stats service counts and exports it, and a log free
of errors.
"""
import collections
import json
import os
import re
import tempfile

import dkim

import dkimplugin
import dovecot
import nsd
import oracles
import tap
from dkimplugin import AUTHSERV_ID, verdicts

DOMAIN = nsd.SECURE_ZONE
SENDER = f"news@{DOMAIN}"
USERS = ("alice", "bob", "carol", "dave", "erin", "frank")
RECIPIENTS = ("alice", "carol", "dave")
"""Users with the default settings."""
USER_SETTINGS = {"bob": {"dkim_verify": "no"}, "erin": {"dkim_min_key_bits": "4096"},
                 "frank": {"dkim_arc": "no"}}

STATS = (dovecot.Metric("dkim_verify", "event=dkim_verify_finished", group_by=("result",)),
         dovecot.Metric("dkim_export", "event=dkim_verify_finished", export_to_log=True))

RSA_KEY = oracles.SigningKey.generate("rsa-sha256")
ED_KEY = oracles.SigningKey.generate("ed25519-sha256")
RECORDS = {f"rsa._domainkey.{DOMAIN}": RSA_KEY.dns_record(),
           f"ed._domainkey.{DOMAIN}": ED_KEY.dns_record()}


def base_message(subject):
    return dkimplugin.message(f"News <{SENDER}>", subject,
                              "Hello,\n\nthe newsletter of this week.\n")


def sign_with_dkim_sign(message, keydir):
    """Our own signer, making an RSA and an Ed25519 signature in one pass."""
    rsa = dkimplugin.write_private_key(RSA_KEY, os.path.join(keydir, "rsa.pem"))
    ed = dkimplugin.write_private_key(ED_KEY, os.path.join(keydir, "ed.pem"))
    return dkimplugin.dkim_sign(message, "--key", f"{DOMAIN}:rsa:{rsa}",
                                "--key", f"{DOMAIN}:ed:{ed}")


def samples(keydir):
    """name -> (message, expected dkim= results of our Authentication-Results field)."""
    dkimpy = oracles.DKIMPY.sign(base_message("dkimpy"), DOMAIN, "rsa", RSA_KEY)
    opendkim = oracles.OPENDKIM.sign(base_message("OpenDKIM"), DOMAIN, "rsa", RSA_KEY,
                                     canonicalization="relaxed/simple")
    ours = sign_with_dkim_sign(base_message("dkim-sign"), keydir)
    sha1 = dkim.sign(base_message("rsa-sha1"), b"rsa", DOMAIN.encode(), RSA_KEY.pem(),
                     signature_algorithm=b"rsa-sha1",
                     include_headers=[b"from", b"to", b"subject"]) + base_message("rsa-sha1")
    forged_fields = (f"Authentication-Results: {AUTHSERV_ID}; dkim=pass header.d=bank.example\r\n"
                     f"Authentication-Results: {AUTHSERV_ID.upper()};\r\n\tdkim=pass\r\n"
                     f"Authentication-Results: (relay) \"{AUTHSERV_ID}\"; dkim=pass\r\n"
                     f"Authentication-Results:\r\n {AUTHSERV_ID}; dkim=pass\r\n"
                     f"Authentication-Results: {AUTHSERV_ID}.evil.example; dkim=pass\r\n"
                     f"Authentication-Results: relay.example; spf=pass\r\n").encode()
    return {
        "dkimpy": (dkimpy, ["pass"]),
        "OpenDKIM": (opendkim, ["pass"]),
        "dkim-sign rsa+ed25519": (ours, ["pass", "pass"]),
        "tampered": (dkimpy.replace(b"this week", b"last week"), ["fail"]),
        "unsigned": (base_message("unsigned"), ["none"]),
        "rsa-sha1": (sha1, ["permerror"]),
        "forged A-R": (forged_fields + base_message("forged"), ["none"]),
    }


def new_messages(dc, user, before):
    return dc.read_maildir(user)[before.get(user, 0):]


def counts(dc):
    return {user: len(dc.read_maildir(user)) for user in USERS}


def check_lmtp(server, sample_messages, expected_events):
    """Returns {sample name: the copy stored for the first recipient}."""
    dc = server.dc
    first_copies = {}
    for name, (message, expected) in sample_messages.items():
        before, lines_before = counts(dc), len(server.verify_lines())
        reused_before = stored_copy_reuses(dc)
        replies = dc.deliver_lmtp(SENDER, [dc.address(u) for u in RECIPIENTS], message)
        tap.ok(all(code == 250 for code, _ in replies.values()),
               f"{name}: LMTP accepted for {len(RECIPIENTS)} recipients", replies)
        stored = {u: new_messages(dc, u, before) for u in RECIPIENTS}
        first_copies[name] = stored[RECIPIENTS[0]][0]
        tap.ok(all(len(m) == 1 and verdicts(m[0]) == expected for m in stored.values()),
               f"{name}: every copy carries dkim={','.join(expected)}",
               {u: [verdicts(m) for m in ms] for u, ms in stored.items()})
        tap.eq(len(server.verify_lines()) - lines_before, 1,
               f"{name}: verified once for {len(RECIPIENTS)} recipients")
        expected_events[expected_verdict(expected)] += 1
        copies = [dkimplugin.newest_maildir_inode(dc, u) for u in RECIPIENTS]
        tap.ok(len(set(copies)) == 1, f"{name}: later copies are hard links of the first",
               copies)
        tap.eq(stored_copy_reuses(dc) - reused_before, len(RECIPIENTS) - 1,
               f"{name}: later recipients store the first copy without reading it again")
    return first_copies


def stored_copy_reuses(dc):
    """How many times the plugin stored the copy of an earlier recipient as it is, known to
    carry the right field (a debug line; mail_debug is on in the tests)."""
    return dc.log_text().count("it is the copy stored for an earlier recipient")


def expected_verdict(results):
    """The message verdict dkim.h documents, for the samples' result lists."""
    for result in ("pass", "temperror", "fail", "policy", "permerror", "neutral"):
        if result in results:
            return result
    return "none"


def check_details(dc, stored):
    ours = verdicts(stored["forged A-R"])
    authres = dkimplugin.header_fields(stored["forged A-R"], "Authentication-Results")
    tap.ok(ours == ["none"] and len(authres) == 3
           and authres[0].startswith(f"{AUTHSERV_ID}; dkim=none")
           and any(v.startswith(f"{AUTHSERV_ID}.evil.example;") for v in authres)
           and any(v.startswith("relay.example;") for v in authres),
           "forged fields with our authserv-id removed (any case, quoted, after a comment, "
           "on a continuation line); "
           "others kept", authres)
    tap.ok(re.search(r"Removing 4 Authentication-Results field\(s\) claiming our authserv-id",
                     dc.log_text()), "the removal is logged")

    fields = dkimplugin.authres_results(stored["dkimpy"])[0][1]
    tap.ok(fields.get("header.d") == DOMAIN and fields.get("header.s") == "rsa"
           and fields.get("header.a") == "rsa-sha256" and len(fields.get("header.b", "")) >= 8,
           "header.d, header.s, header.a and header.b describe the signature", fields)
    first = dkimplugin.header_fields(stored["dkimpy"], "Authentication-Results")[0]
    tap.ok("DNSSEC secure" in first, "the key's DNSSEC status is in the field", first)
    sha1 = dkimplugin.header_fields(stored["rsa-sha1"], "Authentication-Results")[0]
    tap.ok("RFC 8301" in sha1, "rsa-sha1 permerror names RFC 8301", sha1)
    head = stored["OpenDKIM"].split(b"\n", 1)[0]
    tap.ok(head.startswith(b"Authentication-Results:"), "our field is the topmost header",
           head)


def check_lda(server, sample_messages, expected_events):
    dc = server.dc
    for name in ("dkimpy", "tampered"):
        message, expected = sample_messages[name]
        lf_message = message.replace(b"\r\n", b"\n")
        before = counts(dc)
        done = dc.deliver_lda("carol", SENDER, lf_message)
        stored = new_messages(dc, "carol", before)
        tap.ok(done.returncode == 0 and len(stored) == 1 and verdicts(stored[0]) == expected,
               f"dovecot-lda, LF line ends: {name} stored with dkim={expected[0]}",
               [verdicts(m) for m in stored])
        expected_events[expected[0]] += 1


def check_user_settings(server, sample_messages, expected_events):
    dc = server.dc
    message, _ = sample_messages["dkimpy"]
    before, lines_before = counts(dc), len(server.verify_lines())
    dc.deliver_lmtp(SENDER, [dc.address("bob")], message)
    [stored] = new_messages(dc, "bob", before)
    tap.ok(not dkimplugin.authres_results(stored)
           and len(server.verify_lines()) == lines_before,
           "dkim_verify = no (userdb): no verification, no field", stored[:300])

    before, lines_before = counts(dc), len(server.verify_lines())
    dc.deliver_lmtp(SENDER, [dc.address("alice"), dc.address("erin")], message)
    alice, erin = new_messages(dc, "alice", before), new_messages(dc, "erin", before)
    erin_results = dkimplugin.authres_results(erin[0])
    tap.ok(verdicts(alice[0]) == ["pass"] and [r for r, _ in erin_results] == ["permerror"]
           and "too small" in dkimplugin.header_fields(erin[0], "Authentication-Results")[0],
           "per-user dkim_min_key_bits = 4096 in the same transaction: 2048-bit key refused "
           "for that user only", (verdicts(alice[0]), erin_results))
    tap.eq(len(server.verify_lines()) - lines_before, 2,
           "two recipients with different verification settings: two verifications")
    expected_events["pass"] += 1
    expected_events["permerror"] += 1


def check_arc(server, keydir, expected_events):
    """A message that a list sealed with ARC (and did not DKIM-sign): its chain is validated
    and reported by default, and not for a user with dkim_arc = no."""
    dc = server.dc
    key = dkimplugin.write_private_key(RSA_KEY, os.path.join(keydir, "rsa.pem"))
    sealed = dkimplugin.dkim_sign(base_message("ARC"), "--arc-seal", f"{DOMAIN}:rsa:{key}",
                                  "--arc-authres", f"lists.{DOMAIN}; spf=pass")
    before = counts(dc)
    dc.deliver_lmtp(SENDER, [dc.address("alice"), dc.address("frank")], sealed)
    [alice] = new_messages(dc, "alice", before)
    [frank] = new_messages(dc, "frank", before)
    alice_field = dkimplugin.header_fields(alice, "Authentication-Results")[0]
    frank_field = dkimplugin.header_fields(frank, "Authentication-Results")[0]
    tap.ok("arc=pass" in alice_field and "dkim=none" in alice_field
           and "arc=" not in frank_field and "dkim=none" in frank_field,
           "ARC chain validated and reported by default; not with dkim_arc = no (userdb)",
           (alice_field, frank_field))
    expected_events["none"] += 2


def check_stats(server, expected_events):
    dc = server.dc
    counted = {}
    for line in dc.doveadm("stats", "dump").splitlines():
        match = re.match(r"dkim_verify_(\w+)\tduration\t(\d+)\t", line)
        if match:
            counted[match.group(1)] = int(match.group(2))
    tap.eq(counted, dict(expected_events),
           "dkim_verify_finished events, counted by Dovecot's stats per result")

    exported = [json.loads(line.split(": Info: ", 1)[1]) for line in dc.log_text().splitlines()
                if '"event":"dkim_verify_finished"' in line]
    pass_event = next((e["fields"] for e in exported if e["fields"].get("result") == "pass"
                       and e["fields"].get("signatures") == 2), {})
    tap.ok(pass_event.get("domains") == f"{DOMAIN},{DOMAIN}"
           and pass_event.get("results") == "pass,pass"
           and pass_event.get("dnssec") == "secure,secure"
           and pass_event.get("aligned_pass") == "yes"
           and pass_event.get("from_domain") == DOMAIN
           and isinstance(pass_event.get("duration"), int),
           "the exported event carries result, domains, DNSSEC status and duration", pass_event)


def main():
    with tempfile.TemporaryDirectory(prefix="dkim-deliver-keys-") as keydir, \
            dkimplugin.MailServer(RECORDS, users=USERS, metrics=STATS,
                                  userdb_fields=USER_SETTINGS) as server:
        expected_events = collections.Counter()
        sample_messages = samples(keydir)
        first_copies = check_lmtp(server, sample_messages, expected_events)
        check_details(server.dc, first_copies)
        check_lda(server, sample_messages, expected_events)
        check_user_settings(server, sample_messages, expected_events)
        check_arc(server, keydir, expected_events)
        check_stats(server, expected_events)
        errors = server.dc.error_lines()
        tap.ok(not errors, "Dovecot logged no errors, fatals or panics", "\n".join(errors))


tap.run(main)

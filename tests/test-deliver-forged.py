#!/usr/bin/python3
"""Forged Authentication-Results fields with our authserv-id, through a real Dovecot LMTP and
dovecot-lda with the delivery plugin: every field that a reader could take for ours is removed,
whatever the message size, however many recipients, whatever the user's settings.

Each forged variant (the obsolete syntax's whitespace before the colon, 9000 spaces of it; a
tab; a bare CR in the name; our id with a trailing dot, followed by a NUL, uppercased, after a
comment, quoted, on a continuation line; an A-R field hidden after a bare CR in another field,
which readers such as Python's email package see) goes in a message of its own with a small
body, a 300 KB body, and all together with a 4 MiB one, to one and to three LMTP recipients.

Checked for every stored copy: the LMTP reply codes; the copy is our field, then the fields
LMTP adds, then the original minus the forged fields byte for byte (Dovecot stores LF line
ends), so exactly one field with our id is left and fields of other authserv-ids are kept;
later recipients' copies are hard links of the first. Also dovecot-lda, a user with
dkim_verify = no (forged fields removed, no field added, also when Dovecot hands the plugin
the first recipient's copy, which carries our field), a user whose different settings give a
different field in the same transaction (our field replaced, never doubled), and a log free of
errors.
"""
import base64
import hashlib
import os
import random
import tempfile

import dkimplugin
import nsd
import oracles
import tap
from dkimplugin import AUTHSERV_ID

DOMAIN = nsd.SECURE_ZONE
SENDER = f"news@{DOMAIN}"
USERS = ("alice", "bob", "carol", "dave", "erin")
SEVERAL = ("alice", "carol", "dave")
USER_SETTINGS = {"bob": {"dkim_verify": "no"}, "erin": {"dkim_min_key_bits": "4096"}}
KEY = oracles.SigningKey.generate("rsa-sha256")
RECORDS = {f"rsa._domainkey.{DOMAIN}": KEY.dns_record()}
OURS = AUTHSERV_ID.encode()
SIZES = {"small": 200, "300 KB": 300_000}
"""Body sizes of the per-variant messages."""
LARGE = 4 << 20
"""Body size of the message with every variant."""

FORGED = {
    "9000 spaces before the colon":
        b"Authentication-Results" + b" " * 9000 + b": " + OURS + b"; dkim=pass\r\n",
    "a tab before the colon": b"Authentication-Results\t: " + OURS + b"; dkim=pass\r\n",
    "a bare CR before the colon": b"Authentication-Results\r: " + OURS + b"; dkim=pass\r\n",
    "a bare CR in the name": b"Authentic\ration-Results: " + OURS + b"; dkim=pass\r\n",
    "our id with a trailing dot": b"Authentication-Results: " + OURS + b".; dkim=pass\r\n",
    "our id followed by a NUL": b"Authentication-Results: " + OURS + b"\0; dkim=pass\r\n",
    "our id uppercased": b"Authentication-Results: " + OURS.upper() + b"; dkim=pass\r\n",
    "our id after a comment": b"Authentication-Results: (x) " + OURS + b"; dkim=pass\r\n",
    "our id quoted": b'Authentication-Results: "' + OURS + b'"; dkim=pass\r\n',
    "our id on the continuation line":
        b"Authentication-Results:\r\n\t" + OURS + b"; dkim=pass\r\n",
    "after a bare CR in another field":
        b"X-Note: relayed\rAuthentication-Results: " + OURS + b"; dkim=pass\r\n",
}
KEPT = (b"Authentication-Results: " + OURS + b".evil.example; dkim=pass\r\n",
        b"Authentication-Results: relay.example; spf=pass\r\n")
"""Fields of other authserv-ids, which stay."""


def body(size):
    """About `size` bytes of base64 lines, like an attachment (deterministic)."""
    rnd = random.Random(size)
    return b"".join(base64.b64encode(rnd.randbytes(57)) + b"\r\n"
                    for _ in range(size // 78 + 1))


def message(subject, forged, size):
    """(message, the same without the forged fields): forged fields around fields of other
    authserv-ids and the usual ones."""
    top = [b"X-Original-Top: 1\r\n", KEPT[0]]
    rest = [KEPT[1], b"From: News <" + SENDER.encode() + b">\r\n",
            b"To: alice@test.example\r\n", b"Subject: " + subject.encode() + b"\r\n",
            b"Message-ID: <" + hashlib.sha1(subject.encode()).hexdigest().encode()
            + b"@test.example>\r\n"]
    tail = b"\r\n" + body(size)
    with_forged = top + [f for field in forged for f in (field, b"X-Between: 1\r\n")] + rest
    without = top + [b"X-Between: 1\r\n" for _ in forged] + rest
    return b"".join(with_forged) + tail, b"".join(without) + tail


def fields(head):
    """The fields of a header block (bytes, LF line ends), continuation lines joined."""
    found = []
    for line in head.split(b"\n"):
        if found and line[:1] in (b" ", b"\t"):
            found[-1] += b"\n" + line
        else:
            found.append(line)
    return found


def check_copy(copy, expected, added):
    """Problems with a stored copy: it must be our field (if `added`), then LMTP's trace
    fields, then `expected` (CRLF message) with LF line ends."""
    tail = expected.replace(b"\r\n", b"\n")
    if not copy.endswith(tail):
        return "the original minus the forged fields does not end the copy"
    top = fields(copy[:-len(tail)].rstrip(b"\n"))
    if added:
        if not top[0].startswith(b"Authentication-Results: " + OURS + b";"):
            return f"our field is not on top: {top[0][:80]!r}"
        top = top[1:]
    names = {field.split(b":", 1)[0] for field in top}
    if not names <= {b"Return-Path", b"Delivered-To", b"Received"}:
        return f"unexpected fields above the original: {names}"
    ours = [value for value in dkimplugin.header_fields(copy, "Authentication-Results")
            if value.split(";")[0].strip().strip('"').rstrip(".").lower() == AUTHSERV_ID]
    if len(ours) != (1 if added else 0):
        return f"{len(ours)} fields with our id"
    return None


def deliver(dc, recipients, data):
    """One LMTP transaction; returns ({user: reply code}, {user: [new copies]}, inodes)."""
    before = {u: len(dc.read_maildir(u)) for u in recipients}
    replies = dc.deliver_lmtp(SENDER, [dc.address(u) for u in recipients], data, timeout=120)
    codes = {u: replies[dc.address(u)][0] for u in recipients}
    copies = {u: dc.read_maildir(u)[before[u]:] for u in recipients}
    inodes = {dkimplugin.newest_maildir_inode(dc, u) for u in recipients}
    return codes, copies, inodes


def check_lmtp(dc, name, recipients, data, expected):
    codes, copies, inodes = deliver(dc, recipients, data)
    problems = {u: "not stored once" if len(c) != 1 else check_copy(c[0], expected, True)
                for u, c in copies.items()}
    problems = {u: p for u, p in problems.items() if p is not None}
    tap.ok(set(codes.values()) == {250} and not problems,
           f"{name}, {len(recipients)} recipient(s): forged gone, ours on top, "
           "the rest byte for byte", (codes, problems))
    if len(recipients) > 1:
        tap.ok(len(inodes) == 1, f"{name}, {len(recipients)} recipients: later copies are "
               "hard links of the first", inodes)


def check_variants(dc):
    for size_name, size in SIZES.items():
        for name, forged in FORGED.items():
            data, expected = message(name, [forged], size)
            for recipients in (("alice",), SEVERAL):
                check_lmtp(dc, f"{name} ({size_name})", recipients, data, expected)
    data, expected = message("every variant", list(FORGED.values()), LARGE)
    for recipients in (("alice",), SEVERAL):
        check_lmtp(dc, "every variant (4 MiB)", recipients, data, expected)
    tap.ok(dc.log_text().count(f"Removing {len(FORGED)} Authentication-Results field(s) "
                               f"claiming our authserv-id {AUTHSERV_ID}") == 2,
           "the removal of every variant is logged once per transaction")


def check_lda(dc):
    for size_name in SIZES:
        data, expected = message("LDA", list(FORGED.values()), SIZES[size_name])
        lf_data, lf_expected = (m.replace(b"\r\n", b"\n") for m in (data, expected))
        before = len(dc.read_maildir("carol"))
        done = dc.deliver_lda("carol", SENDER, lf_data)
        stored = dc.read_maildir("carol")[before:]
        problem = "not stored once" if len(stored) != 1 else \
            check_copy(stored[0], lf_expected, True)
        tap.ok(done.returncode == 0 and problem is None,
               f"dovecot-lda, LF line ends, {size_name}: every variant removed", problem)


def check_settings(dc, keydir):
    """dkim_verify = no, first and second in a transaction; and a recipient whose settings
    give another field than the first recipient's."""
    data, expected = message("settings", list(FORGED.values()), 1000)
    for recipients in (("bob", "alice"), ("alice", "bob")):
        codes, copies, _ = deliver(dc, recipients, data)
        problems = {u: check_copy(copies[u][0], expected, u != "bob") for u in recipients}
        tap.ok(set(codes.values()) == {250} and not any(problems.values()),
               f"dkim_verify = no, LMTP recipients {', '.join(recipients)}: forged fields "
               "removed for bob too, and bob's copy has no field of ours", problems)

    signed = dkimplugin.dkim_sign(data, "-d", DOMAIN, "-s", "rsa",
                                  "-k", dkimplugin.write_private_key(
                                      KEY, os.path.join(keydir, "rsa.pem")))
    signature = signed[:len(signed) - len(data)]
    codes, copies, _ = deliver(dc, ("alice", "erin"), signed)
    problems = {u: check_copy(copies[u][0], signature + expected, True)
                for u in ("alice", "erin")}
    results = {u: dkimplugin.verdicts(copies[u][0]) for u in ("alice", "erin")}
    tap.ok(set(codes.values()) == {250} and not any(problems.values())
           and results == {"alice": ["pass"], "erin": ["permerror"]},
           "dkim_min_key_bits = 4096 for the second recipient: its copy of the first one's "
           "gets its own field instead of the first one's", (problems, results))


def main():
    with tempfile.TemporaryDirectory(prefix="dkim-forged-") as keydir, \
            dkimplugin.MailServer(RECORDS, users=USERS, userdb_fields=USER_SETTINGS) as server:
        dc = server.dc
        check_variants(dc)
        check_lda(dc)
        check_settings(dc, keydir)
        errors = dc.error_lines()
        tap.ok(not errors, "Dovecot logged no errors, fatals or panics", "\n".join(errors))


tap.run(main)

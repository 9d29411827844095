#!/usr/bin/python3
"""Delivery never waits unboundedly and never fails because of DNS or configuration.

A key under a special-use name (lab.test) comes through dkim_dns_resolver as dig would get
it. A resolver that never answers (default dkim_dns_timeout 5 s, and 1 s per user), a stopped
DNS server, and broken settings (unreadable trust anchor, malformed resolver address,
unparsable timeout): every message is delivered, with temperror where DNS could not answer,
within the configured bound, and the cause is logged.
"""
import re
import time

import dkimplugin
import nsd
import oracles
import tap
from dkimplugin import verdicts

DOMAIN = nsd.SECURE_ZONE
KEY = oracles.SigningKey.generate("rsa-sha256")
SELECTORS = ("a", "b", "c", "d")
LAB_DOMAIN = "lab.test"
"""Under test. (RFC 6761), which libunbound answers itself unless a resolver is named."""
RECORDS = {f"{s}._domainkey.{DOMAIN}": KEY.dns_record() for s in SELECTORS}
RECORDS[f"a._domainkey.{LAB_DOMAIN}"] = KEY.dns_record()
DEFAULT_TIMEOUT = 5.0
SLACK = 2.5
"""Seconds allowed beyond the DNS bound for everything else (process start, LMTP, saving)."""


def signed(selector, subject, domain=DOMAIN):
    message = dkimplugin.message(f"news@{domain}", subject, "Hello.\n")
    return oracles.DKIMPY.sign(message, domain, selector, KEY)


def timed_lmtp(dc, user, message):
    started = time.monotonic()
    replies = dc.deliver_lmtp(f"news@{DOMAIN}", [dc.address(user)], message)
    return replies, time.monotonic() - started


def check_unreachable(server):
    dc = server.dc
    replies, elapsed = timed_lmtp(dc, "alice", signed("a", "black hole"))
    stored = dc.read_maildir("alice")[-1]
    field = dkimplugin.header_fields(stored, "Authentication-Results")[0]
    tap.ok(replies[dc.address("alice")][0] == 250 and verdicts(stored) == ["temperror"]
           and "DNS timeout" in field,
           "resolver never answers: delivered with temperror (DNS timeout)", (replies, field))
    tap.ok(elapsed < DEFAULT_TIMEOUT + SLACK,
           f"... within the default 5 s bound ({elapsed:.1f} s)")

    replies, elapsed = timed_lmtp(dc, "bob", signed("b", "black hole, 1 s"))
    tap.ok(replies[dc.address("bob")][0] == 250
           and verdicts(dc.read_maildir("bob")[-1]) == ["temperror"]
           and elapsed < 1 + SLACK,
           f"per-user dkim_dns_timeout = 1s: temperror in {elapsed:.1f} s")

    unsigned = dkimplugin.message(f"news@{DOMAIN}", "unsigned", "Hello.\n")
    replies, elapsed = timed_lmtp(dc, "alice", unsigned)
    tap.ok(verdicts(dc.read_maildir("alice")[-1]) == ["none"] and elapsed < SLACK,
           f"unsigned message: no DNS needed, none at once ({elapsed:.1f} s)")

    started = time.monotonic()
    # -d: a userdb lookup, which brings bob's dkim_* fields
    done = dc.deliver_lda("bob", f"news@{DOMAIN}", signed("c", "lda, black hole"),
                          extra_args=["-d", "bob"])
    elapsed = time.monotonic() - started
    tap.ok(done.returncode == 0 and verdicts(dc.read_maildir("bob")[-1]) == ["temperror"]
           and elapsed < 1 + SLACK,
           f"dovecot-lda: exit 0, temperror in {elapsed:.1f} s", done)


def check_server_stopped(server):
    dc = server.dc
    replies, _ = timed_lmtp(dc, "carol", signed("a", "before"))
    tap.ok(verdicts(dc.read_maildir("carol")[-1]) == ["pass"], "NSD up: pass")
    timed_lmtp(dc, "carol", signed("a", "from the lab", LAB_DOMAIN))
    stored = dc.read_maildir("carol")[-1]
    tap.ok(verdicts(stored) == ["pass"] and f"header.d={LAB_DOMAIN}" in
           dkimplugin.header_fields(stored, "Authentication-Results")[0],
           f"a key at {LAB_DOMAIN} through dkim_dns_resolver: pass",
           dkimplugin.header_fields(stored, "Authentication-Results"))
    server.dns.stop()
    replies, elapsed = timed_lmtp(dc, "carol", signed("d", "NSD stopped"))
    tap.ok(replies[dc.address("carol")][0] == 250
           and verdicts(dc.read_maildir("carol")[-1]) == ["temperror"]
           and elapsed < DEFAULT_TIMEOUT + SLACK,
           f"NSD stopped: delivered with temperror in {elapsed:.1f} s")


def check_bad_settings(server):
    dc = server.dc
    message = signed("a", "bad settings")
    replies = dc.deliver_lmtp(f"news@{DOMAIN}", [dc.address(u) for u in ("dave", "erin", "frank")],
                              message)
    tap.ok(all(code == 250 for code, _ in replies.values()),
           "broken settings never fail the delivery", replies)
    tap.eq(verdicts(dc.read_maildir("dave")[-1]), ["temperror"],
           "unreadable dkim_dns_trust_anchor: temperror")
    tap.eq(verdicts(dc.read_maildir("erin")[-1]), ["temperror"],
           "malformed dkim_dns_resolver: temperror")
    tap.eq(verdicts(dc.read_maildir("frank")[-1]), ["pass"],
           "unparsable dkim_dns_timeout: the default is used, pass")
    log = dc.log_text()
    for pattern, what in (
            (r"lmtp\(dave\).*dkim: Cannot create the DNS resolver.*"
             r"cannot read trust anchor /nonexistent/root.key", "trust anchor"),
            (r"lmtp\(erin\).*dkim: Cannot create the DNS resolver.*not-an-address",
             "resolver address"),
            (r"lmtp\(frank\).*dkim: dkim_dns_timeout: Invalid value 'soon'", "timeout")):
        tap.ok(re.search(pattern, log), f"the {what} error is logged for that user")
    return [r"dkim: Cannot create the DNS resolver", r"dkim: dkim_dns_timeout: Invalid value"]


def main():
    with dkimplugin.DnsBlackHole() as hole, dkimplugin.MailServer(
            RECORDS, users=("alice", "bob", "carol", "dave", "erin", "frank"),
            userdb_fields={
                "alice": {"dkim_dns_resolver": hole.address},
                "bob": {"dkim_dns_resolver": hole.address, "dkim_dns_timeout": "1s"},
                "dave": {"dkim_dns_trust_anchor": "/nonexistent/root.key"},
                "erin": {"dkim_dns_resolver": "not-an-address"},
                "frank": {"dkim_dns_timeout": "soon"}}) as server:
        check_unreachable(server)
        expected_errors = check_bad_settings(server)
        check_server_stopped(server)
        errors = server.dc.error_lines(allow=expected_errors)
        tap.ok(not errors, "no other errors, fatals or panics", "\n".join(errors))


tap.run(main)

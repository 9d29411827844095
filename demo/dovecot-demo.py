#!/usr/bin/python3
"""DKIM at delivery and in submission, end to end: a private Dovecot with the plugins, keys
in a real DNS zone, five sample messages through LMTP and where each one landed, then a
message a user sends through the submission service, signed there, and verified when it is
delivered.

What runs (all on 127.0.0.1, as `nobody` when started by root, removed afterwards):
- NSD serving the DNSSEC-signed zone secure.example with a key made by dkim-genkey;
- Dovecot (LMTP, submission) with lib95_dkim_plugin.so, lib90_sieve_dkim_plugin.so and
  lib95_submission_dkim_plugin.so, configured by the shipped conf/90-dkim.conf, and bob's
  Sieve script filing "fail" into Junk;
- an SMTP server standing for the relay host (Postfix), which keeps what submission relays.

Run from the source tree, with the project built in BUILDDIR:
  DKIM_TOP_BUILDDIR=BUILDDIR DKIM_TOP_SRCDIR=. PYTHONPATH=tests/lib \\
      /usr/bin/python3 demo/dovecot-demo.py
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

import dkimplugin
import dovecot
import nsd
import smtpsink
import submission_signing
from dkimtools import tool

DOMAIN = nsd.SECURE_ZONE
SELECTOR = "2026"
SIEVE_SCRIPT = """require ["vnd.dovecot.dkim", "fileinto"];
if dkim "fail" {
    fileinto "Junk";
}
"""


def step(title):
    print(f"\n=== {title}\n", flush=True)


def indent(text):
    return "".join(f"    {line}\n" for line in text.rstrip("\n").split("\n"))


def make_key(keys, own_dir):
    """A key made by dkim-genkey, owned by the mail processes' user (the submission plugin
    signs with it), a copy of it that is ours (dkim-sign refuses a key someone else owns),
    and its record as the zone-file line gives it."""
    keyfile = keys.genkey(DOMAIN, SELECTOR, publish=False)
    own_copy = os.path.join(own_dir, f"{SELECTOR}.private")
    shutil.copyfile(keyfile, own_copy)
    os.chmod(own_copy, 0o600)
    with open(os.path.join(os.path.dirname(keyfile), f"{SELECTOR}.txt"),
              encoding="ascii") as handle:
        zone_line = handle.read()
    # the zone-file line holds the value as quoted strings of <= 255 bytes
    record = "".join(re.findall(r'"([^"]*)"', zone_line))
    return keyfile, own_copy, record


def sign(message, keyfile):
    return subprocess.run([tool("dkim-sign"), "-d", DOMAIN, "-s", SELECTOR, "-k", keyfile],
                          input=message, check=True, capture_output=True).stdout


def samples(keyfile):
    def message(subject, body):
        return dkimplugin.message(f"Alice Example <alice@{DOMAIN}>", subject, body,
                                  recipient="bob@test.example")

    valid = sign(message("Lunch on Friday?", "Bob,\n\nlunch on Friday at noon?\n\nAlice\n"),
                 keyfile)
    return [
        ("valid signature", valid),
        ("tampered after signing (a list footer)",
         sign(message("Meeting notes", "Notes attached.\n"), keyfile)
         + b"--\r\nSent through the office list\r\n"),
        ("unsigned", message("No signature here", "Hello from an unsigned sender.\n")),
        ("forged Authentication-Results claiming pass",
         f"Authentication-Results: {dkimplugin.AUTHSERV_ID}; dkim=pass header.d=bank.example\r\n"
         .encode() + message("Your bank account", "Please confirm your password.\n")),
        ("valid signature, delivered to two users at once", valid),
    ]


def show_delivery(server, name, message):
    dc = server.dc
    recipients = ["bob", "carol"] if "two users" in name else ["bob"]
    before = {(u, f): len(dc.read_maildir(u, f)) for u in recipients for f in ("INBOX", "Junk")}
    replies = dc.deliver_lmtp(f"alice@{DOMAIN}", [dc.address(u) for u in recipients], message)
    step(name)
    subject = dkimplugin.header_fields(message, "Subject")[0]
    print(f"  Subject: {subject}")
    for value in dkimplugin.header_fields(message, "Authentication-Results"):
        print(f"  arrived with: Authentication-Results: {value}")
    for user in recipients:
        code, text = replies[dc.address(user)]
        folder = next(f for f in ("INBOX", "Junk")
                      if len(dc.read_maildir(user, f)) > before[user, f])
        stored = dc.read_maildir(user, folder)[-1]
        print(f"  LMTP reply for {user}: {code} {text.decode(errors='replace')}")
        print(f"  landed in {user}'s {folder}, with these Authentication-Results:")
        head = stored.split(b"\n\n", 1)[0].decode("utf-8", "replace")
        fields = re.findall(r"^Authentication-Results:.*(?:\n[ \t].*)*", head, re.M)
        print(indent("\n".join(fields) if fields else "(none)"), end="")
    return len(recipients)


def show_submission(server, sink):
    """alice sends bob a message through submission; the relay host gets it signed; then it
    is delivered to bob like any incoming mail, and verified."""
    dc = server.dc
    step("submission: alice sends a message (port 587, authenticated as alice)")
    message = dkimplugin.message(f"Alice Example <alice@{DOMAIN}>", "Signed on the way out",
                                 "Bob,\n\nsent through Dovecot's submission service.\n\nAlice\n",
                                 recipient=dc.address("bob"))
    refused = dc.submit("alice", f"alice@{DOMAIN}", [dc.address("bob")], message)
    [relayed] = sink.wait_for(1)
    head = relayed.data.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    signature = re.search(r"^DKIM-Signature:[^\r\n]*(?:\r\n[ \t][^\r\n]*)*", head, re.M)
    print(f"  refused recipients: {refused or 'none'}")
    print("  the relay host received it with this signature, added by the submission plugin:")
    print(indent(signature[0].replace("\r\n", "\n") if signature else "(none)"), end="")
    return show_delivery(server, "the submitted message, delivered to bob", relayed.data)


def main():
    owner = submission_signing.dovecot_run_user()
    with submission_signing.KeyDirectory(owner) as keys, smtpsink.SmtpSink() as sink, \
            tempfile.TemporaryDirectory(prefix="dkim-demo-") as own_dir:
        step(f"dkim-genkey: an RSA key for {DOMAIN}, selector {SELECTOR}")
        keyfile, own_keyfile, record = make_key(keys, own_dir)
        print(indent(f"{SELECTOR}._domainkey.{DOMAIN} TXT \"{record[:60]}...\""), end="")

        step("Starting NSD (DNSSEC-signed zone) and Dovecot with the DKIM plugins")
        records = {f"{SELECTOR}._domainkey.{DOMAIN}": record}
        with dkimplugin.MailServer(
                records, users=("alice", "bob", "carol"),
                includes=[dkimplugin.shipped_conf("90-dkim.conf")],
                relay_port=sink.port, submission_plugins=[submission_signing.PLUGIN],
                plugin_settings={"dkim_sign_domain": DOMAIN, "dkim_sign_selector": SELECTOR,
                                 "dkim_sign_key": keyfile},
                userdb_fields={"alice": {"dkim_sign_from": DOMAIN}}) as server:
            print(f"  NSD on 127.0.0.1@{server.dns.port}, in {server.dns.directory}")
            print(f"  Dovecot {dovecot.version_name(server.dc.version)} in {server.dc.directory}")
            print(f"  authserv-id {dkimplugin.AUTHSERV_ID}; bob's Sieve script:")
            print(indent(SIEVE_SCRIPT), end="")
            server.dc.set_sieve_script("bob", SIEVE_SCRIPT)

            deliveries = sum(show_delivery(server, name, message)
                             for name, message in samples(own_keyfile))
            deliveries += show_submission(server, sink)

            step("What the plugin logged (one line per verification)")
            lines = server.verify_lines()
            for line in lines:
                print(indent(line.split(": Info: ", 1)[-1]), end="")
            print(f"\n  {deliveries} deliveries, {len(lines)} verifications: the message for "
                  "two users was verified once.")
            errors = server.dc.error_lines()
            step("Stopping Dovecot and NSD")
            if errors:
                print("Dovecot logged errors:\n" + indent("\n".join(errors)))
                return 1
    print("Done: everything stopped and removed.")
    return 0


sys.exit(main())

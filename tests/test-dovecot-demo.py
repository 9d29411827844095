#!/usr/bin/python3
"""demo/dovecot-demo.py, the README's main demonstration, still does what it shows: valid
mail in INBOX with dkim=pass, the tampered one in Junk with dkim=fail, the forged
Authentication-Results replaced, one verification for two recipients, a user's message
signed by the submission plugin and passing at delivery, nothing left running.
"""
import os
import re

import procutil
import tap


def main():
    srcdir = os.environ.get("DKIM_TOP_SRCDIR", os.getcwd())
    done = procutil.run(["/usr/bin/python3", os.path.join(srcdir, "demo", "dovecot-demo.py")],
                        "dovecot-demo.py", timeout=120, check=False)
    output = done.stdout.decode("utf-8", "replace")
    tap.ok(done.returncode == 0 and output.rstrip().endswith("everything stopped and removed."),
           "the demo runs to the end", output + done.stderr.decode("utf-8", "replace"))

    sections = dict(re.findall(r"^=== ([^\n]*)\n\n(.*?)(?=^=== |\Z)", output, re.M | re.S))
    valid = sections.get("valid signature", "")
    tampered = sections.get("tampered after signing (a list footer)", "")
    forged = sections.get("forged Authentication-Results claiming pass", "")
    tap.ok("landed in bob's INBOX" in valid and "dkim=pass" in valid and "DNSSEC" in valid,
           "valid: INBOX, dkim=pass with the DNSSEC status", valid)
    tap.ok("landed in bob's Junk" in tampered and "dkim=fail" in tampered
           and "body hash mismatch" in tampered, "tampered: Junk, dkim=fail with the reason",
           tampered)
    stored = forged.split("with these Authentication-Results:", 1)[-1]
    tap.ok("arrived with: Authentication-Results: mx.test.example; dkim=pass" in forged
           and "dkim=none" in stored and "dkim=pass" not in stored,
           "forged Authentication-Results: replaced by dkim=none", forged)
    submitted = sections.get("submission: alice sends a message (port 587, authenticated as "
                             "alice)", "")
    delivered = sections.get("the submitted message, delivered to bob", "")
    tap.ok("refused recipients: none" in submitted and re.search(
        r"added by the submission plugin:\n\s+DKIM-Signature: v=1; a=rsa-sha256;.*d=secure\."
        r"example;.*\bs=2026;.*\bb=", submitted, re.S),
           "submission: the relay host gets alice's message signed by the plugin", submitted)
    tap.ok("landed in bob's INBOX" in delivered and "dkim=pass" in delivered
           and "header.d=secure.example" in delivered,
           "submission: that signature passes when the message is delivered", delivered)
    tap.ok("7 deliveries, 6 verifications" in output,
           "two recipients of one message: one verification", output[-400:])
    directories = re.findall(r"(?:NSD on \S+, in|Dovecot [0-9.]+ in) (\S+)", output)
    leftovers = [pid for pid in os.listdir("/proc") if pid.isdigit()
                 and any(d.encode() in _cmdline(pid) for d in directories)]
    tap.ok(len(directories) == 2 and not leftovers
           and not any(os.path.exists(d) for d in directories),
           "no Dovecot or NSD process of the demo left, their directories removed",
           (directories, leftovers))


def _cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read()
    except OSError:
        return b""


tap.run(main)

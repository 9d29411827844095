"""The core library end to end: make a key, publish it in a real DNS zone
(NSD on 127.0.0.1), sign a message, verify it through that server, then
show what a tampered copy and a forgotten key look like.

Run from the build directory's environment (see demo.sh):
  DKIM_TOP_BUILDDIR=_build PYTHONPATH=tests/lib /usr/bin/python3 demo/core-demo.py
"""
import os
import subprocess
import sys
import tempfile

import nsd
from dkimtools import tool

DOMAIN = "demo.example"
SELECTOR = "2026"
MESSAGE = (b"From: Alice <alice@demo.example>\r\n"
           b"To: Bob <bob@elsewhere.example>\r\n"
           b"Subject: Quarterly numbers\r\n"
           b"Date: Sun, 22 Nov 2026 10:00:00 +0000\r\n"
           b"Message-ID: <q3@demo.example>\r\n"
           b"\r\n"
           b"Bob, the numbers are attached.\r\n")


def step(title):
    print(f"\n=== {title}\n", flush=True)


def run(*args, stdin=None):
    proc = subprocess.run(args, input=stdin, capture_output=True)
    sys.stdout.write(proc.stdout.decode(errors="replace"))
    sys.stderr.write(proc.stderr.decode(errors="replace"))
    sys.stdout.flush()
    return proc


def main():
    with tempfile.TemporaryDirectory() as tmp:
        step(f"dkim-genkey: a 2048-bit RSA key for {DOMAIN}, selector {SELECTOR}")
        run(tool("dkim-genkey"), "-d", DOMAIN, "-s", SELECTOR, "-D", tmp)
        key = os.path.join(tmp, f"{SELECTOR}.private")
        record = open(os.path.join(tmp, f"{SELECTOR}.txt")).read()
        value = "".join(part for i, part in enumerate(record.split('"'))
                        if i % 2 == 1)

        with nsd.NsdServer({f"{SELECTOR}._domainkey.{DOMAIN}": [value]}) as dns:
            server = f"127.0.0.1@{dns.port}"
            step(f"NSD serves the record on {server}; dkim-testkey checks it")
            run(tool("dkim-testkey"), "-d", DOMAIN, "-s", SELECTOR, "-k", key,
                "--resolver", server)

            step("dkim-sign: the message with its new DKIM-Signature")
            signed = run(tool("dkim-sign"), "-d", DOMAIN, "-s", SELECTOR,
                         "-k", key, stdin=MESSAGE).stdout

            verify = [tool("dkim-verify"), "-v", "--authserv-id",
                      "mx.elsewhere.example", "--resolver", server]
            step("dkim-verify: the signed message, key fetched from NSD")
            run(*verify, stdin=signed)

            step("dkim-verify: the same message after a list added a footer")
            run(*verify, stdin=signed + b"--\r\nSent via the list\r\n")

        step("dkim-verify: and once the DNS server is gone (temporary error)")
        run(*verify, "--dns-timeout", "2", stdin=signed)


main()

#!/usr/bin/python3
"""A 20 MiB signed message through LMTP with the delivery plugin: verified (pass) in bounded
memory.

The lmtp process's peak resident size (VmHWM) is read while the LMTP connection is still
open (service_count = 1: one process per connection, so the peak belongs to this one
delivery). Bounds, for a message of 20 MiB:
- it does not grow with the message: within 4 MiB of the peak for a 1 MiB message;
- the message is never held in memory: the peak stays under 32 MiB;
- the plugin's own share (its libraries and one verifier) is under 8 MiB, measured against
  the same deliveries without the plugin.
"""
import base64
import os
import random
import smtplib
import tempfile

import dkimplugin
import nsd
import oracles
import smtpclient
import tap
from dkimplugin import verdicts

MIB = 1 << 20
DOMAIN = nsd.SECURE_ZONE
KEY = oracles.SigningKey.generate("rsa-sha256")
RECORDS = {f"big._domainkey.{DOMAIN}": KEY.dns_record()}


def body(size):
    """`size` bytes of base64 lines, like a large attachment (deterministic)."""
    rnd = random.Random(size)
    line_count = size // 78 + 1
    return "\n".join(base64.b64encode(rnd.randbytes(57)).decode()
                     for _ in range(line_count)) + "\n"


def signed(size, keyfile):
    message = dkimplugin.message(f"archive@{DOMAIN}", f"{size // MIB} MiB", body(size))
    return dkimplugin.dkim_sign(message, "-d", DOMAIN, "-s", "big", "-k", keyfile)


def newest_lmtp_pid(dc):
    pids = []
    for pid in dc.processes():
        try:
            with open(f"/proc/{pid}/comm", encoding="ascii") as handle:
                if handle.read().strip() == "lmtp":
                    pids.append(pid)
        except OSError:
            continue
    return max(pids)


def peak_kib(pid):
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmHWM for {pid}")


def deliver(dc, message):
    """Delivers to alice; returns (reply code, peak KiB of the lmtp process)."""
    with smtplib.LMTP(dc.lmtp_socket, timeout=120) as lmtp:
        replies = smtpclient.send_lmtp(lmtp, f"archive@{DOMAIN}", [dc.address("alice")],
                                       message)
        return replies[dc.address("alice")][0], peak_kib(newest_lmtp_pid(dc))


def main():
    with tempfile.TemporaryDirectory(prefix="dkim-large-") as keydir, \
            dkimplugin.MailServer(RECORDS) as server:
        keyfile = dkimplugin.write_private_key(KEY, os.path.join(keydir, "big.pem"))
        small, large = signed(MIB, keyfile), signed(20 * MIB, keyfile)
        tap.ok(len(large) >= 20 * MIB, f"the large message has {len(large)} bytes")
        dc = server.dc

        code_small, with_small = deliver(dc, small)
        code_large, with_large = deliver(dc, large)
        tap.ok(code_small == code_large == 250
               and verdicts(dc.read_maildir("alice")[-1]) == ["pass"],
               "20 MiB message delivered with dkim=pass")
        tap.diag(f"lmtp peak RSS with the plugin: 1 MiB message {with_small} KiB, "
                 f"20 MiB message {with_large} KiB")
        tap.ok(with_large - with_small < 4 * 1024,
               f"peak memory does not grow with the message ({with_large - with_small:+} KiB "
               "from 1 to 20 MiB)")
        tap.ok(with_large < 32 * 1024,
               f"peak RSS for the 20 MiB message under 32 MiB ({with_large} KiB)")

        dc.reload(delivery_plugins=[])
        _, without_large = deliver(dc, large)
        tap.diag(f"lmtp peak RSS without the plugin: 20 MiB message {without_large} KiB")
        tap.ok(with_large - without_large < 8 * 1024,
               f"the plugin adds under 8 MiB ({with_large - without_large:+} KiB)")
        errors = dc.error_lines()
        tap.ok(not errors, "Dovecot logged no errors, fatals or panics", "\n".join(errors))


tap.run(main)

"""Key lookups through a real DNS server: NSD on 127.0.0.1 serving the
keys, reached by dkim-verify and dkim-testkey through libunbound as a
forwarder.  A DNSSEC-signed zone with its trust anchor gives secure,
insecure and bogus keys; a stopped server gives a temperror in time."""
import os
import tempfile
import time

import nsd
import procutil
import oracles
import tap
from dkimtools import sign, tool, verify

SELECTOR = "sel"
INSECURE_ZONE = "plain.example"  # outside the signed zones: unsigned
SPECIAL_USE_DOMAINS = ["lab.test", "mail.home.arpa", "example.invalid", "dkim.localhost"]
"""Under the special-use names libunbound answers itself unless told otherwise."""


def testkey(*args, timeout=60):
    proc = procutil.run([tool("dkim-testkey"), *args], "dkim-testkey", timeout=timeout,
                        check=False)
    return proc.returncode, (proc.stdout + proc.stderr).decode("utf-8", "replace")


def special_use(key_file, server, anchor):
    """Keys under the special-use names that labs use (RFC 6761, 8375): asked of the
    resolver given, as dig asks it; never looked up through the system's resolvers, with the
    reason in the error."""
    for domain in SPECIAL_USE_DOMAINS:
        _, signed, _ = sign(b"From: Joe <joe@%s>\r\nSubject: lab\r\n\r\nHello.\r\n"
                            % domain.encode(), "-d", domain, "-s", SELECTOR, "-k", key_file)
        got = verify(signed, "--resolver", server, *anchor)
        tap.eq((got.results(), got.signatures[0].dnssec), (["pass"], "insecure"),
               f"{domain}: the key through the resolver given (insecure under a trust anchor)")
        rc, out = testkey("-d", domain, "-s", SELECTOR, "-k", key_file, "--resolver", server)
        tap.ok(rc == 0 and "matches" in out, f"testkey: {domain} through the resolver given",
               out)
    domain = SPECIAL_USE_DOMAINS[0]
    _, signed, _ = sign(b"From: Joe <joe@%s>\r\n\r\nHello.\r\n" % domain.encode(),
                        "-d", domain, "-s", SELECTOR, "-k", key_file)
    got = verify(signed)
    sig = got.signatures[0]
    tap.ok(sig.reason == "no-key" and "not looked up: a special-use name" in sig.explanation,
           f"{domain} without a resolver given: not looked up, and why", sig)
    for name in (domain, "Mail.HOME.ARPA", "dkim.localhost"):
        rc, out = testkey("-d", name, "-s", SELECTOR)
        tap.ok(rc == 1 and "not looked up: a special-use name" in out,
               f"testkey: {name} without a resolver given says why it was not looked up", out)


def main():
    key = oracles.SigningKey.generate("rsa-sha256", 2048)
    other = oracles.SigningKey.generate("rsa-sha256", 2048)
    zones = [nsd.SECURE_ZONE, nsd.BOGUS_ZONE, INSECURE_ZONE]
    records = {f"{SELECTOR}._domainkey.{zone}": [key.dns_record()]
               for zone in zones}
    for domain in SPECIAL_USE_DOMAINS:
        records[f"{SELECTOR}._domainkey.{domain}"] = [key.dns_record()]
    records[f"two._domainkey.{INSECURE_ZONE}"] = [key.dns_record(),
                                                  other.dns_record()]
    message = (b"From: Joe <joe@%s>\r\nTo: bob@example.net\r\n"
               b"Subject: hello\r\n\r\nHello.\r\n")

    with tempfile.TemporaryDirectory() as tmp, nsd.NsdServer(records) as dns:
        key_file = os.path.join(tmp, "sel.pem")
        with open(key_file, "wb") as f:
            f.write(key.pem())
        os.chmod(key_file, 0o600)
        other_file = os.path.join(tmp, "other.pem")
        with open(other_file, "wb") as f:
            f.write(other.pem())
        os.chmod(other_file, 0o600)
        server = f"127.0.0.1@{dns.port}"
        anchor = ["--trust-anchor", dns.trust_anchor_file]

        served = dns.txt_strings(f"{SELECTOR}._domainkey.{INSECURE_ZONE}")
        tap.eq([len(record) for record in served], [2],
               "the 2048-bit key record is served as two TXT strings")

        signed = {}
        for zone in zones:
            rc, signed[zone], err = sign(message % zone.encode(), "-d", zone,
                                         "-s", SELECTOR, "-k", key_file)
            tap.eq(rc, 0, f"signed for {zone}")

        got = verify(signed[INSECURE_ZONE], "--resolver", server)
        tap.eq((got.results(), got.signatures[0].dnssec),
               (["pass"], "unvalidated"),
               "pass through NSD without a trust anchor")
        tap.ok("DNSSEC unvalidated" in got.authres,
               "A-R comment gives the DNSSEC status", got.authres)

        expected = {nsd.SECURE_ZONE: ("pass", "secure", ""),
                    INSECURE_ZONE: ("pass", "insecure", ""),
                    nsd.BOGUS_ZONE: ("permerror", "bogus", "dnssec-bogus")}
        for zone, (result, state, reason) in expected.items():
            got = verify(signed[zone], "--resolver", server, *anchor)
            sig = got.signatures[0]
            tap.eq((sig.result, sig.dnssec, sig.reason), (result, state, reason),
                   f"DNSSEC {state} key at {zone}")
        got = verify(signed[nsd.SECURE_ZONE], "--resolver", server, *anchor)
        tap.ok("DNSSEC secure" in got.authres, "secure shown in A-R",
               got.authres)

        missing = message % b"nokey.example"
        _, missing_signed, _ = sign(missing, "-d", "nokey.example", "-s",
                                    SELECTOR, "-k", key_file)
        got = verify(missing_signed, "--resolver", server)
        tap.eq((got.results(), got.signatures[0].reason),
               (["permerror"], "no-key"), "NXDOMAIN from NSD: no key")

        _, two_signed, _ = sign(message % INSECURE_ZONE.encode(), "-d",
                                INSECURE_ZONE, "-s", "two", "-k", key_file)
        got = verify(two_signed, "--resolver", server)
        tap.eq(got.signatures[0].reason, "multiple-keys",
               "two TXT records at one name: permerror")

        # dkim-testkey against the same server
        rc, out = testkey("-d", nsd.SECURE_ZONE, "-s", SELECTOR, "-k",
                          key_file, "--resolver", server, *anchor)
        tap.ok(rc == 0 and "DNSSEC: secure" in out and "matches" in out
               and "2 TXT strings" in out, "testkey: record, key, DNSSEC", out)
        rc, out = testkey("-d", nsd.SECURE_ZONE, "-s", SELECTOR, "-k",
                          other_file, "--resolver", server)
        tap.ok(rc == 1 and "does not belong" in out,
               "testkey: wrong private key", out)
        rc, out = testkey("-d", nsd.BOGUS_ZONE, "-s", SELECTOR,
                          "--resolver", server, *anchor)
        tap.ok(rc == 1 and "bogus" in out, "testkey: bogus DNSSEC fails", out)
        rc, out = testkey("-d", "nokey.example", "-s", SELECTOR,
                          "--resolver", server)
        tap.ok(rc == 1 and "no TXT record at sel._domainkey.nokey.example"
               in out, "testkey: missing record", out)

        special_use(key_file, server, anchor)

        # The server goes away: a temperror within the DNS bound.
        dns.stop()
        start = time.monotonic()
        got = verify(signed[INSECURE_ZONE], "--resolver", server,
                     "--dns-timeout", "2")
        elapsed = time.monotonic() - start
        tap.eq((got.returncode, got.results()), (75, ["temperror"]),
               "server stopped: temperror, exit 75")
        tap.ok(elapsed < 6, f"answered within the bound ({elapsed:.1f} s)")


tap.run(main)

"""Interoperability, both ways, with dkimpy, OpenDKIM and Mail::DKIM (the
Debian packages, run offline): what they sign verifies here, and what we
sign verifies there, for both algorithms and all four canonicalizations."""
import os
import tempfile

import oracles
import tap
from dkimtools import sign, verify

DOMAIN = "interop.example"
CANONICALIZATIONS = ["simple/simple", "simple/relaxed", "relaxed/simple",
                     "relaxed/relaxed"]

# Folded fields, runs of whitespace, trailing spaces and trailing empty
# lines: the places where canonicalizations differ.
MESSAGE = (b"Received: from mx.interop.example by mx.other.example;\r\n"
           b"\tMon, 20 Nov 2026 10:00:00 +0000\r\n"
           b"From: Joe  SixPack <joe@interop.example>\r\n"
           b"To: Suzie Q <suzie@shopping.example.net>,\r\n"
           b"  Bob <bob@shopping.example.net>\r\n"
           b"Subject:   Is dinner   ready?\r\n"
           b"Date: Fri, 20 Nov 2026 21:00:37 -0700\r\n"
           b"Message-ID: <20261120.1@interop.example>\r\n"
           b"MIME-Version: 1.0\r\n"
           b"Content-Type: text/plain; charset=utf-8\r\n"
           b"\r\n"
           b"Hi.  \r\n"
           b"\r\n"
           b"We lost the game.\tAre you hungry yet?\r\n"
           b"\r\n"
           b"Joe.\r\n"
           b"\r\n\r\n")


# OpenDKIM sees header fields the way a milter does, name and value apart,
# and rebuilds each as "Name: value": with simple header canonicalization
# its signatures only hold for fields already written that way.  (dkimpy
# and Mail::DKIM sign the bytes as they are.)  So OpenDKIM gets the same
# message with exactly one space after each colon.
MILTER_SHAPED = MESSAGE.replace(b"Subject:   Is", b"Subject: Is")


def message_for(oracle):
    return MILTER_SHAPED if oracle is oracles.OPENDKIM else MESSAGE


def peer_agrees(signer, message, table):
    """Whether an oracle other than the signer verifies the message.
    OpenDKIM 2.11's Ed25519 signatures with simple header
    canonicalization verify nowhere, not even in OpenDKIM."""
    other = oracles.DKIMPY if signer is not oracles.DKIMPY else oracles.OPENDKIM
    return [r.result for r in other.verify(message, table)] == ["pass"]


def tamper(message):
    return message.replace(b"We lost", b"We won")


def main():
    keys = {alg: oracles.SigningKey.generate(alg)
            for alg in ("rsa-sha256", "ed25519-sha256")}
    selectors = {"rsa-sha256": "rsa", "ed25519-sha256": "ed"}
    records = {f"{selectors[alg]}._domainkey.{DOMAIN}": [key.dns_record()]
               for alg, key in keys.items()}
    with tempfile.TemporaryDirectory() as tmp:
        table = os.path.join(tmp, "dns.txt")
        with open(table, "w") as f:
            for name, values in records.items():
                f.write(f"{name} {values[0]}\n")
        key_files = {}
        for alg, key in keys.items():
            key_files[alg] = os.path.join(tmp, selectors[alg] + ".pem")
            with open(key_files[alg], "wb") as f:
                f.write(key.pem())
            os.chmod(key_files[alg], 0o600)

        for oracle in oracles.ALL:
            reason = oracle.unavailable()
            if reason:
                tap.skip(f"interoperability with {oracle.name}", reason)
                continue
            for alg, key in keys.items():
                for canon in CANONICALIZATIONS:
                    label = f"{oracle.name} {alg} {canon}"
                    if alg == "ed25519-sha256" and not oracle.supports_ed25519:
                        tap.skip(label, f"{oracle.name} has no Ed25519")
                        continue
                    message = message_for(oracle)
                    theirs = oracle.sign(message, DOMAIN, selectors[alg], key,
                                         alg, canon)
                    got = verify(theirs, "--dns-table", table)
                    if got.results() != ["pass"] and not peer_agrees(
                            oracle, theirs, table):
                        tap.skip(f"{label}: signed there, verifies here",
                                 f"{oracle.name}'s signature fails with "
                                 "another oracle too (a bug of that "
                                 "version)")
                    else:
                        tap.eq(got.results(), ["pass"],
                               f"{label}: signed there, verifies here")

                    rc, ours, err = sign(message, "-d", DOMAIN, "-s",
                                         selectors[alg], "-k", key_files[alg],
                                         "-c", canon)
                    tap.eq(rc, 0, f"{label}: dkim-sign exit code")
                    results = [r.result for r in oracle.verify(ours, table)]
                    tap.eq(results, ["pass"],
                           f"{label}: signed here, verifies there")

            # Both sides agree that a changed body fails.
            alg = "rsa-sha256"
            message = message_for(oracle)
            theirs = tamper(oracle.sign(message, DOMAIN, "rsa", keys[alg], alg))
            tap.eq(verify(theirs, "--dns-table", table).results(), ["fail"],
                   f"{oracle.name}: its signature over a changed body fails here")
            _, ours, _ = sign(message, "-d", DOMAIN, "-s", "rsa", "-k",
                              key_files[alg])
            results = [r.result for r in oracle.verify(tamper(ours), table)]
            tap.eq(results, ["fail"],
                   f"{oracle.name}: our signature over a changed body fails there")

        # Dual signing (RSA + Ed25519) in one pass, checked by the oracles
        # that know both algorithms.
        rc, dual, err = sign(MILTER_SHAPED, "--key",
                             f"{DOMAIN}:rsa:{key_files['rsa-sha256']}",
                             "--key", f"{DOMAIN}:ed:{key_files['ed25519-sha256']}")
        tap.eq(rc, 0, "dual signing")
        tap.eq(verify(dual, "--dns-table", table).results(), ["pass", "pass"],
               "dual signature verifies here")
        for oracle in oracles.ALL:
            if oracle.supports_ed25519 and not oracle.unavailable():
                results = [r.result for r in oracle.verify(dual, table)]
                tap.eq(results, ["pass", "pass"],
                       f"dual signature verifies with {oracle.name}")


tap.run(main)

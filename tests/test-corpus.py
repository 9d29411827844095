"""Golden vectors: every DKIM suite of the shared corpus, verified with
dkim-verify in its default (strict: RFC 6376 + 8301 + 8463) mode against
the expectations each suite documents (see ../shared/corpus/*/PROVENANCE.md)."""
import os
import re
import tempfile

import shared
import tap
from dkimtools import CORPUS, verify, sign

RFC = os.path.join(CORPUS, "rfc-examples")


def check(label, got, expected_results, expected_reasons=None):
    """expected_results: per-signature list of allowed results ('a|b')."""
    results = got.results()
    ok = len(results) == len(expected_results) and all(
        r in exp.split("|") for r, exp in zip(results, expected_results))
    detail = "\n".join(f"{s.result} {s.reason}: {s.explanation}"
                       for s in got.signatures)
    tap.ok(ok, f"{label}: {' '.join(expected_results)}",
           f"got {results}\n{detail}\n{got.stderr}")
    if expected_reasons:
        reasons = [s.reason for s in got.signatures]
        tap.eq(reasons, expected_reasons, f"{label}: reasons")


def rfc_examples():
    table = os.path.join(RFC, "dns.txt")
    cases = [
        ("rfc6376/A.1-unsigned.eml", [], "none"),
        ("rfc6376/A.2-signed-as-printed.eml", ["fail"], "fail"),
        ("rfc6376/A.2-signed-corrected.eml", ["pass"], "pass"),
        ("rfc8463/A.3-signed.eml", ["pass", "pass"], "pass"),
    ]
    for name, sigs, verdict in cases:
        got = verify(os.path.join(RFC, name), "--dns-table", table)
        check(f"rfc-examples/{name}", got, sigs)
        tap.eq(got.verdict, verdict, f"rfc-examples/{name}: verdict")
    got = verify(os.path.join(RFC, "rfc6376/A.2-signed-as-printed.eml"),
                 "--dns-table", table)
    tap.eq(got.signatures[0].reason, "body-hash-mismatch",
           "RFC 6376 A.2 as printed fails on its body hash")


def dkim_verifier():
    base = os.path.join(CORPUS, "dkim-verifier-lieser")
    table = open(os.path.join(base, "dns.txt")).read()
    brisbane = re.search(r"^brisbane\._domainkey\.example\.com .*p=(\S+)",
                         table, re.M)[1]
    # dkim_verifier error codes -> (result, our reason)
    codes = {
        "DKIM_SIGERROR_MISSING_V": ("permerror", "signature-version"),
        "DKIM_SIGERROR_KEY_REVOKED": ("permerror", "key-revoked"),
        "DKIM_SIGERROR_KEY_HASHNOTINCLUDED": ("permerror", "key-hash-mismatch"),
        "DKIM_SIGERROR_KEY_MISMATCHED_K": ("permerror", "key-type-mismatch"),
        "DKIM_SIGERROR_KEY_NOTEMAILKEY": ("permerror", "key-service"),
        "DKIM_SIGERROR_DOMAIN_I": ("permerror", "key-strict-identity"),
        "DKIM_SIGERROR_CORRUPT_BH": ("fail", "body-hash-mismatch"),
        "DKIM_SIGERROR_BADSIG": ("fail", "signature-mismatch"),
    }
    with tempfile.TemporaryDirectory() as tmp:
        for line in open(os.path.join(base, "expected.tsv")):
            if line.startswith("#") or not line.strip():
                continue
            name, override, expected, note = line.rstrip("\n").split("\t")
            dns = os.path.join(base, "dns.txt")
            if override != "-":
                dns = os.path.join(tmp, "dns.txt")
                value = override.replace("<brisbane key>", brisbane)
                with open(dns, "w") as f:
                    f.write(re.sub(r"^brisbane\._domainkey\.example\.com .*$",
                                   lambda m: "brisbane._domainkey.example.com "
                                   + value, table, flags=re.M))
            args = ["--dns-table", dns]
            if "fastmail" in name:
                args += ["--now", "1698100000"]
            results, reasons = [], []
            for item in expected.split():
                if item == "SUCCESS":
                    results.append("pass")
                    reasons.append("")
                elif item == "PERMFAIL:DKIM_POLICYERROR_UNSIGNED_HEADER_ADDED":
                    # RFC 6376 alone says pass; our rule that a message with
                    # several From fields never passes makes that one policy.
                    policy = name.endswith("added_header-from.eml")
                    results.append("policy" if policy else "pass")
                    reasons.append("multiple-from" if policy else "")
                elif item.startswith("PERMFAIL:"):
                    result, reason = codes[item[len("PERMFAIL:"):]]
                    results.append(result)
                    reasons.append(reason)
                elif item == "permerror(no-key)":
                    results.append("permerror")
                    reasons.append("no-key")
                else:
                    results.append(item)
                    reasons.append("")
            got = verify(os.path.join(base, "data", name), *args)
            label = f"dkim-verifier/{name}" + (f" [{override}]" if override != "-" else "")
            check(label, got, results, reasons)


def mail_dkim():
    base = os.path.join(CORPUS, "mail-dkim")
    table = os.path.join(base, "FAKE_DNS.dat")
    for line in open(os.path.join(base, "expected.tsv")):
        if line.startswith("#") or not line.strip():
            continue
        name, _, strict, why, _ = line.rstrip("\n").split("\t")
        got = verify(os.path.join(base, "corpus", name), "--dns-table", table)
        allowed = strict.split("|")
        tap.ok(got.verdict in allowed, f"mail-dkim/{name}: {strict} ({why})",
               "\n".join(f"{s.result} {s.reason}: {s.explanation}"
                         for s in got.signatures))
        if strict == "none":
            tap.eq(got.signatures, [], f"mail-dkim/{name}: no DKIM signature")


def split_stalwart(path, tmp):
    data = open(path, "rb").read()
    dns, message = data.split(b"\n\n", 1)
    table = os.path.join(tmp, os.path.basename(path) + ".dns")
    with open(table, "wb") as f:
        f.write(dns + b"\n")
    return table, message.replace(b"\n", b"\r\n")


def stalwart():
    base = os.path.join(CORPUS, "stalwart-mail-auth")
    # DKIM results in every file; the ARC files carry DKIM signatures too.
    expected = {
        "dkim/001.txt": ["pass", "pass"],
        "dkim/002.txt": ["pass"],       # p= is a bare PKCS#1 RSAPublicKey
        "dkim/003.txt": ["pass", "pass"],
        "dkim/004.txt": ["pass"],
        "dkim/005.txt": ["pass"],
        "dkim/006.txt": ["pass"],
        "arc/001.txt": ["pass", "pass", "fail"],  # the list changed the body
        "arc/002.txt": ["pass"],
    }
    with tempfile.TemporaryDirectory() as tmp:
        for name, results in expected.items():
            table, message = split_stalwart(os.path.join(base, name), tmp)
            # Upstream fixes the clock at 1667843664, but dkim/004 carries
            # t=1667862801: five hours in its future, which we refuse
            # (RFC 6376 §6.1.1 allows it).  1667900000 is after every t=
            # and before dkim/005's x=1667930064.
            clock = "1667900000" if name.startswith("dkim/") else "1700000000"
            got = verify(message, "--dns-table", table, "--now", clock)
            check(f"stalwart/{name}", got, results)


def dkimpy_static():
    base = os.path.join(CORPUS, "dkimpy")
    table = os.path.join(base, "dns.txt")
    cases = [
        ("data/rfc6376.signed.msg", ["pass", "pass"]),
        ("data/rfc6376.signed.rsa.msg", ["pass"]),
        ("data/ed25519test2.msg", ["pass"]),
        ("data/test2.message", ["pass"]),
        ("data/test.message.baddomain", ["permerror|fail"]),
    ]
    for name, results in cases:
        check(f"dkimpy/{name}", verify(os.path.join(base, name),
                                       "--dns-table", table), results)


def dkimpy_keys():
    """dkimpy's key-format and key-record files: sign with the private key,
    publish the given record, verify."""
    data = os.path.join(CORPUS, "dkimpy", "data")
    message = open(os.path.join(data, "test.message"), "rb").read()
    cases = [
        # private key, record file, expected result, reason
        ("test.private", "test.txt", "pass", ""),
        ("test2.private", "test2.txt", "pass", ""),             # implicit k=rsa
        ("test.private", "badversion.txt", "permerror", "key-version"),
        ("test.private", "badk.txt", "permerror", "key-type-unknown"),
        ("test.private", "test_bad.txt", "permerror", "key-data"),
        ("test.private", "test_tlsrpt.txt", "permerror", "key-service"),
        ("1024_testkey.key", "1024_testkey_wo_markers.pub.txt", "pass", ""),
        ("1024_testkey.key", "1024_testkey_wo_markers.pub.rsa.txt", "pass", ""),
        ("2048_testkey.key", "2048_testkey_wo_markers.pub.txt", "pass", ""),
        ("2048_testkey.key", "2048_testkey_wo_markers.pub.rsa.txt", "pass", ""),
        ("2048_testkey_PKCS8.key", "2048_testkey_PKCS8.key.pub.txt", "pass", ""),
        ("ed25519test.key", "ed25519test.dns", "pass", ""),
        ("rfc8032_7_1.key", None, "pass", ""),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for key_name, record_name, result, reason in cases:
            key = os.path.join(tmp, key_name)
            with open(key, "wb") as f:
                f.write(open(os.path.join(data, key_name), "rb").read())
            os.chmod(key, 0o600)
            if record_name is None:
                record = "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
            else:
                record = open(os.path.join(data, record_name)).read()
                record = " ".join(record.split())
                if "p=" not in record:      # bare base64 public key files
                    record = "v=DKIM1; k=rsa; p=" + record
            table = os.path.join(tmp, "dns.txt")
            with open(table, "w") as f:
                f.write(f"test._domainkey.example.com {record}\n")
            rc, signed, err = sign(message, "-d", "example.com", "-s", "test",
                                   "-k", key)
            if not tap.ok(rc == 0, f"dkimpy key {key_name}: signs", err):
                continue
            got = verify(signed, "--dns-table", table)
            check(f"dkimpy key {key_name} + record {record_name}", got,
                  [result], [reason])

        # Signing needs exactly one From; non-UTF-8 input signs fine.
        key = os.path.join(tmp, "test.private")
        for name, expect_rc in (("test_nofrom.message", 1),
                                ("rfc6376.w1258.msg", 0),
                                ("message.mbox", 0)):
            msg = open(os.path.join(data, name), "rb").read()
            rc, signed, err = sign(msg, "-d", "example.com", "-s", "test",
                                   "-k", key)
            tap.eq(rc, expect_rc, f"dkimpy/{name}: dkim-sign exit code")
            if rc == 0:
                table = os.path.join(tmp, "dns.txt")
                with open(table, "w") as f:
                    f.write("test._domainkey.example.com "
                            + open(os.path.join(data, "test.txt")).read().strip()
                            + "\n")
                got = verify(signed, "--dns-table", table)
                tap.eq(got.results()[0], "pass",
                       f"dkimpy/{name}: our new signature verifies")
            else:
                tap.ok("From" in err, f"dkimpy/{name}: error names From", err)


def main():
    reason = shared.absent()
    if reason:
        tap.skip_all(reason)
    rfc_examples()
    dkim_verifier()
    mail_dkim()
    stalwart()
    dkimpy_static()
    dkimpy_keys()


tap.run(main)

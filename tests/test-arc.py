"""ARC (RFC 8617) through dkim-verify and dkim-sign: the ValiMail ARC test suite (171
validation and 17 signing cases) with its documented semantics, Stalwart's and dkimpy's ARC
vectors, and interop with dkimpy both ways (what we seal validates there, what it seals
validates here, and chains that alternate). The exact dkimpy signing vector (its own field
layout) is reproduced in tests/unit/test-sign-golden. Then how a recorded arc= result meets
the arriving chain's structure when sealing, and what a long or forged chain costs in key
lookups (real NSD, the lookups counted by a forwarder in front of it).

Suite semantics (../shared/corpus/arc-test-suite/PROVENANCE.md): validation compares `cv`
case-insensitively, '' meaning that the newest seal already says cv=fail (fail or no result
accepted); signing compares each expected field with ours as sets of ';'-separated tags after
removing all whitespace, '' meaning that no field may be added."""
import os
import re
import tempfile
import time

import yaml

import dnsquerylog
import dnstable
import nsd
import oracles
import procutil
import shared
import tap
from dkimtools import CORPUS, tool, verify

SUITE = os.path.join(CORPUS, "arc-test-suite")
STALWART = os.path.join(CORPUS, "stalwart-mail-auth", "arc")
DKIMPY = os.path.join(CORPUS, "dkimpy")
SET_FIELDS = (("AS", "ARC-Seal"), ("AMS", "ARC-Message-Signature"),
              ("AAR", "ARC-Authentication-Results"))


def crlf(text):
    return oracles.to_crlf(text.encode() if isinstance(text, str) else text)


def suite_records(records):
    """The scenario's txt-records as table records: one line each, no whitespace in p=
    (YAML folding puts spaces or newlines there; RFC 6376 §3.6.1 allows FWS in it)."""
    table = {}
    for name, value in records.items():
        value = re.sub(r"p=([^;]*)", lambda m: "p=" + re.sub(r"\s+", "", m[1]), str(value))
        table[name] = " ".join(value.split())
    return table


def write_key(tmp, name, pem):
    path = os.path.join(tmp, name)
    with open(path, "wb") as handle:
        handle.write(pem if isinstance(pem, bytes) else pem.encode())
    os.chmod(path, 0o600)
    return path


def seal(message, tmp, table, key_spec, *args):
    """Runs dkim-sign with --arc-seal on CRLF message bytes, with the DNS table `table` (None:
    the resolver in `args`): (returncode, the added fields as {name: value}, the whole output,
    stderr)."""
    dns = []
    if table is not None:
        dns = ["--dns-table", os.path.join(tmp, "seal-table.txt")]
        dnstable.write(table, dns[1])
    proc = procutil.run([tool("dkim-sign"), "--arc-seal", key_spec, *dns, *args],
                        "dkim-sign", input_bytes=message, timeout=60, check=False)
    added = {}
    if proc.returncode == 0 and proc.stdout.endswith(message):
        head = proc.stdout[:len(proc.stdout) - len(message)].decode()
        for field in re.split(r"\r\n(?![ \t])", head.rstrip("\r\n")):
            if field:
                name, _, value = field.partition(":")
                added[name] = value
    return proc.returncode, added, proc.stdout, proc.stderr.decode(errors="replace")


def check(message, tmp, table, *args):
    """dkim-verify -v with a DNS table (records)."""
    table_path = os.path.join(tmp, "verify-table.txt")
    dnstable.write(table, table_path)
    return verify(message, "--dns-table", table_path, *args)


def tag_set(value):
    return {tag for tag in re.sub(r"\s+", "", value).split(";") if tag}


# -- the ValiMail suite ----------------------------------------------------------------------

def validation(tmp):
    with open(os.path.join(SUITE, "arc-draft-validation-tests.yml"), encoding="utf-8") as f:
        scenarios = list(yaml.safe_load_all(f))
    count = 0
    for scenario in scenarios:
        table = suite_records(scenario.get("txt-records") or {})
        for name, case in scenario["tests"].items():
            expected = (case["cv"] or "").lower()
            got = check(crlf(case["message"]), tmp, table)
            allowed = [expected] if expected else ["fail"]
            tap.ok(got.arc_cv in allowed,
                   f"validation {name}: cv={expected or 'fail (newest seal says cv=fail)'}",
                   f"got: arc: {got.arc}\n{got.stderr}")
            count += 1
    tap.eq(count, 171, "the validation suite has 171 cases")


def signing(tmp):
    with open(os.path.join(SUITE, "arc-draft-sign-tests.yml"), encoding="utf-8") as f:
        scenarios = list(yaml.safe_load_all(f))
    count = 0
    for scenario in scenarios:
        table = suite_records(scenario["txt-records"])
        key = write_key(tmp, "suite.pem", scenario["privatekey"])
        for name, case in scenario["tests"].items():
            message = crlf(case["message"])
            returncode, added, output, stderr = seal(
                message, tmp, table, f"{scenario['domain']}:{scenario['sel']}:{key}",
                "--arc-authserv-id", case["srv-id"], "--headers", case["sig-headers"],
                "--oversign", "", "--now", str(case["t"]))
            problems = [f"{short}: expected {sorted(tag_set(case[short] or '') - tag_set(added.get(field, '')))}"
                        f" got {sorted(tag_set(added.get(field, '')) - tag_set(case[short] or ''))}"
                        for short, field in SET_FIELDS
                        if tag_set(case[short] or "") != tag_set(added.get(field, ""))]
            tap.ok(returncode == 0 and not problems, f"signing {name}: AS, AMS and AAR",
                   f"exit {returncode}\n" + "\n".join(problems) + f"\n{stderr}")
            count += 1
            if not (case["AS"] or "").strip():
                continue
            # What we sealed validates with us and with dkimpy, as the chain it says it is.
            cv_sealed = re.search(r"cv=(\w+)", case["AS"])[1]
            expected = "pass" if cv_sealed != "fail" else "fail"
            got = check(output, tmp, table, "--now", str(case["t"]))
            oracle, reason = oracles.DKIMPY.arc_verify(output, table)
            tap.ok(got.arc_cv == expected and oracle == (expected if expected == "pass" else None),
                   f"signing {name}: the sealed message validates as {expected} here and in "
                   f"dkimpy", f"ours: {got.arc}\ndkimpy: {oracle} {reason}")
    tap.eq(count, 17, "the signing suite has 17 cases")


# -- Stalwart and dkimpy vectors ---------------------------------------------------------------

def stalwart(tmp):
    for name, optional in (("001.txt", False), ("002.txt", True)):
        with open(os.path.join(STALWART, name), encoding="utf-8") as f:
            dns, message = f.read().split("\n\n", 1)
        table = dnstable.parse(dns)
        got = check(crlf(message), tmp, table)
        label = f"stalwart arc/{name}: cv=pass"
        if not optional:
            tap.ok(got.arc_cv == "pass" and got.verdict == "pass", label,
                   f"arc: {got.arc}\nverdict {got.verdict}")
        elif got.arc_cv == "pass":
            tap.ok(True, f"{label} (extension: ed25519-sha256 seals, optional)")
        else:
            tap.skip(label, f"optional extension (ed25519-sha256 seals) not met: {got.arc}")


def dkimpy_vectors(tmp):
    table = dnstable.load(os.path.join(DKIMPY, "dns.txt"))
    with open(os.path.join(DKIMPY, "arc-signed-message.eml"), "rb") as f:
        sealed = crlf(f.read())
    got = check(sealed, tmp, table)
    tap.ok(got.arc_cv == "pass" and "arc=pass header.oldest-pass=0" in got.authres,
           "dkimpy arc-signed-message.eml: cv=pass, and arc=pass in Authentication-Results",
           f"arc: {got.arc}\n{got.authres}")

    # arc-sign-expected.txt is dkimpy's layout (tags unsorted, h= with " : ", b= last):
    # every tag that does not depend on the layout must match; the b= values, which do,
    # are reproduced from that layout in tests/unit/test-sign-golden.
    with open(os.path.join(DKIMPY, "arc-sign-expected.txt"), "rb") as f:
        expected = crlf(f.read()).decode()
    expected_fields = {name: value for name, _, value in
                       (field.partition(":") for field in
                        re.split(r"\r\n(?![ \t])", expected.strip()))}
    message = sealed[sealed.index(b"Authentication-Results:"):]
    key = os.path.join(DKIMPY, "data", "test.private")
    returncode, added, output, stderr = seal(
        message, tmp, table, f"example.com:test:{key}", "--arc-authserv-id",
        "lists.example.org", "--headers", "message-id:date:from:to:subject", "--now", "12345",
        "--allow-unsafe-key")

    def comparable(value):
        return {tag for tag in tag_set(value) if not tag.startswith(("b=", "h="))}

    problems = [f"{name}: expected {sorted(comparable(expected_fields[name]) - comparable(added.get(name, '')))}"
                f" got {sorted(comparable(added.get(name, '')) - comparable(expected_fields[name]))}"
                for _, name in SET_FIELDS
                if comparable(expected_fields[name]) != comparable(added.get(name, ""))]
    def h_fields(value):
        return sorted(re.search(r"(?:^|;)h=([^;]*)", re.sub(r"\s+", "", value))[1].split(":"))

    h_expected = h_fields(expected_fields["ARC-Message-Signature"])
    h_got = h_fields(added.get("ARC-Message-Signature", "h="))
    tap.ok(returncode == 0 and not problems and h_got == h_expected,
           "dkimpy arc-sign-expected.txt: the same tags (b= aside), h= with the same fields",
           "\n".join(problems) + f"\nh= {h_got} vs {h_expected}\n{stderr}")
    oracle, reason = oracles.DKIMPY.arc_verify(output, table)
    tap.eq((check(output, tmp, table).arc_cv, oracle), ("pass", "pass"),
           "dkimpy arc-sign-expected.txt: our set for the same message validates here and "
           f"in dkimpy ({reason})")


# -- interop and behaviour -----------------------------------------------------------------------

MESSAGE = (b"Authentication-Results: lists.interop.example; spf=pass smtp.mfrom=joe@a.example;\r\n"
           b"  dkim=pass header.d=a.example; dmarc=pass header.from=a.example\r\n"
           b"Received: from mx.a.example by lists.interop.example;\r\n"
           b"\tMon, 20 Nov 2026 10:00:00 +0000\r\n"
           b"From: Joe  SixPack <joe@a.example>\r\n"
           b"To: list@lists.interop.example\r\n"
           b"Subject:   [list]  Is dinner   ready?\r\n"
           b"Date: Fri, 20 Nov 2026 21:00:37 -0700\r\n"
           b"Message-ID: <20261120.1@a.example>\r\n"
           b"MIME-Version: 1.0\r\n"
           b"Content-Type: text/plain; charset=utf-8\r\n"
           b"\r\n"
           b"Hi.  \r\n\r\nWe lost the game.\tAre you hungry yet?\r\n\r\n")


def add_hop_results(message, authserv_id, arc_result):
    """What the next hop's MTA writes before it seals: its own Authentication-Results."""
    return (f"Authentication-Results: {authserv_id}; arc={arc_result};\r\n"
            f"  dkim=pass header.d=lists.interop.example\r\n").encode() + message


def interop(tmp):
    keys = {name: oracles.SigningKey.generate("rsa-sha256", bits)
            for name, bits in (("k1024", 1024), ("k2048", 2048), ("k3072", 3072))}
    table = {f"{name}._domainkey.interop.example": key.dns_record()
             for name, key in keys.items()}
    paths = {name: write_key(tmp, f"{name}.pem", key.pem()) for name, key in keys.items()}

    # Ours, each canonicalization and key size, validates in dkimpy.
    for canon, name in (("relaxed/relaxed", "k1024"), ("relaxed/simple", "k2048"),
                        ("simple/relaxed", "k3072"), ("simple/simple", "k2048")):
        returncode, added, output, stderr = seal(
            MESSAGE, tmp, table, f"interop.example:{name}:{paths[name]}",
            "--arc-authserv-id", "lists.interop.example", "-c", canon)
        oracle, reason = oracles.DKIMPY.arc_verify(output, table)
        ours = check(output, tmp, table)
        tap.ok(returncode == 0 and oracle == "pass" and ours.arc_cv == "pass",
               f"interop: our i=1 seal (AMS c={canon}, RSA {name[1:]}) validates in dkimpy "
               "and here", f"exit {returncode} {stderr}\ndkimpy: {oracle} {reason}\n"
               f"ours: {ours.arc}")

    # A chain that alternates: dkimpy i=1, ours i=2, dkimpy i=3, ours i=4.
    message = MESSAGE
    for hop in range(1, 5):
        authserv_id = f"hop{hop}.interop.example"
        message = add_hop_results(message, authserv_id, "none" if hop == 1 else "pass")
        if hop % 2:
            message = oracles.DKIMPY.arc_sign(message, "interop.example", "k2048",
                                              keys["k2048"], authserv_id,
                                              headers=["from", "to", "subject", "date"])
            sealer = "dkimpy"
        else:
            _, _, message, stderr = seal(message, tmp, table,
                                         f"interop.example:k1024:{paths['k1024']}",
                                         "--arc-authserv-id", authserv_id)
            sealer = "dkim-sign"
        oracle, reason = oracles.DKIMPY.arc_verify(message, table)
        ours = check(message, tmp, table)
        tap.ok(oracle == "pass" and ours.arc_cv == "pass" and f"sets={hop}" in ours.arc,
               f"interop: alternating chain, i={hop} sealed by {sealer}, validates in both",
               f"dkimpy: {oracle} {reason}\nours: {ours.arc}")

    # A list footer breaks the newest AMS: both say fail; a new hop seals cv=fail.
    broken = message + b"--\r\nlist footer\r\n"
    oracle, reason = oracles.DKIMPY.arc_verify(broken, table)
    ours = check(broken, tmp, table)
    tap.ok(oracle == "fail" and ours.arc_cv == "fail" and "body-hash-mismatch" in ours.arc,
           "interop: a body changed after the newest seal fails in both",
           f"dkimpy: {oracle} {reason}\nours: {ours.arc}")
    returncode, added, resealed, _ = seal(add_hop_results(broken, "hop5.interop.example",
                                                          "fail"),
                                          tmp, table, f"interop.example:k1024:{paths['k1024']}",
                                          "--arc-authserv-id", "hop5.interop.example")
    oracle, reason = oracles.DKIMPY.arc_verify(resealed, table)
    ours = check(resealed, tmp, table)
    tap.ok(returncode == 0 and "cv=fail" in added.get("ARC-Seal", "") and oracle is None and
           ours.arc_cv == "fail" and "arc-chain-failed" in ours.arc,
           "interop: sealing a failed chain says cv=fail; then both see a terminated chain",
           f"{added.get('ARC-Seal')}\ndkimpy: {oracle} {reason}\nours: {ours.arc}")
    returncode, added, _, stderr = seal(resealed, tmp, table,
                                        f"interop.example:k1024:{paths['k1024']}",
                                        "--arc-authserv-id", "hop5.interop.example")
    tap.ok(returncode == 0 and not added and "no ARC set added" in stderr,
           "sealing: a chain whose newest seal says cv=fail gets no new set (RFC 8617 5.1)",
           f"exit {returncode} {added} {stderr}")


def tools_behaviour(tmp):
    key = oracles.SigningKey.generate("rsa-sha256", 1024)
    table = {"s._domainkey.behave.example": key.dns_record()}
    path = write_key(tmp, "behave.pem", key.pem())
    spec = f"behave.example:s:{path}"

    # DKIM and ARC in one pass: both verify, and the A-R field says both.
    table_path = os.path.join(tmp, "behave.txt")
    dnstable.write(table, table_path)
    proc = procutil.run([tool("dkim-sign"), "-d", "behave.example", "-s", "s", "-k", path,
                         "--arc-seal", spec, "--arc-authres",
                         "mx.behave.example; spf=pass smtp.mailfrom=a.example",
                         "--dns-table", table_path], "dkim-sign", input_bytes=MESSAGE,
                        check=False)
    got = check(proc.stdout, tmp, table)
    aar = re.search(rb"ARC-Authentication-Results:(.*?)\r\n(?![ \t])", proc.stdout, re.S)
    tap.ok(proc.returncode == 0 and got.verdict == "pass" and got.arc_cv == "pass" and
           "arc=pass header.oldest-pass=0" in got.authres and aar is not None and
           tag_set(aar[1].decode()) == {"i=1", "mx.behave.example", "arc=none",
                                        "spf=passsmtp.mailfrom=a.example"},
           "dkim-sign -d/-s/-k with --arc-seal --arc-authres: DKIM pass, ARC pass, the given "
           "results with arc=none in the AAR",
           f"{proc.stderr.decode()}\n{got.authres}\n{aar[1] if aar else None}")
    oracle, reason = oracles.DKIMPY.arc_verify(proc.stdout, table)
    dkim_results = [r.result for r in oracles.DKIMPY.verify(proc.stdout, table)]
    tap.eq((oracle, dkim_results), ("pass", ["pass"]),
           f"dkimpy validates both the ARC set and the DKIM signature ({reason})")

    # Mail without ARC sets: no arc: line and no arc= in the A-R field; nor with --no-arc.
    got = check(MESSAGE, tmp, table)
    tap.ok(got.arc == "" and "arc=" not in got.authres,
           "no ARC sets: no arc: line, and no arc= entry in Authentication-Results",
           f"{got.arc}\n{got.authres}")
    _, _, sealed, _ = seal(MESSAGE, tmp, table, spec, "--arc-authserv-id",
                           "lists.interop.example")
    got = check(sealed, tmp, table, "--no-arc")
    tap.ok(got.arc == "" and "arc=" not in got.authres,
           "--no-arc: an ARC set is not validated", f"{got.arc}\n{got.authres}")

    # A failing chain says why, sanitized, in the A-R field.
    got = check(sealed.replace(b"Is dinner", b"Is lunch"), tmp, table)
    tap.ok(got.arc_cv == "fail" and 'arc=fail reason="ARC-Message-Signature i=1: signature '
           'mismatch' in got.authres.replace("\n\t", " "),
           "a changed signed header: arc=fail with the reason in Authentication-Results",
           got.authres)

    # DNS trouble: validation fails with a temporary reason; sealing waits (exit 75).
    timeout_table = {"s._domainkey.behave.example": dnstable.TIMEOUT}
    got = check(sealed, tmp, timeout_table)
    tap.ok(got.arc_cv == "fail" and "dns-timeout" in got.arc,
           "a DNS timeout on the seal's key: fail with reason dns-timeout", got.arc)
    returncode, added, _, stderr = seal(sealed, tmp, timeout_table, spec, "--arc-authres",
                                        "hop2.example; spf=pass smtp.mailfrom=a.example")
    tap.ok(returncode == 75 and not added and "try again later" in stderr,
           "dkim-sign --arc-seal: a DNS timeout validating the chain exits 75 (no cv=fail seal)",
           f"exit {returncode} {stderr}")
    # The hop recorded the chain's status on arrival: that is what the seal
    # carries, whatever DNS says now.
    returncode, added, _, stderr = seal(add_hop_results(sealed, "hop2.example", "pass"), tmp,
                                        timeout_table, spec, "--arc-authserv-id",
                                        "hop2.example")
    tap.ok(returncode == 0 and "cv=pass" in added.get("ARC-Seal", "").replace(" ", ""),
           "dkim-sign --arc-seal: a recorded arc=pass is sealed without validating again",
           f"exit {returncode} {added} {stderr}")

    # A list records arc=pass on arrival, then tags the Subject and adds a
    # footer, then seals: the chain must hold (RFC 8617 5.1), here and in
    # dkimpy, though the arriving AMS no longer matches the edited message.
    edited = add_hop_results(sealed, "hop2.example", "pass")
    edited = edited.replace(b"Subject: ", b"Subject: [list] ", 1) + b"--\r\nlist footer\r\n"
    returncode, added, output, stderr = seal(edited, tmp, table, spec, "--arc-authserv-id",
                                             "hop2.example")
    got = check(output, tmp, table)
    tap.ok(returncode == 0 and got.arc_cv == "pass" and "oldest-pass=2" in got.arc,
           "a list that edits after recording arc=pass extends the chain", f"{got.arc}\n{stderr}")
    tap.eq(oracles.DKIMPY.arc_verify(output, table)[0], "pass",
           "dkimpy agrees the edited, re-sealed chain passes")

    # Refusals.
    refusals = [
        (["--arc-seal", spec], "needs either --arc-authres or --arc-authserv-id", 64),
        (["--arc-seal", spec, "--arc-authserv-id", "x.example", "--headers",
          "from:arc-seal"], "cannot be signed by the ARC-Message-Signature", 64),
        (["--arc-seal", spec, "--arc-authserv-id", "absent.example"],
         "no Authentication-Results field of absent.example", 1),
        (["-d", "behave.example", "-s", "s", "-k", path, "--arc-authserv-id", "x.example"],
         "go with --arc-seal", 64),
    ]
    for args, text, code in refusals:
        proc = procutil.run([tool("dkim-sign"), "--dns-table", table_path, *args]
                            if "--arc-seal" in args else [tool("dkim-sign"), *args],
                            "dkim-sign", input_bytes=MESSAGE, check=False)
        tap.ok(proc.returncode == code and text in proc.stderr.decode(),
               f"dkim-sign refuses: {text}", f"exit {proc.returncode} {proc.stderr.decode()}")
    ed_key = oracles.SigningKey.generate("ed25519-sha256")
    ed_path = write_key(tmp, "ed.pem", ed_key.pem())
    proc = procutil.run([tool("dkim-sign"), "--arc-seal", f"behave.example:ed:{ed_path}",
                         "--arc-authserv-id", "x.example", "--dns-table", table_path],
                        "dkim-sign", input_bytes=MESSAGE, check=False)
    tap.ok(proc.returncode == 64 and "need an RSA key" in proc.stderr.decode(),
           "dkim-sign refuses to seal with an Ed25519 key", proc.stderr.decode())


# -- a recorded arc= result against the arriving chain ------------------------------------------

REPORTED = (b"ARC-Message-Signature: i=1; a=rsa-sha256; c=relaxed/relaxed; d=lists.example.org;"
            b" s=s1; h=from; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; b=AAAA\r\n"
            b"From: a@example.com\r\n"
            b"Subject: x\r\n"
            b"\r\n"
            b"hi\r\n")
"""The reproducer of the security report: set 1 is an AMS alone. Sealed over a recorded
arc=pass, the older sets were hashed with a missing field's index, -1 (a read before a heap
block, cv=pass over a broken chain)."""


def aar_arc(added):
    """The arc= results of the added ARC-Authentication-Results."""
    return re.findall(r"arc=(\w+)", added.get("ARC-Authentication-Results", ""))


def sealed_as(message, tmp, table, spec, recorded, path):
    """Seals with this hop's results carrying `recorded` (an arc= result, or None), given
    with --arc-authres (`path` "authres") or as an Authentication-Results field of the
    message (`path` "authserv-id"): (returncode, added fields, output, stderr)."""
    results = "lists.example.org; spf=pass smtp.mailfrom=a.example" + (
        f"; arc={recorded}" if recorded else "")
    if path == "authres":
        return seal(message, tmp, table, spec, "--arc-authres", results)
    field = f"Authentication-Results: {results}\r\n".encode()
    return seal(field + message, tmp, table, spec, "--arc-authserv-id", "lists.example.org")


def clean_exit(returncode, stderr):
    """Exit status 0 and no sanitizer report (the ASan stage runs the same tests)."""
    return returncode == 0 and "runtime error" not in stderr and "Sanitizer" not in stderr


def recorded_results(tmp):
    key = oracles.SigningKey.generate("rsa-sha256", 1024)
    table = {"s1._domainkey.lists.example.org": key.dns_record()}
    spec = f"lists.example.org:s1:{write_key(tmp, 'lists.pem', key.pem())}"

    # The report: a broken chain is sealed cv=fail whatever was recorded, both ways of
    # giving the results; the AAR says so too; then the chain has ended.
    for path in ("authres", "authserv-id"):
        returncode, added, output, stderr = sealed_as(REPORTED, tmp, table, spec, "pass", path)
        seal_tags = tag_set(added.get("ARC-Seal", ""))
        got = check(output, tmp, table)
        tap.ok(clean_exit(returncode, stderr) and {"cv=fail", "i=2"} <= seal_tags and
               aar_arc(added) == ["fail"] and got.arc_cv == "fail" and
               "arc-chain-failed" in got.arc,
               f"sealing with --arc-{path} over a broken chain (an AMS alone), arc=pass "
               "recorded: exit 0, cv=fail, arc=fail in the AAR, the chain has ended",
               f"exit {returncode} {stderr}\n{added}\n{got.arc}")
    ended = output

    # Every other way the record can disagree with the chain.
    _, _, chain, _ = seal(MESSAGE, tmp, table, spec, "--arc-authres",
                          "lists.example.org; arc=none")
    edited = chain + b"--\r\nfooter added after the seal\r\n"
    cases = [
        ("arc=pass without ARC sets", MESSAGE, "pass", "none", 1),
        ("arc=fail without ARC sets", MESSAGE, "fail", "fail", 1),
        ("arc=none over a valid chain (validated now)", chain, "none", "pass", 2),
        ("arc=none over a chain broken since (validated now)", edited, "none", "fail", 2),
        ("no arc= result over a valid chain (validated now)", chain, None, "pass", 2),
        ("arc=pass over a sound chain broken since (the list's edit)", edited, "pass",
         "pass", 2),
        ("arc=fail over a valid chain", chain, "fail", "fail", 2),
    ]
    for label, message, recorded, cv, instance in cases:
        for path in ("authres", "authserv-id"):
            returncode, added, output, stderr = sealed_as(message, tmp, table, spec, recorded,
                                                          path)
            got = check(output, tmp, table)
            tap.ok(clean_exit(returncode, stderr) and
                   {f"cv={cv}", f"i={instance}"} <= tag_set(added.get("ARC-Seal", "")) and
                   aar_arc(added) == [cv] and
                   got.arc_cv == ("pass" if cv != "fail" else "fail"),
                   f"sealing with --arc-{path}, {label}: cv={cv}, arc={cv} in the AAR",
                   f"exit {returncode} {stderr}\n{added}\n{got.arc}")

    # A chain that ended gets no set, even over a recorded pass.
    returncode, added, _, stderr = sealed_as(ended, tmp, table, spec, "pass", "authres")
    tap.ok(clean_exit(returncode, stderr) and not added and "no ARC set added" in stderr,
           "sealing over a chain whose newest seal says cv=fail, arc=pass recorded: no new set",
           f"exit {returncode} {added} {stderr}")


# -- what a long or forged chain costs ---------------------------------------------------------

FAN_DOMAIN = f"fan.{nsd.INSECURE_ZONE}"
FAN_SETS = 50


def key_name(selector):
    return f"{selector}._domainkey.{FAN_DOMAIN}"


def forged_chain(body_hash, sets):
    """`sets` sets in good order, each AMS and seal naming a key of its own; no signature
    verifies."""
    fields = []
    for i in range(sets, 0, -1):
        cv = "none" if i == 1 else "pass"
        fields += [f"ARC-Seal: i={i}; a=rsa-sha256; cv={cv}; d={FAN_DOMAIN}; s=as{i}; b=AAAA",
                   f"ARC-Message-Signature: i={i}; a=rsa-sha256; c=relaxed/relaxed; "
                   f"d={FAN_DOMAIN}; s=ams{i}; h=from; bh={body_hash}; b=AAAA",
                   f"ARC-Authentication-Results: i={i}; mx{i}.example; arc=pass"]
    return "".join(field + "\r\n" for field in fields).encode() + MESSAGE


def fan_out(tmp):
    """A sender picks the names of the ARC keys: they are looked up newest set first, and
    only while the chain verifies (dkim.h, DKIM_ARC_MAX_AMS_CHECKS)."""
    key = oracles.SigningKey.generate("rsa-sha256", 1024)
    other = oracles.SigningKey.generate("rsa-sha256", 1024)
    path = write_key(tmp, "fan.pem", key.pem())
    records = {key_name(f"{kind}{i}"): key.dns_record()
               for kind in ("as", "ams", "s") for i in range(1, FAN_SETS + 1)}

    # A real chain of 50 sets, each sealed under a selector of its own (recorded arc=
    # results, so that sealing does not validate each time).
    chain = MESSAGE
    for i in range(1, FAN_SETS + 1):
        returncode, _, chain, stderr = seal(
            chain, tmp, {}, f"{FAN_DOMAIN}:s{i}:{path}", "--arc-authres",
            f"hop{i}.example; arc={'none' if i == 1 else 'pass'}")
        if returncode != 0:
            raise RuntimeError(f"sealing set {i}: {stderr}")
    body_hash = re.search(rb"bh=([^;]*);", chain)[1].decode()
    newest = {key_name(f"ams{FAN_SETS}"), key_name(f"as{FAN_SETS}")}

    with nsd.NsdServer(records) as dns, dnsquerylog.QueryLog(dns.port) as log:
        got = verify(forged_chain(body_hash, FAN_SETS), "--resolver", log.address)
        tap.ok(got.arc_cv == "fail" and f"ARC-Message-Signature i={FAN_SETS}" in got.arc and
               log.names() == newest,
               "a forged chain of 50 sets: fails on the newest AMS, with only the newest set's "
               "two keys looked up (of 100 named)",
               f"{got.arc}\nlooked up {len(log.names())}: {sorted(log.names())[:10]}")

        # A sealer may add a set to 49 (50 is the most there can be).
        log.clear()
        returncode, added, _, stderr = seal(
            b"Authentication-Results: lists.example.org; spf=pass\r\n" +
            forged_chain(body_hash, FAN_SETS - 1), tmp, None, f"{FAN_DOMAIN}:s1:{path}",
            "--arc-authserv-id", "lists.example.org", "--resolver", log.address)
        newest = {key_name(f"ams{FAN_SETS - 1}"), key_name(f"as{FAN_SETS - 1}")}
        tap.ok(clean_exit(returncode, stderr) and
               "cv=fail" in tag_set(added.get("ARC-Seal", "")) and log.names() == newest,
               "sealing over a forged chain of 49 sets (nothing recorded): cv=fail, with only "
               "the newest set's two keys looked up",
               f"exit {returncode} {stderr}\nlooked up: {sorted(log.names())[:10]}")

        log.clear()
        got = verify(chain, "--resolver", log.address)
        every_seal = {key_name(f"s{i}") for i in range(1, FAN_SETS + 1)}
        oldest = FAN_SETS - 4
        tap.ok(got.arc_cv == "pass" and f"sets={FAN_SETS} oldest-pass={oldest}" in got.arc and
               log.names() == every_seal,
               f"a real chain of 50 sets passes: every seal's key looked up once, and of "
               f"the AMSs only the newest 5 checked (oldest-pass={oldest})",
               f"{got.arc}\nlooked up {len(log.names())} of {len(every_seal)}")

        broken = 30
        dns.restart({**records, key_name(f"s{broken}"): other.dns_record()})
        log.clear()
        got = verify(chain, "--resolver", log.address)
        tap.ok(got.arc_cv == "fail" and f"ARC-Seal i={broken}:" in got.arc and
               log.names() == {key_name(f"s{i}") for i in range(broken, FAN_SETS + 1)},
               f"a real chain whose seal {broken} has the wrong key: fails there, the keys of "
               f"the older seals never looked up",
               f"{got.arc}\nlooked up: {sorted(log.names())}")


def hostile(tmp):
    """Bounded work whatever the ARC fields: RFC 8617's cap of 50 sets."""
    key = oracles.SigningKey.generate("rsa-sha256", 1024)
    table = {"s._domainkey.hostile.example": key.dns_record()}
    path = write_key(tmp, "hostile.pem", key.pem())
    _, added, _, _ = seal(MESSAGE, tmp, table, f"hostile.example:s:{path}",
                          "--arc-authserv-id", "lists.interop.example")
    body_hash = re.search(r"bh=([^;]*);", added["ARC-Message-Signature"])[1].encode()
    cases = []
    body = MESSAGE.split(b"\r\n\r\n", 1)
    many = b"".join(f"ARC-Authentication-Results: i={i}; x.example; none\r\n".encode()
                    for i in range(1, 52))
    cases.append(("51 ARC sets' worth of AARs", many, "arc-structure"))
    seals = b"ARC-Seal: i=1; a=rsa-sha256; cv=none; d=hostile.example; s=s; b=AAAA\r\n" * 1000
    cases.append(("1000 ARC-Seal fields", seals, "arc-structure"))
    out_of_range = b"ARC-Seal: i=51; a=rsa-sha256; cv=pass; d=hostile.example; s=s; b=AAAA\r\n"
    cases.append(("an instance above 50", out_of_range, "arc-structure"))
    h_list = ":".join(["x"] * 100000).encode()
    huge = (b"ARC-Authentication-Results: i=1; x.example; none\r\n"
            b"ARC-Message-Signature: i=1; a=rsa-sha256; d=hostile.example; s=s; bh="
            + body_hash + b"; h=" + h_list + b"; b=AAAA\r\n"
            b"ARC-Seal: i=1; a=rsa-sha256; cv=none; d=hostile.example; s=s; b=AAAA\r\n")
    cases.append(("an AMS with 100,000 h= entries", huge, "too-many-signed-headers"))
    for label, fields, reason in cases:
        start = time.monotonic()
        got = check(fields + body[0] + b"\r\n\r\n" + body[1], tmp, table)
        elapsed = time.monotonic() - start
        tap.ok(got.arc_cv == "fail" and reason in got.arc and elapsed < 10,
               f"hostile: {label} fails ({reason}) in bounded time",
               f"{got.arc} ({elapsed:.1f} s)\n{got.stderr}")


def main():
    with tempfile.TemporaryDirectory(prefix="dkim-arc-") as tmp:
        reason = shared.absent()
        for corpus_part in (validation, signing, stalwart, dkimpy_vectors):
            if reason:
                tap.skip(f"ARC corpus: {corpus_part.__name__}", reason)
            else:
                corpus_part(tmp)
        interop(tmp)
        tools_behaviour(tmp)
        recorded_results(tmp)
        fan_out(tmp)
        hostile(tmp)


tap.run(main)

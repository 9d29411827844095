"""Bad input (issue 2, "Bad input"): malformed, hostile and huge messages,
signatures and keys each give a defined result with a reason, within bounded
time and memory, through the real dkim-verify and dkim-sign.

Every case runs as its own process, so that its time and its peak memory
(ru_maxrss from wait4) are its own.  The bounds are generous enough for a
busy 2-core machine under ASan; what they catch is cost that grows with the
input (a 50 MB body, 100,000 h= entries, 10,000 fields), which would exceed
them many times over.  Every Authentication-Results field printed is also
checked for characters that could end it or inject another field.

The header flood (security issue, bug 3) has a tighter bound, in CPU time so that a loaded
machine does not matter: field names and h= entries chosen to collide in the old unkeyed
name index took 4.5 and 14 seconds of CPU before the fix, FLOOD_CPU_LIMIT is 3."""
import os
import pwd
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

import headerflood
import oracles
import tap
from dkimtools import parse_verify_output, tool

DOMAIN = "example.com"
NOW = 1700000000
# Wall-clock bound for one tool run.
TIME_LIMIT = 60
# CPU seconds a header flood may take: measured at 0.01 s natively and 0.05 s with ASan,
# against 4.5 and 14 s natively before the fix.
FLOOD_CPU_LIMIT = 3
# Memory a case may use beyond what verifying a small message takes.
EXTRA_RSS_MB = 32
# How much more memory a 50 MB body may take than a 1 MB one.
STREAMING_RSS_MB = 8
BASE = (b"From: Alice <alice@example.com>\r\nTo: bob@example.net\r\n"
        b"Subject: bad input\r\nDate: Tue, 14 Nov 2023 22:13:20 +0000\r\n"
        b"Message-ID: <bad-input@example.com>\r\n\r\nHello.\r\n")


@dataclass
class Run:
    returncode: int
    stdout: bytes
    stderr: str
    seconds: float
    rss_mb: float
    cpu_seconds: float


# Runs argv[2:] and writes its peak RSS (KiB) and CPU seconds to argv[1].  A
# tool started straight from this Python process would report Python's peak
# as its own, since Linux carries the peak RSS across exec; a small helper
# that forks the tool itself sees the tool's own.
_MEASURE = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as f:
    f.write(f"{usage.ru_maxrss} {usage.ru_utime + usage.ru_stime}")
sys.exit(os.waitstatus_to_exitcode(status) % 256)
"""


def run(argv):
    """Runs a tool to completion (killed after TIME_LIMIT) and measures it."""
    with open(os.devnull, "rb") as stdin, tempfile.TemporaryFile() as out, \
            tempfile.TemporaryFile() as err, tempfile.NamedTemporaryFile("r") as rss:
        start = time.monotonic()
        proc = subprocess.Popen([sys.executable, "-c", _MEASURE, rss.name, *argv],
                                stdin=stdin, stdout=out, stderr=err, start_new_session=True)
        try:
            returncode = proc.wait(timeout=TIME_LIMIT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            returncode = proc.wait()
        seconds = time.monotonic() - start
        out.seek(0)
        err.seek(0)
        rss_kib, cpu_seconds = rss.read().split() or ["0", "0"]
        return Run(returncode, out.read(), err.read().decode(errors="replace"), seconds,
                   int(rss_kib) / 1024, float(cpu_seconds))


class Setup:
    """Keys, DNS table and temporary files shared by the cases."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.key = oracles.SigningKey.generate("rsa-sha256")
        self.key_file = self.write("sel.private", self.key.pem(), 0o600)
        good_p = self.key.dns_record().split("p=")[1]
        records = {
            "sel": self.key.dns_record(),
            "garbage": "v=DKIM1; k=rsa; p=!!not*base64!!",
            "notder": "v=DKIM1; k=rsa; p=" + "QUFB" * 64,
            "truncated": "v=DKIM1; k=rsa; p=" + good_p[:len(good_p) // 2 // 4 * 4],
        }
        self.table = self.write("dns.txt", "".join(
            f"{selector}._domainkey.{DOMAIN} {value}\n"
            for selector, value in records.items()).encode())
        self.baseline_mb = None

    def write(self, name, data, mode=0o644):
        path = os.path.join(self.tmp, name)
        with open(path, "wb") as f:
            f.write(data)
        os.chmod(path, mode)
        return path

    def sign(self, message, *args, selector="sel"):
        """Our dkim-sign's output; a signing failure stops the test."""
        path = self.write("to-sign.eml", message)
        done = run([tool("dkim-sign"), "-d", DOMAIN, "-s", selector, "-k", self.key_file,
                    "--now", str(NOW), *args, path])
        if done.returncode != 0:
            raise RuntimeError(f"dkim-sign failed: {done.stderr}")
        return done.stdout

    def verify(self, message):
        path = self.write("to-verify.eml", message)
        done = run([tool("dkim-verify"), "-v", "--authserv-id", "mx.test.example",
                    "--dns-table", self.table, "--now", str(NOW + 10), path])
        return done, parse_verify_output(done.returncode, done.stdout.decode(errors="replace"),
                                         done.stderr)


# What dkim-verify -v prints: the Authentication-Results field (a first line
# and TAB-led continuation lines), a line per signature, the ARC chain, the
# author domain, the verdict.  Text from a message that broke out of its
# place would not fit.
_VERIFY_OUTPUT = re.compile(rb"Authentication-Results: [\x20-\x7e]+\n(?:\t[\x20-\x7e]+\n)*"
                            rb"(?:signature [0-9]+: [\x20-\x7e]+\n)*(?:skipped: [\x20-\x7e]+\n)?"
                            rb"(?:arc: [\x20-\x7e]+\n)?from: (?:[a-z0-9._-]+|none \([a-zA-Z ]+\))\n"
                            rb"verdict: [a-z]+\n")


def check_bounded(setup, label, done, cpu_limit=None):
    tap.diag(f"{label}: {done.seconds:.2f}s, {done.cpu_seconds:.2f}s CPU, "
             f"{done.rss_mb:.1f} MB")
    tap.ok(done.seconds < TIME_LIMIT and done.rss_mb <= setup.baseline_mb + EXTRA_RSS_MB
           and (cpu_limit is None or done.cpu_seconds < cpu_limit),
           f"{label}: bounded time and memory",
           f"{done.seconds:.1f}s (limit {TIME_LIMIT}), {done.cpu_seconds:.2f}s CPU "
           f"(limit {cpu_limit}), {done.rss_mb:.0f} MB "
           f"(limit {setup.baseline_mb:.0f} + {EXTRA_RSS_MB})")


def expect(setup, label, message, verdict, results, reasons=None, skipped=0, arc="none",
           cpu_limit=None):
    """Verifies `message`: the verdict, each signature's result and reason, the
    exit code that goes with the verdict, the ARC chain status, a clean output, the
    bounds (CPU time too, with `cpu_limit`)."""
    done, got = setup.verify(message)
    detail = (f"exit {done.returncode}, verdict {got.verdict}\n"
              + "\n".join(f"{s.result} {s.reason}: {s.explanation}" for s in got.signatures)
              + f"\n{done.stderr}")
    exit_code = {"pass": 0, "temperror": 75}.get(verdict, 1)
    tap.ok(got.verdict == verdict and got.results() == results
           and done.returncode == exit_code, f"{label}: {verdict} {' '.join(results)}", detail)
    if reasons is not None:
        tap.eq([s.reason for s in got.signatures], reasons, f"{label}: reasons")
    tap.eq(got.arc_cv, arc, f"{label}: ARC chain {arc}")
    tap.ok(all(s.explanation for s in got.signatures if s.result != "pass"),
           f"{label}: every failure is explained", detail)
    tap.ok(_VERIFY_OUTPUT.fullmatch(done.stdout), f"{label}: clean output, nothing injected",
           done.stdout[:2000])
    tap.ok(f"skipped: {skipped} " in done.stdout.decode(errors="replace") if skipped
           else b"skipped:" not in done.stdout, f"{label}: {skipped} signatures skipped",
           detail)
    check_bounded(setup, label, done)


def replace_tag(signed, tag, value):
    """The signed message with a tag value of its first DKIM-Signature replaced (the
    value ends at ';' or where the field ends)."""
    return re.sub(rb"(DKIM-Signature:.*?[ ;\t\n]" + tag + rb"=)(?:[^;\r]|\r\n[ \t])*",
                  lambda m: m[1] + value, signed, count=1, flags=re.S)


def signature_field(signed):
    return re.match(rb"DKIM-Signature:.*?\r\n(?![ \t])", signed, re.S)[0]


def message_cases(setup):
    signed = setup.sign(BASE)
    done, got = setup.verify(signed)
    setup.baseline_mb = done.rss_mb
    tap.ok(got.verdict == "pass", "control: a well-formed signed message passes",
           f"{got.signatures}\n{done.stderr}")

    # No header/body separator: what there is is header; the body is empty.
    headers_only = BASE.split(b"\r\n\r\n")[0]
    expect(setup, "headers without separator or final line break",
           setup.sign(headers_only), "pass", ["pass"])
    expect(setup, "text without a single line break", b"no header, no separator, no line " * 100,
           "none", [])

    expect(setup, "NUL bytes in the body", setup.sign(BASE + b"a\0b\0\0c\r\n" * 100),
           "pass", ["pass"])
    expect(setup, "NUL byte in a signed header field",
           setup.sign(BASE.replace(b"Subject: bad", b"Subject: b\0ad")), "pass", ["pass"])

    expect(setup, "a signed 1 MB header line",
           setup.sign(b"X-Long: " + b"a" * (1 << 20) + b"\r\n" + BASE,
                      "--headers", "From:X-Long"), "pass", ["pass"])
    expect(setup, "a 5 MB header line (over the 4 MiB header cap)",
           signed.replace(b"\r\n\r\n", b"\r\nX-Huge: " + b"b" * (5 << 20) + b"\r\n\r\n", 1),
           "permerror", ["permerror"], ["header-too-large"])

    # h= lists each Received, and From twice (oversigned): at its cap of 1,000 entries with
    # 998 Received fields.
    received = b"".join(b"Received: from relay%d.example.net\r\n" % i for i in range(10000))
    at_cap = received[:received.index(b"Received: from relay998.")]
    expect(setup, "998 Received fields, all signed (h= at its cap of 1,000)",
           setup.sign(at_cap + BASE, "--headers", "From:Received"), "pass", ["pass"])
    expect_sign_refused(setup, "10,000 Received fields, all to be signed", setup.key_file,
                        "h= would list 10002 header fields", message=received + BASE,
                        args=("--headers", "From:Received"))

    broken = (b"DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=sel; h=from; "
              b"bh=!!; b=!!\r\n")
    expect(setup, "999 broken DKIM-Signature fields above a good one", broken * 999 + signed,
           "permerror", ["permerror"] * 5, ["signature-syntax"] * 5, skipped=995)
    expect(setup, "1,000 copies of a good DKIM-Signature field",
           signature_field(signed) * 999 + signed, "pass", ["pass"] * 5, skipped=995)

    b_value = re.search(rb"[ ;\t\n]b=([^;]*)", signature_field(signed))[1]
    b_clean = re.sub(rb"\s", b"", b_value)
    for label, value, result, reason in [
            ("NUL byte inside b=", b"\0" + b_clean, "permerror", "signature-syntax"),
            ("truncated b= (not base64)", b_clean[:-3], "permerror", "signature-syntax"),
            ("garbage b=", b"@@@@%%%%", "permerror", "signature-syntax"),
            ("b= three bytes short (valid base64)", b_clean[:-4], "fail",
             "signature-mismatch"),
            ("a 1 MB b=", b"AAAA" * (1 << 18), "fail", "signature-mismatch")]:
        expect(setup, label, replace_tag(signed, rb"b", value), result, [result], [reason])
    expect(setup, "truncated bh=", replace_tag(signed, rb"bh", b"2jUSOH9NhtVGCQWN"),
           "permerror", ["permerror"], ["signature-syntax"])

    for label, length in [("l= beyond 64 bits", b"9" * 40),
                          ("l= of 2^64 - 1", b"18446744073709551615")]:
        expect(setup, label, signed.replace(b"v=1;", b"v=1; l=" + length + b";", 1),
               "permerror", ["permerror"], ["body-length"])

    hundred_k = oracles.DKIMPY.sign(BASE, DOMAIN, "sel", setup.key, headers=["From"] * 100000,
                                    timestamp=NOW)
    expect(setup, "h= with 100,000 entries (signed so by dkimpy)", hundred_k, "permerror",
           ["permerror"], ["too-many-signed-headers"])
    expect(setup, "h= replaced by 100,000 entries",
           replace_tag(signed, rb"h", b":".join([b"from"] * 100000)),
           "permerror", ["permerror"], ["too-many-signed-headers"])

    for selector in ("garbage", "notder", "truncated"):
        expect(setup, f"key record with a {selector} p=", setup.sign(BASE, selector=selector),
               "permerror", ["permerror"], ["key-data"])

    arc_sets = b"".join(
        b"ARC-Seal: i=%d; a=rsa-sha256; cv=pass; d=example.com; s=sel; b=AAAA\r\n"
        b"ARC-Message-Signature: i=%d; a=rsa-sha256; d=example.com; s=sel; h=from; "
        b"bh=AAAA; b=AAAA\r\nARC-Authentication-Results: i=%d; mx.example.com; none\r\n"
        % (i, i, i) for i in range(1000, 0, -1))
    expect(setup, "1,000 ARC sets (RFC 8617 allows 50)", arc_sets + signed, "pass", ["pass"],
           arc="fail")

    expect(setup, "control characters in a tag value",
           signed.replace(b"c=relaxed/relaxed;",
                          b"c=relaxed\rX-Injected: yes\xff\r\n\t/x;", 1),
           "permerror", ["permerror"], ["unknown-canonicalization"])


# From fields that a reader (Sieve's address test, IMAP's ENVELOPE) takes for
# bank.example, and the reason they have no author domain (security review).
SPOOFED_FROM = [
    (b"alerts@bank.example@evil.example", "the From field is not valid address syntax"),
    (b"alerts@bank.example x@evil.example", "the From field is not valid address syntax"),
    (b"<a@bank.example,x@evil.example>", "the From field is not valid address syntax"),
    (b"<a@bank.example x@evil.example>", "the From field is not valid address syntax"),
    (b"a@bank.example\0 x@evil.example", "the From field is not valid address syntax"),
    (b"Bank <alerts@bank.example>\r\n x@evil.example", "the From field is not valid address syntax"),
    (b"alerts@bank.example, x@evil.example", "several mailboxes in the From field"),
    (b"Bank: alerts@bank.example;", "a group in the From field"),
]


def from_cases(setup):
    """The author domain (dkim-verify(1), AUTHOR DOMAIN): several From fields are policy
    whatever the signature; a From that readers may take for another author has none,
    which -v and the Authentication-Results field say; dkim-sign refuses to sign it."""
    signed = setup.sign(BASE)
    _, got = setup.verify(signed)
    tap.eq(got.author, "example.com", "an ordinary From: its author domain")

    added = b"From: Bank <alerts@bank.example>\r\n" + signed
    expect(setup, "a From added above the oversigned one", added, "policy", ["policy"],
           ["multiple-from"])
    _, got = setup.verify(added)
    tap.ok("2 From fields" in got.signatures[0].explanation
           and got.author == "none (several From fields)",
           "an added From: the reason is the ambiguous author, not the broken hash",
           f"{got.signatures}\n{got.author}")

    for value, why in SPOOFED_FROM:
        label = f"From: {value!r}"
        message = BASE.replace(b"Alice <alice@example.com>", value)
        spoofed = oracles.DKIMPY.sign(message, DOMAIN, "sel", setup.key, timestamp=NOW)
        expect(setup, f"{label}, signed by dkimpy", spoofed, "pass", ["pass"])
        _, got = setup.verify(spoofed)
        tap.ok(got.author == f"none ({why})"
               and f"(no author domain: {why})" in got.authres.replace("\n\t", " "),
               f"{label}: no author domain, and -v and the A-R say why",
               f"{got.author}\n{got.authres}")
        refused = run([tool("dkim-sign"), "-d", DOMAIN, "-s", "sel", "-k", setup.key_file,
                       setup.write("spoofed.eml", message)])
        tap.ok(refused.returncode == 1 and f"no author domain ({why})" in refused.stderr
               and refused.stdout == b"", f"{label}: dkim-sign refuses to sign",
               f"exit {refused.returncode}\nstderr: {refused.stderr}")


def flood_cases(setup):
    """Security issue, bug 3: field names, and h= entries, that all took one slot of the
    old unkeyed name index (tests/lib/headerflood.py).  All an attacker needs is a key of
    their own and a right bh=: the header hash is computed before b= is checked.  Past
    the caps on distinct names and h= entries the signature is a permerror; at the caps,
    the index gives the right fields.  Bounded in CPU time, not only wall time."""
    forged = replace_tag(setup.sign(BASE), rb"b", b"AAAA")
    names = headerflood.colliding_names(99990)
    absent = headerflood.colliding_names(100000, prefix=b"y")

    def flooded(message, count):
        return message.replace(b"\r\n\r\n", b"\r\n" + b"".join(
            name + b": x\r\n" for name in names[:count]) + b"\r\n", 1)

    expect(setup, "99,990 field names that collided in the old index",
           flooded(forged, len(names)), "permerror", ["permerror"], ["too-many-field-names"],
           cpu_limit=FLOOD_CPU_LIMIT)
    expect(setup, "the same, and an h= of 100,000 absent names like them",
           flooded(replace_tag(forged, rb"h", b"from:" + b":".join(absent)), len(names)),
           "permerror", ["permerror"], ["too-many-field-names"], cpu_limit=FLOOD_CPU_LIMIT)
    expect(setup, "an h= of 100,000 names that collided in the old index",
           replace_tag(forged, rb"h", b"from:" + b":".join(absent)),
           "permerror", ["permerror"], ["too-many-signed-headers"], cpu_limit=FLOOD_CPU_LIMIT)

    # BASE's five names and DKIM-Signature, and 994 colliding ones: 1,000 distinct names;
    # h= of From and 999 absent colliding names: 1,000 entries.  dkimpy lists them all.
    at_caps = oracles.DKIMPY.sign(flooded(BASE, 994), DOMAIN, "sel", setup.key,
                                  headers=["From"] + [name.decode() for name in absent[:999]],
                                  timestamp=NOW)
    expect(setup, "1,000 such names, and an h= of 1,000 (both limits reached)", at_caps,
           "pass", ["pass"], cpu_limit=FLOOD_CPU_LIMIT)
    expect(setup, "one name more than that", flooded(at_caps, 995),
           "permerror", ["permerror"], ["too-many-field-names"], cpu_limit=FLOOD_CPU_LIMIT)


def long_key_name_case(setup):
    """s= and d= within 253 octets each, but "<s>._domainkey.<d>" longer than any DNS name:
    no key can exist there, a permanent error, which a sender must not be able to turn
    into temperror (it outranks fail in the verdict).  Looked up through libunbound, as
    the DNS table has no length limit; the forwarder is never asked."""
    labels = ".".join(["a" * 60] * 3)
    message = setup.write("long-name.eml", (
        f"From: a@example.com\r\nDKIM-Signature: v=1; a=rsa-sha256; d={labels}.example.com; "
        f"s={labels}.a; h=from; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; b=AAAA\r\n"
        "\r\nbody\r\n").encode())
    done = run([tool("dkim-verify"), "-v", "--authserv-id", "mx.test.example",
                "--resolver", "127.0.0.1@9", "--dns-timeout", "5", message])
    got = parse_verify_output(done.returncode, done.stdout.decode(errors="replace"))
    tap.ok([(s.result, s.reason) for s in got.signatures] == [("permerror", "signature-syntax")],
           "a key name longer than DNS allows: permerror",
           "\n".join(f"{s.result} {s.reason}: {s.explanation}" for s in got.signatures))


def streaming_case(setup):
    """Memory stays flat whatever the body size: a 50 MB body takes no more
    than a 1 MB one, give or take STREAMING_RSS_MB."""
    line = b"Streaming body line with  trailing  spaces \t \r\n"
    peaks = {}
    for megabytes in (1, 50):
        body = line * (megabytes * (1 << 20) // len(line))
        done, got = setup.verify(setup.sign(BASE + body))
        peaks[megabytes] = done.rss_mb
        tap.ok(got.verdict == "pass", f"{megabytes} MB body passes", got.signatures)
        check_bounded(setup, f"{megabytes} MB body", done)
    tap.ok(peaks[50] <= peaks[1] + STREAMING_RSS_MB,
           "memory stays flat from a 1 MB to a 50 MB body",
           f"1 MB: {peaks[1]:.1f} MB, 50 MB: {peaks[50]:.1f} MB")


# Root reads any file: without these capabilities it meets permissions as others do.
WITHOUT_DAC_OVERRIDE = ["/usr/bin/setpriv", "--inh-caps=-dac_override,-dac_read_search",
                        "--bounding-set=-dac_override,-dac_read_search"]


def expect_sign_refused(setup, label, key_file, error, wrapper=(), message=BASE, args=()):
    """dkim-sign (started through `wrapper`) fails with a clear message and prints no
    (unsigned) message."""
    path = setup.write("refused.eml", message)
    done = run([*wrapper, tool("dkim-sign"), "-d", DOMAIN, "-s", "sel", "-k", key_file,
                *args, path])
    tap.ok(done.returncode == 1 and error in done.stderr and done.stdout == b"",
           f"{label}: refused with '{error}'",
           f"exit {done.returncode}\nstderr: {done.stderr}\nstdout: {done.stdout[:200]!r}")
    check_bounded(setup, label, done)


def key_file_cases(setup):
    expect_sign_refused(setup, "missing key file", os.path.join(setup.tmp, "absent.private"),
                        "cannot open key file")
    expect_sign_refused(setup, "key file is a directory", setup.tmp, "not a regular file")
    expect_sign_refused(setup, "unreadable key file",
                        setup.write("unreadable.private", setup.key.pem(), 0),
                        "Permission denied",
                        WITHOUT_DAC_OVERRIDE if os.geteuid() == 0 else ())

    for label, data in [
            ("garbage key file", b"this is not a key\n"),
            ("PEM armour around garbage",
             b"-----BEGIN PRIVATE KEY-----\nAAAAgarbage\n-----END PRIVATE KEY-----\n"),
            ("truncated PEM key", setup.key.pem()[:300])]:
        expect_sign_refused(setup, label, setup.write("bad.private", data, 0o600),
                            "not a PEM private key")
    small = oracles.SigningKey.generate("rsa-sha256", bits=512)
    expect_sign_refused(setup, "512-bit RSA key",
                        setup.write("small.private", small.pem(), 0o600), "RSA key has 512 bits")

    for mode in (0o640, 0o604, 0o660):
        unsafe = setup.write("unsafe.private", setup.key.pem(), mode)
        expect_sign_refused(setup, f"key file mode {mode:04o}", unsafe, "chmod 600")
    expect_signed(setup, "--allow-unsafe-key signs with a group-readable key", unsafe,
                  "--allow-unsafe-key")
    unsafe_place_cases(setup)


def expect_signed(setup, label, key_file, *args):
    """dkim-sign signs with `key_file`, and the signature verifies."""
    done = run([tool("dkim-sign"), "-d", DOMAIN, "-s", "sel", "-k", key_file, "--now", str(NOW),
                *args, setup.write("to-sign.eml", BASE)])
    _, got = setup.verify(done.stdout)
    tap.ok(done.returncode == 0 and got.verdict == "pass", label, done.stderr)


def key_in(setup, directory, mode):
    """A copy of the key (mode 0600) in a new directory of `setup.tmp` with `mode`."""
    path = os.path.join(setup.tmp, directory)
    os.mkdir(path)
    os.chmod(path, mode)
    key = os.path.join(path, "sel.private")
    with open(os.open(key, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as handle:
        handle.write(setup.key.pem())
    return key


def unsafe_place_cases(setup):
    """OpenDKIM's RequireSafeKeys: the directories on the way and the owners count too."""
    group_writable = key_in(setup, "group-writable", 0o770)
    expect_sign_refused(setup, "key in a group-writable directory", group_writable,
                        f"directory {os.path.dirname(group_writable)} is writable by group or "
                        f"others (mode 0770), who could replace the key: run chmod go-w "
                        f"{os.path.dirname(group_writable)}")
    expect_signed(setup, "--allow-unsafe-key: a key in a group-writable directory is used",
                  group_writable, "--allow-unsafe-key")

    world_writable = key_in(setup, "world-writable", 0o777)
    link = os.path.join(setup.tmp, "link.private")
    os.symlink(world_writable, link)
    expect_sign_refused(setup, "symbolic link to a key in a world-writable directory", link,
                        f"unsafe key file {link}: directory "
                        f"{os.path.dirname(world_writable)} is writable by group or others "
                        "(mode 0777)")
    expect_signed(setup, "--allow-unsafe-key: the symbolic link is followed", link,
                  "--allow-unsafe-key")
    relative = os.path.join(setup.tmp, "relative.private")
    os.symlink(f"../{os.path.basename(setup.tmp)}/world-writable/sel.private", relative)
    expect_sign_refused(setup, "relative symbolic link through '..'", relative,
                        f"directory {os.path.dirname(world_writable)} is writable")

    # A sticky directory (as /tmp) protects its entries: only their owners may rename them.
    sticky = key_in(setup, "sticky", 0o1777)
    expect_signed(setup, "a key in a sticky world-writable directory (like /tmp) is used",
                  sticky)
    sticky_link = os.path.join(setup.tmp, "sticky-link.private")
    os.symlink(sticky, sticky_link)
    expect_signed(setup, "a symbolic link to a safe key is followed", sticky_link)

    if os.geteuid() != 0:
        tap.skip("keys owned by another user", "needs root to chown")
        return
    nobody = pwd.getpwnam("nobody")
    os.chown(sticky, nobody.pw_uid, nobody.pw_gid)
    expect_sign_refused(setup, "key file owned by another user", sticky,
                        f"unsafe key file {sticky}: it belongs to uid {nobody.pw_uid}, not to "
                        f"root: run chown root {sticky}, or load it as uid {nobody.pw_uid}")
    expect_signed(setup, "--allow-unsafe-key: a key file owned by another user is used",
                  sticky, "--allow-unsafe-key")
    os.chown(sticky, 0, 0)
    os.lchown(sticky_link, nobody.pw_uid, nobody.pw_gid)
    expect_sign_refused(setup, "symbolic link owned by another user", sticky_link,
                        f"symbolic link {sticky_link} belongs to uid {nobody.pw_uid}, not to "
                        f"root: run chown -h root {sticky_link} (or pass --allow-unsafe-key)")
    os.chown(os.path.dirname(sticky), nobody.pw_uid, nobody.pw_gid)
    expect_sign_refused(setup, "key in a directory owned by another user", sticky,
                        f"directory {os.path.dirname(sticky)} belongs to uid {nobody.pw_uid}, "
                        f"not to root, so that user could replace the key: run chown root "
                        f"{os.path.dirname(sticky)}")
    expect_signed(setup, "--allow-unsafe-key: a key in another user's directory is used",
                  sticky, "--allow-unsafe-key")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        setup = Setup(tmp)
        message_cases(setup)
        from_cases(setup)
        flood_cases(setup)
        long_key_name_case(setup)
        streaming_case(setup)
        key_file_cases(setup)


tap.run(main)

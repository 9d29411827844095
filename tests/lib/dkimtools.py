"""Runs the project's command-line tools from the build tree and parses
their output, so tests speak in results rather than in text."""
import os
import re
import procutil
from dataclasses import dataclass, field

import shared

BUILDDIR = os.environ.get("DKIM_TOP_BUILDDIR", os.getcwd())
SRCDIR = os.environ.get("DKIM_TOP_SRCDIR", os.getcwd())
CORPUS = shared.path("corpus")


def tool(name):
    """Path of a built tool, e.g. tool('dkim-verify')."""
    return os.path.join(BUILDDIR, "tools", name)


@dataclass
class Signature:
    result: str
    domain: str
    selector: str
    algorithm: str
    key: str
    dnssec: str
    reason: str = ""
    explanation: str = ""


@dataclass
class Verification:
    returncode: int
    authres: str
    verdict: str
    signatures: list = field(default_factory=list)
    stderr: str = ""
    arc: str = ""       # the -v line "arc: cv=... " (ARC sets only), without "arc: "
    author: str = ""    # the -v line "from: ...": the author domain, or "none (why)"

    def results(self):
        return [s.result for s in self.signatures]

    @property
    def arc_cv(self):
        """The ARC chain validation status: pass or fail, "none" without an arc: line."""
        found = re.match(r"cv=(\S+)", self.arc)
        return found[1] if found else "none"


_SIG_RE = re.compile(
    r"^signature (\d+): (\S+) d=(\S+) s=(\S+) a=(\S+) key=(\S+) dnssec=(\S+)"
    r"(?: reason=([a-z0-9-]+): (.*))?$")


def parse_verify_output(returncode, stdout, stderr=""):
    """Parses `dkim-verify -v` output."""
    lines = stdout.splitlines()
    authres, verdict, sigs, arc, author = [], None, [], "", ""
    for line in lines:
        m = _SIG_RE.match(line)
        if m:
            sigs.append(Signature(m[2], m[3], m[4], m[5], m[6], m[7],
                                  m[8] or "", m[9] or ""))
        elif line.startswith("arc: "):
            arc = line[len("arc: "):]
        elif line.startswith("from: "):
            author = line[len("from: "):]
        elif line.startswith("verdict: "):
            verdict = line[len("verdict: "):]
        elif line.startswith("Authentication-Results:") or line.startswith("\t"):
            authres.append(line)
    return Verification(returncode, "\n".join(authres), verdict, sigs, stderr, arc, author)


def verify(message, *args, timeout=60):
    """Runs dkim-verify -v on message bytes (or a path) with extra args."""
    cmd = [tool("dkim-verify"), "-v", "--authserv-id", "mx.test.example", *args]
    if isinstance(message, (bytes, bytearray)):
        proc = procutil.run(cmd, "dkim-verify", input_bytes=message, timeout=timeout,
                            check=False)
    else:
        proc = procutil.run(cmd + [message], "dkim-verify", timeout=timeout, check=False)
    return parse_verify_output(proc.returncode, proc.stdout.decode(),
                               proc.stderr.decode(errors="replace"))


def sign(message, *args, timeout=60):
    """Runs dkim-sign on message bytes; returns (returncode, stdout, stderr)."""
    proc = procutil.run([tool("dkim-sign"), *args], "dkim-sign", input_bytes=message,
                        timeout=timeout, check=False)
    return proc.returncode, proc.stdout, proc.stderr.decode(errors="replace")

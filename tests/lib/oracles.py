"""The three independent DKIM implementations on this machine, used offline as interop peers.

Why: our signer and verifier are only trustworthy if other implementations agree with them.
Each oracle signs and verifies with keys taken from a DNS table (see dnstable) instead of
live DNS. All share one interface, so a test can loop over `ALL`:

    oracle.sign(message, domain, selector, key, algorithm="rsa-sha256",
                canonicalization="relaxed/relaxed", headers=None, timestamp=None) -> bytes
    oracle.verify(message, table, now=None) -> [SignatureResult, ...]   (top signature first)

`key` is a SigningKey, a key file path or the key bytes (RSA PEM, Ed25519 PEM or base64
seed). dkimpy also seals and validates ARC chains (RFC 8617): DKIMPY.arc_sign() and
DKIMPY.arc_verify(). `table` is a DNS-table path or a records mapping. Capability flags say what an oracle
cannot do (`supports_ed25519`, `supports_verify_clock`); asking anyway raises Unsupported, so
tests skip explicitly instead of silently. A tool that fails to run raises OracleError; it is
never reported as a verification result.

Results use the RFC 8601 words: pass, fail, permerror, temperror, neutral, policy, none.
"""
import base64
import contextlib
import dataclasses
import logging
import os
import re
import tempfile

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

import dnstable
import procutil
import shared

ALGORITHMS = ("rsa-sha256", "ed25519-sha256")


class OracleError(procutil.HarnessError):
    """The oracle tool itself failed (crashed, bad usage, unreadable output)."""


class Unsupported(OracleError):
    """The oracle lacks the capability asked for (check the supports_* flags first)."""


@dataclasses.dataclass
class SignatureResult:
    """One DKIM-Signature's outcome as an oracle reports it; `detail` is the tool's reason."""
    result: str
    domain: str = ""
    selector: str = ""
    algorithm: str = ""
    detail: str = ""


def to_crlf(message):
    """Returns `message` with every line ending CRLF (DKIM is defined on CRLF text)."""
    return re.sub(rb"\r?\n", b"\r\n", message)


# -- keys ------------------------------------------------------------------------------------

class SigningKey:
    """A private key, convertible to the format each tool wants, and its DNS key record.

    dkimpy wants PKCS#1 PEM for RSA and a base64 seed for Ed25519; OpenDKIM wants PKCS#8 PEM
    for Ed25519; the DNS record wants the SubjectPublicKeyInfo (RSA) or raw key (Ed25519).
    """

    def __init__(self, private_key):
        self.private_key = private_key
        self.algorithm = "ed25519-sha256" if isinstance(
            private_key, ed25519.Ed25519PrivateKey) else "rsa-sha256"

    @classmethod
    def load(cls, source):
        """From a SigningKey, a file path, or bytes: a PEM key (PKCS#1 or PKCS#8) or a base64
        32-byte Ed25519 seed (RFC 8463 A.1 format)."""
        if isinstance(source, SigningKey):
            return source
        if not isinstance(source, bytes):
            with open(source, "rb") as handle:
                source = handle.read()
        if b"-----BEGIN" in source:
            return cls(serialization.load_pem_private_key(source, password=None))
        seed = base64.b64decode(source.strip(), validate=True)
        return cls(ed25519.Ed25519PrivateKey.from_private_bytes(seed))

    @classmethod
    def generate(cls, algorithm="rsa-sha256", bits=2048):
        """A fresh key, for tests that need a key no record publishes yet."""
        if algorithm == "ed25519-sha256":
            return cls(ed25519.Ed25519PrivateKey.generate())
        return cls(rsa.generate_private_key(public_exponent=65537, key_size=bits))

    @property
    def is_ed25519(self):
        return self.algorithm == "ed25519-sha256"

    def pem(self):
        """PEM text: PKCS#1 for RSA (dkimpy parses only that), PKCS#8 for Ed25519."""
        fmt = (serialization.PrivateFormat.PKCS8 if self.is_ed25519
               else serialization.PrivateFormat.TraditionalOpenSSL)
        return self.private_key.private_bytes(serialization.Encoding.PEM, fmt,
                                              serialization.NoEncryption())

    def seed_b64(self):
        """The base64 32-byte seed of an Ed25519 key (what dkimpy signs with)."""
        raw = self.private_key.private_bytes(serialization.Encoding.Raw,
                                             serialization.PrivateFormat.Raw,
                                             serialization.NoEncryption())
        return base64.b64encode(raw)

    def dns_record(self):
        """The DKIM key record text (``v=DKIM1; k=...; p=...``) for this key."""
        public = self.private_key.public_key()
        if self.is_ed25519:
            raw = public.public_bytes(serialization.Encoding.Raw,
                                      serialization.PublicFormat.Raw)
            return f"v=DKIM1; k=ed25519; p={base64.b64encode(raw).decode()}"
        der = public.public_bytes(serialization.Encoding.DER,
                                  serialization.PublicFormat.SubjectPublicKeyInfo)
        return f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode()}"


def ed25519_seed_to_pem(seed_b64):
    """Converts an Ed25519 base64 seed (bytes or str) to a PKCS#8 PEM (bytes)."""
    if isinstance(seed_b64, str):
        seed_b64 = seed_b64.encode("ascii")
    return SigningKey.load(seed_b64).pem()


# -- common base -----------------------------------------------------------------------------

class Oracle:
    """Shared argument checks; subclasses implement _sign_header() and verify()."""
    name = "oracle"
    supports_ed25519 = True
    supports_verify_clock = True

    def unavailable(self):
        """None when this oracle can run here, else why not (one line, for a skip)."""
        return None

    def sign(self, message, domain, selector, key, algorithm="rsa-sha256",
             canonicalization="relaxed/relaxed", headers=None, timestamp=None):
        """Returns the CRLF message with this oracle's DKIM-Signature prepended.

        `headers`: list of header field names to sign (default: the tool's own choice).
        `timestamp`: the t= value (default: now), for reproducible signatures.
        """
        key = SigningKey.load(key)
        if algorithm not in ALGORITHMS:
            raise ValueError(f"unknown algorithm {algorithm!r}")
        if key.algorithm != algorithm:
            raise ValueError(f"{algorithm} needs a matching key, got a {key.algorithm} key")
        if key.is_ed25519 and not self.supports_ed25519:
            raise Unsupported(f"{self.name} cannot sign with ed25519-sha256")
        message = to_crlf(message)
        header = self._sign_header(message, domain, selector, key, algorithm,
                                   canonicalization, headers, timestamp)
        return to_crlf(header.rstrip(b"\r\n")) + b"\r\n" + message

    def _sign_header(self, message, domain, selector, key, algorithm, canonicalization,
                     headers, timestamp):
        raise NotImplementedError

    def verify(self, message, table, now=None):
        raise NotImplementedError

    def _check_clock(self, now):
        if now is not None and not self.supports_verify_clock:
            raise Unsupported(f"{self.name} cannot verify with a fixed clock")

    def __repr__(self):
        return self.name


def _records(table):
    """`table` (a DNS-table path or a records mapping) as normalized records."""
    if isinstance(table, (str, os.PathLike)):
        return dnstable.load(table)
    return dnstable.normalize(table)


@contextlib.contextmanager
def _table_file(table, keep_pseudo):
    """Yields the path of a temporary DNS-table file holding `table`.

    Without `keep_pseudo` NXDOMAIN/~~error~~ values are dropped: OpenDKIM would read them as
    key text, while leaving the name out gives it the same 'no key' outcome.
    """
    records = _records(table)
    with tempfile.TemporaryDirectory(prefix="dkim-oracle-") as tmp:
        path = os.path.join(tmp, "table.txt")
        dnstable.write(records if keep_pseudo else dnstable.without_pseudo(records), path)
        yield path


# -- dkimpy ----------------------------------------------------------------------------------

class _DnsTempFailure(Exception):
    """Raised by our dnsfunc for ~~error~~ values; dkimpy does not catch it, so it surfaces
    as temperror instead of being folded into a plain False."""


class _FixedClock:
    """Stands in for the `time` module inside dkimpy only (it calls nothing but time())."""

    def __init__(self, now):
        self.now = now

    def time(self):
        return float(self.now)


@contextlib.contextmanager
def _dkimpy_clock(now):
    if now is None:
        yield
        return
    saved = dkim.time
    dkim.time = _FixedClock(now)
    try:
        yield
    finally:
        dkim.time = saved


class _ErrorLog(logging.Handler):
    """Collects the errors dkimpy logs; they explain a False result (missing key etc.)."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def _dkimpy_dnsfunc(records):
    """dkimpy's DNS hook answering from `records`: None for a missing name or NXDOMAIN, and
    _DnsTempFailure for ~~error~~ values."""
    def dnsfunc(name, timeout=5):
        values = records.get(dnstable.normalize_name(name.decode("ascii", "replace")))
        if not values or values[0] == dnstable.NXDOMAIN:
            return None
        if dnstable.is_dns_error(values[0]):
            raise _DnsTempFailure(values[0])
        return dnstable.txt_text(values[0]).encode("utf-8")
    return dnsfunc


class DkimPy(Oracle):
    """dkimpy 1.1.4 through its API (we run under /usr/bin/python3, which has it)."""
    name = "dkimpy"

    def __init__(self, minkey=1024):
        self.minkey = minkey

    def _sign_header(self, message, domain, selector, key, algorithm, canonicalization,
                     headers, timestamp):
        header_canon, _, body_canon = canonicalization.partition("/")
        secret = key.seed_b64() if key.is_ed25519 else key.pem()
        with _dkimpy_clock(timestamp):
            try:
                return dkim.DKIM(message).sign(
                    selector.encode(), domain.encode(), secret,
                    signature_algorithm=algorithm.encode(),
                    canonicalize=(header_canon.encode(), (body_canon or "simple").encode()),
                    include_headers=[h.encode() for h in headers] if headers else None)
            except dkim.DKIMException as exc:
                raise OracleError(f"dkimpy could not sign: {exc}") from exc

    def verify(self, message, table, now=None):
        records = _records(table)
        count = len([1 for name, _ in dkim.DKIM(message).headers
                     if name.lower() == b"dkim-signature"])
        with _dkimpy_clock(now):
            return [self._verify_one(message, records, index) for index in range(count)]

    def _verify_one(self, message, records, index):
        dnsfunc = _dkimpy_dnsfunc(records)
        errors = _ErrorLog()
        logger = logging.getLogger("oracles.dkimpy")
        logger.propagate = False       # dkimpy's errors are results here, not log noise
        logger.addHandler(errors)
        verifier = dkim.DKIM(message, logger=logger, minkey=self.minkey)
        try:
            ok = verifier.verify(idx=index, dnsfunc=dnsfunc)
            result = "pass" if ok else ("permerror" if errors.messages else "fail")
            detail = "; ".join(errors.messages)
        except _DnsTempFailure as exc:
            result, detail = "temperror", str(exc)
        except dkim.ValidationError as exc:
            result = "fail" if "body hash mismatch" in str(exc) else "permerror"
            detail = str(exc)
        except dkim.DKIMException as exc:
            result, detail = "permerror", f"{type(exc).__name__}: {exc}"
        finally:
            logger.removeHandler(errors)
        fields = getattr(verifier, "signature_fields", None) or {}
        return SignatureResult(result, fields.get(b"d", b"").decode(errors="replace"),
                               fields.get(b"s", b"").decode(errors="replace"),
                               fields.get(b"a", b"").decode(errors="replace"), detail)

    def arc_verify(self, message, table, now=None):
        """ARC chain validation: (cv, reason). cv is "pass", "fail" or "none"; dkimpy gives
        None for a chain whose newest seal already says cv=fail (the ARC test suite's ''), and
        a DNS error in `table` gives "temperror". rsa-sha256 only (no Ed25519 seals)."""
        with _dkimpy_clock(now):
            try:
                cv, _sets, reason = dkim.arc_verify(to_crlf(message),
                                                    dnsfunc=_dkimpy_dnsfunc(_records(table)),
                                                    minkey=self.minkey)
            except _DnsTempFailure as exc:
                return "temperror", str(exc)
        return (cv.decode() if cv is not None else None), reason

    def arc_sign(self, message, domain, selector, key, authserv_id, headers=None,
                 timestamp=None):
        """Returns the CRLF message with dkimpy's ARC set prepended (unchanged when dkimpy adds
        none). Like dkimpy's arcsign, the ARC-Authentication-Results comes from the message's
        Authentication-Results fields of `authserv_id`, and cv= from their arc= result."""
        key = SigningKey.load(key)
        if key.is_ed25519:
            raise Unsupported("dkimpy seals ARC sets with rsa-sha256 only")
        message = to_crlf(message)
        try:
            fields = dkim.arc_sign(message, selector.encode(), domain.encode(), key.pem(),
                                   authserv_id.encode(),
                                   include_headers=[h.encode() for h in headers]
                                   if headers else None,
                                   timestamp=str(timestamp) if timestamp is not None else None)
        except dkim.DKIMException as exc:
            raise OracleError(f"dkimpy could not seal: {exc}") from exc
        return b"".join(to_crlf(field) for field in fields) + message


# -- OpenDKIM --------------------------------------------------------------------------------

class OpenDkim(Oracle):
    """OpenDKIM 2.11's milter logic in test mode (`opendkim -x conf -vv -t FILE`).

    Verification takes keys from `TestPublicKeys`; it has no fixed clock for verifying
    (-F only stamps signatures). Signing uses a KeyTable/SigningTable so that d= need not be
    the From domain (`Domain` alone would sign only mail from that domain).
    """
    name = "OpenDKIM"
    supports_verify_clock = False

    def _run(self, conf_text, message, tmp, extra=()):
        conf = os.path.join(tmp, "opendkim.conf")
        msg = os.path.join(tmp, "message.eml")
        with open(conf, "w", encoding="utf-8") as handle:
            handle.write(conf_text + "Syslog no\nRequireSafeKeys no\n")
        with open(msg, "wb") as handle:
            handle.write(message)
        try:
            done = procutil.run(["opendkim", "-x", conf, *extra, "-vv", "-t", msg], "opendkim")
        except procutil.HarnessError as exc:
            raise OracleError(str(exc)) from exc
        return done.stdout.decode("utf-8", "replace") + done.stderr.decode("utf-8", "replace")

    def _sign_header(self, message, domain, selector, key, algorithm, canonicalization,
                     headers, timestamp):
        with tempfile.TemporaryDirectory(prefix="dkim-opendkim-") as tmp:
            keyfile = os.path.join(tmp, "key.pem")
            with open(keyfile, "wb") as handle:
                handle.write(key.pem())
            with open(os.path.join(tmp, "keytable"), "w", encoding="utf-8") as handle:
                handle.write(f"signer {domain}:{selector}:{keyfile}\n")
            with open(os.path.join(tmp, "signingtable"), "w", encoding="utf-8") as handle:
                handle.write("* signer\n")
            conf = (f"Mode s\nKeyTable {tmp}/keytable\nSigningTable refile:{tmp}/signingtable\n"
                    f"SignatureAlgorithm {algorithm}\nCanonicalization {canonicalization}\n")
            if headers:
                conf += f"SignHeaders {','.join(headers)}\n"
            extra = ["-F", str(timestamp)] if timestamp is not None else []
            output = self._run(conf, message, tmp, extra)
        found = re.search(r"hname='DKIM-Signature' hvalue='([^']*)'", output)
        if not found:
            raise OracleError(f"OpenDKIM produced no signature:\n{output}")
        return b"DKIM-Signature: " + found.group(1).encode("utf-8")

    def verify(self, message, table, now=None):
        self._check_clock(now)
        message = to_crlf(message)
        with _table_file(table, keep_pseudo=False) as path, \
                tempfile.TemporaryDirectory(prefix="dkim-od-") as tmp:
            output = self._run(f"Mode v\nTestPublicKeys {path}\n", message, tmp)
        return self._results(message, output)

    @staticmethod
    def _results(message, output):
        """Maps the Authentication-Results OpenDKIM would insert back to the signatures.

        Each `dkim=` entry carries header.b (the first 8 characters of b=); a signature
        OpenDKIM does not mention (e.g. one too broken to parse) gets result "none".
        """
        found = re.search(r"hname='Authentication-Results' hvalue='([^']*)'", output)
        if not found:
            raise OracleError(f"OpenDKIM printed no Authentication-Results:\n{output}")
        # OpenDKIM's own summary line(s), e.g. "... failed: signature timestamp in the future"
        notes = " | ".join(line.split(": ", 2)[-1] for line in output.splitlines()
                           if line.startswith("opendkim: ") and "mlfi_" not in line)
        reported = []
        for entry in found.group(1).split(";")[1:]:
            entry = " ".join(entry.split())
            if not entry.startswith("dkim="):
                continue
            tags = dict(re.findall(r"header\.(\w+)=(\S+)", entry))
            result = entry.split()[0].split("=", 1)[1]
            reported.append((tags.get("b", ""), SignatureResult(
                result, tags.get("d", ""), tags.get("s", ""), tags.get("a", ""),
                f"{entry} | {notes}" if notes else entry)))
        results = []
        for sig_b in _signature_b_values(message):
            match = next((r for b, r in reported if b and sig_b.startswith(b)), None)
            if match is not None:
                reported = [(b, r) for b, r in reported if r is not match]
            results.append(match or SignatureResult("none", detail="not reported by OpenDKIM"))
        return results


def _signature_b_values(message):
    """The b= value (whitespace removed) of each DKIM-Signature in `message`, top first."""
    head = message.split(b"\r\n\r\n", 1)[0]
    fields = re.split(rb"\r\n(?![ \t])", head)
    values = []
    for field in fields:
        name, _, value = field.partition(b":")
        if name.strip().lower() == b"dkim-signature":
            tag = re.search(rb"(?:^|;)\s*b\s*=([^;]*)", value)
            values.append(re.sub(r"\s+", "", tag.group(1).decode("ascii", "replace"))
                          if tag else "")
    return values


# -- Mail::DKIM ------------------------------------------------------------------------------

class MailDkim(Oracle):
    """Mail::DKIM 1.20230212 (Perl) through maildkim.pl, with FakeDKIMDNS for the keys.

    The Perl API is used rather than dkimproxy-sign/-verify: dkimproxy-sign drops t= when
    --timestamp is given (it passes the expiration as Timestamp) and cannot choose headers,
    and dkimproxy-verify reports one overall result. This version has no Ed25519.
    """
    name = "Mail::DKIM"
    supports_ed25519 = False

    def unavailable(self):
        """The Perl modules it runs with (FakeDKIMDNS) are in shared/oracles."""
        return shared.absent()

    def _run(self, args, message, env):
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "maildkim.pl")
        env = dict(os.environ, PERL5LIB=shared.path("oracles"), **env)
        try:
            done = procutil.run(["perl", script, *args], "Mail::DKIM", input_bytes=message,
                                env=env)
        except procutil.HarnessError as exc:
            raise OracleError(str(exc)) from exc
        return done.stdout

    def _sign_header(self, message, domain, selector, key, algorithm, canonicalization,
                     headers, timestamp):
        with tempfile.TemporaryDirectory(prefix="dkim-maildkim-") as tmp:
            keyfile = os.path.join(tmp, "key.pem")
            with open(keyfile, "wb") as handle:
                handle.write(key.pem())
            return self._run(["sign", keyfile, domain, selector, algorithm, canonicalization,
                              ":".join(headers) if headers else "-",
                              str(timestamp) if timestamp is not None else "-"], message, {})

    def verify(self, message, table, now=None):
        env = {} if now is None else {"MAILDKIM_NOW": str(int(now))}
        # FakeDKIMDNS understands NXDOMAIN and ~~error~~ (a DNS error gives temperror).
        with _table_file(table, keep_pseudo=True) as path:
            env["DKIM_FAKE_DNS"] = path
            output = self._run(["verify"], to_crlf(message), env)
        results = []
        for line in output.decode("utf-8", "replace").splitlines():
            result, domain, selector, algorithm, detail = (line.split("\t") + [""] * 5)[:5]
            results.append(SignatureResult(_MAIL_DKIM_RESULTS.get(result, result), domain,
                                           selector, algorithm, detail))
        return results


_MAIL_DKIM_RESULTS = {"invalid": "permerror"}
"""Mail::DKIM's words that differ from RFC 8601 (the rest are the same)."""


DKIMPY = DkimPy()
OPENDKIM = OpenDkim()
MAIL_DKIM = MailDkim()
ALL = (DKIMPY, OPENDKIM, MAIL_DKIM)

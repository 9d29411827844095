"""A private authoritative DNS server (NSD) on 127.0.0.1, with DNSSEC-signed test zones.

Why a real server: the plugins resolve keys with libunbound, so the DNS path (wire format,
TXT strings split at 255 bytes, DNSSEC validation, timeouts when the server is gone) is only
exercised end to end if something answers real DNS queries.

Zones served (every caller name goes to the zone with the longest matching suffix):

- ``secure.example.``: signed, valid signatures: validates as *secure*;
- ``bogus.example.``: signed with signatures that expired in 2000: validates as *bogus*;
- ``.`` (root): unsigned catch-all for every other name, so corpus names such as
  ``brisbane._domainkey.football.example.com`` can be served as is. No trust anchor covers it,
  so a validator reports *insecure*; ``insecure.example.`` is the conventional place for
  names meant to be insecure.

`trust_anchor_file` holds DS records for the two signed zones, in zone-file format as
``ub_ctx_add_ta_file()`` and ``unbound-host -f`` accept. Names under ``test.`` (RFC 6761)
reach the server from dkimcore, which asks a named resolver for them, but not from
``unbound-host``, whose built-in local zone answers them itself.
NSD answers queries with RD=1 (what a forwarding libunbound sends) authoritatively.

Usage::

    with nsd.NsdServer({"sel._domainkey.secure.example": "v=DKIM1; k=rsa; p=..."}) as dns:
        dns.port, dns.trust_anchor_file   # give these to the resolver under test
        dns.stop()                         # queries now fail (temperror tests)
        dns.start()
"""
import os
import re
import subprocess
import time

import dnstable
import procutil

ADDRESS = "127.0.0.1"
SECURE_ZONE = "secure.example"
BOGUS_ZONE = "bogus.example"
INSECURE_ZONE = "insecure.example"

_ROOT = ""
_VALID = "valid"
_EXPIRED = "expired"
_ZONE_SIGNING = {_ROOT: None, SECURE_ZONE: _VALID, BOGUS_ZONE: _EXPIRED}
"""Zone apex (normalized, root = "") -> how it is signed."""

_NS_NAME = "ns.harness."
_TTL = 300
_MAX_STRING = 255
"""RFC 1035 3.3: a TXT character-string holds at most 255 bytes."""


def quote_txt(text):
    """Returns TXT RDATA for zone files: `text` as quoted character-strings of <= 255 bytes.

    The split is on UTF-8 bytes (not characters), and each piece is escaped on its own, so an
    escape sequence never straddles two strings. Empty text gives one empty string.
    """
    data = text.encode("utf-8")
    pieces = [data[i:i + _MAX_STRING] for i in range(0, len(data), _MAX_STRING)] or [b""]
    return " ".join(f'"{_escape(piece)}"' for piece in pieces)


def _escape(piece):
    out = []
    for byte in piece:
        if byte in (0x22, 0x5C):            # " and \ are escaped with a backslash
            out.append("\\" + chr(byte))
        elif 0x20 <= byte <= 0x7E:
            out.append(chr(byte))
        else:                               # anything else as \DDD (decimal)
            out.append(f"\\{byte:03d}")
    return "".join(out)


def parse_character_strings(rdata):
    """Parses presentation-format TXT RDATA (``"a" "b\\"c"``) into a list of byte strings.

    Used to check what a server really sends (e.g. drill's output), independently of how the
    zone file was written.
    """
    strings = []
    for match in re.finditer(r'"((?:[^"\\]|\\.)*)"|(\S+)', rdata):
        body = match.group(1) if match.group(1) is not None else match.group(2)
        strings.append(_unescape(body))
    return strings


def _unescape(body):
    out = bytearray()
    i = 0
    while i < len(body):
        if body[i] == "\\" and re.match(r"\d{3}", body[i + 1:i + 4]):
            out.append(int(body[i + 1:i + 4]))
            i += 4
        elif body[i] == "\\" and i + 1 < len(body):
            out += body[i + 1].encode("utf-8")
            i += 2
        else:
            out += body[i].encode("utf-8")
            i += 1
    return bytes(out)


def zone_of(name):
    """Returns the apex of the served zone that `name` belongs to ("" for the root zone)."""
    name = dnstable.normalize_name(name)
    for apex in sorted(_ZONE_SIGNING, key=len, reverse=True):
        if apex and (name == apex or name.endswith("." + apex)):
            return apex
    return _ROOT


class DrillReply:
    """One reply as drill prints it: `rcode` ("NOERROR", "NXDOMAIN"...), header `flags`
    (e.g. {"qr", "aa", "rd"}) and `answers`, a list of (owner, type, rdata) tuples."""

    def __init__(self, rcode, flags, answers):
        self.rcode, self.flags, self.answers = rcode, flags, answers

    @classmethod
    def parse(cls, text):
        header = re.search(r"rcode: (\w+)", text)
        flags = re.search(r";; flags: ([^;]*);", text)
        if not header or not flags:
            raise procutil.HarnessError(f"drill printed no reply:\n{text}")
        answers = []
        for line in text.split(";; ANSWER SECTION:\n", 1)[1].splitlines():
            if not line.strip() or line.startswith(";;"):
                break
            fields = line.split(None, 4)
            answers.append((fields[0], fields[3], fields[4]))
        return cls(header.group(1), set(flags.group(1).split()), answers)

    def __repr__(self):
        return f"DrillReply({self.rcode}, {sorted(self.flags)}, {self.answers})"


class NsdServer(procutil.TempDirServer):
    """NSD in the foreground (-d) on 127.0.0.1:`port`, with all its state in one temp dir.

    `records` maps owner names to table values (see dnstable.normalize). NXDOMAIN values are
    simply not published; ``~~error~~`` values cannot be produced by an authoritative server and
    raise ValueError (filter them with dnstable.without_pseudo, and use stop() for timeouts).
    """

    def __init__(self, records=None, startup_timeout=10):
        self.records = dnstable.normalize(records or {})
        self.startup_timeout = startup_timeout
        self.port = procutil.free_port(udp_too=True)
        self.address = ADDRESS
        self.directory = None
        self.trust_anchor_file = None
        self._keys = {}
        self._proc = None

    @classmethod
    def from_table(cls, path, **kwargs):
        """A server publishing the data records of a DNS-table file (pseudo values dropped)."""
        return cls(dnstable.without_pseudo(dnstable.load(path)), **kwargs)

    DIRECTORY_PREFIX = "dkim-nsd-"

    def _prepare(self):
        self._make_keys()
        self.start()

    @property
    def running(self):
        return self._proc is not None and self._proc.poll() is None

    def start(self):
        """Writes (and signs) the zones, starts NSD and waits until it answers."""
        if self.running:
            raise procutil.HarnessError("NSD is already running")
        self._write_zones()
        self._write_config()
        log = open(os.path.join(self.directory, "nsd.out"), "ab")
        with log:
            self._proc = subprocess.Popen(
                ["nsd", "-d", "-c", self._path("nsd.conf")], stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        procutil.wait_until(self._answers, self.startup_timeout,
                            f"NSD on {ADDRESS}@{self.port} to answer")

    def stop(self):
        """Stops NSD (bounded); queries to `port` then go unanswered."""
        if self._proc is not None:
            procutil.stop_process(self._proc)
            self._proc = None

    def restart(self, records=None):
        """Stops and starts again on the same port, optionally with new `records`.

        The zone keys and so the trust anchors stay the same.
        """
        self.stop()
        if records is not None:
            self.records = dnstable.normalize(records)
        self.start()

    def log_text(self):
        """NSD's own output (startup errors, zone parse errors)."""
        with open(self._path("nsd.out"), encoding="utf-8", errors="replace") as handle:
            return handle.read()

    def drill(self, name, rrtype="TXT", tcp=False):
        """Asks this server with drill (a tool independent of our code, RD=1 like a forwarding
        resolver); returns a DrillReply, or raises HarnessError if nothing answers."""
        transport = ["-t"] if tcp else []
        done = procutil.run(["drill", *transport, "-p", str(self.port), f"@{ADDRESS}", rrtype,
                             name], "drill", timeout=5)
        return DrillReply.parse(done.stdout.decode("utf-8", errors="replace"))

    def txt_strings(self, name):
        """The TXT records of `name` as served: one list of character-strings (bytes) each."""
        return [parse_character_strings(rdata)
                for _, rrtype, rdata in self.drill(name).answers if rrtype == "TXT"]

    # -- internals ---------------------------------------------------------------------------

    def _path(self, *parts):
        return os.path.join(self.directory, *parts)

    def _answers(self):
        if self._proc.poll() is not None:
            raise procutil.HarnessError(
                f"NSD exited with {self._proc.returncode}:\n{self.log_text()}")
        try:
            # TCP, because a refused connection fails at once while a UDP query to a port
            # nobody listens on yet waits for drill's timeout.
            return self.drill(".", "SOA", tcp=True).rcode == "NOERROR"
        except procutil.HarnessError:
            return False

    def _make_keys(self):
        """One ECDSA P-256 key per signed zone (unbound 1.17 validates algorithm 13), and the
        trust-anchor file holding their DS records."""
        os.mkdir(self._path("keys"))
        anchors = []
        for apex, signing in _ZONE_SIGNING.items():
            if signing is None:
                continue
            done = procutil.run(["ldns-keygen", "-a", "ECDSAP256SHA256", "-k", apex],
                                "ldns-keygen", cwd=self._path("keys"))
            base = self._path("keys", done.stdout.decode().strip())
            self._keys[apex] = base
            with open(base + ".ds", encoding="ascii") as handle:
                anchors.append(handle.read())
        self.trust_anchor_file = self._path("trust-anchors")
        with open(self.trust_anchor_file, "w", encoding="ascii") as handle:
            handle.write("".join(anchors))

    def _zone_file(self, apex):
        return self._path(f"zone.{apex or 'root'}")

    def _write_zones(self):
        by_zone = {apex: [] for apex in _ZONE_SIGNING}
        for name, values in self.records.items():
            for value in values:
                if value == dnstable.NXDOMAIN:
                    continue
                if dnstable.is_dns_error(value):
                    raise ValueError(f"{name}: {value} cannot be served by an authoritative "
                                     "server (use dnstable.without_pseudo, or stop())")
                by_zone[zone_of(name)].append(
                    f"{name}. {_TTL} IN TXT {quote_txt(dnstable.txt_text(value))}\n")
        serial = int(time.time())
        for apex, rrs in by_zone.items():
            origin = f"{apex}." if apex else "."
            head = [f"$TTL {_TTL}\n",
                    f"{origin} IN SOA {_NS_NAME} hostmaster.harness. {serial} 3600 600 86400 "
                    f"{_TTL}\n",
                    f"{origin} IN NS {_NS_NAME}\n"]
            if not apex:
                head.append(f"{_NS_NAME} IN A {ADDRESS}\n")
            with open(self._zone_file(apex), "w", encoding="utf-8") as handle:
                handle.write("".join(head + rrs))
            self._sign(apex)

    def _sign(self, apex):
        """Signs a zone in place when its layout says so; `bogus` gets long-expired RRSIGs,
        so validation fails on every answer, including the DNSKEY set itself."""
        signing = _ZONE_SIGNING[apex]
        if signing is None:
            return
        dates = ["-i", "20000101000000", "-e", "20000201000000"] if signing == _EXPIRED else []
        unsigned = self._zone_file(apex)
        procutil.run(["ldns-signzone", *dates, "-o", apex, "-f", unsigned + ".signed",
                      unsigned, self._keys[apex]], f"ldns-signzone {apex}")
        os.replace(unsigned + ".signed", unsigned)

    def _write_config(self):
        zones = "".join(f'zone:\n    name: "{apex or "."}"\n'
                        f'    zonefile: "{self._zone_file(apex)}"\n' for apex in _ZONE_SIGNING)
        with open(self._path("nsd.conf"), "w", encoding="utf-8") as handle:
            handle.write(f"""server:
    ip-address: {ADDRESS}
    port: {self.port}
    do-ip6: no
    server-count: 1
    reuseport: no
    username: ""
    chroot: ""
    zonesdir: "{self.directory}"
    database: ""
    zonelistfile: "{self._path('zone.list')}"
    xfrdfile: "{self._path('xfrd.state')}"
    xfrdir: "{self.directory}"
    pidfile: "{self._path('nsd.pid')}"
    logfile: "{self._path('nsd.log')}"
    verbosity: 1
    hide-version: yes
remote-control:
    control-enable: no
{zones}""")

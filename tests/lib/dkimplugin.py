"""The DKIM delivery plugin and the Sieve extension in a private Dovecot, with the keys served
by a private NSD: what the plugin tests, demo/dovecot-demo.py and bench/ share.

Usage::

    records = {"sel._domainkey.secure.example": key.dns_record()}
    with dkimplugin.MailServer(records, builddir) as server:
        server.dc.deliver_lmtp("s@secure.example", [server.dc.address("alice")], message)
        [stored] = server.dc.read_maildir("alice")
        authres_results(stored)         # [("pass", {"header.d": "secure.example", ...})]

Keyword arguments other than those of MailServer go to dovecot.Dovecot (plugin_settings,
userdb_fields, includes...). A test's own plugin_settings replace those MailServer sets, and
its sieve_extensions come on top of vnd.dovecot.dkim.
"""
import hashlib
import os
import re
import shutil
import socket
import tempfile

import dkimtools
import dovecot
import nsd
import procutil

AUTHSERV_ID = "mx.test.example"
"""Dovecot's hostname in dovecot.Settings, hence the plugin's default authserv-id."""

SHIPPED_CONF_DIRS = {"2.3": os.path.join("conf", "dovecot-2.3"),
                     "2.4": os.path.join("conf", "dovecot-2.4")}
"""Where the example configs for each Dovecot version are, in the source tree (the syntaxes
differ: dovecot-2.4-facts.md section 4)."""


def builddir():
    return os.environ.get("DKIM_TOP_BUILDDIR", os.getcwd())


def delivery_plugin(build=None):
    return os.path.join(build or builddir(), "delivery-plugin", ".libs", "lib95_dkim_plugin.so")


def sieve_plugin(build=None):
    return os.path.join(build or builddir(), "sieve-ext", ".libs",
                        "lib90_sieve_dkim_plugin.so")


def shipped_conf(name):
    """The path of the shipped example config NAME (e.g. 90-dkim.conf) for the Dovecot that
    runs; raises HarnessError when the source tree has none for that version."""
    srcdir = os.environ.get("DKIM_TOP_SRCDIR", os.getcwd())
    path = os.path.join(srcdir, SHIPPED_CONF_DIRS[dovecot.version_name()], name)
    if not os.path.exists(path):
        raise procutil.HarnessError(f"no {name} for Dovecot {dovecot.version_name()}: "
                                    f"{path} is missing")
    return path


class MailServer:
    """NSD serving `records` plus Dovecot with the plugins, resolving through that NSD.

    `delivery` and `sieve` choose which of the two plugins are loaded. `trust_anchor` (default
    True) makes the plugin validate DNSSEC with NSD's anchors; `resolver` overrides the
    dkim_dns_resolver address (e.g. a black hole).
    """

    def __init__(self, records, build=None, delivery=True, sieve=True, trust_anchor=True,
                 resolver=None, **dovecot_settings):
        self.records = records
        self.build = build or builddir()
        self.delivery = delivery
        self.sieve = sieve
        self.trust_anchor = trust_anchor
        self.resolver = resolver
        self.dovecot_settings = dovecot_settings
        self.dns = None
        self.dc = None
        self._files = None
        self._nsd = None

    def __enter__(self):
        self._nsd = nsd.NsdServer(self.records)
        self.dns = self._nsd.__enter__()
        try:
            # NSD's directory is private to us; the mail processes may run as nobody.
            self._files = tempfile.mkdtemp(prefix="dkim-plugin-files-")
            os.chmod(self._files, 0o755)
            settings = {"dkim_dns_resolver": self.resolver or f"127.0.0.1@{self.dns.port}"}
            if self.trust_anchor:
                settings["dkim_dns_trust_anchor"] = self.readable_copy(
                    self.dns.trust_anchor_file)
            settings.update(self.dovecot_settings.pop("plugin_settings", {}))
            extensions = (("vnd.dovecot.dkim",) if self.sieve else ()) + tuple(
                self.dovecot_settings.pop("sieve_extensions", ()))
            self.dc = dovecot.Dovecot(
                delivery_plugins=[delivery_plugin(self.build)] if self.delivery else [],
                sieve_plugins=[sieve_plugin(self.build)] if self.sieve else [],
                plugin_settings=settings, sieve_extensions=extensions,
                **self.dovecot_settings).__enter__()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc):
        if self.dc is not None:
            self.dc.__exit__(*exc)
        if self._files is not None:
            shutil.rmtree(self._files, ignore_errors=True)
        self._nsd.__exit__(*exc)

    def readable_copy(self, path):
        """A copy of `path` that the mail processes can read (they may run as nobody)."""
        target = os.path.join(self._files, os.path.basename(path))
        shutil.copyfile(path, target)
        os.chmod(target, 0o644)
        return target

    def verify_lines(self):
        """The plugins' per-message info lines ("dkim: verdict=..."), in log order."""
        return [line for line in self.dc.log_text().splitlines() if "dkim: verdict=" in line]


class DnsBlackHole:
    """A DNS "server" on 127.0.0.1 that never answers: UDP queries are left unread and TCP
    connections are accepted by the kernel and then ignored. This is what an unreachable
    resolver looks like to the plugin, unlike a closed port, which fails at once."""

    def __init__(self):
        self.port = procutil.free_port(udp_too=True)
        self._sockets = []

    def __enter__(self):
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sockets = [udp, tcp]
        udp.bind(("127.0.0.1", self.port))
        tcp.bind(("127.0.0.1", self.port))
        tcp.listen(64)
        return self

    def __exit__(self, *exc):
        for sock in self._sockets:
            sock.close()

    @property
    def address(self):
        return f"127.0.0.1@{self.port}"


def write_private_key(key, path):
    """Writes an oracles.SigningKey as PEM, mode 0600 (dkim-sign refuses keys others can
    read); returns the path."""
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as handle:
        handle.write(key.pem())
    return path


def dkim_sign(message, *args):
    """The message signed by our dkim-sign with `args` (e.g. -d, -s, -k or --key)."""
    code, signed, stderr = dkimtools.sign(message, *args)
    if code != 0:
        raise procutil.HarnessError(f"dkim-sign {' '.join(args)} failed: {stderr}")
    return signed


def newest_maildir_inode(dc, user):
    """The inode of the message delivered last to `user`'s INBOX: equal for copies that
    Dovecot hard-linked."""
    newest = max((os.path.join(root, name) for root, _, names in
                  os.walk(os.path.join(dc.home(user), "Maildir", "new")) for name in names),
                 key=os.path.getmtime)
    return os.stat(newest).st_ino


def header_fields(message, name):
    """The unfolded values of every `name` field in the header of `message` (bytes), top
    first."""
    head = re.split(rb"\r?\n\r?\n", message, maxsplit=1)[0].decode("utf-8", "replace")
    fields = re.split(r"\r?\n(?![ \t])", head)
    values = []
    for field in fields:
        field_name, _, value = field.partition(":")
        if field_name.strip().lower() == name.lower():
            values.append(" ".join(value.split()))
    return values


def authres_results(message, authserv_id=AUTHSERV_ID):
    """The dkim= entries of the Authentication-Results fields carrying `authserv_id`, in
    order: [(result, {"header.d": ..., "header.s": ..., ...}), ...]."""
    results = []
    for value in header_fields(message, "Authentication-Results"):
        if value.split(";")[0].strip().strip('"').lower() != authserv_id.lower():
            continue
        for entry in _authres_entries(value):
            match = re.match(r"dkim=(\w+)", entry)
            if match:
                props = dict(re.findall(r'(header\.\w+)=("[^"]*"|\S+)', entry))
                results.append((match.group(1),
                                {k: v.strip('"') for k, v in props.items()}))
    return results


def _authres_entries(value):
    """Splits an A-R value at the ';' between resinfo entries (not inside quotes or
    comments)."""
    entries, current, depth, quoted = [], [], 0, False
    for char in value:
        if char == '"' and depth == 0:
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")" and depth > 0:
            depth -= 1
        elif char == ";" and not quoted and depth == 0:
            entries.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    entries.append("".join(current).strip())
    return entries[1:]


def verdicts(message, authserv_id=AUTHSERV_ID):
    """Just the results of authres_results()."""
    return [result for result, _ in authres_results(message, authserv_id)]


def message(sender, subject, body, recipient="alice@test.example", extra_headers=()):
    """A small CRLF message with the usual header fields."""
    head = [f"From: {sender}", f"To: {recipient}", f"Subject: {subject}",
            "Date: Sun, 22 Nov 2026 10:00:00 +0000",
            f"Message-ID: <{hashlib.sha1(subject.encode()).hexdigest()[:16]}@test.example>",
            *extra_headers]
    return ("\r\n".join(head) + "\r\n\r\n" + body.replace("\n", "\r\n")).encode("utf-8")

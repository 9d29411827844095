"""What the submission-signing tests share: keys made with our dkim-genkey, OpenDKIM-style
KeyTable/SigningTable files, messages, and checking a relayed message with every verifier.

The keys and tables live in a directory of their own, owned by the user Dovecot runs as and
readable only by it (mode 0700/0600), as dovecot-dkim-submission(7) tells administrators to
set them up. Key records are served by a real NSD; dkim-verify resolves through it, and the
offline oracles (dkimpy, OpenDKIM) get the records exactly as NSD serves them.
"""
import os
import re
import shutil
import smtplib
import subprocess
import tempfile
import time

import dkimtools
import dovecot
import oracles
import smtpclient
import tap

BUILDDIR = os.environ.get("DKIM_TOP_BUILDDIR", os.getcwd())
PLUGIN = os.path.join(BUILDDIR, "submission-plugin", ".libs", "lib95_submission_dkim_plugin.so")


def dovecot_run_user():
    """The pwd entry of the user the test Dovecot runs as, which must own the keys (an
    unstarted dovecot.Dovecot decides it and has no side effects)."""
    return dovecot.Dovecot().run_user


class KeyDirectory:
    """A private directory of keys and tables for Dovecot's run user (`owner`, a pwd entry).

    Use as a context manager; `path(...)` names files in it.
    """

    def __init__(self, owner):
        self.owner = owner
        self.directory = None
        self.records = {}       # DNS name -> key record text, for NSD

    def __enter__(self):
        self.directory = tempfile.mkdtemp(prefix="dkim-keys-")
        os.chmod(self.directory, 0o700)
        self._own(self.directory)
        return self

    def __exit__(self, *exc):
        shutil.rmtree(self.directory, ignore_errors=True)

    def path(self, *parts):
        return os.path.join(self.directory, *parts)

    def genkey(self, domain, selector, key_type="rsa", subdir=None, publish=True):
        """Makes SELECTOR.private with tools/dkim-genkey in `subdir` (default: the domain);
        returns its path and, with `publish`, records the public key for NSD."""
        directory = self.path(subdir or domain)
        os.makedirs(directory, mode=0o700, exist_ok=True)
        self._own(directory)
        subprocess.run([dkimtools.tool("dkim-genkey"), "-d", domain, "-s", selector,
                        "-t", key_type, "-D", directory, "--force"],
                       check=True, capture_output=True, timeout=60)
        key = os.path.join(directory, f"{selector}.private")
        self._own(key)
        if publish:
            self.publish(domain, selector, key)
        return key

    def remove(self, path):
        """Removes a file made here (e.g. a key that must live in a database only)."""
        if os.path.commonpath([path, self.directory]) != self.directory:
            raise ValueError(f"{path} is not in {self.directory}")
        os.unlink(path)

    def mkdir(self, name):
        """A subdirectory (mode 0700, the run user's); returns its path."""
        directory = self.path(name)
        os.makedirs(directory, mode=0o700, exist_ok=True)
        self._own(directory)
        return directory

    def copy_key(self, source, name):
        """Installs a copy of the key file `source` as `name` (mode 0600, run user's)."""
        target = self.path(name)
        shutil.copyfile(source, target)
        os.chmod(target, 0o600)
        self._own(target)
        return target

    def publish(self, domain, selector, key):
        self.records[f"{selector}._domainkey.{domain}"] = (
            oracles.SigningKey.load(key).dns_record())

    def write(self, name, text, mode=0o600):
        """Writes a file (e.g. a table) owned by the run user, atomically (rename), as
        configuration management tools do."""
        target = self.path(name)
        temporary = target + ".new"
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(temporary, mode)
        self._own(temporary)
        os.rename(temporary, target)
        return target

    def _own(self, path):
        if os.geteuid() == 0:
            os.chown(path, self.owner.pw_uid, self.owner.pw_gid)


class Session:
    """One authenticated submission connection, i.e. one submission process (Dovecot's
    default service_count = 1), for several messages from `user`."""

    def __init__(self, dc, user):
        self.user = user
        self.smtp = smtplib.SMTP("127.0.0.1", dc.submission_port, timeout=60)
        self.smtp.ehlo("client.test.example")
        self.smtp.login(user, dc.settings.password)

    def send(self, data):
        """None when accepted, else (code, text)."""
        try:
            smtpclient.send(self.smtp, self.user, ["someone@remote.example"], data)
        except smtplib.SMTPDataError as exc:
            return exc.smtp_code, exc.smtp_error.decode("utf-8", "replace")
        return None

    def close(self):
        self.smtp.quit()


def message(sender, subject="Test", body=None, extra_headers=b""):
    """A CRLF message from `sender` (str; None for no From field)."""
    if body is None:
        body = b"Hello,\r\n\r\nthis is a test  message with  spaces.\r\n\r\n-- \r\nSender\r\n"
    head = b""
    if sender is not None:
        head += b"From: Test Sender <" + sender.encode() + b">\r\n"
    head += (b"To: Someone <someone@remote.example>\r\n"
             b"Subject: " + subject.encode() + b"\r\n"
             b"Date: " + time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime()).encode() +
             b"\r\nMessage-ID: <" + f"{time.time_ns()}@test.example".encode() + b">\r\n"
             b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n")
    return head + extra_headers + b"\r\n" + body


def relayed_one(sink, what):
    """The one message the sink got since the last clear()."""
    messages = sink.wait_for(1, timeout=60)
    tap.eq(len(messages), 1, f"{what}: relayed once")
    sink.clear()
    return messages[0]


def signature_headers(data):
    """The DKIM-Signature fields at the top of `data` (each unfolded to one str)."""
    head = data.split(b"\r\n\r\n", 1)[0].decode("ascii", "replace")
    fields = []
    for line in head.split("\r\n"):
        if line[:1] in (" ", "\t") and fields:
            fields[-1] += line
        else:
            fields.append(line)
    return [f for f in fields if f.lower().startswith("dkim-signature:")]


def signature_tags(data):
    """The tags of each DKIM-Signature in `data`, top first, as {name: value} with the
    folding whitespace removed."""
    return [{name.strip(): re.sub(r"\s+", "", value)
             for name, _, value in (part.partition("=") for part in
                                    field.split(":", 1)[1].split(";"))
             if value}
            for field in signature_headers(data)]


def signed_pairs(data):
    """(d, s) of each DKIM-Signature in `data`, top first."""
    return [(tags.get("d", ""), tags.get("s", "")) for tags in signature_tags(data)]


def served_records(dns, names):
    """{name: value} as NSD serves them: the character-strings of the one TXT record joined,
    so the oracles see what a resolver sees (255-byte splitting included)."""
    records = {}
    for name in names:
        answers = dns.txt_strings(name)
        if len(answers) == 1:
            records[name] = b"".join(answers[0]).decode("ascii")
    return records


def check_verifies(data, dns, expected, what, verifiers=("dkim-verify", "dkimpy", "OpenDKIM")):
    """Checks that every signature of `data` passes with each verifier, and that the
    signatures are exactly `expected` [(d, s), ...] in order."""
    pairs = signed_pairs(data)
    tap.eq(pairs, expected, f"{what}: signatures {expected}")
    names = [f"{s}._domainkey.{d}" for d, s in pairs]
    if "dkim-verify" in verifiers:
        result = dkimtools.verify(data, "--resolver", f"127.0.0.1@{dns.port}")
        tap.ok(result.returncode == 0 and result.results() == ["pass"] * len(pairs),
               f"{what}: dkim-verify through NSD passes every signature",
               f"{result.authres}\n{result.signatures}\n{result.stderr}")
    records = served_records(dns, names)
    for oracle in (oracles.DKIMPY, oracles.OPENDKIM):
        if oracle.name not in verifiers:
            continue
        results = oracle.verify(data, records)
        tap.ok(len(results) == len(pairs) > 0 and all(r.result == "pass" for r in results),
               f"{what}: {oracle.name} passes every signature",
               "\n".join(f"{r.result} d={r.domain} s={r.selector}: {r.detail}"
                         for r in results))

#!/usr/bin/python3
"""The Debian packages as an administrator meets them, inside a clean root of their release
(tests/test-packages.sh runs this there as root, in a fresh overlay that disappears after).

Installs dovecot-dkim, dkim-tools and dkim-milter with apt (the milter disabled, and
accepting the release's own opendkim.conf), enables the example configuration the way
README.Debian says (one !include line each), and runs the system's Dovecot with it, as
Debian starts it: /etc/dovecot/dovecot.conf, plus a local.conf with what a real site sets
(users, mail location, listeners on loopback, the relay host, the resolver). Then: doveconf -n
is clean; a key made with dkim-genkey is published by NSD under lab.test; one LMTP delivery
of a message signed with dkim-sign passes, a tampered copy fails and the user's Sieve script
files it into Junk (autocreated); a message submitted by the user is signed by the
submission plugin, verifies with dkim-verify and passes at delivery; the log holds no error.
Last, apt remove leaves nothing of ours but the conffiles, and a purge removes those too.

Usage: package-installed.py DEB_DIR   (the directory scripts/build-deb.sh wrote)
"""
import glob
import os
import re
import shutil
import smtplib
import subprocess
import sys
import time

import nsd
import procutil
import smtpsink
import tap

DOMAIN = "lab.test"
"""A lab domain under test. (RFC 6761): it resolves through dkim_dns_resolver, as dig's."""
SELECTOR = "sel"
USER = f"alice@{DOMAIN}"
PASSWORD = "secret"
MAIL_UID = 5000
HOME = "/var/vmail/alice"
CONFD = "/etc/dovecot/conf.d"
KEY_DIR = "/etc/dovecot/dkim"
LOG = "/var/log/dovecot-test.log"
PACKAGES = ("dovecot-dkim", "dkim-tools", "dkim-milter")
MILTER_UNIT = "/usr/lib/systemd/system/dkim-milter.service"
OUR_PATTERNS = ("/usr/lib/dovecot/modules/**/*dkim*", "/usr/bin/dkim-*",
                "/usr/sbin/dkim-milter", MILTER_UNIT, "/etc/systemd/system/**/dkim-milter*",
                "/usr/share/man/man8/dkim-milter*", "/usr/share/doc/dkim-milter",
                "/usr/share/doc/dovecot-dkim", "/usr/share/doc/dkim-tools",
                "/usr/share/man/man1/dkim-*", "/usr/share/man/man7/dovecot-dkim*",
                "/usr/share/man/man7/sieve-dkim*", "/usr/share/dovecot-dkim",
                f"{CONFD}/*dkim*")
"""Where a file of ours could be; after a purge, none of them may match."""
SIEVE_SCRIPT = """require ["vnd.dovecot.dkim", "fileinto"];
if dkim "fail" { fileinto "Junk"; }
"""


def run(argv, **kwargs):
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, **kwargs)


def as_mail_user(argv):
    """argv run as the mail uid, which owns the key: the tools refuse, as root, a key that
    belongs to someone else (OpenDKIM's RequireSafeKeys)."""
    return ["setpriv", f"--reuid={MAIL_UID}", f"--regid={MAIL_UID}", "--clear-groups", *argv]


def dovecot_minor():
    return tuple(int(n) for n in run(["dovecot", "--version"]).stdout.split(".")[:2])


def local_conf(dns_port, submission_port, relay_port):
    """What a site adds to Debian's configuration, in the running version's syntax."""
    common = f"""protocols = lmtp submission
listen = 127.0.0.1
ssl = no
auth_mechanisms = plain
log_path = {LOG}
hostname = mx.{DOMAIN}
first_valid_uid = {MAIL_UID}
lda_mailbox_autocreate = yes
lda_mailbox_autosubscribe = yes
submission_relay_host = 127.0.0.1
submission_relay_port = {relay_port}
submission_relay_trusted = yes
service submission-login {{
  inet_listener submission {{
    port = {submission_port}
  }}
}}
"""
    if dovecot_minor() >= (2, 4):
        return common + f"""auth_allow_cleartext = yes
mail_driver = maildir
mail_home = /var/vmail/%{{user | username}}
mail_path = ~/Maildir
mail_inbox_path =
passdb passwd-file {{
  passwd_file_path = /etc/dovecot/users
}}
userdb passwd-file {{
  passwd_file_path = /etc/dovecot/users
}}
# Debian 13's 20-lmtp.conf drops the domain; these users are user@domain.
protocol lmtp {{
  auth_username_format = %{{user | lower}}
}}
sieve_script personal {{
  driver = file
  path = ~/sieve
  active_path = ~/.dovecot.sieve
}}
dkim_dns_resolver = 127.0.0.1@{dns_port}
"""
    return common + f"""disable_plaintext_auth = no
mail_location = maildir:~/Maildir
passdb {{
  driver = passwd-file
  args = /etc/dovecot/users
}}
userdb {{
  driver = passwd-file
  args = /etc/dovecot/users
}}
plugin {{
  dkim_dns_resolver = 127.0.0.1@{dns_port}
}}
"""


def our_files():
    found = set()
    for pattern in OUR_PATTERNS:
        found.update(glob.glob(pattern, recursive=True))
    return sorted(found)


def package_files(package):
    """(files, conffiles) of an installed package."""
    listed = run(["dpkg-query", "-L", package]).stdout.split("\n")
    files = [f for f in listed if f and os.path.isfile(f)]
    conffiles = [line.split()[0] for line in
                 run(["dpkg-query", "-W", "-f", "${Conffiles}\n", package]).stdout.splitlines()
                 if line.strip()]
    return files, conffiles


def install(deb_dir):
    tap.eq(our_files(), [], "the clean root has no file of ours")
    debs = [path for package in PACKAGES
            for path in glob.glob(os.path.join(deb_dir, f"{package}_*.deb"))]
    tap.ok(len(debs) == len(PACKAGES), f"one .deb per package in {deb_dir}", debs)
    done = run(["apt-get", "install", "-y", "--no-install-recommends", *debs],
               env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    tap.ok(done.returncode == 0, "apt-get install of the packages", done.stdout + done.stderr)
    abi = open("/usr/share/dovecot/dovecot-abi").read().strip()
    depends = run(["dpkg-query", "-W", "-f", "${Depends}", "dovecot-dkim"]).stdout
    tap.ok(f"dovecot-abi-{abi}" in depends, f"dovecot-dkim depends on dovecot-abi-{abi}",
           depends)
    tap.eq(glob.glob("/usr/lib/dovecot/modules/**/*.la", recursive=True), [],
           "no libtool .la file in the module directory")
    settings_module = os.path.exists("/usr/lib/dovecot/modules/settings/libdkim_settings.so")
    tap.eq(settings_module, dovecot_minor() >= (2, 4),
           "the settings module is installed exactly for Dovecot 2.4")
    return {package: package_files(package) for package in PACKAGES}


def milter():
    """dkim-milter: installed disabled, and the release's own default opendkim.conf (from
    Debian's opendkim package) passes its check as it is."""
    tap.ok(os.path.exists(MILTER_UNIT) and
           not glob.glob("/etc/systemd/system/**/dkim-milter.service", recursive=True),
           "dkim-milter: the unit is installed, not enabled")
    done = run(["dkim-milter", "-n", "-x", "/etc/opendkim.conf"])
    tap.ok(done.returncode == 0, "dkim-milter -n accepts the release's opendkim.conf",
           done.stdout + done.stderr)


def doveconf():
    return run(["doveconf", "-n"])


def top_block(text, header):
    """The lines of the top-level block `header {` of doveconf -n output (nested blocks and
    values such as %{user | lower} included), or "" when there is none."""
    found = re.search(rf"^{re.escape(header)} {{\n(.*?)^}}$", text, re.M | re.S)
    return found[1] if found else ""


def enable(dns, sink, submission_port):
    """README.Debian's steps, plus the site's local.conf, users, keys and tables."""
    before = doveconf()
    tap.ok(before.returncode == 0 and "dkim" not in before.stdout,
           "as installed, doveconf -n shows nothing of dkim (disabled)", before.stderr)
    for name in ("90-dkim.conf", "91-dkim-submission.conf"):
        path = os.path.join(CONFD, name)
        with open(path) as handle:
            text = handle.read()
        tap.eq(len(re.findall(r"^#!include ", text, re.M)), 1,
               f"{name}: one commented !include line enables it")
        with open(path, "w") as handle:
            handle.write(re.sub(r"^#!include ", "!include ", text, flags=re.M))
    # The site's own authentication instead of the system users (10-auth.conf).
    auth = os.path.join(CONFD, "10-auth.conf")
    with open(auth) as handle:
        text = handle.read()
    with open(auth, "w") as handle:
        handle.write(text.replace("\n!include auth-system.conf.ext", "\n#!include auth-system.conf.ext"))
    with open("/etc/dovecot/users", "w") as handle:
        handle.write(f"{USER}:{{PLAIN}}{PASSWORD}:{MAIL_UID}:{MAIL_UID}::{HOME}::\n")
    with open("/etc/dovecot/local.conf", "w") as handle:
        handle.write(local_conf(dns.port, submission_port, sink.port))
    os.makedirs(HOME)
    with open(os.path.join(HOME, ".dovecot.sieve"), "w") as handle:
        handle.write(SIEVE_SCRIPT)
    for path in (HOME, os.path.dirname(HOME)):
        os.chown(path, MAIL_UID, MAIL_UID)
    os.chown(os.path.join(HOME, ".dovecot.sieve"), MAIL_UID, MAIL_UID)

    after = doveconf()
    tap.ok(after.returncode == 0 and not after.stderr.strip(),
           "doveconf -n with the example configuration enabled: no error, no warning",
           after.stdout[-2000:] + after.stderr)
    lmtp = top_block(after.stdout, "protocol lmtp")
    submission = top_block(after.stdout, "protocol submission")
    tap.ok(re.search(r"\bdkim\b(?! *=)|\bdkim = yes", lmtp)
           and "submission_dkim" in submission and "dkim_dns_resolver" in after.stdout,
           "doveconf -n: the plugins in lmtp and submission, our settings", after.stdout)


def make_key(dns):
    """A key from dkim-genkey, its record published by NSD, the tables the example names."""
    keys = os.path.join(KEY_DIR, "keys")
    os.makedirs(keys)
    done = run(["dkim-genkey", "-d", DOMAIN, "-s", SELECTOR, "-D", keys])
    tap.ok(done.returncode == 0, "dkim-genkey", done.stdout + done.stderr)
    record = re.search(r"^\s*value: (.*)$", done.stdout, re.M)[1]
    dns.restart({f"{SELECTOR}._domainkey.{DOMAIN}": record})
    key = os.path.join(keys, f"{SELECTOR}.private")
    # Readable by the mail uid only (dovecot-dkim-submission(7), PERMISSIONS).
    os.chown(key, MAIL_UID, MAIL_UID)
    name = f"{SELECTOR}._domainkey.{DOMAIN}"
    with open(os.path.join(KEY_DIR, "KeyTable"), "w") as handle:
        handle.write(f"{name} {DOMAIN}:{SELECTOR}:{key}\n")
    with open(os.path.join(KEY_DIR, "SigningTable"), "w") as handle:
        handle.write(f"*@{DOMAIN} {name}\n")
    done = run(as_mail_user(["dkim-testkey", "-d", DOMAIN, "-s", SELECTOR, "-k", key,
                             "--resolver", f"127.0.0.1@{dns.port}"]))
    tap.ok(done.returncode == 0 and "OK" in done.stdout,
           "dkim-testkey: the published record matches the key", done.stdout + done.stderr)
    return key


def start_dovecot():
    master = subprocess.Popen(["dovecot", "-F"], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 20
    while not os.path.exists("/run/dovecot/lmtp"):
        if master.poll() is not None or time.monotonic() > deadline:
            raise procutil.HarnessError(
                f"dovecot did not start: {master.stdout.read().decode(errors='replace')}"
                f"{read_log()}")
        time.sleep(0.1)
    return master


def read_log():
    try:
        with open(LOG, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except FileNotFoundError:
        return ""


def message(subject, body="Hello from the lab.\r\n"):
    return (f"From: Alice <{USER}>\r\nTo: {USER}\r\nSubject: {subject}\r\n"
            f"Date: Mon, 07 Dec 2026 10:00:00 +0000\r\nMessage-ID: <{subject.replace(' ', '.')}"
            f"@{DOMAIN}>\r\n\r\n{body}").encode()


def lmtp(data):
    with smtplib.LMTP("/run/dovecot/lmtp") as client:
        client.ehlo("mx.lab.test")
        return client.sendmail(f"news@{DOMAIN}", [USER], data)


def stored(folder, subject):
    """The stored message with this subject in a folder of alice ("INBOX" or "Junk")."""
    # INBOX is Maildir/ itself, or Maildir/.INBOX with 2.4's layout of Debian 13's settings
    directories = [os.path.join(HOME, "Maildir", f".{folder}")]
    if folder == "INBOX":
        directories.append(os.path.join(HOME, "Maildir"))
    for directory, sub in ((d, s) for d in directories for s in ("new", "cur")):
        for name in sorted(glob.glob(os.path.join(directory, sub, "*"))):
            with open(name, "rb") as handle:
                data = handle.read()
            if f"Subject: {subject}\r\n".encode() in data.replace(b"\n", b"\r\n").replace(
                    b"\r\r\n", b"\r\n"):
                return data.decode("utf-8", "replace")
    return None


def mail_files():
    """Every file under alice's home, for a failure's diagnostics."""
    return "\n".join(os.path.join(d, f) for d, _, files in os.walk(HOME) for f in files)


def authres(text):
    found = re.search(r"^Authentication-Results: mx\.lab\.test;.*?(?=^\S)", text or "",
                      re.M | re.S)
    return found[0] if found else ""


def deliveries(key):
    signed = run(as_mail_user(["dkim-sign", "-d", DOMAIN, "-s", SELECTOR, "-k", key]),
                 input=message("signed").decode())
    tap.eq(signed.returncode, 0, "dkim-sign")
    lmtp(signed.stdout.encode())
    inbox = stored("INBOX", "signed")
    tap.ok("dkim=pass" in authres(inbox) and f"header.d={DOMAIN}" in authres(inbox),
           "LMTP: a valid signature passes, in INBOX", (inbox, mail_files(), read_log()[-3000:]))

    tampered = run(as_mail_user(["dkim-sign", "-d", DOMAIN, "-s", SELECTOR, "-k", key]),
                   input=message("tampered").decode()).stdout
    lmtp(tampered.replace("Hello from the lab.", "Hello from elsewhere.").encode())
    junk = stored("Junk", "tampered")
    tap.ok("dkim=fail" in authres(junk) and stored("INBOX", "tampered") is None,
           'LMTP: a changed body fails, and Sieve\'s dkim "fail" files it into Junk '
           "(autocreated)", (junk, read_log()[-2000:]))


def submission(sink, port, dns_port):
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.ehlo("client.lab.test")
        client.login(USER, PASSWORD)
        client.sendmail(USER, ["bob@remote.example"], message("submitted"))
    [relayed] = sink.wait_for(1)
    tap.ok(re.search(rb"^DKIM-Signature:.*d=lab\.test", relayed.data, re.M | re.S),
           "submission: the relayed message carries our DKIM-Signature", relayed.data[:1500])
    done = run(["dkim-verify", "-v", "--resolver", f"127.0.0.1@{dns_port}"],
               input=relayed.data.decode("utf-8", "replace"))
    tap.ok(done.returncode == 0 and "dkim=pass" in done.stdout,
           "submission: its signature verifies with dkim-verify", done.stdout + done.stderr)
    lmtp(relayed.data)
    inbox = stored("INBOX", "submitted")
    tap.ok("dkim=pass" in authres(inbox), "submission: its signature passes at delivery",
           (inbox, mail_files(), read_log()[-3000:]))


def check_log():
    log = read_log()
    errors = [line for line in log.splitlines()
              if re.search(r"(?:^|: )(?:Error|Panic|Fatal): ", line)]
    tap.ok(not errors, "Dovecot logged no error, fatal or panic", "\n".join(errors))


def remove(installed):
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    done = run(["apt-get", "remove", "-y", *PACKAGES], env=env)
    tap.ok(done.returncode == 0, "apt-get remove", done.stdout + done.stderr)
    left = [path for files, conffiles in installed.values() for path in files
            if os.path.exists(path) and path not in conffiles]
    tap.eq(left, [], "after remove, nothing of ours is left but the conffiles")
    conffiles = sorted(c for _, confs in installed.values() for c in confs)
    tap.ok(conffiles and all(os.path.exists(c) for c in conffiles),
           "after remove, the conffiles stay (Debian's rule for remove)", conffiles)
    # dpkg, not apt: apt cannot name a removed package that had no conffiles left
    done = run(["dpkg", "--purge", *PACKAGES], env=env)
    tap.ok(done.returncode == 0, "dpkg --purge", done.stdout + done.stderr)
    # The administrator's own files (keys, tables, users, local.conf) are theirs to keep.
    tap.eq(our_files(), [], "after purge, no file of ours is left, conffiles included")


def main():
    deb_dir = sys.argv[1]
    tap.diag(f"Dovecot {run(['dovecot', '--version']).stdout.strip()}")
    installed = install(deb_dir)
    milter()
    submission_port = procutil.free_port()
    with nsd.NsdServer({}) as dns, smtpsink.SmtpSink() as sink:
        enable(dns, sink, submission_port)
        key = make_key(dns)
        master = start_dovecot()
        try:
            deliveries(key)
            submission(sink, submission_port, dns.port)
        finally:
            master.terminate()
            master.wait(timeout=30)
        check_log()
    remove(installed)
    shutil.rmtree(HOME, ignore_errors=True)


tap.run(main)

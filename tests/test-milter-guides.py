"""The opendkim.conf files of tests/opendkim-conf, with only their paths changed (to this test's
keys, tables and pid file), pass dkim-milter -n and sign through a real Postfix: the set-ups of
the OpenDKIM guides (AlmaLinux with KeyTable/SigningTable refile:, Sendmail with one key, a 2025
guide with its forwarding hack), and the default files of Debian 12 and EPEL with the lines an
administrator uncomments to sign (Domain, Selector, KeyFile; EPEL's Mode v made sv). Every
signature is checked with dkim-verify, dkimpy, OpenDKIM and Mail::DKIM.
"""
import os
import pwd
import re

import dkimmilter
import dkimtools
import milter_setup as ms
import nsd
import postfix
import smtpsink
import submission_signing
import tap

FIXTURES = os.path.join(dkimtools.SRCDIR, "tests", "opendkim-conf")
# Where the files name paths; all of them move into the test's key directory.
PATHS = ("/var/spool/postfix/opendkim", "/etc/opendkim", "/etc/mail/dkim", "/etc/dkimkeys",
         "/var/run/opendkim", "/run/opendkim")


class Guide:
    """One set-up: its configuration file (relative to FIXTURES), the table files beside it,
    the lines an administrator edits (regex -> replacement), the keys it names as
    (domain, selector, key file relative to the key directory), what gets signed, and a
    warning -n must give."""

    def __init__(self, name, conf, tables=(), edits=(), keys=(), signer=None, warning=None):
        self.name, self.conf, self.tables, self.edits = name, conf, tables, edits
        self.keys, self.signer, self.warning = keys, signer, warning


GUIDES = [
    Guide("AlmaLinux guide (KeyTable/SigningTable refile:)", "almalinux-guide/opendkim.conf",
          tables=("KeyTable", "SigningTable", "TrustedHosts"),
          keys=(("example.com", "default", "keys/example.com/default.private"),
                ("example.net", "default", "keys/example.net/default.private")),
          signer=("example.com", "default"), warning="KeyFile: ignored"),
    Guide("Sendmail guide (Domain, KeyFile, Selector)", "sendmail-guide/opendkim.conf",
          keys=(("example.com", "mail", "keys/example.com/mail.private"),),
          signer=("example.com", "mail")),
    Guide("2025 guide (Mode sv, InternalHosts, catch-all SigningTable)",
          "guide-2025/opendkim.conf",
          tables=("key.table", "signing.table", "trusted.hosts"),
          keys=(("example.com", "mail2025", "keys/example.com/mail2025.private"),),
          signer=("example.com", "mail2025"), warning="InternalHosts: covers every address"),
    Guide("Debian 12's default opendkim.conf, Domain/Selector/KeyFile uncommented",
          "debian-12.conf",
          edits=((r"(?m)^#(Domain|Selector|KeyFile)(\s)", r"\1\2"),),
          keys=(("example.com", "2020", "example.private"),),
          signer=("example.com", "2020")),
    Guide("EPEL's default opendkim.conf, Mode sv and Domain uncommented", "epel.conf",
          edits=((r"(?m)^Mode\tv$", "Mode\tsv"), (r"(?m)^# Domain\t", "Domain\t")),
          keys=(("example.com", "default", "keys/default.private"),),
          signer=("example.com", "default")),
]


def install(guide, keys, made):
    """The guide's files in the key directory with their paths changed; returns the
    configuration text.  `made` maps (domain, selector) to the key file already made for it:
    one selector has one key, so another guide naming it gets a copy."""
    def moved(text):
        for path in PATHS:
            text = text.replace(path, keys.directory)
        return text

    source = os.path.join(FIXTURES, guide.conf)
    for name in guide.tables:
        with open(os.path.join(os.path.dirname(source), name), encoding="utf-8") as handle:
            keys.write(name, moved(handle.read()))
    with open(source, encoding="utf-8") as handle:
        text = moved(handle.read())
    for pattern, replacement in guide.edits:
        text = re.sub(pattern, replacement, text)
    for domain, selector, path in guide.keys:
        full = keys.path(path)
        directory = os.path.dirname(full)
        os.makedirs(directory, mode=0o700, exist_ok=True)
        keys._own(directory)
        if (domain, selector) in made:
            keys.copy_key(made[domain, selector], os.path.relpath(full, keys.directory))
        else:
            generated = keys.genkey(domain, selector, publish=False,
                                    subdir=os.path.relpath(directory, keys.directory))
            os.rename(generated, full)
            keys.publish(domain, selector, full)
            made[domain, selector] = full
    return text


def main():
    if not ms.postfix_available():
        return
    # The guides run OpenDKIM as the opendkim user; so does dkim-milter here (UserID).
    owner = pwd.getpwnam("opendkim")
    configs, made = [], {}
    with submission_signing.KeyDirectory(owner) as keys:
        for guide in GUIDES:
            configs.append(install(guide, keys, made))
            done = dkimmilter.check(keys.write("check.conf", configs[-1]))
            problems = dkimmilter.problems(done)
            tap.ok(done.returncode == 0 and
                   not [p for p in problems if p.startswith("error")],
                   f"{guide.name}: passes -n with its paths changed", done.stderr)
            if guide.warning is not None:
                tap.ok(any(guide.warning in p for p in problems),
                       f"{guide.name}: -n warns '{guide.warning}'", problems)
        with nsd.NsdServer(keys.records) as dns, smtpsink.SmtpSink() as sink:
            with dkimmilter.DkimMilter(configs[0]) as milter, postfix.Postfix(
                    relay_port=sink.port, milter=milter.postfix_socket) as pf:
                for guide, config in zip(GUIDES, configs):
                    start = len(milter.log_text())
                    milter.restart(config)
                    pf.send("user@example.com", ["someone@remote.example"],
                            ms.message("user@example.com", guide.name))
                    [relayed] = sink.wait_for(1, timeout=60)
                    sink.clear()
                    ms.check_signatures(relayed.data, dns, [guide.signer],
                                        f"{guide.name}: signs")
                    errors = [line for line in milter.log_text()[start:].splitlines()
                              if dkimmilter.ERROR_PATTERN.search(line)]
                    tap.ok(not errors, f"{guide.name}: no errors logged", "\n".join(errors))
                ms.check_milter_stop(milter)
                ms.check_postfix_log(pf)


tap.run(main)

#!/usr/bin/python3
"""The warnings an administrator needs, once per process, naming the setting to fix; and none
for the documented configuration.

- The Sieve extension half configured: a file read after 90-dkim.conf sets sieve_plugins (or
  sieve_extensions) again without us. Scripts that require vnd.dovecot.dkim then stop
  compiling at delivery; the delivery plugin says why at its first delivery.
- The delivery plugin named in mail_plugins of a service that does not deliver (IMAP): it
  says so and does nothing, and IMAP keeps working.
On Dovecot 2.3 and 2.4 (the harness writes each one's syntax).
"""
import re

import dkimplugin
import dovecot
import nsd
import oracles
import tap

DOMAIN = nsd.SECURE_ZONE
KEY = oracles.SigningKey.generate("rsa-sha256")
RECORDS = {f"sel._domainkey.{DOMAIN}": KEY.dns_record()}
SIEVE_WARNING = r"dkim: Sieve scripts cannot use vnd\.dovecot\.dkim: "
SERVICE_WARNING = r"dkim: The delivery plugin does nothing in imap: name dkim in mail_plugins"
SCRIPT = 'require ["vnd.dovecot.dkim", "fileinto"];\nif dkim "fail" { fileinto "Junk"; }\n'


def later_file(setting, value):
    """A later file that sets a Sieve list again, replacing what 90-dkim.conf set."""
    return {"2.3": f"plugin {{\n  {setting} = {value}\n}}\n",
            "2.4": f"{setting} = {value}\n"}


def deliver_twice(server, user):
    dc = server.dc
    dc.set_sieve_script(user, SCRIPT)
    message = oracles.DKIMPY.sign(dkimplugin.message(f"news@{DOMAIN}", "hello", "Hello.\n"),
                                  DOMAIN, "sel", KEY)
    for _ in range(2):
        replies = dc.deliver_lmtp(f"news@{DOMAIN}", [dc.address(user)], message)
        tap.eq(replies[dc.address(user)][0], 250, "delivered")


def warnings(server, pattern):
    return re.findall(f"^.*{pattern}.*$", server.dc.log_text(), re.M)


def once_per_process(lines):
    """Whether no process logged a line twice (the harness's LMTP serves one connection per
    process, so two deliveries give two processes, each warning once)."""
    pids = [re.search(r"\((?:\w+)\)<(\d+)>|\w+\((\d+)\)", line) for line in lines]
    keys = [next(g for g in match.groups() if g) if match else line
            for match, line in zip(pids, lines)]
    return len(keys) == len(set(keys))


def check_documented():
    with dkimplugin.MailServer(RECORDS, imap=True) as server:
        deliver_twice(server, "alice")
        server.dc.imap_login("alice").logout()
        found = warnings(server, "dkim: (?:Sieve scripts cannot|The delivery plugin does)")
        tap.eq(found, [], "the documented configuration: no warning")


def check_half_sieve(setting, value, missing):
    with dkimplugin.MailServer(RECORDS, raw_config=later_file(setting, value)) as server:
        deliver_twice(server, "alice")
        found = warnings(server, SIEVE_WARNING)
        verb = "load" if missing == "sieve_plugins" else "enable"
        tap.ok(found and once_per_process(found)
               and all(f"does not {verb}" in line and f"may set {missing} again" in line
                       for line in found),
               f"a later file sets {setting} = {value or '(empty)'}: one warning per process, "
               f"naming {missing}", found or server.dc.log_text()[-3000:])
        server.dc.assert_no_errors()


def check_imap_service():
    syntax = {"2.3": "protocol imap {\n  mail_plugins = $mail_plugins dkim\n}\n",
              "2.4": "protocol imap {\n  mail_plugins {\n    dkim = yes\n  }\n}\n"}
    with dkimplugin.MailServer(RECORDS, imap=True, raw_config=syntax) as server:
        client = server.dc.imap_login("alice")
        status, _ = client.select("INBOX")
        client.logout()
        tap.eq(status, "OK", "the delivery plugin in imap's mail_plugins: IMAP still works")
        found = warnings(server, SERVICE_WARNING)
        tap.ok(len(found) == 1 and "protocol lmtp" in found[0] and once_per_process(found),
               "... and one warning names mail_plugins and where it belongs",
               found or server.dc.log_text()[-3000:])
        deliver_twice(server, "bob")
        tap.eq(dkimplugin.verdicts(server.dc.read_maildir("bob")[-1]), ["pass"],
               "... while LMTP still verifies")
        server.dc.assert_no_errors()


def main():
    tap.diag(f"Dovecot {dovecot.version_name()}")
    check_documented()
    check_half_sieve("sieve_plugins", "", "sieve_plugins")
    # An extension Pigeonhole has but does not enable by default.
    extension = "+editheader" if dovecot.version_name() == "2.3" else "editheader"
    check_half_sieve("sieve_extensions", extension, "sieve_extensions")
    check_imap_service()


tap.run(main)

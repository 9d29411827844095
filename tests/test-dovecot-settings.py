#!/usr/bin/python3
"""The dkim_* settings in a real Dovecot, as an administrator meets them, on the version that
runs (2.3 on the host, 2.4 in the Debian 13 root: tests/run-dovecot24.sh).

- A misspelled setting is never ignored in silence: Dovecot 2.4's doveconf refuses it, naming
  it (the settings module declares every dkim_* setting), and Dovecot 2.3 delivers and logs
  a warning naming it, for a plugin {} setting as for a userdb field.
- A userdb field overrides a setting made where the shipped files make it (plugin {} on 2.3,
  the top level on 2.4).
- An empty value means the default; "none" is the empty list.
"""
import os
import shutil
import tempfile

import dkimplugin
import dovecot
import nsd
import oracles
import procutil
import tap
from dkimplugin import verdicts

DOMAIN = nsd.SECURE_ZONE
KEY = oracles.SigningKey.generate("rsa-sha256")
RECORDS = {f"sel._domainkey.{DOMAIN}": KEY.dns_record()}
MISSPELLED = "dkim_dns_resolvr"


def signed(subject):
    return oracles.DKIMPY.sign(dkimplugin.message(f"News <news@{DOMAIN}>", subject, "Hello.\n"),
                               DOMAIN, "sel", KEY)


def deliver(server, user, subject):
    """Delivers a signed message to `user`; returns the verdicts in its stored copy."""
    dc = server.dc
    replies = dc.deliver_lmtp(f"news@{DOMAIN}", [dc.address(user)], signed(subject))
    tap.ok(all(code == 250 for code, _ in replies.values()),
           f"{user}: {subject}: delivered", repr(replies))
    return verdicts(dc.read_maildir(user)[-1])


def check_misspelled_24(server):
    """doveconf reads the configuration before anything starts: refused, with the name."""
    with tempfile.TemporaryDirectory(prefix="dkim-conf-") as tmp:
        config = os.path.join(tmp, "dovecot.conf")
        shutil.copyfile(server.dc.config_file, config)
        with open(config, "a", encoding="utf-8") as out:
            out.write(f"{MISSPELLED} = 127.0.0.1\n")
        done = procutil.run(["doveconf", "-n", "-c", config], "doveconf", check=False)
        output = (done.stdout + done.stderr).decode("utf-8", "replace")
        tap.ok(done.returncode not in (0,) and done.returncode > 0 and MISSPELLED in output,
               "2.4: doveconf refuses a misspelled dkim_* setting, naming it",
               f"exit {done.returncode}\n{output}")
        done = procutil.run(["doveconf", "-c", server.dc.config_file, "dkim_dns_timeout"],
                            "doveconf")
        tap.ok(done.stdout.decode().strip() == "dkim_dns_timeout =",
               "2.4: doveconf knows the settings (the settings module is installed)",
               done.stdout.decode())


def check_misspelled_23(server):
    """plugin {} takes any name: the plugins say which dkim_* names are not theirs."""
    verdict = deliver(server, "alice", "with a misspelled setting")
    tap.eq(verdict, ["pass"], "2.3: a misspelled setting does not stop delivery")
    warnings = [line for line in server.dc.log_text().splitlines() if "Warning: " in line]
    for name, where in ((MISSPELLED, "plugin {}"), ("dkim_verfy", "a userdb field")):
        tap.ok(any(f"dkim: {name}: Unknown setting" in line for line in warnings),
               f"2.3: a warning names the misspelled {name} ({where})", "\n".join(warnings))


def main():
    series = dovecot.version_name()
    plugin_settings = {"dkim_max_signatures": "", "dkim_verify": "no"}
    userdb = {"alice": {"dkim_verify": "yes"}, "bob": {}}
    if series == "2.3":
        plugin_settings[MISSPELLED] = "127.0.0.1"
        userdb["alice"]["dkim_verfy"] = "no"
    with dkimplugin.MailServer(RECORDS, users=("alice", "bob"), sieve=False,
                               plugin_settings=plugin_settings,
                               userdb_fields=userdb) as server:
        tap.eq(deliver(server, "alice", "userdb says yes"), ["pass"],
               f"{series}: a userdb field overrides the configuration's dkim_verify = no")
        tap.eq(deliver(server, "bob", "configuration says no"), [],
               f"{series}: without one, the configuration's dkim_verify = no holds")
        if series == "2.4":
            check_misspelled_24(server)
        else:
            check_misspelled_23(server)
        errors = server.dc.error_lines()
        tap.ok(not errors, "an empty dkim_max_signatures is the default, not an error; "
               "no other error either", "\n".join(errors))


tap.run(main)

"""Submission signing when keys go wrong or change, in a private Dovecot relaying to a sink.

Covers: a configuration mistake (451, logged), an unreadable key (451 so the client retries, or relayed unsigned, per
dkim_sign_failure; never lost, never half-signed), a key readable by group (refused with a
clear log line unless dkim_sign_allow_unsafe_keys), a key file replaced and a SigningTable
edited while one submission process keeps running (picked up without a restart), and a
Dovecot log with no errors besides the expected signing failures, and no panics.
"""
import os
import smtplib

import dovecot
import oracles
import smtpclient
import smtpsink
import submission_signing as ss
import tap

USER = "alice@example.com"
# Users of the same domain whose userdb fields change one setting each: userdb overrides
# instead of reloads, which also shows that these settings work per user.
RELAY_UNSIGNED = "ursula@example.com"       # dkim_sign_failure = unsigned
UNSAFE_OK = "ulrich@example.com"            # dkim_sign_allow_unsafe_keys = yes
MISCONFIGURED = "mona@example.com"          # dkim_sign_canonicalization = loose
USERDB = {
    RELAY_UNSIGNED: {"dkim_sign_failure": "unsigned"},
    UNSAFE_OK: {"dkim_sign_allow_unsafe_keys": "yes"},
    MISCONFIGURED: {"dkim_sign_canonicalization": "loose"},
}
KEYTABLE = """\
rot._domainkey.example.com   example.com:rot:{keys}/example.com/rot.private
next._domainkey.example.com  example.com:next:{keys}/example.com/next.private
"""
SIGNINGTABLE = "*@example.com rot._domainkey.example.com\n"
EXPECTED_ERRORS = [r"dkim: signing failed", r"dkim: configuration error"]


def plugin_settings(keys):
    return {"dkim_keytable": keys.path("KeyTable"),
            "dkim_signingtable": f"refile:{keys.path('SigningTable')}"}


class Session:
    """One authenticated submission connection, i.e. one submission process (Dovecot's
    default service_count = 1), for several messages."""

    def __init__(self, dc, user=USER):
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


def verdicts(data, records):
    return [r.result for r in oracles.DKIMPY.verify(data, records)]


def main():
    with ss.KeyDirectory(ss.dovecot_run_user()) as keys:
        keys.genkey("example.com", "rot")
        keys.genkey("example.com", "next")
        keys.write("KeyTable", KEYTABLE.format(keys=keys.directory))
        keys.write("SigningTable", SIGNINGTABLE)
        with smtpsink.SmtpSink() as sink, dovecot.Dovecot(
                relay_port=sink.port, submission_plugins=[ss.PLUGIN],
                users=(USER, *USERDB), userdb_fields=USERDB, full_usernames=True,
                plugin_settings=plugin_settings(keys)) as dc:
            try:
                check_changes_while_running(dc, sink, keys)
                check_unreadable_key(dc, sink, keys)
                check_unsafe_permissions(dc, sink, keys)
                check_configuration_error(dc, sink, keys)
            except Exception:
                tap.diag("Dovecot's log:\n" + dc.log_text()[-30000:])
                raise
            errors = dc.error_lines(allow=EXPECTED_ERRORS)
            tap.ok(not errors, "no errors but the expected signing failures, no panics",
                   "\n".join(errors))


def check_changes_while_running(dc, sink, keys):
    key_path = keys.path("example.com", "rot.private")
    old_records = dict(keys.records)
    session = Session(dc)
    first = ss.message(USER, "before rotation")
    tap.eq(session.send(first), None, "rotation: first message accepted")

    # A rotation as administrators do it: new key written aside, renamed over the old.
    new_key = keys.genkey("example.com", "rot", subdir="staging")
    os.rename(new_key, key_path)
    second = ss.message(USER, "after rotation")
    tap.eq(session.send(second), None, "rotation: second message, same process, accepted")

    keys.write("SigningTable", "*@example.com next._domainkey.example.com\n")
    third = ss.message(USER, "after table edit")
    tap.eq(session.send(third), None, "table edit: third message, same process, accepted")
    session.close()

    relayed = sink.wait_for(3, timeout=30)
    sink.clear()
    tap.eq(verdicts(relayed[0].data, old_records), ["pass"], "first: signed with the old key")
    tap.eq(verdicts(relayed[1].data, old_records), ["fail"],
           "second: no longer signed with the old key")
    tap.eq(verdicts(relayed[1].data, keys.records), ["pass"],
           "second: signed with the replacement key, without a restart")
    tap.eq(ss.signed_pairs(relayed[2].data), [("example.com", "next")],
           "third: the edited SigningTable is used, without a restart")
    tap.eq(verdicts(relayed[2].data, keys.records), ["pass"], "third: verifies")
    pids = {line.split("<")[1].split(">")[0] for line in dc.log_text().splitlines()
            if "dkim: signed (" in line}
    tap.eq(len(pids), 1, "all three were signed by one submission process")
    keys.write("SigningTable", SIGNINGTABLE)


def check_unreadable_key(dc, sink, keys):
    key_path = keys.path("example.com", "rot.private")
    os.chmod(key_path, 0)
    data = ss.message(USER, "unreadable key")
    session = Session(dc)
    refusal = session.send(data)
    tap.ok(refusal is not None and refusal[0] == 451 and "4.3.0" in refusal[1],
           "unreadable key, default dkim_sign_failure = tempfail: 451 4.3.0", refusal)
    tap.ok(any("signing failed, replied 451" in line and "rot.private" in line and
               "Permission denied" in line for line in dc.error_lines()),
           "the error log names the key file and the reason")
    tap.eq(sink.messages, [], "tempfail: nothing was relayed (no half-signed message)")

    os.chmod(key_path, 0o600)
    tap.eq(session.send(data), None, "the client's retry after the fix is accepted")
    session.close()
    relayed = sink.wait_for(1)
    sink.clear()
    tap.ok(relayed[0].data.endswith(data) and
           verdicts(relayed[0].data, keys.records) == ["pass"],
           "the retried message arrives whole and signed: nothing lost")

    os.chmod(key_path, 0)
    session = Session(dc, RELAY_UNSIGNED)
    tap.eq(session.send(data), None, "unreadable key, dkim_sign_failure = unsigned: accepted")
    session.close()
    relayed = sink.wait_for(1)
    sink.clear()
    tap.ok(relayed[0].data.endswith(data) and not ss.signature_headers(relayed[0].data),
           "relayed whole and unsigned")
    tap.ok(any("signing failed, relayed unsigned" in line for line in dc.error_lines()),
           "and the failure is logged as an error")
    os.chmod(key_path, 0o600)


def check_unsafe_permissions(dc, sink, keys):
    key_path = keys.path("example.com", "rot.private")
    os.chmod(key_path, 0o640)
    data = ss.message(USER, "group-readable key")
    session = Session(dc)
    refusal = session.send(data)
    session.close()
    tap.ok(refusal is not None and refusal[0] == 451,
           "group-readable key is refused (451 by default)", refusal)
    tap.ok(any("accessible by group or others" in line and
               "dkim_sign_allow_unsafe_keys" in line for line in dc.error_lines()),
           "the log says why and how to allow it")

    session = Session(dc, UNSAFE_OK)
    tap.eq(session.send(data), None, "with dkim_sign_allow_unsafe_keys = yes: accepted")
    session.close()
    relayed = sink.wait_for(1)
    sink.clear()
    tap.eq(verdicts(relayed[0].data, keys.records), ["pass"], "and signed")
    os.chmod(key_path, 0o600)


def check_configuration_error(dc, sink, keys):
    session = Session(dc, MISCONFIGURED)
    refusal = session.send(ss.message(MISCONFIGURED, "misconfigured"))
    session.close()
    tap.ok(refusal is not None and refusal[0] == 451,
           "a setting mistake tempfails the message rather than relaying it unsigned",
           refusal)
    tap.ok(any("configuration error: dkim_sign_canonicalization: 'loose'" in line
               for line in dc.error_lines()), "and the log names the setting")
    tap.eq(sink.messages, [], "nothing relayed")


tap.run(main)

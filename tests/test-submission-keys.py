"""Submission signing when keys go wrong or change, in a private Dovecot relaying to a sink.

Covers: a configuration mistake (451, logged), an unreadable key (451 so the client retries, or relayed unsigned, per
dkim_sign_failure; never lost, never half-signed), a key readable by group, in a directory
others may write to, reached by a symbolic link into such a directory, or owned by another
user (each refused with a clear log line unless dkim_sign_allow_unsafe_keys), a From domain
that must not stand for '%' in a key path (relayed unsigned, logged), an unanchored refile:
pattern (warned about once per load), a key file replaced and a SigningTable edited while one
submission process keeps running (picked up without a restart), and a Dovecot log with no
errors besides the expected signing failures, and no panics.
"""
import os
import pwd

import dovecot
import oracles
import smtpsink
import submission_signing as ss
import tap

USER = "alice@example.com"
# Users of the same domain whose userdb fields change one setting each: userdb overrides
# instead of reloads, which also shows that these settings work per user.
RELAY_UNSIGNED = "ursula@example.com"       # dkim_sign_failure = unsigned
UNSAFE_OK = "ulrich@example.com"            # dkim_sign_allow_unsafe_keys = yes
MISCONFIGURED = "mona@example.com"          # dkim_sign_canonicalization = loose
HOSTER = "hank@example.com"                 # may sign for any From (dkim_sign_from = *)
USERDB = {
    RELAY_UNSIGNED: {"dkim_sign_failure": "unsigned"},
    UNSAFE_OK: {"dkim_sign_allow_unsafe_keys": "yes"},
    MISCONFIGURED: {"dkim_sign_canonicalization": "loose"},
    HOSTER: {"dkim_sign_from": "*"},
}
KEYTABLE = """\
rot._domainkey.example.com   example.com:rot:{keys}/example.com/rot.private
next._domainkey.example.com  example.com:next:{keys}/example.com/next.private
hosted                       %:hosted:{keys}/%/hosted.private
"""
SIGNINGTABLE = "*@example.com rot._domainkey.example.com\n"
EXPECTED_ERRORS = [r"dkim: signing failed", r"dkim: configuration error"]


def plugin_settings(keys):
    return {"dkim_keytable": keys.path("KeyTable"),
            "dkim_signingtable": f"refile:{keys.path('SigningTable')}"}


def verdicts(data, records):
    return [r.result for r in oracles.DKIMPY.verify(data, records)]


def main():
    with ss.KeyDirectory(ss.dovecot_run_user()) as keys:
        keys.genkey("example.com", "rot")
        keys.genkey("example.com", "next")
        keys.genkey("shop.example.org", "hosted")
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
                check_unsafe_places(dc, sink, keys)
                check_sender_domain(dc, sink, keys)
                check_pattern_warning(dc, sink, keys)
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
    start = len(dc.log_text())
    session = ss.Session(dc, USER)
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
    pids = {line.split("<")[1].split(">")[0]
            for line in dc.log_lines(r"dkim: signed \(", count=3, start=start)}
    tap.eq(len(pids), 1, "all three were signed by one submission process")
    keys.write("SigningTable", SIGNINGTABLE)


def check_unreadable_key(dc, sink, keys):
    key_path = keys.path("example.com", "rot.private")
    os.chmod(key_path, 0)
    data = ss.message(USER, "unreadable key")
    start = len(dc.log_text())
    session = ss.Session(dc, USER)
    refusal = session.send(data)
    tap.ok(refusal is not None and refusal[0] == 451 and "4.3.0" in refusal[1],
           "unreadable key, default dkim_sign_failure = tempfail: 451 4.3.0", refusal)
    tap.ok(any("rot.private" in line and "Permission denied" in line for line in
               dc.log_lines(r"Error: .*signing failed, replied 451", start=start)),
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
    start = len(dc.log_text())
    session = ss.Session(dc, RELAY_UNSIGNED)
    tap.eq(session.send(data), None, "unreadable key, dkim_sign_failure = unsigned: accepted")
    session.close()
    relayed = sink.wait_for(1)
    sink.clear()
    tap.ok(relayed[0].data.endswith(data) and not ss.signature_headers(relayed[0].data),
           "relayed whole and unsigned")
    tap.ok(dc.log_lines(r"Error: .*signing failed, relayed unsigned", start=start),
           "and the failure is logged as an error")
    os.chmod(key_path, 0o600)


def check_unsafe_permissions(dc, sink, keys):
    key_path = keys.path("example.com", "rot.private")
    os.chmod(key_path, 0o640)
    data = ss.message(USER, "group-readable key")
    start = len(dc.log_text())
    session = ss.Session(dc, USER)
    refusal = session.send(data)
    session.close()
    tap.ok(refusal is not None and refusal[0] == 451,
           "group-readable key is refused (451 by default)", refusal)
    tap.ok(any("dkim_sign_allow_unsafe_keys" in line for line in
               dc.log_lines(r"Error: .*accessible by group or others", start=start)),
           "the log says why and how to allow it")

    session = ss.Session(dc, UNSAFE_OK)
    tap.eq(session.send(data), None, "with dkim_sign_allow_unsafe_keys = yes: accepted")
    session.close()
    relayed = sink.wait_for(1)
    sink.clear()
    tap.eq(verdicts(relayed[0].data, keys.records), ["pass"], "and signed")
    os.chmod(key_path, 0o600)


def expect_unsafe(dc, sink, keys, what, problem):
    """The key is refused as unsafe (451, and the log says `problem` and how to allow it);
    accepted and signed for the user with dkim_sign_allow_unsafe_keys = yes."""
    data = ss.message(USER, what)
    start = len(dc.log_text())
    session = ss.Session(dc, USER)
    refusal = session.send(data)
    session.close()
    tap.ok(refusal is not None and refusal[0] == 451, f"{what}: refused (451)", refusal)
    new_errors = dc.log_lines(r"Error: .*unsafe key file", start=start)
    tap.ok(any("unsafe key file" in line and problem in line and
               "dkim_sign_allow_unsafe_keys" in line for line in new_errors),
           f"{what}: the log says '{problem}' and how to allow it", "\n".join(new_errors))
    session = ss.Session(dc, UNSAFE_OK)
    tap.eq(session.send(data), None, f"{what}: with dkim_sign_allow_unsafe_keys = yes: accepted")
    session.close()
    relayed = sink.wait_for(1)
    sink.clear()
    tap.eq(verdicts(relayed[0].data, keys.records), ["pass"], f"{what}: and signed")


def check_unsafe_places(dc, sink, keys):
    """OpenDKIM's RequireSafeKeys: the directories on the way and the owners count too."""
    key_path = keys.path("example.com", "rot.private")
    directory = os.path.dirname(key_path)
    os.chmod(directory, 0o770)
    expect_unsafe(dc, sink, keys, "key in a group-writable directory",
                  f"directory {directory} is writable by group or others (mode 0770)")
    os.chmod(directory, 0o700)

    # The KeyTable names a symbolic link into a directory anyone may write to.
    shared = keys.path("shared")
    os.mkdir(shared)
    os.chmod(shared, 0o777)
    os.rename(key_path, os.path.join(shared, "rot.private"))
    os.symlink(os.path.join(shared, "rot.private"), key_path)
    if os.geteuid() == 0:   # for the mail processes to enter it once it is mode 0700
        owner = ss.dovecot_run_user()
        os.chown(shared, owner.pw_uid, owner.pw_gid)
    expect_unsafe(dc, sink, keys, "symbolic link to a key in a world-writable directory",
                  f"directory {shared} is writable by group or others (mode 0777)")
    os.chmod(shared, 0o700)
    session = ss.Session(dc, USER)
    tap.eq(session.send(ss.message(USER, "symbolic link to a safe key")), None,
           "a symbolic link to a key in a safe directory is followed: accepted")
    session.close()
    tap.eq(verdicts(sink.wait_for(1)[0].data, keys.records), ["pass"], "and signed")
    sink.clear()
    os.unlink(key_path)
    os.rename(os.path.join(shared, "rot.private"), key_path)
    os.rmdir(shared)

    if os.geteuid() != 0:
        tap.skip("key file owned by another user", "needs root to chown")
        return
    # As OpenDKIM's keys often are: another user's, readable by a group the mail uid is in.
    other = pwd.getpwnam("daemon")
    owner = ss.dovecot_run_user()
    os.chown(key_path, other.pw_uid, owner.pw_gid)
    os.chmod(key_path, 0o640)
    expect_unsafe(dc, sink, keys, "key file owned by another user",
                  f"it belongs to uid {other.pw_uid}, not to root or uid {owner.pw_uid}")
    os.chown(key_path, owner.pw_uid, owner.pw_gid)
    os.chmod(key_path, 0o600)


def check_sender_domain(dc, sink, keys):
    """A From domain that is not a domain name never stands for '%' in a key path."""
    keys.write("SigningTable", "*@*.example.org hosted\n")
    session = ss.Session(dc, HOSTER)
    tap.eq(session.send(ss.message("orders@shop.example.org", "hosted")), None,
           "'%' in the KeyTable: a valid From domain is accepted")
    tap.eq(ss.signed_pairs(sink.wait_for(1)[0].data), [("shop.example.org", "hosted")],
           "and signed with the key in its own directory")
    sink.clear()
    start = len(dc.log_text())
    # Dovecot's address parser already refuses ".." (unit tests cover it); '/' is atext.
    data = ss.message("orders@etc/shop.example.org", "path in the From domain")
    tap.eq(session.send(data), None, "a From domain with '/': accepted")
    session.close()
    relayed = sink.wait_for(1)[0].data
    sink.clear()
    tap.ok(relayed.endswith(data) and not ss.signature_headers(relayed),
           "and relayed unsigned")
    lines = dc.log_lines("dkim: not signed", start=start)
    # The author-domain rule refuses it before the KeyTable's own check of what may stand
    # for '%' (tests/unit/test-keytable.c covers that one).
    tap.ok(len(lines) == 1 and "no author domain (the From address has no valid domain "
           "name)" in lines[0],
           "the log says why (the sender's doing, not a signing failure)", "\n".join(lines))
    keys.write("SigningTable", SIGNINGTABLE)


def check_pattern_warning(dc, sink, keys):
    """An unanchored refile: pattern is logged as a warning once per load of the table."""
    start = len(dc.log_text())
    keys.write("SigningTable", "*example.com rot._domainkey.example.com\n")
    session = ss.Session(dc, USER)
    for what in ("first message after the edit", "second message"):
        tap.eq(session.send(ss.message(USER, what)), None, f"*example.com: {what} accepted")
    session.close()
    sink.wait_for(2)
    sink.clear()
    warnings = dc.log_lines("Warning: ", start=start)
    tap.ok(len(warnings) == 1 and "dkim: " in warnings[0] and
           "line 1: the pattern '*example.com' also matches other domains ending in "
           "'example.com', such as evil-example.com; anchor it: '*@example.com'" in warnings[0],
           "one warning for the load, naming the anchored form", "\n".join(warnings))
    keys.write("SigningTable", SIGNINGTABLE)


def check_configuration_error(dc, sink, keys):
    start = len(dc.log_text())
    session = ss.Session(dc, MISCONFIGURED)
    refusal = session.send(ss.message(MISCONFIGURED, "misconfigured"))
    session.close()
    tap.ok(refusal is not None and refusal[0] == 451,
           "a setting mistake tempfails the message rather than relaying it unsigned",
           refusal)
    tap.ok(dc.log_lines(r"Error: .*configuration error: dkim_sign_canonicalization: 'loose'",
                        start=start), "and the log names the setting")
    tap.eq(sink.messages, [], "nothing relayed")


tap.run(main)

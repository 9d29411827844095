#!/usr/bin/python3
"""Self-check of the test infrastructure in tests/lib, with real components and no project code.

If this fails, plugin test failures mean nothing: it proves that the private NSD serves long
TXT records and DNSSEC outcomes a validating libunbound sees as secure/insecure/bogus, that
the three DKIM oracles agree with each other and with RFC 8463, that the SMTP sink receives
DATA and BDAT, and that a private Dovecot delivers (LMTP, LDA, Sieve), relays submissions and
stops without leftovers.

Run: PYTHONPATH=tests/lib /usr/bin/python3 tests/test-harness.py
"""
import os
import re
import smtplib
import time

import dnstable
import dovecot
import nsd
import oracles
import procutil
import resolver
import shared
import smtpclient
import smtpsink
import tap

RFC = shared.path("corpus", "rfc-examples")
KEYS = shared.path("bench", "keys")
DOMAIN = "example.org"
TIMESTAMP = 1700000000

MESSAGE = (b"From: Alice <alice@example.org>\r\n"
           b"To: Bob <bob@test.example>\r\n"
           b"Subject: harness self-check\r\n"
           b"Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"
           b"Message-ID: <harness@example.org>\r\n"
           b"\r\n"
           b"Hello.\r\n"
           b".a line starting with a dot\r\n")


def read(path):
    with open(path, "rb") as handle:
        return handle.read()


def check_nsd():
    rsa_record = oracles.SigningKey.generate("rsa-sha256", 2048).dns_record()
    tricky = 'quote " and backslash \\ ' + "x" * 300
    records = {f"rsa._domainkey.{zone}": rsa_record
               for zone in (nsd.SECURE_ZONE, nsd.BOGUS_ZONE, nsd.INSECURE_ZONE)}
    records["tricky.example.org"] = tricky
    with nsd.NsdServer(records) as dns:
        name = f"rsa._domainkey.{nsd.SECURE_ZONE}"
        reply = dns.drill(name)
        tap.ok({"aa", "rd"} <= reply.flags, "NSD answers an RD=1 query authoritatively",
               reply)
        [strings] = dns.txt_strings(name)
        tap.ok(len(rsa_record) > 255 and len(strings) > 1
               and all(len(s) <= 255 for s in strings),
               f"{len(rsa_record)}-byte TXT served as {len(strings)} strings of <= 255 bytes",
               [len(s) for s in strings])
        tap.eq(b"".join(strings).decode(), rsa_record, "the strings concatenate to the record")
        [strings] = dns.txt_strings("tricky.example.org")
        tap.eq(b"".join(strings).decode(), tricky, '" and \\ survive zone-file quoting')
        tap.eq(dns.drill("missing.example.org").rcode, "NXDOMAIN", "absent name: NXDOMAIN")

        for zone, status in ((nsd.SECURE_ZONE, "secure"), (nsd.INSECURE_ZONE, "insecure"),
                             (nsd.BOGUS_ZONE, "bogus")):
            answer = resolver.unbound_host(dns, f"rsa._domainkey.{zone}")
            tap.eq(answer.status, status, f"unbound-host validates {zone} as {status}")
        answer = resolver.unbound_host(dns, name)
        tap.eq(answer.texts, [rsa_record], "unbound-host reassembles the long record")

        dns.stop()
        started = time.monotonic()
        answer = resolver.unbound_host(dns, name, timeout=15)
        elapsed = time.monotonic() - started
        tap.ok(answer.rcode == "SERVFAIL" and elapsed < 10,
               f"NSD stopped: unbound-host gives SERVFAIL ({elapsed:.1f}s)", answer.output)
        dns.restart()
        tap.eq(resolver.unbound_host(dns, name).status, "secure", "restarted NSD answers")


def check_oracles():
    reason = shared.absent()
    if reason:
        tap.skip("the oracles against RFC 8463 and each other", reason)
        return
    signed = read(os.path.join(RFC, "rfc8463", "A.3-signed.eml"))
    table = os.path.join(RFC, "dns.txt")
    for oracle in oracles.ALL:
        results = oracle.verify(signed, table)
        got = [(r.algorithm, r.result) for r in results]
        if oracle.supports_ed25519:
            tap.eq(got, [("ed25519-sha256", "pass"), ("rsa-sha256", "pass")],
                   f"{oracle} verifies both RFC 8463 A.3 signatures")
        else:
            tap.eq(got[1], ("rsa-sha256", "pass"), f"{oracle} verifies RFC 8463 A.3 (rsa)")
            tap.skip(f"{oracle} verifies RFC 8463 A.3 (ed25519)", f"{oracle} has no Ed25519")

    seed = read(os.path.join(RFC, "rfc8463", "A.1-ed25519.private.b64"))
    converted = oracles.SigningKey.load(oracles.ed25519_seed_to_pem(seed))
    tap.eq([converted.dns_record()],
           dnstable.load(table)["brisbane._domainkey.football.example.com"],
           "RFC 8463 seed -> PKCS#8 PEM -> the published key record")

    keys = {"rsa-sha256": oracles.SigningKey.load(os.path.join(KEYS, "rsa2048.pem")),
            "ed25519-sha256": oracles.SigningKey.load(os.path.join(KEYS, "ed25519.seed.b64"))}
    records = {f"{alg[:3]}._domainkey.{DOMAIN}": key.dns_record() for alg, key in keys.items()}
    for signer in oracles.ALL:
        for algorithm, key in keys.items():
            if key.is_ed25519 and not signer.supports_ed25519:
                tap.skip(f"{signer} signs {algorithm}", f"{signer} has no Ed25519")
                continue
            message = signer.sign(MESSAGE, DOMAIN, algorithm[:3], key, algorithm,
                                  headers=["from", "to", "subject", "date"],
                                  timestamp=TIMESTAMP)
            for verifier in oracles.ALL:
                if verifier is signer:
                    continue
                name = f"{signer} signs {algorithm}, {verifier} verifies"
                if key.is_ed25519 and not verifier.supports_ed25519:
                    tap.skip(name, f"{verifier} has no Ed25519")
                    continue
                results = verifier.verify(message, records)
                tap.eq([r.result for r in results], ["pass"], name)
            tampered = message.replace(b"Hello.", b"Hullo.")
            tap.eq([r.result for r in signer.verify(tampered, records)], ["fail"],
                   f"{signer} rejects its own {algorithm} signature on a changed body")

    dkimpy = oracles.DKIMPY
    message = dkimpy.sign(MESSAGE, DOMAIN, "rsa", keys["rsa-sha256"], timestamp=TIMESTAMP)
    for value, expected in ((dnstable.NXDOMAIN, "permerror"), (dnstable.TIMEOUT, "temperror")):
        results = dkimpy.verify(message, {f"rsa._domainkey.{DOMAIN}": value})
        tap.eq([r.result for r in results], [expected], f"dkimpy: key {value} -> {expected}")
    try:
        oracles.OPENDKIM.sign(MESSAGE, DOMAIN, "rsa", keys["rsa-sha256"],
                              canonicalization="nonsense/relaxed")
        tap.ok(False, "a tool failure raises OracleError")
    except oracles.OracleError as exc:
        tap.ok("nonsense" in str(exc), "a tool failure raises OracleError", exc)


def check_sink():
    with smtpsink.SmtpSink() as sink:
        with smtplib.SMTP(sink.host, sink.port, timeout=10) as smtp:
            smtpclient.send(smtp, "a@example.org", ["b@test.example"], MESSAGE)
            smtpclient.send(smtp, "a@example.org", ["c@test.example", "d@test.example"],
                            MESSAGE, bdat=True, chunk_size=50)
        procutil.run(["swaks", "--server", sink.host, "--port", str(sink.port),
                      "--from", "s@example.org", "--to", "t@test.example",
                      "--header", "Subject: swaks", "--silent", "2"], "swaks")
        first, second, third = sink.wait_for(3)
        tap.ok(first.transfer == "DATA" and first.data == MESSAGE,
               "sink: DATA message stored exactly (dot-unstuffed)", first)
        tap.ok(second.transfer == "BDAT" and second.data == MESSAGE
               and second.rcpt_tos == ["c@test.example", "d@test.example"],
               "sink: BDAT message in several chunks stored exactly", second)
        tap.ok(third.mail_from == "s@example.org" and b"Subject: swaks" in third.data,
               "sink: swaks delivers", third)


def check_dovecot():
    with smtpsink.SmtpSink() as sink:
        instance = dovecot.Dovecot(relay_port=sink.port)
        with instance as dc:
            replies = dc.deliver_lmtp("s@example.org", [dc.address("alice"), dc.address("bob")],
                                      MESSAGE)
            tap.ok(all(code == 250 for code, _ in replies.values()) and len(replies) == 2,
                   "LMTP delivery to two recipients", replies)
            # Maildir files have LF line ends (Dovecot's default mail_save_crlf = no).
            tap.ok(len(dc.read_maildir("alice")) == 1 and len(dc.read_maildir("bob")) == 1
                   and oracles.to_crlf(dc.read_maildir("bob")[0]).endswith(MESSAGE),
                   "both maildirs hold the message")

            done = dc.deliver_lda("carol", "s@example.org", MESSAGE)
            tap.ok(done.returncode == 0
                   and oracles.to_crlf(dc.read_maildir("carol")[0]).endswith(MESSAGE),
                   "LDA delivery", done)

            script = 'require "fileinto";\nfileinto "Junk";\n'
            dc.set_sieve_script("alice", script)
            dc.deliver_lmtp("s@example.org", [dc.address("alice")], MESSAGE, tcp=True)
            tap.ok(len(dc.read_maildir("alice", "Junk")) == 1
                   and len(dc.read_maildir("alice")) == 1,
                   "Sieve fileinto Junk (LMTP over TCP)")
            output = dc.sieve_test("alice", script, MESSAGE)
            tap.ok("store message in folder: Junk" in output, "sieve-test runs the script",
                   output)

            dc.submit("alice", dc.address("alice"), ["x@remote.example"], MESSAGE)
            dc.submit("alice", dc.address("alice"), ["y@remote.example"], MESSAGE, bdat=True)
            relayed = sink.wait_for(2)
            tap.ok([m.rcpt_tos for m in relayed] == [["x@remote.example"], ["y@remote.example"]]
                   and all(m.data.endswith(MESSAGE) for m in relayed),
                   "submission (DATA and BDAT) relays to the sink", relayed)

            errors = dc.error_lines()
            tap.ok(not errors, "Dovecot logged no errors", "\n".join(errors))
            dc.stop()
            tap.eq(dc.processes(), [], "Dovecot stopped, no process left")
        tap.ok(not os.path.exists(instance.directory), "instance directory removed")


def late_error_raised(allow):
    """Leaves an instance whose log got an error line after the test's last error_lines():
    what HarnessError said, or None.  The line is written into the file as Dovecot's log
    process would write one from a service's pipe."""
    with smtpsink.SmtpSink() as sink:
        instance = dovecot.Dovecot(relay_port=sink.port)
        try:
            with instance as dc:
                dc.error_lines(allow=allow)
                with open(os.path.join(dc.directory, "log", "dovecot.log"), "a",
                          encoding="utf-8") as log:
                    log.write("Dec 07 06:00:00 lmtp(alice)<1><x>: Error: written late\n")
        except procutil.HarnessError as exc:
            return str(exc)
        finally:
            tap.ok(not os.path.exists(instance.directory),
                   f"late error line, allow={list(allow)}: the directory is removed")
    return None


def check_late_errors():
    raised = late_error_raised(allow=())
    tap.ok(raised is not None and "Error: written late" in raised,
           "an error line after the last error_lines(): leaving the instance fails, naming it",
           raised)
    tap.eq(late_error_raised(allow=("written late",)), None,
           "... unless that error_lines() allowed it")


def check_dovecot_plugins():
    """Plugin wiring with stock Dovecot plugins standing in for ours: mail plugins copied into
    the private module dir and enabled for delivery and submission, a Sieve plugin and its
    extension, and userdb extra fields overriding a plugin setting (also after a reload)."""
    modules = "/usr/lib/dovecot/modules"
    mail_log = [f"{modules}/lib15_notify_plugin.so", f"{modules}/lib20_mail_log_plugin.so"]
    # mail_log's default fields are "uid box msgid size" (2.3: "save: box=INBOX, uid=1,
    # msgid=..."; 2.4 names the mailbox in the prefix: "Mailbox INBOX: save: uid=1, ...").
    saved = r"lmtp\({user}\)\S*: Info: (?:Mailbox INBOX: )?save: (?:box=INBOX, )?uid={uid}"
    with smtpsink.SmtpSink() as sink, dovecot.Dovecot(
            relay_port=sink.port, delivery_plugins=mail_log, submission_plugins=mail_log,
            sieve_plugins=[f"{modules}/sieve/lib90_sieve_extprograms_plugin.so"],
            sieve_extensions=["vnd.dovecot.pipe"],
            userdb_fields={"bob": {"mail_log_fields": "uid"}}) as dc:
        dc.deliver_lmtp("s@example.org", [dc.address("alice"), dc.address("bob")], MESSAGE)
        tap.ok(dc.log_search(saved.format(user="alice", uid=1) + ", msgid="),
               "a delivery plugin runs in lmtp with its default settings", dc.log_text())
        tap.ok(dc.log_search(saved.format(user="bob", uid=1) + "$", flags=re.M),
               "a userdb extra field overrides a plugin setting for one user", dc.log_text())
        output = dc.sieve_test("alice", 'require "vnd.dovecot.pipe";\npipe "x";\n', MESSAGE)
        tap.ok("pipe message to external program" in output,
               "a Sieve plugin is loaded and its extension enabled", output)
        dc.submit("alice", dc.address("alice"), ["x@remote.example"], MESSAGE)
        sink.wait_for(1)
        tap.ok(dc.log_search(r"submission\(alice\)\S*: Debug: Module loaded: \S*mail_log"),
               "a submission plugin is loaded", dc.log_text())
        dc.reload(userdb_fields={})
        dc.deliver_lmtp("s@example.org", [dc.address("bob")], MESSAGE)
        tap.ok(dc.log_search(saved.format(user="bob", uid=2) + ", msgid="),
               "reload applies changed settings", dc.log_text())
        errors = dc.error_lines()
        tap.ok(not errors, "no errors with plugins loaded", "\n".join(errors))


def check_dovecot_imap():
    """What the BURL and statistics tests rely on: IMAP with URLAUTH, submission with BURL,
    users who log in with their full address, and metrics counted by the stats service and
    exported to the log."""
    user = "alice@test.example"
    with smtpsink.SmtpSink() as sink, dovecot.Dovecot(
            relay_port=sink.port, imap=True, users=(user,), full_usernames=True,
            metrics=[dovecot.Metric("deliveries", "event=mail_delivery_finished",
                                    export_to_log=True),
                     dovecot.Metric("imap", "event=imap_command_finished",
                                    group_by=("cmd_name",))]) as dc:
        replies = dc.deliver_lmtp("s@example.org", [user], MESSAGE)
        tap.ok(replies[user][0] == 250 and len(dc.read_maildir(user)) == 1,
               "full_usernames: LMTP delivery to user@domain", replies)
        with dc.imap_login(user) as imap:
            typ, count = imap.select("INBOX")
            # (Not checked: 2.4.1 leaves URLAUTH out of CAPABILITY, GENURLAUTH works.)
            tap.ok(typ == "OK" and count == [b"1"],
                   "IMAP login with the full address; INBOX has the delivered message",
                   (typ, count))
            rump = (f"imap://{user.replace('@', '%40')}@{dc.settings.hostname}:{dc.imap_port}"
                    f"/INBOX;UIDVALIDITY={imap.response('UIDVALIDITY')[1][0].decode()}/;UID=1;"
                    f"urlauth=submit+{user.replace('@', '%40')}")
            typ, reply = imap.xatom("GENURLAUTH", f'"{rump}"', "INTERNAL")
            _, urls = imap.response("GENURLAUTH")
        tap.ok(typ == "OK" and urls and urls[0] and urls[0].decode().strip('"').startswith(
            rump + ":internal:"), "GENURLAUTH gives a URL", (typ, reply, urls))
        url = urls[0].decode().strip('"') if typ == "OK" and urls and urls[0] else None
        if url:
            with smtplib.SMTP("127.0.0.1", dc.submission_port, timeout=30) as smtp:
                smtp.ehlo("client.test.example")
                smtp.login(user, dc.settings.password)
                smtpclient.send_chunks(smtp, user, ["x@remote.example"], [url])
            [relayed] = sink.wait_for(1)
            tap.ok(oracles.to_crlf(relayed.data).endswith(
                oracles.to_crlf(dc.read_maildir(user)[0])),
                "submission BURL fetches the stored message and relays it", relayed)
        else:
            tap.ok(False, "submission BURL fetches the stored message and relays it")

        dump = dc.doveadm("stats", "dump")
        rows = [row.split("\t") for row in dump.splitlines()]
        counts = {row[0]: row[rows[0].index("count")] for row in rows[1:]} if rows else {}
        tap.ok(counts.get("deliveries") == "1" and counts.get("imap_SELECT") == "1",
               "metrics counted by the stats service, grouped by a field", dump)
        dc.log_search('"event":"mail_delivery_finished"')
        exported = [line for line in dc.log_text().splitlines()
                    if '"event":"mail_delivery_finished"' in line]
        tap.ok(len(exported) == 1 and '"end_time":' in exported[0],
               "an exported metric's events appear in the log as JSON", exported)
        errors = dc.error_lines()
        tap.ok(not errors, "no errors with IMAP, URLAUTH and metrics", "\n".join(errors))


def main():
    started = time.monotonic()
    tap.diag(f"Dovecot {dovecot.version_name()} (config in its syntax)")
    check_nsd()
    check_oracles()
    check_sink()
    check_dovecot()
    check_late_errors()
    check_dovecot_plugins()
    check_dovecot_imap()
    tap.diag(f"harness self-check took {time.monotonic() - started:.1f}s")


tap.run(main)

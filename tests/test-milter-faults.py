"""dkim-milter when things go wrong, through a real Postfix (private instance relaying to an
SMTP sink), keys served by NSD.

- a key file the milter cannot read: the client is told to try again (451, On-SignatureError
  tempfail), or the mail goes out unsigned with On-SignatureError accept; never lost, and signed
  again once the key is readable;
- the milter stopped: Postfix's milter_default_action decides (tempfail: 451; accept: relayed
  unsigned);
- a 20 MB message, signed and verified, in bounded memory (the body is streamed);
- 200 SMTP sessions at once, each a milter connection: every message signed;
- sessions that end in the middle of a message (abort, close): nothing leaks (the milter's
  exit status under ASan) and the next message is signed.
"""
import os
import socket
import threading
import time

import dkimmilter
import dkimtools
import milter_setup as ms
import nsd
import oracles
import postfix
import smtpsink
import tap

KEYTABLE = "rsa._domainkey.example.com example.com:rsa2026:{keys}/example.com/rsa2026.private\n"
SIGNINGTABLE = "*@example.com rsa._domainkey.example.com\n"
ALICE = "alice@example.com"
CONCURRENT = 200
# Peak resident memory a 20 MB message may add: the body is streamed, so this only has to hold
# libmilter's chunks and what the allocator (and ASan's small quarantine) keeps.
MEMORY_GROWTH_LIMIT_KB = 16 * 1024


def main():
    if not ms.postfix_available():
        return
    with ms.KeyDirectory() as keys:
        key = keys.genkey("example.com", "rsa2026")
        keys.write("KeyTable", KEYTABLE.format(keys=keys.directory))
        keys.write("SigningTable", SIGNINGTABLE)
        with nsd.NsdServer(keys.records) as dns, smtpsink.SmtpSink() as sink:
            config = ms.config(keys, dns)
            with dkimmilter.DkimMilter(config) as milter, postfix.Postfix(
                    relay_port=sink.port, milter=milter.postfix_socket) as pf:
                with ms.logs_on_failure(milter, pf):
                    unreadable_key(milter, pf, sink, dns, key, config)
                    large_message(milter, pf, sink, dns, keys)
                    concurrent(milter, pf, sink, dns)
                    aborted(milter, pf, sink, dns)
                    # the unreadable key's errors were expected
                    ms.check_milter_stop(milter, allow=[r"signing failed"])
                    milter_stopped(milter, pf, sink)
                # the milter down is only a warning for Postfix
                ms.check_postfix_log(pf)


def unreadable_key(milter, pf, sink, dns, key, config):
    start = len(milter.log_text())
    os.chmod(key, 0)
    try:
        unreadable = os.geteuid() != 0 or ms.RUN_USER != "root"
        if not unreadable:
            tap.skip("an unreadable key", "the milter runs as root, which reads any file")
            return
        answer = ms.refusal(lambda: pf.send(ALICE, ["x@remote.example"],
                                         ms.message(ALICE, "unreadable key")))
        tap.ok(answer is not None and answer[0] == 451 and "4.3.0" in answer[1],
               "a key the milter cannot read: 451 4.3.0, the client tries again", answer)
        tap.eq(sink.messages, [], "nothing relayed")
        log = milter.log_text()[start:]
        tap.ok("error:" in log and "signing failed" in log and "rsa2026.private" in log and
               "On-SignatureError tempfail" in log, "the error names the key", log)
        # (a key unreadable at start-up is a configuration error: it must be readable then)
        os.chmod(key, 0o600)
        milter.restart(config + "On-SignatureError accept\n")
        os.chmod(key, 0)
        pf.send(ALICE, ["x@remote.example"], ms.message(ALICE, "unsigned on error"))
        tap.eq(ms.signed_pairs(ms.relayed(sink, "On-SignatureError accept")), [],
               "On-SignatureError accept: passed on unsigned")
        os.chmod(key, 0o600)
        status = milter.stop()
        os.chmod(key, 0)
        tap.ok(status == 0 and dkimmilter.check(milter.config_path).returncode != 0,
               "and dkim-milter -n (as at start-up) refuses the unreadable key")
    finally:
        os.chmod(key, 0o600)
    milter.restart(config)
    pf.send(ALICE, ["x@remote.example"], ms.message(ALICE, "readable again"))
    ms.check_signatures(ms.relayed(sink, "readable again"), dns, [("example.com", "rsa2026")],
                        "the key readable again: signed")


def large_message(milter, pf, sink, dns, keys):
    line = b"A line of a large message, long enough to be realistic but not too long.\r\n"
    big = ms.message(ALICE, "20 MB", body=line * (20 * 1024 * 1024 // len(line)))
    pf.send(ALICE, ["x@remote.example"], ms.message(ALICE, "warm-up"))
    ms.relayed(sink, "warm-up")
    before = milter.memory_kb()
    pf.send(ALICE, ["x@remote.example"], big, bdat=False)
    data = ms.relayed(sink, "20 MB, signed", timeout=180)
    grown = milter.memory_kb() - before
    tap.ok(len(data) > 20_000_000 and data.endswith(big.split(b"\r\n\r\n", 1)[1]),
           "20 MB: relayed whole")
    result = dkimtools.verify(data, "--resolver", f"127.0.0.1@{dns.port}")
    records = ms.served_records(dns, ["rsa2026._domainkey.example.com"])
    tap.ok(result.results() == ["pass"] and
           [r.result for r in oracles.DKIMPY.verify(data, records)] == ["pass"],
           "20 MB: the signature passes (dkim-verify, dkimpy)", result.authres)
    tap.ok(grown < MEMORY_GROWTH_LIMIT_KB,
           f"20 MB signed in bounded memory: peak grew {grown} kB "
           f"(limit {MEMORY_GROWTH_LIMIT_KB} kB)")

    before = milter.memory_kb()
    outside = ms.sign_elsewhere(big.replace(ALICE.encode(), b"news@outside.example"),
                                "outside.example", "out", keys.genkey("outside.example", "out"))
    dns.restart(keys.records)
    pf.send("news@outside.example", ["x@remote.example"], outside,
            client=postfix.EXTERNAL_CLIENT)
    data = ms.relayed(sink, "20 MB, verified", timeout=180)
    grown = milter.memory_kb() - before
    authres = ms.header_values(data, "Authentication-Results")
    tap.ok(authres and "dkim=pass" in authres[0], "20 MB from outside: verified, dkim=pass",
           authres)
    tap.ok(grown < MEMORY_GROWTH_LIMIT_KB,
           f"20 MB verified in bounded memory: peak grew {grown} kB")


def concurrent(milter, pf, sink, dns):
    """200 sessions open at once (each one milter connection), then all send."""
    barrier = threading.Barrier(CONCURRENT + 1, timeout=120)
    failures = []
    peak = {"sockets": 0}

    def session(number):
        try:
            with pf.connect(timeout=180) as smtp:
                smtp.mail(ALICE)
                smtp.rcpt(f"user{number}@remote.example")
                barrier.wait()
                code, text = smtp.data(ms.message(ALICE, f"concurrent {number}"))
                if code != 250:
                    failures.append((number, code, text))
        except Exception as exc:  # noqa: BLE001 - every failure is reported below
            failures.append((number, repr(exc)))
            barrier.abort()

    threads = [threading.Thread(target=session, args=(n,)) for n in range(CONCURRENT)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    try:
        barrier.wait()
        # every session is in the middle of a message: its milter connection is open
        peak["sockets"] = milter.sockets()
    except threading.BrokenBarrierError:
        pass
    for thread in threads:
        thread.join(300)
    took = time.monotonic() - began
    tap.ok(not failures, f"{CONCURRENT} sessions at once: every message accepted "
           f"({took:.1f} s)", failures[:5])
    tap.ok(peak["sockets"] > CONCURRENT,
           f"the milter had a connection for each session ({peak['sockets']} sockets open)")
    messages = ms.relayed(sink, f"{CONCURRENT} sessions", count=CONCURRENT, timeout=300)
    records = ms.served_records(dns, ["rsa2026._domainkey.example.com"])
    results = [[r.result for r in oracles.DKIMPY.verify(data, records)] for data in messages]
    tap.ok(all(result == ["pass"] for result in results),
           f"{CONCURRENT} sessions: every message signed, every signature passes (dkimpy)",
           [r for r in results if r != ["pass"]][:5])


def aborted(milter, pf, sink, dns):
    # A client that goes away in the middle of the data: Postfix aborts and closes.
    with socket.create_connection(("127.0.0.1", pf.port), timeout=30) as sock:
        reader = sock.makefile("rb")
        reader.readline()
        for command in (b"EHLO client.test.example", b"MAIL FROM:<alice@example.com>",
                        b"RCPT TO:<x@remote.example>", b"DATA"):
            sock.sendall(command + b"\r\n")
            while True:
                line = reader.readline()
                if line[3:4] != b"-":
                    break
        sock.sendall(ms.message(ALICE, "cut short")[:200])
    # RSET after a message started, then a whole one on the same connection.
    with pf.connect() as smtp:
        smtp.mail(ALICE)
        smtp.rcpt("x@remote.example")
        smtp.rset()
        smtp.sendmail(ALICE, ["x@remote.example"], ms.message(ALICE, "after RSET"))
    data = ms.relayed(sink, "after an aborted message and a RSET")
    tap.eq(ms.signed_pairs(data), [("example.com", "rsa2026")], "the next message is signed")


def milter_stopped(milter, pf, sink):
    answer = ms.refusal(lambda: pf.send(ALICE, ["x@remote.example"],
                                     ms.message(ALICE, "milter down")))
    tap.ok(answer is not None and answer[0] == 451,
           "milter stopped, milter_default_action = tempfail: 451, the mail stays with the "
           "client", answer)
    pf.restart(milter_default_action="accept")
    pf.send(ALICE, ["x@remote.example"], ms.message(ALICE, "milter down, accept"))
    tap.eq(ms.signed_pairs(ms.relayed(sink, "milter_default_action = accept")), [],
           "milter_default_action = accept: relayed unsigned")


tap.run(main)

#!/usr/bin/python3
"""dkim-milter benchmark: what signing in the MTA costs, against no milter and OpenDKIM.

In one run, a private Postfix (tests/lib/postfix.py) takes mail from Postfix's own
smtp-source on 127.0.0.1 (an internal client, so both milters sign) and relays it to
Postfix's smtp-sink, in three set-ups: no milter, OpenDKIM's milter (Debian's opendkim,
Mode s) and dkim-milter (Mode s), both with the same RSA-2048 key (../shared/bench/keys)
and relaxed/relaxed. For small (about 2 KB) and medium (about 60 KB) messages, with 1 and 20
parallel SMTP sessions, it measures

- throughput: messages per second from the first connection until Postfix's queue is
  empty again (accepted, signed, relayed);
- the milter's CPU time (user + system, all threads, from /proc) per message, given as
  messages per milter CPU second.

Each round runs every case with the three set-ups in a rotated order; the figures are medians
over the rounds, and the ratios are taken within each round (the machine is shared).
Before timing, one message through each milter is checked with dkimpy.

Run as root (Postfix's master starts as root) from the project root after building:

    /usr/bin/python3 bench/milter-bench.py --builddir _build [--messages 1000] [--rounds 3]
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "lib"))

import oracles            # noqa: E402  (tests/lib is not an installed package)
import postfix            # noqa: E402
import procutil           # noqa: E402
import smtpsink           # noqa: E402

SENDER = "alice@example.com"
SELECTOR = "bench"
SIZES = {"small": 2_000, "medium": 60_000}
SESSIONS = (1, 20)
SETUPS = ("no milter", "OpenDKIM", "dkim-milter")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def message(size):
    """A plain message of about `size` bytes, From our signing domain."""
    line = b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod.\r\n"
    head = (b"From: Alice <alice@example.com>\r\nTo: Bob <bob@remote.example>\r\n"
            b"Subject: benchmark\r\nDate: Mon, 07 Dec 2026 10:00:00 +0000\r\n"
            b"Message-ID: <bench@example.com>\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: text/plain; charset=us-ascii\r\n\r\n")
    return head + line * max(1, (size - len(head)) // len(line))


def cpu_seconds(pid, children=False):
    """User + system CPU seconds of a process (all its threads), with `children` also those
    of the children it has reaped."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / CLOCK_TICKS


def postfix_cpu(pf):
    """CPU seconds of the whole Postfix instance: the master with the daemons it reaped, and
    the daemons alive now."""
    master = pf._master.pid
    return cpu_seconds(master, children=True) + sum(
        cpu_seconds(pid) for pid in pf.processes() if pid != master)


class Milters:
    """The two milters, started once with the same key."""

    def __init__(self, builddir, work, key):
        self.work = work
        self.processes = {}
        self.sockets = {}
        keytable = os.path.join(work, "KeyTable")
        with open(keytable, "w", encoding="ascii") as handle:
            handle.write(f"k example.com:{SELECTOR}:{key}\n")
        signingtable = os.path.join(work, "SigningTable")
        with open(signingtable, "w", encoding="ascii") as handle:
            handle.write("*@example.com k\n")
        # Unix sockets, as Debian sets OpenDKIM up: over TCP, Postfix's milter client
        # (no TCP_NODELAY) and the milter's delayed ACKs cost any libmilter milter about
        # 40 ms per message and session (doc/performance.md).
        common = (f"Mode s\nKeyTable {keytable}\nSigningTable refile:{signingtable}\n"
                  "Canonicalization relaxed/relaxed\nOversignHeaders From\nSyslog no\n"
                  "UMask 000\n")
        self._start("dkim-milter", [os.path.join(builddir, "milter", "dkim-milter"), "-f"],
                    common)
        # OpenDKIM's RequireSafeKeys refuses keys below /tmp; this one is safe.
        self._start("OpenDKIM", ["opendkim", "-f"],
                    common + "SignatureAlgorithm rsa-sha256\nRequireSafeKeys no\n")

    def _start(self, name, argv, config):
        path = os.path.join(self.work, f"{name}.conf")
        with open(path, "w", encoding="ascii") as handle:
            handle.write(config)
        socket_path = os.path.join(self.work, f"{name}.sock")
        log = open(os.path.join(self.work, f"{name}.log"), "wb")
        self.processes[name] = subprocess.Popen(
            argv + ["-x", path, "-p", f"local:{socket_path}"], stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True)
        self.sockets[name] = socket_path
        procutil.wait_until(lambda: os.path.exists(socket_path), 30,
                            f"{name} to listen on {socket_path}")

    def socket(self, setup):
        return None if setup == "no milter" else f"unix:{self.sockets[setup]}"

    def log(self, setup):
        with open(os.path.join(self.work, f"{setup}.log"), encoding="utf-8",
                  errors="replace") as handle:
            return handle.read()

    def cpu(self, setup):
        return 0.0 if setup == "no milter" else cpu_seconds(self.processes[setup].pid)

    def stop(self):
        for process in self.processes.values():
            procutil.stop_process(process)


def queue_empty(pf):
    return not any(pf.queue_ids(queue) for queue in ("incoming", "active", "deferred",
                                                     "maildrop"))


def run_case(pf, milters, setup, data_path, count, sessions):
    """One timed run; returns (msg/s, msg per milter CPU second or None, Postfix CPU ms per
    message)."""
    before = milters.cpu(setup)
    postfix_before = postfix_cpu(pf)
    began = time.monotonic()
    procutil.run(["smtp-source", "-s", str(sessions), "-m", str(count), "-f", SENDER,
                  "-t", "bob@remote.example", "-F", data_path, f"127.0.0.1:{pf.port}"],
                 "smtp-source", timeout=1800)
    procutil.wait_until(lambda: queue_empty(pf), 1800, "Postfix's queue to empty",
                        interval=0.02)
    elapsed = time.monotonic() - began
    cpu = milters.cpu(setup) - before
    postfix_ms = (postfix_cpu(pf) - postfix_before) * 1000 / count
    return count / elapsed, (count / cpu if cpu > 0 else None), postfix_ms


def check_signing(pf, milters, key):
    """One message through each milter, to a Python sink, verified by dkimpy."""
    record = oracles.SigningKey.load(key).dns_record()
    with smtpsink.SmtpSink() as sink:
        for setup in SETUPS[1:]:
            pf.restart(relay_port=sink.port, milter=milters.socket(setup))
            try:
                pf.send(SENDER, ["bob@remote.example"], message(2000))
            except Exception:
                sys.exit(f"{setup} does not work:\n{milters.log(setup)}\n"
                         f"{pf.log_text()[-3000:]}")
            [relayed] = sink.wait_for(1, timeout=60)
            sink.clear()
            results = [r.result for r in oracles.DKIMPY.verify(
                relayed.data, {f"{SELECTOR}._domainkey.example.com": record})]
            if results != ["pass"]:
                sys.exit(f"{setup} did not sign as expected: {results}")
            print(f"check: {setup} signs, dkimpy says pass")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--builddir", default="_build")
    parser.add_argument("--messages", type=int, default=1000,
                        help="small messages per run (medium: half as many)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    builddir = os.path.abspath(args.builddir)
    key_source = os.path.join(HERE, "..", "..", "shared", "bench", "keys", "rsa2048.pem")

    work = tempfile.mkdtemp(prefix="dkim-milter-bench-")
    os.chmod(work, 0o755)
    sink_port = procutil.free_port()
    sink = subprocess.Popen(["smtp-sink", "-u", "nobody", f"127.0.0.1:{sink_port}", "256"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    milters = None
    try:
        key = os.path.join(work, "rsa2048.pem")
        shutil.copyfile(key_source, key)
        os.chmod(key, 0o600)
        data_paths = {}
        for name, size in SIZES.items():
            data_paths[name] = os.path.join(work, f"{name}.eml")
            with open(data_paths[name], "wb") as handle:
                # smtp-source sends the file with LF line ends and turns them into CRLF
                handle.write(message(size).replace(b"\r\n", b"\n"))
        milters = Milters(builddir, work, key)
        with postfix.Postfix(relay_port=sink_port) as pf:
            check_signing(pf, milters, key)
            results = {}
            for round_number in range(args.rounds):
                order = SETUPS[round_number % 3:] + SETUPS[:round_number % 3]
                for name in SIZES:
                    count = args.messages if name == "small" else args.messages // 2
                    for sessions in SESSIONS:
                        for setup in order:
                            pf.restart(relay_port=sink_port, milter=milters.socket(setup))
                            rate, per_cpu, postfix_ms = run_case(
                                pf, milters, setup, data_paths[name], count, sessions)
                            results.setdefault((name, sessions, setup), []).append(
                                (rate, per_cpu, postfix_ms))
                            print(f"round {round_number + 1}: {name}, {sessions} sessions, "
                                  f"{setup}: {rate:.0f} msg/s"
                                  + (f", {per_cpu:.0f} msg per milter CPU s" if per_cpu
                                     else "")
                                  + f", Postfix {postfix_ms:.2f} ms CPU per msg", flush=True)
            report(results, args)
    finally:
        if milters is not None:
            milters.stop()
        procutil.stop_process(sink)
        shutil.rmtree(work, ignore_errors=True)


def report(results, args):
    print()
    print(f"{args.rounds} rounds, {args.messages} small / {args.messages // 2} medium "
          "messages per run; medians (ratios: median of the per-round ratios)")
    print()
    print("| messages | sessions | no milter msg/s | OpenDKIM msg/s | dkim-milter msg/s "
          "| dkim-milter / no milter | OpenDKIM msg per CPU s | dkim-milter msg per CPU s "
          "| dkim-milter / OpenDKIM per CPU s | Postfix CPU ms/msg: none, OpenDKIM, "
          "dkim-milter |")
    print("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    for name in SIZES:
        for sessions in SESSIONS:
            runs = {setup: results[(name, sessions, setup)] for setup in SETUPS}
            rate = {s: statistics.median(run[0] for run in runs[s]) for s in SETUPS}
            cpu = {s: statistics.median(run[1] for run in runs[s]) for s in SETUPS[1:]}
            postfix_ms = {s: statistics.median(run[2] for run in runs[s]) for s in SETUPS}
            vs_none = statistics.median(
                ours[0] / none[0] for ours, none in zip(runs["dkim-milter"],
                                                        runs["no milter"]))
            vs_opendkim = statistics.median(
                ours[1] / theirs[1] for ours, theirs in zip(runs["dkim-milter"],
                                                            runs["OpenDKIM"]))
            print(f"| {name} | {sessions} | {rate['no milter']:.0f} | {rate['OpenDKIM']:.0f} "
                  f"| {rate['dkim-milter']:.0f} | {vs_none:.2f} | {cpu['OpenDKIM']:.0f} "
                  f"| {cpu['dkim-milter']:.0f} | {vs_opendkim:.2f} | "
                  + ", ".join(f"{postfix_ms[s]:.2f}" for s in SETUPS) + " |")

main()

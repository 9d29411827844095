#!/usr/bin/python3
"""LMTP delivery throughput with and without the DKIM delivery plugin (lib95_dkim_plugin.so).

Two private Dovecot instances run side by side, identical except that one loads the plugin
and the Sieve extension (both load Sieve itself, with no user scripts). The same DKIM-signed
message (rsa-sha256, 2048-bit key, about 3 KiB) goes to both over one LMTP connection each,
as an MTA with connection caching does, with 1 and then 10 recipients per transaction,
starting from empty mailboxes. Transactions alternate between the two instances one by one,
so that whatever else the machine does hits both alike. Each connection's first transaction
is not counted: it starts the lmtp process and, with the plugin, fills the resolver's cache,
so every counted verification finds its key cached.

Measures per cell:
- messages/s: transactions divided by their total time at the LMTP client (includes the
  client, the LMTP protocol and the rest of the machine's load);
- delivery time per message: Dovecot's own mail_delivery_finished event durations (one per
  recipient, in microseconds, the deliver hook included) summed per transaction, median over
  the transactions: what the plugin changes, far less disturbed by other load;
- the verification's own time: median duration of the plugin's dkim_verify_finished events
  (reading the message, hashing, the cached key, the RSA check, the log line);
- verifications per message: how many the plugin logged (1, whatever the recipient count).

With --callgrind DIR (a directory that does not exist yet), the lmtp processes run under
valgrind's callgrind instead, which dumps one profile per transaction into DIR/without and
DIR/with; the cells then report the median number of instructions the lmtp process executed
per transaction (everything it did for the transaction: the LMTP commands, the recipients'
mail users, the deliveries), which unlike times does not depend on the machine's other load.
Each connection's first profile (the process start and the warm-up transaction) is not
counted. callgrind_annotate shows where the instructions went in any one of them.

Run from the source tree, with the project built in BUILDDIR:
  DKIM_TOP_BUILDDIR=BUILDDIR PYTHONPATH=tests/lib /usr/bin/python3 bench/lmtp-deliver.py
Options: --messages N per cell (default 1000; with --callgrind, 20 is plenty), --fsync MODE:
Dovecot's mail_fsync (default "optimized", Dovecot's own default; "never" takes the disk out
of the measurement and so shows the plugin's cost at its largest), --callgrind DIR.
"""
import argparse
import collections
import glob
import json
import os
import shutil
import smtplib
import statistics
import tempfile
import time

import dkimplugin
import dovecot
import nsd
import oracles
import procutil
import smtpclient

DOMAIN = nsd.SECURE_ZONE
SENDER = f"news@{DOMAIN}"
USERS = tuple(f"user{i:02d}" for i in range(10))
BODY = ("Hello,\n\n" + "This is this week's newsletter, with a few paragraphs of text. " * 40
        + "\n\nRegards,\nthe newsletter team\n")
# Dovecot's stats service writes every delivery and verification event into the log.
EXPORT_DELIVERIES = dovecot.Metric(
    "deliveries", "event=mail_delivery_finished OR event=dkim_verify_finished",
    export_to_log=True)


def signed_message(keydir):
    key = oracles.SigningKey.generate("rsa-sha256")
    keyfile = dkimplugin.write_private_key(key, os.path.join(keydir, "bench.pem"))
    message = dkimplugin.message(f"Newsletter <{SENDER}>", "Weekly news", BODY)
    signed = dkimplugin.dkim_sign(message, "-d", DOMAIN, "-s", "bench", "-k", keyfile)
    return signed, {f"bench._domainkey.{DOMAIN}": key.dns_record()}


def run_cell(servers, message, recipients, count):
    """Sends `count` counted transactions to each server, alternating, after one uncounted
    each; returns {name: (client seconds, [LMTP transaction ids])}."""
    connections, results = {}, {}
    try:
        for name, server in servers.items():
            for user in USERS:
                shutil.rmtree(os.path.join(server.dc.home(user), "Maildir"),
                              ignore_errors=True)
            connections[name] = smtplib.LMTP(server.dc.lmtp_socket, timeout=60)
            send(server, connections[name], message, recipients)   # warm-up
            results[name] = (0.0, [])
        for i in range(count):
            # alternate who goes first, too
            for name in sorted(servers, reverse=i % 2 == 1):
                started = time.perf_counter()
                transaction_id = send(servers[name], connections[name], message, recipients)
                elapsed, ids = results[name]
                results[name] = (elapsed + time.perf_counter() - started,
                                 ids + [transaction_id])
    finally:
        for lmtp in connections.values():
            lmtp.close()
    return results


def send(server, lmtp, message, recipients):
    """One LMTP transaction; returns its id."""
    addresses = [server.dc.address(u) for u in USERS[:recipients]]
    replies = smtpclient.send_lmtp(lmtp, SENDER, addresses, message)
    if any(code != 250 for code, _ in replies.values()):
        raise RuntimeError(f"delivery failed: {replies}")
    # "2.0.0 <user00@test.example> TRANSACTION-ID Saved"
    return replies[addresses[0]][1].split()[2].decode()


def event_durations(server, name, transaction_ids):
    """{transaction id: summed durations (µs) of the `name` events of these transactions},
    waiting (bounded) until the stats service has logged all of them."""
    wanted = set(transaction_ids)

    def collect():
        totals = collections.defaultdict(int)
        for line in server.dc.log_text().splitlines():
            if f'"event":"{name}"' in line:
                fields = json.loads(line.split(": Info: ", 1)[1])["fields"]
                if fields.get("transaction_id") in wanted:
                    totals[fields["transaction_id"]] += fields["duration"]
        return totals if len(totals) == len(wanted) else None

    return procutil.wait_until(collect, 30, f"the {name} events in the log", interval=0.5)


def callgrind_config(directory):
    """Config text (for the Dovecot that runs) that runs every lmtp process under
    callgrind, writing into `directory` one profile per transaction: --dump-after dumps each
    time LMTP's DATA handler client_default_cmd_data() (exported by lmtp) returns, so part N
    holds what the process did since the end of its transaction N - 1. valgrind needs more
    address space than Dovecot's default vsz_limit."""
    os.makedirs(directory)
    os.chmod(directory, 0o777)  # the lmtp processes may run as nobody
    return (f"service lmtp {{\n"
            f"  executable = /usr/bin/valgrind --tool=callgrind --dump-instr=no"
            f" --callgrind-out-file={directory}/callgrind.out.%p"
            f" --dump-after=client_default_cmd_data {dovecot.DOVECOT_LMTP}\n"
            f"  vsz_limit = {dovecot.SYNTAX[dovecot.version()].unlimited_size}\n}}\n")


def transaction_instructions(directory, known):
    """The instructions of each counted transaction of the lmtp processes that wrote profiles
    into `directory` and are not in `known` (a set of pids, updated), once they have exited:
    [instructions per transaction], and the path of the profile with the median count."""
    def finished():
        # callgrind.out.PID.PART while the process runs, callgrind.out.PID when it exits
        pids = {int(name.split(".")[2]) for name in os.listdir(directory)} - known
        return pids if pids and all(os.path.exists(f"{directory}/callgrind.out.{pid}")
                                    for pid in pids) else None

    pids = procutil.wait_until(finished, 60, "the lmtp processes to exit", interval=0.5)
    known.update(pids)
    counts = []
    for pid in pids:
        for path in glob.glob(f"{directory}/callgrind.out.{pid}.*"):
            if not path.endswith(".1"):  # the process start and the warm-up transaction
                counts.append((profile_total(path), path))
    counts.sort()
    return [count for count, _ in counts], counts[len(counts) // 2][1]


def profile_total(path):
    with open(path, encoding="utf-8", errors="replace") as profile:
        for line in profile:
            if line.startswith("summary:"):
                return int(line.split()[1])
    raise RuntimeError(f"{path}: no summary line")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--fsync", default="optimized", choices=("optimized", "always", "never"))
    parser.add_argument("--callgrind", metavar="DIR")
    args = parser.parse_args()

    # One lmtp process per connection (the harness's service_count = 1) serves a whole
    # cell; no debug logging in the measured path.
    settings = {"users": USERS, "metrics": [EXPORT_DELIVERIES],
                "dovecot_settings": {"mail_fsync": args.fsync, "mail_debug": False}}
    raw_config = {}
    if args.callgrind:
        raw_config = {name: {dovecot.version_name(): callgrind_config(
            os.path.join(args.callgrind, name))} for name in ("without", "with")}
    with tempfile.TemporaryDirectory(prefix="dkim-bench-") as keydir:
        message, records = signed_message(keydir)
        with dkimplugin.MailServer(records, delivery=False, sieve=False, **settings,
                                   raw_config=raw_config.get("without", {})) as plain, \
                dkimplugin.MailServer(records, **settings,
                                      raw_config=raw_config.get("with", {})) as plugin:
            servers = {"without": plain, "with": plugin}
            cells = {}
            profiled = {name: set() for name in servers}
            for rcpts in (1, 10):
                lines_before = len(plugin.verify_lines())
                results = run_cell(servers, message, rcpts, args.messages)
                # + 1: the warm-up transaction is verified too
                verified = (len(plugin.verify_lines()) - lines_before) / (args.messages + 1)
                if args.callgrind:
                    counts = {name: transaction_instructions(
                        os.path.join(args.callgrind, name), profiled[name])
                        for name in servers}
                    cells[rcpts] = {
                        "instructions": {name: statistics.median(c)
                                         for name, (c, _) in counts.items()},
                        "median profile": {name: p for name, (_, p) in counts.items()},
                        "verified": verified}
                    continue
                cells[rcpts] = {
                    "rate": {name: args.messages / elapsed
                             for name, (elapsed, _) in results.items()},
                    "delivery": {name: statistics.median(event_durations(
                        servers[name], "mail_delivery_finished", ids).values()) / 1000
                        for name, (_, ids) in results.items()},
                    "verify": statistics.median(event_durations(
                        plugin, "dkim_verify_finished", results["with"][1]).values()) / 1000,
                    "verified": verified}
            if args.callgrind:
                report_instructions(args, len(message), cells)
            else:
                report(args, len(message), cells)


def report(args, size, cells):
    """Prints the results as a Markdown table (doc/performance.md takes it as is)."""
    print(f"LMTP delivery of a {size}-byte rsa-sha256 message, mail_fsync = {args.fsync}, "
          f"{args.messages} messages per cell.\n")
    print("| recipients | msg/s without | msg/s with | delivery time per msg without "
          "| with | overhead | verification (in it) | verifications per msg |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for rcpts, cell in cells.items():
        rate, delivery = cell["rate"], cell["delivery"]
        print(f"| {rcpts} | {rate['without']:.0f} | {rate['with']:.0f} "
              f"| {delivery['without']:.2f} ms | {delivery['with']:.2f} ms "
              f"| {100 * (delivery['with'] / delivery['without'] - 1):+.1f}% "
              f"| {cell['verify']:.2f} ms | {cell['verified']:.2f} |")


def report_instructions(args, size, cells):
    """Prints the --callgrind results as a Markdown table, and the median profiles."""
    print(f"LMTP delivery of a {size}-byte rsa-sha256 message, mail_fsync = {args.fsync}, "
          f"{args.messages} messages per cell, instructions of the lmtp process per "
          f"transaction (callgrind).\n")
    print("| recipients | instructions without | with | overhead | verifications per msg |")
    print("|---:|---:|---:|---:|---:|")
    for rcpts, cell in cells.items():
        counts = cell["instructions"]
        print(f"| {rcpts} | {counts['without']:,.0f} | {counts['with']:,.0f} "
              f"| {100 * (counts['with'] / counts['without'] - 1):+.1f}% "
              f"| {cell['verified']:.2f} |")
    print("\nMedian profiles (callgrind_annotate --inclusive=yes FILE):")
    for rcpts, cell in cells.items():
        for name, path in cell["median profile"].items():
            print(f"- {rcpts} recipient(s), {name}: {path}")


main()

#!/usr/bin/python3
"""Submission signing benchmark: what the submission_dkim plugin costs per message.

In one run, against the shared benchmark corpus (../shared/bench, RSA-2048 relaxed/relaxed
classes, DKIM-Signature fields removed as the runner contract says):

1. throughput of Dovecot's submission service relaying to a local sink, without and with
   the plugin (same Dovecot, same messages, same client concurrency);
2. the plugin's own time per message, from the duration of its dkim_sign_finished event as
   Dovecot's stats service aggregates it (reading the message, finding From, choosing the
   key, canonicalizing, hashing, signing: everything but the relay);
3. the OpenSSL RSA-2048 signing lower bound for the same class (../shared/bench
   build/openssl_lb sign), and the ratio of 2. to it.

With --tables, instead: the plugin with the key in KeyTable/SigningTable files against the
plugin with both tables and the key in PostgreSQL, read through Dovecot's dict server
(the shipped conf/dovecot-*/92-dkim-dict.conf setup, a private cluster from
tests/lib/postgres.py), same messages, rounds interleaved. Each connection sends its share
of the messages twice, in one submission process: the first pass meets every From address
for the first time in that process (a dict: table then asks the dict for the address, the
domain and key being cached after the first message), the second pass finds every lookup
in the process's cache (dkim_table_cache_ttl): the warm cache.

Run from the project root after building (the plugin is taken from the build dir):

    /usr/bin/python3 bench/submission-bench.py --builddir _build [--messages 600]
    /usr/bin/python3 bench/submission-bench.py --builddir _build --tables

Needs the Debian packages the tests need (dovecot-submissiond, python3; for --tables
postgresql and dovecot-pgsql) and a built ../shared/bench (its run.sh builds openssl_lb
and the corpus).
"""
import argparse
import os
import re
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "lib"))
# where tests/lib finds the shipped configuration
os.environ.setdefault("DKIM_TOP_SRCDIR", os.path.dirname(HERE))

import dkimkeys           # noqa: E402  (tests/lib is not an installed package)
import dovecot            # noqa: E402
import postgres           # noqa: E402
import smtpclient         # noqa: E402
import smtplib            # noqa: E402
import smtpsink           # noqa: E402
import submission_signing  # noqa: E402

USER = "bench@example.com"
CLASSES = ("small-rsa-relaxed", "medium-rsa-relaxed", "large-rsa-relaxed")


def read_class(corpus, name):
    """(settings dict, messages without their DKIM-Signature) of one corpus class."""
    with open(os.path.join(corpus, name, "class.txt"), encoding="utf-8") as handle:
        settings = dict(line.strip().split("=", 1) for line in handle if "=" in line)
    messages = []
    for file_name in sorted(os.listdir(os.path.join(corpus, name))):
        if file_name.endswith(".eml"):
            with open(os.path.join(corpus, name, file_name), "rb") as handle:
                messages.append(strip_signatures(handle.read()))
    return settings, messages


def strip_signatures(message):
    head, _, body = message.partition(b"\r\n\r\n")
    fields = re.split(rb"\r\n(?![ \t])", head)
    kept = [f for f in fields if not f.lower().startswith(b"dkim-signature:")]
    return b"\r\n".join(kept) + b"\r\n\r\n" + body


def login(dc):
    """A submission connection, logged in as USER (use it with `with`)."""
    smtp = smtplib.SMTP("127.0.0.1", dc.submission_port, timeout=120)
    smtp.ehlo("bench.test.example")
    smtp.login(USER, dc.settings.password)
    return smtp


def send_all(smtp, messages):
    for message in messages:
        smtpclient.send(smtp, USER, ["sink@remote.example"], message)


def submit_all(dc, messages, clients):
    """Sends every message once over `clients` parallel connections; returns seconds."""
    chunks = [messages[i::clients] for i in range(clients)]
    errors = []

    def work(chunk):
        try:
            with login(dc) as smtp:
                send_all(smtp, chunk)
        except Exception as exc:  # noqa: BLE001 - reported after the run
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(chunk,)) for chunk in chunks]
    start = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - start
    if errors:
        raise RuntimeError(f"submission failed: {errors[0]!r}")
    return elapsed


def submit_twice(dc, sink, messages, clients):
    """Each of `clients` connections sends its share of the messages, waits for the others,
    then sends it again. Returns [(msg/s, plugin median ms)] of the two passes (the stats
    are reset between them)."""
    chunks = [messages[i::clients] for i in range(clients)]
    between = threading.Barrier(clients + 1)
    errors = []

    def work(chunk):
        try:
            with login(dc) as smtp:
                send_all(smtp, chunk)
                between.wait(600)   # first pass done
                between.wait(600)   # stats taken: go
                send_all(smtp, chunk)
        except Exception as exc:  # noqa: BLE001 - reported after the run
            errors.append(exc)
            between.abort()

    threads = [threading.Thread(target=work, args=(chunk,)) for chunk in chunks]
    passes = []
    try:
        start = time.monotonic()
        for thread in threads:
            thread.start()
        for number in range(2):
            if number == 0:
                between.wait(600)
            else:
                for thread in threads:
                    thread.join()
            elapsed = time.monotonic() - start
            sink.wait_for(len(messages), timeout=300)
            sink.clear()
            time.sleep(0.5)     # the last events on their way to the stats process
            passes.append((len(messages) / elapsed,
                           float(stats_durations(dc, reset=True)["median"]) / 1000))
            if number == 0:
                start = time.monotonic()
                between.wait(600)
    except threading.BrokenBarrierError:
        pass
    for thread in threads:
        thread.join()
    if errors:
        raise RuntimeError(f"submission failed: {errors[0]!r}")
    return passes


def stats_durations(dc, reset=False):
    """{field: value} of the dkim_sign metric (durations in microseconds); with `reset`, the
    metric starts again from zero."""
    dump = subprocess.run(["doveadm", "-c", dc.config_file, "stats", "dump",
                           *(["-r"] if reset else [])],
                          capture_output=True, text=True, check=True, timeout=30)
    rows = [row.split("\t") for row in dump.stdout.splitlines()]
    for row in rows[1:]:
        if row[0] == "dkim_sign":
            return dict(zip(rows[0], row))
    raise RuntimeError(f"no dkim_sign metric in:\n{dump.stdout}")


def lower_bound_ms(shared_bench, name, runs=3):
    """Per-message time (ms) of the OpenSSL RSA-2048 signing lower bound: the fastest of a
    few runs, since one run is short (about 0.1 s) and easily slowed down by other load;
    taking its best makes the ratio to the plugin an upper estimate."""
    times = []
    for _ in range(runs):
        done = subprocess.run([os.path.join(shared_bench, "build", "openssl_lb"), "sign",
                               os.path.join(shared_bench, "corpus"), name],
                              capture_output=True, text=True, check=True, timeout=300)
        count, seconds = re.search(r"signed (\d+) of \d+ in ([\d.]+) seconds",
                                   done.stdout).groups()
        times.append(float(seconds) * 1000 / int(count))
    return min(times)


def measure(args, sink, messages, plugin, plugin_settings):
    """One Dovecot run: (msg/s, plugin median ms or None)."""
    with dovecot.Dovecot(relay_port=sink.port, users=(USER,), full_usernames=True,
                         submission_plugins=[plugin] if plugin else [],
                         plugin_settings=plugin_settings, dovecot_settings={"mail_debug": False},
                         metrics=[dovecot.Metric("dkim_sign", "event=dkim_sign_finished")]) as dc:
        warm_up = messages[:args.clients * 5]
        submit_all(dc, warm_up, args.clients)
        sink.wait_for(len(warm_up), timeout=120)
        sink.clear()
        elapsed = submit_all(dc, messages, args.clients)
        sink.wait_for(len(messages), timeout=300)
        sink.clear()
        median_ms = float(stats_durations(dc)["median"]) / 1000 if plugin else None
        errors = dc.error_lines()
        if errors:
            raise RuntimeError("Dovecot logged errors:\n" + "\n".join(errors[:5]))
    return len(messages) / elapsed, median_ms


def median(values):
    return sorted(values)[len(values) // 2]


def plugin_path(args):
    return os.path.join(args.builddir, "submission-plugin", ".libs",
                        "lib95_submission_dkim_plugin.so")


def class_messages(args, name):
    settings, messages = read_class(os.path.join(args.shared_bench, "corpus"), name)
    return settings, (messages * (args.messages // len(messages) + 1))[:args.messages]


def signing_settings(settings):
    """How the corpus class signs (the key aside)."""
    return {"dkim_sign_canonicalization": settings["canonicalization"],
            "dkim_sign_headers": settings["headers"]}


def bench_tables(args, name, sink, pg, dict_conf, keys):
    """Rounds of: tables in files, tables in PostgreSQL through the dict (order rotated),
    each with both passes of submit_twice()."""
    settings, messages = class_messages(args, name)
    domain, selector = settings["domain"], settings["selector"]
    key = keys.copy_key(os.path.join(args.shared_bench, "corpus", settings["private_key"]),
                        f"{name}.private")
    keyname = f"{selector}._domainkey.{domain}"
    keytable = keys.write(f"{name}.KeyTable", f"{keyname} {domain}:{selector}:{key}\n")
    signingtable = keys.write(f"{name}.SigningTable", f"{domain} {keyname}\n")
    with open(key, encoding="ascii") as handle:
        pem = handle.read()
    pg.psql(dkimkeys.DATABASE, "DELETE FROM dkim_key; DELETE FROM dkim_signing;\n"
            f"INSERT INTO dkim_key VALUES ('{keyname}', '{domain}:{selector}:{pem}');\n"
            f"INSERT INTO dkim_signing VALUES ('{domain}', '{keyname}');\n")
    configs = {
        "files": {"plugin_settings": {"dkim_keytable": keytable,
                                      "dkim_signingtable": signingtable}},
        "dict": dkimkeys.dict_dovecot_settings(dict_conf),
    }
    rounds = []
    for number in range(args.rounds):
        result = {}
        for config in (["files", "dict"] if number % 2 == 0 else ["dict", "files"]):
            dovecot_settings = dict(configs[config])
            dovecot_settings["plugin_settings"] = {
                **signing_settings(settings), **dovecot_settings["plugin_settings"]}
            with dovecot.Dovecot(relay_port=sink.port, users=(USER,), full_usernames=True,
                                 submission_plugins=[plugin_path(args)],
                                 dovecot_settings={"mail_debug": False},
                                 metrics=[dovecot.Metric("dkim_sign",
                                                         "event=dkim_sign_finished")],
                                 **dovecot_settings) as dc:
                passes = submit_twice(dc, sink, messages, args.clients)
                errors = dc.error_lines()
                if errors:
                    raise RuntimeError("Dovecot logged errors:\n" + "\n".join(errors[:5]))
            for label, (rate, median_ms) in zip(("new", "warm"), passes):
                result[f"msgs_{label}_{config}"] = rate
                result[f"ms_{label}_{config}"] = median_ms
                # progress, and the rounds behind the medians
                print(f"{name}, round {number + 1}, tables in {config}, {label} senders: "
                      f"{rate:.0f} msg/s, plugin {median_ms:.3f} ms/msg", file=sys.stderr)
        rounds.append(result)
    summary = {key: median([r[key] for r in rounds]) for key in rounds[0]}
    for label in ("new", "warm"):
        summary[f"throughput_ratio_{label}"] = median(
            [r[f"msgs_{label}_dict"] / r[f"msgs_{label}_files"] for r in rounds])
        summary[f"time_ratio_{label}"] = median(
            [r[f"ms_{label}_dict"] / r[f"ms_{label}_files"] for r in rounds])
    summary.update({"class": name, "messages": len(messages),
                    "mean_bytes": int(settings["mean_bytes"])})
    return summary


def run_tables(args, sink):
    results = []
    password = "bench"
    with postgres.PostgresServer() as pg, submission_signing.KeyDirectory(
            submission_signing.dovecot_run_user()) as keys:
        pg.create_database(dkimkeys.DATABASE, dkimkeys.DATABASE_USER, password)
        pg.run_file(dkimkeys.DATABASE, dkimkeys.shipped_schema(), dkimkeys.DATABASE_USER)
        dict_conf = dkimkeys.shipped_dict_conf(
            pg, password, lambda name, text: keys.write(name, text, 0o644))
        for name in args.classes.split(","):
            results.append(bench_tables(args, name, sink, pg, dict_conf, keys))
    print("| class | mean size | cache | msg/s, tables in files | msg/s, tables in "
          "PostgreSQL | dict ÷ files | plugin ms/msg, files | plugin ms/msg, dict "
          "| dict ÷ files |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        for label in ("warm", "new"):
            print(f"| {r['class']} | {r['mean_bytes']} B | {label} "
                  f"| {r[f'msgs_{label}_files']:.0f} | {r[f'msgs_{label}_dict']:.0f} "
                  f"| {r[f'throughput_ratio_{label}']:.3f} | {r[f'ms_{label}_files']:.3f} "
                  f"| {r[f'ms_{label}_dict']:.3f} | {r[f'time_ratio_{label}']:.3f} |")
    print(f"\nMedians over {args.rounds} rounds (order alternated); {results[0]['messages']} "
          f"messages per class, configuration, pass and round, {args.clients} parallel "
          "connections. Cache \"new\": the first pass (each From address new to the "
          "process); \"warm\": the second. Ratios: median over rounds of the ratio within "
          "the round.")


def bench_class(args, name, sink):
    """Rounds of: without plugin, with plugin, OpenSSL lower bound (order rotated), so
    that each ratio compares measurements taken close together on a noisy machine."""
    settings, messages = class_messages(args, name)
    plugin = plugin_path(args)
    rounds = []
    with submission_signing.KeyDirectory(submission_signing.dovecot_run_user()) as keys:
        key = keys.copy_key(os.path.join(args.shared_bench, "corpus",
                                         settings["private_key"]), "bench.private")
        plugin_settings = {
            "dkim_sign_domain": settings["domain"],
            "dkim_sign_selector": settings["selector"],
            "dkim_sign_key": key,
            **signing_settings(settings)}
        for number in range(args.rounds):
            steps = ["without", "with", "lb"]
            steps = steps[number % 3:] + steps[:number % 3]
            result = {}
            for step in steps:
                if step == "lb":
                    result["lb_ms"] = lower_bound_ms(args.shared_bench, name)
                else:
                    rate, median_ms = measure(args, sink, messages,
                                              plugin if step == "with" else None,
                                              plugin_settings)
                    result[f"msgs_{step}"] = rate
                    if median_ms is not None:
                        result["plugin_ms"] = median_ms
            result["ratio"] = result["plugin_ms"] / result["lb_ms"]
            rounds.append(result)
    summary = {key: median([r[key] for r in rounds]) for key in rounds[0]}
    summary.update({"class": name, "messages": len(messages),
                    "mean_bytes": int(settings["mean_bytes"])})
    return summary


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--builddir", default=os.environ.get("DKIM_TOP_BUILDDIR", "."))
    parser.add_argument("--shared-bench",
                        default=os.path.join(HERE, "..", "..", "shared", "bench"))
    parser.add_argument("--messages", type=int, default=600,
                        help="messages per class and configuration (default 600)")
    parser.add_argument("--clients", type=int, default=2,
                        help="parallel submission connections (default 2)")
    parser.add_argument("--rounds", type=int, default=5,
                        help="rounds; every figure is the median over them (default 5)")
    parser.add_argument("--classes", default=",".join(CLASSES))
    parser.add_argument("--tables", action="store_true",
                        help="compare tables in files with tables in PostgreSQL (dict)")
    args = parser.parse_args()
    args.builddir = os.path.abspath(args.builddir)
    os.environ["DKIM_TOP_BUILDDIR"] = args.builddir

    if args.tables:
        with smtpsink.SmtpSink() as sink:
            run_tables(args, sink)
        return
    results = []
    with smtpsink.SmtpSink() as sink:
        for name in args.classes.split(","):
            results.append(bench_class(args, name, sink))

    print("| class | mean size | msg/s without plugin | msg/s with plugin | added ms/msg "
          "| plugin ms/msg (median) | OpenSSL LB ms/msg | ×LB |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        added = 1000 / r["msgs_with"] - 1000 / r["msgs_without"]
        print(f"| {r['class']} | {r['mean_bytes']} B | {r['msgs_without']:.0f} "
              f"| {r['msgs_with']:.0f} | {added:.3f} | {r['plugin_ms']:.3f} "
              f"| {r['lb_ms']:.3f} | {r['ratio']:.2f} |")
    print(f"\nMedians over {args.rounds} rounds; {results[0]['messages']} messages per class, "
          f"configuration and round, {args.clients} parallel connections. Plugin time: median "
          "duration of the dkim_sign_finished events (doveadm stats dump); ×LB: median over "
          "rounds of plugin time / lower bound measured in the same round.")


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Keys for many servers: two Dovecot instances ("two servers") sign with the KeyTable and
SigningTable that one real PostgreSQL holds, each reading it through its own dict server.

Server A is configured with the shipped conf/dovecot-*/92-dkim-dict.conf (and the shipped
schema and map), only the database connection changed; server B states the same through
the test harness (its dict_server setting). Covers: rows added with plain SQL INSERTs (a key
in PEM, a key file named by the table) signed by both; the per-process cache (a domain
added is signed after at most dkim_table_cache_ttl, not before when the TTL is long); rows
written with `doveadm dict set` land in the same SQL rows and are signed by the other
server; dkim-keys rotate and --switch on one server change what both sign with, the key
kept in the database only, the switch refused until NSD serves the record, mail signed
before the switch still verifying; PostgreSQL stopped: 451 (or relayed unsigned, by
dkim_sign_failure), never a stale key past the TTL, never a lost message, and a log line
that says why; signing again once PostgreSQL is back. Every signature is checked with
dkim-verify, dkimpy and OpenDKIM through NSD.
"""
import secrets
import time

import dkimkeys
import dovecot
import nsd
import postgres
import procutil
import smtpsink
import submission_signing as ss
import tap

TTL = 3
"""dkim_table_cache_ttl of the servers, in seconds."""
ALICE = "alice@example.com"         # example.com: a PEM key in the table, INSERTed
DAVE = "dave@example.net"           # example.net: a key file the table names
BOB = "bob@example.org"             # example.org: added while sessions are open
CAROL = "carol@example.org"         # the same, with a TTL of an hour
ERIN = "erin@example.info"          # example.info: written with doveadm dict set
URSULA = "ursula@example.com"       # dkim_sign_failure = unsigned
USERDB = {CAROL: {"dkim_table_cache_ttl": "1h"},
          URSULA: {"dkim_sign_failure": "unsigned"}}
USERS = (ALICE, DAVE, BOB, CAROL, ERIN, URSULA)
# Expected while PostgreSQL is down (and the plugin's failures tested on purpose).
OUTAGE_ERRORS = [r"dkim: signing failed", r"pgsql", r"dict", r"sql"]


def main():
    password = secrets.token_hex(12)
    run_user = ss.dovecot_run_user()
    with postgres.PostgresServer() as pg, ss.KeyDirectory(run_user) as keys:
        pg.create_database(dkimkeys.DATABASE, dkimkeys.DATABASE_USER, password)
        pg.run_file(dkimkeys.DATABASE, dkimkeys.shipped_schema(), dkimkeys.DATABASE_USER)
        conf = dkimkeys.shipped_dict_conf(pg, password,
                                          lambda name, text: keys.write(name, text, 0o644))
        insert_first_domains(pg, keys)
        server_b = dkimkeys.dict_dovecot_settings(conf)
        server_b["plugin_settings"]["dkim_table_cache_ttl"] = f"{TTL}s"
        with nsd.NsdServer(keys.records) as dns, smtpsink.SmtpSink() as sink, \
                dovecot.Dovecot(relay_port=sink.port, submission_plugins=[ss.PLUGIN],
                                users=USERS, userdb_fields=USERDB, full_usernames=True,
                                includes=(conf,),
                                plugin_settings={"dkim_table_cache_ttl": f"{TTL}s"}) as a, \
                dovecot.Dovecot(relay_port=sink.port, submission_plugins=[ss.PLUGIN],
                                users=USERS, userdb_fields=USERDB, full_usernames=True,
                                **server_b) as b:
            servers = {"A": a, "B": b}
            try:
                check_inserted(servers, sink, dns)
                check_ttl(servers, sink, dns, pg, keys)
                check_doveadm_set(servers, sink, dns, pg, keys)
                selector = check_rotation(servers, sink, dns, pg, keys, run_user)
                for name, dc in servers.items():
                    errors = dc.error_lines()
                    tap.ok(not errors, f"server {name}: no errors before the outage",
                           "\n".join(errors))
                check_outage(servers, sink, dns, pg, selector)
            except Exception:
                for name, dc in servers.items():
                    tap.diag(f"server {name}'s log:\n" + dc.log_text()[-15000:])
                tap.diag("PostgreSQL's log:\n" + pg.log_text()[-5000:])
                raise
            for name, dc in servers.items():
                errors = dc.error_lines(allow=OUTAGE_ERRORS)
                tap.ok(not errors, f"server {name}: no errors but the outage's, no panics",
                       "\n".join(errors))
                tap.ok("PRIVATE KEY" not in dc.log_text(),
                       f"server {name}: no private key in its log (mail_debug = yes)")


def sql_literal(text):
    return "'" + text.replace("'", "''") + "'"


def insert_key(pg, name, domain, selector, key):
    pg.psql(dkimkeys.DATABASE,
            f"INSERT INTO dkim_key (name, value) VALUES ({sql_literal(name)}, "
            f"{sql_literal(f'{domain}:{selector}:{key}')});")


def insert_signing(pg, pattern, keynames):
    pg.psql(dkimkeys.DATABASE,
            f"INSERT INTO dkim_signing (pattern, keynames) VALUES ({sql_literal(pattern)}, "
            f"{sql_literal(keynames)});")


def pem_of(path):
    with open(path, encoding="ascii") as handle:
        return handle.read()


def insert_first_domains(pg, keys):
    """example.com: the key itself in the table (and its file removed: it lives in the
    database only); example.net: the table names a key file."""
    pem_file = keys.genkey("example.com", "sql1", subdir="staging")
    insert_key(pg, "sql1._domainkey.example.com", "example.com", "sql1", pem_of(pem_file))
    keys.remove(pem_file)
    insert_key(pg, "file1._domainkey.example.net", "example.net", "file1",
               keys.genkey("example.net", "file1"))
    insert_signing(pg, "example.com", "sql1._domainkey.example.com")
    insert_signing(pg, "example.net", "file1._domainkey.example.net")


def send(dc, sink, user, subject):
    dc.submit(user, user, ["someone@remote.example"], ss.message(user, subject))
    return ss.relayed_one(sink, subject).data


def check_inserted(servers, sink, dns):
    for name, dc in servers.items():
        data = send(dc, sink, ALICE, f"server {name}, PEM key from SQL")
        ss.check_verifies(data, dns, [("example.com", "sql1")],
                          f"server {name}: signed with the PEM key INSERTed in SQL")
        data = send(dc, sink, DAVE, f"server {name}, key file named in SQL")
        ss.check_verifies(data, dns, [("example.net", "file1")],
                          f"server {name}: signed with the key file the SQL row names")


def check_ttl(servers, sink, dns, pg, keys):
    sessions = {name: ss.Session(dc, BOB) for name, dc in servers.items()}
    long_ttl = ss.Session(servers["A"], CAROL)
    for name, session in sessions.items():
        tap.eq(session.send(ss.message(BOB, f"{name}: before")), None,
               f"server {name}: example.org before its rows: accepted")
    tap.eq(long_ttl.send(ss.message(CAROL, "long TTL: before")), None,
           "long TTL session: accepted")
    relayed = sink.wait_for(3, timeout=60)
    sink.clear()
    tap.ok(all(not ss.signature_headers(m.data) for m in relayed),
           "all three relayed unsigned (no row for example.org)")

    key = keys.genkey("example.org", "new1")
    insert_key(pg, "new1._domainkey.example.org", "example.org", "new1", pem_of(key))
    insert_signing(pg, "example.org", "new1._domainkey.example.org")
    dns.restart(keys.records)
    added = time.monotonic()
    time.sleep(TTL + 1)
    for name, session in sessions.items():
        tap.eq(session.send(ss.message(BOB, f"{name}: after the TTL")), None,
               f"server {name}: the same session after the TTL: accepted")
        session.close()
        data = ss.relayed_one(sink, f"server {name} after the TTL").data
        ss.check_verifies(data, dns, [("example.org", "new1")],
                          f"server {name}: the domain added with INSERTs is signed within "
                          f"the TTL")
    tap.eq(long_ttl.send(ss.message(CAROL, "long TTL: after")), None,
           "long TTL session: accepted")
    long_ttl.close()
    data = ss.relayed_one(sink, "long TTL").data
    tap.ok(not ss.signature_headers(data) and time.monotonic() - added < 3600,
           "with dkim_table_cache_ttl = 1h the process keeps its cached answer (unsigned)")
    data = send(servers["A"], sink, CAROL, "long TTL, new process")
    ss.check_verifies(data, dns, [("example.org", "new1")],
                      "a new process (empty cache) signs example.org")


def doveadm_target(dc):
    """How `doveadm dict` on this server names the dict: the URI on 2.3, the filter on 2.4."""
    spec = dkimkeys.dict_spec()[len("dict:"):]
    return spec if ":" in spec else f"dkim_dict/{spec}"


def check_doveadm_set(servers, sink, dns, pg, keys):
    a, b = servers["A"], servers["B"]
    pem_file = keys.genkey("example.info", "adm1", subdir="staging")
    dns.restart(keys.records)
    target = doveadm_target(a)
    a.doveadm("dict", "set", target, "shared/dkim/key/adm1._domainkey.example.info",
              f"example.info:adm1:{pem_of(pem_file)}")
    a.doveadm("dict", "set", target, "shared/dkim/signing/example.info",
              "adm1._domainkey.example.info")
    keys.remove(pem_file)
    rows = pg.psql(dkimkeys.DATABASE, "SELECT pattern, keynames FROM dkim_signing "
                                      "WHERE pattern = 'example.info'")
    tap.eq(rows.strip(), "example.info|adm1._domainkey.example.info",
           "doveadm dict set on server A: the SQL row")
    rows = pg.psql(dkimkeys.DATABASE, "SELECT domain, selector, value LIKE "
                                      "'%BEGIN PRIVATE KEY%' FROM dkim_key WHERE name = "
                                      "'adm1._domainkey.example.info'")
    tap.eq(rows.strip(), "example.info|adm1|t",
           "and the key row, with the generated domain and selector columns")
    data = send(b, sink, ERIN, "set on A, signed by B")
    ss.check_verifies(data, dns, [("example.info", "adm1")],
                      "server B signs with what doveadm dict set wrote through server A")
    value = b.doveadm("dict", "get", doveadm_target(b), "shared/dkim/signing/example.com")
    tap.eq(value.strip(), "sql1._domainkey.example.com",
           "doveadm dict get on server B reads the row INSERTed with SQL")


def check_rotation(servers, sink, dns, pg, keys, run_user):
    a, b = servers["A"], servers["B"]
    trust_anchor = keys.write("trust-anchors", dkimkeys.read_file(dns.trust_anchor_file),
                              0o644)
    tool = dkimkeys.KeysTool(dkimkeys.dict_spec(), dkimkeys.dict_spec(), run_user, dns=dns,
                             trust_anchor=trust_anchor, doveadm_config=a.config_file)
    done = tool.run("status")
    rows = {(r["DOMAIN"], r["SELECTOR"]): r for r in dkimkeys.status_rows(done.stdout)}
    tap.ok(done.returncode == 0 and rows[("example.com", "sql1")]["STATE"] == "in use" and
           rows[("example.com", "sql1")]["DNS"] == "published, matches",
           "dkim-keys status through server A's dict: every key in use published", done.stdout)

    done = tool.run("rotate", "example.com")
    tap.ok(done.returncode == 0 and "stored in the KeyTable" in done.stdout,
           "rotate without --key-dir: a new key, written to no file", done.stdout + done.stderr)
    selector = [line.split()[2] for line in done.stdout.splitlines()
                if line.startswith("New key ")][0].split(".")[0]
    stored = pg.psql(dkimkeys.DATABASE, "SELECT value FROM dkim_key WHERE name = "
                                        f"'{selector}._domainkey.example.com'")
    tap.ok(stored.startswith(f"example.com:{selector}:-----BEGIN PRIVATE KEY-----"),
           "its private key is in the database", stored[:80])
    done = tool.run("rotate", "example.com", "--switch")
    tap.eq(done.returncode, dkimkeys.EXIT_TEMPFAIL,
           "--switch before NSD serves the record: refused", done.stdout)
    before = send(b, sink, ALICE, "before the switch")
    tap.eq(ss.signed_pairs(before), [("example.com", "sql1")], "until then: the old key")

    dns.restart({**keys.records, **tool.zone_records()})
    done = tool.run("rotate", "example.com", "--switch")
    tap.eq(done.returncode, dkimkeys.EXIT_OK, "published: --switch on server A", done.stdout)
    tap.eq(pg.psql(dkimkeys.DATABASE, "SELECT keynames FROM dkim_signing WHERE pattern = "
                                      "'example.com'").strip(),
           f"{selector}._domainkey.example.com", "the SigningTable row names the new key")
    for name, dc in servers.items():
        data = send(dc, sink, ALICE, f"{name}: after the switch")
        ss.check_verifies(data, dns, [("example.com", selector)],
                          f"server {name}: signs with the new key after the switch")
    ss.check_verifies(before, dns, [("example.com", "sql1")],
                      "the message signed before the switch still verifies (old selector)")
    done = tool.run("retire", "example.com:sql1")
    tap.ok(done.returncode == dkimkeys.EXIT_PROBLEM and "grace period" in done.stderr,
           "retire in the grace period: refused", done.stderr)
    done = tool.run("retire", "example.com:sql1", "--force")
    tap.ok(done.returncode == 0 and not pg.psql(
        dkimkeys.DATABASE, "SELECT name FROM dkim_key WHERE name LIKE 'sql1.%' UNION "
                           "SELECT name FROM dkim_note WHERE name LIKE 'sql1.%'").strip(),
        "retire --force: the key and its note are gone from the database", done.stdout)
    return selector


def check_outage(servers, sink, dns, pg, selector):
    a = servers["A"]
    warm = ss.Session(a, ALICE)
    tap.eq(warm.send(ss.message(ALICE, "warm cache")), None, "a session with a warm cache")
    ss.relayed_one(sink, "warm cache")

    pg.stop()
    time.sleep(TTL + 1)
    data = ss.message(ALICE, "during the outage")
    refusal = warm.send(data)
    tap.ok(refusal is not None and refusal[0] == 451,
           "PostgreSQL down, cached entries past the TTL: 451, no stale key", refusal)
    warm.close()
    for name, dc in servers.items():
        session = ss.Session(dc, ALICE)
        refusal = session.send(data)
        session.close()
        tap.ok(refusal is not None and refusal[0] == 451 and "4.3.0" in refusal[1],
               f"server {name}, new process: 451 4.3.0", refusal)
        line = dc.log_search(r"dkim: signing failed, replied 451.*dict:\S+: cannot look up "
                             r"dkim/signing/alice@example\.com: .+")
        tap.ok(line is not None, f"server {name}: the log says the dict lookup failed, and "
                                 "why")
    tap.eq(sink.messages, [], "nothing relayed half-signed or unsigned for tempfail")

    session = ss.Session(a, URSULA)
    tap.eq(session.send(ss.message(URSULA, "unsigned by policy")), None,
           "dkim_sign_failure = unsigned: accepted")
    session.close()
    relayed = ss.relayed_one(sink, "unsigned by policy").data
    tap.ok(not ss.signature_headers(relayed), "and relayed unsigned")
    tap.ok(a.log_search(r"signing failed, relayed unsigned .*cannot look up") is not None,
           "the log says it went unsigned, and why")

    pg.start()
    signed = procutil.wait_until(lambda: retry(a, data), 60,
                                 "server A to sign again with PostgreSQL back")
    tap.ok(signed, "PostgreSQL back: the client's retry is accepted")
    relayed = ss.relayed_one(sink, "the retry").data
    tap.ok(relayed.endswith(data), "the retried message arrives whole: nothing lost")
    ss.check_verifies(relayed, dns, [("example.com", selector)], "the retry is signed")


def retry(dc, data):
    session = ss.Session(dc, ALICE)
    refusal = session.send(data)
    session.close()
    return refusal is None


tap.run(main)

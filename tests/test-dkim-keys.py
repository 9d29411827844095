#!/usr/bin/python3
"""dkim-keys on KeyTable and SigningTable files, end to end: a real NSD serves (or not) the
records, a real Dovecot's submission plugin signs with the tables the tool changes, and
dkim-verify, dkimpy and OpenDKIM check every signature through what NSD serves.

The rotation flow: a first key for a domain (rotate; the switch refused while DNS lacks the
record; published; switched: mail is signed), the zone output (255-byte strings, panel
form), a second rotation (the switch refused, then made; the old key retired with its grace
period; a message signed before the switch still verifies with the old selector, which
stays published), retire (refused for a key in use and in the grace period, then forced),
an Ed25519 key beside the RSA one (two signatures), and status reporting what is wrong (a
record of another key, DNS gone). The tool runs as the user the signing processes run as.
"""

import dkimkeys
import dovecot
import nsd
import smtpsink
import submission_signing as ss
import tap

DOMAIN = nsd.SECURE_ZONE            # DNSSEC-signed: status must say "secure"
USER = f"alice@{DOMAIN}"


def main():
    run_user = ss.dovecot_run_user()
    with ss.KeyDirectory(run_user) as keys, nsd.NsdServer({}) as dns:
        # Empty tables, as for a new server; every key comes from dkim-keys.
        keytable = keys.write("KeyTable", "", 0o644)
        signingtable = keys.write("SigningTable", "", 0o644)
        trust_anchor = keys.write("trust-anchors", file_text(dns.trust_anchor_file), 0o644)
        tool = dkimkeys.KeysTool(keytable, f"refile:{signingtable}", run_user,
                                 key_dir=keys.mkdir("keys"), dns=dns,
                                 trust_anchor=trust_anchor)
        with smtpsink.SmtpSink() as sink, dovecot.Dovecot(
                relay_port=sink.port, submission_plugins=[ss.PLUGIN], users=(USER,),
                full_usernames=True,
                plugin_settings={"dkim_keytable": keytable,
                                 "dkim_signingtable": f"refile:{signingtable}"}) as dc:
            try:
                first = check_first_key(dc, sink, dns, tool, signingtable)
                check_zone(tool, dns)
                check_second_key(dc, sink, dns, tool, signingtable, first)
                check_retire(dc, sink, dns, tool, first)
                check_ed25519(dc, sink, dns, tool)
                check_status_problems(dns, tool)
            except Exception:
                tap.diag("Dovecot's log:\n" + dc.log_text()[-20000:])
                raise
            errors = dc.error_lines()
            tap.ok(not errors, "Dovecot logged no errors, no panics", "\n".join(errors))


def send(dc, sink, subject):
    dc.submit(USER, USER, ["someone@remote.example"], ss.message(USER, subject))
    return ss.relayed_one(sink, subject).data


def file_text(path):
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def new_key_name(done):
    """The key name rotate printed ("New key NAME: ..." or "Pending key NAME ...")."""
    for line in done.stdout.splitlines():
        if line.startswith(("New key ", "Pending key ")):
            return line.split()[2].rstrip(":")
    raise AssertionError(f"rotate printed no key name:\n{done.stdout}{done.stderr}")


def publish(dns, tool):
    """Serves every record `zone --panel` prints (as an administrator's import would)."""
    dns.restart(tool.zone_records())


def check_first_key(dc, sink, dns, tool, signingtable):
    done = tool.run("rotate", DOMAIN)
    tap.eq(done.returncode, dkimkeys.EXIT_OK, "first rotate: exit 0", done.stderr)
    name = new_key_name(done)
    selector = name.split(".")[0]
    tap.ok(f"{selector}._domainkey.{DOMAIN}. IN TXT \"v=DKIM1; k=rsa; " in done.stdout and
           "For a DNS web panel" in done.stdout,
           "it prints the record as a zone file line and for a web panel", done.stdout)
    tap.ok(f"no TXT record at {selector}._domainkey.{DOMAIN}" in done.stdout,
           "and that DNS lacks it", done.stdout)
    rows = dkimkeys.status_rows(tool.run("status").stdout)
    tap.eq([(r["SELECTOR"], r["STATE"], r["DNS"]) for r in rows],
           [(selector, "pending", "not published")], "status: the key is pending, unpublished")

    before = file_text(signingtable)
    done = tool.run("rotate", DOMAIN, "--switch")
    tap.eq(done.returncode, dkimkeys.EXIT_TEMPFAIL,
           "--switch before the record is published: refused, exit 75", done.stdout)
    tap.ok("Not switching" in done.stdout and new_key_name(done) == name,
           "it says so, and takes the pending key instead of making another", done.stdout)
    tap.eq(file_text(signingtable), before, "the SigningTable is unchanged")
    tap.eq(sink.messages, [], "nothing sent yet")
    data = send(dc, sink, "before any key")
    tap.eq(ss.signature_headers(data), [], "mail before the switch: not signed (no entry)")

    publish(dns, tool)
    done = tool.run("rotate", DOMAIN, "--switch")
    tap.eq(done.returncode, dkimkeys.EXIT_OK, "published: --switch succeeds", done.stdout)
    tap.ok(f"SigningTable entry *@{DOMAIN}: added {name}" in done.stdout,
           "it adds the domain's entry (refile: *@DOMAIN)", done.stdout)
    tap.eq(file_text(signingtable), f"*@{DOMAIN} {name}\n", "the SigningTable file")
    done = tool.run("status")
    rows = dkimkeys.status_rows(done.stdout)
    tap.ok(done.returncode == dkimkeys.EXIT_OK and
           [(r["STATE"], r["DNS"], r["DNSSEC"], r["TYPE"]) for r in rows] ==
           [("in use", "published, matches", "secure", "rsa-2048")],
           "status: in use, published, matches, DNSSEC secure; exit 0", done.stdout)
    data = send(dc, sink, "first key")
    ss.check_verifies(data, dns, [(DOMAIN, selector)], "signed with the first key")
    return selector


def check_zone(tool, dns):
    done = tool.run("zone")
    lines = done.stdout.splitlines()
    tap.eq((done.returncode, len(lines)), (0, 1), "zone: one line for the one key")
    name, _, rdata = lines[0].partition(" IN TXT ")
    strings = nsd.parse_character_strings(rdata)
    record = tool.zone_records()[name.rstrip(".")]
    tap.ok(len(strings) == 2 and all(len(s) <= 255 for s in strings) and
           len(strings[0]) == 255 and b"".join(strings).decode() == record,
           "an RSA-2048 record: two strings, the first 255 bytes, together the panel value",
           f"{[len(s) for s in strings]}")
    tap.eq(dns.txt_strings(name), [strings],
           "NSD serves the same strings (the panel import gives the same record)")


def check_second_key(dc, sink, dns, tool, signingtable, first):
    done = tool.run("rotate", DOMAIN)
    name = new_key_name(done)
    selector = name.split(".")[0]
    tap.ok(done.returncode == 0 and selector == first + "b",
           "second rotate the same day: selector with a letter", selector)
    done = tool.run("rotate", DOMAIN, "--switch")
    tap.eq(done.returncode, dkimkeys.EXIT_TEMPFAIL, "switch refused while unpublished")
    before_switch = send(dc, sink, "signed before the switch")
    tap.eq(ss.signed_pairs(before_switch), [(DOMAIN, first)],
           "until the switch, mail is signed with the first key")

    publish(dns, tool)
    done = tool.run("rotate", DOMAIN, "--switch")
    tap.eq(done.returncode, dkimkeys.EXIT_OK, "published: switched", done.stdout)
    old_name = f"{first}._domainkey.{DOMAIN}"
    tap.ok(f"{old_name} -> {name}" in done.stdout and "retire" in done.stdout,
           "it names the change and when the old key may be retired", done.stdout)
    tap.eq(file_text(signingtable), f"*@{DOMAIN} {name}\n", "one line, the new key")
    rows = {r["SELECTOR"]: r for r in dkimkeys.status_rows(tool.run("status").stdout)}
    tap.ok(rows[first]["STATE"].startswith("retired, remove after ") and
           rows[selector]["STATE"] == "in use", "status: old retired (grace), new in use",
           str(rows))
    data = send(dc, sink, "after the switch")
    ss.check_verifies(data, dns, [(DOMAIN, selector)], "after the switch: the new key")
    ss.check_verifies(before_switch, dns, [(DOMAIN, first)],
                      "the message signed before the switch still verifies (old selector "
                      "still published)")


def check_retire(dc, sink, dns, tool, first):
    current = [r["SELECTOR"] for r in dkimkeys.status_rows(tool.run("status").stdout)
               if r["STATE"] == "in use"][0]
    done = tool.run("retire", f"{DOMAIN}:{current}")
    tap.ok(done.returncode == dkimkeys.EXIT_PROBLEM and "in use" in done.stderr,
           "retire of the key in use: refused", done.stderr)
    done = tool.run("retire", f"{DOMAIN}:{first}")
    tap.ok(done.returncode == dkimkeys.EXIT_PROBLEM and "grace period" in done.stderr,
           "retire in the grace period: refused", done.stderr)
    done = tool.run("retire", f"{DOMAIN}:{first}", "--force")
    tap.ok(done.returncode == 0 and
           f"The DNS record {first}._domainkey.{DOMAIN} can be deleted" in done.stdout,
           "--force: removed, and it names the record that can go", done.stdout)
    records = tool.zone_records()
    tap.eq(sorted(records), [f"{current}._domainkey.{DOMAIN}"],
           "zone no longer lists the retired key")
    dns.restart(records)
    data = send(dc, sink, "after retire")
    ss.check_verifies(data, dns, [(DOMAIN, current)], "after retire: still signed")
    tap.eq(tool.run("retire", f"{DOMAIN}:{first}").returncode, dkimkeys.EXIT_PROBLEM,
           "retire of a key that is gone: exit 1")
    tap.eq(tool.run("retire", "nocolon").returncode, dkimkeys.EXIT_USAGE,
           "retire without DOMAIN:SELECTOR: usage error")


def check_ed25519(dc, sink, dns, tool):
    done = tool.run("rotate", DOMAIN, "-t", "ed25519")
    name = new_key_name(done)
    publish(dns, tool)
    done = tool.run("rotate", DOMAIN, "-t", "ed25519", "--switch")
    tap.ok(done.returncode == 0 and f"added {name}" in done.stdout,
           "an Ed25519 key beside the RSA key: added to the domain", done.stdout)
    rows = dkimkeys.status_rows(tool.run("status").stdout)
    tap.eq(sorted(r["TYPE"] for r in rows if r["STATE"] == "in use"),
           ["ed25519", "rsa-2048"], "status: both in use")
    data = send(dc, sink, "RSA and Ed25519")
    pairs = ss.signed_pairs(data)
    tap.eq(len(pairs), 2, "two signatures")
    ss.check_verifies(data, dns, pairs, "RSA and Ed25519 signatures")


def check_status_problems(dns, tool):
    records = tool.zone_records()
    ed_name = [n for n, v in records.items() if "k=ed25519" in v][0]
    other = dict(records)
    other[ed_name] = "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
    dns.restart(other)
    done = tool.run("status")
    tap.ok(done.returncode == dkimkeys.EXIT_PROBLEM and
           f"the record at {ed_name} is of another key" in done.stdout,
           "status: a record of another key is a problem, exit 1", done.stdout)
    dns.stop()
    done = tool.run("status")
    tap.ok(done.returncode == dkimkeys.EXIT_TEMPFAIL and "no answer" in done.stdout,
           "status with DNS gone: no answer, exit 75", done.stdout)
    dns.start()
    tap.eq(tool.run("status", "--panel").returncode, dkimkeys.EXIT_USAGE,
           "an option of another command: usage error")


tap.run(main)

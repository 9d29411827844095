#!/usr/bin/python3
"""The Sieve test "dkim" (vnd.dovecot.dkim) at delivery and in sieve-test, real Dovecot + NSD.

The configuration is the shipped conf/90-dkim.conf, included as is. Users' scripts file
"fail" into Junk (alice), keep only an aligned "pass" for the bank (bob), treat temperror
gently with a per-user unreachable resolver (carol), sort by verdict with :matches (dave),
and run with dkim_verify = no (erin); at delivery the scripts use the delivery plugin's
verifications. sieve-test must give the verdict delivery gave, decide from verification and
never from an Authentication-Results field, and honour :domain, :selector, :aligned,
comparators and match types.

grace runs the bank rule of README.md as it stands: a message signed only by evil.example
whose From a reader takes for the bank (the spoofed From fields of the security review) has
no author domain, so nothing aligns and it is never filed into Bank, at delivery or in
sieve-test; nor is one whose From Dovecot reads differently from dkimcore.
"""
import os
import re

import dkimplugin
import dovecot
import managesieve
import nsd
import oracles
import tap
from dkimplugin import AUTHSERV_ID, verdicts

SECURE = nsd.SECURE_ZONE
BANK = "bank.example"
ESP = "mailer.example"
USERS = ("alice", "bob", "carol", "dave", "erin", "frank")
README_USER = "grace"
EVIL = "evil.example"

SECURE_KEY = oracles.SigningKey.generate("rsa-sha256")
BANK_KEY = oracles.SigningKey.generate("ed25519-sha256")
ESP_KEY = oracles.SigningKey.generate("rsa-sha256")
WRONG_KEY = oracles.SigningKey.generate("rsa-sha256")
EVIL_KEY = oracles.SigningKey.generate("rsa-sha256")
RECORDS = {f"rsa._domainkey.{SECURE}": SECURE_KEY.dns_record(),
           f"2026._domainkey.{BANK}": BANK_KEY.dns_record(),
           f"2026._domainkey.mail.{BANK}": BANK_KEY.dns_record(),
           f"esp._domainkey.{ESP}": ESP_KEY.dns_record(),
           f"s1._domainkey.{EVIL}": EVIL_KEY.dns_record()}

JUNK_FAIL = """require ["vnd.dovecot.dkim", "fileinto"];
if dkim "fail" {
    fileinto "Junk";
}
"""
BANK_ROUTING = f"""require ["vnd.dovecot.dkim", "fileinto"];
if address :domain :is "from" "{BANK}" {{
    if dkim :aligned "pass" {{
        fileinto "Bank";
    }} else {{
        fileinto "Junk";
    }}
    stop;
}}
"""
TEMPERROR_GENTLY = """require ["vnd.dovecot.dkim", "fileinto", "imap4flags"];
if dkim "temperror" {
    addflag "$DKIMRetry";
    keep;
} elsif dkim ["fail", "permerror"] {
    fileinto "Junk";
}
"""
BY_VERDICT = """require ["vnd.dovecot.dkim", "fileinto", "variables"];
if dkim :matches "*" {
    fileinto "dkim-${1}";
}
"""
OFF = """require ["vnd.dovecot.dkim", "fileinto"];
if dkim "none" {
    fileinto "None";
}
"""
EDITHEADER = """require ["vnd.dovecot.dkim", "fileinto", "editheader"];
if dkim "pass" {
    addheader "X-Verified" "DKIM pass";
    fileinto "Verified";
}
"""
# Appended after the shipped 90-dkim.conf, whose sieve_extensions it extends (a 2.3 list
# setting is replaced, a 2.4 boolean list gets one more entry).
EDITHEADER_CONF = {"2.3": "plugin {\n  sieve_extensions = +vnd.dovecot.dkim +editheader\n}\n",
                   "2.4": "sieve_extensions {\n  editheader = yes\n}\n"}


def msg(sender, subject, body="Hello,\nthe statement is ready.\n", extra_headers=()):
    return dkimplugin.message(sender, subject, body, extra_headers=extra_headers)


def sign(message, domain, selector, key):
    return oracles.DKIMPY.sign(message, domain, selector, key, key.algorithm)


def samples():
    secure = sign(msg(f"news@{SECURE}", "newsletter"), SECURE, "rsa", SECURE_KEY)
    forged_pass = (f"Authentication-Results: {AUTHSERV_ID}; dkim=pass header.d={SECURE}\r\n"
                   .encode() + secure.replace(b"statement", b"STATEMENT"))
    return {
        "valid": (secure, "pass"),
        "tampered, forged A-R says pass": (forged_pass, "fail"),
        "unsigned": (msg(f"news@{SECURE}", "unsigned"), "none"),
    }


def bank_samples():
    def bank_msg(subject):
        return msg(f"Bank <alerts@{BANK}>", subject)
    both = sign(sign(bank_msg("two signatures"), ESP, "esp", WRONG_KEY), BANK, "2026", BANK_KEY)
    return {
        "signed by the bank": (sign(bank_msg("own"), BANK, "2026", BANK_KEY), "Bank"),
        "signed by mail.bank (aligned subdomain)":
            (sign(bank_msg("subdomain"), f"mail.{BANK}", "2026", BANK_KEY), "Bank"),
        "signed only by the ESP (third party)":
            (sign(bank_msg("esp"), ESP, "esp", ESP_KEY), "Junk"),
        "unsigned": (bank_msg("unsigned"), "Junk"),
        "bank pass + ESP fail": (both, "Bank"),
        "other sender via the ESP":
            (sign(msg(f"shop@{ESP}", "offer"), ESP, "esp", ESP_KEY), "INBOX"),
    }


def readme_bank_rule():
    """The user's Sieve script of README.md, as it stands."""
    path = os.path.join(os.environ.get("DKIM_TOP_SRCDIR", "."), "README.md")
    with open(path, encoding="utf-8") as handle:
        return re.search(r"```sieve\n(.*?)```", handle.read(), re.S)[1]


# From values that IMAP's ENVELOPE reads as the bank's (security review), each with why
# dkimcore finds no author domain in it and where the README rule files it: Junk when
# Sieve's address test also reads the bank, else INBOX; never Bank.
SYNTAX = "the From field is not valid address syntax"
SPOOFED_FROM = [
    (b"alerts@bank.example@evil.example", SYNTAX, "Junk"),
    (b"alerts@bank.example x@evil.example", SYNTAX, "Junk"),
    (b"<a@bank.example,x@evil.example>", SYNTAX, "INBOX"),
    (b"<a@bank.example x@evil.example>", SYNTAX, "INBOX"),
    (b"a@bank.example\0 x@evil.example", SYNTAX, "INBOX"),
    (b"Bank <alerts@bank.example>\r\n x@evil.example", SYNTAX, "Junk"),
    (b"alerts@bank.example, x@evil.example", "several mailboxes in the From field", "Junk"),
]


def with_from(value, subject):
    return msg("placeholder@test.example", subject).replace(b"placeholder@test.example", value)


def author_samples():
    """(name, message, folder the README rule files it in, why no author domain or None)."""
    samples = [(f"From: {value!r}, signed by {EVIL}",
                sign(with_from(value, f"spoofed {i}"), EVIL, "s1", EVIL_KEY), folder, why)
               for i, (value, why, folder) in enumerate(SPOOFED_FROM)]
    samples += [
        ("the bank's own mail", sign(with_from(b"Bank <alerts@bank.example>", "genuine"),
                                     BANK, "2026", BANK_KEY), "Bank", None),
        ("the bank's own mail, comment and folding",
         sign(with_from(b"alerts@bank.example\r\n (Bank (Alerts))", "genuine 2"),
              BANK, "2026", BANK_KEY), "Bank", None),
        # RFC 5322 obs-local-part, which dkimcore accepts and Dovecot does not: which
        # author the user is shown is unclear, so there is none.
        ("signed by the bank, a From Dovecot reads differently",
         sign(with_from(b'"alerts".x@bank.example', "disputed"), BANK, "2026", BANK_KEY),
         None, "the From field reads differently to mail clients"),
    ]
    return samples


ALIGNED_PASS = """require ["vnd.dovecot.dkim", "fileinto"];
if dkim :aligned "pass" {
    fileinto "aligned";
}
"""


def check_author_domain(server):
    dc = server.dc
    script = readme_bank_rule()
    dc.set_sieve_script(README_USER, script)
    for name, message, folder, why in author_samples():
        before = folders(dc, README_USER)
        replies = dc.deliver_lmtp(f"alerts@{BANK}", [dc.address(README_USER)], message)
        landed = delivered_to(dc, README_USER, before)
        decided = sieve_decision(dc, README_USER, script, message)
        if folder is None:
            tap.ok(landed != "Bank" and decided != "Bank",
                   f"README rule, {name}: not Bank (delivery: {landed}, sieve-test: {decided})",
                   replies)
        else:
            tap.ok(landed == folder and decided == folder,
                   f"README rule, {name}: {folder} at delivery and in sieve-test",
                   f"delivery: {landed}, sieve-test: {decided}, {replies}")
        line = server.verify_lines()[-1]
        stored = dc.read_maildir(README_USER, landed)[-1] if isinstance(landed, str) else b""
        authres = " ".join(dkimplugin.header_fields(stored, "Authentication-Results"))
        if why is None:
            tap.ok(f"from={BANK} " in line and "no author domain" not in authres,
                   f"{name}: the log line names the author domain", line)
        else:
            tap.ok(f"from=- ({why})" in line and f"(no author domain: {why})" in authres,
                   f"{name}: the log line and the stored A-R say why nothing aligns",
                   f"{line}\n{authres}")
        # :aligned alone, whatever the address test makes of the From field
        aligned = sieve_decision(dc, README_USER, ALIGNED_PASS, message)
        tap.eq(aligned, "aligned" if why is None else "INBOX",
               f"{name}: dkim :aligned \"pass\" is {str(why is None).lower()} in sieve-test")


def folders(dc, user):
    root = os.path.join(dc.home(user), "Maildir")
    subfolders = os.listdir(root) if os.path.isdir(root) else []
    names = ["INBOX"] + sorted(n[1:] for n in subfolders if n.startswith("."))
    return {name: len(dc.read_maildir(user, name)) for name in names}


def delivered_to(dc, user, before):
    """The folder where `user`'s newest message landed."""
    after = folders(dc, user)
    changed = [name for name, count in after.items() if count > before.get(name, 0)]
    return changed[0] if len(changed) == 1 else changed


def sieve_decision(dc, user, script, message):
    """Where sieve-test would store `message`: the folder name, or "keep"."""
    output = dc.sieve_test(user, script, message)
    stored = re.findall(r"store message in folder: (\S+)", output)
    return stored[0] if stored else ("keep" if "Implicit keep" in output else output)


def check_delivery(server):
    dc = server.dc
    for user, script in (("alice", JUNK_FAIL), ("bob", BANK_ROUTING),
                         ("carol", TEMPERROR_GENTLY), ("dave", BY_VERDICT), ("erin", OFF),
                         ("frank", EDITHEADER)):
        dc.set_sieve_script(user, script)

    for name, (message, verdict) in samples().items():
        before = {u: folders(dc, u) for u in USERS}
        lines_before = len(server.verify_lines())
        dc.deliver_lmtp(f"news@{SECURE}", [dc.address(u) for u in USERS], message)
        landed = {u: delivered_to(dc, u, before[u]) for u in USERS}
        # carol's resolver makes her verification settings differ; erin's is off
        tap.eq(len(server.verify_lines()) - lines_before, 2,
               f"{name}: the scripts use the delivery's verifications (2 for {len(USERS)} "
               "recipients)")
        expected_alice = "Junk" if verdict == "fail" else "INBOX"
        tap.eq(landed["alice"], expected_alice, f"{name}: if dkim \"fail\" -> {expected_alice}")
        tap.eq(landed["dave"], f"dkim-{verdict}",
               f"{name}: dkim :matches \"*\" sets ${{1}} to the verdict ({verdict})")
        tap.eq(landed["erin"], "None", f"{name}: dkim_verify = no: the test sees none")
        [stored] = dc.read_maildir("dave", f"dkim-{verdict}")[-1:]
        tap.eq(verdicts(stored), [verdict], f"{name}: the stored field agrees with Sieve")
        if verdict == "pass":
            edited = dc.read_maildir("frank", "Verified")[-1]
            tap.ok(landed["frank"] == "Verified"
                   and dkimplugin.header_fields(edited, "X-Verified") == ["DKIM pass"]
                   and verdicts(edited) == ["pass"],
                   f"{name}: Sieve editheader on top of our field: both stored",
                   edited[:400])
        if verdict != "none":
            tap.ok(landed["carol"] == "INBOX" and verdicts(dc.read_maildir("carol")[-1])
                   == ["temperror"] and "$DKIMRetry" in _keywords(dc, "carol"),
                   f"{name}: carol's resolver is unreachable: temperror, kept in INBOX and "
                   "flagged", landed["carol"])

    for name, (message, folder) in bank_samples().items():
        before = folders(dc, "bob")
        dc.deliver_lmtp(f"alerts@{BANK}", [dc.address("bob")], message)
        tap.eq(delivered_to(dc, "bob", before), folder, f"bank routing: {name} -> {folder}")


def _keywords(dc, user):
    path = os.path.join(dc.home(user), "Maildir", "dovecot-keywords")
    return open(path, encoding="utf-8").read() if os.path.exists(path) else ""


def check_sieve_test(server):
    dc = server.dc
    for name, (message, verdict) in samples().items():
        tap.eq(sieve_decision(dc, "dave", BY_VERDICT, message), f"dkim-{verdict}",
               f"sieve-test gives delivery's verdict: {name} -> {verdict}")
    stored = dc.read_maildir("alice", "Junk")[-1]
    tap.eq(sieve_decision(dc, "dave", BY_VERDICT, stored), "dkim-fail",
           "sieve-test on the stored copy (with our field) still verifies: fail")
    unsigned_claiming_pass = (f"Authentication-Results: {AUTHSERV_ID}; dkim=pass "
                              f"header.d={SECURE}\r\n").encode() + samples()["unsigned"][0]
    tap.eq(sieve_decision(dc, "dave", BY_VERDICT, unsigned_claiming_pass), "dkim-none",
           "an unsigned message whose Authentication-Results claims pass: none")
    output = dc.sieve_test("dave", BY_VERDICT, samples()["valid"][0],
                           extra_args=["-t", "-", "-Tlevel=tests"])
    tap.ok("verifying the message" in output and "message verdict: pass" in output,
           "the sieve-test trace shows where the verdict came from", output)

    two = bank_samples()["bank pass + ESP fail"][0]
    cases = [
        ('dkim "pass"', True),
        (f'dkim :domain "{ESP}" "fail"', True),
        (f'dkim :domain "{ESP.upper()}" "fail"', True),
        (f'dkim :domain ["x.example", "{BANK}"] "pass"', True),
        ('dkim :selector "esp" "pass"', False),
        (f'dkim :domain "{BANK}" :selector "2026" "pass"', True),
        (f'dkim :domain "{BANK}" :selector "esp" "none"', True),
        ('dkim :domain "nobody.example" "none"', True),
        ('dkim :aligned "pass"', True),
        (f'dkim :aligned :domain "{ESP}" "none"', True),
        ('dkim "PASS"', True),
        ('dkim :comparator "i;octet" "PASS"', False),
        ('dkim :matches "*error" ', False),
        ('dkim :contains "as"', True),
        ('dkim ["fail", "pass"]', True),
    ]
    for test, expected in cases:
        script = f'require ["vnd.dovecot.dkim", "fileinto"];\nif {test.rstrip()} {{ fileinto "yes"; }}\n'
        tap.eq(sieve_decision(dc, "dave", script, two) == "yes", expected,
               f"bank pass + ESP fail: {test.strip()} is {str(expected).lower()}")
    dump = dc.sieve_test("dave", 'require "vnd.dovecot.dkim";\n'
                         'if dkim :aligned :domain "a.example" :comparator "i;octet" '
                         ':matches "p*" { keep; }\n', two, extra_args=["-d", "-"])
    tap.ok(re.search(r"DKIM\b", dump) and "aligned" in dump and "domain" in dump
           and "a.example" in dump and "i;octet" in dump,
           "the binary dump shows the DKIM operation and its operands", dump)


def check_errors(server):
    dc = server.dc
    message = samples()["valid"][0]
    for script, error in (
            ('require "vnd.dovecot.dkim";\nif dkim :domain "pass" { keep; }\n', "argument"),
            ('require "vnd.dovecot.dkim";\nif dkim :aligned { keep; }\n', "argument"),
            ('require "vnd.dovecot.dkim";\nif dkim :nonsense "pass" { keep; }\n', "nonsense"),
            ('if dkim "pass" { keep; }\n', "unknown test")):
        output = dc.sieve_test("dave", script, message,
                               expect_status=dovecot.SIEVE_TEST_COMPILE_FAILED)
        tap.ok("error" in output.lower() and error in output,
               f"compile error: {script.splitlines()[-1]}", output)

    # A result word that can never match is a warning with :is, the default;
    # patterns for other match types are left alone.
    typo = 'require "vnd.dovecot.dkim";\nif dkim "passed" { keep; }\n'
    output = dc.sieve_test("dave", typo, message)
    tap.ok("warning" in output.lower() and "'passed' is not a DKIM result" in output,
           "dkim \"passed\": a warning names the typo", output)
    for script in ('require "vnd.dovecot.dkim";\nif dkim ["pass", "PermError"] { keep; }\n',
                   'require "vnd.dovecot.dkim";\nif dkim :contains "err" { keep; }\n',
                   'require "vnd.dovecot.dkim";\nif dkim :matches "*error" { keep; }\n'):
        output = dc.sieve_test("dave", script, message)
        tap.ok("not a DKIM result" not in output,
               f"no warning: {script.splitlines()[-1]}", output)


def check_opt_in(build):
    """Like Pigeonhole's other vnd.* extensions, the test is unknown until enabled. With the
    plugin loaded but the extension not enabled (an administrator who allows it only in
    global scripts), Pigeonhole also unloads the extension it never loaded: every Sieve user
    must go on working, in sieve-test, at delivery and in ManageSieve, with no crash."""
    plain = 'require "fileinto";\nfileinto "Other";\n'
    message = samples()["valid"][0]
    with dovecot.Dovecot(sieve_plugins=[dkimplugin.sieve_plugin(build)],
                         managesieve=True) as dc:
        output = dc.sieve_test("alice", JUNK_FAIL, message,
                               expect_status=dovecot.SIEVE_TEST_COMPILE_FAILED)
        tap.ok(re.search(r"unknown Sieve capability .vnd\.dovecot\.dkim", output),
               "not enabled: sieve-test refuses the script (and exits, no crash)", output)
        output = dc.sieve_test("alice", plain, message)
        tap.ok("store message in folder: Other" in output,
               "not enabled: a script without it runs", output)

        dc.set_sieve_script("bob", plain)
        replies = dc.deliver_lmtp(f"s@{SECURE}", [dc.address("bob")], message)
        tap.ok(all(code == 250 for code, _ in replies.values())
               and len(dc.read_maildir("bob", "Other")) == 1,
               "not enabled: LMTP delivers and runs the user's script", repr(replies))

        with managesieve.connect(dc.managesieve_port, "carol", dc.settings.password) as ms:
            tap.ok("vnd.dovecot.dkim" not in ms.sieve_extensions and
                   "fileinto" in ms.sieve_extensions,
                   "not enabled: ManageSieve lists the other extensions, not this one",
                   repr(ms.capabilities))
            accepted, text = ms.putscript("main", JUNK_FAIL)
            tap.ok(not accepted and "vnd.dovecot.dkim" in text,
                   "not enabled: ManageSieve refuses a script that requires it", text)
        errors = dc.error_lines()
        tap.ok(not errors, "not enabled: no error, fatal or panic in Dovecot's log",
               "\n".join(errors))


def check_managesieve(build):
    """Users install scripts with ManageSieve (their mail client's filter editor): it must
    take one that requires vnd.dovecot.dkim, and refuse a mistake in it as a compile error."""
    with dovecot.Dovecot(sieve_plugins=[dkimplugin.sieve_plugin(build)],
                         sieve_extensions=("vnd.dovecot.dkim",), managesieve=True) as dc:
        with managesieve.connect(dc.managesieve_port, "alice", dc.settings.password) as ms:
            tap.ok("vnd.dovecot.dkim" in ms.sieve_extensions,
                   "ManageSieve lists vnd.dovecot.dkim", repr(ms.capabilities))
            for name, script in (("junk", JUNK_FAIL), ("bank", BANK_ROUTING)):
                accepted, text = ms.putscript(name, script)
                tap.ok(accepted, f"ManageSieve accepts the {name} script", text)
            accepted, text = ms.putscript(
                "typo", 'require "vnd.dovecot.dkim";\nif dkim :algned "pass" { keep; }\n')
            tap.ok(not accepted and "algned" in text,
                   "ManageSieve refuses an unknown tag, naming it", text)
        errors = dc.error_lines()
        tap.ok(not errors, "ManageSieve: no error, fatal or panic in Dovecot's log",
               "\n".join(errors))


def main():
    with dkimplugin.DnsBlackHole() as unreachable:
        run_checks(unreachable)
    check_opt_in(dkimplugin.builddir())
    check_managesieve(dkimplugin.builddir())


def run_checks(unreachable):
    with dkimplugin.MailServer(
            RECORDS, users=USERS + (README_USER,),
            includes=[dkimplugin.shipped_conf("90-dkim.conf")],
            raw_config=EDITHEADER_CONF,
            userdb_fields={"carol": {"dkim_dns_resolver": unreachable.address,
                                     "dkim_dns_timeout": "1s"},
                           "erin": {"dkim_verify": "no"}}) as server:
        check_delivery(server)
        check_sieve_test(server)
        check_author_domain(server)
        check_errors(server)
        errors = server.dc.error_lines()
        tap.ok(not errors, "Dovecot logged no errors, fatals or panics", "\n".join(errors))


tap.run(main)

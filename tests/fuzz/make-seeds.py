"""Derives seed corpora for the libFuzzer targets from the shared corpus.

usage: make-seeds.py CORPUS_DIR OUTPUT_DIR

Writes OUTPUT_DIR/<target>/<sha1> files, one input each, in the format each
target documents at its top:
  signature  DKIM-Signature (and ARC-Message-Signature) field values
  keyrecord  TXT values of every DNS table, and the raw key record files
  verify     "<table lines>\\n%% now=...\\n<message>": each message with the
             records its DKIM and ARC signatures name and a clock just after its t=
  from       From field values, and the spoofed From fields of the security
             review (FROM_REPRODUCERS)
  authres    (ARC-)Authentication-Results field values
  authres-filter  each message after an option byte (40 bytes examined per
             field, chunks of 8 bytes)
  sign       each message after an option byte (simple and relaxed, with l=)
  arc        each message after an option byte (relaxed, two hops sealing), the ARC
             suite's also with a recorded arc=pass
  milter-config  the opendkim.conf files and tables of tests/opendkim-conf,
             and From field values
  keyed-table  "ADDRESS\nSIGNING-VALUE\0KEY-VALUE" (KEYED_TABLE_SEEDS)
  doveadm-json  doveadm's JSON output (DOVEADM_JSON_SEEDS)
The seeds are derived at run time and never kept in the repository, except the inputs of
fixed bugs (FROM_REPRODUCERS, ARC_REPRODUCERS) and the seeds below, which are written here."""
import hashlib
import os
import re
import sys

import yaml

TARGETS = ("signature", "keyrecord", "verify", "from", "authres", "authres-filter", "sign",
           "arc", "milter-config", "keyed-table", "doveadm-json")
OPENDKIM_CONF = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                             "opendkim-conf")
# What a dict may hold for the submission plugin (dkim-keyed-table.h).
KEYED_TABLE_SEEDS = (
    b"alice@mail.example.com\nsel._domainkey.example.com, ed\0example.com:sel:"
    b"/etc/dkim/example.com/sel.private",
    b"a@example.org\n%\0%:s:/etc/dkim/%/s.private",
    b"x@example.net\n \0",
    b"Bob@Example.NET\nk\0 example.net : k :\n-----BEGIN PRIVATE KEY-----\n"
    b"MC4CAQAwBQYDK2VwBCIEIEQdgHO5nw9QTLhKw9mE6Hgax6hYSboxi1Pu4LkDep/2\n"
    b"-----END PRIVATE KEY-----\n",
)
# "doveadm -f json dict iter" and "dict get" as Dovecot 2.3 and 2.4 print them.
DOVEADM_JSON_SEEDS = (
    b'[{"key":"shared/dkim/key/k1","value":"example.com:s1:-----BEGIN PRIVATE KEY'
    b'-----\\nMC4CAQ\\n-----END PRIVATE KEY-----\\n"}]',
    b'[{"value":"k1"}]',
    b'[]',
    b'[{"key":"shared/dkim/signing/*","value":null},{"key":"a\\u00e9\\ud83d\\ude00",'
    b'"value":"\\"\\/\\b\\f\\r\\t"}]',
)
# From values a reader takes for bank.example, which once gave evil.example
# as the author domain, and forms around them.
FROM_REPRODUCERS = (
    b" alerts@bank.example@evil.example\r\n",
    b" alerts@bank.example x@evil.example\r\n",
    b" <a@bank.example,x@evil.example>\r\n",
    b" <a@bank.example x@evil.example>\r\n",
    b" a@bank.example\0 x@evil.example\r\n",
    b" a@bank.example\0, x@evil.example\r\n",
    b" alerts@bank.example <x@evil.example>\r\n",
    b" Bank <alerts@bank.example>\r\n x@evil.example\r\n",
    b" Bank: alerts@bank.example;, x@evil.example\r\n",
    b" \"Bank, Inc.\" <@route.example,@[IPv6:2001:db8::1]:alerts@bank.example> (x@evil)\r\n",
    b" (a (nested) comment) alerts . x @ bank (c) . example\r\n",
)
MESSAGE_SUFFIXES = (".eml", ".msg", ".message", ".mbox", ".baddomain")
# The default clock of fuzz-verify, for messages without t=.
DEFAULT_NOW = 1700000000

# fuzz-arc's option byte (see the top of fuzz-arc.c): relaxed/relaxed, two hops sealing; the
# results given or put on top of the message, and the arc= result they record.
ARC_OPTIONS = 0x03 | 2 << 5
ARC_FROM_MESSAGE = 0x04
ARC_RECORDS_PASS = 2 << 3

# Messages that broke the sealer: a recorded arc=pass over a chain that fails the structure
# check made it hash a missing field (index -1, before a heap block).  The security report's
# reproducer (an AMS alone), and a seal of set 2 alone (no set 1 at all).
ARC_REPRODUCERS = (
    b"ARC-Message-Signature: i=1; a=rsa-sha256; c=relaxed/relaxed; d=lists.example.org; "
    b"s=s1; h=from; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; b=AAAA\r\n"
    b"From: a@example.com\r\nSubject: x\r\n\r\nhi\r\n",
    b"ARC-Seal: i=2; a=rsa-sha256; cv=pass; d=a.example; s=s; b=AAAA\r\n"
    b"From: a@example.com\r\n",
)


def parse_table(text):
    """The corpus DNS-table format: {lowercase name: [values]}."""
    table = {}
    for line in text.splitlines():
        line = line.rstrip("\r")
        if not line.strip() or line[0] in "#;":
            continue
        parts = line.split(None, 1)
        name = parts[0].rstrip(".").lower()
        table.setdefault(name, []).append(parts[1] if len(parts) > 1 else "")
    return table


def header_fields(message):
    """(name, raw value) of each header field, folding kept."""
    head = re.split(rb"\r?\n\r?\n", message, maxsplit=1)[0]
    fields = []
    for line in re.split(rb"(?<=\n)", head):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1][1] += line
        elif b":" in line:
            name, value = line.split(b":", 1)
            fields.append([name.strip().lower(), value])
    return [(name, value) for name, value in fields]


def tags(value):
    """The tag=value pairs of a tag list, FWS removed from the values."""
    found = {}
    for spec in value.split(b";"):
        if b"=" in spec:
            name, val = spec.split(b"=", 1)
            found[name.strip().decode(errors="replace")] = re.sub(rb"\s+", b"", val)
    return found


def verify_seed(message, table):
    """The records named by the message's DKIM and ARC signatures, so that ARC chains can
    pass too, then the message."""
    lines, now = [], DEFAULT_NOW
    for name, value in header_fields(message):
        if name not in (b"dkim-signature", b"arc-message-signature", b"arc-seal"):
            continue
        sig = tags(value)
        qname = (sig.get("s", b"") + b"._domainkey." + sig.get("d", b"")).decode(
            errors="replace").lower()
        lines += [f"{qname} {record}" for record in table.get(qname, [])]
        if name == b"dkim-signature" and sig.get("t", b"").isdigit():
            now = int(sig["t"]) + 60
    head = "".join(line + "\n" for line in dict.fromkeys(lines))
    return f"{head}%% now={now}\n".encode() + message


class Seeds:
    def __init__(self, output):
        self.output = output
        self.count = dict.fromkeys(TARGETS, 0)
        for target in TARGETS:
            os.makedirs(os.path.join(output, target), exist_ok=True)

    def add(self, target, data):
        if isinstance(data, str):
            data = data.encode()
        path = os.path.join(self.output, target, hashlib.sha1(data).hexdigest())
        if not os.path.exists(path):
            with open(path, "wb") as f:
                f.write(data)
            self.count[target] += 1

    def add_message(self, message, table):
        self.add("verify", verify_seed(message, table))
        # fuzz-sign's option byte: simple/simple, and relaxed/relaxed with l=.
        for options in (b"\x00", b"\x07"):
            self.add("sign", options + message)
        self.add("arc", bytes([ARC_OPTIONS]) + message)
        self.add("authres-filter", b"\x1d" + message)
        for name, value in header_fields(message):
            if name in (b"dkim-signature", b"arc-message-signature"):
                self.add("signature", value)
            elif name == b"from":
                self.add("from", value)
                self.add("milter-config", value)
            elif name in (b"authentication-results",
                          b"arc-authentication-results"):
                self.add("authres", value)

    def add_recorded_pass(self, message, paths=(ARC_FROM_MESSAGE,)):
        """fuzz-arc seals over a recorded arc=pass, from an Authentication-Results field on
        top of the message (and given, with 0 in `paths`)."""
        for path in paths:
            self.add("arc", bytes([ARC_OPTIONS | path | ARC_RECORDS_PASS]) + message)

    def add_table(self, table):
        for values in table.values():
            for value in values:
                self.add("keyrecord", value)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def suite_tables(corpus):
    """{suite directory: its DNS table}."""
    tables = {}
    for suite in sorted(os.listdir(corpus)):
        table = {}
        for name in ("dns.txt", "FAKE_DNS.dat"):
            path = os.path.join(corpus, suite, name)
            if os.path.exists(path):
                table.update(parse_table(read(path).decode(errors="replace")))
        tables[suite] = table
    return tables


def add_files(seeds, corpus, tables):
    for root, _dirs, files in os.walk(corpus):
        suite = os.path.relpath(root, corpus).split(os.sep)[0]
        table = tables.get(suite, {})
        for name in sorted(files):
            path = os.path.join(root, name)
            data = read(path)
            if suite == "stalwart-mail-auth" and name.endswith(".txt"):
                # Its own DNS table, a blank line, then the message.
                own, _, message = data.partition(b"\n\n")
                own_table = parse_table(own.decode(errors="replace"))
                seeds.add_table(own_table)
                seeds.add_message(message, own_table)
            elif name.endswith(MESSAGE_SUFFIXES) or (
                    suite == "mail-dkim" and root.endswith("corpus")):
                seeds.add_message(data, table)
            elif suite == "dkimpy" and name.endswith((".txt", ".dns")):
                seeds.add("keyrecord", data.strip())


def add_arc_suite(seeds, corpus):
    """The ARC suite: messages (A-R fields, ARC tag lists) and its records."""
    suite = os.path.join(corpus, "arc-test-suite")
    for name in sorted(os.listdir(suite)):
        if not name.endswith(".yml"):
            continue
        for doc in yaml.safe_load_all(read(os.path.join(suite, name))):
            records = {k.lower(): [re.sub(r"\s+", " ", str(v))]
                       for k, v in (doc.get("txt-records") or {}).items()}
            seeds.add_table(records)
            for test in (doc.get("tests") or {}).values():
                message = (test.get("message") or "").replace("\n", "\r\n").encode()
                seeds.add_message(message, records)
                seeds.add_recorded_pass(message)


def add_reproducers(seeds):
    for message in ARC_REPRODUCERS:
        seeds.add_message(message, {})
        seeds.add_recorded_pass(message, (0, ARC_FROM_MESSAGE))


def add_opendkim_confs(seeds):
    """dkim-milter's readers take configuration files and data set files."""
    for root, _dirs, files in os.walk(OPENDKIM_CONF):
        for name in sorted(files):
            seeds.add("milter-config", read(os.path.join(root, name)))


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    corpus, output = sys.argv[1:]
    seeds = Seeds(output)
    tables = suite_tables(corpus)
    for table in tables.values():
        seeds.add_table(table)
    add_files(seeds, corpus, tables)
    for seed in KEYED_TABLE_SEEDS:
        seeds.add("keyed-table", seed)
    for seed in DOVEADM_JSON_SEEDS:
        seeds.add("doveadm-json", seed)
    add_arc_suite(seeds, corpus)
    for value in FROM_REPRODUCERS:
        seeds.add("from", value)
    add_reproducers(seeds)
    add_opendkim_confs(seeds)
    print(" ".join(f"{target}={n}" for target, n in seeds.count.items()))


main()

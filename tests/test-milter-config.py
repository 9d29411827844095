"""dkim-milter -n: the opendkim.conf reader, and dkim-milter(8) against it.

- Debian 12's and EPEL's default opendkim.conf pass unchanged (exit 0, warnings only);
- every keyword of the installed opendkim.conf(5) is known; an unknown one fails naming it and
  its line; keywords that would change signing or judging and are not implemented are refused
  by name, the deliberately unsupported ones (ADSP, DomainKeys, l=, rsa-sha1, discard) with the
  reason, the harmless ones accepted with one warning line each; one line per problem;
- data sets (comma lists, file:, refile:, other types refused), host lists, Include, On-*,
  Nameservers, Socket, UserID, Mode;
- the keys: a SigningTable naming a missing key, an unreadable or unsafe key file, a 1024-bit
  key (warning);
- dkim-milter(8): the synopsis is the usage line, every option and every keyword is documented,
  groff renders it without warnings.
"""
import os
import re
import subprocess

import dkimmilter
import dkimtools
import milter_setup as ms
import procutil
import tap

FIXTURES = os.path.join(dkimtools.SRCDIR, "tests", "opendkim-conf")
PAGE = os.path.join(dkimtools.SRCDIR, "doc", "dkim-milter.8")
CONFIG_SOURCE = os.path.join(dkimtools.SRCDIR, "milter", "milter-config.c")


class Scratch:
    """A temp dir for configuration files, owned by the milter's run user (-n drops to UserID
    before it reads data sets and keys)."""

    def __init__(self):
        self.keys = ms.KeyDirectory()

    def __enter__(self):
        self.keys.__enter__()
        return self

    def __exit__(self, *exc):
        self.keys.__exit__(*exc)

    def path(self, *parts):
        return self.keys.path(*parts)

    def write(self, name, text, mode=0o600):
        return self.keys.write(name, text, mode)

    def check(self, text, name="dkim-milter.conf"):
        """-n on a configuration (Socket and UserID added unless given); returns
        (exit status, problem lines)."""
        if not re.search(r"(?im)^\s*socket\s", text):
            text = "Socket inet:8891@127.0.0.1\n" + text
        if not re.search(r"(?im)^\s*userid\s", text):
            text += ms.user_id_line()
        done = dkimmilter.check(self.write(name, text))
        return done.returncode, dkimmilter.problems(done)


def errors(lines):
    return [line for line in lines if line.startswith("error: ")]


def defaults_pass():
    for name in ("debian-12.conf", "epel.conf"):
        done = dkimmilter.check(os.path.join(FIXTURES, name))
        lines = dkimmilter.problems(done)
        tap.ok(done.returncode == 0 and not errors(lines),
               f"{name} (the distribution's default opendkim.conf) passes -n unchanged",
               done.stderr)
    lines = dkimmilter.problems(dkimmilter.check(os.path.join(FIXTURES, "epel.conf")))
    warned = sorted(re.search(r": (\S+): ", line)[1] for line in lines)
    tap.eq(warned, ["KeyFile", "Selector", "SendReports", "SoftwareHeader"],
           "EPEL's file: one warning for each keyword that has no effect")


def every_opendkim_keyword(scratch):
    done = subprocess.run(["man", "5", "opendkim.conf"], capture_output=True, text=True,
                          env=dict(os.environ, MANWIDTH="120"), timeout=60)
    names = re.findall(r"^\s{7}([A-Z][A-Za-z0-9-]+) \((?:[Bb]oolean|string|integer|dataset|"
                       r"data set|filename|address)\)", done.stdout, re.M)
    if len(names) < 100:
        tap.skip("every keyword of opendkim.conf(5) is known",
                 "the opendkim package's opendkim.conf(5) is not installed")
        return
    _, lines = scratch.check("".join(f"{name} x\n" for name in names))
    unknown = [line for line in lines if "unknown keyword" in line]
    tap.ok(not unknown, f"all {len(names)} keywords of opendkim.conf(5) are known", unknown)


def keywords(scratch):
    status, lines = scratch.check("Mode sv\nSomethingElse yes\n")
    tap.ok(status != 0 and any(re.search(r"dkim-milter\.conf line 3: SomethingElse: unknown "
                                         r"keyword$", line) for line in lines),
           "an unknown keyword fails -n, naming it and its line", lines)

    status, lines = scratch.check("MacroList daemon_name|ORIGINATING\nOn-Security reject\n"
                                  "DontSignMailTo x@example.com\n")
    tap.ok(status != 0 and len(errors(lines)) == 3 and
           all("not supported: not implemented" in line for line in errors(lines)),
           "keywords that would change signing or judging are refused by name, one line each",
           lines)

    refused = {
        "ADSPAction discard": "Historic",
        "AllowSHA1Only yes": "RFC 8301",
        "DomainKeysCompat yes": "RFC 4870",
        "BodyLengthDB csl:x@example.com": "l= is never used",
        "SignatureAlgorithm rsa-sha1": "rsa-sha1 is never used",
        "On-BadSignature discard": "drops mail without telling anyone",
        "On-InternalError reject": "must never lose or bounce mail",
        "ResignAll yes": "ResignMailTo signs forwarded mail",
        "KeepAuthResults yes": "forged and always removed",
        "Minimum 50%": "never passes",
    }
    for line, reason in refused.items():
        status, lines = scratch.check(f"{line}\n")
        tap.ok(status != 0 and any(reason in problem for problem in errors(lines)),
               f"'{line}' is refused, saying why ({reason})", lines)

    accepted = ["ADSPAction continue", "AllowSHA1Only no", "SignatureAlgorithm rsa-sha256",
                "ADSPDiscard no", "DisableADSP yes"]
    status, lines = scratch.check("".join(f"{line}\n" for line in accepted))
    tap.ok(status == 0 and not errors(lines),
           "the same keywords with the value dkim-milter implements are accepted", lines)

    ignored = ["SoftwareHeader yes", "AutoRestart yes", "QueryCache yes", "SendReports yes",
               "Statistics /var/spool/stats.dat", "MilterDebug 6"]
    status, lines = scratch.check("Mode v\n" + "".join(f"{line}\n" for line in ignored))
    tap.ok(status == 0 and len(lines) == len(ignored) and
           all(line.startswith("warning: ") and "accepted and ignored" in line
               for line in lines),
           "harmless keywords: accepted with one warning line each", lines)

    status, lines = scratch.check("mode SV\numask 077\n")
    tap.ok(status != 0 and any("Mode: 'SV'" in line for line in lines) and
           not any("UMask" in line for line in lines),
           "keywords in any case; Mode takes s and v only", lines)

    status, lines = scratch.check("On-Default quarantine\nOn-NoSignature reject\n")
    tap.ok(status == 0 and not errors(lines),
           "On-Default quarantine leaves the local failures at what they may be", lines)


def values(scratch):
    status, lines = scratch.check("Nameservers 127.0.0.1@5353, 192.0.2.1\n")
    tap.ok(status == 0 and any("only the first server, 127.0.0.1@5353" in line
                               for line in lines), "Nameservers ADDR@PORT, the first one used",
           lines)
    status, lines = scratch.check("Nameservers dns.example\n")
    tap.ok(status != 0 and any("Nameservers" in line for line in errors(lines)),
           "Nameservers takes addresses", lines)
    status, lines = scratch.check("Socket 8891\n")
    tap.ok(status != 0 and any("Socket" in line for line in errors(lines)),
           "a Socket that is no socket spec is an error", lines)
    status, lines = scratch.check("UserID no-such-user-here\n")
    tap.ok(status != 0 and any("no user 'no-such-user-here'" in line for line in lines),
           "an unknown UserID is an error", lines)
    status, lines = scratch.check("Mode v\nMinimumKeyBits 512\n"
                                  "MaximumSignaturesToVerify 1000000000\n")
    tap.ok(status == 0 and len(lines) == 2
           and "512 counts as 1024" in lines[0] and "1000000000 counts as 100" in lines[1],
           "MinimumKeyBits and MaximumSignaturesToVerify past the library's limits: "
           "a warning each, saying what counts", lines)
    status, lines = scratch.check("Mode v\nMode x\nTrustAnchorFile /no/such/file\n")
    tap.ok(status != 0 and len(errors(lines)) == 2,
           "every problem reported, one line each", lines)


def data_sets(scratch):
    hosts = scratch.write("hosts", "# trusted\n127.0.0.1\n::1\nlocalhost\n.example.com\n"
                                   "10.0.0.0/8\n192.168.0.0/255.255.255.0\n!10.1.2.3\n")
    status, lines = scratch.check(f"InternalHosts {hosts}\nPeerList file:{hosts}\n"
                                  f"ExternalIgnoreList refile:{hosts}\n")
    tap.ok(status == 0 and not errors(lines), "host lists in every form OpenDKIM reads",
           lines)
    status, lines = scratch.check("InternalHosts 192.168.0.0/16, 10.0.0.0/8, 172.16.0.0/12\n")
    tap.ok(status == 0 and not errors(lines), "a comma list with spaces (Debian's example)",
           lines)
    bad = scratch.write("bad-hosts", "127.0.0.1\n\n10.0.0.0/33\n")
    status, lines = scratch.check(f"InternalHosts file:{bad}\n")
    tap.ok(status != 0 and any(f"{bad} line 3: '10.0.0.0/33'" in line for line in lines),
           "a bad host entry names the file and the line", lines)
    status, lines = scratch.check("InternalHosts 0.0.0.0/0\n")
    tap.ok(status == 0 and any("covers every address" in line for line in lines),
           "InternalHosts 0.0.0.0/0: a warning", lines)
    status, lines = scratch.check("ResignMailTo dsn:mysql://x@localhost/db/table=t\n")
    tap.ok(status != 0 and any("type dsn: are not supported" in line for line in lines),
           "a database data set is refused by its type", lines)
    status, lines = scratch.check("PeerList /etc/opendkim/peers.db\n")
    tap.ok(status != 0 and any("Berkeley DB" in line for line in lines),
           "a name ending in .db is a Berkeley DB, refused", lines)

    sign_from = scratch.write("SignFrom", "alice@example.com *@example.net, *.example.org\n"
                                          "bob@example.com *example.info\n")
    status, lines = scratch.check(f"Mode v\nSignFromTable file:{sign_from}\n")
    tap.ok(status == 0 and len(lines) == 1 and lines[0].startswith("warning: ") and
           "SignFromTable: bob@example.com: the pattern '*example.info' also matches other "
           "domains ending in 'example.info', such as evil-example.info" in lines[0],
           "an unanchored SignFromTable pattern: a warning naming the login and the pattern, "
           "none for the anchored ones", lines)

    inner = scratch.write("inner.conf", "AuthservID mx.example.org\nFooBar 1\n")
    status, lines = scratch.check(f"Include {inner}\n")
    tap.ok(status != 0 and any(f"{inner} line 2: FooBar: unknown keyword" in line
                               for line in lines),
           "Include: the included file's problems name it", lines)
    loop = scratch.path("loop.conf")
    scratch.write("loop.conf", f"Include {loop}\n")
    status, lines = scratch.check(f"Include {loop}\n")
    tap.ok(status != 0 and any("more than 5 levels" in line for line in lines),
           "an Include loop stops at five levels", lines)


def keys(scratch):
    key = scratch.keys.genkey("example.com", "sel")
    small = scratch.path("small.private")
    procutil.run(["openssl", "genrsa", "-out", small, "1024"], "openssl genrsa")
    scratch.keys._own(small)
    os.chmod(small, 0o600)
    table = scratch.write("KeyTable", f"k example.com:sel:{key}\nsmall example.com:old:{small}\n"
                                      f"hosted %:sel:{scratch.path('%', 'sel.private')}\n")
    signing = scratch.write("SigningTable", "*@example.com k\n*@example.org missing\n")
    status, lines = scratch.check(f"KeyTable {table}\nSigningTable refile:{signing}\n")
    tap.ok(status != 0 and any("names key 'missing', which is not in the KeyTable" in line
                               for line in lines),
           "a SigningTable entry naming a key the KeyTable lacks is an error", lines)
    tap.ok(any("line 2 (small): an RSA key of 1024 bits" in line and
               line.startswith("warning") for line in lines),
           "a 1024-bit key: a warning naming its KeyTable line", lines)

    scratch.write("SigningTable", "*@example.com k\n")
    os.chmod(key, 0o640)
    status, lines = scratch.check(f"KeyTable {table}\nSigningTable refile:{signing}\n")
    tap.ok(status != 0 and any("line 1 (k)" in line for line in errors(lines)),
           "a key readable by the group is refused (RequireSafeKeys)", lines)
    status, lines = scratch.check(f"KeyTable {table}\nSigningTable refile:{signing}\n"
                                  "RequireSafeKeys no\n")
    tap.ok(status == 0, "and accepted with RequireSafeKeys no", lines)
    os.chmod(key, 0o600)
    status, lines = scratch.check(f"Domain example.com\nSelector sel\nKeyFile {key}1\n")
    tap.ok(status != 0 and any("KeyFile" in line and "sel.private1" in line
                               for line in errors(lines)),
           "a KeyFile that does not exist is an error", lines)
    status, lines = scratch.check(f"Domain example.com\nKeyFile {key}\n")
    tap.ok(status != 0 and any("Selector: missing" in line for line in lines),
           "Domain and KeyFile need Selector", lines)


def manual():
    done = subprocess.run([dkimmilter.MILTER, "-h"], capture_output=True, text=True, timeout=30)
    usage = done.stdout.splitlines()[0][len("usage: "):]
    rendered = subprocess.run(["groff", "-man", "-t", "-Tutf8", "-ww", "-rHY=0", "-P-c",
                               "-P-b", "-P-u", PAGE], capture_output=True, text=True,
                              timeout=60)
    text = rendered.stdout.translate(str.maketrans({"\u2010": "-", "\u2011": "-",
                                                     "\u2212": "-"}))
    tap.ok(rendered.returncode == 0 and not rendered.stderr.strip(),
           "dkim-milter(8) renders without groff warnings", rendered.stderr)
    synopsis = re.search(r"SYNOPSIS\n(.*?)\n\n", text, re.S)
    tap.eq(" ".join(synopsis[1].split()) if synopsis else None, usage,
           "dkim-milter(8): the synopsis is the usage line")
    options = set(re.findall(r"(?<![\w-])(-[a-zA-Z])\b", usage))
    missing = [o for o in sorted(options) if not re.search(rf"^\s+{o}\b", text, re.M)]
    tap.ok(options and not missing, "every option is described", missing)
    with open(CONFIG_SOURCE, encoding="utf-8") as handle:
        source = handle.read()
    table = source[source.index("static const struct keyword keywords[]"):]
    names = re.findall(r'^\t(?:USED|CUSTOM|DATASET|ON|IGNORED|REFUSED|FIXED|FIXED_BOOL)\("'
                       r'([^"]+)"', table, re.M)
    words = " ".join(text.split())
    undocumented = [n for n in names if not re.search(rf"(?<![\w-]){re.escape(n)}(?![\w-])",
                                                     words)]
    tap.ok(len(names) > 100 and not undocumented,
           f"dkim-milter(8) names all {len(names)} keywords", undocumented)


def main():
    defaults_pass()
    with Scratch() as scratch:
        every_opendkim_keyword(scratch)
        keywords(scratch)
        values(scratch)
        data_sets(scratch)
        keys(scratch)
    manual()


tap.run(main)

"""dkim-keys from the build tree, run as the user the signing processes run as (as
dkim-keys(1) tells administrators to), and the shipped dict configuration
(conf/dovecot-*/92-dkim-dict.conf) pointed at a test PostgreSQL.

Usage::

    tool = dkimkeys.KeysTool(keytable, signingtable, run_user, key_dir=..., dns=nsd_server)
    done = tool.run("rotate", "example.com")     # CompletedProcess, text output
    tool.zone_records()                          # {name: value} of `zone --panel`
"""
import os
import re
import subprocess

import dkimplugin
import dkimtools
import dovecot
import procutil

# dkim-keys(1), EXIT STATUS
EXIT_OK = 0
EXIT_PROBLEM = 1
EXIT_USAGE = 64
EXIT_TEMPFAIL = 75

DATABASE = "dkim"
DATABASE_USER = "dovecot"


class KeysTool:
    """dkim-keys with fixed tables (SPECs as the plugin takes them), run as `run_user` (a
    pwd entry; only switched to when we are root). `dns` is an nsd.NsdServer: the tool asks
    it, validating DNSSEC with `trust_anchor`, a copy of its trust anchor file that the run
    user can read. `doveadm_config`: doveadm's -c."""

    def __init__(self, keytable, signingtable, run_user, key_dir=None, dns=None,
                 trust_anchor=None, doveadm_config=None):
        self.run_user = run_user
        self.options = ["--keytable", keytable, "--signingtable", signingtable]
        if key_dir is not None:
            self.options += ["--key-dir", key_dir]
        if dns is not None:
            self.options += ["--resolver", f"127.0.0.1@{dns.port}", "--dns-timeout", "3"]
        if trust_anchor is not None:
            self.options += ["--trust-anchor", trust_anchor]
        if doveadm_config is not None:
            self.options += ["--doveadm-config", doveadm_config]

    def run(self, *args, timeout=120):
        """Runs dkim-keys OPTIONS ARGS; returns the CompletedProcess (str output). A signal
        raises HarnessError: no command of the tool may crash."""
        kwargs = {}
        if os.geteuid() == 0:
            kwargs = {"user": self.run_user.pw_uid, "group": self.run_user.pw_gid,
                      "extra_groups": []}
        done = subprocess.run([dkimtools.tool("dkim-keys"), *self.options, *args],
                              capture_output=True, text=True, timeout=timeout, cwd="/",
                              env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                                   "HOME": "/", "LC_ALL": "C.UTF-8"}, check=False,
                              **kwargs)
        if done.returncode < 0:
            raise procutil.HarnessError(f"dkim-keys {' '.join(args)} was killed by signal "
                                        f"{-done.returncode}:\n{done.stdout}{done.stderr}")
        return done

    def zone_records(self):
        """{record name: value} of every key, from `zone --panel`."""
        done = self.run("zone", "--panel")
        if done.returncode != 0:
            raise procutil.HarnessError(f"dkim-keys zone --panel exited {done.returncode}:\n"
                                        f"{done.stderr}")
        return dict(line.split("\t", 1) for line in done.stdout.splitlines())


def status_rows(output):
    """The table of `status` as [{column: value}], columns as in its header line."""
    lines = output.split("\n\nProblems:", 1)[0].splitlines()
    if not lines:
        return []
    starts = [match.start() for match in re.finditer(r"\S+", lines[0])]
    names = lines[0].split()
    rows = []
    for line in lines[1:]:
        cells = [line[start:end].strip() for start, end in
                 zip(starts, starts[1:] + [len(line)])]
        rows.append(dict(zip(names, cells)))
    return rows


def shipped_schema():
    """conf/dkim-dict-pgsql.sql, the tables for PostgreSQL."""
    return os.path.join(dkimtools.SRCDIR, "conf", "dkim-dict-pgsql.sql")


def shipped_dict_conf(pg, password, write):
    """The shipped 92-dkim-dict.conf for the running Dovecot, connected to the database
    DATABASE of `pg` (postgres.PostgresServer) as DATABASE_USER with `password`, instead of
    the example connection. `write(name, text)` stores a file where Dovecot's run user can
    read it and returns its path; the config's path is returned. On 2.3 the map file
    (dkim-dict-pgsql.conf.ext) is written beside it, as the config names it."""
    def replace(pattern, replacement, text, what):
        changed, count = re.subn(pattern, replacement, text, flags=re.M)
        if count != 1:
            raise procutil.HarnessError(f"the shipped {what} no longer has the example "
                                        f"connection this test replaces ({pattern!r})")
        return changed

    conf = read_file(dkimplugin.shipped_conf("92-dkim-dict.conf"))
    if dovecot.version_name() == "2.3":
        mapping = replace(r"^connect = .*$",
                          f"connect = host=127.0.0.1 port={pg.port} dbname={DATABASE} "
                          f"user={DATABASE_USER} password={password}",
                          read_file(dkimplugin.shipped_conf("dkim-dict-pgsql.conf.ext")),
                          "dkim-dict-pgsql.conf.ext")
        path = write("dkim-dict-pgsql.conf.ext", mapping)
        conf = replace(r"pgsql:/etc/dovecot/dkim-dict-pgsql\.conf\.ext", f"pgsql:{path}",
                       conf, "92-dkim-dict.conf")
    else:
        conf = replace(r"pgsql localhost \{\s*parameters \{[^}]*\}",
                       f"pgsql 127.0.0.1 {{\n      parameters {{\n        port = {pg.port}\n"
                       f"        dbname = {DATABASE}\n        user = {DATABASE_USER}\n"
                       f"        password = {password}\n      }}",
                       conf, "92-dkim-dict.conf")
    return write("92-dkim-dict.conf", conf)


def shipped_dict_server(conf_path):
    """The dict server's dicts of a config made by shipped_dict_conf(), for
    dovecot.Settings.dict_server: on 2.3 {"dkim": the URI in `dict { }`}, on 2.4 {"dkim":
    the body of `dict dkim { }` in `dict_server { }`}."""
    conf = read_file(conf_path)
    if dovecot.version_name() == "2.3":
        found = re.search(r"^dict \{\n\s*dkim = (\S+)\n\}", conf, re.M)
        if not found:
            raise procutil.HarnessError(f"{conf_path}: no dict {{ dkim = URI }}")
        return {"dkim": {"2.3": found[1]}}
    start = conf.find("dict_server {\n  dict dkim {\n")
    if start < 0:
        raise procutil.HarnessError(f"{conf_path}: no dict_server {{ dict dkim {{ }} }}")
    body_start = conf.index("\n", conf.index("dict dkim {", start)) + 1
    depth, pos = 1, body_start
    while depth > 0:
        pos = min(p for p in (conf.find("{", pos), conf.find("}", pos), len(conf))
                  if p >= 0)
        if pos == len(conf):
            raise procutil.HarnessError(f"{conf_path}: unbalanced braces")
        depth += 1 if conf[pos] == "{" else -1
        pos += 1
    body = conf[body_start:conf.rindex("\n", body_start, pos) + 1]
    return {"dkim": {"2.4": "\n".join(line[4:] for line in body.splitlines()) + "\n"}}


def dict_dovecot_settings(conf_path):
    """dovecot.Dovecot keyword arguments that make an instance read both tables from the
    dict server's dict "dkim", as the config made by shipped_dict_conf() does, but stated
    through the harness (dict_server; on 2.4 the dkim_dict filter)."""
    return {
        "dict_server": shipped_dict_server(conf_path),
        "raw_config": {"2.3": "",
                       "2.4": "dkim_dict dkim {\n  dict proxy {\n    name = dkim\n  }\n}\n"},
        "plugin_settings": {"dkim_keytable": dict_spec(), "dkim_signingtable": dict_spec()},
    }


def dict_spec(name="dkim"):
    """The table setting for the dict server's dict `name` as 92-dkim-dict.conf reaches it:
    the proxy URI on 2.3, the dkim_dict filter of that name on 2.4."""
    return f"dict:proxy::{name}" if dovecot.version_name() == "2.3" else f"dict:{name}"


def read_file(path):
    with open(path, encoding="utf-8") as handle:
        return handle.read()

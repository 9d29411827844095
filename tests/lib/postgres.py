"""A private PostgreSQL cluster on 127.0.0.1, for tests of tables served from SQL through
Dovecot's dict.

Why a real server: what matters is what Dovecot's dict-sql driver makes of the shipped
schema and maps (the queries it builds, `doveadm dict set` as an upsert, plain SQL INSERTs
read back through the dict), and what the plugin does when the database goes away; only a
running PostgreSQL answers those.

The cluster is made with Debian's `initdb` in a temp dir and run by `postgres` as our child
in its own process group (never daemonized), so stopping it cannot leave processes behind.
PostgreSQL refuses to run as root: started by root, it runs as the `postgres` user (made by
Debian's postgresql package), else as the invoking user. It listens on a free loopback port
and on a unix socket in the temp dir; local (socket) logins are trusted, TCP logins need a
password (scram-sha-256), as a real setup where Dovecot's dict server logs in over TCP.

Usage::

    with postgres.PostgresServer() as pg:
        pg.create_database("dkim", owner="dovecot", password="secret")
        pg.psql("dkim", "CREATE TABLE t (k text)")
        pg.port                            # for Dovecot's connect string
        pg.stop(); pg.start()              # an outage and the return
"""
import glob
import os
import pwd
import re
import signal
import subprocess

import procutil

ADDRESS = "127.0.0.1"
SUPERUSER = "postgres"


def _bindir():
    """The newest installed PostgreSQL server's bin directory (Debian keeps them versioned,
    /usr/lib/postgresql/15/bin)."""
    candidates = glob.glob("/usr/lib/postgresql/*/bin/initdb")
    if not candidates:
        raise procutil.HarnessError("PostgreSQL is not installed: no /usr/lib/postgresql/*/"
                                    "bin/initdb (scripts/install-deps.sh installs it)")
    newest = max(candidates, key=lambda path: int(re.search(r"/(\d+)/bin/", path)[1]))
    return os.path.dirname(newest)


def _quote_literal(text):
    return "'" + text.replace("'", "''") + "'"


def _quote_ident(text):
    return '"' + text.replace('"', '""') + '"'


class PostgresServer(procutil.TempDirServer):
    """The running cluster; see the module docstring. Every wait is bounded by
    `startup_timeout` seconds."""

    def __init__(self, startup_timeout=60):
        self.startup_timeout = startup_timeout
        self.bindir = _bindir()
        if os.geteuid() == 0:
            try:
                self.run_user = pwd.getpwnam("postgres")
            except KeyError:
                self.run_user = pwd.getpwnam("nobody")
        else:
            self.run_user = pwd.getpwuid(os.geteuid())
        self.port = None
        self.directory = None
        self._server = None

    # -- lifecycle ---------------------------------------------------------------------------

    DIRECTORY_PREFIX = "dkim-postgres-"

    def _prepare(self):
        os.chmod(self.directory, 0o755)
        self._chown(self.directory)
        self._initdb()
        self.start()

    @property
    def data_dir(self):
        return os.path.join(self.directory, "data")

    @property
    def socket_dir(self):
        return self.directory

    @property
    def log_file(self):
        return os.path.join(self.directory, "postgres.log")

    def start(self):
        """Starts the server (again, on the same port) and waits until it accepts logins."""
        if self._server is not None:
            return
        if self.port is None:
            self.port = procutil.free_port()
        log = open(self.log_file, "ab")
        try:
            self._server = subprocess.Popen(
                [os.path.join(self.bindir, "postgres"), "-D", self.data_dir,
                 "-p", str(self.port), "-h", ADDRESS, "-k", self.socket_dir],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, cwd=self.directory, **self._as_run_user())
        finally:
            log.close()
        procutil.wait_until(self._ready, self.startup_timeout, "PostgreSQL to accept logins")

    def stop(self):
        """Stops the server (fast shutdown: SIGINT, as pg_ctl -m fast), bounded; idempotent."""
        if self._server is None:
            return
        server, self._server = self._server, None
        if server.poll() is None:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(self.startup_timeout)
            except subprocess.TimeoutExpired:
                pass
        procutil.stop_process(server)

    def log_text(self):
        try:
            with open(self.log_file, encoding="utf-8", errors="replace") as handle:
                return handle.read()
        except OSError:
            return ""

    # -- SQL ---------------------------------------------------------------------------------

    def psql(self, database, sql, check=True):
        """Runs `sql` in `database` as the superuser (through the unix socket); stops at the
        first error. Returns the output rows: tuples only, fields separated by '|'."""
        done = procutil.run(
            [os.path.join(self.bindir, "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
             "-h", self.socket_dir, "-p", str(self.port), "-U", SUPERUSER, "-d", database],
            "psql", input_bytes=sql.encode("utf-8"), check=check,
            timeout=self.startup_timeout, cwd=self.directory, **self._as_run_user())
        return done.stdout.decode("utf-8", "replace")

    def create_database(self, name, owner, password):
        """Creates a login role `owner` (TCP logins with `password`) and a database `name`
        owned by it."""
        self.psql("postgres", f"CREATE ROLE {_quote_ident(owner)} LOGIN PASSWORD "
                              f"{_quote_literal(password)};\n"
                              f"CREATE DATABASE {_quote_ident(name)} OWNER {_quote_ident(owner)};\n")

    def run_file(self, database, path, role):
        """Runs the SQL file `path` in `database` as `role` (so the objects are its own)."""
        with open(path, encoding="utf-8") as handle:
            sql = handle.read()
        return self.psql(database, f"SET ROLE {_quote_ident(role)};\n{sql}")

    # -- internals ---------------------------------------------------------------------------

    def _as_run_user(self):
        if os.geteuid() != 0:
            return {}
        return {"user": self.run_user.pw_uid, "group": self.run_user.pw_gid, "extra_groups": [],
                "env": {"PATH": "/usr/bin:/bin", "HOME": self.directory, "LC_ALL": "C.UTF-8"}}

    def _chown(self, path):
        if os.geteuid() == 0:
            os.chown(path, self.run_user.pw_uid, self.run_user.pw_gid)

    def _initdb(self):
        procutil.run([os.path.join(self.bindir, "initdb"), "-D", self.data_dir,
                      "-U", SUPERUSER, "-E", "UTF8", "--locale=C", "--no-sync",
                      "--auth-local=trust", "--auth-host=scram-sha-256"],
                     "initdb", timeout=self.startup_timeout * 2, cwd=self.directory,
                     **self._as_run_user())
        # A test cluster: small, quick to stop, nothing that waits for disks.
        with open(os.path.join(self.data_dir, "postgresql.conf"), "a",
                  encoding="utf-8") as conf:
            conf.write("fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                       "shared_buffers = 16MB\nmax_connections = 40\n"
                       "log_min_messages = warning\n")

    def _ready(self):
        if self._server.poll() is not None:
            raise procutil.HarnessError(
                f"postgres exited with {self._server.returncode}:\n{self.log_text()[-3000:]}")
        done = subprocess.run(
            [os.path.join(self.bindir, "pg_isready"), "-q", "-h", self.socket_dir,
             "-p", str(self.port), "-U", SUPERUSER, "-d", "postgres", "-t", "2"],
            capture_output=True, timeout=10, check=False, cwd=self.directory,
            **self._as_run_user())
        return done.returncode == 0

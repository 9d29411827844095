"""A private Postfix instance (Debian's postfix package) for milter tests.

Why: dkim-milter only matters between a real MTA and the Internet: what Postfix sends it (macros,
header values, body chunks, the non-SMTP pickup path), what it does with the replies (header
insertion and deletion, quarantine, milter_default_action), and how it behaves under load. So the
tests run the real master with a generated main.cf and master.cf, everything in one temp dir:
config_directory, queue_directory, data_directory and the log (maillog_file through postlogd).

Postfix listens on 127.0.0.1 only and relays everything to `relay_port` (the test's SMTP sink).
Only 127.0.0.1 is in mynetworks; a client connecting from 127.0.0.2 (Linux routes all of
127.0.0.0/8 to the loopback) is an outsider, to Postfix and to the milter's InternalHosts alike.
Outsiders may send to `relay_domains` and to the `forwards` (virtual aliases that point
elsewhere, as a forwarding address does). SASL, when `sasl_path` is given, goes to a Dovecot auth
socket (smtpd_sasl_type = dovecot).

The master must start as root (its daemons then run as mail_owner = postfix): without root,
Postfix() raises HarnessError, and tests skip. It runs in the foreground (master -s) as our child
in its own process group, so stopping it can never leave processes behind.

Usage::

    with smtpsink.SmtpSink() as sink, postfix.Postfix(
            relay_port=sink.port, milter="inet:127.0.0.1:8891",
            relay_domains=("remote.example",)) as pf:
        pf.send("s@example.com", ["x@remote.example"], message)            # from 127.0.0.1
        pf.send(..., client="127.0.0.2")                                     # an outsider
        pf.send(..., login=("alice@example.com", "secret"))                # SASL
        pf.sendmail("s@example.com", ["x@remote.example"], message)        # local sendmail
        [relayed] = sink.wait_for(1)
        assert not pf.error_lines()
"""
import dataclasses
import os
import re
import shutil
import smtplib
import socket
import subprocess

import procutil
import smtpclient

MASTER = "/usr/lib/postfix/sbin/master"
POSTFIX = "/usr/sbin/postfix"
SENDMAIL = "/usr/sbin/sendmail"
INTERNAL_CLIENT = "127.0.0.1"
EXTERNAL_CLIENT = "127.0.0.2"
ERROR_PATTERN = re.compile(r"(?:^|: )(?:error|fatal|panic): ")
"""How Postfix marks errors in its log ("postfix/smtpd[12]: fatal: ...")."""


@dataclasses.dataclass
class Settings:
    """What main.cf is generated from; restart(**changes) replaces fields."""
    relay_port: int = None
    milter: str = None                 # smtpd_milters and non_smtpd_milters, Postfix's syntax
    milter_default_action: str = "tempfail"
    sasl_path: str = None              # a Dovecot auth socket
    relay_domains: tuple = ("remote.example",)
    forwards: dict = dataclasses.field(default_factory=dict)   # address -> where it forwards
    hostname: str = "mx.test.example"
    extra: dict = dataclasses.field(default_factory=dict)       # more main.cf settings


class Postfix(procutil.LoggingServer):
    """The running instance; keyword arguments are Settings fields."""

    def __init__(self, startup_timeout=30, **settings):
        if os.geteuid() != 0:
            raise procutil.HarnessError("a private Postfix needs root (its master starts as "
                                        "root and runs its daemons as the postfix user)")
        for path in (MASTER, POSTFIX, SENDMAIL):
            if not os.path.exists(path):
                raise procutil.HarnessError(f"{path} is missing: install postfix "
                                            "(scripts/install-deps.sh)")
        self.settings = Settings(**settings)
        self.startup_timeout = startup_timeout
        self.port = procutil.free_port()
        self.directory = None
        self._master = None

    # -- lifecycle ---------------------------------------------------------------------------

    DIRECTORY_PREFIX = "dkim-postfix-"

    def _prepare(self):
        # The postfix user must reach the queue below it.
        os.chmod(self.directory, 0o755)
        for sub in ("config", "queue", "data", "log"):
            os.makedirs(self._path(sub), mode=0o755)
        shutil.chown(self._path("data"), "postfix")
        shutil.chown(self._path("log"), "postfix")
        self._write_config()
        procutil.run([POSTFIX, "-c", self.config_directory, "check"], "postfix check")
        self.start()

    @property
    def config_directory(self):
        return self._path("config")

    @property
    def queue_directory(self):
        return self._path("queue")

    def start(self):
        """Starts the master in the foreground and waits until smtpd greets."""
        with open(self._path("log", "master.out"), "ab") as out:
            self._master = subprocess.Popen(
                [MASTER, "-c", self.config_directory, "-s"], stdin=subprocess.DEVNULL,
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            procutil.wait_until(self._greets, self.startup_timeout, "Postfix to listen")
        except procutil.HarnessError as exc:
            raise procutil.HarnessError(f"{exc}; its log:\n{self.log_text()[-5000:]}") from exc

    def stop(self):
        """Stops the master and every process of its group (bounded); idempotent. Returns the
        master's exit status (0 when it stopped cleanly on SIGTERM), or None if not running."""
        if self._master is None:
            return None
        status = procutil.stop_process(self._master, timeout=20)
        self._master = None
        return status

    def restart(self, **changes):
        """Stops, applies Settings changes, and starts again (the queue is kept)."""
        self.stop()
        self.settings = dataclasses.replace(self.settings, **changes)
        self._write_config()
        self.start()

    def processes(self):
        return procutil.group_members(self._master.pid) if self._master else []

    # -- mail --------------------------------------------------------------------------------

    def connect(self, client=INTERNAL_CLIENT, timeout=60):
        """An smtplib.SMTP connection to smtpd from `client` (a loopback source address),
        after EHLO; the caller closes it."""
        smtp = smtplib.SMTP(timeout=timeout, source_address=(client, 0))
        try:
            smtp.connect("127.0.0.1", self.port)
            smtp.ehlo("client.test.example")
        except BaseException:
            smtp.close()
            raise
        return smtp

    def send(self, sender, recipients, message, client=INTERNAL_CLIENT, login=None,
             bdat=False, timeout=120):
        """Sends one message over SMTP; returns the refused recipients as smtplib does and
        raises smtplib's exceptions for a refused message (e.g. SMTPDataError)."""
        with self.connect(client, timeout) as smtp:
            if login is not None:
                smtp.login(*login)
            return smtpclient.send(smtp, sender, recipients, message, bdat=bdat)

    def sendmail(self, sender, recipients, message, check=True):
        """Submits through the local sendmail command (postdrop, then pickup: the non-SMTP
        path); returns the CompletedProcess."""
        return procutil.run([SENDMAIL, "-C", self.config_directory, "-f", sender, "-i", "--",
                             *recipients], "sendmail", input_bytes=message, check=check)

    def queue_ids(self, queue):
        """The queue ids in one queue directory ("hold", "deferred", "active", ...)."""
        found = []
        for root, _, files in os.walk(os.path.join(self.queue_directory, queue)):
            found += files
        return found

    def flush(self):
        """Asks the queue manager to retry deferred mail now."""
        procutil.run([POSTFIX, "-c", self.config_directory, "flush"], "postfix flush")

    # -- logs --------------------------------------------------------------------------------

    LOG_FILES = ("log/master.out", "log/maillog")
    ERROR_PATTERN = ERROR_PATTERN

    def wait_for_log(self, pattern, timeout=30, start=0):
        """Waits until a log line (after offset `start`) matches; returns the line."""
        def found():
            for line in self.log_text()[start:].splitlines():
                if re.search(pattern, line):
                    return line
            return None
        return procutil.wait_until(found, timeout, f"Postfix to log {pattern!r}")

    # -- internals ---------------------------------------------------------------------------

    def _path(self, *parts):
        return os.path.join(self.directory, *parts)

    def _greets(self):
        if self._master.poll() is not None:
            raise procutil.HarnessError(
                f"the Postfix master exited with {self._master.returncode}:\n{self.log_text()}")
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
                greeting = sock.makefile("rb").readline()
                sock.sendall(b"QUIT\r\n")
                return greeting.startswith(b"220 ")
        except OSError:
            return False

    def _write_config(self):
        s = self.settings
        d = self.directory
        settings = {
            "compatibility_level": "3.6",
            "queue_directory": f"{d}/queue",
            "data_directory": f"{d}/data",
            "command_directory": "/usr/sbin",
            "daemon_directory": "/usr/lib/postfix/sbin",
            "meta_directory": "/etc/postfix",
            "shlib_directory": "/usr/lib/postfix",
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "maillog_file": f"{d}/log/maillog",
            "maillog_file_prefixes": f"{d}/log",
            "myhostname": s.hostname,
            "mydomain": "test.example",
            "myorigin": "$myhostname",
            "mydestination": "",
            "local_recipient_maps": "",
            "alias_maps": "",
            "alias_database": "",
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "mynetworks": f"{INTERNAL_CLIENT}/32",
            "relayhost": f"[127.0.0.1]:{s.relay_port}",
            "relay_domains": " ".join(s.relay_domains),
            "smtp_dns_support_level": "disabled",
            "smtpd_peername_lookup": "no",
            "smtpd_recipient_restrictions":
                "permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination",
            "smtputf8_enable": "no",
            "biff": "no",
            "append_dot_mydomain": "no",
            "message_size_limit": "60000000",
            "default_process_limit": "250",
            "smtpd_client_connection_count_limit": "0",
            "smtpd_client_message_rate_limit": "0",
            "delay_warning_time": "0",
        }
        if s.forwards:
            settings["virtual_alias_domains"] = " ".join(
                sorted({address.split("@")[1] for address in s.forwards}))
            settings["virtual_alias_maps"] = "inline:{ " + ", ".join(
                f"{{ {address} = {target} }}" for address, target in s.forwards.items()) + " }"
        if s.milter is not None:
            settings["smtpd_milters"] = s.milter
            settings["non_smtpd_milters"] = s.milter
            settings["milter_default_action"] = s.milter_default_action
        if s.sasl_path is not None:
            settings.update({"smtpd_sasl_auth_enable": "yes", "smtpd_sasl_type": "dovecot",
                             "smtpd_sasl_path": s.sasl_path})
        settings.update(s.extra)
        with open(self._path("config", "main.cf"), "w", encoding="utf-8") as handle:
            handle.write("# Generated by tests/lib/postfix.py for one test run.\n")
            handle.writelines(f"{name} = {value}\n" for name, value in settings.items())
        with open(self._path("config", "master.cf"), "w", encoding="utf-8") as handle:
            handle.write(_MASTER_CF.format(port=self.port))


# No chroot: the daemons reach the Dovecot socket and the milter by absolute paths.
_MASTER_CF = """\
# Generated by tests/lib/postfix.py.
127.0.0.1:{port} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""

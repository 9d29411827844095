"""A private Dovecot instance (LMTP, LDA, submission, Sieve, optionally IMAP with URLAUTH) for
plugin tests, on Dovecot 2.3 or 2.4: the config is written in the syntax of the version that
`dovecot --version` reports.

Why: the plugins only matter inside real Dovecot processes (deliver hook ordering, edit_mail,
submission relay), so tests run the real daemon with a generated config, following
../shared/docs/dovecot-plugin-facts.md section 5 (2.3) and dovecot-2.4-facts.md section 4 (2.4).
Everything lives in one temp dir: config, base_dir, state_dir, log, passwd-file, homes
(maildir) and a private module dir into which the Sieve plugin and the caller's built plugins
are copied.

Runs as the invoking user, or as `nobody` when started by root (userdb uid 0 is refused and
plain dovecot-lda needs -d as root). The master runs in the foreground (-F) as our child in
its own process group, so stopping it can never leave processes behind.

Tests state settings, not config text: by name and value, with a scope (see Settings), and
this module renders them for the running version. Where 2.3 and 2.4 differ in more than
syntax, `version()` tells which one runs; `raw_config` takes config text per version for
the rare test that needs it.

Usage::

    with smtpsink.SmtpSink() as sink, dovecot.Dovecot(
            relay_port=sink.port,
            delivery_plugins=[f"{builddir}/delivery-plugin/.libs/lib95_dkim_plugin.so"],
            plugin_settings={"dkim_dns_resolver": "127.0.0.1@5353"},
            userdb_fields={"bob": {"dkim_verify": "no"}}) as dc:
        dc.deliver_lmtp("s@example.org", ["alice@test.example"], message)
        dc.read_maildir("alice")
        dc.submit("alice", "alice@test.example", ["x@remote.example"], message)
        assert not dc.error_lines()

With ``imap=True`` the instance also serves IMAP on 127.0.0.1 (`imap_port`, `imap_login()`)
with URLAUTH (RFC 4467), and submission then offers BURL (RFC 4468) for the URLs IMAP's
GENURLAUTH gives: the needs are imap_urlauth_host/_port (shared by imap and submission),
the attribute dict (where the URLAUTH keys live) and the imap-urlauth, imap-urlauth-login
and imap-urlauth-worker services, whose unix listeners stay at their default names under
base_dir (the login one without chroot, as we are not root). A URL into the submitter's own
mailbox is resolved by the submission process itself; only another user's goes through the
imap-urlauth services, and Dovecot 2.3.19's imap-urlauth-login panics on that token login
(fixed upstream in 2.4.0), so that path is configured but only reaches the auth step there.
"""
import dataclasses
import functools
import grp
import imaplib
import os
import pwd
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import time
import uuid

import procutil
import smtpclient

SIEVE_PLUGIN = "/usr/lib/dovecot/modules/lib90_sieve_plugin.so"
DOVECOT_LDA = "/usr/lib/dovecot/dovecot-lda"
DOVECOT_LMTP = "/usr/lib/dovecot/lmtp"
DOVECOT_IMAP = "/usr/lib/dovecot/imap"
SIEVE_TEST_COMPILE_FAILED = 89
"""sieve-test's exit status when the script does not compile (Dovecot's FATAL_DEFAULT)."""
LOG_TIMEOUT = 10
"""Seconds to wait for a line that a service logs through Dovecot's log process."""
ERROR_PATTERN = re.compile(r"(?:^|: )(?:Error|Panic|Fatal): ")
"""How Dovecot marks errors in its log lines ("lmtp(alice)<...>: Error: ...")."""


def module_name(path):
    """Dovecot's name for a plugin file: lib95_dkim_plugin.so -> dkim (module-dir.c rules)."""
    match = re.fullmatch(r"lib(?:\d+_)?(.+?)(?:_plugin)?\.so", os.path.basename(path))
    if not match:
        raise ValueError(f"{path}: not a Dovecot plugin file name (lib<NN>_<name>_plugin.so)")
    return match.group(1)


@functools.lru_cache(maxsize=None)
def version():
    """(major, minor) of the Dovecot on PATH, e.g. (2, 4), from `dovecot --version`."""
    done = procutil.run(["dovecot", "--version"], "dovecot --version")
    text = done.stdout.decode("utf-8", "replace")
    match = re.match(r"(\d+)\.(\d+)\.", text)
    if not match:
        raise procutil.HarnessError(f"dovecot --version: cannot read {text!r}")
    return int(match.group(1)), int(match.group(2))


def version_name(numbers=None):
    """"2.3" or "2.4": the key of Settings.raw_config for `numbers` (default: version())."""
    return "%d.%d" % (numbers or version())


@dataclasses.dataclass(frozen=True)
class Metric:
    """A statistics metric: the events matching `filter` (Dovecot's event filter syntax),
    counted by `doveadm stats dump` as NAME, or NAME_<value> for each value of the
    `group_by` fields; with `export_to_log`, each such event is also written to Dovecot's
    log as one JSON object ("time" in RFC 3339)."""
    name: str
    filter: str
    group_by: tuple = ()
    export_to_log: bool = False


@dataclasses.dataclass
class Settings:
    """Everything the config is generated from; reload(**changes) replaces fields.

    Plugins: the *_plugins lists are .so paths; each file is copied under its own name (the
    name sets the load order, see facts 2.2) and enabled where it belongs (mail_plugins of
    lmtp and lda, of submission, or sieve_plugins). `sieve_extensions` are enabled on top of
    Pigeonhole's defaults (2.3: "+name", 2.4: a boolean list).

    Settings, as {name: value} (a bool is written yes/no), by scope:
    - `plugin_settings`: a plugin's settings for every service: inside `plugin {}` on 2.3,
      at the top level on 2.4 (where a plugin's settings parse only once its settings
      module is installed in Dovecot's module dir);
    - `dovecot_settings`: Dovecot's own top-level settings; they replace the harness's
      values of the same name (e.g. mail_debug);
    - `protocol_settings`: {protocol: {name: value}}, inside `protocol NAME {}`
      (lmtp, lda, submission, imap);
    - `userdb_fields`: {user: {field: value}}, passwd-file extra fields
      ``userdb_<field>=<value>``, which override the settings above for that user.
    `full_usernames`: users log in with their full address (user@domain), which the
    passwd-file then holds; by default the domain is dropped (alice@test.example -> alice).
    `metrics`: Metric tuples. `imap`: the IMAP service with URLAUTH (module docstring).
    `managesieve`: the ManageSieve service (RFC 5804) on `managesieve_port`.
    `dict_server`: {name: {version name: definition}}, the dicts Dovecot's dict server
    serves (a process reads dict NAME through the proxy: `proxy::NAME` on 2.3,
    `dict proxy { name = NAME }` on 2.4). The definition is the version's own: on 2.3 a
    dict URI (``pgsql:/path/to/map.conf.ext``), on 2.4 the body of `dict NAME { }` inside
    `dict_server { }` (driver, SQL connection, dict_map blocks).

    Config text: `includes` are files read with !include after the settings above (copied
    into the instance, so the run user can read them); `raw_config` maps a version name
    ("2.3", "2.4", see version_name()) to text appended last; a test that gives it must give
    it for the version that runs.
    """
    users: tuple = ("alice", "bob", "carol")
    password: str = "secret"
    domain: str = "test.example"
    hostname: str = "mx.test.example"
    relay_host: str = "127.0.0.1"
    relay_port: int = None
    delivery_plugins: tuple = ()
    submission_plugins: tuple = ()
    sieve_plugins: tuple = ()
    sieve_extensions: tuple = ()
    plugin_settings: dict = dataclasses.field(default_factory=dict)
    dovecot_settings: dict = dataclasses.field(default_factory=dict)
    protocol_settings: dict = dataclasses.field(default_factory=dict)
    userdb_fields: dict = dataclasses.field(default_factory=dict)
    full_usernames: bool = False
    metrics: tuple = ()
    imap: bool = False
    managesieve: bool = False
    dict_server: dict = dataclasses.field(default_factory=dict)
    includes: tuple = ()
    raw_config: dict = dataclasses.field(default_factory=dict)


class _Syntax23:
    """How Dovecot 2.3 spells what the harness configures (see _Syntax24 for 2.4); both
    classes answer the same questions, and _config() asks them."""
    preamble = ""
    restart_request_count = "service_count"
    unlimited_size = "0"

    @staticmethod
    def core(full_usernames):
        """Top-level settings that only differ in name or value."""
        return {"mail_location": "maildir:~/Maildir", "disable_plaintext_auth": "no",
                "auth_username_format": "%Lu" if full_usernames else "%Ln"}

    @staticmethod
    def passwd_file(kind, path):
        return f"{kind} {{\n  driver = passwd-file\n  args = {path}\n}}\n"

    @staticmethod
    def mail_plugins(names):
        return f"  mail_plugins = $mail_plugins {' '.join(names)}\n"

    @staticmethod
    def attribute_dict():
        return "mail_attribute_dict = file:%h/dovecot-attributes\n"

    @staticmethod
    def plugins_and_sieve(plugin_settings, plugin_dir, sieve_plugins, sieve_extensions):
        """Plugin settings and Sieve: all of them in `plugin {}`."""
        lines = {"sieve": "file:~/sieve;active=~/.dovecot.sieve"}
        if sieve_plugins:
            lines["sieve_plugin_dir"] = plugin_dir
            lines["sieve_plugins"] = " ".join(sieve_plugins)
        if sieve_extensions:
            lines["sieve_extensions"] = " ".join(f"+{name}" for name in sieve_extensions)
        lines.update(plugin_settings)
        return "plugin {\n" + _settings_lines(lines, "  ") + "}\n"

    @staticmethod
    def log_exporter():
        return ("event_exporter log {\n  format = json\n  format_args = time-rfc3339\n"
                "  transport = log\n}\n")

    @staticmethod
    def group_by(fields):
        return f"  group_by = {' '.join(fields)}\n"

    @staticmethod
    def dict_server(definitions):
        """The dict server's dicts: {name: URI}."""
        return "dict {\n" + _settings_lines(definitions, "  ") + "}\n"


class _Syntax24:
    """How Dovecot 2.4 spells it: dovecot-2.4-facts.md section 4."""
    preamble = "dovecot_config_version = 2.4.0\ndovecot_storage_version = 2.4.0\n"
    restart_request_count = "restart_request_count"
    unlimited_size = "unlimited"

    @staticmethod
    def core(full_usernames):
        return {"mail_driver": "maildir", "mail_path": "~/Maildir",
                "auth_allow_cleartext": "yes",
                "auth_username_format": ("%{user | lower}" if full_usernames
                                         else "%{user | username | lower}")}

    @staticmethod
    def passwd_file(kind, path):
        return f"{kind} passwd-file {{\n  passwd_file_path = {path}\n}}\n"

    @staticmethod
    def mail_plugins(names):
        return "  mail_plugins {\n" + _boolean_list(names, "    ") + "  }\n"

    @staticmethod
    def attribute_dict():
        # 2.4.1's default imap_capability lacks URLAUTH (2.3 added it whenever the
        # attribute dict and imap_urlauth_host were set): GENURLAUTH and BURL work, but
        # clients would not know.
        return ("mail_attribute {\n  dict file {\n    path = %{home}/dovecot-attributes\n  }\n}\n"
                "imap_capability {\n  URLAUTH = yes\n  \"URLAUTH=BINARY\" = yes\n}\n")

    @staticmethod
    def plugins_and_sieve(plugin_settings, plugin_dir, sieve_plugins, sieve_extensions):
        """No `plugin {}`: plugin settings are top-level settings like any other."""
        text = ("sieve_script personal {\n  driver = file\n  path = ~/sieve\n"
                "  active_path = ~/.dovecot.sieve\n}\n")
        if sieve_plugins:
            text += (f"sieve_plugin_dir = {plugin_dir}\n"
                     "sieve_plugins {\n" + _boolean_list(sieve_plugins, "  ") + "}\n")
        if sieve_extensions:
            text += "sieve_extensions {\n" + _boolean_list(sieve_extensions, "  ") + "}\n"
        return text + _settings_lines(plugin_settings, "")

    @staticmethod
    def log_exporter():
        return "event_exporter log {\n  driver = log\n  format = json\n  time_format = rfc3339\n}\n"

    @staticmethod
    def group_by(fields):
        return "".join(f"  group_by {field} {{\n  }}\n" for field in fields)

    @staticmethod
    def dict_server(definitions):
        """The dict server's dicts: {name: body of `dict NAME { }`}."""
        return "dict_server {\n" + "".join(
            f"  dict {name} {{\n" + _indent(body, "    ") + "  }\n"
            for name, body in definitions.items()) + "}\n"


SYNTAX = {(2, 3): _Syntax23, (2, 4): _Syntax24}
"""The config syntaxes the harness writes, by Dovecot version."""


def _setting_value(name, value):
    """A setting's value as config text: bool -> yes/no; nothing that could end the line."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    text = str(value)
    if "\n" in text or "\r" in text:
        raise ValueError(f"setting {name}: a value cannot span lines: {text!r}")
    return text


def _settings_lines(settings, indent):
    return "".join(f"{indent}{name} = {_setting_value(name, value)}\n"
                   for name, value in settings.items())


def _indent(text, indent):
    return "".join(f"{indent}{line}\n" for line in text.splitlines())


def _boolean_list(names, indent):
    """The entries of a 2.4 boolean list (mail_plugins, sieve_plugins, sieve_extensions)."""
    return "".join(f"{indent}{name} = yes\n" for name in names)


class Dovecot(procutil.LoggingServer):
    """The running instance; see the module docstring. Keyword arguments are Settings fields.

    Submission is enabled when `relay_port` is given (Dovecot needs a relay host for it).
    """

    def __init__(self, startup_timeout=15, **settings):
        self.settings = Settings(**settings)
        self.startup_timeout = startup_timeout
        self.version = version()
        if self.version not in SYNTAX:
            raise procutil.HarnessError(
                f"Dovecot {version_name(self.version)}: the harness writes configs for "
                f"{', '.join(map(version_name, SYNTAX))} only")
        self.syntax = SYNTAX[self.version]
        if self.settings.imap and not os.path.exists(DOVECOT_IMAP):
            raise procutil.HarnessError(f"imap=True needs {DOVECOT_IMAP}: install "
                                        "dovecot-imapd (scripts/install-deps.sh)")
        if os.geteuid() == 0:
            self.run_user = pwd.getpwnam("nobody")
            self.run_group = grp.getgrnam("nogroup")
        else:
            self.run_user = pwd.getpwuid(os.geteuid())
            self.run_group = grp.getgrgid(os.getegid())
        self.lmtp_port = procutil.free_port()
        self.submission_port = procutil.free_port()
        self.imap_port = procutil.free_port()
        self.managesieve_port = procutil.free_port()
        self.directory = None
        self._master = None
        self._process_group = None
        self._generation = 0
        self._notify = None

    # -- lifecycle ---------------------------------------------------------------------------

    DIRECTORY_PREFIX = "dkim-dovecot-"

    def _prepare(self):
        self._check_traversable()
        for sub in ("log", "home", "modules/sieve", "tmp"):
            os.makedirs(self._path(sub))
        self._write_files()
        self._own_tree()
        self.start()

    def __exit__(self, *exc):
        try:
            super().__exit__(*exc)
        finally:
            if self._notify is not None:
                self._notify.close()

    @property
    def config_file(self):
        return self._path("dovecot.conf")

    @property
    def lmtp_socket(self):
        return self._path("run", "lmtp")

    def start(self):
        """Starts the master in the foreground and waits until it is ready and its listeners
        answer."""
        if self._notify is None:
            self._notify = _ReadinessSocket()
        self._notify.drain()
        with open(self._path("log", "master.out"), "ab") as out:
            self._master = subprocess.Popen(
                ["dovecot", "-F", "-c", self.config_file], stdin=subprocess.DEVNULL,
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                env=dict(os.environ, NOTIFY_SOCKET=self._notify.address),
                **self._drop_privileges())
        self._process_group = self._master.pid
        self._wait_ready("start")
        procutil.wait_until(self._serving_current_config, self.startup_timeout,
                            "Dovecot to listen")

    def stop(self):
        """Stops the master and every process of its group (bounded); idempotent."""
        if self._master is not None:
            procutil.stop_process(self._master)
            self._master = None

    def processes(self):
        """Pids alive in the process group of the last master started (empty after stop())."""
        return procutil.group_members(self._process_group) if self._process_group else []

    def reload(self, **changes):
        """Applies Settings changes: rewrites the files, SIGHUPs the master and waits until
        new connections get the new config (lmtp runs with service_count = 1, so the next
        delivery uses the new settings and plugin files).

        While the master switches, it unlinks and recreates every unix listener, the config
        and stats-writer sockets among them: a process it starts then fails to read its
        config (Fatal) or to reach the stats service (Error), so nothing may connect before
        the switch is over.  The master's log line comes before the switch; its readiness
        notification (sd_notify READY=1, see _ReadinessSocket) comes after it.  The greeting
        then shows the new config: every config carries its generation number in
        login_greeting.
        """
        self.settings = dataclasses.replace(self.settings, **changes)
        self._write_files()
        self._own_tree()
        self._notify.drain()
        self._master.send_signal(signal.SIGHUP)
        self._wait_ready("reload")
        procutil.wait_until(self._serving_current_config, self.startup_timeout,
                            "Dovecot to reload")

    def _wait_ready(self, what):
        """Waits for the master's READY=1 after a start or a reload."""
        if not self._notify.wait_ready(self.startup_timeout, self._master):
            raise procutil.HarnessError(
                f"Dovecot did not notify READY=1 within {self.startup_timeout}s of its {what} "
                f"(exit status {self._master.poll()}; a Dovecot built without libsystemd "
                f"never does):\n{self.log_text()}")

    # -- delivery and submission -------------------------------------------------------------

    def address(self, user):
        return f"{user}@{self.settings.domain}"

    def deliver_lmtp(self, sender, recipients, message, tcp=False, timeout=30):
        """Delivers over LMTP (unix socket, or TCP with `tcp`); returns
        {recipient: (code, text)}, one DATA reply per accepted recipient, once the lmtp
        process has logged the end of the session (see _wait_session_logged)."""
        host, port = (("127.0.0.1", self.lmtp_port) if tcp else (self.lmtp_socket, 0))
        with smtplib.LMTP(host, port, timeout=timeout) as lmtp:
            replies = smtpclient.send_lmtp(lmtp, sender, recipients, message)
        self._wait_session_logged(replies)
        return replies

    def deliver_lda(self, user, sender, message, recipient=None, extra_args=(), check=True):
        """Runs dovecot-lda for `user` with `message` on stdin; returns the CompletedProcess.

        Exit codes: 0 delivered, 75 tempfail, 67 unknown user; with `check`, non-zero raises.
        """
        argv = [DOVECOT_LDA, "-c", self.config_file, "-f", sender,
                "-a", recipient or self.address(user), *extra_args]
        return self._run_as(user, argv, "dovecot-lda", message, check)

    def sieve_test(self, user, script, message, extra_args=(), expect_status=0):
        """Runs sieve-test for `user`; returns its output (stdout then stderr) as text.

        `script` is Sieve source (str) or a path (os.PathLike); `message` is bytes or a path.
        Both are copied into the instance so the run user can read them. An exit status other
        than `expect_status` (SIEVE_TEST_COMPILE_FAILED for a script that must not compile),
        a signal above all, raises HarnessError with the output.
        """
        script_path = self._private_copy(script, "test.sieve")
        message_path = self._private_copy(message, "test.eml")
        argv = ["sieve-test", "-c", self.config_file, *extra_args, script_path, message_path]
        done = self._run_as(user, argv, "sieve-test", None, False)
        output = (done.stdout + done.stderr).decode("utf-8", "replace")
        if done.returncode != expect_status:
            raise procutil.HarnessError(
                f"sieve-test exited with {done.returncode}, expected {expect_status} "
                f"(a negative status is a signal):\n{output}")
        return output

    def submit(self, user, sender, recipients, message, password=None, bdat=False,
               timeout=30):
        """Sends `message` through the submission service, authenticated as `user` (PLAIN),
        with DATA or BDAT; returns the refused recipients (see smtpclient.send)."""
        with smtplib.SMTP("127.0.0.1", self.submission_port, timeout=timeout) as smtp:
            smtp.ehlo("client.test.example")
            smtp.login(user, password or self.settings.password)
            return smtpclient.send(smtp, sender, recipients, message, bdat=bdat)

    def imap_login(self, user, password=None, timeout=30):
        """An imaplib.IMAP4 connection logged in as `user` (needs Settings.imap); the caller
        logs out (it is a context manager)."""
        if not self.settings.imap:
            raise procutil.HarnessError("imap_login() needs Dovecot(imap=True)")
        imap = imaplib.IMAP4("127.0.0.1", self.imap_port, timeout=timeout)
        try:
            imap.login(user, password or self.settings.password)
        except BaseException:
            imap.shutdown()
            raise
        return imap

    def doveadm(self, *args, check=True):
        """Runs `doveadm -c CONFIG ARGS...` as the run user (e.g. "stats", "dump"); returns
        its standard output as text."""
        done = self._run_as(self.settings.users[0], ["doveadm", "-c", self.config_file, *args],
                            "doveadm", None, check)
        return done.stdout.decode("utf-8", "replace")

    # -- mailboxes and Sieve -----------------------------------------------------------------

    def home(self, user):
        return self._path("home", user)

    def read_maildir(self, user, folder="INBOX"):
        """The messages in `user`'s `folder` (new and cur), oldest delivery first, as the bytes
        on disk: with LF line ends, as Dovecot saves them (mail_save_crlf = no)."""
        root = os.path.join(self.home(user), "Maildir")
        if folder != "INBOX":
            root = os.path.join(root, "." + folder)
        names = []
        for sub in ("new", "cur"):
            directory = os.path.join(root, sub)
            if os.path.isdir(directory):
                names += [os.path.join(directory, n) for n in os.listdir(directory)]
        messages = []
        for path in sorted(names, key=_maildir_order):
            with open(path, "rb") as handle:
                messages.append(handle.read())
        return messages

    def set_sieve_script(self, user, text, name="main"):
        """Installs `text` as `user`'s active Sieve script (~/sieve/NAME.sieve, linked from
        ~/.dovecot.sieve as the `sieve` setting expects)."""
        directory = os.path.join(self.home(user), "sieve")
        os.makedirs(directory, exist_ok=True)
        self._own(directory)
        script = os.path.join(directory, f"{name}.sieve")
        self._write(script, text.encode("utf-8"))
        link = os.path.join(self.home(user), ".dovecot.sieve")
        if os.path.lexists(link):
            os.unlink(link)
        os.symlink(os.path.join("sieve", f"{name}.sieve"), link)
        self._own(link)

    # -- logs --------------------------------------------------------------------------------

    LOG_FILES = ("log/master.out", "log/dovecot.log")
    """Everything Dovecot logs (master, services, LDA share one file), and the master's own
    stdout/stderr."""
    ERROR_PATTERN = ERROR_PATTERN

    def log_search(self, pattern, timeout=LOG_TIMEOUT, flags=0):
        """The first match of the regex `pattern` in log_text(), waiting up to `timeout`
        seconds for it (None then): services log through Dovecot's log process, so a line
        can arrive after the reply to the command that caused it."""
        try:
            return procutil.wait_until(lambda: re.search(pattern, self.log_text(), flags),
                                       timeout, f"/{pattern}/ in Dovecot's log")
        except procutil.HarnessError:
            return None

    def log_lines(self, pattern, count=1, start=0, timeout=LOG_TIMEOUT):
        """The lines of log_text()[start:] in which the regex `pattern` matches, once there
        are at least `count` of them, or those there are after `timeout` seconds (see
        log_search).  `start` is a len(log_text()) taken before what logs them."""
        def lines():
            return [line for line in self.log_text()[start:].splitlines()
                    if re.search(pattern, line)]

        def enough():
            found = lines()
            return found if len(found) >= count else None
        try:
            return procutil.wait_until(enough, timeout,
                                       f"{count} lines /{pattern}/ in Dovecot's log")
        except procutil.HarnessError:
            return lines()

    def _wait_session_logged(self, replies):
        """Waits (up to LOG_TIMEOUT) for the line that ends the LMTP session that gave
        `replies`.  The lmtp process logs through a pipe to Dovecot's log process, which
        writes the file: its lines can reach the file after its replies (a delivery in 60
        on a loaded 2-core machine), and a test that read the log at once missed them.
        One pipe carries the lines of each service in order, so once the process's
        "Disconnect from" line is in the file, so is everything it logged before.  A DATA
        reply names the session ("250 2.0.0 <rcpt> SESSION Saved"), the session's lines the
        process ("lmtp(user)<PID><SESSION>: ..."); without a DATA reply there is nothing
        to wait for."""
        for _, text in replies.values():
            session = re.match(rb"[0-9.]+ <[^>]*> ([A-Za-z0-9+/]+)", text)
            if session:
                process = self.log_search(
                    rf"lmtp\([^)]*\)<(\d+)><{re.escape(session[1].decode())}[:>]")
                if process:
                    self.log_search(rf"lmtp\({process[1]}\): Info: Disconnect from ")
                return

    def assert_no_errors(self, allow=()):
        """Raises AssertionError listing the error lines (see error_lines)."""
        errors = self.error_lines(allow)
        if errors:
            raise AssertionError("Dovecot logged errors:\n" + "\n".join(errors))

    # -- internals ---------------------------------------------------------------------------

    def _path(self, *parts):
        return os.path.join(self.directory, *parts)

    @property
    def _as_root(self):
        return os.geteuid() == 0

    def _drop_privileges(self):
        """Popen arguments that run a child as the run user (only needed when we are root)."""
        if not self._as_root:
            return {}
        return {"user": self.run_user.pw_uid, "group": self.run_group.gr_gid,
                "extra_groups": []}

    def _run_as(self, user, argv, what, input_bytes, check):
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": self.home(user),
               "USER": user}
        return procutil.run(argv, what, input_bytes=input_bytes, check=check, env=env,
                            cwd=self.directory, **self._drop_privileges())

    def _own(self, path):
        if self._as_root:
            os.lchown(path, self.run_user.pw_uid, self.run_group.gr_gid)

    def _own_tree(self):
        if not self._as_root:
            return
        for root, dirs, files in os.walk(self.directory):
            self._own(root)
            for name in dirs + files:
                self._own(os.path.join(root, name))

    def _write(self, path, data):
        with open(path, "wb") as handle:
            handle.write(data)
        self._own(path)

    def _private_copy(self, source, name):
        path = self._path("tmp", name)
        if isinstance(source, os.PathLike):
            shutil.copyfile(source, path)
            self._own(path)
        else:
            self._write(path, source.encode("utf-8") if isinstance(source, str) else source)
        return path

    def _check_traversable(self):
        """When running as nobody, every parent of the temp dir must be searchable by others;
        fail with a clear message instead of Dovecot's later permission errors."""
        if not self._as_root:
            return
        parent = os.path.dirname(self.directory)
        while True:
            if not os.stat(parent).st_mode & 0o001:
                raise procutil.HarnessError(
                    f"{parent} is not traversable by {self.run_user.pw_name}; "
                    "set TMPDIR to a world-searchable directory")
            if parent == "/":
                return
            parent = os.path.dirname(parent)

    def _serving_current_config(self):
        """True when every listener greets with the current config generation."""
        if self._master.poll() is not None:
            raise procutil.HarnessError(
                f"dovecot exited with {self._master.returncode}:\n{self.log_text()}")
        listeners = [self.lmtp_socket, ("127.0.0.1", self.lmtp_port)]
        if self._submission:
            listeners.append(("127.0.0.1", self.submission_port))
        if self.settings.imap:
            listeners.append(("127.0.0.1", self.imap_port))
        if self.settings.managesieve:
            listeners.append(("127.0.0.1", self.managesieve_port))
        marker = _greeting_marker(self._generation)
        return all(marker in _greeting(listener) for listener in listeners)

    @property
    def _submission(self):
        return self.settings.relay_port is not None

    def _write_files(self):
        self._generation += 1
        self._install_modules()
        self._install_includes()
        homes = []
        lines = []
        for user in self.settings.users:
            home = self.home(user)
            homes.append(home)
            fields = " ".join(_userdb_field(key, value) for key, value in
                              self.settings.userdb_fields.get(user, {}).items())
            lines.append(f"{user}:{{PLAIN}}{self.settings.password}:{self.run_user.pw_uid}:"
                         f"{self.run_group.gr_gid}::{home}::{fields}\n")
        for home in homes:
            os.makedirs(home, exist_ok=True)
        self._write(self._path("passwd"), "".join(lines).encode("utf-8"))
        self._write(self.config_file, self._config().encode("utf-8"))

    def _install_modules(self):
        """Copies plugin files into the private module dirs (copies, not links: the run user
        may not be able to traverse the build tree, and a rebuild must not change a running
        test). Stale copies from an earlier reload are removed."""
        wanted = {self._path("modules"): [SIEVE_PLUGIN, *self.settings.delivery_plugins,
                                          *self.settings.submission_plugins],
                  self._path("modules", "sieve"): list(self.settings.sieve_plugins)}
        for directory, sources in wanted.items():
            for name in os.listdir(directory):
                if name.endswith(".so"):
                    os.unlink(os.path.join(directory, name))
            for source in sources:
                module_name(source)   # reject misnamed files before Dovecot does, clearly
                target = os.path.join(directory, os.path.basename(source))
                shutil.copyfile(source, target)
                os.chmod(target, 0o644)

    def _install_includes(self):
        """Copies the included config files into the instance (the run user may not be able
        to read the originals); numbered, so two files of the same name can be included."""
        directory = self._path("include")
        shutil.rmtree(directory, ignore_errors=True)
        os.makedirs(directory)
        for number, source in enumerate(self.settings.includes):
            target = os.path.join(directory, f"{number}-{os.path.basename(source)}")
            shutil.copyfile(source, target)
            os.chmod(target, 0o644)

    def _config(self):
        s = self.settings
        syntax = self.syntax
        tmp = self.directory
        user, group = self.run_user.pw_name, self.run_group.gr_name
        protocols = ["lmtp"]
        if self._submission:
            protocols.append("submission")
        if s.imap:
            protocols.append("imap")
        if s.managesieve:
            protocols.append("sieve")
        core = {
            "instance_name": f"dkimtest-{uuid.uuid4().hex[:12]}",
            "base_dir": f"{tmp}/run",
            "state_dir": f"{tmp}/state",
            "log_path": f"{tmp}/log/dovecot.log",
            "info_log_path": f"{tmp}/log/dovecot.log",
            "debug_log_path": f"{tmp}/log/dovecot.log",
            "protocols": " ".join(protocols),
            # Every inet listener inherits it: 2.4 reports an address given again in a
            # listener as a duplicate listener.
            "listen": "127.0.0.1",
            "hostname": s.hostname,
            "login_greeting": _greeting_marker(self._generation),
            "postmaster_address": f"postmaster@{s.domain}",
            "mail_debug": True,
            "mail_plugin_dir": f"{tmp}/modules",
            "lda_mailbox_autocreate": True,
            "lda_mailbox_autosubscribe": True,
            "default_internal_user": user,
            "default_internal_group": group,
            "default_login_user": user,
            "first_valid_uid": self.run_user.pw_uid,
            "first_valid_gid": self.run_group.gr_gid,
            "ssl": False,
            "auth_mechanisms": "plain login",
            **syntax.core(s.full_usernames),
            **s.dovecot_settings,
        }
        delivery = ["sieve"] + [module_name(p) for p in s.delivery_plugins]
        text = (f"# Generated by tests/lib/dovecot.py for one test run "
                f"(Dovecot {version_name(self.version)} syntax).\n"
                + syntax.preamble + _settings_lines(core, "")
                + syntax.passwd_file("passdb", f"{tmp}/passwd")
                + syntax.passwd_file("userdb", f"{tmp}/passwd")
                + f"""service anvil {{
  chroot =
}}
service lmtp {{
  {syntax.restart_request_count} = 1
  unix_listener lmtp {{
    mode = 0666
  }}
  inet_listener lmtp {{
    port = {self.lmtp_port}
  }}
}}
""" + self._protocol("lmtp", delivery) + self._protocol("lda", delivery))
        if self._submission:
            text += self._submission_config()
        if s.imap:
            text += self._imap_config()
        if s.managesieve:
            text += f"""service managesieve-login {{
  chroot =
  inet_listener sieve {{
    port = {self.managesieve_port}
  }}
}}
"""
        text += syntax.plugins_and_sieve(
            s.plugin_settings, f"{tmp}/modules/sieve",
            [module_name(p) for p in s.sieve_plugins], s.sieve_extensions)
        text += self._metrics_config()
        if s.dict_server:
            text += syntax.dict_server(self._versioned("dict_server", s.dict_server))
        text += "".join(f"!include {tmp}/include/{name}\n"
                        for name in sorted(os.listdir(self._path("include")),
                                           key=lambda n: int(n.split("-", 1)[0])))
        if s.raw_config:
            text += self._versioned("raw_config", {"": s.raw_config})[""]
        return text

    def _versioned(self, what, entries):
        """{key: {version name: value}} -> {key: value for the running version}."""
        name = version_name(self.version)
        chosen = {}
        for key, by_version in entries.items():
            if name not in by_version:
                raise procutil.HarnessError(
                    f"{what} has text for Dovecot {', '.join(by_version)}, this is {name}")
            chosen[key] = by_version[name]
        return chosen

    def _protocol(self, protocol, plugins):
        """`protocol NAME {}` with its mail plugins and the test's settings for it."""
        body = self.syntax.mail_plugins(plugins) if plugins else ""
        body += _settings_lines(self.settings.protocol_settings.get(protocol, {}), "  ")
        return f"protocol {protocol} {{\n{body}}}\n" if body else ""

    def _submission_config(self):
        s = self.settings
        return f"""submission_relay_host = {s.relay_host}
submission_relay_port = {s.relay_port}
submission_relay_trusted = yes
service submission-login {{
  chroot =
  inet_listener submission {{
    port = {self.submission_port}
  }}
}}
""" + self._protocol("submission", [module_name(p) for p in s.submission_plugins])

    def _imap_config(self):
        token_dir = self._path("run", "token-login")
        return (f"imap_urlauth_host = {self.settings.hostname}\n"
                f"imap_urlauth_port = {self.imap_port}\n"
                + self.syntax.attribute_dict() + f"""service imap-login {{
  chroot =
  inet_listener imap {{
    port = {self.imap_port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service imap-urlauth-login {{
  chroot =
  # Unchrooted, a login process works in base_dir/login (login-common/main.c), but this
  # one's sockets are in base_dir/token-login: the token auth socket and the post-login one.
  executable = imap-urlauth-login -l {token_dir}/imap-urlauth {token_dir}/tokenlogin
  unix_listener imap-urlauth {{
    mode = 0666
  }}
}}
service imap-urlauth {{
  unix_listener token-login/imap-urlauth {{
    mode = 0666
  }}
}}
service imap-urlauth-worker {{
  unix_listener imap-urlauth-worker {{
    mode = 0600
  }}
}}
""" + self._protocol("imap", []))

    def _metrics_config(self):
        metrics = self.settings.metrics
        text = self.syntax.log_exporter() if any(m.export_to_log for m in metrics) else ""
        for metric in metrics:
            text += f"metric {metric.name} {{\n  filter = {metric.filter}\n"
            if metric.group_by:
                text += self.syntax.group_by(metric.group_by)
            if metric.export_to_log:
                text += "  exporter = log\n"
            text += "}\n"
        return text


def _userdb_field(key, value):
    """One passwd-file extra field. The column is split on spaces, so a value with a space
    would silently become two fields (the second one ignored): refuse it instead."""
    text = f"userdb_{key}={value}"
    if any(ch.isspace() for ch in text) or ":" in key:
        raise ValueError(f"userdb field {text!r}: passwd-file cannot hold spaces here")
    return text


def _greeting_marker(generation):
    return f"Dovecot test instance, config {generation}."


def _greeting(address):
    """The greeting line a listener sends (unix socket path or (host, port)); "" if none.
    ManageSieve sends its capabilities first: its greeting is the first line that starts with
    OK (at most 50 lines are read)."""
    family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            sock.connect(address)
            reader = sock.makefile("rb")
            banner = reader.readline()
            for _ in range(50):
                if not banner.startswith(b'"'):
                    break
                banner = reader.readline()
            sock.sendall(b"QUIT\r\n" if not banner.startswith(b"OK") else b"LOGOUT\r\n")
            return banner.decode("utf-8", "replace")
    except OSError:
        return ""


class _ReadinessSocket:
    """Where the master reports its state as systemd's sd_notify() does (NOTIFY_SOCKET):
    "READY=1" once it serves after starting, "RELOADING=1" and then "READY=1" around the
    switch to a reloaded config.  Debian builds Dovecot with libsystemd, and the master sends
    these whenever NOTIFY_SOCKET is set.  The socket is in the abstract namespace, so the
    master needs no file permission to reach it whatever user it runs as."""

    def __init__(self):
        self.address = f"@dkim-dovecot-{uuid.uuid4().hex}"
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._socket.bind("\0" + self.address[1:])

    def drain(self):
        """Drops the notifications received so far."""
        self._socket.setblocking(False)
        try:
            while True:
                self._socket.recv(4096)
        except BlockingIOError:
            pass

    def wait_ready(self, timeout, master):
        """True when READY=1 arrives within `timeout` seconds, False if it does not or the
        master exits first."""
        deadline = time.monotonic() + timeout
        while master.poll() is None:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            # Short waits, so that a master that exits is noticed.
            self._socket.settimeout(min(left, 0.5))
            try:
                message = self._socket.recv(4096)
            except socket.timeout:
                continue
            if b"READY=1" in message.split(b"\n"):
                return True
        return False

    def close(self):
        self._socket.close()


def _maildir_order(path):
    """Sort key for maildir file names "<secs>.M<usecs>P<pid>...": delivery time order."""
    name = os.path.basename(path)
    match = re.match(r"(\d+)\.M(\d+)", name)
    return (int(match.group(1)), int(match.group(2)), name) if match else (0, 0, name)

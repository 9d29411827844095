"""dkim-milter from the build tree, run for a test: in the foreground (-f) on a free loopback
port, with its configuration written from text, its standard error (its log) kept in a file.

Usage::

    with dkimmilter.DkimMilter("Mode sv\\nKeyTable ...\\n") as milter:
        ... Postfix with milter=milter.postfix_socket ...
        assert milter.stop() == 0          # exit status: 0, or LeakSanitizer's complaint
        assert not milter.error_lines()

`check(path)` runs `dkim-milter -n`. Every wait is bounded; the process is always stopped.
"""
import os
import re
import signal
import subprocess

import procutil

BUILDDIR = os.environ.get("DKIM_TOP_BUILDDIR", os.getcwd())
MILTER = os.path.join(BUILDDIR, "milter", "dkim-milter")
ERROR_PATTERN = re.compile(r"^dkim-milter: error: ")
# AddressSanitizer keeps freed memory in quarantine (256 MB by default), which would look like
# growth in the memory tests; a small quarantine still catches use after free. Harmless without
# ASan.
SANITIZER_ENV = {"ASAN_OPTIONS": ":".join(filter(None, [os.environ.get("ASAN_OPTIONS"),
                                                       "quarantine_size_mb=8",
                                                       "detect_leaks=1"])),
                 "UBSAN_OPTIONS": os.environ.get("UBSAN_OPTIONS",
                                                 "print_stacktrace=1:halt_on_error=1")}


def check(config_path, timeout=60):
    """Runs `dkim-milter -n -x CONFIG`; returns the CompletedProcess (text output)."""
    return subprocess.run([MILTER, "-n", "-x", config_path], capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ, **SANITIZER_ENV))


def problems(done):
    """The problem lines of a -n run, without the program name."""
    return [line[len("dkim-milter: "):] for line in done.stderr.splitlines()
            if line.startswith("dkim-milter: ")]


class DkimMilter(procutil.LoggingServer):
    """A running dkim-milter; `config` is the text of its configuration file (written to
    `config_path`, Socket given by -p). `directory` is a private temp dir for the test's files."""

    def __init__(self, config, startup_timeout=30, extra_args=()):
        if not os.path.exists(MILTER):
            raise procutil.HarnessError(f"{MILTER} is not built (libmilter-dev missing?)")
        self.config = config
        self.startup_timeout = startup_timeout
        self.extra_args = list(extra_args)
        self.port = procutil.free_port()
        self.directory = None
        self.process = None
        self._log = None

    @property
    def config_path(self):
        return os.path.join(self.directory, "dkim-milter.conf")

    @property
    def log_path(self):
        return os.path.join(self.directory, self.LOG_FILES[0])

    @property
    def postfix_socket(self):
        """The socket in Postfix's syntax, for smtpd_milters."""
        return f"inet:127.0.0.1:{self.port}"

    DIRECTORY_PREFIX = "dkim-milter-"

    def _prepare(self):
        os.chmod(self.directory, 0o755)
        self.start()

    def start(self, config=None):
        """Writes the configuration (the new one, if given) and starts; waits until the milter
        says it started, or raises HarnessError with its log."""
        if config is not None:
            self.config = config
        with open(self.config_path, "w", encoding="utf-8") as handle:
            handle.write(self.config)
        start = len(self.log_text())
        log = open(self.log_path, "ab")
        try:
            self.process = subprocess.Popen(
                [MILTER, "-f", "-x", self.config_path, "-p", f"inet:{self.port}@127.0.0.1",
                 *self.extra_args], stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
                env=dict(os.environ, **SANITIZER_ENV))
        finally:
            log.close()

        def started():
            if self.process.poll() is not None:
                raise procutil.HarnessError(
                    f"dkim-milter exited with {self.process.returncode}:\n"
                    f"{self.log_text()[start:]}")
            return "dkim-milter: started:" in self.log_text()[start:]
        procutil.wait_until(started, self.startup_timeout, "dkim-milter to start")

    def restart(self, config=None):
        """Stops (returning that exit status) and starts again, with a new config if given."""
        status = self.stop()
        self.start(config)
        return status

    def stop(self):
        """SIGTERM and a bounded wait; returns the exit status (None if not running). Under
        AddressSanitizer a leak makes it non-zero."""
        if self.process is None:
            return None
        status = procutil.stop_process(self.process, timeout=60)
        self.process = None
        return status

    def kill(self):
        """Stops it at once (SIGKILL), as a crash would."""
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(30)
            self.process = None

    LOG_FILES = ("dkim-milter.log",)
    ERROR_PATTERN = ERROR_PATTERN

    def _is_error_line(self, line):
        """Its error lines, and anything a sanitizer printed."""
        return (super()._is_error_line(line) or "Sanitizer" in line or
                "runtime error:" in line)

    def memory_kb(self, field="VmHWM"):
        """A field of /proc/PID/status in kB (VmHWM: the peak resident size)."""
        with open(f"/proc/{self.process.pid}/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        raise procutil.HarnessError(f"no {field} in /proc/{self.process.pid}/status")

    def sockets(self):
        """How many sockets it has open (the listener and one per MTA connection)."""
        directory = f"/proc/{self.process.pid}/fd"
        count = 0
        for name in os.listdir(directory):
            try:
                count += os.readlink(os.path.join(directory, name)).startswith("socket:")
            except OSError:
                pass
        return count

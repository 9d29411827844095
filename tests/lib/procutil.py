"""Process, port and waiting plumbing shared by the server harnesses (nsd, dovecot, smtpsink).

Every wait here is bounded: a test may fail, but it must never hang.
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

DEFAULT_TIMEOUT = 30
"""Upper bound in seconds for one external command or one readiness wait."""


class HarnessError(RuntimeError):
    """A test component (server, tool) failed to run; distinct from a test assertion."""


class TempDirServer:
    """A server that lives in a private temp dir, as a context manager: entering makes the
    dir (`self.directory`, named with DIRECTORY_PREFIX) and calls `_prepare()`, which fills
    it and starts the server; leaving, or a failure while entering, calls `stop()` (which
    must be idempotent) and removes the dir, so no process or file is ever left behind."""
    DIRECTORY_PREFIX = "dkim-"

    def __enter__(self):
        self.directory = tempfile.mkdtemp(prefix=self.DIRECTORY_PREFIX)
        try:
            self._prepare()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc):
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    def _prepare(self):
        raise NotImplementedError


class LoggingServer(TempDirServer):
    """A TempDirServer whose log files (LOG_FILES, below its directory, in the order
    log_text() joins them) the tests read.  error_lines() is remembered: leaving stops the
    server, when every line is in the files (a daemon's log process writes the lines its
    services send through pipes, so one can reach the file after the reply a test acted on),
    and raises HarnessError for the error lines written after the last error_lines() that
    its `allow` does not cover.  Subclasses name the files and ERROR_PATTERN, the regex
    that finds an error line (or override `_is_error_line`)."""
    LOG_FILES = ()
    ERROR_PATTERN = None
    _error_check = None

    def _is_error_line(self, line):
        return self.ERROR_PATTERN.search(line) is not None

    def __exit__(self, exc_type, *exc):
        self.stop()
        late = self._late_error_lines() if exc_type is None else []
        super().__exit__(exc_type, *exc)
        if late:
            raise HarnessError(
                f"{type(self).__name__} logged errors that the test's last error_lines() did "
                "not see (they reached the log after it, or came later):\n" + "\n".join(late))

    def log_text(self):
        """The text of its log files, joined."""
        return self._decode(self._log_bytes())

    def error_lines(self, allow=()):
        """The log's error lines, except those matching a regex in `allow`."""
        parts = self._log_bytes()
        self._error_check = ({name: len(data) for name, data in parts.items()}, tuple(allow))
        return self._errors(self._decode(parts), allow)

    def _errors(self, text, allow):
        return [line for line in text.splitlines()
                if self._is_error_line(line)
                and not any(re.search(pattern, line) for pattern in allow)]

    def _late_error_lines(self):
        """The error lines written after the last error_lines(), which it would have
        reported; none if the test never called it."""
        if self._error_check is None:
            return []
        offsets, allow = self._error_check
        return self._errors(self._decode(self._log_bytes(offsets)), allow)

    def _log_bytes(self, offsets=None):
        """The bytes of each of LOG_FILES from its offset in `offsets` (0 if none)."""
        parts = {}
        for name in self.LOG_FILES:
            parts[name] = b""
            path = os.path.join(self.directory, name) if self.directory else None
            if path is not None and os.path.exists(path):
                with open(path, "rb") as handle:
                    handle.seek((offsets or {}).get(name, 0))
                    parts[name] = handle.read()
        return parts

    @staticmethod
    def _decode(parts):
        return "".join(data.decode("utf-8", errors="replace") for data in parts.values())


_handed_out = set()
"""The ports free_port() returned in this process."""


def free_port(udp_too=False):
    """Returns a 127.0.0.1 port that is currently free for TCP (and UDP if `udp_too`), and
    that this process was not given before.

    The port is released before returning, so another process could take it in between; the
    servers started with it fail loudly in that case rather than answer for someone else.
    Within this process it is never handed out twice: the kernel may pick a released port
    again at once (a Dovecot instance asks for four, and two were the same in 1 of 4,000
    instances), and two servers of one test would then want the same port.
    """
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
            if port in _handed_out:
                continue
            if not udp_too:
                _handed_out.add(port)
                return port
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                    udp.bind(("127.0.0.1", port))
                    _handed_out.add(port)
                    return port
            except OSError:
                continue
    raise HarnessError("no free port found on 127.0.0.1")


def wait_until(predicate, timeout, what, interval=0.05):
    """Polls `predicate()` until it returns a true value, which is returned.

    Raises HarnessError naming `what` after `timeout` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise HarnessError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def run(argv, what, input_bytes=None, timeout=DEFAULT_TIMEOUT, check=True, **kwargs):
    """Runs a command to completion with a bound; returns the CompletedProcess (bytes output).

    With `check`, a non-zero exit raises HarnessError carrying the command's output, so a
    broken tool is reported as such and never mistaken for a test result. A command killed
    by a signal (a crash) raises it whatever `check` says: no test expects one, and a test
    that looks only at the output could miss it.
    """
    try:
        done = subprocess.run(argv, input=input_bytes, capture_output=True, timeout=timeout,
                              check=False, **kwargs)
    except FileNotFoundError as exc:
        raise HarnessError(f"{what}: {argv[0]} is not installed ({exc})") from exc
    except subprocess.TimeoutExpired as exc:
        raise HarnessError(f"{what}: {' '.join(map(str, argv))} did not finish in {timeout}s")\
            from exc
    if done.returncode < 0 or (check and done.returncode != 0):
        ending = (f"was killed by {signal.Signals(-done.returncode).name}"
                  if done.returncode < 0 else f"exited {done.returncode}")
        raise HarnessError(
            f"{what}: {' '.join(map(str, argv))} {ending}\n"
            f"stdout: {done.stdout.decode(errors='replace')}\n"
            f"stderr: {done.stderr.decode(errors='replace')}")
    return done


def stop_process(proc, timeout=10):
    """Stops a Popen started with start_new_session=True; returns its exit status.

    SIGTERM goes to the started process only, so a server (NSD, the Dovecot master) can shut
    its children down cleanly; after a bounded wait it is killed. Whatever is left in its
    process group (the group id is its pid) then gets a bounded grace period and SIGKILL.
    """
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)
    try:
        wait_until(lambda: not group_members(proc.pid), timeout / 2,
                   f"process group {proc.pid} to exit")
    except HarnessError:
        _signal_group(proc.pid, signal.SIGKILL)
    return proc.returncode


def group_members(pgid):
    """Returns the pids of live processes in process group `pgid` (read from /proc)."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as handle:
                stat = handle.read()
        except OSError:
            continue
        # Fields after the parenthesised command name: state ppid pgrp ...
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry))
    return members


def _signal_group(pgid, sig):
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass

"""A ManageSieve client (RFC 5804), enough to upload and check scripts the way a mail client's
filter editor does: what Pigeonhole's managesieve accepts is what users can install.

Usage::

    with managesieve.connect(port, "alice", "secret") as ms:
        "vnd.dovecot.dkim" in ms.sieve_extensions   # from the greeting's "SIEVE" line
        ok, text = ms.putscript("main", script)      # (True, "...") or (False, error text)
"""
import base64
import re
import socket

import procutil

_LITERAL = re.compile(rb"\{(\d+)\+?\}\r\n$")


class ManageSieve:
    def __init__(self, sock):
        self._sock = sock
        self._reader = sock.makefile("rb")
        self.capabilities = {}
        ok, _, lines = self._response()
        if not ok:
            raise procutil.HarnessError(f"ManageSieve greeting: {lines!r}")
        for line in lines:
            match = re.match(rb'"([^"]+)"(?: "([^"]*)")?', line)
            if match:
                self.capabilities[match.group(1).decode().upper()] = \
                    (match.group(2) or b"").decode()

    @property
    def sieve_extensions(self):
        return self.capabilities.get("SIEVE", "").split()

    def authenticate(self, user, password):
        token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
        ok, text, _ = self._command(f'AUTHENTICATE "PLAIN" "{token}"'.encode())
        if not ok:
            raise procutil.HarnessError(f"ManageSieve login as {user}: {text}")

    def putscript(self, name, script):
        """Uploads `script` (str) as `name`: (True, text) when the server took it, else
        (False, the server's error text, e.g. the compile errors)."""
        ok, text, _ = self._command(f'PUTSCRIPT "{name}" '.encode(), script.encode())
        return ok, text

    def checkscript(self, script):
        ok, text, _ = self._command(b"CHECKSCRIPT ", script.encode())
        return ok, text

    def logout(self):
        try:
            self._command(b"LOGOUT")
        except (OSError, procutil.HarnessError):
            pass
        self._reader.close()
        self._sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.logout()

    def _command(self, command, literal=None):
        data = command
        if literal is not None:
            data += b"{%d+}\r\n" % len(literal) + literal
        self._sock.sendall(data + b"\r\n")
        return self._response()

    def _line(self):
        line = self._reader.readline()
        if not line:
            raise procutil.HarnessError("ManageSieve: connection closed")
        match = _LITERAL.search(line)
        if match:
            line = line[:match.start()] + self._reader.read(int(match.group(1))) + \
                self._reader.readline()
        return line

    def _response(self):
        """Reads up to the status line: (ok, its text, the lines before it)."""
        lines = []
        while True:
            line = self._line()
            status = line.split(b" ", 1)[0].rstrip(b"\r\n")
            if status in (b"OK", b"NO", b"BYE"):
                text = line[len(status):].strip().strip(b'"').decode("utf-8", "replace")
                return status == b"OK", text, lines
            lines.append(line)


def connect(port, user, password, timeout=30):
    """A ManageSieve session on 127.0.0.1:`port`, logged in as `user`."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        session = ManageSieve(sock)
        session.authenticate(user, password)
    except BaseException:
        sock.close()
        raise
    return session

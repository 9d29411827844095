"""A real SMTP server on 127.0.0.1 that keeps every message it receives, for relay tests.

Why: Dovecot's submission service relays to a next hop; a test needs to see the exact bytes
that left it (e.g. the DKIM-Signature our plugin prepended). Stdlib only (socketserver; the
smtpd module is gone from newer Pythons), one thread per connection.

Speaks EHLO/HELO, MAIL, RCPT, DATA (dot-unstuffed), BDAT (CHUNKING), RSET, NOOP, QUIT and
advertises 8BITMIME, SIZE and CHUNKING.

Usage::

    with smtpsink.SmtpSink() as sink:
        ... relay to 127.0.0.1:sink.port ...
        [message] = sink.wait_for(1)
        message.mail_from, message.rcpt_tos, message.data
"""
import dataclasses
import os
import re
import socketserver
import threading
import time

import procutil

MAX_SIZE = 64 * 1024 * 1024
"""Advertised SIZE limit; large enough for 20 MB tests, small enough to catch runaways."""


@dataclasses.dataclass
class ReceivedMessage:
    """One accepted message: envelope, the exact message bytes and how they came."""
    helo: str
    mail_from: str
    mail_params: list
    rcpt_tos: list
    data: bytes
    transfer: str          # "DATA" or "BDAT"
    path: str = None       # spool file, when the sink has a spool directory


class _Transaction:
    def __init__(self, mail_from, params):
        self.mail_from = mail_from
        self.params = params
        self.rcpt_tos = []
        self.chunks = []


class _SmtpHandler(socketserver.StreamRequestHandler):
    """One SMTP session. Replies are written as soon as each command is read, so pipelining
    clients work too; a client silent for `timeout` seconds is disconnected."""
    timeout = 60

    def handle(self):
        self.helo = None
        self.transaction = None
        self.reply(220, f"{self.server.hostname} ESMTP test sink")
        while True:
            line = self.rfile.readline(4096)
            if not line:
                return
            verb, _, arg = line.decode("utf-8", "replace").rstrip("\r\n").partition(" ")
            handler = getattr(self, "smtp_" + verb.upper(), None)
            if handler is None:
                self.reply(502, "5.5.1 command not implemented")
            elif handler(arg.strip()) is False:
                return

    def reply(self, code, *lines):
        text = "".join(f"{code}-{line}\r\n" for line in lines[:-1]) + f"{code} {lines[-1]}\r\n"
        self.wfile.write(text.encode("utf-8"))
        self.wfile.flush()

    def smtp_EHLO(self, arg):
        self.helo, self.transaction = arg, None
        self.reply(250, self.server.hostname, "8BITMIME", f"SIZE {MAX_SIZE}", "CHUNKING")

    def smtp_HELO(self, arg):
        self.helo, self.transaction = arg, None
        self.reply(250, self.server.hostname)

    def smtp_MAIL(self, arg):
        match = re.match(r"(?i)FROM:\s*<([^>]*)>\s*(.*)$", arg)
        if self.helo is None:
            return self.reply(503, "5.5.1 EHLO first")
        if not match:
            return self.reply(501, "5.5.4 syntax: MAIL FROM:<address>")
        params = match.group(2).split()
        size = next((int(p[5:]) for p in params if p.upper().startswith("SIZE=")), 0)
        if size > MAX_SIZE:
            return self.reply(552, "5.3.4 message too big")
        self.transaction = _Transaction(match.group(1), params)
        return self.reply(250, "2.1.0 ok")

    def smtp_RCPT(self, arg):
        match = re.match(r"(?i)TO:\s*<([^>]+)>", arg)
        if self.transaction is None:
            return self.reply(503, "5.5.1 MAIL first")
        if not match:
            return self.reply(501, "5.5.4 syntax: RCPT TO:<address>")
        self.transaction.rcpt_tos.append(match.group(1))
        return self.reply(250, "2.1.5 ok")

    def smtp_DATA(self, arg):
        if self.transaction is None or not self.transaction.rcpt_tos:
            return self.reply(503, "5.5.1 RCPT first")
        if self.transaction.chunks:
            return self.reply(503, "5.5.1 DATA after BDAT")
        self.reply(354, "end with <CRLF>.<CRLF>")
        lines = []
        while True:
            line = self.rfile.readline()
            if not line:
                return False
            if line in (b".\r\n", b".\n"):
                break
            lines.append(line[1:] if line.startswith(b".") else line)
        return self._accept(b"".join(lines), "DATA")

    def smtp_BDAT(self, arg):
        match = re.match(r"(?i)(\d+)(\s+LAST)?$", arg)
        if not match:
            return self.reply(501, "5.5.4 syntax: BDAT size [LAST]")
        # The chunk follows the command at once: read it even when refusing, to stay in sync.
        chunk = self.rfile.read(int(match.group(1)))
        if len(chunk) != int(match.group(1)):
            return False
        if self.transaction is None or not self.transaction.rcpt_tos:
            return self.reply(503, "5.5.1 RCPT first")
        self.transaction.chunks.append(chunk)
        if not match.group(2):
            return self.reply(250, f"2.0.0 {len(chunk)} octets received")
        return self._accept(b"".join(self.transaction.chunks), "BDAT")

    def smtp_RSET(self, arg):
        self.transaction = None
        self.reply(250, "2.0.0 ok")

    def smtp_NOOP(self, arg):
        self.reply(250, "2.0.0 ok")

    def smtp_QUIT(self, arg):
        self.reply(221, "2.0.0 bye")
        return False

    def _accept(self, data, transfer):
        txn, self.transaction = self.transaction, None
        self.server.sink.store(ReceivedMessage(self.helo, txn.mail_from, txn.params,
                                               txn.rcpt_tos, data, transfer))
        self.reply(250, "2.0.0 queued")


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class SmtpSink:
    """The sink; `port` is chosen by the kernel. With `spool_dir`, each message is also
    written there as NNNN.eml (the data bytes), e.g. to feed it to a command-line verifier."""

    def __init__(self, spool_dir=None, hostname="sink.test.example"):
        self.spool_dir = spool_dir
        self.hostname = hostname
        self.host = "127.0.0.1"
        self.port = None
        self._messages = []
        self._received = 0
        self._changed = threading.Condition()
        self._server = None
        self._thread = None

    def __enter__(self):
        self._server = _Server((self.host, 0), _SmtpHandler)
        self._server.sink = self
        self._server.hostname = self.hostname
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)

    def store(self, message):
        """Records a message (called from connection threads)."""
        with self._changed:
            if self.spool_dir is not None:
                message.path = os.path.join(self.spool_dir, f"{self._received:04d}.eml")
                with open(message.path, "wb") as handle:
                    handle.write(message.data)
            self._messages.append(message)
            self._received += 1
            self._changed.notify_all()

    @property
    def messages(self):
        """A snapshot of the messages received so far, oldest first."""
        with self._changed:
            return list(self._messages)

    def wait_for(self, count, timeout=10):
        """Waits until at least `count` messages arrived; returns all of them.

        Raises HarnessError after `timeout` seconds.
        """
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self._messages) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise procutil.HarnessError(
                        f"SMTP sink: {len(self._messages)} of {count} messages after {timeout}s")
                self._changed.wait(left)
            return list(self._messages)

    def clear(self):
        """Forgets the messages received so far (spool files stay)."""
        with self._changed:
            self._messages.clear()

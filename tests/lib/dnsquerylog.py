"""A DNS forwarder on 127.0.0.1 that notes the name of every query it passes on to a real
server (NSD), so that a test can tell which keys a tool looked up, and how many.

The tool under test resolves through libunbound as in production, pointed at `address`
instead of at the server; the server answers as always. UDP only: the keys that tests publish
fit in an EDNS UDP answer, and a query that would need TCP simply goes unanswered (a timeout
that the test would see).

Usage::

    with nsd.NsdServer(records) as dns, dnsquerylog.QueryLog(dns.port) as log:
        verify(message, "--resolver", log.address)
        log.names()     # {"sel._domainkey.example.org", ...}, lowercase
"""
import selectors
import socket
import threading

import procutil

ADDRESS = "127.0.0.1"


def question_name(packet):
    """The QNAME of a DNS query packet (RFC 1035 4.1.2), lowercase without the final dot,
    or None if the packet is too short or compressed."""
    labels, pos = [], 12
    while pos < len(packet):
        length = packet[pos]
        if length == 0:
            return ".".join(labels).lower()
        if length & 0xC0 or pos + 1 + length > len(packet):
            return None
        labels.append(packet[pos + 1:pos + 1 + length].decode("ascii", errors="replace"))
        pos += 1 + length
    return None


class QueryLog:
    """Forwards each UDP query to ``127.0.0.1:upstream_port`` and its answer back, noting the
    query's name. One thread, stopped and joined on exit."""

    def __init__(self, upstream_port):
        self.upstream = (ADDRESS, upstream_port)
        self.port = procutil.free_port(udp_too=True)
        self.queries = []
        self._lock = threading.Lock()
        self._clients = {}      # query id -> client address
        self._stop = threading.Event()
        self._thread = None
        self._front = self._back = None

    @property
    def address(self):
        """The forwarder as dkim-verify --resolver and dkim-sign --resolver take it."""
        return f"{ADDRESS}@{self.port}"

    def __enter__(self):
        self._front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._front.bind((ADDRESS, self.port))
        self._back.bind((ADDRESS, 0))
        self._thread = threading.Thread(target=self._serve, name="dns-query-log", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=procutil.DEFAULT_TIMEOUT)
        self._front.close()
        self._back.close()

    def names(self):
        """The distinct names asked so far (a resolver may retry a query)."""
        with self._lock:
            return set(self.queries)

    def clear(self):
        with self._lock:
            self.queries.clear()

    def _serve(self):
        with selectors.DefaultSelector() as selector:
            selector.register(self._front, selectors.EVENT_READ)
            selector.register(self._back, selectors.EVENT_READ)
            while not self._stop.is_set():
                for key, _ in selector.select(timeout=0.1):
                    packet, sender = key.fileobj.recvfrom(65535)
                    if len(packet) < 12:
                        continue
                    query_id = packet[:2]
                    if key.fileobj is self._front:
                        with self._lock:
                            self.queries.append(question_name(packet))
                        self._clients[query_id] = sender
                        self._back.sendto(packet, self.upstream)
                    elif query_id in self._clients:
                        self._front.sendto(packet, self._clients.pop(query_id))

"""The validating-resolver view of an NsdServer, through unbound-host (libunbound's own CLI).

This proves what a libunbound-based verifier will see (secure / insecure / bogus / SERVFAIL)
without any project code: the same library, configured the way the plugins are expected to
be (forward everything to the test server, trust anchors from a file, no root key).

Usage::

    with nsd.NsdServer(records) as dns:
        answer = resolver.unbound_host(dns, "sel._domainkey.secure.example")
        answer.status, answer.rcode, answer.texts   # "secure", "NOERROR", ["v=DKIM1; ..."]
"""
import os
import re

import nsd
import procutil


def unbound_conf(server):
    """Writes (once) and returns an unbound.conf forwarding everything to `server`.

    `do-not-query-localhost: no` is required, else unbound refuses to send to 127.0.0.1.
    `outbound-msg-retry: 1` makes a stopped server give SERVFAIL in about a second instead of
    about 17 s with the defaults (measured with unbound 1.17), so tests stay fast. The trust
    anchors are not in this file: pass `server.trust_anchor_file` separately (-f, or
    ub_ctx_add_ta_file()), as the plugin does.
    """
    path = os.path.join(server.directory, "unbound.conf")
    if not os.path.exists(path):
        with open(path, "w", encoding="ascii") as handle:
            handle.write(f"""server:
    do-not-query-localhost: no
    outbound-msg-retry: 1
forward-zone:
    name: "."
    forward-addr: {server.address}@{server.port}
""")
    return path


class Lookup:
    """unbound-host's verdict: `status` is "secure", "insecure", "bogus" or "error";
    `rcode` is "NOERROR", "NXDOMAIN", "SERVFAIL"...; `texts` holds each TXT record's strings
    concatenated; `output` is the raw text (for diagnostics)."""

    def __init__(self, status, rcode, texts, output):
        self.status, self.rcode, self.texts, self.output = status, rcode, texts, output

    def __repr__(self):
        return f"Lookup({self.status}, {self.rcode}, {self.texts})"


def unbound_host(server, name, rrtype="TXT", timeout=20):
    """Resolves `name` through libunbound (unbound-host -v) against `server`, validating with
    its trust anchors; returns a Lookup. The run is bounded by `timeout` seconds."""
    done = procutil.run(["unbound-host", "-C", unbound_conf(server), "-f",
                         server.trust_anchor_file, "-v", "-t", rrtype, name],
                        "unbound-host", timeout=timeout)
    output = done.stdout.decode("utf-8", errors="replace")
    first = output.splitlines()[0] if output else ""
    status = re.search(r"\((secure|insecure|BOGUS|error)", first)
    if not status:
        raise procutil.HarnessError(f"unbound-host: unexpected output {output!r}")
    failed = re.search(r"not found: \d+\((\w+)\)", first)
    texts = [b"".join(nsd.parse_character_strings(rdata)).decode("utf-8", errors="replace")
             for rdata in re.findall(rf'has {rrtype} record ((?:"(?:[^"\\]|\\.)*" ?)+)', output)]
    return Lookup(status.group(1).lower(), failed.group(1) if failed else "NOERROR", texts,
                  output)

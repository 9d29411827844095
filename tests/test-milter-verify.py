"""dkim-milter verifying outsiders' mail and sealing forwarded mail, through a real Postfix
(private instance relaying to an SMTP sink), keys served by NSD with DNSSEC.

Verification (Mode v): an Authentication-Results field with our AuthservID on top, forged fields
with our authserv-id removed (by their index among the fields of that name: the others stay, in
order); On-BadSignature, On-NoSignature, On-KeyNotFound, On-DNSError and On-Default with accept,
reject, tempfail and quarantine; DNS down.

Forwarded mail (ResignMailTo): an outsider's message to a forwarding address comes out ARC-sealed
and DKIM-signed with the forwarding domain's key; the chain validates with dkim-verify and
dkimpy, a second hop's seal too; the same message with a forged From in our own domain is sealed
but never signed; mail to other addresses is not signed.
"""
import time

import dkimmilter
import dkimtools
import milter_setup as ms
import nsd
import oracles
import postfix
import procutil
import smtpsink
import tap

KEYTABLE = """\
rsa._domainkey.example.com  example.com:rsa2026:{keys}/example.com/rsa2026.private
fwd._domainkey.forward.example forward.example:fwd:{keys}/forward.example/fwd.private
"""
SIGNINGTABLE = """\
*@example.com      rsa._domainkey.example.com
*@forward.example  fwd._domainkey.forward.example
"""
FORWARDER = "list@forward.example"
OUTSIDE = postfix.EXTERNAL_CLIENT
SENDER = "news@outside.example"


def outside_signed(keys, subject, selector="out", extra_headers=b""):
    return ms.sign_elsewhere(ms.message(SENDER, subject, extra_headers=extra_headers),
                             "outside.example", selector,
                             keys.path("outside.example", f"{selector}.private"))


def arc_cv(data, dns):
    """(our dkim-verify's cv, dkimpy's cv) for a relayed message."""
    ours = dkimtools.verify(data, "--resolver", f"127.0.0.1@{dns.port}").arc_cv
    names = {f"{tags['s']}._domainkey.{tags['d']}"
             for name in ("ARC-Seal", "ARC-Message-Signature")
             for tags in [dict(part.strip().split("=", 1) for part in value.split(";")
                               if "=" in part) for value in ms.header_values(data, name)]}
    return ours, oracles.DKIMPY.arc_verify(data, ms.served_records(dns, names))[0]


def main():
    if not ms.postfix_available():
        return
    with ms.KeyDirectory() as keys:
        keys.genkey("example.com", "rsa2026")
        keys.genkey("forward.example", "fwd")
        keys.genkey("outside.example", "out")
        keys.genkey("outside.example", "hop")
        keys.genkey("outside.example", "gone", publish=False)
        keys.write("KeyTable", KEYTABLE.format(keys=keys.directory))
        keys.write("SigningTable", SIGNINGTABLE)
        with nsd.NsdServer(keys.records) as dns, smtpsink.SmtpSink() as sink:
            config = ms.config(keys, dns, f"ResignMailTo {FORWARDER}\n")
            with dkimmilter.DkimMilter(config) as milter, postfix.Postfix(
                    relay_port=sink.port, milter=milter.postfix_socket,
                    forwards={FORWARDER: "member@remote.example"}) as pf:
                with ms.logs_on_failure(milter, pf):
                    verification(milter, pf, sink, dns, keys)
                    forwarding(milter, pf, sink, dns, keys)
                    actions(milter, pf, sink, dns, keys, config)
                ms.check_milter_stop(milter)
                ms.check_postfix_log(pf)


def verification(milter, pf, sink, dns, keys):
    forged = (b"Authentication-Results: other.example; dkim=pass header.d=x.example\r\n"
              b"Authentication-Results: mx.test.example; dkim=pass header.d=paypal.example\r\n"
              b"Authentication-Results: relay.example; spf=pass smtp.mailfrom=x.example\r\n"
              b"Authentication-Results: MX.TEST.EXAMPLE (forged); dmarc=pass\r\n")
    data = outside_signed(keys, "forged A-R", extra_headers=forged)
    pf.send(SENDER, ["someone@remote.example"], data, client=OUTSIDE)
    data = ms.relayed(sink, "an outsider's signed mail")
    authres = ms.header_values(data, "Authentication-Results")
    tap.ok(len(authres) == 3 and authres[0].startswith(f"{ms.AUTHSERV_ID}; dkim=pass") and
           "header.d=outside.example" in authres[0] and
           authres[1:] == ["other.example; dkim=pass header.d=x.example",
                           "relay.example; spf=pass smtp.mailfrom=x.example"],
           "our Authentication-Results on top with dkim=pass; both forged ones with our "
           "authserv-id removed, the others kept in order", authres)
    tap.ok(data.index(b"Authentication-Results: " + ms.AUTHSERV_ID.encode()) == 0,
           "our field is the topmost")
    tap.eq(ms.signed_pairs(data), [("outside.example", "out")],
           "mail to another address than a forwarder is not signed")

    pf.send(SENDER, ["someone@remote.example"], ms.message(SENDER, "unsigned"),
            client=OUTSIDE)
    tap.eq(ms.header_values(ms.relayed(sink, "unsigned"), "Authentication-Results"),
           [f"{ms.AUTHSERV_ID}; dkim=none"], "unsigned mail: dkim=none")


def forwarding(milter, pf, sink, dns, keys):
    start = len(milter.log_text())
    pf.send(SENDER, [FORWARDER], outside_signed(keys, "forwarded"), client=OUTSIDE)
    data = ms.relayed(sink, "forwarded")
    ms.check_signatures(data, dns, [("forward.example", "fwd"), ("outside.example", "out")],
                        "forwarded: signed by the forwarding domain, the author's signature "
                        "intact")
    tap.eq(arc_cv(data, dns), ("pass", "pass"),
           "forwarded: the ARC chain validates (dkim-verify, dkimpy)")
    aar = ms.header_values(data, "ARC-Authentication-Results")
    tap.ok(len(aar) == 1 and aar[0].startswith(f"i=1; {ms.AUTHSERV_ID};") and
           "dkim=pass" in aar[0] and "header.d=outside.example" in aar[0],
           "the ARC-Authentication-Results records this hop's verification", aar)
    tap.ok("forwarded (client=[127.0.0.2], to=list@forward.example): d=forward.example s=fwd "
           "a=rsa-sha256, ARC sealed d=forward.example s=fwd cv=none"
           in milter.log_text()[start:], "logged", milter.log_text()[start:])

    # a second hop: the message arrives sealed by the author's list server
    hop = outside_signed(keys, "second hop", extra_headers=b"Authentication-Results: "
                         b"mx.outside.example; dkim=pass header.d=outside.example\r\n")
    hop = oracles.DKIMPY.arc_sign(hop, "outside.example", "hop",
                                  keys.path("outside.example", "hop.private"),
                                  "mx.outside.example")
    pf.send(SENDER, [FORWARDER], hop, client=OUTSIDE)
    data = ms.relayed(sink, "second hop")
    seals = ms.header_values(data, "ARC-Seal")
    tap.ok(len(seals) == 2 and "i=2" in seals[0] and "cv=pass" in seals[0],
           "a sealed message gets the next set, i=2 cv=pass", seals)
    tap.eq(arc_cv(data, dns), ("pass", "pass"), "two hops: the chain validates")

    # a forger sends From: our own domain to the forwarding address
    start = len(milter.log_text())
    pf.send("ceo@example.com", [FORWARDER], ms.message("ceo@example.com", "forged From"),
            client=OUTSIDE)
    data = ms.relayed(sink, "forged From")
    tap.eq(ms.signed_pairs(data), [],
           "an outsider's message with From in our own domain: not DKIM-signed")
    tap.ok(len(ms.header_values(data, "ARC-Seal")) == 1 and
           arc_cv(data, dns) == ("pass", "pass") and
           "arc=none; dkim=none" in ms.header_values(data, "ARC-Authentication-Results")[0],
           "but ARC-sealed, recording dkim=none")
    tap.ok("sealed, not signed" in milter.log_text()[start:], "and logged why")

    pf.send("someone@forward.example", [FORWARDER],
            ms.message("someone@forward.example", "forwarder's own domain"), client=OUTSIDE)
    tap.eq(ms.signed_pairs(ms.relayed(sink, "forwarder's domain")), [],
           "nor with From in the forwarding domain itself")


def actions(milter, pf, sink, dns, keys, config):
    tampered = outside_signed(keys, "tampered").replace(b"this is a test", b"this is a TEST")
    unsigned = ms.message(SENDER, "unsigned")
    no_key = outside_signed(keys, "no key", selector="gone")

    def try_send(data):
        return ms.refusal(lambda: pf.send(SENDER, ["someone@remote.example"], data,
                                       client=OUTSIDE))

    milter.restart(config + "On-BadSignature reject\nOn-NoSignature reject\n"
                   "On-KeyNotFound tempfail\n")
    answer = try_send(tampered)
    tap.ok(answer is not None and answer[0] == 550 and "5.7.20" in answer[1],
           "On-BadSignature reject: 550 5.7.20", answer)
    answer = try_send(unsigned)
    tap.ok(answer is not None and answer[0] == 550, "On-NoSignature reject: 550", answer)
    answer = try_send(no_key)
    tap.ok(answer is not None and answer[0] == 451, "On-KeyNotFound tempfail: 451", answer)
    tap.eq(sink.messages, [], "none of them relayed")
    tap.eq(try_send(outside_signed(keys, "good")), None, "a good signature passes")
    ms.relayed(sink, "good signature")

    milter.restart(config + "On-Default reject\nOn-NoSignature accept\n")
    answer = try_send(tampered)
    tap.ok(answer is not None and answer[0] == 550, "On-Default reject covers BadSignature",
           answer)
    tap.eq(try_send(unsigned), None, "On-NoSignature accept overrides On-Default")
    ms.relayed(sink, "On-NoSignature accept")

    milter.restart(config + "On-BadSignature quarantine\n")
    held_before = len(pf.queue_ids("hold"))
    tap.eq(try_send(tampered), None, "On-BadSignature quarantine: accepted")
    procutil.wait_until(lambda: len(pf.queue_ids("hold")) == held_before + 1, 30,
                        "the message in Postfix's hold queue")
    tap.eq(len(pf.queue_ids("hold")), held_before + 1,
           "and put on hold by Postfix, not relayed")
    tap.eq(sink.messages, [], "nothing relayed")

    # DNS down: the selectors asked now were never cached
    milter.restart(config + "On-DNSError tempfail\nDNSTimeout 3\n")
    dns.stop()
    try:
        began = time.monotonic()
        answer = try_send(outside_signed(keys, "dns down", selector="hop"))
        took = time.monotonic() - began
        tap.ok(answer is not None and answer[0] == 451 and "4.4.3" in answer[1],
               "DNS down, On-DNSError tempfail: 451 4.4.3", answer)
        tap.ok(took < 30, f"within the DNS timeout, not hanging ({took:.1f} s)")
        milter.restart(config + "DNSTimeout 3\n")
        tap.eq(try_send(outside_signed(keys, "dns down again", selector="hop")), None,
               "DNS down, On-DNSError accept (the default): accepted")
        authres = ms.header_values(ms.relayed(sink, "DNS down"), "Authentication-Results")
        tap.ok(authres and "dkim=temperror" in authres[0], "with dkim=temperror", authres)
    finally:
        dns.start()


tap.run(main)

"""Submission signing of messages submitted by reference: BURL (RFC 4468) end to end.

The client APPENDs the message to its mailbox over IMAP, asks for a URLAUTH URL with
GENURLAUTH (RFC 4467, access "submit+<user>"), and submits with `BURL <url> LAST` instead of
DATA; Dovecot's submission service fetches the message and hands it to the plugin as it does
DATA. This test runs that whole path in a private Dovecot (imap with URLAUTH, submission,
non-root) and checks at the SMTP sink that the relayed message carries DKIM signatures that
verify (dkim-verify through NSD, dkimpy, OpenDKIM) and the original unchanged behind them.
Also: a message assembled from BDAT and BURL chunks (a forward without download, the case
RFC 4468 was made for), a message larger than the submission service keeps in memory, an
unauthorized From refused with 5.7.1 on the BURL command and not relayed, and no errors or
panics in Dovecot's log. Keys and tables are set up as in test-submission-sign.py.

The submitter's own stored message (the usual case) is fetched by the submission process
itself; another user's message goes through the imap-urlauth services, which Dovecot
2.3.19's imap-urlauth-login cannot do (see check_other_users_message: skipped then).
"""
import re
import smtplib
import urllib.parse

import dovecot
import nsd
import smtpclient
import smtpsink
import submission_signing as ss
import tap

KEYTABLE = """\
rsa2024._domainkey.example.com  example.com:rsa2024:{keys}/example.com/rsa2024.private
ed2024._domainkey.example.com   example.com:ed2024:{keys}/example.com/ed2024.private
"""
SIGNINGTABLE = """\
*@example.com    rsa2024._domainkey.example.com
*@example.com    ed2024._domainkey.example.com
"""
SIGNATURES = [("example.com", "rsa2024"), ("example.com", "ed2024")]

ALICE = "alice@example.com"
BOB = "bob@example.com"
RECIPIENT = "someone@remote.example"


def main():
    with ss.KeyDirectory(ss.dovecot_run_user()) as keys:
        keys.genkey("example.com", "rsa2024")
        keys.genkey("example.com", "ed2024", key_type="ed25519")
        keys.write("KeyTable", KEYTABLE.format(keys=keys.directory))
        keys.write("SigningTable", SIGNINGTABLE)
        plugin_settings = {"dkim_keytable": f"file:{keys.path('KeyTable')}",
                           "dkim_signingtable": f"refile:{keys.path('SigningTable')}"}
        # Users log in with their full address, so alice's own domain is example.com (and
        # her IMAP URLs carry the '@' of the user name percent-encoded).
        with nsd.NsdServer(keys.records) as dns, smtpsink.SmtpSink() as sink, \
                dovecot.Dovecot(relay_port=sink.port, submission_plugins=[ss.PLUGIN],
                                plugin_settings=plugin_settings, imap=True, users=(ALICE, BOB),
                                userdb_fields={ALICE: {"dkim_sign_unauthorized": "reject"}},
                                full_usernames=True) as dc:
            try:
                run_checks(dc, sink, dns)
            except Exception:
                tap.diag("Dovecot's log:\n" + dc.log_text()[-30000:])
                raise


def store_and_authorize(dc, user, data, submitter=None):
    """APPENDs `data` to `user`'s INBOX over IMAP and returns a URLAUTH URL for it that the
    submission service may fetch on behalf of `submitter` (default: `user`) (GENURLAUTH,
    access "submit+<submitter>")."""
    with dc.imap_login(user) as imap:
        _, capabilities = imap.capability()
        if b"URLAUTH" not in capabilities[0].split():
            raise AssertionError(f"IMAP does not offer URLAUTH: {capabilities!r}")
        typ, reply = imap.append("INBOX", None, None, data)
        match = re.search(rb"\[APPENDUID (\d+) (\d+)\]", reply[0]) if typ == "OK" else None
        if match is None:
            raise AssertionError(f"APPEND: {typ} {reply!r}")
        uidvalidity, uid = (int(n) for n in match.groups())
        owner = urllib.parse.quote(user, safe="")
        access = urllib.parse.quote(submitter or user, safe="")
        rump = (f"imap://{owner}@{dc.settings.hostname}:{dc.imap_port}/INBOX;"
                f"UIDVALIDITY={uidvalidity}/;UID={uid};urlauth=submit+{access}")
        typ, reply = imap.xatom("GENURLAUTH", f'"{rump}"', "INTERNAL")
        _, urls = imap.response("GENURLAUTH")
        if typ != "OK" or not urls or urls[0] is None:
            raise AssertionError(f"GENURLAUTH: {typ} {reply!r} {urls!r}")
        url = urls[0].decode("ascii").strip('"')
        if not url.startswith(rump + ":internal:"):
            raise AssertionError(f"GENURLAUTH gave {url!r} for {rump!r}")
        return url


def submit(dc, user, chunks):
    """Submits one message made of `chunks` (URL str for BURL, bytes for BDAT) as `user`;
    returns None when accepted, else (code, text) of the refusal."""
    with smtplib.SMTP("127.0.0.1", dc.submission_port, timeout=60) as smtp:
        smtp.ehlo("client.test.example")
        smtp.login(user, dc.settings.password)
        try:
            smtpclient.send_chunks(smtp, user, [RECIPIENT], chunks)
        except smtplib.SMTPDataError as exc:
            return exc.smtp_code, exc.smtp_error.decode("utf-8", "replace")
    return None


def check_relayed(relayed, original, dns, what):
    """The relayed message is our signature fields, Dovecot's Received field, then
    `original` byte for byte, and every verifier passes every signature."""
    data = relayed.data
    head_end = data.find(b"\r\nReceived: ") + 2
    received = data[head_end:len(data) - len(original)]
    tap.ok(data.endswith(original) and data.startswith(b"DKIM-Signature: ") and
           head_end > 1 and received.startswith(b"Received: ") and received.endswith(b"\r\n")
           and all(line[:1] in (b" ", b"\t") for line in received[:-2].split(b"\r\n")[1:]),
           f"{what}: signature fields, then Dovecot's Received, then the original intact")
    ss.check_verifies(relayed.data, dns, SIGNATURES, what)


def run_checks(dc, sink, dns):
    # Before AUTH, submission-login answers EHLO with a bare "BURL imap"; the URL host it
    # accepts is advertised once logged in (RFC 4468 section 3).
    with smtplib.SMTP("127.0.0.1", dc.submission_port, timeout=60) as smtp:
        smtp.ehlo("client.test.example")
        smtp.login(ALICE, dc.settings.password)
        smtp.ehlo("client.test.example")
        advertised = smtp.esmtp_features.get("burl", "")
    expected = f"imap://{dc.settings.hostname}:{dc.imap_port}"
    tap.eq(advertised.split(), ["imap", expected],
           "after AUTH, submission advertises BURL for the imap-urlauth host")

    start = len(dc.log_text())

    # -- BURL <url> LAST: the whole message by reference ----------------------------------
    original = ss.message(ALICE, "by reference")
    url = store_and_authorize(dc, ALICE, original)
    tap.eq(submit(dc, ALICE, [url]), None, "BURL LAST: accepted")
    relayed = ss.relayed_one(sink, "BURL")
    check_relayed(relayed, original, dns, "BURL")

    # -- BDAT + BURL + BDAT: a forward without download (RFC 4468 section 1) --------------
    forwarded = ss.message(ALICE, "the forwarded one")
    url = store_and_authorize(dc, ALICE, forwarded)
    head = ss.message(ALICE, "Fwd: the forwarded one", body=(
        b"--sep\r\nContent-Type: text/plain\r\n\r\nSee below.\r\n\r\n"
        b"--sep\r\nContent-Type: message/rfc822\r\n\r\n")).replace(
        b"Content-Type: text/plain; charset=us-ascii",
        b'Content-Type: multipart/mixed; boundary="sep"')
    tail = b"\r\n--sep--\r\n"
    tap.eq(submit(dc, ALICE, [head, url, tail]), None, "BDAT, BURL, BDAT LAST: accepted")
    relayed = ss.relayed_one(sink, "BDAT+BURL")
    check_relayed(relayed, head + forwarded + tail, dns, "BDAT+BURL+BDAT")

    # -- larger than the submission service keeps in memory (128 KiB) ---------------------
    line = b"A line of a larger message, stored first and then submitted by reference.\r\n"
    big = ss.message(ALICE, "1 MB by reference", body=line * (1024 * 1024 // len(line)))
    url = store_and_authorize(dc, ALICE, big)
    tap.eq(submit(dc, ALICE, [url]), None, "1 MB message, BURL LAST: accepted")
    check_relayed(ss.relayed_one(sink, "1 MB BURL"), big, dns, "1 MB BURL")

    signed = dc.log_lines(r"dkim: signed \(user=alice@example\.com, from_domain=example\.com\)",
                          count=3, start=start)
    tap.eq(len(signed), 3, "the plugin logged one signed line per BURL message")

    # -- the From policy applies to BURL too ----------------------------------------------
    foreign = ss.message("someone@elsewhere.example", "not hers")
    url = store_and_authorize(dc, ALICE, foreign)
    refusal = submit(dc, ALICE, [url])
    tap.ok(refusal is not None and refusal[0] == 550 and "5.7.1" in refusal[1],
           "foreign From by BURL, dkim_sign_unauthorized = reject: 550 5.7.1", refusal)
    tap.eq(sink.messages, [], "foreign From by BURL: nothing relayed")

    errors = dc.error_lines()
    tap.ok(not errors, "Dovecot logged no errors or panics", "\n".join(errors))

    check_other_users_message(dc, sink, dns)


URLAUTH_LOGIN_PANIC = (r"imap-urlauth-login: Panic: .*sasl_server_auth_begin.*"
                       r"MECH_SEC_PRIVATE")
URLAUTH_LOGIN_PANIC_LINES = (
    URLAUTH_LOGIN_PANIC,
    r"imap-urlauth-login: Error: Raw backtrace: .*sasl_server_auth_begin",
    r"imap-urlauth-login: Fatal: master: service\(imap-urlauth-login\): child \d+ killed "
    r"with signal 6",
    r"submission\(alice@example\.com\)<\d+><[^>]+>: Error: imap-urlauth: Service "
    r"disconnected unexpectedly$",
)
"""What that panic logs: the panic, its backtrace, the master's line and the submission
process's, for each try."""


def check_other_users_message(dc, sink, dns):
    """BURL of a message in another user's mailbox (bob drafts, alice submits).

    The submission service reads the submitter's own mailbox itself (lib-imap-urlauth
    resolves such URLs locally), so only this case goes through the imap-urlauth-login,
    imap-urlauth and imap-urlauth-worker services. Dovecot 2.3 (since 2.3.10) announces
    its DOVECOT-TOKEN mechanism without the "private" flag and imap-urlauth-login panics on
    it (fixed in 2.4.0 by dovecot/core 38924d2d68): when the log shows that panic, this case
    is skipped, visibly. It runs last, after the general error check, so those panics
    cannot hide anything else.
    """
    start = len(dc.log_text())
    colleague = ss.message(BOB, "drafted by bob, sent by alice")
    url = store_and_authorize(dc, BOB, colleague, submitter=ALICE)
    refusal = submit(dc, ALICE, [url])
    if refusal is not None and refusal[0] == 554 and dc.log_lines(URLAUTH_LOGIN_PANIC,
                                                                  start=start):
        tap.skip("BURL of another user's message, through the imap-urlauth services",
                 "this Dovecot's imap-urlauth-login panics on DOVECOT-TOKEN logins "
                 "(fixed in 2.4.0, dovecot/core 38924d2d68)")
        errors = dc.error_lines(allow=URLAUTH_LOGIN_PANIC_LINES)
        tap.ok(not errors, "that panic logged nothing else", "\n".join(errors))
        return
    tap.eq(refusal, None, "BURL of bob's message for alice: accepted")
    check_relayed(ss.relayed_one(sink, "BURL via imap-urlauth"), colleague, dns,
                  "BURL via imap-urlauth")
    errors = dc.error_lines()
    tap.ok(not errors, "BURL via imap-urlauth: no errors or panics", "\n".join(errors))


tap.run(main)

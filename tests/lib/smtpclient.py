"""Sending one message over an open smtplib connection, with DATA or BDAT (RFC 3030 CHUNKING).

smtplib has no BDAT. Dovecot's submission service accepts both from clients and its relay may
use BDAT towards the next hop when the client did, so tests must show that signing works
either way. Used by dovecot.Dovecot.submit() and the sink's self-check.
"""
import smtplib

DEFAULT_CHUNK_SIZE = 64 * 1024


def send(smtp, sender, recipients, data, bdat=False, chunk_size=DEFAULT_CHUNK_SIZE):
    """Sends `data` (bytes) from `sender` to `recipients` over `smtp` (EHLO/auth done or not).

    With `bdat` the bytes go unchanged in BDAT chunks of `chunk_size` (the last one marked
    LAST); without it smtplib's sendmail() is used, which dot-stuffs and turns bare LF into
    CRLF. Returns the refused recipients as sendmail() does ({address: (code, text)}); raises
    smtplib's exceptions when the server refuses the message.
    """
    if not bdat:
        return smtp.sendmail(sender, recipients, data)
    smtp.ehlo_or_helo_if_needed()
    if not smtp.has_extn("chunking"):
        raise smtplib.SMTPNotSupportedError("server does not advertise CHUNKING")
    code, reply = smtp.mail(sender)
    if code != 250:
        smtp.rset()
        raise smtplib.SMTPSenderRefused(code, reply, sender)
    refused = {}
    for recipient in recipients:
        code, reply = smtp.rcpt(recipient)
        if code not in (250, 251):
            refused[recipient] = (code, reply)
    if len(refused) == len(recipients):
        smtp.rset()
        raise smtplib.SMTPRecipientsRefused(refused)
    offsets = range(0, len(data), chunk_size) if data else [0]
    for offset in offsets:
        chunk = data[offset:offset + chunk_size]
        last = offset + chunk_size >= len(data)
        smtp.send(b"BDAT %d%s\r\n" % (len(chunk), b" LAST" if last else b"") + chunk)
        code, reply = smtp.getreply()
        if code != 250:
            smtp.rset()
            raise smtplib.SMTPDataError(code, reply)
    return refused

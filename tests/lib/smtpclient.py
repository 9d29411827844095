"""Sending one message over an open smtplib connection: SMTP with DATA or BDAT (RFC 3030
CHUNKING), by reference with BURL (RFC 4468, possibly mixed with BDAT), and LMTP with its
per-recipient replies.

smtplib has no BDAT. Dovecot's submission service accepts both from clients and its relay may
use BDAT towards the next hop when the client did, so tests must show that signing works
either way. Used by dovecot.Dovecot.submit() and the sink's self-check.
"""
import smtplib

DEFAULT_CHUNK_SIZE = 64 * 1024


def send(smtp, sender, recipients, data, bdat=False, chunk_size=DEFAULT_CHUNK_SIZE):
    """Sends `data` (bytes) from `sender` to `recipients` over `smtp` (EHLO/auth done or not).

    `data` should be CRLF text: with `bdat` it goes unchanged in BDAT chunks of `chunk_size`
    (the last one marked LAST); without, smtplib's sendmail() dot-stuffs it and otherwise sends
    bytes as they are. Returns the refused recipients as sendmail() does
    ({address: (code, text)}); raises smtplib's exceptions when the server refuses the message.
    """
    if not bdat:
        return smtp.sendmail(sender, recipients, data)
    offsets = range(0, len(data), chunk_size) if data else [0]
    return send_chunks(smtp, sender, recipients,
                       [data[offset:offset + chunk_size] for offset in offsets])


def send_chunks(smtp, sender, recipients, chunks):
    """Sends one message made of `chunks`, in order, the last one marked LAST: a bytes chunk
    goes with BDAT, a str chunk is an IMAP URL (e.g. from IMAP GENURLAUTH) that the server
    fetches for BURL (RFC 4468). Returns and raises as send(); a refused chunk raises
    SMTPDataError with the server's reply to it.
    """
    smtp.ehlo_or_helo_if_needed()
    for extension, needed in (("chunking", any(isinstance(c, bytes) for c in chunks)),
                              ("burl", any(isinstance(c, str) for c in chunks))):
        if needed and not smtp.has_extn(extension):
            raise smtplib.SMTPNotSupportedError(
                f"server does not advertise {extension.upper()}")
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
    for number, chunk in enumerate(chunks, 1):
        last = b" LAST" if number == len(chunks) else b""
        if isinstance(chunk, str):
            smtp.send(b"BURL " + chunk.encode("ascii") + last + b"\r\n")
        else:
            smtp.send(b"BDAT %d%s\r\n" % (len(chunk), last) + chunk)
        code, reply = smtp.getreply()
        if code != 250:
            smtp.rset()
            raise smtplib.SMTPDataError(code, reply)
    return refused


def send_lmtp(lmtp, sender, recipients, data):
    """Delivers `data` over an smtplib.LMTP connection; returns {recipient: (code, text)}.

    LMTP answers DATA once per accepted recipient (RFC 2033), which smtplib does not handle:
    its sendmail() reads only the first reply and leaves the rest to confuse the next command.
    Refused recipients keep their RCPT reply. Raises SMTPSenderRefused if MAIL is refused.
    """
    lmtp.ehlo_or_helo_if_needed()
    code, reply = lmtp.mail(sender)
    if code != 250:
        lmtp.rset()
        raise smtplib.SMTPSenderRefused(code, reply, sender)
    replies = {}
    for recipient in recipients:
        replies[recipient] = lmtp.rcpt(recipient)
    accepted = [r for r in recipients if replies[r][0] in (250, 251)]
    if not accepted:
        lmtp.rset()
        return replies
    replies[accepted[0]] = lmtp.data(data)
    for recipient in accepted[1:]:
        replies[recipient] = lmtp.getreply()
    return replies

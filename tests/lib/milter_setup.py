"""What the dkim-milter tests share.

- `KeyDirectory`: keys made with our dkim-genkey and OpenDKIM-style tables, in a directory that
  belongs to the user the milter runs as (`RUN_USER`, "nobody" when the tests run as root: the
  milter then also drops privileges with UserID, as in production) and that only it can read.
- `dovecot_auth()`: a private Dovecot that only serves Postfix's SASL (smtpd_sasl_type = dovecot)
  through an auth socket Postfix may connect to; users log in with their full address.
- `config()`: the milter configuration text the tests start from.
- `check_signatures()`: every signature of a relayed message checked with our dkim-verify
  (through NSD), dkimpy, OpenDKIM and Mail::DKIM (which has no Ed25519: skipped visibly).
- `message()`, `signature_tags()`, `signed_pairs()`, `header_values()`.
"""
import contextlib
import os
import pwd
import re
import smtplib

import dkimtools
import dovecot
import oracles
import submission_signing
import tap

AUTHSERV_ID = "mx.test.example"
RUN_USER = "nobody" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
PASSWORD = "secret"

message = submission_signing.message
signature_tags = submission_signing.signature_tags
signed_pairs = submission_signing.signed_pairs
served_records = submission_signing.served_records


class KeyDirectory(submission_signing.KeyDirectory):
    """submission_signing's key directory, owned by the milter's run user."""

    def __init__(self):
        super().__init__(pwd.getpwnam(RUN_USER))


def postfix_available():
    """True when a private Postfix can run here (root); otherwise records why the test is
    skipped."""
    if os.geteuid() == 0:
        return True
    tap.skip("dkim-milter through Postfix", "a private Postfix needs root")
    return False


def user_id_line():
    """The UserID line that makes the milter drop root (nothing when not root)."""
    return f"UserID {RUN_USER}\n" if os.geteuid() == 0 else ""


@contextlib.contextmanager
def dovecot_auth(users):
    """A Dovecot whose auth service Postfix uses for SASL; yields (dovecot, socket path).
    Users log in with their full address, password PASSWORD."""
    listener = "service auth {\n  unix_listener auth-postfix {\n    mode = 0666\n  }\n}\n"
    with dovecot.Dovecot(users=tuple(users), password=PASSWORD, full_usernames=True,
                         raw_config={"2.3": listener, "2.4": listener}) as dc:
        # smtpd runs as postfix: it must be able to reach the socket
        os.chmod(dc.directory, 0o711)
        yield dc, os.path.join(dc.directory, "run", "auth-postfix")


def sign_elsewhere(message, domain, selector, key_path):
    """dkim-sign's signature, made as another server (a sender outside, or the submission
    plugin before relaying) would: returns the signed message. The key belongs to the
    milter's run user while the tests run as root, so the key-file rules, which refuse a
    key of another user, are skipped (--allow-unsafe-key): that is the test standing in for
    the other server, not a key the milter would take."""
    rc, signed, err = dkimtools.sign(message, "-d", domain, "-s", selector, "-k", key_path,
                                     "--allow-unsafe-key")
    if rc != 0:
        raise RuntimeError(f"dkim-sign failed: {err}")
    return signed


def config(keys, dns, extra=""):
    """Sign and verify with the directory's KeyTable and SigningTable (refile:), resolving
    through NSD with its trust anchor (copied where the run user can read it), logging
    everything."""
    with open(dns.trust_anchor_file, encoding="ascii") as handle:
        anchor = keys.write("trust-anchor", handle.read())
    return (f"Mode sv\n"
            f"KeyTable file:{keys.path('KeyTable')}\n"
            f"SigningTable refile:{keys.path('SigningTable')}\n"
            f"Nameservers 127.0.0.1@{dns.port}\n"
            f"TrustAnchorFile {anchor}\n"
            f"AuthservID {AUTHSERV_ID}\n"
            f"{user_id_line()}"
            "Syslog no\nSyslogSuccess yes\nLogWhy yes\nLogResults yes\n" + extra)


@contextlib.contextmanager
def logs_on_failure(milter, pf):
    """Shows the milter's and Postfix's logs when the checks inside raise."""
    try:
        yield
    except Exception:
        tap.diag("milter log:\n" + milter.log_text()[-20000:])
        tap.diag("Postfix log:\n" + pf.log_text()[-20000:])
        raise


def check_milter_stop(milter, allow=()):
    """Stops the milter and checks how it ended: exit status 0 (LeakSanitizer makes it
    non-zero under ASan), no error in its log but those matching `allow`."""
    tap.eq(milter.stop(), 0, "the milter exits 0 on SIGTERM (and leaks nothing under ASan)")
    errors = milter.error_lines(allow)
    tap.ok(not errors, "the milter logged no errors", "\n".join(errors))


def check_postfix_log(pf):
    tap.ok(not pf.error_lines(), "Postfix logged no errors", "\n".join(pf.error_lines()))


def relayed(sink, what, count=1, timeout=60):
    """The message the sink got since the last clear() (a list when `count` > 1), after
    checking that exactly that many came."""
    messages = sink.wait_for(count, timeout=timeout)
    tap.eq(len(messages), count, f"{what}: relayed")
    sink.clear()
    return messages[0].data if count == 1 else [m.data for m in messages]


def refusal(call):
    """None when `call` (a send) was accepted, else (code, text) of the refusal."""
    try:
        call()
    except (smtplib.SMTPDataError, smtplib.SMTPSenderRefused) as exc:
        return exc.smtp_code, exc.smtp_error.decode("utf-8", "replace")
    return None


def header_values(data, name):
    """The values of every `name` field of a message, unfolded, top first."""
    head = data.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    fields = re.split(r"\r\n(?![ \t])", head)
    return [re.sub(r"\r\n[ \t]", " ", field.split(":", 1)[1]).strip()
            for field in fields if field.split(":", 1)[0].strip().lower() == name.lower()]


def check_signatures(data, dns, expected, what):
    """Every signature of `data` passes with dkim-verify, dkimpy, OpenDKIM and Mail::DKIM
    (Ed25519 ones skipped visibly for Mail::DKIM, which has none), and the signatures are
    exactly `expected` [(d, s), ...], top first."""
    submission_signing.check_verifies(data, dns, expected, what)
    records = served_records(dns, [f"{s}._domainkey.{d}" for d, s in expected])
    rsa = [tags.get("a") == "rsa-sha256" for tags in signature_tags(data)]
    if not any(rsa):
        tap.skip(f"{what}: Mail::DKIM", "Mail::DKIM 1.20230212 has no Ed25519")
        return
    results = oracles.MAIL_DKIM.verify(data, records)
    checked = [r for r, is_rsa in zip(results, rsa) if is_rsa]
    tap.ok(len(results) == len(expected) and checked and
           all(r.result == "pass" for r in checked),
           f"{what}: Mail::DKIM passes every RSA signature" +
           (" (it has no Ed25519)" if not all(rsa) else ""),
           "\n".join(f"{r.result} d={r.domain} s={r.selector}: {r.detail}" for r in results))

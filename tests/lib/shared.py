"""Where the tests find ../shared (the test corpora, the oracles' Perl modules, the bench keys),
and the one reason a test gives when it is not there.

A plain clone has no ../shared beside it: the tests that need it then skip with `ABSENT` as
the reason, and everything else runs. A ../shared that exists but lacks a file is a failure,
not a skip: only a missing directory is a reason to skip.
"""
import os

DIR = os.environ.get("DKIM_SHARED_DIR") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared")
"""The project's shared/ directory ($DKIM_SHARED_DIR, else ../shared beside the checkout)."""


def path(*parts):
    return os.path.join(DIR, *parts)


def absent():
    """None when shared/ is there, else the one-line reason to skip a test that needs it."""
    if os.path.isdir(DIR):
        return None
    return f"needs the test corpora and oracles in {os.path.normpath(DIR)} (not present)"

"""Minimal TAP producer for the Python test scripts (run with /usr/bin/python3)."""
import sys
import traceback

_count = 0
_failed = 0


def ok(cond, name, diag=None):
    """Records one check; `diag` is printed (as TAP comments) on failure."""
    global _count, _failed
    _count += 1
    if not cond:
        _failed += 1
    print(f"{'' if cond else 'not '}ok {_count} - {name}", flush=True)
    if not cond and diag:
        for line in str(diag).splitlines():
            print(f"# {line}", flush=True)
    return cond


def eq(got, expected, name, diag=None):
    """ok(got == expected); on failure both values are printed, and `diag` after them."""
    text = f"got {got!r}\nexpected {expected!r}"
    return ok(got == expected, name, text if diag is None else f"{text}\n{diag}")


def skip(name, reason):
    """Records a check that cannot run here (e.g. an oracle lacking a capability), visibly."""
    global _count
    _count += 1
    print(f"ok {_count} - {name} # SKIP {reason}", flush=True)


def skip_all(reason):
    """Ends a test that cannot run here at all (TAP "1..0 # SKIP"): counted as one skip."""
    print(f"1..0 # SKIP {reason}", flush=True)
    sys.exit(0)


def diag(text):
    for line in str(text).splitlines():
        print(f"# {line}", flush=True)


def bail(reason):
    print(f"Bail out! {reason}", flush=True)
    sys.exit(1)


def done():
    print(f"1..{_count}", flush=True)
    sys.exit(0 if _failed == 0 else 1)


def run(main):
    """Runs main(), turning an uncaught exception into a failed check."""
    try:
        main()
    except Exception:  # noqa: BLE001 - report every crash as a TAP failure
        ok(False, "test script raised", traceback.format_exc())
    done()

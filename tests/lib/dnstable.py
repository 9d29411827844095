"""Reads and writes the corpus DNS-table format shared by every DKIM oracle and test.

One record per line: ``<owner-name><whitespace><TXT value to end of line>``. Lines starting
with ``#`` or ``;`` and blank lines are skipped. Owner names compare case-insensitively and
without a trailing dot, so they are stored lowercased without it. A name may appear on several
lines (several TXT records).

The value is the whole TXT RDATA with its character-strings already concatenated, except for
these special values (see ../shared/corpus/README.md), which tests must be able to tell apart:

- ``NXDOMAIN``: the name does not exist;
- ``~~text~~`` (e.g. ``~~Query timed out~~``, ``~~SERVFAIL~~``): a temporary DNS failure;
- ``""``: one TXT record holding a single empty string.

NXDOMAIN and ``~~...~~`` are *pseudo values*: they describe a DNS outcome instead of data, so a
real DNS server or OpenDKIM's TestPublicKeys cannot be given them (see `without_pseudo`).
"""

NXDOMAIN = "NXDOMAIN"
TIMEOUT = "~~Query timed out~~"
SERVFAIL = "~~SERVFAIL~~"
EMPTY = '""'


def normalize_name(name):
    """Returns the table key for `name`: lowercase, no trailing dot (how the format compares)."""
    return name.strip().rstrip(".").lower()


def is_dns_error(value):
    """True for a ``~~text~~`` value, which stands for a temporary DNS failure."""
    return len(value) >= 4 and value.startswith("~~") and value.endswith("~~")


def is_pseudo(value):
    """True for values that describe a DNS outcome (NXDOMAIN, ~~error~~) rather than TXT data."""
    return value == NXDOMAIN or is_dns_error(value)


def txt_text(value):
    """Returns the TXT text a data value stands for (``""`` is the empty string).

    Raises ValueError for pseudo values, which have no TXT text, so that a caller serving a
    table cannot silently publish the string "NXDOMAIN" as a key record.
    """
    if is_pseudo(value):
        raise ValueError(f"pseudo value {value!r} has no TXT text")
    return "" if value == EMPTY else value


def parse(text):
    """Parses table text into ``{name: [value, ...]}`` (names normalized, file order kept)."""
    records = {}
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", ";")):
            continue
        parts = stripped.split(None, 1)
        if len(parts) != 2:
            raise ValueError(f"line {number}: no value after owner name: {line!r}")
        records.setdefault(normalize_name(parts[0]), []).append(parts[1].strip())
    return records


def load(path):
    """Reads a table file (UTF-8) into ``{name: [value, ...]}``."""
    with open(path, encoding="utf-8") as handle:
        return parse(handle.read())


def normalize(records):
    """Returns ``{name: [value, ...]}`` with normalized names from a mapping whose values are
    lists or single strings, so that tests can write ``{name: "v=DKIM1; p=..."}``.

    Values are table values (``""`` for an empty TXT string, pseudo values allowed); an
    empty Python string is rejected because the table format cannot express it.
    """
    result = {}
    for name, values in records.items():
        key = normalize_name(name)
        if not key or any(ch.isspace() for ch in key):
            raise ValueError(f"invalid owner name {name!r}")
        for value in [values] if isinstance(values, str) else values:
            if not value or value != value.strip() or "\n" in value or "\r" in value:
                raise ValueError(f"{key}: not a one-line table value (use '\"\"' for an "
                                 f"empty TXT string): {value!r}")
            result.setdefault(key, []).append(value)
    return result


def without_pseudo(records):
    """Returns a copy without NXDOMAIN/~~error~~ values (names left with no value are dropped).

    OpenDKIM would parse such values as key records, and an authoritative server can only
    express NXDOMAIN by leaving the name out.
    """
    kept = {}
    for name, values in normalize(records).items():
        data = [value for value in values if not is_pseudo(value)]
        if data:
            kept[name] = data
    return kept


def format_table(records):
    """Renders records (see `normalize`) as table text; `parse` reads it back unchanged.

    Typical use is an override: ``{**dnstable.load(path), name: "v=DKIM1; p="}``.
    """
    return "".join(f"{name} {value}\n"
                   for name, values in normalize(records).items() for value in values)


def write(records, path):
    """Writes `records` to `path` in the table format (see `format_table`)."""
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(format_table(records))

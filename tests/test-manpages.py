#!/usr/bin/python3
"""The man pages of the command-line tools (doc/dkim-*.1) against the tools themselves.

For every tool:
- each option of its usage line (`TOOL --help`, which prints the usage string) is an item of
  the page's OPTIONS section, and so is each option its source accepts (the getopt_long table
  and short-option string, which also hold aliases the usage line leaves out);
- the page's SYNOPSIS is the usage string, word for word;
- the page has the sections an administrator looks for;
- groff renders the page without a single warning (-ww), for UTF-8 and ASCII terminals.
And dkim-verify(1) lists every reason code of dkimcore/result.c under REASON CODES, and
under LIMITS every limit a message can reach, with the value dkimcore defines for it.

Pages are rendered with groff into plain text, so the checks see what a reader sees, whatever
macros produce it. DKIM_MAN_DIR replaces doc/ (to check the test itself against broken
pages).

Run: DKIM_TOP_BUILDDIR=_build PYTHONPATH=tests/lib /usr/bin/python3 tests/test-manpages.py
"""
import os
import re
import shutil
import procutil

import dkimtools
import tap

TOOLS = ["dkim-verify", "dkim-sign", "dkim-genkey", "dkim-testkey", "dkim-bench", "dkim-keys"]
MAN_DIR = os.environ.get("DKIM_MAN_DIR", os.path.join(dkimtools.SRCDIR, "doc"))
REQUIRED_SECTIONS = ["NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "EXIT STATUS", "EXAMPLES",
                     "SEE ALSO"]

# An option: one or two dashes and a name, not inside a word ("dkim-verify", "ed25519-sha256").
OPTION_RE = re.compile(r"(?<![\w-])(--?[A-Za-z][\w-]*)")
# Hyphen, non-breaking hyphen, minus sign: what groff may make of - and \- on other systems.
DASHES = str.maketrans({"\u2010": "-", "\u2011": "-", "\u2212": "-", "\u00ad": ""})


def usage_string(tool):
    """The usage string, from `TOOL --help` (stdout; stderr for a tool without --help)."""
    proc = procutil.run([dkimtools.tool(tool), "--help"], f"{tool} --help")
    for stream in (proc.stdout, proc.stderr):
        for line in stream.decode("utf-8", "replace").splitlines():
            if line.startswith("usage: "):
                return line[len("usage: "):].strip()
    return None


def usage_options(usage):
    return set(OPTION_RE.findall(usage))


def source_options(tool):
    """Options the source accepts: long_options names, getopt short letters, and literal
    "--name" arguments compared by hand (dkim-bench). None if the source is absent."""
    path = os.path.join(dkimtools.SRCDIR, "tools", f"{tool}.c")
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as handle:
        source = handle.read()
    options = set()
    table = re.search(r"long_options\[\]\s*=\s*\{(.*?)\n\};", source, re.S)
    if table:
        options |= {"--" + name for name in re.findall(r'\{\s*"([\w-]+)"', table[1])}
        if "TOOL_RESOLVER_LONG_OPTIONS" in table[1]:
            with open(os.path.join(dkimtools.SRCDIR, "tools", "tool-common.h"),
                      encoding="utf-8") as handle:
                common = handle.read()
            macro = re.search(r"#define TOOL_RESOLVER_LONG_OPTIONS(.*?)\n\n", common, re.S)
            options |= {"--" + name for name in re.findall(r'\{\s*"([\w-]+)"', macro[1])}
    for optstring in re.findall(r'getopt_long\([^"]*"([^"]*)"', source):
        options |= {"-" + letter for letter in optstring if letter.isalnum()}
    options |= set(re.findall(r'strcmp\(argv\[\w+\],\s*"(--[\w-]+)"\)', source))
    return options


def render(page, device="utf8"):
    """(returncode, text, warnings) of groff rendering the page as a terminal would, wide
    enough that no option tag is wrapped."""
    proc = procutil.run(["groff", "-man", f"-T{device}", "-ww", "-rLL=200n", "-P-c", "-P-b",
                         "-P-u", page], "groff", timeout=60, check=False)
    text = proc.stdout.decode("utf-8", "replace").translate(DASHES)
    return proc.returncode, text, proc.stderr.decode("utf-8", "replace")


def sections(text):
    """Section name -> its lines. Headings start in column 0; the page header and footer
    lines (which contain the page name) are dropped."""
    result, current = {}, None
    for line in text.splitlines():
        if line and not line[0].isspace():
            if re.fullmatch(r"[A-Z][A-Z ]*", line.strip()):
                current = line.strip()
                result[current] = []
            else:
                current = None
        elif current is not None:
            result[current].append(line)
    return result


def item_lines(lines):
    """The tags of an indented list (.TP items): lines at the list's indentation followed by
    a more indented body line, or short tags with their body on the same line ("-v     text").
    Paragraph text between items is left out."""
    def indent(line):
        return len(line) - len(line.lstrip())
    indents = {indent(line) for line in lines if line.strip()}
    if not indents:
        return []
    base = min(indents)
    body = min((i for i in indents if i > base), default=None)
    tags = []
    for i, line in enumerate(lines):
        if not line.strip() or indent(line) != base:
            continue
        following = lines[i + 1] if i + 1 < len(lines) else ""
        if following.strip() and indent(following) > base:
            tags.append(line.strip())
        elif (body is not None and len(line) > body and line[body - 1] == " "
              and line[body] != " " and "  " not in line[base:body].strip()):
            tags.append(line[base:body].strip())
    return tags


def documented_options(option_lines):
    return set(OPTION_RE.findall("\n".join(option_lines)))


def check_page(tool):
    page = os.path.join(MAN_DIR, f"{tool}.1")
    if not tap.ok(os.path.exists(page), f"{tool}: {page} exists"):
        return
    returncode, text, warnings = render(page)
    tap.ok(returncode == 0 and warnings == "", f"{tool}: groff -ww renders the page without "
           "warnings", f"exit status {returncode}\n{warnings}")
    ascii_status, _, ascii_warnings = render(page, "ascii")
    tap.ok(ascii_status == 0 and ascii_warnings == "", f"{tool}: so does groff -Tascii (man in "
           "the C locale)", f"exit status {ascii_status}\n{ascii_warnings}")
    secs = sections(text)
    missing = [name for name in REQUIRED_SECTIONS if name not in secs]
    tap.ok(not missing, f"{tool}: the page has the sections {', '.join(REQUIRED_SECTIONS)}",
           f"missing: {missing}\nsections found: {list(secs)}")

    usage = usage_string(tool)
    if not tap.ok(usage is not None, f"{tool}: --help prints a usage line"):
        return
    synopsis = " ".join(" ".join(secs.get("SYNOPSIS", [])).split())
    tap.eq(synopsis, " ".join(usage.split()), f"{tool}: SYNOPSIS is the usage string")

    documented = documented_options(item_lines(secs.get("OPTIONS", [])))
    wanted = usage_options(usage)
    tap.ok(wanted, f"{tool}: the usage line names options", usage)
    for option in sorted(wanted):
        tap.ok(option in documented, f"{tool}: {option} (usage line) is an item of OPTIONS",
               f"OPTIONS items name: {sorted(documented)}\nusage: {usage}")
    accepted = source_options(tool)
    if accepted is None:
        tap.skip(f"{tool}: options of the source are in OPTIONS", "source not found")
        return
    for option in sorted(accepted - wanted):
        tap.ok(option in documented, f"{tool}: {option} (accepted by the source) is an item "
               "of OPTIONS", f"OPTIONS items name: {sorted(documented)}")


def check_reason_codes():
    with open(os.path.join(dkimtools.SRCDIR, "dkimcore", "result.c"), encoding="utf-8") as f:
        codes = re.findall(r'\{\s*"([a-z0-9-]+)",\s*DKIM_RESULT_', f.read())
    codes = [code for code in codes if code != "none"]
    tap.ok(len(codes) >= 30, f"dkimcore/result.c names {len(codes)} reason codes")
    page = os.path.join(MAN_DIR, "dkim-verify.1")
    if not os.path.exists(page):
        return
    listed = item_lines(sections(render(page)[1]).get("REASON CODES", []))
    missing = [code for code in codes if code not in listed]
    tap.ok(not missing, "dkim-verify(1): REASON CODES lists every reason code",
           f"missing: {missing}\nadd an item for each to doc/dkim-verify.1, REASON CODES")


# The items of dkim-verify(1), LIMITS: each tag, and the dkimcore constants it shows.
LIMIT_ITEMS = [
    ("Header block: {} MiB", ["DKIM_DEFAULT_MAX_HEADER_BYTES"], [lambda v: v >> 20]),
    ("Header fields: {:,}", ["DKIM_MAX_HEADER_FIELDS"], None),
    ("Distinct field names: {:,}", ["DKIM_MAX_FIELD_NAMES"], None),
    ("Entries in h=: {:,}", ["DKIM_MAX_SIGNED_HEADERS"], None),
    ("DKIM-Signature fields: {}", ["DKIM_DEFAULT_MAX_SIGNATURES"], None),
    ("ARC sets: {}", ["DKIM_ARC_MAX_SETS"], None),
    ("Tags: {}", ["DKIM_MAX_TAGS"], None),
    ("Key name: {} octets", ["DKIM_MAX_DOMAIN_NAME"], None),
    ("RSA keys: {} to {} bits", ["DKIM_RSA_MIN_BITS", "DKIM_RSA_MAX_BITS"], None),
    ("DNS: {:g} seconds", ["DKIM_DEFAULT_DNS_TIMEOUT_MSECS"], [lambda v: v / 1000]),
    ("Clock: {} seconds", ["DKIM_DEFAULT_CLOCK_DRIFT"], None),
    ("Text shown: {} characters", ["DKIM_MAX_SHOWN"], None),
]


def dkimcore_constants():
    """NAME -> value of the numeric #defines in dkimcore (products of numbers included)."""
    constants = {}
    core = os.path.join(dkimtools.SRCDIR, "dkimcore")
    for name in sorted(os.listdir(core)):
        if name.endswith((".c", ".h")):
            with open(os.path.join(core, name), encoding="utf-8") as handle:
                for macro, value in re.findall(r"^#define (DKIM_\w+) \(?([0-9][0-9 *]*)\)?",
                                               handle.read(), re.M):
                    product = 1
                    for factor in value.split("*"):
                        product *= int(factor)
                    constants[macro] = product
    return constants


def check_limits():
    page = os.path.join(MAN_DIR, "dkim-verify.1")
    if not os.path.exists(page):
        return
    listed = item_lines(sections(render(page)[1]).get("LIMITS", []))
    constants = dkimcore_constants()
    for tag, names, convert in LIMIT_ITEMS:
        if not tap.ok(all(name in constants for name in names),
                      f"dkimcore defines {', '.join(names)}"):
            continue
        values = [constants[name] for name in names]
        if convert:
            values = [f(v) for f, v in zip(convert, values)]
        expected = tag.format(*values)
        tap.ok(expected in listed, f"dkim-verify(1): LIMITS has the item '{expected}'",
               f"LIMITS items: {listed}")


def main():
    if shutil.which("groff") is None:
        tap.skip("man pages", "groff is not installed")
        return
    for tool in TOOLS:
        check_page(tool)
    check_reason_codes()
    check_limits()


if __name__ == "__main__":
    tap.run(main)

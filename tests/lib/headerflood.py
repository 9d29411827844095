"""Header field names chosen to flood a hash index (security issue, bug 3).

Until the fix, dkimcore indexed field names with an unseeded 32-bit FNV-1a hash and
linear probing over a table of the next power of two at least twice the field count:
names whose hashes agree in the low bits the table uses all start probing at one slot,
so each insertion and each lookup of such a name walks the whole cluster, quadratic in
the number of names.  These generators make such names, so that a test can show the
index (now keyed, and capped) stays within bounded time on them.

The low k bits of FNV-1a depend only on the low k bits of its state (XOR and a
multiplication modulo 2^k), and a step can be undone (the prime is odd, so it has an
inverse modulo 2^k): the states from which three given characters lead to the target
are tabulated once, and each name is a distinct prefix whose state is in that table,
followed by the three characters that finish it.

Run as a program, it prints N such names, one a line (the reproduction of the issue
built its messages from them)."""
import itertools
import sys

FNV_OFFSET = 2166136261
FNV_PRIME = 16777619
# The low bits the old index used for 100,000 fields: 2^18 slots.
TABLE_BITS = 18
# Lowercase only: the old hash folded case, these are unaffected by it.
ALPHABET = b"abcdefghijklmnopqrstuvwxyz0123456789-_"


def fnv1a(name, bits=32):
    """The old index's hash of a (lowercase) name, modulo 2^bits."""
    mask = (1 << bits) - 1
    state = FNV_OFFSET & mask
    for c in name:
        state = ((state ^ c) * FNV_PRIME) & mask
    return state


def colliding_names(count, prefix=b"x", bits=TABLE_BITS, target=0):
    """`count` distinct field names, each starting with `prefix`, whose FNV-1a hashes all
    equal `target` in their low `bits` bits."""
    mask = (1 << bits) - 1
    inverse = pow(FNV_PRIME, -1, 1 << bits)
    # state before the last three characters -> those characters
    finish = {}
    for tail in itertools.product(ALPHABET, repeat=3):
        state = target
        for c in reversed(tail):
            state = ((state * inverse) & mask) ^ c
        finish.setdefault(state, bytes(tail))
    names = []
    base = fnv1a(prefix, bits)
    for serial in itertools.count():
        # A distinct middle for every candidate keeps the names distinct.
        middle = b"%x-" % serial
        state = base
        for c in middle:
            state = ((state ^ c) * FNV_PRIME) & mask
        tail = finish.get(state)
        if tail is not None:
            names.append(prefix + middle + tail)
            if len(names) == count:
                return names


def main():
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 100000
    for name in colliding_names(count):
        sys.stdout.buffer.write(name + b"\n")


if __name__ == "__main__":
    main()

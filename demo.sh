#!/bin/sh
# The main job, on a fresh Debian 12 machine: installs what is missing,
# builds, and runs the demonstrations (see README.md).
#   ./demo.sh              with the machine's own Dovecot (2.3 on Debian 12)
#   ./demo.sh --dovecot24  the Dovecot demonstration with Dovecot 2.4, in a
#                          Debian 13 root (tests/run-dovecot24.sh)
set -eu

top=$(cd "$(dirname "$0")" && pwd)
"$top/scripts/install-deps.sh"
if [ "${1:-}" = --dovecot24 ]; then
	exec "$top/tests/run-dovecot24.sh" --command \
		/usr/bin/python3 "$top/demo/dovecot-demo.py"
fi
"$top/scripts/build.sh"

export DKIM_TOP_SRCDIR="$top" DKIM_TOP_BUILDDIR="$top/_build"
export PYTHONPATH="$top/tests/lib" PYTHONDONTWRITEBYTECODE=1
# Delivery into a private Dovecot, Sieve filing, forged headers; then the
# command-line tools on their own.
/usr/bin/python3 "$top/demo/dovecot-demo.py"
/usr/bin/python3 "$top/demo/core-demo.py"

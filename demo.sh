#!/bin/sh
# The main job, on a fresh Debian 12 machine: installs what is missing,
# builds, and runs the demonstrations (see README.md).
set -eu

top=$(cd "$(dirname "$0")" && pwd)
"$top/scripts/install-deps.sh"
"$top/scripts/build.sh"

export DKIM_TOP_SRCDIR="$top" DKIM_TOP_BUILDDIR="$top/_build"
export PYTHONPATH="$top/tests/lib" PYTHONDONTWRITEBYTECODE=1
# Delivery into a private Dovecot, Sieve filing, forged headers; then the
# command-line tools on their own.
/usr/bin/python3 "$top/demo/dovecot-demo.py"
/usr/bin/python3 "$top/demo/core-demo.py"

#!/bin/sh
# Builds the project against Dovecot 2.4 and runs the tests that start a
# Dovecot there, in a fresh Debian 13 root (scripts/in-debian.sh 13): the same
# tests `make check` runs against the host's Dovecot 2.3.
#
# Usage: tests/run-dovecot24.sh [TEST...]
#        tests/run-dovecot24.sh --command CMD [ARG...]
#   TEST: e.g. tests/test-deliver.py; default: every test that starts a
#   Dovecot ($(DOVECOT_TESTS), make check-dovecot).  --command runs CMD
#   there instead, with the environment the tests get (the demo: demo.sh
#   --dovecot24).
# Environment: CONFIGURE_ARGS, extra arguments for configure (e.g.
#   --without-dovecot-plugins).
#
# The source tree is copied to _build-dovecot24/src first: autoreconf there
# uses Debian 13's dovecot.m4, so the checkout's own configure stays the
# host's.  The build is _build-dovecot24/build; its test-suite.log and
# tests/*.log are the logs (the directory is the checkout's, so they are
# there after the run).  Exit status: that of make check, or of the build.
# Needs root; the first run on a machine also builds the root (see
# scripts/debian-root.sh).
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
out=$top/_build-dovecot24

if [ "${1:-}" != --inside ]; then
	"$top/scripts/copy-sources.sh" "$out/src"
	exec "$top/scripts/in-debian.sh" 13 "$0" --inside "$@"
fi
shift

echo "run-dovecot24: $(dovecot --version | cut -d' ' -f1), building in $out/build"
# The tests find shared/ beside the checkout, not beside the copy.
DKIM_SHARED_DIR=${DKIM_SHARED_DIR:-$top/../shared}
export DKIM_SHARED_DIR
# build.sh configures only a new build dir (or when given arguments): a
# change of CONFIGURE_ARGS since the last run must configure again too.
if [ ! -f "$out/configure-args" ] ||
   [ "$(cat "$out/configure-args")" != "${CONFIGURE_ARGS:-}" ]; then
	rm -f "$out/build/Makefile"
fi
echo "${CONFIGURE_ARGS:-}" >"$out/configure-args"
# shellcheck disable=SC2086 # CONFIGURE_ARGS is a list of arguments
BUILD_DIR=$out/build "$out/src/scripts/build.sh" ${CONFIGURE_ARGS:-}

# Hook for the plugins' settings module: Dovecot 2.4 parses our settings only
# once it is installed in <moduledir>/settings/, which is the overlay's own
# (discarded after the run).  The build provides the target once the plugins
# support 2.4.
if make -C "$out/build" -n install-dovecot-modules >/dev/null 2>&1; then
	make -C "$out/build" install-dovecot-modules
else
	echo "run-dovecot24: no install-dovecot-modules target: no settings module installed"
fi

if [ "${1:-}" = --command ]; then
	shift
	DKIM_TOP_SRCDIR=$out/src DKIM_TOP_BUILDDIR=$out/build
	PYTHONPATH=$out/src/tests/lib PYTHONDONTWRITEBYTECODE=1
	export DKIM_TOP_SRCDIR DKIM_TOP_BUILDDIR PYTHONPATH PYTHONDONTWRITEBYTECODE
	exec "$@"
elif [ $# -gt 0 ]; then
	make -C "$out/build" check VERBOSE=1 TESTS="$*"
else
	make -C "$out/build" check-dovecot VERBOSE=1
fi

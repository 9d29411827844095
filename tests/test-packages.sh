#!/bin/sh
# The Debian packages, built and tested installed, for each release: builds
# them (scripts/build-deb.sh: Debian 12 on this host, Debian 13 in its root,
# lintian clean of errors), then installs them in a fresh overlay of a clean
# root of the same release (scripts/in-debian.sh) and runs
# tests/package-installed.py there: doveconf, deliveries, Sieve, submission
# signing, remove and purge.  Prints each check as a TAP line ("ok - ...",
# "not ok - ..."), which test.sh counts.
#
# Usage: tests/test-packages.sh [RELEASE...]    (default: 12 13)
# Exit status: 0 when every check passed.  Needs root.
set -u

top=$(cd "$(dirname "$0")/.." && pwd)
status=0

[ $# -gt 0 ] || set -- 12 13
for release in "$@"; do
	echo "# Debian $release"
	mkdir -p "$top/_build-deb"
	log=$top/_build-deb/build-debian$release.out
	if "$top/scripts/build-deb.sh" "$release" >"$log" 2>&1; then
		sed 's/^/# /' "$log"
		echo "ok - Debian $release: packages built, lintian without errors"
	else
		sed 's/^/# /' "$log"
		echo "not ok - Debian $release: packages built, lintian without errors"
		status=1
		continue
	fi
	PYTHONPATH=$top/tests/lib PYTHONDONTWRITEBYTECODE=1 \
		"$top/scripts/in-debian.sh" "$release" /usr/bin/python3 \
		"$top/tests/package-installed.py" "$top/_build-deb/debian$release" ||
		status=1
done
exit "$status"

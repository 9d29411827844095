#!/bin/sh
# Builds the Debian binary packages (dovecot-dkim, dkim-tools) for one
# Debian release, from the files git would commit, and runs lintian on them.
#
# Usage: scripts/build-deb.sh 12     Debian 12 (Dovecot 2.3), on this host
#        scripts/build-deb.sh 13     Debian 13 (Dovecot 2.4), in the Debian 13
#                                    root (scripts/in-debian.sh 13)
# A release other than the host's is built in that release's root, so the
# packages always link against the release's own Dovecot and libraries.
#
# Output: _build-deb/debianN/*.deb (and .changes, .buildinfo), the build log
# build.log and lintian.log there.  The version is debian/changelog's plus
# "+debN" (0.1.0+deb12), so the two releases' packages never share a version.
# Exit status: non-zero when the build fails or lintian reports an error.
# Needs root for a release other than the host's; the build itself runs
# without (Rules-Requires-Root: no).
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
release=${1:-}
case $release in
12 | 13) ;;
*)
	echo "usage: $0 12|13" >&2
	exit 2
	;;
esac
out=$top/_build-deb/debian$release
# shellcheck disable=SC1091 # the running system's
host_release=$(. /etc/os-release && echo "$VERSION_ID")

version=$(dpkg-parsechangelog -l "$top/debian/changelog" -S Version)+deb$release
src=$out/dovecot-dkim-$version

# The tree to build, prepared here (git is not in the roots): the files git
# would commit, and a changelog entry that puts the release in the version,
# as Debian's backports do, dated by the last commit (the same tree gives
# the same packages).
prepare() {
	rm -rf "$out"
	mkdir -p "$out"
	"$top/scripts/copy-sources.sh" "$src"
	date=$(date -R -d "@$(git -C "$top" log -1 --format=%ct)")
	{
		echo "dovecot-dkim ($version) unstable; urgency=medium"
		echo
		echo "  * Built for Debian $release."
		echo
		dpkg-parsechangelog -l "$top/debian/changelog" -S Maintainer |
			sed 's/^/ -- /' | tr -d '\n'
		echo "  $date"
		echo
		cat "$top/debian/changelog"
	} >"$src/debian/changelog"
}

if [ "${2:-}" != --inside ]; then
	prepare
	if [ "$host_release" != "$release" ]; then
		exec "$top/scripts/in-debian.sh" "$release" "$0" "$release" --inside
	fi
elif [ "$host_release" != "$release" ]; then
	echo "build-deb: inside the root, but it is Debian $host_release" >&2
	exit 1
fi

started=$(date +%s)
echo "build-deb: building $version for Debian $release in $src"
if ! (cd "$src" && dpkg-buildpackage -b -uc -us -j"$(nproc)") \
	>"$out/build.log" 2>&1; then
	tail -n 40 "$out/build.log" >&2
	echo "build-deb: the build failed (log: $out/build.log)" >&2
	exit 1
fi
echo "build-deb: built in $(($(date +%s) - started)) s:"
(cd "$out" && ls -1 ./*.deb)

# lintian on the .changes: errors fail the build, warnings are shown.
changes=$(ls "$out"/*.changes)
status=0
lintian --fail-on error --display-info "$changes" >"$out/lintian.log" 2>&1 ||
	status=$?
if [ -s "$out/lintian.log" ]; then
	cat "$out/lintian.log"
fi
if [ "$status" -ne 0 ]; then
	echo "build-deb: lintian reports errors (log: $out/lintian.log)" >&2
	exit 1
fi
echo "build-deb: lintian: no errors"

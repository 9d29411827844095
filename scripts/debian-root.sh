#!/bin/sh
# A Debian root of a given release with Dovecot and what the build and the
# tests need: Debian 13 (trixie, Dovecot 2.4), in which the tests run a real
# Dovecot 2.4 on this Debian 12 machine, and Debian 12 (bookworm, Dovecot
# 2.3), a clean root into which tests/test-packages.sh installs the Debian 12
# packages.  Built with mmdebstrap from the Debian archive apt already uses
# here, cached outside the clone, refreshed when it is old, when trixie (or
# bookworm) has a newer Dovecot, or when the list of packages changed.
# scripts/in-debian.sh enters it; nothing ever runs in the cached base
# itself (each run gets a fresh overlay).
#
# Usage:
#   scripts/debian-root.sh RELEASE [ensure]   make the base current, print its path
#   scripts/debian-root.sh RELEASE rebuild    build it anew, whatever the cache holds
#   scripts/debian-root.sh RELEASE with-base COMMAND [ARG...]
#       make the base current, then run COMMAND with DEBIAN_ROOT_BASE set to
#       it, holding the cache lock shared so that no refresh replaces the
#       base while COMMAND uses it (that is how in-debian.sh calls it)
# RELEASE: 12 or 13.
#
# Environment:
#   DEBIAN_ROOT_CACHE         cache directory (default /var/cache/dovecot-dkim)
#   DEBIAN_ROOT_MAX_AGE_DAYS  rebuild a cached root older than this (default
#                             7), so that the release's other updates arrive too
#
# The cache directory holds, for each release N:
#   debianN-root.tar.zst  the root as built (the cache proper, written
#                         atomically: a temporary file renamed into place)
#   debianN-root/         the root extracted from it: the overlays' lower dir
#   debianN-root.stamp    which tarball debianN-root/ was extracted from
#   debianN-root.packages the packages it was built with
#   debianN-root.lock     flock: exclusive while building or extracting,
#                         shared while a run uses the base
#   SUITE-apt/            apt lists for the check for a newer Dovecot
# Everything but the tarball can be rebuilt from it; a missing or corrupt
# tarball means a cold build (about 3 minutes, see README.md).
#
# Messages go to standard error; standard output carries only the path.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
release=${1:-}
case $release in
12) suite=bookworm ;;
13) suite=trixie ;;
*)
	echo "usage: $0 12|13 [ensure|rebuild|with-base COMMAND...]" >&2
	exit 2
	;;
esac
shift
cache=${DEBIAN_ROOT_CACHE:-/var/cache/dovecot-dkim}
max_age_days=${DEBIAN_ROOT_MAX_AGE_DAYS:-7}
tarball=$cache/debian$release-root.tar.zst
base=$cache/debian$release-root
stamp=$cache/debian$release-root.stamp
packages_stamp=$cache/debian$release-root.packages
lock=$cache/debian$release-root.lock
# shellcheck disable=SC1091 # the host's, read at run time
host_release=$(. /etc/os-release && echo "$VERSION_CODENAME")

say() {
	echo "debian$release-root: $*" >&2
}

die() {
	say "$*"
	exit 1
}

# The host's Debian archive entries ("URI SUITE"), for the host's own release
# and its -updates/-security suites, from both source formats apt reads
# (one-line *.list and deb822 *.sources; other file names apt ignores too).
host_archive_entries() {
	for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
	            /etc/apt/sources.list.d/*.sources; do
		[ -f "$file" ] || continue
		case $file in
		*.sources)
			# One stanza per paragraph; Enabled: no switches one off.
			awk -v RS= '{
				types = uris = suites = ""; enabled = 1
				n = split($0, lines, "\n")
				for (i = 1; i <= n; i++) {
					line = lines[i]
					if (line ~ /^#/) continue
					key = tolower(line); sub(/:.*/, "", key)
					value = line; sub(/^[^:]*:[ \t]*/, "", value)
					if (key == "types") types = value
					else if (key == "uris") uris = value
					else if (key == "suites") suites = value
					else if (key == "enabled" && tolower(value) == "no") enabled = 0
				}
				if (!enabled || types !~ /(^|[ \t])deb([ \t]|$)/) next
				nu = split(uris, u, /[ \t]+/); ns = split(suites, s, /[ \t]+/)
				for (i = 1; i <= nu; i++)
					for (j = 1; j <= ns; j++)
						print u[i], s[j]
			}' "$file"
			;;
		*)
			# deb [options] URI SUITE COMPONENT...
			sed -e 's/#.*//' -e 's/\[[^]]*\]//' "$file" |
				awk '$1 == "deb" { print $2, $3 }'
			;;
		esac
	done | awk -v c="$host_release" '$2 == c || index($2, c "-") == 1' | sort -u
}

# The same entries for $suite, as one-line sources ("deb URI SUITE main").
suite_sources() {
	host_archive_entries | while read -r uri host_suite; do
		echo "deb $uri $suite${host_suite#"$host_release"} main"
	done
}

# The root's packages: what scripts/install-deps.sh installs on the host
# (same names in both releases; its host-only part stays out), and rsync.
root_packages() {
	echo "$("$top/scripts/install-deps.sh" --list) rsync"
}

installed_dovecot() {
	dpkg-query --admindir="$base/var/lib/dpkg" -W -f '${Version}' dovecot-core \
		2>/dev/null || true
}

# Prints the suite's current dovecot-core version, from apt lists kept in the
# cache (host apt with a private state: no chroot, and after the first time
# only the changed indexes are fetched).  Prints nothing when the archive
# cannot be reached: the cached root is then kept.
suite_dovecot() {
	state=$cache/$suite-apt
	mkdir -p "$state/lists/partial" "$state/empty"
	suite_sources >"$state/sources.list"
	# The base's dpkg status as "installed", so that apt-cache policy
	# compares against the root; none of the host's preferences apply.
	set -- -o Dir::Etc::SourceList="$state/sources.list" \
		-o Dir::Etc::SourceParts="$state/empty" \
		-o Dir::Etc::Preferences=/dev/null \
		-o Dir::Etc::PreferencesParts="$state/empty" \
		-o Dir::State::Lists="$state/lists" \
		-o Dir::State::Status="$base/var/lib/dpkg/status" \
		-o Dir::Cache="$state" -o Dir::Cache::pkgcache= \
		-o Dir::Cache::srcpkgcache=
	if ! apt-get "$@" -qq update >"$state/update.log" 2>&1; then
		say "cannot check $suite for a newer Dovecot (see $state/update.log)"
		return 0
	fi
	apt-cache "$@" policy dovecot-core | awk '$1 == "Candidate:" { print $2 }'
}

# Why the base must be rebuilt or extracted again; nothing when it is current.
stale_reason() {
	if [ ! -s "$tarball" ]; then
		echo "no cached root: building it"
	elif [ -n "$(find "$tarball" -mtime +"$max_age_days")" ]; then
		echo "cached root older than $max_age_days days: rebuilding"
	elif [ "$(cat "$packages_stamp" 2>/dev/null)" != "$(root_packages)" ]; then
		echo "the list of packages changed: rebuilding"
	elif [ ! -d "$base" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$(tarball_id)" ]; then
		echo "extracting the cached root"
	else
		installed=$(installed_dovecot)
		available=$(suite_dovecot)
		if [ -n "$available" ] && [ "$available" != "$installed" ]; then
			echo "$suite has dovecot-core $available, the cached root" \
				"${installed:-none}: rebuilding"
		fi
	fi
}

tarball_id() {
	stat -c '%Y %s %i' "$tarball"
}

# Replaces the base with $1 (a directory on the same file system) and
# records which tarball it corresponds to.  The stamp goes first and comes
# back last, so an interruption leaves a base that is extracted again.
install_base() {
	rm -f "$stamp"
	rm -rf "$base"
	mv "$1" "$base"
	tarball_id >"$stamp"
}

extract() {
	started=$(date +%s)
	scratch=$(mktemp -d "$cache/extract.XXXXXX")
	mkdir "$scratch/root"
	if ! tar -C "$scratch/root" --zstd -xpf "$tarball" --numeric-owner \
		--xattrs --xattrs-include='*' 2>"$scratch/tar.log"; then
		say "the cached root is corrupt ($(head -n 1 "$scratch/tar.log"))"
		rm -rf "$scratch"
		return 1
	fi
	install_base "$scratch/root"
	rm -rf "$scratch"
	say "extracted in $(($(date +%s) - started)) s"
}

build() {
	started=$(date +%s)
	if ! command -v mmdebstrap >/dev/null || ! command -v zstd >/dev/null; then
		"$top/scripts/install-deps.sh" >&2
	fi
	sources=$(suite_sources)
	[ -n "$sources" ] || die "no Debian archive for $host_release in" \
		"/etc/apt/sources.list{,.d}: cannot tell where $suite comes from"
	say "building the Debian $release root from: $(echo "$sources" | tr '\n' ';')"
	# One mmdebstrap mirror argument per sources line.
	set --
	while IFS= read -r line; do
		set -- "$@" "$line"
	done <<-EOF
	$sources
	EOF
	scratch=$(mktemp -d "$cache/build.XXXXXX")
	# A private mount namespace: whatever mmdebstrap mounts in the root
	# (proc, sys, dev) disappears with it, even if it is killed.  Its own
	# policy-rc.d keeps package scripts from starting services during the
	# build; the one the hook leaves keeps it that way in every run.
	# shellcheck disable=SC2016 # $1 is the hook's argument (the root)
	if ! unshare --mount --propagation private \
		mmdebstrap --mode=root --variant=minbase --quiet \
			--include="$(root_packages | tr ' ' ',')" \
			--customize-hook='printf "#!/bin/sh\nexit 101\n" >"$1/usr/sbin/policy-rc.d" && chmod 755 "$1/usr/sbin/policy-rc.d"' \
			"$suite" "$scratch/root" "$@" >"$scratch/mmdebstrap.log" 2>&1
	then
		tail -n 30 "$scratch/mmdebstrap.log" >&2
		rm -rf "$scratch"
		die "mmdebstrap failed"
	fi
	built=$(date +%s)
	tar -C "$scratch/root" --zstd -cf "$scratch/root.tar.zst" --numeric-owner \
		--xattrs --xattrs-include='*' .
	mv "$scratch/root.tar.zst" "$tarball"
	root_packages >"$packages_stamp"
	install_base "$scratch/root"
	rm -rf "$scratch"
	say "built in $((built - started)) s (dovecot-core $(installed_dovecot)), cached" \
		"in $(($(date +%s) - built)) s: $tarball ($(du -m "$tarball" | cut -f1) MB)"
}

# Brings the base up to date; the caller holds the lock exclusively.
refresh() {
	reason=$(stale_reason)
	[ -n "$reason" ] || return 0
	say "$reason"
	case $reason in
	extracting*)
		if extract; then
			refresh
			return
		fi
		say "rebuilding"
		;;
	esac
	build
}

# Makes the base current and leaves the lock held shared on fd 9, so that no
# refresh replaces the base while the caller uses it.
ensure() {
	[ "$(id -u)" = 0 ] || die "needs root (mmdebstrap, mounts)"
	mkdir -p "$cache"
	exec 9>>"$lock"
	flock -s 9
	if [ -n "$(stale_reason)" ]; then
		# Not atomic (flock(2)): refresh() looks again under the lock.
		flock -n -x 9 || {
			say "waiting for other runs to stop using the root"
			flock -x 9
		}
		refresh
		flock -s 9
	fi
}

case ${1:-ensure} in
ensure)
	ensure
	echo "$base"
	;;
rebuild)
	[ "$(id -u)" = 0 ] || die "needs root (mmdebstrap, mounts)"
	mkdir -p "$cache"
	exec 9>>"$lock"
	flock -x 9
	build
	echo "$base"
	;;
with-base)
	shift
	[ $# -gt 0 ] || die "with-base: no command"
	ensure
	DEBIAN_ROOT_BASE=$base
	export DEBIAN_ROOT_BASE
	exec "$@"
	;;
*)
	die "unknown command '$1' (ensure, rebuild, with-base COMMAND...)"
	;;
esac

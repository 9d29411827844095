#!/bin/sh
# The Debian 13 (trixie) root in which the tests run a real Dovecot 2.4 on
# this Debian 12 machine: built with mmdebstrap from the Debian archive apt
# already uses here, cached outside the clone, refreshed when it is old,
# trixie has a newer Dovecot, or it lacks a package the list names.
# scripts/in-debian13.sh enters it; nothing ever runs in the cached base
# itself (each run gets a fresh overlay).
#
# Usage:
#   scripts/debian13-root.sh [ensure]     make the base current, print its path
#   scripts/debian13-root.sh rebuild      build it anew, whatever the cache holds
#   scripts/debian13-root.sh with-base COMMAND [ARG...]
#       make the base current, then run COMMAND with DEBIAN13_BASE set to it,
#       holding the cache lock shared so that no refresh replaces the base
#       while COMMAND uses it (that is how in-debian13.sh calls it)
#
# Environment:
#   DEBIAN13_CACHE         cache directory (default /var/cache/dovecot-dkim)
#   DEBIAN13_MAX_AGE_DAYS  rebuild a cached root older than this (default 7),
#                          so that trixie's other updates arrive too
#
# The cache directory holds:
#   debian13-root.tar.zst  the root as built (the cache proper, written
#                          atomically: a temporary file renamed into place)
#   debian13-root/         the root extracted from it: the overlays' lower dir
#   debian13-root.stamp    which tarball debian13-root/ was extracted from
#   debian13-root.lock     flock: exclusive while building or extracting,
#                          shared while a run uses the base
#   trixie-apt/            apt lists for the check for a newer Dovecot
# Everything but the tarball can be rebuilt from it; a missing or corrupt
# tarball means a cold build (about 3 minutes, see README.md).
#
# Messages go to standard error; standard output carries only the path.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
cache=${DEBIAN13_CACHE:-/var/cache/dovecot-dkim}
max_age_days=${DEBIAN13_MAX_AGE_DAYS:-7}
suite=trixie
tarball=$cache/debian13-root.tar.zst
base=$cache/debian13-root
stamp=$cache/debian13-root.stamp
lock=$cache/debian13-root.lock
# shellcheck disable=SC1091 # the host's, read at run time
host_release=$(. /etc/os-release && echo "$VERSION_CODENAME")

say() {
	echo "debian13-root: $*" >&2
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

# The same entries for trixie, as one-line sources ("deb URI SUITE main").
trixie_sources() {
	host_archive_entries | while read -r uri host_suite; do
		echo "deb $uri $suite${host_suite#"$host_release"} main"
	done
}

# The Debian 13 packages: what scripts/install-deps.sh installs on the host
# (same names in trixie; its host-only part stays out), and rsync, with which
# tests/run-dovecot24.sh keeps its copy of the source tree.
root_packages() {
	echo "$("$top/scripts/install-deps.sh" --list) rsync"
}

# The packages of root_packages() that the base lacks (the list grew since
# it was built), separated by spaces; nothing when it has them all.
missing_packages() {
	installed=$(dpkg-query --admindir="$base/var/lib/dpkg" -W \
		-f '${Package} ${Status}\n' 2>/dev/null |
		awk '$2 == "install" && $4 == "installed" { print $1 }')
	for pkg in $(root_packages); do
		echo "$installed" | grep -qx "$pkg" || printf '%s ' "$pkg"
	done
}

installed_dovecot() {
	dpkg-query --admindir="$base/var/lib/dpkg" -W -f '${Version}' dovecot-core \
		2>/dev/null || true
}

# Prints trixie's current dovecot-core version, from apt lists kept in the
# cache (host apt with a private state: no chroot, and after the first time
# only the changed indexes are fetched).  Prints nothing when the archive
# cannot be reached: the cached root is then kept.
trixie_dovecot() {
	state=$cache/trixie-apt
	mkdir -p "$state/lists/partial" "$state/empty"
	trixie_sources >"$state/sources.list"
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
		say "cannot check trixie for a newer Dovecot (see $state/update.log)"
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
	elif [ ! -d "$base" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$(tarball_id)" ]; then
		echo "extracting the cached root"
	elif missing=$(missing_packages) && [ -n "$missing" ]; then
		echo "the cached root lacks ${missing% }: rebuilding"
	else
		installed=$(installed_dovecot)
		available=$(trixie_dovecot)
		if [ -n "$available" ] && [ "$available" != "$installed" ]; then
			echo "trixie has dovecot-core $available, the cached root" \
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
	sources=$(trixie_sources)
	[ -n "$sources" ] || die "no Debian archive for $host_release in" \
		"/etc/apt/sources.list{,.d}: cannot tell where trixie comes from"
	say "building the Debian 13 root from: $(echo "$sources" | tr '\n' ';')"
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
	DEBIAN13_BASE=$base
	export DEBIAN13_BASE
	exec "$@"
	;;
*)
	die "unknown command '$1' (ensure, rebuild, with-base COMMAND...)"
	;;
esac

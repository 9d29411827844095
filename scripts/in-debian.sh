#!/bin/sh
# Runs a command in a fresh Debian root of a release (13: Dovecot 2.4;
# 12: Dovecot 2.3), and leaves nothing behind: no mount, no process, no
# change to the cached base.
#
# Usage: scripts/in-debian.sh RELEASE COMMAND [ARG...]
#   e.g. scripts/in-debian.sh 13 dovecot --version
#        scripts/in-debian.sh 12 sh -c 'cd tests && ...'
# (scripts/in-debian13.sh COMMAND is scripts/in-debian.sh 13 COMMAND.)
#
# The root is an overlay: the base that scripts/debian-root.sh keeps
# current below, and an upper layer on a tmpfs of this run's own, so every
# change made inside (packages, files in /tmp, an installed Dovecot module)
# is gone when the command ends.  The checkout and the shared/ directory
# beside it appear inside at their own absolute paths, so paths in the build,
# the tests and their logs mean the same inside and outside; changes there
# are real.  The command runs in the caller's directory (when that is inside
# the checkout), with the caller's environment except PATH, as root, in its
# own mount and PID namespaces: when it ends, every process it started is
# killed and every mount it made disappears with the namespaces.
#
# Exit status: the command's.  Needs root (namespaces, mounts).
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
[ $# -gt 1 ] || { echo "usage: $0 12|13 COMMAND [ARG...]" >&2; exit 2; }
release=$1

# First pass: have debian-root.sh make the base current and run us again
# with DEBIAN_ROOT_BASE set, under its shared lock (fd 9) for the whole run.
if [ -z "${DEBIAN_ROOT_BASE:-}" ]; then
	exec "$top/scripts/debian-root.sh" "$release" with-base "$0" "$@"
fi
shift

# The directories that must look the same inside: the checkout and
# ../shared (often a symlink to the real one, which then appears too).
shared=$top/../shared
exposed="$top"
if [ -e "$shared" ]; then
	exposed="$exposed $(cd "$shared" && pwd -P)"
fi
link=""
if [ -L "$shared" ]; then
	link="$(cd "$top/.." && pwd -P)/shared"
fi

# The mount point of this run's tmpfs; empty and removed at the end (the
# mounts themselves live only in the namespace).
mnt=$(mktemp -d "/tmp/debian$release-run.XXXXXX")
trap 'rmdir "$mnt"' EXIT

# Runs as PID 1 of the new PID namespace: sets up the root, then waits for
# the command, reaping the orphans it adopts; when it exits, the kernel kills
# whatever is left in the namespace.
# shellcheck disable=SC2016 # expanded by the inner shell
setup='
set -eu
mnt=$1 base=$2 exposed=$3 link=$4 cwd=$5
shift 5
mount -t tmpfs -o mode=755 debian-run "$mnt"
mkdir "$mnt/upper" "$mnt/work" "$mnt/root"
root=$mnt/root
mount -t overlay debian-root \
	-o "lowerdir=$base,upperdir=$mnt/upper,workdir=$mnt/work" "$root"
mount -t proc proc "$root/proc"
# A minimal /dev: the host'"'"'s disks stay out of reach of root inside.
mount -t tmpfs -o mode=755,nosuid debian-dev "$root/dev"
for node in null zero full random urandom tty; do
	touch "$root/dev/$node"
	mount --bind "/dev/$node" "$root/dev/$node"
done
mkdir -m 1777 "$root/dev/shm"
ln -s /proc/self/fd "$root/dev/fd"
ln -s /proc/self/fd/0 "$root/dev/stdin"
ln -s /proc/self/fd/1 "$root/dev/stdout"
ln -s /proc/self/fd/2 "$root/dev/stderr"
cp /etc/hosts "$root/etc/hosts"
for dir in $exposed; do
	mkdir -p "$root$dir"
	mount --bind "$dir" "$root$dir"
done
if [ -n "$link" ] && [ ! -e "$root$link" ]; then
	ln -s "$(readlink "$link")" "$root$link"
fi
[ -d "$root$cwd" ] || cwd=/
status=0
chroot "$root" /bin/sh -c '"'"'cd "$0" && exec "$@"'"'"' "$cwd" "$@" || status=$?
exit "$status"
'
# fd 9 (the lock) stays with this shell, which waits; the namespace does not
# get it.
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
	unshare --mount --propagation private --pid --fork --kill-child \
	sh -c "$setup" debian-run "$mnt" "$DEBIAN_ROOT_BASE" "$exposed" "$link" \
	"$(pwd -P)" "$@" 9>&-

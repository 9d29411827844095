#!/bin/sh
# Runs a command in a fresh Debian 13 root with Dovecot 2.4, and leaves
# nothing behind: no mount, no process, no change to the cached base.
#
# Usage: scripts/in-debian13.sh COMMAND [ARG...]
#   e.g. scripts/in-debian13.sh dovecot --version
#        scripts/in-debian13.sh sh -c 'cd tests && ...'
#
# The root is an overlay: the base that scripts/debian13-root.sh keeps
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
[ $# -gt 0 ] || { echo "usage: $0 COMMAND [ARG...]" >&2; exit 2; }

# First pass: have debian13-root.sh make the base current and run us again
# with DEBIAN13_BASE set, under its shared lock (fd 9) for the whole run.
if [ -z "${DEBIAN13_BASE:-}" ]; then
	exec "$top/scripts/debian13-root.sh" with-base "$0" "$@"
fi

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
mnt=$(mktemp -d /tmp/debian13-run.XXXXXX)
trap 'rmdir "$mnt"' EXIT

# Runs as PID 1 of the new PID namespace: sets up the root, then waits for
# the command, reaping the orphans it adopts; when it exits, the kernel kills
# whatever is left in the namespace.
# shellcheck disable=SC2016 # expanded by the inner shell
setup='
set -eu
mnt=$1 base=$2 exposed=$3 link=$4 cwd=$5
shift 5
mount -t tmpfs -o mode=755 debian13-run "$mnt"
mkdir "$mnt/upper" "$mnt/work" "$mnt/root"
root=$mnt/root
mount -t overlay debian13-root \
	-o "lowerdir=$base,upperdir=$mnt/upper,workdir=$mnt/work" "$root"
mount -t proc proc "$root/proc"
# A minimal /dev: the host'"'"'s disks stay out of reach of root inside.
mount -t tmpfs -o mode=755,nosuid debian13-dev "$root/dev"
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
	sh -c "$setup" debian13-run "$mnt" "$DEBIAN13_BASE" "$exposed" "$link" \
	"$(pwd -P)" "$@" 9>&-

#!/bin/sh
# Copies the files git would commit (tracked, and untracked but not
# ignored) into DEST, keeping their times so that make rebuilds only what
# changed; files copied by the last run into DEST and gone now are removed.
# The list of what was copied is kept in DEST.sources.
#
# Usage: scripts/copy-sources.sh DEST
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
[ $# -eq 1 ] || { echo "usage: $0 DEST" >&2; exit 2; }
dest=$1
list=$dest.sources

mkdir -p "$dest"
(cd "$top" && git ls-files -z --cached --others --exclude-standard) |
	tr '\0' '\n' | sort >"$list.new"
if [ -f "$list" ]; then
	comm -23 "$list" "$list.new" | (cd "$dest" && xargs -r -d '\n' rm -f --)
fi
(cd "$top" && tr '\n' '\0' <"$list.new" | tar --null --files-from=- -cf -) |
	tar -C "$dest" -xpf -
mv "$list.new" "$list"

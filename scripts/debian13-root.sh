#!/bin/sh
# The cached Debian 13 root: see debian-root.sh.
# Usage: scripts/debian13-root.sh [ensure|rebuild|with-base COMMAND...]
exec "$(dirname "$0")/debian-root.sh" 13 "$@"

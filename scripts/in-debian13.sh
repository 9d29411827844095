#!/bin/sh
# Runs a command in a fresh Debian 13 root with Dovecot 2.4: see in-debian.sh.
# Usage: scripts/in-debian13.sh COMMAND [ARG...]
exec "$(dirname "$0")/in-debian.sh" 13 "$@"

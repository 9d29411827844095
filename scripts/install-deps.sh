#!/bin/sh
# Installs every Debian 12 package the build, the demo and the tests use.
# Needs root (apt-get).  Safe to run again: installed packages are skipped.
#
#   scripts/install-deps.sh          install what is missing
#   scripts/install-deps.sh --list   print the packages the Debian 12 and 13
#                                    roots need too (scripts/debian-root.sh)
set -eu

# The build, the Dovecot tests, the tools' tests and the Debian packages
# (scripts/build-deb.sh): the same names on Debian 12 and 13, so the roots
# install this list too.
COMMON_PACKAGES="
	autoconf automake libtool pkg-config make gcc
	libssl-dev libunbound-dev libpsl-dev publicsuffix
	dovecot-dev dovecot-core dovecot-lmtpd dovecot-sieve dovecot-submissiond
	dovecot-imapd dovecot-managesieved dovecot-pgsql postgresql
	nsd unbound-host ldnsutils dns-root-data
	python3 python3-dkim python3-authres python3-nacl python3-cryptography
	python3-yaml
	opendkim opendkim-tools libopendkim-dev libmail-dkim-perl libnet-dns-perl
	libmilter-dev postfix
	swaks util-linux procps groff-base
	build-essential debhelper dpkg-dev lintian
"
# Only on the host: the sanitizer and fuzzer builds (Debian 12's clang 14
# runtime), valgrind, and what builds and caches the Debian 13 root.
HOST_PACKAGES="
	clang libclang-rt-14-dev valgrind
	mmdebstrap zstd
"

if [ "${1:-}" = --list ]; then
	# shellcheck disable=SC2086 # one line, the names separated by spaces
	echo $COMMON_PACKAGES
	exit 0
fi

missing=""
for pkg in $COMMON_PACKAGES $HOST_PACKAGES; do
	if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null |
	     grep -q "install ok installed"; then
		missing="$missing $pkg"
	fi
done
if [ -z "$missing" ]; then
	echo "install-deps: all packages present"
	exit 0
fi
if [ "$(id -u)" != 0 ]; then
	echo "install-deps: missing:$missing" >&2
	echo "install-deps: run as root (or with sudo) to install them" >&2
	exit 1
fi
echo "install-deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086 # word splitting of the package list is intended
apt-get install -y -qq --no-install-recommends $missing

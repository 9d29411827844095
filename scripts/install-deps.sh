#!/bin/sh
# Installs every Debian 12 package the build, the demo and the tests use.
# Needs root (apt-get).  Safe to run again: installed packages are skipped.
set -eu

PACKAGES="
	autoconf automake libtool pkg-config make gcc clang libclang-rt-14-dev
	libssl-dev libunbound-dev libpsl-dev publicsuffix
	dovecot-dev dovecot-core dovecot-lmtpd dovecot-sieve dovecot-submissiond
	dovecot-imapd
	nsd unbound-host ldnsutils dns-root-data
	python3 python3-dkim python3-nacl python3-cryptography python3-yaml
	opendkim opendkim-tools libopendkim-dev libmail-dkim-perl libnet-dns-perl
	libmilter-dev postfix
	swaks util-linux procps groff-base valgrind
"

missing=""
for pkg in $PACKAGES; do
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

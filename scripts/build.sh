#!/bin/sh
# Configures and builds the project in BUILD_DIR (default _build) beside
# the sources, so the source tree itself is never configured.
# Extra arguments go to configure.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$top/_build}

cd "$top"
if [ ! -x configure ] || [ configure.ac -nt configure ]; then
	autoreconf -fi
fi
mkdir -p "$build"
cd "$build"
if [ ! -f Makefile ] || [ "$top/configure" -nt Makefile ] || [ $# -gt 0 ]; then
	"$top/configure" "$@"
fi
make -j"$(nproc)"

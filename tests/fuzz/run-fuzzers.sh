#!/bin/sh
# Builds the libFuzzer targets, derives their seeds from the shared corpus
# and runs each target for SECONDS (default 60).  Fails if any target
# crashes, leaks, breaks one of its invariants, takes more than 10 s on one
# input or runs out of memory; the input that did it is kept.
#
# usage: tests/fuzz/run-fuzzers.sh [SECONDS]
#
# Environment:
#   FUZZ_BUILDDIR    build directory (default: <srcdir>/_build-fuzz); when it
#                    has no Makefile it is configured with
#                    CC=clang --enable-fuzzers --without-dovecot-plugins
#   FUZZ_ARTIFACTS   where failing inputs and logs go
#                    (default: $FUZZ_BUILDDIR/fuzz-artifacts)
#   DKIM_SHARED_DIR  the shared directory (default: <srcdir>/../shared)
#   PYTHON3          Python with PyYAML (default: /usr/bin/python3)
#   FUZZ_MAX_LEN     the largest input, in bytes (default: 4096)
set -eu

seconds=${1:-60}
case $seconds in
	''|*[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 64 ;;
esac
srcdir=$(cd "$(dirname "$0")/../.." && pwd)
builddir=${FUZZ_BUILDDIR:-$srcdir/_build-fuzz}
shared=${DKIM_SHARED_DIR:-$srcdir/../shared}
python=${PYTHON3:-/usr/bin/python3}
# Most seeds are smaller (the ARC suite's messages, the corpus's signed
# mail); without a bound libFuzzer takes the largest seed's size, 200 KB,
# and its inputs grow towards that, each costing ever more to check.
max_len=${FUZZ_MAX_LEN:-4096}
mkdir -p "$builddir"
builddir=$(cd "$builddir" && pwd)
artifacts=${FUZZ_ARTIFACTS:-$builddir/fuzz-artifacts}
mkdir -p "$artifacts"
artifacts=$(cd "$artifacts" && pwd)

if [ ! -f "$builddir/Makefile" ]; then
	echo "configuring $builddir"
	(cd "$builddir" && CC=clang "$srcdir/configure" --enable-fuzzers \
		--without-dovecot-plugins) > "$artifacts/configure.log" 2>&1 || {
		tail -n 20 "$artifacts/configure.log" >&2
		exit 1
	}
fi
echo "building the fuzz targets in $builddir"
if ! make -C "$builddir" --no-print-directory -j"$(nproc)" fuzz-targets > "$artifacts/build.log" 2>&1; then
	tail -n 20 "$artifacts/build.log" >&2
	echo "$0: build failed (was $builddir configured with --enable-fuzzers?)" >&2
	exit 1
fi
targets=$(tail -n 1 "$artifacts/build.log")

work=$(mktemp -d "${TMPDIR:-/tmp}/dkim-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
"$python" "$srcdir/tests/fuzz/make-seeds.py" "$shared/corpus" "$work/seeds"

passed=0
failed=0
for target in $targets; do
	name=$(basename "$target")
	seeds="$work/seeds/${name#fuzz-}"
	corpus="$work/corpus-$name"
	log="$artifacts/$name.log"
	# A target make-seeds.py does not know yet starts from nothing.
	mkdir -p "$corpus" "$seeds"
	echo "running $name for ${seconds}s"
	# New inputs go to $corpus, the seeds stay as they are.  The target
	# runs in $work so that nothing lands in the caller's directory.
	if (cd "$work" && "$builddir/$target" -max_total_time="$seconds" \
		-max_len="$max_len" -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=1 \
		-dict="$srcdir/tests/fuzz/dkim.dict" \
		-artifact_prefix="$artifacts/$name-" "$corpus" "$seeds") \
		> "$log" 2>&1; then
		passed=$((passed + 1))
		echo "ok: $name ($(grep -a -o 'Done [0-9]* runs' "$log" | tail -n 1))"
	else
		failed=$((failed + 1))
		echo "FAILED: $name (log: $log)"
		grep -a -A 30 -m 1 'ERROR\|invariant broken\|Test unit written' "$log" || tail -n 30 "$log"
		for input in "$artifacts/$name-"*; do
			[ -e "$input" ] && echo "input: $input"
		done
	fi
done
echo "fuzzers: $passed passed, $failed failed"
[ "$failed" -eq 0 ]

#!/bin/sh
# All the tests, on a fresh Debian 12 machine: installs what is missing,
# builds, runs `make check` (unit, corpus, interop, DNS, Dovecot 2.3), runs
# the unit and tool tests again under AddressSanitizer + UBSan, runs the
# Dovecot tests against Dovecot 2.4 in a Debian 13 root, builds the Debian
# packages for Debian 12 and 13 and tests them installed in a clean root of
# each, and runs each fuzzer for FUZZ_SECONDS (default 60).  Ends with
# "N passed, N failed".
set -u

top=$(cd "$(dirname "$0")" && pwd)
passed=0
failed=0
# The names of the failed checks, repeated just before the totals: CI keeps
# only part of the output, and the end is the part it keeps.
failures=

# Prints the failed checks of a stage and remembers their names: the lines
# of its output $1 that match the extended regex $2.  With a build directory
# $3 (automake's harness), also prints the end of each failed test's log.
show_failures() {
	names=$(grep -hE "$2" "$1" 2>/dev/null | awk '!seen[$0]++')
	[ -n "$names" ] || return 0
	failures="$failures$names
"
	echo
	echo "--- failed checks"
	echo "$names"
	[ $# -ge 3 ] || return 0
	grep -lE '^:global-test-result: (FAIL|ERROR|XPASS)' \
		$(find "$3" -name '*.trs') 2>/dev/null |
	while read -r trs; do
		echo "--- end of ${trs%.trs}.log"
		tail -n 40 "${trs%.trs}.log"
	done
}

# The lines automake's harness prints for a failed check.
automake_failed='^(FAIL|ERROR|XPASS):'

# Adds the counts of an automake test-suite.log to the totals.
count_suite() {
	log=$1
	if [ ! -f "$log" ]; then
		echo "test.sh: $log missing: counting the stage as failed" >&2
		failed=$((failed + 1))
		return
	fi
	p=$(sed -n 's/^# PASS: *//p' "$log" | head -n 1)
	s=$(sed -n 's/^# SKIP: *//p' "$log" | head -n 1)
	f=$(sed -n 's/^# FAIL: *//p' "$log" | head -n 1)
	x=$(sed -n 's/^# XPASS: *//p' "$log" | head -n 1)
	e=$(sed -n 's/^# ERROR: *//p' "$log" | head -n 1)
	passed=$((passed + ${p:-0} + ${s:-0}))
	failed=$((failed + ${f:-0} + ${x:-0} + ${e:-0}))
}

# Adds the "ok" and "not ok" lines of a TAP output to the totals; a
# non-zero exit status ($2) with no failed line counts as one failure.
count_tap() {
	out=$1
	ok=$(grep -c '^ok' "$out")
	not_ok=$(grep -c '^not ok' "$out")
	passed=$((passed + ok))
	failed=$((failed + not_ok))
	if [ "$2" -ne 0 ] && [ "$not_ok" -eq 0 ]; then
		echo "test.sh: $out: exit status $2 without a failed check" >&2
		failed=$((failed + 1))
	fi
}

stage() {
	echo
	echo "=== $*"
}

"$top/scripts/install-deps.sh" || exit 1

stage "build"
"$top/scripts/build.sh" || exit 1

stage "make check"
make -C "$top/_build" check VERBOSE=1 >"$top/_build/check.out" 2>&1
tail -n 20 "$top/_build/check.out"
count_suite "$top/_build/test-suite.log"
show_failures "$top/_build/check.out" "$automake_failed" "$top/_build"

stage "AddressSanitizer + UndefinedBehaviorSanitizer"
if BUILD_DIR="$top/_build-asan" "$top/scripts/build.sh" CC=clang \
	--enable-sanitizers --without-dovecot-plugins >/dev/null; then
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		make -C "$top/_build-asan" check VERBOSE=1 \
		>"$top/_build-asan/check.out" 2>&1
	tail -n 20 "$top/_build-asan/check.out"
	count_suite "$top/_build-asan/test-suite.log"
	show_failures "$top/_build-asan/check.out" "$automake_failed" \
		"$top/_build-asan"
else
	echo "sanitizer build failed"
	failed=$((failed + 1))
fi

stage "Dovecot 2.4 (Debian 13 root)"
# The plugins built against Dovecot 2.4 and every test that starts a Dovecot,
# in a fresh overlay of a cached Debian 13 root (built when missing).
mkdir -p "$top/_build-dovecot24"
"$top/tests/run-dovecot24.sh" >"$top/_build-dovecot24/run.out" 2>&1
tail -n 20 "$top/_build-dovecot24/run.out"
count_suite "$top/_build-dovecot24/build/test-suite.log"
show_failures "$top/_build-dovecot24/run.out" "$automake_failed" \
	"$top/_build-dovecot24/build"

stage "Debian packages (Debian 12 and 13)"
# Built (lintian clean of errors) and installed into a fresh overlay of a
# clean root of each release (cached, built when missing).
mkdir -p "$top/_build-deb"
status=0
"$top/tests/test-packages.sh" >"$top/_build-deb/run.out" 2>&1 || status=$?
tail -n 20 "$top/_build-deb/run.out"
count_tap "$top/_build-deb/run.out" "$status"
show_failures "$top/_build-deb/run.out" '^not ok'

stage "fuzzing (${FUZZ_SECONDS:-60} s per target)"
if BUILD_DIR="$top/_build-fuzz" "$top/scripts/build.sh" CC=clang \
	--enable-fuzzers --without-dovecot-plugins >/dev/null; then
	if "$top/tests/fuzz/run-fuzzers.sh" "${FUZZ_SECONDS:-60}"; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
	fi
else
	echo "fuzzer build failed"
	failed=$((failed + 1))
fi

if [ -n "$failures" ]; then
	echo
	echo "=== failed checks"
	printf '%s' "$failures"
fi
echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

#!/bin/sh
# Installs dependencies, builds, and runs every check and test of QUIC-S:
#   1. source checks (tools/checksrc, clang-format)
#   2. release build with -Werror: unit, fuzz-corpus and integration tests (CTest)
#   3. ASan + UBSan build: the same tests again, except those labelled long or large
#      (the 256 MiB storage and 8 GiB large-file runs, which the release build covers)
#   4. libFuzzer build (clang): each fuzz target for QS_FUZZ_SECONDS (default 30) on its seed corpus
# Usage: scripts/test.sh            (everything; this is what CI runs)
# Environment: QS_FUZZ_SECONDS, QS_JOBS (parallel build/test jobs, default: nproc).
set -eu
cd "$(dirname "$0")/.."
top=$(pwd)
jobs=${QS_JOBS:-$(nproc)}
fuzz_seconds=${QS_FUZZ_SECONDS:-30}

step() { printf '\n=== %s\n' "$*"; }

step "dependencies"
./scripts/install-deps.sh

step "source checks"
tools/checksrc
files=$(git ls-files '*.c' '*.h' 2>/dev/null || find src tests bench -name '*.[ch]')
# shellcheck disable=SC2086
clang-format --dry-run --Werror $files

step "release build (-Werror)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DQS_WERROR=ON >/dev/null
cmake --build build -j "$jobs"
(cd build && ctest --output-on-failure -j "$jobs")

step "sanitizer build (ASan + UBSan)"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DQS_WERROR=ON -DQS_SANITIZE=ON >/dev/null
cmake --build build-asan -j "$jobs"
(cd build-asan && QS_TEST_BYTES=256M ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	ctest --output-on-failure -j "$jobs" -LE 'long|large')

step "fuzzing (${fuzz_seconds}s per target)"
CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DQS_FUZZ=ON >/dev/null
cmake --build build-fuzz -j "$jobs"
for f in build-fuzz/tests/fuzz_*; do
	[ -x "$f" ] || continue
	name=$(basename "$f" | sed 's/^fuzz_//')
	work=$(mktemp -d)
	cp -r "tests/fuzz/corpus/$name/." "$work/"
	echo "fuzz $name"
	if ! "$f" -max_total_time="$fuzz_seconds" -print_final_stats=0 -close_fd_mask=3 \
		-artifact_prefix="$top/build-fuzz/crash-$name-" "$work" >"build-fuzz/fuzz-$name.log" 2>&1; then
		tail -n 40 "build-fuzz/fuzz-$name.log"
		echo "fuzz $name: FAILED (artifact in build-fuzz/)" >&2
		rm -rf "$work"
		exit 1
	fi
	grep -E '^(Done|#[0-9]+ *DONE)' "build-fuzz/fuzz-$name.log" | tail -n 1 || true
	rm -rf "$work"
done

step "all checks passed"

#!/usr/bin/env bash
# make check: every test, in order of cost. Each suite is run and counted; the last line
# is "check: N passed, M failed" and the exit status is non-zero if any suite failed.
#   1. release build (-Werror) + unit tests and fuzz-corpus replays (ctest), and
#      `clampd rules test` over rules/ (every rule's examples)
#   2. end-to-end tests (node --test, the official SDK client, real MCP servers)
#   3. the official MCP conformance suite, direct and through clampd
#   4. the unit, end-to-end and conformance suites again under ASan+UBSan
#   5. each libFuzzer target for a short run (clang)
set -uo pipefail
cd "$(dirname "$0")/.."

JOBS=${JOBS:-2}
# Compiled rule databases are cached between clampd starts (a cold compile takes seconds);
# keep that cache inside the checkout so the suite does not depend on $HOME.
export XDG_CACHE_HOME="$PWD/build/cache"
mkdir -p "$XDG_CACHE_HOME"
FUZZ_SECONDS=${FUZZ_SECONDS:-20}
passed=0
failed=0
failures=()

suite() {
    local name=$1
    shift
    echo "==== $name" >&2
    local t0=$SECONDS
    if "$@"; then
        passed=$((passed + 1))
        echo "==== $name: ok ($((SECONDS - t0)) s)" >&2
    else
        failed=$((failed + 1))
        failures+=("$name")
        echo "==== $name: FAILED ($((SECONDS - t0)) s)" >&2
    fi
}

build() { # dir, cmake args...
    local dir=$1
    shift
    cmake -S . -B "$dir" "$@" >/dev/null && cmake --build "$dir" -j"$JOBS" >/dev/null
}

suite "build" build build -DCMAKE_BUILD_TYPE=RelWithDebInfo
suite "unit" bash -c 'cd build && ctest --output-on-failure'
suite "rules" build/clampd rules test --rules rules
suite "e2e" env CLAMPD_BIN="$PWD/build/clampd" npm --prefix tests/e2e test --silent
if [ -x tests/conformance/run.sh ]; then
    suite "conformance" env CLAMPD_BIN="$PWD/build/clampd" tests/conformance/run.sh
fi
suite "build-asan" build build-asan -DCLAMPD_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
suite "unit-asan" bash -c 'cd build-asan && ctest --output-on-failure'
suite "e2e-asan" env CLAMPD_BIN="$PWD/build-asan/clampd" npm --prefix tests/e2e test --silent
if [ -x tests/conformance/run.sh ]; then
    suite "conformance-asan" env CLAMPD_BIN="$PWD/build-asan/clampd" tests/conformance/run.sh
fi
unset ASAN_OPTIONS UBSAN_OPTIONS
suite "fuzz" bash -c "CC=clang cmake -S . -B build-fuzz -DCLAMPD_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null && cmake --build build-fuzz -j$JOBS >/dev/null && scripts/fuzz.sh build-fuzz $FUZZ_SECONDS"

((failed)) && echo "failed suites: ${failures[*]}" >&2
echo "check: $passed passed, $failed failed"
((failed == 0))

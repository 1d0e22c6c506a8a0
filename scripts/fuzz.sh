#!/usr/bin/env bash
# Runs every libFuzzer target in BUILD_DIR for SECONDS each, starting from its seed corpus
# (tests/fuzz/corpus/<target>, read-only: new inputs go to a scratch dir) and dictionary
# (tests/fuzz/<target>.dict when present). Fails if any target finds a crash.
set -uo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-fuzz}
seconds=${2:-20}
rc=0
for bin in "$build"/fuzz_*; do
    [ -x "$bin" ] || continue
    case "$bin" in *_replay) continue ;; esac
    name=$(basename "$bin")
    work=$(mktemp -d)
    dict=()
    [ -f "tests/fuzz/$name.dict" ] && dict=(-dict="tests/fuzz/$name.dict")
    echo "fuzz: $name for ${seconds}s" >&2
    if ! "$bin" -max_total_time="$seconds" -print_final_stats=0 -artifact_prefix="$work/" \
        "${dict[@]}" "$work" "tests/fuzz/corpus/$name" >"$work/log" 2>&1; then
        echo "fuzz: $name FAILED; last lines:" >&2
        tail -30 "$work/log" >&2
        ls "$work"/crash-* "$work"/leak-* "$work"/timeout-* 2>/dev/null >&2
        rc=1
    else
        grep -E '^Done|#[0-9]+.*DONE' "$work/log" | tail -1 >&2
    fi
    rm -rf "$work"
done
exit $rc

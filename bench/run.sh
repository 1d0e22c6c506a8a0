#!/bin/sh
# run.sh: build the latency bench into bench/out/ and run it.
#
#   bench/run.sh [latency options...]
#
# Environment: CLAMPD_BIN (default: ../build/clampd relative to bench/), CC (default cc),
# BENCH_ROUNDS, BENCH_CALLS, BENCH_WARMUP, BENCH_LARGE_CALLS, BENCH_SIZES (e.g. 64K,1M),
# BENCH_REQUIRE_CLAMPD=1 (fail when clampd is not built). Options given on the command line
# come after these and win. A short CI run:
#   BENCH_ROUNDS=3 BENCH_CALLS=100 BENCH_WARMUP=20 BENCH_LARGE_CALLS=3 bench/run.sh
#
# Exits non-zero only when something failed to build or run; timings never fail the run.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
out="$here/out"
cc=${CC:-cc}
clampd=${CLAMPD_BIN:-$here/../build/clampd}
case $clampd in /*) ;; *) clampd="$(pwd)/$clampd" ;; esac

# The project's warnings and hardening flags (shared/STYLE.md), at -O2.
cflags="-std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Wshadow -Wformat=2 -Wvla -Werror
        -D_FORTIFY_SOURCE=2 -fstack-protector-strong -fPIE"
ldflags="-pie -Wl,-z,relro,-z,now"

mkdir -p "$out"
for prog in echo_server relay latency; do
    # shellcheck disable=SC2086 # word splitting of the flag lists is intended
    $cc $cflags -o "$out/$prog" "$here/$prog.c" $ldflags
done

set --  ${BENCH_ROUNDS:+-r "$BENCH_ROUNDS"} ${BENCH_CALLS:+-n "$BENCH_CALLS"} \
        ${BENCH_WARMUP:+-w "$BENCH_WARMUP"} ${BENCH_LARGE_CALLS:+-l "$BENCH_LARGE_CALLS"} \
        ${BENCH_SIZES:+-s "$BENCH_SIZES"} "$@"
[ "${BENCH_REQUIRE_CLAMPD:-0}" = 1 ] && set -- -R "$@"
exec "$out/latency" "$@" "$out/echo_server" "$out/relay" "$clampd"

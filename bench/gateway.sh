#!/bin/sh
# gateway.sh: throughput and latency of `clampd gateway` under Debian's wrk, against the
# gateway's own GET /health (the HTTP floor) on the same process, side by side.
#
#   bench/gateway.sh
#
# Environment: CLAMPD_BIN (default: ../build/clampd relative to bench/), BENCH_GW_SECONDS
# (5: per run), BENCH_GW_CONNS ("1 16 256"), BENCH_GW_THREADS (2: wrk's threads and the
# gateway's --threads), XDG_CACHE_HOME (default: cache/ next to CLAMPD_BIN, as `make eval`,
# so that the rules are compiled once), BENCH_REQUIRE_GATEWAY=1 (fail when clampd or wrk is
# missing). A short run:
#   BENCH_GW_SECONDS=1 bench/gateway.sh
#
# Exits non-zero when the gateway does not start or any answer was not what was asked
# (a /v1/proxy answer that is not a 200 allowed, a /health that is not a 200, a socket
# error): a bench that measured errors measured the wrong thing. Timings never fail it.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
clampd=${CLAMPD_BIN:-$here/../build/clampd}
case $clampd in /*) ;; *) clampd="$(pwd)/$clampd" ;; esac
secs=${BENCH_GW_SECONDS:-5}
conns=${BENCH_GW_CONNS:-1 16 256}
threads=${BENCH_GW_THREADS:-2}
require=${BENCH_REQUIRE_GATEWAY:-0}

skip() {
    echo "gateway bench: $1: skipped"
    [ "$require" = 1 ] && exit 1
    exit 0
}
[ -x "$clampd" ] || skip "$clampd not built"
command -v wrk >/dev/null 2>&1 || skip "wrk not installed (apt-get install wrk)"

: "${XDG_CACHE_HOME:=$(dirname "$clampd")/cache}"
export XDG_CACHE_HOME
mkdir -p "$XDG_CACHE_HOME"

tmp=$(mktemp -d /tmp/clampd-bench-gw-XXXXXX)
gw=""
cleanup() {
    if [ -n "$gw" ]; then
        kill "$gw" 2>/dev/null || true
        wait "$gw" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# One agent with fs:read and no rate limit, read_text_file mapped to a category needing it.
key=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
hash=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
key_sha=$(printf %s "$key" | sha256sum | cut -d' ' -f1)
cat >"$tmp/policy.yaml" <<EOF
agents:
  - id: bench
    api_key_sha256: $key_sha
    scopes: [fs:read]
categories:
  - name: filesystem-read
    scopes: [fs:read]
tools:
  - server: "*"
    tools: [read_text_file]
    category: filesystem-read
EOF
mkdir -m 700 "$tmp/state"

: >"$tmp/gw.log"
# --max-connections above the largest run, so that no 503 is measured as a decision.
"$clampd" gateway --listen 127.0.0.1:0 --policy "$tmp/policy.yaml" --state-dir "$tmp/state" \
    --threads "$threads" --max-connections 1024 2>"$tmp/gw.log" &
gw=$!
url=""
i=0
while [ $i -lt 1200 ]; do # 120 s: a cold rule compile takes about 30 s
    url=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$tmp/gw.log" || true)
    [ -n "$url" ] && break
    kill -0 "$gw" 2>/dev/null || break
    sleep 0.1
    i=$((i + 1))
done
if [ -z "$url" ]; then
    echo "gateway bench: the gateway did not start:" >&2
    cat "$tmp/gw.log" >&2
    exit 1
fi

export BENCH_GW_KEY="$key" BENCH_GW_HASH="$hash"
# the first call pins the hash; it must be a 200 allowed, or nothing after it means anything
first=$(curl -s -o "$tmp/first.json" -w '%{http_code}' -X POST -H "X-AG-Key: $key" \
    -H 'Content-Type: application/json' --data-binary \
    "{\"tool\":\"read_text_file\",\"params\":{\"path\":\"/srv/docs/notes/todo.md\"},\"tool_descriptor_hash\":\"$hash\",\"session_id\":\"bench\",\"server\":\"secure-filesystem-server\"}" \
    "$url/v1/proxy" || true)
if [ "$first" != 200 ] || ! grep -q '"allowed": *true' "$tmp/first.json"; then
    echo "gateway bench: the first /v1/proxy call was not allowed ($first):" >&2
    cat "$tmp/first.json" >&2
    exit 1
fi

# run MODE CONNS: one wrk run; prints its RESULT line's fields, or fails
failed=0
run() {
    t=$threads
    [ "$2" -lt "$t" ] && t=$2 # wrk wants a connection per thread
    out=$(BENCH_GW_MODE=$1 wrk -t"$t" -c"$2" -d"${secs}s" --latency \
        -s "$here/gateway.lua" "$url" 2>"$tmp/wrk.err") || {
        echo "gateway bench: wrk failed:" >&2
        cat "$tmp/wrk.err" >&2
        exit 1
    }
    echo "$out" | sed -n 's/^RESULT //p'
}

# row LABEL CONNS HEALTH_REQS_PER_S FIELDS...: one line of the table; fails the bench (failed=1)
# unless every answer was the expected one. FIELDS: requests duration_us p50 p90 p99 good bad
# socket_errors (gateway.lua's RESULT line).
row() {
    r_label=$1 r_conns=$2 r_base=$3
    shift 3
    echo "$*" | awk -v l="$r_label" -v c="$r_conns" -v hr="$r_base" '{
        r = $1 / ($2 / 1e6)
        printf "%-16s %6d %10.0f %9.2f %9.2f %9.2f %8d", l, c, r, $3/1e3, $4/1e3, $5/1e3, $7 + $8
        if (hr > 0) printf " %9.2fx", r / hr
        printf "\n"
    }'
    if [ "$7" != 0 ] || [ "$8" != 0 ] || [ "$6" = 0 ]; then
        failed=1
    fi
}

ncpu=$(getconf _NPROCESSORS_ONLN)
echo
echo "clampd gateway over HTTP: wrk -t$threads -cN -d${secs}s against --threads $threads,"
echo "$ncpu CPUs shared by wrk and the gateway. /v1/proxy allow = read_text_file allowed (auth,"
echo "pin claim, rules, policy, Ed25519 scope token); deny = the same with a path traversal"
echo "(denied by a rule, no token); /health = the HTTP floor, the baseline of the ratio."
echo "targets: >= 20k decisions/s on 2 cores, p99 < 2 ms"
echo
printf '%-16s %6s %10s %9s %9s %9s %8s %10s\n' route conns "req/s" "p50 ms" "p90 ms" "p99 ms" \
    "not ok" "/health"
for c in $conns; do
    h=$(run health "$c")
    # shellcheck disable=SC2086 # the fields
    hr=$(echo $h | awk '{ printf "%.3f", $1 / ($2 / 1e6) }')
    # shellcheck disable=SC2086
    row "/health" "$c" 0 $h
    a=$(run proxy "$c")
    # shellcheck disable=SC2086
    row "/v1/proxy allow" "$c" "$hr" $a
    d=$(run deny "$c")
    # shellcheck disable=SC2086
    row "/v1/proxy deny" "$c" "$hr" $d
done

# the gateway's own view of where a request's time goes (its stage histograms)
curl -s -H "X-AG-Key: $key" "$url/metrics" >"$tmp/metrics" || true
awk '/^clampd_gateway_stage_seconds_(sum|count)\{/ {
        match($0, /stage="[^"]*"/); st = substr($0, RSTART + 7, RLENGTH - 8)
        if ($0 ~ /_sum/) sum[st] = $2; else cnt[st] = $2
    }
    END {
        line = ""
        for (s in cnt) if (cnt[s] > 0) line = line sprintf("%s%s %.1f us", line == "" ? "" : ", ", s, 1e6 * sum[s] / cnt[s])
        if (line != "") print "\ngateway stage means over the whole run, allow and deny (its /metrics):\n  " line
    }' "$tmp/metrics"

if [ "$failed" != 0 ]; then
    echo "gateway bench: some answers were not 200 allowed (column 'not ok'): see above" >&2
    exit 1
fi

#!/usr/bin/env bash
# Runs the official MCP conformance server suite (@modelcontextprotocol/conformance,
# every server scenario, `--suite all`) against four configurations:
#   1. fixture-server.mjs directly          2. fixture-server.mjs through clampd
#   3. server-everything directly           4. server-everything through clampd
# Each stdio command is exposed over Streamable HTTP by supergateway (stateful:
# one child per MCP session, i.e. per scenario) behind host-guard.mjs (Host/Origin
# validation), on its own loopback ports, with its own temporary --state-dir.
#
# Prints a per-scenario table and a closing line `conformance: N passed, M failed`,
# where M counts scenarios that pass directly but fail through clampd, plus fixture
# scenarios that fail directly (a fixture bug). Exits non-zero if M > 0.
#
# Environment:
#   CLAMPD_BIN              clampd binary (default: ../../build/clampd from this script)
#   CLAMPD_FLAGS            flags placed after `clampd mcp` (default: -v; clampd's stderr
#                           lands in results/<config>/supergateway.log as "Child stderr")
#   CONFORMANCE_OUT         where results/logs go (default: ./results, wiped each run)
#   CONFORMANCE_DIRECT_ONLY=1  only run the two direct configurations
#   CONFORMANCE_SCENARIO    run one scenario instead of the whole suite
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CLAMPD_BIN=${CLAMPD_BIN:-$HERE/../../build/clampd}
CLAMPD_FLAGS=${CLAMPD_FLAGS--v}
OUT=${CONFORMANCE_OUT:-$HERE/results}
DIRECT_ONLY=${CONFORMANCE_DIRECT_ONLY:-0}
SUITE_TIMEOUT=${CONFORMANCE_SUITE_TIMEOUT:-150}   # seconds per configuration

CALLER_PWD=$PWD
cd "$HERE" || exit 2

if [ ! -d node_modules ]; then
  echo "conformance: installing npm dependencies (npm ci)" >&2
  npm ci --no-audit --no-fund >&2 || { echo "conformance: npm ci failed" >&2; exit 2; }
fi

NODE=$HERE/node_modules/node/bin/node
if ! "$NODE" -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 22 ? 0 : 1)' 2>/dev/null; then
  echo "conformance: $NODE is not Node >= 22 (the node@22 devDependency did not install)" >&2
  exit 2
fi
CONFORMANCE=$HERE/node_modules/@modelcontextprotocol/conformance/dist/index.js
SUPERGATEWAY=$HERE/node_modules/supergateway/dist/index.js
EVERYTHING=$HERE/node_modules/@modelcontextprotocol/server-everything/dist/index.js

if [ "$DIRECT_ONLY" != 1 ]; then
  case "$CLAMPD_BIN" in /*) ;; *) CLAMPD_BIN=$CALLER_PWD/$CLAMPD_BIN ;; esac  # relative to the caller's directory
  if [ -f "$CLAMPD_BIN" ]; then
    CLAMPD_BIN=$(cd "$(dirname "$CLAMPD_BIN")" && pwd)/$(basename "$CLAMPD_BIN")
  fi
  if [ ! -x "$CLAMPD_BIN" ]; then
    echo "conformance: clampd binary not found or not executable: $CLAMPD_BIN" >&2
    echo "conformance: build it, set CLAMPD_BIN, or set CONFORMANCE_DIRECT_ONLY=1" >&2
    exit 2
  fi
fi

rm -rf "$OUT"
mkdir -p "$OUT"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/clampd-conformance.XXXXXX")

# ---- process bookkeeping: stop everything we started, children included -------
STARTED=()
descendants() {  # all descendants of pid $1 (supergateway puts children in their own process groups)
  local c
  for c in $(ps -o pid= --ppid "$1" 2>/dev/null); do
    echo "$c"
    descendants "$c"
  done
}
stop_pids() {
  local all=() p
  for p in "$@"; do
    all+=("$p")
    while read -r d; do [ -n "$d" ] && all+=("$d"); done < <(descendants "$p")
  done
  [ ${#all[@]} -eq 0 ] && return 0
  kill -TERM "${all[@]}" 2>/dev/null
  for _ in $(seq 1 40); do
    local alive=0
    for p in "${all[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.2
  done
  kill -KILL "${all[@]}" 2>/dev/null
  for p in "$@"; do wait "$p" 2>/dev/null; done
  return 0
}
cleanup() {
  stop_pids "${STARTED[@]}"
  STARTED=()
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  "$NODE" -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}
wait_port() {  # wait until 127.0.0.1:$1 accepts connections
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}
q() { printf '%q' "$1"; }

# run_config NAME STDIO_COMMAND_LINE (a /bin/sh command line, as supergateway runs it)
run_config() {
  local name=$1 cmd=$2 gport sport
  local dir=$OUT/$name
  mkdir -p "$dir"
  gport=$(free_port); sport=$(free_port)
  while [ "$sport" = "$gport" ]; do sport=$(free_port); done
  echo "$cmd" > "$dir/command.txt"
  "$NODE" "$SUPERGATEWAY" --stdio "$cmd" --outputTransport streamableHttp --stateful \
      --sessionTimeout 15000 --port "$sport" --logLevel info \
      </dev/null >"$dir/supergateway.log" 2>&1 &
  local sg=$!
  "$NODE" "$HERE/host-guard.mjs" "$gport" "$sport" </dev/null >"$dir/host-guard.log" 2>&1 &
  local hg=$!
  STARTED+=("$sg" "$hg")
  if ! wait_port "$sport" || ! wait_port "$gport"; then
    echo "conformance: $name: bridge did not come up (see $dir/supergateway.log)" >&2
  else
    local sel=(--suite all)
    [ -n "${CONFORMANCE_SCENARIO:-}" ] && sel=(--scenario "$CONFORMANCE_SCENARIO")
    echo "conformance: running $name on http://127.0.0.1:$gport/mcp" >&2
    timeout -k 5 "$SUITE_TIMEOUT" "$NODE" "$CONFORMANCE" server --url "http://127.0.0.1:$gport/mcp" \
        "${sel[@]}" -o "$dir/checks" >"$dir/conformance.log" 2>&1
    local rc=$?
    [ $rc = 124 ] && echo "conformance: $name: suite timed out after ${SUITE_TIMEOUT}s" >&2
  fi
  stop_pids "$sg" "$hg"
  STARTED=()
}

FIXTURE_CMD="$(q "$NODE") $(q "$HERE/fixture-server.mjs")"
EVERYTHING_CMD="$(q "$NODE") $(q "$EVERYTHING") stdio"
via_clampd() {  # $1 config name, $2 downstream command line
  local sd=$TMP/state-$1
  mkdir -p "$sd"
  # shellcheck disable=SC2086  # CLAMPD_FLAGS is a list of flags
  echo "$(q "$CLAMPD_BIN") mcp ${CLAMPD_FLAGS} --downstream $(q "$2") --state-dir $(q "$sd")"
}

run_config fixture-direct "$FIXTURE_CMD"
[ "$DIRECT_ONLY" != 1 ] && run_config fixture-clampd "$(via_clampd fixture-clampd "$FIXTURE_CMD")"
run_config everything-direct "$EVERYTHING_CMD"
[ "$DIRECT_ONLY" != 1 ] && run_config everything-clampd "$(via_clampd everything-clampd "$EVERYTHING_CMD")"

"$NODE" "$CONFORMANCE" list --server > "$OUT/scenarios.txt" 2>/dev/null
echo "conformance: per-scenario checks and logs in $OUT" >&2
"$NODE" "$HERE/summarize.mjs" "$OUT"

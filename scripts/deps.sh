#!/usr/bin/env bash
# Installs what clampd needs to build and test, on Debian 12: Debian packages through
# apt-get (only those missing), then the npm packages of the test suites (from their
# lock files). Safe to run again: it does nothing when everything is there.
# Usage: scripts/deps.sh [SUITE_DIR...]   (default: tests/e2e tests/conformance)
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(build-essential cmake pkg-config clang libclang-rt-14-dev
      libuv1-dev libjansson-dev libsodium-dev libsqlite3-dev libcmocka-dev
      libhyperscan-dev libyaml-dev libunistring-dev libcurl4-openssl-dev libmicrohttpd-dev
      libhiredis-dev sqlite3 procps redis-server wrk)

missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js (for the test suites and the demo): any installed node and npm will do (some
# machines carry a newer nodejs that bundles npm); otherwise Debian's packages.
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if ((${#missing[@]})); then
    echo "deps: installing ${missing[*]}" >&2
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
fi

# npm test dependencies, exactly as locked: of the suites named as arguments, or of all.
# A suite is reinstalled when its lock file is newer than its node_modules.
dirs=("$@")
((${#dirs[@]})) || dirs=(tests/e2e tests/conformance)
for dir in "${dirs[@]}"; do
    [ -f "$dir/package-lock.json" ] || continue
    if [ ! -d "$dir/node_modules" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules" ]; then
        echo "deps: npm ci in $dir" >&2
        (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
        touch "$dir/node_modules"
    fi
done

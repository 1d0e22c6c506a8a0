#!/usr/bin/env bash
# The README's first command: installs dependencies, builds build/clampd, and runs a real MCP
# client session through clampd (see tests/e2e/demo.mjs).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh tests/e2e   # the demo's client and servers live there
make --no-print-directory all >/dev/null
node tests/e2e/demo.mjs "$PWD/build/clampd"

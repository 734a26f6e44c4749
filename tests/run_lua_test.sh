#!/usr/bin/env bash
# Runs a Lua test script with the whole snabb API: `snabb SCRIPT [ARGS]`.
set -euo pipefail
exec "$@"

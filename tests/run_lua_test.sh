#!/usr/bin/env bash
# Runs a Lua test script with the whole snabb API: `snabb SCRIPT`.
set -euo pipefail
exec "$1" "$2"

#!/usr/bin/env bash
# Runs `snabb selftest MODULE...`; used by the snabb_selftest rule (vm/lua_modules.bzl).
set -euo pipefail
snabb=$1; shift
exec "$snabb" selftest "$@"

#!/usr/bin/env bash
# Every C entry point that can fail, made to fail from Lua (c_errors_check.lua): each error reaches
# Lua as one readable line (runtime/error.h), never a crash or "C++ exception". DPDK's EAL is set
# up once per process, so its two cases run in processes of their own.
set -euo pipefail
snabb=$1
here=$(dirname "$0")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for case in core dpdk_init dpdk_port; do
  if ! "$snabb" "$here/c_errors_check.lua" "$case" >"$tmp/$case.txt" 2>&1; then
    grep -v '^EAL: \|^  \|^$' "$tmp/$case.txt" | head -20
    echo "FAIL: $case"
    exit 1
  fi
  grep '^ok: \|readable errors$' "$tmp/$case.txt"
done
echo "PASS"

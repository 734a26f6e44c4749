#!/usr/bin/env bash
# End-to-end: `snabb run` on configs with mistakes (one message naming file:line, non-zero exit),
# the command line's exit codes, scripts run with `snabb FILE.lua`.
set -uo pipefail
snabb=$1
configs=$(dirname "$0")/configs
failures=0

# expect STATUS PATTERN COMMAND...: the command exits STATUS and its stderr matches PATTERN (ERE).
expect() {
  local status=$1 pattern=$2; shift 2
  local err rc
  err=$("$@" 2>&1 >/dev/null); rc=$?
  if [ "$rc" -ne "$status" ] || ! grep -qE -- "$pattern" <<<"$err"; then
    echo "FAIL: $* -> exit $rc (want $status), stderr:"; echo "$err" | sed 's/^/    /'
    echo "    wanted stderr matching: $pattern"
    failures=$((failures + 1))
  else
    echo "ok: $*"
  fi
}

expect 1 "unknown_class.lua:3: .*app 'source'.*unknown app class" "$snabb" run "$configs/unknown_class.lua"
expect 1 "undefined_app.lua:4: link 'source.output -> nosuch.input' names app 'nosuch'" \
  "$snabb" run "$configs/undefined_app.lua"
expect 1 "undefined_port.lua:5: .*app 'source' has no input port 'input'" \
  "$snabb" run "$configs/undefined_port.lua"
expect 1 "duplicate_link.lua:6: .*duplicate link 'source.output -> sink.input' \(first at .*duplicate_link.lua:5\)" \
  "$snabb" run "$configs/duplicate_link.lua"
expect 1 "syntax_error.lua:2: .*expected" "$snabb" run "$configs/syntax_error.lua"
expect 1 "returns_nothing.lua: returned nothing, not a config" "$snabb" run "$configs/returns_nothing.lua"
expect 1 "returns_number.lua: returned number, not a config" "$snabb" run "$configs/returns_number.lua"
expect 1 "cannot open .*no_such_config.lua" "$snabb" run "$configs/no_such_config.lua"
expect 2 "unknown command 'frobnicate'.*" "$snabb" frobnicate
expect 2 "Usage: snabb COMMAND" "$snabb"
expect 2 "snabb run: .*missing argument 'config'" "$snabb" run
expect 2 "malformed argument|invalid" "$snabb" run "$configs/script.lua" --duration soon
expect 2 "snabb basic1: malformed argument 'lots'" "$snabb" basic1 lots
expect 1 "script_error.lua:2: attempt to index local 'x'" "$snabb" "$configs/script_error.lua"
expect 1 "bad_capacity.lua:2: packet.set_max_packets: 0 is not a capacity from 1 to 16777216" \
  "$snabb" "$configs/bad_capacity.lua"
expect 1 "pool_no_memory.lua:11: packet pool: out of memory \(mmap failed\)" \
  "$snabb" "$configs/pool_no_memory.lua"
expect 1 "^snabb: packet pool exhausted: all 4000 packets \(41 MiB\) are in use, so an app is probably leaking packets .*; the cap was set by packet.set_max_packets \(the last allocation was by app 'hoarder'\)$" \
  "$snabb" "$configs/pool_exhaustion.lua"

# Only stdout: each message above is the only line on stderr for config mistakes.
lines=$("$snabb" run "$configs/duplicate_link.lua" 2>&1 >/dev/null | wc -l)
[ "$lines" -eq 1 ] || { echo "FAIL: config error took $lines lines"; failures=$((failures + 1)); }

out=$("$snabb" "$configs/script.lua" a b) || { echo "FAIL: script exited $?"; failures=$((failures + 1)); }
grep -qx "script ok	a	b" <<<"$out" || { echo "FAIL: script output: $out"; failures=$((failures + 1)); }
"$snabb" version | grep -qE "^snabb [0-9.]+ \(LuaJIT 2\.1" || { echo "FAIL: version"; failures=$((failures + 1)); }

echo "cli_test: $failures failed"
[ "$failures" -eq 0 ]

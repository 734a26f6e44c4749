#!/usr/bin/env bash
# End-to-end: the cross-references of `snabb inspect`'s trace view (IR <-> machine code <->
# bytecode and source, from the maps mcode-map.patch records) on the run directory of a real run
# (snabb bench of examples/forward.lua on a capture, --rundir). First the maps themselves, for
# every trace of the run (observe.auditlog_reader.check_cross_references: ranges within the
# machine code and apart, each guard's range holding the jump to its own exit as Capstone decodes
# it, each exit jump in a guard of its snapshot or in code of no instruction, bytecode indices at
# lines of their prototypes); then the page, driven in headless Chromium by
# tests/inspect_xref_check.js against `snabb auditlog --json` and `--trace N`.
. "$(dirname "$0")/prologue.sh"
. "$(dirname "$0")/browser.sh"
. "$(dirname "$0")/inspect.sh"

run=$tmp/run
"$snabb" bench "$here/../examples/forward.lua" --pcap "$data/v4.pcap" --duration 1 --rundir "$run" >/dev/null
[ -s "$run/audit.log" ] || fail "the run left no auditlog"

cat >"$tmp/check_maps.lua" <<'LUA'
local reader = require("observe.auditlog_reader")
local d = reader.decode(arg[1])
local traces, guards = 0, 0
for _, t in ipairs(d.traces) do
   if t.ir_mcode and t.ir_bytecode and t.snap_bytecode then traces = traces + 1 end
   guards = guards + reader.check_cross_references(d, t)
end
assert(traces == #d.traces and traces > 0, ("%d of %d traces have the maps"):format(traces, #d.traces))
print(("inspect_xref_test: the maps of %d traces hold, %d guards checked"):format(traces, guards))
LUA
"$snabb" "$tmp/check_maps.lua" "$run/audit.log" || fail "the auditlog's maps"

start_inspect "$run"
node "$here/inspect_xref_check.js" "$url" "$run" "$snabb"
stop_inspect
echo "inspect_xref_test: OK"

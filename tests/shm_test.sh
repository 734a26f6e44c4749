#!/usr/bin/env bash
# shm_test: core.shm's objects are files another process maps (runtime/shm.lua). A Snabb-style
# script (shm_check.lua writer) makes a counter and an app frame (a counter and a histogram) in its
# run directory; a second snabb process reads them by the writer's PID, and od(1) reads the counter
# file as Snabb documents it (8 bytes, native order). Values appear in the files when committed,
# not before; main.exit commits and exits with its status; the files go with the run directory.
. "$(dirname "$0")/prologue.sh"

coproc writer { "$snabb" "$here/shm_check.lua" writer 2>&1; }
at_exit "kill ${writer_PID} 2>/dev/null"
read -r pid path <&"${writer[0]}" || fail "the writer printed nothing"
[[ -f $path ]] || fail "no counter file at $path"
# (PID-2, PID-3...: when a process of another PID namespace, another test's sandbox, has our PID.)
[[ $path =~ /$pid(-[0-9]+)?/test/packets\.counter$ ]] ||
  fail "counter file $path is not in run directory $pid"
# The reader names the run directory as Snabb code does, /PID/...: by the writer's directory's name
# (PID, or PID-N when another sandbox's process had the PID first).
rd=$(basename "$(dirname "$(dirname "$path")")")
[[ $(stat -c %a "$path") == 600 ]] || fail "counter file $path has mode $(stat -c %a "$path"), not 600"
[[ $(od -A none -t u8 "$path" | tr -d ' ') == 42 ]] || fail "od reads $(od -A none -t u8 "$path")"

out=$("$snabb" "$here/shm_check.lua" reader "$rd")
[[ $out == "packets 42ULL rx 7ULL latency 2 true true" ]] || fail "reader: $out"

echo more >&"${writer[1]}"
read -r line <&"${writer[0]}"
[[ $line == committed ]] || fail "writer: $line"
out=$("$snabb" "$here/shm_check.lua" reader "$rd")
[[ $out == "packets 50ULL rx 8ULL latency 2 true true" ]] || fail "after a commit, reader: $out"
[[ $(od -A none -t u8 "$path" | tr -d ' ') == 50 ]] || fail "od reads $(od -A none -t u8 "$path")"

echo exit >&"${writer[1]}"
wpid=$writer_PID
status=0
wait "$wpid" || status=$?
[[ $status == 3 ]] || fail "main.exit(3) exited with $status"
[[ ! -e $path ]] || fail "$path is left after the writer exited"
# Under snabb run, an app's counters are files of its run directory, beside apps.json, with their
# final values (committed when the run ends) in a --rundir kept.
cat >"$tmp/counting.lua" <<'LUA'
local counter = require("core.counter")
local Counting = {}
function Counting:new ()
   return setmetatable({polls = counter.create("apps/counting/polls.counter")}, {__index = Counting})
end
function Counting:pull () counter.add(self.polls) end
local c = config.new()
config.app(c, "counting", Counting)
return c
LUA
"$snabb" run "$tmp/counting.lua" --duration 0.2 --rundir "$tmp/rundir" >/dev/null
[[ -f $tmp/rundir/apps.json ]] || fail "no apps.json in the --rundir"
polls=$(od -A none -t u8 "$tmp/rundir/apps/counting/polls.counter" | tr -d ' ')
[[ $polls -gt 0 ]] || fail "apps/counting/polls.counter holds $polls after a run"
# --rundir NAME, a directory of the current one (no slash): names resolve there too.
(cd "$tmp" && "$snabb" run counting.lua --duration 0.2 --rundir here >/dev/null) ||
  fail "snabb run --rundir here (no slash) failed"
[[ -f $tmp/here/apps/counting/polls.counter ]] || fail "no counter in a --rundir given without a slash"

echo "shm_test: ok"

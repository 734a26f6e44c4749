#!/usr/bin/env bash
# End-to-end: snabb inspect's side-trace trees (#/tree) and aborts and blacklists view (#/aborts)
# on real runs, driven in headless Chromium by tests/inspect_views_check.js, which checks them
# against `snabb auditlog FILE --all --json` of each run:
#   - tests/configs/closure_app.lua (a closure per packet: its loop aborts at every attempt, and
#     LuaJIT blacklists it): the trees' nodes and edges are the traces' parent/exit relations,
#     arrow keys and Enter reach a trace; the aborts' groups and counts are the auditlog's, the
#     blacklisted position is the config's loop;
#   - examples/forward.lua: its code aborts nowhere for good (nothing of forward.lua blacklisted);
#   - tests/configs/many_traces.lua: about a thousand traces (LuaJIT keeps at most 1,000), the trees drawn in time.
. "$(dirname "$0")/prologue.sh"
. "$(dirname "$0")/browser.sh"

# A run, its directory kept: NAME CONFIG ARGS...
run() {
  local name=$1 config=$2
  shift 2
  "$snabb" "$@" "$config" --rundir "$tmp/$name" >"$tmp/$name.out" 2>&1 ||
    fail "snabb $* $config: $(tail -3 "$tmp/$name.out")"
  [ -s "$tmp/$name/audit.log" ] || fail "$name: no auditlog"
  "$snabb" auditlog "$tmp/$name/audit.log" --all --json >"$tmp/$name.json" ||
    fail "snabb auditlog $tmp/$name/audit.log --json failed"
}
# LuaJIT blacklists the closure app's loop after about ten aborts there, its hot count doubled at
# each (~75,000 iterations): 400,000 packets are plenty.
run closure "$configs/closure_app.lua" bench --pcap "$data/v4.pcap" --packets 400000
run forward "$here/../examples/forward.lua" bench --pcap "$data/v4.pcap" --packets 200000
run many "$configs/many_traces.lua" run --duration 0.3

# snabb inspect on each run directory, in the background (the prologue ends them); their URLs.
for name in closure forward many; do
  "$snabb" inspect "$tmp/$name" >"$tmp/$name.inspect" 2>&1 &
done
url() { # NAME
  for _ in $(seq 100); do
    grep -q "http://" "$tmp/$1.inspect" && break
    sleep 0.1
  done
  grep -o 'http://[^ ]*' "$tmp/$1.inspect" || fail "snabb inspect $1 printed no URL: $(cat "$tmp/$1.inspect")"
}
closure_url=$(url closure)
forward_url=$(url forward)
many_url=$(url many)
# The line of the config's loop, which the closures keep out of the JIT.
loop_line=$(grep -n "for _ = 1, link.nreadable(i) do" "$configs/closure_app.lua" | cut -d: -f1)
[ -n "$loop_line" ] || fail "no loop in closure_app.lua"
# (chunk names are as snabb was given the config: run from here, so its source lines are read.)
node "$here/inspect_views_check.js" "$closure_url" "$tmp/closure.json" "$configs/closure_app.lua:$loop_line" \
  "$forward_url" "$tmp/forward.json" "$many_url" "$tmp/many.json"
echo "inspect_views_test: OK"

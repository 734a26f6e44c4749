#!/usr/bin/env bash
# reconfig_test: live reconfiguration without loss (engine.configure, runtime/README.md).
# 1. reconfig_check.lua, in one process: 100 reconfigurations of a loaded graph (apps added,
#    removed, changed in argument and class; links moved), each checked for exact accounting
#    (packets in = out + counted drops + still queued), kept links and kept apps; then every app
#    stopped and the pool found empty. Three seeds.
# 2. The same through the control server: `snabb config load` swaps a running `snabb run`'s
#    graph 100 times (four graphs: apps added, removed, their class changed, links moved, sources
#    and sinks replaced by others); its summary at SIGINT adds up exactly, the packets of the
#    sources and sinks that left included.
. "$(dirname "$0")/prologue.sh"

for seed in 20 21 22; do
  out=$("$snabb" "$here/reconfig_check.lua" 100 "$seed") || fail "seed $seed: $out"
  echo "$out"
  [[ $out == *"reconfig_check: 100 reconfigurations under load: in "* ]] || fail "seed $seed: no summary: $out"
done

# graph NAME SOURCE SINK CLASS...: SOURCE -> one app per CLASS (named a, b, c) -> SINK, into
# $tmp/NAME.lua.
graph() {
  local name=$1 source=$2 sink=$3 app
  local from=$source.output
  shift 3
  {
    echo 'local basic = require("apps.basic.basic_apps")'
    echo 'local c = config.new()'
    echo "config.app(c, \"$source\", basic.Source, 100)"
    echo "config.app(c, \"$sink\", basic.Sink)"
    for app in a b c; do
      [ $# -gt 0 ] || break
      echo "config.app(c, \"$app\", basic.$1)"
      echo "config.link(c, \"$from -> $app.input\")"
      from=$app.output
      shift
    done
    echo "config.link(c, \"$from -> $sink.input\")"
    echo 'return c'
  } >"$tmp/$name.lua"
}
graph g0 source sink Join
graph g1 source sink_b Join Join
graph g2 source_b sink Split Join Tee
graph g3 source sink Tee

"$snabb" run "$tmp/g0.lua" --duration 300 >"$tmp/run.out" 2>&1 &
run=$!
for _ in $(seq 100); do "$snabb" config $run get >/dev/null 2>&1 && break; sleep 0.1; done
for i in $(seq 100); do
  "$snabb" config $run load "$tmp/g$((i % 4)).lua" >"$tmp/load.out" 2>&1 || fail "load $i: $(cat "$tmp/load.out")"
done
kill -INT $run
wait $run || fail "snabb run: exit $?: $(cat "$tmp/run.out")"
cat "$tmp/run.out"
count() { sed -n "$1" "$tmp/run.out" | tr -d , | head -1; }
in=$(count 's/^in  *\([0-9,]*\) .*/\1/p')
out=$(count 's/^out  *\([0-9,]*\) .*/\1/p')
dropped=$(count 's/^dropped \([0-9,]*\) (full links), still queued [0-9,]*, app errors 0$/\1/p')
queued=$(count 's/^dropped [0-9,]* (full links), still queued \([0-9,]*\), app errors 0$/\1/p')
[ -n "$in" ] && [ -n "$out" ] && [ -n "$dropped" ] && [ -n "$queued" ] || fail "no summary"
[ "$in" -gt 1000000 ] || fail "too little load: $in packets"
[ "$in" -eq $((out + dropped + queued)) ] ||
  fail "live: in $in != out $out + dropped $dropped + queued $queued ($((in - out - dropped - queued)) unaccounted for)"
echo "reconfig_test: ok (live: 100 snabb config loads, in $in = out $out + dropped $dropped + queued $queued)"

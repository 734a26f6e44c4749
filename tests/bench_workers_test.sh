#!/usr/bin/env bash
# End-to-end: `snabb bench` of a config with workers (programs/bench/workers.lua). A two-worker
# pipeline over an interlink whose second stage frees every fifth packet
# (tests/configs/bench_workers.lua), and the same graph in one worker: packets in and out equal the
# harness links' counters, in = out + drops + queued + lost, the loss is the dropper's, apps and
# links are named WORKER/APP, packets are timed across the workers, and the text report names
# them; examples/pipeline.lua's reading variant loses nothing. Endpoints in another worker are
# found or given; bad ones, a --cpu list of the wrong length and a graph that stops taking packets
# each end in one message.
. "$(dirname "$0")/prologue.sh"
cfg=$configs/bench_workers.lua
flow="w1/first:w2/dropper"
for mode in two one; do
  [ $mode = one ] && flow="w1/first:w1/dropper"
  "$snabb" bench "$cfg" $mode --pcap "$data/v4.pcap" --packets 200000 --json "$tmp/$mode.json" \
    >"$tmp/$mode.out" 2>&1 || fail "$mode: exit $?: $(cat "$tmp/$mode.out")"
  [ ! -s "$tmp/$mode.out" ] || fail "$mode: --json is not quiet: $(cat "$tmp/$mode.out")"
  "$snabb" "$here/bench_check.lua" "$tmp/$mode.json" 200000 "$flow" fifth >/dev/null ||
    fail "$mode: $(cat "$tmp/$mode.json")"
  json=$(tr -d ' \n' <"$tmp/$mode.json")
  # 200,000 in, 40,000 freed by the dropper, every packet out timed (a stamp made in w1 passes
  # in w2: the workers share the stamps' key).
  grep -q '"output":160000,' <<<"$json" || fail "$mode: 160,000 out: $json"
  grep -q '"stamped":160000,' <<<"$json" || fail "$mode: 160,000 packets timed: $json"
done
grep -q '"workers":\[{[^]]*"name":"w1"[^]]*},{[^]]*"name":"w2"' <(tr -d ' \n' <"$tmp/two.json") ||
  fail "workers in JSON: $(cat "$tmp/two.json")"

# examples/pipeline.lua with its reading second stage, in two workers and in one: nothing lost.
for n in 2 1; do
  "$snabb" bench "$here/../examples/pipeline.lua" $n read --pcap "$data/v4.pcap" --packets 100000 \
    --json "$tmp/read$n.json" >"$tmp/read$n.out" 2>&1 || fail "pipeline $n read: exit $?: $(cat "$tmp/read$n.out")"
  to=$([ $n = 2 ] && echo w2/second || echo w1/second)
  "$snabb" "$here/bench_check.lua" "$tmp/read$n.json" 100000 "w1/first:$to" >/dev/null ||
    fail "pipeline $n read: $(cat "$tmp/read$n.json")"
done

# The text report: its workers, pinned; the interlink's apps among the others.
"$snabb" bench "$cfg" two --pcap "$data/v4.pcap" --packets 100000 --cpu 0,1 >"$tmp/text.txt" ||
  fail "text: exit $?"
grep -Eq '^workers: w1 \(PID [0-9]+, CPU 0\), w2 \(PID [0-9]+, CPU 1\)$' "$tmp/text.txt" &&
  grep -Eq '^w1/tx +interlink.transmitter +100,000 ' "$tmp/text.txt" &&
  grep -Eq '^w2/dropper .* 100,000 +80,000 +20,000 ' "$tmp/text.txt" &&
  grep -Eq '^lost in the graph +20,000 +20.0% of packets in +freed by w2/dropper 20,000$' "$tmp/text.txt" &&
  grep -Eq '^packet latency \(µs\): .*\(80,000 packets\)$' "$tmp/text.txt" || fail "text report: $(cat "$tmp/text.txt")"

# Endpoints given, in NAME/APP.PORT.
"$snabb" bench "$cfg" two --pcap "$data/v4.pcap" --packets 1000 --in w1/first.input \
  --out w2/dropper.output --json - >"$tmp/given.json" || fail "--in/--out given: exit $?"
"$snabb" "$here/bench_check.lua" "$tmp/given.json" 1000 "$flow" fifth >/dev/null 2>&1 ||
  "$snabb" "$here/bench_check.lua" "$tmp/given.json" 1000 "w1/first:w2/dropper" fifth >/dev/null ||
  fail "--in/--out given: $(cat "$tmp/given.json")"

# Bad input: one line each, exit 2 (or 1 for a graph that stops taking packets).
expect() { # expect STATUS MESSAGE ARGS...: snabb bench ARGS ends with STATUS and MESSAGE alone
  local status=0 want=$1 message=$2
  shift 2
  "$snabb" bench "$@" >"$tmp/bad.out" 2>"$tmp/bad.err" || status=$?
  [ "$status" -eq "$want" ] || fail "bench $*: exit $status, expected $want: $(cat "$tmp/bad.err")"
  [ "$(cat "$tmp/bad.err")" = "$message" ] || fail "bench $*: '$(cat "$tmp/bad.err")', expected '$message'"
}
expect 2 "snabb bench: --in w1/nope.input: the config has no app 'w1/nope' (its apps: w1/first, w1/tx, w2/dropper, w2/rx)" \
  "$cfg" two --pcap "$data/v4.pcap" --in w1/nope.input
expect 2 "snabb bench: --out first.output: the config has no app 'first' (its apps: w1/first, w1/tx, w2/dropper, w2/rx)" \
  "$cfg" two --pcap "$data/v4.pcap" --out first.output
expect 2 "snabb bench: --cpu lists 1 CPU for 2 workers (w1, w2): one per worker, in name order" \
  "$cfg" two --pcap "$data/v4.pcap" --cpu 0
# The sink at a port the second stage never sends to (a Join, which takes any port name): its
# input fills and the capture stops flowing.
status=0
"$snabb" bench "$here/../examples/pipeline.lua" 2 --pcap "$data/v4.pcap" --loops 100 --out w2/second.nowhere \
  >"$tmp/stall.out" 2>"$tmp/stall.err" || status=$?
[ $status -eq 1 ] && grep -q "^snabb bench: the graph took no packet from the capture for 5 s ([0-9,]* sent): stopped before the capture was sent; does the graph read its input?$" "$tmp/stall.err" ||
  fail "a stalled graph: exit $status: $(cat "$tmp/stall.err")"
echo "bench_workers_test: passed"

#!/usr/bin/env bash
# End-to-end: `snabb bench` of examples/forward.lua on a real capture. Its packet counts equal the
# link counters (tests/bench_check.lua), --loops/--packets are exact, --json is quiet, --html writes
# a self-contained report, and bad input gets one message.
set -euo pipefail
snabb=$1
here=$(dirname "$0")
data="$here/data/pcap"
forward="$here/../examples/forward.lua"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

"$snabb" bench "$forward" --pcap "$data/v4.pcap" --packets 1000000 --json "$tmp/r.json" \
  --html "$tmp/r.html" >"$tmp/out.txt" 2>"$tmp/err.txt"
[ ! -s "$tmp/out.txt" ] && [ ! -s "$tmp/err.txt" ] || fail "--json is not quiet: $(cat "$tmp/out.txt" "$tmp/err.txt")"
"$snabb" "$here/bench_check.lua" "$tmp/r.json" 1000000
grep -q '<canvas' "$tmp/r.html" && grep -q 'Chart.js v3' "$tmp/r.html" || fail "HTML report"
grep -q 'src="http' "$tmp/r.html" && fail "HTML report loads something from the network"

"$snabb" bench "$forward" --pcap "$data/v6.pcap" --loops 3 --json - >"$tmp/loops.json"
"$snabb" "$here/bench_check.lua" "$tmp/loops.json" $((3 * 161))

# The human report: counts and rates, per-app cycles, breath latency.
"$snabb" bench "$forward" --pcap "$data/v4.pcap" --duration 0.5 --rate 1Mpps >"$tmp/human.txt"
for text in "packets in" "packets out" "Gbit/s on the wire" "cycles/pkt" "breath latency"; do
  grep -q "$text" "$tmp/human.txt" || fail "report lacks '$text': $(cat "$tmp/human.txt")"
done
sent=$(awk '/^packets in/ { gsub(",", "", $3); print $3 }' "$tmp/human.txt")
# Never above the rate; below it only when other processes take the CPU (tests run in parallel).
[ "$sent" -gt 100000 ] && [ "$sent" -lt 550000 ] || fail "1 Mpps for 0.5 s sent $sent packets"

# Bad input: one message, non-zero exit.
expect_error() { # expect_error STATUS TEXT ARGS...
  local status=0 want=$1 text=$2
  shift 2
  timeout 20 "$snabb" bench "$@" >"$tmp/out.txt" 2>"$tmp/err.txt" || status=$?
  [ "$status" -eq "$want" ] || fail "bench $*: exit $status, expected $want: $(cat "$tmp/err.txt")"
  grep -q -- "$text" "$tmp/err.txt" || fail "bench $*: message: $(cat "$tmp/err.txt")"
}
expect_error 2 "missing option '--pcap'" "$forward"
# Usage errors (exit 2), found before the config loads (tests/cli_test.sh has more).
expect_error 2 "^snabb bench: --pcap .*missing.pcap: No such file" "$forward" --pcap "$tmp/missing.pcap"
expect_error 2 "^snabb bench: --pcap .*empty.pcap: no packets to replay" "$forward" --pcap "$data/empty.pcap"
expect_error 2 "^snabb bench: --pcap .*link type LINUX_SLL2" "$forward" --pcap "$data/loopback-sll.pcap"
expect_error 2 "--rate must be a number > 0 of Mpps or a rate with its unit" "$forward" --pcap "$data/v4.pcap" --rate fast
expect_error 2 "cannot tell where packets enter the graph: apps a, b all qualify; say it with --in" \
  "$here/configs/two_apps.lua" --pcap "$data/v4.pcap"
expect_error 2 "^snabb bench: --in fwd.nope: app 'fwd' has no input port 'nope'" "$forward" --pcap "$data/v4.pcap" --in fwd.nope
echo "bench_test: OK"

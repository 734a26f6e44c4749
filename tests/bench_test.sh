#!/usr/bin/env bash
# End-to-end: `snabb bench` of examples/forward.lua on a real capture. Its packet counts equal the
# link counters (tests/bench_check.lua), --loops/--packets are exact, --json is quiet, --html writes
# a self-contained report, and bad input gets one message.
. "$(dirname "$0")/prologue.sh"
forward="$here/../examples/forward.lua"

"$snabb" bench "$forward" --pcap "$data/v4.pcap" --packets 1000000 --json "$tmp/r.json" \
  --html "$tmp/r.html" >"$tmp/out.txt" 2>"$tmp/err.txt"
[ ! -s "$tmp/out.txt" ] && [ ! -s "$tmp/err.txt" ] || fail "--json is not quiet: $(cat "$tmp/out.txt" "$tmp/err.txt")"
"$snabb" "$here/bench_check.lua" "$tmp/r.json" 1000000
grep -q '<canvas' "$tmp/r.html" && grep -q 'Chart.js v3' "$tmp/r.html" || fail "HTML report"
grep -q 'src="http' "$tmp/r.html" && fail "HTML report loads something from the network"

"$snabb" bench "$forward" --pcap "$data/v6.pcap" --loops 3 --json - >"$tmp/loops.json"
"$snabb" "$here/bench_check.lua" "$tmp/loops.json" $((3 * 161))
# Frames under the Ethernet minimum (a 42-byte ARP reply): on the wire as 64 bytes with FCS, with
# or without latency stamps.
for latency in "" --no-latency; do
  "$snabb" bench "$forward" --pcap "$data/arp.pcap" --packets 100000 $latency --json "$tmp/arp.json"
  "$snabb" "$here/bench_check.lua" "$tmp/arp.json" 100000
  # 50,000 replies of 42 bytes, each padded with 18
  grep -q '"output_padding":900000[,}]' <(tr -d ' \n' <"$tmp/arp.json") || fail "arp.pcap's padding: $(cat "$tmp/arp.json")"
done

# The human report: counts and rates, per-app cycles, breath latency.
"$snabb" bench "$forward" --pcap "$data/v4.pcap" --duration 0.5 --rate 1Mpps >"$tmp/human.txt"
for text in "packets in" "packets out" "Gbit/s on the wire" "cycles/pkt" "breath latency"; do
  grep -q "$text" "$tmp/human.txt" || fail "report lacks '$text': $(cat "$tmp/human.txt")"
done
sent=$(awk '/^packets in/ { gsub(",", "", $3); print $3 }' "$tmp/human.txt")
# Never above the rate; below it only when other processes take the CPU (tests run in parallel).
[ "$sent" -gt 100000 ] && [ "$sent" -lt 550000 ] || fail "1 Mpps for 0.5 s sent $sent packets"

# A function that frees every fifth packet: 20% lost inside the graph, freed by app 'dropper'; the
# counts add up (in = out + link drops + queued + lost), in JSON, text and HTML.
"$snabb" bench "$here/configs/drop_fifth.lua" --pcap "$data/v4.pcap" --packets 1000000 --json - \
  --html "$tmp/drop.html" >"$tmp/drop.json"
"$snabb" "$here/bench_check.lua" "$tmp/drop.json" 1000000 dropper fifth
grep -q '"lost":200000' <(tr -d ' \n' <"$tmp/drop.json") || fail "1,000,000 in, 20% freed: $(cat "$tmp/drop.json")"
"$snabb" bench "$here/configs/drop_fifth.lua" --pcap "$data/v4.pcap" --packets 1000000 >"$tmp/drop.txt"
grep -Eq '^lost in the graph +200,000 +20\.0% of packets in +freed by dropper 200,000$' "$tmp/drop.txt" ||
  fail "text report of a 20% loss: $(cat "$tmp/drop.txt")"
grep -Eq '^dropper +[^ ]*drop_fifth.lua +1,000,000 +800,000 +200,000 ' "$tmp/drop.txt" ||
  fail "dropper's row: $(cat "$tmp/drop.txt")"

# An app that raises an error: an errors column, a line naming the app and its first error, exit 1;
# --allow-errors exits 0 with the same report.
status=0
"$snabb" bench "$here/configs/drop_fifth.lua" fail --pcap "$data/v4.pcap" --packets 100000 \
  >"$tmp/fail.txt" 2>"$tmp/fail.err" || status=$?
[ "$status" -eq 1 ] || fail "a failed app: exit $status, expected 1"
grep -Eq '^app +class +packets in +packets out +freed +cycles/pkt +share +errors +idle$' "$tmp/fail.txt" &&
  grep -Eq '^dropper +.* 1 +[0-9.]+%$' "$tmp/fail.txt" || fail "errors column: $(cat "$tmp/fail.txt")"
grep -q "^snabb bench: app 'dropper' failed in push: .*drop_fifth.lua:[0-9]*: deliberate failure on the third push (1 error in all)$" \
  "$tmp/fail.err" || fail "failure line: $(cat "$tmp/fail.err")"
"$snabb" bench "$here/configs/drop_fifth.lua" fail --pcap "$data/v4.pcap" --packets 100000 --allow-errors \
  --json "$tmp/fail.json" 2>"$tmp/fail.err" || fail "--allow-errors: exit $?"
grep -q "deliberate failure on the third push" "$tmp/fail.json" || fail "failures in JSON: $(cat "$tmp/fail.json")"

# An app that prints on every push (print and io.write): with --json -, stdout is the document
# alone (a JSON parser takes it) and what the app printed went to stderr.
"$snabb" bench "$here/configs/chatty.lua" --pcap "$data/v4.pcap" --packets 100000 --json - \
  >"$tmp/chatty.json" 2>"$tmp/chatty.err" ||
  fail "chatty: exit $?: $(grep -v '^chatty: ' "$tmp/chatty.err" | tail -30)"
"$snabb" "$here/bench_check.lua" "$tmp/chatty.json" 100000 chatty >/dev/null || fail "stdout is not the JSON document"
if command -v python3 >/dev/null; then python3 -m json.tool "$tmp/chatty.json" >/dev/null; fi
grep -q "^chatty: config loaded$" "$tmp/chatty.err" && grep -q "^chatty: push 1, " "$tmp/chatty.err" &&
  grep -q "^chatty: {not json$" "$tmp/chatty.err" || fail "the app's output: $(cat "$tmp/chatty.err")"

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

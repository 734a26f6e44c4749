#!/usr/bin/env bash
# End-to-end: DPDK on virtual devices (no hardware). net_pcap: a capture through our graph and out
# again, packet for packet (tcpdump compares the bytes); net_ring and net_null: counters add up over
# a run and every mbuf is back in the pool after stop (tests/dpdk_check.lua); bad EAL arguments, a
# missing port and too little memory for the mbufs each end in one message.
set -euo pipefail
snabb=$1
here=$(dirname "$0")
data="$here/data/pcap"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
bytes() { "$here/tcpdump.sh" -nn -t -xx -r "$1" 2>/dev/null; }  # timestamps are the send times

for name in v4.pcap v6.pcap tftp_wrq.pcap arp.pcap; do
  "$snabb" run "$here/configs/dpdk_pcap.lua" "$data/$name" "$tmp/$name" --duration 0.5 \
    >"$tmp/out.txt" 2>&1 || fail "$name: $(cat "$tmp/out.txt")"
  bytes "$data/$name" >"$tmp/expected.txt"
  bytes "$tmp/$name" >"$tmp/actual.txt"
  [ -s "$tmp/expected.txt" ] && cmp -s "$tmp/expected.txt" "$tmp/actual.txt" ||
    fail "$name through net_pcap: $(diff "$tmp/expected.txt" "$tmp/actual.txt" | head -5)"
done

for mode in ring null queues copy exhaust nombufs; do
  (cd "$here/.." && "$snabb" tests/dpdk_check.lua "$mode") >"$tmp/out.txt" 2>&1 ||
    fail "dpdk_check $mode: $(cat "$tmp/out.txt")"
  grep "^dpdk_check" "$tmp/out.txt"
done

cat >"$tmp/bad_eal.lua" <<'LUA'
require("drivers.dpdk.dpdk").init{args = "--no-such-option"}
LUA
status=0
"$snabb" "$tmp/bad_eal.lua" >"$tmp/out.txt" 2>"$tmp/err.txt" || status=$?
[ "$status" -eq 1 ] && grep -q "dpdk: EAL initialisation failed (Invalid argument); EAL options: --no-such-option" \
  "$tmp/err.txt" || fail "bad EAL args: $status $(cat "$tmp/err.txt")"

status=0
"$snabb" run "$here/configs/dpdk_pcap.lua" "$data/v4.pcap" "$tmp/x.pcap" --eal="--no-such-option" \
  --duration 0.1 >"$tmp/out.txt" 2>"$tmp/err.txt" || status=$?
[ "$status" -eq 1 ] && grep -q "^snabb: dpdk: EAL initialisation failed (Invalid argument); EAL options: --no-such-option" \
  "$tmp/err.txt" || fail "bad --eal: $status $(cat "$tmp/err.txt")"

cat >"$tmp/missing.lua" <<'LUA'
local c = config.new()
config.app(c, "nic", require("drivers.dpdk.dpdk").DpdkPort, {port = "0000:42:00.0"})
return c
LUA
status=0
"$snabb" run "$tmp/missing.lua" --duration 0.1 >"$tmp/out.txt" 2>"$tmp/err.txt" || status=$?
[ "$status" -eq 1 ] && grep -q "dpdk: no port '0000:42:00.0'" "$tmp/err.txt" ||
  fail "missing port: $status $(cat "$tmp/err.txt")"
echo "dpdk_test: OK"

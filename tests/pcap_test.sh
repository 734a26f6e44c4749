#!/usr/bin/env bash
# End-to-end: PcapReader -> PcapWriter reproduces every Ethernet capture in tests/data/pcap, as
# tcpdump reads them (same bytes, same nanosecond timestamps), in microsecond and nanosecond files;
# other link types and malformed captures end in one message naming the file; a writer stopped by
# SIGINT or SIGTERM leaves a file tcpdump reads without complaint.
set -euo pipefail
snabb=$1
here=$(dirname "$0")
data="$here/data/pcap"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# Every record as tcpdump prints it (time in ns, all bytes in hex); stderr must only name the file.
dump() {
  "$here/tcpdump.sh" -nn -tt --time-stamp-precision=nano -xx -r "$1" 2>"$tmp/tcpdump.err"
  if grep -v "^reading from file" "$tmp/tcpdump.err" | grep -q .; then
    fail "tcpdump complained about $1: $(cat "$tmp/tcpdump.err")"
  fi
}

copies=0
for input in "$data"/*.pcap "$data"/lwaftr/*.pcap; do
  case "$input" in *-sll.pcap) continue ;; esac
  name=$(basename "$input")
  dump "$input" >"$tmp/expected.txt"
  for precision in microsecond nanosecond; do
    "$snabb" run "$here/configs/pcap_copy.lua" "$input" "$tmp/$name.$precision" "$precision" \
      --duration 0.2 || fail "copy of $name ($precision) exited $?"
    dump "$tmp/$name.$precision" >"$tmp/actual.txt"
    cmp -s "$tmp/expected.txt" "$tmp/actual.txt" ||
      fail "$name ($precision): $(diff "$tmp/expected.txt" "$tmp/actual.txt" | head -5)"
    copies=$((copies + 1))
  done
done
[ "$copies" -ge 28 ] || fail "only $copies copies checked"
# The files hold what tcpdump says: e.g. v4.pcap's 43 packets.
[ "$(dump "$tmp/v4.pcap.microsecond" | grep -c '^[0-9]')" -eq 43 ] || fail "v4.pcap count"

# One readable message, naming the file, exit status 1, for each capture the reader refuses.
refused() { # refused FILE TEXT
  local status=0
  timeout 10 "$snabb" run "$here/configs/pcap_copy.lua" "$1" "$tmp/out.pcap" --duration 0.2 \
    >"$tmp/out.txt" 2>"$tmp/err.txt" || status=$?
  [ "$status" -eq 1 ] || fail "$1: exit status $status"
  grep -q "$1: .*$2" "$tmp/err.txt" || fail "$1: message: $(cat "$tmp/err.txt")"
  [ "$(grep -c . "$tmp/err.txt")" -eq 1 ] || fail "$1: more than one line: $(cat "$tmp/err.txt")"
}
refused "$data/loopback-sll.pcap" "link type LINUX_SLL2 (Linux cooked v2) is not Ethernet"
: >"$tmp/empty"
refused "$tmp/empty" "empty file"
head -c 10 "$data/v4.pcap" >"$tmp/short-header"
refused "$tmp/short-header" "truncated"
head -c -10 "$data/v4.pcap" >"$tmp/short-record"
refused "$tmp/short-record" "record 43: truncated"
{ printf 'XXXX'; tail -c +5 "$data/v4.pcap"; } >"$tmp/magic"
refused "$tmp/magic" "not a pcap or pcapng file"
refused "$tmp/missing.pcap" "No such file"

# Stopped by a signal, the writer flushes and closes its file.
for signal in INT TERM; do
  out="$tmp/signal-$signal.pcap"
  "$snabb" run "$here/configs/pcap_replay.lua" "$data/v4.pcap" "$out" &
  pid=$!
  sleep 1.5
  kill -"$signal" "$pid"
  wait "$pid" || fail "SIG$signal: exit status $?"
  packets=$(dump "$out" | grep -c '^[0-9]')
  [ "$packets" -gt 1000 ] || fail "SIG$signal: only $packets packets in the file"
done
echo "pcap_test: $copies copies identical, refusals and signals OK"

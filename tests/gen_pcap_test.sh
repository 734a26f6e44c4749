#!/usr/bin/env bash
# End-to-end: `snabb gen-pcap` checked against tcpdump, the reference reader: packet count, frame
# lengths (7:4:1 IMIX), distinct flows, IPv4 and UDP checksums; same arguments -> same file; bad
# arguments exit 2 with a message naming the problem.
set -euo pipefail
snabb=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
# td OUT ARGS...: tcpdump's output into OUT; anything on its stderr but the banner fails the test.
td() {
  local out=$1; shift
  "$(dirname "$0")/tcpdump.sh" "$@" >"$out" 2>"$tmp/tcpdump.err" &&
    ! grep -qv "^reading from file" "$tmp/tcpdump.err" ||
    fail "tcpdump $*: $(cat "$tmp/tcpdump.err")"
}

"$snabb" selftest programs.gen_pcap.gen_pcap

out=$("$snabb" gen-pcap "$tmp/imix.pcap" --imix --flows 16 --packets 1200)
[ "$out" = "wrote 1,200 packets (IMIX 7:4:1, 16 flows, 419,800 bytes captured) to $tmp/imix.pcap" ] ||
  fail "summary: $out"
td "$tmp/n.txt" -nr "$tmp/imix.pcap"
[ "$(wc -l <"$tmp/n.txt")" -eq 1200 ] || fail "tcpdump reads $(wc -l <"$tmp/n.txt") packets, want 1200"
# "10.0.0.1.1024 > 10.1.0.1.9: UDP, length 18": field 3 is the source ip.port.
flows=$(awk '{print $3}' "$tmp/n.txt" | sort -u | wc -l)
[ "$flows" -eq 16 ] || fail "$flows distinct sources, want 16"
# -e prints "ethertype IPv4 (0x0800), length N:" with N the captured frame length.
td "$tmp/e.txt" -enr "$tmp/imix.pcap"
lengths=$(grep -o 'ethertype IPv4 (0x0800), length [0-9]*' "$tmp/e.txt" |
  awk '{print $NF}' | sort -n | uniq -c | awk '{print $2 "x" $1}' | paste -sd' ')
[ "$lengths" = "60x700 566x400 1514x100" ] || fail "frame lengths: $lengths"

# Checksums: tcpdump -vv says "[udp sum ok]" for a good UDP checksum, "[bad udp cksum X -> Y!]" for
# a bad one, and "bad cksum X (->Y)!" after an IPv4 header with a bad one (nothing when it is good).
check_sums() { # check_sums FILE PACKETS: exit status 0 when every checksum verifies
  td "$tmp/v.txt" -vvnr "$1"
  ! grep -q 'bad cksum\|bad udp cksum' "$tmp/v.txt" &&
    [ "$(grep -c '\[udp sum ok\]' "$tmp/v.txt")" -eq "$2" ]
}
check_sums "$tmp/imix.pcap" 1200 || fail "tcpdump -vv: bad or unverified checksums"
# The check catches broken sums: zero the first record's IPv4 checksum (offset 24 + 16 + 14 + 10).
cp "$tmp/imix.pcap" "$tmp/broken.pcap"
printf '\0\0' | dd of="$tmp/broken.pcap" bs=1 seek=64 conv=notrunc status=none
! check_sums "$tmp/broken.pcap" 1200 || fail "a broken IPv4 checksum went unnoticed"
grep -q 'bad cksum' "$tmp/v.txt" || fail "tcpdump did not report the broken checksum"

# Deterministic: the same arguments give the same bytes, timestamps included.
"$snabb" gen-pcap "$tmp/again.pcap" --imix --flows 16 --packets 1200 >/dev/null
cmp "$tmp/imix.pcap" "$tmp/again.pcap" || fail "same arguments, different files"

# Usage errors: exit 2 and a message naming the problem; an unwritable file: exit 1.
expect() { # expect STATUS PATTERN ARGS...
  local status=$1 pattern=$2 rc=0 err; shift 2
  err=$("$snabb" gen-pcap "$@" 2>&1 >/dev/null) || rc=$?
  [ "$rc" -eq "$status" ] && grep -qE -- "$pattern" <<<"$err" ||
    fail "gen-pcap $* -> exit $rc (want $status), stderr: $err"
  ! grep -q traceback <<<"$err" || fail "traceback: $err"
}
expect 2 "--size must be a frame size with FCS from 64 to 1,518, got '63'" "$tmp/x.pcap" --size 63
expect 2 "'--imix' can not be used together with option '--size'" "$tmp/x.pcap" --size 64 --imix
expect 2 "--flows must be a whole number from 1 to 16,777,216, got '0'" "$tmp/x.pcap" --flows 0
expect 2 "missing argument 'output'" --imix
expect 1 "^snabb gen-pcap: $tmp/no/such/dir/x.pcap: No such file or directory$" "$tmp/no/such/dir/x.pcap"

# --size counts the FCS: 1518 on the wire is a 1514-byte record.
"$snabb" gen-pcap "$tmp/big.pcap" --size 1518 --packets 10 >/dev/null
td "$tmp/e.txt" -enr "$tmp/big.pcap"
[ "$(grep -c 'ethertype IPv4 (0x0800), length 1514:' "$tmp/e.txt")" -eq 10 ] ||
  fail "--size 1518: want ten 1514-byte records"
check_sums "$tmp/big.pcap" 10 || fail "--size 1518: checksums"
echo "gen_pcap_test: ok"

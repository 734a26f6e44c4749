#!/usr/bin/env bash
# End-to-end: `snabb gen-pcap` checked against tshark, the reference dissector: packet count,
# frame sizes (7:4:1 IMIX), flows, size and flow independent (every flow carries every size,
# chi-square), IPv4/IPv6, UDP/TCP, 802.1Q and QinQ tags, addresses and ports within the ranges
# asked for, IPv4, UDP and TCP checksums verified; same seed -> same file, another seed -> another
# order; bad arguments exit 2 with a message naming the problem.
. "$(dirname "$0")/prologue.sh"
# ts FILE FIELD...: one line per frame, the fields tab-separated, with every checksum verified
# (tshark leaves them unverified by default). Anything on tshark's stderr but its warning about
# running as root fails the test.
ts() {
  local file=$1 fields=(); shift
  for f in "$@"; do fields+=(-e "$f"); done
  HOME=$tmp tshark -r "$file" -o ip.check_checksum:TRUE -o udp.check_checksum:TRUE \
    -o tcp.check_checksum:TRUE -T fields "${fields[@]}" 2>"$tmp/tshark.err" ||
    fail "tshark -r $file: $(cat "$tmp/tshark.err")"
  ! grep -v 'Running as user "root"' "$tmp/tshark.err" | grep -q . ||
    fail "tshark -r $file: $(cat "$tmp/tshark.err")"
}
# tally: "value count" lines of stdin, sorted by value, joined by spaces.
tally() { sort | uniq -c | awk '{print $2 "x" $1}' | sort -n | paste -sd' '; }

"$snabb" selftest programs.gen_pcap.gen_pcap

# IPv4/UDP, IMIX, 16 flows.
out=$("$snabb" gen-pcap "$tmp/imix.pcap" --imix --flows 16 --packets 4800)
[ "$out" = "wrote 4,800 packets (IPv4/UDP, IMIX 7:4:1 of 64/570/1518-byte frames, 16 flows, 1,679,200 bytes captured) to $tmp/imix.pcap" ] ||
  fail "summary: $out"
ts "$tmp/imix.pcap" frame.len ip.src udp.srcport ip.dst udp.dstport ip.checksum.status \
  udp.checksum.status >"$tmp/f.txt"
[ "$(wc -l <"$tmp/f.txt")" -eq 4800 ] || fail "tshark reads $(wc -l <"$tmp/f.txt") packets, want 4800"
lengths=$(cut -f1 "$tmp/f.txt" | tally)
[ "$lengths" = "60x2800 566x1600 1514x400" ] || fail "frame lengths: $lengths"
# Flows: source address fastest (10.0.0.1 up), one destination, port 1024 -> 9 while the
# addresses last; each flow 4800/16 packets.
flows=$(cut -f2-5 "$tmp/f.txt" | sort | uniq -c | awk '{print $1}' | sort -u | paste -sd' ')
[ "$(cut -f2-5 "$tmp/f.txt" | sort -u | wc -l)" -eq 16 ] && [ "$flows" = 300 ] ||
  fail "want 16 flows of 300 packets: $(cut -f2-5 "$tmp/f.txt" | sort | uniq -c | head -20)"
[ "$(cut -f2 "$tmp/f.txt" | sort -t. -k4n | sed -n '1p;$p' | paste -sd' ')" = "10.0.0.1 10.0.0.16" ] &&
  [ "$(cut -f3-5 "$tmp/f.txt" | sort -u)" = "$(printf '1024\t10.1.0.1\t9')" ] ||
  fail "addresses and ports: $(cut -f2-5 "$tmp/f.txt" | sort -u | head -3)"
# Size and flow independent: every (flow, size) pair occurs, and Pearson's chi-square of the
# 16 x 3 table is under 59.7, its 99.9th percentile for 30 degrees of freedom (round-robin flows
# over a pattern of 12 gave only 4 flows the 1514-byte frames: 36 pairs, chi-square 1,371).
cut -f1,2 "$tmp/f.txt" | awk -F'\t' '
  { n[$2 " " $1]++; flow[$2]++; size[$1]++; total++ }
  END {
    for (f in flow) for (s in size) {
      e = flow[f] * size[s] / total; o = n[f " " s]; chi += (o - e) ^ 2 / e; pairs += o > 0
    }
    printf "%d %.1f\n", pairs, chi
  }' >"$tmp/chi.txt"
read -r pairs chi <"$tmp/chi.txt"
[ "$pairs" -eq 48 ] && awk -v c="$chi" 'BEGIN { exit !(c < 59.7) }' ||
  fail "size and flow are not independent: $pairs of 48 (flow, size) pairs, chi-square $chi"
echo "ok: 16 flows x 3 sizes: all 48 pairs, chi-square $chi (30 degrees of freedom)"

# Checksums: status 1 is good (0 bad, 2 unverified).
[ "$(cut -f6,7 "$tmp/f.txt" | sort -u)" = "$(printf '1\t1')" ] ||
  fail "IPv4/UDP checksums: $(cut -f6,7 "$tmp/f.txt" | tally)"
# The check catches broken sums: zero the first record's IPv4 checksum (offset 24 + 16 + 14 + 10)
# and the second's UDP checksum.
cp "$tmp/imix.pcap" "$tmp/broken.pcap"
printf '\0\0' | dd of="$tmp/broken.pcap" bs=1 seek=64 conv=notrunc status=none
first=$(head -1 "$tmp/f.txt" | cut -f1)
printf '\1\1' | dd of="$tmp/broken.pcap" bs=1 seek=$((24 + 16 + first + 16 + 14 + 20 + 6)) \
  conv=notrunc status=none
ts "$tmp/broken.pcap" ip.checksum.status udp.checksum.status >"$tmp/b.txt"
[ "$(head -2 "$tmp/b.txt" | paste -sd' ')" = "$(printf '0\t1 1\t0')" ] ||
  fail "tshark did not see the broken checksums: $(head -2 "$tmp/b.txt" | paste -sd' ')"

# The same seed gives the same bytes, timestamps included; another seed the same mix in another
# order.
"$snabb" gen-pcap "$tmp/again.pcap" --imix --flows 16 --packets 4800 --seed 1 >/dev/null
cmp "$tmp/imix.pcap" "$tmp/again.pcap" || fail "same arguments, different files"
"$snabb" gen-pcap "$tmp/seed2.pcap" --imix --flows 16 --packets 4800 --seed 2 >/dev/null
ts "$tmp/seed2.pcap" frame.len ip.src >"$tmp/s2.txt"
[ "$(cut -f1 "$tmp/s2.txt" | tally)" = "$lengths" ] || fail "--seed 2: frame lengths $(cut -f1 "$tmp/s2.txt" | tally)"
! cmp -s <(cut -f1 "$tmp/f.txt") <(cut -f1 "$tmp/s2.txt") || fail "--seed 2: sizes in the same order"
! cmp -s <(cut -f2 "$tmp/f.txt") <(cut -f2 "$tmp/s2.txt") || fail "--seed 2: flows in the same order"

# IPv6/TCP in QinQ (802.1ad 100, then 802.1Q 200), ranges: 2001:db8::ff+2 crosses a byte,
# 2001:db8:1::/127 is two addresses; 2 x 2 x 3 x 2 = 24 flows. The smallest frames (86 bytes with
# FCS) hold the headers alone, the others data.
"$snabb" gen-pcap "$tmp/v6.pcap" --ipv6 --tcp --vlan 100,200 --imix --src 2001:db8::ff+2 \
  --dst 2001:db8:1::/127 --sport 1000-1002 --dport 40000-40001 --flows 24 --packets 2400 >"$tmp/out.txt"
grep -q "(QinQ 100,200 IPv6/TCP, IMIX 7:4:1 of 86/570/1518-byte frames, 24 flows," "$tmp/out.txt" ||
  fail "IPv6 summary: $(cat "$tmp/out.txt")"
ts "$tmp/v6.pcap" frame.protocols ieee8021ad.id vlan.id ipv6.src ipv6.dst tcp.srcport tcp.dstport \
  tcp.checksum.status frame.len >"$tmp/f.txt"
[ "$(wc -l <"$tmp/f.txt")" -eq 2400 ] &&
  [ "$(cut -f1-3 "$tmp/f.txt" | sed 's/:data//' | sort -u)" = "$(printf 'eth:ethertype:ieee8021ad:ethertype:vlan:ethertype:ipv6:tcp\t100\t200')" ] ||
  fail "IPv6/TCP in QinQ: $(cut -f1-3 "$tmp/f.txt" | sort | uniq -c)"
[ "$(cut -f4 "$tmp/f.txt" | sort -u | paste -sd' ')" = "2001:db8::100 2001:db8::ff" ] &&
  [ "$(cut -f5 "$tmp/f.txt" | sort -u | paste -sd' ')" = "2001:db8:1:: 2001:db8:1::1" ] &&
  [ "$(cut -f6 "$tmp/f.txt" | tally)" = "1000x800 1001x800 1002x800" ] &&
  [ "$(cut -f7 "$tmp/f.txt" | tally)" = "40000x1200 40001x1200" ] &&
  [ "$(cut -f4-7 "$tmp/f.txt" | sort -u | wc -l)" -eq 24 ] ||
  fail "IPv6 ranges: $(cut -f4-7 "$tmp/f.txt" | sort | uniq -c)"
[ "$(cut -f8 "$tmp/f.txt" | tally)" = "1x2400" ] || fail "TCP/IPv6 checksums: $(cut -f8 "$tmp/f.txt" | tally)"
[ "$(cut -f9 "$tmp/f.txt" | tally)" = "82x1400 566x800 1514x200" ] ||
  fail "IPv6/TCP in QinQ frame lengths: $(cut -f9 "$tmp/f.txt" | tally)"

# IPv4/TCP with one 802.1Q tag; 10.1.0.254+4 carries into 10.1.1.x; 4 x 4 x 1 x 2 = 32 flows.
"$snabb" gen-pcap "$tmp/v4tcp.pcap" --tcp --vlan 42 --size 128 --src 10.0.0.0/30 \
  --dst 10.1.0.254+4 --sport 50000 --dport 40000-40001 --flows 32 --packets 320 >/dev/null
ts "$tmp/v4tcp.pcap" frame.protocols vlan.id ip.src ip.dst tcp.srcport tcp.dstport \
  ip.checksum.status tcp.checksum.status frame.len >"$tmp/f.txt"
[ "$(cut -f1,2,5,7-9 "$tmp/f.txt" | sort -u)" = "$(printf 'eth:ethertype:vlan:ethertype:ip:tcp:data\t42\t50000\t1\t1\t124')" ] ||
  fail "IPv4/TCP in 802.1Q: $(cut -f1,2,5,7-9 "$tmp/f.txt" | sort | uniq -c)"
[ "$(cut -f3 "$tmp/f.txt" | tally)" = "10.0.0.0x80 10.0.0.1x80 10.0.0.2x80 10.0.0.3x80" ] &&
  [ "$(cut -f4 "$tmp/f.txt" | sort -u | paste -sd' ')" = "10.1.0.254 10.1.0.255 10.1.1.0 10.1.1.1" ] &&
  [ "$(cut -f6 "$tmp/f.txt" | tally)" = "40000x160 40001x160" ] &&
  [ "$(cut -f3-6 "$tmp/f.txt" | sort | uniq -c | awk '{print $1}' | sort -u)" = 10 ] ||
  fail "IPv4 ranges: $(cut -f3-6 "$tmp/f.txt" | sort | uniq -c)"

# UDP over IPv6, the smallest frame it allows (66 bytes with FCS: headers, no data).
"$snabb" gen-pcap "$tmp/v6udp.pcap" --ipv6 --size 66 --flows 7 --packets 70 >/dev/null
ts "$tmp/v6udp.pcap" frame.protocols udp.checksum.status frame.len udp.length >"$tmp/f.txt"
[ "$(sort -u "$tmp/f.txt")" = "$(printf 'eth:ethertype:ipv6:udp\t1\t62\t8')" ] ||
  fail "IPv6/UDP: $(sort "$tmp/f.txt" | uniq -c)"
echo "ok: IPv6, TCP, 802.1Q, QinQ and ranges as tshark reads them"

# A destination range spread over a prefix (for route tables): 1000 addresses over 10.0.0.0/8,
# 2^14 apart (the largest power of two that fits), each once, the IPv4 checksum right.
"$snabb" gen-pcap "$tmp/spread.pcap" --src 192.0.2.9 --dst 10.0.0.0/8*1000 --flows 1000 \
  --packets 1000 >/dev/null
ts "$tmp/spread.pcap" ip.dst ip.checksum.status >"$tmp/f.txt"
[ "$(cut -f1 "$tmp/f.txt" | sort -u | wc -l)" -eq 1000 ] || fail "spread: $(cut -f1 "$tmp/f.txt" | sort -u | wc -l) distinct destinations"
awk -F'\t' '{split($1, o, "."); i = (o[2] * 65536 + o[3] * 256 + o[4]) / 16384}
             o[1] != 10 || i != int(i) || i >= 1000 || $2 != 1 {print; exit 1}' "$tmp/f.txt" >"$tmp/bad.txt" ||
  fail "spread: $(cat "$tmp/bad.txt") is not 10.0.0.0 + k * 2^14 (k < 1000) with a right checksum"
[ "$(cut -f1 "$tmp/f.txt" | sort -t. -k2,2n -k3,3n | sed -n '1p;$p' | paste -sd' ')" = "10.0.0.0 10.249.192.0" ] ||
  fail "spread: first and last $(cut -f1 "$tmp/f.txt" | sort -t. -k2,2n -k3,3n | sed -n '1p;$p')"
echo "ok: --dst 10.0.0.0/8*1000 spreads 1000 destinations 2^14 apart, as tshark reads them"

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
expect 2 "^snabb gen-pcap: --size 64 is too small for 802.1Q 5 IPv6/TCP: the headers and FCS take 82 bytes$" \
  "$tmp/x.pcap" --ipv6 --tcp --vlan 5 --size 64
expect 2 "^snabb gen-pcap: --flows 9 is more than the 8 distinct flows that --src, --dst, --sport and --dport give \(4 x 1 x 2 x 1\)$" \
  "$tmp/x.pcap" --src 10.0.0.0/30 --sport 1-2 --flows 9
expect 2 "^snabb gen-pcap: --src: '10.0.0.1/24' has bits set past its prefix length$" "$tmp/x.pcap" --src 10.0.0.1/24
expect 2 "^snabb gen-pcap: --dst must be ADDR, ADDR/LEN, ADDR/LEN\*COUNT or ADDR\+COUNT \(e.g. 10.0.0.0/24, 10.0.0.0/8\*65536, 2001:db8::1\+1000\), got '10.0.0'$" \
  "$tmp/x.pcap" --dst 10.0.0
expect 2 "^snabb gen-pcap: --src: '255.255.255.255\+2' goes past the last IPv4 address$" "$tmp/x.pcap" --src 255.255.255.255+2
expect 2 "^snabb gen-pcap: --dst: the count after '\*' must be a whole number from 1 to 256 \(the prefix's addresses, at most 2\^24\), got '10.0.0.0/24\*257'$" \
  "$tmp/x.pcap" --dst 10.0.0.0/24*257
expect 2 "^snabb gen-pcap: the addresses must be of one family: --src is IPv6, --dst IPv4$" "$tmp/x.pcap" --src ::1 --dst 10.0.0.1
expect 2 "^snabb gen-pcap: --vlan must be a VLAN id or OUTER,INNER for QinQ, ids from 0 to 4094 \(e.g. 100 or 100,200\), got '4095'$" \
  "$tmp/x.pcap" --vlan 4095
expect 2 "^snabb gen-pcap: --dport must be a port or a range LO-HI, from 0 to 65535 \(e.g. 9 or 1024-65535\), got '80-79'$" \
  "$tmp/x.pcap" --dport 80-79
expect 1 "^snabb gen-pcap: $tmp/no/such/dir/x.pcap: No such file or directory$" "$tmp/no/such/dir/x.pcap"

# --size counts the FCS: 1518 on the wire is a 1514-byte record.
"$snabb" gen-pcap "$tmp/big.pcap" --size 1518 --packets 10 >/dev/null
ts "$tmp/big.pcap" frame.len ip.checksum.status udp.checksum.status >"$tmp/f.txt"
[ "$(sort "$tmp/f.txt" | uniq -c | awk '{$1=$1; print}')" = "10 1514 1 1" ] ||
  fail "--size 1518: want ten 1514-byte records with good checksums: $(sort "$tmp/f.txt" | uniq -c)"
echo "gen_pcap_test: ok"

#!/usr/bin/env bash
# examples/firewall.lua on real captures: the packets it writes are, byte for byte and in order,
# those a tshark display filter written from the same rules keeps (first match decides, IP packets
# whose length runs past the capture are malformed and dropped, non-IP passes), and its counters
# per rule, default, non-IP and malformed are the counts of tshark's filters for each and add up
# to the packets read. Bad rules end in one message naming the rule and the field.
. "$(dirname "$0")/prologue.sh"
firewall=$here/../examples/firewall.lua

cat >"$tmp/rules.lua" <<'RULES'
return {
   rules = {
      {action = "accept", proto = "tcp", dst_port = 22},
      {action = "drop", proto = "tcp", src = "65.208.228.223", src_port = 80},
      {action = "drop", proto = "udp", dst_port = "1024-65535"},
      {action = "drop", proto = "icmpv6", src = "fe80::/10"},
      {action = "accept", dst = "0.0.0.0/0"},
   },
   default = "drop",
}
RULES
# The same rules as tshark display filters (quoted packets inside ICMP errors are not headers of
# the packet: the port rules leave ICMP packets out, as the firewall reads only the outer header).
noicmp='!icmp && !icmpv6'
r1="tcp.dstport == 22 && $noicmp"
r2="ip.src == 65.208.228.223 && tcp.srcport == 80 && $noicmp"
r3="udp.dstport >= 1024 && $noicmp"
r4="ipv6.src == fe80::/10 && icmpv6"
r5="ip"
ip='(ip || ipv6)'
# An IP length past the bytes captured (no capture here has a VLAN tag on a cut packet).
mal="((ip && ip.len > frame.cap_len - 14) || (ipv6 && ipv6.plen > frame.cap_len - 54))"
pass="!$ip || (!$mal && (($r1) || (!($r2) && !($r3) && !($r4) && ($r5))))"

# Packets each filter keeps, in one pass of tshark over the file (its io,stat table: one column
# of frames and bytes per filter), printed one count per line in the filters' order.
tshark_counts() {
  local file=$1 spec=io,stat,0 f; shift
  for f in "$@"; do spec+=",$f"; done
  tshark -n -q -o ip.defragment:FALSE -o ipv6.defragment:FALSE -r "$file" -z "$spec" 2>/dev/null |
    awk -F'|' '/<>/ { for (i = 3; i < NF; i += 2) { gsub(/ /, "", $i); print $i } }'
}
dump() { "$here/tcpdump.sh" -t -nn -xx -r "$1" 2>/dev/null; }

# The captures one after the other in one file (mergecap, Wireshark's): IPv4 and IPv6 TCP, UDP and
# ICMP sessions, a VLAN tag, IPv4 fragments, ARP, ND, and cut packets (icmp-snapped, telnet-cooked).
input=$tmp/in.pcap
(cd "$data" && mergecap -F pcap -a -w "$input" v4.pcap v6.pcap tftp_wrq.pcap telnet-cooked.pcap \
  icmp-snapped.pcap arp.pcap lwaftr/tcp-frominet-bound-vlan.pcap \
  lwaftr/tcp-ipv4-toinet-2fragments.pcap lwaftr/ping-v6-reply.pcap lwaftr/ndp_incoming_ns.pcap)
out=$tmp/out.pcap
"$snabb" run "$firewall" "$input" "$out" "$tmp/rules.lua" --report >"$tmp/report.txt" 2>&1 ||
  fail "the firewall exited $?: $(tail -3 "$tmp/report.txt")"
tshark -n -o ip.defragment:FALSE -o ipv6.defragment:FALSE -r "$input" -Y "$pass" \
  -w "$tmp/expected.pcap" 2>/dev/null
dump "$tmp/expected.pcap" >"$tmp/expected.txt"
dump "$out" >"$tmp/actual.txt"
passed=$(grep -c '^[^ 	]' "$tmp/actual.txt" || true)
[ "$passed" -gt 0 ] || check_failed "no packet passed"
cmp -s "$tmp/expected.txt" "$tmp/actual.txt" ||
  check_failed "packets passed differ from tshark's: $(diff "$tmp/expected.txt" "$tmp/actual.txt" | head -4)"

# The counters as the report prints them, against tshark's counts.
keys=(1 2 3 4 5 default non-IP malformed)
mapfile -t counts < <(tshark_counts "$input" frame \
  "$ip && !$mal && ($r1)" \
  "$ip && !$mal && !($r1) && ($r2)" \
  "$ip && !$mal && !($r1) && !($r2) && ($r3)" \
  "$ip && !$mal && !($r1) && !($r2) && !($r3) && ($r4)" \
  "$ip && !$mal && !($r1) && !($r2) && !($r3) && !($r4) && ($r5)" \
  "$ip && !$mal && !($r1) && !($r2) && !($r3) && !($r4) && !($r5)" \
  "!$ip" \
  "$ip && $mal")
[ "${#counts[@]}" -eq 9 ] || fail "tshark's io,stat gave ${#counts[@]} counts, not 9"
packets=${counts[0]}
count() { awk -v k="$1" '$1 == k { gsub(",", "", $NF); print $NF }' "$tmp/report.txt"; }
sum=0
line="$packets packets, $passed passed:"
for i in "${!keys[@]}"; do
  k=${keys[i]} want=${counts[i + 1]}
  got=$(count "$k")
  [ "$got" = "$want" ] || check_failed "counter $k is '$got', tshark counts $want"
  sum=$((sum + ${got:-0}))
  line+=" $k $want"
done
echo "$line"
[ "$sum" -eq "$packets" ] || check_failed "the counters add up to $sum of $packets packets"
[ "$packets" -gt 400 ] || check_failed "only $packets packets read"

# Bad rules: one line naming the rule and the field.
echo 'return {rules = {{action = "accept"}, {action = "drop", dst_prot = 80}}}' >"$tmp/bad.lua"
if "$snabb" run "$firewall" "$data/v4.pcap" "$tmp/o.pcap" "$tmp/bad.lua" >"$tmp/err.txt" 2>&1; then
  check_failed "a misspelt field was accepted"
fi
grep -q "rule 2: unknown field 'dst_prot'" "$tmp/err.txt" || check_failed "bad field: $(cat "$tmp/err.txt")"
echo 'return {rules = {{action = "drop", proto = "udp", dst_port = "9-2"}}}' >"$tmp/bad.lua"
"$snabb" run "$firewall" "$data/v4.pcap" "$tmp/o.pcap" "$tmp/bad.lua" >"$tmp/err.txt" 2>&1 || true
grep -q 'rule 1: dst_port must be a port 0-65535 or a range "LOW-HIGH", got "9-2"' "$tmp/err.txt" ||
  check_failed "bad range: $(cat "$tmp/err.txt")"
[ "$(wc -l <"$tmp/err.txt")" -eq 1 ] || check_failed "the message is not one line: $(cat "$tmp/err.txt")"

finish firewall_test

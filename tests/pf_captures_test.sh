#!/usr/bin/env bash
# The generated captures of data/pcap/pf/ (the pcap-filter tests' packets): pf_captures.lua run
# again writes exactly the committed files (no file more or less, byte for byte), and tshark reads
# in them what the script means to write: VLAN stacks, IPv6 extension header chains and fragment
# offsets, IPv4 header lengths and fragments, SCTP, GRE, ICMP types, ARP/RARP opcodes, 802.3/LLC,
# ND, and the captured and wire lengths of the cut frames.
. "$(dirname "$0")/prologue.sh"

mkdir "$tmp/pf"
"$snabb" "$here/pf_captures.lua" "$tmp/pf"
[ "$(cd "$data/pf" && ls)" = "$(cd "$tmp/pf" && ls)" ] ||
  fail "pf_captures.lua writes $(cd "$tmp/pf" && ls | paste -sd' '), data/pcap/pf holds $(cd "$data/pf" && ls | paste -sd' ')"
for f in "$tmp"/pf/*.pcap; do
  cmp "$f" "$data/pf/${f##*/}" ||
    fail "data/pcap/pf/${f##*/} is not what pf_captures.lua writes (run: snabb tests/pf_captures.lua)"
done

# ts FILE FIELD...: tshark's fields of every frame, tab-separated, repeated fields comma-joined.
ts() {
  local file=$1 fields=(); shift
  for f in "$@"; do fields+=(-e "$f"); done
  HOME=$tmp tshark -o ip.defragment:FALSE -o ipv6.defragment:FALSE -n -r "$data/pf/$file" -T fields \
    -E occurrence=a -E aggregator=, "${fields[@]}" 2>"$tmp/tshark.err" ||
    fail "tshark -r $file: $(cat "$tmp/tshark.err")"
}
# expect FILE 'FIELDS' 'LINES': tshark's lines for FIELDS (frame.number first) that start with
# the frame numbers of LINES ("N:v1,v2|N:..." with tabs written as spaces) are LINES.
expect() {
  local file=$1 fields=$2 want=$3 got
  # shellcheck disable=SC2086  # FIELDS is a list
  ts "$file" frame.number $fields | tr '\t' ' ' | sed 's/ *$//' >"$tmp/ts.txt"
  got=$(echo "$want" | tr '|' '\n' | while read -r n _; do grep "^$n " "$tmp/ts.txt" || true; done |
    paste -sd'|')
  [ "$got" = "$want" ] || fail "$file, tshark -e $fields:
  got  $got
  want $want"
}

# VLAN stacks: 802.1Q in 802.1Q, 802.1ad + 802.1Q, three tags, 0x9100, PCP/DEI bits.
expect vlan.pcap "eth.type vlan.id ieee8021ad.id ip.dst ipv6.dst arp.opcode" \
  "1 0x8100 100  10.0.0.1|2 0x8100 200,100  192.168.1.1|3 0x88a8 10 300  2001:db8::2|7 0x8100 1,2,3  10.0.0.1|8 0x88a8 20 300   2|10 0x9100 100  192.168.200.1|11 0x8100 100    3|15 0x88a8 2,4095 1  ff05::2"
# IPv6: each extension header before TCP/UDP/ICMPv6, fragments first and not, AH, chains.
expect ip6ext.pcap "ipv6.nxt ipv6.fraghdr.offset ipv6.fraghdr.more tcp.dstport udp.dstport icmpv6.type ah.spi" \
  "4 0   80|7 43   80|10 44 0 1 80|11 44 185 1|12 44 370 0|15 60   80|18 51   65535   0x00000100|23 0   80|24 0 0 1  0|27 0 3 0|28 58     135"
# IPv4: options (header lengths 32, 24, 60), fragments (offsets in 8-byte units), SCTP, GRE, ICMP.
expect ip4.pcap "ip.hdr_len ip.flags.mf ip.frag_offset ip.proto tcp.dstport udp.dstport sctp.dstport gre.proto icmp.type" \
  "21 32 0 0 6 80|22 24 0 0 17  53|23 60 0 0 1     0|25 20 1 0 6 80|26 20 1 7 6|27 20 0 13 6|32 20 0 1 6|35 20 0 0 132   80|37 20,20 0,0 0,0 47,1    0x0800 8|61 20 0 0 1     42"
# Link layer: ARP and RARP opcodes, 802.3 + LLC, broadcast and multicast MACs, ND and MLD.
expect l2.pcap "eth.dst eth.type llc.dsap arp.opcode icmpv6.type" \
  "1 ff:ff:ff:ff:ff:ff 0x0806  1|3 ff:ff:ff:ff:ff:ff 0x8035  3|4 00:11:22:33:44:55 0x8035  4|5 01:80:c2:00:00:00  0x42|15 33:33:00:00:00:02 0x86dd   133|17 33:33:ff:99:aa:bb 0x86dd   135|20 33:33:00:00:00:16 0x86dd   143"
# Cut frames: the wire length stays, the bytes captured go down to none.
expect truncated.pcap "frame.len frame.cap_len" \
  "1 1514 54|2 1514 1514|13 1514 34|21 1514 14|26 1514 0|27 62 62|39 62 14|47 82 54|59 60 20|63 142 34"
echo "pf_captures_test: ok"

#!/usr/bin/env bash
# End-to-end: the L2 apps on real captures (tests/data/pcap), their output read back by tshark and
# compared with what tshark reads in their input: ARP replies and requests (apps.ipv4.arp), NA and
# NS with their ICMPv6 checksums (apps.ipv6.nd_light), VLAN tags added, removed and demultiplexed
# (apps.vlan.vlan), frames forwarded per port by the bridges (apps.bridge.*); every app's counters
# add up to the frames it was given, and frames cut short (editcap -s) are dropped and counted.
# The graphs are tests/l2_apps_run.lua's.
. "$(dirname "$0")/prologue.sh"
run() { "$snabb" "$here/l2_apps_run.lua" "$@" >"$tmp/counters.txt" || fail "l2_apps_run.lua $1 exited $?"; }
# A counter of the last run: n APP NAME.
n() { awk -v a="$1" -v c="$2" '$1 == a && $2 == c { print $3; f = 1 } END { if (!f) print "missing" }' "$tmp/counters.txt"; }
# tshark's fields, one line per frame, separated by spaces: fields FILE [FILTER] -e FIELD...
fields() {
  local file=$1; shift
  local filter=()
  if [ "${1:-}" != -e ]; then filter=(-Y "$1"); shift; fi
  tshark -r "$file" "${filter[@]}" -T fields -E separator=' ' "$@" 2>/dev/null
}
# Frames in a capture (matching a libpcap filter): frames FILE [FILTER]. tcpdump, as tshark takes
# about a second of CPU to start.
frames() { "$here/tcpdump.sh" -nn -r "$1" ${2:+"$2"} 2>/dev/null | grep -c . || true; }
# Source MACs and their counts, as "COUNT MAC" lines.
sources() { "$here/tcpdump.sh" -nn -e -r "$1" 2>/dev/null | awk '{ print $2 }' | sort | uniq -c | awk '{$1=$1};1'; }
ND='icmp6 and (ip6[40] == 135 or ip6[40] == 136)' NA='icmp6 and ip6[40] == 136'
hex() { "$here/tcpdump.sh" -nn -xx -r "$1" 2>/dev/null | grep -E '^\s+0x'; }
expect() { # expect WHAT ACTUAL EXPECTED
  [ "$2" = "$3" ] || check_failed "$1: got '$2', expected '$3'"
}
lw=$data/lwaftr
MAC=02:00:00:00:00:01 NEXT_MAC=02:00:00:00:00:fe

# --- ARP: a request for the address we are given is answered, from us, to its sender.
read -r their_mac their_ip our_ip <<<"$(fields "$lw/arp_request_recv.pcap" -e arp.src.hw_mac -e arp.src.proto_ipv4 -e arp.dst.proto_ipv4)"
run arp "$lw/arp_request_recv.pcap" "$tmp/arp.pcap" "$our_ip"
expect "ARP reply" "$(fields "$tmp/arp.pcap" -e eth.src -e eth.dst -e arp.opcode -e arp.src.hw_mac -e arp.src.proto_ipv4 -e arp.dst.hw_mac -e arp.dst.proto_ipv4)" \
  "$MAC $their_mac 2 $MAC $our_ip $their_mac $their_ip"
expect "ARP reply counters" "$(n arp in-arp-request-packets) $(n arp out-arp-reply-packets) $(n arp out-arp-reply-bytes)" "1 1 42"
# ... and one for another address is counted, not answered.
run arp "$lw/arp_request_recv.pcap" "$tmp/arp.pcap" 10.99.99.99
expect "ARP request for another address" "$(frames "$tmp/arp.pcap") $(n arp in-arp-request-packets) $(n arp out-arp-reply-packets)" "0 1 0"
# Cut to 30 bytes (an ARP frame is 42): dropped and counted.
editcap -s 30 "$lw/arp_request_recv.pcap" "$tmp/arp-cut.pcap"
run arp "$tmp/arp-cut.pcap" "$tmp/arp.pcap" "$our_ip"
expect "ARP cut" "$(frames "$tmp/arp.pcap") $(n arp in-truncated-packets) $(n arp in-arp-request-packets)" "0 1 0"

# --- ARP resolving its next hop on arp.pcap (a request from the next hop, then a reply from our
# address), with a TCP frame from north: it asks, learns the next hop's MAC from its request,
# answers it, and sends the frame to that MAC from ours, the rest of it unchanged.
read -r next_mac next_ip self_ip <<<"$(fields "$data/arp.pcap" arp.opcode==1 -e arp.src.hw_mac -e arp.src.proto_ipv4 -e arp.dst.proto_ipv4)"
run arp "$data/arp.pcap" "$tmp/resolve.pcap" "$self_ip" "$next_ip" "$lw/tcp-frominet-bound.pcap"
fields "$tmp/resolve.pcap" -e eth.src -e eth.dst -e arp.opcode -e arp.dst.proto_ipv4 -e ip.dst >"$tmp/resolve.txt"
expect "ARP request" "$(sed -n 1p "$tmp/resolve.txt")" "$MAC ff:ff:ff:ff:ff:ff 1 $next_ip "
expect "ARP reply to the next hop" "$(sed -n 2p "$tmp/resolve.txt")" "$MAC $next_mac 2 $next_ip "
tcp_dst=$(fields "$lw/tcp-frominet-bound.pcap" -e ip.dst)
expect "frame from north" "$(sed -n '3,$p' "$tmp/resolve.txt")" "$MAC $next_mac   $tcp_dst"
no_macs() { sed '1s/\(0x0000:  \).\{30\}/\1/'; }
expect "frame from north, after the addresses" "$(hex "$tmp/resolve.pcap" | tail -n +7 | no_macs)" \
  "$(hex "$lw/tcp-frominet-bound.pcap" | no_macs)"
expect "ARP resolve counters: in" "$(n arp in-arp-request-packets) $(n arp in-arp-reply-packets) $(n arp in-arp-other-packets) $(n arp in-arp-malformed-packets) $(n arp in-truncated-packets)" "1 1 0 0 0"
expect "ARP resolve counters: out" "$(n arp out-arp-request-packets) $(n arp out-arp-reply-packets) $(n arp out-unresolved-drop-packets)" "1 1 0"
# Snabb's next-hop-macaddr-v4: the 6 bytes as a little-endian number.
mac_number=$(printf '%d' "0x$(echo "$next_mac" | awk -F: '{ print $6 $5 $4 $3 $2 $1 }')")
expect "next-hop-macaddr-v4" "$(n arp next-hop-macaddr-v4)" "$mac_number"

# --- ND: the NS of ndp_incoming_ns.pcap, for the address we are given, gets an NA from it, to its
# sender, solicited and override, with our MAC, and a checksum tshark finds good; the first
# thing sent is our own NS for the next hop, to its solicited-node group.
read -r ns_mac ns_ip target <<<"$(fields "$lw/ndp_incoming_ns.pcap" -e eth.src -e ipv6.src -e icmpv6.nd.ns.target_address)"
run nd "$lw/ndp_incoming_ns.pcap" "$tmp/nd.pcap" "$target" 2001:db8::99
fields "$tmp/nd.pcap" -e icmpv6.type -e eth.src -e eth.dst -e ipv6.src -e ipv6.dst -e ipv6.hlim -e icmpv6.checksum.status \
  -e icmpv6.nd.ns.target_address -e icmpv6.nd.na.flag.s -e icmpv6.nd.na.flag.o -e icmpv6.nd.na.target_address \
  -e icmpv6.opt.linkaddr >"$tmp/nd.txt"
expect "NS" "$(grep '^135 ' "$tmp/nd.txt")" "135 $MAC 33:33:ff:00:00:99 $target ff02::1:ff00:99 255 1 2001:db8::99    $MAC"
expect "NA" "$(grep '^136 ' "$tmp/nd.txt")" "136 $MAC $ns_mac $target $ns_ip 255 1  1 1 $target $MAC"
expect "ND counters" "$(n nd ns_received) $(n nd na_sent) $(n nd ns_sent) $(n nd rxerrors)" "1 1 1 0"
# The same NS with its last byte changed: tshark finds its checksum bad, and so does nd_light.
cp "$lw/ndp_incoming_ns.pcap" "$tmp/ns-bad.pcap"
printf '\252' | dd of="$tmp/ns-bad.pcap" bs=1 seek=$((24 + 16 + 85)) conv=notrunc status=none
expect "tshark on the changed NS" "$(fields "$tmp/ns-bad.pcap" -e icmpv6.checksum.status)" "0"
run nd "$tmp/ns-bad.pcap" "$tmp/nd.pcap" "$target" 2001:db8::99
expect "NS with a bad checksum" "$(frames "$tmp/nd.pcap" "$NA") $(n nd ns_checksum_errors) $(n nd rxerrors) $(n nd na_sent)" "0 1 1 0"
# Cut to 70 bytes (an NS is 78 before its options): dropped and counted.
editcap -s 70 "$lw/ndp_incoming_ns.pcap" "$tmp/ns-cut.pcap"
run nd "$tmp/ns-cut.pcap" "$tmp/nd.pcap" "$target" 2001:db8::99
expect "NS cut" "$(frames "$tmp/nd.pcap" "$NA") $(n nd nd_protocol_errors) $(n nd rxerrors)" "0 1 1"

# --- Two nd_light resolve each other (the wire between them written both ways: first their NS
# and NA), then v6.pcap goes through: out of the second with the first's header (second's MAC,
# first's MAC, IPv6).
run nd_pair "$data/v6.pcap" "$tmp/w12.pcap" "$tmp/w21.pcap" "$tmp/north.pcap"
expect "NS on the wire" "$(fields "$tmp/w12.pcap" icmpv6.type==135 -e eth.dst -e icmpv6.checksum.status -e icmpv6.nd.ns.target_address | head -1)" \
  "33:33:ff:00:00:02 1 2001:db8::2"
expect "NA on the wire" "$(fields "$tmp/w21.pcap" icmpv6.type==136 -e eth.dst -e icmpv6.checksum.status -e icmpv6.nd.na.target_address -e icmpv6.opt.linkaddr | head -1)" \
  "$MAC 1 2001:db8::2 $NEXT_MAC"
v6=$(frames "$data/v6.pcap")
v6_nd=$(frames "$data/v6.pcap" "$ND")
expect "frames through, with the learned header" "$(fields "$tmp/north.pcap" -e eth.dst -e eth.src -e eth.type | sort | uniq -c | awk '{$1=$1};1')" \
  "$((v6 - v6_nd)) $NEXT_MAC $MAC 0x86dd"
# v6.pcap's own NS and NA reach the second's south: none is for it (rxerrors).
wire12=$(frames "$tmp/w12.pcap")
expect "nd2 counts every frame from south once" "$(($(frames "$tmp/north.pcap") + $(n nd2 ns_received) + $(n nd2 na_received) + $(n nd2 rxerrors)))" "$wire12"
expect "nd2 errors" "$(n nd2 rxerrors)" "$v6_nd"
expect "ND pair status" "$(n nd1 status) $(n nd2 status) $(n nd1 txdrop)" "1 1 0"

# --- VLAN: untagging tcp-frominet-bound-vlan.pcap gives tcp-frominet-bound.pcap, byte for byte,
# and tagging that gives the first back; a Tagger with dot1ad writes TPID 0x88a8.
vid=$(fields "$lw/tcp-frominet-bound-vlan.pcap" -e vlan.id)
run untag "$lw/tcp-frominet-bound-vlan.pcap" "$tmp/untagged.pcap" "$vid"
expect "untagged" "$(hex "$tmp/untagged.pcap")" "$(hex "$lw/tcp-frominet-bound.pcap")"
expect "untagged, per tshark" "$(fields "$tmp/untagged.pcap" -e vlan.id -e eth.type)" " 0x0800"
expect "Untagger counters" "$(n vlan untagged) $(n vlan wrong_tag) $(n vlan no_tag)" "1 0 0"
run tag "$lw/tcp-frominet-bound.pcap" "$tmp/tagged.pcap" "$vid"
expect "tagged" "$(hex "$tmp/tagged.pcap")" "$(hex "$lw/tcp-frominet-bound-vlan.pcap")"
run tag "$lw/tcp-frominet-bound.pcap" "$tmp/tagged.pcap" 5 dot1ad
expect "tagged dot1ad" "$(fields "$tmp/tagged.pcap" -e eth.type -e ieee8021ad.id -e ip.dst)" "0x88a8 5 $tcp_dst"
# Another VID, no tag, a frame cut inside its tag: dropped, each under its counter.
run untag "$lw/tcp-frominet-bound-vlan.pcap" "$tmp/untagged.pcap" $((vid + 1))
expect "another VID" "$(frames "$tmp/untagged.pcap") $(n vlan wrong_tag)" "0 1"
run untag "$data/v4.pcap" "$tmp/untagged.pcap" "$vid"
expect "no tag" "$(frames "$tmp/untagged.pcap") $(n vlan no_tag)" "0 $(frames "$data/v4.pcap")"
editcap -s 16 "$lw/tcp-frominet-bound-vlan.pcap" "$tmp/vlan-cut.pcap"
run untag "$tmp/vlan-cut.pcap" "$tmp/untagged.pcap" "$vid"
expect "cut in the tag" "$(frames "$tmp/untagged.pcap") $(n vlan truncated)" "0 1"
# VlanMux: a trunk of tagged and untagged frames goes out on vlan<VID> and native, untagged;
# muxed back, the trunk holds the same frames.
mergecap -F pcap -a -w "$tmp/trunk.pcap" "$lw/tcp-frominet-bound-vlan.pcap" "$data/v4.pcap" "$lw/tcp-frominet-bound-vlan.pcap"
run mux "$tmp/trunk.pcap" "$vid" "$tmp/vlan.pcap" "$tmp/native.pcap" "$tmp/trunk-out.pcap"
expect "vlan$vid port" "$(fields "$tmp/vlan.pcap" -e vlan.id -e ip.dst | sort -u)" " $tcp_dst"
expect "vlan$vid port frames" "$(frames "$tmp/vlan.pcap") $(n demux demuxed)" "2 2"
expect "native port" "$(hex "$tmp/native.pcap")" "$(hex "$data/v4.pcap")"
expect "trunk again, same frames" "$(hex "$tmp/trunk-out.pcap" | sort | md5sum)" "$(hex "$tmp/trunk.pcap" | sort | md5sum)"
expect "VlanMux counters" "$(n demux native_out) $(n demux no_port) $(n mux muxed) $(n mux native_in)" "$(frames "$data/v4.pcap") 0 2 $(frames "$data/v4.pcap")"

# --- Bridges: v4.pcap split by source MAC into ports a and b (c only listens). The learning
# bridge reads port a first: a's frames to b's unknown address are flooded to b and c; by then it
# has learned a's address, so b's frames go to a alone. The flooding bridge floods everything.
read -r mac_a mac_b <<<"$(fields "$data/v4.pcap" -e eth.src | awk '!seen[$1]++' | tr '\n' ' ')"
"$here/tcpdump.sh" -r "$data/v4.pcap" -w "$tmp/a.pcap" ether src "$mac_a" 2>/dev/null
"$here/tcpdump.sh" -r "$data/v4.pcap" -w "$tmp/b.pcap" ether src "$mac_b" 2>/dev/null
na=$(frames "$tmp/a.pcap") nb=$(frames "$tmp/b.pcap")
mkdir "$tmp/br"
run learning "$tmp/a.pcap" "$tmp/b.pcap" "$tmp/br"
expect "learning: port a" "$(hex "$tmp/br/a.pcap")" "$(hex "$tmp/b.pcap")"
expect "learning: port b" "$(hex "$tmp/br/b.pcap")" "$(hex "$tmp/a.pcap")"
expect "learning: port c" "$(sources "$tmp/br/c.pcap")" "$na $mac_a"
expect "learning counters" "$(n bridge flood) $(n bridge unicast) $(n bridge learned) $(n bridge addresses)" "$na $nb 2 2"
run flooding "$tmp/a.pcap" "$tmp/b.pcap" "$tmp/br"
expect "flooding: port c" "$(sources "$tmp/br/c.pcap" | tr '\n' ' ')" \
  "$(printf '%s %s\n%s %s\n' "$na" "$mac_a" "$nb" "$mac_b" | sort -k2 | tr '\n' ' ')"
expect "flooding: port a" "$(hex "$tmp/br/a.pcap")" "$(hex "$tmp/b.pcap")"
expect "flooding counters" "$(n bridge flood) $(n bridge discard)" "$((na + nb)) 0"
editcap -s 10 "$tmp/a.pcap" "$tmp/a-cut.pcap"
run learning "$tmp/a-cut.pcap" "$tmp/b.pcap" "$tmp/br"
expect "learning: frames cut to 10 bytes" "$(n bridge truncated) $(n bridge flood) $(n bridge learned) $(frames "$tmp/br/c.pcap")" "$na $nb 1 $nb"

finish l2_apps_test

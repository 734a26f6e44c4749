#!/usr/bin/env bash
# lib.checksum against tshark on every capture of tests/data/pcap (lwaftr/ included): tshark, with
# its checksum validation on and reassembly off, reads each capture's IPv4, TCP, UDP, ICMP and
# ICMPv6 checksum statuses; checksum_check.lua verifies the same packets with lib.checksum and
# must agree packet by packet, and recomputing a checksum tshark calls good must give the stored
# value.
. "$(dirname "$0")/prologue.sh"
command -v tshark >/dev/null || fail "tshark is not installed (tools/install-deps)"
pairs=()
for pcap in "$data"/*.pcap "$data"/lwaftr/*.pcap; do
  tsv=$tmp/$(basename "$pcap").tsv
  # HOME: tshark wants a profile directory; Bazel's sandbox has none.
  HOME=$tmp tshark -r "$pcap" -o ip.check_checksum:TRUE -o tcp.check_checksum:TRUE \
    -o udp.check_checksum:TRUE -o ip.defragment:FALSE -o ipv6.defragment:FALSE \
    -T fields -e frame.number -e ip.checksum.status -e tcp.checksum.status \
    -e udp.checksum.status -e icmp.checksum.status -e icmpv6.checksum.status \
    >"$tsv" 2>"$tmp/tshark.err" || fail "tshark on $pcap: $(cat "$tmp/tshark.err")"
  pairs+=("$pcap" "$tsv")
done
"$snabb" "$here/checksum_check.lua" "${pairs[@]}"

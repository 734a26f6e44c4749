#!/usr/bin/env bash
# End-to-end, as root: network namespaces joined by veth pairs, made and removed here. Captures sent
# from one namespace by our AF_PACKET TX arrive in another, where our RX writes them to a pcap: every
# frame, byte for byte (VLAN tags too: the kernel strips them, the driver puts them back). Two
# members of a fanout group share an interface by flow. A graph bridging two veths carries ping
# between two namespaces. A missing interface is one message; one
# that disappears and comes back is reported and reopened. With the offloads veth has on by default:
# 20 MB over TCP and UDP datagrams cross that bridge intact (their checksums, left to the
# "hardware", are completed); a 20 MB TCP transfer captured by our RX arrives whole, its 64 KiB GSO
# frames cut into MTU-sized segments with correct checksums; frames too large for a packet, and
# frames larger than the MTU sent, are counted and logged.
. "$(dirname "$0")/prologue.sh"
a=snabb-a-$$ b=snabb-b-$$ c=snabb-c-$$
at_exit 'for ns in $a $b $c; do ip netns del "$ns" 2>/dev/null || true; done'
in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

for ns in $a $b $c; do
  ip netns add "$ns"
  in_ns "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  in_ns "$ns" ip link set lo up
done
veth() { # veth NS1 IF1 NS2 IF2
  ip link add "$2-$$" type veth peer name "$4-$$"
  ip link set "$2-$$" netns "$1" name "$2"
  ip link set "$4-$$" netns "$3" name "$4"
  in_ns "$1" ip link set "$2" up
  in_ns "$3" ip link set "$4" up
}
veth $a va $b vb
veth $c vc $b vc2

bytes() { "$here/tcpdump.sh" -nn -t -xx -r "$1" 2>/dev/null; }
bytes_of() { "$here/tcpdump.sh" -nn -t -xx -r "$1" "$2" 2>/dev/null; }

for name in v4.pcap lwaftr/tcp-frominet-bound-vlan.pcap tftp_wrq.pcap; do
  out="$tmp/$(basename "$name")"
  in_ns $b "$snabb" run "$here/configs/af_packet_capture.lua" vb "$out" --duration 2.5 &
  capture=$!
  sleep 1
  # On one CPU: a sender moving between CPUs can reorder frames in the kernel's per-CPU backlogs
  # (seen once in three runs at a load average of 12).
  in_ns $a taskset -c 0 "$snabb" run "$here/configs/af_packet_send.lua" "$data/$name" va --duration 0.5 ||
    fail "sending $name"
  wait "$capture" || fail "capture of $name"
  bytes "$data/$name" >"$tmp/expected.txt"
  bytes "$out" >"$tmp/actual.txt"
  cmp -s "$tmp/expected.txt" "$tmp/actual.txt" ||
    fail "$name over veth: $(wc -l <"$tmp/expected.txt") lines sent, $(wc -l <"$tmp/actual.txt") received; $(diff "$tmp/expected.txt" "$tmp/actual.txt" | head -4)"
  echo "ok: $name arrived byte for byte"
done

# Two processes in one PACKET_FANOUT group (fanout = {group = 42, mode = "hash"}) share vb: every
# frame reaches exactly one of them, and frames of one flow the same one (the kernel hashes flows).
# A third asking for another mode of the same group is refused, in words.
"$snabb" gen-pcap "$tmp/flows.pcap" --flows 16 --packets 1600 >/dev/null
for n in 1 2; do
  in_ns $b "$snabb" run "$here/configs/af_packet_fanout.lua" vb 42 "$tmp/fanout$n.pcap" --duration 3 &
done
sleep 1.5
if in_ns $b "$snabb" run "$here/configs/af_packet_fanout.lua" vb 42 "$tmp/fanout3.pcap" lb \
     --duration 0.1 >/dev/null 2>"$tmp/fanout3.txt"; then
  fail "fanout: a member with mode lb joined hash group 42"
fi
grep -q "af_packet: PACKET_FANOUT group 42 on vb (another member of the group has another mode?): Invalid argument" \
  "$tmp/fanout3.txt" || fail "fanout: mode lb in hash group 42: $(cat "$tmp/fanout3.txt")"
in_ns $a "$snabb" run "$here/configs/af_packet_send.lua" "$tmp/flows.pcap" va --duration 0.5 || fail "sending flows"
wait
sources() { "$here/tcpdump.sh" -nn -r "$1" 2>/dev/null | awk '{print $3}' | sort -u; }
n1=$("$here/tcpdump.sh" -nn -r "$tmp/fanout1.pcap" 2>/dev/null | wc -l)
n2=$("$here/tcpdump.sh" -nn -r "$tmp/fanout2.pcap" 2>/dev/null | wc -l)
[ $((n1 + n2)) -eq 1600 ] && [ "$n1" -gt 0 ] && [ "$n2" -gt 0 ] ||
  fail "fanout: $n1 + $n2 frames of 1600, each member should get some"
[ -z "$(comm -12 <(sources "$tmp/fanout1.pcap") <(sources "$tmp/fanout2.pcap"))" ] ||
  fail "fanout: a flow reached both members"
echo "ok: fanout group of two: $n1 + $n2 frames, no flow split"

# ping between namespaces a and c, through the graph bridging vb and vc2 in b.
in_ns $a ip addr add 10.77.0.1/24 dev va
in_ns $c ip addr add 10.77.0.2/24 dev vc
ip netns exec $b "$snabb" run "$here/configs/af_packet_bridge.lua" vb vc2 --duration 300 --report >"$tmp/bridge.txt" &
bridge=$!
sleep 1
in_ns $a ping -c 3 -i 0.2 -W 2 10.77.0.2 >"$tmp/ping.txt" || fail "ping through the bridge: $(cat "$tmp/ping.txt")"
grep -q "3 received" "$tmp/ping.txt" || fail "ping: $(cat "$tmp/ping.txt")"
echo "ok: ping through the graph: $(grep -o '[0-9.]*/[0-9.]*/[0-9.]*/[0-9.]* ms' "$tmp/ping.txt")"

# 20 MB over TCP through the bridge, byte-exact, and UDP datagrams: veth leaves TCP and UDP checksums
# to the "hardware" (CHECKSUM_PARTIAL) and hands TCP over in GSO frames of up to 64 KiB.
listening() { # listening NS PORT: waits (at most 5 s) until something listens on PORT in NS
  for _ in $(seq 50); do in_ns "$1" ss -Hlntu | grep -q ":$2 " && return 0; sleep 0.1; done
  fail "nothing listens on port $2 in $1"
}
tcp_transfer() { # tcp_transfer FROM_NS TO_NS TO_ADDR PORT [SOCAT_OPTIONS]: sends $tmp/sent.bin
  rm -f "$tmp/received.bin"
  local pf=ip4; [ "${3:0:1}" != "[" ] || pf=ip6
  ip netns exec "$2" timeout 60 socat -u "TCP-LISTEN:$4,bind=$3,reuseaddr,pf=$pf" "CREATE:$tmp/received.bin" &
  local server=$!
  listening "$2" "$4"
  in_ns "$1" timeout 60 socat -u "OPEN:$tmp/sent.bin" "TCP:$3:$4,connect-timeout=5${5:-}" ||
    fail "TCP to $3 through the graph: sender failed or timed out"
  wait $server || fail "TCP to $3 through the graph: receiver failed or timed out"
  [ "$(sha256sum <"$tmp/sent.bin")" = "$(sha256sum <"$tmp/received.bin")" ] ||
    fail "TCP to $3: $(stat -c %s "$tmp/received.bin") bytes received of 20971520, or different"
}
head -c 20971520 /dev/urandom >"$tmp/sent.bin"
tcp_transfer $a $c 10.77.0.2 5001
echo "ok: 20 MB over TCP through the bridge, same sha256"
ip netns exec $c timeout 20 socat -u UDP-RECV:5002,bind=10.77.0.2 "CREATE:$tmp/udp.txt" &
udp=$!
listening $c 5002
for i in $(seq 20); do
  printf 'datagram %02d\n' "$i" | in_ns $a socat -u - UDP-SENDTO:10.77.0.2:5002
done
for _ in $(seq 50); do [ "$(wc -l <"$tmp/udp.txt")" -eq 20 ] && break; sleep 0.1; done
kill $udp 2>/dev/null || true
[ "$(cat "$tmp/udp.txt")" = "$(for i in $(seq 20); do printf 'datagram %02d\n' "$i"; done)" ] ||
  fail "UDP through the bridge: $(wc -l <"$tmp/udp.txt") of 20 datagrams arrived"
echo "ok: 20 UDP datagrams through the bridge"
kill -INT $bridge; wait $bridge || true
grep -Eq "^vb: .*, [1-9][0-9]* checksums completed;.*rx_oversize 0," "$tmp/bridge.txt" ||
  fail "bridge report: $(cat "$tmp/bridge.txt")"

# A 20 MB TCP transfer from a to b, captured in b by our RX: every byte is in the capture (the TCP
# segments, deduplicated, tile the stream), in frames no larger than the MTU with correct
# checksums, and the report's counters match the capture. The sender is paced to 20 MB/s
# (SO_MAX_PACING_RATE, 47) so that a capture sharing a loaded machine keeps up: unpaced, veth
# delivers GB/s and a capture given no CPU for a moment loses frames to a full ring (counted as
# kernel drops). Paced, TCP still sends GSO frames (of about 1 ms of data: 14 segments). Over IPv4,
# then over IPv6. (This machine's kernel has no 802.1Q module for a VLAN over veth.)
captured_transfer() { # captured_transfer ADDR PORT SOURCE LARGEST_FRAME
  ip netns exec $b nice -n -10 "$snabb" run "$here/configs/af_packet_capture.lua" vb "$tmp/big.pcap" \
    --duration 120 --report >"$tmp/big.txt" 2>&1 &
  local capture=$!
  sleep 1
  tcp_transfer $a $b "$1" "$2" ,setsockopt-int=1:47:20000000
  sleep 0.5
  kill -INT $capture; wait $capture || fail "capture of the TCP transfer: $(cat "$tmp/big.txt")"
  "$here/tcpdump.sh" -nn -S -r "$tmp/big.pcap" "src $3 and tcp dst port $2" 2>/dev/null |
    grep -oE 'seq [0-9]+:[0-9]+' | cut -d' ' -f2 | sort -u -t: -k1,1n >"$tmp/seq.txt"
  local covered frames largest bad report
  # (Where the segments do not tile the stream, the first place they fail to, to tell a missing
  # segment from one cut at another boundary.)
  covered=$(awk -F: 'NR == 1 { end = $1 } $1 != end && !gap { gap = "segment " $1 ":" $2 " after one ending at " end }
    { if ($2 > end) end = $2; sum += $2 - $1 } END { print (gap ? "no tiling (" gap ")" : sum) }' "$tmp/seq.txt")
  frames=$("$here/tcpdump.sh" -r "$tmp/big.pcap" 2>/dev/null | wc -l)
  largest=$("$here/tcpdump.sh" -nn -e -r "$tmp/big.pcap" 2>/dev/null |
    grep -oE ', length [0-9]+:' | tr -dc '0-9\n' | sort -n | tail -1)
  bad=$("$here/tcpdump.sh" -nn -vv -r "$tmp/big.pcap" 2>/dev/null | grep -cE "incorrect|bad cksum" || true)
  report=$(grep "^vb: " "$tmp/big.txt")
  [ "$covered" = 20971520 ] ||
    fail "capture of a 20 MB TCP transfer to $1: $covered bytes of 20971520 (in $frames frames); $report"
  [ "$largest" -le "$4" ] && [ "$bad" -eq 0 ] ||
    fail "capture of TCP to $1: largest frame $largest bytes (at most $4), $bad incorrect checksums"
  grep -Eq "^vb: rx $frames packets \([1-9][0-9]* segments of [1-9][0-9]* GSO frames.*kernel 0, rx_oversize 0, rx_truncated 0\)" <<<"$report" ||
    fail "capture of TCP to $1: $frames frames in the capture, report: $report"
  echo "ok: 20 MB TCP transfer to $1 captured whole: $frames frames, $(grep -oE '[0-9]+ segments of [0-9]+ GSO frames' <<<"$report")"
}
in_ns $a ip addr add 10.78.0.1/24 dev va
in_ns $b ip addr add 10.78.0.2/24 dev vb
captured_transfer 10.78.0.2 5003 10.78.0.1 1514
for ns in $a $b; do
  in_ns $ns sysctl -qw net.ipv6.conf.all.disable_ipv6=0 net.ipv6.conf.default.disable_ipv6=0
done
in_ns $a sysctl -qw net.ipv6.conf.va.disable_ipv6=0
in_ns $b sysctl -qw net.ipv6.conf.vb.disable_ipv6=0
in_ns $a ip addr add fd00:78::1/64 dev va nodad
in_ns $b ip addr add fd00:78::2/64 dev vb nodad
captured_transfer "[fd00:78::2]" 5004 fd00:78::1 1514

# Frames larger than a packet (an MTU of 12000, 11,042-byte pings) are counted and logged; frames
# up to the packet size (10,232 bytes) are received and sent.
for end in "$a va" "$b vb"; do in_ns ${end% *} ip link set ${end#* } mtu 12000; done
ip netns exec $b "$snabb" run "$here/configs/af_packet_capture.lua" vb "$tmp/jumbo.pcap" --duration 120 \
  --report >"$tmp/jumbo.txt" 2>&1 &
capture=$!
sleep 1
in_ns $a ping -c 2 -i 0.2 -W 2 -M do -s 11000 10.78.0.2 >/dev/null || fail "ping of 11,042 bytes"
in_ns $a ping -c 2 -i 0.2 -W 2 -M do -s 10190 10.78.0.2 >/dev/null || fail "ping of 10,232 bytes"
sleep 0.5
kill -INT $capture; wait $capture || fail "capture of jumbo pings: $(cat "$tmp/jumbo.txt")"
grep -q "^vb: .*rx_oversize 2," "$tmp/jumbo.txt" &&
  grep -q "af_packet: vb: 2 frames larger than a packet (10240 bytes) and not cut into segments that fit were dropped (rx_oversize)" "$tmp/jumbo.txt" ||
  fail "frames over 10240 bytes: $(cat "$tmp/jumbo.txt")"
[ "$("$here/tcpdump.sh" -nn -r "$tmp/jumbo.pcap" 'icmp and len = 10232' 2>/dev/null | wc -l)" -eq 2 ] ||
  fail "10,232-byte pings not captured"
echo "ok: frames over the packet size counted (rx_oversize) and logged; 10,232-byte frames received"
ip netns exec $a "$snabb" run "$here/configs/af_packet_capture.lua" va "$tmp/back.pcap" --duration 3 &
capture=$!
sleep 1
in_ns $b taskset -c 0 "$snabb" run "$here/configs/af_packet_send.lua" "$tmp/jumbo.pcap" vb --duration 0.5 ||
  fail "sending 10,232-byte frames"
wait $capture || fail "capture of 10,232-byte frames sent"
cmp -s <(bytes_of "$tmp/jumbo.pcap" 'len = 10232') <(bytes_of "$tmp/back.pcap" 'len = 10232') ||
  fail "10,232-byte frames sent by our TX did not arrive byte for byte"
echo "ok: 10,232-byte frames sent by our TX arrive byte for byte"

# Sending frames larger than the MTU: counted, logged with the MTU and the frame's size.
in_ns $a ip link set va mtu 1000
"$snabb" gen-pcap "$tmp/1518.pcap" --size 1518 --packets 5 >/dev/null
in_ns $a "$snabb" run "$here/configs/af_packet_send.lua" "$tmp/1518.pcap" va --duration 0.5 \
  --report >"$tmp/mtu.txt" 2>&1 || fail "sending frames over the MTU: $(cat "$tmp/mtu.txt")"
grep -q "^va: .*tx 0 (dropped: tx_oversize 5, errors 0)" "$tmp/mtu.txt" &&
  grep -q "af_packet: va: 5 frames larger than its MTU of 1000 bytes allows (1014 bytes with the Ethernet header, 4 more with a VLAN tag) were dropped (tx_oversize); the largest was 1514 bytes" "$tmp/mtu.txt" ||
  fail "frames over the MTU: $(cat "$tmp/mtu.txt")"
echo "ok: frames over the MTU counted (tx_oversize) and logged"
in_ns $a ip link set va mtu 1500; in_ns $b ip link set vb mtu 1500

# A missing interface at start: one message.
status=0
in_ns $b "$snabb" run "$here/configs/af_packet_capture.lua" nosuch0 "$tmp/x.pcap" --duration 0.2 \
  >/dev/null 2>"$tmp/err.txt" || status=$?
[ "$status" -eq 1 ] && grep -q "af_packet: no interface 'nosuch0'" "$tmp/err.txt" ||
  fail "missing interface: $status $(cat "$tmp/err.txt")"

# The interface disappears while the graph runs, and comes back.
in_ns $b "$snabb" run "$here/configs/af_packet_capture.lua" vb "$tmp/y.pcap" --duration 4 --report \
  >"$tmp/report.txt" 2>"$tmp/log.txt" &
run=$!
sleep 1
in_ns $a ip link del va
sleep 1
veth $a va $b vb
wait $run || fail "run across the interface's absence exited $?"
grep -q "interface vb is gone" "$tmp/log.txt" && grep -q "interface vb is back" "$tmp/log.txt" ||
  fail "not reported: $(cat "$tmp/log.txt")"
echo "ok: vb went away and came back; the run went on"
echo "af_packet_test: OK"

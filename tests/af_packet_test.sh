#!/usr/bin/env bash
# End-to-end, as root: network namespaces joined by veth pairs, made and removed here. Captures sent
# from one namespace by our AF_PACKET TX arrive in another, where our RX writes them to a pcap: every
# frame, byte for byte (VLAN tags too: the kernel strips them, the driver puts them back). Two
# members of a fanout group share an interface by flow. A graph bridging two veths carries ping
# between two namespaces. A missing interface is one message; one
# that disappears and comes back is reported and reopened.
set -euo pipefail
snabb=$(realpath "$1")
here=$(realpath "$(dirname "$0")")
data="$here/data/pcap"
tmp=$(mktemp -d)
a=snabb-a-$$ b=snabb-b-$$ c=snabb-c-$$
cleanup() {
  jobs -p | xargs -r kill 2>/dev/null || true
  for ns in $a $b $c; do ip netns del "$ns" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }
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

for name in v4.pcap lwaftr/tcp-frominet-bound-vlan.pcap tftp_wrq.pcap; do
  out="$tmp/$(basename "$name")"
  in_ns $b "$snabb" run "$here/configs/af_packet_capture.lua" vb "$out" --duration 2.5 &
  capture=$!
  sleep 1
  in_ns $a "$snabb" run "$here/configs/af_packet_send.lua" "$data/$name" va --duration 0.5 ||
    fail "sending $name"
  wait "$capture" || fail "capture of $name"
  bytes "$data/$name" >"$tmp/expected.txt"
  bytes "$out" >"$tmp/actual.txt"
  cmp -s "$tmp/expected.txt" "$tmp/actual.txt" ||
    fail "$name over veth: $(wc -l <"$tmp/expected.txt") lines sent, $(wc -l <"$tmp/actual.txt") received; $(diff "$tmp/expected.txt" "$tmp/actual.txt" | head -4)"
  echo "ok: $name arrived byte for byte"
done

# Two processes in one PACKET_FANOUT group share vb: every frame reaches exactly one of them, and
# frames of one flow the same one (the kernel hashes flows).
"$snabb" gen-pcap "$tmp/flows.pcap" --flows 16 --packets 1600 >/dev/null
for n in 1 2; do
  in_ns $b "$snabb" run "$here/configs/af_packet_fanout.lua" vb 42 "$tmp/fanout$n.pcap" --duration 3 &
done
sleep 1.5
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
in_ns $b "$snabb" run "$here/configs/af_packet_bridge.lua" vb vc2 --duration 8 --report >"$tmp/bridge.txt" &
bridge=$!
sleep 1
in_ns $a ping -c 3 -i 0.2 -W 2 10.77.0.2 >"$tmp/ping.txt" || fail "ping through the bridge: $(cat "$tmp/ping.txt")"
grep -q "3 received" "$tmp/ping.txt" || fail "ping: $(cat "$tmp/ping.txt")"
echo "ok: ping through the graph: $(grep -o '[0-9.]*/[0-9.]*/[0-9.]*/[0-9.]* ms' "$tmp/ping.txt")"
kill -INT $bridge; wait $bridge || true

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

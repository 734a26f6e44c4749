#!/usr/bin/env bash
# End-to-end, as root: one DPDK port shared by two worker processes, each serving its own queue
# pair (DPDK's multi-process: the first to start its EAL is the primary and sets the port up with
# 2 queues each way, the other attaches as a secondary; drivers/README.md). Started and stopped
# together. The port is net_tap (its queues are a multiqueue tap device, which the kernel fills by
# each flow's hash, as RSS does) in a network namespace made here; 1,600 frames of 16 flows are
# sent into the tap from the kernel's side (AF_PACKET). Each worker writes what its queue received
# and sends it back out of its own send queue. Checked: every frame received once (the two
# captures add up to what was sent), both queues served, no flow at both workers, each worker's
# count equal to DPDK's rx_qN_packets for its queue, and every frame sent back (the tap's kernel
# counters; DPDK's tx_qN_packets per queue). A secondary started before the primary's port
# attaches once it is started; one whose EAL's probe of the port failed (the primary stopped,
# answering too late) probes it again. Multi-process needs hugepages: 256 are added for the test (and
# taken away after) on a hugetlbfs mounted in $tmp.
. "$(dirname "$0")/prologue.sh"
. "$(dirname "$0")/dpdk_setup.sh"
ns=snabb-dpdkw-$$ prefix=snabb-dpdkw-$$
# The workers take about 60 pages of 2 MiB (2 x 2,048 mbufs, DPDK's own memory).
dpdk_setup $ns 256 96

eal="--proc-type=auto --file-prefix $prefix --huge-dir $tmp/huge --no-pci --log-level=notice"
eal+=" --vdev net_tap0,iface=snabbtap"
worker() { # worker QUEUE CPU: runs in the background; its PID in $pid
  DPDK_WORKER_EAL="-l $2 $eal" ip netns exec $ns "$snabb" run "$here/configs/dpdk_worker.lua" \
    net_tap0 "$1" 2 "$tmp/q$1.pcap" --report >"$tmp/w$1.txt" 2>&1 &
  pid=$!
}
started() { # started PID: waits (at most 20 s) until its DpdkPort runs (its counter files exist)
  for _ in $(seq 200); do
    [ -e "/var/run/snabb/$1/apps/nic/rx_good_packets.counter" ] && return 0
    kill -0 "$1" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
# Started together and stopped together, as a supervisor does: whichever starts its EAL first is
# the primary (they took themselves both for the primary, and one failed, before the EAL's start
# was serialized), and the primary waits for the secondary to stop polling before it closes the
# port (the secondary died of a segmentation fault in its pull before).
cpus=$(nproc)
worker 0 0; w0=$pid
worker 1 $((1 % cpus)); w1=$pid
started $w0 || fail "worker 0: $(cat "$tmp/w0.txt")"
started $w1 || fail "worker 1: $(cat "$tmp/w1.txt")"

"$snabb" gen-pcap "$tmp/flows.pcap" --flows 16 --packets 1600 >/dev/null
ip netns exec $ns "$snabb" run "$here/configs/af_packet_send.lua" "$tmp/flows.pcap" snabbtap \
  --duration 0.5 >"$tmp/send.txt" 2>&1 || fail "sending: $(cat "$tmp/send.txt")"
# The device's counters reach the apps' counter files once a second: wait until all arrived.
counter() { od -A n -t u8 "/var/run/snabb/$w0/apps/nic/$1.counter" 2>/dev/null | tr -d ' ' || echo 0; }
for _ in $(seq 100); do
  [ "$(counter rx_good_packets)" -ge 1600 ] && [ "$(counter tx_good_packets)" -ge 1600 ] && break
  sleep 0.1
done
back=$(ip netns exec $ns cat /sys/class/net/snabbtap/statistics/rx_packets)
kill -TERM $w0 $w1
wait $w0 || fail "worker 0: $(cat "$tmp/w0.txt")"
wait $w1 || fail "worker 1: $(cat "$tmp/w1.txt")"

count() { "$here/tcpdump.sh" -nn -r "$1" 2>/dev/null | wc -l; }
sources() { "$here/tcpdump.sh" -nn -r "$1" 2>/dev/null | awk '{print $3}' | sort -u; }
xstat() { awk -v k="$2" '$1 == k {print $2}' "$tmp/w$1.txt"; }
n0=$(count "$tmp/q0.pcap") n1=$(count "$tmp/q1.pcap")
[ $((n0 + n1)) -eq 1600 ] && [ "$n0" -gt 0 ] && [ "$n1" -gt 0 ] ||
  fail "queues: $n0 + $n1 frames of 1600, each worker should get some"
[ -z "$(comm -12 <(sources "$tmp/q0.pcap") <(sources "$tmp/q1.pcap"))" ] ||
  fail "a flow reached both queues"
for q in 0 1; do
  n=$(count "$tmp/q$q.pcap")
  [ "$(xstat $q rx_q${q}_packets)" = "$n" ] ||
    fail "worker $q received $n frames, DPDK's rx_q${q}_packets says $(xstat $q rx_q${q}_packets)"
  [ "$(xstat $q tx_q${q}_packets)" = "$n" ] ||
    fail "worker $q sent back $n frames? DPDK's tx_q${q}_packets says $(xstat $q tx_q${q}_packets)"
done
[ "$back" -eq 1600 ] || fail "the tap received $back frames back from the workers, not 1600"
[ "$(cat "$tmp/w0.txt" "$tmp/w1.txt" | grep -c "^dpdk: secondary process")" -eq 1 ] ||
  fail "not one primary and one secondary: $(cat "$tmp/w0.txt" "$tmp/w1.txt")"
echo "ok: net_tap0 with 2 queues shared by 2 processes: queue 0 $n0 frames, queue 1 $n1, no flow split, = DPDK's per-queue counters, all sent back"

# A secondary whose EAL starts before the primary has started the port (its EAL attaches to the
# device then, without the queues net_tap hands over at attach) attaches again once the port is
# started, and serves its queue; at exit it gives its mbufs back, and another secondary takes them.
# The order is made by files: the primary starts the port once "go" exists, written when the
# secondary has its mbufs.
eal="${eal/$prefix/$prefix-late}"
at_exit "rm -rf '/var/run/dpdk/$prefix-late' '/var/run/dpdk/$prefix-late.snabb-lock'"
DPDK_WORKER_EAL="-l 0 $eal" ip netns exec $ns "$snabb" "$here/configs/dpdk_late_primary.lua" net_tap0 \
  "$tmp" >"$tmp/late0.txt" 2>&1 &
late0=$!
for _ in $(seq 200); do [ -e "$tmp/ready" ] && break; sleep 0.1; done
[ -e "$tmp/ready" ] || fail "late primary: $(cat "$tmp/late0.txt")"
worker 1 $((1 % cpus)); w1=$pid
for _ in $(seq 200); do grep -q "^dpdk: secondary process" "$tmp/w1.txt" && break; sleep 0.1; done
touch "$tmp/go"
started $w1 || fail "early secondary: $(cat "$tmp/w1.txt")"
ip netns exec $ns "$snabb" run "$here/configs/af_packet_send.lua" "$tmp/flows.pcap" snabbtap \
  --duration 0.5 >"$tmp/send.txt" 2>&1 || fail "sending: $(cat "$tmp/send.txt")"
w0=$w1
for _ in $(seq 100); do
  [ "$(counter rx_good_packets)" -ge 1600 ] 2>/dev/null && break
  kill -0 $w1 2>/dev/null || break
  sleep 0.1
done
kill -TERM $w1 2>/dev/null; wait $w1 || fail "early secondary: $(cat "$tmp/w1.txt")"
n1=$(count "$tmp/q1.pcap")
[ "$n1" -gt 0 ] && [ "$(xstat 1 rx_q1_packets)" = "$n1" ] &&
  [ $(($(xstat 1 rx_q0_packets) + n1)) -eq 1600 ] ||
  fail "early secondary: $n1 frames, rx_q0_packets $(xstat 1 rx_q0_packets), rx_q1_packets $(xstat 1 rx_q1_packets)"
DPDK_WORKER_EAL="-l $((1 % cpus)) $eal" ip netns exec $ns "$snabb" run "$here/configs/dpdk_worker.lua" \
  net_tap0 1 2 "$tmp/again.pcap" --duration 0.2 >"$tmp/again.txt" 2>&1 ||
  fail "a secondary after it: $(cat "$tmp/again.txt")"
grep -q "^dpdk: secondary process: [0-9]* mbufs from the primary's pool" "$tmp/again.txt" ||
  fail "a secondary after it: $(cat "$tmp/again.txt")"
touch "$tmp/stop"
wait $late0 || fail "late primary: $(cat "$tmp/late0.txt")"
echo "ok: a secondary started before the primary's port attached once it started and served queue 1 ($n1 frames of 1600); $(grep -o "[0-9]* mbufs from the primary's pool" "$tmp/again.txt") for the next one"

# A secondary whose EAL starts while the primary does not answer (stopped with SIGSTOP, as a
# primary busy setting its port up answered too late under load): its EAL's probe of net_tap0
# fails ("Failed to request queues from primary: 110"), leaving the device on its bus unprobed;
# once the primary answers again, the secondary probes it again and serves its queue (before, it
# failed: "cannot attach to the primary's port (File exists)").
eal="${eal/$prefix-late/$prefix-stopped}"
at_exit "rm -rf '/var/run/dpdk/$prefix-stopped' '/var/run/dpdk/$prefix-stopped.snabb-lock'"
worker 0 0; w0=$pid
started $w0 || fail "worker 0: $(cat "$tmp/w0.txt")"
kill -STOP $w0
worker 1 $((1 % cpus)); w1=$pid
for _ in $(seq 300); do grep -q "Failed to request queues from primary" "$tmp/w1.txt" && break; sleep 0.1; done
kill -CONT $w0
grep -q "Failed to request queues from primary" "$tmp/w1.txt" ||
  fail "the secondary's probe did not fail while the primary was stopped: $(cat "$tmp/w1.txt")"
started $w1 || fail "a secondary whose probe failed: $(cat "$tmp/w1.txt")"
ip netns exec $ns "$snabb" run "$here/configs/af_packet_send.lua" "$tmp/flows.pcap" snabbtap \
  --duration 0.5 >"$tmp/send.txt" 2>&1 || fail "sending: $(cat "$tmp/send.txt")"
for _ in $(seq 100); do
  [ "$(counter rx_good_packets)" -ge 1600 ] && break
  sleep 0.1
done
kill -TERM $w0 $w1
wait $w0 || fail "worker 0: $(cat "$tmp/w0.txt")"
wait $w1 || fail "worker 1: $(cat "$tmp/w1.txt")"
n0=$(count "$tmp/q0.pcap") n1=$(count "$tmp/q1.pcap")
[ $((n0 + n1)) -eq 1600 ] && [ "$n1" -gt 0 ] && [ "$(xstat 1 rx_q1_packets)" = "$n1" ] ||
  fail "after a failed probe: $n0 + $n1 frames of 1600, rx_q1_packets $(xstat 1 rx_q1_packets)"
echo "ok: a secondary whose net_tap probe failed as its EAL started (the primary stopped) probed it again and served queue 1 ($n1 frames of 1600)"

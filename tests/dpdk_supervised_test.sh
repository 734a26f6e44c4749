#!/usr/bin/env bash
# End-to-end, as root: one DPDK port shared by two workers of ONE `snabb run` (the supervisor:
# programs/run/supervisor.lua), each serving its own queue pair of net_tap (2 queues each way,
# filled by the kernel's tun driver by each flow's hash, as RSS does). The EAL options come from
# the command line (--eal), reach each worker, and each worker's lcore is its own (--lcores=
# INDEX@CPU, from the worker's index and its --cpu). Checked, for each of three batches of 1,600
# frames of 16 flows sent into the tap from the kernel's side (AF_PACKET): every frame received
# once over the two workers, both queues served, each worker's count equal to DPDK's
# rx_qN_packets of its queue. Between the batches, DPDK's primary is killed (kill -9), then a
# secondary: the supervisor says so in one line and restarts the group of workers sharing the
# EAL (DPDK's model: a dead primary takes the port with it), and the next batch flows through
# the new group. At the end: the summary adds up (3 x 1,600 in, out, per worker = its queues'
# counts), the packet pool line has nothing unaccounted, and nothing is left (processes, the run
# directory, DPDK's hugepage and runtime files). 256 hugepages are added for the test and taken
# away after.
. "$(dirname "$0")/prologue.sh"
. "$(dirname "$0")/dpdk_setup.sh"
ns=snabb-dpdks-$$ prefix=snabb-dpdks-$$
dpdk_setup $ns 256 192
# A batch is 8 sends of 200 frames: a tap queue holds 512 frames for its reader, and a worker
# kept off its CPU while one send of 1,600 went (load average 11 on 2 cores) left 512 in each.
"$snabb" gen-pcap "$tmp/flows.pcap" --flows 16 --packets 200 >/dev/null

cpus=$(nproc)
eal="--proc-type=auto --file-prefix $prefix --huge-dir $tmp/huge --no-pci --log-level=notice"
eal+=" --vdev net_tap0,iface=snabbtap"
# supervise ARGS...: snabb run of the two workers in the background; $sup its PID, $dir its run
# directory.
supervise() {
  ip netns exec $ns "$snabb" run "$here/configs/dpdk_supervised.lua" net_tap0 "$@" \
    --cpu "0,$((1 % cpus))" >"$tmp/out.txt" 2>"$tmp/err.txt" &
  sup=$!
  dir=/var/run/snabb/$sup
}

# started N: waits (at most 30 s) until both workers' ports run, the Nth time (counter files of
# their DpdkPorts in run directories other than those of the PIDs already seen).
declare -A seen=()
started() {
  local w pid
  for _ in $(seq 300); do
    kill -0 $sup 2>/dev/null || fail "the supervisor ended: $(cat "$tmp/out.txt" "$tmp/err.txt")"
    local ready=0
    for w in w0 w1; do
      pid=$(basename "$(readlink "$dir/workers/$w" 2>/dev/null)" 2>/dev/null || true)
      [ -n "$pid" ] && [ -z "${seen[$pid]:-}" ] && [ -e "$dir/workers/$w/apps/nic/rx_good_packets.counter" ] &&
        [ -e "$dir/status/$w.dpdk" ] && ready=$((ready + 1))
    done
    [ $ready -eq 2 ] && return 0
    sleep 0.1
  done
  fail "the workers did not start: $(cat "$tmp/err.txt")"
}
# batch N: sends 1,600 frames (16 flows), waits until DPDK counted them and the workers received them,
# checks the accounting per queue; "wQ PID received" lines in $tmp/batchN.txt.
batch() {
  for _ in $(seq 8); do
    ip netns exec $ns "$snabb" run "$here/configs/af_packet_send.lua" "$tmp/flows.pcap" snabbtap \
      --duration 5 >"$tmp/send.txt" 2>&1 || fail "sending: $(cat "$tmp/send.txt")"
  done
  for _ in $(seq 100); do
    "$snabb" "$here/dpdk_supervised_check.lua" "$dir" >"$tmp/batch$1.txt"
    awk '{r += $3; q += $4; g = $5} END {exit !(r >= 1600 && q >= 1600 && g >= 1600)}' "$tmp/batch$1.txt" && break
    sleep 0.1
  done
  local n0 n1
  read -r _ _ n0 q0 _ < <(sed -n 1p "$tmp/batch$1.txt")
  read -r _ _ n1 q1 _ < <(sed -n 2p "$tmp/batch$1.txt")
  [ $((n0 + n1)) -eq 1600 ] && [ "$n0" -gt 0 ] && [ "$n1" -gt 0 ] ||
    fail "batch $1: $n0 + $n1 frames of 1600, each worker should get some: $(cat "$tmp/batch$1.txt")"
  [ "$n0" -eq "$q0" ] && [ "$n1" -eq "$q1" ] ||
    fail "batch $1: workers received $n0 and $n1, DPDK's rx_q0_packets, rx_q1_packets say $q0 and $q1"
  echo "batch $1: queue 0 $n0 frames, queue 1 $n1 (= DPDK's per-queue counters)"
}
# kill_type TYPE N: kills (-9) the worker that is DPDK's TYPE (primary or secondary); checks the
# supervisor's line about it; the group's workers' PIDs so far are in seen[].
kill_type() {
  local w victim=""
  for w in w0 w1; do
    grep -q "process = \"$1\"" "$dir/status/$w.dpdk" && victim=$w
  done
  [ -n "$victim" ] || fail "no worker says it is DPDK's $1: $(cat "$dir"/status/*.dpdk)"
  local pid
  pid=$(basename "$(readlink "$dir/workers/$victim")")
  for w in w0 w1; do seen[$(basename "$(readlink "$dir/workers/$w")")]=1; done
  kill -9 "$pid"
  local line="snabb run: worker $victim (PID $pid, up [0-9.]* s, DPDK's $1) killed by SIGKILL; [0-9,]* packets reclaimed; restarting the DPDK group (file prefix $prefix): w0, w1, in [0-9.]* s"
  for _ in $(seq 100); do grep -q "^$line$" "$tmp/err.txt" && break; sleep 0.1; done
  grep -q "^$line$" "$tmp/err.txt" || fail "no line about $victim's death: $(cat "$tmp/err.txt")"
  echo "killed $victim, DPDK's $1 (PID $pid): the group restarted"
}

# The EAL's options from the config (dpdk.init{args}, here from the environment), in each worker.
DPDK_SUPERVISED_EAL="$eal" supervise 2048
started
batch 0
kill -TERM $sup
wait $sup || fail "snabb run: $(cat "$tmp/out.txt" "$tmp/err.txt")"
grep -q "^in 1,600 (.*) = out 1,600 (.*) + dropped 0 + queued 0 (links) + 0 (interlinks) + lost 0 " "$tmp/out.txt" ||
  fail "the summary does not add up to 1,600: $(cat "$tmp/out.txt")"
echo "EAL options from the config: ok"

# From --eal, with 8,192 mbufs a worker: more than a group worker's free list keeps (4,096), so
# DPDK's mbufs would reach the group's list if the engine gave them back as its own.
supervise 8192 --eal="$eal"
started
[ "$(cat "$dir"/status/w*.dpdk | grep -c 'process = "primary"')" -eq 1 ] &&
  [ "$(cat "$dir"/status/w*.dpdk | grep -c 'process = "secondary"')" -eq 1 ] ||
  fail "not one primary and one secondary: $(cat "$dir"/status/w*.dpdk)"
# Each worker's EAL on an lcore of its own: --lcores=INDEX@CPU, its CPU from --cpu.
grep -q 'lcores = "0@0"' "$dir/status/w0.dpdk" && grep -q "lcores = \"1@$((1 % cpus))\"" "$dir/status/w1.dpdk" ||
  fail "the workers' lcores: $(cat "$dir"/status/w*.dpdk)"
batch 1
kill_type primary
started
batch 2
kill_type secondary
started
batch 3
workers=$(cat "$tmp/batch1.txt" "$tmp/batch2.txt" "$tmp/batch3.txt" | awk '{print $2}' | sort -u)
kill -TERM $sup
status=0
wait $sup || status=$?
[ $status -eq 0 ] || fail "snabb run: status $status: $(cat "$tmp/out.txt" "$tmp/err.txt")"

# The summary: 4,800 in and out, each worker's in = what its queue received in the 3 batches;
# restarts 2 each; the pool's line with nothing unaccounted.
per() { cat "$tmp/batch1.txt" "$tmp/batch2.txt" "$tmp/batch3.txt" | awk -v w="$1" '$1 == w {n += $3} END {print n}'; }
row() { awk -v w="$1" '$1 == w {print $4, $5, $6}' "$tmp/out.txt"; }
[ "$(row w0)" = "2 $(per w0 | sed ':a;s/\B[0-9]\{3\}\>/,&/;ta') $(per w0 | sed ':a;s/\B[0-9]\{3\}\>/,&/;ta')" ] &&
  [ "$(row w1)" = "2 $(per w1 | sed ':a;s/\B[0-9]\{3\}\>/,&/;ta') $(per w1 | sed ':a;s/\B[0-9]\{3\}\>/,&/;ta')" ] ||
  fail "the summary's rows (restarts, in, out) are not what the queues received: $(cat "$tmp/out.txt")"
grep -q "^in 4,800 (.*) = out 4,800 (.*) + dropped 0 + queued 0 (links) + 0 (interlinks) + lost 0 " "$tmp/out.txt" ||
  fail "the summary does not add up to 4,800: $(cat "$tmp/out.txt")"
grep -q "^packet pool: .* unaccounted 0); " "$tmp/out.txt" ||
  fail "the packet pool's line: $(cat "$tmp/out.txt")"
echo "summary: $(grep '^in ' "$tmp/out.txt")"
echo "$(grep '^packet pool' "$tmp/out.txt")"

# Nothing left: no worker, no run directory, no hugepage file of the EAL's (the primary removes
# them at its exit, and its runtime directory; DPDK leaves them: 88 files of 2 MiB here). (The
# machine's count of free hugepages is no measure: other processes take some too.)
for pid in $workers; do
  ! kill -0 "$pid" 2>/dev/null || fail "worker process $pid is still running"
done
[ ! -e "$dir" ] || fail "$dir is left"
files=$(find "$tmp/huge" -type f | wc -l)
[ "$files" -eq 0 ] || fail "$files hugepage files left in the huge dir"
[ ! -e "/var/run/dpdk/$prefix" ] && [ ! -e "/var/run/dpdk/$prefix.snabb-lock" ] ||
  fail "DPDK's runtime files are left: $(ls -d "/var/run/dpdk/$prefix"*)"
echo "ok: 3 batches through 2 supervised workers sharing net_tap0, the group restarted after its primary's and a secondary's death"

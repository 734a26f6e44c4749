#!/usr/bin/env bash
# snabb run of a config with several graphs (programs/run/supervisor.lua), tests/configs/workers.lua:
# - 2 and 3 workers, each reading a capture into its own Sink, end by themselves; the summary
#   counts exactly the capture's records per worker, in = out, and N times that in total;
# - 2 and 3 workers in a chain over interlinks (w1 reads the capture, sends it over l1 to w2 ...,
#   wN's Sink): every record arrives, nothing dropped, queued or left in an interlink, and the run
#   ends by itself (w1 once its rings are empty, the others once their transmitters have left);
# - Dispatch spreading flows without RSS: w1 reads 64 generated flows into a Dispatch whose
#   outputs go over interlinks to w2 and w3: each gets a share, the interlinks carry what they
#   were sent, and in = out + dropped (the capture is read faster than the rings drain: counted);
# - 2 workers pinned with --cpu 1,0, while they run: each worker's affinity is its CPU, the
#   supervisor's run directory lists them (workers/NAME -> their run directories), snabb ps shows
#   them under it, snabb top SUPERVISOR_PID shows both workers' apps and links as NAME/..., GET
#   /counters and /metrics on its control socket carry each worker's name; SIGTERM stops them all:
#   exit 0, in = out + dropped + queued, no worker left running, no run directory left; SIGINT to
#   the process group (Ctrl-C), the workers' too: the same, nothing restarted; SIGKILL to the
#   supervisor: its workers stop cleanly all the same;
# - a graph that fails as its worker configures it ends the run (exit 1, the error once, no
#   restart); --cpu with as many CPUs as workers or one usage error; a worker name that is not one.
. "$(dirname "$0")/prologue.sh"
# Sets dir to supervisor $sup's run directory once its workers w1 and w2 have linked theirs into
# it (at most 30 s; the caller checks).
await_workers() {
  dir=
  for _ in $(seq 300); do
    dir=$("$snabb" ps --json 2>/dev/null | jq -r --argjson pid "$sup" 'select(.pid == $pid) | .rundir')
    [ -n "$dir" ] && [ -L "$dir/workers/w1" ] && [ -L "$dir/workers/w2" ] && break
    sleep 0.1
  done
}

cfg=$configs/workers.lua
capture=$data/v4.pcap
records=$(python3 -c '
import struct, sys
d = open(sys.argv[1], "rb").read()
e = "<" if struct.unpack("<I", d[:4])[0] in (0xa1b2c3d4, 0xa1b23c4d) else ">"
o, n = 24, 0
while o + 16 <= len(d):
    o += 16 + struct.unpack(e + "I", d[o + 8:o + 12])[0]
    n += 1
print(n)' "$capture")
[ "$records" -gt 0 ] || fail "no records in $capture"

# The summary's row of worker $2 (or total) in file $1, as "in out dropped queued sent received lost
# errors" without commas.
row() {
  awk -v w="$2" '$1 == w { if (w == "total") print $2, $3, $4, $5, $6, $7, $8, $9;
                           else print $5, $6, $7, $8, $9, $10, $11, $12 }' "$1" | tr -d ,
}

for n in 2 3; do
  "$snabb" run "$cfg" pcap "$n" "$capture" --no-auditlog --no-vmprofile --report >"$tmp/pcap$n.txt" 2>&1 ||
    fail "pcap, $n workers: exit status $?: $(cat "$tmp/pcap$n.txt")"
  grep -q "with $n workers; stopped when every worker's sources were done" "$tmp/pcap$n.txt" ||
    fail "pcap, $n workers: $(cat "$tmp/pcap$n.txt")"
  for i in $(seq "$n"); do
    [ "$(row "$tmp/pcap$n.txt" "w$i")" = "$records $records 0 0 0 0 0 0" ] ||
      fail "pcap, $n workers: w$i: $(row "$tmp/pcap$n.txt" "w$i") (the capture has $records): $(cat "$tmp/pcap$n.txt")"
    grep -q "^worker w$i:$" "$tmp/pcap$n.txt" || fail "pcap, $n workers: no --report of w$i"
  done
  total=$((n * records))
  [ "$(row "$tmp/pcap$n.txt" total)" = "$total $total 0 0 0 0 0 0" ] ||
    fail "pcap, $n workers: total $(row "$tmp/pcap$n.txt" total), not $total"
done

for n in 2 3; do
  # (--duration: a bound only; it ends when w1's capture is read and every ring is empty)
  "$snabb" run "$cfg" chain "$n" "$capture" --duration 120 --no-auditlog --no-vmprofile >"$tmp/chain$n.txt" 2>&1 ||
    fail "chain, $n workers: exit status $?: $(cat "$tmp/chain$n.txt")"
  grep -q "with $n workers; stopped when every worker's sources were done" "$tmp/chain$n.txt" ||
    fail "chain, $n workers: did not end by itself: $(cat "$tmp/chain$n.txt")"
  r=$(row "$tmp/chain$n.txt" total)
  read -r in out dropped queued sent received lost errors <<<"$r"
  [ "$in" = "$records" ] && [ "$out" = "$records" ] && [ "$dropped $queued $lost $errors" = "0 0 0 0" ] ||
    fail "chain, $n workers: total $r, not $records in and out: $(cat "$tmp/chain$n.txt")"
  # Each interlink carried every record: sent = received = records times the links.
  [ "$sent" = $(((n - 1) * records)) ] && [ "$received" = "$sent" ] ||
    fail "chain, $n workers: interlinks sent $sent, received $received: $(cat "$tmp/chain$n.txt")"
done

"$snabb" gen-pcap --flows 64 --packets 6400 "$tmp/flows.pcap" >/dev/null
"$snabb" run "$cfg" dispatch 3 "$tmp/flows.pcap" --duration 120 --no-auditlog --no-vmprofile >"$tmp/dispatch.txt" 2>&1 ||
  fail "dispatch: exit status $?: $(cat "$tmp/dispatch.txt")"
read -r in out dropped queued sent received lost errors <<<"$(row "$tmp/dispatch.txt" total)"
[ "$in" = 6400 ] && [ $((out + dropped)) = 6400 ] && [ "$queued $lost $errors" = "0 0 0" ] &&
  [ "$sent" = "$out" ] && [ "$received" = "$sent" ] ||
  fail "dispatch: in $in, out $out, dropped $dropped, sent $sent, received $received: $(cat "$tmp/dispatch.txt")"
for w in w2 w3; do
  read -r _ wout _ <<<"$(row "$tmp/dispatch.txt" $w)"
  [ "$wout" -gt 0 ] || fail "dispatch: $w received nothing: $(cat "$tmp/dispatch.txt")"
done

"$snabb" run "$cfg" source 2 --cpu 1,0 --no-auditlog --no-vmprofile >"$tmp/run.txt" 2>"$tmp/run_err.txt" &
sup=$!
await_workers
[ -L "$dir/workers/w2" ] || fail "no workers/w1, w2 in the supervisor's run directory '$dir'"
w1=$("$snabb" ps --json | jq -r --argjson pid "$sup" 'select(.supervisor == $pid and .worker == "w1") | .pid')
w2=$("$snabb" ps --json | jq -r --argjson pid "$sup" 'select(.supervisor == $pid and .worker == "w2") | .pid')
[ -n "$w1" ] && [ -n "$w2" ] || fail "snabb ps --json: no workers w1, w2 of $sup: $("$snabb" ps --json)"
[ "$(readlink "$dir/workers/w1")" = "$("$snabb" ps --json | jq -r --argjson pid "$w1" 'select(.pid == $pid) | .rundir')" ] ||
  fail "workers/w1 is not w1's run directory"
[ "$("$snabb" ps --json | jq -r --argjson pid "$sup" 'select(.pid == $pid) | .workers')" = 2 ] ||
  fail "snabb ps: the supervisor has not 2 workers"
"$snabb" ps | grep -q "^ *$w2 *worker w2: $cfg " || fail "snabb ps: no row of worker w2: $("$snabb" ps)"
[ "$(awk '/^Cpus_allowed_list/ { print $2 }' "/proc/$w1/status")" = 1 ] || fail "w1 is not pinned to CPU 1"
[ "$(awk '/^Cpus_allowed_list/ { print $2 }' "/proc/$w2/status")" = 0 ] || fail "w2 is not pinned to CPU 0"

"$snabb" top "$sup" --count 2 --interval 0.3 --sort name >"$tmp/top.txt" 2>&1 || fail "snabb top: $(cat "$tmp/top.txt")"
for x in "w1/source" "w1/sink" "w2/source" "w2/sink" "w1/source.output -> w1/sink.input" \
         "w2/source.output -> w2/sink.input"; do
  grep -qF "$x " "$tmp/top.txt" || fail "snabb top $sup: no '$x': $(cat "$tmp/top.txt")"
done
# (the rates of the second frame: both workers move packets)
awk '/frame 2/ { f = 1 } f && $1 ~ /^w[12]\/source$/ && $3 + 0 > 0 { n++ } END { exit n != 2 }' "$tmp/top.txt" ||
  fail "snabb top: not both sources moving: $(cat "$tmp/top.txt")"

curl -sf --unix-socket "$dir/control" http://snabb/counters >"$tmp/counters.json" || fail "GET /counters"
jq -e '[.workers[].name] == ["w1", "w2"] and ([.apps[] | select(.worker == "w2" and .name == "source")] | length) == 1
       and ([.links[] | select(.worker == "w1")] | length) == 1' "$tmp/counters.json" >/dev/null ||
  fail "GET /counters: $(cat "$tmp/counters.json")"
curl -sf --unix-socket "$dir/control" http://snabb/metrics >"$tmp/metrics.txt" || fail "GET /metrics"
grep -q '^snabb_app_packets_out_total{app="source",worker="w1"} [1-9]' "$tmp/metrics.txt" ||
  fail "GET /metrics: no w1 source: $(grep packets_out "$tmp/metrics.txt")"
grep -q '^snabb_link_tx_packets_total{link="source.output -> sink.input",worker="w2"} [1-9]' "$tmp/metrics.txt" ||
  fail "GET /metrics: no w2 link"

kill -TERM "$sup"
rc=0
wait "$sup" || rc=$?
[ "$rc" = 0 ] || fail "SIGTERM: exit status $rc: $(cat "$tmp/run.txt" "$tmp/run_err.txt")"
grep -q "with 2 workers; stopped by a signal" "$tmp/run.txt" || fail "summary: $(cat "$tmp/run.txt")"
read -r in out dropped queued sent received lost errors <<<"$(row "$tmp/run.txt" total)"
[ "$in" -gt 0 ] && [ "$in" = $((out + dropped + queued)) ] && [ "$lost $errors" = "0 0" ] ||
  fail "in $in != out $out + dropped $dropped + queued $queued: $(cat "$tmp/run.txt")"
for pid in "$w1" "$w2"; do [ ! -e "/proc/$pid" ] || fail "worker $pid still runs after the supervisor"; done
for d in "$dir" "$dir/workers/w1"; do [ ! -e "$d" ] || fail "$d left behind"; done
[ ! -s "$tmp/run_err.txt" ] || fail "stderr: $(cat "$tmp/run_err.txt")"

# Ctrl-C on a terminal reaches the whole process group, the workers too: a clean stop all the
# same, nothing restarted, every packet counted.
setsid "$snabb" run "$cfg" source 2 --no-auditlog --no-vmprofile >"$tmp/int.txt" 2>"$tmp/int_err.txt" &
sup=$!
await_workers
[ -L "$dir/workers/w2" ] || fail "Ctrl-C: no workers in '$dir'"
sleep 0.5
kill -INT -- "-$sup"
rc=0
wait "$sup" || rc=$?
[ "$rc" = 0 ] && grep -q "with 2 workers; stopped by a signal" "$tmp/int.txt" ||
  fail "SIGINT to the group: exit $rc: $(cat "$tmp/int.txt" "$tmp/int_err.txt")"
[ "$(awk '$1 ~ /^w[12]$/ { print $4 }' "$tmp/int.txt" | tr '\n' ' ')" = "0 0 " ] ||
  fail "SIGINT to the group: restarts: $(cat "$tmp/int.txt")"
read -r in out dropped queued sent received lost errors <<<"$(row "$tmp/int.txt" total)"
[ "$in" -gt 0 ] && [ "$in" = $((out + dropped + queued)) ] ||
  fail "SIGINT to the group: in $in != out $out + dropped $dropped + queued $queued: $(cat "$tmp/int.txt")"
[ ! -s "$tmp/int_err.txt" ] || fail "SIGINT to the group: stderr: $(cat "$tmp/int_err.txt")"

# A supervisor killed outright takes its workers with it: each stops cleanly (its run directory
# removed) once it sees its parent gone.
"$snabb" run "$cfg" source 2 --no-auditlog --no-vmprofile >/dev/null 2>"$tmp/kill_err.txt" &
sup=$!
await_workers
# (running: before its engine starts, a worker is ended by the kernel's SIGHUP, unclean)
for _ in $(seq 300); do
  [ "$("$snabb" ps --json | jq -r --argjson pid "$sup" 'select(.supervisor == $pid) | .health' | sort -u)" = ok ] && break
  sleep 0.1
done
wdirs="$(readlink "$dir/workers/w1") $(readlink "$dir/workers/w2")"
kill -9 "$sup"
wait "$sup" 2>/dev/null || true
for wdir in $wdirs; do
  pid=$(basename "$wdir")
  for _ in $(seq 300); do [ -e "/proc/$pid" ] || break; sleep 0.1; done
  [ ! -e "/proc/$pid" ] || fail "worker $pid outlived its supervisor, killed with SIGKILL"
  [ ! -e "$wdir" ] || fail "worker $pid of a killed supervisor did not stop cleanly: $wdir left"
done
[ ! -s "$tmp/kill_err.txt" ] || fail "the workers of a killed supervisor: $(cat "$tmp/kill_err.txt")"

# A graph that fails as its worker configures it (here a second transmitter on one interlink,
# refused by the interlink) ends the run, exit status 1, the error said once, nothing restarted.
cat >"$tmp/two_tx.lua" <<'EOF'
local function graph ()
   local c = config.new()
   config.app(c, "source", require("apps.basic.basic_apps").Source)
   config.app(c, "tx", require("apps.interlink.transmitter"), {name = "x"})
   config.link(c, "source.output -> tx.input")
   return c
end
return {workers = {a = graph(), b = graph()}}
EOF
set +e
"$snabb" run "$tmp/two_tx.lua" --duration 60 --no-auditlog --no-vmprofile >"$tmp/out.txt" 2>"$tmp/err.txt"; rc=$?
set -e
[ "$rc" = 1 ] && grep -q "stopped: a worker failed as it started" "$tmp/out.txt" &&
  [ "$(grep -c "interlink 'x': it has a transmitter already" "$tmp/err.txt")" = 1 ] &&
  grep -q "^snabb run: worker [ab] failed as it started: app 'tx': link failed: .*interlink 'x': it has a transmitter already (process [0-9]*); an interlink takes one$" "$tmp/err.txt" &&
  ! grep -q restarting "$tmp/err.txt" ||
  fail "two transmitters on one interlink: exit $rc: $(cat "$tmp/out.txt" "$tmp/err.txt")"

# Usage errors: one line, exit status 2.
set +e
"$snabb" run "$cfg" source 2 --cpu 0 >"$tmp/out.txt" 2>&1; rc=$?
set -e
[ "$rc" = 2 ] && [ "$(wc -l <"$tmp/out.txt")" = 1 ] &&
  grep -qx "snabb run: --cpu lists 1 CPU for 2 workers (w1, w2): one per worker, in name order" "$tmp/out.txt" ||
  fail "--cpu 0 for 2 workers: exit $rc: $(cat "$tmp/out.txt")"
set +e
"$snabb" run "$cfg" source 2 --cpu 0,x >"$tmp/out.txt" 2>&1; rc=$?
set -e
[ "$rc" = 2 ] && grep -qF -- "--cpu must be a list of CPU numbers like 0,1, got '0,x'" "$tmp/out.txt" ||
  fail "--cpu 0,x: exit $rc: $(cat "$tmp/out.txt")"
printf 'return {workers = {["a b"] = config.new()}}\n' >"$tmp/bad_name.lua"
set +e
"$snabb" run "$tmp/bad_name.lua" >"$tmp/out.txt" 2>&1; rc=$?
set -e
[ "$rc" = 1 ] && grep -qF "$tmp/bad_name.lua: workers: 'a b' is not a worker name (letters, digits, _ and -)" "$tmp/out.txt" ||
  fail "bad worker name: exit $rc: $(cat "$tmp/out.txt")"
echo "workers_test: ok"

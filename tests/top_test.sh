#!/usr/bin/env bash
# snabb top in a terminal (tmux: send-keys, capture-pane) against a running snabb run that replays a
# capture at 50 kpps (12 s) into a Sink, then holds (--keep-running): each frame's link rate is the
# difference of the txpackets shown in two frames over the time shown between them; once the replay
# is done the counts are exact (600,000 on the link and into the sink, as od(1) reads them from the
# link's file in the run directory, runtime/stats.h), and the rates 0. Keys sort (n: by name) and
# quit (q), leaving the shell's screen back. Bad targets get one line and exit status 2. Drivers'
# counters: a DPDK run's shown by top, AF_PACKET's in their files.
. "$(dirname "$0")/prologue.sh"
command -v tmux >/dev/null || fail "tmux is needed (apt-get install tmux)"

packets=600000
"$snabb" run "$configs/paced_replay.lua" "$data/v4.pcap" 50kpps "$packets" --keep-running \
  --rundir "$tmp/rd" --no-auditlog --no-vmprofile >"$tmp/run.txt" 2>&1 &
run_pid=$!
link_file="$tmp/rd/engine/links/replay.output -> sink.input"
for _ in $(seq 100); do [ -f "$link_file" ] && break; sleep 0.1; done
[ -f "$link_file" ] || fail "no $link_file: $(cat "$tmp/run.txt")"

session=top_test_$$
tmux new-session -d -s "$session" -x 200 -y 50 "bash --norc --noprofile"
at_exit tmux kill-session -t "$session"
screen() { tmux capture-pane -p -t "$session"; }
tmux send-keys -t "$session" "'$snabb' top $run_pid --interval 2; echo TOP-EXIT=\$?" Enter

# The value of column `col` (1-based, of whitespace-separated fields) of the line starting with
# `row` in a frame, commas removed.
field() { awk -v row="$2" -v col="$3" 'index($0, row) == 1 { gsub(",", ""); print $col; exit }' <<<"$1"; }
link_row="replay.output -> sink.input"

# Two frames in a row (numbered in the header) while the replay runs: the second's rate is the
# difference of the two frames' txpackets over its time (both as shown), to the rate's 3 decimals.
number() { sed -n 's/.*(frame \([0-9]*\):.*/\1/p' <<<"$1"; }
prev= ; prev_tx= ; checked=0
for _ in $(seq 300); do
  frame=$(screen)
  tx=$(field "$frame" "$link_row" 7)
  n=$(number "$frame")
  if [ -n "$tx" ] && [ -n "$prev" ] && [ "$n" = $(($(number "$prev") + 1)) ] && [ "$tx" -lt "$packets" ]; then
    mpps=$(field "$frame" "$link_row" 4)
    dt=$(sed -n 's/.*(rates over \([0-9.]*\) s.*/\1/p' <<<"$frame")
    ok=$(awk -v m="$mpps" -v a="$prev_tx" -v b="$tx" -v dt="$dt" \
           'BEGIN { r = (b - a) / dt / 1e6; d = r - m; if (d < 0) d = -d; print (d <= 0.0005 + r * 0.002) ? 1 : 0 }')
    [ "$ok" = 1 ] || fail "top shows $mpps Mpps, but txpackets went $prev_tx -> $tx in $dt s: $frame"
    [ "$(field "$frame" "$link_row" 4 | tr -d .)" != 0000 ] || fail "rate 0 during the replay: $frame"
    # The sink's rate in is the link's (a Sink receives all that is queued each breath).
    checked=$((checked + 1))
    [ "$checked" -ge 2 ] && break
  fi
  if [ -n "$n" ]; then prev=$frame; prev_tx=$tx; fi
  sleep 0.1
done
[ "$checked" -ge 2 ] || fail "no two frames in a row while replaying: $(screen)"

# The replay done: exact counts, rates 0, and the link file says the same (od: txpackets at byte
# 104 = 64 header + 32 pad + 8 cursors, rxpackets at 120, txdrop at 136).
for _ in $(seq 300); do
  frame=$(screen)
  [ "$(field "$frame" "$link_row" 7)" = "$packets" ] && [ "$(field "$frame" "$link_row" 4)" = 0.000 ] && break
  sleep 0.1
done
[ "$(field "$frame" "$link_row" 7)" = "$packets" ] || fail "txpackets never reached $packets: $frame"
[ "$(field "$frame" "$link_row" 4)" = 0.000 ] || fail "the link's rate is not 0 once the replay is done: $frame"
[ "$(field "$frame" "sink " 2)" = 0.000 ] || fail "the sink's rate in is not 0: $frame"
read -r -a fields <<<"$(od -v -A n -t u8 -j 104 -N 40 "$link_file" | tr '\n' ' ')"
tx_file=${fields[0]} rx_file=${fields[2]} drop_file=${fields[4]}
[ "$tx_file" = "$packets" ] && [ "$rx_file" = "$packets" ] && [ "$drop_file" = 0 ] ||
  fail "the link's file says txpackets $tx_file rxpackets $rx_file txdrop $drop_file"
[ "$(field "$frame" "$link_row" 8)" = 0 ] && [ "$(field "$frame" "$link_row" 9)" = 0 ] ||
  fail "txdrop or queued not 0: $frame"
grep -q "^engine: 0 breaths/s" <<<"$frame" && fail "the engine shows no breaths while it runs: $frame"

# Keys: n sorts by name (replay before sink), q quits and gives the screen back.
tmux send-keys -t "$session" n
for _ in $(seq 50); do screen | grep -q "sorted by name" && break; sleep 0.1; done
frame=$(screen)
grep -q "sorted by name" <<<"$frame" || fail "n did not sort by name: $frame"
[ "$(grep -n '^replay ' <<<"$frame" | cut -d: -f1)" -lt "$(grep -n '^sink ' <<<"$frame" | cut -d: -f1)" ] ||
  fail "by name, replay comes before sink: $frame"
tmux send-keys -t "$session" q
# (The command line itself shows "TOP-EXIT=$?": wait for the status, printed once top has exited,
# a few milliseconds after it gave the screen back.)
for _ in $(seq 50); do screen | grep -q "TOP-EXIT=[0-9]" && break; sleep 0.1; done
frame=$(screen)
grep -q "TOP-EXIT=0" <<<"$frame" || fail "q did not end snabb top with status 0: $frame"
grep -q "snabb top: PID" <<<"$frame" && fail "the terminal's screen was not restored: $frame"

# SIGTERM (as a closing SSH session's SIGHUP) ends it too, with the terminal as it was: echo and
# lines (canonical mode) back, the screen restored.
tmux send-keys -t "$session" "clear; '$snabb' top $run_pid --interval 2; echo TOP-TERM=\$?" Enter
for _ in $(seq 50); do screen | grep -q "snabb top: PID" && break; sleep 0.1; done
top_pid=$(pgrep -f "snabb top $run_pid --interval 2") || fail "no snabb top running: $(screen)"
kill -TERM "$top_pid"
for _ in $(seq 50); do screen | grep -q "TOP-TERM=[0-9]" && break; sleep 0.1; done
frame=$(screen)
grep -q "TOP-TERM=0" <<<"$frame" || fail "SIGTERM did not end snabb top with status 0: $frame"
grep -q "snabb top: PID" <<<"$frame" && fail "after SIGTERM the screen was not restored: $frame"
tmux send-keys -t "$session" "stty -a | tr ' ' '\n' | grep -x -e icanon -e echo | tr '\n' ' '; echo STTY" Enter
# (The command line ends with "echo STTY" too: wait for the line the command prints.)
for _ in $(seq 50); do screen | grep -q "^[a-z ]*STTY$" && break; sleep 0.1; done
screen | grep -q "^icanon echo STTY$" || fail "after SIGTERM the terminal has no echo or lines: $(screen)"

# Bad targets: one line each, exit status 2.
check_usage() {
  local want=$1; shift
  set +e; "$snabb" top "$@" >"$tmp/out.txt" 2>&1; local rc=$?; set -e
  [ "$rc" = 2 ] || fail "snabb top $*: exit status $rc, not 2: $(cat "$tmp/out.txt")"
  [ "$(wc -l <"$tmp/out.txt")" = 1 ] || fail "snabb top $*: not one line: $(cat "$tmp/out.txt")"
  grep -q -- "$want" "$tmp/out.txt" || fail "snabb top $*: '$(cat "$tmp/out.txt")' does not say '$want'"
}
check_usage "snabb top: no run directory for process 999999" 999999
check_usage "snabb top: 'abc' is neither a PID nor a run directory" abc
check_usage "snabb top: '1.5' is not a PID" 1.5
check_usage "snabb top: $tmp/none/engine/stats: No such file or directory" "$tmp/none"
check_usage "snabb top: --interval must be a positive number of seconds" --interval 0 "$run_pid"
check_usage "engine/stats: No such file or directory (not the run directory of a snabb run" "$tmp"

# Without a terminal: --count frames, one after another.
"$snabb" top "$run_pid" --count 2 --interval 0.2 >"$tmp/batch.txt" 2>&1 || fail "$(cat "$tmp/batch.txt")"
[ "$(grep -c '^snabb top: PID' "$tmp/batch.txt")" = 2 ] || fail "--count 2: $(cat "$tmp/batch.txt")"
kill "$run_pid"
wait "$run_pid" || true

# A driver's counters (DPDK's xstats, copied once a second into apps/NAME/X.counter) are shown
# when they move: two net_null ports forwarding; p0's device has received what p0 sent on, at most
# (the copy lags by up to a second).
"$snabb" run "$here/../examples/dpdk_forward.lua" --no-dpdk-telemetry --no-auditlog \
  --no-vmprofile >"$tmp/dpdk.txt" 2>&1 &
dpdk_pid=$!
for _ in $(seq 100); do "$snabb" top "$dpdk_pid" --count 1 --interval 0.1 >/dev/null 2>&1 && break; sleep 0.1; done
"$snabb" top "$dpdk_pid" --count 1 --interval 1.5 >"$tmp/dpdk_top.txt" 2>&1 ||
  fail "snabb top of a DPDK run: $(cat "$tmp/dpdk_top.txt" "$tmp/dpdk.txt")"
frame=$(cat "$tmp/dpdk_top.txt")
received=$(awk '$1 == "p0" && $2 == "rx_good_packets" { gsub(",", "", $3); print $3 }' <<<"$frame")
sent=$(field "$frame" "p0.output -> fwd01.input" 7)
[ -n "$received" ] && [ "$received" -gt 0 ] && [ "$received" -le "$sent" ] ||
  fail "p0's rx_good_packets ($received) not between 1 and what p0 sent ($sent): $frame"
kill "$dpdk_pid"
wait "$dpdk_pid" || true

# AF_PACKET's port counters, copied twice a second into apps/NAME/X.counter: v4.pcap's 43 frames
# (25,091 bytes) sent out of a veth in a namespace of the test's own.
ns=top_test_$$
ip netns add "$ns"
at_exit ip netns del "$ns"
ip -n "$ns" link add va type veth peer name vb
ip -n "$ns" link set va up
ip -n "$ns" link set vb up
ip netns exec "$ns" "$snabb" run "$configs/af_packet_send.lua" "$data/v4.pcap" va --keep-running \
  --rundir "$tmp/rd_af" --no-auditlog --no-vmprofile >"$tmp/af.txt" 2>&1 &
af_pid=$!
counter() { od -v -A n -t u8 "$tmp/rd_af/apps/nic/$1.counter" 2>/dev/null | tr -d ' '; }
for _ in $(seq 100); do [ "$(counter tx_packets)" = 43 ] && break; sleep 0.1; done
[ "$(counter tx_packets)" = 43 ] && [ "$(counter tx_bytes)" = 25091 ] && [ "$(counter tx_errors)" = 0 ] ||
  fail "AF_PACKET's counter files: tx_packets $(counter tx_packets), tx_bytes $(counter tx_bytes): $(cat "$tmp/af.txt")"
kill "$af_pid"
wait "$af_pid" || true
echo "top_test: ok"

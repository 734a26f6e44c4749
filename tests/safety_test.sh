#!/usr/bin/env bash
# End-to-end: the safety nets of vm/safety.cc and debug mode (runtime/packet.lua).
# - Every stop signal (INT TERM HUP QUIT USR1 USR2 PIPE ALRM), sent while the config loads and while
#   the graph runs: the run stops cleanly (exit status 0 for INT/TERM, else 128 + the signal's
#   number), its temporary run directory is gone, its PcapWriter capture reads whole in tcpdump.
# - An app stuck in an endless loop: the watchdog names it with its line, compiled or interpreted,
#   and ends the process at twice its time; two SIGINTs end a stuck process, naming the app.
# - An FFI write to address 0: the app and the line (interpreted) or trace lines (compiled, and a C
#   function called from compiled code), then the process dies of SIGSEGV (status 139).
# - A double packet.free under --debug: refused, naming the app and the line.
. "$(dirname "$0")/prologue.sh"
export TMPDIR=$tmp # run directories go to $TMPDIR/snabb-UID where /var/run/snabb is not writable
at_exit 'jobs -p | xargs -r kill -9 2>/dev/null'

# Waits (at most 20 s) until the command succeeds.
wait_for() {
  for _ in $(seq 2000); do "$@" && return 0; sleep 0.01; done
  fail "timed out waiting for: $*"
}
has_packets() { [ -e "$1" ] && [ "$(stat -c %s "$1")" -gt 24 ]; } # more than the file header
rundir_exists() { [ -d "/var/run/snabb/$1" ] || [ -d "$TMPDIR/snabb-$(id -u)/$1" ]; }
packets_in() { # packets_in FILE: tcpdump's count; fails on any complaint (e.g. a truncated record)
  "$here/tcpdump.sh" -nr "$1" >"$tmp/dump.txt" 2>"$tmp/dump.err" || fail "tcpdump $1: $(cat "$tmp/dump.err")"
  ! grep -v "^reading from file" "$tmp/dump.err" | grep -q . || fail "tcpdump $1: $(cat "$tmp/dump.err")"
  grep -c . "$tmp/dump.txt" || true
}
expected_status() { case $1 in INT | TERM) echo 0 ;; *) echo $((128 + $(kill -l "$1"))) ;; esac; }

for signal in INT TERM HUP QUIT USR1 USR2 PIPE ALRM; do
  want=$(expected_status $signal)
  # While the config loads (slow_load.lua waits for its .go file): the engine then never runs.
  out=$tmp/load-$signal.pcap
  "$snabb" run "$here/configs/slow_load.lua" "$data/v4.pcap" "$out" "$tmp/m-$signal" --report \
    >"$tmp/out.txt" 2>"$tmp/err.txt" &
  pid=$!
  wait_for test -e "$tmp/m-$signal"
  rundir_exists $pid || fail "$signal: no run directory while loading"
  kill -$signal $pid
  touch "$tmp/m-$signal.go"
  status=0
  wait $pid || status=$?
  [ $status -eq "$want" ] || fail "SIG$signal while loading: exit status $status, not $want: $(cat "$tmp/err.txt")"
  ! rundir_exists $pid || fail "SIG$signal while loading: run directory left behind"
  packets_in "$out" >/dev/null
  grep -q "^reader.output -> writer.input" "$tmp/out.txt" || fail "SIG$signal while loading: no report"

  # While it runs: Replay (endless) into PcapWriter, signalled once packets reach the file.
  out=$tmp/run-$signal.pcap
  "$snabb" run "$here/configs/pcap_replay.lua" "$data/v4.pcap" "$out" --report >"$tmp/out.txt" 2>"$tmp/err.txt" &
  pid=$!
  wait_for has_packets "$out" # the writer flushes once a second
  rundir_exists $pid || fail "$signal: no run directory while running"
  kill -$signal $pid
  status=0
  wait $pid || status=$?
  [ $status -eq "$want" ] || fail "SIG$signal while running: exit status $status, not $want: $(cat "$tmp/err.txt")"
  ! rundir_exists $pid || fail "SIG$signal while running: run directory left behind"
  written=$(awk '$1 == "writer" { gsub(",", "", $3); print $3 }' "$tmp/out.txt")
  [ "$(packets_in "$out")" -eq "$written" ] && [ "$written" -gt 0 ] ||
    fail "SIG$signal while running: $(packets_in "$out") packets in the file, the writer took $written"
  if [ "$want" -ne 0 ]; then
    grep -q "snabb: stopped cleanly on SIG$signal" "$tmp/err.txt" || fail "SIG$signal: $(cat "$tmp/err.txt")"
  fi
done

# SIGPIPE from the output itself: the report goes to a pipe whose reader left 0.5 s before.
status=0
"$snabb" run "$here/configs/pcap_replay.lua" "$data/v4.pcap" "$tmp/pipe.pcap" --duration 0.5 --report \
  2>"$tmp/err.txt" | true || status=$?
[ $status -eq 141 ] && grep -q "snabb: stopped cleanly on SIGPIPE" "$tmp/err.txt" ||
  fail "report into a closed pipe: exit status $status: $(cat "$tmp/err.txt")"
packets_in "$tmp/pipe.pcap" >/dev/null

# The watchdog: an app stuck in its pull is named with its line, then the process ends (SIGABRT).
for mode in compiled interpreted; do
  status=0
  "$snabb" run "$here/configs/endless_loop.lua" $mode --watchdog 0.4 --rundir "$tmp/rd" \
    2>"$tmp/err.txt" || status=$?
  [ $status -eq 134 ] || fail "watchdog ($mode): exit status $status: $(cat "$tmp/err.txt")"
  case $mode in
    compiled) where="in compiled trace [0-9]* (.*endless_loop.lua:10)" ;;
    interpreted) where="running interpreted at .*endless_loop.lua:10" ;;
  esac
  grep -q "snabb: watchdog: app 'spin' pull has not returned for [0-9.]* s; it is $where" "$tmp/err.txt" ||
    fail "watchdog ($mode): $(cat "$tmp/err.txt")"
  grep -q "snabb: watchdog: app 'spin' pull has still not returned after .*: ending the process" \
    "$tmp/err.txt" || fail "watchdog ($mode) end: $(cat "$tmp/err.txt")"
done

status=0
"$snabb" run "$here/configs/endless_loop.lua" compiled --watchdog soon 2>"$tmp/err.txt" || status=$?
[ $status -eq 2 ] && [ "$(cat "$tmp/err.txt")" = "snabb run: --watchdog must be a number of seconds from 0 (off) to 1,000,000, got 'soon'" ] ||
  fail "--watchdog soon: exit status $status: $(cat "$tmp/err.txt")"

# Two SIGINTs end a stuck process (the watchdog off), naming the app and where it is.
"$snabb" run "$here/configs/endless_loop.lua" compiled "$tmp/stuck" --watchdog 0 --rundir "$tmp/rd" \
  2>"$tmp/err.txt" &
pid=$!
wait_for test -e "$tmp/stuck" # the app's pull has begun
kill -INT $pid
sleep 0.2
kill -0 $pid 2>/dev/null || fail "one SIGINT ended a stuck process: no second one needed"
kill -INT $pid
status=0
wait $pid || status=$?
[ $status -eq 130 ] || fail "two SIGINTs: exit status $status"
# (In compiled code as a rule; under load the loop may not be compiled yet when the signals come.)
grep -q "snabb: SIGINT again: ending the process now; app 'spin' pull has not returned since the SIGINT .* ago, \(in compiled trace [0-9]* (.*endless_loop.lua:10)\|running interpreted or in C\)" \
  "$tmp/err.txt" || fail "two SIGINTs: $(cat "$tmp/err.txt")"

# A segmentation fault in FFI code names the app and the line or trace; status 139.
for mode in interpreted compiled ccall; do
  status=0
  "$snabb" run "$here/configs/ffi_null_write.lua" $mode --rundir "$tmp/rd" 2>"$tmp/err.txt" || status=$?
  [ $status -eq 139 ] || fail "null write ($mode): exit status $status: $(cat "$tmp/err.txt")"
  grep -q "snabb: SIGSEGV (segmentation fault) at address 0x0 in app 'crasher' pull" "$tmp/err.txt" ||
    fail "null write ($mode): $(cat "$tmp/err.txt")"
  case $mode in
    interpreted) grep -q "snabb: the Lua line running: .*ffi_null_write.lua:17$" "$tmp/err.txt" ;;
    compiled) grep -q "pull, in compiled trace [0-9]* (.*ffi_null_write.lua:20)$" "$tmp/err.txt" ;;
    ccall) grep -q "pull, in C code (instruction 0x[0-9a-f]*) called from compiled trace [0-9]* (.*ffi_null_write.lua:22)$" \
             "$tmp/err.txt" ;;
  esac || fail "null write ($mode): no line: $(cat "$tmp/err.txt")"
done

# A double free under --debug: refused, naming the app and the line. (Without --debug nothing
# notices: the packet is then on the free list twice.)
# (The app failed: exit status 1.)
status=0
"$snabb" --debug run "$here/configs/double_free.lua" --duration 0.2 --rundir "$tmp/rd" 2>"$tmp/err.txt" || status=$?
[ "$status" -eq 1 ] || fail "double free: exit status $status, not 1"
grep -q "engine: app 'twice' failed in pull: .*double_free.lua:10: packet.free: packet 0x[0-9a-f]* freed twice (in app 'twice')" \
  "$tmp/err.txt" || fail "double free: $(cat "$tmp/err.txt")"
SNABB_DEBUG=1 "$snabb" run "$here/configs/double_free.lua" --duration 0.2 --rundir "$tmp/rd" 2>"$tmp/err.txt" ||
  true
grep -q "freed twice (in app 'twice')" "$tmp/err.txt" || fail "SNABB_DEBUG double free: $(cat "$tmp/err.txt")"
echo "safety_test: OK"

#!/usr/bin/env bash
# snabb ps: lists the running instances with their config (absolute), uptime, workers and health,
# read from their counters in shared memory: a healthy run ("ok"), one whose app keeps failing
# ("app errors: N (flaky)"), one stopped with SIGSTOP ("stalled": its engine stops breathing) and
# back to "ok" after SIGCONT; the run directory of a run killed with SIGKILL is removed (and said
# so on stderr), and the killed run is no longer listed. --json gives one object per instance.
. "$(dirname "$0")/prologue.sh"

"$snabb" run "$configs/paced_replay.lua" "$data/v4.pcap" 10kpps 100000000 --keep-running \
  --rundir "$tmp/rd" --no-auditlog --no-vmprofile >"$tmp/a.txt" 2>&1 &
a=$!
"$snabb" run "$configs/failing_app.lua" --no-auditlog --no-vmprofile >"$tmp/b.txt" 2>&1 &
b=$!
"$snabb" run "$here/../examples/basic.lua" --no-auditlog --no-vmprofile >"$tmp/c.txt" 2>&1 &
c=$!

# The line of instance $1 in `snabb ps`, and its JSON object.
row() { "$snabb" ps 2>"$tmp/ps_err.txt" | awk -v pid="$1" '$1 == pid'; }
json() { "$snabb" ps --json | jq -c --argjson pid "$1" 'select(.pid == $pid)'; }
wait_for() { # PID PATTERN: until the instance's row matches
  for _ in $(seq 100); do row "$1" | grep -q -- "$2" && return 0; sleep 0.1; done
  fail "snabb ps never showed '$2' for $1: $("$snabb" ps 2>&1)"
}

wait_for "$a" " ok "
wait_for "$b" "app errors: [0-9]* (flaky)"
wait_for "$c" " ok "
line=$(row "$a")
config=$configs/paced_replay.lua
grep -qF "$config" <<<"$line" || fail "the config is not $config: $line"
grep -qF "$tmp/rd" <<<"$line" || fail "the run directory is not $tmp/rd: $line"
[ "$(json "$a" | jq -r .workers)" = 0 ] || fail "workers: $(json "$a")"
[ "$(json "$a" | jq -r .config)" = "$config" ] || fail "--json config: $(json "$a")"
[ "$(json "$a" | jq -r '.uptime >= 0')" = true ] || fail "--json uptime: $(json "$a")"
[ "$(json "$b" | jq -r .health)" != ok ] || fail "the failing run is healthy: $(json "$b")"

# A stopped engine does not breathe: stalled after 5 s, ok again once it runs.
kill -STOP "$a"
sleep 6
row "$a" | grep -q "stalled" || { kill -CONT "$a"; fail "not stalled under SIGSTOP: $(row "$a")"; }
kill -CONT "$a"
wait_for "$a" " ok "

# A killed run leaves its directory; snabb ps removes it and stops listing the run.
dir=$(json "$c" | jq -r .rundir)
[ -d "$dir" ] || fail "no run directory $dir for $c"
kill -KILL "$c"
wait "$c" || true
[ -d "$dir" ] || fail "$dir went with its process (SIGKILL leaves it)"
"$snabb" ps >"$tmp/ps.txt" 2>"$tmp/ps_err.txt"
[ ! -d "$dir" ] || fail "snabb ps left $dir of the killed run: $(cat "$tmp/ps.txt" "$tmp/ps_err.txt")"
# (Any snabb starting removes dead runs' directories too: another test's, beside this one, may have
# done it first, and then this ps has nothing to say.)
grep -q "^snabb ps: removed [0-9]* run director\(y\|ies\) of processes that had died$" "$tmp/ps_err.txt" ||
  [ ! -s "$tmp/ps_err.txt" ] || fail "snabb ps said: $(cat "$tmp/ps_err.txt")"
awk -v pid="$c" '$1 == pid { exit 1 }' "$tmp/ps.txt" || fail "the killed run is listed: $(cat "$tmp/ps.txt")"
row "$a" | grep -q " ok " || fail "the healthy run is gone: $(cat "$tmp/ps.txt")"

# A usage error: one line, exit status 2.
set +e; "$snabb" ps extra >"$tmp/out.txt" 2>&1; rc=$?; set -e
[ "$rc" = 2 ] && [ "$(wc -l <"$tmp/out.txt")" = 1 ] && grep -q "^snabb ps: too many arguments" "$tmp/out.txt" ||
  fail "snabb ps extra: status $rc: $(cat "$tmp/out.txt")"
kill "$a" "$b"
wait "$a" "$b" || true
echo "ps_test: ok"

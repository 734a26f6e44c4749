#!/usr/bin/env bash
# A supervisor's worker that dies is restarted (programs/run/supervisor.lua), tests/configs/
# workers.lua's mixed graphs: w1's Source sends over interlink l1 to w2's Sink, w3 a Source -> Sink.
# - kill -9 of w2, three times: each time one line on stderr names it, its PID and SIGKILL, the
#   restart's delay doubles (0.1, 0.2, 0.4 s), w2 comes back with a new PID, and meanwhile w1 and
#   w3 kept going (their sources' counters grew while w2 was down);
# - the group's packet pool loses nothing: once all have stopped, every packet carved is free (all
#   a dead worker had given back to the group: its free list, its links, its apps' hands) or in an
#   interlink;
# - a restarted worker whose graph raises a Lua error as it loads: the line quotes the error; one
#   that exits with os.exit(3): "exited with status 3"; each comes back once its cause is gone;
# - SIGTERM stops all: exit status 0, the summary counts w2's restarts (5) and none of the others'.
. "$(dirname "$0")/prologue.sh"

cfg=$configs/workers.lua
mode=${WORKER_RESTART_MODE:-mixed}
mkdir "$tmp/flags"
"$snabb" run "$cfg" "$mode" 3 "" "$tmp/flags" --no-auditlog --no-vmprofile >"$tmp/run.txt" 2>"$tmp/err.txt" &
sup=$!
at_exit "kill -9 $sup 2>/dev/null"
dir=
for _ in $(seq 300); do
  dir=$("$snabb" ps --json 2>/dev/null | jq -r --argjson pid "$sup" 'select(.pid == $pid) | .rundir')
  [ -n "$dir" ] && [ -L "$dir/workers/w1" ] && [ -L "$dir/workers/w2" ] && [ -L "$dir/workers/w3" ] && break
  sleep 0.1
done
[ -L "$dir/workers/w3" ] || fail "no workers in the supervisor's run directory '$dir': $(cat "$tmp/err.txt")"

# The PID of worker $1 (its run directory's lock: the directory's name is PID-N when a directory
# of that PID was there already); nothing while its last run directory is being removed.
pid_of() { cut -d' ' -f1 "$dir/workers/$1/lock" 2>/dev/null || true; }
# What app $2 of worker $1 sent so far (GET /counters on the supervisor's control socket).
sent() {
  curl -sf --unix-socket "$dir/control" http://snabb/counters |
    jq --arg w "$1" --arg a "$2" '[.apps[] | select(.worker == $w and .name == $a) | .packets_out] | add // 0'
}
# Until worker $1 runs again with another PID than $2 and its engine moves packets.
wait_restart() {
  for _ in $(seq 600); do
    local p
    p=$(pid_of "$1")
    if [ -n "$p" ] && [ "$p" != "$2" ] && [ -e "/proc/$p" ] && [ "$(sent "$1" source)" -gt 0 ] 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  fail "worker $1 did not come back after PID $2: $(cat "$tmp/err.txt")"
}
# Until stderr has a line matching $1.
wait_line() {
  for _ in $(seq 600); do grep -q -- "$1" "$tmp/err.txt" && return 0; sleep 0.05; done
  fail "no line '$1' on stderr: $(cat "$tmp/err.txt")"
}

sleep 1
delay=0.1
for k in 1 2 3; do
  before1=$(sent w1 source) before3=$(sent w3 source)
  old=$(pid_of w2)
  kill -9 "$old"
  wait_restart w2 "$old"
  wait_line "^snabb run: worker w2 (PID $old, up [0-9.]* s) killed by SIGKILL; [0-9,]* packets reclaimed; restarting in $delay s$"
  sleep 0.3
  after1=$(sent w1 source) after3=$(sent w3 source)
  [ "$after1" -gt "$before1" ] && [ "$after3" -gt "$before3" ] ||
    fail "kill $k: w1 sent $before1 -> $after1, w3 $before3 -> $after3: not both kept going"
  delay=$(awk -v d="$delay" 'BEGIN { print d * 2 }')
done

touch "$tmp/flags/fail-w2"
old=$(pid_of w2)
kill -9 "$old"
wait_line "^snabb run: worker w2 (PID [0-9]*, up [0-9.]* s) failed: .*workers.lua:[0-9]*: worker w2 told to fail; .*restarting in"
rm "$tmp/flags/fail-w2"
wait_restart w2 "$old"
touch "$tmp/flags/exit-w2"
old=$(pid_of w2)
kill -9 "$old"
wait_line "^snabb run: worker w2 (PID [0-9]*, up [0-9.]* s) exited with status 3; .*restarting in"
rm "$tmp/flags/exit-w2"
wait_restart w2 "$old"

kill -TERM "$sup"
rc=0
wait "$sup" || rc=$?
[ "$rc" = 0 ] || fail "SIGTERM: exit status $rc: $(cat "$tmp/run.txt" "$tmp/err.txt")"
restarts() { awk -v w="$1" '$1 == w { print $4 }' "$tmp/run.txt"; }
# 3 kills; a kill, then the failing worker (at least once); a kill, then the exiting one
r2=$(restarts w2)
[ "$r2" -ge 7 ] && [ "$(restarts w1)" = 0 ] && [ "$(restarts w3)" = 0 ] ||
  fail "restarts: w1 $(restarts w1), w2 $r2, w3 $(restarts w3): $(cat "$tmp/run.txt")"
# packet pool: C carved; free: ...; not free: N (in interlinks I, unaccounted U); given back from
# dead workers: R (free F, in links L, in apps' hands H), L being the packets lost with them
pool=$(grep "^packet pool: " "$tmp/run.txt" | sed 's/\([0-9]\),\([0-9]\)/\1\2/g') || fail "no packet pool line: $(cat "$tmp/run.txt")"
lost=$(awk '$1 == "total" { print $8 }' "$tmp/run.txt" | tr -d ,)
[[ "$pool" =~ "unaccounted "([0-9]+)"); given back from dead workers: "([0-9]+)" (free "([0-9]+)", in links $lost, in apps' hands "([0-9]+)")"$ ]] ||
  fail "the pool's line does not give back the $lost packets lost: $pool"
[ "${BASH_REMATCH[1]}" = 0 ] || fail "${BASH_REMATCH[1]} packets unaccounted after the kills: $pool"
[ "${BASH_REMATCH[2]}" = $((BASH_REMATCH[3] + lost + BASH_REMATCH[4])) ] || fail "the parts do not add up: $pool"
echo "worker_restart_test: ok ($pool)"

# A worker that dies with 3,000 packets in an app's hands and its links full (held: a Source into an
# app that keeps what it first receives, then reads no more): all goes back to the group's free
# list, so the pool does not shrink a death.
"$snabb" run "$cfg" held 1 --rundir "$tmp/held" --no-auditlog --no-vmprofile >"$tmp/held.txt" 2>"$tmp/held_err.txt" &
sup=$!
at_exit "kill -9 $sup 2>/dev/null"
for death in 1 2; do
  # The worker's next life, once its link is there (a Source fills it in its first breaths).
  for _ in $(seq 100); do
    w=$(cut -d' ' -f1 "$tmp/held/workers/w1/lock" 2>/dev/null || true)
    [ -n "$w" ] && [ "$w" != "${last:-}" ] && [ -f "$tmp/held/workers/w1/engine/links/source.output -> sink.input" ] && break
    sleep 0.1
  done
  sleep 0.5
  last=$w
  kill -9 "$w"
  for _ in $(seq 100); do [ "$(grep -c "killed by SIGKILL" "$tmp/held_err.txt")" = "$death" ] && break; sleep 0.1; done
done
sleep 0.5
kill -TERM "$sup"
wait "$sup" || fail "held: exit status $?: $(cat "$tmp/held.txt" "$tmp/held_err.txt")"
pool=$(grep "^packet pool: " "$tmp/held.txt" | sed 's/\([0-9]\),\([0-9]\)/\1\2/g') || fail "held: no packet pool line: $(cat "$tmp/held.txt")"
lost=$(awk '$1 == "total" { print $8 }' "$tmp/held.txt" | tr -d ,)
[ "$lost" -gt 0 ] || fail "held: the dead workers' links held nothing: $(cat "$tmp/held.txt")"
[[ "$pool" =~ "unaccounted "([0-9]+)"); given back from dead workers: "[0-9]+" (free "[0-9]+", in links $lost, in apps' hands "([0-9]+)")"$ ]] ||
  fail "held: the $lost packets in dead workers' links were not given back: $pool"
[ "${BASH_REMATCH[1]}" = 0 ] || fail "held: ${BASH_REMATCH[1]} packets unaccounted after 2 kills: $pool"
# (each death: the 3,000 its Hold kept, and the Source's own packet)
[ "${BASH_REMATCH[2]}" -ge 6002 ] || fail "held: not all the apps held was given back: $pool"
echo "worker_restart_test: held ok ($pool)"

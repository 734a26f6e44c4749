# tests/inspect.sh: sourced after browser.sh by the tests of snabb inspect, which start it on a run
# and drive its page: start_inspect ARGS... runs `snabb inspect ARGS...` in the background and
# waits for the URL it prints (sets $inspect, its PID, and $url); stop_inspect ends it with
# SIGINT (Ctrl-C) and fails unless it exits 0.
# shellcheck shell=bash
start_inspect() {
  # (Emptied here, not only by the background job's redirection: the wait below could otherwise
  # read the last inspector's URL before the job had truncated the file.)
  : >"$tmp/inspect.out"
  : >"$tmp/inspect.err"
  "$snabb" inspect "$@" >"$tmp/inspect.out" 2>"$tmp/inspect.err" &
  inspect=$!
  # (Up to 60 s: it reads the whole run before it listens. 15 s was once too few in CI, with
  # another test and a build on the machine's two cores.)
  for _ in $(seq 600); do
    grep -q "^snabb inspect: .* at http://" "$tmp/inspect.out" && break
    kill -0 $inspect 2>/dev/null || fail "snabb inspect $* ended: $(cat "$tmp/inspect.err")"
    sleep 0.1
  done
  url=$(grep -o 'http://[^ ]*' "$tmp/inspect.out") || fail "snabb inspect $*: no URL printed: $(cat "$tmp/inspect.out")"
}
stop_inspect() {
  local status=0
  kill -INT $inspect
  wait $inspect || status=$?
  [ "$status" -eq 0 ] || fail "snabb inspect exited $status after SIGINT: $(cat "$tmp/inspect.err")"
}

#!/usr/bin/env bash
# End-to-end: `snabb inspect` on the run directory of a real run (snabb bench of
# examples/forward.lua on a capture, --rundir), its page driven in headless Chromium (Debian's,
# with playwright-core from npm, as html_report_test) by tests/inspect_check.js, which checks what
# it shows against the run's apps.json, vmprofile zones and auditlog and that requests outside the
# API are refused; then bad input: no such PID, a directory that is not a run's, a port in use, a
# bad --listen (one line each, exit 2 or 1).
. "$(dirname "$0")/prologue.sh"
. "$(dirname "$0")/browser.sh"
. "$(dirname "$0")/inspect.sh"

run=$tmp/run
"$snabb" bench "$here/../examples/forward.lua" --pcap "$data/v4.pcap" --duration 1 --rundir "$run" >/dev/null
[ -s "$run/audit.log" ] && [ -s "$run/vmprofile/fwd.vmprofile" ] || fail "the run left no auditlog or vmprofile"

# Started on a free port; it prints its URL.
start_inspect "$run"
node "$here/inspect_check.js" "$url" "$run" "$snabb"

# Bad input: one line "snabb inspect: ...", exit 2 (usage) or 1 (the port).
expect_error() { # STATUS PATTERN ARGS...
  local want=$1 pattern=$2 status=0
  shift 2
  "$snabb" inspect "$@" >"$tmp/out" 2>"$tmp/err" || status=$?
  [ "$status" -eq "$want" ] || fail "snabb inspect $*: exit $status, want $want ($(cat "$tmp/err"))"
  [ "$(wc -l <"$tmp/err")" -eq 1 ] && grep -q "^snabb inspect: .*$pattern" "$tmp/err" ||
    fail "snabb inspect $*: '$(cat "$tmp/err")', want one line with '$pattern'"
}
expect_error 2 "no run directory for process 999999999" 999999999
mkdir "$tmp/empty"
expect_error 2 "$tmp/empty: not a run directory" "$tmp/empty"
expect_error 2 "no-such-dir: not a run directory" "$tmp/no-such-dir"
port=${url#http://127.0.0.1:}
port=${port%%/*}
expect_error 1 "127.0.0.1:$port: .*in use" "$run" --listen "127.0.0.1:$port"
expect_error 2 "--listen must be HOST:PORT" "$run" --listen nowhere

# Ctrl-C ends it cleanly.
stop_inspect

# A live run, by its PID: the apps of its graph, read while it runs; the server's /counters are
# the run's (its pid), not the inspector's.
"$snabb" run "$here/../examples/basic.lua" --duration 60 >/dev/null &
live=$!
for _ in $(seq 100); do "$snabb" profile $live >/dev/null 2>&1 && break; sleep 0.1; done
start_inspect $live
curl -sf "${url}api/apps" >"$tmp/live_apps.json" || fail "GET ${url}api/apps failed"
python3 - "$tmp/live_apps.json" $live <<'PY' || fail "the live run's apps as snabb inspect serves them"
import json, sys
doc = json.load(open(sys.argv[1]))
names = sorted(a["name"] for a in doc["apps"])
assert doc["pid"] == int(sys.argv[2]), doc["pid"]
assert names == ["sink_a", "sink_b", "source", "tee"], names
PY
counters_pid=$(curl -sf "${url%/inspect/}/counters" | python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])')
[ "$counters_pid" = "$live" ] || fail "GET /counters of snabb inspect $live names pid $counters_pid"
stop_inspect
kill -INT $live
wait $live || true
echo "inspect_test: OK"

#!/usr/bin/env bash
# End-to-end: `snabb run --report` on the example and on a graph with a failing app. Checks that
# every link's counters add up, and that a failing app is named (app, method, file:line, traceback),
# restarted, and that the rest of the graph keeps moving packets.
set -euo pipefail
snabb=$1
here=$(dirname "$0")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# Link rows of a --report: "a.out -> b.in  txpackets rxpackets txdrop queued" (commas removed).
check_links() {
  awk '/ -> / { for (i = 4; i <= 6; i++) gsub(",", "", $i)
                tx = $4; rx = $5; drop = $6; queued = $7
                if (tx + 0 != rx + queued + drop) { print "unbalanced: " $0; bad = 1 }
                if (tx + 0 == 0) { print "no packets: " $0; bad = 1 }
                n++ }
       END { if (n == 0) { print "no link rows"; bad = 1 }; exit bad }' "$1" || fail "link counters in $1"
}
app_column() { # app_column FILE APP COLUMN -> number without commas
  awk -v app="$2" -v col="$3" '$1 == app { gsub(",", "", $col); print $col }' "$1"
}

"$snabb" run "$here/../examples/basic.lua" --duration 0.3 --report >"$tmp/basic.txt"
check_links "$tmp/basic.txt"
tee_in=$(app_column "$tmp/basic.txt" tee 3)
[ "$(app_column "$tmp/basic.txt" sink_a 3)" -eq "$tee_in" ] || fail "sink_a did not get every packet"
[ "$(app_column "$tmp/basic.txt" tee 4)" -eq $((2 * tee_in)) ] || fail "tee out != 2 x in"

"$snabb" run "$here/configs/failing_app.lua" --duration 2.5 --report >"$tmp/out.txt" 2>"$tmp/err.txt" ||
  fail "run with a failing app exited $?"
grep -q "engine: app 'flaky' failed in push: .*failing_app.lua:9: deliberate failure in Flaky" \
  "$tmp/err.txt" || fail "failure message: $(cat "$tmp/err.txt")"
grep -q "stack traceback" "$tmp/err.txt" || fail "no traceback"
grep -q "engine: app 'flaky' restarted" "$tmp/err.txt" || fail "not restarted"
[ "$(app_column "$tmp/out.txt" flaky 7)" -ge 2 ] || fail "flaky errors column"
[ "$(app_column "$tmp/out.txt" sink 3)" -gt 1000000 ] || fail "sink stopped receiving"
check_links "$tmp/out.txt"
# Without --duration it runs until SIGINT, then stops its apps and still prints the report.
"$snabb" run "$here/../examples/basic.lua" --report >"$tmp/int.txt" &
pid=$!
sleep 0.5
kill -INT "$pid"
wait "$pid" || fail "SIGINT: exit $?"
check_links "$tmp/int.txt"
echo "run_test: ok"

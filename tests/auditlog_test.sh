#!/usr/bin/env bash
# End-to-end: `snabb -a FILE script.lua` writes a JIT auditlog that `snabb auditlog` decodes: text
# as jit.dump prints it (bytecode compared with `luajit -jdump`'s), JSON that strict UTF-8 parsers
# take; a bench run's log without snabb's own traces, and each filter; a log cut short still
# decodes; anything else (another format, another version, a corrupt record, a missing file, an
# unwritable log) ends in exit 1 and one line naming the file.
. "$(dirname "$0")/prologue.sh"
set +e # every check runs; check_failed counts

# The script's traces: loops, a call (frame depth), a comparison, upvalues, a long string,
# math.floor (a built-in), a closure (NYI: FNEW, so those attempts abort), and a string constant
# that is not UTF-8 ("\255\0\128") in a trace's constants. No branch depends on the iteration, so
# the traces are the same whichever iteration recording starts at (LuaJIT's hot counters are
# hashed by address: they differ between the luajit binary and snabb).
cat >"$tmp/script.lua" <<'LUA'
local bad, long = "\255\0\128", "a string constant longer than forty bytes, cut"
local t = {}
for i = 1, 1000 do t[i] = i end
local s = 0
for i = 1, 1000 do local f = function () return i end s = s + f() end
local function key (i)
   if i < 0 then return bad end
   return long .. i
end
local n = {}
for i = 1, 500 do
   local k = key(i)
   n[k] = (n[k] or 0) + math.floor(i / -7)
end
for i = 1, 300 do t[i] = key(-i) .. i end
LUA
"$snabb" -a "$tmp/log.bin" "$tmp/script.lua" || check_failed "snabb -a exited $?"
"$snabb" auditlog "$tmp/log.bin" >"$tmp/log.txt" || check_failed "snabb auditlog exited $?"
for want in "^---- TRACE [0-9]+ start .*script.lua:3$" "^---- TRACE [0-9]+ IR$" \
            "^[0-9]{4}  FORL " "^\.\.\.\.        SNAP   #0 " \
            "^---- TRACE [0-9]+ mcode [0-9]+ at 0x" "^->LOOP:$" "	->[0-9]+$" \
            "^---- TRACE [0-9]+ stop -> loop; lines .*script.lua:3$" "^[0-9]{4}  FNEW " \
            "^---- TRACE [0-9]+ abort .*script.lua:5 -- NYI: bytecode [0-9]+$"; do
  grep -aqE -- "$want" "$tmp/log.txt" || check_failed "no line matching '$want' in the text"
done

# The bytecode of the traces as `luajit -jdump` lists it for a script (the same LuaJIT version;
# file names as given, so both run it as same.lua from its folder): loops, a call (frame depth),
# a comparison and its jump, upvalues, a long string, a built-in (math.floor), and no branch that
# depends on the iteration, so that a loop's trace is the same whichever iteration it starts at.
cat >"$tmp/same.lua" <<'LUA'
local bad = "\255\0\128"
local function key (i)
   if i < 0 then return bad end
   return "a string constant longer than forty bytes, cut" .. i
end
local n, t = {}, {}
for i = 1, 500 do
   local k = key(i)
   n[k] = (n[k] or 0) + math.floor(i / -7)
end
for i = 1, 300 do t[i] = key(-i) .. i end
LUA
if command -v luajit >/dev/null; then
  (cd "$tmp" && luajit -jdump=tb same.lua >luajit.txt && "$snabb" -a same.bin same.lua &&
     "$snabb" auditlog same.bin --no-mcode >same.txt) || check_failed "running same.lua for -jdump"
  python3 "$here/auditlog_bytecode.py" "$tmp/luajit.txt" "$tmp/same.txt" "^0000  \. FUNCF " \
    "^0000  \. FUNCC .*; math.floor$" "^[0-9]{4}  \. ISGE .*" "^[0-9]{4}  \. JMP .* => " \
    '; "a string constant longer than forty byte"~$' "UGET .*; bad$" "FORL " \
    || check_failed "bytecode differs from luajit -jdump's"
else
  echo "auditlog_test: no luajit binary: bytecode not compared with luajit -jdump"
fi

# JSON is UTF-8 that strict parsers take: the constant's bytes ff 00 80 as \u00ff\u0000\u0080.
"$snabb" auditlog "$tmp/log.bin" --json >"$tmp/log.json" || check_failed "snabb auditlog --json exited $?"
python3 -c '
import json, sys
d = json.loads(open(sys.argv[1], "rb").read().decode("utf-8", "strict"))
values = [c.get("value") for t in d["traces"] for c in t["constants"] if c["kind"] == "string"]
assert "\xff\x00\x80" in values, values
assert any(a["reason"].startswith("NYI: bytecode") for a in d["aborts"])
' "$tmp/log.json" || check_failed "JSON not strict UTF-8 JSON with the constant and the abort"
n=$(jq '[.traces[].constants[] | select(.value == "\u00ff\u0000\u0080")] | length' "$tmp/log.json")
[ "$n" -gt 0 ] || check_failed "jq does not find the constant \\u00ff\\u0000\\u0080"

# Blacklisting: a loop that aborts at every attempt (a closure per iteration) long enough for
# LuaJIT to blacklist its FORL (after about ten aborts, the hot count doubled at each) is listed as
# blacklisted once, at its last abort, in the text and the JSON; the script above, whose loop at
# line 5 aborts but runs 1,000 iterations, is not.
cat >"$tmp/blacklist.lua" <<'LUA'
local s = 0
for i = 1, 200000 do local f = function () return i end s = s + f() end
LUA
"$snabb" -a "$tmp/blacklist.bin" "$tmp/blacklist.lua" || check_failed "snabb -a blacklist.lua exited $?"
"$snabb" auditlog "$tmp/blacklist.bin" >"$tmp/blacklist.txt" || check_failed "snabb auditlog exited $?"
bl=$(grep -aE "^---- TRACE [0-9]+ blacklisted " "$tmp/blacklist.txt")
grep -qE "^---- TRACE [0-9]+ blacklisted .*blacklist.lua:2 -- its FORL is never compiled again: it runs interpreted$" <<<"$bl" \
  && [ "$(wc -l <<<"$bl")" -eq 1 ] || check_failed "blacklisting listed as '$bl'"
# It follows the last abort there, of the same trace number.
last=$(grep -aE "^---- TRACE [0-9]+ (abort|blacklisted) " "$tmp/blacklist.txt" | tail -2)
[ "$(awk '{print $3}' <<<"$last" | sort -u | wc -l)" -eq 1 ] && grep -q " abort .*NYI: bytecode" <<<"$last" \
  || check_failed "the blacklisting does not follow the last abort: $last"
grep -aqE "^---- TRACE [0-9]+ blacklisted " "$tmp/log.txt" && check_failed "script.lua's brief loop listed as blacklisted"
"$snabb" auditlog "$tmp/blacklist.bin" --json >"$tmp/blacklist.json" || check_failed "--json exited $?"
python3 -c '
import json, sys
aborts = [a for a in json.load(open(sys.argv[1]))["aborts"] if a["start"]["line"] == 2]
flags = [a["blacklisted"] for a in aborts]
assert len(aborts) >= 3 and flags == [False] * (len(aborts) - 1) + [True], flags
assert all(a["start_bc"] == "FORL" for a in aborts), [a.get("start_bc") for a in aborts]
' "$tmp/blacklist.json" || check_failed "JSON: the last abort at line 2 alone blacklisted"

# Counts of traces (their stop lines) and aborts in a listing; its root traces' start lines (a
# side trace's start names parent/exit).
traces() { grep -acE "^---- TRACE [0-9]+ stop" "$1"; }
aborts() { grep -acE "^---- TRACE [0-9]+ abort" "$1"; }
side="^---- TRACE [0-9]+ start [0-9]+/(stitch|[0-9]+) "
root_starts() { grep -aE "^---- TRACE [0-9]+ start " "$1" | grep -avE "$side"; }

# A bench run's log (its run directory kept): snabb's own tooling (the observer, bench's loops,
# dkjson for apps.json) is left out and counted; --all shows it, and the counts add up.
"$snabb" bench "$here/../examples/forward.lua" --pcap "$here/data/pcap/v4.pcap" \
  --packets 200000 --rundir "$tmp/run" >"$tmp/bench.txt" 2>&1 \
  || check_failed "snabb bench exited $?: $(cat "$tmp/bench.txt")"
audit=$tmp/run/audit.log
"$snabb" auditlog "$audit" >"$tmp/default.txt" || check_failed "auditlog of the bench run exited $?"
"$snabb" auditlog "$audit" --all >"$tmp/all.txt" || check_failed "auditlog --all exited $?"
note=$(grep -aE "^[0-9]+ traces? and [0-9]+ aborts? of snabb's own tooling .* left out: --all" \
       "$tmp/default.txt")
read -r left_traces _ _ left_aborts _ <<<"$note"
if [ -z "$note" ] || [ "$left_traces" -eq 0 ] \
   || [ $(( $(traces "$tmp/all.txt") - $(traces "$tmp/default.txt") )) -ne "$left_traces" ] \
   || [ $(( $(aborts "$tmp/all.txt") - $(aborts "$tmp/default.txt") )) -ne "$left_aborts" ]; then
  check_failed "left-out note '$note' does not match --all ($(traces "$tmp/all.txt") traces) and the" \
       "default ($(traces "$tmp/default.txt"))"
fi
tooling="^---- TRACE [0-9]+ start (vm|observe|programs|external)/"
grep -aqE "$tooling" "$tmp/all.txt" || check_failed "--all shows no tooling trace"
grep -aE "$tooling" "$tmp/default.txt" | grep -v "(app " && check_failed "the default shows tooling traces"
grep -aqE "^---- TRACE [0-9]+ start .*examples/forward.lua:[0-9]+ \(app fwd\)$" "$tmp/default.txt" \
  || check_failed "the default lacks the network function's trace in app fwd"

# --app: only traces recorded in that app's calls, and side traces of those.
"$snabb" auditlog "$audit" --app fwd --no-mcode >"$tmp/app.txt" || check_failed "--app exited $?"
grep -aqE "^---- TRACE [0-9]+ start .*\(app fwd\)$" "$tmp/app.txt" || check_failed "--app fwd shows none"
root_starts "$tmp/app.txt" | grep -v "(app fwd)$" && check_failed "--app fwd shows a root of another app"
err=$("$snabb" auditlog "$audit" --app nope 2>&1 >/dev/null)
grep -q "no trace was recorded in app 'nope'; apps in .*: bench_sink, bench_source, fwd$" <<<"$err" \
  || check_failed "--app nope: '$err'"

# --trace N: N and its side traces, whatever their app. N: the first root trace (compiled, not an
# aborted attempt) that has a compiled side trace (an attempt at one may abort: CI saw that).
root=$(awk '/^---- TRACE [0-9]+ start / { parent[$3] = ""
                                         if (match($0, / start [0-9]+\//))
                                           parent[$3] = substr($0, RSTART + 7, RLENGTH - 8) }
            /^---- TRACE [0-9]+ stop / { p = parent[$3]
                                        if (p == "") root[$3] = 1
                                        else if (root[p]) { print p; exit } }' "$tmp/all.txt")
"$snabb" auditlog "$audit" --trace "$root" --no-mcode >"$tmp/trace.txt" || check_failed "--trace exited $?"
[ "$(root_starts "$tmp/trace.txt" | awk '{print $3}')" = "$root" ] \
  || check_failed "--trace $root shows the roots $(root_starts "$tmp/trace.txt" | awk '{print $3}')"
shown=" $(grep -aoE "^---- TRACE [0-9]+ stop" "$tmp/trace.txt" | awk '{print $3}' | tr '\n' ' ') "
while read -r parent; do
  [[ "$shown" == *" $parent "* ]] || check_failed "--trace $root shows a side trace of $parent"
done < <(grep -aoE "$side" "$tmp/trace.txt" | sed -E 's|.* start ([0-9]+)/.*|\1|')
[ "$(traces "$tmp/trace.txt")" -ge 2 ] || check_failed "--trace $root shows no side trace"

# --file: traces whose bytecode passes through the file.
"$snabb" auditlog "$audit" --file forward.lua --no-mcode >"$tmp/file.txt" || check_failed "--file exited $?"
[ "$(traces "$tmp/file.txt")" -ge 1 ] || check_failed "--file forward.lua shows no trace"
grep -aE "^---- TRACE [0-9]+ stop" "$tmp/file.txt" | grep -v "examples/forward.lua" \
  && check_failed "--file forward.lua shows a trace whose lines are elsewhere"

# --aborts: aborted traces only; --no-mcode: the IR without the machine code.
"$snabb" auditlog "$tmp/log.bin" --aborts >"$tmp/aborts.txt" || check_failed "--aborts exited $?"
[ "$(aborts "$tmp/aborts.txt")" -ge 1 ] && [ "$(traces "$tmp/aborts.txt")" -eq 0 ] \
  || check_failed "--aborts shows $(traces "$tmp/aborts.txt") traces, $(aborts "$tmp/aborts.txt") aborts"
"$snabb" auditlog "$tmp/log.bin" --no-mcode >"$tmp/nomcode.txt" || check_failed "--no-mcode exited $?"
grep -aq " mcode " "$tmp/nomcode.txt" && check_failed "--no-mcode shows machine code"
grep -aq "^---- TRACE [0-9]* IR$" "$tmp/nomcode.txt" || check_failed "--no-mcode lost the IR"

err=$("$snabb" auditlog "$tmp/log.bin" --trace x 2>&1); rc=$?
[ "$rc" -eq 2 ] && grep -q -- "--trace must be a trace number from 1, got 'x'" <<<"$err" \
  || check_failed "--trace x: exit $rc, $err"

size=$(stat -c %s "$tmp/log.bin")
head -c $((size - 5)) "$tmp/log.bin" >"$tmp/cut.bin"
"$snabb" auditlog "$tmp/cut.bin" >"$tmp/cut.txt"
grep -aq "last record cut short" "$tmp/cut.txt" || check_failed "cut log not reported"

# expect_error FILE PATTERN [COMMAND...]: exit 1 with exactly one line on stderr matching PATTERN.
expect_error() {
  local file=$1 pattern=$2; shift 2
  local err rc
  err=$("$@" 2>&1 >/dev/null); rc=$?
  if [ "$rc" -ne 1 ] || [ "$(wc -l <<<"$err")" -ne 1 ] || ! grep -qE -- "$pattern" <<<"$err"; then
    check_failed "$file: exit $rc, stderr: $err (wanted one line matching $pattern)"
  fi
}
printf '\xd4\xc3\xb2\xa1\x02\x00\x04\x00' >"$tmp/foreign.pcap"; head -c 100 /dev/zero >>"$tmp/foreign.pcap"
head -c 100 /dev/urandom >"$tmp/random.bin"
printf 'SNABBAUD\x09\x00\x00\x00\x00\x00\x00\x00' >"$tmp/v9.bin"
{ head -c 20 "$tmp/log.bin"; printf '\xc1'; tail -c +22 "$tmp/log.bin"; } >"$tmp/corrupt.bin"
expect_error foreign "foreign.pcap: not a snabb JIT auditlog" "$snabb" auditlog "$tmp/foreign.pcap"
expect_error random "random.bin: not a snabb JIT auditlog" "$snabb" auditlog "$tmp/random.bin"
expect_error v9 "v9.bin: auditlog format version 9" "$snabb" auditlog "$tmp/v9.bin"
expect_error corrupt "corrupt.bin: corrupt record at byte offset 16" "$snabb" auditlog "$tmp/corrupt.bin"
expect_error missing "missing.bin: No such file" "$snabb" auditlog "$tmp/missing.bin"
expect_error unwritable "auditlog: $tmp/no/log.bin: No such file" "$snabb" -a "$tmp/no/log.bin" "$tmp/script.lua"

finish auditlog_test

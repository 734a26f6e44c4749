#!/usr/bin/env bash
# End-to-end: `snabb inspect A B` compares two real runs that differ (snabb bench of
# examples/forward.lua, and of tests/configs/forward_extra.lua: the same Forward app, from the same
# file, with an extra, slower app after it), run A's directory moved elsewhere first (cp -a, the
# original removed) as one copied from another machine; `snabb inspect LOG VMP` reads the files of
# `snabb -a FILE -p FILE` (no run directory), alone and compared with a run directory; `snabb
# inspect PID` of a live `snabb run examples/basic.lua` samples its counters a second at a time.
# The pages are driven in headless Chromium by tests/inspect_compare_check.js, which checks every
# number against the runs' apps.json, vmprofile zone files, auditlogs and live counters. Then bad
# input: the same run twice is fine; a missing B, three runs, a file of the wrong kind are one line.
. "$(dirname "$0")/prologue.sh"
. "$(dirname "$0")/browser.sh"
. "$(dirname "$0")/inspect.sh"


# Two runs that differ.
"$snabb" bench "$here/../examples/forward.lua" --pcap "$data/v4.pcap" --duration 1 --rundir "$tmp/A" >/dev/null
"$snabb" bench "$configs/forward_extra.lua" --pcap "$data/v4.pcap" --duration 1 --rundir "$tmp/B" >/dev/null
for run in A B; do
  [ -s "$tmp/$run/audit.log" ] && [ -s "$tmp/$run/vmprofile/fwd.vmprofile" ] || fail "run $run left no auditlog or vmprofile"
done
# A run directory copied elsewhere, the original gone.
mkdir "$tmp/elsewhere"
cp -a "$tmp/A" "$tmp/elsewhere/A"
rm -rf "$tmp/A"

start_inspect "$tmp/elsewhere/A" "$tmp/B"
grep -q "^snabb inspect: $tmp/B against $tmp/elsewhere/A at " "$tmp/inspect.out" || fail "snabb inspect A B printed: $(cat "$tmp/inspect.out")"
node "$here/inspect_compare_check.js" compare "$url" "$tmp/elsewhere/A" "$tmp/B" "$snabb"
stop_inspect

# snabb -a FILE -p FILE: one zone, the whole program (bench's own per-app zones and log off).
"$snabb" -a "$tmp/run.auditlog" -p "$tmp/run.vmprofile" bench "$here/../examples/forward.lua" --pcap "$data/v4.pcap" \
  --duration 1 --no-vmprofile --no-auditlog >/dev/null
start_inspect "$tmp/run.auditlog" "$tmp/run.vmprofile"
node "$here/inspect_compare_check.js" files "$url" "$tmp/run.auditlog" "$tmp/run.vmprofile" "$snabb"
stop_inspect
# A vmprofile alone (no auditlog): its zone's samples as the file's header has them, no traces.
start_inspect "$tmp/run.vmprofile"
curl -sf "${url}api/apps" >"$tmp/vmp_apps.json" && curl -sf "${url}api/traces" >"$tmp/vmp_traces.json" ||
  fail "GET ${url}api/apps or traces of a vmprofile alone failed"
python3 - "$tmp/vmp_apps.json" "$tmp/vmp_traces.json" "$tmp/run.vmprofile" <<'PY' || fail "a vmprofile alone: $(head -c 300 "$tmp/vmp_apps.json")"
import json, struct, sys
apps, traces = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
header = open(sys.argv[3], "rb").read(96)
assert header[:8] == b"SNABBVMP"
assert apps["zone"]["samples"] == struct.unpack_from("<Q", header, 88)[0], apps["zone"]["samples"]
assert apps["zone"]["hz"] == struct.unpack_from("<I", header, 20)[0]
assert apps["apps"] == [] and traces["auditlog"] is False and traces["traces"] == []
PY
stop_inspect
# The same named by options, compared with a run directory: the files' run has no apps, its
# traces still match the directory's by what they are.
start_inspect --auditlog "$tmp/run.auditlog" --vmprofile "$tmp/run.vmprofile" "$tmp/B"
curl -sf "${url}api/compare" >"$tmp/files_compare.json" || fail "GET ${url}api/compare failed"
python3 - "$tmp/files_compare.json" <<'PY' || fail "the files' run compared with run B: $(head -c 300 "$tmp/files_compare.json")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["a"]["apps"] == 0 and d["a"]["files"]["vmprofile"].endswith("run.vmprofile"), d["a"]
assert all(a["verdict"] == "only in B" for a in d["apps"]), [a["verdict"] for a in d["apps"]]
both = [t for t in d["traces"] if not t.get("only")]
assert any(t["id"].startswith("/") and t["id"].split(":")[0].endswith("/examples/forward.lua") for t in both), \
    "no trace of examples/forward.lua matched between the -a/-p run and run B"
PY
stop_inspect

# The same run twice: fine, and nothing changed.
start_inspect "$tmp/B" "$tmp/B"
curl -sf "${url}api/compare" >"$tmp/same.json" || fail "GET ${url}api/compare (B against B) failed"
python3 - "$tmp/same.json" <<'PY' || fail "B against B: $(head -c 300 "$tmp/same.json")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["apps"] and all(a["verdict"] == "same" and a["diff"] == 0 for a in d["apps"]), d["apps"]
assert d["traces"] and all(not t.get("only") and t["diff"] == 0 for t in d["traces"])
PY
stop_inspect

# Bad input: one line "snabb inspect: ...", exit 2.
expect_error() { # PATTERN ARGS...
  local pattern=$1 status=0
  shift
  "$snabb" inspect "$@" >"$tmp/out" 2>"$tmp/err" || status=$?
  [ "$status" -eq 2 ] || fail "snabb inspect $*: exit $status, want 2 ($(cat "$tmp/err"))"
  [ "$(wc -l <"$tmp/err")" -eq 1 ] && grep -q "^snabb inspect: .*$pattern" "$tmp/err" ||
    fail "snabb inspect $*: '$(cat "$tmp/err")', want one line with '$pattern'"
}
expect_error "$tmp/missing: not a run directory (no apps.json), an auditlog (snabb -a FILE) nor a vmprofile" "$tmp/B" "$tmp/missing"
expect_error "3 runs given ($tmp/B; $tmp/elsewhere/A; $tmp/B): snabb inspect shows one run or compares two" \
  "$tmp/B" "$tmp/elsewhere/A" "$tmp/B"
expect_error "--vmprofile $tmp/run.auditlog: not a vmprofile (snabb -p FILE) (it is a JIT auditlog" --vmprofile "$tmp/run.auditlog"
expect_error "--auditlog $tmp/B/apps.json: not a JIT auditlog (snabb -a FILE) (no SNABBAUD header)" --auditlog "$tmp/B/apps.json"
expect_error "no run given" 

# Live: the counters of a running snabb over time, sampled by the inspector from its start; the
# page opened a few seconds later.
"$snabb" run "$here/../examples/basic.lua" --duration 60 >/dev/null &
live=$!
for _ in $(seq 100); do "$snabb" profile $live >/dev/null 2>&1 && break; sleep 0.1; done
start_inspect $live
sleep 4
node "$here/inspect_compare_check.js" live "$url" $live
stop_inspect
kill -INT $live
wait $live || true
echo "inspect_compare_test: OK"

#!/usr/bin/env bash
# End-to-end: snabb inspect's hot machine code and source view on a real run long enough to have
# samples at machine-code addresses (snabb bench of examples/forward.lua on a capture, 3 s,
# --rundir), driven in headless Chromium by tests/inspect_source_check.js, which reads the run's
# address table (vmprofile/addresses, parsed there from its layout in observe/vmprofile.h), zone
# files and auditlog (snabb auditlog --json) itself and checks the page against them; then the
# same run directory copied elsewhere with the source file gone: its text still comes from the
# auditlog, and with its address table cut short the trace view says so in one line. Also: snabb
# -p FILE writes FILE.addresses beside FILE.
. "$(dirname "$0")/prologue.sh"
. "$(dirname "$0")/browser.sh"
. "$(dirname "$0")/inspect.sh"

# The example as a copy of our own: the test can take it away to show the auditlog carries it.
cp "$here/../examples/forward.lua" "$tmp/forward.lua"
run=$tmp/run
"$snabb" bench "$tmp/forward.lua" --pcap "$data/v4.pcap" --duration 3 --rundir "$run" >/dev/null
[ -s "$run/vmprofile/addresses" ] || fail "the run left no address table (vmprofile/addresses)"

start_inspect "$run"
node "$here/inspect_source_check.js" "$url" "$run" "$snabb" "$tmp/forward.lua"
stop_inspect

# Copied elsewhere, the file gone: the source view still has its text (from the auditlog).
cp -r "$run" "$tmp/copied"
mv "$tmp/forward.lua" "$tmp/forward.lua.kept"
start_inspect "$tmp/copied"
chunk=$(python3 -c 'import json,sys; print([a for a in json.load(open(sys.argv[1]))["apps"] if a["name"] == "fwd"][0]["code"][0]["source"])' "$run/apps.json")
enc=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote("@" + sys.argv[1], safe=""))' "$chunk")
curl -sf "${url}api/source?chunk=$enc" >"$tmp/source.json" || fail "GET ${url}api/source?chunk=$enc failed"
python3 - "$tmp/source.json" "$tmp/forward.lua.kept" <<'PY' || fail "the copied run's source view has not the file's text from its auditlog"
import json, sys
doc = json.load(open(sys.argv[1]))
text = open(sys.argv[2], encoding="utf-8").read()
assert doc["from"] == "auditlog", doc["from"]
assert "\n".join(doc["text"]) + "\n" == text, "text differs"
PY
# A file neither the auditlog nor the disk knows: 404 with an error.
status=$(curl -s -o "$tmp/nosuch.json" -w "%{http_code}" "${url}api/source?chunk=%40no%2Fsuch.lua")
[ "$status" = 404 ] && grep -q '"error"' "$tmp/nosuch.json" || fail "GET source of no such file: $status $(cat "$tmp/nosuch.json")"
# A file on disk that the run did not run: 404, its text not served (the request names the path).
for chunk in %40%2Fetc%2Fpasswd %2Fetc%2Fpasswd %40..%2F..%2F..%2F..%2F..%2Fetc%2Fpasswd; do
  status=$(curl -s -o "$tmp/other.json" -w "%{http_code}" "${url}api/source?chunk=$chunk")
  [ "$status" = 404 ] && ! grep -q "root:" "$tmp/other.json" ||
    fail "GET source of $chunk (a file the run did not run): $status $(head -c 200 "$tmp/other.json")"
done
# An address table cut short: the trace view works and says so in one line naming the file.
truncate -s 1000 "$tmp/copied/vmprofile/addresses"
trace=$(curl -sf "${url}api/traces" | python3 -c 'import json,sys; print(max(json.load(sys.stdin)["traces"], key=lambda t: t["samples"])["number"])')
curl -sf "${url}api/trace/$trace" >"$tmp/cut.json" || fail "GET trace $trace with the address table cut short failed"
python3 - "$tmp/cut.json" "$tmp/copied/vmprofile/addresses" <<'PY' || fail "a cut address table: $(cat "$tmp/cut.json" | head -c 300)"
import json, sys
err = json.load(open(sys.argv[1]))["by_address"]["error"]
assert err.startswith(sys.argv[2] + ": ") and "cut short" in err and "\n" not in err, err
PY
stop_inspect

# snabb -p FILE: the zone in FILE, the addresses in FILE.addresses, read by the same reader; every
# sample in a trace is at an address in it.
"$snabb" -p "$tmp/p.vmprofile" bench "$here/../examples/forward.lua" --pcap "$data/v4.pcap" --duration 1 --no-vmprofile >/dev/null
[ -s "$tmp/p.vmprofile.addresses" ] || fail "snabb -p FILE left no FILE.addresses"
P=$tmp/p.vmprofile SNABB_PROGRAM_LUACODE='
local vmprofile = require("observe.vmprofile")
local z = vmprofile.read(os.getenv("P"))
local a = vmprofile.read_addresses(os.getenv("P") .. ".addresses")
assert(a.samples == z.total.loop + z.total.head and a.counted + a.overflow == a.samples and a.samples > 0,
       ("%d address samples, %d in traces"):format(a.samples, z.total.loop + z.total.head))
' "$snabb" || fail "snabb -p FILE: FILE.addresses does not hold FILE's samples in traces"
echo "inspect_source_test: OK"

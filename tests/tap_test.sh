#!/usr/bin/env bash
# tap_test: `snabb tap` on a running `snabb run` (apps/tap/README.md). A chain source -> fwd ->
# sink of 100-byte packets runs; taps capture fwd.output with --count (exactly N whole records,
# which tcpdump reads), source.output until SIGINT (a relative file name, a complete file of as
# many records as the client reported), and fwd.output while `snabb config load` moves that link
# (the tap ends, its file complete). Mistakes get one line and exit 2. The instance forwards all
# along and accounts for every packet at its end.
. "$(dirname "$0")/prologue.sh"
set +e # every check runs; check_failed counts

cat >"$tmp/chain.lua" <<'LUA'
local basic = require("apps.basic.basic_apps")
local c = config.new()
config.app(c, "source", basic.Source, 100)
config.app(c, "fwd", basic.Join)
config.app(c, "sink", basic.Sink)
config.link(c, "source.output -> fwd.input")
config.link(c, "fwd.output -> sink.input")
return c
LUA
# The same but for fwd's output, which goes to another sink: a new link.
sed -e 's/"sink", basic.Sink/"sink2", basic.Sink/' -e 's/fwd.output -> sink.input/fwd.output -> sink2.input/' \
  "$tmp/chain.lua" >"$tmp/moved.lua"

"$snabb" run "$tmp/chain.lua" --duration 120 >"$tmp/run.out" 2>&1 &
run=$!
for _ in $(seq 100); do "$snabb" config $run get >/dev/null 2>&1 && break; sleep 0.1; done
"$snabb" config $run get >/dev/null || fail "no control server on $run: $(cat "$tmp/run.out")"

# size FILE: its bytes. A file of N whole 100-byte records is 24 + N * (16 + 100) bytes.
size() { stat -c %s "$1"; }
whole() { [ $((($(size "$1") - 24) % 116)) -eq 0 ] && [ "$(size "$1")" -ge 24 ]; }

out=$("$snabb" tap $run fwd.output "$tmp/count.pcap" --count 5000 2>&1)
[[ $out == *"snabb tap: 5,000 packets (500,000 bytes) of fwd.output -> sink.input into $tmp/count.pcap; its count was reached"* ]] \
  || check_failed "--count 5000: $out"
[ "$(size "$tmp/count.pcap")" -eq $((24 + 5000 * 116)) ] || check_failed "count.pcap is $(size "$tmp/count.pcap") bytes"
n=$("$here/tcpdump.sh" -r "$tmp/count.pcap" 2>/dev/null | wc -l)
[ "$n" -eq 5000 ] || check_failed "tcpdump reads $n records of count.pcap"

# started FILE: waits until the client in the background says its tap is on (in FILE).
started() {
  for _ in $(seq 300); do grep -q "^snabb tap: capturing" "$1" && return; sleep 0.1; done
  check_failed "no tap started: $(cat "$1")"
}

(cd "$tmp" && exec "$snabb" tap $run source.output relative.pcap >"$tmp/int.out" 2>&1) &
tap=$!
started "$tmp/int.out"
sleep 0.3
kill -INT $tap
wait $tap || check_failed "snabb tap ended by SIGINT: exit $?: $(cat "$tmp/int.out")"
n=$(sed -n 's/^snabb tap: \([0-9,]*\) packets .* into relative.pcap; stopped; the tap took [0-9.]* cycles a packet$/\1/p' \
  "$tmp/int.out" | tr -d ,)
[ -n "$n" ] && [ "$n" -gt 0 ] || check_failed "SIGINT: $(cat "$tmp/int.out")"
[ "$(size "$tmp/relative.pcap")" -eq $((24 + ${n:-0} * 116)) ] \
  || check_failed "relative.pcap: $(size "$tmp/relative.pcap") bytes, not the $n records reported"

"$snabb" tap $run fwd.output "$tmp/moved.pcap" >"$tmp/moved.out" 2>&1 &
tap=$!
started "$tmp/moved.out"
sleep 0.3
"$snabb" config $run load "$tmp/moved.lua" >/dev/null || check_failed "config load failed"
for _ in $(seq 50); do kill -0 $tap 2>/dev/null || break; sleep 0.1; done
wait $tap || check_failed "tap of a moved link: exit $?"
grep -q "into $tmp/moved.pcap; its link was removed by a reconfiguration; the tap took" "$tmp/moved.out" \
  || check_failed "tap of a moved link: $(cat "$tmp/moved.out")"
whole "$tmp/moved.pcap" || check_failed "moved.pcap is $(size "$tmp/moved.pcap") bytes: not whole records"

# expect PATTERN COMMAND...: exit 2 and one line on stderr matching PATTERN.
expect() {
  local pattern=$1; shift
  local err rc
  err=$("$@" 2>&1 >/dev/null); rc=$?
  if [ $rc -ne 2 ] || [ "$(wc -l <<<"$err")" -ne 1 ] || ! grep -qE -- "$pattern" <<<"$err"; then
    check_failed "$* -> exit $rc, stderr: $err (wanted exit 2 and: $pattern)"
  fi
}
expect "^snabb tap: app 'fwd' has no link on an output port 'x' \(its linked outputs: output\)$" \
  "$snabb" tap $run fwd.x "$tmp/x.pcap"
expect "^snabb tap: no app 'nope' in the running graph \(its apps: fwd, sink2, source\)$" \
  "$snabb" tap $run nope.output "$tmp/x.pcap"
expect "^snabb tap: app 'sink2' has no link on an output port 'output' \(it feeds no link\)$" \
  "$snabb" tap $run sink2.output "$tmp/x.pcap"
expect "^snabb tap: /nonexistent/x.pcap: No such file or directory$" "$snabb" tap $run fwd.output /nonexistent/x.pcap
expect "^snabb tap: --count must be a whole number from 1" "$snabb" tap $run fwd.output "$tmp/x.pcap" --count 0
expect "^snabb tap: no snabb instance with PID 999999999$" "$snabb" tap 999999999 fwd.output "$tmp/x.pcap"
[ ! -e "$tmp/x.pcap" ] || check_failed "a refused tap made its file"

kill -INT $run
wait $run || check_failed "snabb run: exit $?"
grep -qE "^dropped [0-9,]+ \(full links\), still queued [0-9,]+, app errors 0$" "$tmp/run.out" \
  || check_failed "snabb run: $(cat "$tmp/run.out")"
in=$(sed -n 's/^in  *\([0-9,]*\) .*/\1/p' "$tmp/run.out" | tr -d ,)
[ "${in:-0}" -gt 1000000 ] || check_failed "snabb run forwarded too little: $(cat "$tmp/run.out")"
finish tap_test

#!/usr/bin/env bash
# End-to-end, as root: the control server of `snabb run` (observe/control_server.h,
# observe.control) and its client `snabb config`, on a Source -> Sink graph left running.
# Its Unix socket is RUNDIR/control, 0600, and answers only our user (nobody, let through the
# file modes on purpose, gets 403 with the reason); GET /counters, /metrics (promtool check
# metrics clean), /profile, /config; 404 and 405; TCP with --listen. Bad input: a malformed
# request (400), a body over the limit (413), headers over the limit (431), a client gone
# mid-request, and 1,000 connections open at once (tests/control_client.py flood: every one
# answered as its kind asks, or closed by the client itself); through all of it the graph keeps
# forwarding (the link's counters grow) and the server keeps answering. snabb config loads a new
# graph live (what changed), refuses a config with an error (file:line, exit 1, graph kept), and
# says so for a PID that is no snabb instance. SIGTERM ends the run normally, socket removed.
. "$(dirname "$0")/prologue.sh"
[ "$(id -u)" = 0 ] || fail "needs root"
py=$(command -v /usr/bin/python3 || command -v python3)
command -v promtool >/dev/null || fail "needs promtool (Debian's prometheus: tools/install-deps)"

# In /tmp, 0711, so that nobody can reach the socket once it is opened to it below.
work=$(mktemp -d /tmp/snabb-control-test.XXXXXX)
at_exit 'rm -rf "$work"'
chmod 0711 "$work"
cp "$here/control_client.py" "$work/" && chmod 0644 "$work/control_client.py"
client() { "$py" "$work/control_client.py" "$@"; }

cat >"$work/graph.lua" <<'EOF'
local basic = require("apps.basic.basic_apps")
local c = config.new()
config.app(c, "source", basic.Source, {size = 60})
config.app(c, "sink", basic.Sink)
config.link(c, "source.output -> sink.input")
return c
EOF
cat >"$work/graph2.lua" <<'EOF'
local basic = require("apps.basic.basic_apps")
local c = config.new()
config.app(c, "source", basic.Source, {size = 60})
config.app(c, "tee", basic.Tee)
config.app(c, "sink", basic.Sink)
config.app(c, "sink2", basic.Sink)
config.link(c, "source.output -> tee.input")
config.link(c, "tee.a -> sink.input")
config.link(c, "tee.b -> sink2.input")
return c
EOF
printf 'local c = config.new()\nconfig.app(c, "x", nosuch.App)\nreturn c\n' >"$work/bad.lua"
printf 'local c = config.new(\nreturn c\n' >"$work/syntax.lua"

# A bad --listen is a usage error before anything runs.
set +e
"$snabb" run "$work/graph.lua" --listen 127.0.0.1:99999 >"$tmp/out" 2>"$tmp/err"
status=$?
set -e
[ "$status" = 2 ] && [ "$(wc -l <"$tmp/err")" = 1 ] && grep -q "^snabb run: --listen must be HOST:PORT (HOST an IP address) or PORT" "$tmp/err" ||
  fail "--listen 127.0.0.1:99999: status $status, $(cat "$tmp/err")"

run=$work/run
"$snabb" run "$work/graph.lua" --rundir "$run" --listen 127.0.0.1:0 >"$tmp/run.out" 2>"$tmp/run.err" &
pid=$!
for _ in $(seq 600); do
  [ -S "$run/control" ] && grep -q "control API on" "$tmp/run.err" && break
  kill -0 $pid 2>/dev/null || fail "snabb run ended: $(cat "$tmp/run.err")"
  sleep 0.1
done
[ -S "$run/control" ] || fail "no control socket $run/control"
sock=$run/control
[ "$(stat -c %a "$sock")" = 600 ] || check_failed "socket mode $(stat -c %a "$sock"), want 600"
port=$(sed -n 's|^snabb run: control API on http://127.0.0.1:\([0-9]*\)/$|\1|p' "$tmp/run.err")

# http METHOD PATH [curl args]: the body in $tmp/body, the status printed.
http() {
  local method=$1 path=$2
  shift 2
  curl -s -o "$tmp/body" -w '%{http_code}' --unix-socket "$sock" -X "$method" "http://snabb$path" "$@"
}
json() { "$py" -c "import json,sys; d=json.load(open('$tmp/body')); print($1)"; }
# Packets the sink has taken off link $1 (default: the first graph's; GET /counters).
forwarded() {
  [ "$(http GET /counters)" = 200 ] || fail "GET /counters: $(cat "$tmp/body")"
  json "[l['rxpackets'] for l in d['links'] if l['name'] == '${1:-source.output -> sink.input}'][0]"
}

[ "$(http GET /counters)" = 200 ] || fail "GET /counters: $(cat "$tmp/body")"
[ "$(json "d['pid']")" = "$pid" ] || check_failed "/counters pid $(json "d['pid']"), want $pid"
before=$(forwarded)
[ "$before" -gt 0 ] || check_failed "nothing forwarded yet: $before"

[ "$(http GET /metrics)" = 200 ] || check_failed "GET /metrics: $(cat "$tmp/body")"
promtool check metrics <"$tmp/body" >"$tmp/promtool" 2>&1 || check_failed "promtool: $(cat "$tmp/promtool")"
for line in '# TYPE snabb_link_rx_packets_total counter' \
  'snabb_link_rx_packets_total{link="source.output -> sink.input"} ' \
  'snabb_app_packets_in_total{app="sink"} ' '# TYPE snabb_engine_breath_seconds histogram'; do
  grep -qF "$line" "$tmp/body" || check_failed "/metrics has no '$line'"
done

[ "$(http GET /profile)" = 200 ] && [ "$(json "sorted(z['zone'] for z in d['zones'])")" = "['engine', 'sink', 'source']" ] ||
  check_failed "GET /profile: $(head -c 300 "$tmp/body")"
[ "$(http GET /config)" = 200 ] && [ "$(json "d['links']")" = "['source.output -> sink.input']" ] ||
  check_failed "GET /config: $(cat "$tmp/body")"
[ "$(http GET /nope)" = 404 ] && grep -q '"no endpoint /nope; there are GET /counters' "$tmp/body" ||
  check_failed "GET /nope: $(cat "$tmp/body")"
[ "$(http POST /counters -d x)" = 405 ] && grep -q "only GET" "$tmp/body" ||
  check_failed "POST /counters: $(cat "$tmp/body")"
[ "$(http DELETE /config)" = 405 ] && grep -q "only GET, POST" "$tmp/body" ||
  check_failed "DELETE /config: $(cat "$tmp/body")"

# Two requests on one connection (keep-alive), one answered on the server's thread, one by Lua.
curl -sv --unix-socket "$sock" http://snabb/counters http://snabb/config -o /dev/null -o /dev/null 2>"$tmp/keep"
[ "$(grep -c '^< HTTP/1.1 200 OK' "$tmp/keep")" = 2 ] && grep -q "Re-using existing connection" "$tmp/keep" ||
  check_failed "keep-alive: $(grep -E '^[<*] ' "$tmp/keep")"

# TCP, when asked.
[ -n "$port" ] && [ "$(curl -s -o "$tmp/body" -w '%{http_code}' "http://127.0.0.1:$port/counters")" = 200 ] ||
  check_failed "TCP 127.0.0.1:$port/counters: $(cat "$tmp/body" 2>/dev/null)"
# Its port, taken: a second run says so, one line, exit 2.
set +e
"$snabb" run "$work/graph.lua" --listen "127.0.0.1:$port" --duration 1 >"$tmp/out" 2>"$tmp/err"
status=$?
set -e
[ "$status" = 2 ] && [ "$(cat "$tmp/err")" = "snabb run: --listen 127.0.0.1:$port: bind: Address already in use" ] ||
  check_failed "--listen on a port in use: status $status, $(cat "$tmp/err")"

# Bad input.
expect() { # expect STATUS_LINE TEXT
  local got
  got=$(client send "$sock" "$2")
  [ "$got" = "$1" ] || check_failed "sent '${2:0:60}': got '$got', want '$1'"
}
expect "HTTP/1.1 400 Bad Request" 'GET /counters HTTP/1.1\r\nHost x\r\n\r\n'
expect "HTTP/1.1 400 Bad Request" 'NOT HTTP AT ALL\r\n\r\n'
expect "HTTP/1.1 400 Bad Request" 'GET /counters HTTP/1.1\r\nContent-Length: -5\r\n\r\n'
expect "HTTP/1.1 413 Payload Too Large" 'POST /config HTTP/1.1\r\nContent-Length: 1048577\r\n\r\n'
{ printf 'POST /config HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n100001\r\n'; head -c 1048577 /dev/zero; } >"$tmp/chunked"
expect "HTTP/1.1 413 Payload Too Large" "@$tmp/chunked"
{ printf 'GET /counters HTTP/1.1\r\nX: '; head -c 20000 /dev/zero | tr '\0' a; printf '\r\n\r\n'; } >"$tmp/header"
expect "HTTP/1.1 431 Request Header Fields Too Large" "@$tmp/header"
expect "closed" 'GET /counters HTTP/1.1\r\nHost: x\r\n'
client cut "$sock" 'POST /config HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nreturn'
client cut "$sock" 'GET /coun'

# 1,000 connections open at once, 200 of each kind.
client flood "$sock" 1000 >"$tmp/flood"
cat >"$tmp/flood.want" <<'EOF'
config HTTP/1.1 200 OK 200
counters HTTP/1.1 200 OK 200
gone closed 200
malformed HTTP/1.1 400 Bad Request 200
metrics HTTP/1.1 200 OK 200
EOF
diff "$tmp/flood.want" "$tmp/flood" >"$tmp/flood.diff" || check_failed "flood: $(cat "$tmp/flood.diff")"
after=$(forwarded)
[ "$after" -gt "$before" ] || check_failed "the graph stopped forwarding: $before, then $after packets"
echo "control_test: $((after - before)) packets forwarded during the bad input and the flood"

# Another user: refused with the reason (the file modes opened on purpose; they keep it out).
chmod 0711 "$run" && chmod 0666 "$sock"
# (It answers as soon as it accepts, before any request.)
got=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$py" -c "
import socket; s = socket.socket(socket.AF_UNIX); s.connect('$sock')
print(s.recv(4096).decode())")
echo "$got" | grep -q "^HTTP/1.1 403 Forbidden" && echo "$got" | grep -q '"user 65534 may not control this instance' ||
  check_failed "user 65534: $got"
chmod 0700 "$run" && chmod 0600 "$sock"

# snabb config.
"$snabb" config $pid get >"$tmp/get" || check_failed "snabb config get: status $?"
grep -q "^config $work/graph.lua$" "$tmp/get" && grep -q "^source  basic.basic_apps.Source$" "$tmp/get" ||
  check_failed "snabb config get: $(cat "$tmp/get")"
"$snabb" config $pid load "$work/graph2.lua" >"$tmp/load" || check_failed "snabb config load: status $?"
# What was queued in the link removed went on through source.output's new link: none dropped.
carried=$(sed -n 's/^  packets queued in the links removed: \([0-9,]*\) carried .*, 0 dropped$/\1/p' "$tmp/load")
[ -n "$carried" ] || check_failed "snabb config load: no count carried and 0 dropped: $(cat "$tmp/load")"
cat >"$tmp/load.want" <<EOF
snabb config: $work/graph2.lua configured
  apps started: sink2, tee
  links added: source.output -> tee.input, tee.a -> sink.input, tee.b -> sink2.input
  links removed: source.output -> sink.input
  packets queued in the links removed: $carried carried to the new graph's, 0 dropped
EOF
diff "$tmp/load.want" "$tmp/load" || check_failed "snabb config load: above"
"$snabb" config "$run" get --json >"$tmp/body"
[ "$(json "d['file'], len(d['apps'])")" = "$work/graph2.lua 4" ] || check_failed "after load: $(cat "$tmp/body")"
for bad in "bad.lua:2: attempt to index global 'nosuch'" "syntax.lua:2: unexpected symbol near 'return'"; do
  file=${bad%%.lua:*}
  set +e
  "$snabb" config $pid load "$work/$file.lua" >"$tmp/out" 2>"$tmp/err"
  status=$?
  set -e
  [ "$status" = 1 ] && [ "$(wc -l <"$tmp/err")" = 1 ] && grep -qF "snabb config: $work/$bad" "$tmp/err" ||
    check_failed "load $file.lua: status $status, $(cat "$tmp/err")"
done
"$snabb" config $pid get --json >"$tmp/body"
[ "$(json "d['file']")" = "$work/graph2.lua" ] || check_failed "a refused config changed the graph: $(cat "$tmp/body")"
set +e
"$snabb" config 999999999 get >"$tmp/out" 2>"$tmp/err"
status=$?
"$snabb" config $pid load "$work/missing.lua" >"$tmp/out" 2>"$tmp/err2"
status2=$?
set -e
[ "$status" = 2 ] && [ "$(cat "$tmp/err")" = "snabb config: no snabb instance with PID 999999999" ] ||
  check_failed "a PID of no instance: status $status, $(cat "$tmp/err")"
[ "$status2" = 2 ] && grep -q "^snabb config: $work/missing.lua: No such file" "$tmp/err2" ||
  check_failed "a missing file: status $status2, $(cat "$tmp/err2")"
# A process that is no snabb (this shell), and a snabb without a control server (basic1).
set +e
"$snabb" config $$ get >"$tmp/out" 2>"$tmp/err"
status=$?
set -e
[ "$status" = 2 ] && grep -q "^snabb config: no snabb instance with PID $$ (no run directory for process $$" "$tmp/err" ||
  check_failed "the shell's PID: status $status, $(cat "$tmp/err")"
"$snabb" basic1 1e15 >/dev/null 2>&1 &
basic1=$!
for _ in $(seq 300); do
  "$snabb" config $basic1 get >"$tmp/out" 2>"$tmp/err" || true
  grep -q "has no control server" "$tmp/err" && break
  sleep 0.1
done
kill $basic1 && wait $basic1 || true
[ "$(cat "$tmp/err")" = "snabb config: process $basic1 has no control server (snabb run serves one; bench and basic1 do not)" ] ||
  check_failed "snabb basic1's PID: $(cat "$tmp/err")"

# Still answering, and still forwarding; then a clean end.
# (The server reads the counters at most every 100 ms: asked again until they move, 10 s at most.)
first=$(forwarded "tee.a -> sink.input") moved=false
for _ in $(seq 100); do
  [ "$(forwarded "tee.a -> sink.input")" -gt "$first" ] && moved=true && break
  sleep 0.1
done
$moved || check_failed "the new graph does not forward"
kill -TERM $pid
set +e
wait $pid
status=$?
set -e
[ "$status" = 0 ] || check_failed "snabb run: status $status, $(cat "$tmp/run.err")"
grep -q "stopped by a signal" "$tmp/run.out" || check_failed "no summary: $(cat "$tmp/run.out")"
[ ! -e "$sock" ] || check_failed "the socket is left after the run"
finish control_test

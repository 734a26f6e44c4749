#!/usr/bin/env bash
# End-to-end: DPDK on virtual devices (no hardware). net_pcap: a capture through our graph and out
# again, packet for packet (tcpdump compares the bytes); net_ring and net_null: counters add up over
# a run and every mbuf is back in the pool after stop (tests/dpdk_check.lua); bad EAL arguments, a
# missing port, too little memory for the mbufs, bad parameters and too few mbufs for the ports
# each end in one message naming the cause.
. "$(dirname "$0")/prologue.sh"
bytes() { "$here/tcpdump.sh" -nn -t -xx -r "$1" 2>/dev/null; }  # timestamps are the send times

for name in v4.pcap v6.pcap tftp_wrq.pcap arp.pcap; do
  "$snabb" run "$here/configs/dpdk_pcap.lua" "$data/$name" "$tmp/$name" --duration 0.5 \
    >"$tmp/out.txt" 2>&1 || fail "$name: $(cat "$tmp/out.txt")"
  bytes "$data/$name" >"$tmp/expected.txt"
  bytes "$tmp/$name" >"$tmp/actual.txt"
  [ -s "$tmp/expected.txt" ] && cmp -s "$tmp/expected.txt" "$tmp/actual.txt" ||
    fail "$name through net_pcap: $(diff "$tmp/expected.txt" "$tmp/actual.txt" | head -5)"
done

for mode in ring null queues copy exhaust nombufs; do
  (cd "$here/.." && "$snabb" tests/dpdk_check.lua "$mode") >"$tmp/out.txt" 2>&1 ||
    fail "dpdk_check $mode: $(cat "$tmp/out.txt")"
  grep "^dpdk_check" "$tmp/out.txt"
done

cat >"$tmp/bad_eal.lua" <<'LUA'
require("drivers.dpdk.dpdk").init{args = "--no-such-option"}
LUA
status=0
"$snabb" "$tmp/bad_eal.lua" >"$tmp/out.txt" 2>"$tmp/err.txt" || status=$?
[ "$status" -eq 1 ] && grep -q "dpdk: EAL initialisation failed (Invalid argument: EAL: Invalid 'command line' arguments.); EAL options: --no-such-option" \
  "$tmp/err.txt" || fail "bad EAL args: $status $(cat "$tmp/err.txt")"

status=0
"$snabb" run "$here/configs/dpdk_pcap.lua" "$data/v4.pcap" "$tmp/x.pcap" --eal="--no-such-option" \
  --duration 0.1 >"$tmp/out.txt" 2>"$tmp/err.txt" || status=$?
[ "$status" -eq 1 ] && grep -q "^snabb: dpdk: EAL initialisation failed (Invalid argument: EAL: Invalid 'command line' arguments.); EAL options: --no-such-option" \
  "$tmp/err.txt" || fail "bad --eal: $status $(cat "$tmp/err.txt")"

cat >"$tmp/missing.lua" <<'LUA'
local c = config.new()
config.app(c, "nic", require("drivers.dpdk.dpdk").DpdkPort, {port = "0000:42:00.0"})
return c
LUA
status=0
"$snabb" run "$tmp/missing.lua" --duration 0.1 >"$tmp/out.txt" 2>"$tmp/err.txt" || status=$?
[ "$status" -eq 1 ] && grep -q "dpdk: no port '0000:42:00.0'" "$tmp/err.txt" ||
  fail "missing port: $status $(cat "$tmp/err.txt")"
# Bad parameters: one line naming the parameter and what is allowed (exit 1, no traceback).
# dpdk_config NAME INIT PORT: a config calling dpdk.init(INIT) with one DpdkPort(PORT) -> Sink.
dpdk_config() {
  cat >"$tmp/$1.lua" <<LUA
local dpdk = require("drivers.dpdk.dpdk")
dpdk.init($2)
local c = config.new()
config.app(c, "nic", dpdk.DpdkPort, $3)
config.app(c, "sink", require("apps.basic.basic_apps").Sink)
config.link(c, "nic.output -> sink.input")
return c
LUA
}
expect_error() { # expect_error NAME PATTERN [snabb run options]: the config fails with that one line
  local name=$1 pattern=$2 status=0; shift 2
  "$snabb" run "$tmp/$name.lua" --duration 0.1 "$@" >"$tmp/out.txt" 2>"$tmp/err.txt" || status=$?
  # (DPDK itself prints a few lines, "EAL: ..." and its usage, before ours.)
  [ "$status" -eq 1 ] && grep -v "^EAL: \|^TELEMETRY: " "$tmp/err.txt" | tail -1 | grep -qE -- "$pattern" &&
    ! grep -q "stack traceback" "$tmp/err.txt" || fail "$name: exit $status, $(cat "$tmp/err.txt")"
  echo "ok: $name: $(tail -1 "$tmp/err.txt")"
}
pcap="net_pcap0,rx_pcap=$data/v4.pcap,tx_pcap=$tmp/o.pcap"
for mbufs in 1 -5 64 1.5 '"lots"'; do
  dpdk_config "mbufs$mbufs" "{mbufs = $mbufs}" '{port = "net_null0"}'
  expect_error "mbufs$mbufs" "^snabb: .*mbufs$mbufs.lua:2: dpdk.init: parameter 'mbufs' must be a whole number from 320 to 16777216, got "
done
dpdk_config mbufs_room "{mbufs = 2000000}" '{port = "net_null0"}'
expect_error mbufs_room "mbufs_room.lua:2: dpdk.init: mbufs=2000000 is more than the packet pool has room for \(1000000 more packets; packet.set_max_packets raises its capacity\)$"
dpdk_config init_typo "{mbuf = 4096}" '{port = "net_null0"}'
expect_error init_typo "init_typo.lua:2: dpdk.init: unknown parameter 'mbuf' \(known: args, mbufs, processes, telemetry\)$"
# Processes sharing the ports (tests/dpdk_workers_test.sh): not with the default EAL options.
dpdk_config processes0 "{processes = 0}" '{port = "net_null0"}'
expect_error processes0 "processes0.lua:2: dpdk.init: parameter 'processes' must be a whole number from 1 to 128, got 0$"
dpdk_config processes2 "{processes = 2}" '{port = "net_null0"}'
expect_error processes2 "processes2.lua:2: dpdk.init: processes=2 needs EAL options that let processes share the EAL: args = \"--proc-type=auto --file-prefix NAME --huge-dir DIR ...\" \(hugepages; drivers/README.md\)$"
dpdk_config ring0 "" '{port = "net_null0", ring_size = 0}'
expect_error ring0 "ring0.lua:4: app 'nic': parameter 'ring_size' must be a whole number of descriptors from 1 to 65535, got 0$"
dpdk_config ring_big "" '{port = "net_null0", ring_size = 65536}'
expect_error ring_big "app 'nic': parameter 'ring_size' must be a whole number of descriptors from 1 to 65535, got 65536$"
dpdk_config rxqs0 "" '{port = "net_null0", rxqs = 0}'
expect_error rxqs0 "app 'nic': parameter 'rxqs' must be a whole number from 1 to 1024, got 0$"
dpdk_config queue_neg "" '{port = "net_null0", queue = -1}'
expect_error queue_neg "app 'nic': parameter 'queue' must be a whole number from 0 to 1023, got -1$"
dpdk_config queue_over "" '{port = "net_null0", queue = 2, rxqs = 2}'
expect_error queue_over "app 'nic': new failed: queue=2, but the port has 2 receive and 1 send queues \(queue 0 to 1\)$"
dpdk_config port_number "" '{port = 0}'
expect_error port_number "app 'nic': parameter 'port' must be a string, got 0$"
dpdk_config pcap_rxqs "" "{port = \"$pcap\", rxqs = 2}"
expect_error pcap_rxqs "app 'nic': new failed: dpdk: net_pcap0,.*: rxqs=2, but the device has at most 1 receive queue\(s\)$"
# The pool against what ports hold: each receive queue its ring and a pull of 256, each send queue
# its ring. Two net_null ports with 32-descriptor rings need 2 x 320 = 640: at 639 the second is
# refused, naming 640; at 640 both forward (below it, once, one of them received nothing).
cat >"$tmp/forward.lua" <<'LUA'
local mbufs = ...
require("drivers.dpdk.dpdk").init{mbufs = tonumber(mbufs)}
local c = dofile("examples/dpdk_forward.lua")
for _, name in ipairs({"p0", "p1"}) do c.apps[name].arg.ring_size = 32 end
return c
LUA
status=0
(cd "$here/.." && "$snabb" run "$tmp/forward.lua" 639 --duration 0.2 >"$tmp/out.txt" 2>"$tmp/err.txt") || status=$?
[ "$status" -eq 1 ] && grep -q "app 'p1': new failed: dpdk: net_null1: too few mbufs: its 1 receive queue(s) of 32 descriptors and a pull of 256 each, and 1 send queue(s) of 32, hold up to 320 mbufs, the ports already open 320; the pool has 639: dpdk.init{mbufs = 640} at least, or a smaller ring_size$" \
  "$tmp/err.txt" || fail "639 mbufs: $status $(cat "$tmp/err.txt")"
(cd "$here/.." && "$snabb" run "$tmp/forward.lua" 640 --duration 0.2 --report >"$tmp/out.txt" 2>"$tmp/err.txt") ||
  fail "640 mbufs: $(cat "$tmp/err.txt")"
for port in net_null0 net_null1; do
  rx=$(awk -v p="$port:" '$1 == p { print $5 }' "$tmp/out.txt")
  [ "${rx:-0}" -gt 1000 ] || fail "640 mbufs: $port received ${rx:-nothing}: $(cat "$tmp/out.txt")"
done
echo "ok: 639 mbufs refused naming 640; at 640 both ports forward"

# DPDK's own cause, never "(Success)": a capture net_pcap cannot open, and a second process on the
# EAL files of a first (rte_eal_init fails with rte_errno 0, the cause only in DPDK's log).
dpdk_config pcap_missing "" "{port = \"net_pcap0,rx_pcap=$tmp/missing.pcap\"}"
expect_error pcap_missing "dpdk: no port 'net_pcap0,rx_pcap=.*missing.pcap' \(.*Couldn't open .*missing.pcap: No such file or directory\); ports: none$"
# Root's EAL files live in /var/run/dpdk, read-only in Bazel's sandbox: both processes run in a
# mount namespace of their own with a fresh /var/run (nothing is left behind).
eal="-l 0 --no-pci --no-huge -m 256 --no-telemetry --file-prefix snabb-dpdk-test"
cat >"$tmp/hold.lua" <<LUA
require("drivers.dpdk.dpdk").init{args = "$eal", mbufs = 1024}
io.open("$tmp/ready", "w"):close()
while not io.open("$tmp/stop") do os.execute("sleep 0.05") end
LUA
dpdk_config second "{args = \"$eal\", mbufs = 1024}" '{port = "net_null0"}'
cat >"$tmp/lock.sh" <<SH
set -u
mount -t tmpfs snabb-dpdk-test /var/run || exit 3
"$snabb" "$tmp/hold.lua" >"$tmp/hold.txt" 2>&1 &
for _ in \$(seq 200); do [ -e "$tmp/ready" ] || sleep 0.05; done
"$snabb" run "$tmp/second.lua" --duration 0.1 >"$tmp/out.txt" 2>"$tmp/err.txt"; echo \$? >"$tmp/status"
touch "$tmp/stop"; wait
SH
unshare -m bash "$tmp/lock.sh" || fail "mount namespace for the EAL lock test: exit $?"
[ -e "$tmp/ready" ] || fail "the first DPDK process did not start: $(cat "$tmp/hold.txt")"
[ "$(cat "$tmp/status")" -eq 1 ] && tail -1 "$tmp/err.txt" | grep -qE "^snabb: .*second.lua:2: dpdk: EAL initialisation failed \(EAL: Cannot create lock on '.*snabb-dpdk-test/config'. Is another primary process running\?; EAL: Cannot init config\); EAL options: " &&
  ! grep -q "Success" "$tmp/err.txt" || fail "second EAL process: $(cat "$tmp/err.txt")"
echo "ok: second: $(tail -1 "$tmp/err.txt")"

# DPDK's telemetry, on by default: while a run forwards a capture through net_pcap, DPDK's own
# client (dpdk-telemetry.py -f snabb-PID) lists the port and its counters, which equal the run's
# (43 packets of v4.pcap each way, and its bytes: the file less its headers); the socket and its
# directory go when the run ends, and so do those a killed run left. With --no-dpdk-telemetry
# there is no socket. In a fresh /var/run of a mount namespace of its own, as above.
count=43 bytes=$(($(stat -L -c %s "$data/v4.pcap") - 24 - 16 * 43))
cat >"$tmp/telemetry.sh" <<SH
set -u
mount -t tmpfs snabb-dpdk-test /var/run || exit 3
# query PREFIX: DPDK's client, asked for the port list and port 0's counters.
query() { printf '/ethdev/list\\n/ethdev/stats,0\\n' | dpdk-telemetry.py -f "\$1"; }
# What a killed run leaves (a process gone, its socket) is removed; a live process's stays.
true & dead=\$!; wait \$dead
for pid in \$dead 1; do
  mkdir -p /var/run/dpdk/snabb-\$pid
  python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET).bind(sys.argv[1])' \\
    /var/run/dpdk/snabb-\$pid/dpdk_telemetry.v2
done
"$snabb" run "$here/configs/dpdk_pcap.lua" "$data/v4.pcap" "$tmp/t1.pcap" --report \\
  >"$tmp/t1.txt" 2>&1 &
pid=\$!
sock=/var/run/dpdk/snabb-\$pid/dpdk_telemetry.v2
for _ in \$(seq 600); do [ -S "\$sock" ] && break; sleep 0.1; done
ls -l "\$sock" >"$tmp/socket.txt" 2>&1
# Until the run has forwarded the whole capture (the counters no longer move).
for _ in \$(seq 100); do
  [ -S "\$sock" ] && query snabb-\$pid >"$tmp/telemetry.txt" 2>&1 || break
  grep -q '"opackets": $count,' "$tmp/telemetry.txt" && break
  sleep 0.2
done
kill -TERM \$pid; wait \$pid; echo \$? >"$tmp/t1.status"
ls -A /var/run/dpdk >"$tmp/left.txt"
"$snabb" run "$here/configs/dpdk_pcap.lua" "$data/v4.pcap" "$tmp/t2.pcap" --no-dpdk-telemetry \\
  >"$tmp/t2.txt" 2>&1 &
pid=\$!
# The EAL is up once net_pcap has opened the capture it writes.
for _ in \$(seq 600); do [ -e "$tmp/t2.pcap" ] || sleep 0.1; done
find /var/run/dpdk -type s ! -path "*/snabb-1/*" >"$tmp/no_socket.txt" 2>&1
kill -TERM \$pid; wait \$pid; echo \$? >"$tmp/t2.status"
SH
unshare -m bash "$tmp/telemetry.sh" || fail "mount namespace for the telemetry test: exit $?"
grep -q "^s" "$tmp/socket.txt" || fail "no telemetry socket: $(cat "$tmp/socket.txt" "$tmp/t1.txt")"
[ "$(cat "$tmp/t1.status")" -eq 0 ] || fail "the run DPDK's telemetry watched: $(cat "$tmp/t1.txt")"
# The run's own counters, from --report: "net_pcap0,...: link up, rx 43 packets (...), tx 43 (...".
own=$(grep -o "link up, rx [0-9]* packets .*, tx [0-9]*" "$tmp/t1.txt" | awk '{print $4, $NF}')
[ "$own" = "$count $count" ] || fail "the run's report: $own, want $count $count: $(cat "$tmp/t1.txt")"
python3 - "$tmp/telemetry.txt" "$count" "$bytes" <<'PY' || fail "dpdk-telemetry.py: $(cat "$tmp/telemetry.txt")"
import json, sys
replies = [json.loads(line) for line in open(sys.argv[1]) if line.startswith("{")]
count, nbytes = int(sys.argv[2]), int(sys.argv[3])
ports, stats = replies[0]["/ethdev/list"], replies[1]["/ethdev/stats"]
assert ports == [0], ports
got = [stats[k] for k in ("ipackets", "opackets", "ibytes", "obytes", "ierrors", "oerrors")]
assert got == [count, count, nbytes, nbytes, 0, 0], (got, count, nbytes)
print("ok: dpdk-telemetry.py: ports %s, ipackets %d, opackets %d, ibytes %d, obytes %d" % (ports, *got[:4]))
PY
[ "$(cat "$tmp/left.txt")" = snabb-1 ] ||
  fail "left in /var/run/dpdk after the run (want only the live process 1's snabb-1): $(cat "$tmp/left.txt")"
[ "$(cat "$tmp/t2.status")" -eq 0 ] && [ -e "$tmp/t2.pcap" ] || fail "--no-dpdk-telemetry run: $(cat "$tmp/t2.txt")"
[ ! -s "$tmp/no_socket.txt" ] || fail "--no-dpdk-telemetry, yet: $(cat "$tmp/no_socket.txt")"
echo "ok: --no-dpdk-telemetry: no socket"
# Where the socket cannot be made (a read-only /var/run), the run goes on without telemetry and
# says so in one line, where DPDK alone says nothing; --no-dpdk-telemetry leaves the line out.
cat >"$tmp/readonly.sh" <<SH
mount -t tmpfs -o ro snabb-dpdk-test /var/run || exit 3
for flag in "" --no-dpdk-telemetry; do
  "$snabb" run "$here/configs/dpdk_pcap.lua" "$data/v4.pcap" "$tmp/ro\$flag.pcap" --duration 0.2 \\
    \$flag >"$tmp/ro\$flag.txt" 2>&1 || echo "exit \$?" >>"$tmp/ro\$flag.txt"
done
SH
unshare -m bash "$tmp/readonly.sh" || fail "mount namespace for the read-only test: exit $?"
grep -qx "dpdk: telemetry off: cannot create /var/run/dpdk: Read-only file system (dpdk-telemetry.py cannot attach; --no-dpdk-telemetry turns it off without this line)" \
  "$tmp/ro.txt" && ! grep -q "^exit" "$tmp/ro.txt" || fail "read-only /var/run: $(cat "$tmp/ro.txt")"
! grep -q "telemetry off\|^exit" "$tmp/ro--no-dpdk-telemetry.txt" ||
  fail "read-only /var/run, --no-dpdk-telemetry: $(cat "$tmp/ro--no-dpdk-telemetry.txt")"
echo "ok: read-only /var/run: $(grep "telemetry off" "$tmp/ro.txt")"
echo "dpdk_test: OK"

#!/usr/bin/env bash
# The packet pool's default cap follows the memory limit of the process's cgroup: run under a
# 128 MiB limit, an app that leaks packets meets the cap (half the limit) and the run ends with a
# message naming the cap, its origin and the allocating app, exit status 1, rather than being
# killed by the OOM killer without a word. Needs root and a writable cgroup hierarchy (v2, or v1's
# memory controller); the cgroup it makes is removed at the end.
. "$(dirname "$0")/prologue.sh"

limit=$((128 << 20))
name=snabb-pool-cap-test.$$
if grep -qw memory /sys/fs/cgroup/cgroup.controllers 2>/dev/null; then
  cgroup=/sys/fs/cgroup/$name limit_file=memory.max # v2
  grep -qw memory /sys/fs/cgroup/cgroup.subtree_control ||
    fail "the memory controller is not enabled for child cgroups of /sys/fs/cgroup"
elif [ -d /sys/fs/cgroup/memory ]; then
  cgroup=/sys/fs/cgroup/memory/$name limit_file=memory.limit_in_bytes # v1
else
  fail "no cgroup memory controller under /sys/fs/cgroup"
fi
at_exit 'rmdir "$cgroup" 2>/dev/null'
mkdir "$cgroup" || fail "cannot make a cgroup (run as root): $cgroup"
echo "$limit" >"$cgroup/$limit_file"
# Swap would let the process outgrow the limit slowly instead of meeting it.
[ -e "$cgroup/memory.swap.max" ] && echo 0 >"$cgroup/memory.swap.max"
[ -e "$cgroup/memory.swappiness" ] && echo 0 >"$cgroup/memory.swappiness" 2>/dev/null || true

# in_cgroup COMMAND...: runs it inside the limited cgroup.
in_cgroup() { bash -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$cgroup" "$@"; }

# The cap is half the limit in packets of PACKET_SLOT_SIZE (10,816) bytes.
echo 'print(packet.cap())' >"$tmp/cap.lua"
cap=$(in_cgroup "$snabb" "$tmp/cap.lua")
[ "$cap" -eq $((limit / 2 / 10816)) ] || fail "cap $cap in a cgroup of $limit bytes"

# The leak meets the cap: one message, exit status 1 (the OOM killer's SIGKILL would be 137).
status=0
in_cgroup "$snabb" run "$configs/pool_leak.lua" --duration 120 >"$tmp/out" 2>"$tmp/err" || status=$?
[ "$status" -eq 1 ] || fail "exit status $status (137: killed by the OOM killer), stderr: $(cat "$tmp/err")"
grep -qF "snabb: packet pool exhausted: all $cap packets ($((cap * 10816 >> 20)) MiB) are in use, so an app is probably leaking packets" "$tmp/err" ||
  fail "message: $(cat "$tmp/err")"
grep -qF "the cap is half the memory limit of its cgroup (128 MiB in $cgroup/$limit_file)" "$tmp/err" ||
  fail "the message does not name the limit: $(cat "$tmp/err")"
grep -qF "(the last allocation was by app 'source')" "$tmp/err" || fail "no app named: $(cat "$tmp/err")"
[ "$(grep -c . "$tmp/err")" -eq 1 ] || fail "more than one line: $(cat "$tmp/err")"
echo "pool_cap_test: cap $cap packets under a $((limit >> 20)) MiB cgroup; the leak ended with: $(cat "$tmp/err")"

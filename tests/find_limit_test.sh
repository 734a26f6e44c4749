#!/usr/bin/env bash
# End-to-end: `snabb bench --find-limit` on a network function with a known limit
# (configs/policer.lua: it forwards 100,000 packets a second and frees the rest) finds it within
# 3% below (resolution 1%), and with --loss 5% the rate that loses 5% (100,000 / 0.95 = 105,263);
# trials and limit in text and JSON; bad option combinations are usage errors.
. "$(dirname "$0")/prologue.sh"
policer="$here/configs/policer.lua"

"$snabb" gen-pcap "$tmp/imix.pcap" --imix --flows 16 --packets 1200 >/dev/null

# Loss is packets in - out - queued: here freed inside the graph, where bench's "dropped" says 0.
"$snabb" bench "$policer" 100000 --pcap "$tmp/imix.pcap" --find-limit --duration 1 \
  >"$tmp/out.txt" 2>"$tmp/err.txt" || fail "find-limit: $(cat "$tmp/err.txt")"
cat "$tmp/out.txt"
grep -q "^trial  phase  *offered Mpps  achieved Mpps  packets in  packets out  *lost  *loss  result$" \
  "$tmp/out.txt" || fail "no table of trials"
grep -q "^ *1  unthrottled  *unthrottled " "$tmp/out.txt" || fail "no unthrottled first trial"
limit=$(sed -n 's/^limit: \([0-9.]*\) Mpps, [0-9.]* Gbit\/s on the wire (confirmed; resolution 1%)$/\1/p' "$tmp/out.txt")
awk -v l="${limit:-0}" 'BEGIN { exit !(l >= 0.097 && l <= 0.1005) }' || fail "limit: $(tail -1 "$tmp/out.txt")"
# Each trial as it ends, on stderr.
grep -q "^snabb bench: trial 2 (search): [0-9.]* Mpps offered, " "$tmp/err.txt" || fail "no trial lines on stderr"

"$snabb" bench "$policer" 100000 --pcap "$tmp/imix.pcap" --find-limit --duration 1 --loss 5% \
  --json "$tmp/loss.json" 2>"$tmp/err.txt"
# With --json FILE no trial lines on stderr (a warning may be there: the JIT policy once reported
# the policer's loop blacklisted and re-enabled).
! grep -q "trial" "$tmp/err.txt" || fail "--json is not quiet: $(cat "$tmp/err.txt")"
"$snabb" "$here/find_limit_check.lua" "$tmp/loss.json" 102000 105300

expect_usage() { # expect_usage TEXT ARGS...
  local status=0 text=$1
  shift
  "$snabb" bench "$policer" --pcap "$tmp/imix.pcap" "$@" >"$tmp/out.txt" 2>"$tmp/err.txt" || status=$?
  [ "$status" -eq 2 ] || fail "bench $*: exit $status, expected 2"
  grep -q -- "$text" "$tmp/err.txt" || fail "bench $*: $(cat "$tmp/err.txt")"
}
expect_usage "snabb bench: --loss is for --find-limit" --loss 1%
expect_usage "snabb bench: --find-limit sets the rate and runs trials of --duration seconds: no --rate" \
  --find-limit --rate 1Mpps
expect_usage "snabb bench: --find-limit sets the rate and runs trials of --duration seconds: no --packets" \
  --find-limit --packets 100
expect_usage "snabb bench: --loss must be a percentage from 0 to 100 (e.g. 0.001%), got '200%'" \
  --find-limit --loss 200%
echo "find_limit_test: OK"

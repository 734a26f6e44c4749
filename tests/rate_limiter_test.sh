#!/usr/bin/env bash
# apps.rate_limiter's RateLimiter on real captures replayed at a known rate on a controlled clock:
# rate_limiter_check.lua drives it push by push, writes what was offered and what passed, and
# checks tshark's reading of both against the counters and the token bucket's bounds, in bytes/s
# and in packets/s.
. "$(dirname "$0")/prologue.sh"
command -v tshark >/dev/null || fail "tshark is not installed (tools/install-deps)"
for pcap in v6.pcap v4.pcap; do
  mkdir "$tmp/$pcap"
  "$snabb" "$here/rate_limiter_check.lua" "$data/$pcap" "$tmp/$pcap" || fail "$pcap"
done

#!/usr/bin/env bash
# End-to-end: `snabb bench --rate` paces an IMIX capture (snabb gen-pcap: 64, 570 and 1518-byte
# frames, 7:4:1) by a clock schedule: at 1 kpps, 100 kpps, 1 Mpps and 10 Mbps the achieved rate
# (packets sent / the run's time) is within 1% of the requested one (rate_check.lua), and rates in
# bits below ~12 Mbps no longer send 11 packets and stop (the token bucket sized by the first
# frame). A graph that does not take the packets gets a warning on stderr, in JSON and in HTML.
. "$(dirname "$0")/prologue.sh"
forward="$here/../examples/forward.lua"

"$snabb" gen-pcap "$tmp/imix.pcap" --imix --flows 16 --packets 1200 >/dev/null

for rate in 1kpps 100kpps 1Mpps 10Mbps 2Mbps; do
  "$snabb" bench "$forward" --pcap "$tmp/imix.pcap" --rate "$rate" --duration 2 --json "$tmp/$rate.json" \
    2>"$tmp/err.txt" || fail "bench --rate $rate: $(cat "$tmp/err.txt")"
  "$snabb" "$here/rate_check.lua" "$tmp/$rate.json" 2 | tee "$tmp/check.txt"
done
# The old deadlock: 11 packets at 2 Mbps, whatever the duration (2 Mbps is ~665 IMIX frames/s).
sent=$(sed -n 's/.*, \([0-9]*\) packets in .*/\1/p' "$tmp/check.txt")
[ "$sent" -gt 1300 ] || fail "2 Mbps for 2 s sent $sent packets"

# A count of packets: the run lasts until the next one would be due (500 at 1 kpps: 0.5 s).
"$snabb" bench "$forward" --pcap "$tmp/imix.pcap" --rate 1kpps --packets 500 --json "$tmp/n.json"
"$snabb" "$here/rate_check.lua" "$tmp/n.json" 0.5

# Text report: requested and achieved.
"$snabb" bench "$forward" --pcap "$tmp/imix.pcap" --rate 10Mbps --duration 0.5 >"$tmp/text.txt"
grep -q "^rate: requested 0.0100 Gbit/s, achieved 0.00.. Mpps, 0.01.. Gbit/s on the wire" "$tmp/text.txt" ||
  fail "text report: $(cat "$tmp/text.txt")"

# A graph that never reads its input: the link fills, the rate is not achieved, and bench says so.
"$snabb" bench "$here/configs/stuck.lua" --pcap "$tmp/imix.pcap" --rate 1Mpps --duration 0.5 \
  --json "$tmp/stuck.json" --html "$tmp/stuck.html" 2>"$tmp/err.txt"
grep -q "^snabb bench: warning: achieved 0.00.. Mpps, 0.[0-9]% of the requested 1.0000 Mpps" "$tmp/err.txt" ||
  fail "no warning on stderr: $(cat "$tmp/err.txt")"
grep -q '"achieved 0.00.. Mpps, 0.[0-9]% of the requested 1.0000 Mpps' "$tmp/stuck.json" ||
  fail "no warning in the JSON result"
grep -q '<p class="warning">warning: achieved 0.00.. Mpps' "$tmp/stuck.html" || fail "no warning in the HTML report"
grep -q 'rate: requested 1.0000 Mpps, achieved 0.00.. Mpps' "$tmp/stuck.html" || fail "no rates in the HTML report"
echo "rate_test: OK"

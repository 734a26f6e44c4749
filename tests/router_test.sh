#!/usr/bin/env bash
# End-to-end: examples/router.lua (apps.router.router) on the real captures (all of
# tests/data/pcap's Ethernet ones, lwaftr/ included: VLAN, fragments, ARP, ND, ICMP) and on one
# derived from some of them (router_derive.py: TTL / hop limit 1, bad IPv4 checksums, bad header lengths, truncated
# frames), each frame's fate read by tshark, the reference dissector, from the input capture:
# - the router's counters (its --report table) equal tshark's count of frames of each kind, and add
#   up to the frames in (forwarded + every drop reason);
# - what leaves p1 is what tshark says should be forwarded, each with TTL / hop limit one less,
#   the IPv4 header checksum right per tshark, the L4 checksum as it was, the Ethernet source p1's
#   MAC and the destination the next hop's;
# - what leaves p0 are ICMP time-exceeded messages (v4 type 11, v6 type 3, code 0) that tshark
#   finds well formed (checksums right, from p0's address to the original sender, quoting the
#   original's addresses), one for each expired packet that RFC 1812 / 4443 allow an answer to.
# Then the route file's errors (file:line) and the selftest.
. "$(dirname "$0")/prologue.sh"
examples=$here/../examples
# ts FILE FIELD...: one line per frame, the first occurrence of each field, tab-separated, with
# checksums verified (tshark leaves them unverified by default).
ts() {
  local file=$1 fields=(); shift
  for f in "$@"; do fields+=(-e "$f"); done
  HOME=$tmp tshark -r "$file" -o ip.check_checksum:TRUE -o udp.check_checksum:TRUE \
    -o tcp.check_checksum:TRUE -E occurrence=f -T fields "${fields[@]}" 2>"$tmp/tshark.err" ||
    fail "tshark -r $file: $(cat "$tmp/tshark.err")"
  ! grep -v 'Running as user "root"' "$tmp/tshark.err" | grep -q . ||
    fail "tshark -r $file: $(cat "$tmp/tshark.err")"
}

"$snabb" selftest apps.router.router

# Half the IPv4 space and 2000::/3 have a route, via p1; the rest has none.
cat >"$tmp/routes.txt" <<'ROUTES'
0.0.0.0/1      198.51.100.2     p1
2000::/3       2001:db8:0:2::2  p1
ROUTES

python3 "$here/router_derive.py" "$tmp/derived.pcap" "$data/v4.pcap" "$data/tftp_wrq.pcap" \
  "$data/lwaftr/tcp-ipv4-toinet-2fragments.pcap" "$data/lwaftr/incoming-icmpv4-echo-request.pcap" \
  "$data/v6.pcap" "$data/lwaftr/tcp-ipv6-2frags-bound.pcap" "$data/v6-tcp-udp.pcap"

# The real captures as they are, in one file (one run), beside the derived one.
real=()
for f in arp icmp-snapped tcp-ack-66-bytes telnet-cooked tftp_wrq v4-tcp-udp v4 v6-tcp-udp v6; do
  real+=("$data/$f.pcap")
done
real+=("$data"/lwaftr/*.pcap)
python3 "$here/router_derive.py" --as-is "$tmp/real.pcap" "${real[@]}"
captures=("$tmp/derived.pcap" "$tmp/real.pcap")

in_fields=(frame.cap_len eth.type eth.src ip.version ip.hdr_len ip.len ip.ttl ip.checksum.status
           ip.src ip.dst ip.id ip.frag_offset ip.proto icmp.type ipv6.version ipv6.plen ipv6.hlim
           ipv6.src ipv6.dst ipv6.nxt icmpv6.type udp.checksum.status tcp.checksum.status)
checked=0
for cap in "${captures[@]}"; do
  name=${cap#"$data/"}
  name=${name#"$tmp/"}
  rm -f "$tmp/out0.pcap" "$tmp/out1.pcap"
  "$snabb" run "$examples/router.lua" "routes=$tmp/routes.txt" "p0=pcap:$cap,$tmp/out0.pcap" \
    "p1=pcap:,$tmp/out1.pcap" --report >"$tmp/report.txt" 2>"$tmp/err.txt" ||
    fail "$name: snabb run: $(cat "$tmp/err.txt")"
  # The fate of each frame in, from tshark's fields: a drop reason, "forwarded" or "expired"
  # (ttl_expired) with "icmp" when an answer is due. Mirrors apps/router/README.md's rules.
  ts "$cap" "${in_fields[@]}" | awk -F'\t' '
    function first_octet(a) { split(a, o, "."); return o[1] + 0 }
    {
      cap = $1; et = $2; fate = ""; icmp = 0
      if (cap < 14) fate = "truncated"
      else if (et == "0x0800") {
        if (cap < 34) fate = "truncated"
        else if ($4 != 4 || $5 < 20 || $6 == "" || $6 < $5) fate = "malformed"
        else if (14 + $6 > cap) fate = "truncated"
        else if ($8 == "0") fate = "bad_checksum"
        else if (first_octet($10) >= 224) fate = "not_unicast"
        else if ($7 <= 1) {
          fate = "ttl_expired"; s = first_octet($9)
          icmp = ($12 == 0 && !($13 == 1 && ($14 == 3 || $14 == 4 || $14 == 5 || $14 == 11 || $14 == 12)) &&
                  s != 0 && s != 127 && s < 224)
        }
        else if (first_octet($10) >= 128) fate = "no_route"
        else fate = "forwarded"
      } else if (et == "0x86dd") {
        if (cap < 54) fate = "truncated"
        else if ($15 != 6) fate = "malformed"
        else if (54 + $16 > cap) fate = "truncated"
        else if ($19 ~ /^ff/) fate = "not_unicast"
        else if ($17 <= 1) {
          fate = "ttl_expired"
          icmp = (!($20 == 58 && $21 < 128) && $18 !~ /^ff/ && $18 != "::")
        }
        else if ($19 !~ /^[23]/) fate = "no_route"
        else fate = "forwarded"
      } else fate = "not_ip"
      print NR "\t" fate "\t" icmp "\t" $0
    }' >"$tmp/fates.txt"
  n_in=$(wc -l <"$tmp/fates.txt")
  if [ "$name" = derived.pcap ]; then
    # Every case is in it at least once, IPv4 and IPv6 alike where both apply (else the checks
    # below prove less).
    for fate in 0x0800/forwarded 0x86dd/forwarded 0x0800/ttl_expired 0x86dd/ttl_expired \
                0x0800/bad_checksum 0x0800/malformed 0x0800/truncated 0x86dd/truncated \
                0x0800/no_route; do
      awk -F'\t' -v et="${fate%/*}" -v f="${fate#*/}" '$5 == et && $2 == f {found = 1} END {exit !found}' \
        "$tmp/fates.txt" || fail "derived.pcap has no frame of kind $fate"
    done
  fi
  # Counters: each reason as tshark counts it, and all of them add up to the frames in.
  total=0
  for reason in not_ip truncated malformed bad_checksum not_unicast ttl_expired no_route no_link; do
    got=$(awk -v c="drop_$reason" '$1 == c {gsub(",", "", $2); print $2}' "$tmp/report.txt")
    want=$(awk -F'\t' -v r="$reason" '$2 == r' "$tmp/fates.txt" | wc -l)
    [ "$got" = "$want" ] || fail "$name: drop_$reason $got, tshark's reading says $want"
    total=$((total + got))
  done
  fwd=$(awk '$1 == "forwarded_p1" {gsub(",", "", $2); print $2}' "$tmp/report.txt")
  want=$(awk -F'\t' '$2 == "forwarded"' "$tmp/fates.txt" | wc -l)
  [ "$fwd" = "$want" ] || fail "$name: forwarded_p1 $fwd, tshark's reading says $want"
  [ "$(awk '$1 == "forwarded_p0" {print $2}' "$tmp/report.txt")" = 0 ] || fail "$name: forwarded_p0"
  [ $((total + fwd)) -eq "$n_in" ] || fail "$name: counters add up to $((total + fwd)), $n_in frames in"
  icmp_want=$(awk -F'\t' '$3 == 1' "$tmp/fates.txt" | wc -l)
  icmp_got=$(awk '$1 == "icmp_p0" {gsub(",", "", $2); print $2}' "$tmp/report.txt")
  [ "$icmp_got" = "$icmp_want" ] || fail "$name: icmp_p0 $icmp_got, want $icmp_want"

  # Forwarded: per family in order (a breath's IPv4 leave before its IPv6), TTL / hop limit one
  # less, all else tshark shows the same.
  if [ "$fwd" -gt 0 ]; then
    awk -F'\t' '$2 == "forwarded" && $5 == "0x0800" {print "4", $12, $13, $14, $4, $10 - 1, $25, $26}
                $2 == "forwarded" && $5 == "0x86dd" {print "6", $21, $22, $19, $4, $20 - 1, $25, $26}' \
      OFS='\t' "$tmp/fates.txt" | sort -s -k1,1 >"$tmp/want.txt"
    ts "$tmp/out1.pcap" eth.type ip.src ip.dst ip.id frame.cap_len ip.ttl udp.checksum.status \
      tcp.checksum.status ipv6.src ipv6.dst ipv6.plen ipv6.hlim eth.src eth.dst ip.checksum.status |
      awk -F'\t' '$1 == "0x0800" {print "4", $2, $3, $4, $5, $6, $7, $8}
                  $1 == "0x86dd" {print "6", $9, $10, $11, $5, $12, $7, $8}' OFS='\t' |
      sort -s -k1,1 >"$tmp/got.txt"
    diff "$tmp/want.txt" "$tmp/got.txt" >"$tmp/diff.txt" ||
      fail "$name: forwarded frames differ from tshark's reading of the input (want < > got):
$(head -20 "$tmp/diff.txt")"
    macs=$(ts "$tmp/out1.pcap" eth.src eth.dst ip.checksum.status | sort -u)
    # IPv6 frames have no ip.checksum.status; an IPv4-in-IPv6 one shows its inner header's.
    echo "$macs" | awk -F'\t' '$1 != "02:00:00:00:00:02" || $2 != "02:00:00:00:02:02" || ($3 != "" && $3 != 1) {bad = 1}
                                END {exit bad}' || fail "$name: MACs or IPv4 checksums of forwarded frames: $macs"
  fi

  # ICMP time exceeded out of p0: well formed per tshark, one per expired packet due an answer.
  if [ "$icmp_want" -gt 0 ]; then
    awk -F'\t' '$3 == 1 && $5 == "0x0800" {print "4", $12, $6}
                $3 == 1 && $5 == "0x86dd" {print "6", $21, $6}' OFS='\t' "$tmp/fates.txt" |
      sort >"$tmp/want.txt"
    # The outer header's fields come first (occurrence=f); the quoted original's source is the
    # last ip.src / ipv6.src (-E occurrence=l).
    ts "$tmp/out0.pcap" eth.type ip.dst ipv6.dst eth.dst ip.src ipv6.src icmp.type icmp.code \
      icmp.checksum.status ip.checksum.status icmpv6.type icmpv6.code icmpv6.checksum.status \
      frame.cap_len eth.src ip.ttl >"$tmp/icmp.txt"
    awk -F'\t' '$1 == "0x0800" {print "4", $2, $4} $1 == "0x86dd" {print "6", $3, $4}' OFS='\t' \
      "$tmp/icmp.txt" | sort >"$tmp/got.txt"
    diff "$tmp/want.txt" "$tmp/got.txt" >"$tmp/diff.txt" ||
      fail "$name: ICMP answers go to other hosts than tshark's reading says (want < > got):
$(head -20 "$tmp/diff.txt")"
    awk -F'\t' '$15 != "02:00:00:00:00:01" {bad = bad " eth.src " $15}
                $1 == "0x0800" && ($5 != "192.0.2.1" || $7 != 11 || $8 != 0 || $9 != 1 || $10 != 1 || $16 != 64) {bad = bad " v4: " $0}
                $1 == "0x86dd" && ($6 != "2001:db8:0:1::1" || $11 != 3 || $12 != 0 || $13 != 1 || $14 > 1294) {bad = bad " v6: " $0}
                END {if (bad) {print bad; exit 1}}' "$tmp/icmp.txt" >"$tmp/bad.txt" ||
      fail "$name: ICMP time exceeded not well formed per tshark: $(cat "$tmp/bad.txt")"
    # The quoted original: its source and destination as the expired packet's.
    HOME=$tmp tshark -r "$tmp/out0.pcap" -E occurrence=l -T fields -e ip.src -e ipv6.src -e ip.dst \
      -e ipv6.dst 2>/dev/null | awk -F'\t' '{print $1 $2, $3 $4}' | sort >"$tmp/quoted.txt"
    awk -F'\t' '$3 == 1 && $5 == "0x0800" {print $12, $13} $3 == 1 && $5 == "0x86dd" {print $21, $22}' \
      "$tmp/fates.txt" | sort >"$tmp/want.txt"
    diff "$tmp/want.txt" "$tmp/quoted.txt" >"$tmp/diff.txt" ||
      fail "$name: the quoted originals differ (want < > got): $(head -10 "$tmp/diff.txt")"
  elif [ -s "$tmp/out0.pcap" ] && [ "$(ts "$tmp/out0.pcap" frame.number | wc -l)" -ne 0 ]; then
    fail "$name: frames left p0 where no ICMP answer is due"
  fi
  echo "$name: $n_in in, $fwd forwarded, $icmp_got ICMP, $total dropped: as tshark reads it"
  checked=$((checked + 1))
done
[ "$checked" -eq "${#captures[@]}" ] || fail "checked $checked of ${#captures[@]} captures"

# Route file errors: file:line and what is wrong, one line, no traceback.
printf '10.0.0.0/8 198.51.100.2 p1\n10.0.0.0/8 198.51.100.2 p7\n' >"$tmp/bad_routes.txt"
if "$snabb" run "$examples/router.lua" "routes=$tmp/bad_routes.txt" >"$tmp/out.txt" 2>&1; then
  fail "a route to port p7 was accepted"
fi
grep -q "$tmp/bad_routes.txt:2: no port 'p7' (ports: p0, p1)" "$tmp/out.txt" ||
  fail "bad route file: $(cat "$tmp/out.txt")"
! grep -q "traceback" "$tmp/out.txt" || fail "bad route file: a traceback: $(cat "$tmp/out.txt")"
echo "router_test: ok"

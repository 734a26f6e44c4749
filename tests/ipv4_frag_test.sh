#!/usr/bin/env bash
# apps.ipv4.fragment and apps.ipv4.reassemble on the real captures of tests/data/pcap (lwaftr/
# included), against tshark (ipv4_frag_check.lua runs one capture through one app and checks the
# app's counters against its links):
# - lwaftr/tcp-ipv4-toinet-2fragments.pcap reassembled: one datagram whose IP payload is the bytes
#   of tshark's own reassembly of the two fragments (ip.reassembled.data), total length 20 + its
#   ip.reassembled.length, the fragments' identification, MF and offset clear, and IPv4 and TCP
#   checksums tshark calls good.
# - Every Ethernet capture, one after the other in one file: without its fragments, through the
#   Reassembler, it comes out byte for byte (tshark -x) as it went in, less the IPv4 packets whose
#   total length runs past their record (captured short or bogus), dropped as malformed.
# - That file fragmented at MTUs 68, 576 and 1280: the Fragmenter cuts the IPv4 packets tshark
#   says are longer than the MTU (with DF clear; those with DF set are dropped), drops the truncated
#   ones as malformed, and passes the rest; in tshark's reading of its output every fragment is
#   within the MTU, has a good header checksum, an offset following on from the previous
#   fragment's end, MF on all but the last, and tshark's reassembly of them finds neither overlap
#   nor error and makes as many datagrams as the Fragmenter cut packets. Reassembled, they give
#   back byte for byte what the Reassembler makes of the file itself. Each packet dropped for DF
#   gets an ICMP "fragmentation needed" back to its source with the MTU, checksums good.
. "$(dirname "$0")/prologue.sh"
command -v tshark >/dev/null || fail "tshark is not installed (tools/install-deps)"
export HOME=$tmp # tshark wants a profile directory; Bazel's sandbox has none.
check=$here/ipv4_frag_check.lua

shark() { # FILE ARGS...: tshark's reading, its stderr checked
  local file=$1; shift
  tshark -r "$file" "$@" 2>"$tmp/tshark.err" || fail "tshark -r $file: $(cat "$tmp/tshark.err")"
  ! grep -v 'Running as user "root"' "$tmp/tshark.err" | grep -q . ||
    fail "tshark -r $file: $(cat "$tmp/tshark.err")"
}
counter() { awk -v n="$1" '$1 == n { print $2 }' "$2"; } # NAME FILE: a value ipv4_frag_check printed
bytes() { shark "$1" -o ip.defragment:FALSE -x; }        # every frame's bytes, as tshark dumps them

# The capture of two fragments, reassembled, against tshark's reassembly of it.
two=$data/lwaftr/tcp-ipv4-toinet-2fragments.pcap
"$snabb" "$check" reassemble "$two" "$tmp/two.pcap" >"$tmp/two.txt"
[ "$(counter in-ipv4-frag-reassembled "$tmp/two.txt")" = 1 ] || fail "2fragments: $(cat "$tmp/two.txt")"
read -r rlen rdata rtcp < <(shark "$two" -o ip.defragment:TRUE -o tcp.check_checksum:TRUE \
  -Y ip.reassembled.length -T fields -e ip.reassembled.length -e ip.reassembled.data \
  -e tcp.checksum.status)
read -r fid < <(shark "$two" -T fields -e ip.id)
[ -n "$rdata" ] && [ "$rtcp" = 1 ] || fail "tshark did not reassemble $two"
read -r len id mf off ipsum tcpsum < <(shark "$tmp/two.pcap" -o ip.check_checksum:TRUE \
  -o tcp.check_checksum:TRUE -T fields -e ip.len -e ip.id -e ip.flags.mf -e ip.frag_offset \
  -e ip.checksum.status -e tcp.checksum.status)
[ "$len $id $mf $off $ipsum $tcpsum" = "$((20 + rlen)) $fid 0 0 1 1" ] ||
  fail "reassembled: ip.len ip.id mf offset ip-checksum tcp-checksum = $len $id $mf $off $ipsum $tcpsum, want $((20 + rlen)) $fid 0 0 1 1"
# Our datagram's bytes after its 14 + 20 bytes of headers (the record's 16-byte header follows the
# file's 24).
ours=$(od -An -v -tx1 -j $((24 + 16 + 34)) "$tmp/two.pcap" | tr -d ' \n')
[ "$ours" = "$rdata" ] || fail "reassembled payload differs from tshark's reassembly"
echo "ok: 2fragments reassembled as tshark reassembles them ($((20 + rlen)) bytes, checksums good)"

# Every Ethernet capture with records, one after the other in one file (each tshark run costs
# seconds on a loaded machine), and what tshark says of each frame: record length, ethertypes,
# IPv4 total length, DF, MF, offset.
captures=()
for pcap in "$data"/*.pcap "$data"/lwaftr/*.pcap; do
  info=$(capinfos -T -m -E -c "$pcap" 2>/dev/null | tail -1)
  [[ $info == *,ether,* ]] && [[ $info != *,0 ]] && captures+=("$pcap")
done
mergecap -a -F pcap -w "$tmp/all.pcap" "${captures[@]}"
shark "$tmp/all.pcap" -o ip.defragment:FALSE -T fields -E occurrence=f -e frame.number \
  -e frame.cap_len -e eth.type -e vlan.etype -e ip.len -e ip.flags.df -e ip.flags.mf \
  -e ip.frag_offset >"$tmp/facts.tsv"
frames=$(wc -l <"$tmp/facts.tsv")
# IPv4 in Ethernet, untagged or in one 802.1Q tag (not IPv4 inside IPv6: the apps pass that);
# truncated: its total length runs past the record; fragments: MF or an offset.
facts() {
  awk -F'\t' -v want="$1" -v mtu="${2:-0}" '
    { l2 = $3 == "0x0800" ? 14 : ($3 == "0x8100" && $4 == "0x0800" ? 18 : 0) }
    l2 == 0 || $5 == "" { next }
    { truncated = $5 + l2 > $2; fragment = $7 == 1 || $8 > 0 }
    want == "truncated" && truncated { print $1 }
    want == "fragments" && !truncated && fragment { print $1 }
    want == "big" && !truncated && $5 > mtu { n[$6]++ }
    want == "dfbig" && !truncated && $5 > mtu && $6 == 1 { print $1 }
    want == "bigfrag" && !truncated && fragment && $5 > mtu && $6 == 0 { n[0]++ }
    END { if (want == "big") print n[0] + 0, n[1] + 0; if (want == "bigfrag") print n[0] + 0 }
  ' "$tmp/facts.tsv"
}
mapfile -t truncated < <(facts truncated)
mapfile -t fragments < <(facts fragments)
echo "${#captures[@]} captures, $frames frames: ${#truncated[@]} truncated IPv4, ${#fragments[@]} IPv4 fragments"
[ "${#truncated[@]}" -gt 0 ] && [ "${#fragments[@]}" -gt 0 ] || fail "the captures lack truncated IPv4 or fragments"

# Without its fragments, the capture through the Reassembler is itself less the truncated IPv4.
editcap "$tmp/all.pcap" "$tmp/nofrag.pcap" "${fragments[@]}"
editcap "$tmp/all.pcap" "$tmp/want.pcap" "${fragments[@]}" "${truncated[@]}"
"$snabb" "$check" reassemble "$tmp/nofrag.pcap" "$tmp/same.pcap" >"$tmp/same.txt"
[ "$(counter drop-ipv4-malformed "$tmp/same.txt")" = "${#truncated[@]}" ] ||
  fail "reassembler: malformed $(counter drop-ipv4-malformed "$tmp/same.txt"), want ${#truncated[@]}"
[ "$(bytes "$tmp/same.pcap" | md5sum)" = "$(bytes "$tmp/want.pcap" | md5sum)" ] ||
  fail "the reassembler changed packets that are not fragments"
echo "ok: the reassembler passes $(counter in-ipv4-frag-reassembly-unneeded "$tmp/same.txt") packets untouched and drops ${#truncated[@]} truncated"

theirs=$(shark "$tmp/all.pcap" -o ip.defragment:TRUE -Y ip.reassembled.length | wc -l)
for mtu in 68 576 1280; do
  what="MTU $mtu"
  "$snabb" "$check" fragment "$mtu" "$tmp/all.pcap" "$tmp/f.pcap" "$tmp/icmp.pcap" >"$tmp/f.txt"
  got="$(counter ipv4-fragmented "$tmp/f.txt") $(counter drop-ipv4-frag-df "$tmp/f.txt")"
  [ "$got" = "$(facts big "$mtu")" ] ||
    fail "$what: fragmented, dropped for DF = $got; IPv4 packets over the MTU with DF clear, set: $(facts big "$mtu")"
  [ "$(counter drop-ipv4-malformed "$tmp/f.txt")" = "${#truncated[@]}" ] ||
    fail "$what: malformed $(counter drop-ipv4-malformed "$tmp/f.txt"), want ${#truncated[@]}"
  # An ICMP "fragmentation needed" for each packet dropped for DF, to its source, as tshark reads
  # it: type 3 code 4, the MTU, IPv4 and ICMP checksums good.
  dropped=$(facts dfbig "$mtu" | paste -sd,)
  sources=
  [ -z "$dropped" ] || sources=$(shark "$tmp/all.pcap" -Y "frame.number in {$dropped}" -T fields \
    -E occurrence=f -e ip.src | sort | uniq -c)
  icmp=$(shark "$tmp/icmp.pcap" -o ip.check_checksum:TRUE -T fields -E occurrence=f -e ip.dst \
    -e icmp.type -e icmp.code -e icmp.mtu -e ip.checksum.status -e icmp.checksum.status)
  [ "$(awk -F'\t' '$2 != 3 || $3 != 4 || $4 != m || $5 != 1 || $6 != 1' m="$mtu" <<<"$icmp")" = "" ] ||
    fail "$what: ICMP errors as tshark reads them: $(head -3 <<<"$icmp")"
  [ "$(cut -f1 <<<"$icmp" | grep . | sort | uniq -c)" = "$sources" ] ||
    fail "$what: ICMP errors to $(cut -f1 <<<"$icmp" | sort | uniq -c), want to $sources"
  # Fragments as tshark reads them: key, MF, offset (8-byte units), lengths, checksum status.
  shark "$tmp/f.pcap" -o ip.defragment:FALSE -o ip.check_checksum:TRUE -E occurrence=f \
    -Y "(eth.type == 0x0800 || vlan.etype == 0x0800) && (ip.flags.mf == 1 || ip.frag_offset > 0)" \
    -T fields -e ip.src -e ip.dst -e ip.id -e ip.proto -e ip.flags.mf -e ip.frag_offset -e ip.len \
    -e ip.hdr_len -e ip.checksum.status >"$tmp/frags.tsv"
  problem=$(awk -F'\t' -v mtu="$mtu" '
    { key = $1 " " $2 " " $3 " " $4; data = $7 - $8 }
    $7 > mtu { print NR ": " $7 " bytes over the MTU"; exit }
    $9 != 1 { print NR ": header checksum status " $9; exit }
    $5 == 1 && data % 8 != 0 { print NR ": a non-last fragment of " data " bytes"; exit }
    { if (key in next_at && $6 * 8 != next_at[key]) { print NR ": offset " $6 * 8 " after " next_at[key]; exit }
      if ($5 == 1) next_at[key] = $6 * 8 + data; else delete next_at[key] }
    END { for (k in next_at) { print "no last fragment for " k; exit } }' "$tmp/frags.tsv")
  [ -z "$problem" ] || fail "$what: fragment $problem"
  # tshark's reassembly: no overlap or error, one datagram for each whole packet cut, and those
  # the capture's own fragments make (cut or not).
  read -r made errors < <(shark "$tmp/f.pcap" -o ip.defragment:TRUE -T fields \
    -e ip.reassembled.length -e ip.fragment.overlap -e ip.fragment.error \
    -e ip.fragment.toolongfragment -e ip.fragment.multipletails |
    awk -F'\t' '$1 != "" { made++ } $2 $3 $4 $5 != "" { errors++ } END { print made + 0, errors + 0 }')
  want="$(($(counter ipv4-fragmented "$tmp/f.txt") - $(facts bigfrag "$mtu") + theirs)) 0"
  [ "$made $errors" = "$want" ] ||
    fail "$what: tshark reassembled $made datagrams with $errors errors, want $want"
  # Back together: what the Reassembler makes of the capture itself, less the packets with DF set
  # that the Fragmenter dropped.
  "$snabb" "$check" reassemble "$tmp/f.pcap" "$tmp/back.pcap" >"$tmp/back.txt"
  [ "$(counter held-fragments "$tmp/back.txt")" = 0 ] || fail "$what: fragments left: $(cat "$tmp/back.txt")"
  mapfile -t df < <(facts dfbig "$mtu")
  editcap "$tmp/all.pcap" "$tmp/nodf.pcap" "${df[@]}"
  "$snabb" "$check" reassemble "$tmp/nodf.pcap" "$tmp/nodf.r.pcap" >/dev/null
  [ "$(bytes "$tmp/back.pcap" | md5sum)" = "$(bytes "$tmp/nodf.r.pcap" | md5sum)" ] ||
    fail "$what: fragmented and reassembled, the bytes differ"
  echo "ok: $what: $(counter out-ipv4-frag "$tmp/f.txt") fragments of $(counter ipv4-fragmented "$tmp/f.txt") packets, as tshark reads them; reassembled to the same bytes; $(counter out-icmp-frag-needed "$tmp/f.txt") ICMP errors for DF"
done

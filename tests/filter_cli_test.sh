#!/usr/bin/env bash
# End-to-end: `snabb filter EXPR IN OUT` writes the same bytes as `tcpdump -r IN -w OUT EXPR` and
# counts what tcpdump counts, on every Ethernet capture of tests/data/pcap and five expressions
# (of many primitives each), by lib.pf and by the BPF path (--bpf); --source prints Lua that
# loads; bad expressions and files give one line, exit 2; `snabb bench --filter` passes exactly
# the matching packets of each loop.
. "$(dirname "$0")/prologue.sh"
set +e # every check runs; check_failed counts

exprs=(
  "" "tcp port 80 or vlan and (ip or ip6) or ip[6:2] & 0x1fff != 0 or arp"
  "ip6 and not icmp6 or tcp[tcpflags] & tcp-syn != 0 or udp"
  "greater 1000 or less 64 or ether multicast"
  "icmp[icmptype] = icmp-echo or icmp6[0] = 135 or net 10.0.0.0/8 and not port 53"
)
n=0
while IFS= read -r -d '' file; do
  case $file in */loopback-sll.pcap) continue ;; esac
  total=$("$here/tcpdump.sh" -nr "$file" 2>/dev/null | wc -l)
  for expr in "${exprs[@]}"; do
    # (--print: tcpdump lists what it writes, one line a packet)
    want=$("$here/tcpdump.sh" -nr "$file" -w "$tmp/want.pcap" --print "$expr" 2>/dev/null | wc -l)
    [ -s "$tmp/want.pcap" ] || { check_failed "tcpdump -r $file -w ... '$expr' failed"; continue; }
    for path in "" --bpf; do
      out=$("$snabb" filter $path "$expr" "$file" "$tmp/got.pcap" 2>&1)
      if [ "$out" != "$want of $total packets matched" ]; then
        check_failed "snabb filter $path '$expr' $file: '$out', tcpdump: $want of $total"
      elif ! cmp -s "$tmp/want.pcap" "$tmp/got.pcap"; then
        check_failed "snabb filter $path '$expr' $file: not the bytes tcpdump -w writes"
      fi
      n=$((n + 1))
    done
    rm -f "$tmp/want.pcap" "$tmp/got.pcap"
  done
done < <(find "$data" -name '*.pcap' -print0 | sort -z)
echo "ok: $n filter runs equal to tcpdump"
[ "$n" -ge 200 ] || check_failed "only $n runs"

# Without OUT: the count alone. --source: Lua that loads and returns the matcher, each path.
out=$("$snabb" filter "tcp port 80" "$data/v4.pcap") && [ "$out" = "41 of 43 packets matched" ] ||
  check_failed "no OUT: '$out'"
# IN and OUT "-": stdin and stdout, the count on stderr.
"$here/tcpdump.sh" -r "$data/v6.pcap" -w "$tmp/want.pcap" icmp6 2>/dev/null
"$snabb" filter icmp6 - - <"$data/v6.pcap" >"$tmp/got.pcap" 2>"$tmp/count.txt" &&
  cmp -s "$tmp/want.pcap" "$tmp/got.pcap" && [ "$(cat "$tmp/count.txt")" = "49 of 161 packets matched" ] ||
  check_failed "filter icmp6 - -: $(cat "$tmp/count.txt")"
for path in "" --bpf; do
  "$snabb" filter $path --source "tcp port 80" >"$tmp/source.lua" ||
    check_failed "--source $path: exit $?"
  cat >"$tmp/load.lua" <<LUA
local f = assert(loadfile("$tmp/source.lua"))()
assert(type(f) == "function", "the chunk returns " .. type(f))
LUA
  "$snabb" "$tmp/load.lua" || check_failed "--source $path: $(head -c 300 "$tmp/source.lua")"
done

# expect STATUS LINE COMMAND...: the command exits STATUS and its stderr is exactly LINE.
expect() {
  local status=$1 line=$2; shift 2
  local err rc
  err=$(timeout 60 "$@" 2>&1 >/dev/null); rc=$?
  if [ "$rc" -ne "$status" ] || [ "$err" != "$line" ]; then
    check_failed "$* -> exit $rc (want $status), stderr: $err (want: $line)"
  else
    echo "ok: $*"
  fi
}
expect 2 "snabb filter: 'tcp port' at column 9: expected a port number or name" \
  "$snabb" filter "tcp port" "$data/v4.pcap"
expect 2 "snabb filter: 'host 10.0.0.1 or' at column 17: expected a primitive (host, net, port, ip, tcp, vlan, len, ...), 'not' or '('" \
  "$snabb" filter "host 10.0.0.1 or" "$data/v4.pcap"
expect 2 "snabb filter: 'tcp and 80' at column 9: expected a qualifier (host, net, port, ...) before a bare value" \
  "$snabb" filter "tcp and 80" "$data/v4.pcap"
expect 2 "snabb filter: 'ip[0:3] = 1' at column 6: data size must be 1, 2, or 4" \
  "$snabb" filter "ip[0:3] = 1" "$data/v4.pcap"
expect 2 "snabb filter: 'tcp port 09' at column 10: number 09 contains non-octal digit" \
  "$snabb" filter --bpf "tcp port 09" "$data/v4.pcap"
expect 2 "snabb filter: 'udp[' at column 5: expected a number, 'len', a packet access such as ip[0], '-' or '('" \
  "$snabb" filter --source "udp["
expect 2 "snabb filter: $tmp/nope.pcap: No such file or directory" \
  "$snabb" filter tcp "$tmp/nope.pcap"
expect 2 "snabb filter: $data/loopback-sll.pcap: link type LINUX_SLL2 is not Ethernet" \
  "$snabb" filter tcp "$data/loopback-sll.pcap"
expect 2 "snabb filter: missing argument 'input' (snabb filter --help for usage)" \
  "$snabb" filter tcp
expect 2 "snabb bench: 'tcp port' at column 9: expected a port number or name" \
  "$snabb" bench --filter "tcp port" --pcap "$data/v4.pcap"
expect 2 "snabb bench: --filter takes the place of a config: give one or the other, not 'x.lua' too" \
  "$snabb" bench x.lua --filter tcp --pcap "$data/v4.pcap"

# snabb bench --filter: 3 loops of v4.pcap (43 packets, 41 to or from port 80).
"$snabb" bench --filter "tcp port 80" --pcap "$data/v4.pcap" --loops 3 --json "$tmp/bench.json" ||
  check_failed "bench --filter: exit $?"
python3 - "$tmp/bench.json" <<'PY' || check_failed "bench --filter: $(head -c 600 "$tmp/bench.json")"
import json, sys
r = json.load(open(sys.argv[1]))
p = r["packets"]
assert r["config"] == "--filter 'tcp port 80'", r["config"]
assert p["input"] == 129 and p["output"] == 123 and p["lost_freed"] == 6, p
f = [a for a in r["apps"] if a["name"] == "filter"][0]
assert f["freed"] == 6, f
PY

finish filter_cli_test

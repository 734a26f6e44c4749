#!/usr/bin/env bash
# End-to-end: `snabb run --report` on the example and on a graph with a failing app. Checks that
# every link's counters add up, and that a failing app is named (app, method, file:line, traceback),
# restarted, that the rest of the graph keeps moving packets and that the exit status says it; a
# failed reconfiguration; graphs of 10,000 apps, and 1,178 app names coming and going in one
# observed process; a run that ends with its capture, idle polling, the progress line and summary,
# misspelt ports.
. "$(dirname "$0")/prologue.sh"

# Link rows of a --report: "a.out -> b.in  txpackets rxpackets txdrop queued" (commas removed).
check_links() {
  awk '/ -> / { for (i = 4; i <= 6; i++) gsub(",", "", $i)
                tx = $4; rx = $5; drop = $6; queued = $7
                if (tx + 0 != rx + queued + drop) { print "unbalanced: " $0; bad = 1 }
                if (tx + 0 == 0) { print "no packets: " $0; bad = 1 }
                n++ }
       END { if (n == 0) { print "no link rows"; bad = 1 }; exit bad }' "$1" || fail "link counters in $1"
}
app_column() { # app_column FILE APP COLUMN -> number without commas
  awk -v app="$2" -v col="$3" '$1 == app { gsub(",", "", $col); print $col }' "$1"
}

"$snabb" run "$here/../examples/basic.lua" --duration 0.3 --report >"$tmp/basic.txt"
check_links "$tmp/basic.txt"
tee_in=$(app_column "$tmp/basic.txt" tee 3)
[ "$(app_column "$tmp/basic.txt" sink_a 3)" -eq "$tee_in" ] || fail "sink_a did not get every packet"
[ "$(app_column "$tmp/basic.txt" tee 4)" -eq $((2 * tee_in)) ] || fail "tee out != 2 x in"

# An app that failed makes the exit status 1, with one line naming it and its first error
# (--allow-errors: 0).
status=0
"$snabb" run "$here/configs/failing_app.lua" --duration 2.5 --report >"$tmp/out.txt" 2>"$tmp/err.txt" ||
  status=$?
[ "$status" -eq 1 ] || fail "run with a failing app exited $status, not 1"
grep -q "engine: app 'flaky' failed in push: .*failing_app.lua:9: deliberate failure in Flaky" \
  "$tmp/err.txt" || fail "failure message: $(cat "$tmp/err.txt")"
grep -qE "^snabb run: an app failed: flaky \([0-9]+ errors\); the first error: app 'flaky' failed in push: \
.*failing_app.lua:9: deliberate failure in Flaky$" "$tmp/err.txt" || fail "no line naming the failed app: $(cat "$tmp/err.txt")"
"$snabb" run "$here/configs/failing_app.lua" --duration 2.5 --allow-errors >/dev/null 2>"$tmp/err2.txt" ||
  fail "--allow-errors: exit $?"
grep -qE "^snabb run: an app failed: flaky \([0-9]+ errors?\); .*\(--allow-errors: exit status 0\)$" "$tmp/err2.txt" ||
  fail "--allow-errors: $(cat "$tmp/err2.txt")"
grep -q "stack traceback" "$tmp/err.txt" || fail "no traceback"
grep -q "engine: app 'flaky' restarted" "$tmp/err.txt" || fail "not restarted"
[ "$(app_column "$tmp/out.txt" flaky 8)" -ge 2 ] || fail "flaky errors column"
[ "$(app_column "$tmp/out.txt" sink 3)" -gt 1000000 ] || fail "sink stopped receiving"
check_links "$tmp/out.txt"
# A reconfiguration whose new app's link() fails while the old graph's link is removed: the new
# graph runs without the app (never the old one, on the freed link), the app is restarted, counters
# add up (configs/link_failure.lua checks); valgrind sees no use of freed memory. (A build with
# AddressSanitizer checks that by itself, and valgrind cannot run it.)
"$snabb" "$here/configs/link_failure.lua" >"$tmp/link.txt" 2>&1 || fail "link_failure: $(cat "$tmp/link.txt")"
if grep -q __asan_init "$snabb"; then
  echo "run_test: AddressSanitizer build, link_failure not run under valgrind"
else
  command -v valgrind >/dev/null || fail "valgrind is missing (tools/install-deps installs it)"
  valgrind --error-exitcode=99 --smc-check=all -q "$snabb" "$here/configs/link_failure.lua" \
    >"$tmp/valgrind.txt" 2>&1 || fail "link_failure under valgrind: $(head -40 "$tmp/valgrind.txt")"
fi
# 10,000 apps in one graph (it was 1,022 observed: "vmprofile: more than 1023 zones", and 2,665
# with --no-vmprofile: "stack overflow (engine run)"): a chain, whose first breath moves packets
# through every link, observed and not; a fan-out, where every link adds up and the sinks got all
# that the split sent.
for opts in "" "--no-vmprofile"; do
  # shellcheck disable=SC2086
  "$snabb" run "$here/configs/many_apps.lua" chain 10000 --duration 0.3 --report $opts \
    >"$tmp/chain.txt" 2>&1 || fail "chain of 10,000 apps $opts: $(tail -5 "$tmp/chain.txt")"
  [ "$(grep -c ' -> ' "$tmp/chain.txt")" -eq 9999 ] || fail "chain $opts: not 9,999 links"
  check_links "$tmp/chain.txt"
  [ "$(app_column "$tmp/chain.txt" sink 3)" -eq "$(app_column "$tmp/chain.txt" a9998 4)" ] ||
    fail "chain $opts: the sink did not get what the last Join sent"
done
"$snabb" run "$here/configs/many_apps.lua" fanout 10000 --duration 0.3 --report --no-vmprofile \
  >"$tmp/fanout.txt" 2>&1 || fail "fan-out to 10,000 apps: $(tail -5 "$tmp/fanout.txt")"
awk '/ -> / { for (i = 4; i <= 6; i++) gsub(",", "", $i)
              if ($4 + 0 != $5 + $6 + $7) { print "unbalanced: " $0; bad = 1 }
              if ($1 ~ /^split/) { n++; tx += $4; rx += $5 } }
     $1 ~ /^a[0-9]+$/ && NF == 9 { gsub(",", "", $3); sinks += $3 }
     $1 == "split" && NF == 9 { gsub(",", "", $4); split_out = $4 }
     END { if (n != 9998 || tx != split_out || sinks != rx || tx == 0) {
             print n " links, split sent " split_out ", links took " tx " and delivered " rx \
                   ", sinks got " sinks; bad = 1 }
           exit bad }' "$tmp/fanout.txt" || fail "fan-out counters"
# 1,178 app names coming and going in one observed process: zones recycled (configs/churn.lua).
"$snabb" "$here/configs/churn.lua" "$tmp/churn" >"$tmp/churn.txt" 2>&1 || fail "churn: $(cat "$tmp/churn.txt")"
# A PcapReader -> Sink graph ends by itself when the file is read, every packet through (tcpdump's
# count); its summary says so. Kept running for 2 s more (--keep-running), the finished reader's
# polling is idle, not charged to its packets: its cycles/packet stay near those of the first run
# (with every poll counted they were 16 times as many, 39,000 for 2,400 of work; a factor of 10
# leaves room for the noise of a loaded host).
pcap=$tmp/imix.pcap
"$snabb" gen-pcap "$pcap" --imix --flows 16 --packets 100000 >/dev/null
records=$("$here/tcpdump.sh" -nr "$pcap" 2>/dev/null | wc -l)
[ "$records" -eq 100000 ] || fail "tcpdump counts $records packets in $pcap"
timeout 60 "$snabb" run "$here/configs/pcap_sink.lua" "$pcap" --report >"$tmp/pcap.txt" 2>"$tmp/err.txt" ||
  fail "PcapReader -> Sink: exit $? $(cat "$tmp/err.txt")"
[ "$(app_column "$tmp/pcap.txt" sink 3)" -eq "$records" ] || fail "sink got $(app_column "$tmp/pcap.txt" sink 3)"
grep -q "^snabb run: .*pcap_sink.lua ran [0-9.]* s; stopped when its sources were done (reader)$" "$tmp/pcap.txt" ||
  fail "summary: $(cat "$tmp/pcap.txt")"
[ "$(app_column "$tmp/pcap.txt" in 2)" -eq "$records" ] && [ "$(app_column "$tmp/pcap.txt" out 2)" -eq "$records" ] ||
  fail "summary in/out: $(cat "$tmp/pcap.txt")"
grep -q "^dropped 0 (full links), still queued 0, app errors 0$" "$tmp/pcap.txt" || fail "summary: $(cat "$tmp/pcap.txt")"
"$snabb" run "$here/configs/pcap_sink.lua" "$pcap" --report --keep-running --duration 2 >"$tmp/kept.txt" ||
  fail "--keep-running: exit $?"
grep -q "stopped after --duration 2$" "$tmp/kept.txt" || fail "--keep-running: $(cat "$tmp/kept.txt")"
awk -v a="$(app_column "$tmp/pcap.txt" reader 6)" '$1 == "reader" { idle = $9 + 0
       if (idle < 50 || $6 > 10 * a) { print "reader: " $6 " cycles/packet (" a " without --keep-running), idle " $9; exit 1 } }' \
  "$tmp/kept.txt" || fail "--keep-running: idle polling charged to packets"
# The sink is pushed every breath too, as Snabb pushes (with nothing to read after the capture's end):
# those calls are idle as well.
awk '$1 == "sink" { if ($9 + 0 < 50) exit 1 }' "$tmp/kept.txt" || fail "sink idle $(app_column "$tmp/kept.txt" sink 9)"

# On a terminal, a progress line (rewritten in place) on stderr; without one, nothing there.
script -qec "$snabb run $here/../examples/basic.lua --duration 1.2" /dev/null >"$tmp/tty.txt" ||
  fail "on a terminal: exit $?"
grep -qaE $'\r +[0-9.]+ s  in +[0-9.]+ Mpps  out +[0-9.]+ Mpps  packets [0-9,]+  dropped 0  errors 0' "$tmp/tty.txt" ||
  fail "no progress line on a terminal: $(cat -A "$tmp/tty.txt" | head -5)"
grep -qaE $'\rsnabb run: .*basic.lua ran [0-9.]+ s; stopped after --duration 1.2' "$tmp/tty.txt" ||
  fail "no summary after the progress line: $(cat -A "$tmp/tty.txt" | head -5)"
"$snabb" run "$here/../examples/basic.lua" --duration 1.2 >"$tmp/notty.txt" 2>"$tmp/notty.err" || fail "exit $?"
[ ! -s "$tmp/notty.err" ] || fail "stderr not a terminal, yet: $(cat -A "$tmp/notty.err")"
grep -q "^out .* received by sink_a, sink_b$" "$tmp/notty.txt" || fail "summary: $(cat "$tmp/notty.txt")"

# A misspelt port: on a class without a port list, one warning naming the link, app and port; on
# a class with one, an error naming the ports it has.
"$snabb" run "$here/configs/misspelt_port.lua" inptu --duration 0.5 >/dev/null 2>"$tmp/err.txt" || fail "exit $?"
[ "$(grep -c . "$tmp/err.txt")" -eq 1 ] && grep -qE "^engine: warning: link 'source.output -> fwd.inptu': \
app 'fwd' has not used its input port 'inptu' \([0-9]+ packets wait on it\), and it looked for input 'input', \
which no link has; a misspelt port\?$" "$tmp/err.txt" || fail "misspelt port: $(cat "$tmp/err.txt")"
"$snabb" run "$here/configs/misspelt_port.lua" input --duration 0.5 >/dev/null 2>"$tmp/err.txt" || fail "exit $?"
[ ! -s "$tmp/err.txt" ] || fail "warning on a correct port: $(cat "$tmp/err.txt")"
status=0
"$snabb" run "$here/configs/misspelt_port.lua" inptu writer >/dev/null 2>"$tmp/err.txt" || status=$?
[ "$status" -eq 1 ] && grep -q "^snabb: .*misspelt_port.lua:19: link 'source.output -> writer.inptu': \
app 'writer' has no input port 'inptu' (it has: input)$" "$tmp/err.txt" || fail "declared ports: $status $(cat "$tmp/err.txt")"

# An app name defined twice: the later definition runs (Snabb's semantics; before, an error).
"$snabb" run "$here/configs/redefined_app.lua" --duration 0.3 --report >"$tmp/redef.txt" 2>&1 \
  || fail "redefined app: exit $?: $(cat "$tmp/redef.txt")"
grep -qE "^sink +basic\.basic_apps\.Sink " "$tmp/redef.txt" || fail "redefined app: $(cat "$tmp/redef.txt")"

# Without --duration it runs until SIGINT, then stops its apps and still prints the report.
"$snabb" run "$here/../examples/basic.lua" --report >"$tmp/int.txt" &
pid=$!
sleep 0.5
kill -INT "$pid"
wait "$pid" || fail "SIGINT: exit $?"
check_links "$tmp/int.txt"
echo "run_test: ok"

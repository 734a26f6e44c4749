#!/usr/bin/env bash
# End-to-end: `snabb run` on configs with mistakes (one message naming file:line, non-zero exit),
# bad app parameters and numeric options (one message naming them and what they allow), the command
# line's exit codes, scripts run with `snabb FILE.lua`.
. "$(dirname "$0")/prologue.sh"
set +e # every check runs; check_failed counts

# expect STATUS PATTERN COMMAND...: the command exits STATUS and its stderr matches PATTERN (ERE).
expect() {
  local status=$1 pattern=$2; shift 2
  local err rc
  err=$(timeout 60 "$@" 2>&1 >/dev/null); rc=$?  # (a bound: some of these ran for ever once)
  if [ "$rc" -ne "$status" ] || ! grep -qE -- "$pattern" <<<"$err"; then
    check_failed "$* -> exit $rc (want $status), stderr:"; echo "$err" | sed 's/^/    /'
    echo "    wanted stderr matching: $pattern"
  else
    echo "ok: $*"
  fi
}

expect 1 "unknown_class.lua:3: .*app 'source'.*unknown app class" "$snabb" run "$configs/unknown_class.lua"
expect 1 "undefined_app.lua:4: link 'source.output -> nosuch.input' names app 'nosuch'" \
  "$snabb" run "$configs/undefined_app.lua"
expect 1 "undefined_port.lua:9: .*app 'source' has no input port 'input'" \
  "$snabb" run "$configs/undefined_port.lua"
expect 1 "duplicate_link.lua:6: .*duplicate link 'source.output -> sink.input' \(first at .*duplicate_link.lua:5\)" \
  "$snabb" run "$configs/duplicate_link.lua"
expect 1 "syntax_error.lua:2: .*expected" "$snabb" run "$configs/syntax_error.lua"
expect 1 "returns_nothing.lua: returned nothing, not a config" "$snabb" run "$configs/returns_nothing.lua"
expect 1 "returns_number.lua: returned number, not a config" "$snabb" run "$configs/returns_number.lua"
expect 1 "cannot open .*no_such_config.lua" "$snabb" run "$configs/no_such_config.lua"
expect 2 "unknown command 'frobnicate'.*" "$snabb" frobnicate
expect 2 "Usage: snabb COMMAND" "$snabb"
expect 2 "snabb run: .*missing argument 'config'" "$snabb" run
expect 2 "--duration must be a positive number of seconds .*got 'soon'" "$snabb" run "$configs/script.lua" --duration soon
expect 1 "script_error.lua:2: attempt to index local 'x'" "$snabb" "$configs/script_error.lua"
expect 1 "bad_capacity.lua:2: packet.set_max_packets: 0 is not a capacity from 1 to 16777216" \
  "$snabb" "$configs/bad_capacity.lua"
expect 1 "pool_no_memory.lua:11: packet pool: out of memory \(mmap failed\)" \
  "$snabb" "$configs/pool_no_memory.lua"
expect 1 "^snabb: packet pool exhausted: all 4000 packets \(41 MiB\) are in use, so an app is probably leaking packets .*; the cap was set by packet.set_max_packets \(the last allocation was by app 'hoarder'\)$" \
  "$snabb" "$configs/pool_exhaustion.lua"

# Bad arguments: one message naming the parameter and what it allows (and the config line), never
# a traceback. Source's documented default holds for none and {}.
source_config() { # source_config NAME ARG: Source(ARG) -> Sink
  printf 'local basic = require("apps.basic.basic_apps")\nlocal c = config.new()\n' >"$tmp/$1.lua"
  printf 'config.app(c, "source", basic.Source, %s)\n' "$2" >>"$tmp/$1.lua"
  printf 'config.app(c, "sink", basic.Sink)\nconfig.link(c, "source.output -> sink.input")\nreturn c\n' >>"$tmp/$1.lua"
}
source_config source_empty "{}"
source_config source_nil "nil"
source_config source_huge '{size = "huge"}'
source_config source_negative "-1"
source_config source_typo "{sise = 64}"
expect 0 "^$" "$snabb" run "$tmp/source_empty.lua" --duration 0.01
expect 0 "^$" "$snabb" run "$tmp/source_nil.lua" --duration 0.01
expect 1 "^snabb: .*source_huge.lua:3: app 'source': parameter 'size' must be a whole number of bytes from 0 to 10240, got \"huge\"$" \
  "$snabb" run "$tmp/source_huge.lua"
expect 1 "source_negative.lua:3: app 'source': parameter 'size' must be a whole number of bytes from 0 to 10240, got -1$" \
  "$snabb" run "$tmp/source_negative.lua"
expect 1 "source_typo.lua:3: app 'source': unknown parameter 'sise' \(known: size\)$" "$snabb" run "$tmp/source_typo.lua"
lines=$("$snabb" run "$tmp/source_huge.lua" 2>&1 >/dev/null | wc -l)
[ "$lines" -eq 1 ] || check_failed "bad Source size took $lines lines"
printf 'local c = config.new()\nconfig.app(c, "sink", require("apps.basic.basic_apps").Sink, {size = 64})\nreturn c\n' \
  >"$tmp/sink_arg.lua"
expect 1 "sink_arg.lua:2: app 'sink': unknown parameter 'size' \(known: none\)$" "$snabb" run "$tmp/sink_arg.lua" --duration 0.01

printf 'local c = config.new()\nconfig.app(c, "sink", require("apps.basic.basic_apps").NativeSink, {size = 64})\nreturn c\n' \
  >"$tmp/native_arg.lua"
expect 1 "native_arg.lua:2: config.app: app 'sink': basic.NativeSink takes no argument, got \{size = 64\}$" \
  "$snabb" run "$tmp/native_arg.lua" --duration 0.01
printf 'local c = config.new()\nconfig.app(c, "w", require("apps.pcap.pcap").PcapWriter, {})\nreturn c\n' >"$tmp/writer.lua"
expect 1 "^snabb: .*writer.lua:2: app 'w': missing required parameter 'file' \(a file name\)$" "$snabb" run "$tmp/writer.lua"
# AfPacket's parameters are checked before its socket opens (so no root or namespace is needed
# here): ifname = 5 and fanout = "x" ended in FFI tracebacks, fanout -1, 70000 and 1.5 were taken
# (the group id is 16 bits), promisc = "no" turned promiscuous mode on.
af_packet_config() { # af_packet_config NAME ARG: AfPacket(ARG) alone
  printf 'local af_packet = require("drivers.af_packet.af_packet")\nlocal c = config.new()\n' >"$tmp/$1.lua"
  printf 'config.app(c, "nic", af_packet.AfPacket, %s)\nreturn c\n' "$2" >>"$tmp/$1.lua"
}
af_packet_config af_ifname '{ifname = 5}'
expect 1 "^snabb: .*af_ifname.lua:3: app 'nic': parameter 'ifname' must be an interface name \(a string\), got 5$" \
  "$snabb" run "$tmp/af_ifname.lua" --duration 0.01
af_packet_config af_promisc '{ifname = "lo", promisc = "no"}'
expect 1 "^snabb: .*af_promisc.lua:3: app 'nic': parameter 'promisc' must be a boolean, got \"no\"$" \
  "$snabb" run "$tmp/af_promisc.lua" --duration 0.01
# fanout as a table: group 0, a mode the kernel lacks, an unknown key, a group past 16 bits.
for value in '"x"' -1 70000 1.5 '{group = 0}' '{group = 7, mode = "lru"}' '{group = 7, mod = "lb"}' \
             '{group = 70000, mode = "hash"}'; do
  af_packet_config af_fanout "{ifname = \"lo\", fanout = $value}"
  got=$(sed 's/[][{}().*+?^$|\\]/\\&/g' <<<"$value")
  expect 1 "^snabb: .*af_fanout.lua:3: app 'nic': parameter 'fanout' must be a PACKET_FANOUT group, \{group = ID, mode = MODE\} \(ID a whole number from 1 to 65535, MODE \"hash\" \(the default\), \"lb\", \"cpu\", \"qm\", \"rollover\" or \"random\"\), or an ID alone from 0 to 65535 \(hash; 0: none\), got $got$" \
    "$snabb" run "$tmp/af_fanout.lua" --duration 0.01
done
af_packet_config af_typo '{ifname = "lo", fanot = 1}'
expect 1 "af_typo.lua:3: app 'nic': unknown parameter 'fanot' \(known: fanout, ifname, promisc\)$" \
  "$snabb" run "$tmp/af_typo.lua" --duration 0.01

# An app's new() that fails: the config line of the app, and any error value described.
printf 'local Bad = {}\nfunction Bad:new () error({code = 1}) end\nlocal c = config.new()\nconfig.app(c, "bad", Bad)\nreturn c\n' \
  >"$tmp/new_table.lua"
expect 1 "^snabb: .*new_table.lua:4: app 'bad': new failed: .*new_table.lua:2: error raised with a table instead of a message: \{code = 1\}$" \
  "$snabb" run "$tmp/new_table.lua"

# Numeric options: negative numbers reach the option's check (not "unknown option"); nan, inf, 0
# and units are refused by name. Exit 2, usage errors.
for value in nan -1 inf 0 5s; do
  expect 2 "^snabb run: --duration must be a positive number of seconds \(finite, e.g. 5 or 0.5\), got '$value'$" \
    "$snabb" run "$configs/two_apps.lua" --duration "$value"
done
expect 2 "^snabb run: --duration must be a positive number of seconds" "$snabb" run "$configs/two_apps.lua" -d -1
for option in --loops --packets; do
  for value in -1 0 1.5 nan; do
    expect 2 "^snabb bench: $option must be a whole number from 1 to 2\^53 \(e.g. 1000 or 1e6\), got '$value'$" \
      "$snabb" bench "$configs/two_apps.lua" --pcap x.pcap "$option" "$value"
  done
done
expect 2 "^snabb bench: --duration must be a positive number of seconds .*got '-2'$" \
  "$snabb" bench "$configs/two_apps.lua" --pcap x.pcap --duration -2
for value in -5 0 nan inf fast; do
  expect 2 "^snabb bench: --rate must be a number > 0 of Mpps or a rate with its unit \(e.g. 500kpps, 10Gbps\), got '$value'$" \
    "$snabb" bench "$configs/two_apps.lua" --pcap x.pcap --rate "$value"
done
# A plain number is Mpps, as the help says (it was refused: "rate: expected ..., got 0.5").
out=$("$snabb" bench "$configs/../../examples/forward.lua" --pcap "$configs/../data/pcap/v4.pcap" --rate 0.5 \
  --packets 1000 --json - 2>&1) || check_failed "bench --rate 0.5: $out"
grep -qE '"input":1000,?$' <<<"$out" || check_failed "bench --rate 0.5 output: $out"
expect 2 "^snabb gen-pcap: --packets must be a whole number from 1 to 1,099,511,627,776, got '-1'$" \
  "$snabb" gen-pcap "$tmp/x.pcap" --packets -1
expect 0 "" "$snabb" selftest programs.cli
# NPACKETS: nan and inf ran for ever, 1.5 was taken.
for value in nan 1.5 inf -5 0 lots; do
  expect 2 "^snabb basic1: NPACKETS must be a whole number from 1 to 2\^53 \(e.g. 1000 or 1e6\), got '$value'$" \
    "$snabb" basic1 "$value"
done
printf 'assert(select(1, ...) == "-5" and select(2, ...) == "x", "args")\nreturn config.new()\n' >"$tmp/negative_arg.lua"
expect 0 "^$" "$snabb" run "$tmp/negative_arg.lua" -5 x --duration 0.01
printf 'engine.configure(config.new())\nengine.main({duration = 0/0})\n' >"$tmp/main_nan.lua"
expect 1 "main_nan.lua:2: engine.main: duration must be a finite number of seconds >= 0, got nan$" \
  "$snabb" "$tmp/main_nan.lua"

# A config that raises something other than a message: the file, the line, and what it raised.
printf 'local c = config.new()\nerror({})\n' >"$tmp/error_table.lua"
printf 'local c = config.new()\nerror()\n' >"$tmp/error_nil.lua"
printf 'local function f () error({code = 5}) end\nf()\n' >"$tmp/error_field.lua"
expect 1 "^snabb: .*error_table.lua:2: error raised with a table instead of a message: \{\}$" "$snabb" run "$tmp/error_table.lua"
expect 1 "^snabb: .*error_nil.lua:2: error raised without a message \(error\(\) or error\(nil\)\)$" \
  "$snabb" run "$tmp/error_nil.lua"
expect 1 "^snabb: .*error_field.lua:1: error raised with a table instead of a message: \{code = 5\}$" \
  "$snabb" run "$tmp/error_field.lua"
expect 1 "^snabb: .*error_table.lua:2: error raised with a table instead of a message: \{\}$" "$snabb" "$tmp/error_table.lua"

# The same in an app's push or pull (called from C++): the app, the method, the line, and what it
# raised (it said "(non-string error)"). (0.5 s: in 0.05 s on a busy host the engine sometimes
# ended before it called pull, 1 run in 8 on main.)
printf 'local basic = require("apps.basic.basic_apps")\nlocal Push, Pull = {}, {}\n' >"$tmp/push_table.lua"
printf 'function Push:push ()\n   error({code = 5})\nend\nfunction Pull:pull ()\n   error()\nend\n' >>"$tmp/push_table.lua"
printf 'function Push:new () return setmetatable({}, {__index = Push}) end\n' >>"$tmp/push_table.lua"
printf 'function Pull:new () return setmetatable({}, {__index = Pull}) end\nlocal c = config.new()\n' >>"$tmp/push_table.lua"
printf 'config.app(c, "source", basic.Source)\nconfig.app(c, "push", Push)\nconfig.app(c, "pull", Pull)\n' >>"$tmp/push_table.lua"
printf 'config.link(c, "source.output -> push.input")\nreturn c\n' >>"$tmp/push_table.lua"
expect 1 "^engine: app 'push' failed in push: .*push_table.lua:4: error raised with a table instead of a message: \{code = 5\}$" \
  "$snabb" run "$tmp/push_table.lua" --duration 0.5
expect 1 "^engine: app 'pull' failed in pull: .*push_table.lua:7: error raised without a message \(error\(\) or error\(nil\)\)$" \
  "$snabb" run "$tmp/push_table.lua" --duration 0.5

# Only stdout: each message above is the only line on stderr for config mistakes.
lines=$("$snabb" run "$configs/duplicate_link.lua" 2>&1 >/dev/null | wc -l)
[ "$lines" -eq 1 ] || check_failed "config error took $lines lines"

# Usage errors: ONE line "snabb CMD: message" on stderr, exit 2, for every command (they printed
# the usage after the message; selftest dumped the module search path, bench named its own lines
# and built the graph first).
usage() { # usage PATTERN COMMAND...: exit 2 and one line on stderr matching PATTERN
  local pattern=$1; shift
  expect 2 "$pattern" "$@"
  local lines
  lines=$(timeout 60 "$@" 2>&1 >/dev/null | wc -l)
  [ "$lines" -eq 1 ] || check_failed "$* wrote $lines lines to stderr"
}
fwd="$configs/../../examples/forward.lua"
v4="$configs/../data/pcap/v4.pcap"
usage "^snabb run: missing argument 'config' \(snabb run --help for usage\)$" "$snabb" run
usage "^snabb run: unknown option '--bogus' \(snabb run --help for usage\)$" "$snabb" run "$fwd" --bogus
usage "^snabb run: option '--duration' requires an argument \(snabb run --help for usage\)$" "$snabb" run "$fwd" --duration
usage "^snabb run: --watchdog must be a number of seconds from 0 \(off\) to 1,000,000, got '-1'$" \
  "$snabb" run "$fwd" --watchdog -1
usage "^snabb run: --group: no group named no_such_group_here$" "$snabb" run "$fwd" --group no_such_group_here
usage "^snabb bench: missing option '--pcap' \(snabb bench --help for usage\)$" "$snabb" bench "$fwd"
usage "^snabb bench: option '--packets' can not be used together with option '--loops' \(snabb bench --help for usage\)$" \
  "$snabb" bench "$fwd" --pcap "$v4" --loops 1 --packets 2
usage "^snabb gen-pcap: too many arguments \(snabb gen-pcap --help for usage\)$" "$snabb" gen-pcap "$tmp/g.pcap" extra
usage "^snabb gen-pcap: --size must be a frame size with FCS from 64 to 1,518, got '5'$" "$snabb" gen-pcap "$tmp/g.pcap" --size 5
usage "^snabb basic1: missing argument 'npackets' \(snabb basic1 --help for usage\)$" "$snabb" basic1
usage "^snabb profile: missing argument 'target' \(snabb profile --help for usage\)$" "$snabb" profile
usage "^snabb profile: --auditlog goes with a vmprofile file" "$snabb" profile "$tmp" --auditlog x.log
usage "^snabb auditlog: missing argument 'file' \(snabb auditlog --help for usage\)$" "$snabb" auditlog --json
usage "^snabb selftest: missing argument 'module' \(snabb selftest --help for usage\)$" "$snabb" selftest
# Commands are found by their folder (programs/NAME/NAME.lua): the error and the help list what is
# there, and each command listed answers --help.
usage "^snabb: unknown command 'frobnicate' \(the commands: auditlog, basic1, bench, config, filter, gen-pcap, inspect, profile, ps, run, selftest, tap, top, version, help\)$" \
  "$snabb" frobnicate
listed=$("$snabb" help | awk '/^Commands:/ { on = 1; next } on { print $1 }' | tr '\n' ' ')
[ "$listed" = "auditlog basic1 bench config filter gen-pcap inspect profile ps run selftest tap top version help " ] ||
  check_failed "snabb help lists: $listed"
for command in $listed; do
  case $command in version|help) continue ;; esac
  "$snabb" "$command" --help | grep -qE "^Usage: snabb $command( |$)" ||
    check_failed "snabb $command --help"
done
usage "^snabb: unknown option '-x' \(snabb help for usage\)$" "$snabb" -x
usage "^snabb: -a needs a FILE \(snabb -a FILE COMMAND ...\)$" "$snabb" -a
usage "^snabb: -p needs a FILE \(snabb -p FILE COMMAND ...\)$" "$snabb" -p
usage "^snabb: missing COMMAND or FILE\.lua after the options \(snabb help for usage\)$" "$snabb" -a "$tmp/a.log"
usage "^snabb: missing COMMAND or FILE\.lua after the options \(snabb help for usage\)$" "$snabb" --debug
expect 1 "^snabb auditlog: .*configs: Is a directory$" "$snabb" auditlog "$configs"
# selftest: its help lists the modules that have one; a module that is not there, or has none.
out=$("$snabb" selftest --help) || check_failed "selftest --help exited $?"
grep -q "^Usage: snabb selftest" <<<"$out" && grep -qE "^Modules with a selftest: .*core\.lib, .*programs\.cli" <<<"$out" ||
  check_failed "selftest --help: $out"
usage "^snabb selftest: no module 'nope' \(modules with a selftest: apps\.basic\.basic_apps, .*core\.lib, .*programs\.cli.*\)$" \
  "$snabb" selftest nope
usage "^snabb selftest: module 'programs\.main' has no selftest\(\) \(modules with one: .*core\.lib" \
  "$snabb" selftest programs.main
# bench: --pcap, --in and --out are checked before the config loads (this one fails loading) and
# the graph is built, each in its own words.
printf 'error("the config was loaded")\n' >"$tmp/loads.lua"
usage "^snabb bench: --pcap nope\.pcap: No such file or directory$" "$snabb" bench "$tmp/loads.lua" --pcap nope.pcap
usage "^snabb bench: --pcap .*two_apps\.lua: not a pcap or pcapng file" "$snabb" bench "$tmp/loads.lua" \
  --pcap "$configs/two_apps.lua"
usage "^snabb bench: --pcap .*configs: is a directory$" "$snabb" bench "$tmp/loads.lua" --pcap "$configs"
usage "^snabb bench: --pcap .*empty\.pcap: no packets to replay$" "$snabb" bench "$tmp/loads.lua" \
  --pcap "$configs/../data/pcap/empty.pcap"
usage "^snabb bench: --in must be APP\.PORT \(an app of the config and its port; of a config with workers, WORKER/APP\.PORT\), got 'foo'$" \
  "$snabb" bench "$tmp/loads.lua" --pcap "$v4" --in foo
usage "^snabb bench: --out must be APP\.PORT .*got 'a\.b\.c'$" "$snabb" bench "$tmp/loads.lua" --pcap "$v4" --out a.b.c
usage "^snabb bench: --json /nonexistent/r\.json: No such file or directory$" \
  "$snabb" bench "$tmp/loads.lua" --pcap "$v4" --json /nonexistent/r.json
usage "^snabb bench: --in foo\.bar: the config has no app 'foo' \(its apps: fwd\)$" "$snabb" bench "$fwd" --pcap "$v4" --in foo.bar
usage "^snabb bench: --in fwd\.nosuch: app 'fwd' has no input port 'nosuch' \(it has: input\)$" \
  "$snabb" bench "$fwd" --pcap "$v4" --in fwd.nosuch
usage "^snabb bench: --out fwd\.input: app 'fwd' has no output port 'input' \(it has: output\)$" \
  "$snabb" bench "$fwd" --pcap "$v4" --out fwd.input
printf 'local A = {inputs = {"rx"}, outputs = {"tx"}}\nfunction A:new () return setmetatable({}, {__index = A}) end\n' >"$tmp/rx.lua"
printf 'local c = config.new()\nconfig.app(c, "a", A)\nreturn c\n' >>"$tmp/rx.lua"
usage "^snabb bench: the default --in a\.input: app 'a' has no input port 'input' \(it has: rx\)$" "$snabb" bench "$tmp/rx.lua" --pcap "$v4"
usage "^snabb bench: cannot tell where packets enter the graph: apps a, b all qualify; say it with --in APP\.PORT$" \
  "$snabb" bench "$configs/two_apps.lua" --pcap "$v4"

# Text tables fit their content: every line of a table is as long as its header (the class
# basic.basic_apps.Source overflowed an 18-wide column, and link names a 34-wide one).
"$snabb" run "$configs/../../examples/basic.lua" --duration 0.1 --report >"$tmp/report.txt"
awk '/^snabb run: / { exit }
     NF == 0 { header = 0; next }
     !header { header = length($0); next }
     length($0) != header { print "misaligned: " $0; bad = 1 }
     END { exit bad }' "$tmp/report.txt" || { check_failed "--report tables:"; cat "$tmp/report.txt"; }

# LuaJIT's tools: jit.dump and jit.v from a script, snabb -jdump / -jv / -O as luajit takes them,
# alongside the auditlog (LuaJIT keeps one handler per event: jit.attach now shares).
printf 'local x = 0\nfor i = 1, 1000 do x = x + i end\nassert(x == 500500)\n' >"$tmp/loop.lua"
printf 'require("jit.dump").on("tbim")\ndofile(arg[1])\nrequire("jit.dump").off()\n' >"$tmp/dump.lua"
out=$("$snabb" "$tmp/dump.lua" "$tmp/loop.lua" 2>&1) && grep -q "^---- TRACE 1 start loop.lua:2" <<<"$out" &&
  grep -q "^0001 .* SLOAD" <<<"$out" && grep -q "^---- TRACE 1 mcode" <<<"$out" ||
  check_failed "jit.dump from a script: $out"
out=$("$snabb" -jdump "$tmp/loop.lua" 2>&1) && grep -q "^---- TRACE 1 stop -> loop" <<<"$out" ||
  check_failed "-jdump: $out"
out=$("$snabb" -jv -O3 "$tmp/loop.lua" 2>&1) && grep -q "^\[TRACE   1 loop.lua:2 loop\]$" <<<"$out" ||
  check_failed "-jv: $out"
"$snabb" -jdump=+i,"$tmp/dump.txt" -a "$tmp/loop.log" "$tmp/loop.lua" &&
  grep -q "^---- TRACE 1 IR" "$tmp/dump.txt" && "$snabb" auditlog "$tmp/loop.log" | grep -q "TRACE 1 start .*loop.lua:2" ||
  check_failed "-jdump=+i,FILE with -a: $(head -3 "$tmp/dump.txt")"
# A copy the JIT makes with vector registers (vector-copies.patch): jit.dump names their IR type,
# also in colour (+A), where LuaJIT's own failed.
printf 'local ffi = require("ffi")\nlocal a, b = ffi.new("uint8_t[64]"), ffi.new("uint8_t[64]")\n' >"$tmp/copy.lua"
printf 'for _ = 1, 1000 do ffi.copy(a, b, 64) end\n' >>"$tmp/copy.lua"
"$snabb" -jdump=+iA,"$tmp/copy.txt" "$tmp/copy.lua" 2>"$tmp/copy.err" && grep -qE "[xy]mm XLOAD" "$tmp/copy.txt" ||
  check_failed "-jdump of a vector copy: $(cat "$tmp/copy.err")"
usage "^snabb: -jnope: no such LuaJIT command" "$snabb" -jnope "$tmp/loop.lua"
usage "^snabb: -Ofoo: unknown or malformed optimization flag 'foo'$" "$snabb" -Ofoo "$tmp/loop.lua"

out=$("$snabb" "$configs/script.lua" a b) || check_failed "script exited $?"
grep -qx "script ok	a	b" <<<"$out" || check_failed "script output: $out"
"$snabb" version | grep -qE "^snabb [0-9.]+ \(LuaJIT 2\.1" || check_failed "version"

# The options of the commands that run a graph are parsed by programs/cli.lua and handed to the
# libraries as plain arguments: each must still reach them. A kept --rundir holds apps.json, and
# audit.log and vmprofile/ unless --no-auditlog and --no-vmprofile turn them off.
rundir_holds() {  # rundir_holds WANT(yes|no) NAME COMMAND...: after COMMAND, $tmp/rd has audit.log and vmprofile/ or not
  local want=$1 name=$2; shift 2
  rm -rf "$tmp/rd"
  "$@" >/dev/null 2>"$tmp/rd.err" || { check_failed "$name: $(cat "$tmp/rd.err")"; return; }
  local have=no
  [ -e "$tmp/rd/audit.log" ] && [ -d "$tmp/rd/vmprofile" ] && have=yes
  [ -e "$tmp/rd/audit.log" ] || [ -d "$tmp/rd/vmprofile" ] || have=none
  if [ ! -e "$tmp/rd/apps.json" ] || { [ "$want" = yes ] && [ "$have" != yes ]; } ||
     { [ "$want" = no ] && [ "$have" != none ]; }; then
    check_failed "$name: run directory holds $(ls "$tmp/rd" 2>&1 | tr '\n' ' ')"
  else
    echo "ok: $name"
  fi
}
basic="$here/../examples/basic.lua"
pcap="$data/v4.pcap"
rundir_holds yes "run --rundir" "$snabb" run "$basic" --duration 0.2 --rundir "$tmp/rd"
rundir_holds no "run --no-auditlog --no-vmprofile" \
  "$snabb" run "$basic" --duration 0.2 --rundir "$tmp/rd" --no-auditlog --no-vmprofile
rundir_holds yes "bench --rundir" "$snabb" bench "$fwd" --pcap "$pcap" --packets 1000 --rundir "$tmp/rd"
rundir_holds no "bench --no-auditlog --no-vmprofile" \
  "$snabb" bench "$fwd" --pcap "$pcap" --packets 1000 --rundir "$tmp/rd" --no-auditlog --no-vmprofile
rundir_holds yes "basic1 --rundir" "$snabb" basic1 1e5 --rundir "$tmp/rd"
rundir_holds no "basic1 --no-auditlog --no-vmprofile" \
  "$snabb" basic1 1e5 --rundir "$tmp/rd" --no-auditlog --no-vmprofile

finish cli_test

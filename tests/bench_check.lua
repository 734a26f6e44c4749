-- snabb tests/bench_check.lua RESULT.json [EXPECTED_INPUT [APP [fifth]]]: checks a `snabb bench
-- --json` result of a one-app function APP (default fwd; or IN:OUT, below): packets in/out equal the link counters,
-- every link adds up, in = out + link drops + queued + lost inside the graph, and the figures are
-- consistent. With "fifth", APP frees every fifth packet it receives
-- (tests/configs/drop_fifth.lua): the loss is that app's; otherwise nothing is lost.
local json = require("dkjson")
local path, expected_input, fn, fifth = ...
fn = fn or "fwd"
local f = assert(io.open(path))
local r = assert(json.decode(f:read("*a")), "not JSON: " .. path)
f:close()
local function check (ok, ...) if not ok then error(string.format(...), 0) end end
local links = {}
for _, l in ipairs(r.links) do
   links[l.link] = l
   check(l.txpackets == l.rxpackets + l.queued + l.txdrop, "link %s does not add up", l.link)
end
-- (APP may be IN:OUT, two apps of a workers config as NAME/APP: the capture enters at IN and leaves
-- at OUT, and the harness apps are in their workers.)
local in_app, out_app = fn:match("^(.-):(.*)$")
in_app, out_app = in_app or fn, out_app or fn
local function harness (app, name) return (app:match("^.*/") or "") .. name end
local into = links[harness(in_app, "bench_source") .. ".output -> " .. in_app .. ".input"]
local out = links[out_app .. ".output -> " .. harness(out_app, "bench_sink") .. ".input"]
check(into and out, "bench links missing")
check(r.packets.input == into.txpackets, "packets in %d ~= link txpackets %d", r.packets.input, into.txpackets)
check(r.packets.output == out.rxpackets, "packets out %d ~= link rxpackets %d", r.packets.output, out.rxpackets)
if expected_input then
   check(r.packets.input == tonumber(expected_input), "packets in %d, expected %s", r.packets.input, expected_input)
end
local p = r.packets
check(p.input == p.output + p.dropped + p.queued + p.lost, "in %d ~= out %d + dropped %d + queued %d + lost %s",
      p.input, p.output, p.dropped, p.queued, p.lost)
check(p.lost == p.lost_freed + p.lost_held, "lost ~= freed + held")
check(r.bytes.output == out.rxbytes or r.bytes.output > 0, "no output bytes")
check(math.abs(r.rate.input_mpps - r.packets.input / r.seconds / 1e6) < 1e-6 * r.rate.input_mpps + 1e-9, "Mpps")
check(r.rate.output_gbps_wire > r.rate.output_gbps_l2, "wire rate must exceed L2 rate")
-- Every packet in came out: the bits on the wire out are those Replay counted sending, frame by
-- frame (lib.ethernet: frames under 60 bytes padded; arp.pcap's reply is 42 bytes). (Replay has no
-- achieved rate for a run shorter than its first pull.)
if p.output == p.input and r.rate.achieved.bps > 0 then
   local out_bps, in_bps = r.rate.output_gbps_wire * 1e9, r.rate.achieved.bps
   check(math.abs(out_bps - in_bps) <= 1e-9 * in_bps, "bits on the wire out %.0f/s ~= in %.0f/s", out_bps, in_bps)
end
local apps = {}
for _, a in ipairs(r.apps) do apps[a.name] = a end
check(apps[in_app] and apps[in_app].packets_in == into.rxpackets, "%s packets in", in_app)
local source, sink = apps[harness(in_app, "bench_source")], apps[harness(out_app, "bench_sink")]
check(source.packets_out == r.packets.input - into.txdrop, "bench_source packets out")
-- Each app's freed is net of what it allocated: Replay makes every packet it sends, the sink frees
-- every one it receives; the function under test is listed first.
check(source.freed == -r.packets.input and sink.freed == r.packets.output, "harness freed")
check(not r.apps[1].harness and r.apps[#r.apps].harness, "function first, harness last")
local freed = 0
for _, a in ipairs(r.apps) do
   check(a.errors == 0, "app %s: %d errors", a.name, a.errors)
   if not a.harness then freed = freed + a.freed end
end
check(freed == p.lost_freed, "apps' freed %d ~= lost_freed %d", freed, p.lost_freed)
if fifth then
   local d = apps[out_app]
   check(d.freed == math.floor(d.packets_in / 5) and d.freed > 0, "%s freed %d of %d", fn, d.freed, d.packets_in)
   check(p.lost == d.freed and p.lost_held == 0, "lost %d, freed by %s %d", p.lost, fn, d.freed)
   check(d.packets_in - d.packets_out == d.freed, "%s: in - out ~= freed", fn)
else
   check(p.lost == 0 and apps[in_app].freed == 0, "%s lost %d packets", fn, p.lost)
end
local share = 0
for _, a in ipairs(r.apps) do share = share + a.share end
check(math.abs(share - 1) < 1e-6, "shares add up to %f", share)
check(r.breath_latency_us.p50 > 0 and r.breath_latency_us.p50 <= r.breath_latency_us.p99
      and r.breath_latency_us.p99 <= r.breath_latency_us.max, "breath latency percentiles")
print(("bench_check: %d in, %d out, %.2f Mpps"):format(r.packets.input, r.packets.output, r.rate.output_mpps))

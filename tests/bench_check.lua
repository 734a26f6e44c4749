-- snabb tests/bench_check.lua RESULT.json EXPECTED_INPUT: checks a `snabb bench --json` result:
-- packets in/out equal the link counters, every link adds up, and the figures are consistent.
local json = require("dkjson")
local path, expected_input = ...
local f = assert(io.open(path))
local r = assert(json.decode(f:read("*a")), "not JSON: " .. path)
f:close()
local function check (ok, ...) if not ok then error(string.format(...), 0) end end
local links = {}
for _, l in ipairs(r.links) do
   links[l.link] = l
   check(l.txpackets == l.rxpackets + l.queued + l.txdrop, "link %s does not add up", l.link)
end
local into, out = links["bench_source.output -> fwd.input"], links["fwd.output -> bench_sink.input"]
check(into and out, "bench links missing")
check(r.packets.input == into.txpackets, "packets in %d ~= link txpackets %d", r.packets.input, into.txpackets)
check(r.packets.output == out.rxpackets, "packets out %d ~= link rxpackets %d", r.packets.output, out.rxpackets)
if expected_input then
   check(r.packets.input == tonumber(expected_input), "packets in %d, expected %s", r.packets.input, expected_input)
end
check(r.packets.input == r.packets.output + r.packets.dropped + r.packets.queued, "in ~= out + dropped + queued")
check(r.bytes.output == out.rxbytes or r.bytes.output > 0, "no output bytes")
check(math.abs(r.rate.input_mpps - r.packets.input / r.seconds / 1e6) < 1e-6 * r.rate.input_mpps + 1e-9, "Mpps")
check(r.rate.output_gbps_wire > r.rate.output_gbps_l2, "wire rate must exceed L2 rate")
local apps = {}
for _, a in ipairs(r.apps) do apps[a.name] = a end
check(apps.fwd and apps.fwd.packets_in == into.rxpackets, "fwd packets in")
check(apps.bench_source.packets_out == r.packets.input, "bench_source packets out")
local share = 0
for _, a in ipairs(r.apps) do share = share + a.share end
check(math.abs(share - 1) < 1e-6, "shares add up to %f", share)
check(r.breath_latency_us.p50 > 0 and r.breath_latency_us.p50 <= r.breath_latency_us.p99
      and r.breath_latency_us.p99 <= r.breath_latency_us.max, "breath latency percentiles")
print(("bench_check: %d in, %d out, %.2f Mpps"):format(r.packets.input, r.packets.output, r.rate.output_mpps))

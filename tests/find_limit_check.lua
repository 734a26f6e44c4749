-- snabb tests/find_limit_check.lua RESULT.json LOW HIGH: checks a `snabb bench --find-limit --json`
-- result: the limit (pps) is within [LOW, HIGH]; the first trial is unthrottled and failed, the
-- last a passing confirmation at the limit; every trial's loss is lost / packets in, and a passing
-- trial lost no more than the tolerance and offered at least 99% of its rate.
local json = require("dkjson")
local path, low, high = ...
local f = assert(io.open(path))
local r = assert(json.decode(f:read("*a")), "not JSON: " .. path)
f:close()
local function check (ok, ...) if not ok then error(path .. ": " .. string.format(...), 0) end end
check(r.limit, "no limit found")
check(r.limit.pps >= tonumber(low) and r.limit.pps <= tonumber(high), "limit %.0f pps, expected %s to %s",
      r.limit.pps, low, high)
local first, last = r.trials[1], r.trials[#r.trials]
check(first.phase == "unthrottled" and not first.pass and first.rate == nil, "first trial")
check(last.phase == "confirm" and last.pass and last.rate == r.limit.pps, "last trial")
for i, t in ipairs(r.trials) do
   check(t.input > 0 and t.lost == t.input - t.output and math.abs(t.loss - t.lost / t.input) < 1e-12,
         "trial %d: in %d, out %d, lost %d, loss %g", i, t.input, t.output, t.lost, t.loss)
   if t.pass then
      check(t.loss <= r.loss_tolerance and (not t.rate or t.achieved >= 0.99 * t.rate), "trial %d passed", i)
   end
end
check(r.limit.bps > r.limit.pps * 64 * 8, "limit in bits on the wire")
print(("find_limit_check: limit %.0f pps after %d trials"):format(r.limit.pps, #r.trials))

-- programs.bench.find_limit: `snabb bench --find-limit`, the highest offered rate at which the
-- graph loses at most a tolerance of what it is given (the no-drop rate with the default tolerance
-- of 0; RFC 2544 throughput, Snabb's `loadtest find-limit`). A first trial unthrottled measures the
-- most the source can offer; a binary search between 0 and that rate follows, trial by trial, until
-- the bounds are within a resolution of each other; then a confirmation trial at the rate found
-- (on failure, one resolution lower and again, a few times). The search is a pure function of a
-- trial function (search), so that its selftest needs no graph; run() gives it bench's trials.
local lib = require("core.lib")

local M = {}

M.RESOLUTION = 0.01    -- the search stops when hi - lo <= RESOLUTION * hi
M.CONFIRMATIONS = 5    -- confirmation trials at most (each failure steps down one resolution)
M.ACHIEVED = 0.99      -- a trial that offered less than this share of its rate fails (not offered)
M.DURATION = 2         -- seconds per trial (bench's --duration)

-- search(trial, options): trial(rate) runs a trial offering `rate` packets per second (nil:
-- unthrottled) and returns {achieved (pps), input, output, lost}. options: loss (the fraction of
-- input that may be lost), resolution, confirmations, log(t) after each trial, stopped() (true:
-- end the search after this trial, e.g. on SIGINT). A trial passes when it lost at most `loss` of
-- its input and offered at least ACHIEVED of its rate. Returns {limit = pps (nil: no rate passed,
-- or interrupted), limited_by = "graph" | "source", interrupted, trials = {...}}, each trial the
-- table trial returned with rate, phase ("unthrottled", "search", "confirm"), loss (lost /
-- input) and pass added.
function M.search (trial, options)
   local tolerance = options.loss or 0
   local resolution = options.resolution or M.RESOLUTION
   local trials, interrupted = {}, false
   local function run (rate, phase)
      local t = trial(rate)
      t.rate, t.phase = rate, phase
      t.loss = t.input > 0 and t.lost / t.input or 1
      t.pass = t.input > 0 and t.loss <= tolerance and (rate == nil or t.achieved >= M.ACHIEVED * rate)
      trials[#trials+1] = t
      if options.log then options.log(t) end
      interrupted = options.stopped and options.stopped() or false
      return t.pass and not interrupted
   end
   local function result (limit, limited_by)
      return {limit = not interrupted and limit or nil, limited_by = limited_by, trials = trials,
              interrupted = interrupted or nil}
   end
   if run(nil, "unthrottled") then
      -- The graph takes all the source can offer: that is the limit this host can measure.
      return result(trials[1].achieved, "source")
   end
   local top = trials[1].achieved
   -- Below this, no rate passes (also ends a search where every trial fails).
   local floor = top * resolution * resolution
   local lo, hi = 0, top
   while not interrupted and hi - lo > resolution * hi and hi > floor do
      local mid = (lo + hi) / 2
      if run(mid, "search") then lo = mid else hi = mid end
   end
   for _ = 1, options.confirmations or M.CONFIRMATIONS do
      if lo <= 0 or interrupted then break end
      if run(lo, "confirm") then return result(lo, "graph") end
      lo = lo - resolution * lo
   end
   return result(nil, "graph")
end

local function mpps (pps) return pps and ("%.4f"):format(pps / 1e6) or "unthrottled" end

-- "pass", "fail", or "fail: offered 95.0%" for a trial that did not offer its rate.
local function verdict (t)
   if t.pass then return "pass" end
   if t.rate and t.achieved < M.ACHIEVED * t.rate then
      return ("fail: offered %.1f%%"):format(100 * t.achieved / t.rate)
   end
   return "fail"
end

-- One line for a trial as it ends (stderr).
function M.trial_line (t, n)
   return ("trial %d (%s): %s Mpps offered, %s achieved: in %s, out %s, lost %s (%.4f%%): %s"):format(
      n, t.phase, mpps(t.rate), mpps(t.achieved), lib.comma_value(t.input), lib.comma_value(t.output),
      lib.comma_value(t.lost), 100 * t.loss, verdict(t))
end

-- Runs the search with bench(opts) as the trial: each a bench of --duration seconds (default
-- DURATION) at the rate, its loss what bench counts: packets in - packets out - still queued
-- (dropped on links or freed inside the graph). Returns the result for JSON and the last passing
-- trial's bench result (for --html).
function M.run (bench, opts, log)
   local duration = opts.duration or M.DURATION
   local last_pass
   local function trial (rate)
      local o = setmetatable({rate = rate and rate / 1e6, duration = duration}, {__index = opts})
      local r = bench(o)
      local p = r.packets
      local t = {achieved = r.rate.achieved.pps, achieved_bps = r.rate.achieved.bps, input = p.input,
                 output = p.output, lost = p.input - p.output - p.queued, seconds = r.seconds,
                 skipped_seconds = r.rate.skipped_seconds}
      t.result = r
      return t
   end
   local n = 0
   local stopped = require("snabb.runtime").stop_requested
   local found = M.search(trial, {loss = opts.loss or 0, stopped = stopped, log = function (t)
      n = n + 1
      if t.pass then last_pass = t.result end
      t.result = nil
      if log then log(M.trial_line(t, n)) end
   end})
   local limit = found.limit and {pps = found.limit, limited_by = found.limited_by}
   if limit then
      -- Bits on the wire at the limit, from the passing trial at that rate.
      for i = #found.trials, 1, -1 do
         local t = found.trials[i]
         if t.pass and (t.rate == found.limit or (t.rate == nil and found.limited_by == "source")) then
            limit.bps = t.achieved_bps * found.limit / t.achieved
            break
         end
      end
   end
   return {config = opts.config, pcap = opts.pcap, date = os.date("%Y-%m-%d %H:%M:%S"),
           loss_tolerance = opts.loss or 0, resolution = M.RESOLUTION, trial_seconds = duration,
           limit = limit, interrupted = found.interrupted, trials = found.trials}, last_pass
end

-- --loss: a percentage from 0 to 100, with or without its sign ("0.001%", "0").
function M.percent (option)
   return function (s)
      local n = tonumber((s:gsub("%%$", "")))
      if n and n >= 0 and n <= 100 then return n / 100 end
      return nil, ("%s must be a percentage from 0 to 100 (e.g. 0.001%%), got '%s'"):format(option, s)
   end
end

-- `snabb bench --find-limit` (bench: the bench module, parser: its parser, for usage errors);
-- returns the exit status.
function M.main (bench, parser, opts)
   local cli = require("programs.cli")
   if not opts.find_limit then
      cli.usage_error(parser, "--loss is for --find-limit")
      return 2
   end
   for _, option in ipairs({"rate", "loops", "packets"}) do
      if opts[option] then
         cli.usage_error(parser, ("--find-limit sets the rate and runs trials of --duration seconds: no --%s")
                            :format(option))
         return 2
      end
   end
   local log = not opts.json and function (line) io.stderr:write("snabb bench: ", line, "\n") end
   local result, last_pass = require("observe.observe").run(
      cli.observe_options(opts, "snabb bench --find-limit " .. opts.config),
      function () return M.run(bench.bench, opts, log) end)
   if opts.json then
      local text = require("dkjson").encode(result, {indent = true}) .. "\n"
      if opts.json == "-" then io.stdout:write(text) else bench.write_file(opts.json, text) end
   else
      M.print_report(result, io.stdout)
   end
   if opts.html and last_pass then
      bench.write_file(opts.html, require("programs.bench.report.html_report").render(last_pass))
   end
   return 0
end

function M.print_report (r, out)
   local rows = {}
   for i, t in ipairs(r.trials) do
      rows[i] = {i, t.phase, mpps(t.rate), mpps(t.achieved), lib.comma_value(t.input),
                 lib.comma_value(t.output), lib.comma_value(t.lost), ("%.4f%%"):format(100 * t.loss),
                 verdict(t)}
   end
   out:write(("snabb bench --find-limit: %s with %s, loss tolerated %g%%, trials of %g s\n\n"):format(
      r.config, r.pcap, 100 * r.loss_tolerance, r.trial_seconds))
   out:write(lib.table_text({"trial", "phase", "offered Mpps", "achieved Mpps", "packets in", "packets out",
                             "lost", "loss", "result"}, rows, {true, false, true, true, true, true, true, true}))
   local l = r.limit
   if r.interrupted then
      out:write("\nlimit: none: the search was interrupted\n")
   elseif not l then
      out:write("\nlimit: none: no rate passed (every trial lost more than the tolerance, or did not "
                .. "offer its rate)\n")
   elseif l.limited_by == "source" then
      out:write(("\nlimit: %.4f Mpps, %.4f Gbit/s on the wire: the most the source sent unthrottled, and "
                 .. "the graph lost no more than the tolerance\n"):format(l.pps / 1e6, l.bps / 1e9))
   else
      out:write(("\nlimit: %.4f Mpps, %.4f Gbit/s on the wire (confirmed; resolution %g%%)\n"):format(
         l.pps / 1e6, l.bps / 1e9, 100 * r.resolution))
   end
end

function M.selftest ()
   print("selftest: programs.bench.find_limit")
   -- A fake graph: it forwards up to `limit` pps and loses the rest; the source offers up to `top`.
   local function fake (limit, top, noise)
      local calls = 0
      return function (rate)
         calls = calls + 1
         local offered = math.min(rate or math.huge, top)
         local input = offered * 2 -- trials of 2 s
         local lost = math.max(0, offered - limit) * 2
         if noise and noise(calls, rate) then lost = lost + 1 end
         return {achieved = offered, input = input, output = input - lost, lost = lost}
      end
   end
   local function near (found, limit)
      return found and found <= limit and found >= limit * (1 - 2 * M.RESOLUTION)
   end
   -- Limits near the top, in the middle, far below it: found within two resolutions, confirmed last.
   for _, limit in ipairs({9.7e6, 5e6, 3.3e6, 1e6, 123456, 2e3}) do
      local r = M.search(fake(limit, 10e6), {loss = 0})
      assert(near(r.limit, limit), ("limit %g: found %s"):format(limit, tostring(r.limit)))
      local last = r.trials[#r.trials]
      assert(r.trials[1].phase == "unthrottled" and not r.trials[1].pass)
      assert(last.phase == "confirm" and last.pass and last.rate == r.limit and r.limited_by == "graph")
      assert(#r.trials < 40, #r.trials)
   end
   -- The graph takes all the source offers: the limit is the source's rate, after one trial.
   local r = M.search(fake(20e6, 10e6), {loss = 0})
   assert(r.limit == 10e6 and r.limited_by == "source" and #r.trials == 1)
   -- A tolerance: losing 1 packet in 2e6 (0.00005%) passes 0.001%, not 0.
   local lossy = fake(20e6, 10e6, function () return true end)
   assert(M.search(lossy, {loss = 0.001 / 100}).limit == 10e6)
   r = M.search(lossy, {loss = 0})
   assert(r.limit == nil and r.trials[#r.trials].rate < 10e6 * M.RESOLUTION)
   -- Every trial fails: no limit, and the search ends.
   r = M.search(function () return {achieved = 1e6, input = 100, output = 0, lost = 100} end, {})
   assert(r.limit == nil and #r.trials < 40)
   -- A failed confirmation steps down one resolution and confirms again.
   local confirms = 0
   r = M.search(fake(5e6, 10e6, function (_, rate)
      if rate and rate > 4.9e6 and rate <= 5e6 then
         confirms = confirms + 1
         return confirms == 2 -- the search passed it, its confirmation fails
      end
   end), {loss = 0})
   local phases = {}
   for i, t in ipairs(r.trials) do phases[i] = t.phase end
   assert(r.trials[#r.trials - 1].phase == "confirm" and not r.trials[#r.trials - 1].pass,
          table.concat(phases, " "))
   assert(near(r.limit, 5e6) and r.limit < r.trials[#r.trials - 1].rate)
   -- A trial that does not offer its rate (the graph did not take the packets) fails, loss or not.
   r = M.search(function (rate)
      if not rate then return {achieved = 10e6, input = 10e6, output = 5e6, lost = 5e6} end
      local offered = math.min(rate, 2.5e6)
      return {achieved = offered, input = offered, output = offered, lost = 0}
   end, {loss = 0})
   assert(r.limit and r.limit <= 2.5e6 / M.ACHIEVED and r.limit >= 2.5e6 * (1 - 2 * M.RESOLUTION),
          tostring(r.limit))
   -- The report: one row per trial and the limit.
   local text = {}
   M.print_report({config = "c.lua", pcap = "x.pcap", loss_tolerance = 0, trial_seconds = 2, resolution = 0.01,
                   limit = {pps = r.limit, bps = r.limit * 672, limited_by = "graph"}, trials = r.trials},
                  {write = function (_, s) text[#text+1] = s end})
   text = table.concat(text)
   assert(select(2, text:gsub("\n%s*%d+  %a+  ", "")) == #r.trials, text)
   assert(text:match("\nlimit: %d%.%d%d%d%d Mpps, %d+%.%d+ Gbit/s on the wire %(confirmed"), text)
   -- Interrupted (SIGINT) after the third trial: no limit, no more trials.
   local n = 0
   r = M.search(fake(5e6, 10e6), {loss = 0, stopped = function () n = n + 1 return n == 3 end})
   assert(r.interrupted and r.limit == nil and #r.trials == 3)
   print("selftest: programs.bench.find_limit ok")
end

return M

-- programs.bench.workers: snabb bench of a config that returns {workers = {NAME = config}}, so
-- that a graph spread over processes is measured as one graph is (issue 21: an interlink against
-- an in-process link, a two-worker pipeline beside a one-worker one).
--
-- The endpoints are NAME/APP.PORT (--in, --out; by default, as for one graph, the one app of all
-- the workers that no link feeds and the one that feeds none, interlink apps aside). The
-- supervisor (programs/run/supervisor.lua) runs the workers; bench's source joins the graph of
-- the worker of --in, its sink that of --out, and the source's worker starts sending once every
-- worker's graph is configured (else the first packets would meet a receiver not yet there and be
-- dropped in the full links before it). While they run the supervisor samples the two harness
-- apps' counters for the progress line and the timeline; as each worker stops it writes what its
-- harness measured (status/NAME.bench: bench.harness_figures), and the result adds them up: apps
-- and links named NAME/APP, the run's time the source's, queued including what is still in
-- interlinks (taken in by transmitters and not given out by receivers).
local lib = require("core.lib")
local progress = require("programs.progress")
local stats = require("core.stats")
local supervisor = require("programs.run.supervisor")
local now = require("snabb.runtime").now

local M = {}

local SAMPLE_INTERVAL = 0.1

-- The workers' graphs as one config, for bench.endpoints: apps and links named NAME/APP, and
-- the interlink apps, which are never a default endpoint.
local function merged (set, names, path, bench)
   local m, interlinks = {apps = {}, links = {}}, {}
   for _, name in ipairs(names) do
      local c = set.workers[name]
      bench.check_reserved(c, ("%s: workers.%s"):format(path, name))
      local roles = supervisor.roles(c)
      for app, spec in pairs(c.apps) do
         m.apps[name .. "/" .. app] = spec
         if roles.tx[app] or roles.rx[app] then interlinks[name .. "/" .. app] = true end
      end
      for key, l in pairs(c.links) do
         m.links[name .. "/" .. key] = {from_app = name .. "/" .. l.from_app, to_app = name .. "/" .. l.to_app}
      end
   end
   return m, interlinks
end

-- "a.output -> b.input" of worker w as "w/a.output -> w/b.input".
local function worker_link (w, spec)
   local from, to = spec:match("^(.-) %-> (.*)$")
   return ("%s/%s -> %s/%s"):format(w, from, w, to)
end

-- The counters of the harness apps now: packets sent (bench_source), received and their bytes
-- (its link into bench_sink), padding (bench_sink's); nil while a worker's cannot be read.
local function harness_counters (dir, in_worker, out_worker, sink_link)
   local s_in = stats.read(("%s/workers/%s"):format(dir, in_worker), true)
   local s_out = in_worker == out_worker and s_in or stats.read(("%s/workers/%s"):format(dir, out_worker), true)
   if not (s_in and s_out) then return nil end
   local c = {sent = nil, received = nil, bytes = nil, padding = nil}
   for _, a in ipairs(s_in.apps) do
      if a.name == "bench_source" then c.sent = a.packets_out end
   end
   for _, a in ipairs(s_out.apps) do
      if a.name == "bench_sink" then c.padding = a.counters.padding end
   end
   for _, l in ipairs(s_out.links) do
      if l.name == sink_link then c.received, c.bytes = l.rxpackets, l.rxbytes end
   end
   return c.sent and c.received and c.padding and c or nil
end

-- Runs the benchmark of set (what opts.config returned) for bench (programs.bench.bench);
-- returns bench.result's table.
function M.bench (bench, opts, set)
   local names = supervisor.names(opts.config, set)
   local m, interlinks = merged(set, names, opts.config, bench)
   local inport, outport = bench.endpoints(m, opts["in"], opts.out, interlinks)
   local in_worker, in_at = inport:match("^([^/]+)/(.+)$")
   local out_worker, out_at = outport:match("^([^/]+)/(.+)$")
   local h = bench.harness(opts, in_at, out_at)
   -- (One key for the latency stamps of both: apps/basic/latency.lua.)
   local key = require("apps.basic.latency").key()
   local parts = {[in_worker] = {source = h.source, wait = names, key = key}}
   parts[out_worker] = parts[out_worker] or {key = key}
   parts[out_worker].sink = h.sink
   local sink_link = bench.SINK_LINK:format(out_at)

   local line = not opts.json and progress.new()
   local samples, next_sample, next_progress, last = {}, 0, now() + progress.interval, nil
   local hooks, stalled = {bench = parts}, bench.stall_watch(now())
   -- (Its result stops the supervisor: a graph that took nothing for bench.STALL_SECONDS.)
   function hooks.tick (dir)
      local t = now()
      if t < next_sample then return end
      next_sample = t + SAMPLE_INTERVAL
      local c = harness_counters(dir, in_worker, out_worker, sink_link)
      if not c then return end
      -- (A source that is done stops its worker within the supervisor's DRAIN_SECONDS.)
      if c.sent > 0 and stalled(t, c.sent) then return "stopped: " .. stalled.message end
      c.t = t
      samples[#samples+1] = c
      if line and t >= next_progress and last then
         local dt = t - last.t
         line:show(progress.line(t - samples[1].t, (c.sent - last.sent) / dt / 1e6,
                                 (c.received - last.received) / dt / 1e6,
                                 {{"sent", lib.comma_value(c.sent)}}))
         next_progress = t + progress.interval
      end
      last = c
   end
   function hooks.finish (dir, workers, _, _, fatal)
      if line then line:clear() end
      if fatal then error(fatal, 0) end
      return M.result(bench, opts, dir, workers, {in_worker = in_worker, out_worker = out_worker,
                                                  samples = samples, stalled = stalled.message})
   end
   local sup_opts = {config = opts.config, args = opts.args, cpu = opts.cpu, watchdog = opts.watchdog,
                     eal = opts.eal, no_dpdk_telemetry = opts.no_dpdk_telemetry, group = opts.group}
   return supervisor.run(sup_opts, set, names, hooks)
end

-- The result of a run from each worker's figures (status/NAME.bench); e = {in_worker, out_worker,
-- samples (the supervisor's, of harness_counters)}.
function M.result (bench, opts, dir, workers, e)
   local f = {apps = {}, links = {}, breaths = {}, failures = {}, workers = {}, queued_elsewhere = 0}
   local warnings = {}
   local by_name = {}
   for _, w in ipairs(workers) do
      local figures = supervisor.read_table(("%s/status/%s.bench"):format(dir, w.name))
      if not figures then
         error(("worker %s (PID %d) stopped without its figures (%s): no result"):format(
            w.name, w.pid, w.restart_at and "it was waiting to be restarted" or "it did not stop cleanly"), 0)
      end
      by_name[w.name] = figures
      if w.restarts > 0 then
         warnings[#warnings+1] = ("worker %s was restarted %d time%s: its figures are its last run's"):format(
            w.name, w.restarts, w.restarts == 1 and "" or "s")
      end
      f.workers[#f.workers+1] = {name = w.name, pid = w.pid, cpu = w.cpu, restarts = w.restarts}
      for _, a in ipairs(figures.apps) do
         a.name = w.name .. "/" .. a.name
         f.apps[#f.apps+1] = a
         -- Into interlinks and not out of them: still in their rings.
         if w.roles.tx[a.name:match("/(.*)$")] then f.queued_elsewhere = f.queued_elsewhere + a.packets_in end
         if w.roles.rx[a.name:match("/(.*)$")] then f.queued_elsewhere = f.queued_elsewhere - a.packets_out end
      end
      for _, l in ipairs(figures.links) do
         l.link = worker_link(w.name, l.link)
         f.links[#f.links+1] = l
      end
      for i, n in ipairs(figures.breaths) do f.breaths[i - 1] = (f.breaths[i - 1] or 0) + n end
      for _, failure in ipairs(figures.failures) do
         failure.name = w.name .. "/" .. failure.name
         f.failures[#f.failures+1] = failure
      end
   end
   local source, sink = by_name[e.in_worker].source, by_name[e.out_worker].sink
   local rates = source.rates
   f.seconds = rates.seconds > 0 and rates.seconds or 0
   f.capture_packets, f.rates = source.count, rates
   f.input, f.input_bytes = source.packets, source.bytes
   f.output, f.output_bytes, f.padding = sink.packets, sink.bytes, sink.padding
   f.latency = not opts.no_latency and sink.latency or nil
   -- The timeline, from the source's first packet (the samples are of the supervisor's clock,
   -- the same CLOCK_MONOTONIC as the workers' engine.now).
   local timeline = bench.timeline(nil)
   timeline.start(source.started)
   local finished = nil
   for _, c in ipairs(e.samples) do
      if c.t > source.started then
         if source.stopped and c.t >= source.stopped then
            finished = finished or c.t
            if finished == c.t then timeline.finish(c.t, c.sent, c.received, c.bytes, c.padding) end
         else
            timeline.sample(c.t, c.sent, c.received, c.bytes, c.padding, nil)
         end
      end
   end
   f.timeline, f.stalled = timeline.samples, e.stalled
   local result = bench.result(opts, f)
   for _, w in ipairs(warnings) do result.warnings[#result.warnings+1] = w end
   return result
end

return M

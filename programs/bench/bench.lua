-- snabb bench CONFIG --pcap FILE: replays a capture through an app graph and measures it.
--
-- Where packets enter and leave: bench adds two apps to the graph, `bench_source` (apps.pcap Replay
-- of the capture) and `bench_sink`, and links
--     bench_source.output -> IN      and      OUT -> bench_sink.input
-- IN and OUT are --in/--out when given. Otherwise IN is port `input` of the one app that no link
-- feeds, and OUT is port `output` of the one app that feeds no link (for a one-app config, both
-- belong to that app). Packets in = packets Replay sent; packets out = packets that reached
-- bench_sink; the difference is what links dropped (full rings), what they still hold, and what
-- was lost inside the graph: freed by its apps (the engine counts each app's frees) or kept in them.
-- snabb bench --filter EXPR --pcap FILE measures a pcap-filter expression: the graph is one
-- apps.filter PacketFilter, no config file.
local ffi = require("ffi")
local argparse = require("argparse")
local cli = require("programs.cli")
local config = require("core.config")
local engine = require("core.engine")
local link = require("core.link")
local lib = require("core.lib")
local pcap = require("apps.pcap.pcap")
local latency = require("apps.basic.latency")
local ethernet = require("lib.ethernet")
local run = require("programs.run.run")
local progress = require("programs.progress")
local observe = require("observe.observe")
local C = ffi.C

ffi.cdef([[
int dup(int fd);
int dup2(int oldfd, int newfd);
int close(int fd);
int fflush(void *stream);
]])

local M = {}

-- For `snabb help` (programs/main.lua finds the command by its folder).
M.summary = "replay a capture through a graph and measure it: snabb bench CONFIG --pcap FILE"
-- It runs an app graph: stop signals stop it cleanly, caught before it starts.
M.engine = true

local SAMPLE_INTERVAL = 0.1 -- seconds between timeline samples
local DRAIN_SECONDS = 0.1 -- after the capture is sent, how long packets in flight may take
-- How long the graph may take no packet from the source before the run stops (a graph that never
-- reads its input, as an app whose output is not linked, held a --loops run forever).
M.STALL_SECONDS = 5

-- --rate: a number (Mpps) or a number with a unit, as apps.pcap's Replay takes it.
local function rate (s)
   local value = tonumber(s) or s
   local ok, err = pcall(pcap.parse_rate, value)
   if ok and err < math.huge then return value end
   return nil, ("--rate must be a number > 0 of Mpps or a rate with its unit (e.g. 500kpps, 10Gbps), "
                .. "got '%s'"):format(s)
end

local function parser ()
   local p = argparse("snabb bench", "Replay a capture through an app graph and measure it.")
      :add_help("-h --help")
      :epilog("The capture enters at --in and packets leave at --out. By default --in is port\n" ..
              "'input' of the one app no link feeds, and --out port 'output' of the one app that\n" ..
              "feeds no link (both the app itself in a one-app config). Packets out are those\n" ..
              "that reach --out; Gbit/s on the wire counts each frame padded to 64 bytes with\n" ..
              "its FCS, then preamble and inter-frame gap (20 bytes); L2 the padded frame with FCS.")
   p:argument("config", "Lua file that returns a config (as for snabb run)"):args("?")
   p:argument("args", "arguments for the config file (its ...)"):args("*")
   p:option("--pcap", "capture to replay (pcap or pcapng, Ethernet)"):count(1)
   p:option("--filter", "measure this pcap-filter expression instead of a config: the graph is one "
            .. "PacketFilter (apps/filter)")
   p:mutex(
      p:option("--loops", "replay the capture this many times (a whole number >= 1)")
         :convert(cli.count("--loops")),
      p:option("--packets", "send this many packets (a whole number >= 1)"):convert(cli.count("--packets")),
      p:option("--duration", "send for this many seconds, a number > 0 (default: 5)")
         :convert(cli.seconds("--duration")))
   p:option("--rate", "offered load: Mpps (a number), or e.g. 500kpps, 10Gbps (default: unthrottled)")
      :convert(rate)
   p:flag("--find-limit", "search the highest rate at which the graph loses at most --loss, by trials "
             .. "of --duration seconds (default 2)")
   p:option("--loss", "the loss --find-limit tolerates, a percentage of packets in (e.g. 0.001%; default 0)")
      :convert(require("programs.bench.find_limit").percent("--loss"))
   p:option("--in", "where the capture enters the graph: APP.PORT (default: see below)")
   p:option("--out", "where packets leave the graph: APP.PORT")
   p:option("--json", "write the results as JSON to this file ('-': stdout) and print nothing else")
   p:option("--html", "write a self-contained HTML report to this file")
   p:option("--cpu", "pin the graph, or each worker's graph in name order, to these CPUs (one each)")
      :argname("LIST"):convert(run.cpu_list)
   p:flag("--no-latency", "do not time each packet (saves the harness 12-20 cycles per packet)")
   p:flag("--allow-errors", "exit 0 even when an app raised errors (default: exit 1)")
   cli.add_observe_options(p)
   cli.add_watchdog_option(p)
   cli.add_dpdk_options(p)
   return p
end

local function count_links (c)
   local fed, feeding = {}, {}
   for _, l in pairs(c.links) do
      fed[l.to_app], feeding[l.from_app] = true, true
   end
   return fed, feeding
end

-- The one app (by name order) for which `test` holds, or an error that explains the choice.
local function only_app (c, test, what, option)
   local found = {}
   for name in pairs(c.apps) do
      if test(name) then found[#found+1] = name end
   end
   table.sort(found)
   if #found == 1 then return found[1] end
   cli.fail(("cannot tell where packets %s: %s; say it with %s APP.PORT"):format(
      what, #found == 0 and "every app is linked on that side"
                         or "apps " .. table.concat(found, ", ") .. " all qualify", option))
end

-- The ports where the capture enters and packets leave, as "app.port". Apps in `skip` are never
-- the default (a worker's interlink apps).
function M.endpoints (c, inport, outport, skip)
   local given = {["--in"] = inport ~= nil, ["--out"] = outport ~= nil}
   local fed, feeding = count_links(c)
   skip = skip or {}
   if not inport then
      inport = only_app(c, function (name) return not (fed[name] or skip[name]) end, "enter the graph", "--in")
         .. ".input"
   end
   if not outport then
      outport = only_app(c, function (name) return not (feeding[name] or skip[name]) end, "leave the graph",
                         "--out") .. ".output"
   end
   -- As config.check would say it, but of the option rather than of a line of bench.lua.
   for _, endpoint in ipairs({{"--in", inport}, {"--out", outport}}) do
      local option, spec = endpoint[1], endpoint[2]
      local app, port = spec:match("^([^.]*)%.(.*)$")
      local direction = option == "--in" and "input" or "output"
      if not c.apps[app] then
         local names = {}
         for name in pairs(c.apps) do names[#names+1] = name end
         table.sort(names)
         cli.fail(("%s %s: the config has no app '%s' (its apps: %s)"):format(
            option, spec, app, table.concat(names, ", ")))
      end
      local ports = c.apps[app].class[direction .. "s"]
      if type(ports) == "table" then
         local found = false
         for _, name in ipairs(ports) do found = found or name == port end
         if not found then
            cli.fail(("%s%s %s: app '%s' has no %s port '%s' (it has: %s)"):format(
               given[option] and "" or "the default ", option, spec, app, direction, port,
               #ports > 0 and table.concat(ports, ", ") or "none"))
         end
      end
   end
   return inport, outport
end

-- Percentiles (µs) of the breaths counted in `counts`, a copy of engine_stats.breath_cycles.
function M.breath_percentiles (counts)
   local total = 0
   for i = 0, C.ENGINE_BREATH_BUCKETS - 1 do total = total + counts[i] end
   if total == 0 then return {} end
   local us = 1e6 / C.snabb_tsc_hz()
   local result, seen, i = {}, 0, 0
   for _, q in ipairs({{"p50", 0.5}, {"p90", 0.9}, {"p99", 0.99}, {"p999", 0.999}, {"max", 1}}) do
      while seen + counts[i] < q[2] * total or counts[i] == 0 do
         seen = seen + counts[i]
         i = i + 1
      end
      result[q[1]] = tonumber(C.snabb_engine_breath_bucket_limit(i)) * us
   end
   return result
end

local function breath_histogram ()
   local h = ffi.new("double[?]", C.ENGINE_BREATH_BUCKETS)
   local s = C.snabb_engine_stats()
   for i = 0, C.ENGINE_BREATH_BUCKETS - 1 do h[i] = tonumber(s.breath_cycles[i]) end
   return h
end

-- Gbit/s of `packets` frames of `bytes` and `padding` (the sink counts it: lib.ethernet).
local function wire_gbps (packets, bytes, padding, seconds)
   return ethernet.wire_bits_of(packets, bytes, padding) / seconds / 1e9
end

-- The apps bench adds around the function under test.
local HARNESS = {bench_source = true, bench_sink = true}

-- The host's CPU model, as /proc/cpuinfo names it (nil where it does not).
local function cpu_model ()
   local f = io.open("/proc/cpuinfo")
   if not f then return nil end
   local text = f:read("*a")
   f:close()
   local model = text:match("\nmodel name%s*:%s*([^\n]+)") or text:match("^model name%s*:%s*([^\n]+)")
   local _, cpus = ("\n" .. text):gsub("\nprocessor%s*:", "")
   return model and ("%s (%d CPUs)"):format(model, cpus)
end

-- The apps' figures: the function under test first, then the harness, each by name; share is of
-- the apps' time. Lost inside the graph = in - out - link drops - queued; of that, `freed`
-- sums what the function's apps freed (net of what they allocated), and `held` is the rest, packets
-- its apps keep (a buffer, a leak). (A worker's harness apps come marked, as NAME/bench_source.)
local function app_figures (apps, input, output, dropped, queued)
   local freed, cycles = 0, 0
   for _, a in ipairs(apps) do
      a.harness = a.harness or HARNESS[a.name] or false
      if not a.harness then freed = freed + a.freed end
      cycles = cycles + a.cycles
   end
   for _, a in ipairs(apps) do a.share = cycles > 0 and a.cycles / cycles or 0 end
   table.sort(apps, function (x, y)
      if x.harness ~= y.harness then return y.harness end
      return x.name < y.name
   end)
   local lost = input - output - dropped - queued
   return apps, {lost = lost, freed = freed, held = lost - freed}
end

-- The harness a run of opts needs: {source = {at = APP.PORT, Replay's conf}, sink = {at, latency}}
-- (in a workers config, each part goes to the worker of its endpoint).
function M.harness (opts, inport, outport)
   local limits = {loops = opts.loops, packets = opts.packets, seconds = opts.duration}
   if not (opts.loops or opts.packets or opts.duration) then limits.seconds = 5 end
   return {source = {at = inport, file = opts.pcap, rate = opts.rate, loops = limits.loops,
                     packets = limits.packets, seconds = limits.seconds, latency = not opts.no_latency},
           sink = {at = outport, latency = not opts.no_latency}}
end

M.SOURCE_LINK, M.SINK_LINK = "bench_source.output -> %s", "%s -> bench_sink.input"

-- Adds h's parts (M.harness's, or one of them) to config c: bench_source (apps.pcap Replay) and
-- bench_sink (a LatencySink, also with --no-latency: it counts the padding of short frames for
-- the rate on the wire), linked to their endpoints; h.key: the latency stamps' key to use.
function M.add_harness (c, h)
   if h.key then latency.set_key(h.key) end -- (workers: the group's)
   if h.source then
      local conf = {}
      for k, v in pairs(h.source) do if k ~= "at" then conf[k] = v end end
      config.app(c, "bench_source", pcap.Replay, conf)
      config.link(c, M.SOURCE_LINK:format(h.source.at))
   end
   if h.sink then
      config.app(c, "bench_sink", latency.LatencySink, {latency = h.sink.latency})
      config.link(c, M.SINK_LINK:format(h.sink.at))
   end
end

-- What the harness of this process measured, as plain data (a worker's status/NAME.bench): its
-- apps and links, its breaths' histogram, its failures, and of the parts it has, the source's
-- packets and rates, the sink's packets, padding and latency.
function M.harness_figures ()
   local source, sink = engine.app_table.bench_source, engine.app_table.bench_sink
   local f = {apps = engine.app_stats(), links = engine.link_stats(), failures = engine.failures(), breaths = {}}
   local h = breath_histogram()
   for i = 0, C.ENGINE_BREATH_BUCKETS - 1 do f.breaths[i + 1] = h[i] end
   for _, a in ipairs(f.apps) do a.harness = HARNESS[a.name] or false end
   if source then
      local s = link.stats(source.output.output)
      f.source = {sent = source.sent, count = source.count, rates = source:rates(), started = source.started,
                  stopped = source.stopped or source.last_pull,
                  packets = tonumber(s.txpackets), bytes = tonumber(s.txbytes)}
   end
   if sink then
      local s = link.stats(sink.input.input)
      f.sink = {padding = sink.padding, packets = tonumber(s.rxpackets), bytes = tonumber(s.rxbytes),
                latency = sink.stamped + sink.unstamped > 0 and latency.summary(sink) or nil}
   end
   return f
end

-- Fails with a message naming the file when config c uses a name the harness takes.
function M.check_reserved (c, path)
   for _, name in ipairs({"bench_source", "bench_sink"}) do
      if c.apps[name] then error(("%s: app name '%s' is reserved for snabb bench"):format(path, name), 0) end
   end
end

-- The result table (the schema programs/bench/report expects) of what a run measured: f =
-- {seconds, capture_packets, input, output, input_bytes, output_bytes, padding, rates, apps, links
-- (with queued), queued_elsewhere (e.g. in interlinks), breaths (histogram counts, 0-based),
-- timeline, latency, failures}.
function M.result (opts, f)
   local links, dropped, queued = {}, 0, f.queued_elsewhere or 0
   for _, l in ipairs(f.links) do
      links[#links+1] = {link = l.link, txpackets = l.txpackets, rxpackets = l.rxpackets,
                         txdrop = l.txdrop, queued = l.queued}
      dropped, queued = dropped + l.txdrop, queued + l.queued
   end
   local input, output, seconds = f.input, f.output, f.seconds
   local apps, lost = app_figures(f.apps, input, output, dropped, queued)
   local rates = f.rates
   return {
      config = opts.config, pcap = opts.pcap, date = os.date("%Y-%m-%d %H:%M:%S"), seconds = seconds,
      capture_packets = f.capture_packets, requested_rate = opts.rate,
      snabb_version = require("programs.main").version, cpu = cpu_model(),
      packets = {input = input, output = output, dropped = dropped, queued = queued,
                 lost = lost.lost, lost_freed = lost.freed, lost_held = lost.held},
      bytes = {input = f.input_bytes, output = f.output_bytes, output_padding = f.padding},
      rate = {input_mpps = input / seconds / 1e6, output_mpps = output / seconds / 1e6,
              output_gbps_wire = wire_gbps(output, f.output_bytes, f.padding, seconds),
              output_gbps_l2 = ethernet.l2_bits_of(output, f.output_bytes, f.padding) / seconds / 1e9,
              requested = rates.requested, achieved = rates.achieved, skipped_seconds = rates.skipped},
      apps = apps, links = links, breath_latency_us = M.breath_percentiles(f.breaths), timeline = f.timeline,
      latency_us = f.latency, failures = f.failures, workers = f.workers, stalled = f.stalled,
      warnings = M.rate_warnings(rates),
   }
end

-- Runs the benchmark; returns the result table (M.result's). A config that returns workers
-- runs under the supervisor (programs/bench/workers.lua).
function M.bench (opts)
   cli.apply_dpdk(opts)
   local c
   if opts.filter then
      c = config.new()
      config.app(c, "filter", require("apps.filter.filter").PacketFilter, {filter = opts.filter})
   else
      c = run.load_config(opts.config, opts.args, nil, true)
      if not config.is_config(c) then return require("programs.bench.workers").bench(M, opts, c) end
   end
   run.pin(opts.cpu)
   local inport, outport = M.endpoints(c, opts["in"], opts.out)
   M.check_reserved(c, opts.config)
   local h = M.harness(opts, inport, outport)
   M.add_harness(c, h)
   config.check(c)
   engine.configure(c)
   local source, sink = engine.app_table.bench_source, engine.app_table.bench_sink
   local into, out = engine.link_table[M.SOURCE_LINK:format(inport)], engine.link_table[M.SINK_LINK:format(outport)]

   local line = not opts.json and progress.new()
   local timeline = M.timeline(line)
   local before = breath_histogram()
   local start = engine.now()
   local finished, stalled = nil, M.stall_watch(start)
   timeline.start(start)
   engine.main({no_report = true, done = function ()
      local t = engine.now()
      if not source.done and stalled(t, source.sent) then return true end
      local s = link.stats(out)
      timeline.sample(t, source.sent, tonumber(s.rxpackets), tonumber(s.rxbytes), sink.padding, finished)
      if source.done and not finished then
         finished = t
         timeline.finish(t, source.sent, tonumber(s.rxpackets), tonumber(s.rxbytes), sink.padding)
      end
      -- Once the capture is sent, wait for what is still in the graph (bounded).
      return finished and (link.empty(into) and link.empty(out) or t - finished > DRAIN_SECONDS)
   end})
   if line then line:clear() end
   -- The run's time is the source's: from its first packet to the end of its schedule (see
   -- apps.pcap.pcap Replay:rates), so that packets in / seconds is the achieved rate.
   local rates = source:rates()
   local seconds = rates.seconds > 0 and rates.seconds or (finished or engine.now()) - start
   engine.main({duration = 0.01, no_report = true}) -- packets still in flight reach the sink, or stay counted as queued
   local after = breath_histogram()
   for i = 0, C.ENGINE_BREATH_BUCKETS - 1 do after[i] = after[i] - before[i] end

   local s_in, s_out = link.stats(into), link.stats(out)
   local result = M.result(opts, {
      seconds = seconds, capture_packets = source.count, rates = rates,
      input = tonumber(s_in.txpackets), output = tonumber(s_out.rxpackets),
      input_bytes = tonumber(s_in.txbytes), output_bytes = tonumber(s_out.rxbytes), padding = sink.padding,
      apps = engine.app_stats(), links = engine.link_stats(), breaths = after, timeline = timeline.samples,
      latency = not opts.no_latency and latency.summary(sink) or nil, failures = engine.failures(),
      stalled = stalled.message})
   engine.stop()
   return result
end

-- A watch over the source's progress: stalled(t, sent) is true, and stalled.message says why, once
-- `sent` has not grown for STALL_SECONDS.
function M.stall_watch (start)
   local self, last_sent, since = {}, -1, start
   return setmetatable(self, {__call = function (_, t, sent)
      if sent ~= last_sent then last_sent, since = sent, t return false end
      if t - since < M.STALL_SECONDS then return false end
      self.message = ("the graph took no packet from the capture for %g s (%s sent): stopped before "
                      .. "the capture was sent; does the graph read its input?"):format(
                         M.STALL_SECONDS, lib.comma_value(sent))
      return true
   end})
end

-- The timeline of a run (samples every SAMPLE_INTERVAL of packets in and out) and its progress
-- line (line: progress.new()'s, or nil): start(t), then sample(t, sent, received, bytes, padding,
-- finished) as often as one likes (it samples when an interval has passed, until finished), and
-- finish(...) once the source is done (a last, shorter interval, unless too short to say much).
function M.timeline (line)
   local self = {samples = {}}
   local start, last, next_sample, next_progress
   local function add (t, sent, received, bytes, padding)
      local dt = t - last.t
      self.samples[#self.samples+1] = {t = t - start, input_mpps = (sent - last.sent) / dt / 1e6,
                                       output_mpps = (received - last.received) / dt / 1e6,
                                       output_gbps_wire = wire_gbps(received - last.received, bytes - last.bytes,
                                                                    padding - last.padding, dt)}
      last = {t = t, sent = sent, received = received, bytes = bytes, padding = padding}
   end
   function self.start (t)
      start, last = t, {t = t, sent = 0, received = 0, bytes = 0, padding = 0}
      next_sample, next_progress = t + SAMPLE_INTERVAL, t + progress.interval
   end
   function self.sample (t, sent, received, bytes, padding, finished)
      if not finished and t >= next_sample then
         add(t, sent, received, bytes, padding)
         next_sample = next_sample + SAMPLE_INTERVAL
      end
      if line and t >= next_progress then
         local p = self.samples[#self.samples] or {input_mpps = 0, output_mpps = 0}
         line:show(progress.line(t - start, p.input_mpps, p.output_mpps, {{"sent", lib.comma_value(sent)}}))
         next_progress = t + progress.interval
      end
   end
   function self.finish (t, sent, received, bytes, padding)
      if t - last.t >= SAMPLE_INTERVAL / 10 then add(t, sent, received, bytes, padding) end
   end
   return self
end

-- A rate in the unit it was asked in: "0.1000 Mpps", "0.0100 Gbit/s" (bits on the wire).
local function show_rate (x, unit)
   return unit == "pps" and ("%.4f Mpps"):format(x / 1e6) or ("%.4f Gbit/s"):format(x / 1e9)
end

-- Warnings about the offered load (result.rate): achieved under 99% of the requested rate.
function M.rate_warnings (r)
   local req, got = r.requested, r.achieved
   if not req or got[req.unit] >= 0.99 * req[req.unit] then return {} end
   return {("achieved %s, %.1f%% of the requested %s (%.0f ms of the schedule given up): the process "
            .. "was descheduled, or the graph did not take the packets"):format(
      show_rate(got[req.unit], req.unit), 100 * got[req.unit] / req[req.unit], show_rate(req[req.unit], req.unit),
      1e3 * (r.skipped_seconds or 0))}
end

-- "12.5% of packets in", or "" when nothing went in.
local function of_input (r, n)
   return r.packets.input > 0 and ("%.1f%% of packets in"):format(100 * n / r.packets.input) or ""
end

-- Where the packets lost inside the graph went: each app of the function that freed some, and
-- what its apps still hold.
local function lost_detail (r)
   local cv, parts = lib.comma_value, {}
   for _, a in ipairs(r.apps) do
      if not a.harness and a.freed ~= 0 then
         parts[#parts+1] = ("%s %s %s"):format(a.freed > 0 and "freed by" or "made by", a.name, cv(math.abs(a.freed)))
      end
   end
   if r.packets.lost_held ~= 0 then parts[#parts+1] = "held in apps " .. cv(r.packets.lost_held) end
   return table.concat(parts, ", ")
end

function M.print_report (r, out)
   local cv, p, rt = lib.comma_value, r.packets, r.rate
   out:write(("snabb bench: %s with %s (%s packets), %.2f s\n"):format(
      r.config, r.pcap, cv(r.capture_packets), r.seconds))
   if r.workers then
      local parts = {}
      for i, w in ipairs(r.workers) do
         parts[i] = ("%s (PID %d%s%s)"):format(w.name, w.pid, w.cpu and ", CPU " .. w.cpu or "",
                                             w.restarts > 0 and ", restarted " .. w.restarts or "")
      end
      out:write("workers: ", table.concat(parts, ", "), "\n")
   end
   out:write("\n")
   -- packets in = packets out + link drops + queued + lost inside the graph (a table without its
   -- header line, nor the spaces that pad empty cells at the ends of lines)
   local summary = lib.table_text({"", "", "", ""}, {
      {"packets in", cv(p.input), ("%.2f Mpps"):format(rt.input_mpps), ""},
      {"packets out", cv(p.output), ("%.2f Mpps"):format(rt.output_mpps),
       ("%.2f Gbit/s on the wire, %.2f Gbit/s L2"):format(rt.output_gbps_wire, rt.output_gbps_l2)},
      {"dropped by links", cv(p.dropped), of_input(r, p.dropped), "(full rings)"},
      {"queued in links", cv(p.queued), "", ""},
      {"lost in the graph", cv(p.lost), of_input(r, p.lost), lost_detail(r)},
   }, {false, true, true, false})
   out:write((summary:gsub("^[^\n]*\n", ""):gsub(" +\n", "\n")))
   local req, got = rt.requested, rt.achieved
   if req then
      out:write(("rate: requested %s, achieved %s, %s on the wire (%.2f%%)\n"):format(
         show_rate(req[req.unit], req.unit), show_rate(got.pps, "pps"), show_rate(got.bps, "bps"),
         100 * got[req.unit] / req[req.unit]))
   end
   out:write("\n", engine.report_tables(r.apps, r.links))
   local b = r.breath_latency_us
   if b.p50 then
      out:write(("\nbreath latency (µs): p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f\n"):format(
         b.p50, b.p90, b.p99, b.p999, b.max))
   end
   M.print_latency(r.latency_us, out)
end

-- Latency per packet (apps.basic.latency): from Replay's transmit to bench_sink's receive.
function M.print_latency (l, out)
   if not l then return end
   local cv = lib.comma_value
   if l.p50 then
      out:write(("\npacket latency (µs): p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f"
                 .. "  (%s packets)\n"):format(l.p50, l.p90, l.p99, l.p999, l.max, cv(l.stamped)))
   else
      out:write("\npacket latency: no stamped packet reached the sink\n")
   end
   if l.unstamped > 0 then
      out:write(("packets out without a stamp (made inside the graph, not timed): %s\n"):format(
         cv(l.unstamped)))
   end
end

-- Writes `text` to the file at `path` (also find_limit's reports).
function M.write_file (path, text)
   local f, err = io.open(path, "w")
   if not f then error(err, 0) end
   f:write(text)
   f:close()
end

-- With --json -, fd 1 is pointed at stderr while the graph loads and runs, so that whatever apps
-- print (print, io.write, C's printf, DPDK's log) goes there and the document alone to stdout.
-- Returns the function that points fd 1 back.
local function stdout_to_stderr ()
   io.stdout:flush()
   local saved = C.dup(1)
   if saved < 0 then return function () end end
   C.dup2(2, 1)
   return function ()
      io.stdout:flush()
      C.fflush(nil)
      C.dup2(saved, 1)
      C.close(saved)
   end
end

-- "snabb bench: app 'x' failed in push: file:5: message (3 errors in all)": the first line of
-- each failed app's first error.
local function failure_lines (failures)
   local lines = {}
   for i, f in ipairs(failures) do
      lines[i] = ("snabb bench: %s (%d error%s in all)\n"):format(
         tostring(f.message or ("app '%s' failed"):format(f.name)):match("^[^\n]*"), f.errors,
         f.errors == 1 and "" or "s")
   end
   return table.concat(lines)
end

local function quoted (arg)
   return arg:match("^[%w@%%+=:,./_-]+$") and arg or "'" .. arg:gsub("'", "'\\''") .. "'"
end

function M.run (args)
   local p = parser()
   local opts = cli.parse(p, args)
   if not opts then return 2 end
   engine.restart_on_error = true -- a failed app is restarted, as in snabb run (--allow-errors)
   if opts.filter then
      if opts.config then
         cli.usage_error(p, ("--filter takes the place of a config: give one or the other, not '%s' "
                             .. "too"):format(opts.config))
         return 2
      end
      local ok, err = require("lib.pf").compile(opts.filter)
      if not ok then cli.usage_error(p, err) return 2 end
      opts.config = "--filter " .. quoted(opts.filter)
   elseif not opts.config then
      cli.usage_error(p, "missing argument 'config' (or --filter EXPR)")
      return 2
   end
   -- Usage errors before anything loads: then a run's last words are never about its graph.
   for _, option in ipairs({"in", "out"}) do
      if opts[option] and not opts[option]:gsub("^[%w_-]+/", "", 1):match("^[%a_][%w_]*%.[%a_][%w_]*$") then
         cli.usage_error(p, ("--%s must be APP.PORT (an app of the config and its port; of a config with "
                             .. "workers, WORKER/APP.PORT), got '%s'")
            :format(option, opts[option]))
         return 2
      end
   end
   local problem = pcap.check_capture(opts.pcap)
   if problem then cli.usage_error(p, "--pcap " .. problem) return 2 end
   for _, option in ipairs({"json", "html"}) do -- not a report that cannot be written after the run
      local path = opts[option] ~= "-" and opts[option]
      if path then
         local existed = io.open(path)
         if existed then existed:close() end
         local f, err = io.open(path, "a")
         if not f then cli.usage_error(p, ("--%s %s"):format(option, err)) return 2 end
         f:close()
         if not existed then os.remove(path) end
      end
   end
   cli.apply_watchdog(opts)
   if opts.find_limit or opts.loss then return require("programs.bench.find_limit").main(M, p, opts) end
   local command = {"snabb", "bench"}
   for i, a in ipairs(args) do command[i + 2] = quoted(a) end
   local restore_stdout = opts.json == "-" and stdout_to_stderr() or function () end
   local ok, result = pcall(observe.run, cli.observe_options(opts, "snabb bench " .. opts.config),
                            function () return M.bench(opts) end)
   restore_stdout()
   if not ok then error(result, 0) end
   result.command = table.concat(command, " ")
   for _, w in ipairs(result.warnings) do io.stderr:write("snabb bench: warning: ", w, "\n") end
   if opts.json then
      local text = require("dkjson").encode(result, {indent = true}) .. "\n"
      if opts.json == "-" then io.stdout:write(text) else M.write_file(opts.json, text) end
   else
      M.print_report(result, io.stdout)
   end
   if opts.html then
      M.write_file(opts.html, require("programs.bench.report.html_report").render(result))
   end
   if result.stalled then
      io.stdout:flush()
      io.stderr:write("snabb bench: ", result.stalled, "\n")
      return 1
   end
   if #result.failures > 0 then
      io.stdout:flush()
      io.stderr:write(failure_lines(result.failures))
      if not opts.allow_errors then
         io.stderr:write("snabb bench: exit status 1 as an app failed (--allow-errors: 0)\n")
         return 1
      end
   end
   return 0
end

return M

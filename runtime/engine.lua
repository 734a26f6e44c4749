-- core.engine (also required as core.app, Snabb's name): turns a config into a running app graph
-- and runs it. configure() applies the difference between the running config and a new one; the
-- breath loop itself is C++ (runtime/engine.cc), called here in slices of at most a millisecond so
-- that ticks, restarts of failed apps and done() are handled between slices.
local ffi = require("ffi")
require("core.cdefs")
local core = require("snabb.core")
local config = require("core.config")
local link = require("core.link")
local lib = require("core.lib")
local packet = require("core.packet")
local C = ffi.C

local M = {}

-- Settings a program may change before main().
M.busywait = true       -- poll without sleeping; false: back off up to 100 us while idle
M.tick_hz = 1000        -- how often app:tick() runs
M.restart_delay = 1.0   -- seconds before a failed app is started again
M.pull_npackets = 512   -- packets a source app produces per pull (half a link: fewer calls per packet)
-- Optional hooks, set by jit.observe when profiling: profile_zone(app name) -> vmprofile zone id for
-- the app's calls; on_tick() runs after the apps' ticks; on_stop() before stop() stops the apps.
M.profile_zone = nil
M.on_tick = nil
M.on_stop = nil
M.log = function (msg) io.stderr:write(msg, "\n") end

M.app_table = {}        -- app name -> running app object
M.link_table = {}       -- "a.out -> b.in" -> struct link *
M.configuration = config.new()

local apps = {}         -- app name -> {class, arg, object, stats, native, failed, restart_at}
local now = core.now
M.now = now

local function address (cdata) return tonumber(ffi.cast("uintptr_t", ffi.cast("void *", cdata))) end

-- "basic.basic_apps.Source": where the class is found among the loaded modules; for a class that
-- is in none (e.g. defined in the config file itself), the file where the app was configured.
local function class_name (class, where)
   if class.native then return class.native end
   for module, t in pairs(package.loaded) do
      if type(t) == "table" and module ~= "_G" then
         for k, v in pairs(t) do
            if v == class then return (module:gsub("^apps%.", "")) .. "." .. k end
         end
      end
   end
   return where and where:match("^(.-):%d+$") or "-"
end

-- An error raised at a source position (a bug, or error() at a level) gets a traceback; one raised
-- without a position (error(message, 0): a complete report, e.g. "file.pcap: empty file") is
-- shown as it is.
local function app_traceback (err)
   if type(err) ~= "string" then return lib.error_message(err, 3) end -- error({}): its line, described
   if not err:match("^[^\n]-:%d+: ") then return err end
   return debug.traceback(err, 2)
end

-- Calls object:method(...) and returns its results; an error names the app and the method.
local function call_app (name, object, method, ...)
   local results = {xpcall(object[method], app_traceback, object, ...)}
   if not results[1] then
      error(("app '%s': %s failed: %s"):format(name, method, tostring(results[2])), 0)
   end
   return unpack(results, 2)
end

-- An app may hand pull/push to C (jit/lua_app.h): fields with an FFI C function each and the
-- pointer they are called with.
local C_METHOD_FIELDS = {"c_pull", "c_push", "c_arg"}

local function instantiate (name, spec)
   local class, arg = spec.class, spec.arg
   if class.native then
      return {native = core.native_new(class.native), appname = name}
   end
   if type(class.config) == "table" then
      local ok, parsed = pcall(lib.parse, arg, class.config)
      if not ok then
         error(("%s: app '%s': %s"):format(spec.where, name, parsed), 0)
      end
      arg = parsed
   end
   local ok, object = pcall(call_app, name, class, "new", arg)
   if not ok then error(("%s: %s"):format(spec.where, object), 0) end -- the config's line
   if type(object) ~= "table" then
      error(("app '%s': new returned %s, not an app object"):format(name, type(object)), 0)
   end
   for _, field in ipairs(C_METHOD_FIELDS) do
      if object[field] ~= nil and type(object[field]) ~= "cdata" then
         error(("app '%s': %s is a %s, not a C function or pointer (cdata)"):format(
            name, field, type(object[field])), 0)
      end
   end
   object.appname = name
   return object
end

local function stop_app (name)
   local a = apps[name]
   local object = a.object
   if object then
      if object.native then
         core.native_delete(object.native)
      elseif object.stop then
         local ok, err = pcall(call_app, name, object, "stop")
         if not ok then M.log("engine: " .. err) end
      end
   end
   a.object = nil
   M.app_table[name] = nil
end

local function start_app (name, spec)
   local a = apps[name]
   a.class, a.arg, a.where = spec.class, spec.arg, spec.where
   a.object = instantiate(name, spec)
   a.failed, a.restart_at = false, nil
   M.app_table[name] = a.object
end

-- Points each app's input/output tables at its links (by port name, and in port-name order).
local function wire (c)
   local ports = {}
   for name in pairs(c.apps) do ports[name] = {input = {}, output = {}} end
   for spec, l in pairs(c.links) do
      ports[l.from_app].output[l.from_port] = M.link_table[spec]
      ports[l.to_app].input[l.to_port] = M.link_table[spec]
   end
   for name, p in pairs(ports) do
      local object = apps[name].object
      if object then
         for _, direction in ipairs({"input", "output"}) do
            local t, names = {}, {}
            for port, l in pairs(p[direction]) do t[port] = l; names[#names+1] = port end
            table.sort(names)
            for i, port in ipairs(names) do t[i] = t[port] end
            object[direction] = t
         end
         if object.link and not object.native then call_app(name, object, "link") end
      end
   end
end

-- Apps ordered so that each comes before the apps it feeds (Kahn); cycles are cut in name order.
local function breath_order (c)
   local indegree, successors, names = {}, {}, {}
   for name in pairs(c.apps) do indegree[name], successors[name] = 0, {}; names[#names+1] = name end
   table.sort(names)
   for _, l in pairs(c.links) do
      if l.from_app ~= l.to_app then
         table.insert(successors[l.from_app], l.to_app)
         indegree[l.to_app] = indegree[l.to_app] + 1
      end
   end
   local order, placed = {}, {}
   while #order < #names do
      local progress = false
      for _, name in ipairs(names) do
         if not placed[name] and indegree[name] == 0 then
            order[#order+1], placed[name], progress = name, true, true
            for _, s in ipairs(successors[name]) do indegree[s] = indegree[s] - 1 end
         end
      end
      if not progress then -- a cycle: take the first unplaced app and carry on
         for _, name in ipairs(names) do
            if not placed[name] then indegree[name] = 0; break end
         end
      end
   end
   return order
end

local function publish_graph ()
   local c = M.configuration
   local nodes = {}
   for _, name in ipairs(breath_order(c)) do
      local a = apps[name]
      if a.object then
         local node = {name = name, stats = address(a.stats), failed = a.failed,
                       inputs = {}, outputs = {}, zone = M.profile_zone and M.profile_zone(name)}
         if a.object.native then node.native = a.object.native else node.app = a.object end
         for _, field in ipairs(C_METHOD_FIELDS) do
            if a.object[field] then node[field] = address(a.object[field]) end
         end
         for _, direction in ipairs({"input", "output"}) do
            for _, l in ipairs(a.object[direction] or {}) do
               table.insert(node[direction .. "s"], address(l))
            end
         end
         nodes[#nodes+1] = node
      end
   end
   core.set_graph(nodes)
end

-- Makes the running graph equal to `c`: stops removed apps, starts new ones, reconfigures (or
-- restarts) changed ones, and keeps the links, and the packets in them, that both configs share.
-- A config that fails its checks changes nothing.
function M.configure (c)
   config.check(c)
   local old = M.configuration
   -- Apps to stop, start, restart or reconfigure.
   local stop, start, reconfig = {}, {}, {}
   for name, spec in pairs(old.apps) do
      local new = c.apps[name]
      if not new or new.class ~= spec.class then
         stop[#stop+1] = name
         if new then start[#start+1] = name end
      elseif not lib.equal(new.arg, spec.arg) then
         local object = apps[name].object
         if object and object.reconfig then
            reconfig[#reconfig+1] = name
         else
            stop[#stop+1], start[#start+1] = name, name
         end
      end
   end
   for name in pairs(c.apps) do
      if not old.apps[name] then start[#start+1] = name end
   end
   table.sort(stop); table.sort(start); table.sort(reconfig)

   for _, name in ipairs(stop) do
      stop_app(name)
      if not c.apps[name] then apps[name] = nil end
   end
   -- Links: keep those in both configs, free the others (with any packets still in them).
   for spec in pairs(old.links) do
      if not c.links[spec] then
         link.free(M.link_table[spec])
         M.link_table[spec] = nil
      end
   end
   for spec in pairs(c.links) do
      if not M.link_table[spec] then M.link_table[spec] = link.new() end
   end
   M.configuration = c
   -- An app that cannot start is left out, retried after restart_delay, and reported once the
   -- graph is consistent again.
   local first_error
   for _, name in ipairs(start) do
      apps[name] = apps[name] or {stats = ffi.new("struct app_stats")}
      local ok, err = pcall(start_app, name, c.apps[name])
      if not ok then
         apps[name].failed, apps[name].restart_at = true, now() + M.restart_delay
         first_error = first_error or err
      end
   end
   for _, name in ipairs(reconfig) do
      local a = apps[name]
      a.arg = c.apps[name].arg
      local ok, err = pcall(call_app, name, a.object, "reconfig", a.arg)
      first_error = first_error or (not ok and err) or nil
   end
   wire(c)
   publish_graph()
   if first_error then error(first_error, 0) end
end

local function app_failed (name, method, message)
   local a = apps[name]
   if not a then return end
   -- The traceback below the engine's own frames says nothing about the app.
   message = message:gsub("\n%s*%[C%]: in function 'run'.*$", "")
   a.failed, a.restart_at = true, now() + M.restart_delay
   M.log(("engine: app '%s' failed in %s: %s"):format(name, method, message))
   M.log(("engine: restarting app '%s' in %.1f s; the rest of the graph keeps running"):format(
      name, M.restart_delay))
   publish_graph()
end

local function restart_due_apps (t)
   local restarted = false
   for name, a in pairs(apps) do
      if a.failed and a.restart_at and t >= a.restart_at then
         stop_app(name)
         local ok, err = pcall(start_app, name, M.configuration.apps[name])
         if ok then
            M.log(("engine: app '%s' restarted"):format(name))
            restarted = true
         else
            a.failed, a.restart_at = true, t + M.restart_delay
            M.log(("engine: app '%s' could not be restarted: %s"):format(name, err))
         end
      end
   end
   if restarted then
      wire(M.configuration)
      publish_graph()
   end
end

local function tick_apps ()
   for name, a in pairs(apps) do
      local object = a.object
      if object and not a.failed and object.tick then
         local ok, err = xpcall(object.tick, debug.traceback, object)
         if not ok then a.stats.errors = a.stats.errors + 1; app_failed(name, "tick", err) end
      end
   end
end

-- Runs the graph. options: duration (seconds), done (function: stop when it returns true),
-- report (true: print the report at the end). Without duration or done it runs until SIGINT.
function M.main (options)
   options = options or {}
   local d = options.duration
   if d ~= nil and not (type(d) == "number" and d >= 0 and d < math.huge) then
      error(("engine.main: duration must be a finite number of seconds >= 0, got %s"):format(lib.describe(d)), 2)
   end
   local t = now()
   local deadline = options.duration and t + options.duration
   local done = options.done
   local tick_interval = 1 / M.tick_hz
   local next_tick = t + tick_interval
   core.catch_signals()
   repeat
      local slice_end = math.min(next_tick, deadline or math.huge)
      local ok, app, method, message = core.run(slice_end, M.busywait)
      if not ok then app_failed(app, method, message) end
      t = now()
      if t >= next_tick then
         tick_apps()
         if M.on_tick then M.on_tick() end
         next_tick = t + tick_interval
         restart_due_apps(t)
      end
   until (done and done()) or (deadline and t >= deadline) or core.stop_requested()
   if options.report then M.report(options.report) end
end

-- One breath, outside main() (Snabb's engine.breathe).
function M.breathe ()
   local ok, app, method, message = core.breathe()
   if not ok then app_failed(app, method, message) end
end

-- Stops every app and frees every link.
function M.stop ()
   if M.on_stop then M.on_stop() end
   M.configure(config.new())
end

local function sorted_keys (t)
   local keys = {}
   for k in pairs(t) do keys[#keys+1] = k end
   table.sort(keys)
   return keys
end

-- Per-app and per-link figures (also used by programs that print their own reports).
function M.app_stats ()
   local result = {}
   for _, name in ipairs(sorted_keys(apps)) do
      local s = apps[name].stats
      local packets = math.max(tonumber(s.packets_in), tonumber(s.packets_out))
      result[#result+1] = {name = name, class = class_name(apps[name].class, apps[name].where),
                           calls = tonumber(s.calls), cycles = tonumber(s.cycles),
                           packets_in = tonumber(s.packets_in), packets_out = tonumber(s.packets_out),
                           errors = tonumber(s.errors),
                           cycles_per_packet = packets > 0 and tonumber(s.cycles) / packets or 0}
   end
   return result
end

function M.link_stats ()
   local result = {}
   for _, spec in ipairs(sorted_keys(M.link_table)) do
      local l = M.link_table[spec]
      local s = link.stats(l)
      result[#result+1] = {link = spec, txpackets = tonumber(s.txpackets), txbytes = tonumber(s.txbytes),
                           rxpackets = tonumber(s.rxpackets), rxbytes = tonumber(s.rxbytes),
                           txdrop = tonumber(s.txdrop), queued = link.nreadable(l)}
   end
   return result
end

function M.report (options)
   local out = io.stdout
   local cv = lib.comma_value
   local engine_cycles = tonumber(C.snabb_engine_stats().cycles)
   out:write(("%-16s %-18s %14s %14s %10s %8s %7s\n"):format(
      "app", "class", "packets in", "packets out", "cycles/pkt", "share", "errors"))
   for _, a in ipairs(M.app_stats()) do
      out:write(("%-16s %-18s %14s %14s %10.1f %7.1f%% %7d\n"):format(
         a.name, a.class, cv(a.packets_in), cv(a.packets_out), a.cycles_per_packet,
         engine_cycles > 0 and 100 * a.cycles / engine_cycles or 0, a.errors))
   end
   out:write(("\n%-34s %14s %14s %10s %8s\n"):format("link", "txpackets", "rxpackets", "txdrop", "queued"))
   for _, l in ipairs(M.link_stats()) do
      out:write(("%-34s %14s %14s %10s %8d\n"):format(
         l.link, cv(l.txpackets), cv(l.rxpackets), cv(l.txdrop), l.queued))
   end
   -- Then what apps have to say for themselves (drivers: device counters, link state).
   local first = true
   for _, name in ipairs(sorted_keys(apps)) do
      local object = apps[name].object
      if object and not object.native and object.report then
         if first then out:write("\n") first = false end
         local ok, err = pcall(call_app, name, object, "report")
         if not ok then M.log("engine: " .. err) end
      end
   end
end

function M.selftest ()
   print("selftest: core.engine")
   local basic = require("apps.basic.basic_apps")
   local function check_links ()
      for _, l in ipairs(M.link_stats()) do
         assert(l.txpackets == l.rxpackets + l.queued + l.txdrop, l.link)
      end
   end
   local function app (name)
      for _, a in ipairs(M.app_stats()) do if a.name == name then return a end end
   end
   -- Hold keeps its input queued; Tunable can be reconfigured in place.
   local Hold = {}
   function Hold:new () return setmetatable({}, {__index = Hold}) end
   function Hold:push () end
   local Tunable = {}
   function Tunable:new (arg) return setmetatable({arg = arg, stopped = false}, {__index = Tunable}) end
   function Tunable:reconfig (arg) self.arg = arg end
   function Tunable:stop () self.stopped = true end

   local function graph (sink_class, tunable_arg)
      local c = config.new()
      config.app(c, "source", basic.Source, {size = 100})
      config.app(c, "sink", sink_class)
      config.app(c, "tunable", Tunable, tunable_arg)
      config.link(c, "source.output -> sink.input")
      return c
   end
   local ticks = 0
   function Tunable:tick () ticks = ticks + 1 end
   M.configure(graph(basic.Sink, 1))
   M.breathe()
   assert(app("sink").packets_in == M.pull_npackets, "one breath moves one pull's worth")
   M.main({duration = 0.05})
   check_links()
   assert(app("sink").packets_in > 0)
   assert(ticks >= 10 and ticks <= 60, ("tick_hz 1000 over 50 ms: %d ticks"):format(ticks))
   local l = M.link_table["source.output -> sink.input"]
   local tunable = M.app_table.tunable

   -- Replacing the sink keeps the link; the new app leaves the ring full (no drops: Source only
   -- sends what fits), and switching back keeps those packets for the next sink.
   M.configure(graph(Hold, 1))
   M.main({duration = 0.02})
   assert(M.link_table["source.output -> sink.input"] == l, "link kept")
   assert(link.full(l))
   check_links()
   M.configure(graph(basic.Sink, 2))
   assert(link.full(l), "packets survive reconfiguration")
   check_links()
   assert(M.app_table.tunable == tunable and tunable.arg == 2, "reconfig in place")
   M.main({duration = 0.02})
   check_links()
   assert(link.stats(l).txdrop == 0)

   -- A removed app is stopped; a changed app without reconfig is restarted.
   local c = graph(basic.Sink, 2)
   c.apps.tunable = nil
   M.configure(c)
   assert(tunable.stopped and M.app_table.tunable == nil)

   -- An app whose new() fails is named; the rest of the new graph runs.
   local Broken = {}
   function Broken:new () error("no such device") end
   local with_broken = graph(basic.Sink, 2)
   config.app(with_broken, "broken", Broken)
   local ok, err = pcall(M.configure, with_broken)
   assert(not ok and err:match("app 'broken': new failed: .*no such device"), err)
   local before = app("sink").packets_in
   M.main({duration = 0.01})
   assert(app("sink").packets_in > before and M.app_table.broken == nil)

   -- An app can hand pull to C: the engine calls the C function with c_arg, not the Lua method.
   -- (The C function here is a Lua callback, so the test can see the call.)
   local c_calls, c_arg_seen = 0, nil
   local callback = ffi.cast("app_c_method", function (arg)
      c_calls, c_arg_seen = c_calls + 1, tonumber(ffi.cast("uintptr_t", arg))
   end)
   local CPull = {}
   function CPull:new (arg)
      return setmetatable({c_pull = arg.c_pull, c_arg = ffi.cast("void *", 42)}, {__index = CPull})
   end
   function CPull:pull () error("the Lua pull must not be called") end
   local with_c = graph(basic.Sink, 2)
   config.app(with_c, "c_app", CPull, {c_pull = callback})
   M.configure(with_c)
   M.breathe()
   assert(c_calls == 1 and c_arg_seen == 42, ("c_pull calls %d, arg %s"):format(c_calls, c_arg_seen))
   local with_bad_c = graph(basic.Sink, 2)
   config.app(with_bad_c, "c_app", CPull, {c_pull = "snabb_dpdk_pull"})
   local ok_c, err_c = pcall(M.configure, with_bad_c)
   assert(not ok_c and err_c:match("app 'c_app': c_pull is a string, not a C function"), err_c)
   M.configure(graph(basic.Sink, 2))
   callback:free()

   -- A config that fails its checks changes nothing.
   local bad = graph(basic.Sink, 2)
   config.link(bad, "source.other -> nosuch.input")
   assert(not pcall(M.configure, bad))
   assert(M.app_table.sink and M.link_table["source.output -> sink.input"] == l)

   -- An app that fails is reported, restarted after restart_delay, and the rest keeps running.
   local Fails = {}
   function Fails:new () return setmetatable({calls = 0}, {__index = Fails}) end
   function Fails:push ()
      for _ = 1, link.nreadable(self.input.input) do packet.free(link.receive(self.input.input)) end
      self.calls = self.calls + 1
      if self.calls == 3 then error("deliberate failure") end
   end
   c = graph(basic.Sink, 2)
   config.app(c, "source2", basic.Source)
   config.app(c, "fails", Fails)
   config.link(c, "source2.output -> fails.input")
   local log, saved_log, saved_delay = {}, M.log, M.restart_delay
   M.log, M.restart_delay = function (msg) log[#log+1] = msg end, 0.05
   M.configure(c)
   local first = M.app_table.fails
   local sink_before = app("sink").packets_in
   M.main({duration = 0.3})
   M.log, M.restart_delay = saved_log, saved_delay
   local text = table.concat(log, "\n")
   assert(text:match("app 'fails' failed in push: .*deliberate failure"), text)
   assert(text:match("stack traceback"), text)
   assert(text:match("app 'fails' restarted"), text)
   assert(M.app_table.fails ~= first, "a new instance after restart")
   assert(app("fails").errors >= 1 and app("sink").packets_in > sink_before)
   check_links()

   M.stop()
   assert(next(M.app_table) == nil and next(M.link_table) == nil)
   print("selftest: core.engine ok")
end

return M

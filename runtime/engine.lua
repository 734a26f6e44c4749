-- core.engine (also required as core.app, Snabb's name): turns a config into a running app graph
-- and runs it. configure() applies the difference between the running config and a new one; the
-- breath loop itself is C++ (runtime/engine.cc), called here in slices of at most a millisecond so
-- that ticks, restarts of failed apps and done() are handled between slices.
local ffi = require("ffi")
require("core.cdefs")
require("core.lib_h") -- get_monotonic_time, sleep_ns (pace_breathing)
local runtime = require("snabb.runtime")
local config = require("core.config")
local link = require("core.link")
local lib = require("core.lib")
local packet = require("core.packet")
local stats = require("core.stats")
local C = ffi.C

local M = {}

-- Settings a program may change before main().
M.busywait = true       -- poll without sleeping; false: back off up to 100 us while idle (Snabb's
                        -- default is false; ours polls, for speed)
M.Hz = false            -- a number: breathe that many times a second (Snabb's engine.Hz)
M.tick_Hz = 1000        -- how often app:tick() runs (Snabb's name)
-- An app's error (in new, reconfig, link, pull, push or tick) ends the run, as in Snabb: configure
-- or main raises it. With restart_on_error (snabb run and snabb bench set it), the app is left
-- out instead, the rest of the graph keeps running, and it is started again after restart_delay.
M.restart_on_error = false
M.restart_delay = 1.0   -- seconds before a failed app is started again
M.pull_burst = 512      -- packets our source apps produce per pull (half a link: fewer calls per packet)
-- Snabb's packets per pull (floor of its 1,023-packet links / 10), what Snabb's apps size their
-- pulls by; they rely on it being that small (apps.lwaftr asserts its lookup queue of 128 holds it).
M.pull_npackets = 102
-- Optional hooks, set by observe.observe when profiling: profile_zone(app name) -> vmprofile zone id for
-- the app's calls (may raise: configure then changes nothing); profile_zone_release(app name) when
-- the app has left the graph; on_tick() runs after the apps' ticks; on_stop() before stop() stops
-- the apps; on_leave(names) when apps are about to leave the graph for good (their counters are
-- final).
M.profile_zone = nil
M.profile_zone_release = nil
M.on_leave = nil
M.on_tick = nil
M.on_stop = nil
-- on_publish(nodes): may add nodes to the graph (the list set_graph takes) each time it is handed
-- to the C++ engine (apps.tap's taps); republish() hands it over again, between slices.
M.on_publish = nil
-- on_slice() runs between main()'s slices (at most 1 ms apart): observe.control answers the
-- control server's requests there.
M.on_slice = nil
M.log = function (msg) io.stderr:write(msg, "\n") end
-- (Snabb's engine.log is a flag, true to log configure's actions: a program may set it so.)
local function log (msg)
   if type(M.log) == "function" then M.log(msg) else io.stderr:write(msg, "\n") end
end

-- Snabb's: the exit status of a selftest that cannot run here (no hardware, no privileges).
M.test_skipped_code = 43
-- Snabb's profiling and logging switches: vmprofile zones here are per app, given by
-- observe.observe, and the auditlog is `snabb -a`; these are accepted and do nothing.
M.vmprofile_enabled = true
M.auditlog_enabled = false
M.program_name = false
function M.setvmprofile () end
function M.clearvmprofiles () end
function M.enable_auditlog () end
function M.enable_tick () end
function M.randomize_log_rate () end
-- Snabb's engine.breaths counter (read with counter.read, whose counters are a uint64_t `c`): the
-- C++ engine's count of breaths, read in place.
M.breaths = ffi.cast("struct { uint64_t c; } *", ffi.cast("uint8_t *", C.snabb_engine_stats()) +
                     ffi.offsetof("struct engine_stats", "breaths"))
-- Snabb's timeline of engine events (core.timeline's, events.timeline), made on first use.
local timeline_log
function M.timeline ()
   if timeline_log == nil then
      local timeline = require("core.timeline")
      timeline_log = timeline.new("events.timeline")
      if timeline.rate then timeline.rate(timeline_log, 9) end
   end
   return timeline_log
end

M.app_table = {}        -- app name -> running app object
M.link_table = {}       -- "a.out -> b.in" -> struct link *
M.configuration = config.new()

local apps = {}         -- app name -> {class, arg, where, object, stats, failed, restart_at}
local now = runtime.now
M.now = now

local function address (cdata) return tonumber(ffi.cast("uintptr_t", ffi.cast("void *", cdata))) end

-- "basic.basic_apps.Source": where the class is found among the loaded modules ("interlink.receiver"
-- for a module that is the class); for a class that is in none (e.g. defined in the config file
-- itself), the file where the app was configured.
local function class_name (class, where)
   if class.native then return class.native end
   for module, t in pairs(package.loaded) do
      if t == class then return (module:gsub("^apps%.", "")) end
      if type(t) == "table" and module ~= "_G" then
         for k, v in pairs(t) do
            if v == class then return (module:gsub("^apps%.", "")) .. "." .. k end
         end
      end
   end
   return where and where:match("^(.-):%d+$") or "-"
end

-- Where a traceback reaches the engine's own frames, below the app's method.
local engine_frames = "\n%s*%[C%]: in function 'xpcall'\n%s*" ..
   debug.getinfo(1, "S").short_src:gsub("%p", "%%%0") .. ":"

-- An error raised at a Lua source position (a bug, or error() at a level) gets a traceback (down
-- to the app's method); one raised without one (error(message, 0): a complete report, e.g.
-- "file.pcap: empty file", or a data file's line, "routes.txt:2: no port 'p7'") is shown as it is.
local function app_traceback (err)
   if type(err) ~= "string" then return lib.error_message(err, 3) end -- error({}): its line, described
   if not (err:match("^[^\n]-%.lua:%d+: ") or err:match("^%[string [^\n]-:%d+: ")) then return err end
   local traceback = debug.traceback(err, 3)
   local cut = traceback:find(engine_frames)
   return cut and traceback:sub(1, cut - 1) or traceback
end

-- Calls object:method(...) and returns its results; an error names the app and the method.
local function call_app (name, object, method, ...)
   local results = {xpcall(object[method], app_traceback, object, ...)}
   if not results[1] then
      error(("app '%s': %s failed: %s"):format(name, method, tostring(results[2])), 0)
   end
   return unpack(results, 2)
end

-- An app may hand pull/push to C (vm/lua_app.h): fields with an FFI C function each and the
-- pointer they are called with.
local C_METHOD_FIELDS = {"c_pull", "c_push", "c_arg"}

local function instantiate (name, spec)
   local class, arg = spec.class, spec.arg
   if class.native then
      return {native = runtime.native_new(class.native), appname = name}
   end
   if type(class.config) == "table" and not spec.parsed then
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
         if object.stop then pcall(object.stop, object) end -- what new took (it is retried)
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
         runtime.native_delete(object.native)
      elseif object.stop then
         local ok, err = pcall(call_app, name, object, "stop")
         if not ok then log("engine: " .. err) end
      end
      if type(object.shm) == "table" and object.shm.specs and package.loaded["core.shm"] then
         local ok, err = pcall(package.loaded["core.shm"].delete_frame, object.shm)
         if not ok then log(("engine: app '%s': deleting its shm frame: %s"):format(name, tostring(err))) end
      end
   end
   a.object = nil
   M.app_table[name] = nil
end

local function start_app (name, spec)
   local a = apps[name]
   a.class, a.arg, a.where = spec.class, spec.arg, spec.where
   a.failed, a.restart_at = false, nil
   local object = instantiate(name, spec)
   -- Snabb's app fields: the ports (by name and, in the order linked, by number) and an own copy
   -- of the class's push_link methods, which link() may extend.
   object.input, object.output = {}, {}
   local push_link = spec.class.push_link
   if push_link ~= nil and not object.native then
      if type(push_link) ~= "table" then
         error(("app '%s': push_link is a %s, not a table of methods"):format(name, type(push_link)), 0)
      end
      local copy = {}
      for port, method in pairs(push_link) do copy[port] = method end
      object.push_link = copy
   end
   -- Snabb's app shm: a table of specs ({counter}, {counter, initial}, ...) that becomes a frame of
   -- shared-memory objects under apps/NAME (core.shm's create_frame), with dtime, the start time.
   if type(object.shm) == "table" and not object.native then
      local shm, counter = require("core.shm"), require("core.counter")
      object.shm.dtime = object.shm.dtime or {counter, os.time()}
      local ok, frame = pcall(shm.create_frame, "apps/" .. name, object.shm)
      if not ok then
         if object.stop then pcall(object.stop, object) end
         error(("app '%s': its shm frame: %s"):format(name, lib.error_message(frame)), 0)
      end
      object.shm = frame
   end
   a.object = object
   M.app_table[name] = object
end

-- An app that raised an error in new, reconfig, link, pull, push or tick: the engine stops calling
-- it and starts it again after restart_delay.
local function mark_failed (name)
   apps[name].failed = true
   apps[name].restart_at = M.restart_on_error and now() + M.restart_delay or nil
end

-- The first error of each app, for failures(): its message and its place among first errors.
local errors_seen = 0
local function note_error (name, message)
   local a = apps[name]
   if a and not a.first_error then
      errors_seen = errors_seen + 1
      a.first_error, a.first_error_order = message, errors_seen
   end
end
local retired = {}      -- failures() of apps that have left the graph
-- What links freed by configure had received (packets, bytes, bits on the wire): report_load's.
local retired_load = {packets = 0, bytes = 0, bits = 0}
-- The counters of the links configure has freed, summed (retired_link_stats()): their txdrop
-- includes the packets still queued in them that no link of the new graph took over (dropped).
local retired_links = {links = 0, txpackets = 0, txbytes = 0, rxpackets = 0, rxbytes = 0,
                       txdrop = 0, carried = 0, dropped = 0}
-- The apps that have left the graph, their packets summed (retired_app_stats()), and those of the
-- ones that were sources (fed no link, fed links) and sinks (the other way round) when they left.
local retired_apps = {apps = 0, packets_in = 0, packets_out = 0, source_packets_out = 0,
                      sink_packets_in = 0}

-- An app's error during configure (new, reconfig, link): counted, marked, added to `failures`.
local function configure_failed (name, message, failures)
   apps[name].stats.errors = apps[name].stats.errors + 1
   note_error(name, message)
   mark_failed(name)
   failures[#failures+1] = {name, message}
end

-- Apps ordered so that each comes before the apps it feeds (Kahn's algorithm, with a queue: a scan
-- of every name per app placed took 0.36 s for a chain of 10,000 against name order, growing with
-- the square; this takes 0.05 s); cycles are cut in name order.
local function breath_order (c)
   local indegree, successors, names = {}, {}, {}
   for name in pairs(c.apps) do indegree[name], successors[name] = 0, {}; names[#names+1] = name end
   table.sort(names)
   local specs = {}
   for spec, l in pairs(c.links) do if l.from_app ~= l.to_app then specs[#specs+1] = spec end end
   table.sort(specs) -- so that the order does not depend on the order of pairs()
   for _, spec in ipairs(specs) do
      local l = c.links[spec]
      table.insert(successors[l.from_app], l.to_app)
      indegree[l.to_app] = indegree[l.to_app] + 1
   end
   local order, placed, queue, head, tail, first_unplaced = {}, {}, {}, 1, 0, 1
   for _, name in ipairs(names) do
      if indegree[name] == 0 then tail = tail + 1; queue[tail] = name end
   end
   for i = 1, #names do
      if head > tail then -- only cycles are left: take the first unplaced app and carry on
         while placed[names[first_unplaced]] do first_unplaced = first_unplaced + 1 end
         tail = tail + 1; queue[tail] = names[first_unplaced]
      end
      local name = queue[head]
      head = head + 1
      order[i], placed[name] = name, true
      for _, s in ipairs(successors[name]) do
         indegree[s] = indegree[s] - 1
         if indegree[s] == 0 and not placed[s] then tail = tail + 1; queue[tail] = s end
      end
      while head <= tail and placed[queue[head]] do head = head + 1 end
   end
   return order
end

-- Ports an app looked for that no link has (a misspelt port: "input" looked up while the link is
-- on "inptu"), recorded by a metatable on its input/output tables (its __index runs only for
-- absent names) until check_ports() has judged every new link.
local looked_up = {}    -- app name -> {input = {port = true}, output = {...}}
local unchecked = {}    -- link spec -> true: links made and not yet judged
local next_port_check, port_check_end = 0, 0

local function record_misses (t, misses)
   return setmetatable(t, {__index = function (_, k)
      if type(k) == "string" then misses[k] = true end
   end})
end

local zones = {}        -- app name -> vmprofile zone (from M.profile_zone)
local tickers = {}      -- names of the apps with a tick method, in breath order
local next_restart = math.huge -- when the first failed app is due to be restarted

-- Whether a method reads a second argument (declares it, or takes ...): only then is the link
-- passed, which costs a push call 8 ns (Source -> Tee -> Sink, 8 packets a breath: 321 ns a breath
-- with the argument, 300 without, as before push took one).
local function takes_link (method)
   local info = debug.getinfo(method, "u")
   return info.nparams == nil or info.nparams >= 2 or info.isvararg
end

-- The push entries of a Lua app (runtime_binding.cc's set_graph): for its input links in port
-- order, push_link[port] or push, called with the link, as Snabb calls them; links in a row with
-- the same method make one entry (called with the first), so a plain push is called once a breath.
local function push_entries (object, inputs)
   if object.c_push then
      local links = {}
      for i, input in ipairs(inputs) do links[i] = address(input[2]) end
      return {{links = links}}
   end
   local entries, last = {}, nil
   for _, input in ipairs(inputs) do
      local port, l = input[1], input[2]
      local method = type(object.push_link) == "table" and object.push_link[port] or object.push
      if type(method) == "function" then
         if last and last.method == method then
            table.insert(last.links, address(l))
         else
            last = {links = {address(l)}, method = method, link = takes_link(method) and l or nil}
            entries[#entries+1] = last
         end
      end
   end
   return entries
end

-- Hands the graph of the Lua tables to the C++ engine; from then on the engine refers to exactly
-- the apps, stats and links that the tables hold.
local function publish_graph ()
   local c = M.configuration
   local ports = {}        -- app name -> {input = {{port, link}...}, output = {...}}, by port
   for name in pairs(c.apps) do ports[name] = {input = {}, output = {}} end
   for spec, l in pairs(c.links) do
      local r = M.link_table[spec]
      table.insert(ports[l.from_app].output, {l.from_port, r})
      table.insert(ports[l.to_app].input, {l.to_port, r})
   end
   local function by_port (x, y) return x[1] < y[1] end
   local nodes = {}
   tickers, next_restart = {}, math.huge
   for _, name in ipairs(breath_order(c)) do
      local a = apps[name]
      if a.object then
         local node = {name = name, stats = address(a.stats), failed = a.failed,
                       inputs = {}, outputs = {}, zone = zones[name]}
         if a.object.native then node.native = a.object.native else node.app = a.object end
         for _, field in ipairs(C_METHOD_FIELDS) do
            if a.object[field] then node[field] = address(a.object[field]) end
         end
         for _, direction in ipairs({"input", "output"}) do
            local list = ports[name][direction]
            table.sort(list, by_port)
            for i, port in ipairs(list) do node[direction .. "s"][i] = address(port[2]) end
         end
         if not a.object.native then node.push = push_entries(a.object, ports[name].input) end
         nodes[#nodes+1] = node
         if a.object.tick and not a.object.native then tickers[#tickers+1] = name end
      end
      if a.failed and a.restart_at then next_restart = math.min(next_restart, a.restart_at) end
   end
   if M.on_publish then M.on_publish(nodes) end
   runtime.set_graph(nodes)
end
function M.republish () publish_graph() end

-- Calls object:link(direction, port) (or, for a port going away, unlink(direction, port), or
-- link() when the app has no unlink), as Snabb does for each link added to or removed from an
-- app; an error marks the app failed and is added to `failures`.
local function notify_link (name, method, direction, port, failures)
   local a = apps[name]
   local object = a and a.object
   if not object or object.native or a.failed then return end
   if method == "unlink" and not object.unlink then method = "link" end
   if object[method] then
      local ok, err = pcall(call_app, name, object, method, direction, port)
      if not ok then configure_failed(name, err, failures) end
   end
end

-- Takes link `r` off an app's port (by name and from the numbered list), then tells the app.
local function detach (name, direction, port, r, failures)
   local object = apps[name] and apps[name].object
   if not object then return end
   local t = object[direction]
   rawset(t, port, nil)
   for i = 1, #t do
      if rawequal(t[i], r) or t[i] == r then table.remove(t, i) break end
   end
   notify_link(name, "unlink", direction, port, failures)
end

-- Puts link `r` on an app's port (by name, and at the end of the numbered list), then tells it.
local function attach (name, direction, port, r, failures)
   local object = apps[name] and apps[name].object
   if not object then return end
   local t = object[direction]
   rawset(t, port, r)
   t[#t+1] = r
   notify_link(name, "link", direction, port, failures)
end

-- Records the ports each Lua app looks for (a metatable's __index on its input/output tables
-- sees only absent names) until check_ports() has judged every new link.
local function watch_ports ()
   looked_up = {}
   for name, a in pairs(apps) do
      local object = a.object
      if object and not object.native then
         looked_up[name] = {input = {}, output = {}}
         for _, direction in ipairs({"input", "output"}) do
            if type(object[direction]) == "table" and getmetatable(object[direction]) == nil then
               record_misses(object[direction], looked_up[name][direction])
            end
         end
      end
   end
end

-- What configure(old -> c) does, worked out before anything is done (Snabb's
-- compute_config_actions): apps to stop, to start (both: a restart), to reconfigure in place; links
-- to make and to free. Sorted, so the same configs give the same actions in the same order.
local function plan (old, c)
   local stop, start, reconfig, new_links, dead_links = {}, {}, {}, {}, {}
   for name, spec in pairs(old.apps) do
      local new = c.apps[name]
      if not new or new.class ~= spec.class then
         stop[#stop+1] = name
         if new then start[#start+1] = name end
      elseif not lib.equal(new.arg, spec.arg) then
         local a = apps[name]
         if a.object and a.object.reconfig and not a.failed then
            reconfig[#reconfig+1] = name
         else
            stop[#stop+1], start[#start+1] = name, name
         end
      end
   end
   for name in pairs(c.apps) do
      if not old.apps[name] then start[#start+1] = name end
   end
   for spec in pairs(old.links) do
      if not c.links[spec] then dead_links[#dead_links+1] = spec end
   end
   for spec in pairs(c.links) do
      if not old.links[spec] then new_links[#new_links+1] = spec end
   end
   for _, t in ipairs({stop, start, reconfig, new_links, dead_links}) do table.sort(t) end
   return {stop = stop, start = start, reconfig = reconfig, new_links = new_links,
           dead_links = dead_links}
end
-- Interpreted: the trace LuaJIT 2.1 (Debian's 2022-03-20 snapshot) compiles for the loop above,
-- with lib.equal's own pairs() loops inside, crashed (SIGSEGV in the trace at a 32-bit address)
-- in 4 of 80 runs of tests/reconfig_check.lua (100 configures each), with this file's carrying
-- of packets and without; 0 of 60 interpreted. configure calls plan once: nothing measurable.
jit.off(plan)

-- The packets still queued in links that configure removes are handed to the link of the new
-- graph into the same input port (they were on their way there: a link whose writer changed),
-- else to the one out of the same output port (a link moved to another reader), in order, ahead
-- of anything sent later; a port carries one link, so there is at most one of each. The new link
-- is synced at once, so the packets count in its txpackets (and its txdrop if they do not fit),
-- not as an app's output. What has neither stays queued and is dropped, counted, with the link.
local function carry_queued (old, c, dead_links)
   local into, out_of
   for _, spec in ipairs(dead_links) do
      local from = M.link_table[spec]
      if not link.empty(from) then
         if not into then
            into, out_of = {}, {}
            for s, l in pairs(c.links) do
               into[l.to_app .. "." .. l.to_port] = s
               out_of[l.from_app .. "." .. l.from_port] = s
            end
         end
         local l = old.links[spec]
         local heir = into[l.to_app .. "." .. l.to_port] or out_of[l.from_app .. "." .. l.from_port]
         local to = heir and M.link_table[heir]
         if to then
            local n = link.nreadable(from)
            for _ = 1, n do link.transmit(to, link.receive(from)) end
            C.snabb_link_sync(to)
            retired_links.carried = retired_links.carried + n
         end
      end
   end
end

-- Carries out a plan, in Snabb's order: links going away are taken off their apps (unlink), apps
-- are stopped, started and reconfigured, and new links (all links of a started app) are put on
-- their apps (link(direction, port), outputs then inputs, in port order). Apps' errors (new,
-- reconfig, link, unlink) are caught app by app: such an app is marked failed (new() failing: left
-- out) and restarted after restart_delay, and the failures are returned as {name, message}. The
-- C++ engine is handed an empty graph first, so that it never refers to an app being stopped or a
-- link being freed; links are freed only after the new graph is published.
local function apply (c, p)
   runtime.set_graph({})
   local old, failures = M.configuration, {}
   for _, spec in ipairs(p.dead_links) do
      local l, r = old.links[spec], M.link_table[spec]
      detach(l.from_app, "output", l.from_port, r, failures)
      detach(l.to_app, "input", l.to_port, r, failures)
   end
   local fed, feeding -- apps of the old graph that links feed, and that feed links
   for _, name in ipairs(p.stop) do
      stop_app(name)
      if not c.apps[name] then
         if apps[name].stats.errors > 0 then retired[#retired+1] = M.failures({name})[1] end
         if not fed then
            fed, feeding = {}, {}
            for _, l in pairs(old.links) do fed[l.to_app], feeding[l.from_app] = true, true end
         end
         local s = apps[name].stats
         retired_apps.apps = retired_apps.apps + 1
         retired_apps.packets_in = retired_apps.packets_in + tonumber(s.packets_in)
         retired_apps.packets_out = retired_apps.packets_out + tonumber(s.packets_out)
         if feeding[name] and not fed[name] then
            retired_apps.source_packets_out = retired_apps.source_packets_out + tonumber(s.packets_out)
         elseif fed[name] and not feeding[name] then
            retired_apps.sink_packets_in = retired_apps.sink_packets_in + tonumber(s.packets_in)
         end
         stats.app_free(apps[name].stats)
         apps[name] = nil
      end
   end
   for _, spec in ipairs(p.new_links) do M.link_table[spec] = link.new(spec); unchecked[spec] = true end
   if #p.new_links > 0 then next_port_check, port_check_end = 0, now() + 10 end
   -- The running configuration is a copy, as Snabb's is its own: a program may change its config
   -- (config.app, config.link) and configure it again, and the changes are seen.
   M.configuration = {apps = {}, links = {}}
   for name, spec in pairs(c.apps) do M.configuration.apps[name] = spec end
   for spec, l in pairs(c.links) do M.configuration.links[spec] = l end
   local fresh = {}
   for _, name in ipairs(p.start) do
      apps[name] = apps[name] or {stats = stats.app(name)}
      local ok, err = pcall(start_app, name, c.apps[name])
      if not ok then configure_failed(name, err, failures) end
      fresh[name] = true
   end
   for _, name in ipairs(p.reconfig) do
      local a = apps[name]
      a.arg = c.apps[name].arg
      local ok, err = pcall(call_app, name, a.object, "reconfig", a.arg)
      if not ok then configure_failed(name, err, failures) end
   end
   local new_link = {}
   for _, spec in ipairs(p.new_links) do new_link[spec] = true end
   for _, side in ipairs({{"output", "from_app", "from_port"}, {"input", "to_app", "to_port"}}) do
      local direction, app_field, port_field = unpack(side)
      local todo = {}
      for spec, l in pairs(c.links) do
         if new_link[spec] or fresh[l[app_field]] then todo[#todo+1] = {l[app_field], l[port_field], spec} end
      end
      table.sort(todo, function (x, y) return x[1] < y[1] or x[1] == y[1] and x[2] < y[2] end)
      for _, t in ipairs(todo) do attach(t[1], direction, t[2], M.link_table[t[3]], failures) end
   end
   watch_ports()
   publish_graph()
   if #p.dead_links > 0 then carry_queued(old, c, p.dead_links) end
   for _, spec in ipairs(p.dead_links) do
      local queued = link.nreadable(M.link_table[spec]) -- (none unless nothing took them over)
      local st = link.stats(M.link_table[spec])
      for _, k in ipairs({"txpackets", "txbytes", "rxpackets", "rxbytes", "txdrop"}) do
         retired_links[k] = retired_links[k] + st[k]
      end
      retired_links.links = retired_links.links + 1
      retired_links.txdrop = retired_links.txdrop + queued
      retired_links.dropped = retired_links.dropped + queued
      retired_load.packets = retired_load.packets + st.rxpackets
      retired_load.bytes = retired_load.bytes + st.rxbytes
      retired_load.bits = retired_load.bits + (st.rxbytes + st.rxpackets * 24) * 8
      link.free(M.link_table[spec])
      M.link_table[spec] = nil
   end
   return failures
end

-- After an error of the engine itself (not an app's: those apply() catches), stops every app and
-- frees every link, so that the C++ engine and the tables agree on an empty graph.
local function stop_everything ()
   runtime.set_graph({})
   local names = {}
   for name in pairs(apps) do names[#names+1] = name end
   table.sort(names)
   for _, name in ipairs(names) do stop_app(name) stats.app_free(apps[name].stats) end
   for _, l in pairs(M.link_table) do link.free(l) end
   apps, M.app_table, M.link_table, M.configuration = {}, {}, {}, config.new()
   tickers, next_restart = {}, math.huge
end

-- apply(), or when that fails with an error of its own, stop_everything() and an error saying so.
local function apply_or_stop (c, p)
   local ok, result = xpcall(apply, debug.traceback, c, p)
   if ok then return result end
   local stopped, err = pcall(stop_everything)
   error(("engine: configure failed (%s); %s"):format(result, stopped and
      "every app was stopped and every link freed" or "stopping the apps failed too: " .. err), 0)
end

-- Gets (through M.profile_zone, which keeps one per name) the profile zone of every app of `c`;
-- with `done` (once `c` runs), gives back those of the apps that have left the graph.
local function update_zones (c, done)
   if done then
      for name in pairs(zones) do
         if not c.apps[name] then
            if M.profile_zone_release then M.profile_zone_release(name) end
            zones[name] = nil
         end
      end
   elseif M.profile_zone then
      for name in pairs(c.apps) do zones[name] = M.profile_zone(name) end
   else
      zones = {}
   end
end

-- Makes the running graph equal to `c`: stops removed apps, starts new ones, reconfigures (or
-- restarts) changed ones, and keeps the links, and the packets in them, that both configs share.
-- A config that fails its checks, or a limit, changes nothing. An app whose new, reconfig or link
-- raises an error is left failed, the rest of `c` runs, the app is restarted after restart_delay,
-- and configure raises that error (the first one; others are logged).
function M.configure (c)
   config.check(c)
   if runtime.running() then
      error("engine.configure: called from inside an app's pull or push; configure the engine " ..
            "between runs (e.g. from tick, or after engine.main returns)", 2)
   end
   local old = M.configuration
   local p = plan(old, c)
   local ok, err = pcall(update_zones, c)
   if not ok then
      update_zones(old, true) -- zones handed out for apps of `c` that are not running
      error(err, 0)
   end
   if M.on_leave then
      local leaving = {}
      for _, name in ipairs(p.stop) do
         if not c.apps[name] then leaving[#leaving+1] = name end
      end
      if #leaving > 0 then M.on_leave(leaving) end
   end
   local failures = apply_or_stop(c, p)
   update_zones(c, true)
   for i = 2, #failures do log("engine: " .. failures[i][2]) end
   if failures[1] then error(failures[1][2], 0) end
end

local function app_failed (name, method, message)
   local a = apps[name]
   if not a then return end
   -- The traceback below the engine's own frames says nothing about the app.
   message = message:gsub("\n%s*%[C%]: in function 'run'.*$", "")
   local report = ("app '%s' failed in %s: %s"):format(name, method, message)
   mark_failed(name)
   note_error(name, report)
   publish_graph()
   if not M.restart_on_error then return report end
   log("engine: " .. report)
   log(("engine: restarting app '%s' in %.1f s; the rest of the graph keeps running"):format(
      name, M.restart_delay))
end

-- Every app that failed in the last run or breath (several may fail in one breath; the last one is
-- what runtime.run returned).
-- Without restart_on_error, raises the first (the others are logged).
local function report_failures (app, method, message)
   local n = C.snabb_engine_failure_count()
   local fatal = {}
   if n == 0 then
      fatal[1] = app_failed(app, method, message)
   else
      for i = 0, n - 1 do
         fatal[#fatal+1] = app_failed(ffi.string(C.snabb_engine_failure(i, 0)),
                                      ffi.string(C.snabb_engine_failure(i, 1)),
                                      ffi.string(C.snabb_engine_failure(i, 2)))
      end
   end
   for i = 2, #fatal do log("engine: " .. fatal[i]) end
   if fatal[1] then error(fatal[1], 0) end
end

-- Restarts the failed apps whose restart_delay has passed (stop, new, link), as a configure would.
local function restart_due_apps (t)
   if t < next_restart then return end
   local due = {}
   for name, a in pairs(apps) do
      if a.failed and a.restart_at and t >= a.restart_at then due[#due+1] = name end
   end
   table.sort(due)
   local failures = apply_or_stop(M.configuration, {stop = due, start = due, reconfig = {},
                                                    new_links = {}, dead_links = {}})
   local failed = {}
   for _, failure in ipairs(failures) do
      failed[failure[1]] = true
      log(("engine: app '%s' could not be restarted: %s"):format(failure[1], failure[2]))
   end
   for _, name in ipairs(due) do
      if not failed[name] then log(("engine: app '%s' restarted"):format(name)) end
   end
end

local function tick_apps ()
   for _, name in ipairs(tickers) do -- (a tick may configure: then apps may have gone)
      local a = apps[name]
      local object = a and a.object
      if object and not a.failed then
         local in_use = packet.in_use() -- what the tick frees counts as the app's (app_stats.freed)
         local ok, err = xpcall(object.tick, debug.traceback, object)
         a.stats.freed = a.stats.freed + (in_use - packet.in_use())
         if not ok then
            a.stats.errors = a.stats.errors + 1
            local fatal = app_failed(name, "tick", err)
            if fatal then error(fatal, 0) end
         end
      end
   end
end

-- Whether two port names are at most two edits apart (Levenshtein): "inptu" and "input" are.
local function near (a, b)
   if math.abs(#a - #b) > 2 then return false end
   local previous = {}
   for j = 0, #b do previous[j] = j end
   for i = 1, #a do
      local row = {[0] = i}
      for j = 1, #b do
         row[j] = math.min(previous[j] + 1, row[j-1] + 1,
                           previous[j-1] + (a:byte(i) == b:byte(j) and 0 or 1))
      end
      previous = row
   end
   return previous[#b] <= 2
end

-- Once the graph has run (at the first tick after a configure): warns about each new link whose
-- port its app has not used, which a misspelt port name leaves silent when the class declares no
-- port list (with one, config.check refuses the name). A port is unused when packets wait on its
-- input that the app, called with them, has not read, or when the app has moved nothing through
-- it and looked for a port of that direction, with a name close to it, that no link has. A link
-- that has carried nothing yet is judged again every second, for 10 s.
local function check_ports (t)
   local c = M.configuration
   local specs, warned = {}, {}
   for spec in pairs(unchecked) do if c.links[spec] then specs[#specs+1] = spec end end
   table.sort(specs)
   unchecked, next_port_check = {}, t + 1
   for _, spec in ipairs(specs) do
      local l, s = c.links[spec], link.stats(M.link_table[spec])
      for _, side in ipairs({{"input", l.to_app, l.to_port, s.rxpackets},
                             {"output", l.from_app, l.from_port, s.txpackets}}) do
         local direction, name, port, moved = unpack(side)
         local a, misses = apps[name], looked_up[name]
         if misses and a.object and not a.failed and moved == 0 and not warned[spec] then
            local waiting = direction == "input" and link.nreadable(M.link_table[spec]) or 0
            local missed = {}
            for k in pairs(misses[direction]) do
               if near(k, port) then missed[#missed+1] = "'" .. k .. "'" end
            end
            table.sort(missed)
            if waiting > 0 or #missed > 0 then
               warned[spec] = true
               log(("engine: warning: link '%s': app '%s' has not used its %s port '%s'%s%s; "
                      .. "a misspelt port?"):format(spec, name, direction, port,
                  waiting > 0 and (" (%d packets wait on it%s)"):format(waiting,
                     a.object.push and "" or ", and it has no push method") or "",
                  #missed > 0 and (", and it looked for %s %s, which no link has"):format(
                     direction, table.concat(missed, ", ")) or ""))
            end
         end
      end
      if not warned[spec] and s.txpackets == 0 and t < port_check_end then unchecked[spec] = true end
   end
   if next(unchecked) then return end
   for name, misses in pairs(looked_up) do
      local object = apps[name] and apps[name].object
      for direction in pairs(misses) do
         if object and type(object[direction]) == "table" then setmetatable(object[direction], nil) end
      end
   end
   looked_up = {}
end

-- Runs the graph. options (Snabb's): duration (seconds), done (function: stop when it returns
-- true; with duration too, whichever comes first), report (true: our tables, as engine.report();
-- a table: Snabb's {showload, showlinks, showapps}), no_report (no load line at the end: without
-- report, main prints Snabb's report_load, which says something from its second call on),
-- measure_latency (accepted: breath latency is always measured), no_timers (core.timer's timers,
-- when a program uses them, run between breaths unless this is set). Without duration or done it
-- runs until SIGINT.
function M.main (options)
   options = options or {}
   local d = options.duration
   if d ~= nil and not (type(d) == "number" and d >= 0 and d < math.huge) then
      error(("engine.main: duration must be a finite number of seconds >= 0, got %s"):format(lib.describe(d)), 2)
   end
   local hz = M.Hz
   if hz and not (type(hz) == "number" and hz > 0) then
      error(("engine.Hz must be false or a number of breaths per second > 0, got %s"):format(lib.describe(hz)), 2)
   end
   local t = now()
   local deadline = options.duration and t + options.duration
   local done = options.done
   local tick_interval = 1 / M.tick_Hz
   local next_tick = t + tick_interval
   local timer = not options.no_timers and package.loaded["core.timer"]
   if type(timer) ~= "table" or type(timer.run) ~= "function" then timer = nil end
   runtime.catch_signals()
   repeat
      local slice_end = math.min(next_tick, deadline or math.huge)
      local ok, app, method, message = runtime.run(slice_end, M.busywait, hz or 0)
      if not ok then
         -- The pool at its cap: packets are leaking, which restarting an app seldom mends.
         local exhausted = packet.exhausted()
         if exhausted then
            M.stop()
            error(("%s (the last allocation was by app '%s')"):format(exhausted, app), 0)
         end
         report_failures(app, method, message)
      end
      t = now()
      if timer then timer.run() end
      if M.on_slice then M.on_slice() end
      if t >= next_tick then
         tick_apps()
         if (next(unchecked) or next(looked_up)) and t >= next_port_check then check_ports(t) end
         if M.on_tick then M.on_tick() end
         next_tick = t + tick_interval
         restart_due_apps(t)
      end
   until (done and done()) or (deadline and t >= deadline) or runtime.stop_requested()
   if options.report then
      M.report(options.report ~= true and options.report or nil)
   elseif not options.no_report then
      M.report_load()
   end
end

-- One breath, outside main() (Snabb's engine.breathe).
local moved = 0 -- packets the last breath moved
function M.breathe ()
   local ok, moved_or_app, method, message = runtime.breathe()
   if ok then moved = moved_or_app else report_failures(moved_or_app, method, message) end
end

-- Snabb's pace_breathing, for a program that runs its own loop of breathe() (lib.ptree's worker)
-- with busywait off: with Hz, sleeps until the next breath is due; otherwise, while breaths move
-- nothing, sleeps a microsecond longer each time, up to 100 us, as main() does.
local next_breath, idle_sleep_us = nil, 0
function M.pace_breathing ()
   local t = C.get_monotonic_time()
   if M.Hz then
      next_breath = next_breath or t
      if next_breath - t > 1e-6 then C.sleep_ns((next_breath - t) * 1e9) end
      next_breath = math.max(next_breath + 1 / M.Hz, t)
   elseif moved == 0 then
      idle_sleep_us = math.min(idle_sleep_us + 1, 100)
      C.sleep_ns(idle_sleep_us * 1000)
   else
      idle_sleep_us = 0
   end
end

local function sorted_keys (t)
   local keys = {}
   for k in pairs(t) do keys[#keys+1] = k end
   table.sort(keys)
   return keys
end

-- Snabb's configure in two steps, which lib.ptree uses to send a configuration to a worker as a
-- list of actions: compute_config_actions(old, new) gives Snabb's list ({name, {args}}: unlink_output,
-- unlink_input, free_link, stop_app, start_app, reconfig_app, new_link, link_output, link_input),
-- and apply_config_actions(actions) applies such a list to the running configuration (here: the
-- configuration they lead to is made, then configured, with configure's semantics).
function M.compute_config_actions (old, new)
   local actions = {}
   local function add (name, ...) actions[#actions+1] = {name, {...}} end
   for _, spec in ipairs(sorted_keys(old.links)) do
      if not new.links[spec] then
         local fa, fl, ta, tl = config.parse_link(spec)
         add("unlink_output", fa, fl)
         add("unlink_input", ta, tl)
         add("free_link", spec)
      end
   end
   for _, name in ipairs(sorted_keys(old.apps)) do
      if not new.apps[name] then add("stop_app", name) end
   end
   local fresh = {}
   for _, name in ipairs(sorted_keys(new.apps)) do
      local spec, previous = new.apps[name], old.apps[name]
      if not previous then
         add("start_app", name, spec.class, spec.arg)
         fresh[name] = true
      elseif previous.class ~= spec.class
         or not lib.equal(previous.arg, spec.arg) and not spec.class.reconfig then
         add("stop_app", name)
         add("start_app", name, spec.class, spec.arg)
         fresh[name] = true
      elseif not lib.equal(previous.arg, spec.arg) then
         add("reconfig_app", name, spec.class, spec.arg)
      end
   end
   for _, spec in ipairs(sorted_keys(new.links)) do
      local fa, fl, ta, tl = config.parse_link(spec)
      if not new.apps[fa] then error("no such app: " .. fa, 2) end
      if not new.apps[ta] then error("no such app: " .. ta, 2) end
      local fresh_link = not old.links[spec]
      if fresh_link then add("new_link", spec) end
      if fresh_link or fresh[fa] then add("link_output", fa, fl, spec) end
      if fresh_link or fresh[ta] then add("link_input", ta, tl, spec) end
   end
   return actions
end

function M.apply_config_actions (actions)
   local c = config.new()
   for name, spec in pairs(M.configuration.apps) do c.apps[name] = spec end
   for spec, l in pairs(M.configuration.links) do c.links[spec] = l end
   for _, action in ipairs(actions) do
      local name, args = action[1], action[2]
      if name == "start_app" or name == "reconfig_app" then
         local app, class, arg = unpack(args)
         local old = c.apps[app]
         c.apps[app] = {class = class, arg = arg, where = old and old.where or "apply_config_actions"}
      elseif name == "stop_app" then
         c.apps[args[1]] = nil
      elseif name == "new_link" then
         local fa, fl, ta, tl = config.parse_link(args[1])
         c.links[config.format_link(fa, fl, ta, tl)] = {from_app = fa, from_port = fl, to_app = ta,
                                                      to_port = tl, where = "apply_config_actions"}
      elseif name == "free_link" then
         c.links[args[1]] = nil
      elseif not (name == "link_output" or name == "link_input" or name == "unlink_output"
                  or name == "unlink_input") then
         error(("engine.apply_config_actions: unknown action '%s'"):format(tostring(name)), 2)
      end
   end
   M.configure(c)
end

-- Stops every app and frees every link.
function M.stop ()
   if M.on_stop then M.on_stop() end
   M.configure(config.new())
end

-- Per-app and per-link figures (also used by programs that print their own reports); app_stats
-- of the apps named in the list `names` only, when given. share: the app's part of the cycles of
-- the apps listed.
function M.app_stats (names)
   local result, cycles = {}, 0
   for _, name in ipairs(names or sorted_keys(apps)) do
      local s = apps[name].stats
      local packets = math.max(tonumber(s.packets_in), tonumber(s.packets_out))
      local busy = tonumber(s.cycles - s.idle_cycles)
      result[#result+1] = {name = name, class = class_name(apps[name].class, apps[name].where),
                           calls = tonumber(s.calls), cycles = tonumber(s.cycles),
                           idle_cycles = tonumber(s.idle_cycles),
                           packets_in = tonumber(s.packets_in), packets_out = tonumber(s.packets_out),
                           errors = tonumber(s.errors), freed = tonumber(s.freed),
                           cycles_per_packet = packets > 0 and busy / packets or 0}
      cycles = cycles + tonumber(s.cycles)
   end
   for _, a in ipairs(result) do a.share = cycles > 0 and a.cycles / cycles or 0 end
   return result
end

-- The apps that raised errors (in new, reconfig, link, pull, push or tick), in the order of their
-- first error, as {name =, errors = count, message = the first error}; those of apps that have
-- left the graph too. Of the apps in the list `names` only, when given.
function M.failures (names)
   local result = {}
   for _, name in ipairs(names or sorted_keys(apps)) do
      local a = apps[name]
      if a.stats.errors > 0 then
         result[#result+1] = {name = name, errors = tonumber(a.stats.errors), order = a.first_error_order or 0,
                              message = a.first_error or "(no message)"}
      end
   end
   if not names then for _, f in ipairs(retired) do result[#result+1] = f end end
   table.sort(result, function (x, y) return x.order < y.order end)
   return result
end

-- The links configure has freed so far, their counters summed (as link_stats gives them):
-- {links =, txpackets =, txbytes =, rxpackets =, rxbytes =, txdrop =, carried = packets handed to
-- a link of the new graph, dropped = packets still queued that no link took (part of txdrop)}.
-- Packets in = out + txdrop of every link, live and freed, + queued in live links.
function M.retired_link_stats ()
   local t = {}
   for k, v in pairs(retired_links) do t[k] = v end
   return t
end

-- The apps that have left the graph so far: {apps =, packets_in =, packets_out =,
-- source_packets_out = of those that were sources (fed by no link, feeding links) when they left,
-- sink_packets_in = of those that were sinks}: what `snabb run`'s summary adds to the running
-- graph's sources and sinks.
function M.retired_app_stats ()
   local t = {}
   for k, v in pairs(retired_apps) do t[k] = v end
   return t
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

-- The apps' and links' tables of a report, in the order given (rows as app_stats and link_stats
-- make them): `snabb run --report` (engine.report) and `snabb bench` print these. idle: the part of
-- the app's time spent in calls that moved no packet.
function M.report_tables (app_rows, link_rows)
   local cv = lib.comma_value
   local rows = {}
   for i, a in ipairs(app_rows) do
      rows[i] = {a.name, a.class, cv(a.packets_in), cv(a.packets_out), cv(a.freed),
                 ("%.1f"):format(a.cycles_per_packet), ("%.1f%%"):format(100 * a.share), cv(a.errors),
                 ("%.1f%%"):format(a.cycles > 0 and 100 * a.idle_cycles / a.cycles or 0)}
   end
   local text = lib.table_text({"app", "class", "packets in", "packets out", "freed", "cycles/pkt",
                                "share", "errors", "idle"}, rows,
                               {false, false, true, true, true, true, true, true, true})
   rows = {}
   for i, l in ipairs(link_rows) do
      rows[i] = {l.link, cv(l.txpackets), cv(l.rxpackets), cv(l.txdrop), l.queued}
   end
   return text .. "\n" .. lib.table_text({"link", "txpackets", "rxpackets", "txdrop", "queued"}, rows,
                                         {false, true, true, true, true})
end

-- Without options (and with report = true in main): the apps' and links' tables, then what apps
-- have to say for themselves (drivers: device counters, link state). With Snabb's options table:
-- showload (report_load), showlinks (report_links), showapps (report_apps), as Snabb prints them.
function M.report (options)
   if type(options) == "table" then
      if options.showload then M.report_load() end
      if options.showlinks then M.report_links() end
      if options.showapps then M.report_apps() end
      return
   end
   local out = io.stdout
   out:write(M.report_tables(M.app_stats(), M.link_stats()))
   local first = true
   for _, name in ipairs(sorted_keys(apps)) do
      local object = apps[name].object
      if object and not object.native and object.report then
         if first then out:write("\n") first = false end
         local ok, err = pcall(call_app, name, object, "report")
         if not ok then log("engine: " .. err) end
      end
   end
end

-- Snabb's load line, from the second call on: packets received from links per second (fps; Snabb
-- counts packet frees, which the engine does not), in Gbps on the wire (with Ethernet's preamble,
-- gap and FCS, as Snabb's freebits), per breath (fpb), and bytes per packet (bpp).
local last_load = nil
function M.report_load ()
   local packets, bytes = 0, 0
   for _, l in ipairs(M.link_stats()) do
      packets, bytes = packets + l.rxpackets, bytes + l.rxbytes
   end
   local bits = (bytes + packets * (12 + 8 + 4)) * 8
   local current = {time = now(), packets = packets + retired_load.packets,
                    bytes = bytes + retired_load.bytes, bits = bits + retired_load.bits,
                    breaths = tonumber(C.snabb_engine_stats().breaths)}
   if last_load then
      local interval = current.time - last_load.time
      local frees = current.packets - last_load.packets
      local newbytes = current.bytes - last_load.bytes
      local breaths = current.breaths - last_load.breaths
      local bpp = math.floor(newbytes / frees)
      print(("load: time: %-2.2fs  fps: %-9s fpGbps: %-3.3f fpb: %-3s bpp: %-4s sleep: %-4dus"):format(
         interval, lib.comma_value(math.floor(frees / interval)),
         (current.bits - last_load.bits) / interval / 1e9,
         lib.comma_value(breaths > 0 and math.floor(frees / breaths) or 0),
         bpp ~= bpp and "-" or tostring(bpp), 0))
   end
   last_load = current
end

function M.report_links ()
   print("link report:")
   for _, l in ipairs(M.link_stats()) do
      local sent = l.txpackets - l.txdrop
      local loss = sent + l.txdrop > 0 and l.txdrop * 100 / (sent + l.txdrop) or 0
      print(("%20s sent on %s (loss rate: %d%%)"):format(lib.comma_value(sent), l.link, loss))
   end
end

function M.report_apps ()
   print("apps report:")
   for _, name in ipairs(sorted_keys(apps)) do
      local object = apps[name].object
      if object and not object.native and object.report then
         print(name)
         call_app(name, object, "report")
      end
   end
end

function M.selftest ()
   print("selftest: core.engine")
   -- Our basic apps, even where a user's apps/basic/basic_apps.lua wins the require (Snabb's tree).
   local basic = assert(package.compiled_in("apps.basic.basic_apps"))("apps.basic.basic_apps")
   M.restart_on_error = true -- (restarts are tested here; Snabb's fatal errors further down)
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
   assert(app("sink").packets_in == M.pull_burst, "one breath moves one pull's worth")
   M.main({duration = 0.05})
   check_links()
   assert(app("sink").packets_in > 0)
   -- At most one tick a millisecond (fewer when other processes take the CPU).
   assert(ticks >= 1 and ticks <= 51, ("tick_Hz 1000 over 50 ms: %d ticks"):format(ticks))
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
   -- A data file's line in a message raised whole is not a Lua position: no traceback.
   local BadFile = {}
   function BadFile:new () error("routes.txt:2: no port 'p7'", 0) end
   config.app(with_broken, "bad_file", BadFile)
   ok, err = pcall(M.configure, with_broken)
   assert(not ok and err:match("app 'bad_file': new failed: routes.txt:2: no port 'p7'$"), err)
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
   local logged, saved_log, saved_delay = {}, M.log, M.restart_delay
   M.log, M.restart_delay = function (msg) logged[#logged+1] = msg end, 0.05
   M.configure(c)
   local first = M.app_table.fails
   local sink_before = app("sink").packets_in
   M.main({duration = 0.3})
   M.log, M.restart_delay = saved_log, saved_delay
   local text = table.concat(logged, "\n")
   assert(text:match("app 'fails' failed in push: .*deliberate failure"), text)
   assert(text:match("stack traceback"), text)
   assert(text:match("app 'fails' restarted"), text)
   assert(M.app_table.fails ~= first, "a new instance after restart")
   assert(app("fails").errors >= 1 and app("sink").packets_in > sink_before)
   local failures = M.failures()
   local names = {}
   for i, f in ipairs(failures) do names[i] = f.name end
   -- (in the order of their first errors; broken, bad_file and c_app have left the graph)
   assert(table.concat(names, " ") == "broken bad_file c_app fails", table.concat(names, " "))
   assert(failures[1].message:match("app 'broken': new failed: .*no such device"), failures[1].message)
   assert(failures[4].errors == app("fails").errors and
          failures[4].message:match("^app 'fails' failed in push: .*deliberate failure"), failures[4].message)
   check_links()
   -- freed: net of allocations, so the source's is negative; Fails frees all it takes (also when
   -- it keeps them until its tick). failures() names the app with its first error.
   assert(app("fails").freed == app("fails").packets_in and app("fails").freed > 0)
   assert(app("source2").freed < 0 and app("sink").freed == app("sink").packets_in)

   -- Frees in tick count as the app's too: Keeper keeps what it receives until its next tick.
   local Keeper = {}
   function Keeper:new () return setmetatable({kept = {}}, {__index = Keeper}) end
   function Keeper:push ()
      local i = self.input.input
      for _ = 1, link.nreadable(i) do self.kept[#self.kept+1] = link.receive(i) end
   end
   function Keeper:tick ()
      for k = #self.kept, 1, -1 do packet.free(self.kept[k]); self.kept[k] = nil end
   end
   Keeper.stop = Keeper.tick
   c = graph(basic.Sink, 2)
   config.app(c, "source3", basic.Source)
   config.app(c, "keeper", Keeper)
   config.link(c, "source3.output -> keeper.input")
   M.configure(c)
   M.main({duration = 0.02})
   local kept = #M.app_table.keeper.kept
   assert(app("keeper").freed > 0 and app("keeper").freed + kept == app("keeper").packets_in,
          ("keeper: freed %d, kept %d, received %d"):format(app("keeper").freed, kept, app("keeper").packets_in))

   -- An app whose reconfig fails is left failed, then restarted with the new argument.
   function Tunable:reconfig (arg) if arg == "bad" then error("bad argument") end self.arg = arg end
   c = graph(basic.Sink, 2)
   M.configure(c)
   tunable = M.app_table.tunable
   M.log, M.restart_delay = function (msg) logged[#logged+1] = msg end, 0.02
   local ok_r, err_r = pcall(M.configure, graph(basic.Sink, "bad"))
   assert(not ok_r and err_r:match("app 'tunable': reconfig failed: .*bad argument"), err_r)
   assert(app("tunable").errors == 1)
   M.main({duration = 0.1})
   M.log, M.restart_delay = saved_log, saved_delay
   assert(M.app_table.tunable ~= tunable and M.app_table.tunable.arg == "bad", "restarted, new arg")

   -- Breath order: every app before the apps it feeds, whatever the names; cycles cut by name.
   local order_c = config.new()
   for _, name in ipairs({"z", "y", "x", "b", "a"}) do config.app(order_c, name, basic.Tee) end
   for _, spec in ipairs({"z.o -> y.i", "y.o -> x.i", "x.o -> b.i", "b.o -> a.i", "a.o -> b.i2"}) do
      config.link(order_c, spec)
   end
   local order = table.concat(breath_order(order_c), " ")
   assert(order == "z y x a b", "breath order: " .. order)

   -- configure from inside an app's push is refused; the graph stays as it was.
   local Reconfigures = {}
   function Reconfigures:new () return setmetatable({}, {__index = Reconfigures}) end
   function Reconfigures:pull () self.ok, self.err = pcall(M.configure, config.new()) end
   c = graph(basic.Sink, 2)
   config.app(c, "reconfigures", Reconfigures)
   M.configure(c)
   M.breathe()
   local r = M.app_table.reconfigures
   assert(not r.ok and r.err:match("inside an app's pull or push"), r.err)
   assert(M.app_table.sink and M.link_table["source.output -> sink.input"] == l)

   -- A limit hit while preparing (here: no profile zone left) changes nothing; the zones handed
   -- out for apps that did not start are given back.
   local handed, released = {}, {}
   M.profile_zone = function (name)
      if name == "one_too_many" then error("vmprofile: no zone left", 0) end
      handed[name] = true
      return 0
   end
   M.profile_zone_release = function (name) released[name] = true end
   c = graph(basic.Sink, 2)
   config.app(c, "new_app", basic.Sink)
   config.app(c, "one_too_many", basic.Sink)
   local ok_z, err_z = pcall(M.configure, c)
   M.profile_zone, M.profile_zone_release = nil, nil
   assert(not ok_z and err_z == "vmprofile: no zone left", err_z)
   assert(not M.app_table.new_app and M.link_table["source.output -> sink.input"] == l)
   assert(released.new_app or not handed.new_app, "new_app's zone given back")
   local sink_in = app("sink").packets_in
   M.breathe()
   assert(app("sink").packets_in > sink_in, "the graph still runs")

   -- configure from a tick is fine, also one that removes apps whose ticks are still to come.
   local Reconfigurer = {}
   function Reconfigurer:new () return setmetatable({}, {__index = Reconfigurer}) end
   function Reconfigurer:tick () M.configure(graph(basic.Sink, 2)) end
   c = graph(basic.Sink, 2)
   config.app(c, "a_reconfigurer", Reconfigurer)
   config.app(c, "z_ticks", Tunable, 1)
   M.configure(c)
   M.main({duration = 0.01})
   assert(M.app_table.a_reconfigurer == nil and M.app_table.z_ticks == nil and M.app_table.sink)

   -- An error of the engine itself in the middle of a configure (here: the C++ engine refusing the
   -- new graph) stops every app and frees every link rather than leave half a graph.
   local set_graph = runtime.set_graph
   runtime.set_graph = function (nodes)
      if #nodes > 0 then error("refused") end
      set_graph(nodes)
   end
   local sink_object = M.app_table.sink
   function sink_object.stop () sink_object.stopped = true end
   local ok_i, err_i = pcall(M.configure, graph(basic.Sink, 3))
   runtime.set_graph = set_graph
   assert(not ok_i and err_i:match("configure failed %(.*refused.*every app was stopped"), err_i)
   assert(sink_object.stopped and next(M.app_table) == nil and next(M.link_table) == nil)
   local packets = C.snabb_engine_stats().packets
   M.breathe()
   assert(C.snabb_engine_stats().packets == packets, "the C++ engine runs nothing")
   M.configure(graph(basic.Sink, 2))
   M.main({duration = 0.01})
   check_links()

   -- A misspelt port, on a class without port lists: a warning names the link, app and port, once.
   local Picky = {}
   function Picky:new () return setmetatable({}, {__index = Picky}) end
   function Picky:push ()
      local i, o = self.input.input, self.output.output
      if not i then return end
      for _ = 1, link.nreadable(i) do
         local p = link.receive(i)
         if o then link.transmit(o, p) else packet.free(p) end
      end
   end
   local function picky_graph (from, to)
      c = config.new()
      config.app(c, "source", basic.Source)
      config.app(c, "picky", Picky)
      config.app(c, "sink", basic.Sink)
      config.link(c, "source.output -> picky." .. from)
      config.link(c, "picky." .. to .. " -> sink.input")
      return c
   end
   for _, case in ipairs({
      {"inptu", "output", "link 'source.output %-> picky.inptu': app 'picky' has not used its input port "
          .. "'inptu' %(%d+ packets wait on it%), and it looked for input 'input', which no link has; "
          .. "a misspelt port%?"},
      {"input", "outptu", "link 'picky.outptu %-> sink.input': app 'picky' has not used its output port "
          .. "'outptu', and it looked for output 'output', which no link has; a misspelt port%?"},
      {"input", "output", nil}}) do
      logged = {}
      M.log = function (msg) logged[#logged+1] = msg end
      M.configure(picky_graph(case[1], case[2]))
      M.main({duration = 0.05})
      M.configure(picky_graph(case[1], case[2])) -- (unchanged: no second warning)
      M.main({duration = 0.01})
      M.log = saved_log
      text = table.concat(logged, "\n")
      if case[3] then
         assert(#logged == 1 and text:match("^engine: warning: " .. case[3] .. "$"), text)
      else
         assert(#logged == 0, text)
         assert(app("sink").packets_in > 0)
      end
      M.stop()
   end

   M.stop()
   assert(next(M.app_table) == nil and next(M.link_table) == nil)

   -- Snabb's link(direction, port) per link added, unlink(direction, port) per link removed (or
   -- link() when the app has no unlink), outputs first, in port order; the ports by name and,
   -- in the order linked, by number.
   local calls = {}
   local Recorder = {}
   function Recorder:new () return setmetatable({}, {__index = Recorder}) end
   function Recorder:link (direction, port)
      calls[#calls+1] = ("%s link %s %s #%d"):format(self.appname, direction, port, #self[direction])
      assert(self[direction][port] and self[direction][#self[direction]] == self[direction][port])
   end
   function Recorder:unlink (direction, port)
      calls[#calls+1] = ("%s unlink %s %s #%d"):format(self.appname, direction, port, #self[direction])
      assert(self[direction][port] == nil)
   end
   c = config.new()
   config.app(c, "r1", Recorder)
   config.app(c, "r2", Recorder)
   config.link(c, "r1.b -> r2.y")
   config.link(c, "r1.a -> r2.x")
   M.configure(c)
   assert(table.concat(calls, "; ") == "r1 link output a #1; r1 link output b #2; r2 link input x #1; "
          .. "r2 link input y #2", table.concat(calls, "; "))
   local r2 = M.app_table.r2
   calls = {}
   local c2 = config.new()
   config.app(c2, "r1", Recorder)
   config.app(c2, "r2", Recorder)
   config.link(c2, "r1.b -> r2.y")
   config.link(c2, "r1.c -> r2.w")
   M.configure(c2)
   assert(table.concat(calls, "; ") == "r1 unlink output a #1; r2 unlink input x #1; "
          .. "r1 link output c #2; r2 link input w #2", table.concat(calls, "; "))
   assert(M.app_table.r2 == r2 and r2.input[1] == r2.input.y and r2.input[2] == r2.input.w)
   M.stop()

   -- push_link methods (the class's, copied per app, and those link() adds) are called with their
   -- link, push(self, link) for the other inputs; every breath, packets or not.
   local pushed = {}
   local Mux = {push_link = {}}
   function Mux:new () return setmetatable({}, {__index = Mux}) end
   function Mux.push_link:native (input)
      pushed[#pushed+1] = "native " .. link.nreadable(input)
      while not link.empty(input) do packet.free(link.receive(input)) end
   end
   function Mux:link (direction, port)
      if direction == "input" and port:match("^vlan") then
         self.push_link[port] = function (mux, input)
            assert(mux == self and input == self.input[port])
            pushed[#pushed+1] = port .. " " .. link.nreadable(input)
            while not link.empty(input) do packet.free(link.receive(input)) end
         end
      end
   end
   function Mux:push (input)
      assert(input == self.input.other)
      pushed[#pushed+1] = "push " .. link.nreadable(input)
      while not link.empty(input) do packet.free(link.receive(input)) end
   end
   local Strings = {}
   function Strings:new (n) return setmetatable({n = n}, {__index = Strings}) end
   function Strings:pull ()
      for _ = 1, self.n do link.transmit(self.output.output, packet.from_string("x")) end
      self.n = 0
   end
   c = config.new()
   config.app(c, "mux", Mux)
   for i, port in ipairs({"native", "vlan7", "other"}) do
      config.app(c, "s" .. i, Strings, i)
      config.link(c, ("s%d.output -> mux.%s"):format(i, port))
   end
   M.configure(c)
   assert(Mux.push_link.vlan7 == nil and M.app_table.mux.push_link.native == Mux.push_link.native)
   M.breathe()
   M.breathe()
   assert(table.concat(pushed, ", ") == "native 1, push 3, vlan7 2, native 0, push 0, vlan7 0",
          table.concat(pushed, ", "))
   M.stop()

   -- Without restart_on_error (Snabb's way, the default in scripts and selftests), an app's error
   -- ends main with it, and one in new or link ends configure, the app left out.
   M.restart_on_error = false
   local Faulty = {}
   function Faulty:new (arg) return setmetatable({arg = arg}, {__index = Faulty}) end
   function Faulty:pull () if self.arg == "pull" then error("pull fails") end end
   function Faulty:link () if self.arg == "link" then error("link fails") end end
   for _, case in ipairs({{"pull", "^app 'faulty' failed in pull: .*pull fails"},
                          {"link", "^app 'faulty': link failed: .*link fails"}}) do
      c = config.new()
      config.app(c, "faulty", Faulty, case[1])
      config.app(c, "sink", basic.Sink)
      config.link(c, "faulty.output -> sink.input")
      local ok_f, err_f = pcall(function () M.configure(c); M.main({duration = 1, no_report = true}) end)
      assert(not ok_f and err_f:match(case[2]), err_f)
      M.main({duration = 0.01, no_report = true}) -- (not restarted: nothing to raise again)
      M.stop()
   end

   -- Snabb's report options: showlinks prints each link's packets sent and loss rate.
   c = config.new()
   config.app(c, "strings", Strings, 3)
   config.app(c, "sink", basic.Sink)
   config.link(c, "strings.output -> sink.input")
   M.configure(c)
   local printed, saved_print = {}, print
   print = function (s) printed[#printed+1] = s end -- luacheck: ignore
   local ok_p, err_p = pcall(M.main, {duration = 0.01, report = {showlinks = true}})
   print = saved_print -- luacheck: ignore
   assert(ok_p, err_p)
   assert(printed[1] == "link report:" and printed[2]:match("^ +3 sent on strings%.output %-> sink%.input "
          .. "%(loss rate: 0%%%)$"), table.concat(printed, "\n"))
   local st = link.stats(M.link_table["strings.output -> sink.input"])
   assert(st.txpackets == 3 and st.rxpackets == 3 and type(st.dtime) == "number")
   M.stop()

   -- A config changed after it was configured, then configured again: the changes are made (the
   -- running configuration is a copy, as Snabb's).
   M.configure(c)
   config.app(c, "sink2", basic.Sink)
   config.link(c, "strings.out2 -> sink2.input")
   M.configure(c)
   assert(M.app_table.sink2 and M.link_table["strings.out2 -> sink2.input"])
   assert(M.configuration ~= c and M.configuration.apps.sink2 == c.apps.sink2)
   M.stop()

   -- Snabb's configure in two steps (lib.ptree's): the actions, then their application.
   local running = M.configuration
   c = config.new()
   config.app(c, "strings", Strings, 2)
   config.app(c, "sink", basic.Sink)
   config.link(c, "strings.output -> sink.input")
   local actions = {}
   for i, action in ipairs(M.compute_config_actions(running, c)) do
      actions[i] = action[1] .. " " .. tostring(action[2][1])
   end
   assert(table.concat(actions, ", ") == "start_app sink, start_app strings, new_link strings.output -> "
          .. "sink.input, link_output strings, link_input sink", table.concat(actions, ", "))
   M.apply_config_actions(M.compute_config_actions(running, c))
   assert(M.app_table.strings and M.link_table["strings.output -> sink.input"])
   M.apply_config_actions(M.compute_config_actions(M.configuration, config.new()))
   assert(next(M.app_table) == nil and next(M.link_table) == nil)

   -- pace_breathing (lib.ptree's worker loop): with Hz, breaths are spaced 1/Hz apart (at least:
   -- a slow machine only makes it longer); idle without Hz, it sleeps, and not once packets move.
   M.Hz = 200
   local start = C.get_monotonic_time()
   for _ = 1, 11 do M.breathe() M.pace_breathing() end
   assert(C.get_monotonic_time() - start >= 10 / 200, "pace_breathing with Hz")
   M.Hz = false
   M.breathe()
   M.pace_breathing()
   assert(idle_sleep_us == 1, "idle: " .. idle_sleep_us)
   M.configure(graph(basic.Sink, 2))
   M.breathe()
   M.pace_breathing()
   assert(moved > 0 and idle_sleep_us == 0, "moving: " .. idle_sleep_us)
   M.configure(config.new())
   print("selftest: core.engine ok")
end

return M

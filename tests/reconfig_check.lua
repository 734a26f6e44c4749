-- snabb tests/reconfig_check.lua [STEPS] [SEED]: live reconfiguration without loss
-- (engine.configure, runtime/README.md). A graph of Sources -> Join -> a chain of forwarders ->
-- a Sink runs under load while a core.timer timer, between the engine's slices as the control
-- server's requests are, configures it STEPS times (default 100) into graphs drawn at random
-- (seeded): apps added and removed, arguments changed (a forwarder's through reconfig, a Source's
-- by a restart), classes changed, links moved to other apps. Forwarders move at most `burst`
-- packets a call and send without looking, so links hold packets at each reconfiguration and
-- full links drop some. Checked at every step and at the end:
--   * packets in (made by the sources) = out (freed by the sinks) + drops counted by links, live
--     and freed (engine.retired_link_stats) + packets still queued, exactly;
--   * a link whose two endpoints survive is the same link with the same packets queued;
--   * an app whose class and argument are unchanged is the same object, not restarted; a changed
--     argument goes through reconfig when the class has one (the same object), else a restart;
--   * at the end, with every app stopped, the pool holds no packet: none was lost uncounted.
local config = require("core.config")
local engine = require("core.engine")
local lib = require("core.lib")
local link = require("core.link")
local packet = require("core.packet")
local basic = require("apps.basic.basic_apps")

local args = {...}
local steps, seed = tonumber(args[1]) or 100, tonumber(args[2]) or 20
math.randomseed(seed)

-- A forwarder that moves at most `burst` packets per call, without checking room (a full output
-- drops, counted by the link); reconfig changes burst in place.
local Fwd = {}
function Fwd:new (arg) return setmetatable({burst = arg.burst, reconfigs = 0}, {__index = Fwd}) end
function Fwd:reconfig (arg) self.burst, self.reconfigs = arg.burst, self.reconfigs + 1 end
function Fwd:push ()
   local i, o = self.input.input, self.output.output
   for _ = 1, math.min(link.nreadable(i), self.burst) do link.transmit(o, link.receive(i)) end
end

local function pick (t) return t[math.random(#t)] end

-- A graph: one or two sources into a Join, one to three forwarders (a middle one sometimes a
-- Join: a changed class), a sink.
local function draw ()
   local c = config.new()
   local sources = pick({{"src_a"}, {"src_b"}, {"src_a", "src_b"}})
   config.app(c, "join", basic.Join)
   for _, s in ipairs(sources) do
      config.app(c, s, basic.Source, pick({60, 64, 128}))
      config.link(c, s .. ".output -> join." .. s)
   end
   local pool, chain = {"f1", "f2", "f3", "f4"}, {}
   for _ = 1, math.random(3) do chain[#chain+1] = table.remove(pool, math.random(#pool)) end
   local from = "join.output"
   for _, f in ipairs(chain) do
      if f == "f3" and math.random(2) == 1 then
         config.app(c, f, basic.Join)
         config.link(c, from .. " -> " .. f .. ".input")
      else
         config.app(c, f, Fwd, {burst = pick({16, 64, 300})})
         config.link(c, from .. " -> " .. f .. ".input")
      end
      from = f .. ".output"
   end
   local sink = pick({"sink_a", "sink_b"})
   config.app(c, sink, basic.Sink)
   config.link(c, from .. " -> " .. sink .. ".input")
   return c
end

-- Packets made by sources (-freed: what they allocated, whether the link took it or dropped it),
-- freed by sinks (packets_in), of apps still running and of apps gone (summed when they left).
local gone = {made = 0, received = 0}
local function totals ()
   local t = {made = gone.made, received = gone.received, dropped = 0, queued = 0}
   for _, a in ipairs(engine.app_stats()) do
      if a.name:match("^src") then t.made = t.made - a.freed end
      if a.name:match("^sink") then t.received = t.received + a.packets_in end
   end
   for _, l in ipairs(engine.link_stats()) do t.dropped, t.queued = t.dropped + l.txdrop, t.queued + l.queued end
   local retired = engine.retired_link_stats and engine.retired_link_stats() or {txdrop = 0}
   t.dropped = t.dropped + retired.txdrop
   return t
end
local function check_accounting (when)
   local t = totals()
   if t.made ~= t.received + t.dropped + t.queued then
      error(("%s: packets in %d ~= out %d + dropped %d + queued %d (%d unaccounted for)"):format(
         when, t.made, t.received, t.dropped, t.queued, t.made - t.received - t.dropped - t.queued), 0)
   end
   return t
end

-- engine.configure(c), first adding the figures of the apps that leave to `gone`.
local function configure (c)
   for _, a in ipairs(engine.app_stats()) do
      if not c.apps[a.name] then
         if a.name:match("^src") then gone.made = gone.made - a.freed end
         if a.name:match("^sink") then gone.received = gone.received + a.packets_in end
      end
   end
   engine.configure(c)
end

-- The engine's messages: basic.Join serves its inputs in order, so behind a slow forwarder its
-- second source's link can starve, and the engine's port check says so when it judges a new link
-- (that the app has not used its input; "a misspelt port?" is wrong there, the rest is true).
-- Anything else fails the test.
local port_warnings, other_messages = 0, {}
engine.log = function (msg)
   if msg:match("^engine: warning: link '[%w_.]+ %-> join%.src_[ab]': app 'join' has not used its input") then
      port_warnings = port_warnings + 1
   else
      other_messages[#other_messages+1] = msg
   end
end

local in_use_before = packet.in_use()
local done, restarts, kept_apps, kept_links, reconfigs, moved_links = 0, 0, 0, 0, 0, 0
local function step ()
   local old, c = engine.configuration, draw()
   check_accounting(("step %d, before configure"):format(done + 1))
   -- What must survive: links whose endpoints both stay, with their queues; apps unchanged.
   local links_before, objects_before = {}, {}
   for spec in pairs(old.links) do
      local r = engine.link_table[spec]
      links_before[spec] = {r = r, queued = link.nreadable(r)}
   end
   local reconfigs_before = {}
   for name in pairs(old.apps) do
      objects_before[name] = engine.app_table[name]
      reconfigs_before[name] = engine.app_table[name].reconfigs
   end
   configure(c)
   for spec, before in pairs(links_before) do
      if c.links[spec] then
         local r = engine.link_table[spec]
         assert(r == before.r, spec .. ": a link whose endpoints survived was replaced")
         assert(link.nreadable(r) == before.queued,
                ("%s: %d packets queued before, %d after"):format(spec, before.queued, link.nreadable(r)))
         kept_links = kept_links + 1
      else
         local fa, fp = config.parse_link(spec)
         for s in pairs(c.links) do
            if s:match("^(.-) ") == fa .. "." .. fp then moved_links = moved_links + 1 end
         end
      end
   end
   for name, object in pairs(objects_before) do
      local new, prev = c.apps[name], old.apps[name]
      if new and new.class == prev.class then
         local same = engine.app_table[name] == object
         if lib.equal(new.arg, prev.arg) then
            assert(same, name .. ": unchanged, yet restarted")
            kept_apps = kept_apps + 1
         elseif new.class.reconfig then
            assert(same and object.reconfigs == reconfigs_before[name] + 1,
                   name .. ": a changed argument was not reconfigured in place")
            reconfigs = reconfigs + 1
         else
            assert(not same, name .. ": a changed argument without reconfig did not restart it")
            restarts = restarts + 1
         end
      elseif new then
         assert(engine.app_table[name] ~= object, name .. ": a changed class did not restart it")
         restarts = restarts + 1
      end
   end
   local tt = check_accounting(("step %d, after configure"):format(done + 1))
   if os.getenv("DEBUG") then print(done, tt.made, tt.received, tt.dropped, tt.queued) end
   done = done + 1
end

configure(draw())
-- A step every 2 ms, from main's done(), between slices (as the control server's mailbox is
-- served); a core.timer timer would do too, but its first run catches up on the ticks since the
-- module was loaded, running steps back to back.
local next_step = engine.now() + 0.002
engine.main({no_report = true, done = function ()
   if engine.now() >= next_step then
      step()
      next_step = engine.now() + 0.002
   end
   return done >= steps
end})
local final = check_accounting("at the end")
local retired = engine.retired_link_stats()
configure(config.new())
local stopped = check_accounting("with every app stopped")
assert(stopped.queued == 0)
local leaked = packet.in_use() - in_use_before
assert(leaked == 0, ("%d packets still in use with every app stopped"):format(leaked))
assert(final.made > 100000, "too little load: " .. final.made .. " packets")
assert(retired.carried > 0, "no reconfiguration found packets queued in a link it removed")
assert(#other_messages == 0, "engine: " .. table.concat(other_messages, "\n"))
assert(kept_links > 0 and kept_apps > 0 and reconfigs > 0 and restarts > 0 and moved_links > 0)
print(("reconfig_check: %d reconfigurations under load: in %d = out %d + dropped %d (full links %d, "
       .. "at reconfiguration %d) + queued %d; %d packets carried from removed links to their heirs; "
       .. "%d links kept with their packets, %d moved; apps kept %d, reconfigured %d, restarted %d; "
       .. "%d port warnings for join")
      :format(done, final.made, final.received, final.dropped, final.dropped - retired.dropped,
              retired.dropped, final.queued, retired.carried, kept_links, moved_links, kept_apps,
              reconfigs, restarts, port_warnings))

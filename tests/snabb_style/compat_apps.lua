-- Snabb-style code written here (tests/snabb_api_test.sh): a module as Snabb's apps are written
-- (module(), the globals config/engine/link/packet, apps with link/unlink/push_link/tick/report
-- methods, lib helpers), whose selftest() checks what Snabb's API promises for it.
-- luacheck: allow defined top, ignore 131 (Snabb-style module: its functions are globals)
module(..., package.seeall)

local ffi = require("ffi")
local lib = require("core.lib")
local basic_apps = require("apps.basic.basic_apps")

-- Forwards at most `limit` packets and drops the rest; records its link()/unlink() calls.
Counter = {config = {limit = {default = 10}}}

function Counter:new (conf)
   return setmetatable({limit = conf.limit, seen = 0, ticks = 0, links = {}}, {__index = Counter})
end

function Counter:link (dir, name) table.insert(self.links, dir .. "." .. name) end
function Counter:unlink (dir, name) table.insert(self.links, "-" .. dir .. "." .. name) end

function Counter:push ()
   local i, o = self.input.input, self.output.output
   while not link.empty(i) do
      local p = link.receive(i)
      if o and self.seen < self.limit then
         self.seen = self.seen + 1
         link.transmit(o, p)
      else
         packet.free(p)
      end
   end
end

function Counter:tick () self.ticks = self.ticks + 1 end
function Counter:report () print(("counter: %s packets"):format(lib.comma_value(self.seen))) end

-- Prepends one byte naming the input port it came from (push_link methods made in link(), as
-- Snabb's VlanMux makes them) and sends everything to "trunk".
Tagger = {push_link = {}}

function Tagger:new () return setmetatable({}, {__index = Tagger}) end

function Tagger:link (dir, name)
   local tag = name:match("^port(%d+)$")
   if dir == "input" and tag then
      self.push_link[name] = function (app, input)
         for _ = 1, link.nreadable(input) do
            local p = packet.prepend(link.receive(input), string.char(tonumber(tag)), 1)
            link.transmit(app.output.trunk, p)
         end
      end
   end
end

-- Sends `n` packets of "x" once.
Once = {}
function Once:new (n) return setmetatable({n = n}, {__index = Once}) end
function Once:pull ()
   for _ = 1, self.n do link.transmit(self.output.output, packet.from_string("x")) end
   self.n = 0
end

-- Keeps the first byte of what it receives; counts its push calls (every breath, as Snabb calls push).
Collect = {}
function Collect:new () return setmetatable({bytes = {}, pushes = 0}, {__index = Collect}) end
function Collect:push ()
   self.pushes = self.pushes + 1
   for _, input in ipairs(self.input) do
      while not link.empty(input) do
         local p = link.receive(input)
         table.insert(self.bytes, p.data[0])
         packet.account_free(p)
         packet.free_internal(p)
      end
   end
end

function selftest ()
   print("selftest: compat_apps")
   -- A redefined app: the later definition wins; arguments are parsed against `config` at
   -- config.app (defaults filled).
   local c = config.new()
   config.app(c, "src", basic_apps.Source, 64)
   config.app(c, "counter", Counter, {limit = 5})
   config.app(c, "counter", Counter, {limit = 7})
   config.app(c, "sink", basic_apps.Sink)
   config.link(c, "src.output -> counter.input")
   config.link(c, "counter.output -> sink.input")
   assert(c.apps.counter.arg.limit == 7)
   local d = config.new()
   config.app(d, "counter", Counter)
   assert(d.apps.counter.arg.limit == 10)
   engine.configure(c)
   local counter = engine.app_table.counter
   table.sort(counter.links)
   assert(table.concat(counter.links, " ") == "input.input output.output", table.concat(counter.links, " "))
   assert(engine.configuration.apps.counter and engine.link_table["counter.output -> sink.input"])
   engine.main({done = function () return counter.ticks >= 3 end, no_report = true})
   assert(counter.seen == 7)
   local stats = link.stats(engine.link_table["counter.output -> sink.input"])
   assert(stats.txpackets == 7 and stats.rxpackets == 7 and stats.txdrop == 0)
   assert(type(stats.rxbytes) == "number" and stats.rxbytes == 7 * 64)
   -- The report options as Snabb's: links, and the apps' report methods.
   engine.main({duration = 0.001, report = {showlinks = true, showapps = true}})

   -- A link taken away: unlink(dir, name); the app keeps running.
   local e = config.new()
   config.app(e, "src", basic_apps.Source, 64)
   config.app(e, "counter", Counter, {limit = 7})
   config.link(e, "src.output -> counter.input")
   engine.configure(e)
   assert(engine.app_table.counter == counter and counter.links[#counter.links] == "-output.output")
   assert(counter.output.output == nil and #counter.output == 0)
   engine.main({duration = 0.001, no_report = true})

   -- push_link methods made in link(), called with their link; push every breath.
   c = config.new()
   config.app(c, "tagger", Tagger)
   config.app(c, "collect", Collect)
   config.app(c, "one", Once, 2)
   config.app(c, "two", Once, 3)
   config.link(c, "one.output -> tagger.port1")
   config.link(c, "two.output -> tagger.port2")
   config.link(c, "tagger.trunk -> collect.input")
   engine.configure(c)
   assert(Tagger.push_link.port1 == nil, "link() changed the app's own push_link, not the class's")
   local collect = engine.app_table.collect
   engine.busywait = false
   engine.Hz = 1000
   engine.main({done = function () return collect.pushes >= 5 end, no_report = true})
   engine.busywait, engine.Hz = true, false
   table.sort(collect.bytes)
   assert(table.concat(collect.bytes, " ") == "1 1 2 2 2", table.concat(collect.bytes, " "))
   assert(collect.pushes >= 5)

   -- Packets and links as Snabb's.
   assert(packet.default_headroom == 256 and packet.packet_alignment >= 256)
   local p = packet.from_string("abc")
   p = packet.shiftleft(packet.prepend(p, "xy", 2), 1)
   assert(ffi.string(p.data, p.length) == "yabc")
   packet.free(p)
   local l = link.new("test link")
   link.transmit(l, packet.from_string("z"))
   assert(link.nreadable(l) == 1 and not link.empty(l) and link.nwritable(l) == link.max - 1)
   assert(link.stats(l).txpackets == 1)
   link.free(l, "test link")

   -- lib helpers Snabb code uses.
   assert(lib.equal({a = {1, 2}}, {a = {1, 2}}) and not lib.equal({1}, {2}))
   assert(lib.comma_value(1234567) == "1,234,567")
   local throttle = lib.throttle(3600)
   assert(throttle() and not throttle())

   -- Settings and switches Snabb code touches.
   assert(engine.test_skipped_code == 43 and engine.pull_npackets > 0 and engine.tick_Hz == 1000)
   local breaths = tonumber(engine.breaths.c)
   engine.breathe()
   assert(tonumber(engine.breaths.c) == breaths + 1)
   engine.setvmprofile("engine")
   local saved_log = engine.log
   engine.log = true -- (Snabb's flag: a program may set it)
   engine.stop()
   engine.log = saved_log
   assert(next(engine.app_table) == nil)
   print("selftest: compat_apps ok")
end

-- What SNABB_PROGRAM_LUACODE runs (tests/snabb_api_test.sh).
function luacode ()
   local c = config.new()
   config.app(c, "one", Once, 4)
   config.app(c, "collect", Collect)
   config.link(c, "one.output -> collect.input")
   engine.configure(c)
   engine.main({done = function () return #engine.app_table.collect.bytes == 4 end, no_report = true})
   print("luacode: 4 packets")
end

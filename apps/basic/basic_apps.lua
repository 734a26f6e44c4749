-- apps.basic.basic_apps: Source, Sink, Tee, Join, Split, Repeater, Truncate, Sample (Snabb's basic
-- apps), and NativeSink, a C++ sink (apps/basic/native_sink.cc) used like any Lua app. As Snabb's,
-- they take links on ports of any name (the numbered lists: self.input[i], self.output[i]);
-- Join's output, Repeater's, Truncate's and Sample's ports are "input" and "output".
local ffi = require("ffi")
local packet = require("core.packet")
local link = require("core.link")
local engine = require("core.engine")

local receive, transmit = link.receive, link.transmit
local nreadable, nwritable, move = link.nreadable, link.nwritable, link.move
local clone, free = packet.clone, packet.free
local min = math.min

local M = {}

-- Source: packets of `size` bytes (default 60, zero-filled) on every output, as many as fit, up to
-- engine.pull_burst per output per breath. Argument: a size, or {size = N}; none or {} is 60.
-- (The engine checks arguments against `config`, see core.lib.parse, before new() sees them.)
local Source = {config = {size = {default = 60, integer = true, min = 0, max = packet.max_payload,
                                  unit = "bytes", positional = true}}}
M.Source = Source

function Source:new (conf)
   local p = packet.resize(packet.allocate(), conf.size)
   return setmetatable({packet = p}, {__index = Source})
end

function Source:pull ()
   local p, n = self.packet, engine.pull_burst
   for _, o in ipairs(self.output) do
      for _ = 1, min(n, nwritable(o)) do
         transmit(o, clone(p))
      end
   end
end

function Source:stop ()
   free(self.packet)
end

-- Sink: frees every packet it receives. (config = {}: no parameters, as for the apps below.)
local Sink = {config = {}}
M.Sink = Sink

function Sink:new ()
   return setmetatable({}, {__index = Sink})
end

function Sink:push ()
   for _, i in ipairs(self.input) do
      for _ = 1, nreadable(i) do
         free(receive(i))
      end
   end
end

-- Tee: every input packet goes to every output (copies for all but the last).
local Tee = {config = {}}
M.Tee = Tee

function Tee:new ()
   return setmetatable({}, {__index = Tee})
end

function Tee:push ()
   local outputs = self.output
   local last = #outputs
   for _, i in ipairs(self.input) do
      for _ = 1, nreadable(i) do
         local p = receive(i)
         if last == 0 then
            free(p)
         else
            for k = 1, last - 1 do transmit(outputs[k], clone(p)) end
            transmit(outputs[last], p)
         end
      end
   end
end

-- Join: every input to the one output, as much as fits, the packets not read (link.move).
local Join = {config = {}}
M.Join = Join

function Join:new ()
   return setmetatable({}, {__index = Join})
end

function Join:push ()
   local o = self.output.output
   if not o then return end
   for _, i in ipairs(self.input) do move(i, o, min(nreadable(i), nwritable(o))) end
end

-- Split: input packets to the outputs in turn (round robin).
local Split = {config = {}}
M.Split = Split

function Split:new ()
   return setmetatable({next = 1}, {__index = Split})
end

function Split:push ()
   local outputs = self.output
   local n = #outputs
   if n == 0 then return end
   local k = self.next
   for _, i in ipairs(self.input) do
      for _ = 1, nreadable(i) do
         if k > n then k = 1 end
         transmit(outputs[k], receive(i))
         k = k + 1
      end
   end
   self.next = k
end

-- Repeater: keeps every packet it receives and sends copies of them, in order, over and over.
local Repeater = {config = {}}
M.Repeater = Repeater

function Repeater:new ()
   return setmetatable({index = 1, packets = {}}, {__index = Repeater})
end

function Repeater:push ()
   local i = self.input.input
   if not i then return end
   for _ = 1, nreadable(i) do
      table.insert(self.packets, receive(i))
   end
end

function Repeater:pull ()
   local o, packets = self.output.output, self.packets
   local n = #packets
   if not o or n == 0 then return end
   local index = self.index
   for _ = 1, nwritable(o) do
      transmit(o, clone(packets[index]))
      index = index == n and 1 or index + 1
   end
   self.index = index
end

function Repeater:stop ()
   for _, p in ipairs(self.packets) do free(p) end
   self.packets = {}
end

-- Truncate: every packet cut or zero-padded to `n` bytes (Snabb's argument: n, a number).
local Truncate = {config = {n = {required = true, integer = true, min = 0, max = packet.max_payload,
                                unit = "bytes", positional = true}}}
M.Truncate = Truncate

function Truncate:new (conf)
   return setmetatable({n = conf.n}, {__index = Truncate})
end

function Truncate:push ()
   local i, o, n = self.input.input, self.output.output, self.n
   if not (i and o) then return end
   for _ = 1, nreadable(i) do
      local p = receive(i)
      if n > p.length then ffi.fill(p.data + p.length, n - p.length) end
      p.length = n
      transmit(o, p)
   end
end

-- Sample: every n-th packet goes through, the others are dropped (Snabb's argument: n).
local Sample = {config = {n = {required = true, integer = true, min = 1, positional = true}}}
M.Sample = Sample

function Sample:new (conf)
   return setmetatable({n = conf.n, seen = 1}, {__index = Sample})
end

function Sample:push ()
   local i, o = self.input.input, self.output.output
   if not (i and o) then return end
   local n, seen = self.n, self.seen
   for _ = 1, nreadable(i) do
      local p = receive(i)
      if seen == n then
         transmit(o, p)
         seen = 1
      else
         seen = seen + 1
         free(p)
      end
   end
   self.seen = seen
end

M.NativeSink = {native = "basic.NativeSink"}

-- Test helper: keeps what it receives as strings (for checking contents).
local Capture = {}

function Capture:new () return setmetatable({packets = {}}, {__index = Capture}) end

function Capture:push ()
   for _, i in ipairs(self.input) do
      for _ = 1, nreadable(i) do
         local p = receive(i)
         table.insert(self.packets, packet.tostring(p))
         free(p)
      end
   end
end

-- Test helper: sends the given strings once, in order.
local Strings = {}

function Strings:new (strings) return setmetatable({strings = strings, sent = 0}, {__index = Strings}) end

function Strings:pull ()
   local o = self.output.output
   while self.sent < #self.strings and not link.full(o) do
      self.sent = self.sent + 1
      transmit(o, packet.from_string(self.strings[self.sent]))
   end
end

function M.selftest ()
   print("selftest: apps.basic.basic_apps")
   local config = require("core.config")
   local function run (c, seconds)
      engine.configure(c)
      engine.main({duration = seconds or 0.02})
   end
   local function stats (name)
      for _, a in ipairs(engine.app_stats()) do if a.name == name then return a end end
   end
   local function check_links ()
      for _, l in ipairs(engine.link_stats()) do
         assert(l.txpackets == l.rxpackets + l.queued + l.txdrop, l.link)
      end
   end

   -- Source's argument: a size, {size = N}, or nothing for the documented default of 60.
   local lib = require("core.lib")
   for _, arg in ipairs({{nil, 60}, {{}, 60}, {64, 64}, {"64", 64}, {{size = 0}, 0}}) do
      assert(lib.parse(arg[1], Source.config).size == arg[2], tostring(arg[1]))
   end
   for _, bad in ipairs({{size = "huge"}, {size = -1}, {size = 1.5}, {size = packet.max_payload + 1}}) do
      local ok, err = pcall(lib.parse, bad, Source.config)
      assert(not ok and err:match("^parameter 'size' must be a whole number of bytes from 0 to 10240, got "), err)
   end
   local ok, err = pcall(lib.parse, {size = 64}, Sink.config)
   assert(not ok and err == "unknown parameter 'size' (known: none)", err)
   for _, arg in ipairs({{}, false}) do -- (false: no argument)
      local c = config.new()
      config.app(c, "source", Source, arg or nil)
      config.app(c, "sink", Sink)
      config.link(c, "source.output -> sink.input")
      run(c, 0.005)
      local s = engine.link_stats()[1]
      assert(s.txpackets > 0 and s.txbytes == 60 * s.txpackets, "Source{} and Source() send 60 bytes")
      engine.stop()
   end

   -- Source -> Tee -> two sinks (one native): each sink gets every packet the Tee got.
   local c = config.new()
   config.app(c, "source", Source, {size = 64})
   config.app(c, "tee", Tee)
   config.app(c, "sink1", Sink)
   config.app(c, "sink2", M.NativeSink)
   config.link(c, "source.output -> tee.input")
   config.link(c, "tee.out1 -> sink1.input")
   config.link(c, "tee.out2 -> sink2.input")
   run(c)
   check_links()
   local tee = stats("tee")
   assert(tee.packets_in > 0 and tee.packets_out == 2 * tee.packets_in)
   local l = engine.link_stats()
   assert(l[1].txbytes == 64 * l[1].txpackets, "Source packets are 64 bytes")
   engine.stop()

   -- Split is round robin; Join merges; Repeater repeats in order.
   local strings = {}
   for i = 1, 30 do strings[i] = ("packet %d"):format(i) end
   c = config.new()
   config.app(c, "strings", Strings, strings)
   config.app(c, "split", Split)
   for k = 1, 3 do
      config.app(c, "capture" .. k, Capture)
      config.link(c, ("split.out%d -> capture%d.input"):format(k, k))
   end
   config.link(c, "strings.output -> split.input")
   run(c)
   for k = 1, 3 do
      local got = engine.app_table["capture" .. k].packets
      assert(#got == 10, #got)
      for j, s in ipairs(got) do assert(s == strings[(j - 1) * 3 + k], s) end
   end
   check_links()
   engine.stop()

   c = config.new()
   config.app(c, "a", Strings, {"a1", "a2"})
   config.app(c, "b", Strings, {"b1"})
   config.app(c, "join", Join)
   config.app(c, "repeater", Repeater)
   config.app(c, "capture", Capture)
   config.link(c, "a.output -> join.a")
   config.link(c, "b.output -> join.b")
   config.link(c, "join.output -> repeater.input")
   config.link(c, "repeater.output -> capture.input")
   run(c)
   local got = engine.app_table.capture.packets
   assert(#got > 30)
   for j = 1, 30 do assert(got[j] == ({"a1", "a2", "b1"})[(j - 1) % 3 + 1], got[j]) end
   check_links()
   engine.stop()
   print("selftest: apps.basic.basic_apps ok")
end

return M

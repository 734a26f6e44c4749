-- apps.bridge.learning: Snabb's learning bridge. Each frame's source MAC address is learned on
-- the port it came in on; a frame to a learned unicast address goes to that port alone (or is
-- discarded when that is its own port or a port of its own split-horizon group); a frame to an
-- unknown, multicast or broadcast address is flooded as apps.bridge.flooding floods. An address
-- not seen for `timeout` seconds is forgotten (expired at lookup; removed from the table by a
-- sweep every `timeout` seconds).
--
-- The MAC table is ours (Snabb's is a bucketed C table with a shadow copy for aging): open
-- addressing with linear probing over an FFI array of 16-byte entries (address as a 16- and a
-- 32-bit number, port, time last seen), at most half full, probes bounded (MAX_PROBE), indexed
-- by a hash seeded per bridge so that chosen source addresses cannot make one long probe chain
-- for every bridge. All of it is plain Lua numbers and bit operations: the JIT keeps the loop in
-- machine code, with no allocation per frame.
local ffi = require("ffi")
local bit = require("bit")
local link = require("core.link")
local packet = require("core.packet")
local counter = require("core.counter")
local engine = require("core.engine")
local lib = require("core.lib")
local base = require("apps.bridge.base").bridge

local band, bxor, rshift, tobit = bit.band, bit.bxor, bit.rshift, bit.tobit
local receive, transmit, nreadable = link.receive, link.transmit, link.nreadable
local clone, free = packet.clone, packet.free
local cast = ffi.cast
local u16_ptr_t, u32_ptr_t = ffi.typeof("uint16_t *"), ffi.typeof("uint32_t *")

local M = {}

local entries_t = ffi.typeof("struct { uint32_t lo; uint16_t hi; uint16_t port; double seen; } [?]")
local MAX_PROBE = 16 -- slots looked at from an address's home slot; beyond: the table grows
local ETH_HEADER = 14

-- The home slot of address (hi, lo): multiply-xorshift rounds, each product exact in a double
-- (multipliers below 2^19), so bit.tobit keeps its low 32 bits.
local function hash (hi, lo, seed)
   local h = tobit(bxor(lo, seed) * 0x5bd1f)
   h = bxor(h, rshift(h, 15))
   h = tobit(bxor(h, hi) * 0x2c1b3)
   return bxor(h, rshift(h, 16))
end

-- A table of `capacity` (a power of 2) slots; port 0 marks a free slot.
local function new_table (capacity)
   return {entries = entries_t(capacity), mask = capacity - 1, count = 0}
end

-- The slot of (hi, lo) in entries e after its home slot i, or -1: the loop, kept out of find so
-- that the common case (found at home, or home free) has none for the JIT to unroll.
local function probe (e, mask, i, hi, lo)
   for _ = 2, MAX_PROBE do
      i = band(i + 1, mask)
      local s = e[i]
      if s.port == 0 then return -1 end
      if s.lo == lo and s.hi == hi then return i end
   end
   return -1
end

-- The slot of (hi, lo) in t, or -1.
local function find (t, hi, lo, seed)
   local e, mask = t.entries, t.mask
   local i = band(hash(hi, lo, seed), mask)
   local s = e[i]
   if s.port == 0 then return -1 end
   if s.lo == lo and s.hi == hi then return i end
   return probe(e, mask, i, hi, lo)
end

-- Puts (hi, lo) -> port, seen at `now`, into t: 1 when new, 2 when it moved from another port,
-- 0 when it was there on that port, -1 when its probe range is full.
local function put (t, hi, lo, seed, port, now)
   local e, mask = t.entries, t.mask
   local i = band(hash(hi, lo, seed), mask)
   for _ = 1, MAX_PROBE do
      local s = e[i]
      if s.port == 0 then
         if t.count >= rshift(mask + 1, 1) then return -1 end -- half full
         s.lo, s.hi, s.port, s.seen = lo, hi, port, now
         t.count = t.count + 1
         return 1
      end
      if s.lo == lo and s.hi == hi then
         local moved = s.port ~= port
         s.port, s.seen = port, now
         return moved and 2 or 0
      end
      i = band(i + 1, mask)
   end
   return -1
end

-- The entries of `from` seen within `timeout` of `now`, in a table of `capacity`; and how many
-- were left out (expired, or found no slot: none at twice the capacity and half the load).
local function rebuild (from, capacity, seed, now, timeout)
   local t, dropped = new_table(capacity), 0
   local e = from.entries
   for i = 0, from.mask do
      local s = e[i]
      if s.port ~= 0 then
         if now - s.seen > timeout or put(t, s.hi, s.lo, seed, s.port, s.seen) < 0 then
            dropped = dropped + 1
         end
      end
   end
   return t, dropped
end

local mac_table_spec = {
   size = {default = 256, integer = true, min = 1, unit = "addresses"},
   timeout = {default = 60, type = "number", min = 0.001, unit = "seconds"},
   verbose = {default = false, type = "boolean"},
   copy_on_resize = {default = true, type = "boolean"},
   resize_max = {default = 65536, integer = true, min = 1, unit = "addresses"},
}

local function capacity_for (addresses) -- slots for that many at half load, a power of 2
   local c = 16
   while c < 2 * addresses do c = c * 2 end
   return c
end

local bridge = setmetatable({
   _name = "learning bridge",
   config = base.config,
   shm = {unicast = {counter}, flood = {counter}, discard = {counter}, truncated = {counter},
          learned = {counter}, moved = {counter}, aged = {counter}, table_full = {counter},
          addresses = {counter}},
}, {__index = base})
M.bridge = bridge

function bridge:new (conf)
   local o = base.new_bridge(bridge, conf)
   local ok, settings = pcall(lib.parse, conf.config, {mac_table = {type = "table"}})
   if ok then ok, settings = pcall(lib.parse, settings.mac_table, mac_table_spec) end
   if not ok then error("config.mac_table: " .. settings, 0) end
   local mt = settings
   o.timeout, o.verbose, o.copy_on_resize = mt.timeout, mt.verbose, mt.copy_on_resize
   o.max_capacity = capacity_for(math.max(mt.resize_max, mt.size))
   local seed = lib.random_bytes(4)
   o.seed = tobit(cast(u32_ptr_t, seed)[0])
   o.table = new_table(capacity_for(mt.size))
   o.clock = engine.now -- the time in seconds; a test may give another
   o.next_sweep = o.clock() + o.timeout
   o.port_group = {}
   for i, port in ipairs(o._ports) do o.port_group[i] = port.group end
   return o
end

-- Learns (hi, lo) on `port`, growing the table when the address finds no slot; the counter to add
-- to ("learned", "moved", "table_full") or nil.
function bridge:learn (hi, lo, port, now)
   local r = put(self.table, hi, lo, self.seed, port, now)
   if r == 0 then return nil end
   if r == 1 then return "learned" end
   if r == 2 then return "moved" end
   local capacity = self.table.mask + 1
   if capacity >= self.max_capacity then return "table_full" end
   capacity = capacity * 2
   local dropped
   if self.copy_on_resize then
      self.table, dropped = rebuild(self.table, capacity, self.seed, now, self.timeout)
   else
      dropped, self.table = self.table.count, new_table(capacity)
   end
   if dropped > 0 then counter.add(self.shm.aged, dropped) end
   if self.verbose then
      io.stderr:write(("%s: MAC table grown to %d slots\n"):format(self.appname or self._name, capacity))
   end
   return self:learn(hi, lo, port, now)
end

-- Removes the addresses not seen for `timeout`.
function bridge:sweep (now)
   local t, dropped = rebuild(self.table, self.table.mask + 1, self.seed, now, self.timeout)
   self.table = t
   if dropped > 0 then counter.add(self.shm.aged, dropped) end
   if self.verbose then
      io.stderr:write(("%s: %d addresses, %d aged out\n"):format(self.appname or self._name,
                                                                t.count, dropped))
   end
end

function bridge:push ()
   local now = self.clock()
   if now >= self.next_sweep then
      self:sweep(now)
      self.next_sweep = now + self.timeout
   end
   local ports, groups, seed, timeout = self._ports, self.port_group, self.seed, self.timeout
   local unicast, flooded, discarded, truncated = 0, 0, 0, 0
   for ip = 1, #ports do
      local port = ports[ip]
      local l_in, flood, group = port.l_in, port.flood, groups[ip]
      local nflood = #flood
      for _ = 1, l_in and nreadable(l_in) or 0 do
         local p = receive(l_in)
         local d = p.data
         if p.length < ETH_HEADER then
            free(p)
            truncated = truncated + 1
         else
            -- The source: learned unless multicast (never a valid source, so never stored).
            local shi, slo = cast(u16_ptr_t, d + 6)[0], cast(u32_ptr_t, d + 8)[0]
            if band(d[6], 1) == 0 then
               local t = self.table
               local i = find(t, shi, slo, seed)
               if i >= 0 and t.entries[i].port == ip then
                  t.entries[i].seen = now
               else
                  local what = self:learn(shi, slo, ip, now)
                  if what then counter.add(self.shm[what]) end
               end
            end
            -- The destination: a port learned within timeout, or flood.
            local out = 0
            if band(d[0], 1) == 0 then
               local t = self.table
               local i = find(t, cast(u16_ptr_t, d)[0], cast(u32_ptr_t, d + 2)[0], seed)
               if i >= 0 and now - t.entries[i].seen <= timeout then out = t.entries[i].port end
            end
            if out == 0 then
               if nflood == 0 then
                  free(p)
                  discarded = discarded + 1
               else
                  for k = 1, nflood - 1 do transmit(flood[k], clone(p)) end
                  transmit(flood[nflood], p)
                  flooded = flooded + 1
               end
            else
               local l_out = ports[out].l_out
               if out == ip or (group ~= 0 and groups[out] == group) or not l_out then
                  free(p)
                  discarded = discarded + 1
               else
                  transmit(l_out, p)
                  unicast = unicast + 1
               end
            end
         end
      end
   end
   local shm = self.shm
   if unicast > 0 then counter.add(shm.unicast, unicast) end
   if flooded > 0 then counter.add(shm.flood, flooded) end
   if discarded > 0 then counter.add(shm.discard, discarded) end
   if truncated > 0 then counter.add(shm.truncated, truncated) end
   counter.set(shm.addresses, self.table.count)
end

function M.selftest ()
   print("selftest: apps.bridge.learning")
   local config = require("core.config")
   local vlan = require("apps.vlan.vlan")
   local function mac (n) return ("\2\0\0\0\0" .. string.char(n)) end
   local function frame (dst, src) return packet.from_string(dst .. src .. "\8\0" .. ("\0"):rep(46)) end
   local c = config.new()
   config.app(c, "hand", vlan.Hand)
   config.app(c, "bridge", bridge, {ports = {"a", "b"}, split_horizon_groups = {core = {"c", "d"}},
                                    config = {mac_table = {timeout = 10, size = 4, resize_max = 12}}})
   config.app(c, "sink", require("apps.basic.basic_apps").Sink)
   for _, port in ipairs({"a", "b", "c", "d"}) do
      config.link(c, ("hand.%s -> bridge.%s"):format(port, port))
      config.link(c, ("bridge.%s -> sink.%s"):format(port, port))
   end
   engine.configure(c)
   local br, hand, sink = engine.app_table.bridge, engine.app_table.hand.output, engine.app_table.sink.input
   local now = 100
   br.clock = function () return now end
   br.next_sweep = now + br.timeout
   local function got ()
      local t = {}
      for _, port in ipairs({"a", "b", "c", "d"}) do
         t[port] = nreadable(sink[port])
         for _ = 1, t[port] do free(receive(sink[port])) end
      end
      return t
   end
   local function n (name) return tonumber(counter.read(br.shm[name])) end
   -- 1 on a to unknown 2: flooded to b, c, d. 2 on c answers 1: unicast to a.
   transmit(hand.a, frame(mac(2), mac(1)))
   br:push()
   assert(lib.equal(got(), {a = 0, b = 1, c = 1, d = 1}))
   transmit(hand.c, frame(mac(1), mac(2)))
   br:push()
   assert(lib.equal(got(), {a = 1, b = 0, c = 0, d = 0}))
   -- d to unknown: flooded to a and b, not c (its group). d to 2 (on c, its group): discarded.
   transmit(hand.d, frame(mac(9), mac(3)))
   transmit(hand.d, frame(mac(2), mac(3)))
   br:push()
   assert(lib.equal(got(), {a = 1, b = 1, c = 0, d = 0}))
   -- Broadcast floods; a short frame is counted.
   transmit(hand.b, frame("\255\255\255\255\255\255", mac(4)))
   transmit(hand.b, packet.from_string("\2\0\0\0"))
   br:push()
   assert(lib.equal(got(), {a = 1, b = 0, c = 1, d = 1}))
   assert(n("unicast") == 1 and n("flood") == 3 and n("discard") == 1 and n("truncated") == 1)
   assert(n("learned") == 4 and n("addresses") == 4)
   -- 1 moves to b.
   transmit(hand.b, frame(mac(2), mac(1)))
   br:push()
   assert(lib.equal(got(), {a = 0, b = 0, c = 1, d = 0}) and n("moved") == 1)
   -- More addresses than resize_max (12): the table grows to hold them, then counts the rest.
   for i = 10, 30 do transmit(hand.a, frame(mac(1), mac(i))) end
   br:push()
   got()
   assert(n("addresses") == 16 and n("learned") == 16 and n("table_full") == 9, n("addresses"))
   -- 10 s later nothing has expired (1 moves back to a); 10.5 s after that everything has: the
   -- sweep removes all 16 and 2 is unknown again (flooded).
   now = now + 10
   transmit(hand.a, frame(mac(2), mac(1)))
   br:push()
   assert(lib.equal(got(), {a = 0, b = 0, c = 1, d = 0}))
   now = now + 10.5
   transmit(hand.b, frame(mac(2), mac(5)))
   br:push()
   assert(lib.equal(got(), {a = 1, b = 0, c = 1, d = 1}))
   assert(n("aged") == 16 and n("addresses") == 1, n("aged")) -- 5 alone, learned just now
   -- Every frame in is counted once.
   assert(n("unicast") + n("flood") + n("discard") + n("truncated") == 7 + 21 + 2)
   engine.configure(config.new())
   -- Bad settings are named.
   local ok, err = pcall(bridge.new, bridge, {ports = {"a"}, config = {mac_table = {timeout = "x"}}})
   assert(not ok and err:match("^config.mac_table: parameter 'timeout' must be a number"), err)
   ok, err = pcall(bridge.new, bridge, {ports = {"a", "a"}, config = {}})
   assert(not ok and err:match("port 'a' is listed twice"), err)
   print("selftest: apps.bridge.learning ok")
end

return M

-- apps.vlan.vlan: 802.1Q/802.1ad VLAN tags, as Snabb's apps of this name: Tagger (adds a tag),
-- Untagger (removes the configured tag; drops and counts any other frame) and VlanMux (a trunk
-- port against vlan<VID> and native ports). Snabb's helper functions (push_tag, pop_tag,
-- build_tag, extract_tci, tci_to_vid) are exported under their names for code that calls them.
-- A tag is moved as 12 bytes of addresses and one 32-bit word: no allocation, no C call.
local ffi = require("ffi")
local bit = require("bit")
local packet = require("core.packet")
local link = require("core.link")
local counter = require("core.counter")
local lib = require("core.lib")

local band, bor, lshift, bswap = bit.band, bit.bor, bit.lshift, bit.bswap
local receive, transmit, nreadable = link.receive, link.transmit, link.nreadable
local free, shiftleft, shiftright = packet.free, packet.shiftleft, packet.shiftright
local cast = ffi.cast
local u16_ptr_t, u32_ptr_t = ffi.typeof("uint16_t *"), ffi.typeof("uint32_t *")

local M = {}

local ETH_HEADER = 14 -- destination, source, ethertype
local TAG = 4         -- TPID and TCI
local TYPE_OFFSET = 12
local tpids = {dot1q = 0x8100, dot1ad = 0x88A8}
M.tpids = tpids

-- The tag (TPID, then TCI with PCP and DEI 0) as it sits in memory, read as a uint32: network order.
local function build_tag (vid, tpid)
   return bswap(bor(lshift(tpid, 16), vid))
end
M.build_tag = build_tag

-- Removes the 4 bytes after the addresses (the tag): the addresses move 4 bytes up, last word first.
local function pop_tag (p)
   local w = cast(u32_ptr_t, p.data)
   w[3], w[2], w[1] = w[2], w[1], w[0]
   return shiftleft(p, TAG)
end
M.pop_tag = pop_tag

-- Inserts `tag` (as build_tag gives it) after the addresses.
local function push_tag (p, tag)
   p = shiftright(p, TAG)
   local w = cast(u32_ptr_t, p.data)
   w[0], w[1], w[2] = w[1], w[2], w[3]
   w[3] = tag
   return p
end
M.push_tag = push_tag

-- The TCI of a tagged frame, host order (no check that the frame has a tag).
function M.extract_tci (p)
   return lib.ntohs(cast(u16_ptr_t, p.data + TYPE_OFFSET + 2)[0])
end
function M.tci_to_vid (tci) return band(tci, 0xFFF) end

-- Parameters shared by the three apps.
local encapsulation = {
   default = "dot1q",
   allows = '"dot1q" (0x8100), "dot1ad" (0x88a8) or an ethertype number 1 to 65535',
   check = function (v)
      if tpids[v] then return tpids[v] end
      v = tonumber(v)
      if v and v == math.floor(v) and v >= 1 and v <= 0xFFFF then return v end
   end,
}
local function tpid_of (encap) -- the default comes unchecked
   return tpids[encap] or encap
end
local vid_param = {required = true, integer = true, min = 0, max = 4094,
                   allows = "a VLAN ID, a whole number from 0 to 4094"}

-- Adds counts gathered in locals to an app's counters, once a push.
local function count (shm, name, n)
   if n > 0 then counter.add(shm[name], n) end
end

-- Tagger: every frame from `input` gets the tag, to `output`. Frames shorter than an Ethernet
-- header are dropped (truncated).
local Tagger = {
   config = {encapsulation = encapsulation, tag = vid_param},
   shm = {tagged = {counter}, truncated = {counter}},
}
M.Tagger = Tagger

function Tagger:new (conf)
   return setmetatable({tag = build_tag(conf.tag, tpid_of(conf.encapsulation))},
                       {__index = Tagger})
end

function Tagger:push ()
   local input, output, tag = self.input.input, self.output.output, self.tag
   local tagged, truncated = 0, 0
   for _ = 1, nreadable(input) do
      local p = receive(input)
      if p.length >= ETH_HEADER then
         transmit(output, push_tag(p, tag))
         tagged = tagged + 1
      else
         free(p)
         truncated = truncated + 1
      end
   end
   count(self.shm, "tagged", tagged)
   count(self.shm, "truncated", truncated)
end

-- Untagger: frames from `input` carrying exactly the configured tag (TPID and VID; the priority
-- bits may be anything) leave on `output` without it; the others are dropped and counted.
local Untagger = {
   config = {encapsulation = encapsulation, tag = vid_param},
   shm = {untagged = {counter}, wrong_tag = {counter}, no_tag = {counter}, truncated = {counter}},
}
M.Untagger = Untagger

function Untagger:new (conf)
   local tpid = tpid_of(conf.encapsulation)
   -- As memory reads it: the TPID and the VID bits of the TCI, and the TPID alone.
   return setmetatable({tag = build_tag(conf.tag, tpid), mask = build_tag(0x0FFF, 0xFFFF),
                        tpid = bswap(lshift(tpid, 16))}, {__index = Untagger})
end

function Untagger:push ()
   local input, output = self.input.input, self.output.output
   local tag, mask, tpid = self.tag, self.mask, self.tpid
   local untagged, wrong, none, truncated = 0, 0, 0, 0
   for _ = 1, nreadable(input) do
      local p = receive(input)
      if p.length < ETH_HEADER + TAG then
         free(p)
         truncated = truncated + 1
      else
         local word = cast(u32_ptr_t, p.data + TYPE_OFFSET)[0]
         if band(word, mask) == tag then
            transmit(output, pop_tag(p))
            untagged = untagged + 1
         else
            if band(word, 0xFFFF) == tpid then wrong = wrong + 1 else none = none + 1 end
            free(p)
         end
      end
   end
   count(self.shm, "untagged", untagged)
   count(self.shm, "wrong_tag", wrong)
   count(self.shm, "no_tag", none)
   count(self.shm, "truncated", truncated)
end

-- VlanMux: a frame on input `trunk` tagged with the TPID goes untagged to output vlan<VID>; any
-- other frame (untagged, or tagged with another TPID), and a VID 0 (priority) frame, untagged, go
-- to `native`; with no such port it is dropped (no_port). A frame on input vlan<VID> goes to
-- `trunk` tagged with VID, one on `native` as it is. Port names are checked when linked.
local VlanMux = {
   config = {encapsulation = encapsulation},
   shm = {demuxed = {counter}, native_in = {counter}, muxed = {counter}, native_out = {counter},
          no_port = {counter}, truncated = {counter}},
   push_link = {},
}
M.VlanMux = VlanMux

function VlanMux:new (conf)
   local tpid = tpid_of(conf.encapsulation)
   local o = {tpid = tpid, tpid_memory = bswap(lshift(tpid, 16)), vlan_links = {}, tags = {}}
   return setmetatable(o, {__index = VlanMux})
end

-- The VID of port `name` (0 for native), nil for trunk; any other name is refused.
local function port_vid (name)
   if name == "trunk" then return nil end
   if name == "native" then return 0 end
   local vid = tonumber(name:match("^vlan(%d+)$"))
   if not vid or vid < 1 or vid > 4094 then
      error(("VlanMux: port '%s' is not trunk, native or vlan<VID> with VID 1 to 4094"):format(name), 0)
   end
   return vid
end

function VlanMux:link (dir, name)
   local vid = port_vid(name)
   if not vid then return end
   if dir == "output" then
      self.vlan_links[vid] = self.output[name]
   elseif vid > 0 then
      local tag = build_tag(vid, self.tpid) -- one closure per port, made when it is linked
      self.push_link[name] = function (app, l) return app:push_from_vlan(l, tag) end
   end
end

function VlanMux:unlink (dir, name)
   local vid = port_vid(name)
   if vid and dir == "output" then self.vlan_links[vid] = nil end
end

-- A frame to `o`, or dropped when that port has no link; returns 1 when dropped.
local function send (o, p)
   if o then transmit(o, p) return 0 end
   free(p)
   return 1
end

function VlanMux:push_from_vlan (l, tag)
   local trunk = self.output.trunk
   local muxed, dropped, truncated = 0, 0, 0
   for _ = 1, nreadable(l) do
      local p = receive(l)
      if p.length >= ETH_HEADER then
         local d = send(trunk, push_tag(p, tag))
         muxed, dropped = muxed + 1 - d, dropped + d
      else
         free(p)
         truncated = truncated + 1
      end
   end
   count(self.shm, "muxed", muxed)
   count(self.shm, "no_port", dropped)
   count(self.shm, "truncated", truncated)
end

function VlanMux.push_link:native (l)
   local trunk = self.output.trunk
   local sent, dropped = 0, 0
   for _ = 1, nreadable(l) do
      local d = send(trunk, receive(l))
      sent, dropped = sent + 1 - d, dropped + d
   end
   count(self.shm, "native_in", sent)
   count(self.shm, "no_port", dropped)
end

function VlanMux.push_link:trunk (l)
   local links, tpid = self.vlan_links, self.tpid_memory
   local native = links[0]
   local demuxed, nat, dropped, truncated = 0, 0, 0, 0
   for _ = 1, nreadable(l) do
      local p = receive(l)
      if p.length < ETH_HEADER then
         free(p)
         truncated = truncated + 1
      elseif cast(u16_ptr_t, p.data + TYPE_OFFSET)[0] == tpid then
         if p.length < ETH_HEADER + TAG then
            free(p)
            truncated = truncated + 1
         else
            local vid = band(lib.ntohs(cast(u16_ptr_t, p.data + TYPE_OFFSET + 2)[0]), 0xFFF)
            local d = send(links[vid], pop_tag(p))
            if vid == 0 then nat = nat + 1 - d else demuxed = demuxed + 1 - d end
            dropped = dropped + d
         end
      else
         local d = send(native, p)
         nat, dropped = nat + 1 - d, dropped + d
      end
   end
   count(self.shm, "demuxed", demuxed)
   count(self.shm, "native_out", nat)
   count(self.shm, "no_port", dropped)
   count(self.shm, "truncated", truncated)
end

-- For selftests: an app whose output links a test fills by hand before calling the app under test.
M.Hand = {new = function () return setmetatable({}, {__index = {}}) end}

-- The counters of an app (its shm frame) as a table of numbers.
function M.counters (app)
   local t = {}
   for name, c in pairs(app.shm) do
      if name ~= "dtime" and type(c) == "cdata" then t[name] = tonumber(counter.read(c)) end
   end
   return t
end

function M.selftest ()
   print("selftest: apps.vlan.vlan")
   local engine, config = require("core.engine"), require("core.config")
   local function frame (hex) return packet.from_string(lib.hexundump(hex, #hex / 2)) end
   -- 34 bytes: broadcast from 02:00:00:00:00:01, IPv4, a 20-byte header.
   local good = "ffffffffffff0200000000010800450000140000000040060000000000000000000000"
   -- push_tag and pop_tag undo each other for every VID and both TPIDs, keeping the addresses.
   local p = frame(good)
   local original = packet.tostring(p)
   for _, tpid in pairs(tpids) do
      for vid = 0, 4095 do
         p = push_tag(p, build_tag(vid, tpid))
         assert(p.length == #original + 4 and M.tci_to_vid(M.extract_tci(p)) == vid)
         assert(lib.ntohs(cast(u16_ptr_t, p.data + 12)[0]) == tpid)
         local s = packet.tostring(p)
         assert(s:sub(1, 12) == original:sub(1, 12) and s:sub(17) == original:sub(13))
         p = pop_tag(p)
         assert(packet.tostring(p) == original)
      end
   end
   free(p)

   -- The apps in a graph, fed by hand: each input frame is counted once.
   local c = config.new()
   config.app(c, "hand", M.Hand)
   config.app(c, "tag", Tagger, {tag = 42})
   config.app(c, "untag", Untagger, {tag = 42})
   config.app(c, "mux", VlanMux, {encapsulation = "dot1ad"})
   config.app(c, "sink", require("apps.basic.basic_apps").Sink)
   config.link(c, "hand.tag -> tag.input")
   config.link(c, "hand.untag -> untag.input")
   config.link(c, "hand.trunk -> mux.trunk")
   config.link(c, "tag.output -> sink.tagged")
   config.link(c, "untag.output -> sink.untagged")
   config.link(c, "mux.vlan7 -> sink.vlan7")
   engine.configure(c)
   local apps, hand = engine.app_table, engine.app_table.hand.output
   local function take (port)
      local l = apps.sink.input[port]
      local got = {}
      for i = 1, link.nreadable(l) do
         local q = link.receive(l)
         got[i] = packet.tostring(q)
         free(q)
      end
      return got
   end
   link.transmit(hand.tag, frame(good))
   link.transmit(hand.tag, frame("ffffffffffff0200")) -- 8 bytes
   apps.tag:push()
   assert(lib.equal(M.counters(apps.tag), {tagged = 1, truncated = 1}), lib.describe(M.counters(apps.tag)))
   local tagged = take("tagged")
   assert(#tagged == 1 and tagged[1] == original:sub(1, 12) .. "\x81\x00\x00\x2a" .. original:sub(13))
   -- VID 43, no tag, too short for a tag, VID 42 with priority 5: only the last passes.
   link.transmit(hand.untag, push_tag(frame(good), build_tag(43, 0x8100)))
   link.transmit(hand.untag, frame(good))
   link.transmit(hand.untag, frame("ffffffffffff020000000001810000"))
   link.transmit(hand.untag, push_tag(frame(good), build_tag(0xA000 + 42, 0x8100)))
   apps.untag:push()
   local untagged = take("untagged")
   assert(#untagged == 1 and untagged[1] == original)
   assert(lib.equal(M.counters(apps.untag), {untagged = 1, wrong_tag = 1, no_tag = 1, truncated = 1}),
          lib.describe(M.counters(apps.untag)))
   -- The mux: VID 7 to vlan7; VID 8 (no port) and untagged (no native port) dropped; a tagged
   -- frame cut inside its tag.
   link.transmit(hand.trunk, push_tag(frame(good), build_tag(7, 0x88A8)))
   link.transmit(hand.trunk, push_tag(frame(good), build_tag(8, 0x88A8)))
   link.transmit(hand.trunk, frame(good))
   link.transmit(hand.trunk, frame("ffffffffffff02000000000188a800"))
   apps.mux.push_link.trunk(apps.mux, hand.trunk)
   local vlan7 = take("vlan7")
   assert(#vlan7 == 1 and vlan7[1] == original)
   assert(lib.equal(M.counters(apps.mux), {demuxed = 1, native_in = 0, muxed = 0, native_out = 0,
                                           no_port = 2, truncated = 1}), lib.describe(M.counters(apps.mux)))
   engine.configure(config.new())

   -- Bad port names and parameters are refused, naming them.
   local bad = config.new()
   config.app(bad, "mux", VlanMux)
   config.app(bad, "sink", require("apps.basic.basic_apps").Sink)
   config.link(bad, "mux.vlan4095 -> sink.input")
   local ok, err = pcall(engine.configure, bad)
   assert(not ok and err:match("port 'vlan4095' is not trunk, native or vlan<VID>"), err)
   engine.configure(config.new())
   for _, case in ipairs({{{tag = 4095}, "parameter 'tag' must be a VLAN ID, a whole number from 0 to 4094"},
                          {{tag = 1, encapsulation = "qinq"}, "parameter 'encapsulation' must be \"dot1q\""},
                          {{}, "missing required parameter 'tag'"}}) do
      local ok2, err2 = pcall(lib.parse, case[1], Tagger.config)
      assert(not ok2 and err2:find(case[2], 1, true), err2)
   end
   assert(lib.parse({tag = 5, encapsulation = 0x9100}, Tagger.config).encapsulation == 0x9100)
   assert(lib.parse({tag = 5, encapsulation = "dot1ad"}, Tagger.config).encapsulation == 0x88A8)
   print("selftest: apps.vlan.vlan ok")
end

return M

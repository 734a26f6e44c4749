-- apps.ipv4.arp: ARP (RFC 826) between a network function (`north`) and an Ethernet port
-- (`south`), as Snabb's ARP app of this name: it answers requests for its own address(es),
-- resolves the next hop's MAC address (a request every 3 seconds until a reply or request from
-- the next hop tells it; or a static next_mac), and sends the function's frames south with that
-- destination and its own source address. Until the next hop is resolved, frames from north wait
-- in a bounded queue (max_queue; those beyond it are dropped and counted). Every frame from south
-- that is not ARP goes north unchanged. Also exports mac_param and ip_param, the address
-- parameters apps.ipv6.nd_light shares.
local ffi = require("ffi")
local bit = require("bit")
local packet = require("core.packet")
local link = require("core.link")
local counter = require("core.counter")
local engine = require("core.engine")
local lib = require("core.lib")
local ethernet = require("lib.protocol.ethernet")
require("core.clib_h")

local C = ffi.C
local receive, transmit, nreadable = link.receive, link.transmit, link.nreadable
local free = packet.free
local cast, copy = ffi.cast, ffi.copy
local htons = lib.htons

local M = {}

-- Address parameters: text ("02:00:00:00:00:01", "10.0.0.1", "2001:db8::1"), or the address's
-- bytes as a Lua string or cdata (what Snabb's lib.protocol pton gives). Values are byte strings.
local function bytes_of (v, n)
   if type(v) == "cdata" and ffi.sizeof(v) == n then return ffi.string(v, n) end
   if type(v) == "string" and #v == n then return v end
end

local function parse_mac (v)
   if type(v) == "string" then
      local ok, mac = pcall(ethernet.pton, ethernet, v)
      if ok then return ffi.string(mac, 6) end
   end
   return bytes_of(v, 6)
end

function M.mac_param (spec)
   spec.check = parse_mac
   spec.allows = 'a MAC address ("02:00:00:00:00:01", or its 6 bytes)'
   return spec
end

local AF_INET, AF_INET6 = 2, 10
local function parse_ip (family, n)
   local buf = ffi.new("uint8_t[16]")
   return function (v)
      if type(v) == "string" and C.inet_pton(family, v, buf) == 1 then return ffi.string(buf, n) end
      return bytes_of(v, n)
   end
end
local parse_ipv4, parse_ipv6 = parse_ip(AF_INET, 4), parse_ip(AF_INET6, 16)

-- version 4 or 6; list = true also takes an array of addresses (a value is then an array).
function M.ip_param (version, spec, list)
   local parse = version == 4 and parse_ipv4 or parse_ipv6
   local example = version == 4 and '"10.0.0.1"' or '"2001:db8::1"'
   spec.allows = ("an IPv%d address (%s, or its %d bytes)%s"):format(
      version, example, version == 4 and 4 or 16, list and ", or an array of them" or "")
   spec.check = function (v)
      if list and type(v) == "table" and #v > 0 then
         local all = {}
         for i, a in ipairs(v) do all[i] = parse(a); if not all[i] then return nil end end
         return all
      end
      local a = parse(v)
      return a and (list and {a} or a)
   end
   return spec
end

local function ntop (bytes)
   local family = #bytes == 4 and AF_INET or AF_INET6
   local text = ffi.new("char[46]")
   return ffi.string(C.inet_ntop(family, bytes, text, 46))
end
M.ntop = ntop

local function mac_ntop (bytes)
   return (bytes:gsub(".", function (c) return ("%02x:"):format(c:byte()) end):sub(1, -2))
end
M.mac_ntop = mac_ntop

ffi.cdef[[
struct snabb_arp_frame {
   uint8_t  dhost[6], shost[6];
   uint16_t type;
   uint16_t htype, ptype;
   uint8_t  hlen, plen;
   uint16_t oper;
   uint8_t  sha[6], spa[4], tha[6], tpa[4];
} __attribute__((packed));
]]
local arp_frame_ptr_t = ffi.typeof("struct snabb_arp_frame *")
local u16_ptr_t, u32_ptr_t = ffi.typeof("uint16_t *"), ffi.typeof("uint32_t *")
local ETH_HEADER = 14
local ARP_FRAME = ffi.sizeof("struct snabb_arp_frame") -- 42
local ETHERTYPE_ARP = htons(0x0806)                     -- as read from memory
local REQUEST, REPLY = 1, 2
local REQUEST_INTERVAL = 3 -- seconds between requests while unresolved (Snabb's)
local SHARED_INTERVAL = 0.1 -- seconds between looks at shared_next_mac_key while unresolved

-- A 42-byte ARP frame.
local function arp_frame (dst, src, oper, sha, spa, tha, tpa)
   local p = packet.allocate()
   p.length = ARP_FRAME
   local h = cast(arp_frame_ptr_t, p.data)
   copy(h.dhost, dst, 6); copy(h.shost, src, 6)
   h.type = ETHERTYPE_ARP
   h.htype, h.ptype, h.hlen, h.plen = htons(1), htons(0x0800), 6, 4
   h.oper = htons(oper)
   copy(h.sha, sha, 6); copy(h.spa, spa, 4); copy(h.tha, tha, 6); copy(h.tpa, tpa, 4)
   return p
end

local ARP = {
   config = {
      self_mac = M.mac_param({}),
      self_ip = M.ip_param(4, {required = true}, true),
      next_mac = M.mac_param({}),
      next_ip = M.ip_param(4, {}),
      max_queue = {default = 256, integer = true, min = 0, max = 65536, unit = "frames"},
      shared_next_mac_key = {type = "string"},
      alarm_notification = {type = "boolean"}, -- Snabb's; there are no alarms here
      quiet = {type = "boolean", default = false},
   },
   shm = {
      ["next-hop-macaddr-v4"] = {counter},
      ["in-arp-request-bytes"] = {counter}, ["in-arp-request-packets"] = {counter},
      ["out-arp-request-bytes"] = {counter}, ["out-arp-request-packets"] = {counter},
      ["in-arp-reply-bytes"] = {counter}, ["in-arp-reply-packets"] = {counter},
      ["out-arp-reply-bytes"] = {counter}, ["out-arp-reply-packets"] = {counter},
      ["in-arp-other-packets"] = {counter}, ["in-arp-malformed-packets"] = {counter},
      ["in-truncated-packets"] = {counter},
      ["out-unresolved-drop-packets"] = {counter}, ["out-truncated-packets"] = {counter},
   },
   inputs = {"north", "south"},
   outputs = {"north", "south"},
}
M.ARP = ARP

function ARP:new (conf)
   if not conf.next_mac and not conf.next_ip then
      error("needs next_ip (the next hop to resolve) or next_mac (its MAC address)", 0)
   end
   local self_mac = conf.self_mac
   if not self_mac then -- random, locally administered, unicast
      local b = lib.random_bytes(6)
      b[0] = bit.bor(bit.band(b[0], 0xFC), 0x02)
      self_mac = ffi.string(b, 6)
   end
   local o = setmetatable({
      conf = conf, self_mac = self_mac, self_ips = conf.self_ip, next_ip = conf.next_ip,
      -- The 12 bytes written on every frame going south: next hop's MAC, then ours.
      header = ffi.new("uint8_t[12]"),
      resolved = false, next_request = 0, next_shared_check = 0,
      queue = ffi.new("struct packet *[?]", math.max(conf.max_queue, 1)), queued = 0,
   }, {__index = ARP})
   o.self_ip_words = ffi.new("uint32_t[?]", #o.self_ips)
   for i, ip in ipairs(o.self_ips) do o.self_ip_words[i - 1] = cast(u32_ptr_t, ip)[0] end
   o.next_ip_word = o.next_ip and cast(u32_ptr_t, o.next_ip)[0] or -1
   copy(o.header + 6, self_mac, 6)
   if conf.next_mac then o:resolve(conf.next_mac, "configured") end
   return o
end

function ARP:log (fmt, ...)
   if not self.conf.quiet then io.stderr:write(("arp: " .. fmt .. "\n"):format(...)) end
end

-- The next hop's MAC address is `mac` (a byte string): frames south get it, the queue goes.
function ARP:resolve (mac, how)
   if self.resolved and ffi.string(self.header, 6) == mac then return end
   copy(self.header, mac, 6)
   self.resolved = true
   self.next_mac = mac
   self:log("next hop %s is %s (%s)", self.next_ip and ntop(self.next_ip) or "", mac_ntop(mac), how)
   self:count_mac()
   local key = self.conf.shared_next_mac_key
   if key and how ~= "from a peer" then
      local shm = require("core.shm")
      local ok, shared = pcall(shm.create, key, "uint8_t[6]")
      if ok then copy(shared, mac, 6); shm.unmap(shared)
      else self:log("could not share the next hop's MAC at %s: %s", key, tostring(shared)) end
   end
end

-- The next hop's MAC as a counter (Snabb's), once the engine has made the app's counters: at
-- resolution, or when linked (after new, for a configured next_mac).
function ARP:count_mac ()
   if not self.resolved or not rawget(self, "shm") then return end
   local u = ffi.new("union { uint64_t u64; uint8_t bytes[8]; }")
   copy(u.bytes, self.header, 6)
   counter.set(self.shm["next-hop-macaddr-v4"], u.u64)
end
ARP.link = ARP.count_mac

-- While unresolved: a look at the peers' shared key (Snabb looks every push; a file system call
-- each breath is more than the news is worth), and a request when one is due.
function ARP:unresolved (osouth)
   local now = engine.now()
   local key = self.conf.shared_next_mac_key
   if key and now >= self.next_shared_check then -- a peer's resolution, every SHARED_INTERVAL
      self.next_shared_check = now + SHARED_INTERVAL
      local shm = require("core.shm")
      local ok, shared = pcall(shm.open, key, "uint8_t[6]", true)
      if ok then
         local mac = ffi.string(shared, 6)
         shm.unmap(shared)
         self:resolve(mac, "from a peer")
         return
      end
   end
   if now < self.next_request then return end
   self.next_request = now + REQUEST_INTERVAL
   if not osouth then return end
   self:log("resolving next hop %s", ntop(self.next_ip))
   local p = arp_frame("\255\255\255\255\255\255", self.self_mac, REQUEST, self.self_mac,
                       self.self_ips[1], "\0\0\0\0\0\0", self.next_ip)
   counter.add(self.shm["out-arp-request-packets"])
   counter.add(self.shm["out-arp-request-bytes"], p.length)
   transmit(osouth, p)
end

function ARP:is_self_ip (word)
   local ips = self.self_ip_words
   for i = 0, #self.self_ips - 1 do
      if ips[i] == word then return true end
   end
   return false
end

-- An ARP frame from south (at least ARP_FRAME bytes).
function ARP:arp (p, osouth)
   local h = cast(arp_frame_ptr_t, p.data)
   local shm = self.shm
   if h.htype ~= htons(1) or h.ptype ~= htons(0x0800) or h.hlen ~= 6 or h.plen ~= 4 then
      counter.add(shm["in-arp-malformed-packets"])
      return
   end
   local oper = lib.ntohs(h.oper)
   if oper == REQUEST then
      counter.add(shm["in-arp-request-packets"])
      counter.add(shm["in-arp-request-bytes"], p.length)
   elseif oper == REPLY then
      counter.add(shm["in-arp-reply-packets"])
      counter.add(shm["in-arp-reply-bytes"], p.length)
   else
      counter.add(shm["in-arp-other-packets"])
      return
   end
   -- The next hop speaking (a reply, or its own request: RFC 826 learns from both) tells its MAC.
   if cast(u32_ptr_t, h.spa)[0] == self.next_ip_word and not self.conf.next_mac then
      self:resolve(ffi.string(h.sha, 6), oper == REPLY and "reply" or "its request")
   end
   if oper == REQUEST and self:is_self_ip(cast(u32_ptr_t, h.tpa)[0]) and osouth then
      local r = arp_frame(h.sha, self.self_mac, REPLY, self.self_mac, h.tpa, h.sha, h.spa)
      counter.add(shm["out-arp-reply-packets"])
      counter.add(shm["out-arp-reply-bytes"], r.length)
      transmit(osouth, r)
   end
end

function ARP:push ()
   local isouth, osouth = self.input.south, self.output.south
   local inorth, onorth = self.input.north, self.output.north
   if not self.resolved then self:unresolved(osouth) end

   if isouth then
      local truncated = 0
      for _ = 1, nreadable(isouth) do
         local p = receive(isouth)
         if p.length < ETH_HEADER then
            free(p)
            truncated = truncated + 1
         elseif cast(u16_ptr_t, p.data + 12)[0] ~= ETHERTYPE_ARP then
            transmit(onorth, p)
         else
            if p.length >= ARP_FRAME then self:arp(p, osouth) else truncated = truncated + 1 end
            free(p)
         end
      end
      if truncated > 0 then counter.add(self.shm["in-truncated-packets"], truncated) end
   end

   if not inorth then return end
   if self.resolved then
      if self.queued > 0 then self:flush(osouth) end
      local header, truncated = self.header, 0
      for _ = 1, nreadable(inorth) do
         local p = receive(inorth)
         if p.length >= ETH_HEADER then
            copy(p.data, header, 12)
            transmit(osouth, p)
         else
            free(p)
            truncated = truncated + 1
         end
      end
      if truncated > 0 then counter.add(self.shm["out-truncated-packets"], truncated) end
   else
      local queue, max, dropped = self.queue, self.conf.max_queue, 0
      for _ = 1, nreadable(inorth) do
         local p = receive(inorth)
         if self.queued < max then
            queue[self.queued] = p
            self.queued = self.queued + 1
         else
            free(p)
            dropped = dropped + 1
         end
      end
      if dropped > 0 then counter.add(self.shm["out-unresolved-drop-packets"], dropped) end
   end
end

-- Sends what waited for the next hop's address, in order.
function ARP:flush (osouth)
   local queue, truncated = self.queue, 0
   for i = 0, self.queued - 1 do
      local p = queue[i]
      if p.length >= ETH_HEADER then
         copy(p.data, self.header, 12)
         transmit(osouth, p)
      else
         free(p)
         truncated = truncated + 1
      end
   end
   self.queued = 0
   if truncated > 0 then counter.add(self.shm["out-truncated-packets"], truncated) end
end

function ARP:stop ()
   for i = 0, self.queued - 1 do free(self.queue[i]) end
   self.queued = 0
end

function M.selftest ()
   print("selftest: apps.ipv4.arp")
   local config = require("core.config")
   local vlan = require("apps.vlan.vlan")
   local c = config.new()
   config.app(c, "hand", vlan.Hand)
   config.app(c, "arp", ARP, {self_ip = {"10.0.0.1", "10.0.0.2"}, self_mac = "02:00:00:00:00:01",
                              next_ip = "10.0.0.254", max_queue = 2, quiet = true})
   config.app(c, "sink", require("apps.basic.basic_apps").Sink)
   config.link(c, "hand.south -> arp.south")
   config.link(c, "hand.north -> arp.north")
   config.link(c, "arp.south -> sink.south")
   config.link(c, "arp.north -> sink.north")
   engine.configure(c)
   local arp, hand, sink = engine.app_table.arp, engine.app_table.hand.output, engine.app_table.sink.input
   local function take (port)
      local got = {}
      for i = 1, nreadable(sink[port]) do
         local q = receive(sink[port])
         got[i] = packet.tostring(q)
         free(q)
      end
      return got
   end
   local function n (name) return tonumber(counter.read(arp.shm[name])) end
   local ip = function (s) return parse_ipv4(s) end
   local mac = parse_mac
   -- The first push asks for the next hop, broadcast, from our first address.
   arp:push()
   local out = take("south")
   assert(#out == 1)
   local h = cast(arp_frame_ptr_t, out[1])
   assert(ffi.string(h.dhost, 6) == mac("ff:ff:ff:ff:ff:ff") and lib.ntohs(h.oper) == REQUEST)
   assert(ffi.string(h.spa, 4) == ip("10.0.0.1") and ffi.string(h.tpa, 4) == ip("10.0.0.254"))
   -- Three frames from north wait (two fit the queue; one is dropped).
   for _ = 1, 3 do transmit(hand.north, packet.from_string(("\0"):rep(60))) end
   arp:push()
   assert(#take("south") == 0 and n("out-unresolved-drop-packets") == 1 and arp.queued == 2)
   -- A request for our second address is answered, from it, to its sender.
   local req = arp_frame(mac("ff:ff:ff:ff:ff:ff"), mac("02:00:00:00:00:09"), REQUEST,
                         mac("02:00:00:00:00:09"), ip("10.0.0.9"), mac("00:00:00:00:00:00"), ip("10.0.0.2"))
   transmit(hand.south, req)
   -- Not for us: counted, not answered; a cut frame; an IPv4 frame passes north.
   transmit(hand.south, arp_frame(mac("ff:ff:ff:ff:ff:ff"), mac("02:00:00:00:00:09"), REQUEST,
                                  mac("02:00:00:00:00:09"), ip("10.0.0.9"), mac("00:00:00:00:00:00"),
                                  ip("10.0.0.3")))
   local cut = packet.clone(req); cut.length = 30
   transmit(hand.south, cut)
   local ipv4 = packet.from_string(("\0"):rep(12) .. "\8\0" .. ("\0"):rep(46))
   transmit(hand.south, ipv4)
   arp:push()
   out = take("south")
   assert(#out == 1, #out)
   h = cast(arp_frame_ptr_t, out[1])
   assert(lib.ntohs(h.oper) == REPLY and ffi.string(h.dhost, 6) == mac("02:00:00:00:00:09"))
   assert(ffi.string(h.sha, 6) == mac("02:00:00:00:00:01") and ffi.string(h.spa, 4) == ip("10.0.0.2"))
   assert(ffi.string(h.tha, 6) == mac("02:00:00:00:00:09") and ffi.string(h.tpa, 4) == ip("10.0.0.9"))
   assert(#take("north") == 1)
   assert(n("in-arp-request-packets") == 2 and n("out-arp-reply-packets") == 1 and n("in-truncated-packets") == 1)
   -- The next hop's reply resolves it: the queue goes south rewritten, then new frames.
   transmit(hand.south, arp_frame(mac("02:00:00:00:00:01"), mac("02:00:00:00:00:fe"), REPLY,
                                  mac("02:00:00:00:00:fe"), ip("10.0.0.254"), mac("02:00:00:00:00:01"),
                                  ip("10.0.0.1")))
   transmit(hand.north, packet.from_string(("\1"):rep(60)))
   transmit(hand.north, packet.from_string(("\1"):rep(13)))
   arp:push()
   out = take("south")
   assert(#out == 3)
   for i = 1, 3 do
      assert(out[i]:sub(1, 12) == mac("02:00:00:00:00:fe") .. mac("02:00:00:00:00:01"))
      assert(out[i]:sub(13) == (i < 3 and ("\0"):rep(48) or ("\1"):rep(48)))
   end
   assert(n("out-truncated-packets") == 1 and n("in-arp-reply-packets") == 1)
   assert(counter.read(arp.shm["next-hop-macaddr-v4"]) == 0xfe0000000002ULL)
   engine.configure(config.new())
   -- Two peers on one shared_next_mac_key: what one learns, the other reads.
   c = config.new()
   config.app(c, "hand", vlan.Hand)
   for _, name in ipairs({"a1", "a2"}) do
      config.app(c, name, ARP, {self_ip = "10.0.0.1", next_ip = "10.0.0.254", quiet = true,
                                shared_next_mac_key = "group/arp-selftest-next-mac"})
      config.link(c, name .. ".south -> sink." .. name)
   end
   config.app(c, "sink", require("apps.basic.basic_apps").Sink)
   config.link(c, "hand.south -> a1.south")
   engine.configure(c)
   local a1, a2 = engine.app_table.a1, engine.app_table.a2
   a1:push(); a2:push()
   assert(not a1.resolved and not a2.resolved)
   transmit(engine.app_table.hand.output.south,
            arp_frame(mac("02:00:00:00:00:01"), mac("02:00:00:00:00:fe"), REPLY, mac("02:00:00:00:00:fe"),
                      ip("10.0.0.254"), mac("02:00:00:00:00:01"), ip("10.0.0.1")))
   a1:push()
   a2.next_shared_check = 0 -- (due at once rather than in 0.1 s)
   a2:push()
   assert(a1.resolved and a2.resolved and a2.next_mac == mac("02:00:00:00:00:fe"))
   engine.configure(config.new())
   require("core.shm").unlink("group/arp-selftest-next-mac")
   -- Parameters: one line naming what is wrong.
   local ok, err = pcall(lib.parse, {self_ip = "10.0.0.300"}, ARP.config)
   assert(not ok and err:match("^parameter 'self_ip' must be an IPv4 address"), err)
   ok, err = pcall(lib.parse, {self_ip = "10.0.0.1", next_mac = "02:00:00:00:00"}, ARP.config)
   assert(not ok and err:match("^parameter 'next_mac' must be a MAC address"), err)
   ok, err = pcall(ARP.new, ARP, lib.parse({self_ip = "10.0.0.1"}, ARP.config))
   assert(not ok and err:match("needs next_ip"), err)
   print("selftest: apps.ipv4.arp ok")
end

return M

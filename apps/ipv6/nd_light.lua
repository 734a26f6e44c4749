-- apps.ipv6.nd_light: the part of IPv6 neighbour discovery (RFC 4861) a network function needs on
-- one link, as Snabb's app of this name: it answers Neighbor Solicitations for its own
-- address(es) with a Neighbor Advertisement, resolves its next hop by soliciting it (every `delay`
-- ms, `retrans` times at most) and learns its MAC address from the solicited advertisement, then
-- writes the Ethernet header (next hop's MAC, ours, 0x86dd) on every frame from `north` before it
-- goes `south`. Frames from north are dropped and counted until then. Frames from south that are
-- not NS/NA go north unchanged. ICMPv6 checksums are verified on what arrives and computed on
-- what is sent (ffi.C.cksum_generic over the pseudo-header and the message).
local ffi = require("ffi")
local bit = require("bit")
local packet = require("core.packet")
local link = require("core.link")
local counter = require("core.counter")
local engine = require("core.engine")
local lib = require("core.lib") -- (also declares ffi.C.cksum_generic)
local arp = require("apps.ipv4.arp") -- the address parameters

local C = ffi.C
local receive, transmit, nreadable = link.receive, link.transmit, link.nreadable
local free = packet.free
local cast, copy = ffi.cast, ffi.copy
local band, rshift = bit.band, bit.rshift
local htons, ntohs = lib.htons, lib.ntohs
local u16_ptr_t = ffi.typeof("uint16_t *")

local M = {}

-- Offsets in a frame: Ethernet, IPv6 (40 bytes), ICMPv6 (type, code, checksum, 4 bytes of flags
-- or reserved, a 16-byte target), then options.
local ETH_HEADER, IP6, ICMP = 14, 14, 54
local TYPE, PAYLOAD_LENGTH, NEXT_HEADER, HOP_LIMIT, SRC, DST = 12, IP6 + 4, IP6 + 6, IP6 + 7, IP6 + 8, IP6 + 24
local FLAGS, TARGET, OPTIONS = ICMP + 4, ICMP + 8, ICMP + 24
local ND_MESSAGE = 24                  -- an NS or NA without options
local ETHERTYPE_IPV6 = htons(0x86dd)   -- as read from memory
local ICMPV6, NS, NA = 58, 135, 136
local SOLICITED, OVERRIDE = 0x40, 0x20 -- NA flags (first byte)
local SLLA, TLLA = 1, 2                -- source / target link-layer address options

-- The ICMPv6 checksum of the message at ICMP (`length` bytes, checksum field included as it is)
-- with the pseudo-header of the frame's addresses: 0 when a received one is right.
local function icmp6_sum (data, length)
   local sum = bit.bnot(C.cksum_generic(data + SRC, 32, 0))
   sum = band(sum, 0xffff) + length + ICMPV6
   sum = band(sum, 0xffff) + rshift(sum, 16)
   return C.cksum_generic(data + ICMP, length, sum)
end

-- Writes the checksum of the message at ICMP.
local function set_icmp6_sum (data, length)
   cast(u16_ptr_t, data + ICMP + 2)[0] = 0
   cast(u16_ptr_t, data + ICMP + 2)[0] = htons(icmp6_sum(data, length))
end
M.icmp6_sum = icmp6_sum

-- An NS or NA frame: Ethernet dst/src, IPv6 src/dst (byte strings), type, flags, target, one
-- link-layer address option.
local function nd_frame (eth_dst, eth_src, ip_src, ip_dst, icmp_type, flags, target, option, mac)
   local p = packet.allocate()
   local d = p.data
   local length = ND_MESSAGE + 8
   p.length = OPTIONS + 8
   ffi.fill(d, p.length)
   copy(d, eth_dst, 6); copy(d + 6, eth_src, 6)
   cast(u16_ptr_t, d + TYPE)[0] = ETHERTYPE_IPV6
   d[IP6] = 0x60
   cast(u16_ptr_t, d + PAYLOAD_LENGTH)[0] = htons(length)
   d[NEXT_HEADER], d[HOP_LIMIT] = ICMPV6, 255
   copy(d + SRC, ip_src, 16); copy(d + DST, ip_dst, 16)
   d[ICMP], d[FLAGS] = icmp_type, flags
   copy(d + TARGET, target, 16)
   d[OPTIONS], d[OPTIONS + 1] = option, 1
   copy(d + OPTIONS + 2, mac, 6)
   set_icmp6_sum(d, length)
   return p
end

local nd_light = {
   config = {
      local_mac = arp.mac_param({required = true}),
      remote_mac = arp.mac_param({}),
      local_ip = arp.ip_param(6, {required = true}, true),
      next_hop = arp.ip_param(6, {required = true}),
      delay = {default = 1000, type = "number", min = 1, unit = "ms"},
      retrans = {integer = true, min = 0, unit = "solicitations"},
      quiet = {type = "boolean", default = false},
   },
   shm = {
      status = {counter, 2}, -- 2: down (not resolved), 1: up
      rxerrors = {counter}, txerrors = {counter}, txdrop = {counter},
      ns_checksum_errors = {counter}, ns_target_address_errors = {counter},
      na_duplicate_errors = {counter}, na_target_address_errors = {counter},
      na_checksum_errors = {counter}, nd_protocol_errors = {counter},
      ns_received = {counter}, na_sent = {counter}, ns_sent = {counter}, na_received = {counter},
   },
   inputs = {"north", "south"},
   outputs = {"north", "south"},
}
M.nd_light = nd_light

-- The solicited-node multicast address of `ip` (ff02::1:ffXX:XXXX) and its MAC (33:33:ff:XX:XX:XX).
local function solicited_node (ip)
   return "\255\2" .. ("\0"):rep(9) .. "\1\255" .. ip:sub(14, 16), "\51\51\255" .. ip:sub(14, 16)
end

function nd_light:new (conf)
   local o = setmetatable({conf = conf, local_ips = conf.local_ip, nsent = 0, next_ns = 0,
                           header = ffi.new("uint8_t[14]"), resolved = false}, {__index = nd_light})
   copy(o.header + 6, conf.local_mac, 6)
   cast(u16_ptr_t, o.header + TYPE)[0] = ETHERTYPE_IPV6
   if conf.remote_mac then o:resolve(conf.remote_mac, "configured") end
   return o
end

function nd_light:log (fmt, ...)
   if not self.conf.quiet then io.stderr:write(("nd_light: " .. fmt .. "\n"):format(...)) end
end

function nd_light:resolve (mac, how)
   copy(self.header, mac, 6)
   self.resolved = true
   self:log("next hop %s is %s (%s)", arp.ntop(self.conf.next_hop), arp.mac_ntop(mac), how)
   self:set_status()
end

-- status 1 (up) once the engine has made the app's counters: at resolution, or when linked
-- (after new, for a configured remote_mac).
function nd_light:set_status ()
   if self.resolved and rawget(self, "shm") then counter.set(self.shm.status, 1) end
end
nd_light.link = nd_light.set_status

-- While unresolved: a solicitation when one is due; after the last, an error (Snabb's).
function nd_light:solicit (osouth)
   local now = engine.now()
   if now < self.next_ns then return end
   local conf = self.conf
   if conf.retrans and self.nsent > conf.retrans then
      error(("ND for next hop %s has failed (%d solicitations unanswered)")
            :format(arp.ntop(conf.next_hop), self.nsent), 0)
   end
   self.next_ns = now + conf.delay / 1000
   local ip, mac = solicited_node(conf.next_hop)
   self:log("soliciting next hop %s", arp.ntop(conf.next_hop))
   transmit(osouth, nd_frame(mac, conf.local_mac, self.local_ips[1], ip, NS, 0, conf.next_hop,
                             SLLA, conf.local_mac))
   self.nsent = self.nsent + 1
   counter.add(self.shm.ns_sent)
end

function nd_light:is_local (target)
   for _, ip in ipairs(self.local_ips) do
      if C.memcmp(target, ip, 16) == 0 then return ip end
   end
end

-- The MAC in the first target link-layer address option of the NA at `d` (options up to `stop`);
-- nil when there is none or an option is malformed (length 0 or past the end).
local function tlla (d, stop)
   local at = OPTIONS
   while at + 2 <= stop do
      local len = d[at + 1] * 8
      if len == 0 or at + len > stop then return nil end
      if d[at] == TLLA and len == 8 then return ffi.string(d + at + 2, 6) end
      at = at + len
   end
end

-- Counts a frame from south as an error, for the reason `name`.
function nd_light:reject (name)
   counter.add(self.shm[name])
   counter.add(self.shm.rxerrors)
end

-- An ICMPv6 NS or NA from south; returns the reply to send, if any. Every frame is counted once:
-- ns_received, na_received (accepted) or rxerrors (with the reason's counter).
function nd_light:nd (p)
   local d, shm = p.data, self.shm
   local length = ntohs(cast(u16_ptr_t, d + PAYLOAD_LENGTH)[0])
   if p.length < OPTIONS or length < ND_MESSAGE or IP6 + 40 + length > p.length
      or d[HOP_LIMIT] ~= 255 or d[ICMP + 1] ~= 0 then
      return self:reject("nd_protocol_errors") -- cut, off-link (RFC 4861 7.1.1) or a non-zero code
   end
   if d[ICMP] == NS then
      if icmp6_sum(d, length) ~= 0 then return self:reject("ns_checksum_errors") end
      local ip = self:is_local(d + TARGET)
      if not ip then return self:reject("ns_target_address_errors") end
      counter.add(shm.ns_received)
      -- To the solicitor, or to all nodes for duplicate address detection (source ::).
      local src = ffi.string(d + SRC, 16)
      local flags, dst, eth_dst = SOLICITED + OVERRIDE, src, ffi.string(d + 6, 6)
      if src == ("\0"):rep(16) then
         flags, dst, eth_dst = OVERRIDE, "\255\2" .. ("\0"):rep(13) .. "\1", "\51\51\0\0\0\1"
      end
      counter.add(shm.na_sent)
      return nd_frame(eth_dst, self.conf.local_mac, ip, dst, NA, flags, ip, TLLA, self.conf.local_mac)
   end
   if icmp6_sum(d, length) ~= 0 then return self:reject("na_checksum_errors") end
   if self.resolved then return self:reject("na_duplicate_errors") end
   if C.memcmp(d + TARGET, self.conf.next_hop, 16) ~= 0 or band(d[FLAGS], SOLICITED) == 0 then
      return self:reject("na_target_address_errors")
   end
   local mac = tlla(d, IP6 + 40 + length)
   if not mac then return self:reject("nd_protocol_errors") end
   counter.add(shm.na_received)
   self:resolve(mac, "advertised")
end

function nd_light:push ()
   local isouth, osouth = self.input.south, self.output.south
   local inorth, onorth = self.input.north, self.output.north
   if not self.resolved and osouth then self:solicit(osouth) end

   if isouth then
      for _ = 1, nreadable(isouth) do
         local p = receive(isouth)
         local d = p.data
         if p.length >= ICMP + 1 and cast(u16_ptr_t, d + TYPE)[0] == ETHERTYPE_IPV6
            and d[NEXT_HEADER] == ICMPV6 and (d[ICMP] == NS or d[ICMP] == NA) then
            local reply = self:nd(p)
            free(p)
            if reply then transmit(osouth, reply) end
         else
            transmit(onorth, p)
         end
      end
   end

   if not inorth then return end
   local n = nreadable(inorth)
   if not self.resolved then
      for _ = 1, n do free(receive(inorth)) end
      if n > 0 then counter.add(self.shm.txdrop, n) end
      return
   end
   local header, errors = self.header, 0
   for _ = 1, n do
      local p = receive(inorth)
      if p.length >= ETH_HEADER then
         copy(p.data, header, ETH_HEADER)
         transmit(osouth, p)
      else
         free(p)
         errors = errors + 1
      end
   end
   if errors > 0 then counter.add(self.shm.txerrors, errors) end
end

function M.selftest ()
   print("selftest: apps.ipv6.nd_light")
   local config = require("core.config")
   -- Two nd_light apps solicit and answer each other across their south links.
   local c = config.new()
   config.app(c, "nd1", nd_light, {local_mac = "02:00:00:00:00:01", local_ip = "2001:db8::1",
                                   next_hop = "2001:db8::2", quiet = true})
   config.app(c, "nd2", nd_light, {local_mac = "02:00:00:00:00:02", local_ip = {"2001:db8::9", "2001:db8::2"},
                                   next_hop = "2001:db8::1", quiet = true})
   config.app(c, "hand", require("apps.vlan.vlan").Hand)
   config.app(c, "sink", require("apps.basic.basic_apps").Sink)
   config.link(c, "nd1.south -> nd2.south")
   config.link(c, "nd2.south -> nd1.south")
   config.link(c, "hand.north1 -> nd1.north")
   config.link(c, "nd1.north -> sink.north1")
   config.link(c, "nd2.north -> sink.north2")
   engine.configure(c)
   local nd1, nd2 = engine.app_table.nd1, engine.app_table.nd2
   local function n (app, name) return tonumber(counter.read(app.shm[name])) end
   -- Before resolution frames from north are dropped and counted.
   transmit(engine.app_table.hand.output.north1, packet.from_string(("\0"):rep(60)))
   nd1:push()         -- nd1 drops the frame and solicits 2001:db8::2
   assert(n(nd1, "txdrop") == 1 and n(nd1, "ns_sent") == 1)
   nd2:push()         -- nd2 answers (its second address) and solicits 2001:db8::1
   nd1:push()         -- nd1 learns, answers nd2
   nd2:push()         -- nd2 learns
   assert(nd1.resolved and nd2.resolved)
   assert(ffi.string(nd1.header, 14) == "\2\0\0\0\0\2\2\0\0\0\0\1\134\221")
   assert(ffi.string(nd2.header, 14) == "\2\0\0\0\0\1\2\0\0\0\0\2\134\221")
   for _, app in ipairs({nd1, nd2}) do
      assert(n(app, "ns_received") == 1 and n(app, "na_sent") == 1 and n(app, "na_received") == 1)
      assert(n(app, "rxerrors") == 0 and n(app, "status") == 1)
   end
   -- Resolved: a frame from north gets the header; a 10-byte one is an error.
   transmit(engine.app_table.hand.output.north1, packet.from_string(("\7"):rep(60)))
   transmit(engine.app_table.hand.output.north1, packet.from_string(("\7"):rep(10)))
   nd1:push()
   local l = nd2.input.south
   assert(nreadable(l) == 1)
   local p = receive(l)
   assert(packet.tostring(p) == ffi.string(nd1.header, 14) .. ("\7"):rep(46))
   free(p)
   assert(n(nd1, "txerrors") == 1)
   -- A checksum known good, then broken: an NS for nd2 answered once, then counted as an error.
   local ns = nd_frame("\51\51\255\0\0\2", "\2\0\0\0\0\1", arp.ip_param(6, {}).check("2001:db8::1"),
                       solicited_node(nd2.local_ips[2]), NS, 0, nd2.local_ips[2], SLLA, "\2\0\0\0\0\1")
   assert(icmp6_sum(ns.data, ND_MESSAGE + 8) == 0)
   transmit(nd1.output.south, packet.clone(ns))
   ns.data[OPTIONS + 7] = 0xAA
   transmit(nd1.output.south, ns)
   nd2:push()
   assert(n(nd2, "ns_received") == 2 and n(nd2, "ns_checksum_errors") == 1 and n(nd2, "rxerrors") == 1)
   engine.configure(config.new())
   print("selftest: apps.ipv6.nd_light ok")
end

return M

-- apps.ipv4.header: the IPv4 header reads the Fragmenter and the Reassembler share: where the IPv4
-- header of an Ethernet frame starts (untagged or one 802.1Q tag), whether it is whole and sane
-- within the bytes the packet holds. Byte reads at fixed offsets (no alignment assumed, no
-- allocation), so the JIT inlines them into the apps' loops. Also the selftests' helpers.
local ffi = require("ffi")
local bit = require("bit")
local checksum = require("lib.checksum")

local band, rshift = bit.band, bit.rshift

local M = {}

M.ETHERTYPE_IPV4, M.ETHERTYPE_DOT1Q = 0x0800, 0x8100
M.MF, M.DF, M.OFFSET_MASK = 0x2000, 0x4000, 0x1fff -- in the flags-and-offset word
M.MAX_L2 = 18 -- Ethernet with one 802.1Q tag

-- The length of the link-layer header before an IPv4 header in the frame d[0..len), 14 or 18
-- (one 802.1Q tag); 0 when the frame does not carry IPv4.
function M.l2_length (d, len)
   if len < 14 then return 0 end
   local t = d[12] * 256 + d[13]
   if t == 0x0800 then return 14 end
   if t == 0x8100 and len >= 18 and d[16] * 256 + d[17] == 0x0800 then return 18 end
   return 0
end

-- A 16-bit field in network order at ip[i].
local function get16 (ip, i) return ip[i] * 256 + ip[i + 1] end
local function set16 (ip, i, v) ip[i], ip[i + 1] = rshift(v, 8), band(v, 0xff) end
M.get16, M.set16 = get16, set16

-- The header length in bytes of the IPv4 header at ip with avail bytes from ip to the packet's end,
-- or 0 when it is malformed: shorter than 20 bytes, not version 4, IHL < 5, or a total length
-- shorter than the header or longer than the bytes there are (a truncated packet).
function M.header_length (ip, avail)
   if avail < 20 then return 0 end
   local vi = ip[0]
   local ihl = band(vi, 15) * 4
   if vi < 0x45 or vi > 0x4f then return 0 end
   local total = get16(ip, 2)
   if total < ihl or total > avail then return 0 end
   return ihl
end


-- For the apps' selftests: a packet of an Ethernet frame (with an 802.1Q tag of VLAN `vid` when
-- given) carrying IPv4 with fields from t (id, flags: a flags-and-offset word, proto, options: a
-- string whose length is a multiple of 4, payload: a string or a number of random bytes), its
-- header checksum right.
function M.build (t)
   local packet = require("core.packet")
   local opts = t.options or ""
   local payload = t.payload or 0
   if type(payload) == "number" then
      local bytes = {}
      for i = 1, payload do bytes[i] = string.char(math.random(0, 255)) end
      payload = table.concat(bytes)
   end
   local l2 = t.vid and 18 or 14
   local ihl = 20 + #opts
   local p = packet.resize(packet.allocate(), l2 + ihl + #payload)
   local d = p.data
   for i = 0, 11 do d[i] = 0x10 + i end
   if t.vid then set16(d, 12, 0x8100); set16(d, 14, t.vid) end
   set16(d, l2 - 2, 0x0800)
   local ip = d + l2
   ip[0], ip[1] = 0x40 + ihl / 4, 0
   set16(ip, 2, ihl + #payload)
   set16(ip, 4, t.id or 0x1234)
   set16(ip, 6, t.flags or 0)
   ip[8], ip[9] = 64, t.proto or 17
   ffi.copy(ip + 12, t.src or "\10\0\0\1", 4)
   ffi.copy(ip + 16, t.dst or "\10\0\0\2", 4)
   ffi.copy(ip + 20, opts, #opts)
   ffi.copy(ip + ihl, payload, #payload)
   checksum.ipv4_header(ip)
   return p
end

-- For the selftests: an instance of class with its parsed config, counters and links, outside an
-- engine; push(app, packets) feeds it the packets and returns what came out, in order;
-- free_links() frees the links of every instance (and any the selftest adds to an instance's
-- ports), as the engine would when it removes the apps.
local instances = {}
function M.instance (class, conf, name)
   local lib, shm, link = require("core.lib"), require("core.shm"), require("core.link")
   local app = class:new(lib.parse(conf, class.config))
   app.shm = shm.create_frame("selftest/" .. name, class.shm)
   app.input, app.output = {input = link.new("in")}, {output = link.new("out")}
   instances[#instances + 1] = app
   return app
end

function M.free_links ()
   local link, packet = require("core.link"), require("core.packet")
   for _, app in ipairs(instances) do
      for _, ports in ipairs({app.input, app.output}) do
         for name, l in pairs(ports) do
            while not link.empty(l) do packet.free(link.receive(l)) end
            link.free(l, name)
         end
      end
   end
   instances = {}
end

function M.push (app, packets)
   local link = require("core.link")
   for _, p in ipairs(packets) do link.transmit(app.input.input, p) end
   app:push()
   local out = {}
   while not link.empty(app.output.output) do out[#out + 1] = link.receive(app.output.output) end
   return out
end

function M.count (app, name) return tonumber(app.shm[name].c) end

return M

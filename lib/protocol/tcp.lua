-- lib.protocol.tcp: the TCP header with its options, Snabb's class and names (ports, seq_num,
-- ack_num, offset, flags and each flag, window_size, checksum), fields in host order.
-- new_from_mem refuses (nil) a data offset under 5 or past the bytes given; sizeof() is
-- offset * 4. tcp:options() iterates the options (MSS, window scale, SACK, timestamps ...) without
-- allocating: `for kind, ptr, len in tcp:options() do` (ptr at the option's value, len its bytes).
local ffi = require("ffi")
local lib = require("core.lib")
local header = require("lib.protocol.header")
local subClass = require("lib.lua.class").subClass
local band, bor, bnot, lshift, rshift = bit.band, bit.bor, bit.bnot, bit.lshift, bit.rshift
local htons, ntohs, htonl, ntohl = lib.htons, lib.ntohs, lib.htonl, lib.ntohl
local ipsum = header.ipsum

local tcp = subClass(header)
tcp._name = "tcp"
tcp._ulp = {}
tcp:init({ffi.typeof([[struct {
   uint16_t src_port, dst_port;
   uint32_t seq, ack;
   uint16_t off_flags;   // data offset:4, reserved:3, flags:9 (NS CWR ECE URG ACK PSH RST SYN FIN)
   uint16_t window_size;
   uint16_t checksum;
   uint16_t pad;         // urgent pointer
} __attribute__((packed))]])})
local HEADER_SIZE = 20
local ptr_t = ffi.typeof("const uint8_t *")

-- Option kinds.
tcp.OPT_END, tcp.OPT_NOP, tcp.OPT_MSS, tcp.OPT_WSCALE = 0, 1, 2, 3
tcp.OPT_SACK_PERMITTED, tcp.OPT_SACK, tcp.OPT_TIMESTAMPS = 4, 5, 8

-- config: {src_port, dst_port, seq_num, ack_num, window_size, offset (default 5), flags or each
-- of ns cwr ece urg ack psh rst syn fin}.
local flag_names = {"fin", "syn", "rst", "psh", "ack", "urg", "ece", "cwr", "ns"}
function tcp:new (config)
   local o = tcp:superClass().new(self)
   config = config or {}
   o:src_port(config.src_port or 0)
   o:dst_port(config.dst_port or 0)
   o:seq_num(config.seq_num or 0)
   o:ack_num(config.ack_num or 0)
   o:window_size(config.window_size or 0)
   o:offset(config.offset or 5)
   o:flags(config.flags or 0)
   for _, name in ipairs(flag_names) do
      if config[name] then o[name](o, config[name]) end
   end
   return o
end

function tcp:new_from_mem (mem, size)
   if size < HEADER_SIZE then return nil end
   local n = rshift(ffi.cast(ptr_t, mem)[12], 4) * 4
   if n < HEADER_SIZE or n > size then return nil end
   local o = tcp:superClass().new_from_mem(self, mem, size)
   o._size = n
   return o
end

local function field16 (name)
   return function (self, v)
      local h = self._h[0]
      if v ~= nil then h[name] = htons(v) end
      return ntohs(h[name])
   end
end
tcp.src_port = field16("src_port")
tcp.dst_port = field16("dst_port")
tcp.window_size = field16("window_size")

local function field32 (name)
   return function (self, v)
      local h = self._h[0]
      if v ~= nil then h[name] = htonl(v) end
      return ntohl(h[name]) % 2^32
   end
end
tcp.seq_num = field32("seq")
tcp.ack_num = field32("ack")

local function bits (shift, mask)
   local keep = bnot(lshift(mask, shift))
   return function (self, v)
      local h = self._h[0]
      if v ~= nil then
         if v == true then v = 1 elseif v == false then v = 0 end
         h.off_flags = htons(bor(band(ntohs(h.off_flags), keep), lshift(band(v, mask), shift)))
      end
      return band(rshift(ntohs(h.off_flags), shift), mask)
   end
end
tcp.offset = bits(12, 0xf)
tcp.flags = bits(0, 0x1ff)
for i, name in ipairs(flag_names) do tcp[name] = bits(i - 1, 1) end

-- With payload: computes and stores the checksum over the header (options included), length
-- bytes of payload and, with ip (ipv4 or ipv6 object), its pseudo-header. Returns the checksum.
function tcp:checksum (payload, length, ip)
   local h = self._h[0]
   if payload then
      local n = self:sizeof()
      local sum = 0
      if ip then
         local ph = ip:pseudo_header(length + n, 6)
         sum = ipsum(ph, ffi.sizeof(ph), 0)
      end
      h.checksum = 0
      sum = ipsum(h, n, bnot(sum))
      h.checksum = htons(ipsum(payload, length, bnot(sum)))
   end
   return ntohs(h.checksum)
end

-- The options, one per step: kind, pointer to its value, bytes of value. Stops at End of Option
-- List or at the first option that runs past the header (a malformed list ends the iteration).
local function next_option (state, pos)
   local b, last = state[1], state[2]
   while pos < last do
      local kind = b[pos]
      if kind == 0 then return nil end
      if kind == 1 then
         pos = pos + 1
      else
         if pos + 2 > last then return nil end
         local len = b[pos + 1]
         if len < 2 or pos + len > last then return nil end
         state[3] = pos + len
         return kind, b + pos + 2, len - 2
      end
   end
   return nil
end
local function step (state)
   local kind, ptr, len = next_option(state, state[3])
   return kind, ptr, len
end
-- `for kind, ptr, len in tcp:options()`: the state table is the object's own (no allocation).
function tcp:options ()
   local state = self._opt_state
   if not state then state = {}; self._opt_state = state end
   state[1], state[2], state[3] = ffi.cast(ptr_t, self._h[0]), self:sizeof(), HEADER_SIZE
   return step, state
end

-- Convenience readers (nil when the option is absent): MSS, window scale shift, the two timestamps.
function tcp:mss ()
   for kind, p, len in self:options() do
      if kind == tcp.OPT_MSS and len == 2 then return p[0] * 256 + p[1] end
   end
end
function tcp:wscale ()
   for kind, p, len in self:options() do
      if kind == tcp.OPT_WSCALE and len == 1 then return p[0] end
   end
end
function tcp:timestamps ()
   for kind, p, len in self:options() do
      if kind == tcp.OPT_TIMESTAMPS and len == 8 then
         local q = ffi.cast("const uint32_t *", p)
         return ntohl(q[0]) % 2^32, ntohl(q[1]) % 2^32
      end
   end
end
-- SACK blocks: how many, and pointer to them (pairs of 32-bit edges in network order).
function tcp:sack ()
   for kind, p, len in self:options() do
      if kind == tcp.OPT_SACK then return len / 8, p end
   end
end

function tcp:eq (other)
   return self:src_port() == other:src_port() and self:dst_port() == other:dst_port()
      and self:seq_num() == other:seq_num() and self:ack_num() == other:ack_num()
end

function tcp.selftest ()
   print("selftest: lib.protocol.tcp")
   -- A SYN with MSS 1460, SACK permitted, timestamps 1000/0, NOP, window scale 7 (offset 10).
   local bytes = lib.hexundump([[
      c0 00 00 50 00 00 00 01 00 00 00 00 a0 02 fa f0 00 00 00 00
      02 04 05 b4 04 02 08 0a 00 00 03 e8 00 00 00 00 01 03 03 07]])
   local buf = ffi.new("uint8_t[40]")
   ffi.copy(buf, bytes, 40)
   assert(tcp:new_from_mem(buf, 39) == nil)
   local t = tcp:new_from_mem(buf, 40)
   assert(t:sizeof() == 40 and t:offset() == 10 and t:syn() == 1 and t:ack() == 0)
   assert(t:src_port() == 0xc000 and t:dst_port() == 80 and t:seq_num() == 1)
   assert(t:window_size() == 0xfaf0 and t:flags() == 2)
   assert(t:mss() == 1460 and t:wscale() == 7 and t:sack() == nil)
   local tsval, tsecr = t:timestamps()
   assert(tsval == 1000 and tsecr == 0)
   local kinds = {}
   for kind in t:options() do kinds[#kinds + 1] = kind end
   assert(table.concat(kinds, ",") == "2,4,8,3")
   -- An option running past the header ends the list.
   buf[38] = 9
   kinds = {}
   for kind in t:options() do kinds[#kinds + 1] = kind end
   assert(table.concat(kinds, ",") == "2,4,8")
   local n = tcp:new({src_port = 1, dst_port = 2, seq_num = 0xffffffff, ack = 1, syn = true})
   assert(n:seq_num() == 0xffffffff and n:flags() == 0x12 and n:offset() == 5)
   n:fin(1)
   assert(n:flags() == 0x13 and n:fin() == 1)
   print("selftest: ok")
end

return tcp

-- lib.protocol.gre: the GRE header (RFC 2784 with RFC 2890's key and sequence number), Snabb's
-- class and names: protocol() (the EtherType carried, 0x6558 Ethernet as Snabb maps it; IPv4,
-- IPv6 too), checksum(payload, length), checksum_check(payload, length), key(), and seq().
-- new_from_mem refuses (nil) a version other than 0, routing present, or optional fields past
-- size; sizeof() counts the optional fields present.
local ffi = require("ffi")
local lib = require("core.lib")
local header = require("lib.protocol.header")
local subClass = require("lib.lua.class").subClass
local band, bnot = bit.band, bit.bnot
local htons, ntohs, htonl, ntohl = lib.htons, lib.ntohs, lib.htonl, lib.ntohl
local ipsum = header.ipsum

local gre = subClass(header)
gre._name = "gre"
gre._ulp = {
   method = "protocol",
   class_map = {
      [0x6558] = "lib.protocol.ethernet",
      [0x0800] = "lib.protocol.ipv4",
      [0x86dd] = "lib.protocol.ipv6",
   },
}
-- Variants: base (4 bytes) and the biggest (checksum, key, sequence: 16 bytes) for new{}.
gre:init({
   ffi.typeof("struct { uint16_t bits; uint16_t protocol; } __attribute__((packed))"),
   ffi.typeof("struct { uint16_t bits; uint16_t protocol; uint32_t opt[3]; } __attribute__((packed))"),
})
local C_BIT, K_BIT, S_BIT = 0x8000, 0x2000, 0x1000
local u8p, u16p, u32p = ffi.typeof("uint8_t *"), ffi.typeof("uint16_t *"), ffi.typeof("uint32_t *")

local function size_of (bits)
   local n = 4
   if band(bits, C_BIT) ~= 0 then n = n + 4 end
   if band(bits, K_BIT) ~= 0 then n = n + 4 end
   if band(bits, S_BIT) ~= 0 then n = n + 4 end
   return n
end

-- config: {protocol, checksum = true, key = number, seq = number}.
function gre:new (config)
   local o = gre:superClass().new(self)
   config = config or {}
   ffi.fill(o._datas[2], 16)
   o:_select(2)
   local bits = 0
   if config.checksum then bits = bits + C_BIT end
   if config.key then bits = bits + K_BIT end
   if config.seq then bits = bits + S_BIT end
   o._h[0].bits = htons(bits)
   o._size = size_of(bits)
   o:protocol(config.protocol or 0)
   if config.key then o:key(config.key) end
   if config.seq then o:seq(config.seq) end
   return o
end

function gre:new_from_mem (mem, size)
   if size < 4 then return nil end
   local bits = ntohs(ffi.cast(u16p, mem)[0])
   -- Routing (0x4000), strict source route and recursion bits, reserved flags and version are 0.
   if band(bits, 0x4fff) ~= 0 or size_of(bits) > size then return nil end
   local o = gre:superClass().new_from_mem(self, mem, size)
   o._size = size_of(bits)
   return o
end

local function bits (self) return ntohs(self._h[0].bits) end

-- Pointer to the 32-bit field of an optional field present (flag), or nil.
local function field (self, flag)
   local b = bits(self)
   if band(b, flag) == 0 then return nil end
   local n = 4
   if flag ~= C_BIT and band(b, C_BIT) ~= 0 then n = n + 4 end
   if flag == S_BIT and band(b, K_BIT) ~= 0 then n = n + 4 end
   return ffi.cast(u32p, ffi.cast(u8p, self._h[0]) + n)
end

function gre:protocol (p)
   local h = self._h[0]
   if p ~= nil then h.protocol = htons(p) end
   return ntohs(h.protocol)
end

-- With payload: computes and stores the checksum over header and payload. nil when the header has
-- no checksum field.
function gre:checksum (payload, length)
   local f = field(self, C_BIT)
   if not f then return nil end
   local c = ffi.cast(u16p, f)
   if payload then
      c[0] = 0
      local s = ipsum(self._h[0], self:sizeof(), 0)
      c[0] = htons(ipsum(payload, length, bnot(s)))
   end
   return ntohs(c[0])
end

function gre:checksum_check (payload, length)
   if not field(self, C_BIT) then return nil end
   local s = ipsum(self._h[0], self:sizeof(), 0)
   return ipsum(payload, length, bnot(s)) == 0
end

function gre:key (key)
   local f = field(self, K_BIT)
   if not f then return nil end
   if key ~= nil then f[0] = htonl(key) end
   return ntohl(f[0]) % 2^32
end

function gre:seq (seq)
   local f = field(self, S_BIT)
   if not f then return nil end
   if seq ~= nil then f[0] = htonl(seq) end
   return ntohl(f[0]) % 2^32
end

function gre.selftest ()
   print("selftest: lib.protocol.gre")
   local g = gre:new({protocol = 0x6558, checksum = true, key = 0xdeadbeef})
   assert(g:sizeof() == 12 and g:protocol() == 0x6558 and g:key() == 0xdeadbeef)
   assert(g:seq() == nil)
   local payload = ffi.new("uint8_t[3]", 1, 2, 3)
   g:checksum(payload, 3)
   assert(g:checksum_check(payload, 3))
   payload[0] = 9
   assert(not g:checksum_check(payload, 3))
   local p = gre:new_from_mem(g:header_ptr(), 12)
   assert(p:sizeof() == 12 and p:key() == 0xdeadbeef)
   assert(gre:new_from_mem(g:header_ptr(), 11) == nil)
   assert(p:upper_layer() == require("lib.protocol.ethernet"))
   local plain = gre:new({protocol = 0x0800})
   assert(plain:sizeof() == 4 and plain:checksum() == nil and plain:key() == nil)
   print("selftest: ok")
end

return gre

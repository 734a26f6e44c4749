-- lib.checksum: IP checksums for network functions (Snabb's lib.checksum names): the bulk sum
-- `ipsum` over the C++ cksum_generic (lib/checksum.cc: AVX2 when the CPU has it), the IPv4 header
-- checksum, TCP/UDP/ICMP over IPv4 and TCP/UDP/ICMPv6 over IPv6 with their pseudo-headers
-- (compute and store, or verify), and RFC 1624 incremental updates in plain bit operations so
-- the JIT inlines them into an app's loop. Values are host-order numbers (as lib.ntohs reads
-- them); pointers are to the IP header, with the bytes available from there (never read past).
local ffi = require("ffi")
local bit = require("bit")
require("core.lib") -- declares cksum_generic (lib/c_helpers.h)

local C = ffi.C
local band, bnot, rshift = bit.band, bit.bnot, bit.rshift
local u8ptr = ffi.typeof("uint8_t *")

local M = {}

-- The IP checksum of len bytes at ptr (RFC 1071: the ones' complement of the ones' complement
-- sum of big-endian 16-bit words, an odd last byte padded with zero) with `initial` (host
-- order) added to the sum; host order. 0 over data holding a right checksum. Chain blocks with
-- ipsum(b2, n2, bit.bnot(ipsum(b1, n1, 0))), as Snabb's.
local function ipsum (ptr, len, initial)
   return C.cksum_generic(ffi.cast(u8ptr, ptr), len, initial or 0)
end
M.ipsum = ipsum

local function fold (s)
   s = band(s, 0xffff) + rshift(s, 16)
   return band(s, 0xffff) + rshift(s, 16)
end

local function be16 (p, at)
   return p[at] * 256 + p[at + 1]
end

local function store16 (p, at, v)
   p[at], p[at + 1] = rshift(v, 8), band(v, 0xff)
end

-- Computes and stores the checksum of the IPv4 header at ip_ptr (its length from IHL); returns
-- it (host order).
function M.ipv4_header (ip_ptr)
   local ip = ffi.cast(u8ptr, ip_ptr)
   local ihl = band(ip[0], 0x0f) * 4
   ip[10], ip[11] = 0, 0
   local sum = C.cksum_generic(ip, ihl, 0)
   store16(ip, 10, sum)
   return sum
end

-- True when len_available bytes at ip_ptr hold an IPv4 header (version 4, IHL >= 5, all of it
-- there) whose checksum is right.
function M.verify_ipv4_header (ip_ptr, len_available)
   local ip = ffi.cast(u8ptr, ip_ptr)
   if len_available < 20 or rshift(ip[0], 4) ~= 4 then return false end
   local ihl = band(ip[0], 0x0f) * 4
   if ihl < 20 or ihl > len_available then return false end
   return C.cksum_generic(ip, ihl, 0) == 0
end

-- Where the checksum lies in the L4 header and the least header that holds it, per protocol.
local csum_at = {[6] = 16, [17] = 6, [1] = 2, [58] = 2}
local min_header = {[6] = 20, [17] = 8, [1] = 4, [58] = 4}

-- The L4 header of the IPv4 packet at ip: its offset, length, protocol and pseudo-header sum
-- (folded, host order; 0 for ICMP, which has none), or nil when there is no checksum to handle
-- (not TCP/UDP/ICMP, a fragment) and false when the packet is malformed (truncated, bad
-- lengths). The L4 length is the total length's (Ethernet padding past it is not summed).
local function l4_of_ipv4 (ip, len)
   if len < 20 or rshift(ip[0], 4) ~= 4 then return false end
   local ihl = band(ip[0], 0x0f) * 4
   local total = be16(ip, 2)
   if ihl < 20 or total < ihl or total > len then return false end
   local proto = ip[9]
   if not csum_at[proto] or proto == 58 then return nil end
   if band(be16(ip, 6), 0x3fff) ~= 0 then return nil end -- MF or an offset: a fragment
   local l4len = total - ihl
   if l4len < min_header[proto] then return false end
   local pseudo = 0
   if proto ~= 1 then
      pseudo = fold(be16(ip, 12) + be16(ip, 14) + be16(ip, 16) + be16(ip, 18) + proto + l4len)
   end
   return ihl, l4len, proto, pseudo
end

-- The same for IPv6: extension headers (hop-by-hop, routing, destination options, fragment) are
-- walked to the upper layer; nil also for a non-first fragment or one with more to come, for a
-- routing header with segments left (the pseudo-header would need its final destination), and
-- for anything but TCP/UDP/ICMPv6 (ESP, AH, no next header).
local function l4_of_ipv6 (ip, len)
   if len < 40 or rshift(ip[0], 4) ~= 6 then return false end
   local total = 40 + be16(ip, 4)
   if total > len then return false end
   local proto, at = ip[6], 40
   while proto == 0 or proto == 43 or proto == 60 or proto == 44 do
      if at + 8 > total then return false end
      if proto == 44 then
         if band(be16(ip, at + 2), 0xfff9) ~= 0 then return nil end -- offset or M: a fragment
         proto, at = ip[at], at + 8
      else
         if proto == 43 and ip[at + 3] ~= 0 then return nil end
         proto, at = ip[at], at + 8 + ip[at + 1] * 8
      end
   end
   if proto ~= 6 and proto ~= 17 and proto ~= 58 then return nil end
   local l4len = total - at
   if l4len < min_header[proto] then return false end
   local sum = band(bnot(C.cksum_generic(ip + 8, 32, 0)), 0xffff)
   return at, l4len, proto, fold(sum + rshift(l4len, 16) + band(l4len, 0xffff) + proto)
end

-- Computes and stores the L4 checksum from what l4_of_* found; returns it (host order).
local function store_l4 (ip, at, l4len, proto, pseudo)
   local c = at + csum_at[proto]
   ip[c], ip[c + 1] = 0, 0
   local sum = C.cksum_generic(ip + at, l4len, pseudo)
   -- UDP sends 0 for "no checksum": a sum of 0 goes as its other form, 0xFFFF (RFC 768).
   if sum == 0 and proto == 17 then sum = 0xffff end
   store16(ip, c, sum)
   return sum
end

-- Compute and store the TCP/UDP/ICMP checksum of the IPv4 packet (TCP/UDP/ICMPv6 of the IPv6
-- packet) at ip_ptr, len_available bytes from there; returns the checksum, or nil/false as
-- l4_of_*: nothing to compute (other protocols, fragments) / malformed. The IPv4 header's own
-- checksum is left alone (ipv4_header).
function M.l4_ipv4 (ip_ptr, len_available)
   local ip = ffi.cast(u8ptr, ip_ptr)
   local at, l4len, proto, pseudo = l4_of_ipv4(ip, len_available)
   if not at then return at end
   return store_l4(ip, at, l4len, proto, pseudo)
end

function M.l4_ipv6 (ip6_ptr, len_available)
   local ip = ffi.cast(u8ptr, ip6_ptr)
   local at, l4len, proto, pseudo = l4_of_ipv6(ip, len_available)
   if not at then return at end
   return store_l4(ip, at, l4len, proto, pseudo)
end

-- Verify the L4 checksum: true right, false wrong or malformed (truncated, bad lengths), nil
-- nothing to verify (another protocol, a fragment, a UDP over IPv4 checksum of 0 = none sent;
-- over IPv6 a UDP checksum of 0 is wrong, RFC 8200 8.1). As Snabb's verify_packet: `== false`
-- is a packet to drop.
local function verify_l4 (ip, at, l4len, pseudo)
   if not at then return at end
   return C.cksum_generic(ip + at, l4len, pseudo) == 0
end

function M.verify_l4_ipv4 (ip_ptr, len_available)
   local ip = ffi.cast(u8ptr, ip_ptr)
   local at, l4len, proto, pseudo = l4_of_ipv4(ip, len_available)
   if at and proto == 17 and be16(ip, at + 6) == 0 then return nil end
   return verify_l4(ip, at, l4len, pseudo)
end

function M.verify_l4_ipv6 (ip6_ptr, len_available)
   local ip = ffi.cast(u8ptr, ip6_ptr)
   local at, l4len, proto, pseudo = l4_of_ipv6(ip, len_available)
   if at and proto == 17 and be16(ip, at + 6) == 0 then return false end
   return verify_l4(ip, at, l4len, pseudo)
end

-- Snabb's verify_packet(buf, len): the IPv4 header and L4 checksums of the IPv4 or IPv6 packet at
-- buf: true, false (bad or malformed) or nil (nothing to verify, see above).
function M.verify_packet (buf, len)
   local ip = ffi.cast(u8ptr, buf)
   if len < 1 then return false end
   local v = rshift(ip[0], 4)
   if v == 4 then
      if not M.verify_ipv4_header(ip, len) then return false end
      return M.verify_l4_ipv4(ip, len)
   elseif v == 6 then
      return M.verify_l4_ipv6(ip, len)
   end
   return nil
end

-- Snabb's finish_packet(buf, len, offset): the checksum of len bytes at buf stored (network
-- order) at buf + offset, which holds 0 (or the pseudo-header sum) beforehand.
function M.finish_packet (buf, len, offset)
   local p = ffi.cast(u8ptr, buf)
   store16(p, offset, ipsum(p, len, 0))
end

-- RFC 1624 eqn. 3: the checksum `csum` after a 16-bit field went from `old` to `new`
-- (HC' = ~(~HC + ~m + m')); all host order.
function M.incremental16 (csum, old, new)
   local s = band(bnot(csum), 0xffff) + band(bnot(old), 0xffff) + new
   return band(bnot(fold(s)), 0xffff)
end

-- The same for a 32-bit field (an IPv4 address), as its two 16-bit halves.
function M.incremental32 (csum, old, new)
   local s = band(bnot(csum), 0xffff) + band(bnot(rshift(old, 16)), 0xffff)
      + band(bnot(old), 0xffff) + rshift(new, 16) + band(new, 0xffff)
   return band(bnot(fold(s)), 0xffff)
end

-- Self-test: hand-checked packets and round trips (the captures and tshark: tests/checksum_test).
function M.selftest ()
   print("selftest: lib.checksum")
   -- RFC 1071 section 3's example: the words 0001 f203 f4f5 f6f7 sum to ddf2, checksum 220d.
   local b = ffi.new("uint8_t[8]", 0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7)
   assert(ipsum(b, 8, 0) == 0x220d, ("RFC 1071 example: %04x"):format(ipsum(b, 8, 0)))
   -- Chained: two halves give the whole.
   assert(ipsum(b + 4, 4, bnot(ipsum(b, 4, 0))) == 0x220d)
   -- An IPv4 header from Wikipedia's "IPv4 header checksum" article: checksum b861.
   local h = ffi.new("uint8_t[20]", 0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
                     0, 0, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7)
   assert(M.ipv4_header(h) == 0xb861 and h[10] == 0xb8 and h[11] == 0x61)
   assert(M.verify_ipv4_header(h, 20) and not M.verify_ipv4_header(h, 19))
   h[8] = 0x3f
   assert(not M.verify_ipv4_header(h, 20))
   -- Incremental: TTL 0x40 -> 0x3f in the word at 8 (TTL, protocol) as a full sum would give.
   assert(M.incremental16(0xb861, 0x4011, 0x3f11) == M.ipv4_header(h))
   -- A UDP/IPv4 packet built here: stored, verified, one bit flipped, refused.
   local u = ffi.new("uint8_t[64]")
   ffi.copy(u, h, 20)
   u[2], u[3], u[9] = 0, 36, 17
   u[20], u[21], u[22], u[23], u[24], u[25] = 0x30, 0x39, 0x00, 0x35, 0, 16
   for i = 28, 35 do u[i] = i end
   M.ipv4_header(u)
   local c = M.l4_ipv4(u, 64)
   assert(c and c == be16(u, 26) and M.verify_l4_ipv4(u, 64) == true)
   assert(M.verify_packet(u, 36) == true and M.l4_ipv4(u, 35) == false)
   u[30] = bit.bxor(u[30], 1)
   assert(M.verify_l4_ipv4(u, 64) == false)
   u[30] = bit.bxor(u[30], 1)
   -- The address 192.168.0.199 -> 10.1.2.3 (NAT): incremental32 of both checksums = full ones.
   local hc, uc = be16(u, 10), be16(u, 26)
   local old, new = 0xc0a800c7, 0x0a010203
   store16(u, 16, rshift(new, 16)); store16(u, 18, band(new, 0xffff))
   assert(M.incremental32(hc, old, new) == M.ipv4_header(u))
   assert(M.incremental32(uc, old, new) == M.l4_ipv4(u, 64))
   -- A fragment has nothing to verify.
   u[6] = 0x20
   assert(M.verify_l4_ipv4(u, 64) == nil and M.l4_ipv4(u, 64) == nil)
   print("selftest: ok")
end

return M

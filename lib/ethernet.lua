-- lib.ethernet: what Ethernet frames cost on the wire, the one formula for every rate in bits
-- (apps.pcap's Replay --rate, snabb bench's Gbit/s, gen-pcap's timestamps). A frame as captured has
-- no FCS; on the wire it is padded to the minimum of 64 bytes with its FCS (60 without), and each
-- frame also takes a preamble and start delimiter (8 bytes) and an inter-frame gap (12 bytes).
local M = {}

M.MIN_FRAME = 60 -- bytes of a frame without its FCS, padding included
M.FCS = 4
M.PREAMBLE = 8 -- preamble 7, start frame delimiter 1
M.GAP = 12 -- the inter-frame gap

-- Bytes of padding a frame of `length` bytes (as captured) gets to reach the minimum.
function M.padding (length)
   return math.max(M.MIN_FRAME - length, 0)
end

-- Bits on the wire of `packets` frames of `bytes` in all, `padding` bytes of padding among them
-- (the sum of padding() of each: 0 when no frame is under 60 bytes).
function M.wire_bits_of (packets, bytes, padding)
   return (bytes + padding + (M.FCS + M.PREAMBLE + M.GAP) * packets) * 8
end

-- Layer 2 bits of those frames: each with its padding and FCS.
function M.l2_bits_of (packets, bytes, padding)
   return (bytes + padding + M.FCS * packets) * 8
end

-- Bits on the wire of one frame of `length` bytes.
function M.wire_bits (length)
   return M.wire_bits_of(1, length, M.padding(length))
end

function M.selftest ()
   print("selftest: lib.ethernet")
   -- By hand: 42 and 59 bytes are padded to 60, + FCS 4 = 64, + 8 + 12 = 84 bytes = 672 bits;
   -- 60 the same; 64 + 24 = 88 bytes = 704 bits; 1514 + 24 = 1538 bytes = 12,304 bits.
   for length, bits in pairs({[42] = 672, [59] = 672, [60] = 672, [64] = 704, [1514] = 12304}) do
      assert(M.wire_bits(length) == bits, ("%d bytes: %d bits on the wire, expected %d"):format(
         length, M.wire_bits(length), bits))
   end
   -- L2: 42 -> 64 bytes = 512 bits, 64 -> 68 bytes = 544, 1514 -> 1518 bytes = 12,144.
   assert(M.l2_bits_of(1, 42, M.padding(42)) == 512 and M.l2_bits_of(1, 64, 0) == 544
          and M.l2_bits_of(1, 1514, 0) == 12144)
   -- Five such frames at once: 42 + 59 + 60 + 64 + 1514 bytes, 18 + 1 bytes of padding.
   local bytes, padding = 42 + 59 + 60 + 64 + 1514, M.padding(42) + M.padding(59) + M.padding(60)
   assert(padding == 19 and M.wire_bits_of(5, bytes, padding) == 3 * 672 + 704 + 12304)
   print("selftest: ok")
end

return M

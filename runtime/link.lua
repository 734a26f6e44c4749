-- core.link: a ring of packets between two apps (struct link, runtime/link.h).
-- receive/transmit only move cursors (and note lengths); the engine folds that into link stats after
-- each app call, so the per-packet path stays a few instructions long.
local ffi = require("ffi")
require("core.cdefs")
local packet = require("core.packet")
local C = ffi.C
local band = bit.band

local M = {}

local SIZE, RING_MASK, CURSOR_MASK = C.LINK_RING_SIZE, C.LINK_RING_MASK, C.LINK_CURSOR_MASK
local free = packet.free

M.max = SIZE

function M.new ()
   return C.snabb_link_new()
end

-- Frees the link and the packets still in it.
function M.free (r)
   C.snabb_link_delete(r)
end

function M.receive (r)
   local i = r.read
   local p = r.packets[band(i, RING_MASK)]
   r.read = band(i + 1, CURSOR_MASK)
   return p
end

function M.front (r)
   if r.read == r.write then return nil end
   return r.packets[band(r.read, RING_MASK)]
end

function M.transmit (r, p)
   local w = r.write
   if band(w - r.read, CURSOR_MASK) == SIZE then
      r.stats.txdrop = r.stats.txdrop + 1
      r.stats.txbytes = r.stats.txbytes + p.length
      free(p)
   else
      local slot = band(w, RING_MASK)
      r.packets[slot] = p
      r.lengths[slot] = p.length
      r.write = band(w + 1, CURSOR_MASK)
   end
end

function M.nreadable (r) return band(r.write - r.read, CURSOR_MASK) end
function M.nwritable (r) return SIZE - band(r.write - r.read, CURSOR_MASK) end
function M.empty (r) return r.read == r.write end
function M.full (r) return band(r.write - r.read, CURSOR_MASK) == SIZE end

-- The link's counters, brought up to date (struct link_stats).
function M.stats (r)
   C.snabb_link_sync(r)
   return r.stats
end

function M.selftest ()
   print("selftest: core.link")
   local r = M.new()
   assert(M.empty(r) and M.nwritable(r) == SIZE)
   for i = 1, SIZE + 10 do M.transmit(r, packet.from_string(("%d"):format(i))) end
   assert(M.full(r) and M.nreadable(r) == SIZE)
   assert(packet.tostring(M.front(r)) == "1")
   local s = M.stats(r)
   assert(s.txpackets == SIZE + 10 and s.txdrop == 10)
   for _ = 1, 100 do free(M.receive(r)) end
   s = M.stats(r)
   assert(s.rxpackets == 100 and s.txpackets == s.rxpackets + M.nreadable(r) + s.txdrop)
   -- Bytes are counted as queued: "1".."9" are 1 byte, "10".."99" 2, "100" 3.
   assert(s.rxbytes == 9 + 180 + 3, tostring(s.rxbytes))
   -- Cursors run modulo 2^31: move them near the wrap point and keep going.
   while not M.empty(r) do free(M.receive(r)) end
   C.snabb_link_sync(r)
   r.read, r.write, r.synced_read, r.synced_write = CURSOR_MASK - 5, CURSOR_MASK - 5, CURSOR_MASK - 5, CURSOR_MASK - 5
   for i = 1, 20 do M.transmit(r, packet.from_string("abcd")) end
   assert(M.nreadable(r) == 20 and r.write == 14)
   for _ = 1, 20 do free(M.receive(r)) end
   s = M.stats(r)
   assert(M.empty(r) and s.rxpackets == SIZE + 20 and s.txpackets == SIZE + 30)
   M.free(r)
   print("selftest: core.link ok")
end

return M

-- apps.interlink.ring: the interlink's ring in shared memory (struct interlink, interlink.h):
-- where it lives, the claim of a side (one transmitter, one receiver), the check for a dead peer,
-- and its counts. The apps (transmitter.lua, receiver.lua) move packets through it.
local ffi = require("ffi")
require("core.cdefs")
require("apps.interlink.cdefs")
require("core.runtime_cdefs")
local C = ffi.C
local counter = require("core.counter")
local engine = require("core.engine")
local group = require("core.group")
local shm = require("core.shm")
local sync = require("core.sync")

for _, decl in ipairs({"int getpid(void);", "int kill(int pid, int sig);"}) do
   pcall(ffi.cdef, decl)
end

local M = {}

M.SIZE, M.MASK = C.INTERLINK_SIZE, C.INTERLINK_MASK
-- Each side moves packets in batches of at least BATCH when it can: a transmitter waits for room
-- for a batch, a receiver waits up to WAITS breaths for a batch while the transmitter is adding.
-- Without it, Source -> transmitter | receiver -> sink at 23 Mpps had its receiver breathe 12.5
-- million times a second, 2 packets a breath: each side moved what the other had in its last
-- breath, and per-batch costs (cursor lines crossing cores, a breath) took the time.
M.BATCH, M.WAITS = 256, 16
local interlink_ptr_t = ffi.typeof("struct interlink *")
local int_ptr_t = ffi.typeof("int *")
local SIDES = {transmitter = {pid = "tx_pid", attaches = "tx_attaches", peer = "receiver",
                              peer_pid = "rx_pid"},
               receiver = {pid = "rx_pid", attaches = "rx_attaches", peer = "transmitter",
                           peer_pid = "tx_pid"}}

-- Names are file names: letters, digits, '_', '-' and '.' (not leading).
function M.check_name (name)
   if type(name) ~= "string" or not name:match("^[%w_-][%w_.-]*$") then
      error(("an interlink's name is letters, digits, '_', '-' and '.', got %s"):format(
         require("core.lib").describe(name)), 3)
   end
end

-- The ring's file: in the group's directory, or this process's run directory outside a group.
function M.path (name)
   M.check_name(name)
   local dir = group.dir()
   if dir then return dir .. "/interlink/" .. name end
   return shm.path("interlink/" .. name)
end

function M.alive (pid)
   return pid > 0 and (C.kill(pid, 0) == 0 or ffi.errno() ~= 3) -- ESRCH: no such process
end

local attached = {} -- "name side" -> true, for the sides this process holds

local function field_ptr (r, field)
   return ffi.cast(int_ptr_t, ffi.cast("uint8_t *", r) + ffi.offsetof("struct interlink", field))
end

-- Maps interlink name's ring (made when missing) and claims side ("transmitter" or "receiver")
-- for this process. Refused, naming the interlink, while another live process (or another app
-- here) holds that side; a dead one's place is taken (its replacement). Returns the ring.
function M.attach (name, side)
   local s = assert(SIDES[side])
   local path = M.path(name)
   local key = name .. " " .. side
   if attached[key] then
      error(("interlink '%s': this process has a %s on it already (one per interlink)"):format(
         name, side), 2)
   end
   local mem = C.snabb_shm_map(path, ffi.sizeof("struct interlink"), 1, 0, 384, 448, -1)
   if mem == nil then
      error(("interlink '%s': %s"):format(name, ffi.string(C.snabb_error())), 2)
   end
   local r = ffi.cast(interlink_ptr_t, mem)
   if r.magic == 0 then r.size, r.magic = M.SIZE, C.INTERLINK_MAGIC end
   if r.magic ~= C.INTERLINK_MAGIC or r.size ~= M.SIZE then
      C.snabb_shm_unmap(mem, ffi.sizeof("struct interlink"))
      error(("interlink '%s': %s is not an interlink ring"):format(name, path), 2)
   end
   local me = C.getpid()
   while true do
      local pid = r[s.pid]
      if pid ~= 0 and pid ~= me and M.alive(pid) then
         C.snabb_shm_unmap(mem, ffi.sizeof("struct interlink"))
         error(("interlink '%s': it has a %s already (process %d); an interlink takes one"):format(
            name, side, pid), 2)
      end
      if sync.cas(field_ptr(r, s.pid), pid, me) then break end
   end
   r[s.attaches] = r[s.attaches] + 1
   attached[key] = true
   return r
end

-- This worker's marks (runtime/group.h), the packet memory's address and how many marks; nil
-- outside a group.
function M.marks ()
   local base, buckets = ffi.new("uint64_t[1]"), ffi.new("uint64_t[1]")
   local marks = C.snabb_group_marks(base, buckets)
   if marks == nil then return nil end
   return marks, base[0], buckets[0]
end

-- Gives side up. When the other side is gone too, the packets left in the ring are freed and its
-- file removed (returns how many were freed); otherwise they wait for the other side.
function M.detach (r, name, side)
   local s = SIDES[side]
   attached[name .. " " .. side] = nil
   sync.cas(field_ptr(r, s.pid), C.getpid(), 0)
   local freed = 0
   if r[s.peer_pid] == 0 then
      local packet, band = require("core.packet"), bit.band
      local mask = bit.lshift(1ULL, C.PACKET_ADDRESS_BITS) - 1
      C.snabb_group_mark(r.ring, M.MASK, r.read, bit.tobit(r.write - r.read), r.tx_clock) -- (ours)
      while r.read ~= r.write do
         local entry = ffi.cast("uint64_t", r.ring[band(r.read, M.MASK)])
         packet.free(ffi.cast("struct packet *", band(entry, mask)))
         r.read = bit.tobit(r.read + 1)
         r.rxpackets = r.rxpackets + 1
         freed = freed + 1
      end
      C.snabb_shm_unlink(M.path(name))
   end
   C.snabb_shm_unmap(r, ffi.sizeof("struct interlink"))
   return freed
end

-- The peer's PID when it is recorded and that process has ended, else nil.
function M.dead_peer (r, side)
   local pid = r[SIDES[side].peer_pid]
   if pid ~= 0 and not M.alive(pid) then return pid end
end

-- An interlink app's tick (app: its name, ring r, next_check, reported, shm.peer_deaths): at most
-- once a second, a peer that has ended is reported once, by the counter and one line; after
-- "its PEER (process N) has ended", the line says `more`.
function M.watch_peer (app, side, more)
   local now = engine.now()
   if now < app.next_check or app.r == nil then return end
   app.next_check = now + 1
   local dead = M.dead_peer(app.r, side)
   if dead and dead ~= app.reported then
      app.reported = dead
      counter.add(app.shm.peer_deaths)
      io.stderr:write(("interlink '%s': its %s (process %d) has ended%s\n"):format(
         app.name, SIDES[side].peer, dead, more))
   end
end

-- fn(r) of the ring in file path, mapped read-only for the call; nil when it cannot be mapped.
local function read (path, fn)
   local mem = C.snabb_shm_map(path, ffi.sizeof("struct interlink"), 0, 1, 384, 448, -1)
   if mem == nil then return nil end
   local result = fn(ffi.cast(interlink_ptr_t, mem))
   C.snabb_shm_unmap(mem, ffi.sizeof("struct interlink"))
   return result
end

-- The packets in the interlinks of the group in dir: the link entries between each ring's cursors.
-- A dead worker's marks may name them (its transmitter's are older than their receiver's will be,
-- and a receiver killed in a pull had marked its batch: runtime/group.h); they are the rings', and
-- group.reclaim leaves them out. Returns a uint64_t array and its length.
function M.in_flight (dir)
   local entries = {}
   local rings = dir .. "/interlink"
   for _, name in ipairs(shm.list(rings)) do
      read(rings .. "/" .. name, function (r)
         if r.magic ~= C.INTERLINK_MAGIC then return end
         for k = 0, bit.tobit(r.write - r.read) - 1 do
            entries[#entries+1] = ffi.cast("uint64_t", r.ring[bit.band(r.read + k, M.MASK)])
         end
      end)
   end
   return ffi.new("uint64_t[?]", math.max(#entries, 1), entries), #entries
end

-- The ring's counts: {txpackets, rxpackets, queued, tx_pid, rx_pid, tx_attaches, rx_attaches},
-- by name (this process's group or run directory) or by the ring file's path; nil when missing.
function M.stats (name_or_path)
   local path = name_or_path:find("/") and name_or_path or M.path(name_or_path)
   if C.snabb_shm_exists(path) == 0 then return nil end
   return read(path, function (r)
      return {txpackets = tonumber(r.txpackets), rxpackets = tonumber(r.rxpackets),
              queued = bit.tobit(r.write - r.read), tx_pid = r.tx_pid, rx_pid = r.rx_pid,
              tx_attaches = tonumber(r.tx_attaches), rx_attaches = tonumber(r.rx_attaches)}
   end)
end

function M.selftest ()
   print("selftest: apps.interlink.ring")
   -- The layout interlink.h documents: each side's line of its own, the ring after them.
   assert(ffi.sizeof("struct interlink") == 3 * 64 + M.SIZE * 8)
   assert(ffi.offsetof("struct interlink", "write") == 64)
   assert(ffi.offsetof("struct interlink", "read") == 128)
   assert(ffi.offsetof("struct interlink", "ring") == 192)
   assert(not pcall(M.path, "a/b") and not pcall(M.path, ".x") and not pcall(M.path, 3))
   local r = M.attach("selftest", "transmitter")
   local ok, err = pcall(M.attach, "selftest", "transmitter")
   assert(not ok and err:match("interlink 'selftest': this process has a transmitter"), err)
   local rx = M.attach("selftest", "receiver")
   assert(M.stats("selftest").tx_pid == C.getpid() and M.dead_peer(r, "transmitter") == nil)
   -- A side recorded for a process that has ended is a dead peer, and its place can be taken.
   r.rx_pid = 2^22 + 1 -- above the kernel's pid_max (4,194,304): no such process
   assert(M.dead_peer(r, "transmitter") == 2^22 + 1)
   assert(M.detach(rx, "selftest", "receiver") == 0)
   rx = M.attach("selftest", "receiver")
   -- Detached last, a side frees what the ring still holds.
   local packet = require("core.packet")
   local p = packet.from_string("left in the ring")
   r.ring[0] = ffi.cast("struct packet *", bit.bor(ffi.cast("uint64_t", p),
                                                   bit.lshift(ffi.cast("uint64_t", p.length), 48)))
   r.write, r.txpackets = 1, 1
   local nfree = packet.nfree()
   assert(M.detach(rx, "selftest", "receiver") == 0)
   assert(M.stats("selftest").queued == 1)
   assert(M.detach(r, "selftest", "transmitter") == 1 and packet.nfree() == nfree + 1)
   assert(M.stats("selftest") == nil, "the ring's file is removed")
   print("selftest: apps.interlink.ring ok")
end

return M

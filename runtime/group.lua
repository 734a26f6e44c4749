-- core.group: packet memory shared by a supervisor's worker processes, so that a packet crosses
-- from one worker to another as a pointer (runtime/group.h). The supervisor calls create(dir)
-- before it starts its workers; each worker calls attach(dir, index) first thing, after which its
-- packet pool takes batches of packets from the group and the engine gives surplus ones back
-- between breaths (runtime/packet.h); reclaim(dir, index, opts) gives back all a dead worker had
-- (free, in its links, in its apps' hands) before its replacement starts; stats(dir) counts them.
local ffi = require("ffi")
require("core.runtime_cdefs")
local C = ffi.C

local M = {}

local function c_message () return ffi.string(C.snabb_error()) end

local function check_whole (value, what, min, max)
   if type(value) ~= "number" or value ~= math.floor(value) or value < min or value > max then
      error(("%s must be a whole number from %d to %d, got %s"):format(
         what, min, max, tostring(value)), 3)
   end
end

local function check_dir (dir, what)
   if type(dir) ~= "string" or dir == "" then
      error(("%s: dir must be a directory's path, got %s"):format(what, tostring(dir)), 3)
   end
end

-- Makes the group's shared memory in dir/group/. opts: workers (worker slots, default 1), packets
-- (the group's cap; default: this process's pool's, half the memory available up to 1,000,000).
-- Returns true, or nil and why.
function M.create (dir, opts)
   check_dir(dir, "group.create")
   opts = opts or {}
   local workers, packets = opts.workers or 1, opts.packets or C.snabb_packet_cap()
   check_whole(workers, "group.create: workers", 1, C.GROUP_MAX_WORKERS)
   check_whole(packets, "group.create: packets", 1, 2^24)
   if C.snabb_group_create(dir, workers, packets) ~= 0 then return nil, c_message() end
   return true
end

-- Joins this process's packet pool to the group in dir as worker index (0-based), before any
-- packet is allocated. Returns true, or nil and why.
function M.attach (dir, index)
   check_dir(dir, "group.attach")
   check_whole(index, "group.attach: index", 0, C.GROUP_MAX_WORKERS - 1)
   if C.snabb_group_attach(dir, index) ~= 0 then return nil, c_message() end
   return true
end

-- Gives back to the group's list every packet in the hands of worker index, whose process has
-- ended: its free list, its links and its apps' (runtime/group.h: its marks). opts: links, the
-- directory of its links' files (its run directory's engine/links), emptied; in_flight and
-- n_in_flight, the packets in interlinks, left out: apps.interlink.ring.in_flight(dir)'s two
-- values, needed where its apps moved packets over interlinks (one killed as it moved a batch
-- still has them marked). Returns how many, and {free, links, held} (held: in its apps' hands).
function M.reclaim (dir, index, opts)
   check_dir(dir, "group.reclaim")
   check_whole(index, "group.reclaim: index", 0, C.GROUP_MAX_WORKERS - 1)
   opts = opts or {}
   if type(opts) ~= "table" then error("group.reclaim: opts must be a table, got " .. type(opts), 2) end
   if opts.links ~= nil and type(opts.links) ~= "string" then
      error("group.reclaim: links must be a directory's path, got " .. type(opts.links), 2)
   end
   local n_in_flight = opts.n_in_flight or 0
   if opts.in_flight ~= nil and not ffi.istype("uint64_t[?]", opts.in_flight) then
      error("group.reclaim: in_flight must be a uint64_t array (ring.in_flight's), got " ..
            tostring(opts.in_flight), 2)
   end
   if type(n_in_flight) ~= "number" or n_in_flight < 0 or n_in_flight ~= math.floor(n_in_flight) or
      (n_in_flight > 0 and (opts.in_flight == nil or n_in_flight > ffi.sizeof(opts.in_flight) / 8)) then
      error("group.reclaim: n_in_flight must be a count of in_flight's entries, got " ..
            tostring(opts.n_in_flight), 2)
   end
   local r = ffi.new("struct group_reclaimed")
   local n = C.snabb_group_reclaim(dir, index, opts.links, opts.in_flight, n_in_flight, r)
   if n < 0 then error(c_message(), 2) end
   return tonumber(n), {free = tonumber(r.free), links = tonumber(r.links), held = tonumber(r.held)}
end

-- {packets = carved so far, free = in the group list, cap, hugetlb, workers = {[i] = {free, held,
-- pid}}, twice} (workers indexed from 0, as attach's index; held: in its hands, free ones included;
-- twice: free-list entries naming a packet another names too, a bug, counted right once the
-- workers have stopped); nil and why when there is no group in dir.
function M.stats (dir)
   check_dir(dir, "group.stats")
   local s = ffi.new("struct group_stats")
   if C.snabb_group_stats(dir, s) ~= 0 then return nil, c_message() end
   local workers = {}
   for i = 0, s.workers - 1 do
      workers[i] = {free = tonumber(s.worker_free[i]), held = tonumber(s.worker_held[i]),
                    pid = s.worker_pid[i]}
   end
   return {packets = tonumber(s.packets), free = tonumber(s.free), cap = tonumber(s.cap),
           hugetlb = s.hugetlb ~= 0, workers = workers, nworkers = s.workers,
           twice = tonumber(s.twice)}
end

-- The directory of the group this process attached to, or nil.
function M.dir ()
   local dir = C.snabb_group_dir()
   return dir ~= nil and ffi.string(dir) or nil
end

-- How many workers the group this process attached to has, or nil.
function M.workers ()
   local dir = M.dir()
   local s = dir and M.stats(dir)
   return s and s.nworkers or nil
end

function M.selftest ()
   print("selftest: core.group")
   require("core.lib_h") -- get_monotonic_time, sleep_ns
   ffi.cdef("char *mkdtemp(char *template);")
   local worker = require("core.worker")
   local template = ffi.new("char[?]", 64, "/tmp/snabb-group-selftest-XXXXXX")
   assert(C.mkdtemp(template) ~= nil)
   local dir = ffi.string(template)
   -- Bad arguments are named; no group, no stats.
   assert(not pcall(M.create, dir, {workers = 0}))
   assert(not pcall(M.create, dir, {packets = 2^24 + 1}))
   local none, err = M.stats(dir)
   assert(none == nil and err:find("no group in " .. dir, 1, true), tostring(err))
   assert(M.dir() == nil)
   assert(M.create(dir, {workers = 2, packets = 20000}))
   local again, err2 = M.create(dir, {workers = 2})
   assert(again == nil and err2:match("already"), tostring(err2))
   -- Worker 0 allocates N packets, writes each one's number into it and its address into a file
   -- of dir; worker 1 checks and frees them all. Then each says so and waits to be stopped.
   local N = 5000
   local box = "struct { int ready; int freed; uint64_t p[" .. N .. "]; }"
   local function code (index, body)
      return ([[
         local ffi, C = require("ffi"), require("ffi").C
         local group, packet = require("core.group"), require("core.packet")
         assert(group.attach(%q, %d))
         assert(group.dir() == %q)
         assert(packet.cap() == 20000, "a worker's cap is its group's")
         require("core.lib_h")
         local path = %q .. "/box"
         local b = ffi.cast(%q .. " *", C.snabb_shm_map(path, ffi.sizeof(%q), 1, 0, 384, 448, -1))
         %s
         while true do C.sleep_ns(1000000) end
      ]]):format(dir, index, dir, dir, box, box, body)
   end
   -- Two of every three have their header moved, by prepend or shiftleft of 1 to 200 bytes (packet
   -- i's shift, in every worker's code): free takes a packet as it is, allocation puts it back.
   local shift = [[
      local function shift (i)
         local k = i % 200 + 1
         return i % 3 == 0 and -k or i % 3 == 1 and k or 0
      end
      local function tag (i) return ("<%06d>"):format(i) end
   ]]
   local w0 = worker.start("group0", code(0, shift .. ([[
      for i = 0, %d - 1 do
         local s = shift(i)
         local p = packet.from_string(string.rep("x", math.max(s, 0)) .. tag(i))
         if s > 0 then p = packet.shiftleft(p, s) end
         if s < 0 then p = packet.prepend(p, string.rep("h", -s), -s) end
         b.p[i] = ffi.cast("uint64_t", p)
      end
      b.ready = 1
   ]]):format(N)))
   -- Worker 1 frees each with its header's pages unreadable: free touches no packet.
   local w1 = worker.start("group1", code(1, shift .. ([[
      ffi.cdef("int mprotect(void *addr, size_t len, int prot);")
      -- (the group's hugetlbfs pages are protected whole)
      local page_size = group.stats(%q).hugetlb and 2 * 1024 * 1024 or 4096
      while b.ready == 0 do C.sleep_ns(1000000) end
      for i = 0, %d - 1 do
         local p = ffi.cast("struct packet *", b.p[i])
         local s = shift(i)
         assert(packet.tostring(p) == string.rep("h", math.max(-s, 0)) .. tag(i))
         local from = b.p[i] - b.p[i] %% page_size
         local size = (b.p[i] + 4 - from + page_size - 1) / page_size * page_size
         assert(C.mprotect(ffi.cast("void *", from), size, 0) == 0)
         packet.free(p)
         assert(C.mprotect(ffi.cast("void *", from), size, 3) == 0) -- PROT_READ | PROT_WRITE
      end
      b.freed = 1
   ]]):format(dir, N)))
   local b = ffi.cast(box .. " *", C.snabb_shm_map(dir .. "/box", ffi.sizeof(box), 1, 0, 384, 448, -1))
   local deadline = C.get_monotonic_time() + 60
   while b.freed == 0 and C.get_monotonic_time() < deadline do
      local status = worker.status()
      assert(status.group0.alive and status.group1.alive, "a worker ended")
      C.sleep_ns(10000000)
   end
   assert(b.freed == 1, "worker 1 freed worker 0's packets")
   -- Every packet carved is free somewhere: worker 0 allocated N and kept none; worker 1 freed
   -- them all (nothing lost, nothing counted twice).
   local s = M.stats(dir)
   assert(s.nworkers == 2 and s.cap == 20000 and s.workers[0].pid == w0 and s.workers[1].pid == w1)
   local total = s.free + s.workers[0].free + s.workers[1].free
   assert(total == s.packets and s.packets >= N, ("carved %d, free %d + %d + %d"):format(
      s.packets, s.free, s.workers[0].free, s.workers[1].free))
   assert(s.workers[1].free == N, "worker 1 holds what it freed: " .. s.workers[1].free)
   -- A live worker's list is not reclaimed; a dead one's is, to the group list. Bad options are
   -- named.
   assert(not pcall(M.reclaim, dir, 1))
   for _, bad in ipairs({{links = 3}, {in_flight = {1, 2}}, {n_in_flight = 2},
                         {in_flight = ffi.new("uint64_t[?]", 1), n_in_flight = 2}}) do
      local ok, message = pcall(M.reclaim, dir, 0, bad)
      assert(not ok and message:match("group.reclaim: [%w_]+ must be"), tostring(message))
   end
   worker.stop("group0")
   worker.stop("group1")
   while (worker.status().group0.alive or worker.status().group1.alive) and
      C.get_monotonic_time() < deadline do C.sleep_ns(1000000) end
   -- Worker 0's marks still name the N it handed to worker 1 by other means than an interlink
   -- (their addresses in the box), so its reclaim takes them, with its free ones, and worker 1's
   -- finds them in the group's list: each packet goes back once.
   local free0 = s.workers[0].free
   assert(s.workers[0].held == free0 + N and s.workers[1].held == 0, s.workers[0].held)
   local r0, from0 = M.reclaim(dir, 0)
   local r1, from1 = M.reclaim(dir, 1)
   assert(r0 == free0 + N and from0.free == free0 and from0.held == N and from0.links == 0)
   assert(r1 == 0 and from1.free == 0, r1)
   -- (worker 1's list was emptied, not given back again)
   s = M.stats(dir)
   assert(s.free == s.packets and s.twice == 0 and s.workers[0].free == 0 and s.workers[1].free == 0,
          ("carved %d, free %d, twice %d"):format(s.packets, s.free, s.twice))
   assert(s.workers[0].pid == 0 and s.workers[1].pid == 0)
   -- A third worker allocates every packet of the group: each is at its slot's canonical place
   -- (that of one of worker 0's packets: the moved ones less their shift), fresh, once; and the
   -- slots are intact (each tag where worker 0 wrote it: nothing but the fresh header was written).
   worker.start("group3", code(0, shift .. ([[
      local HEADROOM, SLOT = C.PACKET_HEADROOM, C.PACKET_SLOT_SIZE
      local canonical = {}
      for i = 0, %d - 1 do canonical[tonumber(b.p[i]) - shift(i)] = i end
      local seen, found = {}, 0
      for _ = 1, %d do
         local p = packet.allocate()
         local a = tonumber(ffi.cast("uint64_t", p))
         assert(p.length == 0 and p.headroom == HEADROOM and not seen[a])
         assert((a - (tonumber(b.p[0]) - shift(0))) %% SLOT == 0, "not a slot's canonical place")
         seen[a] = true
         local i = canonical[a]
         if i then
            found = found + 1
            local data = ffi.cast("struct packet *", b.p[i]).data + math.max(-shift(i), 0)
            assert(ffi.string(data, 8) == tag(i), ("packet %%d's slot changed"):format(i))
         end
      end
      assert(found == %d, found)
      b.ready = 3
   ]]):format(N, s.packets, N)))
   while b.ready ~= 3 and C.get_monotonic_time() < deadline do
      assert(worker.status().group3.alive, "worker group3 ended")
      C.sleep_ns(1000000)
   end
   worker.stop("group3")
   while worker.status().group3.alive and C.get_monotonic_time() < deadline do C.sleep_ns(1000000) end
   M.reclaim(dir, 0)
   -- A group's cap holds for its workers, and the message names the group.
   local small = dir .. "/small"
   C.snabb_shm_mkdir(small, 448, -1)
   assert(M.create(small, {packets = 100}))
   worker.start("group2", ([[
      local ffi, C = require("ffi"), require("ffi").C
      local group, packet = require("core.group"), require("core.packet")
      assert(group.attach(%q, 0))
      local b = ffi.cast(%q .. " *", C.snabb_shm_map(%q .. "/box", ffi.sizeof(%q), 1, 0, 384, 448, -1))
      for _ = 1, 100 do packet.allocate() end
      local ok, err = pcall(packet.allocate)
      assert(not ok)
      ffi.copy(ffi.cast("char *", b.p), err)
      b.ready = 2
   ]]):format(small, box, dir, box))
   while b.ready ~= 2 and C.get_monotonic_time() < deadline do C.sleep_ns(1000000) end
   local message = ffi.string(ffi.cast("char *", b.p))
   assert(message:find("packet pool exhausted: all packets of the group in " .. small ..
                       " (100 packets, 1 MiB) are in use", 1, true), message)
   assert(M.stats(small).packets == 100)
   while worker.status().group2.alive and C.get_monotonic_time() < deadline do C.sleep_ns(1000000) end
   -- (The killed workers' run directories: swept, not removed by PID, which may be another's.)
   require("observe.rundir").sweep()
   C.snabb_shm_unlink(dir)
   print("selftest: core.group ok")
end

return M

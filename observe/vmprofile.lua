-- observe.vmprofile: sampling profiles per zone (see observe/vmprofile.h). RaptorJIT's interface:
--   local vmprofile = require("observe.vmprofile")
--   vmprofile.open("script.vmprofile")   -- a zone in that file, selected, sampling started
-- and what the engine uses: zone(path, name, append), close_zone(zone), select(zone), start(hz),
-- stop(), hz() (the rate in effect: at most the kernel's tick, 250 Hz here), addresses(path) (the
-- process's table of sampled addresses in traces); read(path) parses a zone file (also one another
-- process is writing), read_addresses(path) an address table.
local ffi = require("ffi")
require("observe.vmprofile_cdefs")
local C = ffi.C
local util = require("jit.util")
local events = require("vm.events")

local M = {}

-- State names, in the order of enum vmprofile_state.
M.states = {"loop", "head", "interp", "c", "gc", "exit", "record", "optimise", "assemble", "runtime"}
M.default_hz = 1000

local function check (ok)
   if not ok then error(ffi.string(C.snabb_vmprofile_error()), 3) end
end

local function add_trace (tr)
   local mcode, address, loop = util.tracemc(tr)
   if mcode then C.snabb_vmprofile_trace(tr, address, #mcode, loop or 0) end
end

-- Keeps the C side's map of trace machine code in step with the JIT.
local function on_trace (what, tr)
   if what == "stop" then add_trace(tr)
   elseif what == "flush" then C.snabb_vmprofile_flush() end
end

-- They run inside JIT events, where compiled code must not run (see vm.events).
jit.off(add_trace)
jit.off(on_trace)

local attached = false

function M.start (hz)
   if not attached then
      events.subscribe("trace", on_trace)
      attached = true
      for tr = 1, C.VMPROFILE_MAX_TRACE do
         if util.traceinfo(tr) then add_trace(tr) end
      end
   end
   check(C.snabb_vmprofile_start(hz or M.default_hz) == 0)
end

function M.stop ()
   C.snabb_vmprofile_stop()
end

-- Samples per second of CPU time while started (0: stopped).
function M.hz ()
   return C.snabb_vmprofile_hz()
end

-- Stops sampling and forgets every zone (their files stay).
function M.close ()
   if attached then events.unsubscribe("trace", on_trace) attached = false end
   C.snabb_vmprofile_close()
end

-- A new zone writing to `path` (truncated, or with `append` added to); returns its id.
function M.zone (path, name, append)
   local id = C.snabb_vmprofile_zone(path, name or path, append and 1 or 0)
   check(id > 0)
   return id
end

-- Unmaps a zone (its file stays); its id goes to the next new zone.
function M.close_zone (zone)
   C.snabb_vmprofile_zone_close(zone)
end

function M.select (zone)
   C.snabb_vmprofile_select(zone)
end

-- Counts samples in traces by address into the table at `path` (truncated), from now on.
function M.addresses (path)
   check(C.snabb_vmprofile_addresses(path) == 0)
end

-- snabb -p FILE: the zone in FILE, the sampled addresses in FILE.addresses.
function M.open (path)
   local zone = M.zone(path, (path:match("([^/]+)%.vmprofile$") or path))
   M.addresses(path .. ".addresses")
   M.select(zone)
   M.start()
   return zone
end

local file_t = ffi.typeof("struct vmprofile_file")

ffi.cdef[[
int open(const char *path, int flags, ...);
int close(int fd);
int64_t lseek(int fd, int64_t offset, int whence);
int64_t pread(int fd, void *buf, size_t n, int64_t offset);
char *strerror(int errnum);
int usleep(unsigned usec);
]]
local O_RDONLY, SEEK_END, SEEK_DATA, SEEK_HOLE = 0, 2, 3, 4
local HEADER = ffi.offsetof(file_t, "counts")
local ROW = C.VMPROFILE_STATES * 8

-- Where read() puts a file's bytes (one file's size, 655 KB, allocated once).
local scratch, bytes

local function read_fd (fd, path)
   if not scratch then scratch = file_t() bytes = ffi.cast("uint8_t *", scratch) end
   local p, size = scratch, tonumber(C.lseek(fd, 0, SEEK_END))
   if size < HEADER or C.pread(fd, p, HEADER, 0) ~= HEADER or ffi.string(p.magic, 8) ~= "SNABBVMP" then
      error(("%s: not a vmprofile file"):format(path), 0)
   end
   if p.version ~= C.VMPROFILE_VERSION or p.states ~= C.VMPROFILE_STATES or size < ffi.sizeof(file_t) then
      error(("%s: vmprofile version %d with %d states; this snabb reads version %d"):format(
         path, p.version, p.states, C.VMPROFILE_VERSION), 0)
   end
   local result = {zone = ffi.string(p.zone), hz = p.hz, samples = tonumber(p.samples), traces = {},
                   total = {}, bytes_read = HEADER, holes = false}
   for _, name in ipairs(M.states) do result.total[name] = 0 end
   -- Only the file's data: rows are written where samples land, so the rest of the file is holes
   -- (a zone file is 655 KB; a zone's samples are in a few of its 160 pages). A file system
   -- without SEEK_DATA answers that the whole file is data.
   local pos, max_trace = 0, math.min(p.max_trace, C.VMPROFILE_MAX_TRACE)
   while pos < size do
      local from = tonumber(C.lseek(fd, pos, SEEK_DATA))
      if from < 0 then break end -- no data after pos
      local to = math.min(tonumber(C.lseek(fd, from, SEEK_HOLE)), size)
      if to <= from then break end
      local first = math.max(0, math.floor((from - HEADER) / ROW))
      local last = math.min(max_trace, math.floor((to - 1 - HEADER) / ROW))
      if first <= last then
         -- Rows that straddle a hole are zeros there.
         local a, b = HEADER + first * ROW, HEADER + (last + 1) * ROW
         ffi.fill(bytes + a, b - a)
         local start = math.max(from, HEADER)
         local n = math.min(to, b) - start
         if C.pread(fd, bytes + start, n, start) < 0 then
            error(("%s: %s"):format(path, ffi.string(C.strerror(ffi.errno()))), 0)
         end
         result.bytes_read = result.bytes_read + n
         for tr = first, last do
            local row
            for s = 0, C.VMPROFILE_STATES - 1 do
               local count = tonumber(p.counts[tr][s])
               if count > 0 then
                  local name = M.states[s + 1]
                  row = row or {}
                  row[name] = count
                  result.total[name] = result.total[name] + count
               end
            end
            result.traces[tr] = row
         end
      end
      result.holes = result.holes or to < size
      pos = to
   end
   return result
end

-- A zone file as {zone=, hz=, samples=, traces = {[trace] = {[state name] = count}}, total =
-- {[state name] = count}, bytes_read =, holes = whether the file system showed any}; trace 0
-- holds samples outside compiled code. Reads only the parts of
-- the file that hold data (snabb profile read 1,179 zone files in 5 s of CPU, whole; see
-- programs/README.md).
function M.read (path)
   local fd = C.open(path, O_RDONLY)
   if fd < 0 then error(("%s: %s"):format(path, ffi.string(C.strerror(ffi.errno()))), 2) end
   local ok, result = pcall(read_fd, fd, path)
   C.close(fd)
   if not ok then error(result, 2) end
   return result
end

local addresses_t = ffi.typeof("struct vmprofile_addresses")
local ADDR_HEADER = ffi.offsetof(addresses_t, "slot")
local SLOT = ffi.sizeof("struct vmprofile_address")

-- An address table (vmprofile.h) as {hz =, slots =, samples =, overflow =, used =, counted = (sum
-- of the counts), entries = {{trace =, flushes =, address =, count =}, ...}}. (Slots
-- are spread by hash; blocks of zeros are skipped unparsed). A file that is not one, of another
-- version, or cut short is one error naming it.
function M.read_addresses (path)
   local f, err = io.open(path, "rb")
   if not f then error(err, 2) end
   local size = f:seek("end")
   local function bad (why)
      f:close()
      error(("%s: %s"):format(path, why), 0)
   end
   if size < ADDR_HEADER then bad("not a vmprofile address table (too short for its header)") end
   f:seek("set", 0)
   local h = ffi.new(addresses_t)
   ffi.copy(h, f:read(ADDR_HEADER), ADDR_HEADER)
   if ffi.string(h.magic, 8) ~= "SNABBVMA" then bad("not a vmprofile address table (no SNABBVMA)") end
   if h.version ~= C.VMPROFILE_ADDRESSES_VERSION then
      bad(("address table version %d; this snabb reads version %d"):format(
         h.version, C.VMPROFILE_ADDRESSES_VERSION))
   end
   local slots = h.slots
   if slots ~= C.VMPROFILE_ADDRESS_SLOTS or size ~= ADDR_HEADER + slots * SLOT then
      bad(("address table cut short or corrupt: %d bytes for %d slots (%d expected)"):format(
         size, slots, ADDR_HEADER + C.VMPROFILE_ADDRESS_SLOTS * SLOT))
   end
   local result = {hz = h.hz, slots = slots, samples = tonumber(h.samples),
                   overflow = tonumber(h.overflow), used = tonumber(h.used), entries = {}}
   -- The slots, 4,096 (96 KiB) at a time; a block of zeros (holes read as zeros) has none taken.
   local PAGE = 4096 * SLOT
   local buf = ffi.new("struct vmprofile_address[?]", 4096)
   local counted = 0
   f:seek("set", ADDR_HEADER)
   for first = 0, slots - 1, 4096 do
      local block = f:read(PAGE)
      if not block or #block ~= PAGE then bad("address table cut short") end
      if block:find("[^%z]") then
         ffi.copy(buf, block, PAGE)
         for i = 0, 4095 do
            local s = buf[i]
            if s.address ~= 0 then
               local e = {trace = s.trace, flushes = s.flushes, address = tonumber(s.address),
                          count = tonumber(s.count)}
               result.entries[#result.entries + 1] = e
               counted = counted + e.count
            end
         end
      end
      if first + 4096 >= slots then break end
   end
   f:close()
   result.counted = counted -- sum of the slots' counts (samples - overflow, unless being written)
   return result
end

function M.selftest ()
   print("selftest: observe.vmprofile")
   local state = ffi.new("int[1]")
   local function classify (address) return M.states[C.snabb_vmprofile_classify(address, state) + 1] end
   -- Symbols of the binary: the interpreter, the GC, our runtime, the JIT compiler.
   local function addr (name)
      local a = C.snabb_vmprofile_symbol(name)
      assert(a ~= 0, name)
      return a
   end
   assert(classify(addr("lj_BC_ADDVN")) == "interp")
   assert(classify(addr("lj_gc_step")) == "gc")
   assert(classify(addr("lj_record_call")) == "record")
   -- (asm_ir: LuaJIT's lj_asm_trace is a GCC clone, lj_asm_trace.constprop.0, since
   -- mcode-map.patch; the classifier goes by prefix, the lookup here by whole name.)
   assert(classify(addr("asm_ir")) == "assemble")
   assert(classify(addr("lj_opt_fold")) == "optimise")
   assert(classify(addr("lj_vm_exit_handler")) == "exit")
   assert(classify(addr("snabb_link_sync")) == "runtime")

   -- A hot loop in its own zone: nearly all samples land in its trace's loop.
   local path = os.tmpname()
   M.open(path)
   local hz = M.hz()
   assert(hz > 0 and hz <= M.default_hz, hz)
   local function spin (n)
      local x = 0
      for i = 1, n do x = bit.bxor(x, i * 7) end
      return x
   end
   local deadline = os.clock() + 0.5
   while os.clock() < deadline do spin(1e6) end
   M.stop()
   local profile = M.read(path)
   -- Half a second of CPU gives ~0.5 * hz samples; on a loaded host (2 cores, 5 builds) one run
   -- in CI had 61 at 250 Hz, so the floor is what shows sampling works, not its rate.
   assert(profile.hz == hz and profile.samples > 0.1 * hz, ("%d samples at %d Hz"):format(profile.samples, hz))
   local loop = profile.total.loop
   assert(loop / profile.samples > 0.6, ("loop share %d/%d"):format(loop, profile.samples))
   local hottest, count = nil, 0
   for tr, row in pairs(profile.traces) do
      if tr > 0 and (row.loop or 0) > count then hottest, count = tr, row.loop end
   end
   local info = util.traceinfo(hottest)
   assert(info, "the hottest trace exists")
   -- The address table has every sample in a trace, each at an address inside its trace's code.
   local addrs = M.read_addresses(path .. ".addresses")
   assert(addrs.samples == profile.total.loop + profile.total.head,
          ("%d address samples, %d in traces"):format(addrs.samples, profile.total.loop + profile.total.head))
   assert(addrs.counted + addrs.overflow == addrs.samples and addrs.overflow == 0 and addrs.used == #addrs.entries)
   local in_hottest = 0
   for _, e in ipairs(addrs.entries) do
      local mcode, at = util.tracemc(e.trace)
      assert(e.flushes == 0 and mcode and e.address >= at and e.address < at + #mcode,
             ("%x not in trace %d"):format(e.address, e.trace))
      if e.trace == hottest then in_hottest = in_hottest + e.count end
   end
   assert(in_hottest == (profile.traces[hottest].loop or 0) + (profile.traces[hottest].head or 0))

   -- Samples follow the thread's CPU time: half a second asleep takes none (the 1 kHz
   -- wall-clock timer of before took 50, one per sleep it cut short).
   local asleep = os.tmpname()
   local asleep_zone = M.zone(asleep, "asleep")
   M.select(asleep_zone)
   M.start()
   for _ = 1, 50 do C.usleep(10000) end
   M.stop()
   M.close_zone(asleep_zone)
   assert(M.read(asleep).samples <= 2, ("%d samples asleep"):format(M.read(asleep).samples))
   os.remove(asleep)

   -- A closed zone is unmapped, its file stays and its id goes to the next zone; a zone opened
   -- with append adds to the file's counts, one opened without starts afresh.
   local zone = M.zone(path, "again", true)
   M.select(zone)
   M.close_zone(zone)
   local path2 = os.tmpname()
   assert(M.zone(path2, "other") == zone, "the id is reused")
   local kept = M.read(path)
   assert(kept.samples == profile.samples and kept.zone == "again", "the file stays")
   local appended = M.zone(path, "again", true)
   assert(M.read(path).samples == profile.samples, "append keeps the counts")
   M.close_zone(appended)
   M.close_zone(M.zone(path, "fresh"))
   assert(M.read(path).samples == 0 and M.read(path).zone == "fresh", "without append: truncated")
   M.close()
   os.remove(path)
   os.remove(path2)
   assert(not pcall(M.read, "/nonexistent"))

   -- read() takes only a file's data: counts in rows that straddle a page (row 101 is bytes
   -- 8,176-8,255), in pages far apart, and nothing left over from the file read before.
   local function sparse_file (file, cells) -- cells: {{trace, state, count}, ...}
      local h = file_t()
      ffi.copy(h.magic, "SNABBVMP", 8)
      h.version, h.states, h.max_trace, h.hz = C.VMPROFILE_VERSION, C.VMPROFILE_STATES, C.VMPROFILE_MAX_TRACE, 1000
      ffi.copy(h.zone, "sparse")
      local f = assert(io.open(file, "wb"))
      f:write(ffi.string(h, HEADER))
      local cell = ffi.new("uint64_t[1]")
      for _, c in ipairs(cells) do
         cell[0] = c[3]
         f:seek("set", HEADER + c[1] * ROW + c[2] * 8)
         f:write(ffi.string(cell, 8))
      end
      f:seek("set", ffi.sizeof(file_t) - 1)
      f:write("\0")
      f:close()
   end
   sparse_file(path, {{101, 0, 7}, {101, 9, 9}, {5000, 3, 11}, {0, 2, 5}})
   local sparse = M.read(path)
   assert(sparse.traces[101].loop == 7 and sparse.traces[101].runtime == 9 and sparse.traces[5000].c == 11
          and sparse.traces[0].interp == 5 and sparse.total.loop == 7 and sparse.total.c == 11)
   local rows = 0
   for _ in pairs(sparse.traces) do rows = rows + 1 end
   assert(rows == 3, rows)
   -- 5 pages hold data (header, rows 101 and 5000, the last byte); a file system that keeps no
   -- holes gives the whole file.
   assert(sparse.bytes_read <= 5 * 4096 or not sparse.holes, sparse.bytes_read)
   sparse_file(path, {{101, 9, 1}})
   sparse = M.read(path)
   assert(sparse.traces[101].runtime == 1 and sparse.traces[101].loop == nil and not sparse.traces[5000]
          and sparse.total.loop == 0, "a row of the file read before")
   os.remove(path)

   -- An address table that is not one, of another version, or cut short: one line naming it.
   local apath = path .. ".addresses"
   local before = M.read_addresses(apath)
   local whole = assert(io.open(apath, "rb")):read("*a")
   local function write_file (text) local f = assert(io.open(apath, "wb")) f:write(text) f:close() end
   local function fails (text, want)
      write_file(text)
      local ok, err = pcall(M.read_addresses, apath)
      assert(not ok and err:find(apath, 1, true) and err:find(want, 1, true) and not err:find("\n"),
             tostring(err))
   end
   fails(whole:sub(1, 20), "too short for its header")
   fails("SNABBVMX" .. whole:sub(9), "no SNABBVMA")
   fails(whole:sub(1, 8) .. "\99\0\0\0" .. whole:sub(13), "version 99")
   fails(whole:sub(1, #whole - 100), "cut short or corrupt")
   write_file(whole)
   assert(M.read_addresses(apath).samples == before.samples and before.samples >= addrs.samples)
   os.remove(apath)
   print("selftest: observe.vmprofile ok")
end

return M

-- core.stats: the engine's, apps' and links' counters in shared memory (runtime/stats.h has the
-- layout): the writer, which places the engine's own structs in files of the run directory, and
-- the Lua reader (snabb top, snabb ps). observe.observe publishes for snabb run, bench and basic1:
-- from publish() on, the engine's counters live in RUNDIR/engine/stats, each app's app_stats made
-- by the engine (M.app) in RUNDIR/apps/NAME/stats and each link made by link.new (M.link) in
-- RUNDIR/links/NAME/stats, ring and all. Nothing is copied: the engine updates them in place, as
-- it always did, so publishing costs nothing per packet. Without publish(), M.app and M.link give
-- process memory, as before.
local ffi = require("ffi")
require("core.cdefs")
require("core.runtime_cdefs") -- snabb_shm_map, snabb_shm_unlink, ...
require("core.stats_cdefs")
require("core.lib_h") -- get_unix_time
local C = ffi.C

local M = {}

ffi.cdef[[
int getpid(void);
int rmdir(const char *path);
]]

local engine_file_t = ffi.typeof("struct stats_engine_file")
local app_file_t = ffi.typeof("struct stats_app_file")
local link_file_t = ffi.typeof("struct stats_link_file")
local app_stats_ptr_t = ffi.typeof("struct app_stats *")
local link_ptr_t = ffi.typeof("struct link *")
local u64_ptr_t = ffi.typeof("uint64_t *")

-- A name as a file name (stats.h): '%', '/', control characters and a leading '.' as %XX.
function M.escape (name)
   local function hex (c) return ("%%%02X"):format(c:byte()) end
   return (name:gsub("[%%/%c]", hex):gsub("^%.", hex))
end

function M.unescape (file)
   return (file:gsub("%%(%x%x)", function (h) return string.char(tonumber(h, 16)) end))
end

local function unix_ns () return math.floor(C.get_unix_time() * 1e9) end

-- The publishing run: {dir, dir_mode, file_mode, gid, engine = the engine file's mapping}.
local run
-- Mappings made here, by the address handed out: {base, size, path} (apps' and links').
local mapped = {}
local function key (p) return tonumber(ffi.cast("uintptr_t", ffi.cast("void *", p))) end

local function c_error (what) error(("%s: %s"):format(what, ffi.string(C.snabb_error())), 0) end

-- A fresh, zeroed file of ctype at path (an old one is removed first), mapped, its header set.
local function make (path, ctype, kind, field, field_t)
   C.snabb_shm_unlink(path)
   local size = ffi.sizeof(ctype)
   local mem = C.snabb_shm_map(path, size, 1, 0, run.file_mode, run.dir_mode, run.gid)
   if mem == nil then c_error("core.stats") end
   local f = ffi.cast(ffi.typeof("$ *", ctype), mem)
   f.header.magic, f.header.version, f.header.kind = C.STATS_MAGIC, C.STATS_VERSION, kind
   f.header.offset = ffi.offsetof(ctype, field)
   f.header.size = ffi.sizeof(field_t)
   f.header.pid = C.getpid()
   f.header.created_ns = unix_ns()
   return f, mem, size
end

-- Removes path's file and then its directory, when nothing else (an app's counters) is in it.
local function remove (path)
   C.snabb_shm_unlink(path)
   C.rmdir((path:gsub("/[^/]*$", "")))
end

-- Snabb's engine.breaths (a counter: a uint64_t `c`), where the engine's counters are now.
local function rebind_breaths ()
   local engine = package.loaded["core.engine"]
   if engine then
      engine.breaths = ffi.cast("struct { uint64_t c; } *", ffi.cast("uint8_t *", C.snabb_engine_stats())
                                + ffi.offsetof("struct engine_stats", "breaths"))
   end
end

-- Publishes the counters in run directory rd ({dir, dir_mode, file_mode, gid}: observe.rundir's)
-- from now on; options.config: the config file's path, for readers. What an earlier run left in
-- a kept directory (--rundir) is removed first.
function M.publish (rd, options)
   assert(not run, "core.stats: already publishing")
   options = options or {}
   run = {dir = rd.dir, dir_mode = rd.dir_mode, file_mode = rd.file_mode, gid = rd.gid}
   C.snabb_shm_unlink(rd.dir .. "/links")
   C.snabb_shm_unlink(rd.dir .. "/engine")
   for _, app in ipairs(M.children(rd.dir .. "/apps")) do remove(("%s/apps/%s/stats"):format(rd.dir, app)) end
   local f, mem, size = make(rd.dir .. "/engine/stats", engine_file_t, C.STATS_ENGINE, "stats",
                          "struct engine_stats")
   f.info.tsc_hz = math.floor(C.snabb_tsc_hz() + 0.5)
   f.info.started_ns = unix_ns()
   f.info.breath_buckets = C.ENGINE_BREATH_BUCKETS
   run.engine = {mem = mem, size = size}
   C.snabb_engine_set_stats(f.stats)
   rebind_breaths()
   M.set_config(options.config)
end

-- The config file now running (written to RUNDIR/engine/config, absolute; nil: none).
function M.set_config (path)
   if not run then return end
   local file = run.dir .. "/engine/config"
   if not path then os.remove(file) return end
   if path:sub(1, 1) ~= "/" then
      local pwd = os.getenv("PWD")
      if pwd then path = pwd .. "/" .. path end
   end
   local f = io.open(file .. ".tmp", "w")
   if f and f:write(path, "\n") and f:close() then os.rename(file .. ".tmp", file) end
end

-- Stops publishing: the engine's counters go back to process memory (values kept). Apps' and
-- links' files stay mapped while they are in use (their directory may be gone: a temporary run
-- directory is removed at exit).
function M.unpublish ()
   if not run then return end
   C.snabb_engine_set_stats(nil)
   rebind_breaths()
   C.snabb_shm_unmap(run.engine.mem, run.engine.size)
   run = nil
end

function M.publishing () return run ~= nil end

-- The app_stats of app name, zeroed: in RUNDIR/apps/NAME/stats when publishing.
function M.app (name)
   if not run then return ffi.new("struct app_stats") end
   local path = ("%s/apps/%s/stats"):format(run.dir, M.escape(name))
   local f, mem, size = make(path, app_file_t, C.STATS_APP, "stats", "struct app_stats")
   local p = ffi.cast(app_stats_ptr_t, f.stats)
   mapped[key(p)] = {mem = mem, size = size, path = path, dir = run.dir}
   return p
end

-- Lets go of what M.app gave (the app has left the graph for good).
function M.app_free (stats)
   local m = mapped[key(stats)]
   if not m then return end
   mapped[key(stats)] = nil
   C.snabb_shm_unmap(m.mem, m.size)
   if run and run.dir == m.dir then remove(m.path) end
end

-- A new link named name ("a.out -> b.in") in RUNDIR/links/NAME/stats when publishing, else nil.
function M.link (name)
   if not run or type(name) ~= "string" then return nil end
   local path = ("%s/links/%s/stats"):format(run.dir, M.escape(name))
   local f, mem, size = make(path, link_file_t, C.STATS_LINK, "link", "struct link")
   local r = ffi.cast(link_ptr_t, ffi.cast("uint8_t *", mem) + ffi.offsetof(link_file_t, "link"))
   mapped[key(r)] = {mem = mem, size = size, path = path, dir = run.dir}
   return r, f
end

-- Frees link r if M.link made it (its queued packets freed and counted as drops, as
-- snabb_link_delete does): true, and 0 or -1 as snabb_link_drain says; nil for any other link.
function M.link_free (r)
   local m = mapped[key(r)]
   if not m then return nil end
   local rc = C.snabb_link_drain(r)
   mapped[key(r)] = nil
   C.snabb_shm_unmap(m.mem, m.size)
   if run and run.dir == m.dir then remove(m.path) end
   return true, rc
end

-- Reading a run directory (any process's).

-- The names in directory path, sorted ({} when it is none).
function M.children (path)
   local room = 4096
   while true do
      local buf = ffi.new("char[?]", room)
      local n = tonumber(C.snabb_shm_children(path, buf, room))
      if n < 0 then return {} end
      if n <= room then
         local names = {}
         for entry in ffi.string(buf, n):gmatch("([^%z]+)%z") do names[#names+1] = entry end
         table.sort(names)
         return names
      end
      room = n
   end
end

-- fn(counters) on stats file path mapped read-only, checked (kind, size of ctype at offset);
-- nil and a message when it cannot be read.
local function with_file (path, kind, ctype, fn)
   local mem = C.snabb_shm_map(path, ffi.sizeof("struct stats_header"), 0, 1, 0, 0, -1)
   if mem == nil then return nil, ffi.string(C.snabb_error()) end
   local h = ffi.cast("struct stats_header *", mem)
   local offset, magic, version, hkind = h.offset, h.magic, h.version, h.kind
   local size = offset + ffi.sizeof(ctype)
   C.snabb_shm_unmap(mem, ffi.sizeof("struct stats_header"))
   if magic ~= C.STATS_MAGIC then return nil, path .. ": not a stats file (bad magic)" end
   if version ~= C.STATS_VERSION then
      return nil, ("%s: stats version %d, this snabb reads %d"):format(path, version, C.STATS_VERSION)
   end
   if hkind ~= kind then return nil, ("%s: stats of another kind (%d)"):format(path, hkind) end
   mem = C.snabb_shm_map(path, size, 0, 1, 0, 0, -1)
   if mem == nil then return nil, ffi.string(C.snabb_error()) end
   local counters_t = ffi.typeof("const $ *", ffi.typeof(ctype))
   local result = fn(ffi.cast(counters_t, ffi.cast("const uint8_t *", mem) + offset), mem)
   C.snabb_shm_unmap(mem, size)
   return result
end

local function n (x) return tonumber(x) end

-- An app's counter files (apps/NAME/X.counter), by X.
local function counters (dir)
   local result = {}
   for _, file in ipairs(M.children(dir)) do
      local name = file:match("^(.+)%.counter$")
      if name then
         local mem = C.snabb_shm_map(dir .. "/" .. file, 8, 0, 1, 0, 0, -1)
         if mem ~= nil then
            result[M.unescape(name)] = n(ffi.cast(u64_ptr_t, mem)[0])
            C.snabb_shm_unmap(mem, 8)
         end
      end
   end
   return result
end

-- The counters of run directory dir, as the C++ reader gives them (stats.h: snabb::stats::read):
-- {pid, rundir, config, engine = {breaths, cycles, packets, breath_buckets, bucket_limits (both
-- 1-based: bucket i + 1 is engine_stats.breath_cycles[i]), tsc_hz, started_ns, heartbeat_ns},
-- apps = {{name, calls, cycles, idle_cycles, packets_in, packets_out, errors, freed,
-- counters = {X = value}}...}, links = {{name, from, to, txpackets, txbytes, rxpackets, rxbytes,
-- txdrop, queued}...}}, apps and links by name. nil and a message when dir has no engine stats.
function M.read (dir)
   local s = {rundir = dir, config = "", apps = {}, links = {}}
   local engine_path = dir .. "/engine/stats"
   local ok, err = with_file(engine_path, C.STATS_ENGINE, "struct engine_stats", function (e, mem)
      local f = ffi.cast("const struct stats_engine_file *", mem)
      s.pid = n(f.header.pid)
      local buckets, limits = {}, {}
      for i = 0, C.ENGINE_BREATH_BUCKETS - 1 do
         buckets[i + 1] = n(e.breath_cycles[i])
         limits[i + 1] = n(C.snabb_engine_breath_bucket_limit(i))
      end
      s.engine = {breaths = n(e.breaths), cycles = n(e.cycles), packets = n(e.packets),
                  breath_buckets = buckets, bucket_limits = limits, tsc_hz = n(f.info.tsc_hz),
                  started_ns = n(f.info.started_ns), heartbeat_ns = n(e.heartbeat_ns)}
      return true
   end)
   if not ok then
      if err:match("No such file") then
         err = err .. " (not the run directory of a snabb run, bench or basic1)"
      end
      return nil, err
   end
   local f = io.open(dir .. "/engine/config")
   if f then s.config = f:read("*l") or "" f:close() end
   for _, file in ipairs(M.children(dir .. "/apps")) do
      local adir = dir .. "/apps/" .. file
      local a = with_file(adir .. "/stats", C.STATS_APP, "struct app_stats", function (st)
         return {name = M.unescape(file), calls = n(st.calls), cycles = n(st.cycles),
                 idle_cycles = n(st.idle_cycles), packets_in = n(st.packets_in),
                 packets_out = n(st.packets_out), errors = n(st.errors), freed = n(st.freed)}
      end)
      -- (An app without its file is leaving the graph, or not the engine's: left out.)
      if a then
         a.counters = counters(adir)
         s.apps[#s.apps+1] = a
      end
   end
   for _, file in ipairs(M.children(dir .. "/links")) do
      local name = M.unescape(file)
      local l = with_file(dir .. "/links/" .. file .. "/stats", C.STATS_LINK, "struct link", function (k)
         -- rx, then drops, then tx: each only grows, so queued is never read below 0 for long.
         local rx, rxbytes, drop = n(k.stats.rxpackets), n(k.stats.rxbytes), n(k.stats.txdrop)
         local tx, txbytes = n(k.stats.txpackets), n(k.stats.txbytes)
         return {name = name, from = name:match("^(.-) %-> ") or "", to = name:match(" %-> (.*)$") or "",
                 txpackets = tx, txbytes = txbytes, rxpackets = rx, rxbytes = rxbytes, txdrop = drop,
                 queued = math.max(0, tx - drop - rx)}
      end)
      if l then s.links[#s.links+1] = l end
   end
   return s
end

function M.selftest ()
   print("selftest: core.stats")
   assert(M.escape("a.out -> b.in") == "a.out -> b.in")
   assert(M.escape("x/y%z") == "x%2Fy%25z" and M.escape(".hidden") == "%2Ehidden")
   for _, name in ipairs({"a.out -> b.in", "x/y%z", ".hidden", "..", "tab\there"}) do
      assert(M.unescape(M.escape(name)) == name)
      assert(not M.escape(name):find("/") and M.escape(name) ~= "." and M.escape(name) ~= "..")
   end
   print("selftest: core.stats ok")
end

return M

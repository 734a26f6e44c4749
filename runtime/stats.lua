-- core.stats: the engine's, apps' and links' counters in shared memory (runtime/stats.h has the
-- layout): the writer, which places the engine's own structs in files of the run directory, and
-- the Lua reader (snabb top, snabb ps). observe.observe publishes for snabb run, bench and basic1:
-- from publish() on, the engine's counters live in RUNDIR/engine/stats, each app's app_stats made
-- by the engine (M.app) in RUNDIR/engine/apps/NAME and each link made by link.new (M.link) in
-- RUNDIR/engine/links/NAME, ring and all. Nothing is copied: the engine updates them in place, as
-- it always did, so publishing costs nothing per packet. Without publish(), M.app and M.link give
-- process memory, as before.
local ffi = require("ffi")
require("core.cdefs")
require("core.runtime_cdefs") -- snabb_shm_map, snabb_shm_unlink, ...
require("core.stats_cdefs")
require("core.lib_h") -- get_unix_time
local C = ffi.C

local M = {}

ffi.cdef("int getpid(void);")

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

-- The publishing run: {fd, dir, dir_mode, file_mode, gid, pid, engine = its file's mapping}.
local run
-- Mappings made here, by the address handed out: {mem, size, path, run} (apps' and links').
local mapped = {}
local function key (p) return tonumber(ffi.cast("uintptr_t", ffi.cast("void *", p))) end
-- Files of apps and links that have left, kept mapped for the next ones (engine/.free/KIND-N; stats.h
-- says what that saves). By kind: {{mem, path}...}.
local spare = {}
local spares = 0

local function c_error (what) error(("%s: %s"):format(what, ffi.string(C.snabb_error())), 0) end

-- A zeroed file of ctype at path (relative to the run directory), mapped, its header set for kind:
-- a spare one renamed, else a new one.
local function make (path, ctype, kind, field, field_t)
   local size = ffi.sizeof(ctype)
   local mem
   local free = spare[kind] and table.remove(spare[kind])
   if free and C.snabb_stats_move(run.fd, free.path, path, run.dir_mode, run.gid) == 0 then
      mem = free.mem
      ffi.fill(mem, size)
   else
      if free then C.snabb_shm_unmap(free.mem, size) end
      mem = C.snabb_stats_create(run.fd, path, size, run.dir_mode, run.file_mode, run.gid)
      if mem == nil then c_error("core.stats") end
   end
   local f = ffi.cast(ffi.typeof("$ *", ctype), mem)
   f.header.magic, f.header.version, f.header.kind = C.STATS_MAGIC, C.STATS_VERSION, kind
   f.header.offset = ffi.offsetof(ctype, field)
   f.header.size = ffi.sizeof(field_t)
   f.header.pid = run.pid
   f.header.created_ns = unix_ns()
   return f, mem, size
end

-- The paths of the files in use (a program may make two links of one name: the second stays in
-- process memory).
local in_use = {}

-- Lets go of an object's file: kept as a spare while publishing to the same run directory, else
-- unmapped (a finished run's directory is removed, or kept with its last figures).
local function release (m, kind)
   if m.run == run then in_use[m.path] = nil end
   if run and m.run == run then
      spares = spares + 1
      local path = ("engine/.free/%d-%d"):format(kind, spares)
      if C.snabb_stats_move(run.fd, m.path, path, run.dir_mode, run.gid) == 0 then
         ffi.cast("struct stats_header *", m.mem).kind = 0
         spare[kind] = spare[kind] or {}
         table.insert(spare[kind], {mem = m.mem, path = path})
         return
      end
   end
   C.snabb_shm_unmap(m.mem, m.size)
end

-- Snabb's engine.breaths (a counter: a uint64_t `c`), where the engine's counters are now.
local function rebind_breaths ()
   local engine = package.loaded["core.engine"]
   if engine then
      engine.breaths = ffi.cast("struct { uint64_t c; } *", ffi.cast("uint8_t *", C.snabb_engine_stats())
                                + ffi.offsetof("struct engine_stats", "breaths"))
   end
end

-- Publishes the counters in run directory rd ({fd, dir, dir_mode, file_mode, gid}:
-- observe.rundir's) from now on; options.config: the config file's path, for readers. What an
-- earlier run left in a kept directory (--rundir) is removed first.
function M.publish (rd, options)
   assert(not run, "core.stats: already publishing")
   options = options or {}
   run = {fd = rd.fd, dir = rd.dir, dir_mode = rd.dir_mode, file_mode = rd.file_mode, gid = rd.gid,
          pid = C.getpid()}
   C.snabb_shm_unlink(rd.dir .. "/engine")
   local f, mem, size = make("engine/stats", engine_file_t, C.STATS_ENGINE, "stats",
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
-- directory is removed at exit); spare ones are unmapped.
function M.unpublish ()
   if not run then return end
   C.snabb_engine_set_stats(nil)
   rebind_breaths()
   C.snabb_shm_unmap(run.engine.mem, run.engine.size)
   for kind, list in pairs(spare) do
      local size = ffi.sizeof(kind == C.STATS_APP and app_file_t or link_file_t)
      for _, free in ipairs(list) do C.snabb_shm_unmap(free.mem, size) end
   end
   spare, in_use, run = {}, {}, nil
end

function M.publishing () return run ~= nil end

-- The app_stats of app name, zeroed: in RUNDIR/engine/apps/NAME when publishing.
function M.app (name)
   local path = run and "engine/apps/" .. M.escape(name)
   if not run or in_use[path] then return ffi.new("struct app_stats") end
   local f, mem, size = make(path, app_file_t, C.STATS_APP, "stats", "struct app_stats")
   local p = ffi.cast(app_stats_ptr_t, f.stats)
   mapped[key(p)] = {mem = mem, size = size, path = path, run = run}
   in_use[path] = true
   return p
end

-- Lets go of what M.app gave (the app has left the graph for good).
function M.app_free (stats)
   local m = mapped[key(stats)]
   if not m then return end
   mapped[key(stats)] = nil
   release(m, C.STATS_APP)
end

-- A new link named name ("a.out -> b.in") in RUNDIR/engine/links/NAME when publishing, else nil.
function M.link (name)
   if not run or type(name) ~= "string" then return nil end
   local path = "engine/links/" .. M.escape(name)
   if in_use[path] then return nil end -- (a second link of that name, made by a program: not shown)
   local _, mem, size = make(path, link_file_t, C.STATS_LINK, "link", "struct link")
   local r = ffi.cast(link_ptr_t, ffi.cast("uint8_t *", mem) + ffi.offsetof(link_file_t, "link"))
   mapped[key(r)] = {mem = mem, size = size, path = path, run = run}
   in_use[path] = true
   return r
end

-- Frees link r if M.link made it (its queued packets freed and counted as drops, as
-- snabb_link_delete does): true, and 0 or -1 as snabb_link_drain says; nil for any other link.
function M.link_free (r)
   local m = mapped[key(r)]
   if not m then return nil end
   local rc = C.snabb_link_drain(r)
   mapped[key(r)] = nil
   release(m, C.STATS_LINK)
   return true, rc
end

-- Reading a run directory (any process's).

-- The names in directory path, sorted ({} when it is none).
M.children = require("core.shm").list

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
-- txdrop, queued, ring}...}}, apps and links by name (a supervisor's: with its workers', M.add_workers).
-- nil and a message when dir has no engine stats.
function M.read (dir, nested)
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
   for _, file in ipairs(M.children(dir .. "/engine/apps")) do
      local a = with_file(dir .. "/engine/apps/" .. file, C.STATS_APP, "struct app_stats", function (st)
         return {name = M.unescape(file), calls = n(st.calls), cycles = n(st.cycles),
                 idle_cycles = n(st.idle_cycles), packets_in = n(st.packets_in),
                 packets_out = n(st.packets_out), errors = n(st.errors), freed = n(st.freed)}
      end)
      -- (An app whose file has gone as it was listed has left the graph: left out.)
      if a then
         a.counters = counters(dir .. "/apps/" .. file)
         s.apps[#s.apps+1] = a
      end
   end
   for _, file in ipairs(M.children(dir .. "/engine/links")) do
      local name = M.unescape(file)
      local l = with_file(dir .. "/engine/links/" .. file, C.STATS_LINK, "struct link", function (k)
         -- rx, then drops, then tx: each only grows, so queued is never read below 0 for long.
         local rx, rxbytes, drop = n(k.stats.rxpackets), n(k.stats.rxbytes), n(k.stats.txdrop)
         local tx, txbytes = n(k.stats.txpackets), n(k.stats.txbytes)
         return {name = name, from = name:match("^(.-) %-> ") or "", to = name:match(" %-> (.*)$") or "",
                 txpackets = tx, txbytes = txbytes, rxpackets = rx, rxbytes = rxbytes, txdrop = drop,
                 queued = math.max(0, tx - drop - rx),
                 -- in the ring now, by its cursors (queued is as of the engine's last sync)
                 ring = bit.tobit(k.write - k.read)}
      end)
      if l then s.links[#s.links+1] = l end
   end
   if not nested then M.add_workers(s, dir) end
   return s
end

-- A supervisor's run directory (programs/run/supervisor.lua) lists its workers' run directories
-- (workers/NAME): their apps and links join s as NAME/APP and NAME/LINK, their engines' counters
-- add up in s.engine (its heartbeat: the oldest of theirs, so a stalled worker shows), and
-- s.workers = {{name, pid, engine}...} (those whose counters can be read).
function M.add_workers (s, dir)
   local names = M.children(dir .. "/workers")
   if #names == 0 then return end
   s.workers = {}
   local e = s.engine
   local heartbeat
   for _, name in ipairs(names) do
      local w = not name:match("%.tmp$") and M.read(dir .. "/workers/" .. name, true)
      if w then
         s.workers[#s.workers+1] = {name = name, pid = w.pid, engine = w.engine}
         for _, a in ipairs(w.apps) do
            a.name = name .. "/" .. a.name
            s.apps[#s.apps+1] = a
         end
         for _, l in ipairs(w.links) do
            l.from, l.to = name .. "/" .. l.from, name .. "/" .. l.to
            l.name = l.from .. " -> " .. l.to
            s.links[#s.links+1] = l
         end
         e.breaths, e.cycles, e.packets = e.breaths + w.engine.breaths, e.cycles + w.engine.cycles,
            e.packets + w.engine.packets
         for i, count in ipairs(w.engine.breath_buckets) do e.breath_buckets[i] = e.breath_buckets[i] + count end
         heartbeat = math.min(heartbeat or math.huge, w.engine.heartbeat_ns)
      end
   end
   e.heartbeat_ns = heartbeat or e.heartbeat_ns
   table.sort(s.apps, function (x, y) return x.name < y.name end)
   table.sort(s.links, function (x, y) return x.name < y.name end)
end

function M.selftest ()
   print("selftest: core.stats")
   assert(M.escape("a.out -> b.in") == "a.out -> b.in")
   assert(M.escape("x/y%z") == "x%2Fy%25z" and M.escape(".hidden") == "%2Ehidden")
   for _, name in ipairs({"a.out -> b.in", "x/y%z", ".hidden", "..", "tab\there"}) do
      assert(M.unescape(M.escape(name)) == name)
      assert(not M.escape(name):find("/") and M.escape(name) ~= "." and M.escape(name) ~= "..")
   end
   -- Published: what a reader sees is what the engine counts, exactly, once it has stopped.
   local engine, config, basic = require("core.engine"), require("core.config"), require("apps.basic.basic_apps")
   local rd = require("core.shm").run_directory()
   M.publish(rd, {config = "/x/y.lua"})
   local c = config.new()
   config.app(c, "source", basic.Source)
   config.app(c, "tee", basic.Tee)
   config.app(c, "sink", basic.Sink)
   config.app(c, "sink2", basic.Sink)
   config.link(c, "source.output -> tee.input")
   config.link(c, "tee.a -> sink.input")
   config.link(c, "tee.b -> sink2.input")
   engine.configure(c)
   engine.main({duration = 0.02, no_report = true})
   local s = assert(M.read(rd.dir))
   assert(s.pid == C.getpid() and s.config == "/x/y.lua", s.config)
   assert(s.engine.breaths == tonumber(engine.breaths.c) and s.engine.breaths > 0)
   assert(#s.apps == 4 and #s.links == 3)
   for _, a in ipairs(engine.app_stats()) do
      local r
      for _, x in ipairs(s.apps) do if x.name == a.name then r = x end end
      for _, field in ipairs({"calls", "cycles", "idle_cycles", "packets_in", "packets_out", "errors", "freed"}) do
         assert(r[field] == a[field], ("%s.%s: %s read, %s counted"):format(a.name, field, r[field], a[field]))
      end
   end
   for _, l in ipairs(s.links) do
      local st = require("core.link").stats(engine.link_table[l.name])
      assert(l.txpackets == st.txpackets and l.rxpackets == st.rxpackets and l.txdrop == st.txdrop)
      assert(l.txpackets == l.rxpackets + l.queued + l.txdrop and l.txpackets > 0)
      assert(l.from == l.name:match("^(%S+)") and l.to == l.name:match("(%S+)$"))
   end
   -- An app and a link that leave are no longer listed; the ones that come get zeroed files.
   c = config.new()
   config.app(c, "source", basic.Source)
   config.app(c, "sink", basic.Sink)
   config.app(c, "sink2", basic.Sink)
   config.link(c, "source.output -> sink.input")
   engine.configure(c)
   s = assert(M.read(rd.dir))
   local names = {}
   for _, a in ipairs(s.apps) do names[#names+1] = a.name end
   assert(table.concat(names, ",") == "sink,sink2,source", table.concat(names, ","))
   assert(#s.links == 1 and s.links[1].name == "source.output -> sink.input" and s.links[1].txpackets == 0)
   -- A second link of a name in use (a program's own) lives in process memory.
   local l1, l2 = M.link("mine"), M.link("mine")
   assert(l1 ~= nil and l2 == nil and M.link_free(l1) and not M.link_free(l2))
   engine.configure(config.new())
   assert(#assert(M.read(rd.dir)).apps == 0)
   local breaths = tonumber(engine.breaths.c)
   M.unpublish()
   assert(tonumber(engine.breaths.c) == breaths, "engine.breaths follows the counters home")
   print("selftest: core.stats ok")
end

return M

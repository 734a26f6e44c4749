-- core.shm: Snabb's named shared-memory objects. shm.create(name, type) maps a file of the process's
-- run directory (observe/rundir.lua) as a cdata of that type, as ffi.new would make it; another
-- process (or another shm.open here) mapping the same name shares its memory, which is how
-- monitoring tools read counters and histograms live. The files stay until unlinked or the run
-- directory is removed (at exit, unless it is a --rundir).
--
-- Names, as Snabb resolves them, against shm.root (the base directory: /var/run/snabb for root,
-- else $TMPDIR/snabb-UID):
--   foo/bar         this process's: ROOT/PID/foo/bar (PID: the run directory's name)
--   //foo/bar       this process's too
--   /1234/foo/bar   fully qualified: ROOT/1234/foo/bar (process 1234's foo/bar)
-- shm.root..'/'..shm.resolve(name) is the path, as Snabb code builds it. Under `snabb run
-- --rundir DIR`, shm.root is DIR's parent and the PID part is DIR's name. Differences kept on
-- purpose: files are private to the user (or --group), not world-readable, since the run
-- directory is (observe/README.md); a file is grown to its type's size but never shrunk (another
-- process may map it whole); the run directory's own files (lock, apps.json, audit.log) are
-- refused as names; SNABB_SHM_ROOT and SNABB_SHM_KEEP are not read (--rundir DIR keeps a run's).
local ffi = require("ffi")
require("core.runtime_cdefs")
local C = ffi.C

local M = {}

-- Where objects go: a function returning the process's run directory as {dir, dir_mode,
-- file_mode, gid}, made on first use. The program sets it (programs/main.lua: observe.rundir's
-- instance(), which owns the run directory's layout and life): the run directory is a floor
-- above this module's.
M.run_directory = nil

-- The run directory as {rd, root, name}; another when the one used so far has been closed (an
-- observed run that ended) or replaced (--rundir).
local instance
local function here ()
   if not M.run_directory then
      error("core.shm: no run directory (the program sets shm.run_directory)", 3)
   end
   local rd = M.run_directory()
   if not instance or instance.rd ~= rd then
      local root, name = rd.dir:match("^(.*)/([^/]+)/*$")
      -- (--rundir NAME: a directory in the current one)
      if not root then root, name = ".", rd.dir:match("^([^/]+)/*$") end
      instance = {rd = rd, root = root ~= "" and root or "/", name = name}
   end
   return instance
end

-- shm.root, read as Snabb code reads it (a field), is the run directory's base; assigning it (as
-- Snabb's `snabb shm` program does) sets where names resolve.
setmetatable(M, {__index = function (_, key)
   if key == "root" then return here().root end
end})

local function c_error (what, level)
   error(("%s: %s"):format(what, ffi.string(C.snabb_error())), level + 1)
end

-- The path of name relative to shm.root.
function M.resolve (name)
   if type(name) ~= "string" then
      error(("shm: a name is a string, got %s"):format(type(name)), 2)
   end
   local slashes, rest = name:match("^(/*)(.*)$")
   if slashes == "/" then return rest end
   return here().name .. "/" .. rest
end

-- The path of object name.
function M.path (name)
   return M.root .. "/" .. M.resolve(name)
end

-- The run directory's own files (observe/rundir.lua).
local reserved = {lock = true, ["apps.json"] = true, ["apps.json.tmp"] = true,
                  ["audit.log"] = true}

local function checked_path (name, level)
   local path = M.path(name)
   local own = here()
   local top = path:sub(1, #own.rd.dir + 1) == own.rd.dir .. "/" and path:sub(#own.rd.dir + 2)
   if top and reserved[top] then
      error(("shm: '%s' is the run directory's own %s, not an object"):format(name, path), level + 1)
   end
   return path
end

-- The mappings made here: address -> size, for unmap; and the objects handed out -> address (a
-- reference to a scalar type, as shm.create(name, "int") gives, converts to its value, not to
-- its address).
M.mappings = {}
local addresses = setmetatable({}, {__mode = "k"})

local function map (name, type, readonly, create, level, ...)
   local ok, ctype = pcall(ffi.typeof, type)
   if not ok then
      error(("%s: '%s': not a C type (%s)"):format(create and "shm.create" or "shm.open",
         tostring(type), ctype), level + 1)
   end
   local size = ffi.sizeof(ctype, ...)
   if not size then error(("shm: %s has no size (a variable-length type without its length?)")
                             :format(tostring(ctype)), level + 1) end
   local path = checked_path(name, level + 1)
   local rd = here().rd
   local mem = C.snabb_shm_map(path, size, create and 1 or 0, readonly and 1 or 0, rd.file_mode,
                               rd.dir_mode, rd.gid)
   if mem == nil then c_error(create and "shm.create" or "shm.open", level + 1) end
   local address = tonumber(ffi.cast("uintptr_t", mem))
   M.mappings[address] = size
   local object = ffi.cast(ffi.typeof("$&", ctype), mem)
   addresses[object] = address
   return object
end

-- Maps object name as type (a ctype or C type text; ... the length of a variable-length type),
-- made when missing: a fresh object is zeroed, an existing one keeps its contents.
function M.create (name, type, ...)
   local p = map(name, type, false, true, 2, ...) -- (not a tail call: errors name the caller)
   return p
end

-- Maps existing object name as type; readonly (any true value): read-only.
function M.open (name, type, readonly, ...)
   local p = map(name, type, readonly, false, 2, ...)
   return p
end

-- Whether object name exists.
function M.exists (name)
   return C.snabb_shm_exists(M.path(name)) == 1
end

-- Makes name a symbolic link to the object (or directory) target.
function M.alias (name, target)
   if C.snabb_shm_alias(checked_path(name, 2), M.path(target), here().rd.dir_mode,
                        here().rd.gid) ~= 0 then
      c_error("shm.alias", 2)
   end
end

-- Makes directory name (resolved as a name) and its parents.
function M.mkdir (name)
   local path = M.root .. "/" .. name:gsub("^/+", "")
   if C.snabb_shm_mkdir(path, here().rd.dir_mode, here().rd.gid) ~= 0 then
      c_error("shm.mkdir", 2)
   end
end

-- Unmaps pointer, a mapping made by create or open.
function M.unmap (pointer)
   local address = addresses[pointer]
      or tonumber(ffi.cast("uintptr_t", ffi.cast("void *", pointer)))
   local size = M.mappings[address]
   if not size then error("shm.unmap: not a mapping of shm.create or shm.open", 2) end
   C.snabb_shm_unmap(ffi.cast("void *", address), size)
   M.mappings[address] = nil
end

-- Removes object name, or the tree of objects under it. True when something was removed.
function M.unlink (name)
   local result = C.snabb_shm_unlink(checked_path(name, 2))
   if result < 0 then c_error("shm.unlink", 2) end
   return result == 1
end

-- The names in the directory at path, sorted; {} when it is not one.
function M.list (path)
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

-- The names in directory name (unqualified: 'x', not 'foo/bar/x'); {} when it is not one.
function M.children (name) return M.list(M.path(name)) end

-- The types of abstract objects (counter, histogram): type name -> module, which has create(name,
-- ...), open(name, readonly) and maybe delete(name), and `type` (its name).
M.types = {}

function M.register (type, module)
   assert(module, "shm.register: a module is needed")
   assert(not M.types[type], "shm.register: type '" .. tostring(type) .. "' is registered already")
   M.types[type] = module
   return type
end

-- A frame: a table of objects made by spec {name = {module, create's arguments...}, ...} under
-- path, each as path/name.TYPE (apps/x/rxpackets.counter).
function M.create_frame (path, specs)
   local frame = {specs = specs, path = path .. "/"}
   for name, spec in pairs(specs) do
      local module = spec[1]
      if type(module) ~= "table" or not module.type or M.types[module.type] ~= module then
         error(("shm.create_frame: %s: '%s' has no registered type (a module such as core.counter)")
                  :format(path, name), 2)
      end
      frame[name] = module.create(frame.path .. name .. "." .. module.type, unpack(spec, 2))
   end
   return frame
end

-- The frame of the objects under path, each opened read-only by the type its name ends with.
function M.open_frame (path)
   local frame = {specs = {}, path = path .. "/", readonly = true}
   for _, file in ipairs(M.children(path)) do
      local name, type = file:match("^(.*)%.([^.]*)$")
      local module = type and M.types[type]
      if module then
         frame[name] = module.open(frame.path .. file, "readonly")
         frame.specs[name] = {module}
      end
   end
   return frame
end

-- Lets go of a frame's objects (each module's delete, else unmapped); a frame made by
-- create_frame has its directory removed too.
function M.delete_frame (frame)
   for name, spec in pairs(frame.specs) do
      local module = spec[1]
      if rawget(module, "delete") then
         module.delete(frame.path .. name .. "." .. module.type)
      else
         M.unmap(frame[name])
      end
   end
   if not frame.readonly then M.unlink(frame.path) end
end

function M.selftest ()
   print("selftest: core.shm")
   local pid = here().name
   assert(M.resolve("/" .. pid .. "/foo/bar") == M.resolve("foo/bar"))
   assert(M.resolve("//foo/bar") == pid .. "/foo/bar" and M.resolve("/1/x") == "1/x")
   assert(M.path("foo") == here().rd.dir .. "/foo")
   -- Two mappings of one object share its memory.
   local name, t = "shm/selftest/obj", "struct { int x, y, z; }"
   local p1, p2 = M.create(name, t), M.create(name, t)
   assert(p1 ~= p2 and p1.x == 0)
   p1.x = 42
   assert(p2.x == 42)
   local r = M.open(name, t, "readonly")
   assert(r.x == 42)
   assert(M.exists(name) and M.unlink(name))
   assert(not M.exists(name) and M.unlink(name) == false)
   M.unmap(p1) M.unmap(p2) M.unmap(r)
   assert(not pcall(M.unmap, p1), "unmapping twice is refused")
   M.unmap(M.create("shm/selftest/scalar", "uint32_t")) -- (a reference to a scalar: its value
                                                        -- is not its address)
   -- Variable-length types, and a reader's size check.
   local v = "struct { int n; int xs[?]; }"
   local w = M.create("shm/selftest/vla", v, 10)
   local rv = M.open("shm/selftest/vla", v, "readonly", 10)
   w.xs[9] = 7
   assert(rv.xs[9] == 7)
   local ok, err = pcall(M.open, "shm/selftest/vla", v, "readonly", 1000)
   assert(not ok and err:match("less than the 4004"), err)
   M.unmap(w) M.unmap(rv)
   ok, err = pcall(M.open, "shm/selftest/missing", "int")
   assert(not ok and err:match("shm.open: .*missing: No such file"), err)
   ok, err = pcall(M.create, "lock", "int")
   assert(not ok and err:match("run directory's own"), err)
   -- Aliases, children, many objects.
   local c = M.create("shm/selftest/dir/a", "uint64_t[1]")
   c[0] = 5
   M.alias("shm/selftest/link", "shm/selftest/dir/a")
   local a = M.open("shm/selftest/link", "uint64_t[1]")
   assert(a[0] == 5ULL)
   M.unmap(a) M.unmap(c)
   local n, objs = 2000, {}
   for i = 1, n do objs[i] = M.create("shm/selftest/many/" .. i, "uint64_t[1]") end
   for i = 1, n do M.unmap(objs[i]) end
   assert(#M.children("shm/selftest/many") == n)
   assert(table.concat(M.children("shm/selftest"), ",") == "dir,link,many,scalar,vla")
   assert(#M.children("shm/selftest/none") == 0)
   -- Frames of registered types.
   local counter = require("core.counter")
   local f = M.create_frame("shm/selftest/frame", {rx = {counter}, tx = {counter, 5}})
   counter.add(f.rx, 3)
   counter.commit()
   local g = M.open_frame("shm/selftest/frame")
   assert(counter.read(g.rx) == 3 and counter.read(g.tx) == 5 and g.readonly)
   assert(g.specs.rx[1] == counter and g.path == "shm/selftest/frame/")
   M.delete_frame(f)
   assert(not M.exists("shm/selftest/frame"))
   assert(not pcall(M.create_frame, "x", {bad = {{}}}))
   ok, err = pcall(M.create, "shm/selftest/bad", "struct nonsense {")
   assert(not ok and err:match("shm.create: .struct nonsense {.: not a C type"), err)
   -- mkdir takes a path below shm.root, as resolve gives it.
   M.mkdir(M.resolve("shm/selftest/made/here"))
   assert(#M.children("shm/selftest/made") == 1 and M.root == here().root)
   assert(M.unlink("shm"))
   print("selftest: core.shm ok")
end

return M

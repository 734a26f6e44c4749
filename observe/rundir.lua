-- observe.rundir: a run directory, the one owner of its layout for the process that writes it
-- (observe.observe) and those that read it (snabb profile):
--   BASE/PID/                 BASE: /var/run/snabb, or $TMPDIR/snabb-UID (base_dirs); PID-2, PID-3...
--     lock                    held for the run's life (rundir.cc)
--     apps.json               per-app engine counters, rewritten whole (apps.json.tmp, renamed)
--     audit.log               the JIT auditlog (AUDITLOG.md)
--     vmprofile/NAME.vmprofile  a profile zone per app, and `engine`
--     vmprofile/addresses     the samples in traces by machine-code address (vmprofile.h)
--     NAME                    core.shm's objects (counters: NAME.counter, histograms: NAME.histogram,
--                             apps' frames: apps/APP/NAME.TYPE), any depth; Snabb's layout
--                             (runtime/shm.lua). M.instance() is the directory they go in.
-- Made, locked and removed safely against other local users by rundir.cc (rundir.h, README.md):
-- this module is its Lua side, with the names and paths both sides use.
local ffi = require("ffi")
local json = require("dkjson")
require("core.cdefs") -- snabb_error
require("observe.rundir_cdefs")
local C = ffi.C

ffi.cdef[[
unsigned int geteuid(void);
long write(int fd, const void *buf, unsigned long n);
int close(int fd);
int renameat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath);
int64_t readlink(const char *path, char *buf, size_t size);
]]

local M = {}

M.APPS = "apps.json"
M.AUDITLOG = "audit.log"
M.VMPROFILE = "vmprofile"

function M.apps_path (dir) return dir .. "/" .. M.APPS end
function M.zone_file (name) return name .. ".vmprofile" end
function M.zone_path (dir, name) return ("%s/%s/%s"):format(dir, M.VMPROFILE, M.zone_file(name)) end
M.ADDRESSES = "addresses" -- in VMPROFILE (no .vmprofile: no app's zone has its name)
function M.addresses_path (dir) return ("%s/%s/%s"):format(dir, M.VMPROFILE, M.ADDRESSES) end

-- Where the run directories of user uid's processes are: /var/run/snabb (root's, and another
-- user's who owns it), else $TMPDIR/snabb-UID.
function M.base_dirs (uid)
   return {"/var/run/snabb", ("%s/snabb-%d"):format(os.getenv("TMPDIR") or "/tmp", uid)}
end

-- The names process pid's run directory may have in a base directory, in the order rundir.cc
-- gives them (PID, then PID-2, ... when a process of another PID namespace has our PID).
function M.names (base, pid)
   local names = {}
   for n = 1, 100 do
      names[n] = n == 1 and ("%s/%d"):format(base, pid) or ("%s/%d-%d"):format(base, pid, n)
   end
   return names
end

-- rundir.cc's last error as a message about what.
function M.error (what)
   return ("%s: %s"):format(what or "run directory", ffi.string(C.snabb_error()))
end

-- name if it is a group, else nil and the message (for a usage error before anything runs).
function M.check_group (name)
   if C.snabb_rundir_gid(name) >= 0 then return name end
   return nil, M.error("--group")
end

-- The modes of a run's directories and files, and their group (-1: unchanged): private, or
-- readable by the group named.
local function modes (group)
   if not group then return tonumber("700", 8), tonumber("600", 8), -1 end
   local gid = C.snabb_rundir_gid(group)
   if gid < 0 then error(M.error("--group"), 0) end
   return tonumber("750", 8), tonumber("640", 8), gid
end

-- The base directory, made if missing (0711: others can reach a run directory that --group opens
-- to them, but cannot list or write it), as a descriptor, and its path.
local function open_base ()
   local uid = C.geteuid()
   local bases = M.base_dirs(uid)
   local fd = C.snabb_rundir_open(bases[1], tonumber("711", 8), -1, 1)
   if fd >= 0 then return fd, bases[1] end
   -- For root, a /var/run/snabb that another user owns or can write to is refused; one that the
   -- system will not give (read-only, no /var/run) sends root, like everyone else, to $TMPDIR.
   if uid == 0 and fd == -1 then error(M.error(), 0) end
   fd = C.snabb_rundir_open(bases[2], tonumber("711", 8), -1, 1)
   if fd < 0 then error(M.error(), 0) end
   return fd, bases[2]
end

-- A new run directory BASE/PID (rundir.h), locked, after removing those of processes that have
-- died. Returns its descriptor and path.
local function new_run_dir (dir_mode, file_mode, gid)
   local base_fd, base = open_base()
   C.snabb_rundir_sweep(base_fd)
   local name = ffi.new("char[32]")
   local fd = C.snabb_rundir_new(base_fd, dir_mode, file_mode, gid, name, 32)
   C.close(base_fd)
   if fd < 0 then error(M.error("run directory " .. base), 0) end
   return fd, base .. "/" .. ffi.string(name)
end

-- This process's run directory, once open (M.open, M.instance).
local current

-- Opens a run directory for writing: dir (kept after the run, locked against a second process)
-- or a new temporary one; group: who else may read it. Returns {fd, dir, dir_mode, file_mode,
-- gid}, for the functions below. It becomes the process's run directory (M.instance); a new
-- temporary one is not made when the process has one already (core.shm made it first).
function M.open (dir, group)
   if not dir and current then return current end
   local dir_mode, file_mode, gid = modes(group)
   local fd
   if dir then
      fd = C.snabb_rundir_open(dir, dir_mode, gid, 2)
      if fd < 0 then error(M.error(), 0) end
      local holder = C.snabb_rundir_lock(fd, file_mode, gid)
      if holder ~= 0 then
         C.close(fd)
         error(holder > 0 and ("run directory %s: in use by process %d"):format(dir, holder)
                  or M.error(dir), 0)
      end
   else
      fd, dir = new_run_dir(dir_mode, file_mode, gid)
   end
   current = {fd = fd, dir = dir, dir_mode = dir_mode, file_mode = file_mode, gid = gid}
   return current
end

-- The process's run directory, made (temporary, private) when it has none: where core.shm puts
-- its objects, so that `snabb run` keeps them beside apps.json, and a script or selftest gets one
-- of its own, removed at exit.
function M.instance ()
   return current or M.open()
end


-- A new file name in the directory fd (default: the run directory's; rundir.h: never a planted
-- link, never another's file), for its writer to open by path: no other user can change that
-- directory.
function M.create (rd, name, fd)
   local file = C.snabb_rundir_create(fd or rd.fd, name, rd.file_mode, rd.gid)
   if file < 0 then error(M.error(rd.dir), 0) end
   C.close(file)
end

-- A subdirectory, as a descriptor for create.
function M.mkdir (rd, name)
   local fd = C.snabb_rundir_mkdir(rd.fd, name, rd.dir_mode, rd.gid)
   if fd < 0 then error(M.error(rd.dir), 0) end
   return fd
end

-- Replaces file name with text whole (written to NAME.tmp, then renamed); false if it could not
-- (as a full disk: the caller may try again later).
function M.replace (rd, name, text)
   local tmp = name .. ".tmp"
   local fd = C.snabb_rundir_create(rd.fd, tmp, rd.file_mode, rd.gid)
   if fd < 0 then return false end
   local written = C.write(fd, text, #text)
   C.close(fd)
   return written == #text and C.renameat(rd.fd, tmp, rd.fd, name) == 0
end

-- Lets go of the directory (rd may be nil): a temporary one is removed, the lock released.
function M.close (rd)
   if rd then C.close(rd.fd) end
   if rd == nil or rd == current then current = nil end
   C.snabb_rundir_close()
end

-- Reading: a run directory found by a PID or a path.

local function exists (path)
   local f = io.open(path)
   if f then f:close() end
   return f ~= nil
end

-- The effective user of process pid (from /proc/PID/status), or nil.
local function owner (pid)
   local f = io.open(("/proc/%d/status"):format(pid))
   if not f then return nil end
   local uid = f:read("*a"):match("\nUid:%s+%d+%s+(%d+)")
   f:close()
   return tonumber(uid)
end

-- The --rundir DIR process pid was started with, from its command line (/proc/PID/cmdline: there
-- as long as the process is, nothing to leave behind; a relative DIR is from its working
-- directory), or nil.
local function cmdline_rundir (pid)
   local f = io.open(("/proc/%d/cmdline"):format(pid))
   if not f then return nil end
   local args = {}
   for a in (f:read("*a") or ""):gmatch("([^%z]*)%z") do args[#args+1] = a end
   f:close()
   for i, a in ipairs(args) do
      if a == "--" then return nil end
      local dir = a == "--rundir" and args[i + 1] or a:match("^%-%-rundir=(.+)")
      if dir and dir:sub(1, 1) ~= "/" then
         local buf = ffi.new("char[4096]")
         local n = C.readlink(("/proc/%d/cwd"):format(pid), buf, 4096)
         dir = n > 0 and ffi.string(buf, n) .. "/" .. dir or ("/proc/%d/cwd/%s"):format(pid, dir)
      end
      if dir then return dir end
   end
end

-- The run directory in a base directory (BASE/PID or BASE/PID-N) that live process pid holds the
-- lock of, or nil. By name alone, BASE/PID may be another process's: one that had the PID before,
-- or, under PID namespaces (Bazel's sandbox), a live one of another namespace.
function M.held_by (pid)
   for _, base in ipairs(M.base_dirs(C.geteuid())) do
      for _, dir in ipairs(M.names(base, pid)) do
         if C.snabb_rundir_owned_by(dir, pid) == 1 then return dir end
      end
   end
end

-- The run directory of live process pid: its --rundir, or one in a base directory named PID or
-- PID-N, whose lock that very process holds (rundir.h). A directory left by a dead process, whose
-- PID may now be another's, is never taken for it.
local function find_pid_dir (pid)
   local rundir = cmdline_rundir(pid)
   if rundir and C.snabb_rundir_owned_by(rundir, pid) == 1 then return rundir end
   local bases, seen = {}, {}
   for _, uid in ipairs({owner(pid) or C.geteuid(), C.geteuid()}) do
      for _, base in ipairs(M.base_dirs(uid)) do
         if not seen[base] then seen[base] = true bases[#bases+1] = base end
      end
   end
   local problem
   for _, base in ipairs(bases) do
      for _, dir in ipairs(M.names(base, pid)) do
         local f, err = io.open(M.apps_path(dir))
         if f then f:close() end
         if not f and err:match("Permission denied") then
            problem = ("%s: not yours to read (a run lets a group read it with --group)"):format(dir)
         elseif f then
            local r = C.snabb_rundir_owned_by(dir, pid)
            if r == 1 then return dir end
            if r == 0 then
               problem = ("%s is left from process %d, which has ended%s"):format(dir, pid,
                  owner(pid) and (" (PID %d is now another process)"):format(pid) or "")
            elseif r == -1 then
               problem = ("%s belongs to another process than %d"):format(dir, pid)
            else
               problem = ffi.string(C.snabb_error())
            end
         end
      end
   end
   error(problem or ("no run directory for process %d (is it a snabb run, bench or basic1 "
                     .. "with observation on?)"):format(pid), 0)
end

-- What run directory dir holds, for a reader: {apps = apps.json decoded, auditlog = the
-- auditlog's path or nil, zone = function (name) -> the path of the vmprofile zone of app name (or
-- "engine"), or nil, addresses = the address table's path or nil}; nil and a message where
-- apps.json cannot be read.
function M.read (dir)
   local path = M.apps_path(dir)
   local f, err = io.open(path)
   if not f then return nil, err end
   local doc, _, decode_err = json.decode(f:read("*a"))
   f:close()
   if not doc then return nil, ("%s: %s"):format(path, decode_err) end
   local auditlog = doc.auditlog and dir .. "/" .. doc.auditlog
   local addresses = M.addresses_path(dir)
   return {apps = doc, auditlog = auditlog and exists(auditlog) and auditlog or nil,
           addresses = exists(addresses) and addresses or nil,
           zone = function (name)
              local zone = M.zone_path(dir, name)
              return exists(zone) and zone or nil
           end}
end

-- The base directories to look in for user uid's runs (and root's, which another user may read
-- with --group), those that exist.
local function existing_bases ()
   local bases, seen = {}, {}
   for _, uid in ipairs({C.geteuid(), 0}) do
      for _, base in ipairs(M.base_dirs(uid)) do
         if not seen[base] and exists(base) then seen[base] = true bases[#bases+1] = base end
      end
   end
   return bases
end

-- The live runs this user can see, sorted by PID: {pid, dir} for each run directory in a base
-- directory (named PID or PID-N) whose lock its process holds, and for each process started with
-- --rundir DIR that holds DIR's lock.
function M.instances ()
   local found, seen = {}, {}
   local function add (pid, dir)
      if not seen[dir] and C.snabb_rundir_owned_by(dir, pid) == 1 then
         seen[dir] = true
         found[#found+1] = {pid = pid, dir = dir}
      end
   end
   local stats = require("core.stats")
   for _, base in ipairs(existing_bases()) do
      for _, name in ipairs(stats.children(base)) do
         local pid = tonumber(name:match("^(%d+)$") or name:match("^(%d+)%-%d+$"))
         if pid then add(pid, base .. "/" .. name) end
      end
   end
   for _, name in ipairs(stats.children("/proc")) do
      local pid = tonumber(name:match("^%d+$"))
      local dir = pid and cmdline_rundir(pid)
      if dir then add(pid, dir) end
   end
   table.sort(found, function (a, b) return a.pid < b.pid or a.pid == b.pid and a.dir < b.dir end)
   return found
end

-- Removes the run directories of processes that have died from the base directories (as a run
-- does when it starts: rundir.h); returns how many.
function M.sweep ()
   local removed = 0
   for _, base in ipairs(existing_bases()) do
      local fd = C.snabb_rundir_open(base, tonumber("711", 8), -1, 0)
      if fd >= 0 then
         removed = removed + C.snabb_rundir_sweep(fd)
         C.close(fd)
      end
   end
   return removed
end

-- The run directory named by a PID or a path.
function M.find (target)
   if tonumber(target) and not exists(M.apps_path(target)) and not exists(target) then
      return find_pid_dir(tonumber(target))
   end
   if not exists(M.apps_path(target)) then
      error(("%s: not a run directory (no %s) nor a vmprofile file (snabb -p FILE)")
               :format(target, M.APPS), 0)
   end
   return target
end

return M

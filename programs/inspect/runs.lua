-- programs.inspect.runs: what `snabb inspect` was given, as runs: a run directory (snabb run|bench
-- --rundir DIR, kept or copied elsewhere), a running snabb's PID, or the files that `snabb -a FILE
-- -p FILE` writes (an auditlog and one vmprofile file, no run directory), recognised by their
-- magic (observe/AUDITLOG.md: SNABBAUD; observe/vmprofile.h: SNABBVMP) or named by --auditlog and
-- --vmprofile. One run is inspected; two are compared (programs.inspect.compare).
--
--   local specs = runs.resolve(targets, {auditlog =, vmprofile =})  -- errors in the user's words
--   runs.profile(run)   -- a file run's profile as programs.profile.profile.load gives a directory's
--   runs.apps(run, p)   -- a file run's GET /inspect/api/apps: no apps, its one zone
-- Files next to each other on the command line go together: an auditlog and a vmprofile make one
-- run until a second of the same kind (or a directory, or a PID) starts the next.
local rundir = require("observe.rundir")
local vmprofile = require("observe.vmprofile")
local profile = require("programs.profile.profile")

local M = {}

M.MAGIC = {SNABBAUD = "auditlog", SNABBVMP = "vmprofile"}
M.WORDS = {auditlog = "a JIT auditlog (snabb -a FILE)", vmprofile = "a vmprofile (snabb -p FILE)"}

-- The first 8 bytes of a file (nil: no such file or a directory).
local function magic (path)
   local f = io.open(path, "rb")
   if not f then return nil end
   local m = f:read(8)
   f:close()
   return m
end

-- A file named by --auditlog or --vmprofile: it must be one.
local function check_file (kind, path)
   local m = magic(path)
   if m == nil then
      local f, err = io.open(path, "rb")
      if f then f:close() err = "a directory" end
      error(("--%s %s: %s, not %s"):format(kind, path, err, M.WORDS[kind]), 0)
   end
   if M.MAGIC[m] ~= kind then
      error(("--%s %s: not %s (%s)"):format(kind, path, M.WORDS[kind],
         M.MAGIC[m] and "it is " .. M.WORDS[M.MAGIC[m]] or "no " .. (kind == "auditlog"
            and "SNABBAUD" or "SNABBVMP") .. " header"), 0)
   end
   return path
end

-- The runs named by the command line's targets and options: {{dir =, target =} | {files =
-- {auditlog =, vmprofile =}, target =}...}, one or two; else an error, one line.
function M.resolve (targets, opts)
   local specs, gathering = {}, nil
   opts = opts or {}
   if opts.auditlog or opts.vmprofile then
      local files = {auditlog = opts.auditlog and check_file("auditlog", opts.auditlog),
                     vmprofile = opts.vmprofile and check_file("vmprofile", opts.vmprofile)}
      specs[1] = {files = files}
   end
   for _, target in ipairs(targets) do
      local kind = M.MAGIC[magic(target) or ""]
      if kind then
         if not gathering or gathering.files[kind] then
            gathering = {files = {}}
            specs[#specs+1] = gathering
         end
         gathering.files[kind] = target
      else
         gathering = nil
         local ok, dir = pcall(rundir.find, target)
         if not ok then
            -- (rundir.find words it for snabb profile; files are recognised here.)
            error((tostring(dir):gsub(" nor a vmprofile file %(snabb %-p FILE%)",
               ", an auditlog (snabb -a FILE) nor a vmprofile (snabb -p FILE)")), 0)
         end
         specs[#specs+1] = {dir = dir, target = target}
      end
   end
   for _, s in ipairs(specs) do
      if s.files then
         local names = {}
         for _, k in ipairs({"auditlog", "vmprofile"}) do names[#names+1] = s.files[k] end
         s.target = table.concat(names, " + ")
      end
   end
   if #specs == 0 then
      error("no run given: a run directory, a PID, or the files of snabb -a FILE -p FILE", 0)
   elseif #specs > 2 then
      local names = {}
      for i, s in ipairs(specs) do names[i] = s.target end
      error(("%d runs given (%s): snabb inspect shows one run or compares two"):format(#specs,
         table.concat(names, "; ")), 0)
   end
   return specs
end

-- What a file run is called on the page.
function M.label (spec)
   return spec.dir or spec.target
end

-- A file run's profile, shaped as profile.load's of a run directory: no apps, its one zone (read
-- again each time: a program still running writes it).
function M.profile (run)
   local zones, samples, zone = {}, 0, nil
   if run.files.vmprofile then
      zone = vmprofile.read(run.files.vmprofile)
      zones[zone.zone] = zone
      samples = zone.samples
   end
   return {dir = run.dir, doc = {apps = {}}, log = run.log, traces = run.by_number, zones = zones,
           samples = samples, zone = zone}
end

-- A file run's profile page: its one zone (the whole program) with its states, its traces by
-- samples, its aborts (snabb profile FILE --auditlog LOG's report).
function M.apps (run, p)
   local z = p.zone
   local r = z and profile.file_report(run.files.vmprofile, run.files.auditlog, run.log)
   local zone
   if z then
      local traces = {}
      for i, t in ipairs(r.traces) do
         local row = z.traces[t.trace] or {}
         traces[i] = {trace = t.trace, samples = (row.loop or 0) + (row.head or 0), share = t.share,
                      span = t.span, parent = t.parent, linktype = t.linktype}
      end
      zone = {name = z.zone, samples = z.samples, hz = z.hz, states = z.total, traces = traces,
              aborts = r.aborts, warning = r.warning}
   end
   return {dir = run.dir, files = run.files, program = "snabb -a/-p", samples = p.samples,
           hz = z and z.hz, in_apps = 0, states = vmprofile.states, apps = {}, zone = zone,
           traces = run.log and #run.log.traces, aborts = run.log and #run.log.aborts}
end

function M.selftest ()
   print("selftest: programs.inspect.runs")
   local dir = os.tmpname()
   os.remove(dir)
   os.execute("mkdir " .. dir)
   local function write (name, text)
      local f = assert(io.open(dir .. "/" .. name, "wb"))
      f:write(text)
      f:close()
      return dir .. "/" .. name
   end
   local a1, p1 = write("a1", "SNABBAUD...."), write("p1", "SNABBVMP....")
   local a2, p2 = write("a2", "SNABBAUD...."), write("p2", "SNABBVMP....")
   local junk = write("junk", "hello")
   local function fails (pattern, targets, opts)
      local ok, err = pcall(M.resolve, targets, opts)
      assert(not ok and err:find(pattern, 1, true), tostring(err))
   end
   local s = M.resolve({a1, p1})
   assert(#s == 1 and s[1].files.auditlog == a1 and s[1].files.vmprofile == p1)
   s = M.resolve({a1, p1, p2, a2})
   assert(#s == 2 and s[2].files.vmprofile == p2 and s[2].files.auditlog == a2)
   s = M.resolve({p1, p2})
   assert(#s == 2 and not s[1].files.auditlog and s[2].files.vmprofile == p2)
   s = M.resolve({}, {auditlog = a1, vmprofile = p1})
   assert(#s == 1 and s[1].target == a1 .. " + " .. p1)
   fails("3 runs given", {p1, p2}, {auditlog = a1})
   fails("--auditlog " .. p1 .. ": not a JIT auditlog (snabb -a FILE) (it is a vmprofile",
         {}, {auditlog = p1})
   fails("--vmprofile " .. junk .. ": not a vmprofile (snabb -p FILE) (no SNABBVMP header)",
         {}, {vmprofile = junk})
   fails("--vmprofile " .. dir .. "/none: ", {}, {vmprofile = dir .. "/none"})
   fails(junk .. ": not a run directory (no apps.json), an auditlog", {junk})
   fails("no run given", {})
   os.execute("rm -r " .. dir)
   print("selftest: ok")
end

return M

-- programs.main: the snabb command line. `snabb COMMAND ARGS...` runs the command of that name,
-- found by its folder (programs/COMMAND/COMMAND.lua: a new command is a new folder, nothing else);
-- `snabb FILE.lua ARGS...` runs a script with the whole API.
local M = {}

M.version = "0.1.0"

-- The index-th module compiled into snabb (0-based, in name order) as its name, or nil after the
-- last (vm/embedded_modules.h); with `with_bytecode`, its bytecode (a string) too.
local ffi = require("ffi")
ffi.cdef("const char* snabb_embedded_module(int index, const unsigned char** bytecode, size_t* size);")
local bytecode, size = ffi.new("const unsigned char*[1]"), ffi.new("size_t[1]")
function M.embedded_module (index, with_bytecode)
   local name = ffi.C.snabb_embedded_module(index, bytecode, size)
   if name == nil then return nil end
   return ffi.string(name), with_bytecode and ffi.string(bytecode[0], size[0]) or nil
end

-- The commands, by name: every folder programs/NAME/ with its module NAME.lua (programs/BUILD
-- embeds them all) is `snabb NAME`, a dash in the command for an underscore in the folder
-- (gen-pcap: programs/gen_pcap/gen_pcap.lua). The module exports run(args), summary (for `snabb
-- help`) and engine = true when it runs an app graph.
function M.commands ()
   local commands, i = {}, 0
   while true do
      local name = M.embedded_module(i)
      if not name then break end
      local folder = name:match("^programs%.([%w_]+)%.([%w_]+)$")
      if folder and name == ("programs.%s.%s"):format(folder, folder) then
         commands[#commands+1] = {name = folder:gsub("_", "-"), module = name}
      end
      i = i + 1
   end
   return commands
end

local builtins = {{name = "version", summary = "print the version"}, {name = "help", summary = "print this help"}}

local function usage (out)
   out:write("Usage: snabb COMMAND [ARGS...]\n" ..
             "       snabb FILE.lua [ARGS...]   run a Lua script with the snabb API\n" ..
             "       snabb -a FILE ...          the same, logging JIT events to FILE (snabb auditlog reads it)\n" ..
             "       snabb -p FILE ...          the same, sampling where time goes into FILE (a vmprofile;\n" ..
             "                                  FILE.addresses: the samples in traces by address)\n" ..
             "       snabb -jdump[=OPTS] ...    the same with LuaJIT's -j and -O options, as luajit takes them\n" ..
             "                                  (-jdump, -jv, -jbc, -jon, -joff, -jflush, -O3, -Ohotloop=N)\n" ..
             "       snabb --debug ...          the same in debug mode (also SNABB_DEBUG=1): packet.free\n" ..
             "                                  refuses packets freed twice; errors show Lua tracebacks\n\nCommands:\n")
   local rows = {}
   for _, c in ipairs(M.commands()) do rows[#rows+1] = {"  " .. c.name, require(c.module).summary or ""} end
   for _, c in ipairs(builtins) do rows[#rows+1] = {"  " .. c.name, c.summary} end
   out:write(require("core.lib").table_text(rows[1], {unpack(rows, 2)}))
end

-- Snabb's globals, so configs and scripts written for Snabb run as they are.
function M.set_globals ()
   _G.config = require("core.config")
   _G.engine = require("core.engine")
   _G.link = require("core.link")
   _G.packet = require("core.packet")
   _G.lib = require("core.lib")
   _G.lib.randomseed(_G.lib.getenv("SNABB_RANDOM_SEED")) -- as Snabb: deterministic when set
   _G.counter = require("core.counter")
   require("lib.lua.class") -- the subClass global of Snabb's classes (lib.protocol.*)
   -- Snabb declares core/clib.h's and lib.h's C functions at start-up; its code calls them bare.
   require("core.clib_h")
   require("core.lib_h")
   _G.timer = require("core.timer")
   _G.memory = require("core.memory")
   _G.main = require("core.main")
   _G.timeline = require("core.timeline")
   -- core.shm's objects go in the run directory, made on first use when nothing else made one.
   require("core.shm").run_directory = require("observe.rundir").instance
   package.preload["core.app"] = function () return require("core.engine") end
   -- The global `core`: Snabb's modules are module(...)s, so after require("core.app") Snabb code
   -- finds it as core.app (lib.timers.ingress_drop_monitor: `core.app.now`); ours return tables.
   _G.core = setmetatable({}, {__index = function (core, name)
      local ok, module = pcall(require, "core." .. name)
      if ok then rawset(core, name, module) return module end
      if not tostring(module):find("module 'core." .. name .. "' not found", 1, true) then
         error(module, 2)
      end
   end})
   require("observe.auditlog").install() -- jit.auditlog(path), as RaptorJIT has it
   -- and jit.vmprofile (open, start, stop, select), as RaptorJIT has it (Snabb's lib.scheduling)
   jit.vmprofile = require("observe.vmprofile") -- luacheck: ignore 122
   -- ljsyscall's C declarations, as Snabb's process always has them (its core loads it), since
   -- Snabb code uses them undeclared (pflua's struct bpf_insn). 17 ms and 1.1 MB at start;
   -- interpreted, so that its loops take no trace numbers or hot counters from the program's.
   jit.off()
   require("syscall")
   jit.on()
end

local function run_script (path, args)
   local chunk, err = loadfile(path)
   if not chunk then error(err, 0) end
   _G.arg = {[0] = path, unpack(args)}
   local function handler (e) -- (not a tail call: traceback level 2 is then the erring function)
      local message = debug.traceback(require("core.lib").error_message(e, 3), 2)
      return message
   end
   require("core.main").parameters = args
   local ok, result = xpcall(chunk, handler, unpack(args))
   if not ok then error(result, 0) end
   return tonumber(result) or 0
end

local function usage_error (message)
   io.stderr:write("snabb: ", message, "\n")
   return 2
end

-- -jCMD[=ARG,...] as luajit takes it: -jon, -joff, -jflush, or a jit.* module's start(ARG, ...)
-- (-jdump=+rs,out.txt, -jv, -jbc). Returns a message when CMD is not one.
function M.jit_command (command)
   local cmd, opt = command:match("^([^=]*)=?(.*)$")
   local values = {}
   for value in opt:gmatch("[^,]+") do values[#values+1] = value end
   if cmd == "on" or cmd == "off" or cmd == "flush" then jit[cmd]() return end
   local ok, module = false, nil
   if cmd:match("^[%w_]+$") then ok, module = pcall(require, "jit." .. cmd) end
   if not ok or type(module) ~= "table" or not module.start then
      return ("-j%s: no such LuaJIT command (-jdump[=OPTS[,FILE]], -jv[=FILE], -jbc[=FILE], -jon, "
              .. "-joff, -jflush)"):format(command)
   end
   module.start(unpack(values))
end

-- -O[LEVEL|FLAGS] as luajit takes it: jit.opt.start with the comma-separated values.
function M.jit_optimise (flags)
   local values = {}
   for value in flags:gmatch("[^,]+") do values[#values+1] = value end
   local ok, err = pcall(jit.opt.start, unpack(values))
   if not ok then return ("-O%s: %s"):format(flags, tostring(err):gsub("^.-:%d+: ", "")) end
end

-- Returns the process's exit status. Errors are printed as one message, without a Lua traceback
-- unless in debug mode, --debug or SNABB_DEBUG set (script errors keep theirs: they point into the
-- user's code). A run stopped by a signal other than SIGINT or SIGTERM exits with 128 + its number.
function M.main (...)
   local args = {...}
   local safety = require("vm.safety")
   safety.install()
   local name = table.remove(args, 1)
   local options = name ~= nil and name:match("^%-") -- (as "snabb --debug", "snabb -a FILE")
   local debug_mode = os.getenv("SNABB_DEBUG") ~= nil and os.getenv("SNABB_DEBUG") ~= ""
   if name == "--debug" then debug_mode, name = true, table.remove(args, 1) end
   -- Before any module takes packet.free into a local.
   if debug_mode then require("core.packet").set_debug(true) end
   M.set_globals()
   -- A core.worker process: runs the code it was given, as a script.
   local luacode = os.getenv("SNABB_PROGRAM_LUACODE")
   if luacode then
      name, args = nil, {}
      ffi.cdef("int unsetenv(const char *name);")
      ffi.C.unsetenv("SNABB_PROGRAM_LUACODE") -- (not for the worker's own children)
   end
   local ok, status = xpcall(function ()
      if luacode then -- (as in Snabb: core.worker starts its workers so)
         local chunk, err = loadstring(luacode, "=SNABB_PROGRAM_LUACODE")
         if not chunk then error(("SNABB_PROGRAM_LUACODE: %s"):format(err), 0) end
         chunk()
         return 0
      end
      -- snabb -a FILE / -p FILE ...: a JIT auditlog (observe/AUDITLOG.md) or a vmprofile
      -- (observe/vmprofile.h; and FILE.addresses, its address table) of whatever the rest runs.
      -- -jCMD / -OFLAGS: LuaJIT's own options (luajit -jdump, -jv, -O3), for what the rest runs.
      while name and (name:match("^%-[apjO]") or name == "--auditlog" or name == "--vmprofile") do
         local option = name
         if name == "-a" or name == "--auditlog" or name == "-p" or name == "--vmprofile" then
            local file = table.remove(args, 1)
            if not file then
               return usage_error(("%s needs a FILE (snabb %s FILE COMMAND ...)"):format(name, name))
            end
            require(name:match("^%-%-?a") and "observe.auditlog" or "observe.vmprofile").open(file)
         elseif name:match("^%-j") or name:match("^%-O") then
            local value = name:sub(3)
            if value == "" then value = table.remove(args, 1) or "" end
            local problem = (name:match("^%-j") and M.jit_command or M.jit_optimise)(value)
            if problem then return usage_error(problem) end
         else
            return usage_error(("unknown option '%s' (snabb help for usage)"):format(option))
         end
         name = table.remove(args, 1)
      end
      if name == nil and options then
         return usage_error("missing COMMAND or FILE.lua after the options (snabb help for usage)")
      elseif name == nil or name == "help" or name == "--help" or name == "-h" then
         usage(name and io.stdout or io.stderr)
         return name and 0 or 2
      elseif name == "version" or name == "--version" then
         print(("snabb %s (%s)"):format(M.version, jit.version))
         return 0
      elseif name:match("%.lua$") then
         return run_script(name, args)
      end
      local names = {}
      for _, c in ipairs(M.commands()) do
         if c.name == name then
            local command = require(c.module)
            if command.engine then require("snabb.runtime").catch_signals() end
            return command.run(args) or 0
         end
         names[#names+1] = c.name
      end
      if name:match("^%-") then return usage_error(("unknown option '%s' (snabb help for usage)"):format(name)) end
      for _, c in ipairs(builtins) do names[#names+1] = c.name end
      return usage_error(("unknown command '%s' (the commands: %s)"):format(name, table.concat(names, ", ")))
   end, function (err)
      return debug_mode and debug.traceback(err, 2) or err
   end)
   -- A graph still configured (a script that never stopped it, a run that failed) is stopped, so
   -- its apps close their files and its links are freed (LeakSanitizer reported them).
   pcall(require("core.engine").stop)
   local cli = require("programs.cli")
   if not ok and cli.failure(status) then -- a usage error found after parsing (cli.fail)
      cli.usage_error("snabb " .. name, cli.failure(status))
      return 2
   elseif not ok then
      io.stderr:write(("snabb: %s\n"):format(tostring(status)))
      return 1
   end
   io.stdout:flush()
   local signo, signame, signal_status = require("snabb.runtime").stop_signal()
   if signo > 0 and signal_status ~= 0 then
      io.stderr:write(("snabb: stopped cleanly on %s\n"):format(signame))
      if status == 0 then status = signal_status end
   end
   return status
end

return M

-- core.main: what Snabb's main module gives a program: main.parameters (the arguments of the
-- script or command running: `snabb FILE.lua A B` gives {"A", "B"}; set by programs/main.lua) and
-- main.exit(status), which stops the engine's apps (so writers close their files), commits the
-- counters and flushes output before the process exits. The global `main` is this module.
local M = {}

M.parameters = {}

function M.exit (status)
   pcall(require("core.engine").stop)
   if package.loaded["core.counter"] then package.loaded["core.counter"].commit() end
   io.stdout:flush()
   os.exit(status)
end

function M.selftest ()
   print("selftest: core.main")
   assert(type(M.parameters) == "table")
   -- exit in a child process: its status and its flushed output.
   local out = os.tmpname()
   local script = os.tmpname() .. ".lua"
   local f = assert(io.open(script, "w"))
   f:write('io.write("before exit ", table.concat(main.parameters, ",")) main.exit(7)\n')
   f:close()
   local ffi = require("ffi")
   require("core.clib_h")
   local buf = ffi.new("char[4096]")
   local n = ffi.C.readlink("/proc/self/exe", buf, 4096)
   assert(n > 0)
   local exe = ffi.string(buf, n)
   -- Lua 5.2's results (our LuaJIT is built with LUA52COMPAT, as Snabb's): ok, "exit", status.
   local _, how, status = os.execute(("%s %s a b > %s 2>&1"):format(exe, script, out))
   local text = assert(io.open(out)):read("*a")
   os.remove(out) os.remove(script)
   assert(how == "exit" and status == 7, ("exit status %s, output %q"):format(status, text))
   assert(text == "before exit a,b", text)
   print("selftest: core.main ok")
end

return M

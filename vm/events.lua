-- vm.events: JIT events for several listeners. LuaJIT keeps one handler per event (jit.attach(f,
-- "trace") replaces the previous one), so the auditlog and vmprofile subscribe here, and jit.attach
-- itself is replaced by one that subscribes (jit.dump, jit.v or a script's handler no longer
-- silences the auditlog, nor it them).
local M = {}

local attach = jit.attach

-- Lua code that runs inside a JIT event handler must not be compiled code: a trace exit there
-- would clobber the JIT's own state (LuaJIT crashes). So the JIT is off for this module.
jit.off(debug.getinfo(1, "f").func, true)

-- [event] = {functions}; replaced, never changed in place, so a dispatch in progress (during
-- which a listener may unsubscribe) goes on with the list it started with.
local listeners = {}
local dispatchers = {} -- [event] = the function attached for it

local function dispatcher (event)
   return function (...)
      for _, f in ipairs(listeners[event]) do f(...) end
   end
end

-- Calls f(...) with each `event` ("trace", "record", "texit", "bc") jit.attach would deliver.
function M.subscribe (event, f)
   local list = {}
   for _, g in ipairs(listeners[event] or {}) do
      if g == f then return end
      list[#list+1] = g
   end
   list[#list+1] = f
   listeners[event] = list
   if not dispatchers[event] then
      dispatchers[event] = dispatcher(event)
      attach(dispatchers[event], event)
   end
end

function M.unsubscribe (event, f)
   local list = {}
   for _, g in ipairs(listeners[event] or {}) do
      if g ~= f then list[#list+1] = g end
   end
   listeners[event] = list
   if #list == 0 and dispatchers[event] then
      attach(dispatchers[event]) -- detaches it
      dispatchers[event] = nil
   end
end

-- jit.attach(f, event) subscribes f; jit.attach(f) unsubscribes it from every event, as LuaJIT's
-- detaches it.
jit.attach = function (f, event) -- luacheck: ignore 122 (jit.attach is LuaJIT's to replace)
   if event then return M.subscribe(event, f) end
   for e in pairs(listeners) do M.unsubscribe(e, f) end
end

return M

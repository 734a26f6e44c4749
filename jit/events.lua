-- jit.events: JIT events for several listeners. LuaJIT keeps one handler per event (jit.attach(f,
-- "trace") replaces the previous one), so the auditlog and vmprofile subscribe here instead.
local M = {}

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
      jit.attach(dispatchers[event], event)
   end
end

function M.unsubscribe (event, f)
   local list = {}
   for _, g in ipairs(listeners[event] or {}) do
      if g ~= f then list[#list+1] = g end
   end
   listeners[event] = list
   if #list == 0 and dispatchers[event] then
      jit.attach(dispatchers[event]) -- detaches it
      dispatchers[event] = nil
   end
end

return M

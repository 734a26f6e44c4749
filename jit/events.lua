-- jit.events: JIT events for several listeners. LuaJIT keeps one handler per event (jit.attach(f,
-- "trace") replaces the previous one), so the auditlog and vmprofile subscribe here instead.
local M = {}

local listeners = {} -- [event] = {functions}
local dispatchers = {} -- [event] = the function attached for it

local function dispatcher (event)
   return function (...)
      for _, f in ipairs(listeners[event]) do f(...) end
   end
end

-- Calls f(...) with each `event` ("trace", "record", "texit", "bc") jit.attach would deliver.
function M.subscribe (event, f)
   local list = listeners[event] or {}
   listeners[event] = list
   for _, g in ipairs(list) do if g == f then return end end
   list[#list+1] = f
   if not dispatchers[event] then
      dispatchers[event] = dispatcher(event)
      jit.attach(dispatchers[event], event)
   end
end

function M.unsubscribe (event, f)
   local list = listeners[event] or {}
   for i = #list, 1, -1 do
      if list[i] == f then table.remove(list, i) end
   end
   if #list == 0 and dispatchers[event] then
      jit.attach(dispatchers[event]) -- detaches it
      dispatchers[event] = nil
   end
end

return M

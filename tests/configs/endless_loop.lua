-- An app stuck in one call, for the watchdog and second-signal tests (tests/safety_test.sh):
-- snabb run endless_loop.lua compiled|interpreted [MARKER]. Its pull creates MARKER (when given),
-- then never returns; the loop is compiled unless the argument keeps it interpreted.
local mode, marker = ...
local Spin = {}
function Spin:new () return setmetatable({}, {__index = Spin}) end
function Spin:pull ()
   if marker then io.open(marker, "w"):close() end
   local n = 0
   while true do n = n + 1 end -- line 10: where the watchdog must say it is
end
if mode == "interpreted" then jit.off(Spin.pull) end
local c = config.new()
config.app(c, "spin", Spin)
return c

-- A Snabb-style selftest whose app raises an error (tests/snabb_api_test.sh): as in Snabb, the
-- error ends the run and the selftest fails; snabb run would restart the app instead.
-- luacheck: allow defined top, ignore 131 (Snabb-style module: its functions are globals)
module(..., package.seeall)

Broken = {}
function Broken:new () return setmetatable({pulls = 0}, {__index = Broken}) end
function Broken:pull ()
   self.pulls = self.pulls + 1
   if self.pulls == 3 then error("deliberate failure") end
end

function selftest ()
   local c = config.new()
   config.app(c, "broken", Broken)
   engine.configure(c)
   engine.main({duration = 1, no_report = true})
   print("not reached")
end

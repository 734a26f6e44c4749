-- An app that never reads its input: the link into it fills and stays full, so a paced source can
-- send no more than the link holds (tests/rate_test.sh: the warning that the rate was not achieved).
local Stuck = {inputs = {"input"}, outputs = {"output"}}
function Stuck:new () return setmetatable({}, {__index = Stuck}) end
function Stuck:push () end
local c = config.new()
config.app(c, "stuck", Stuck)
return c

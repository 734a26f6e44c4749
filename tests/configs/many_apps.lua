-- A graph of many apps, for the engine's limits (tests/run_test.sh, runtime/README.md):
-- `chain N`: source -> j1 -> ... -> j(N-2) -> sink (Joins); `fanout N`: source -> split -> N-2 sinks.
-- Arguments: SHAPE (chain or fanout, default chain), N (total apps, default 10,000), PREFIX (of
-- the app names, default "a"; a new prefix makes every name new).
local basic = require("apps.basic.basic_apps")
local shape, n, prefix = ...
shape, n, prefix = shape or "chain", tonumber(n) or 10000, prefix or "a"
assert(shape == "chain" or shape == "fanout", "shape: chain or fanout")
assert(n >= 3, "at least 3 apps")
local c = config.new()
config.app(c, "source", basic.Source)
if shape == "chain" then
   local previous = "source"
   for i = 1, n - 2 do
      local name = ("%s%d"):format(prefix, i)
      config.app(c, name, basic.Join)
      config.link(c, previous .. ".output -> " .. name .. ".input")
      previous = name
   end
   config.app(c, "sink", basic.Sink)
   config.link(c, previous .. ".output -> sink.input")
else
   config.app(c, "split", basic.Split)
   config.link(c, "source.output -> split.input")
   for i = 1, n - 2 do
      local name = ("%s%d"):format(prefix, i)
      config.app(c, name, basic.Sink)
      config.link(c, ("split.o%d -> %s.input"):format(i, name))
   end
end
return c

-- A forwarding app that prints on every push, with print and with io.write: with
-- snabb bench --json -, stdout must still hold the JSON document alone.
local Chatty = {inputs = {"input"}, outputs = {"output"}}

function Chatty:new ()
   return setmetatable({pushes = 0}, {__index = Chatty})
end

function Chatty:push ()
   local i, o = self.input.input, self.output.output
   self.pushes = self.pushes + 1
   print(("chatty: push %d, %d packets"):format(self.pushes, link.nreadable(i)))
   io.write("chatty: {not json\n")
   for _ = 1, link.nreadable(i) do link.transmit(o, link.receive(i)) end
end

print("chatty: config loaded")
local c = config.new()
config.app(c, "chatty", Chatty)
return c

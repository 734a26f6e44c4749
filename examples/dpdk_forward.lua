-- Two DPDK ports forwarding to each other through Lua apps, as `dpdk-testpmd --forward-mode=io`
-- does: what p0 receives goes out of p1 and the other way round. By default two net_null virtual
-- devices (endless 64-byte packets in, packets out discarded):
--   snabb run examples/dpdk_forward.lua --duration 5 --report
--   snabb run examples/dpdk_forward.lua PORT0 PORT1     (e.g. PCI addresses; EAL set up by default)
local dpdk = require("drivers.dpdk.dpdk")
local port0, port1 = ...

local Forward = {inputs = {"input"}, outputs = {"output"}}
function Forward:new () return setmetatable({}, {__index = Forward}) end
function Forward:push ()
   local i, o = self.input.input, self.output.output
   for _ = 1, link.nreadable(i) do link.transmit(o, link.receive(i)) end
end

local c = config.new()
config.app(c, "p0", dpdk.DpdkPort, {port = port0 or "net_null0"})
config.app(c, "p1", dpdk.DpdkPort, {port = port1 or "net_null1"})
config.app(c, "fwd01", Forward)
config.app(c, "fwd10", Forward)
config.link(c, "p0.output -> fwd01.input")
config.link(c, "fwd01.output -> p1.input")
config.link(c, "p1.output -> fwd10.input")
config.link(c, "fwd10.output -> p0.input")
return c

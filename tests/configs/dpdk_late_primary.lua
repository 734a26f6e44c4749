-- A DPDK primary that starts its port late (tests/dpdk_workers_test.sh):
--   DPDK_WORKER_EAL="EAL options" snabb tests/configs/dpdk_late_primary.lua PORT DIR
-- dpdk.init{processes = 2}, then DIR/ready is written; the port (2 queues each way, queue 0 ->
-- Sink) is set up once DIR/go exists, and the script ends once DIR/stop exists.
local dpdk = require("drivers.dpdk.dpdk")
local port, dir = ...
local function exists (name) local f = io.open(dir .. "/" .. name) if f then f:close() end return f ~= nil end
dpdk.init{args = assert(os.getenv("DPDK_WORKER_EAL")), mbufs = 2048, processes = 2}
dpdk.start() -- the EAL now (with processes > 1, the first DpdkPort would start it)
assert(io.open(dir .. "/ready", "w")):close()
engine.main({done = function () return exists("go") end})
local c = config.new()
config.app(c, "nic", dpdk.DpdkPort, {port = port, queue = 0, rxqs = 2, txqs = 2, ring_size = 256})
config.app(c, "sink", require("apps.basic.basic_apps").Sink)
config.link(c, "nic.output -> sink.input")
engine.configure(c)
engine.main({done = function () return exists("stop") end})
engine.configure(config.new())

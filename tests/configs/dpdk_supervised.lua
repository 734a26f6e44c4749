-- Two workers sharing one DPDK port under the supervisor, a queue pair each
-- (tests/dpdk_supervised_test.sh):
--   [DPDK_SUPERVISED_EAL="EAL options"] snabb run dpdk_supervised.lua PORT MBUFS --cpu 0,1 \
--     [--eal="--proc-type=auto --file-prefix NAME ..."]
-- dpdk.init{processes = 2} with the EAL options of DPDK_SUPERVISED_EAL, or --eal's, which replace
-- them, in each worker (the supervisor, which runs no graph, starts no EAL). Worker wQ: DpdkPort
-- queue Q of 2 (RSS) -> Sink, so that its summary's "in" is what its queue received.
local dpdk = require("drivers.dpdk.dpdk")
local port, mbufs = ...
dpdk.init{args = os.getenv("DPDK_SUPERVISED_EAL"), mbufs = tonumber(mbufs), processes = 2}
local function worker (q)
   local c = config.new()
   config.app(c, "nic", dpdk.DpdkPort, {port = port, queue = q, rxqs = 2, txqs = 2, ring_size = 256})
   config.app(c, "sink", require("apps.basic.basic_apps").Sink)
   config.link(c, "nic.output -> sink.input")
   return c
end
return {workers = {w0 = worker(0), w1 = worker(1)}}

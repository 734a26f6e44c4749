-- One worker of a DPDK port shared by processes (tests/dpdk_workers_test.sh):
--   DPDK_WORKER_EAL="EAL options" snabb run dpdk_worker.lua PORT QUEUE QUEUES OUT.pcap
-- dpdk.init{processes = QUEUES} with those EAL options (--proc-type=auto: the first worker is DPDK's
-- primary and sets the port up, the others attach as secondaries); DpdkPort queue QUEUE of QUEUES
-- (RSS) -> Tee -> PcapWriter, and back out of the same queue (its own send queue).
local dpdk = require("drivers.dpdk.dpdk")
local pcap = require("apps.pcap.pcap")
local port, queue, queues, output = ...
local args = assert(os.getenv("DPDK_WORKER_EAL"), "DPDK_WORKER_EAL: the EAL options")
queues = tonumber(queues)
dpdk.init{args = args, mbufs = 2048, processes = queues}
local c = config.new()
config.app(c, "nic", dpdk.DpdkPort, {port = port, queue = tonumber(queue), rxqs = queues,
                                     txqs = queues, ring_size = 256, rss = true})
config.app(c, "tee", require("apps.basic.basic_apps").Tee)
config.app(c, "writer", pcap.PcapWriter, output)
config.link(c, "nic.output -> tee.input")
config.link(c, "tee.capture -> writer.input")
config.link(c, "tee.back -> nic.input")
return c

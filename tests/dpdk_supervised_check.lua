-- tests/dpdk_supervised_test.sh's reader of a supervisor's run directory DIR (snabb
-- dpdk_supervised_check.lua DIR): per worker wQ, one line "wQ PID received rx_qQ_packets
-- rx_good_packets": what its DpdkPort received (its app's packets out) and DPDK's counters of
-- the port, as its counter files have them (copied once a second).
local stats = require("core.stats")
local dir = ...
for q = 0, 1 do
   local w = "w" .. q
   local s = stats.read(dir .. "/workers/" .. w, true)
   local nic
   for _, a in ipairs(s and s.apps or {}) do
      if a.name == "nic" then nic = a end
   end
   if nic then
      print(w, s.pid, nic.packets_out, nic.counters["rx_q" .. q .. "_packets"] or -1,
            nic.counters.rx_good_packets or -1)
   else
      print(w, 0, -1, -1, -1)
   end
end

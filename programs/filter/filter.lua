-- snabb filter EXPR IN.pcap [OUT.pcap] [--bpf] [--source]: the packets of a capture that a
-- pcap-filter(7) expression matches, compiled by lib.pf (--bpf: libpcap's BPF translated to Lua),
-- written to OUT as `tcpdump -r IN -w OUT EXPR` writes them (libpcap reads and writes the files,
-- so the bytes are the same), and counted: "N of M packets matched". --source prints the Lua the
-- expression compiles to. A bad expression is a usage error: one line with the column and what
-- was expected, exit 2.
local ffi = require("ffi")
local argparse = require("argparse")
local cli = require("programs.cli")
local pf = require("lib.pf")
local libpcap = require("lib.pf.libpcap") -- declares libpcap's functions for ffi.C
local lib = require("core.lib")
local C = ffi.C

local PCAP_ERRBUF_SIZE, PCAP_TSTAMP_PRECISION_MICRO = 256, 0
local DLT_EN10MB = libpcap.DLT_EN10MB

local M = {}

-- For `snabb help` (programs/main.lua finds the command by its folder).
M.summary = "the packets of a capture a pcap-filter expression matches: snabb filter EXPR IN.pcap [OUT.pcap]"

local function parser ()
   local p = argparse("snabb filter", "Write the packets of a capture that a pcap-filter(7) "
                         .. "expression matches (as tcpdump -r IN -w OUT EXPR) and count them.")
      :add_help("-h --help")
   p:argument("expression", "the filter, one argument (quote it): 'tcp port 80'")
   p:argument("input", "capture to read (pcap or pcapng, Ethernet; -: stdin)"):args("?")
   p:argument("output", "pcap file to write the matching packets to (-: stdout)"):args("?")
   p:flag("--bpf", "compile through libpcap's BPF, translated to Lua (lib.pf.bpf)")
   p:flag("--source", "print the Lua the expression compiles to, and stop")
   return p
end

-- Runs match over the records of input (writing the matching ones to output when given):
-- matched, total. Raises cli.fail for a file that cannot be read, a message for a failed write.
function M.filter (match, input, output)
   local errbuf = ffi.new("char[?]", PCAP_ERRBUF_SIZE)
   local h = C.pcap_open_offline_with_tstamp_precision(input, PCAP_TSTAMP_PRECISION_MICRO, errbuf)
   if h == nil then cli.fail(ffi.string(errbuf)) end
   h = ffi.gc(h, C.pcap_close)
   local dlt = C.pcap_datalink(h)
   if dlt ~= DLT_EN10MB then
      local name = C.pcap_datalink_val_to_name(dlt)
      cli.fail(("%s: link type %s is not Ethernet"):format(
         input, name ~= nil and ffi.string(name) or tostring(dlt)))
   end
   local dumper
   if output then
      dumper = C.pcap_dump_open(h, output)
      if dumper == nil then cli.fail(ffi.string(C.pcap_geterr(h))) end
      dumper = ffi.gc(dumper, C.pcap_dump_close)
   end
   local hdr = ffi.new("struct snabb_pf_pkthdr *[1]")
   local data = ffi.new("const uint8_t *[1]")
   local matched, total = 0, 0
   while true do
      local r = C.pcap_next_ex(h, hdr, data)
      if r == -2 then break end -- end of file
      if r ~= 1 then error(("%s: %s"):format(input, ffi.string(C.pcap_geterr(h))), 0) end
      local hd = hdr[0]
      total = total + 1
      if match(data[0], hd.caplen, hd.len) then
         matched = matched + 1
         if dumper then C.pcap_dump(ffi.cast("uint8_t *", dumper), hd, data[0]) end
      end
   end
   if dumper then
      if C.pcap_dump_flush(dumper) ~= 0 then
         error(("%s: write failed"):format(output), 0)
      end
      C.pcap_dump_close(ffi.gc(dumper, nil))
   end
   return matched, total
end

function M.run (args)
   local p = parser()
   local opts = cli.parse(p, args)
   if not opts then return 2 end
   local compile_opts = {bpf = opts.bpf}
   if opts.source then
      local source, err = pf.source(opts.expression, compile_opts)
      if not source then
         cli.usage_error(p, err)
         return 2
      end
      io.stdout:write(source, source:sub(-1) == "\n" and "" or "\n")
      return 0
   end
   if not opts.input then
      cli.usage_error(p, "missing argument 'input'")
      return 2
   end
   local match, err = pf.compile(opts.expression, compile_opts)
   if not match then
      cli.usage_error(p, err)
      return 2
   end
   local matched, total = M.filter(match, opts.input, opts.output)
   -- (OUT "-" is stdout, as for tcpdump -w -: the count goes to stderr then)
   local out = opts.output == "-" and io.stderr or io.stdout
   out:write(("%s of %s packets matched\n"):format(lib.comma_value(matched),
                                                   lib.comma_value(total)))
   return 0
end

return M

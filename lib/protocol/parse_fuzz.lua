-- lib.protocol.parse_fuzz: one fuzz input as a frame through every parser of lib.protocol: the
-- header classes' new_from_mem chain from Ethernet up, ipv4.payload and ipv6.payload, the TCP
-- option and ND option walkers, and lib.protocol.datagram over a packet of the same bytes. The
-- input sits at the end of a page followed by an inaccessible one, so a read past its end
-- crashes; a parser that raises an error, or a datagram that parses other headers than the chain
-- did, is a finding. lib/protocol/parse_fuzz.cc calls init once and one per input (0, or 1 for a
-- finding).
local ffi = require("ffi")
local packet = require("core.packet")
local datagram = require("lib.protocol.datagram")
local ethernet = require("lib.protocol.ethernet")
local ipv4 = require("lib.protocol.ipv4")
local ipv6 = require("lib.protocol.ipv6")
local tcp = require("lib.protocol.tcp")
local nd_header = require("lib.protocol.icmp.nd.header")

local M = {}

local PAGE = 4096
local mem, dgram

function M.init ()
   pcall(ffi.cdef, [[
void *mmap(void *addr, size_t length, int prot, int flags, int fd, long offset);
int mprotect(void *addr, size_t len, int prot);]])
   mem = ffi.cast("uint8_t *", ffi.C.mmap(nil, 2 * PAGE, 3, 0x22, -1, 0))
   assert(mem ~= ffi.cast("uint8_t *", -1) and ffi.C.mprotect(mem + PAGE, PAGE, 0) == 0)
   dgram = datagram:new()
   packet.free(dgram:packet())
   return 0
end

-- The chain of headers from Ethernet as far as they parse: how many, and the bytes they take.
local function chain (ptr, len)
   local n, off, class = 0, 0, ethernet
   while class and n < 64 do
      local h = class:new_from_mem(ptr + off, len - off)
      if not h then break end
      if h:class() == tcp then
         for _ in h:options() do end
      end
      if h:name() == "icmp" then nd_header.find_lladdr(ptr + off + 4, len - off - 4, 1) end
      n, off, class = n + 1, off + h:sizeof(), h:upper_layer()
      h:free()
   end
   return n, off
end

local function run (input)
   local len = math.min(#input, PAGE)
   local at = mem + PAGE - len
   ffi.copy(at, input, len)
   local n, off = chain(at, len)
   if off > len then error(("the chain took %d of %d bytes"):format(off, len)) end
   for skip = 0, math.min(len, 22), 4 do -- IP at 14, 18, 22 (behind tags)
      ipv4.payload(at + skip, len - skip)
      ipv6.payload(at + skip, len - skip)
   end
   nd_header.find_lladdr(at, len, 2)
   local p = packet.from_pointer(at, len)
   dgram:new(p, ethernet)
   local m = 0
   while m < 64 and dgram:parse() do m = m + 1 end
   packet.free(p)
   if m ~= n then error(("the datagram parsed %d headers, the chain %d"):format(m, n)) end
end

function M.one (input)
   local ok, err = pcall(run, input)
   if ok then return 0 end
   io.stderr:write("parse_fuzz: ", tostring(err), "\n")
   return 1
end

return M

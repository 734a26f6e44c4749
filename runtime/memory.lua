-- core.memory: Snabb's DMA memory. dma_alloc(bytes, align) slices memory out of hugepage-sized
-- chunks (runtime/memory.h: provisioned hugepages when there are any, else 2 MiB-aligned memory
-- for transparent hugepages, populated and locked); virtual_to_physical gives a pointer's physical
-- address. Differences from Snabb kept on purpose: Snabb maps every chunk at its physical address
-- tagged with 0x500000000000 (so that virtual_to_physical is arithmetic) and provisions hugepages
-- with sysctl and a hugetlbfs mount; here nothing of the host is changed, and physical addresses
-- come from /proc/self/pagemap (root only, as for DMA at all), once per chunk of hugepages and per
-- 4 KiB page otherwise. Without provisioned hugepages, memory is physically contiguous only
-- within a page: enough for our packet buffers and drivers (DPDK has its own), not for a device
-- that needs one 2 MiB run. Memory is never given back, as in Snabb.
local ffi = require("ffi")
require("core.runtime_cdefs")
local C = ffi.C

local M = {}

M.base_page_size = 4096
M.huge_page_size = tonumber(C.snabb_memory_huge_page_size())
M.huge_page_bits = math.floor(math.log(M.huge_page_size) / math.log(2) + 0.5)
function M.get_huge_page_size () return M.huge_page_size end -- (Snabb's lib.ctable calls it)

-- The chunks handed out so far: {pointer, address, size, used, huge}; the last serves dma_alloc.
M.chunks = {}

local function c_error (what)
   error(("%s: %s"):format(what, ffi.string(C.snabb_error())), 3)
end

local function new_chunk ()
   local huge = ffi.new("int[1]")
   local p = C.snabb_memory_chunk(M.huge_page_size, huge)
   if p == nil then c_error("memory.dma_alloc") end
   local chunk = {pointer = ffi.cast("char *", p), address = tonumber(ffi.cast("uintptr_t", p)),
                  size = M.huge_page_size, used = 0, huge = huge[0] == 1}
   M.chunks[#M.chunks+1] = chunk
   return chunk
end

-- bytes of DMA memory aligned to align (default 128), at most a hugepage: pointer, physical
-- address (nil where it cannot be known: not root), bytes.
function M.dma_alloc (bytes, align)
   align = align or 128
   if type(bytes) ~= "number" or bytes < 0 or bytes > M.huge_page_size then
      error(("memory.dma_alloc: bytes must be from 0 to the hugepage size %d, got %s")
               :format(M.huge_page_size, tostring(bytes)), 2)
   end
   local chunk = M.chunks[#M.chunks] or new_chunk()
   local at = math.ceil(chunk.used / align) * align
   if at + bytes > chunk.size then
      chunk = new_chunk()
      at = 0
   end
   chunk.used = at + bytes
   local pointer = chunk.pointer + at
   local ok, physical = pcall(M.virtual_to_physical, pointer)
   return pointer, ok and physical or nil, bytes
end

-- The physical address (uint64_t) of pointer, memory from dma_alloc.
function M.virtual_to_physical (pointer)
   local address = tonumber(ffi.cast("uintptr_t", pointer))
   for _, chunk in ipairs(M.chunks) do
      local offset = address - chunk.address
      if offset >= 0 and offset < chunk.size then
         if chunk.huge then
            if not chunk.physical then
               local physical = C.snabb_memory_physical(chunk.pointer)
               if physical == 0 then c_error("memory.virtual_to_physical") end
               chunk.physical = physical
            end
            return chunk.physical + offset
         end
         local physical = C.snabb_memory_physical(pointer)
         if physical == 0 then c_error("memory.virtual_to_physical") end
         return physical
      end
   end
   error(("memory.virtual_to_physical: 0x%x is not DMA memory (memory.dma_alloc)"):format(address), 2)
end

function M.selftest ()
   print("selftest: core.memory")
   assert(M.get_huge_page_size() == M.huge_page_size)
   assert(M.huge_page_size >= 2^21 and 2^M.huge_page_bits == M.huge_page_size)
   local p1, _, n = M.dma_alloc(100)
   local p2 = M.dma_alloc(64, 4096)
   assert(n == 100 and p1 ~= nil)
   assert(tonumber(ffi.cast("uintptr_t", p1)) % 128 == 0)
   assert(tonumber(ffi.cast("uintptr_t", p2)) % 4096 == 0 and p2 - p1 >= 100)
   ffi.fill(p1, 100, 0xab)
   assert(p1[99] == -85 and p2[0] == 0, "fresh memory is zeroed")
   -- A whole hugepage takes a chunk of its own.
   local big = M.dma_alloc(M.huge_page_size)
   ffi.cast("uint32_t *", big)[0] = 0xdeadbeef
   assert(#M.chunks == 2)
   local ok, err = pcall(M.dma_alloc, M.huge_page_size + 1)
   assert(not ok and err:match("hugepage size"))
   ok, err = pcall(M.virtual_to_physical, ffi.new("char[1]"))
   assert(not ok and err:match("not DMA memory"), err)
   -- Physical addresses where the kernel shows them (root): distinct pages, offsets kept.
   local ok1, a1 = pcall(M.virtual_to_physical, p1)
   if ok1 then
      local a2 = M.virtual_to_physical(p1 + 64)
      assert(a2 - a1 == 64ULL and a1 % 128 == 0ULL)
      assert(M.virtual_to_physical(big) ~= a1)
      print(("physical address of the first allocation: 0x%x"):format(tonumber(a1)))
   else
      print("physical addresses: " .. tostring(a1))
   end
   print("selftest: core.memory ok")
end

return M

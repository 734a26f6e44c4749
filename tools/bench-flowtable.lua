-- lib.ctable against std::unordered_map on the same keys (tools/bench-flowtable runs it): N
-- entries (default 1M) of a 16-byte 5-tuple-sized key and of a uint32_t key, both with a uint32_t
-- value; lookups per second for hits and for misses, by lookup_ptr and by a streamer of width 32,
-- beside tools/flowtable_bench (C++) run as a child process, alternating which runs first. The keys
-- are written once by flowtable_bench gen and read by both sides. Prints each round, then the
-- medians and the ratios to unordered_map.
-- Usage: snabb tools/bench-flowtable.lua FLOWTABLE_BENCH [RUNS [N [PASSES]]]
local lib = require("core.lib")
local ffi = require("ffi")
local ctable = require("lib.ctable")

local bench_bin, runs, n, passes = ...
runs, n, passes = tonumber(runs) or 5, tonumber(n) or 1e6, tonumber(passes) or 3
assert(bench_bin, "usage: snabb tools/bench-flowtable.lua FLOWTABLE_BENCH [RUNS [N [PASSES]]]")
local WIDTH = 32

local function sh (cmd)
   local f = assert(io.popen(cmd))
   local out = f:read("*a")
   assert(f:close(), cmd .. ": failed")
   return out
end

-- One key size: its key file, its table, its lookup loops.
local function setup (keysize)
   local file = os.tmpname()
   sh(("%s gen %s %d %d 1"):format(bench_bin, file, keysize, n))
   local f = assert(io.open(file, "rb"))
   local data = f:read("*a")
   f:close()
   assert(#data == 3 * n * keysize, file .. ": short")
   local bytes = ffi.new("uint8_t[?]", #data)
   ffi.copy(bytes, data, #data)
   data = nil -- luacheck: ignore
   local key_type = keysize == 4 and ffi.typeof("uint32_t") or ffi.typeof("uint8_t[16]")
   -- Occupancy 0.5: N entries in 2N slots.
   local t = ctable.new({key_type = key_type, value_type = ffi.typeof("uint32_t"),
                         initial_size = 2 * n, max_occupancy_rate = 0.5})
   local u32 = ffi.cast("uint32_t *", bytes)
   for i = 0, n - 1 do t:add(keysize == 4 and u32[i] or bytes + i * 16, i) end
   local s = t:make_lookup_streamer(WIDTH)
   -- The lookup loops, compiled apart for each key size and for hits and misses: each its own
   -- trace, as a loop of mostly hits (or mostly misses) runs. (In one loop, whichever outcome is
   -- the rarer runs through a side trace and costs more: lib/ctable.md.) Lookups of keys first ..
   -- first+n-1, passes times; Mlookups/s a CPU second, found, sum.
   local loops = ([[
      local ffi, t, s, bytes, n, passes, WIDTH = ...
      local u32, cpu = ffi.cast("uint32_t *", bytes), os.clock
      local skeys = ffi.cast("uint8_t *", s.entries) + 4
      local esize = ffi.sizeof(t.entry_type)
      -- The table and the keys in locals of the loop's function, as an app's push() has them from
      -- self: read through the closure's upvalues, the table's fields were loaded again in every
      -- iteration (not hoisted out of the loop), and lookups took twice as long (99 ns, 46 here).
      local function by_ptr (first)
         local t, u32, bytes = t, u32, bytes
         local found, sum = 0, 0
         local t0 = cpu()
         for _ = 1, passes do
            for i = first, first + n - 1 do
               local e = t:lookup_ptr(KEY)
               if e then found, sum = found + 1, sum + e.value end
            end
         end
         return n * passes / (cpu() - t0) / 1e6, found, sum
      end
      local function by_streamer (first)
         local s, bytes, skeys = s, bytes, skeys
         local found, sum = 0, 0
         local t0 = cpu()
         for _ = 1, passes do
            for base = first, first + n - 1, WIDTH do
               for j = 0, WIDTH - 1 do
                  ffi.copy(skeys + j * esize, bytes + (base + j) * KEYSIZE, KEYSIZE)
               end
               s:stream()
               for j = 0, WIDTH - 1 do
                  if s:is_found(j) then found, sum = found + 1, sum + s.entries[j].value end
               end
            end
         end
         return n * passes / (cpu() - t0) / 1e6, found, sum
      end
      return by_ptr, by_streamer
   ]]):gsub("KEYSIZE", keysize):gsub("KEY", keysize == 4 and "u32[i]" or "bytes + i * 16")
   local k = {keysize = keysize, t = t}
   for _, case in ipairs({"hit", "miss"}) do
      k[case] = {}
      k[case].by_ptr, k[case].by_streamer = assert(loadstring(
         loops, ("=bench-flowtable-%d-%s"):format(keysize, case)))(ffi, t, s, bytes, n, passes, WIDTH)
   end
   -- The C++ side reads the same file in each round: removed at the end.
   k.file = file
   return k
end

assert(n % WIDTH == 0, "N must be a multiple of " .. WIDTH)
local sizes = {setup(16), setup(4)}
local results = {} -- results[name] = list of Mlookups/s
local function record (name, v)
   results[name] = results[name] or {}
   table.insert(results[name], v)
end

for round = 1, runs do
   for _, k in ipairs(sizes) do
      local function cpp ()
         local out = sh(("%s run %s %d %d %d"):format(bench_bin, k.file, k.keysize, n, passes))
         local hit, hits = out:match("hit ([%d.]+) found (%d+)")
         local miss, misses = out:match("miss ([%d.]+) found (%d+)")
         assert(tonumber(hits) == n * passes and tonumber(misses) == 0, out)
         record(k.keysize .. " hit unordered_map", tonumber(hit))
         record(k.keysize .. " miss unordered_map", tonumber(miss))
      end
      local function lua ()
         for _, how in ipairs({"by_ptr", "by_streamer"}) do
            local rate, found, sum = k.hit[how](n)
            assert(found == n * passes and sum == passes * n * (n - 1) / 2, how .. ": hits")
            record(k.keysize .. " hit " .. how, rate)
            rate, found = k.miss[how](2 * n)
            assert(found == 0, how .. ": misses found")
            record(k.keysize .. " miss " .. how, rate)
         end
      end
      if round % 2 == 1 then cpp(); lua() else lua(); cpp() end
      io.stderr:write(("round %d, %d-byte keys: unordered_map hit %.2f, lookup_ptr hit %.2f,"
                       .. " streamer hit %.2f Mlookups/s\n"):format(
         round, k.keysize, results[k.keysize .. " hit unordered_map"][round],
         results[k.keysize .. " hit by_ptr"][round], results[k.keysize .. " hit by_streamer"][round]))
   end
end

local median = lib.median

local rows = {}
for _, k in ipairs(sizes) do
   for _, case in ipairs({"hit", "miss"}) do
      local prefix = k.keysize .. " " .. case .. " "
      local peer = median(results[prefix .. "unordered_map"])
      local p, s = median(results[prefix .. "by_ptr"]), median(results[prefix .. "by_streamer"])
      rows[#rows + 1] = {k.keysize == 4 and "uint32_t" or "16 bytes", case,
                         ("%.2f"):format(peer), ("%.2f"):format(p), ("%.2fx"):format(p / peer),
                         ("%.2f"):format(s), ("%.2fx"):format(s / peer)}
   end
   os.remove(k.file)
end
print(("%d entries (lib.ctable at occupancy 0.5), %d lookups a pass, %d passes, median of %d"
       .. " alternating runs; Mlookups/s"):format(n, n, passes, runs))
io.write(lib.table_text({"key", "lookups", "unordered_map", "lookup_ptr", "ratio",
                         "streamer " .. WIDTH, "ratio"}, rows, {[3] = true, [4] = true, [5] = true,
                                                              [6] = true, [7] = true}))

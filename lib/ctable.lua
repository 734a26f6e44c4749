-- lib.ctable: a hash table over FFI key and value types (Snabb's lib.ctable API), for per-flow
-- state looked up per packet. Open addressing with linear probing, Robin Hood order: every entry
-- stores a 30-bit keyed hash of its key, and the table is kept sorted by that hash, so a lookup
-- scans forward from the slot the hash maps to while the stored hashes are smaller, and a miss
-- stops at the first larger one. The hash is a multiply-xorshift chain over 64-bit words keyed by
-- hash_seed, generated unrolled for the key's size: keys crafted to collide under one seed scatter
-- under another. The distance of an entry from its slot (displacement) is bounded by
-- max_displacement_limit: an insertion that would exceed it rebuilds the table with a fresh seed
-- (and, if that is not enough, at twice the size). Lookups allocate nothing and stay in the JIT.
local ffi = require("ffi")
local bit = require("bit")
local lib = require("core.lib")
require("core.clib_h")
require("core.lib_h")
local C = ffi.C

local band, bxor = bit.band, bit.bxor
local floor, ceil, max, min = math.floor, math.ceil, math.max, math.min

local M = {}
local CTable = {}
local LookupStreamer = {}
M.CTable, M.LookupStreamer = CTable, LookupStreamer

-- The hash of an empty slot; a key's hash is below 2^30. Hashes are int32_t, so that a lookup
-- compares them as integers, and the sign of the difference of two says which is smaller.
local HASH_MAX = 0x7FFFFFFF
M.HASH_MAX = HASH_MAX
-- Slot index of a hash: floor(hash * size / 2^30), monotonic in the hash.
local HASH_RANGE = 2 ^ 30
local uint8_ptr_t = ffi.typeof("uint8_t *")

-- Generated code. The hot path of each table (lookup_ptr, a streamer's stream) is one chunk of
-- its own, the hash and the key comparison written inline for its key size: a small function
-- shared by every table, called often from interpreted code (while a table is filled or checked),
-- tries traces of its own that abort, and LuaJIT then blacklists it, after which every trace that
-- calls it aborts too (seen in the selftest: its lookups then ran in the interpreter, allocating
-- 740 bytes each).

-- The locals every generated chunk starts with.
local preamble = [[
local ffi, bit = ...
local cast, bxor, bor, rshift, tobit, floor = ffi.cast, bit.bxor, bit.bor, bit.rshift, bit.tobit,
   math.floor
local u64p, u32p, u16p, u8p, i32p = ffi.typeof("uint64_t *"), ffi.typeof("uint32_t *"),
   ffi.typeof("uint16_t *"), ffi.typeof("uint8_t *"), ffi.typeof("int32_t *")
local MUL = 0x9E3779B97F4A7C15ULL
]]

-- Code that sets `out` (declared before) to the keyed hash of `size` bytes from byte `offset` (0
-- for a key, 4 for an entry's key) at pointer expression `p`, with seed words k0 and k1 in scope:
-- a number in [0, 2^30). A multiply-xorshift chain over 64-bit words, seeded by two 64-bit words,
-- k0 (the initial state) and k1 (into the last word): each full word is XORed into the state,
-- which is multiplied by an odd constant and its high half folded down; the last word holds the
-- 0-7 tail bytes and the size in its top byte; the hash is the top 30 bits of the last product.
-- No loop, so a lookup's trace holds it whole. Measured here: 2.2 ns a 16-byte key, 1.4 ns a
-- 4-byte one, against 15 and 9 ns for HalfSipHash-1-3 (32-bit SipHash rounds, our first version);
-- in a lookup the difference is in the misses that overlap.
local function hash_code (size, offset, p, out)
   local src = {("   do\n      local q = cast(u8p, %s) + %d\n      local s = k0\n"):format(p, offset)}
   local words, tail = floor(size / 8), size % 8
   for i = 0, words - 1 do
      src[#src + 1] = ("      s = bxor(s, cast(u64p, q)[%d]) * MUL; s = bxor(s, rshift(s, 32))\n"):format(i)
   end
   -- The tail bytes as a number below 2^56, exact in a double.
   local at, parts, shift = words * 8, {}, 0
   if tail >= 4 then
      parts[#parts + 1] = ("cast(u32p, q)[%d]"):format(at / 4)
      at, shift = at + 4, 32
   end
   if tail % 4 >= 2 then
      parts[#parts + 1] = ("cast(u16p, q)[%d] * %d"):format(at / 2, 2 ^ shift)
      at, shift = at + 2, shift + 16
   end
   if tail % 2 == 1 then parts[#parts + 1] = ("q[%d] * %d"):format(at, 2 ^ shift) end
   local last = ("0x%02x00000000000000ULL"):format(size % 256)
   if #parts > 0 then last = ("bor(%s, %s)"):format(last, table.concat(parts, " + ")) end
   src[#src + 1] = ("      %s = tobit(rshift(bxor(s, %s, k1) * MUL, 34))\n   end\n"):format(out, last)
   return table.concat(src)
end

-- An expression that is 0 when `size` bytes at pointer expressions a (from byte offset_a) and b
-- (from offset_b) are equal, else not (offsets 0 or 4, so that words stay words): their word XORs
-- ORed together, without a branch.
local function diff_expr (size, a, offset_a, b, offset_b)
   local terms = {}
   local words, tail = floor(size / 4), size % 4
   local wa, wb = offset_a / 4, offset_b / 4
   for i = 0, words - 1 do
      terms[#terms + 1] = ("bxor(cast(i32p, %s)[%d], cast(i32p, %s)[%d])"):format(a, wa + i, b, wb + i)
   end
   local at = words * 4
   if tail >= 2 then
      terms[#terms + 1] = ("bxor(cast(u16p, %s)[%d], cast(u16p, %s)[%d])"):format(
         a, (offset_a + at) / 2, b, (offset_b + at) / 2)
      at = at + 2
   end
   if tail % 2 == 1 then
      terms[#terms + 1] = ("bxor(cast(u8p, %s)[%d], cast(u8p, %s)[%d])"):format(
         a, offset_a + at, b, offset_b + at)
   end
   -- bor takes at most what a Lua call does; nest by groups of 16.
   while #terms > 1 do
      local grouped = {}
      for i = 1, #terms, 16 do
         grouped[#grouped + 1] = "bor(" .. table.concat(terms, ", ", i, min(i + 15, #terms)) .. ")"
      end
      terms = grouped
   end
   return terms[1]
end

local function compile (src, name)
   return assert(loadstring(preamble .. src, "=lib.ctable." .. name))(ffi, bit)
end

-- hash(p, k0, k1): the hash of `size` bytes from byte `offset` at p (a fresh copy each call).
local function hash_fn (size, offset)
   return compile("return function (p, k0, k1)\n   local h\n" .. hash_code(size, offset, "p", "h")
                  .. "   return h\nend\n", "hash" .. size)
end

-- diff(a, b): 0 when `size` bytes from offset_a at a and offset_b at b are equal.
local function diff_fn (size, offset_a, offset_b)
   return compile(("return function (a, b) return %s end\n"):format(
      diff_expr(size, "a", offset_a, "b", offset_b)), "diff" .. size)
end

-- The fast path, generated for each table: lookup_ptr and a streamer's stream. The hashes are
-- sorted along the table, so the slots before a key's are a prefix of those from its start slot:
-- they are counted among the first three without a branch (by the sign of the difference of
-- hashes; a branch a slot made a side trace for each combination, 30 of them, then the
-- interpreter, in a streamer). No loop in the common case: a loop in a function called from a
-- packet loop ends the caller's trace ("inner loop in root trace": lookup_ptr ran at 400 ns
-- instead of 100). The scans past the third slot and along keys of equal hashes are loops apart,
-- taken rarely.
local fast_path_src = [[
local HASH_MAX, SCALAR = select(3, ...)
-- The first slot from i on whose hash is not below hash.
local function skip_far (entries, i, hash)
   while entries[i].hash < hash do i = i + 1 end
   return i
end
-- The entry of hash whose key is the one at kp (a key; for _entry, an entry's), from slot i on
-- (the second with that hash: two keys of one 30-bit hash are rare); or nil.
local function find_colliding (entries, i, hash, kp)
   while entries[i].hash == hash do
      if DIFF_AT_I == 0 then return entries + i end
      i = i + 1
   end
   return nil
end
local function find_colliding_entry (entries, i, hash, kp)
   while entries[i].hash == hash do
      if DIFF_ENTRY_AT_I == 0 then return entries + i end
      i = i + 1
   end
   return nil
end
local function lookup_ptr (self, key)
   local kp = key
   if SCALAR then
      kp = self.key_box
      kp[0] = key
   end
   local k0, k1, hash = self.k0, self.k1, nil
HASH_KEY
   local entries = self.entries
   local i = floor(hash * self.scale)
   local n = rshift(entries[i].hash - hash, 31) + rshift(entries[i + 1].hash - hash, 31)
             + rshift(entries[i + 2].hash - hash, 31)
   i = n < 3 and i + n or skip_far(entries, i + 3, hash)
   if entries[i].hash ~= hash then return nil end
   if DIFF_AT_I == 0 then return entries + i end
   return find_colliding(entries, i + 1, hash, kp)
end
-- A batch: hash each key, prefetch its start slot; then find each, without a branch but in rare
-- cases: the value is copied whether found or not, and the hash becomes HASH_MAX if not found.
local function stream (self)
   local ctab, width, mine, start = self.ctab, self.width, self.entries, self.start
   local entries, scale, k0, k1 = ctab.entries, ctab.scale, ctab.k0, ctab.k1
   local prefetch = self.prefetch
   for m = 0, width - 1 do
      local hash
HASH_MINE
      mine[m].hash = hash
      local s = floor(hash * scale)
      start[m] = s
      prefetch(entries + s)
   end
   for m = 0, width - 1 do
      local hash, i = mine[m].hash, start[m]
      local n = rshift(entries[i].hash - hash, 31) + rshift(entries[i + 1].hash - hash, 31)
                + rshift(entries[i + 2].hash - hash, 31)
      i = n < 3 and i + n or skip_far(entries, i + 3, hash)
      local d = tobit(entries[i].hash - hash)
      local other_hash = rshift(bor(d, -d), 31)
      d = DIFF_ENTRY_AT_I
      local other_key = rshift(bor(d, -d), 31)
      if other_key - other_hash == 1 then
         -- Same hash, another key: look further.
         local e = find_colliding_entry(entries, i + 1, hash, mine + m)
         if e then i, other_key = e - entries, 0 end
      end
COPY_VALUE
      mine[m].hash = hash + bor(other_hash, other_key) * (HASH_MAX - hash)
   end
end
return lookup_ptr, stream
]]

local function fast_path (self)
   local size = self.key_size
   local src = fast_path_src
      :gsub("HASH_KEY\n", hash_code(size, 0, "kp", "hash"))
      :gsub("HASH_MINE\n", hash_code(size, 4, "mine + m", "hash"))
      :gsub("DIFF_AT_I", diff_expr(size, "entries + i", 4, "kp", 0))
      :gsub("DIFF_ENTRY_AT_I", diff_expr(size, "entries + i", 4, "mine + m", 4))
      -- A struct or array assigned whole is NYI in a trace ("unsupported C type conversion"):
      -- those values are copied by ffi.copy of a constant size, which the JIT writes inline.
      :gsub("COPY_VALUE\n", tonumber(ffi.new(self.value_type)) and "      mine[m].value = entries[i].value\n"
            or ("      ffi.copy(cast(u8p, mine + m) + %d, cast(u8p, entries + i) + %d, %d)\n"):format(
               4 + size, 4 + size, ffi.sizeof(self.value_type)))
   -- find_colliding_entry compares with the entry at kp.
   src = src:gsub("(local function find_colliding_entry.-\nend)", function (fn)
      return (fn:gsub("mine %+ m", "kp"))
   end)
   return assert(loadstring(preamble .. src, "=lib.ctable.fast" .. size))(
      ffi, bit, HASH_MAX, self.scalar)
end

-- Entry types, cached by key and value type: the hash, the key, the value, padded to a power of
-- two up to 64 bytes (so that no entry straddles a cache line), to 8 bytes beyond.
local entry_types = {}
local function entry_type (key_type, value_type)
   entry_types[key_type] = entry_types[key_type] or {}
   local cached = entry_types[key_type][value_type]
   if cached then return cached end
   local raw = 4 + ffi.sizeof(key_type) + ffi.sizeof(value_type)
   local size = raw <= 64 and 2 ^ ceil(math.log(raw) / math.log(2)) or lib.align(raw, 8)
   local t = ffi.typeof([[struct {
      int32_t hash;
      $ key;
      $ value;
      uint8_t padding[$];
   } __attribute__((packed))]], key_type, value_type, size - raw)
   entry_types[key_type][value_type] = t
   return t
end

-- Parameters: required ones have no default (nil); optional ones their default.
local params_spec = {
   key_type = "required",
   value_type = "required",
   hash_seed = false,
   initial_size = 8,
   max_occupancy_rate = 0.9,
   min_occupancy_rate = 0.0,
   resize_callback = false,
   -- 1M random keys displaced at most 10 slots at occupancy 0.5, 18 at 0.7, 44 at 0.9.
   max_displacement_limit = 128,
}
local params_known = {}
for k in pairs(params_spec) do params_known[#params_known + 1] = k end
table.sort(params_known)

-- Raised without a position; new() raises it again at its caller's line.
local function param_error (message)
   error("lib.ctable: " .. message, 0)
end

local function ffi_type (params, name)
   local t = params[name]
   if type(t) == "string" then
      local ok, ct = pcall(ffi.typeof, t)
      if not ok then param_error(("%s %q is not a C type: %s"):format(name, t, ct)) end
      t = ct
   end
   if type(t) ~= "cdata" or tostring(t):sub(1, 6) ~= "ctype<" then
      param_error(("%s must be an FFI type (ffi.typeof(...) or a C type name), not %s"):format(
         name, lib.describe and lib.describe(t) or type(t)))
   end
   local ok, size = pcall(ffi.sizeof, t)
   if not ok or not size or size <= 0 then
      param_error(("%s %s has no fixed size"):format(name, tostring(t)))
   end
   return t
end

local function number_param (p, name, lo, hi)
   local v = p[name]
   if type(v) ~= "number" or v ~= v or v < lo or v > hi then
      param_error(("%s must be a number from %s to %s, not %s"):format(name, lo, hi, tostring(v)))
   end
   return v
end

-- A seed as the hash's two 64-bit words: from a number (an integer below 2^53), a string or cdata
-- of 16 bytes (Snabb's uint8_t[16]) or 8 (the second word then derived from the first), or random
-- bytes when none is given.
local u64_t = ffi.typeof("uint64_t")
local function seed_words (seed)
   local bad = "hash_seed must be an integer from 0 to 2^53-1, a string or cdata of 8 or 16 bytes"
   if seed == false or seed == nil then
      seed = lib.random_bytes(16)
   end
   local w = ffi.new("uint64_t[2]")
   if type(seed) == "number" then
      if seed < 0 or seed >= 2 ^ 53 or seed ~= floor(seed) then param_error(bad) end
      w[0] = seed
   else
      local bytes, n
      if type(seed) == "string" then
         bytes, n = seed, #seed
      elseif type(seed) == "cdata" then
         bytes, n = ffi.cast(uint8_ptr_t, seed), ffi.sizeof(seed)
      end
      if not n or (n ~= 8 and n ~= 16) then param_error(bad) end
      ffi.copy(w, bytes, n)
   end
   -- A second word from the first when not given: splitmix64's step.
   if w[1] == 0 then
      w[1] = bxor(w[0] + 0x9E3779B97F4A7C15ULL, 0xBF58476D1CE4E5B9ULL) * 0x94D049BB133111EBULL
   end
   return u64_t(w[0]), u64_t(w[1])
end

local function parse_params (params)
   if type(params) ~= "table" then param_error("ctable.new takes a table of parameters") end
   local p = {}
   for k, v in pairs(params) do
      if params_spec[k] == nil then
         param_error(("unknown parameter %q (known: %s)"):format(tostring(k),
                                                                 table.concat(params_known, ", ")))
      end
      p[k] = v
   end
   for k, default in pairs(params_spec) do
      if p[k] == nil then
         if default == "required" then param_error(("missing required parameter %s"):format(k)) end
         p[k] = default
      end
   end
   p.key_type, p.value_type = ffi_type(p, "key_type"), ffi_type(p, "value_type")
   number_param(p, "max_occupancy_rate", 0.01, 1)
   number_param(p, "min_occupancy_rate", 0, p.max_occupancy_rate / 2.01)
   number_param(p, "initial_size", 1, 2 ^ 30)
   p.initial_size = ceil(p.initial_size)
   number_param(p, "max_displacement_limit", 1, math.huge)
   if p.resize_callback and type(p.resize_callback) ~= "function" then
      param_error("resize_callback must be a function")
   end
   p.k0, p.k1 = seed_words(p.hash_seed)
   return p
end

function M.new (params)
   local ok, p = pcall(parse_params, params)
   if not ok then error(p, 2) end
   local self = setmetatable({}, {__index = CTable})
   self.key_type, self.value_type = p.key_type, p.value_type
   self.entry_type = entry_type(p.key_type, p.value_type)
   self.type = ffi.typeof("$[?]", self.entry_type)
   self.ptr_type = ffi.typeof("$ *", self.entry_type)
   self.key_size = ffi.sizeof(p.key_type)
   -- Adds, removes, rebuilds and checks have functions of their own (the hash of a key, of an
   -- entry's key, and an entry's key against a key); lookups, code generated below.
   self.slow_hash_bytes = hash_fn(self.key_size, 0)
   self.slow_hash_entry = hash_fn(self.key_size, 4)
   self.slow_diff_key = diff_fn(self.key_size, 4, 0)
   -- A scalar key (a number) is hashed from a copy in a box.
   self.scalar = tonumber(ffi.new(p.key_type)) ~= nil
   self.key_box = ffi.new(ffi.typeof("$[1]", p.key_type))
   self.max_occupancy_rate, self.min_occupancy_rate = p.max_occupancy_rate, p.min_occupancy_rate
   self.max_displacement_limit = p.max_displacement_limit
   self.resize_callback = p.resize_callback
   self.size, self.occupancy, self.max_displacement = 0, 0, 0
   self.reseeds = 0 -- rebuilds with a fresh seed because the displacement limit was reached
   self.k0, self.k1 = p.k0, p.k1
   self.lookup_ptr, self.stream_fn = fast_path(self)
   self:resize(max(p.initial_size, 1))
   return self
end

-- The slow path: adds, removes, rebuilds and checks. Lookups use none of its functions: if a
-- function is called often from the interpreter (as while a table is filled), it gets a trace of
-- its own, ending in a return to the interpreter; a side trace of a packet loop that calls it
-- links to that trace, and each such lookup then ends in the interpreter. A lookup_ptr loop of
-- hits and misses ran at 266 ns a miss so, at 58 without.

-- Pointer to a key's bytes: the cdata itself, or the box holding a scalar key.
local function key_ptr (self, key)
   if self.scalar then
      self.key_box[0] = key
      return self.key_box
   end
   return key
end

function CTable:hash_key (key)
   return self.slow_hash_bytes(key_ptr(self, key), self.k0, self.k1)
end

local function index_of (hash, scale) return floor(hash * scale) end

-- The entry of a key with hash `hash`, or nil.
local function find (self, hash, key)
   local entries = self.entries
   local i = index_of(hash, self.scale)
   while entries[i].hash < hash do i = i + 1 end
   local kp, diff = key_ptr(self, key), self.slow_diff_key
   while entries[i].hash == hash do
      if diff(entries + i, kp) == 0 then return entries + i end
      i = i + 1
   end
   return nil
end

-- Rebuild with `size` slots; reseed for a fresh seed. Returns false if the displacement limit was
-- reached, leaving the table as it was.
local function rebuild (self, size, reseed)
   local old_entries, old_slots = self.entries, self.slots or 0
   local old = {self.entries, self.slots, self.size, self.scale, self.occupancy,
                self.max_displacement, self.k0, self.k1}
   local limit = self.max_displacement_limit
   -- Slots beyond `size` hold entries displaced past the end, and one empty one stops scans.
   local slots = size + min(limit, ceil(size * self.max_occupancy_rate)) + 1
   self.entries = self.type(slots)
   for i = 0, slots - 1 do self.entries[i].hash = HASH_MAX end
   self.slots, self.size, self.scale = slots, size, size / HASH_RANGE
   self.occupancy, self.max_displacement = 0, 0
   self.occupancy_hi = floor(size * self.max_occupancy_rate)
   self.occupancy_lo = floor(size * self.min_occupancy_rate)
   if reseed then
      self.k0, self.k1 = seed_words(false)
   end
   for i = 0, old_slots - 1 do
      local e = old_entries + i
      if e.hash ~= HASH_MAX then
         if not self:insert(self.slow_hash_entry(e, self.k0, self.k1), e.key, e.value) then
            self.entries, self.slots, self.size, self.scale, self.occupancy,
               self.max_displacement, self.k0, self.k1 = unpack(old, 1, 8)
            self.occupancy_hi = floor(self.size * self.max_occupancy_rate)
            self.occupancy_lo = floor(self.size * self.min_occupancy_rate)
            return false
         end
      end
   end
   return true
end

-- Resize to `size` slots (not counting the overflow past the end). Snabb reseeds on every resize;
-- so do we (the first seed is hash_seed; later ones from core.lib.random_bytes). If the entries do
-- not fit within the displacement limit, three more seeds are tried, then twice the size.
function CTable:resize (size, reseed)
   local old_size = self.size
   if type(size) ~= "number" or size < 1 or size ~= floor(size) then
      error(("lib.ctable: resize to %s: the size must be a positive integer"):format(tostring(size)), 2)
   end
   if size * self.max_occupancy_rate < self.occupancy then
      error(("lib.ctable: resize to %d slots cannot hold %d entries at max_occupancy_rate %g"):format(
         size, self.occupancy, self.max_occupancy_rate), 2)
   end
   reseed = reseed or old_size ~= 0
   local tries = 0
   while not rebuild(self, size, reseed) do
      reseed, tries = true, tries + 1
      if tries % 4 == 0 then size = size * 2 end
   end
   if self.resize_callback then self.resize_callback(self, old_size) end
end

-- Insert an entry known to be absent, keeping hash order; nil if that would displace an entry
-- beyond the limit (nothing changed then).
function CTable:insert (hash, key, value)
   local entries, scale, limit = self.entries, self.scale, self.max_displacement_limit
   local start = index_of(hash, scale)
   local index = start
   while entries[index].hash <= hash do index = index + 1 end
   local displacement = index - start
   if displacement > limit then return nil end
   -- Entries from index to the next empty slot move up by one: check their displacements.
   local empty, most = index, displacement
   while entries[empty].hash ~= HASH_MAX do
      local d = empty + 1 - index_of(entries[empty].hash, scale)
      if d > most then most = d end
      empty = empty + 1
   end
   if most > limit or empty >= self.slots - 1 then return nil end
   if empty > index then
      C.memmove(entries + index + 1, entries + index, (empty - index) * ffi.sizeof(self.entry_type))
   end
   local entry = entries + index
   entry.hash, entry.value = hash, value
   if self.scalar then
      entry.key = key
   else
      ffi.copy(ffi.cast(uint8_ptr_t, entry) + 4, key, self.key_size)
   end
   self.occupancy = self.occupancy + 1
   if most > self.max_displacement then self.max_displacement = most end
   return entry
end

-- Snabb's add: an error if the key is present, unless updates_allowed; if that is "required", an
-- error if it is absent. Returns the entry (valid until the table next changes).
function CTable:add (key, value, updates_allowed)
   local hash = self:hash_key(key)
   local entry = find(self, hash, key)
   if entry then
      if not updates_allowed then error("lib.ctable: key is already present", 2) end
      entry.value = value
      return entry
   end
   if updates_allowed == "required" then error("lib.ctable: key not found", 2) end
   if self.occupancy + 1 > self.occupancy_hi then
      repeat self:resize(self.size * 2) until self.occupancy + 1 <= self.occupancy_hi
      hash = self:hash_key(key)
   end
   entry = self:insert(hash, key, value)
   while not entry do
      -- Displacement limit: rebuild with a fresh seed (and in time a larger size), then retry.
      self.reseeds = self.reseeds + 1
      self:resize(self.size, true)
      hash = self:hash_key(key)
      entry = self:insert(hash, key, value)
   end
   return entry
end

function CTable:update (key, value)
   return self:add(key, value, "required")
end

function CTable:lookup_and_copy (key, entry)
   local ptr = self:lookup_ptr(key)
   if not ptr then return false end
   ffi.copy(entry, ptr, ffi.sizeof(self.entry_type))
   return true
end

-- Remove the entry at `entry`: the following displaced entries move back by one.
function CTable:remove_ptr (entry)
   local entries, scale = self.entries, self.scale
   local index = ffi.cast(self.ptr_type, entry) - entries
   if index < 0 or index >= self.slots or entries[index].hash == HASH_MAX then
      error("lib.ctable: remove_ptr: not a pointer to an entry of this table", 2)
   end
   local last = index + 1
   while entries[last].hash ~= HASH_MAX and index_of(entries[last].hash, scale) < last do
      last = last + 1
   end
   -- Entries index+1 .. last-1 are displaced: each moves back one slot.
   if last > index + 1 then
      C.memmove(entries + index, entries + index + 1, (last - index - 1) * ffi.sizeof(self.entry_type))
   end
   entries[last - 1].hash = HASH_MAX
   self.occupancy = self.occupancy - 1
   if self.occupancy < self.occupancy_lo and self.size > 1 then
      self:resize(max(ceil(self.size / 2), 1))
   end
end

-- Remove the entry of `key`: true if it was there; if not, false when missing_allowed, else an
-- error.
function CTable:remove (key, missing_allowed)
   local entry = find(self, self:hash_key(key), key)
   if not entry then
      if missing_allowed then return false end
      error("lib.ctable: remove: key not found", 2)
   end
   self:remove_ptr(entry)
   return true
end

-- for entry in t:iterate() do ... entry.key, entry.value ... end: each entry once, in hash order.
-- The table must not change during the loop.
local function next_entry (last, entry)
   repeat
      entry = entry + 1
      if entry >= last then return nil end
   until entry.hash ~= HASH_MAX
   return entry
end

function CTable:iterate ()
   return next_entry, self.entries + self.slots, self.entries - 1
end

-- Check the invariants (expensive): hashes, hash order, occupancy, displacements.
function CTable:selfcheck ()
   local entries, n, most, prev = self.entries, 0, 0, -1
   for i = 0, self.slots - 1 do
      local h = entries[i].hash
      if h ~= HASH_MAX then
         assert(h == self.slow_hash_entry(entries + i, self.k0, self.k1),
                ("slot %d: stored hash is not the key's"):format(i))
         local start = index_of(h, self.scale)
         assert(start <= i, ("slot %d: entry before its start slot %d"):format(i, start))
         if i > start then
            assert(prev ~= -1 and prev <= h, ("slot %d: displaced entry out of hash order"):format(i))
         end
         most = max(most, i - start)
         n = n + 1
         prev = h
      else
         prev = -1
      end
   end
   assert(entries[self.slots - 1].hash == HASH_MAX, "the last slot is not empty")
   assert(n == self.occupancy, ("occupancy %d, counted %d"):format(self.occupancy, n))
   assert(most <= self.max_displacement and most <= self.max_displacement_limit,
          ("displacement %d beyond max %d / limit %s"):format(most, self.max_displacement,
                                                               self.max_displacement_limit))
   return most
end

-- Streaming lookups: fill streamer.entries[i].key for i < width, call stream(), then read
-- is_found(i) and entries[i].value. A batch hashes every key and prefetches its slot before it
-- scans any, so the width cache misses overlap.
function CTable:make_lookup_streamer (width)
   if type(width) ~= "number" or width < 1 or width > 262144 or width ~= floor(width) then
      error(("lib.ctable: make_lookup_streamer: width %s is not an integer from 1 to 262144"):format(
         tostring(width)), 2)
   end
   local s = setmetatable({}, {__index = LookupStreamer})
   s.ctab, s.width, s.stream, s.prefetch = self, width, self.stream_fn, C.prefetch_for_read
   s.entries = self.type(width)
   s.start = ffi.new("int32_t[?]", width)
   return s
end

function LookupStreamer:is_empty (i)
   return self.entries[i].hash == HASH_MAX
end

function LookupStreamer:is_found (i)
   return self.entries[i].hash ~= HASH_MAX
end

M.hash_fn, M.diff_fn = hash_fn, diff_fn

-- Tests --------------------------------------------------------------------------------------------

-- Random adds, updates, removes and lookups against a Lua table, on a key space small enough that
-- they meet; the table grows and shrinks. Checks every entry, iteration and the invariants as it
-- goes. key(i) makes the FFI key of integer i, id(key) gives i back.
local function check_random_ops (params, key, id, ops)
   local t = M.new(params)
   local ref, n = {}, 0
   local sizes_seen = {}
   local vt = params.value_type
   local function value (v) return ffi.new(vt, v) end
   local function check_all ()
      t:selfcheck()
      assert(t.occupancy == n, ("occupancy %d, reference %d"):format(t.occupancy, n))
      local seen, count = {}, 0
      for entry in t:iterate() do
         local i = id(entry.key)
         assert(ref[i], ("iteration: key %d is not in the reference"):format(i))
         assert(not seen[i], ("iteration: key %d seen twice"):format(i))
         assert(tonumber(entry.value) == ref[i], "iteration: value")
         seen[i], count = true, count + 1
      end
      assert(count == n, ("iteration saw %d entries of %d"):format(count, n))
   end
   local copy = t.entry_type()
   for op = 1, ops do
      local i = math.random(0, 2047)
      local k, r = key(i), math.random()
      local present = ref[i] ~= nil
      if r < 0.45 then -- add (grows), or update where present
         local v = math.random(0, 1e9)
         if present then
            assert(not pcall(t.add, t, k, value(v)), "add of a present key must fail")
            t:update(k, value(v))
         else
            assert(not pcall(t.update, t, k, value(v)), "update of an absent key must fail")
            t:add(k, value(v))
            n = n + 1
         end
         ref[i] = v
      elseif r < 0.75 then
         assert(t:remove(k, true) == present, "remove's result")
         if present then n = n - 1 end
         ref[i] = nil
      elseif r < 0.8 then
         local entry = t:lookup_ptr(k)
         assert((entry ~= nil) == present, "lookup_ptr before remove_ptr")
         if entry then t:remove_ptr(entry); n = n - 1; ref[i] = nil end
      else
         local entry = t:lookup_ptr(k)
         assert((entry ~= nil) == present, ("lookup_ptr of key %d: found %s"):format(i, entry ~= nil))
         if entry then assert(tonumber(entry.value) == ref[i], "lookup_ptr's value") end
         assert(t:lookup_and_copy(k, copy) == present, "lookup_and_copy")
         if present then assert(tonumber(copy.value) == ref[i] and id(copy.key) == i) end
      end
      sizes_seen[t.size] = true
      -- Phases: mostly adds, then mostly removes, so the table grows and shrinks.
      if op % 5000 == 0 then check_all() end
   end
   check_all()
   return t, sizes_seen
end

-- Keys of a 4-byte scalar table whose hash under t's seed starts at one slot.
local function colliding_keys (t, count)
   local keys, target = {}, nil
   local i = 0
   while #keys < count do
      local s = index_of(t:hash_key(i), t.scale)
      target = target or s
      if s == target then keys[#keys + 1] = i end
      i = i + 1
   end
   return keys
end

function M.selftest ()
   print("selftest: lib.ctable")
   -- The hash: equal bytes hash alike, every size up to 40 bytes (each tail), and a difference in
   -- any byte changes it; it depends on the seed; it is below 2^30.
   for size = 1, 40 do
      local a, b = ffi.new("uint8_t[48]"), ffi.new("uint8_t[48]")
      for j = 0, 47 do a[j] = math.random(0, 255) end
      ffi.copy(b, a, 48)
      local h, h4 = hash_fn(size, 0), hash_fn(size, 4)
      local x = h(a, 1ULL, 2ULL)
      assert(x >= 0 and x < 2 ^ 30 and x == h(b, 1ULL, 2ULL) and x == h4(a - 4, 1ULL, 2ULL))
      assert(x ~= h(a, 1ULL, 3ULL) and x ~= h(a, 2ULL, 2ULL), "the hash depends on the seed")
      assert(diff_fn(size, 0, 0)(a, b) == 0 and diff_fn(size, 4, 0)(a - 4, b) == 0)
      for j = 0, size - 1 do
         b[j] = bxor(b[j], 0x10)
         assert(h(b, 1ULL, 2ULL) ~= x, ("size %d: byte %d does not change the hash"):format(size, j))
         assert(diff_fn(size, 0, 0)(a, b) ~= 0 and diff_fn(size, 4, 4)(a - 4, b - 4) ~= 0)
         b[j] = a[j]
      end
   end

   -- Random operations against a Lua table: scalar keys of 4 and 8 bytes, a 7-byte struct key (a
   -- word and a 3-byte tail), a 16-byte 5-tuple-sized key. The key space of 2,048 against min 0.1 and max 0.5
   -- occupancy from 4 slots: the table resizes up and down.
   local u32_t = ffi.typeof("uint32_t")
   local tuple_t = ffi.typeof("struct { uint32_t src, dst; uint16_t sport, dport; uint8_t proto, pad[3]; }")
   local small_t = ffi.typeof("struct { uint32_t a; uint16_t b; uint8_t c; } __attribute__((packed))")
   local cases = {
      {ffi.typeof("uint32_t"), function (i) return i end, tonumber},
      {ffi.typeof("uint64_t"), function (i) return 0x100000000ULL * i + 7 end,
       function (k) return tonumber((k - 7) / 0x100000000ULL) end},
      {small_t, function (i) return small_t(i * 7919, i % 3, band(i, 0xff)) end,
       function (k) return k.a / 7919 end},
      {tuple_t, function (i) return tuple_t(0x0a000000 + i, 0x0a000001, i % 100, 80, 6) end,
       function (k) return k.src - 0x0a000000 end},
   }
   for _, case in ipairs(cases) do
      local t, sizes = check_random_ops({key_type = case[1], value_type = ffi.typeof("int32_t"),
                                         initial_size = 4, max_occupancy_rate = 0.5,
                                         min_occupancy_rate = 0.1}, case[2], case[3], 40000)
      -- Then remove everything: the table shrinks back.
      local most = 4
      for size in pairs(sizes) do most = max(most, size) end
      local keys = {}
      for entry in t:iterate() do keys[#keys + 1] = case[2](case[3](entry.key)) end
      for _, k in ipairs(keys) do t:remove(k) end
      t:selfcheck()
      assert(t.occupancy == 0 and most >= 1024 and t.size <= 16,
             ("%s: grew to %d slots and shrank to %d"):format(tostring(case[1]), most, t.size))
   end

   -- Seeded hash: 200 keys that all start at one slot under seed 1, found by search. Under that
   -- seed with no displacement limit, the last one lies 199 slots from its start; under seed 2
   -- they spread; under seed 1 with a limit of 16, the table reseeds and stays within 16.
   local params = {key_type = ffi.typeof("uint32_t"), value_type = ffi.typeof("uint32_t"),
                   initial_size = 4096, hash_seed = 1, max_displacement_limit = math.huge}
   local t1 = M.new(params)
   local keys = colliding_keys(t1, 200)
   for _, k in ipairs(keys) do t1:add(k, k) end
   assert(t1:selfcheck() == 199 and t1.max_displacement == 199 and t1.reseeds == 0,
          ("seed 1: max displacement %d, expected 199"):format(t1.max_displacement))
   params.hash_seed = 2
   local t2 = M.new(params)
   for _, k in ipairs(keys) do t2:add(k, k) end
   assert(t2:selfcheck() <= 4, ("seed 2: max displacement %d"):format(t2.max_displacement))
   params.hash_seed, params.max_displacement_limit = 1, 16
   local t3 = M.new(params)
   local k0, k1 = t3.k0, t3.k1
   for _, k in ipairs(keys) do t3:add(k, k) end
   assert(t3.reseeds >= 1 and (t3.k0 ~= k0 or t3.k1 ~= k1) and t3.size == 4096)
   assert(t3:selfcheck() <= 16 and t3.max_displacement <= 16)
   for _, k in ipairs(keys) do
      assert(t1:lookup_ptr(k).value == k and t2:lookup_ptr(k).value == k and t3:lookup_ptr(k).value == k)
   end
   print(("seed 1: 200 colliding keys displace up to %d slots; seed 2: %d; seed 1, limit 16: %d"
          .. " after %d reseed(s)"):format(t1.max_displacement, t2.max_displacement,
                                          t3.max_displacement, t3.reseeds))

   -- Streaming lookups agree with lookup_ptr, half the keys present, for several widths, on a
   -- 16-byte key and a scalar one; a streamer made before the table grows works after.
   for _, kt in ipairs({tuple_t, ffi.typeof("uint32_t")}) do
      local key = kt == tuple_t and cases[4][2] or function (i) return i end
      local t = M.new({key_type = kt, value_type = ffi.typeof("uint32_t"), hash_seed = 7})
      local early = t:make_lookup_streamer(7)
      for i = 0, 9999, 2 do t:add(key(i), i * 3) end
      assert(t.size >= 5000 / 0.9, "the table grew")
      for _, width in ipairs({1, 2, 7, 32, 256}) do
         local s = width == 7 and early or t:make_lookup_streamer(width)
         for base = 0, 9999, width do
            for j = 0, width - 1 do s.entries[j].key = key(base + j) end
            s:stream()
            for j = 0, width - 1 do
               local p = t:lookup_ptr(key(base + j))
               local i = base + j
               assert(s:is_found(j) == (p ~= nil) and s:is_found(j) == (i % 2 == 0 and i < 10000))
               if p then assert(s.entries[j].value == p.value) end
            end
         end
      end
      -- A key of an array or struct type may be given as a pointer to its bytes.
      if kt == tuple_t then
         local bytes = ffi.new("uint8_t[16]")
         ffi.copy(bytes, key(4), 16)
         assert(t:lookup_ptr(bytes).value == 12)
         ffi.copy(bytes, key(10001), 16)
         t:add(bytes, 7)
         assert(t:lookup_ptr(key(10001)).value == 7 and t:remove(bytes) and not t:lookup_ptr(bytes))
      end
   end

   -- Lookups allocate nothing once compiled: 100,000 lookup_ptr hits, misses (each loop its own
   -- function, as each is its own trace) and streamed batches, with the collector stopped, grow
   -- the heap by less than 400 KB, 4 bytes a lookup (one cdata pointer a lookup would be 1.6 MB;
   -- interpreted, they took 80 MB; the trace exits around the batches of a streamer's rounds took
   -- up to 80 KB, a pointer or two a round, rebuilt on leaving a trace).
   do
      local pair_t = ffi.typeof("struct { uint32_t a, b; }")
      local t = M.new({key_type = tuple_t, value_type = pair_t, initial_size = 4096})
      for i = 0, 999 do t:add(cases[4][2](i), pair_t(i, 0)) end
      local tuples = ffi.new(ffi.typeof("$[2000]", tuple_t))
      for i = 0, 1999 do tuples[i] = cases[4][2](i) end
      local loop_src = [[
         local ffi, t, keys, s, width = ...
         return function (first, rounds)
            local t, keys, s, sum = t, keys, s, 0
            -- A struct assigned whole is NYI in a trace: keys go in by ffi.copy.
            local skeys = s and ffi.cast("uint8_t *", s.entries) + 4
            local esize = ffi.sizeof(t.entry_type)
            for r = 1, rounds do
               for i = first, first + 999 do
                  local e = t:lookup_ptr(keys + i)
                  if e then sum = sum + e.value.a end
               end
               if s then
                  for j = 0, width - 1 do
                     ffi.copy(skeys + j * esize, keys + first + (r + j) % 1000, 16)
                  end
                  s:stream()
                  for j = 0, width - 1 do
                     if s:is_found(j) then sum = sum + s.entries[j].value.a end
                  end
               end
            end
            return sum
         end]]
      local s = t:make_lookup_streamer(32)
      for _, case in ipairs({{"hits", 0, false}, {"misses", 1000, false}, {"streamed", 0, s}}) do
         local loop = assert(loadstring(loop_src, "=ctable-selftest-" .. case[1]))(ffi, t, tuples, case[3], 32)
         loop(case[2], 100)
         collectgarbage("collect")
         collectgarbage("stop")
         local before = collectgarbage("count")
         loop(case[2], 100)
         local grown = collectgarbage("count") - before
         collectgarbage("restart")
         assert(grown < 400, ("%s: 100,000 lookups allocated %.1f KB"):format(case[1], grown))
      end
   end

   -- Bad parameters: one line, in the user's terms.
   local function fails (p, pattern)
      local ok, err = pcall(M.new, p)
      assert(not ok and err:match(pattern) and not err:match("\n"),
             ("expected %q, got %s"):format(pattern, tostring(err)))
   end
   local u32 = u32_t
   fails({key_type = u32, value_type = u32, bogus = 1}, 'unknown parameter "bogus" %(known: hash_seed,')
   fails({key_type = u32}, "missing required parameter value_type")
   fails({key_type = {}, value_type = u32}, "key_type must be an FFI type")
   fails({key_type = "no_such_t", value_type = u32}, 'key_type "no_such_t" is not a C type')
   fails({key_type = u32, value_type = u32, max_occupancy_rate = 2}, "max_occupancy_rate must be a number from")
   fails({key_type = u32, value_type = u32, hash_seed = "short"}, "hash_seed must be")

   -- 1M random keys at the default max occupancy 0.9 (1.2M slots: 0.83): all found, the
   -- displacement within the default limit.
   local big = M.new({key_type = u32, value_type = u32, initial_size = 1.2e6})
   local seed = math.random(1, 2 ^ 30)
   math.randomseed(seed)
   for _ = 1, 1e6 do
      local k = math.random(0, 2 ^ 32 - 1)
      big:add(k, band(k, 0xffff), true)
   end
   math.randomseed(seed)
   for _ = 1, 1e6 do
      local k = math.random(0, 2 ^ 32 - 1)
      assert(big:lookup_ptr(k).value == band(k, 0xffff))
   end
   assert(big.size == 1.2e6 and big.occupancy > 0.999e6)
   print(("1M random keys, %d slots: max displacement %d, %d reseed(s)"):format(
      big.size, big.max_displacement, big.reseeds))
   print("selftest: ok")
end

return M

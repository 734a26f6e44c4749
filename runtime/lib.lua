-- core.lib: small helpers shared by apps and programs (config parsing, throttling, hexdumps).
local ffi = require("ffi")
local bit = require("bit")
require("core.cdefs")
-- libc functions, declared as libc declares them (a second declaration of a function, as
-- ljsyscall's, is accepted), and our cksum_generic (lib/c_helpers.h).
ffi.cdef[[
int memcmp(const void *s1, const void *s2, size_t n);
long readlink(const char *path, char *buf, size_t size);
int usleep(unsigned int usec);
unsigned int geteuid(void);
int execv(const char *path, char *const argv[]);
uint16_t cksum_generic(unsigned char *p, size_t n, uint16_t initial);
]]
-- Snabb's core.lib loads core.clib_h, and Snabb code counts on it: what core/clib.h declares
-- (htons, inet_pton, ...) is declared for any module once core.lib is loaded. Where no core.clib_h
-- exists (compiled in or on the path) there is nothing to load; any other error is raised.
do
   local ok, err = pcall(require, "core.clib_h")
   if not ok and not tostring(err):match("^module 'core.clib_h' not found") then error(err, 0) end
end
local C = ffi.C
local band, bor, bnot, lshift, rshift, bswap = bit.band, bit.bor, bit.bnot, bit.lshift, bit.rshift, bit.bswap

local M = {}

-- How a value looks in a message: strings quoted, tables shown by a few of their fields.
function M.describe (value)
   local t = type(value)
   if t == "string" then return ("%q"):format(value) end
   if t ~= "table" then return tostring(value) end
   local mt = getmetatable(value)
   if mt and mt.__tostring then return tostring(value) end
   local fields, n = {}, 0
   for k, v in pairs(value) do
      n = n + 1
      if n > 4 then fields[#fields+1] = "..."; break end
      local key = type(k) == "string" and k:match("^[%a_][%w_]*$") and k or "[" .. M.describe(k) .. "]"
      fields[#fields+1] = ("%s = %s"):format(key, type(v) == "table" and "{...}" or M.describe(v))
   end
   return "{" .. table.concat(fields, ", ") .. "}"
end

-- An xpcall handler that makes any error value a message: strings as they are; anything else
-- (error({}), error()) is described, after the file:line of the Lua code that raised it. `level`:
-- where the stack search for that code starts (default 2: the handler's caller).
function M.error_message (err, level)
   if type(err) == "string" then return err end
   local where = ""
   for l = level or 2, 20 do
      local info = debug.getinfo(l, "Sl")
      if not info then break end
      if info.currentline > 0 then where = ("%s:%d: "):format(info.short_src, info.currentline); break end
   end
   if err == nil then return where .. "error raised without a message (error() or error(nil))" end
   return ("%serror raised with a %s instead of a message: %s"):format(where, type(err), M.describe(err))
end

-- What a parameter spec allows, in words: "a whole number of bytes from 0 to 10240".
local function allowed (s)
   if s.allows then return s.allows end
   local kind = s.integer and "a whole number" or s.type == "number" and "a number" or
                s.type and ("a " .. s.type) or "anything"
   if s.unit then kind = kind .. " of " .. s.unit end
   if s.min and s.max then return ("%s from %s to %s"):format(kind, s.min, s.max) end
   if s.min then return ("%s of at least %s"):format(kind, s.min) end
   if s.max then return ("%s of at most %s"):format(kind, s.max) end
   return kind
end

-- Raises, as one line, why the last failing C call failed (runtime/error.h: the call returned its
-- failure value and snabb_error() says why), after "what: " when what is given. level as error()'s,
-- counted from c_error's caller (default 1: the caller's position; 0: the message alone).
function M.c_error (what, level)
   local message = ffi.string(ffi.C.snabb_error())
   if what then message = what .. ": " .. message end
   level = level or 1
   error(message, level > 0 and level + 1 or 0)
end

-- The value a parameter spec accepts for v (numbers may be given as numeric strings), or nil.
local function check (s, v)
   if s.check then return s.check(v) end
   if s.integer or s.type == "number" then
      v = tonumber(v)
      if not v or v ~= v or v == math.huge or v == -math.huge then return nil end
      if s.integer and v ~= math.floor(v) then return nil end
      if (s.min and v < s.min) or (s.max and v > s.max) then return nil end
      return v
   end
   if s.type and type(v) ~= s.type then return nil end
   return v
end

-- Parses an app's argument against a spec {key = {required=bool, default=value, ...}, ...}. A key
-- may also say what it allows: type = "string"|"boolean"|"number"|"table"|"function", integer =
-- true (a whole number), min, max, unit (for the message); numbers may be given as numeric
-- strings. A value no such field describes (Replay's rate) gives check = function (v) returning
-- the value to use or nil, and allows = what it allows, in words (allows also rewords the
-- others). positional = true: an argument that is not a table is this parameter's value (Snabb's
-- Source(60)). Unknown keys are refused. Errors name the parameter and what it allows; the engine
-- adds the config line and the app's name.
function M.parse (arg, spec)
   local result = {}
   if arg ~= nil and type(arg) ~= "table" then
      local positional
      for key, s in pairs(spec) do if s.positional then positional = key end end
      if not positional then
         error(next(spec) == nil and ("takes no parameters, got %s"):format(M.describe(arg))
               or ("expected a table of parameters, got %s"):format(M.describe(arg)), 2)
      end
      arg = {[positional] = arg}
   end
   arg = arg or {}
   for key in pairs(arg) do
      if spec[key] == nil then
         local known = {}
         for k in pairs(spec) do known[#known+1] = k end
         table.sort(known)
         error(("unknown parameter %s (known: %s)"):format(
            type(key) == "string" and "'" .. key .. "'" or "[" .. M.describe(key) .. "]",
            #known > 0 and table.concat(known, ", ") or "none"), 2)
      end
   end
   for key, s in pairs(spec) do
      local value = arg[key]
      if value == nil then
         if s.required then
            error(("missing required parameter '%s' (%s)"):format(key, allowed(s)), 2)
         end
         value = s.default
      else
         local checked = check(s, value)
         if checked == nil then
            error(("parameter '%s' must be %s, got %s"):format(key, allowed(s), M.describe(value)), 2)
         end
         value = checked
      end
      result[key] = value
   end
   return result
end

-- Structural equality (Snabb's lib.equal): plain values by ==, tables key by key (with the same
-- metatable, where Snabb refuses any table that has one), cdata of one ctype byte by byte. The
-- engine uses it to decide whether an app's config changed.
function M.equal (a, b)
   if rawequal(a, b) then return true end
   local t = type(a)
   if t ~= type(b) then return false end
   if t == "cdata" then
      if ffi.typeof(a) ~= ffi.typeof(b) then return false end
      local size = ffi.sizeof(a)
      if size == nil or size ~= ffi.sizeof(b) then return false end
      local ok, order = pcall(ffi.C.memcmp, a, b, size) -- structs and arrays; scalars below
      if ok then return order == 0 end
      return a == b
   end
   if t ~= "table" then return a == b end
   if getmetatable(a) ~= getmetatable(b) then return false end
   for k, v in pairs(a) do
      if not M.equal(v, b[k]) then return false end
   end
   for k in pairs(b) do
      if a[k] == nil then return false end
   end
   return true
end

-- Returns a function that answers true at most once per `seconds` (clock: engine time by default).
function M.throttle (seconds, clock)
   clock = clock or require("snabb.runtime").now
   local deadline = clock()
   return function ()
      local now = clock()
      if now >= deadline then
         deadline = now + seconds
         return true
      end
      return false
   end
end

-- The median of a list of numbers (the list is left as it is): what every benchmark program
-- prints of its alternating runs.
function M.median (list)
   local s = {}
   for i, v in ipairs(list) do s[i] = v end
   table.sort(s)
   local n = #s
   return n % 2 == 1 and s[(n + 1) / 2] or (s[n / 2] + s[n / 2 + 1]) / 2
end

-- A text table whose columns are as wide as their widest cell (header included), two spaces
-- apart: rows are lists of cells (strings or numbers, written with tostring); `right` says which
-- columns (by index) are right-aligned, as numbers are. Widths count UTF-8 characters, not bytes.
function M.table_text (header, rows, right)
   right = right or {}
   local width = {}
   local function measure (row)
      for i, cell in ipairs(row) do
         local n = #tostring(cell):gsub("[\128-\191]", "")
         width[i] = math.max(width[i] or 0, n)
      end
   end
   measure(header)
   for _, row in ipairs(rows) do measure(row) end
   local lines = {}
   local function line (row)
      local cells = {}
      for i, cell in ipairs(row) do
         local s = tostring(cell)
         local pad = (" "):rep(width[i] - #s:gsub("[\128-\191]", ""))
         cells[i] = right[i] and pad .. s or (i < #row and s .. pad or s)
      end
      lines[#lines+1] = table.concat(cells, "  ")
   end
   line(header)
   for _, row in ipairs(rows) do line(row) end
   return table.concat(lines, "\n") .. "\n"
end

---- Snabb's core.lib API (Snabb's src/README.md, "Lib"), as Snabb code calls it. Where we differ
---- on purpose the comment says so (runtime/README.md lists the differences).

-- Files and commands.

function M.can_open (filename, mode)
   local f = io.open(filename, mode or "r")
   if not f then return false end
   f:close()
   return true
end
function M.can_read (filename) return M.can_open(filename, "r") end
function M.can_write (filename) return M.can_open(filename, "w") end

-- `what` is file:read's argument; without it, the whole output (Snabb needs one).
function M.readcmd (command, what)
   local f = assert(io.popen(command))
   local value = f:read(what or "*a")
   f:close()
   return value
end

function M.readfile (filename, what)
   local f, err = io.open(filename, "r")
   if not f then error("Unable to open file: " .. err, 2) end
   local value = f:read(what or "*a")
   f:close()
   return value
end

-- Returns what file:write returns (the file, true), after closing it.
function M.writefile (filename, value)
   local f, err = io.open(filename, "w")
   if not f then error("Unable to open file: " .. err, 2) end
   local result = f:write(value)
   return f:close() and result
end

-- The target of a symbolic link, or nil and errno.
function M.readlink (path)
   local buf = ffi.new("char[?]", 4096)
   local n = tonumber(C.readlink(path, buf, 4096))
   if n < 0 then return nil, ffi.errno() end
   return ffi.string(buf, n)
end

-- dirname(3) and basename(3) as POSIX defines them ("/a/b/" -> "/a" and "b"; "b" -> "." and "b").
function M.dirname (path)
   if not path then return nil end
   local trimmed = path:gsub("/+$", "")
   if trimmed == "" then return path:match("^/") and "/" or "." end
   local parent = trimmed:match("^(.*)/[^/]*$")
   if not parent then return "." end
   parent = parent:gsub("/+$", "")
   return parent == "" and "/" or parent
end

function M.basename (path)
   if not path then return nil end
   if path == "" then return "." end
   local trimmed = path:gsub("/+$", "")
   if trimmed == "" then return "/" end
   return trimmed:match("([^/]*)$")
end

local function shell_quote (s) return "'" .. s:gsub("'", [['\'']]) .. "'" end

-- The names in a directory (not . and ..), sorted as ls sorts them; an empty list when it is not
-- there.
function M.files_in_directory (dir)
   local names = {}
   for name in M.readcmd("ls -1 -- " .. shell_quote(dir) .. " 2>/dev/null"):gmatch("[^\n]+") do
      names[#names+1] = name
   end
   return names
end

-- The first of them, or nil.
function M.firstfile (dir) return M.files_in_directory(dir)[1] end

function M.firstline (filename) return M.readfile(filename, "*l") end

-- The value of the Lua expression in a string; a syntax error is raised with the text.
function M.load_string (text)
   local chunk, err = loadstring("return " .. text)
   if not chunk then error(("not a Lua expression: %s"):format(err), 2) end
   return chunk()
end

function M.load_conf (filename) return dofile(filename) end

-- Writes a value as a Lua expression (tables with the keys sorted, so the text is the same from
-- one run to the next; keys that are not names are written [key] so the text loads back).
function M.print_object (value, stream)
   stream = stream or io.stdout
   local function key_text (k)
      if type(k) == "string" and k:match("^[%a_][%w_]*$") then return k end
      return "[" .. (type(k) == "string" and ("%q"):format(k) or tostring(k)) .. "]"
   end
   local function write (v, indent)
      if type(v) == "string" then
         stream:write(("%q"):format(v))
      elseif type(v) ~= "table" then
         stream:write(tostring(v))
      else
         stream:write("{\n")
         local inner = indent .. "  "
         if #v > 0 then
            for _, item in ipairs(v) do
               stream:write(inner); write(item, inner); stream:write(",\n")
            end
         else
            local keys = {}
            for k in pairs(v) do keys[#keys+1] = k end
            table.sort(keys, function (x, y) return tostring(x) < tostring(y) end)
            for _, k in ipairs(keys) do
               stream:write(inner, key_text(k), " = "); write(v[k], inner); stream:write(",\n")
            end
         end
         stream:write(indent, "}")
      end
   end
   write(value, "")
   stream:write("\n")
end

function M.store_conf (filename, value)
   local f = assert(io.open(filename, "w"))
   f:write("return ")
   M.print_object(value, f)
   f:close()
end

-- Bits.

-- The bits numbered by bitset's values (its keys are names for the reader), or'ed into basevalue.
function M.bits (bitset, basevalue)
   local value = basevalue or 0
   for _, n in pairs(bitset) do value = bor(value, lshift(1, n)) end
   return value
end

function M.bitset (value, n) return band(value, lshift(1, n)) ~= 0 end

-- Byte order: unsigned results, as C's.
if ffi.abi("le") then
   function M.htonl (n) return (tonumber(ffi.cast("uint32_t", bswap(n)))) end
   function M.htons (n) return (rshift(bswap(n), 16)) end
   function M.htonq (n) return (bswap(ffi.cast("uint64_t", n))) end
else
   function M.htonl (n) return (tonumber(ffi.cast("uint32_t", n))) end
   function M.htons (n) return (band(n, 0xffff)) end
   function M.htonq (n) return (ffi.cast("uint64_t", n)) end
end
M.ntohl, M.ntohs, M.ntohq = M.htonl, M.htons, M.htonq

local network_order = {[16] = M.ntohs, [32] = M.ntohl}

-- Reads (value nil) or sets the nbits bits that start `offset` bits from the top of the `size`-bit
-- integer struct[member], which is in network byte order when size is 16 or 32.
function M.bitfield (size, struct, member, offset, nbits, value)
   local convert = network_order[size]
   local field = struct[member]
   if convert then field = convert(field) end
   local shift = size - offset - nbits
   local mask = lshift(2^nbits - 1, shift)
   if value == nil then return rshift(band(field, mask), shift) end
   field = bor(band(field, bnot(mask)), band(lshift(value, shift), mask))
   struct[member] = convert and convert(field) or field
end

-- Strings.

-- An iterator over the pieces of a string between matches of `pattern` (string.gmatch's):
-- each step gives the piece and the separator's captures (or the separator itself), the last
-- piece alone. Snabb adds it to strings: ("a!b"):split("(!)").
local function split (text, pattern)
   local start, separators = 1, text:gmatch("()(" .. pattern .. ")")
   local function piece (from, at, separator, capture, ...)
      start = at and at + #separator
      return text:sub(from, (at or 0) - 1), capture or separator, ...
   end
   return function () if start then return piece(start, separators()) end end, text
end
string.split = split -- luacheck: ignore 142 (Snabb's string method)
M.split = split

-- "00 1F FF": the bytes of a string (or `length` bytes at a pointer) in hex, a space apart.
function M.hexdump (data, length)
   if type(data) == "string" then
      if #data == 0 then return "" end
      return (("%02X "):rep(#data - 1) .. "%02X"):format(data:byte(1, #data))
   end
   local bytes, parts = ffi.cast("const uint8_t *", data), {}
   for i = 0, length - 1 do parts[i+1] = ("%02X"):format(bytes[i]) end
   return table.concat(parts, " ")
end

-- The n bytes written as hex pairs in hexstring (blanks between them are skipped); too few raise
-- `err` (or a message saying how many), unless err is false. n defaults to all the pairs.
function M.hexundump (hexstring, n, err)
   local bytes = {}
   for pair in hexstring:gmatch("%s*(%x%x)") do
      if n and #bytes >= n then break end
      bytes[#bytes+1] = tonumber(pair, 16)
   end
   n = n or #bytes
   if #bytes < n then
      if err ~= false then error(err or ("Wanted %d bytes, but only got %d"):format(n, #bytes), 2) end
      for i = #bytes + 1, n do bytes[i] = 0 end
   end
   return string.char(unpack(bytes))
end

-- 1234567 -> "1,234,567"; fractions keep their digits ("1,234.5"), 64-bit cdata counters all theirs.
function M.comma_value (n)
   local text
   if type(n) == "cdata" then
      text = tostring(n):gsub("U?LL$", "")
   else
      n = tonumber(n)
      if n ~= n then return "NaN" end
      text = (n == math.floor(n) and math.abs(n) < 2^63) and ("%d"):format(n) or tostring(n)
   end
   local sign, digits, rest = text:match("^(-?)(%d+)(.*)$")
   if not digits then return text end
   return sign .. digits:reverse():gsub("(%d%d%d)", "%1,"):reverse():gsub("^,", "") .. rest
end

function M.yesno (flag) return flag and "yes" or "no" end

-- The smallest multiple of size that is at least value.
function M.align (value, size)
   local over = value % size
   return over == 0 and value or value + size - over
end

-- Random numbers.

-- Random bytes as a uint8_t[count] (an array of that fixed size: Snabb code assigns them to
-- uint8_t[6] MAC address fields).
function M.random_bytes_from_dev_urandom (count)
   local f = assert(io.open("/dev/urandom", "rb"))
   local data = f:read(count)
   f:close()
   assert(data and #data == count, "short read from /dev/urandom")
   local bytes = ffi.new(ffi.typeof("uint8_t[$]", count))
   ffi.copy(bytes, data, count)
   return bytes
end

function M.random_bytes_from_math_random (count)
   local bytes = ffi.new(ffi.typeof("uint8_t[$]", count))
   for i = 0, count - 1 do bytes[i] = math.random(0, 255) end
   return bytes
end

M.random_bytes = M.random_bytes_from_dev_urandom

-- A seed (SNABB_RANDOM_SEED at start-up) makes math.random and random_bytes deterministic, and
-- says so on stderr; without one both come from /dev/urandom. Returns the seed used.
function M.randomseed (seed)
   seed = tonumber(seed)
   if seed then
      io.stderr:write(("Using deterministic random numbers, SNABB_RANDOM_SEED=%d.\n"):format(seed))
      M.random_bytes = M.random_bytes_from_math_random
   else
      seed = ffi.cast("uint32_t *", M.random_bytes_from_dev_urandom(4))[0]
      M.random_bytes = M.random_bytes_from_dev_urandom
   end
   math.randomseed(seed)
   return seed
end

function M.random_data (length) return ffi.string(M.random_bytes(length), length) end

-- A string of [a-zA-Z0-9_-] carrying `entropy` random bits (6 a character; default 160).
local alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"
function M.random_printable_string (entropy)
   local length = math.floor(((entropy or 160) - 1) / 6) + 1
   local bytes, chars = M.random_bytes(length), {}
   for i = 0, length - 1 do
      local k = bytes[i] % 64 + 1
      chars[i+1] = alphabet:sub(k, k)
   end
   return table.concat(chars)
end

-- Memory.

-- A table-like view of `size` elements of ctype at base + offset bytes that refuses indexes
-- outside [0, size).
function M.bounds_checked (ctype, base, offset, size)
   local pointer_t = ffi.typeof("$ *", ffi.typeof(ctype))
   local function in_bounds (i)
      if not (i >= 0 and i < size) then error(("index %s out of bounds [0, %d)"):format(i, size), 3) end
   end
   local view = ffi.metatype(ffi.typeof("struct { $ _ptr; }", pointer_t), {
      __index = function (w, i) in_bounds(i); return w._ptr[i] end,
      __newindex = function (w, i, v) in_bounds(i); w._ptr[i] = v end,
   })
   return view(ffi.cast(pointer_t, ffi.cast("uint8_t *", base) + offset))
end

-- DMA memory for a ctype (core.memory's dma_alloc).
function M.malloc (etype)
   if type(etype) == "string" then etype = ffi.typeof(etype) end
   local mem = require("core.memory").dma_alloc(ffi.sizeof(etype))
   return ffi.cast(ffi.typeof("$ *", etype), mem)
end

-- A copy of tables (keys and values, cycles kept; metatables shared, where Snabb copies them too)
-- and of cdata objects (a new object with the same bytes; pointers are copied as pointers).
function M.deepcopy (object, seen)
   local t = type(object)
   if t == "cdata" then
      local ct = ffi.typeof(object)
      local ok, copy = pcall(ffi.new, ct, object) -- structs, scalars, pointers
      if ok then return copy end
      local size = ffi.sizeof(object)
      ok, copy = pcall(ffi.new, ct) -- fixed-size arrays
      if not ok then -- variable-size: as many elements as the object has
         local fixed = ffi.sizeof(ct, 0)
         copy = ffi.new(ct, (size - fixed) / (ffi.sizeof(ct, 1) - fixed))
      end
      ffi.copy(copy, object, size)
      return copy
   end
   if t ~= "table" then return object end
   seen = seen or {}
   if seen[object] then return seen[object] end
   local copy = {}
   seen[object] = copy
   for k, v in next, object do copy[M.deepcopy(k, seen)] = M.deepcopy(v, seen) end
   return setmetatable(copy, getmetatable(object))
end

-- A copy of the array part 1..#array.
function M.array_copy (array)
   local copy = {}
   for i = 1, #array do copy[i] = array[i] end
   return copy
end

-- The IP checksum of length bytes at pointer (RFC 1071, lib/checksum.cc): csum, or in pieces,
-- update_csum (a running sum; pieces of even length but the last) and finish_csum.
function M.csum (pointer, length)
   return C.cksum_generic(ffi.cast("unsigned char *", pointer), length, 0)
end

function M.update_csum (pointer, length, sum)
   local piece = band(bnot(C.cksum_generic(ffi.cast("unsigned char *", pointer), length, 0)), 0xffff)
   return tonumber(sum or 0) + piece
end

function M.finish_csum (sum)
   sum = tonumber(sum)
   while sum > 0xffff do sum = band(sum, 0xffff) + math.floor(sum / 0x10000) end
   return band(bnot(sum), 0xffff)
end

function M.compiler_barrier () C.snabb_rdtsc() end -- no load or store moves across an FFI call

-- Time.

-- A function that answers true once `seconds` have passed since timeout() (clock: as throttle's).
function M.timeout (seconds, clock)
   clock = clock or require("snabb.runtime").now
   local deadline = clock() + seconds
   return function () return clock() > deadline end
end

-- Blocks until condition() is true, polling every 100 µs.
function M.waitfor (condition)
   while not condition() do C.usleep(100) end
end

-- Calls condition() up to `attempts` times, `interval` MICROseconds apart (as Snabb's code does
-- and its callers assume; Snabb's README says milliseconds), showing dots; raises "timeout waiting
-- for NAME" when it never holds.
function M.waitfor2 (name, condition, attempts, interval)
   io.write("Waiting for " .. name .. ".")
   for _ = 1, attempts do
      if condition() then io.write(" ok\n"); return end
      C.usleep(interval)
      io.write(".")
      io.flush()
   end
   io.write("\n")
   error("timeout waiting for " .. name, 2)
end

-- The process.

-- The value of an environment variable, nil when it is unset or empty.
function M.getenv (name)
   local value = os.getenv(name)
   if value == "" then return nil end
   return value
end

-- Exits (status 1) with `message` unless the process runs as root.
function M.root_check (message)
   if C.geteuid() ~= 0 then
      print(message or "error: must run as root")
      local ok, main = pcall(require, "core.main")
      if ok and type(main) == "table" and main.exit then main.exit(1) end
      os.exit(1)
   end
end

-- Replaces the process with the program at path (argv: its arguments, argv[0] first; the
-- environment is kept). Returns nil and errno when it cannot.
function M.execv (path, argv)
   argv = argv or {}
   local args = ffi.new("char *[?]", #argv + 1)
   local keep = {}
   for i, a in ipairs(argv) do
      keep[i] = ffi.new("char[?]", #a + 1, a)
      args[i-1] = keep[i]
   end
   C.execv(path, args)
   return nil, ffi.errno()
end

-- Whether a module can be required (found by a loader; it is not run).
function M.have_module (name)
   if package.loaded[name] then return true end
   for _, searcher in ipairs(package.loaders) do
      local loader = searcher(name)
      if type(loader) == "function" then
         package.preload[name] = loader
         return true
      end
   end
   return false
end

-- Whether a kernel network interface has this name (/proc/net/dev).
function M.is_iface (name)
   local f = io.open("/proc/net/dev")
   if not f then return false end
   for line in f:lines() do
      if line:match("^%s*([^%s:]+):") == name then f:close(); return true end
   end
   f:close()
   return false
end

-- Options: getopt(3)'s short options ("hv:": v takes an argument) and long ones ({help = "h"}: an
-- alias of -h; {seed = 1}: --seed takes an argument, {dry = 0}: --dry takes none, and their
-- actions are named by the long name). Each option found calls actions[option](its argument or
-- nil), in the order given; returns the arguments after the options ("--" or "-" or the first
-- argument that is not an option ends them).
function M.dogetopt (args, actions, short, long)
   long = long or {}
   local function takes_argument (option) return short:match(option:gsub("%p", "%%%0") .. ":") ~= nil end
   local function call (option, value)
      if not actions[option] then error("unimplemented option: " .. option, 3) end
      actions[option](value)
   end
   local i = 1
   while i <= #args do
      local a = args[i]
      if a == "--" then i = i + 1; break end
      local name, value = a:match("^%-%-([^=]+)=?(.*)$")
      if name then
         local option, needs = long[name]
         if option == nil then error("unrecognized option '--" .. name .. "'", 2) end
         if type(option) == "number" then
            option, needs = name, option == 1
         else
            needs = takes_argument(option)
         end
         if needs then
            if not a:find("=") then i = i + 1; value = args[i] end
            if value == nil then error("option '--" .. name .. "' requires an argument", 2) end
            call(option, value)
         else
            call(option, nil)
         end
      elseif a:match("^%-.") then
         local j = 2
         while j <= #a do
            local option = a:sub(j, j)
            if not short:find(option, 1, true) or option == ":" then
               error("invalid option -- '" .. option .. "'", 2)
            end
            if takes_argument(option) then
               value = a:sub(j + 1)
               if value == "" then i = i + 1; value = args[i] end
               if value == nil then error("option requires an argument -- '" .. option .. "'", 2) end
               call(option, value)
               break
            end
            call(option, nil)
            j = j + 1
         end
      else
         break
      end
      i = i + 1
   end
   local rest = {}
   for k = i, #args do rest[#rest+1] = args[k] end
   return rest
end

-- A set of the arguments: set("a", "b").a == true.
function M.set (...)
   local s = {}
   for _, v in pairs({...}) do s[v] = true end
   return s
end

-- One check (at least) per function of Snabb's API, against values worked out by hand.
local function selftest_snabb_api ()
   local dir = os.tmpname()
   os.remove(dir)
   assert(os.execute("mkdir -p " .. dir)) -- (Lua 5.2's results: LUA52COMPAT)
   local file = dir .. "/b.txt"
   -- Files.
   assert(M.writefile(file, "first\nsecond\n"))
   assert(M.readfile(file, "*a") == "first\nsecond\n" and M.readfile(file) == "first\nsecond\n")
   assert(M.firstline(file) == "first" and M.readfile(file, "*n") == nil)
   assert(M.can_read(file) and M.can_write(file) and M.can_open(file, "r"))
   assert(not M.can_read(dir .. "/none") and not M.can_open(dir .. "/none/x", "w"))
   local ok, err = pcall(M.readfile, dir .. "/none")
   assert(not ok and err:match("Unable to open file: .*/none: No such file or directory"), err)
   assert(M.readcmd("echo one; echo two", "*l") == "one" and M.readcmd("printf x") == "x")
   M.writefile(dir .. "/a.txt", "")
   assert(M.firstfile(dir) == "a.txt" and M.firstfile(dir .. "/none") == nil)
   assert(M.equal(M.files_in_directory(dir), {"a.txt", "b.txt"}))
   assert(os.execute("ln -s b.txt " .. dir .. "/link"))
   assert(M.readlink(dir .. "/link") == "b.txt" and M.readlink(file) == nil)
   for path, expect in pairs({["/usr/lib"] = {"/usr", "lib"}, ["/usr/"] = {"/", "usr"},
                              ["usr"] = {".", "usr"}, ["/"] = {"/", "/"}, ["a/b//c//"] = {"a/b", "c"},
                              [""] = {".", "."}, ["//x"] = {"/", "x"}}) do
      assert(M.dirname(path) == expect[1] and M.basename(path) == expect[2], path)
   end
   assert(M.load_string("{a = 1, 2}")[1] == 2 and M.load_string("'x' .. 1") == "x1")
   ok, err = pcall(M.load_string, "{")
   assert(not ok and err:match("not a Lua expression"), err)
   local conf = {name = "x", list = {1, "two", {deep = true}}, ["not a name"] = 5, [7] = false}
   M.store_conf(dir .. "/conf", conf)
   assert(M.equal(M.load_conf(dir .. "/conf"), conf))
   assert(M.readfile(dir .. "/conf") == 'return {\n  [7] = false,\n  list = {\n    1,\n    "two",\n' ..
          '    {\n      deep = true,\n    },\n  },\n  name = "x",\n  ["not a name"] = 5,\n}\n',
          M.readfile(dir .. "/conf"))
   assert(os.execute("rm -r " .. dir))
   -- Bits and byte order.
   assert(M.bits({RESET = 0, ENABLE = 4}, 0x100) == 0x111 and M.bits({}) == 0)
   assert(M.bitset(0x10, 4) and not M.bitset(0x10, 3))
   assert(M.htons(0x1234) == 0x3412 and M.ntohs(0x3412) == 0x1234 and M.htons(0xff00) == 0xff)
   assert(M.htonl(0x12345678) == 0x78563412 and M.htonl(0x000000ff) == 0xff000000)
   assert(M.ntohl(M.htonl(0xdeadbeef)) == 0xdeadbeef and M.htonl(0xdeadbeef) > 0)
   assert(M.htonq(0x0102030405060708ULL) == 0x0807060504030201ULL)
   local s = ffi.new("struct { uint8_t b; uint16_t flags; uint32_t word; }")
   M.bitfield(16, s, "flags", 4, 4, 0xf)
   assert(s.flags == M.htons(0x0f00) and M.bitfield(16, s, "flags", 4, 4) == 0xf)
   assert(M.bitfield(16, s, "flags", 0, 4) == 0 and M.bitfield(16, s, "flags", 6, 4) == 0xc)
   M.bitfield(8, s, "b", 0, 4, 6) -- the high nibble (an IPv6 version field)
   assert(s.b == 0x60 and M.bitfield(8, s, "b", 0, 4) == 6)
   M.bitfield(32, s, "word", 12, 20, 0xabcde) -- an IPv6 flow label
   assert(M.ntohl(s.word) == 0xabcde and M.bitfield(32, s, "word", 0, 12) == 0)
   -- Strings.
   local pieces = {}
   for piece, separator in ("foo!bar!baz"):split("(!)") do pieces[#pieces+1] = {piece, separator} end
   assert(M.equal(pieces, {{"foo", "!"}, {"bar", "!"}, {"baz"}}))
   pieces = {}
   for piece in ("a::b:"):split(":") do pieces[#pieces+1] = piece end
   assert(M.equal(pieces, {"a", "", "b", ""}))
   local next_piece, text = ("x,y"):split(",") -- as lib.ipc.shmem calls it
   assert(next_piece(text) == "x" and next_piece(text) == "y" and next_piece(text) == nil)
   assert(M.hexdump("\0\1\255") == "00 01 FF" and M.hexdump("") == "")
   assert(M.hexdump(ffi.new("uint8_t[2]", 0xab, 0x1), 2) == "AB 01")
   assert(M.hexundump("00 01 ff", 3) == "\0\1\255" and M.hexundump("0A0b\n0c", 2) == "\10\11")
   ok, err = pcall(M.hexundump, "00 01", 3)
   assert(not ok and err:match("Wanted 3 bytes, but only got 2"), err)
   assert(select(2, pcall(M.hexundump, "00", 2, "short")):match("short$"))
   assert(M.hexundump("01", 3, false) == "\1\0\0" and M.hexundump("0102") == "\1\2")
   assert(M.comma_value(1000000) == "1,000,000" and M.comma_value(-1234) == "-1,234")
   assert(M.comma_value(999) == "999" and M.comma_value(1234.5) == "1,234.5")
   assert(M.comma_value(2^60) == "1,152,921,504,606,846,976" and M.comma_value(0/0) == "NaN")
   assert(M.comma_value(ffi.new("uint64_t", 18446744073709551615ULL)) == "18,446,744,073,709,551,615")
   assert(M.comma_value(-5LL) == "-5")
   assert(M.yesno(1) == "yes" and M.yesno(false) == "no" and M.yesno(nil) == "no")
   assert(M.align(0, 8) == 0 and M.align(1, 8) == 8 and M.align(16, 8) == 16 and M.align(17, 64) == 64)
   -- Random numbers: a seed repeats them, /dev/urandom does not.
   local seed = M.randomseed(42)
   assert(seed == 42 and M.random_bytes == M.random_bytes_from_math_random)
   local first = M.random_data(16)
   M.randomseed(42)
   assert(M.random_data(16) == first and #first == 16)
   assert(M.randomseed() and M.random_bytes == M.random_bytes_from_dev_urandom)
   assert(M.random_data(16) ~= M.random_data(16))
   assert(ffi.sizeof(M.random_bytes_from_dev_urandom(5)) == 5)
   local mac = ffi.new("struct { uint8_t addr[6]; }")
   mac.addr = M.random_bytes(6) -- as apps.ipv4.arp makes its MAC address
   mac.addr = M.random_bytes_from_math_random(6)
   local name = M.random_printable_string(160)
   assert(#name == 27 and name:match("^[%w_-]+$") and #M.random_printable_string(6) == 1)
   -- Memory.
   local array = ffi.new("uint32_t[8]")
   local view = M.bounds_checked("uint32_t", array, 8, 4)
   view[3] = 7
   assert(array[5] == 7 and view[3] == 7)
   assert(not pcall(function () return view[4] end) and not pcall(function () view[-1] = 1 end))
   local original = {a = {1, 2, {3}}, [{}] = "key"}
   original.self = original
   local copy = M.deepcopy(original)
   assert(copy ~= original and copy.a ~= original.a and copy.a[3][1] == 3 and copy.self == copy)
   assert(getmetatable(M.deepcopy(setmetatable({}, M))) == M)
   local point = ffi.new("struct { int x, y; }", 1, 2)
   local point2 = M.deepcopy(point)
   point2.y = 5
   assert(point.y == 2 and point2.x == 1 and M.equal(M.deepcopy(point), point))
   local vla = ffi.new("uint8_t[?]", 3, {1, 2, 3})
   local vla2 = M.deepcopy(vla)
   vla2[0] = 9
   assert(vla[0] == 1 and vla2[2] == 3 and ffi.sizeof(vla2) == 3)
   assert(M.deepcopy(array)[5] == 7 and M.deepcopy(5ULL) == 5ULL)
   local has_memory, memory = pcall(require, "core.memory")
   if has_memory and type(memory) == "table" and memory.dma_alloc then -- (core.memory's own module)
      local block = M.malloc("struct { uint32_t a[4]; }")
      block.a[3] = 0xdeadbeef
      assert(ffi.cast("uint32_t *", block)[3] == 0xdeadbeef)
   end
   local list = {1, 2, 3}
   assert(M.array_copy(list) ~= list and M.equal(M.array_copy(list), list))
   -- Equality of cdata: same type and bytes.
   assert(M.equal(ffi.new("uint8_t[2]", 1, 2), ffi.new("uint8_t[2]", 1, 2)))
   assert(not M.equal(ffi.new("uint8_t[2]", 1, 2), ffi.new("uint8_t[2]", 1, 3)))
   assert(not M.equal(ffi.new("uint8_t[2]"), ffi.new("int8_t[2]")) and M.equal(3ULL, 3ULL))
   assert(not M.equal(setmetatable({}, {}), setmetatable({}, {})))
   -- Checksums: an IPv4 header (RFC 1071's example sums are in lib/c_helpers_test.cc).
   local header = M.hexundump("45 00 00 73 00 00 40 00 40 11 00 00 c0 a8 00 01 c0 a8 00 c7", 20)
   assert(M.csum(header, 20) == 0xb861)
   local sum = M.update_csum(header, 10)
   sum = M.update_csum(ffi.cast("const char *", header) + 10, 10, sum)
   assert(M.finish_csum(sum) == 0xb861 and M.finish_csum(0x1fffe) == 0)
   assert(M.csum("\1", 1) == 0xfeff) -- an odd byte counts as the high byte of its word
   M.compiler_barrier()
   -- Time.
   local t = 0
   local clock = function () return t end
   local expired = M.timeout(1, clock)
   assert(not expired())
   t = 1.5
   assert(expired())
   local calls = 0
   M.waitfor(function () calls = calls + 1; return calls == 3 end)
   assert(calls == 3)
   calls = 0
   local out = io.output()
   io.output("/dev/null")
   M.waitfor2("x", function () calls = calls + 1; return calls == 2 end, 5, 1)
   ok, err = pcall(M.waitfor2, "nothing", function () return false end, 2, 1)
   io.output(out)
   assert(calls == 2 and not ok and err:match("timeout waiting for nothing"), err)
   -- The process.
   assert(M.getenv("HOME") == os.getenv("HOME") and M.getenv("SNABB_LIB_UNSET_VARIABLE") == nil)
   assert(M.have_module("core.lib") and M.have_module("lib.lua.class") and not M.have_module("no.such"))
   assert(M.is_iface("lo") and not M.is_iface("no-such-if"))
   assert(M.execv("/nonexistent/program", {"x"}) == nil)
   if C.geteuid() == 0 then M.root_check() end -- returns (its exit is for users other than root)
   local seen = {}
   local function note (option) return function (a) seen[#seen+1] = option .. (a or "") end end
   local actions = {v = note("v"), n = note("n"), s = note("s"), a = note("a"), b = note("b"),
                    name = note("name"), dry = note("dry")}
   local rest = M.dogetopt({"-v", "-n5", "--size", "64", "--name=x", "-ab", "--dry", "file", "-z"},
                           actions, "vn:s:ab", {size = "s", name = 1, dry = 0})
   assert(M.equal(seen, {"v", "n5", "s64", "namex", "a", "b", "dry"}) and M.equal(rest, {"file", "-z"}))
   ok, err = pcall(M.dogetopt, {"-q"}, {}, "v", {})
   assert(not ok and err:match("invalid option %-%- 'q'"), err)
   ok, err = pcall(M.dogetopt, {"-n"}, {n = print}, "n:", {})
   assert(not ok and err:match("requires an argument"), err)
   assert(M.set("foo", "bar").foo == true and M.set("foo").quax == nil)
end

function M.selftest ()
   print("selftest: core.lib")
   local conf = M.parse({size = 64}, {size = {default = 60}, name = {default = "x"}})
   assert(conf.size == 64 and conf.name == "x")
   local ok, err = pcall(M.parse, {sise = 64}, {size = {default = 60}})
   assert(not ok and err:match("unknown parameter 'sise' %(known: size%)"), err)
   ok, err = pcall(M.parse, {}, {name = {required = true}})
   assert(not ok and err:match("missing required parameter 'name'"), err)
   -- Typed parameters: the message names the parameter, what it allows and what it got.
   local size = {size = {default = 60, integer = true, min = 0, max = 100, unit = "bytes", positional = true}}
   assert(M.parse(nil, size).size == 60 and M.parse({}, size).size == 60)
   assert(M.parse(64, size).size == 64 and M.parse("64", size).size == 64)
   for _, bad in ipairs({"huge", -1, 101, 1.5, 0/0, math.huge, {}, true}) do
      ok, err = pcall(M.parse, {size = bad}, size)
      assert(not ok and err:match("^parameter 'size' must be a whole number of bytes from 0 to 100, got "), err)
   end
   err = select(2, pcall(M.parse, {size = "huge"}, size))
   assert(err == [[parameter 'size' must be a whole number of bytes from 0 to 100, got "huge"]], err)
   err = select(2, pcall(M.parse, {name = 5}, {name = {type = "string"}}))
   assert(err == "parameter 'name' must be a string, got 5", err)
   local even = {n = {check = function (v) return v % 2 == 0 and v or nil end, allows = "an even number"}}
   assert(M.parse({n = 4}, even).n == 4)
   err = select(2, pcall(M.parse, {n = 3}, even))
   assert(err == "parameter 'n' must be an even number, got 3", err)
   err = select(2, pcall(M.parse, "x", {}))
   assert(err == [[takes no parameters, got "x"]], err)
   err = select(2, pcall(M.parse, {1}, {}))
   assert(err == "unknown parameter [1] (known: none)", err)
   assert(M.describe({code = 5}) == "{code = 5}" and M.describe(nil) == "nil", M.describe({code = 5}))
   -- Error values that are not messages: described, with the line that raised them.
   local function raise (e) error(e) end
   err = select(2, xpcall(raise, M.error_message, {code = 5}))
   assert(err:match("^runtime/lib.lua:%d+: error raised with a table instead of a message: {code = 5}$"), err)
   err = select(2, xpcall(raise, M.error_message, nil))
   assert(err:match("^runtime/lib.lua:%d+: error raised without a message"), err)
   err = select(2, xpcall(raise, M.error_message, "as it is"))
   assert(err:match("lib.lua:%d+: as it is$"), err)
   assert(M.equal({a = {1, 2}}, {a = {1, 2}}) and not M.equal({a = {1, 2}}, {a = {1, 3}}))
   local t = 0
   local throttled = M.throttle(1, function () return t end)
   assert(throttled() and not throttled())
   t = 1
   assert(throttled())
   assert(M.comma_value(1234567) == "1,234,567" and M.comma_value(12) == "12")
   local odd = {3, 1, 2}
   assert(M.median(odd) == 2 and odd[1] == 3 and M.median({4, 1, 2, 3}) == 2.5)
   assert(M.table_text({"app", "µs"}, {{"a_long_name", 1.5}, {"b", 12}}, {[2] = true}) ==
          "app           µs\na_long_name  1.5\nb             12\n")
   selftest_snabb_api()
   print("selftest: core.lib ok")
end

return M

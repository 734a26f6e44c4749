-- core.timeline: Snabb's timeline, a high-resolution event log: a ring of 64-byte entries (the
-- TSC, the core, a message id, six numbers) and a table of message strings, in one shared-memory
-- object another process can read (core.shm). Events are declared in Snabb's text format
-- ("RATE,LEVEL|name: arg..." then a description) and loaded as functions; an event is logged
-- when its level is at least the log's rate (timeline.rate). Off unless SNABB_TIMELINE_ENABLE is
-- set (or `enabled` is set true before new): then new returns false and events do nothing, as in
-- Snabb. Logging is one C call (runtime/timeline.h; Snabb's is DynASM code doing the same). The
-- global `timeline` is this module; our engine logs no events of its own yet.
local ffi = require("ffi")
require("core.runtime_cdefs")
local shm = require("core.shm")
local C = ffi.C

local M = {}

M.enabled = os.getenv("SNABB_TIMELINE_ENABLE") ~= nil

ffi.cdef[[
struct snabb_timeline_header {
  uint64_t magic;
  uint16_t major_version;
  uint16_t minor_version;
  uint32_t log_bytes;
  uint32_t strings_bytes;
  uint8_t reserved[44];
};
]]
local header_t = ffi.typeof("struct snabb_timeline_header")
local entry_size = ffi.sizeof("struct snabb_timeline_entry")
assert(ffi.sizeof(header_t) == 64 and entry_size == 64)

-- A log of num_entries (default 1e6) events and size_stringtable bytes (default 1e6) of strings
-- in shared memory at shmpath; false when the timeline is off.
function M.new (shmpath, num_entries, size_stringtable)
   if not M.enabled then return false end
   num_entries = num_entries or 1e6
   size_stringtable = size_stringtable or 1e6
   local entries_bytes = num_entries * entry_size
   local memory = shm.create(shmpath, ffi.typeof("char[$]", 64 + entries_bytes + size_stringtable))
   local header = ffi.cast(ffi.typeof("$ *", header_t), memory)
   header.magic = 0xa3ff7223441d0001ULL
   header.major_version, header.minor_version = 3, 0
   header.log_bytes, header.strings_bytes = entries_bytes, size_stringtable
   local state = ffi.new("struct snabb_timeline_state")
   state.entries = ffi.cast("struct snabb_timeline_entry *", memory + 64)
   state.num_entries = num_entries
   state.stringtable = memory + 64 + entries_bytes
   state.stringtable_size = size_stringtable
   return state
end

-- The log's rate (events of a lower level are not logged), set to rate when given.
function M.rate (tl, rate)
   if not M.enabled then return math.huge end
   if rate then tl.rate = rate end
   return tl.rate
end

-- Strings interned per log: log -> {string -> id}.
local known = setmetatable({}, {__mode = "k"})

-- The id of str in the log's string table (its offset in 16-byte units), added when new; 0xFFFF
-- when the table is full.
function M.intern (tl, str)
   local strings = known[tl] or {}
   known[tl] = strings
   if strings[str] then return strings[str] end
   local at = tl.next_string
   if at + #str + 1 >= tl.stringtable_size then return 0xFFFF end
   ffi.copy(tl.stringtable + at, str)
   tl.next_string = math.ceil((at + #str + 1) / 16) * 16
   strings[str] = at / 16
   return at / 16
end

-- The function that logs event message ("RATE,LEVEL|name: arg...", category put before name,
-- attributes attrs after it) with up to six numbers.
function M.mkevent (tl, category, message, attrs)
   local level, name = message:match("^%d+,(%d+)|([^:]+):")
   if not level then error(("timeline: event syntax error: %q"):format(message), 2) end
   message = message:gsub("|", "|" .. category .. ".", 1)
   local keys = {}
   for k in pairs(attrs or {}) do keys[#keys+1] = k end
   table.sort(keys)
   for _, k in ipairs(keys) do
      message = message:gsub(":", (" %s=%s:"):format(k, tostring(attrs[k])), 1)
   end
   local nargs = select(2, message:match(":([^\n]*)"):gsub("%S+", ""))
   if nargs > 6 then error(("timeline: event '%s' has %d arguments, at most 6"):format(name, nargs), 2) end
   if not M.enabled or not tl then return function () end end
   local id, rate, log = M.intern(tl, message), tonumber(level), C.snabb_timeline_log
   return function (a, b, c, d, e, f)
      log(tl, rate, id, a or 0, b or 0, c or 0, d or 0, e or 0, f or 0)
   end
end

-- Events from spec text (events separated by their "RATE,LEVEL|" lines) as an object of
-- functions: e.name(args...).
function M.load_events_from_string (tl, spec, category, attrs)
   local events = {}
   spec = ("\n" .. spec):gsub("\n(%d+,%d+|)", "\n\a%1")
   for message in spec:gmatch("\a([^\a]+)") do
      message = message:gsub("%s+$", "")
      events[message:match("|([%w_]+):")] = M.mkevent(tl, category, message, attrs)
   end
   return events
end

-- Events of module eventmodule (its text is the module eventmodule.."_events", as Snabb's
-- build makes it from a .events file), with category the module's last name.
function M.load_events (tl, eventmodule, attrs)
   local category = eventmodule:match("[^.]+$")
   local ok, spec = pcall(require, eventmodule .. "_events")
   if not ok or type(spec) ~= "string" then return setmetatable({}, {__index = function ()
      return function () end
   end}) end
   return M.load_events_from_string(tl, spec, category, attrs)
end

function M.selftest ()
   print("selftest: core.timeline")
   local was = M.enabled
   M.enabled = false
   assert(M.new("selftest/off.timeline") == false and M.rate(false) == math.huge)
   M.enabled = true
   local tl = M.new("selftest/timeline", 1000, 4096)
   local e = M.load_events_from_string(tl, [[
0,6|six:
level 6, no arguments

0,5|five: a b c
level 5, three

0,4|four: a b c d e f
level 4, six

0,3|three:
level 3
]], "selftest", {module = "timeline"})
   M.rate(tl, 4)
   e.six()
   e.five(1, 2, 3)
   e.four(1, 2, 3, 4, 5, 6)
   e.three()
   assert(tl.next_entry == 3, "level 3 is below the rate")
   assert(tl.entries[1].arg2 == 3 and tl.entries[2].arg5 == 6 and tl.entries[2].tsc > 0)
   local text = ffi.string(tl.stringtable + tl.entries[1].msgid * 16)
   assert(text:match("^0,5|selftest.five module=timeline: a b c"), text)
   for _ = 1, 1000 do e.six() end
   assert(tl.next_entry == 3, "the ring wraps")
   -- Another mapping sees the header.
   local h = shm.open("selftest/timeline", header_t, "readonly")
   assert(h.magic == 0xa3ff7223441d0001ULL and h.log_bytes == 64000)
   shm.unmap(h)
   -- Events of a module, as Snabb's build makes NAME_events from NAME.events.
   package.preload["selftest.demo_events"] = function () return "1,7|started:\nIt started.\n" end
   local demo = M.load_events(tl, "selftest.demo", {app = "a"})
   demo.started()
   local last = tl.entries[(tl.next_entry + tl.num_entries - 1) % tl.num_entries]
   assert(ffi.string(tl.stringtable + last.msgid * 16):match("^1,7|demo.started app=a:"))
   package.preload["selftest.demo_events"] = nil
   for i = 1, 1000 do M.mkevent(tl, "selftest", "0,9|filler:", {i = i}) end
   assert(M.intern(tl, ("x"):rep(100)) == 0xFFFF, "a full string table")
   assert(not pcall(M.mkevent, tl, "x", "no level: a"))
   assert(not pcall(M.mkevent, tl, "x", "0,1|seven: a b c d e f g"))
   M.enabled = was
   shm.unlink("selftest")
   print("selftest: core.timeline ok")
end

return M

-- lib.lpm_fuzz: one fuzz input as a route file through lib.lpm.load, into an IPv4 and an IPv6
-- table. Each load must return or raise one message of the form "FILE:LINE: ..." (or "FILE: ...");
-- a crash, a hang, another error, or a table whose lookups disagree with its rules (the first
-- address of each prefix finds its value, or that of the longest rule covering it) is a finding.
-- lpm_fuzz.cc calls init once and one per input (returns 0, or 1 for a finding).
local ffi = require("ffi")
local lpm = require("lib.lpm")

local M = {}

local path

function M.init (dir)
   path = dir .. "/routes"
   return 0
end

local function finding (what)
   io.stderr:write("lpm_fuzz: ", what, "\n")
   return 1
end

function M.one (input)
   local f = assert(io.open(path, "wb"))
   f:write(input)
   f:close()
   local found = 0
   for _, class in ipairs({lpm.IPv4, lpm.IPv6}) do
      -- The default 0: another default would fill tbl24 (64 MB) for each input.
      local t = class.new{groups = 512}
      local ok, result = pcall(lpm.load, path, t)
      if ok then
         -- Each rule's first address finds its own value or that of a longer rule; with no rule
         -- the default; the rules counted are at most the lines read.
         if type(result) ~= "number" or t:count() > result then
            found = found + finding(("load returned %s for %d rules"):format(tostring(result),
                                                                             t:count()))
         end
         local addr = ffi.new("uint8_t[16]")
         t:each(function (prefix, value)
            local text, len = prefix:match("^(.*)/(%d+)$")
            len = tonumber(len)
            t:pton(text, addr)
            for l = t.nbytes * 8, len + 1, -1 do -- a longer rule that covers it wins
               local v = t.rules[l][t:set_key(addr, l)]
               if v then value = v; break end
            end
            local got = t:lookup_ptr(addr)
            if got ~= value then
               found = found + finding(("%s: %d, not %d"):format(prefix, got, value))
            end
         end)
      elseif type(result) ~= "string" or result:sub(1, #path + 1) ~= path .. ":" then
         found = found + finding(("load raised %s"):format(tostring(result)))
      end
      t:free()
   end
   return found > 0 and 1 or 0
end

return M

-- programs.progress: the progress line that `snabb run` (and `snabb bench`) show while a graph
-- runs: one line on stderr, rewritten in place twice a second, and only when stderr is a terminal,
-- so that logs, pipes and files get no carriage returns.
local ffi = require("ffi")
ffi.cdef("int isatty(int fd);")

local M = {}

M.interval = 0.5 -- seconds between updates

-- A progress line on stderr, or nil when stderr is not a terminal.
function M.new ()
   if ffi.C.isatty(2) ~= 1 then return nil end
   return setmetatable({width = 0}, {__index = M})
end

-- Replaces the line with `text` (spaces over what a longer previous line left).
function M:show (text)
   io.stderr:write("\r", text, (" "):rep(self.width - #text))
   self.width = math.max(self.width, #text)
end

-- Leaves the terminal as it was before the first show().
function M:clear ()
   if self.width > 0 then io.stderr:write("\r", (" "):rep(self.width), "\r") end
   self.width = 0
end

-- "  2.5 s  in   1.23 Mpps  out   1.23 Mpps", then each {name, value} of `more` as "  name value".
function M.line (seconds, in_mpps, out_mpps, more)
   local parts = {("%6.1f s  in %8.2f Mpps  out %8.2f Mpps"):format(seconds, in_mpps, out_mpps)}
   for _, item in ipairs(more or {}) do parts[#parts+1] = item[1] .. " " .. tostring(item[2]) end
   return table.concat(parts, "  ")
end

return M

-- For the patch tests beside it (loaded with dofile): the IR of the traces that the JIT compiles
-- while fn runs, one {op = "XLOAD", type = IR type number, in_loop = after the LOOP instruction}
-- per instruction.
local jutil = require("jit.util")
local vmdef = require("jit.vmdef")
local band, rshift = bit.band, bit.rshift

return function (fn)
   local traces = {}
   local function on_trace (what, tr) if what == "stop" then traces[#traces + 1] = tr end end
   jit.attach(on_trace, "trace")
   fn()
   jit.attach(on_trace)
   local ir = {}
   for _, tr in ipairs(traces) do
      local in_loop = false
      for ins = 1, jutil.traceinfo(tr).nins - 1 do
         local _, ot = jutil.traceir(tr, ins)
         local op = vmdef.irnames:sub(6 * rshift(ot, 8) + 1, 6 * rshift(ot, 8) + 6):gsub(" ", "")
         if op == "LOOP" then in_loop = true end
         ir[#ir + 1] = {op = op, type = band(ot, 31), in_loop = in_loop}
      end
   end
   return ir, #traces
end

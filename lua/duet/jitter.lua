-- duet.jitter: the threads runtime's options, duet.runtime("threads",
-- {jitter = {seed = s}}): seeded pauses before lock, queue and condition
-- operations (csrc/jitter.c), so that races show more often. The OS still
-- schedules the threads, so a seed does not replay a run.
local core = require "duet.core"
local check = require "duet.check"

local M = {}

--- Check `options` (argument #argn of fname) and put them in force.
function M.configure(options, fname, argn)
  for k in pairs(options) do
    if k ~= "jitter" then
      check.argerror(fname, argn, ("unknown option '%s'"):format(tostring(k)))
    end
  end
  local j = options.jitter
  if j == nil or j == false then
    core.jitter(nil)
    return
  end
  if type(j) ~= "table" then
    check.argerror(fname, argn, "field 'jitter': table expected, got " .. check.typename(j))
  end
  for k in pairs(j) do
    if k ~= "seed" then
      check.argerror(fname, argn, ("unknown option 'jitter.%s'"):format(tostring(k)))
    end
  end
  local seed = j.seed
  local i = check.integral(seed)
  if not i then
    check.argerror(fname, argn, ("field 'jitter.seed': integer expected, got %s"):format(
      seed == nil and "no value" or type(seed) == "number" and "non-integer number"
      or check.typename(seed)))
  end
  core.jitter(i)
end

return M

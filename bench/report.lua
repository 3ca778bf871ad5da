-- report: how every benchmark script, duet's (benchlib) and the Lua peers'
-- (peers/peerlib), reads its memory and prints its figures. Loads nothing.
local M = {}

--- A size in KB from /proc/self/status: "VmRSS" (resident now, the
--- default) or "VmHWM" (the peak so far).
function M.rss_kb(field)
  field = field or "VmRSS"
  local f = assert(io.open("/proc/self/status", "r"))
  local s = f:read("a")
  f:close()
  return assert(tonumber(s:match(field .. ":%s*(%d+)")), "no " .. field)
end

--- Print one figure and flush, so a later hang cannot lose it.
function M.result(case, metric, value, unit)
  io.stdout:write(("RESULT %s %s %.6g %s\n"):format(case, metric, value, unit))
  io.stdout:flush()
end

--- Raise unless `got` equals `want`: a wrong run must never give a figure.
function M.check(what, got, want)
  if got ~= want then
    error(("wrong result: %s = %s, expected %s"):format(what, tostring(got), tostring(want)), 2)
  end
end

return M

-- Tasks for spec/redis_executor_spec.lua, run by bin/duet-worker by name.
local M = {}
function M.double(x) return x * 2 end
function M.pair(a, b) return b, a end
function M.fail(msg) error(msg, 0) end
function M.fail_table(code) error({ code = code }) end
-- a little work, so that a run of many is still going when a spec acts
function M.work(x)
  local s = 0
  for i = 1, 2000 do s = s + i % 7 end
  return x * 2, s
end
-- holds its worker for `seconds`, as a slow task does
function M.slow(x, seconds)
  require("socket").sleep(seconds)
  return x
end
-- takes its worker down, every time
function M.crash() os.exit(3) end
return M

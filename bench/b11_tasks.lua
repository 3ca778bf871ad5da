-- The task bench/b11_redis.lua's workers run, by name: "b11_tasks.double".
local M = {}
function M.double(x) return x * 2 end
return M

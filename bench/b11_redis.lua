-- B11 beyond one machine: tasks through Redis. A private redis-server
-- (spec/redis_server.sh, appendonly yes, as in the tests) unless
-- DUET_REDIS_URL names one.
--   w1, w2, w4  end-to-end tasks/s of a RemoteExecutor (tasks x*2, 50,000;
--               --quick 5,000) with 1, 2 or 4 bin/duet-worker processes of
--               one thread each; beside it, in the same case and on the same
--               server, redis-benchmark's pipelined XADD rate, the limit a
--               stream-based queue cannot pass, and the ratio of the two.
--   take        distributed TokenBucket take() calls/s from 4 threads
--               (tasks), each with its own connection.
-- No Python peer: redis-py and Celery/RQ are not on this machine.
local here = arg[0]:match("^(.*)/[^/]*$") or "."
local root = here .. "/.."
if not os.getenv("DUET_REDIS_URL") then
  -- run this very command again around a private server
  local words = { "lua5.4", arg[0] }
  for i = 1, #arg do words[#words + 1] = arg[i] end
  for i, w in ipairs(words) do words[i] = "'" .. w:gsub("'", "'\\''") .. "'" end
  local ok, _, code = os.execute(("sh %s/spec/redis_server.sh run %s"):format(root,
    table.concat(words, " ")))
  os.exit(ok and 0 or code or 1)
end
package.path = here .. "/?.lua;" .. package.path
local bench = require "benchlib"
local URL, PORT = os.getenv("DUET_REDIS_URL"), os.getenv("DUET_REDIS_PORT")

-- redis-benchmark's XADD rate on the same server: pipelined 50 deep, 4
-- clients, what a stream takes in at most.
local function xadd_limit(quick)
  local p = assert(io.popen(("redis-benchmark -p %s -n %d -c 4 -P 50 -q "
    .. "XADD duet:b11:limit '*' f v 2>&1"):format(PORT, quick and 50000 or 300000)))
  local out = p:read("a")
  p:close()
  local rate = tonumber(out:match("([%d%.]+) requests per second"))
  if not rate then error("redis-benchmark gave no rate: " .. out, 0) end
  return rate
end

local function start_workers(n, queue)
  local pids = {}
  for i = 1, n do
    local p = assert(io.popen(("LUA_PATH=%q LUA_CPATH=%q lua5.4 %s/bin/duet-worker "
      .. "--redis %s --queue %s --concurrency 1 2>/dev/null >/dev/null & echo $!")
      :format(here .. "/?.lua;" .. package.path, package.cpath, root, URL, queue)))
    pids[i] = assert(tonumber(p:read("l")))
    p:close()
  end
  return pids
end

local function stop_workers(pids)
  for _, pid in ipairs(pids) do os.execute(("kill -TERM %d 2>/dev/null"):format(pid)) end
end

local function tasks_case(workers)
  return { fn = function(rt, quick, id)
    local n = quick and 5000 or 50000
    local queue = ("b11-%d-%d"):format(os.time(), math.random(1 << 30))
    local pids = start_workers(workers, queue)
    local ok, err = pcall(function()
      local ex <close> = rt.RemoteExecutor{ redis = URL, queue = queue }
      -- every worker up and reading before the clock starts
      local warm = {}
      for i = 1, 20 * workers do warm[i] = ex:submit("b11_tasks.double", i) end
      for i = 1, #warm do bench.check("warm-up", warm[i]:result(60), 2 * i) end
      local t0 = rt.now()
      local futs = {}
      for i = 1, n do futs[i] = ex:submit("b11_tasks.double", i) end
      for i = 1, n do bench.check("task " .. i, futs[i]:result(120), 2 * i) end
      local rate = n / (rt.now() - t0)
      local limit = xadd_limit(quick)
      bench.result(id, "rate", rate, "tasks/s")
      bench.result(id, "limit", limit, "xadd/s")
      bench.result(id, "of_limit", rate / limit, "ratio")
    end)
    stop_workers(pids)
    if not ok then error(err, 0) end
  end }
end

local cases = {
  w1 = tasks_case(1), w2 = tasks_case(2), w4 = tasks_case(4),
  take = { fn = function(rt, quick, id)
    local n, threads = quick and 1000 or 5000, 4
    local key = ("b11-%d-%d"):format(os.time(), math.random(1 << 30))
    local taker = function(rtname, url, k, count)
      local r = require("duet").runtime(rtname)
      local tb = r.TokenBucket{ redis = url, key = k, capacity = 1000, rate = 1e6 }
      local granted = 0
      for _ = 1, count do if tb:take() then granted = granted + 1 end end
      return granted
    end
    local t0 = rt.now()
    local ths = {}
    for i = 1, threads do ths[i] = rt.spawn(taker, rt.name, URL, key, n) end
    local granted = 0
    for i = 1, threads do granted = granted + bench.join(ths[i]) end
    local dt = rt.now() - t0
    if granted < 1 then error("wrong result: no token granted", 0) end
    bench.result(id, "calls", threads * n / dt, "calls/s")
  end },
}

bench.main("B11", cases, { "w1", "w2", "w4", "take" }, arg)

-- B8 memory and idle waiting. Peers: bench/peers/b8_memory_threads.py,
-- b8_memory_asyncio.py.
--
-- Cases:
--   idle1k, idle10k  1,000 / 10,000 threads (tasks) each blocked in get()
--                    on one Queue (--quick: 100 / 1,000). VmRSS of
--                    /proc/self/status is read before spawning and once all
--                    have signalled they are about to block (plus 50 ms);
--                    metric: KB of RSS per idle thread, lower is better.
--   sleep10k         10,000 threads (tasks) each sleeping 0.1 s (--quick:
--                    1,000); seconds until all are joined, lower is better
--                    (0.1 s is the floor).
--   floor_thread     the floor of idle1k, no duet: 1,000 pthreads (--quick:
--                    100), each with a bare luaL_newstate() of its own,
--                    blocked on a condition variable (bench/floor.c)
--   floor_task       the floor of idle10k, no duet: 10,000 bare Lua
--                    coroutines (--quick: 1,000), each yielded once
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/?.lua;" .. package.path
local bench = require "benchlib"

local function idle_case(full, quick_n)
  return { fn = function(rt, quick, id)
    local n = quick and quick_n or full
    local q, ready = rt.Queue(), rt.Queue()
    local waiter = function()
      ready:put(true)
      return q:get()
    end
    collectgarbage()
    local before = bench.rss_kb()
    local threads = {}
    for i = 1, n do threads[i] = rt.spawn(waiter) end
    for _ = 1, n do ready:get() end
    rt.sleep(0.05)
    local after = bench.rss_kb()
    for i = 1, n do q:put(i) end
    local sum = 0
    for i = 1, n do sum = sum + bench.join(threads[i]) end
    bench.check("sum", sum, n * (n + 1) // 2)
    bench.result(id, "rss_per_thread", (after - before) / n, "KB")
  end }
end

local cases = {
  idle1k = idle_case(1000, 100),
  idle10k = idle_case(10000, 1000),
  sleep10k = { fn = function(rt, quick, id)
    local n = quick and 1000 or 10000
    local sleeper = function() rt.sleep(0.1) end
    local threads = {}
    local t0 = rt.now()
    for i = 1, n do threads[i] = rt.spawn(sleeper) end
    for i = 1, n do bench.join(threads[i]) end
    local dt = rt.now() - t0
    bench.result(id, "total", dt, "s")
  end },
}

-- The floors: RSS per idle one, as above, for what any Lua library's idle
-- thread (a Lua state and a pthread) or task (a Lua coroutine) holds.
cases.floor_thread = { plain = true, fn = function(_, quick, id)
  local n = quick and 100 or 1000
  local floor = bench.floor()
  local before = bench.rss_kb()
  bench.check("threads", floor.idle_states(n), n)
  local after = bench.rss_kb()
  floor.release()
  bench.result(id, "rss_per_thread", (after - before) / n, "KB")
end }
cases.floor_task = { plain = true, fn = function(_, quick, id)
  local n = quick and 1000 or 10000
  local cos, yield = {}, coroutine.yield  -- the list grows as idle10k's does
  local idle = function() yield() end
  collectgarbage()
  local before = bench.rss_kb()
  for i = 1, n do
    local co = coroutine.create(idle)
    coroutine.resume(co)
    cos[i] = co
  end
  local after = bench.rss_kb()
  bench.check("suspended", coroutine.status(cos[n]), "suspended")
  bench.result(id, "rss_per_thread", (after - before) / n, "KB")
end }

bench.main("B8", cases, { "idle1k", "idle10k", "sleep10k", "floor_thread", "floor_task" }, arg)

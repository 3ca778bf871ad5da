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

bench.main("B8", cases, { "idle1k", "idle10k", "sleep10k" }, arg)

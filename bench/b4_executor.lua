-- B4 executor: 100,000 tiny tasks (x * 2, the same function each time) on
-- an Executor with 4 workers; every result collected in order.
-- Peers: bench/peers/b4_executor_threads.py (ThreadPoolExecutor),
-- b4_executor_asyncio.py (4 worker tasks fed by an asyncio.Queue).
-- Metric: microseconds per task, creation to shutdown (--quick: 10,000
-- tasks), lower is better.
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/?.lua;" .. package.path
local bench = require "benchlib"

local cases = {
  tasks = { fn = function(rt, quick, id)
    local n = quick and 10000 or 100000
    local double = function(x) return x * 2 end
    local t0 = rt.now()
    local ex = rt.Executor{ max_workers = 4 }
    local futures = {}
    for i = 1, n do futures[i] = ex:submit(double, i) end
    local sum = 0
    for i = 1, n do sum = sum + futures[i]:result() end
    ex:shutdown{ wait = true }
    local dt = rt.now() - t0
    bench.check("sum", sum, n * (n + 1))
    bench.result(id, "per_task", dt / n * 1e6, "us")
  end },
}

bench.main("B4", cases, { "tasks" }, arg)

-- B3 spawn + join: start N threads (tasks) running an empty function, then
-- join them all. Peers: bench/peers/b3_spawn_threads.py, b3_spawn_asyncio.py.
--
-- Cases: spawn1k (1,000; --quick: 100), spawn10k (10,000; --quick: 1,000),
--        tasks100k (100,000; --quick: 10,000; meant for the coroutines
--        runtime and asyncio, where a task is cheap).
-- Metric: microseconds per thread (spawn + join), lower is better.
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/?.lua;" .. package.path
local bench = require "benchlib"

local function spawn_case(full, quick_n)
  return { fn = function(rt, quick, id)
    local n = quick and quick_n or full
    local empty = function() end
    local threads = {}
    local t0 = rt.now()
    for i = 1, n do threads[i] = rt.spawn(empty) end
    for i = 1, n do bench.join(threads[i]) end
    local dt = rt.now() - t0
    bench.result(id, "per_spawn", dt / n * 1e6, "us")
  end }
end

local cases = {
  spawn1k = spawn_case(1000, 100),
  spawn10k = spawn_case(10000, 1000),
  tasks100k = spawn_case(100000, 10000),
}

bench.main("B3", cases, { "spawn1k", "spawn10k", "tasks100k" }, arg)

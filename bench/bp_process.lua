-- BP: rt.ProcessExecutor, whose workers are child Lua interpreters.
-- Peer: bench/peers/bp_process_threads.py (concurrent.futures'
-- ProcessPoolExecutor; asyncio has none).
--
-- Cases:
--   tasks    (B4p) 10,000 tiny tasks (x * 2) on 2 worker processes, every
--            result collected in order, from creating the pool to its
--            shutdown (--quick: 2,000); us per task, lower is better
--   start    (B3p) the cost to start a worker: a new pool of 1, one empty
--            task's result, shutdown; ms each (20 of them; --quick: 5)
--   riemann  (B7p) the Riemann sum of sin over [0, pi] in 20,000,000 steps
--            (--quick: 1,000,000) on 1, then 2 worker processes: seconds
--            each, and the speedup t1 / t2
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/?.lua;" .. package.path
local bench = require "benchlib"

local function partial(first, last, h)
  local sin = math.sin
  local s = 0.0
  for i = first, last - 1 do s = s + sin((i + 0.5) * h) end
  return s
end

local function on_processes(rt, n, nproc)
  local h = math.pi / n
  local t0 = rt.now()
  local ex = rt.ProcessExecutor{ max_workers = nproc }
  local futs = {}
  for k = 0, nproc - 1 do
    futs[#futs + 1] = ex:submit(partial, k * n // nproc, (k + 1) * n // nproc, h)
  end
  local s = 0.0
  for _, f in ipairs(futs) do s = s + f:result() end
  ex:shutdown()
  local dt = rt.now() - t0
  if math.abs(s * h - 2) > 1e-6 then
    error(("wrong result: integral = %.12g, expected 2"):format(s * h))
  end
  return dt
end

local cases = {
  tasks = { fn = function(rt, quick, id)
    local n = quick and 2000 or 10000
    local double = function(x) return x * 2 end
    local t0 = rt.now()
    local ex = rt.ProcessExecutor{ max_workers = 2 }
    local futures = {}
    for i = 1, n do futures[i] = ex:submit(double, i) end
    local sum = 0
    for i = 1, n do sum = sum + futures[i]:result() end
    ex:shutdown{ wait = true }
    local dt = rt.now() - t0
    bench.check("sum", sum, n * (n + 1))
    bench.result(id, "per_task", dt / n * 1e6, "us")
    bench.result(id, "rate", n / dt, "tasks/s")
  end },
  start = { fn = function(rt, quick, id)
    local n = quick and 5 or 20
    local t0 = rt.now()
    for _ = 1, n do
      local ex = rt.ProcessExecutor{ max_workers = 1 }
      ex:submit(function() end):result()
      ex:shutdown()
    end
    bench.result(id, "per_start", (rt.now() - t0) / n * 1e3, "ms")
  end },
  riemann = { fn = function(rt, quick, id)
    local n = quick and 1000000 or 20000000
    local t1 = on_processes(rt, n, 1)
    bench.result(id, "t1", t1, "s")
    local t2 = on_processes(rt, n, 2)
    bench.result(id, "t2", t2, "s")
    bench.result(id, "speedup", t1 / t2, "x")
  end },
}

bench.main("BP", cases, { "tasks", "start", "riemann" }, arg)

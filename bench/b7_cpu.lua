-- B7 CPU scaling: midpoint Riemann sum of sin over [0, pi] in 20,000,000
-- steps (--quick: 1,000,000); the answer is 2.
-- Peer: bench/peers/b7_cpu_threads.py (asyncio has none: 2 tasks on one
-- core are plain Python run twice, as the coroutines runtime shows).
--
-- Cases:
--   plain    the loop in plain Lua, no duet, no thread: the baseline
--   scaling  the loop on 1 thread, then split across 2 threads (tasks);
--            seconds for each (lower is better) and the speedup
--            t1 / t2 (higher is better; 2 is perfect on 2 cores)
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/?.lua;" .. package.path
local bench = require "benchlib"

-- Sum of sin((i + 0.5) * h) for i in [first, last).
local function partial(first, last, h)
  local sin = math.sin
  local s = 0.0
  for i = first, last - 1 do s = s + sin((i + 0.5) * h) end
  return s
end

local function steps(quick) return quick and 1000000 or 20000000 end

local function check_sum(s, h)
  if math.abs(s * h - 2) > 1e-6 then
    error(("wrong result: integral = %.12g, expected 2"):format(s * h), 2)
  end
end

-- Time `nthreads` threads each summing an equal share of the n steps.
local function on_threads(rt, n, nthreads)
  local h = math.pi / n
  local t0 = rt.now()
  local threads = {}
  for k = 0, nthreads - 1 do
    threads[#threads + 1] = rt.spawn(partial, k * n // nthreads, (k + 1) * n // nthreads, h)
  end
  local s = 0.0
  for _, th in ipairs(threads) do s = s + bench.join(th) end
  local dt = rt.now() - t0
  check_sum(s, h)
  return dt
end

local cases = {
  plain = { plain = true, fn = function(_, quick, id)
    local n = steps(quick)
    local h = math.pi / n
    local t0 = bench.now()
    local s = partial(0, n, h)
    local dt = bench.now() - t0
    check_sum(s, h)
    bench.result(id, "t1", dt, "s")
  end },
  scaling = { fn = function(rt, quick, id)
    local n = steps(quick)
    local t1 = on_threads(rt, n, 1)
    bench.result(id, "t1", t1, "s")
    local t2 = on_threads(rt, n, 2)
    bench.result(id, "t2", t2, "s")
    bench.result(id, "speedup", t1 / t2, "x")
  end },
}

bench.main("B7", cases, { "plain", "scaling" }, arg)

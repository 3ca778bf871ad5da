-- B9 token bucket: 4 threads (tasks) at once each call take() 50,000
-- times (--quick: 10,000) on one TokenBucket{capacity = 1000, rate = 1e6}.
-- Peers: bench/peers/b9_tokenbucket_threads.py (the seed's TokenBucket with
-- its refill thread, 1,000 tokens every 1 ms), b9_tokenbucket_asyncio.py.
-- Metrics: take() calls per second over all threads (higher is better),
-- and tokens granted per second (bounded by the refill arithmetic: never
-- more than capacity + rate * elapsed, which is checked).
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/?.lua;" .. package.path
local bench = require "benchlib"

local CAPACITY, RATE, THREADS = 1000, 1e6, 4

local cases = {
  take4 = { fn = function(rt, quick, id)
    local n = quick and 10000 or 50000
    local created = rt.now()
    local tb = rt.TokenBucket{ capacity = CAPACITY, rate = RATE }
    local taker = function()
      local granted = 0
      for _ = 1, n do
        if tb:take() then granted = granted + 1 end
      end
      return granted
    end
    local t0 = rt.now()
    local threads = {}
    for i = 1, THREADS do threads[i] = rt.spawn(taker) end
    local granted = 0
    for i = 1, THREADS do granted = granted + bench.join(threads[i]) end
    local dt = rt.now() - t0
    local allowed = CAPACITY + RATE * (rt.now() - created)
    if granted > allowed then
      error(("wrong result: %d tokens granted, at most %d allowed"):format(granted, allowed))
    end
    bench.result(id, "calls", THREADS * n / dt, "calls/s")
    bench.result(id, "granted", granted / dt, "tokens/s")
  end },
}

bench.main("B9", cases, { "take4" }, arg)

-- B5 locks. Peers: bench/peers/b5_lock_threads.py, b5_lock_asyncio.py.
--
-- Cases:
--   uncontended  1,000,000 lock:acquire() + lock:release() pairs in one
--                thread (--quick: 100,000); nanoseconds per pair, lower is better
--   incr         2 threads x 200,000 increments of a SharedTable value, each
--                under the lock (--quick: 2 x 20,000); total seconds, lower
--                is better. The final count is checked.
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/?.lua;" .. package.path
local bench = require "benchlib"

local cases = {
  uncontended = { fn = function(rt, quick, id)
    local n = quick and 100000 or 1000000
    local lock = rt.Lock()
    local t0 = rt.now()
    for _ = 1, n do
      lock:acquire()
      lock:release()
    end
    local dt = rt.now() - t0
    bench.result(id, "per_pair", dt / n * 1e9, "ns")
  end },

  incr = { fn = function(rt, quick, id)
    local n = quick and 20000 or 200000
    local lock = rt.Lock()
    local counter = rt.SharedTable{ n = 0 }
    local function work()
      for _ = 1, n do
        lock:acquire()
        counter.n = counter.n + 1
        lock:release()
      end
    end
    local t0 = rt.now()
    local a, b = rt.spawn(work), rt.spawn(work)
    bench.join(a)
    bench.join(b)
    local dt = rt.now() - t0
    bench.check("counter", counter.n, 2 * n)
    bench.result(id, "total", dt, "s")
  end },
}

bench.main("B5", cases, { "uncontended", "incr" }, arg)

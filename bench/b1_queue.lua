-- B1 queue ping: integers from producers to consumers through duet Queues.
-- Peers: bench/peers/b1_queue_threads.py, bench/peers/b1_queue_asyncio.py.
--
-- Cases (N = 1,000,000 integers; --quick: 100,000):
--   unbounded  one producer -> one consumer, Queue()
--   bounded    the same through Queue(1000)
--   pairs2/4   2 or 4 producer/consumer pairs, each pair on its own
--              Queue(1000), N items in total (N/P per pair); one pair is
--              the bounded case
--   batch      one producer -> one consumer, put_many/get_many of 100
-- Metric: items moved per second (all threads joined), higher is better.
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/?.lua;" .. package.path
local bench = require "benchlib"

-- One pair: a producer puts 1..n, a consumer gets n items and returns their sum.
local function start_pair(rt, q, first, n)
  local producer = rt.spawn(function()
    for i = first, first + n - 1 do q:put(i) end
  end)
  local consumer = rt.spawn(function()
    local s = 0
    for _ = 1, n do s = s + q:get() end
    return s
  end)
  return producer, consumer
end

local function pairs_case(npairs, maxsize)
  return { fn = function(rt, quick, id)
    local n = quick and 100000 or 1000000
    local per = n // npairs
    local queues = {}
    for p = 1, npairs do queues[p] = rt.Queue(maxsize) end
    local t0 = bench.now()
    local threads = {}
    for p = 1, npairs do
      local prod, cons = start_pair(rt, queues[p], (p - 1) * per + 1, per)
      threads[#threads + 1] = { prod, cons }
    end
    local sum = 0
    for _, pc in ipairs(threads) do
      bench.join(pc[1])
      sum = sum + bench.join(pc[2])
    end
    local dt = bench.now() - t0
    local total = per * npairs
    bench.check("sum", sum, total * (total + 1) // 2)
    bench.result(id, "rate", total / dt, "items/s")
  end }
end

local cases = {
  unbounded = pairs_case(1, 0),
  bounded = pairs_case(1, 1000),
  pairs2 = pairs_case(2, 1000),
  pairs4 = pairs_case(4, 1000),
  batch = { fn = function(rt, quick, id)
    local n = quick and 100000 or 1000000
    local batch = 100
    local q = rt.Queue()
    local t0 = bench.now()
    local producer = rt.spawn(function()
      for first = 1, n, batch do
        local items = {}
        for i = 1, batch do items[i] = first + i - 1 end
        q:put_many(items)
      end
    end)
    local consumer = rt.spawn(function()
      local s, got = 0, 0
      while got < n do
        local items = q:get_many(batch)
        for i = 1, #items do s = s + items[i] end
        got = got + #items
      end
      return s
    end)
    bench.join(producer)
    local sum = bench.join(consumer)
    local dt = bench.now() - t0
    bench.check("sum", sum, n * (n + 1) // 2)
    bench.result(id, "rate", n / dt, "items/s")
  end },
}

bench.main("B1", cases, { "unbounded", "bounded", "pairs2", "pairs4", "batch" }, arg)

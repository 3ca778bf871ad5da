-- B2 table messages: 200,000 tables {id=i, name="item"..i, values={1,2,3}}
-- from one producer to one consumer through an unbounded Queue (in the
-- threads runtime every message is copied from one Lua state to another).
-- Peers: bench/peers/b2_messages_threads.py, b2_messages_asyncio.py.
-- Metric: messages per second (--quick: 20,000 messages), higher is better.
-- Case floor: the same messages through a plain Lua list, no duet at all;
-- floor_queue: through the least Lua queue class, no duet.
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/?.lua;" .. package.path
local bench = require "benchlib"

local least_queue = require "leastqueue"

-- The producer's and the consumer's loops, the same for every queue.
local function produce(q, n)
  for i = 1, n do q:put({ id = i, name = "item" .. i, values = { 1, 2, 3 } }) end
end

local function consume(q, n)
  local ids, values = 0, 0
  for _ = 1, n do
    local m = q:get()
    ids = ids + m.id
    values = values + m.values[3]
    assert(m.name == "item" .. m.id, "message garbled")
  end
  return ids + values
end

local cases = {
  tables = { fn = function(rt, quick, id)
    local n = quick and 20000 or 200000
    local q = rt.Queue()
    local t0 = rt.now()
    local producer = rt.spawn(produce, q, n)
    local consumer = rt.spawn(consume, q, n)
    bench.join(producer)
    local sum = bench.join(consumer)
    local dt = rt.now() - t0
    bench.check("sum", sum, n * (n + 1) // 2 + 3 * n)
    bench.result(id, "rate", n / dt, "msgs/s")
  end },
}

-- The floor: the same messages made, put in a plain Lua list and taken
-- out again, in one loop after the other: no duet, no task, no switch.
cases.floor = { plain = true, fn = function(_, quick, id)
  local n = quick and 20000 or 200000
  local items, h, t = {}, 1, 0
  local t0 = bench.now()
  for i = 1, n do
    t = t + 1
    items[t] = { id = i, name = "item" .. i, values = { 1, 2, 3 } }
  end
  local ids, values = 0, 0
  for _ = 1, n do
    local m = items[h]
    items[h] = nil
    h = h + 1
    ids = ids + m.id
    values = values + m.values[3]
    assert(m.name == "item" .. m.id, "message garbled")
  end
  local dt = bench.now() - t0
  bench.check("sum", ids + values, n * (n + 1) // 2 + 3 * n)
  bench.result(id, "rate", n / dt, "msgs/s")
end }

-- The least queue: the same, through the least Lua queue class
-- (bench/leastqueue.lua), in one loop after the other: the cost of a
-- method call per put and per get, no duet.
cases.floor_queue = { plain = true, fn = function(_, quick, id)
  local n = quick and 20000 or 200000
  local q = least_queue()
  local t0 = bench.now()
  produce(q, n)
  local sum = consume(q, n)
  local dt = bench.now() - t0
  bench.check("sum", sum, n * (n + 1) // 2 + 3 * n)
  bench.result(id, "rate", n / dt, "msgs/s")
end }

bench.main("B2", cases, { "tables", "floor", "floor_queue" }, arg)

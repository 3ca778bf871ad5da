-- Producer and consumer: one thread puts numbers on a queue, another takes
-- them off, and a "poison pill" put last tells the consumer to stop.
--
--   lua5.4 examples/producer_consumer.lua [--items 10] [--delay 1]
--
-- The producer sleeps between items and the consumer does little work, so
-- this job is I/O-bound: it runs the same on threads and on coroutines.
package.path = arg[0]:gsub("[^/\\]*$", "") .. "?.lua;" .. package.path
local common = require "common"

local opts = common.options{
  options = { items = 10, delay = 1 },
  about = "delay: seconds the producer sleeps after each item",
}
local rt = opts.rt
local printf = common.printf

-- The pill must be recognisable after crossing into another thread. On
-- the threads runtime a table would arrive as a copy (a different table,
-- so `item == pill` would be false); a string arrives equal.
local POISON_PILL = "poison pill"

local function producer(q, items, delay)
  for i = 0, items - 1 do
    printf("producing %d", i)
    q:put(i)
    rt.sleep(delay)
  end
  printf("producer done")
  q:put(POISON_PILL)
end

local function consumer(q)
  while true do
    local item = q:get()
    if item == POISON_PILL then break end
    printf("consuming %d", item)
  end
  printf("consumer done")
end

rt.run(function()
  local q = rt.Queue()
  rt.spawn(producer, q, opts.items, opts.delay)
  rt.spawn(consumer, q)
  -- rt.run returns once both have finished.
end)

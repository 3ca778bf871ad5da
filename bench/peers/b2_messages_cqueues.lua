-- B2 table messages, cqueues peer of bench/b2_messages.lua: 200,000 tables
-- {id, name, values} (--quick: 20,000) from a producer coroutine to a
-- consumer coroutine through an unbounded queue built on cqueues.condition
-- (peerlib.cq_queue; references are passed, nothing is copied).
-- Metric: msgs/s, higher is better.
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/?.lua;" .. package.path
local peer = require "peerlib"
local cqueues = peer.need "cqueues"

peer.main("B2", {
  tables = function(quick, id)
    local n = quick and 20000 or 200000
    local q = peer.cq_queue()
    local sum
    local t0 = peer.now()
    local cq = cqueues.new()
    cq:wrap(function()
      for i = 1, n do q:put({ id = i, name = "item" .. i, values = { 1, 2, 3 } }) end
    end)
    cq:wrap(function()
      local ids, values = 0, 0
      for _ = 1, n do
        local m = q:get()
        ids = ids + m.id
        values = values + m.values[3]
        assert(m.name == "item" .. m.id, "message garbled")
      end
      sum = ids + values
    end)
    assert(cq:loop())
    local dt = peer.now() - t0
    peer.check("sum", sum, n * (n + 1) // 2 + 3 * n)
    peer.result(id, "rate", n / dt, "msgs/s")
  end,
}, { "tables" }, arg)

-- B2 table messages, Lanes peer of bench/b2_messages.lua (optional: "n/a
-- (not installed)" without the lanes module): 200,000 tables {id, name,
-- values} (--quick: 20,000) from a producer lane to a consumer lane
-- through one linda key, unbounded (each table is copied into the linda's
-- keeper state and out again, as duet threads copy between states).
-- Metric: msgs/s, higher is better.
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/?.lua;" .. package.path
local peer = require "peerlib"
local lanes = peer.need("lanes").configure()

peer.main("B2", {
  tables = function(quick, id)
    local n = quick and 20000 or 200000
    local linda = lanes.linda()
    local producer = lanes.gen("", function(l, count)
      for i = 1, count do l:send("m", { id = i, name = "item" .. i, values = { 1, 2, 3 } }) end
      return true
    end)
    local consumer = lanes.gen("", function(l, count)
      local ids, values = 0, 0
      for _ = 1, count do
        local _, m = l:receive("m")
        ids = ids + m.id
        values = values + m.values[3]
        assert(m.name == "item" .. m.id, "message garbled")
      end
      return ids + values
    end)
    local t0 = peer.now()
    local p, c = producer(linda, n), consumer(linda, n)
    assert(p:join(), "producer failed")
    local sum = c:join()
    local dt = peer.now() - t0
    peer.check("sum", sum, n * (n + 1) // 2 + 3 * n)
    peer.result(id, "rate", n / dt, "msgs/s")
  end,
}, { "tables" }, arg)

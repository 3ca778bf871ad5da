-- B3 spawn + join, cqueues peer of bench/b3_spawn.lua: N coroutines
-- (cq:wrap of an empty function), then cq:loop() until every one has
-- ended (cqueues has no join; the loop returning is the join of all).
-- Cases spawn1k, spawn10k, tasks100k (--quick: 100, 1,000, 10,000).
-- Metric: us per coroutine, lower is better.
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/?.lua;" .. package.path
local peer = require "peerlib"
local cqueues = peer.need "cqueues"

local function spawn_case(full, quick_n)
  return function(quick, id)
    local n = quick and quick_n or full
    local done = 0
    local empty = function() done = done + 1 end
    local t0 = peer.now()
    local cq = cqueues.new()
    for _ = 1, n do cq:wrap(empty) end
    assert(cq:loop())
    local dt = peer.now() - t0
    peer.check("ended", done, n)
    peer.result(id, "per_spawn", dt / n * 1e6, "us")
  end
end

peer.main("B3", {
  spawn1k = spawn_case(1000, 100),
  spawn10k = spawn_case(10000, 1000),
  tasks100k = spawn_case(100000, 10000),
}, { "spawn1k", "spawn10k", "tasks100k" }, arg)

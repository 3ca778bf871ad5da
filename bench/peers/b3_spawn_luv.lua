-- B3 spawn + join, luv peer of bench/b3_spawn.lua: N OS threads
-- (uv.new_thread of an empty function, each its own Lua state), then
-- thread:join() of each. Cases spawn1k, spawn10k (--quick: 100, 1,000).
-- Metric: us per thread, lower is better.
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/?.lua;" .. package.path
local peer = require "peerlib"
local uv = peer.need "luv"

local function spawn_case(full, quick_n)
  return function(quick, id)
    local n = quick and quick_n or full
    local empty = function() end
    local threads = {}
    local t0 = peer.now()
    for i = 1, n do threads[i] = assert(uv.new_thread(empty)) end
    for i = 1, n do assert(threads[i]:join()) end
    local dt = peer.now() - t0
    peer.result(id, "per_spawn", dt / n * 1e6, "us")
  end
end

peer.main("B3", {
  spawn1k = spawn_case(1000, 100),
  spawn10k = spawn_case(10000, 1000),
}, { "spawn1k", "spawn10k" }, arg)

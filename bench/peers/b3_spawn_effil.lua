-- B3 spawn + join, effil peer of bench/b3_spawn.lua (optional: shows
-- "n/a (not installed)" without the effil module): N effil.thread runs of
-- an empty function, then each waited for. Cases spawn1k, spawn10k
-- (--quick: 100, 1,000). Metric: us per thread, lower is better.
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/?.lua;" .. package.path
local peer = require "peerlib"
local effil = peer.need "effil"

local function spawn_case(full, quick_n)
  return function(quick, id)
    local n = quick and quick_n or full
    local runner = effil.thread(function() end)
    local hs = {}
    local t0 = peer.now()
    for i = 1, n do hs[i] = runner() end
    for i = 1, n do assert(hs[i]:wait() == "completed") end
    peer.result(id, "per_spawn", (peer.now() - t0) / n * 1e6, "us")
  end
end

peer.main("B3", {
  spawn1k = spawn_case(1000, 100),
  spawn10k = spawn_case(10000, 1000),
}, { "spawn1k", "spawn10k" }, arg)

-- B3 spawn + join, Lanes peer of bench/b3_spawn.lua (optional: shows
-- "n/a (not installed)" without the lanes module): N lanes of an empty
-- function (lanes.gen), then each joined. Cases spawn1k, spawn10k
-- (--quick: 100, 1,000). Metric: us per lane, lower is better.
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/?.lua;" .. package.path
local peer = require "peerlib"
local lanes = peer.need("lanes").configure()

local function spawn_case(full, quick_n)
  return function(quick, id)
    local n = quick and quick_n or full
    local gen = lanes.gen("", function() return true end)
    local hs = {}
    local t0 = peer.now()
    for i = 1, n do hs[i] = gen() end
    for i = 1, n do assert(hs[i]:join()) end
    peer.result(id, "per_spawn", (peer.now() - t0) / n * 1e6, "us")
  end
end

peer.main("B3", {
  spawn1k = spawn_case(1000, 100),
  spawn10k = spawn_case(10000, 1000),
}, { "spawn1k", "spawn10k" }, arg)

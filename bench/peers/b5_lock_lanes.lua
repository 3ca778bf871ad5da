-- B5 locks, Lanes peer of bench/b5_lock.lua (optional: "n/a (not
-- installed)" without the lanes module). Lanes has no lock object: its
-- lock is lanes.genlock(linda, key), a linda slot of limit 1 that acquire
-- fills and release empties.
--   uncontended  1,000,000 acquire + release pairs in one lane (--quick:
--                100,000); nanoseconds per pair, lower is better
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/?.lua;" .. package.path
local peer = require "peerlib"
local lanes = peer.need("lanes").configure()

peer.main("B5", {
  uncontended = function(quick, id)
    local n = quick and 100000 or 1000000
    local lock = lanes.genlock(lanes.linda(), "lock")
    local t0 = peer.now()
    for _ = 1, n do
      lock(1)
      lock(-1)
    end
    local dt = peer.now() - t0
    peer.result(id, "per_pair", dt / n * 1e9, "ns")
  end,
}, { "uncontended" }, arg)

-- B8 memory and idle waiting, cqueues peer of bench/b8_memory.lua.
-- idle1k / idle10k: 1,000 / 10,000 coroutines (--quick: 100 / 1,000) each
-- blocked in get() on one condition-variable queue (peerlib.cq_queue);
-- VmRSS before spawning and once all have signalled (plus 50 ms); KB per
-- idle coroutine. sleep10k: 10,000 coroutines (--quick: 1,000) each
-- cqueues.sleep(0.1); seconds until all have ended.
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/?.lua;" .. package.path
local peer = require "peerlib"
local cqueues = peer.need "cqueues"

local function idle_case(full, quick_n)
  return function(quick, id)
    local n = quick and quick_n or full
    local q, ready = peer.cq_queue(), peer.cq_queue()
    local cq = cqueues.new()
    local sum, before, after = 0, nil, nil
    cq:wrap(function()
      collectgarbage()
      before = peer.rss_kb()
      for _ = 1, n do
        cq:wrap(function()
          ready:put(true)
          local v = q:get()
          sum = sum + v
        end)
      end
      for _ = 1, n do ready:get() end
      cqueues.sleep(0.05)
      after = peer.rss_kb()
      for i = 1, n do q:put(i) end
    end)
    assert(cq:loop())
    peer.check("sum", sum, n * (n + 1) // 2)
    peer.result(id, "rss_per_thread", (after - before) / n, "KB")
  end
end

peer.main("B8", {
  idle1k = idle_case(1000, 100),
  idle10k = idle_case(10000, 1000),
  sleep10k = function(quick, id)
    local n = quick and 1000 or 10000
    local cq = cqueues.new()
    local done = 0
    local t0 = peer.now()
    for _ = 1, n do cq:wrap(function() cqueues.sleep(0.1); done = done + 1 end) end
    assert(cq:loop())
    local dt = peer.now() - t0
    peer.check("ended", done, n)
    peer.result(id, "total", dt, "s")
  end,
}, { "idle1k", "idle10k", "sleep10k" }, arg)

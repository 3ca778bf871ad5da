-- B8 memory and idle waiting, Lanes peer of bench/b8_memory.lua (optional:
-- "n/a (not installed)" without the lanes module).
-- idle1k / idle10k: 1,000 / 10,000 lanes (--quick: 100 / 1,000), each its
-- own Lua state with no standard library opened (lanes.gen(""), the
-- leanest lane), each blocked in linda:receive() on one shared linda after
-- sending "ready"; VmRSS before starting them and once n ready messages
-- have come (plus 50 ms); then n messages wake them. KB of RSS per idle
-- lane. sleep10k: 10,000 lanes (--quick: 1,000) each waiting 0.1 s (a
-- linda:receive with a timeout: Lanes has no sleep of its own); seconds
-- until all are joined.
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/?.lua;" .. package.path
local peer = require "peerlib"
local lanes = peer.need("lanes").configure()

local function idle_case(full, quick_n)
  return function(quick, id)
    local n = quick and quick_n or full
    local linda = lanes.linda()
    local gen = lanes.gen("", function(l)
      l:send("ready", true)
      local _, v = l:receive("go")
      return v
    end)
    collectgarbage()
    local before = peer.rss_kb()
    local hs = {}
    for i = 1, n do hs[i] = gen(linda) end
    for _ = 1, n do assert(linda:receive("ready")) end
    lanes.sleep(0.05)
    local after = peer.rss_kb()
    for _ = 1, n do linda:send("go", "x") end
    for i = 1, n do assert(hs[i]:join() == "x", "lane failed") end
    peer.result(id, "rss_per_thread", (after - before) / n, "KB")
  end
end

peer.main("B8", {
  idle1k = idle_case(1000, 100),
  idle10k = idle_case(10000, 1000),
  sleep10k = function(quick, id)
    local n = quick and 1000 or 10000
    local linda = lanes.linda()
    local gen = lanes.gen("", function(l) l:receive(0.1, "never"); return true end)
    local hs = {}
    local t0 = peer.now()
    for i = 1, n do hs[i] = gen(linda) end
    for i = 1, n do assert(hs[i]:join(), "lane failed") end
    peer.result(id, "total", peer.now() - t0, "s")
  end,
}, { "idle1k", "idle10k", "sleep10k" }, arg)

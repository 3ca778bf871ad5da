-- B8 memory and idle waiting, luv peer of bench/b8_memory.lua.
-- idle1k / idle10k: 1,000 / 10,000 uv.new_thread threads (--quick: 100 /
-- 1,000), each its own Lua state, each blocked in a 1-byte read of one
-- shared pipe (uv.pipe; luv threads share no queue). Each writes a byte to
-- a "ready" pipe first; VmRSS before starting them and once n ready bytes
-- have come (plus 50 ms); then n bytes wake them. KB of RSS per idle
-- thread. sleep10k: 10,000 threads (--quick: 1,000) each uv.sleep(100);
-- seconds until all are joined.
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/?.lua;" .. package.path
local peer = require "peerlib"
local uv = peer.need "luv"

local function waiter(rd, ready_wr)
  local uv2 = require "luv"
  assert(uv2.fs_write(ready_wr, "r"))
  local b = assert(uv2.fs_read(rd, 1))
  assert(b == "x", "bad byte")
end

local function idle_case(full, quick_n)
  return function(quick, id)
    local n = quick and quick_n or full
    local p, ready = assert(uv.pipe()), assert(uv.pipe())
    collectgarbage()
    local before = peer.rss_kb()
    local threads = {}
    for i = 1, n do threads[i] = assert(uv.new_thread(waiter, p.read, ready.write)) end
    local got = 0
    while got < n do got = got + #assert(uv.fs_read(ready.read, n - got)) end
    uv.sleep(50)
    local after = peer.rss_kb()
    local left = n
    while left > 0 do left = left - assert(uv.fs_write(p.write, ("x"):rep(math.min(left, 4096)))) end
    for i = 1, n do assert(threads[i]:join()) end
    for _, fd in ipairs({ p.read, p.write, ready.read, ready.write }) do uv.fs_close(fd) end
    peer.result(id, "rss_per_thread", (after - before) / n, "KB")
  end
end

peer.main("B8", {
  idle1k = idle_case(1000, 100),
  idle10k = idle_case(10000, 1000),
  sleep10k = function(quick, id)
    local n = quick and 1000 or 10000
    local threads = {}
    local t0 = peer.now()
    for i = 1, n do threads[i] = assert(uv.new_thread(function() require("luv").sleep(100) end)) end
    for i = 1, n do assert(threads[i]:join()) end
    peer.result(id, "total", peer.now() - t0, "s")
  end,
}, { "idle1k", "idle10k", "sleep10k" }, arg)

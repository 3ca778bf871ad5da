-- B4 executor, luv peer of bench/b4_executor.lua: 100,000 tasks x*2
-- (--quick: 10,000) on libuv's thread pool (uv.new_work + work:queue; the
-- pool has 4 threads, UV_THREADPOOL_SIZE's default, as the 4 workers);
-- every result comes back to the loop through the after-work callback.
-- Metric: us per task, creation to the last result, lower is better.
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/?.lua;" .. package.path
local peer = require "peerlib"
local uv = peer.need "luv"

peer.main("B4", {
  tasks = function(quick, id)
    local n = quick and 10000 or 100000
    local sum, done = 0, 0
    local t0 = peer.now()
    local work = uv.new_work(function(x) return x * 2 end,
      function(r) sum = sum + r; done = done + 1 end)
    for i = 1, n do assert(work:queue(i)) end
    uv.run()
    local dt = peer.now() - t0
    peer.check("done", done, n)
    peer.check("sum", sum, n * (n + 1))
    peer.result(id, "per_task", dt / n * 1e6, "us")
  end,
}, { "tasks" }, arg)

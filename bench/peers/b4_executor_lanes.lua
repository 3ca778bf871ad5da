-- B4 executor, Lanes peer of bench/b4_executor.lua (optional: "n/a (not
-- installed)" without the lanes module): 100,000 tasks x*2 (--quick:
-- 10,000) on 4 worker lanes. Lanes has no pool or futures: the workers
-- take each task's argument from a linda and send each result back on
-- another, one message each way per task, as a Lanes user writes a pool;
-- false tells a worker to stop. Metric: us per task, from starting the
-- workers to the last result and their end, lower is better.
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/?.lua;" .. package.path
local peer = require "peerlib"
local lanes = peer.need("lanes").configure()

peer.main("B4", {
  tasks = function(quick, id)
    local n = quick and 10000 or 100000
    local linda = lanes.linda()
    local worker = lanes.gen("", function(l)
      local double = function(x) return x * 2 end
      while true do
        local _, x = l:receive("task")
        if not x then return true end
        l:send("result", double(x))
      end
    end)
    local t0 = peer.now()
    local workers = {}
    for w = 1, 4 do workers[w] = worker(linda) end
    for i = 1, n do linda:send("task", i) end
    local sum = 0
    for _ = 1, n do
      local _, r = linda:receive("result")
      sum = sum + r
    end
    for _ = 1, 4 do linda:send("task", false) end
    for w = 1, 4 do assert(workers[w]:join(), "worker failed") end
    local dt = peer.now() - t0
    peer.check("sum", sum, n * (n + 1))
    peer.result(id, "per_task", dt / n * 1e6, "us")
  end,
}, { "tasks" }, arg)

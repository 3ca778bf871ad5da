-- B6 cutlery: the seed's restaurant, with the lock. 10 ThreadBots, each
-- given 10,000 tables ("prepare table" + "clear table") and a "shutdown"
-- on its own task Queue before it starts; every Cutlery (the kitchen's and
-- each bot's) is a SharedTable guarded by its own Lock, as in the seed's
-- locked Cutlery.change. The kitchen must end at 100 knives, 100 forks.
-- Peers: bench/peers/b6_cutlery_threads.py (the seed's ThreadBot code with
-- a lock), b6_cutlery_asyncio.py (the same bots as asyncio tasks).
-- Metric: seconds for the whole service (filling the task queues, starting
-- and joining the bots; --quick: 1,000 tables), lower is better.
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/?.lua;" .. package.path
local bench = require "benchlib"

local function Cutlery(rt, knives, forks)
  return { inv = rt.SharedTable{ knives = knives, forks = forks }, lock = rt.Lock() }
end

local function change(c, knives, forks)
  c.lock:acquire()
  c.inv.knives = c.inv.knives + knives
  c.inv.forks = c.inv.forks + forks
  c.lock:release()
end

local function give(from, to, knives, forks)
  change(from, -knives, -forks)
  change(to, knives, forks)
end

local function manage_table(kitchen, cutlery, tasks)
  while true do
    local task = tasks:get()
    if task == "prepare table" then
      give(kitchen, cutlery, 4, 4)
    elseif task == "clear table" then
      give(cutlery, kitchen, 4, 4)
    elseif task == "shutdown" then
      return
    end
  end
end

local cases = {
  cutlery = { fn = function(rt, quick, id)
    local tables = quick and 1000 or 10000
    local t0 = bench.now()
    local kitchen = Cutlery(rt, 100, 100)
    local bots = {}
    for i = 1, 10 do
      local cutlery, tasks = Cutlery(rt, 0, 0), rt.Queue()
      bots[i] = {
        cutlery = cutlery, tasks = tasks,
        thread = rt.Thread{ target = manage_table, args = { kitchen, cutlery, tasks } },
      }
    end
    for _, bot in ipairs(bots) do
      for _ = 1, tables do
        bot.tasks:put("prepare table")
        bot.tasks:put("clear table")
      end
      bot.tasks:put("shutdown")
    end
    for _, bot in ipairs(bots) do bot.thread:start() end
    for _, bot in ipairs(bots) do bench.join(bot.thread) end
    local dt = bench.now() - t0
    bench.check("kitchen knives", kitchen.inv.knives, 100)
    bench.check("kitchen forks", kitchen.inv.forks, 100)
    for _, bot in ipairs(bots) do bench.check("bot knives", bot.cutlery.inv.knives, 0) end
    bench.result(id, "total", dt, "s")
  end },
}

bench.main("B6", cases, { "cutlery" }, arg)

-- A race condition in two lines: one thread does x = x + 1 a million times,
-- another does x = x - 1 a million times. x should end at 0.
--
--   lua5.4 examples/race.lua                          threads: x is off
--   lua5.4 examples/race.lua --lock                   threads: x = 0
--   lua5.4 examples/race.lua --runtime coroutines     x = 0, lock or not
--   lua5.4 examples/race.lua --runtime coroutines --seed 3
--                                                     x is off, the same each run
--
-- `t.x = t.x + 1` reads x, adds 1, and writes x back. On the threads runtime
-- both threads run at once, and a write that lands between the other
-- thread's read and write is overwritten: that change is lost. On the
-- coroutines runtime a task only gives way where it blocks in a duet call,
-- and nothing in this loop blocks, so no read is ever stale, unless --seed N
-- has duet preempt the tasks itself, from seed N: then the race shows, and
-- replays exactly with the same seed.
package.path = arg[0]:gsub("[^/\\]*$", "") .. "?.lua;" .. package.path
local common = require "common"

local opts = common.options{
  options = { times = 1000000, lock = false },
  positional = { "times" },
  about = "times: how many increments (and decrements)",
}
local rt = opts.rt

-- Add `delta` to t.x, `times` times; with a lock, one change at a time.
local function change(t, lock, delta, times)
  for _ = 1, times do
    if lock then lock:acquire() end
    t.x = t.x + delta
    if lock then lock:release() end
  end
end

rt.run(function()
  -- A SharedTable: the one x both threads see (plain Lua tables are
  -- copied into a new thread on the threads runtime, not shared).
  local t = rt.SharedTable{ x = 0 }
  local lock = opts.lock and rt.Lock() or nil
  print(("2 threads on %s: x = x + 1 and x = x - 1, %s times each, %s")
    :format(rt.name, common.thousands(opts.times), lock and "with a lock" or "no lock"))
  local up = rt.spawn(change, t, lock, 1, opts.times)
  local down = rt.spawn(change, t, lock, -1, opts.times)
  assert(up:join())
  assert(down:join())
  print("x = " .. t.x)
end)

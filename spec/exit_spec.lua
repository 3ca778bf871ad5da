-- Process exit with threads still running (threads runtime), each case in
-- a fresh lua5.4 process: non-daemon threads are waited for, daemon threads
-- never delay or crash the exit, dropped Thread handles are harmless.
-- Every child is killed after a few seconds, so a hang fails as status 124.

local busted = require "busted"
local assert = require "luassert"
local H = require "helpers"
local describe, it = busted.describe, busted.it

--- Run `code` after a prelude that loads the threads runtime as `rt`, in a
--- fresh lua5.4 child (H.child); returns stdout, stderr, exit status.
local function child(code, limit)
  return H.child('local duet = require "duet"\nlocal rt = duet.threads\n' .. code, limit)
end

-- #notsan: every case runs a child process, and TSan's preload makes
-- /bin/sh crash.
describe("process exit (threads runtime) #notsan", function()
  describe("with a non-daemon thread still running", function()
    it("waits for it when the script ends, and its output appears", function()
      local out, err, status = child [[
local printed = rt.Event()   -- the thread prints second, however slow main is
rt.spawn(function(ev) ev:wait(); rt.sleep(0.2); print("thread done") end, printed)
print("main done")
printed:set()
]]
      assert.are.equal(0, status, err)
      assert.are.equal("main done\nthread done\n", out)
      assert.are.equal("", err)
    end)

    it("waits for it when the script ends with an error, then exits with status 1", function()
      local out, err, status = child [[
rt.spawn(function() rt.sleep(0.2); print("thread done") end)
error("main failed")
]]
      assert.are.equal(1, status, err)
      assert.are.equal("thread done\n", out)
      assert.matches("main failed", err)
    end)

    it("waits for it when os.exit(0, true) closes the state", function()
      local out, err, status = child [[
rt.spawn(function() rt.sleep(0.2); print("thread done") end)
os.exit(0, true)
]]
      assert.are.equal(0, status, err)
      assert.are.equal("thread done\n", out)
    end)

    it("waits for threads that threads started", function()
      local out, err, status = child [[
rt.spawn(function()
  rt.spawn(function() rt.sleep(0.2); print("grandchild done") end)
end)
]]
      assert.are.equal(0, status, err)
      assert.are.equal("grandchild done\n", out)
    end)
  end)

  describe("with daemon threads still running", function()
    it("exits with status 0 while one sleeps in rt.sleep", function()
      local out, err, status = child [[
rt.Thread{target = function() rt.sleep(60); print("never") end, daemon = true}:start()
print("main done")
]]
      assert.are.equal(0, status, err)
      assert.are.equal("main done\n", out)
      assert.are.equal("", err)
    end)

    it("exits with status 0 while several are busy in Lua loops", function()
      local out, err, status = child [[
for i = 1, 4 do
  rt.Thread{daemon = true, target = function()
    local t, n = {}, 0
    while true do
      n = n + 1
      t[n % 1000 + 1] = {tostring(n), string.rep("x", n % 50)}
    end
  end}:start()
end
rt.Thread{daemon = true, target = function() while true do end end}:start()
rt.sleep(0.05)
print("main done")
]]
      assert.are.equal(0, status, err)
      assert.are.equal("main done\n", out)
      assert.are.equal("", err)
    end)

    it("exits with status 0 while one is blocked joining a sleeping daemon", function()
      local out, err, status = child [[
local sleeper = rt.Thread{target = function() rt.sleep(60) end, daemon = true}
sleeper:start()
rt.Thread{target = function(s) s:join() end, args = {sleeper}, daemon = true}:start()
rt.sleep(0.02)
print("main done")
]]
      assert.are.equal(0, status, err)
      assert.are.equal("main done\n", out)
    end)

    it("never crashes, exit after exit", function()
      for _ = 1, 5 do
        local out, err, status = child [[
for i = 1, 3 do
  rt.Thread{daemon = true, target = function()
    while true do local s = {} for j = 1, 100 do s[j] = j .. "" end end
  end}:start()
  rt.Thread{daemon = true, target = function() while true do rt.sleep(0.001) end end}:start()
end
rt.spawn(function() return 1 end)
print("main done")
]]
        assert.are.equal(0, status, err)
        assert.are.equal("main done\n", out)
      end
    end)
  end)

  describe("with Thread handles dropped without join", function()
    it("collects them and still runs their threads to the end", function()
      local out, err, status = child [[
local printed = rt.Event()
for i = 1, 200 do rt.spawn(function() return i end) end
rt.spawn(function(ev) ev:wait(); rt.sleep(0.2); print("dropped thread done") end, printed)
collectgarbage()
collectgarbage()
for i = 1, 200 do rt.spawn(function() return i end) end
collectgarbage()
print("main done")
printed:set()
]]
      assert.are.equal(0, status, err)
      assert.are.equal("main done\ndropped thread done\n", out)
      assert.are.equal("", err)
    end)
  end)

  describe("with os.exit() while threads run", function()
    it("exits with status 0 and no crash", function()
      local out, err, status = child [[
for i = 1, 3 do rt.spawn(function() local x = 0 while true do x = x + 1 end end) end
rt.spawn(function() rt.sleep(60) end)
rt.Thread{daemon = true, target = function() while true do end end}:start()
rt.sleep(0.05)
print("main done")
io.stdout:flush()
os.exit(0)
]]
      assert.are.equal(0, status, err)
      assert.are.equal("main done\n", out)
      assert.are.equal("", err)
    end)

    it("passes the status through", function()
      local _, err, status = child [[
rt.spawn(function() local x = 0 while true do x = x + 1 end end)
rt.sleep(0.02)
os.exit(3)
]]
      assert.are.equal(3, status, err)
    end)
  end)

  describe("while daemon threads block in every kind of wait #notsan", function()
    -- daemons blocked on objects the main state holds too: its close drops
    -- its references while they wait
    local BLOCKED = [==[
duet.excepthook = function() end
local function d(fn) rt.Thread{target = fn, daemon = true}:start() end
local q, l, ev, c, b, s = rt.Queue(), rt.Lock(), rt.Event(), rt.Condition(), rt.Barrier(3), rt.Semaphore(0)
local tb = rt.TokenBucket{capacity = 1, rate = 1e-6, tokens = 0}
local full = rt.Queue(1); full:put(0)
l:acquire()
local started = rt.SharedTable{n = 0}
local slow = rt.Thread{target = function() rt.sleep(60) end, daemon = true}; slow:start()
d(function() started:incr("n"); q:get() end)
d(function() started:incr("n"); full:put(1) end)
d(function() started:incr("n"); l:acquire() end)
d(function() started:incr("n"); ev:wait() end)
d(function() started:incr("n"); c:acquire(); c:wait() end)
d(function() started:incr("n"); b:wait() end)
d(function() started:incr("n"); s:acquire() end)
d(function() started:incr("n"); tb:wait() end)
d(function() started:incr("n"); slow:join() end)
d(function() started:incr("n"); full:join() end)
while started.n < 10 do rt.sleep(0.001) end
rt.sleep(0.02)
print("main done")
]==]

    it("exits with status 0 when the script ends", function()
      local out, err, status = child(BLOCKED)
      assert.are.equal(0, status, err)
      assert.are.equal("main done\n", out)
      assert.are.equal("", err)
    end)

    it("exits with status 0 on os.exit(0, true)", function()
      local out, err, status = child(BLOCKED .. "os.exit(0, true)\n")
      assert.are.equal(0, status, err)
      assert.are.equal("main done\n", out)
      assert.are.equal("", err)
    end)

    it("exits with status 1 and the error when main fails", function()
      local out, err, status = child(BLOCKED .. 'error("main failed", 0)\n')
      assert.are.equal(1, status, err)
      assert.are.equal("main done\n", out)
      assert.matches("^lua5%.4: main failed\n", err)
    end)
  end)

  describe("while daemon threads spawn, move values, fail and run an executor #notsan", function()
    -- the state closes in the middle of it all, at a different moment
    -- each run
    local CHURN = [==[
duet.excepthook = function() end
local q, t = rt.Queue(8), rt.SharedTable{n = 0}
for i = 1, 2 do
  rt.Thread{daemon = true, target = function()
    while true do
      rt.Thread{daemon = true, args = {i}, target = function(x)
        q:put({x, ("v"):rep(x * 10)})
      end}:start()
      rt.Thread{daemon = true, target = function() error("boom") end}:start()
    end
  end}:start()
  rt.Thread{daemon = true, target = function()
    while true do local x = q:get(); t:incr("n"); t[x[1]] = x[2] end
  end}:start()
end
rt.Thread{daemon = true, target = function()
  local ex = rt.Executor{max_workers = 2}
  while true do
    ex:submit(function(x) return {x} end, 1):add_done_callback(function() t:incr("n") end)
  end
end}:start()
rt.sleep(%s)
print("main done")
%s
]==]

    for _, case in ipairs{
      { "the script ends", "", 0 },
      { "os.exit(0, true)", "os.exit(0, true)", 0 },
      { "os.exit(0)", "io.stdout:flush() os.exit(0)", 0 },
      { "main fails", 'error("main failed", 0)', 1 },
    } do
      it("never crashes or hangs when " .. case[1] .. " (3 runs)", function()
        for run = 1, 3 do
          local out, err, status = child(CHURN:format(run / 50, case[2]))
          assert.are.equal(case[3], status, err)
          assert.are.equal("main done\n", out)
        end
      end)
    end
  end)
end)

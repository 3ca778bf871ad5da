-- Regression (issue 15, item 2): th:cancel() did not stop a busy loop in a
-- plain Lua coroutine the thread was running (hooks are per coroutine and
-- the cancel hooked only the thread's main one), so join timed out. And
-- cancelling MainThread while it was busy in Lua stayed pending, to
-- surface at some later, unrelated blocking call. Now a cancel reaches the
-- coroutine a thread runs (coroutine.resume and coroutine.wrap in thread
-- states note it), and MainThread is interrupted like any other thread.
-- Threads runtime: the coroutines runtime never runs a busy loop beside
-- the canceller. Tagged notsan: TSan holds signals until an intercepted
-- call, which a busy Lua loop never makes.
local H = require "helpers"
local duet = require "duet"
local rt = duet.threads

--- Start a daemon thread running target(busy), wait until it sets the
--- Event busy (just before its busy loop), cancel it; its join's results.
local function cancel_when_busy(target)
  local busy = rt.Event()
  local th = rt.Thread{ target = target, args = { busy }, daemon = true }
  th:start()
  assert.is_true(busy:wait(30))
  th:cancel()
  return th:join(30)
end

describe("regression: cancel reaches a busy coroutine (threads) #notsan", function()
  it("inside coroutine.wrap: the error comes out of the wrapped call", function()
    assert.are.same({ false, duet.cancelled }, { cancel_when_busy(function(busy)
      local f = coroutine.wrap(function()
        busy:set()
        local n = 0
        while true do n = n + 1 end
      end)
      f()
    end) })
  end)

  it("inside coroutine.resume: resume returns false, duet.cancelled, and the thread goes on", function()
    assert.are.same({ true, false, true, "dead" }, { cancel_when_busy(function(busy)
      local co = coroutine.create(function()
        busy:set()
        while true do end
      end)
      local ok, err = coroutine.resume(co)
      return ok, err == require("duet").cancelled, coroutine.status(co)
    end) })
  end)

  it("a coroutine two levels down, resumed before the cancel", function()
    assert.are.same({ false, duet.cancelled }, { cancel_when_busy(function(busy)
      local outer = coroutine.wrap(function()
        local inner = coroutine.wrap(function() busy:set(); while true do end end)
        inner()
      end)
      outer()
    end) })
  end)

  it("wrap keeps Lua's error messages (position prefix) and argument errors", function()
    local th = rt.Thread{ target = function()
      local f = coroutine.wrap(function() error("boom") end)
      local _, e1 = pcall(f)
      local _, e2 = pcall(coroutine.wrap, 42)
      local _, e3 = pcall(coroutine.resume, 42)
      local co = coroutine.wrap(function(a) local b = coroutine.yield(a + 1); return b * 2 end)
      return e1, e2, e3, co(1), co(5)
    end }
    th:start()
    local ok, e1, e2, e3, y, r = th:join(30)
    assert.is_true(ok, e1)
    assert.matches("^[^:]+:%d+: boom$", e1)
    assert.matches("bad argument #1 to 'coroutine.wrap' %(function expected", e2)
    assert.matches("bad argument #1 to 'coroutine.resume' %(thread expected", e3)
    assert.are.same({ 2, 10 }, { y, r })
  end)
end)

describe("regression: cancelling MainThread (threads) #notsan", function()
  it("interrupts its busy loop at once, and the cancel is spent", function()
    local out, err, status = H.child([[
local duet = require "duet"
local rt = duet.threads
local main, busy = rt.current(), rt.Event()
rt.Thread{ target = function(main, busy) busy:wait(); main:cancel() end,
           args = { main, busy } }:start()
local caught, err = pcall(function() busy:set(); while true do end end)
print("loop", caught, err == duet.cancelled)
local th = rt.Thread{ target = function() return 7 end }
th:start()
print("join", th:join(30))
]], 60)
    assert.are.equal(0, status, err)
    assert.are.equal("loop\tfalse\ttrue\njoin\ttrue\t7\n", out)
  end)
end)

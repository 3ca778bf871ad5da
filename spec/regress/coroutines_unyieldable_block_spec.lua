-- Regression: on the coroutines runtime, a blocking call made where the
-- task cannot yield (inside a C function: a table.sort comparator, a gsub
-- callback, __tostring, a module's main chunk) queued the task as a waiter
-- and then failed in yield() with "attempt to yield across a C-call
-- boundary". The ghost waiter stayed: a later put handed it its item (lost),
-- its stale timer made a later untimed wait return false, a released Lock
-- was granted to it for ever. Now the call checks that it can yield before
-- it changes anything, and raises a duet error that names it.
local H = require "helpers"
local rt = require "duet.coroutines"

-- Run `fn` inside each kind of C call a task cannot yield across; return
-- the error each raised, by kind.
local function unyieldable(fn)
  local errs = {}
  local function try(kind, f, ...)
    local ok, e = pcall(f, ...)
    assert.is_false(ok, kind .. " did not raise")
    errs[kind] = e
  end
  try("sort", table.sort, { 1, 2 }, function(a, b) fn() return a < b end)
  try("gsub", string.gsub, "x", "x", function() fn() end)
  try("tostring", tostring, setmetatable({}, { __tostring = function()
    fn()
    return ""
  end }))
  package.preload["duet_regress_blocking_module"] = function() fn() end
  try("require", require, "duet_regress_blocking_module")
  package.preload["duet_regress_blocking_module"] = nil
  return errs
end

local function reason(call)
  return "duet.coroutines: " .. call .. " cannot block here: the task cannot"
    .. " yield across the C function it runs in"
end

describe("regression: coroutines, a blocking call where the task cannot yield", function()
  it("raises naming the call, and a later put's item is not lost", function()
    H.run(rt, function()
      local q = rt.Queue()
      for kind, e in pairs(unyieldable(function() q:get() end)) do
        assert.matches(reason("duet.Queue:get"), e, 1, true)
        assert.matches("spec/regress/coroutines_unyieldable_block_spec.lua:%d+: ",
          e, 1, false, kind)
      end
      assert.is_true(q:put("item"))
      assert.are.equal("item", q:get(0))
    end)
  end)

  it("leaves no stale timer to end a later untimed wait", function()
    H.run(rt, function()
      local errs = unyieldable(function() rt.Event():wait(0.001) end)
      assert.matches(reason("duet.Event:wait"), errs.sort, 1, true)
      unyieldable(function() rt.sleep(0.001) end)
      local ev = rt.Event()
      -- the setter's deadline comes after every stale one would have
      rt.spawn(function() rt.sleep(0.05) ev:set() end)
      assert.is_true(ev:wait())
    end)
  end)

  it("does not take a released Lock for ever", function()
    H.run(rt, function()
      local lock = rt.Lock()
      local holder = rt.spawn(function() lock:acquire() end)
      holder:join()
      unyieldable(function() lock:acquire() end)
      lock:release()
      assert.is_false(lock:locked())
      assert.is_true(lock:acquire(0))
    end)
  end)

  it("changes nothing in objects that count their waiters or work", function()
    H.run(rt, function()
      local b = rt.Barrier(2)
      local errs = unyieldable(function() b:wait() end)
      assert.matches(reason("duet.Barrier:wait"), errs.gsub, 1, true)
      assert.are.equal(0, b.n_waiting)
      assert.is_false(b.broken)
      local ex = rt.Executor{ max_workers = 1 }
      local ran = 0
      errs = unyieldable(function() ex:map(function() ran = ran + 1 end, { 1 }) end)
      assert.matches(reason("duet.Executor:map"), errs.sort, 1, true)
      local put = rt.Queue(1)
      put:put(1)
      errs = unyieldable(function() put:put(2) end)
      assert.matches(reason("duet.Queue:put"), errs.tostring, 1, true)
      assert.are.equal(1, put:get(0))
      assert.is_nil(put:get(0))
      ex:shutdown()
      assert.are.equal(0, ran)
    end)
  end)
end)

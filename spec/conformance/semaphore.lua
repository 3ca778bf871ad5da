-- Conformance: Semaphore and BoundedSemaphore.
local busted = require "busted"
local assert = require "luassert"
local H = require "helpers"
local describe, it = busted.describe, busted.it
local SHORT, LONG = H.SHORT, H.LONG

-- The cases both kinds share.
local function common(rt, ctor)
  local make = rt[ctor]

  describe(ctor .. "()", function()
    it("starts with 1 permit by default", function()
      H.run(rt, function()
        local s = make()
        assert.is_true(s:acquire(0))
        assert.is_false(s:acquire(0))
      end)
    end)

    it("(n) starts with n permits", function()
      H.run(rt, function()
        local s = make(3)
        assert.is_true(s:acquire())
        assert.is_true(s:acquire(0))
        assert.is_true(s:acquire(SHORT))
        assert.is_false(s:acquire(0))
      end)
    end)

    it("(0) starts with none", function()
      H.run(rt, function()
        assert.is_false(make(0):acquire(0))
      end)
    end)
  end)

  describe(":acquire()", function()
    it("(timeout) returns false when none come and takes nothing", function()
      H.run(rt, function()
        local s = make(1)
        s:acquire()
        assert.is_false(s:acquire(SHORT))
        s:release()
        assert.are.equal(1, H.permits(s))
      end)
    end)

    it("blocks until another thread releases", function()
      H.run(rt, function()
        local s, started = make(1), rt.Event()
        s:acquire()
        local th = H.go(rt, function()
          started:set()
          return s:acquire()
        end)
        started:wait(LONG)
        H.settle(rt)
        assert.is_true(th:is_alive())
        s:release()
        assert.are.same({true, true}, {th:join(LONG)})
        assert.are.equal(0, H.permits(s))
      end)
    end)

    H.it_needs(rt, {"SharedTable"}, "never lets more than the start value hold it at once", function()
      H.run(rt, function()
        local s = make(2)
        local t = rt.SharedTable{inside = 0, worst = 0}
        local threads = {}
        for i = 1, 5 do
          threads[i] = H.go(rt, function()
            for _ = 1, 20 do
              s:acquire()
              local n = t:incr("inside")
              t:update("worst", function(w) return n > w and n or w end)
              rt.sleep(0)
              t:incr("inside", -1)
              s:release()
            end
          end)
        end
        for _, th in ipairs(threads) do assert.is_true((th:join())) end
        assert.is_true(t.worst <= 2, "worst " .. t.worst)
      end)
    end)
  end)

  describe(":release()", function()
    it("() adds one permit", function()
      H.run(rt, function()
        local s = make(1)
        s:acquire()
        s:release()
        assert.are.equal(1, H.permits(s))
      end)
    end)

    it("(n) adds n permits and wakes n waiters", function()
      H.run(rt, function()
        local s = make(2)
        s:acquire(); s:acquire()
        local a = rt.spawn(function() return s:acquire(LONG) end)
        local b = rt.spawn(function() return s:acquire(LONG) end)
        H.settle(rt)
        s:release(2)
        assert.are.same({true, true}, {a:join(LONG)})
        assert.are.same({true, true}, {b:join(LONG)})
        assert.are.equal(0, H.permits(s))
      end)
    end)
  end)

  H.describe_with_guard(rt, function() return make() end)
end

return function(rt)
  describe("Semaphore", function()
    if not H.has(rt, "Semaphore") then return end
    H.describe_name(rt, "duet.Semaphore", function() return rt.Semaphore() end)
    common(rt, "Semaphore")

    describe(":release()", function()
      it("may go above the start value", function()
        H.run(rt, function()
          local s = rt.Semaphore(1)
          s:release()
          s:release(2)
          assert.are.equal(4, H.permits(s))
        end)
      end)
    end)
  end)

  describe("BoundedSemaphore", function()
    if not H.has(rt, "BoundedSemaphore") then return end
    H.describe_name(rt, "duet.BoundedSemaphore",
                    function() return rt.BoundedSemaphore() end)
    common(rt, "BoundedSemaphore")

    describe(":release()", function()
      it("raises when released above its start value", function()
        H.run(rt, function()
          local s = rt.BoundedSemaphore()
          assert.has_error(function() s:release() end)
          assert.are.equal(1, H.permits(s))
          local s3 = rt.BoundedSemaphore(3)
          s3:acquire()
          assert.has_error(function() s3:release(2) end)
          assert.are.equal(2, H.permits(s3))  -- the failed release added none
          s3:release()
          assert.are.equal(3, H.permits(s3))
          assert.has_error(function() s3:release() end)
        end)
      end)
    end)
  end)
end

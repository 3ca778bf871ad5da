-- Conformance: Event.
local busted = require "busted"
local assert = require "luassert"
local H = require "helpers"
local describe, it = busted.describe, busted.it
local SHORT, LONG = H.SHORT, H.LONG

return function(rt)
  describe("Event", function()
    if not H.has(rt, "Event") then return end

    H.describe_name(rt, "duet.Event", function() return rt.Event() end)

    describe(":is_set()", function()
      it("is false for a new event", function()
        H.run(rt, function()
          assert.is_false(rt.Event():is_set())
        end)
      end)
    end)

    describe(":set()", function()
      it("sets the flag, and setting twice is harmless", function()
        H.run(rt, function()
          local ev = rt.Event()
          ev:set()
          assert.is_true(ev:is_set())
          ev:set()
          assert.is_true(ev:is_set())
        end)
      end)

      it("is seen by other threads", function()
        H.run(rt, function()
          local ev = rt.Event()
          ev:set()
          local th = rt.spawn(function() return ev:is_set() end)
          assert.are.same({true, true}, {th:join()})
        end)
      end)

      it("wakes every waiting thread", function()
        H.run(rt, function()
          local ev = rt.Event()
          local threads = {}
          for i = 1, 3 do threads[i] = H.go(rt, function() return ev:wait() end) end
          H.settle(rt)
          ev:set()
          for _, th in ipairs(threads) do
            assert.are.same({true, true}, {th:join(LONG)})
          end
        end)
      end)
    end)

    describe(":clear()", function()
      it("resets the flag", function()
        H.run(rt, function()
          local ev = rt.Event()
          ev:set()
          ev:clear()
          assert.is_false(ev:is_set())
          assert.is_false(ev:wait(0))
          ev:clear()
          assert.is_false(ev:is_set())
        end)
      end)
    end)

    describe(":wait()", function()
      it("returns true at once when set", function()
        H.run(rt, function()
          local ev = rt.Event()
          ev:set()
          assert.is_true(ev:wait())
          assert.is_true(ev:wait(0))
          assert.is_true(ev:wait(SHORT))
          assert.is_true(ev:wait(1))  -- an integer timeout
        end)
      end)

      it("(timeout) returns false when not set in time", function()
        H.run(rt, function()
          local ev = rt.Event()
          assert.is_false(ev:wait(0))
          assert.is_false(ev:wait(SHORT))
          assert.is_false(ev:is_set())
        end)
      end)

      it("(timeout) returns true when set in time by another thread", function()
        H.run(rt, function()
          local ev = rt.Event()
          local th = rt.spawn(function() return ev:wait(LONG) end)
          H.settle(rt)
          ev:set()
          assert.are.same({true, true}, {th:join(LONG)})
        end)
      end)

      it("() blocks until another thread sets it", function()
        H.run(rt, function()
          local ev, started = rt.Event(), rt.Event()
          local th = H.go(rt, function()
            started:set()
            return ev:wait()
          end)
          started:wait(LONG)
          H.settle(rt)
          assert.is_true(th:is_alive())
          ev:set()
          assert.are.same({true, true}, {th:join(LONG)})
        end)
      end)
    end)
  end)
end

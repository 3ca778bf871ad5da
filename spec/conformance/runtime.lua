-- Conformance: choosing a runtime, rt.run, rt.sleep, rt.now, rt.current.
local busted = require "busted"
local assert = require "luassert"
local H = require "helpers"
local duet = require "duet"
local describe, it = busted.describe, busted.it
local SHORT, LONG = H.SHORT, H.LONG

-- mode.virtual_clock: rt runs on the virtual clock (a seeded run).
return function(rt, mode)
  describe("runtime", function()
    describe("duet.runtime()", function()
      it("returns this runtime by its name, the same as duet." .. rt.name, function()
        assert.are.equal(rt, duet.runtime(rt.name))
        assert.are.equal(rt, duet[rt.name])
        assert.are.equal(rt, require("duet." .. rt.name))
      end)

      it("has rt.name '" .. rt.name .. "'", function()
        assert.is_true(rt.name == "threads" or rt.name == "coroutines")
        assert.are.equal(rt, duet.runtime(rt.name))
      end)

      it("is chosen by env DUET_RUNTIME when called without a name #notsan", function()
        local out, ok = H.subprocess(
          'io.write(require("duet").runtime().name)',
          "DUET_RUNTIME=" .. rt.name)
        assert.is_true(ok, out)
        assert.are.equal(rt.name, out)
      end)

      if rt.name == "threads" then
        it("defaults to threads when DUET_RUNTIME is unset #notsan", function()
          local out, ok = H.subprocess(
            'io.write(require("duet").runtime().name)', "-u DUET_RUNTIME")
          assert.is_true(ok, out)
          assert.are.equal("threads", out)
        end)
      end
    end)

    describe("rt.run()", function()
      it("calls main with the extra arguments and returns all its results", function()
        local r = table.pack(rt.run(function(a, b)
          return b, nil, a, "x"
        end, 1, 2))
        assert.are.same({n = 4, 2, nil, 1, "x"}, r)
      end)

      it("returns nothing when main returns nothing", function()
        assert.are.equal(0, select("#", rt.run(function() end)))
      end)

      it("propagates an error in main, with a traceback", function()
        local ok, e = pcall(rt.run, function() error("boom in main") end)
        assert.is_false(ok)
        assert.matches("boom in main", tostring(e))
        assert.matches("traceback", tostring(e))
      end)

      it("can be called again after an error", function()
        pcall(rt.run, function() error("first") end)
        assert.are.equal(42, rt.run(function() return 42 end))
      end)

      H.it_needs(rt, {"Event"}, "waits for every non-daemon thread main started", function()
        local done, th = rt.run(function()
          local done = rt.Event()
          local th = rt.spawn(function()
            rt.sleep(SHORT)
            done:set()
          end)
          return done, th
        end)
        assert.is_true(done:is_set())
        assert.is_false(th:is_alive())
      end)

      H.it_needs(rt, {"Event"}, "does not wait for daemon threads", function()
        local flag, block = rt.run(function()
          local block, flag = rt.Event(), rt.Event()
          rt.Thread{target = function()
            block:wait(LONG)  -- LONG: only a wrong runtime waits this out
            flag:set()
          end, daemon = true}:start()
          return flag, block
        end)
        local set = flag:is_set()
        block:set()  -- lets a threads-runtime daemon end now
        assert.is_false(set)
      end)
    end)

    describe("rt.sleep()", function()
      it("blocks at least the given time", function()
        local elapsed = H.run(rt, function()
          local t0 = rt.now()
          rt.sleep(SHORT)
          return rt.now() - t0
        end)
        assert.is_true(elapsed >= SHORT - 1e-3, "slept " .. elapsed)
      end)

      it("accepts an integer number of seconds", function()
        H.run(rt, function() rt.sleep(0) end)
      end)

      H.it_needs(rt, {"Event"}, "(0) lets other threads run", function()
        local seen = H.run(rt, function()
          local ev = rt.Event()
          rt.spawn(function() ev:set() end)
          local deadline = rt.now() + LONG
          while not ev:is_set() and rt.now() < deadline do rt.sleep(0) end
          return ev:is_set()
        end)
        assert.is_true(seen)
      end)

      H.it_needs(rt, {"Event"}, "blocks only the calling thread", function()
        H.run(rt, function()
          local other, slept = rt.Event(), rt.Event()
          local sleeper = rt.spawn(function()
            rt.sleep(LONG)
            slept:set()
          end)
          rt.spawn(function() other:set() end)
          assert.is_true(other:wait(LONG))
          assert.is_false(slept:is_set())
          sleeper:cancel()
          assert.are.same({false, duet.cancelled}, {sleeper:join(LONG)})
        end)
      end)
    end)

    describe("rt.now()", function()
      it("returns a float number of seconds", function()
        local t = rt.now()
        assert.are.equal("float", math.type(t))
      end)

      it("never goes backwards", function()
        local prev, backwards = rt.now(), 0
        for _ = 1, 10000 do
          local t = rt.now()
          if t < prev then backwards = backwards + 1 end
          prev = t
        end
        assert.are.equal(0, backwards)
      end)

      it("advances by at least the time slept", function()
        local t0, t1 = H.run(rt, function()
          local t0 = rt.now()
          rt.sleep(SHORT)
          return t0, rt.now()
        end)
        assert.is_true(t1 - t0 >= SHORT - 1e-3)
      end)

      local other_name = rt.name == "threads" and "coroutines" or "threads"
      local ok, other = pcall(duet.runtime, other_name)
      if mode and mode.virtual_clock then
        busted.pending("is the same clock as " .. other_name .. "'s (not on the virtual clock)")
      elseif not ok or other.now == nil then
        busted.pending("is the same clock as " .. other_name .. "'s (not loadable yet)")
      else
        it("is the same clock as the other runtime's", function()
          for _ = 1, 100 do
            local a = rt.now()
            local b = other.now()
            local c = rt.now()
            assert.is_true(a <= b and b <= c)
          end
        end)
      end
    end)

    describe("rt.current()", function()
      it("in main is the main thread, named 'MainThread'", function()
        H.run(rt, function()
          local main = rt.current()
          assert.is_not_nil(main)
          assert.are.equal("MainThread", main.name)
          assert.are.equal(main, rt.current())
          assert.is_true(main:is_alive())
          assert.are.equal("integer", math.type(main.ident))
        end)
      end)

      it("outside rt.run is the main thread too", function()
        local main = rt.current()
        assert.is_not_nil(main)
        assert.are.equal("MainThread", main.name)
        assert.are.equal(main, H.run(rt, function() return rt.current() end))
      end)

      it("in a thread is that Thread object", function()
        H.run(rt, function()
          local th = rt.Thread{target = function()
            local me = rt.current()
            return me, me.name, me.ident
          end, name = "me"}
          th:start()
          local ok, me, name, ident = th:join()
          assert.is_true(ok)
          assert.are.equal(th, me)
          assert.are.equal("me", name)
          assert.are.equal(th.ident, ident)
          assert.are_not.equal(rt.current(), me)
        end)
      end)
    end)
  end)
end

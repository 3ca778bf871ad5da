-- Conformance: Barrier.
local busted = require "busted"
local assert = require "luassert"
local H = require "helpers"
local duet = require "duet"
local describe, it = busted.describe, busted.it
local SHORT, LONG = H.SHORT, H.LONG

-- Start `n` threads that each wait on barrier `b` (`passes` times) and
-- return the arrival indices they got; join them all, return the lists.
local function parties(rt, b, n, passes, log)
  local threads = {}
  for i = 1, n do
    threads[i] = rt.spawn(function()
      local got = {}
      for p = 1, passes do
        got[p] = b:wait(LONG)
        if log then log:put("released") end
      end
      return got
    end)
  end
  local results = {}
  for i, th in ipairs(threads) do
    local ok, got = th:join(LONG)
    assert(ok, tostring(got))
    results[i] = got
  end
  return results
end

-- A thread that waits on `b` and returns what the wait gave (pcall'd).
local function waiter(rt, b, timeout)
  return rt.spawn(function()
    local ok, v = pcall(b.wait, b, timeout)
    return ok, v
  end)
end

return function(rt)
  describe("Barrier", function()
    if not H.has_all(rt, "Barrier", "Event") then return end

    H.describe_name(rt, "duet.Barrier", function() return rt.Barrier(2) end)

    describe("rt.Barrier()", function()
      it("has fields parties, n_waiting and broken", function()
        H.run(rt, function()
          local b = rt.Barrier(3)
          assert.are.equal(3, b.parties)
          assert.are.equal(0, b.n_waiting)
          assert.is_false(b.broken)
        end)
      end)
    end)

    describe(":wait()", function()
      it("gives each party a different index 0..parties-1", function()
        H.run(rt, function()
          local b = rt.Barrier(4)
          local idx = {}
          for i, got in ipairs(parties(rt, b, 4, 1)) do idx[i] = got[1] end
          assert.are.same({0, 1, 2, 3}, H.sorted(idx))
        end)
      end)

      it("blocks until parties threads have arrived, counting n_waiting", function()
        H.run(rt, function()
          local b = rt.Barrier(3)
          local a1, a2 = waiter(rt, b, LONG), waiter(rt, b, LONG)
          assert.is_true(H.wait_until(rt, function() return b.n_waiting == 2 end))
          assert.is_true(a1:is_alive() and a2:is_alive())
          local mine = b:wait(LONG)
          local _, ok1, i1 = a1:join(LONG)
          local _, ok2, i2 = a2:join(LONG)
          assert.is_true(ok1 and ok2)
          assert.are.same({0, 1, 2}, H.sorted{mine, i1, i2})
          assert.are.equal(0, b.n_waiting)
        end)
      end)

      it("with 1 party returns 0 at once", function()
        H.run(rt, function()
          local b = rt.Barrier(1)
          assert.are.equal(0, b:wait())
          assert.are.equal(0, b:wait(0))
        end)
      end)

      it("can be passed again and again", function()
        H.run(rt, function()
          local b = rt.Barrier(3)
          for _, got in ipairs(parties(rt, b, 3, 5)) do
            assert.are.equal(5, #got)
          end
          assert.is_false(b.broken)
          assert.are.equal(0, b.n_waiting)
        end)
      end)

      it("(timeout) breaks the barrier and raises duet.broken_barrier", function()
        H.run(rt, function()
          local b = rt.Barrier(2)
          local ok, e = pcall(b.wait, b, SHORT)
          assert.is_false(ok)
          assert.is_true(e == duet.broken_barrier, tostring(e))
          assert.is_true(b.broken)
          ok, e = pcall(b.wait, b, SHORT)  -- stays broken
          assert.is_false(ok)
          assert.is_true(e == duet.broken_barrier, tostring(e))
        end)
      end)

      it("raises duet.broken_barrier in the other waiters when one times out", function()
        H.run(rt, function()
          local b = rt.Barrier(3)
          local a = waiter(rt, b, LONG)
          assert.is_true(H.wait_until(rt, function() return b.n_waiting == 1 end))
          local ok, e = pcall(b.wait, b, SHORT)
          assert.is_false(ok)
          assert.is_true(e == duet.broken_barrier)
          local joined, wok, we = a:join(LONG)
          assert.is_true(joined)
          assert.is_false(wok)
          assert.is_true(we == duet.broken_barrier, tostring(we))
        end)
      end)
    end)

    describe("action", function()
      H.it_needs(rt, {"Queue"}, "runs once per pass, before any party is released", function()
        H.run(rt, function()
          local log = rt.Queue()
          local b = rt.Barrier(3, function() log:put("action") end)
          parties(rt, b, 3, 2, log)
          local seen = {}
          for i = 1, 8 do seen[i] = log:get_nowait() end
          assert.are.same({"action", "released", "released", "released",
                           "action", "released", "released", "released"}, seen)
          assert.are.same({nil, "empty"}, {log:get_nowait()})
        end)
      end)

      H.it_needs(rt, {"Queue"}, "runs in one of the arriving threads", function()
        H.run(rt, function()
          local log = rt.Queue()
          local b = rt.Barrier(2, function() log:put(rt.current()) end)
          local a = rt.spawn(function() return b:wait(LONG) end)
          b:wait(LONG)
          a:join(LONG)
          local who = log:get(0)
          assert.is_true(who == a or who == rt.current())
        end)
      end)
    end)

    describe(":reset()", function()
      it("raises duet.broken_barrier in the waiters, then the barrier is usable again", function()
        H.run(rt, function()
          local b = rt.Barrier(2)
          local a = waiter(rt, b, LONG)
          assert.is_true(H.wait_until(rt, function() return b.n_waiting == 1 end))
          b:reset()
          local _, ok, e = a:join(LONG)
          assert.is_false(ok)
          assert.is_true(e == duet.broken_barrier, tostring(e))
          assert.is_false(b.broken)
          assert.are.equal(0, b.n_waiting)
          local idx = {}
          for i, got in ipairs(parties(rt, b, 2, 1)) do idx[i] = got[1] end
          assert.are.same({0, 1}, H.sorted(idx))
        end)
      end)

      it("repairs a broken barrier", function()
        H.run(rt, function()
          local b = rt.Barrier(2)
          pcall(b.wait, b, 0)
          assert.is_true(b.broken)
          b:reset()
          assert.is_false(b.broken)
          assert.are.equal(2, #parties(rt, b, 2, 1))
        end)
      end)
    end)

    describe(":abort()", function()
      it("breaks the barrier until reset", function()
        H.run(rt, function()
          local b = rt.Barrier(2)
          local a = waiter(rt, b, LONG)
          assert.is_true(H.wait_until(rt, function() return b.n_waiting == 1 end))
          b:abort()
          local _, ok, e = a:join(LONG)
          assert.is_false(ok)
          assert.is_true(e == duet.broken_barrier, tostring(e))
          assert.is_true(b.broken)
          local ok2, e2 = pcall(b.wait, b, LONG)  -- raises at once
          assert.is_false(ok2)
          assert.is_true(e2 == duet.broken_barrier, tostring(e2))
          b:reset()
          assert.is_false(b.broken)
          assert.are.equal(2, #parties(rt, b, 2, 1))
        end)
      end)
    end)
  end)
end

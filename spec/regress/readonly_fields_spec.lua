-- Regression: on the coroutines runtime barrier.parties, n_waiting and
-- broken (and q.maxsize, ex.max_workers, fut.traceback, any method name)
-- took an assignment, and the barrier then misbehaved; any new key went
-- in too. On the threads runtime every assignment to a duet object raised
-- "attempt to index a duet.Barrier value", which says nothing of what went
-- wrong. Now both refuse with the same messages: "field 'k' is read-only"
-- for a field or a method, "cannot set field 'k' of duet.T" for any other
-- key.
local H = require "helpers"
local duet = require "duet"

local function refused(set, expected)
  local ok, e = pcall(set)
  assert.is_false(ok, "the assignment went through: " .. expected)
  assert.matches("regress/readonly_fields_spec.lua:%d+: ", e)
  assert.are.equal(expected, (e:gsub("^.-:%d+: ", "", 1)))
end

for _, name in ipairs { "threads", "coroutines" } do
  local rt = duet[name]

  describe("regression: read-only fields (" .. name .. ")", function()
    it("of a Barrier are refused, and the barrier still works", function()
      H.run(rt, function()
        local b = rt.Barrier(2)
        refused(function() b.parties = 1 end, "field 'parties' is read-only")
        refused(function() b.n_waiting = 1 end, "field 'n_waiting' is read-only")
        refused(function() b.broken = true end, "field 'broken' is read-only")
        refused(function() b.wait = print end, "field 'wait' is read-only")
        refused(function() b.color = "red" end,
          "cannot set field 'color' of duet.Barrier")
        assert.are.same({ 2, 0, false }, { b.parties, b.n_waiting, b.broken })
        local other = rt.spawn(function() return b:wait(H.LONG) end)
        local mine = b:wait(H.LONG)
        local ok, theirs = other:join(H.LONG)
        assert.is_true(ok)
        assert.are.same({ 0, 1 }, { math.min(mine, theirs), math.max(mine, theirs) })
      end)
    end)

    it("of every other object are refused the same way", function()
      H.run(rt, function()
        local q = rt.Queue(3)
        refused(function() q.maxsize = 10 end, "field 'maxsize' is read-only")
        refused(function() q.put = print end, "field 'put' is read-only")
        refused(function() q[1] = "x" end, "cannot set field '1' of duet.Queue")
        assert.are.equal(3, q.maxsize)
        local p = rt.PriorityQueue()
        refused(function() p.maxsize = 1 end, "field 'maxsize' is read-only")
        refused(function() rt.LifoQueue().x = 1 end,
          "cannot set field 'x' of duet.LifoQueue")

        local ex = rt.Executor { max_workers = 1 }
        local ok_fut = ex:submit(function() return 1 end)
        local bad_fut = ex:submit(function() error("boom") end)
        for _, f in ipairs { ok_fut, bad_fut } do
          refused(function() f.traceback = "x" end, "field 'traceback' is read-only")
        end
        assert.are.equal(1, ok_fut:result(H.LONG))
        assert.is_nil(ok_fut.traceback)
        refused(function() ok_fut.traceback = "x" end, "field 'traceback' is read-only")
        assert.are.equal("boom", (bad_fut:exception(H.LONG):gsub("^.-:%d+: ", "")))
        refused(function() bad_fut.traceback = "x" end, "field 'traceback' is read-only")
        assert.matches("boom", bad_fut.traceback)
        refused(function() bad_fut.result = print end, "field 'result' is read-only")
        refused(function() ok_fut.x = 1 end, "cannot set field 'x' of duet.Future")
        refused(function() ex.submit = print end, "field 'submit' is read-only")
        ex:shutdown()

        local th = rt.spawn(function() end)
        th:join(H.LONG)
        refused(function() th.ident = 1 end, "field 'ident' is read-only")
        refused(function() th.traceback = "x" end, "field 'traceback' is read-only")
        refused(function() th.join = print end, "field 'join' is read-only")
        refused(function() th.color = 1 end, "cannot set field 'color' of duet.Thread")

        for ctor, o in pairs {
          Lock = rt.Lock(), RLock = rt.RLock(), Semaphore = rt.Semaphore(),
          BoundedSemaphore = rt.BoundedSemaphore(), Condition = rt.Condition(),
          Event = rt.Event(), TokenBucket = rt.TokenBucket { capacity = 1, rate = 1 },
        } do
          local method = ctor == "Event" and "set" or ctor == "TokenBucket"
            and "take" or "acquire"
          refused(function() o[method] = print end,
            ("field '%s' is read-only"):format(method))
          refused(function() o.x = 1 end,
            ("cannot set field 'x' of duet.%s"):format(ctor))
        end
        local lock = rt.Lock()
        do
          local g <close> = lock:guard()
          refused(function() g.x = 1 end, "cannot set field 'x' of duet.Guard")
        end
        assert.is_false(lock:locked())
        refused(function() duet.cancelled.x = 1 end,
          "cannot set field 'x' of duet.Error")
      end)
    end)
  end)
end

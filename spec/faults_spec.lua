-- Faults (issue 8; DESIGN.md "Reliability: what must hold"): errors in
-- thread targets, executor tasks, done callbacks and the excepthook
-- itself; finalizers (__gc) of moved values that raise; a thread whose
-- state runs out of memory. Each reaches the place it should (join,
-- result, the excepthook) and never disturbs another thread, the runtime
-- or the process.
--
-- Thread targets are copied into their own Lua state (threads runtime):
-- they get what they need through arguments and upvalues that move (rt,
-- duet, duet objects, plain data) and report through return values and
-- duet objects. Cases whose outcome is on stderr or the exit status run
-- in a child lua5.4.

local busted = require "busted"
local assert = require "luassert"
local describe, it = busted.describe, busted.it
local before_each, after_each = busted.before_each, busted.after_each
local duet = require "duet"
local H = require "helpers"

local LONG = H.LONG

--- Message without the "file:line: " prefix.
local function strip(e)
  return (tostring(e):gsub("^.-:%d+: ", "", 1))
end

for _, name in ipairs{ "threads", "coroutines" } do
  local rt = duet.runtime(name)

  describe("faults on " .. name, function()
    -- errors raised on purpose below are joined or reported explicitly;
    -- keep the default hook from printing them, and put it back after
    local saved
    before_each(function()
      saved = duet.excepthook
      duet.excepthook = function() end
    end)
    after_each(function() duet.excepthook = saved end)

    describe("an error in a thread target", function()
      it("reaches its join with a traceback, and 50 threads failing beside 50 working ones change nothing for those", function()
        local r = H.run(rt, function()
          local ths = {}
          for i = 1, 100 do
            ths[i] = rt.spawn(function(i)
              rt.sleep(0)
              if i % 2 == 0 then error("thread " .. i .. " failed", 0) end
              return i * 3
            end, i)
          end
          local r = { sum = 0, errors = 0, tracebacks = 0 }
          for i, th in ipairs(ths) do
            local ok, v = th:join(LONG)
            if i % 2 == 0 then
              if ok == false and v == "thread " .. i .. " failed" then r.errors = r.errors + 1 end
              if type(th.traceback) == "string" and th.traceback:find("stack traceback", 1, true) then
                r.tracebacks = r.tracebacks + 1
              end
            elseif ok then
              r.sum = r.sum + v
            end
          end
          return r
        end)
        local odd = 0
        for i = 1, 100, 2 do odd = odd + i * 3 end
        assert.are.same({ sum = odd, errors = 50, tracebacks = 50 }, r)
      end)

      it("does not disturb the threads it shared a queue with: the others move every item", function()
        local got, failed = H.run(rt, function()
          local q = rt.Queue(4)
          local producers = {}
          for p = 1, 3 do
            producers[p] = rt.spawn(function(p)
              for i = 1, 200 do
                q:put(p * 1000 + i)
                if p == 2 and i == 50 then error("producer 2 gives up") end
              end
            end, p)
          end
          local consumer = rt.spawn(function()
            local n, sum = 0, 0
            for x in q:iter() do n, sum = n + 1, sum + x end
            return n, sum
          end)
          local failed = {}
          for p = 1, 3 do failed[p] = not (producers[p]:join(LONG)) end
          q:close()
          return table.pack(consumer:join(LONG)), failed
        end)
        local sum = 0
        for _, p in ipairs{1, 3} do for i = 1, 200 do sum = sum + p * 1000 + i end end
        for i = 1, 50 do sum = sum + 2000 + i end
        assert.are.same({false, true, false}, failed)
        assert.are.same({n = 3, true, 450, sum}, got)
      end)

      it("inside lock:with() releases the lock: the other threads go on taking it", function()
        local results = H.run(rt, function()
          local lock, count = rt.Lock(), rt.SharedTable{n = 0}
          local ths = {}
          for i = 1, 6 do
            ths[i] = rt.spawn(function(i)
              for k = 1, 100 do
                lock:with(function()
                  count.n = count.n + 1
                  if i <= 3 and k == 10 then error("fails holding the lock") end
                end)
              end
              return "done"
            end, i)
          end
          local r = {}
          for i = 1, 6 do
            local ok, v = ths[i]:join(LONG)
            r[i] = ok and v or strip(v)
          end
          r.n, r.locked = count.n, lock:locked()
          return r
        end)
        assert.are.same({ "fails holding the lock", "fails holding the lock",
          "fails holding the lock", "done", "done", "done", n = 330, locked = false }, results)
      end)
    end)

    describe("an error in an executor task", function()
      it("is re-raised by result and given by exception; the worker goes on with the next tasks", function()
        local r = H.run(rt, function()
          local ex <close> = rt.Executor{max_workers = 1}
          local futs = {}
          for i = 1, 30 do
            futs[i] = ex:submit(function(i)
              if i % 3 == 0 then error({code = i}) end
              return i
            end, i)
          end
          local r = { values = 0, raised = 0, exceptions = 0 }
          for i, f in ipairs(futs) do
            local ok, v = pcall(f.result, f, LONG)
            if i % 3 == 0 then
              if not ok and type(v) == "table" and v.code == i then r.raised = r.raised + 1 end
              local e = f:exception(LONG)
              if type(e) == "table" and e.code == i then r.exceptions = r.exceptions + 1 end
            elseif ok then
              r.values = r.values + v
            end
          end
          r.after = ex:submit(function() return "still working" end):result(LONG)
          return r
        end)
        local sum = 0
        for i = 1, 30 do if i % 3 ~= 0 then sum = sum + i end end
        assert.are.same({ values = sum, raised = 10, exceptions = 10, after = "still working" }, r)
      end)

      it("makes map raise it, and leaves the executor usable", function()
        local msg, after = H.run(rt, function()
          local ex <close> = rt.Executor{max_workers = 2}
          local ok, e = pcall(ex.map, ex, function(x)
            if x == 4 then error("task 4 failed", 0) end
            return x
          end, {1, 2, 3, 4, 5, 6}, LONG)
          return not ok and e, ex:map(function(x) return x * x end, {1, 2, 3}, LONG)
        end)
        assert.are.equal("task 4 failed", strip(msg))
        assert.are.same({n = 3, 1, 4, 9}, after)
      end)
    end)

    describe("an error in a done callback", function()
      it("goes to the excepthook; the future keeps its result, later callbacks still run, the executor goes on", function()
        local r = H.run(rt, function()
          local reports, log = rt.Queue(), rt.Queue()
          duet.excepthook = function(th, e) reports:put(tostring(e)) end
          local ex <close> = rt.Executor{max_workers = 1}
          local gate = rt.Event()
          local f = ex:submit(function() gate:wait(LONG); return "fine" end)
          f:add_done_callback(function() error("callback boom", 0) end)
          f:add_done_callback(function(fut) log:put(fut:result()) end)
          gate:set()
          local r = { logged = log:get(LONG), report = reports:get(LONG), result = f:result(LONG) }
          -- on a done future the callback runs at once, in this thread
          f:add_done_callback(function() error("late boom", 0) end)
          r.late = reports:get(LONG)
          r.after = ex:submit(function() return 2 end):result(LONG)
          return r
        end)
        assert.are.same({ logged = "fine", report = "callback boom", result = "fine",
                          late = "late boom", after = 2 }, r)
      end)
    end)

    describe("an excepthook that raises", function()
      -- (#notsan: a child process; /bin/sh crashes with TSan preloaded)
      it("is reported on stderr; the process goes on and the failed thread's join still works #notsan", function()
        local out, err, status = H.child(([[
local duet = require "duet"
local rt = duet.runtime(%q)
local hooked = rt.Event()
duet.excepthook = function(th, e)
  hooked:set()
  error("hook failed for " .. th.name, 0)
end
rt.run(function()
  local th = rt.Thread{target = function() error("boom", 0) end, name = "victim"}
  th:start()
  assert(hooked:wait(10), "the hook never ran")   -- it failed with nobody joining
  print("join", th:join(5))
  print("another", rt.spawn(function() return 42 end):join(5))
  local ex = rt.Executor{max_workers = 1}
  local f = ex:submit(function() return 7 end)
  f:add_done_callback(function() error("callback boom", 0) end)
  print("result", f:result(5))
  print("executor", ex:submit(function() return 8 end):result(5))
  ex:shutdown()
end)
print("main done")
]]):format(name))
        assert.are.equal(0, status, err)
        assert.are.equal("join\tfalse\tboom\nanother\ttrue\t42\nresult\t7\nexecutor\t8\nmain done\n", out)
        assert.matches("hook failed for victim", err, 1, true)
      end)
    end)
  end)
end

describe("faults on threads only", function()
  local rt = duet.threads
  local saved
  before_each(function()
    saved = duet.excepthook
    duet.excepthook = function() end
  end)
  after_each(function() duet.excepthook = saved end)

  describe("__gc of a moved value", function()
    --- A table whose finalizer reports self.where on `q` and then raises.
    local function doomed(q, where)
      return setmetatable({ where = where }, { __gc = function(self)
        q:put("gc in " .. self.where)
        error("finalizer boom")
      end })
    end

    it("moved into a thread runs in the receiving state when it closes; its error crashes nothing", function()
      local q = rt.Queue()
      local objs = {}
      for i = 1, 10 do objs[i] = doomed(q, "main") end
      local th = rt.spawn(function(objs)
        for _, o in ipairs(objs) do o.where = "thread" end
        return "ok"
      end, objs)
      assert.are.same({true, "ok"}, {th:join(LONG)})
      local got = {}
      for i = 1, 10 do got[i] = q:get(LONG) end
      for i = 1, 10 do objs[i].where = "main, collected" end
      assert.are.same({nil, "empty"}, {q:get(H.SHORT)})
      for i = 1, 10 do assert.are.equal("gc in thread", got[i]) end
      -- the originals still run theirs here, and raise, harmlessly
      objs = nil   -- luacheck: ignore 311 (for the collector)
      collectgarbage()
      collectgarbage()
      for _ = 1, 10 do assert.are.equal("gc in main, collected", q:get(LONG)) end
      -- the runtime is fine
      assert.are.same({true, 5}, {rt.spawn(function() return 5 end):join(LONG)})
    end)

    it("moved through a queue runs in the consumer's state; the consumer's join is unaffected", function()
      local q, reports = rt.Queue(), rt.Queue()
      local consumer = rt.spawn(function()
        local n = 0
        for o in q:iter() do o.where = "consumer"; n = n + 1 end
        return n
      end)
      for _ = 1, 20 do q:put(doomed(reports, "producer")) end
      q:close()
      assert.are.same({true, 20}, {consumer:join(LONG)})
      collectgarbage()
      collectgarbage()
      local counts = {}
      for _ = 1, 40 do
        local r = reports:get(LONG)
        counts[r] = (counts[r] or 0) + 1
      end
      assert.are.same({["gc in consumer"] = 20, ["gc in producer"] = 20}, counts)
    end)

    it("returned by a thread runs in the joining state when collected", function()
      local reports = rt.Queue()
      local th = rt.spawn(function(mk) return mk(reports, "sender") end, doomed)
      local ok, obj = th:join(LONG)
      assert.is_true(ok)
      assert.are.equal("gc in sender", reports:get(LONG))  -- the thread's own copy, at its close
      obj.where = "joiner"
      obj = nil  -- luacheck: ignore
      collectgarbage()
      collectgarbage()
      assert.are.equal("gc in joiner", reports:get(LONG))
    end)
  end)

  describe("a thread whose state runs out of memory", function()
    --- A thread capped at 1 MB whose target is fn(...), started.
    local function capped(fn, ...)
      local th = rt.Thread{target = fn, args = table.pack(...), memory_limit = 1000000, daemon = true}
      th:start()
      return th
    end

    it("ends with false, 'not enough memory' (growing a table or a string), and the process goes on", function()
      local a = capped(function()
        local t = {}
        for i = 1, 1e7 do t[i] = ("x"):rep(50) .. i end
        return #t
      end)
      local b = capped(function()
        local s = "x"
        while true do s = s .. s end
      end)
      assert.are.same({false, "not enough memory"}, {a:join(LONG)})
      assert.are.same({false, "not enough memory"}, {b:join(LONG)})
      local big = {}
      for i = 1, 1e5 do big[i] = i end
      assert.are.equal(1e5, #big)
    end)

    it("never disturbs the threads running beside it", function()
      local workers = {}
      for w = 1, 4 do
        workers[w] = rt.spawn(function(w)
          local t, sum = {}, 0
          for i = 1, 200000 do t[i] = i * w end
          for i = 1, #t do sum = sum + t[i] end
          return sum
        end, w)
      end
      local doomed = {}
      for i = 1, 8 do
        doomed[i] = capped(function()
          local t = {}   -- luacheck: ignore 241 (only to fill memory)
          for k = 1, 1e7 do t[k] = {k} end
        end)
      end
      for i = 1, 8 do
        assert.are.same({false, "not enough memory"}, {doomed[i]:join(LONG)})
      end
      for w = 1, 4 do
        assert.are.same({true, w * 200000 * 200001 // 2}, {workers[w]:join(LONG)})
      end
    end)

    it("can catch the error with pcall and go on, its duet objects still working", function()
      local q = rt.Queue()
      local th = capped(function()
        local ok, e = pcall(function()
          local t = {}   -- luacheck: ignore 241 (only to fill memory)
          for i = 1, 1e7 do t[i] = i end
        end)
        collectgarbage()
        q:put("still here")
        return ok, e
      end)
      assert.are.same({true, false, "not enough memory"}, {th:join(LONG)})
      assert.are.equal("still here", q:get(0))
    end)

    it("inside lock:with() releases the lock", function()
      local lock = rt.Lock()
      local th = capped(function()
        lock:with(function()
          local t = {}   -- luacheck: ignore 241 (only to fill memory)
          for i = 1, 1e7 do t[i] = i end
        end)
      end)
      assert.are.same({false, "not enough memory"}, {th:join(LONG)})
      assert.is_false(lock:locked())
    end)

    it("leaves a shared value it could not read where it was", function()
      local t = rt.SharedTable()
      t.big = ("w"):rep(2000000)
      local th = capped(function() return #t.big end)
      assert.are.same({false, "not enough memory"}, {th:join(LONG)})
      assert.are.equal(2000000, #t.big)
    end)

    -- FAILS (lost item): the get takes the item off the queue, then cannot
    -- decode it into the capped state; the item is gone from both.
    it("loses no queue item it could not take in for lack of memory", function()
      local q = rt.Queue()
      q:put(("z"):rep(2000000))
      q:put("small")
      local th = capped(function()
        local ok, e = pcall(q.get, q)
        return ok, ok and #e or e
      end)
      assert.are.same({true, false, "not enough memory"}, {th:join(LONG)})
      assert.are.equal(2, q:size())
      assert.are.equal(2000000, #q:get(0))
      assert.are.equal("small", q:get(0))
    end)

    it("refuses a memory_limit that is not a positive integer", function()
      for _, bad in ipairs{ -1, 0, 1.5, "x", 0/0, true } do
        assert.has_error(function() rt.Thread{target = print, memory_limit = bad} end,
          "bad argument #1 to 'Thread' (field 'memory_limit': positive integer expected)")
      end
    end)
  end)

  describe("an error value that cannot move", function()
    it("reaches join as a string describing it (a thread raising a file handle)", function()
      local ok, e = rt.spawn(function() error(io.stdout) end):join(LONG)
      assert.is_false(ok)
      assert.are.equal("string", type(e))
      assert.matches("^file %(", e)
    end)

    it("a result that cannot move makes the join give false and the reason", function()
      assert.are.same({false, "cannot move coroutine at results[1]"},
        {rt.spawn(function() return coroutine.create(print) end):join(LONG)})
    end)
  end)
end)

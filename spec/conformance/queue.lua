-- Conformance: Queue, LifoQueue, PriorityQueue.
local busted = require "busted"
local assert = require "luassert"
local H = require "helpers"
local describe, it = busted.describe, busted.it
local SHORT, LONG = H.SHORT, H.LONG

-- Take everything `q` holds now, without blocking.
local function drain(q)
  local items = {}
  while true do
    local item = q:get_nowait()
    if item == nil then return items end
    items[#items + 1] = item
  end
end

-- Put each of `list` into `q`.
local function fill(q, list)
  for _, v in ipairs(list) do assert.is_true(q:put(v)) end
  return q
end

-- The order each kind gives 1, 2, 3 back in.
local ORDER = {
  Queue = {1, 2, 3},
  LifoQueue = {3, 2, 1},
  PriorityQueue = {1, 2, 3},
}

-- The cases every kind of queue shares.
local function common(rt, kind)
  local Q = rt[kind]

  H.describe_name(rt, "duet." .. kind, function() return Q() end)

  describe("rt." .. kind .. "()", function()
    it("is unbounded by default: maxsize 0", function()
      H.run(rt, function()
        local q = Q()
        assert.are.equal(0, q.maxsize)
        for i = 1, 1000 do assert.is_true(q:put_nowait(i)) end
        assert.is_false(q:full())
        assert.are.equal(1000, q:size())
      end)
    end)

    it("(maxsize) bounds the queue", function()
      H.run(rt, function()
        local q = Q(2)
        assert.are.equal(2, q.maxsize)
        assert.is_true(q:put(1))
        assert.is_true(q:put(2))
        assert.is_true(q:full())
        assert.are.same({nil, "full"}, {q:put_nowait(3)})
      end)
    end)

    it("(maxsize <= 0) is unbounded", function()
      H.run(rt, function()
        for _, m in ipairs{0, -1} do
          local q = Q(m)
          for i = 1, 100 do assert.is_true(q:put_nowait(i)) end
          assert.is_false(q:full())
        end
      end)
    end)
  end)

  describe(":put()", function()
    it("returns true and the item comes back from get", function()
      H.run(rt, function()
        local q = Q()
        assert.is_true(q:put(7))
        assert.are.equal(7, q:get())
      end)
    end)

    it("blocks while full until a get makes room", function()
      H.run(rt, function()
        local q, started = Q(1), rt.Event()
        q:put(1)
        local th = H.go(rt, function()
          started:set()
          return q:put(2)
        end)
        started:wait(LONG)
        H.settle(rt)
        assert.is_true(th:is_alive())
        assert.are.equal(1, q:size())
        assert.are.equal(1, q:get())
        assert.are.same({true, true}, {th:join(LONG)})
        assert.are.equal(2, q:get(0))
      end)
    end)

    it("(timeout) on a full queue returns nil, 'full' and enqueues nothing", function()
      H.run(rt, function()
        local q = Q(2)
        q:put(1); q:put(2)
        assert.are.same({nil, "full"}, {q:put(3, SHORT)})
        assert.are.same({nil, "full"}, {q:put(3, 0)})
        assert.are.equal(2, q:size())
        assert.are.same(H.sorted{1, 2}, H.sorted(drain(q)))
      end)
    end)

    it("(timeout) succeeds when room is made in time", function()
      H.run(rt, function()
        local q = Q(1)
        q:put(1)
        local th = rt.spawn(function() return q:put(2, LONG) end)
        H.settle(rt)
        q:get()
        assert.are.same({true, true}, {th:join(LONG)})
        assert.are.equal(2, q:get(0))
      end)
    end)

    it("raises on a closed queue", function()
      H.run(rt, function()
        local q = Q()
        q:close()
        assert.has_error(function() q:put(1) end)
        assert.has_error(function() q:put(1, 0) end)
        assert.are.equal(0, q:size())
      end)
    end)
  end)

  describe(":get()", function()
    it("blocks while empty until another thread puts", function()
      H.run(rt, function()
        local q, started = Q(), rt.Event()
        local th = H.go(rt, function()
          started:set()
          return q:get()
        end)
        started:wait(LONG)
        H.settle(rt)
        assert.is_true(th:is_alive())
        q:put("x")
        assert.are.same({true, "x"}, {th:join(LONG)})
        assert.is_true(q:empty())
      end)
    end)

    it("(timeout) on an empty queue returns nil, 'empty' and takes nothing", function()
      H.run(rt, function()
        local q = Q()
        assert.are.same({nil, "empty"}, {q:get(SHORT)})
        assert.are.same({nil, "empty"}, {q:get(0)})
        q:put(5)
        assert.are.equal(5, q:get(0))
        q:put(6, 1)                   -- integer timeouts
        assert.are.equal(6, q:get(1))
      end)
    end)

    it("(timeout) returns an item put in time", function()
      H.run(rt, function()
        local q = Q()
        local th = rt.spawn(function() return q:get(LONG) end)
        H.settle(rt)
        q:put("late")
        assert.are.same({true, "late"}, {th:join(LONG)})
      end)
    end)

    it("carries integers, floats and strings", function()
      H.run(rt, function()
        local q = Q()
        q:put(3)
        assert.are.equal("integer", math.type(q:get(0)))
        q:put(3.0)
        assert.are.equal("float", math.type(q:get(0)))
        q:put("s")
        assert.are.equal("s", q:get(0))
      end)
    end)

    if kind == "PriorityQueue" then
      it("carries tables whose [1] is the priority, every field kept", function()
        H.run(rt, function()
          local q = Q()
          q:put({1, a = 1, b = {2, 3}})
          assert.are.same({1, a = 1, b = {2, 3}}, q:get(0))
        end)
      end)
    else
      it("carries false, true and tables", function()
        H.run(rt, function()
          local q = Q()
          q:put(false)
          local r = table.pack(q:get(0))
          assert.are.same({n = 1, false}, r)
          q:put(true)
          assert.is_true(q:get(0))
          q:put({a = 1, b = {2, 3}})
          assert.are.same({a = 1, b = {2, 3}}, q:get(0))
        end)
      end)
    end

    it("moves items between threads intact", function()
      H.run(rt, function()
        -- one queue each way: a thread getting from the queue it put to
        -- could take its own item back
        local q, replies = Q(), Q()
        local th = rt.spawn(function()
          q:put({1, name = "item", values = {1, 2, 3}})
          return replies:get(LONG)
        end)
        local item = q:get(LONG)
        assert.are.same({1, name = "item", values = {1, 2, 3}}, item)
        replies:put({2, "back"})
        assert.are.same({true, {2, "back"}}, {th:join(LONG)})
      end)
    end)

    it("hands each item to exactly one of several getters", function()
      H.run(rt, function()
        local q = Q()
        local threads = {}
        for i = 1, 4 do
          threads[i] = rt.spawn(function()
            local got = {}
            while true do
              local v = q:get(LONG)
              if v == nil then return got end
              got[#got + 1] = v
            end
          end)
        end
        for i = 1, 200 do q:put(i) end
        q:close()
        local all = {}
        for _, th in ipairs(threads) do
          local ok, got = th:join(LONG)
          assert.is_true(ok)
          for _, v in ipairs(got) do all[#all + 1] = v end
        end
        table.sort(all)
        local want = {}
        for i = 1, 200 do want[i] = i end
        assert.are.same(want, all)
      end)
    end)
  end)

  describe(":put_nowait() / :get_nowait()", function()
    it("put without blocking: true, or nil, 'full'", function()
      H.run(rt, function()
        local q = Q(1)
        assert.is_true(q:put_nowait("a"))
        assert.are.same({nil, "full"}, {q:put_nowait("b")})
        assert.are.equal(1, q:size())
      end)
    end)

    it("get without blocking: the item, or nil, 'empty'", function()
      H.run(rt, function()
        local q = Q()
        assert.are.same({nil, "empty"}, {q:get_nowait()})
        q:put("a")
        assert.are.equal("a", q:get_nowait())
        assert.are.same({nil, "empty"}, {q:get_nowait()})
      end)
    end)
  end)

  describe(":put_many()", function()
    it("puts every item and returns true", function()
      H.run(rt, function()
        local q = Q()
        assert.is_true(q:put_many({1, 2, 3}))
        assert.are.equal(3, q:size())
        assert.are.same(ORDER[kind], drain(q))
      end)
    end)

    it("(timeout) puts nothing when not all fit: nil, 'full'", function()
      H.run(rt, function()
        local q = Q(3)
        q:put(1)
        assert.are.same({nil, "full"}, {q:put_many({2, 3, 4}, SHORT)})
        assert.are.same({nil, "full"}, {q:put_many({2, 3, 4}, 0)})
        assert.are.equal(1, q:size())
        assert.is_true(q:put_many({2, 3}, 0))
        assert.are.equal(3, q:size())
      end)
    end)

    it("blocks until there is room for every item", function()
      H.run(rt, function()
        local q, started = Q(2), rt.Event()
        q:put(1)
        local th = H.go(rt, function()
          started:set()
          return q:put_many({2, 3})
        end)
        started:wait(LONG)
        H.settle(rt)
        assert.is_true(th:is_alive())
        assert.are.equal(1, q:get())
        assert.are.same({true, true}, {th:join(LONG)})
        assert.are.same(H.sorted{2, 3}, H.sorted(drain(q)))
      end)
    end)

    it("raises on a closed queue", function()
      H.run(rt, function()
        local q = Q()
        q:close()
        assert.has_error(function() q:put_many({1, 2}) end)
        assert.are.equal(0, q:size())
      end)
    end)
  end)

  describe(":get_many()", function()
    it("returns a list of up to max items", function()
      H.run(rt, function()
        local q = fill(Q(), {1, 2, 3})
        local got = q:get_many(2)
        assert.are.equal(2, #got)
        local rest = q:get_many(10)  -- fewer than max: what there is
        assert.are.equal(1, #rest)
        got[3] = rest[1]
        assert.are.same(ORDER[kind], got)
      end)
    end)

    it("(timeout) on an empty queue returns nil, 'empty'", function()
      H.run(rt, function()
        local q = Q()
        assert.are.same({nil, "empty"}, {q:get_many(3, SHORT)})
        assert.are.same({nil, "empty"}, {q:get_many(3, 0)})
      end)
    end)

    it("blocks while empty, then returns what arrived (at least one)", function()
      H.run(rt, function()
        local q = Q()
        local th = H.go(rt, function() return q:get_many(5) end)
        H.settle(rt)
        q:put("a")
        local ok, got = th:join(LONG)
        assert.is_true(ok)
        assert.are.same({"a"}, got)
      end)
    end)

    it("returns nil, 'closed' once closed and drained", function()
      H.run(rt, function()
        local q = fill(Q(), {1, 2})
        q:close()
        assert.are.equal(2, #q:get_many(5))
        assert.are.same({nil, "closed"}, {q:get_many(5)})
        assert.are.same({nil, "closed"}, {q:get_many(5, SHORT)})
      end)
    end)
  end)

  describe(":size() / :empty() / :full()", function()
    it("follow the contents", function()
      H.run(rt, function()
        local q = Q(2)
        assert.are.equal(0, q:size())
        assert.is_true(q:empty())
        assert.is_false(q:full())
        q:put(1)
        assert.are.equal(1, q:size())
        assert.is_false(q:empty())
        assert.is_false(q:full())
        q:put(2)
        assert.are.equal(2, q:size())
        assert.is_true(q:full())
        q:get()
        assert.are.equal(1, q:size())
        assert.is_false(q:full())
      end)
    end)
  end)

  describe(":task_done() / :join()", function()
    it("join returns true at once when no task is unfinished", function()
      H.run(rt, function()
        local q = Q()
        assert.is_true(q:join())
        assert.is_true(q:join(0))
      end)
    end)

    it("join(timeout) returns false while tasks are unfinished", function()
      H.run(rt, function()
        local q = Q()
        q:put(1)
        assert.is_false(q:join(SHORT))
        q:get()
        assert.is_false(q:join(0))  -- got but not done yet
        q:task_done()
        assert.is_true(q:join(0))
      end)
    end)

    it("join blocks until a worker marks every item done", function()
      H.run(rt, function()
        local q = fill(Q(), {1, 2, 3})
        local worker = H.go(rt, function()
          for _ = 1, 3 do
            q:get()
            rt.sleep(0)
            q:task_done()
          end
        end)
        assert.is_true(q:join())
        assert.is_true(q:empty())
        worker:join()
      end)
    end)

    it("counts each item of put_many as a task", function()
      H.run(rt, function()
        local q = Q()
        q:put_many({1, 2})
        q:get_many(2)
        q:task_done()
        assert.is_false(q:join(0))
        q:task_done()
        assert.is_true(q:join(0))
      end)
    end)

    it("task_done raises when called more times than items were put", function()
      H.run(rt, function()
        local q = Q()
        assert.has_error(function() q:task_done() end)
        q:put(1)
        q:get()
        q:task_done()
        assert.has_error(function() q:task_done() end)
        assert.is_true(q:join(0))
      end)
    end)
  end)

  describe(":close()", function()
    it("lets getters drain what is left, then gives nil, 'closed'", function()
      H.run(rt, function()
        local q = fill(Q(), {1, 2, 3})
        q:close()
        local got = {q:get(), q:get_nowait(), q:get(SHORT)}
        assert.are.same(ORDER[kind], got)
        assert.are.same({nil, "closed"}, {q:get()})
        assert.are.same({nil, "closed"}, {q:get_nowait()})
        assert.are.same({nil, "closed"}, {q:get(SHORT)})
      end)
    end)

    it("wakes waiting getters with nil, 'closed'", function()
      H.run(rt, function()
        local q = Q()
        local a = H.go(rt, function() return q:get() end)
        local b = rt.spawn(function() return q:get(LONG) end)
        H.settle(rt)
        q:close()
        assert.are.same({true, nil, "closed"}, {a:join(LONG)})
        assert.are.same({true, nil, "closed"}, {b:join(LONG)})
      end)
    end)

    it("makes waiting putters raise, enqueuing nothing", function()
      H.run(rt, function()
        local q, started = Q(1), rt.Event()
        q:put("kept")
        local th = H.go(rt, function()
          started:set()
          return q:put("lost")
        end)
        started:wait(LONG)
        H.settle(rt)
        q:close()
        local ok = th:join(LONG)
        assert.is_false(ok)
        assert.are.same({"kept"}, drain(q))
        assert.are.same({nil, "closed"}, {q:get(0)})
      end)
    end)

    it("makes puts raise, even put_nowait", function()
      H.run(rt, function()
        local q = Q()
        q:close()
        assert.has_error(function() q:put_nowait(1) end)
        assert.are.equal(0, q:size())
      end)
    end)

    it("is idempotent", function()
      H.run(rt, function()
        local q = fill(Q(), {1})
        q:close()
        q:close()
        assert.are.equal(1, q:get())
        q:close()
        assert.are.same({nil, "closed"}, {q:get()})
      end)
    end)
  end)

  describe(":iter()", function()
    it("gets every item until closed and drained", function()
      H.run(rt, function()
        local q = Q(2)
        local producer = rt.spawn(function()
          for i = 1, 10 do q:put(i) end
          q:close()
        end)
        local got = {}
        for item in q:iter() do got[#got + 1] = item end
        assert.are.equal(10, #got)
        assert.are.same({1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, H.sorted(got))
        assert.are.same({true}, {producer:join(LONG)})
      end)
    end)

    it("ends at once on a closed, empty queue", function()
      H.run(rt, function()
        local q = Q()
        q:close()
        local n = 0
        for _ in q:iter() do n = n + 1 end
        assert.are.equal(0, n)
      end)
    end)

    if kind ~= "PriorityQueue" then  -- false is no priority
      it("yields false items without stopping", function()
        H.run(rt, function()
          local q = fill(Q(), {false, 1})
          q:close()
          local got = {}
          for item in q:iter() do got[#got + 1] = tostring(item) end
          assert.are.same(kind == "LifoQueue" and {"1", "false"} or {"false", "1"}, got)
        end)
      end)
    end
  end)
end

return function(rt)
  describe("Queue", function()
    if not H.has_all(rt, "Queue", "Event") then return end
    common(rt, "Queue")

    it("is first in, first out", function()
      H.run(rt, function()
        local q = fill(rt.Queue(), {3, "b", 1, "a"})
        assert.are.same({3, "b", 1, "a"}, drain(q))
        fill(q, {1, 2, 3})
        assert.are.same({1, 2, 3}, q:get_many(3))
      end)
    end)
  end)

  describe("LifoQueue", function()
    if not H.has_all(rt, "LifoQueue", "Event") then return end
    common(rt, "LifoQueue")

    it("is last in, first out", function()
      H.run(rt, function()
        local q = fill(rt.LifoQueue(), {3, "b", 1, "a"})
        assert.are.same({"a", 1, "b", 3}, drain(q))
        fill(q, {1, 2, 3})
        assert.are.same({3, 2, 1}, q:get_many(3))
      end)
    end)
  end)

  describe("PriorityQueue", function()
    if not H.has_all(rt, "PriorityQueue", "Event") then return end
    common(rt, "PriorityQueue")

    it("gives the lowest number first", function()
      H.run(rt, function()
        local q = fill(rt.PriorityQueue(), {5, 1, 4, 2.5, -3, 3})
        assert.are.same({-3, 1, 2.5, 3, 4, 5}, drain(q))
      end)
    end)

    it("gives the lowest string first", function()
      H.run(rt, function()
        local q = fill(rt.PriorityQueue(), {"pear", "apple", "fig"})
        assert.are.same({"apple", "fig", "pear"}, drain(q))
      end)
    end)

    it("orders tables by their [1]", function()
      H.run(rt, function()
        local q = fill(rt.PriorityQueue(), {{3, "c"}, {1, "a"}, {2, "b"}})
        assert.are.same({{1, "a"}, {2, "b"}, {3, "c"}}, drain(q))
        fill(q, {{"y", 1}, {"x", 2}})
        assert.are.same({{"x", 2}, {"y", 1}}, drain(q))
      end)
    end)

    it("keeps first in, first out among equal priorities", function()
      H.run(rt, function()
        local q = rt.PriorityQueue()
        local items = {{2, "a"}, {1, "b"}, {2, "c"}, {1, "d"}, {2, "e"},
                       {1, "f"}, {0, "g"}, {2, "h"}}
        fill(q, items)
        local got = {}
        for i, item in ipairs(drain(q)) do got[i] = item[2] end
        assert.are.same({"g", "b", "d", "f", "a", "c", "e", "h"}, got)
      end)
    end)

    it("keeps first in, first out among equal priorities over many items", function()
      H.run(rt, function()
        local q = rt.PriorityQueue()
        for i = 1, 50 do q:put({i % 2, i}) end
        local last = {[0] = 0, [1] = 0}
        for _ = 1, 50 do
          local item = q:get(0)
          assert.is_true(item[2] > last[item[1]])
          last[item[1]] = item[2]
        end
      end)
    end)

    it("get_many returns the lowest items in order", function()
      H.run(rt, function()
        local q = fill(rt.PriorityQueue(), {4, 2, 3, 1})
        assert.are.same({1, 2}, q:get_many(2))
        assert.are.same({3, 4}, q:get_many(5))
      end)
    end)
  end)
end

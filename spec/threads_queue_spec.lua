-- Queues in the threads runtime: what only OS threads show (values moved
-- between Lua states, waiters in line, cancel and timeouts while blocked,
-- many producers and consumers racing a close). The behaviour both runtimes
-- share is in spec/conformance/queue.lua.
local H = require "helpers"
local duet = require "duet"
local rt = require "duet.threads"
local SHORT, LONG = H.SHORT, H.LONG
-- Thread targets are copied into their thread's own Lua state. They use
-- only locals, never globals: a busted spec file's globals are its private
-- environment, which is no table a thread could share.
local math, string, pcall, tostring = math, string, pcall, tostring

-- How many wait in `line` ("getters", "putters") of queue q, as its
-- __tostring tells.
local function in_line(q, line)
  return tonumber(tostring(q):match(line .. " (%d+)")) or 0
end

-- Start fn(...) in a thread and wait until one more waits in `line` of q:
-- the thread's get or put (order in line is what several cases check).
local function blocked(q, line, fn, ...)
  local before = in_line(q, line)
  local th = rt.spawn(fn, ...)
  assert.is_true(H.wait_until(rt, function() return in_line(q, line) > before end),
    "the thread never got in line")
  return th
end

local function drain(q)
  local items = {}
  while true do
    local item = q:get_nowait()
    if item == nil then return items end
    items[#items + 1] = item
  end
end

describe("threads Queue", function()
  describe("items", function()
    it("round-trip every transferable kind, through the queue and another thread", function()
      H.run(rt, function()
        local shared = rt.SharedTable{k = "v"}
        local inner = rt.Queue()
        local cyc = {name = "cycle"}
        cyc.self = cyc
        local rep = {1}
        local mt = {__index = function(_, k) return "default " .. k end}
        local up = 10
        local items = {
          0, -1, math.maxinteger, math.mininteger, 2^53, 1.5, -0.25, 1/0,
          "", "short", ("long string "):rep(20), "nul\0inside", true, false,
          {1, 2, {3, {4}}, k = {v = true}},
          cyc, {rep, rep},
          setmetatable({}, mt),
          function(x) return x + up end,
          string.format, string,
          shared, inner,
        }
        local q = rt.Queue()
        assert.is_true(q:put_many(items))
        local back = q:get_many(#items)
        local th = rt.spawn(function()
          -- in another Lua state: take them, check there, send them back
          local got = q:get_many(100, 5)
          local ok = got[16].self == got[16] and got[17][1] == got[17][2]
            and got[18].x == "default x" and got[19](1) == 11
            and got[20]("%d", 7) == "7" and got[21] == string
            and got[22].k == "v"
          q:put_many(got)
          return ok, #got
        end)
        q:put_many(back)
        assert.are.same({true, true, #items}, {th:join(LONG)})
        back = q:get_many(#items, LONG)
        assert.are.equal(#items, #back)
        for i = 1, 14 do
          assert.are.equal(items[i], back[i])
          assert.are.equal(math.type(items[i]), math.type(back[i]))
        end
        assert.are.same(items[15], back[15])
        assert.are.equal(back[16], back[16].self)
        assert.are.equal(back[17][1], back[17][2])
        assert.are.equal("default y", back[18].y)
        assert.are.equal(13, back[19](3))
        assert.are.equal(string.format, back[20])
        assert.are.equal(string, back[21])
        assert.are.equal(shared, back[22])   -- the same object, by reference
        assert.are.equal(inner, back[23])
        inner:put("through a moved queue")
        assert.are.equal("through a moved queue", back[23]:get(0))
      end)
    end)

    it("keep integers and floats apart, and 1 vs 1.0 as put", function()
      H.run(rt, function()
        local q = rt.Queue()
        q:put_many{1, 1.0, -0.0, 2^63}
        local th = rt.spawn(function()
          local a, b, c, d = q:get(), q:get(), q:get(), q:get()
          return math.type(a), math.type(b), 1 / c, math.type(d)
        end)
        assert.are.same({true, "integer", "float", -1/0, "float"}, {th:join(LONG)})
      end)
    end)

    it("refuse what cannot move, naming where it sits, and enqueue nothing", function()
      H.run(rt, function()
        local q = rt.Queue()
        q:put("first")
        assert.has_error(function() q:put(coroutine.create(print)) end,
          "cannot move coroutine at item")
        assert.has_error(function() q:put({log = io.stdout}) end,
          "cannot move userdata (FILE*) at item.log")
        assert.has_error(function() q:put_many({1, {2, {f = io.stderr}}}) end,
          "cannot move userdata (FILE*) at items[2][2].f")
        assert.are.same({"first"}, drain(q))
      end)
    end)

    it("raise exact messages for bad arguments, changing nothing", function()
      H.run(rt, function()
        local q, p = rt.Queue(2), rt.PriorityQueue()
        q:put("a")
        assert.has_error(function() q:put(nil) end,
          "bad argument #1 to 'put' (non-nil value expected)")
        assert.has_error(function() q:put(1, -1) end,
          "bad argument #2 to 'put' (timeout must be a non-negative number)")
        assert.has_error(function() q:put_many({1, nil, 3}) end,
          "bad argument #1 to 'put_many' (nil item at index 2)")
        assert.has_error(function() q:put_many({1, 2, 3}) end,
          "bad argument #1 to 'put_many' (more items than maxsize)")
        assert.has_error(function() q:get_many(0) end,
          "bad argument #1 to 'get_many' (max must be at least 1)")
        assert.has_error(function() q.get(42) end,
          "bad argument #1 to 'get' (duet.Queue expected, got number)")
        assert.has_error(function() p:put(true) end,
          "bad argument #1 to 'put' (number, string or table expected, got boolean)")
        p:put({"x", n = 1})  -- a string priority is fine
        assert.has_error(function() p:put({{}}) end,
          "bad argument #1 to 'put' (priority (item[1]) must be a number or a string, got table)")
        assert.has_error(function() p:put_many({1, {false}}) end,
          "bad argument #1 to 'put_many' (priority (items[2][1]) must be a number or a string, got boolean)")
        assert.has_error(function() p:put(0/0) end,
          "bad argument #1 to 'put' (priority is NaN)")
        assert.has_error(function() rt.LifoQueue(1.5) end,
          "bad argument #1 to 'LifoQueue' (number has no integer representation)")
        assert.has_error(function() q:task_done() q:task_done() end,
          "task_done() called too many times")
        assert.are.same({"a"}, drain(q))
        assert.are.same({{"x", n = 1}}, drain(p))
      end)
    end)

    it("get_many takes all there is up to max, however many", function()
      H.run(rt, function()
        for _, kind in ipairs{"Queue", "PriorityQueue"} do
          local q = rt[kind]()
          local list = {}
          for i = 1, 5000 do list[i] = {i, ("x"):rep(i % 40)} end
          q:put_many(list)
          local got = q:get_many(4000)
          assert.are.equal(4000, #got)
          assert.are.same(list[4000], got[4000])
          got = q:get_many(math.maxinteger)
          assert.are.equal(1000, #got)
          assert.is_true(q:empty())
        end
      end)
    end)

    it("honour n of a table.pack list in put_many", function()
      H.run(rt, function()
        local q = rt.Queue()
        assert.has_error(function() q:put_many(table.pack(1, nil)) end,
          "bad argument #1 to 'put_many' (nil item at index 2)")
        assert.is_true(q:put_many(table.pack(1, 2)))
        assert.are.same({1, 2}, drain(q))
      end)
    end)
  end)

  describe("PriorityQueue", function()
    it("orders integers and floats exactly, numbers before strings", function()
      H.run(rt, function()
        local q = rt.PriorityQueue()
        local big, i53 = math.maxinteger, (1 << 53) + 1
        q:put_many{"b", i53, 2^53, big + 0.0, big, "a", -1/0, 1/0,
                   math.mininteger, 0.5, 0}
        local got = drain(q)
        -- 2^53 < 2^53 + 1 and maxinteger < 2^63, compared exactly
        assert.are.same({-1/0, math.mininteger, 0, 0.5, 2^53, i53,
                         big, big + 0.0, 1/0, "a", "b"}, got)
        assert.are.equal("integer", math.type(got[6]))
        assert.are.equal("integer", math.type(got[7]))
      end)
    end)

    it("keeps first in, first out among equal priorities, 1 and 1.0 alike", function()
      H.run(rt, function()
        local q = rt.PriorityQueue()
        q:put_many{{1, "a"}, {1.0, "b"}, {0, "c"}, {1, "d"}, {"k", "e"}, {"k", "f"}}
        local order = {}
        for _, item in ipairs(drain(q)) do order[#order + 1] = item[2] end
        assert.are.same({"c", "a", "b", "d", "e", "f"}, order)
      end)
    end)
  end)

  describe("waiters", function()
    it("are served first come, first served: a later get cannot take a granted item", function()
      H.run(rt, function()
        for _, kind in ipairs{"Queue", "LifoQueue", "PriorityQueue"} do
          local q = rt[kind]()
          local a = blocked(q, "getters", function() return q:get() end)
          q:put(1)
          -- granted to `a` at the put, whether or not `a` has run since
          assert.are.same({nil, "empty"}, {q:get_nowait()})
          assert.are.same({true, 1}, {a:join(LONG)})
        end
      end)
    end)

    it("that are served are exactly the first in line", function()
      H.run(rt, function()
        local q, served = rt.Queue(), rt.SharedTable()
        local threads = {}
        for i = 1, 3 do
          threads[i] = blocked(q, "getters", function()
            local v = q:get(LONG)
            served[i] = v ~= nil
            return v
          end)
        end
        q:put_many{"x", "y"}
        assert.is_true(threads[1]:join(LONG))
        assert.is_true(threads[2]:join(LONG))
        assert.is_true(threads[3]:is_alive())
        q:put("z")
        assert.are.same({true, "z"}, {threads[3]:join(LONG)})
        assert.are.same({true, true, true}, served:snapshot())
      end)
    end)

    it("for room are served in line too, put_many waiting for all its room", function()
      H.run(rt, function()
        local q = rt.Queue(2)
        q:put_many{1, 2}
        local big = blocked(q, "putters", function() return q:put_many({3, 4}) end)
        local small = blocked(q, "putters", function() return q:put(5) end)
        assert.are.equal(1, q:get())
        -- one slot free: `big` needs two and is first, so `small` waits too
        assert.are.same({nil, "full"}, {q:put_nowait(6)})
        assert.is_true(small:is_alive())
        assert.are.equal(2, q:get())
        assert.are.same({true, true}, {big:join(LONG)})
        assert.are.same({3, 4}, {q:get(), q:get()})
        assert.are.same({true, true}, {small:join(LONG)})
        assert.are.same({5}, drain(q))
      end)
    end)
  end)

  describe("timeouts", function()
    it("of a getter leave no trace: the next item goes to the next waiter", function()
      H.run(rt, function()
        local q = rt.Queue()
        local short = rt.spawn(function() return q:get(SHORT) end)
        local long = blocked(q, "getters", function() return q:get(LONG) end)
        assert.are.same({true, nil, "empty"}, {short:join(LONG)})
        q:put("for long")
        assert.are.same({true, "for long"}, {long:join(LONG)})
        assert.is_true(q:empty())
      end)
    end)

    it("of a putter leave no trace: it enqueued nothing, the room goes on", function()
      H.run(rt, function()
        local q = rt.Queue(1)
        q:put("kept")
        local short = rt.spawn(function() return q:put("dropped", SHORT) end)
        local long = blocked(q, "putters", function() return q:put("second", LONG) end)
        assert.are.same({true, nil, "full"}, {short:join(LONG)})
        assert.are.equal("kept", q:get())
        assert.are.same({true, true}, {long:join(LONG)})
        assert.are.same({"second"}, drain(q))
      end)
    end)

    it("of put_many enqueue none of the items", function()
      H.run(rt, function()
        local q = rt.Queue(3)
        q:put_many{1, 2}
        assert.are.same({nil, "full"}, {q:put_many({3, 4}, SHORT)})
        assert.are.same({1, 2}, drain(q))
      end)
    end)
  end)

  describe("cancel", function()
    it("while blocked in get: join gives false, duet.cancelled; nothing was taken", function()
      H.run(rt, function()
        local q = rt.Queue()
        local th = blocked(q, "getters", function() return q:get() end)
        th:cancel()
        assert.are.same({false, duet.cancelled}, {th:join(LONG)})
        q:put("still here")
        assert.are.same({true, "still here"},
          {rt.spawn(function() return q:get(LONG) end):join(LONG)})
      end)
    end)

    it("while blocked in get_many, with other getters in line", function()
      H.run(rt, function()
        local q = rt.Queue()
        local first = blocked(q, "getters", function() return q:get_many(5) end)
        local second = blocked(q, "getters", function() return q:get_many(5, LONG) end)
        first:cancel()
        assert.are.same({false, duet.cancelled}, {first:join(LONG)})
        q:put_many{1, 2}
        local ok, got = second:join(LONG)
        assert.is_true(ok)
        assert.are.same({1, 2}, got)
      end)
    end)

    it("while blocked in put on a full queue: it enqueued nothing", function()
      H.run(rt, function()
        local q = rt.Queue(1)
        q:put("kept")
        local th = blocked(q, "putters", function() return q:put("lost") end)
        th:cancel()
        assert.are.same({false, duet.cancelled}, {th:join(LONG)})
        assert.are.same({"kept"}, drain(q))
        assert.is_true(q:put_nowait("room is free"))  -- no room left booked
        assert.are.equal(1, q:size())
      end)
    end)

    it("while blocked in put_many, with a putter behind it", function()
      H.run(rt, function()
        local q = rt.Queue(2)
        q:put_many{1, 2}
        local big = blocked(q, "putters", function() return q:put_many({3, 4}) end)
        local small = blocked(q, "putters", function() return q:put(5, LONG) end)
        big:cancel()
        assert.are.same({false, duet.cancelled}, {big:join(LONG)})
        assert.are.equal(1, q:get())
        assert.are.same({true, true}, {small:join(LONG)})
        assert.are.same({2, 5}, drain(q))
      end)
    end)

    it("racing a grant passes the item on to the next getter #stress", function()
      H.run(rt, function()
        local q = rt.Queue()
        for i = 1, 200 do
          local first = blocked(q, "getters", function() return q:get() end)
          local second = rt.spawn(function() return q:get(LONG) end)
          q:put(i)
          first:cancel()
          local ok1, v1 = first:join(LONG)
          if ok1 then
            assert.are.equal(i, v1)
            second:cancel()
            second:join(LONG)
          else
            assert.are.equal(duet.cancelled, v1)
            assert.are.same({true, i}, {second:join(LONG)})
          end
          assert.is_true(q:empty())
        end
      end)
    end)

    it("of a busy thread stops it before a later get takes anything", function()
      H.run(rt, function()
        local q, go, sent = rt.Queue(), rt.Queue(), rt.Event()
        q:put("untouched")
        local th = rt.spawn(function()
          go:get()
          while not sent:is_set() do end  -- busy: the cancel lands here
          return q:get_nowait()
        end)
        go:put(true)
        th:cancel()
        sent:set()
        assert.are.same({false, duet.cancelled}, {th:join(LONG)})
        assert.are.same({"untouched"}, drain(q))
      end)
    end)
  end)

  describe("close", function()
    -- P producers and C consumers move a checksummed stream through a
    -- small bounded queue; the main thread closes it while the producers
    -- are still putting. Whatever a producer managed to put (its puts
    -- succeed in order until one raises) must come out exactly once.
    local function stream(P, C, per, timeouts)
      return H.run(rt, function()
        local q, started = rt.Queue(8), rt.Event()
        local producers, consumers = {}, {}
        for p = 1, P do
          producers[p] = rt.spawn(function()
            local n, sum = 0, 0
            for i = 1, per do
              local id = p * 1000000 + i
              local ok, put
              repeat      -- with timeouts, a put may time out: try again
                ok, put = pcall(q.put, q, id, timeouts and 0.001 or nil)
              until not ok or put
              if not ok then return n, sum, put end
              n, sum = n + 1, sum + id
            end
            return n, sum
          end)
        end
        for c = 1, C do
          consumers[c] = rt.spawn(function()
            local got, n, sum = {}, 0, 0
            while true do
              local id, why = q:get(timeouts and 0.001 or LONG)
              if id ~= nil then
                got[#got + 1] = id
                n, sum = n + 1, sum + id
                if n == 100 then started:set() end
              elseif why == "closed" or not timeouts then
                return n, sum, got   -- ("empty" after LONG: a bug; seen below)
              end
            end
          end)
        end
        local ok = started:wait(LONG)
        q:close()             -- always, so no thread is left blocked
        assert.is_true(ok)
        local made, total = {}, 0
        local put_n, put_sum = 0, 0
        for p = 1, P do
          local ok, n, sum, err = producers[p]:join(LONG)
          assert.is_true(ok, tostring(n))
          if n < per then assert.matches("put on a closed queue", err) end
          made[p] = n
          put_n, put_sum = put_n + n, put_sum + sum
        end
        local seen, got_n, got_sum = {}, 0, 0
        for c = 1, C do
          local ok, n, sum, got = consumers[c]:join(LONG)
          assert.is_true(ok, tostring(n))
          got_n, got_sum = got_n + n, got_sum + sum
          for _, id in ipairs(got) do
            assert.is_nil(seen[id], "duplicated item " .. id)
            seen[id] = true
            total = total + 1
          end
        end
        assert.are.equal(put_n, got_n)
        assert.are.equal(put_sum, got_sum)
        for p = 1, P do          -- exactly each producer's first made[p]
          for i = 1, made[p] do
            assert.is_true(seen[p * 1000000 + i], "lost item")
          end
        end
        assert.are.equal(put_n, total)
        return put_n
      end)
    end

    it("racing 3 producers x 3 consumers loses and duplicates nothing", function()
      local moved = stream(3, 3, 200000)
      assert.is_true(moved >= 100)
    end)

    it("racing with get and put timeouts loses and duplicates nothing", function()
      stream(2, 3, 200000, true)
    end)

    it("while a getter is in line, hands it nil, 'closed' even later", function()
      H.run(rt, function()
        local q = rt.Queue()
        local th = blocked(q, "getters", function() return q:get() end)
        q:close()
        assert.are.same({true, nil, "closed"}, {th:join(LONG)})
      end)
    end)
  end)

  it("is freed when the last thread lets go of it, items and all", function()
    -- not observable directly: a queue holding items and objects, dropped
    -- in two states, must not crash or leak under valgrind / ASan
    H.run(rt, function()
      local inner = rt.SharedTable{x = 1}
      local th = rt.spawn(function()
        local q = rt.PriorityQueue()
        q:put_many{{2, inner}, {1, ("x"):rep(100)}, {"s", {1, 2}}}
        return q
      end)
      local ok, q = th:join(LONG)
      assert.is_true(ok)
      assert.are.equal(3, q:size())
      q = nil   -- luacheck: ignore 311 (for the collector)
      collectgarbage()
      assert.are.equal(1, inner.x)
    end)
  end)
end)

-- Stress (issue 8, DESIGN.md "Reliability: what must hold"): the same
-- checks as the other specs, at a size where races have room to happen.
-- Tagged #stress: left out of `make test`, run by `make stress` (a few
-- minutes on a 2-core machine). Each case prints its figures (items moved,
-- cycles run) so the closing note can quote them.
--
-- Thread targets are copied into the new thread's own Lua state: they get
-- everything through their arguments and upvalues that move (rt, duet,
-- numbers, functions), report through return values and duet objects, and
-- never touch luassert or helpers. Threads that a failing case could leave
-- blocked are daemons, so a failure never hangs the run.

local busted = require "busted"
local assert = require "luassert"
local describe, it = busted.describe, busted.it
local duet = require "duet"
local H = require "helpers"

local RUNTIMES = { "threads", "coroutines" }
local LONG = 30                 -- bound on waits that must succeed

math.randomseed(os.time())

--- Print one figure line, set apart from busted's progress dots.
local function report(fmt, ...)
  io.stdout:write("\n    [stress] ", fmt:format(...), "\n")
  io.stdout:flush()
end

--- 1234567 -> "1,234,567"
local function commas(n)
  local s = tostring(math.tointeger(n) or n)
  repeat
    local k
    s, k = s:gsub("^(-?%d+)(%d%d%d)", "%1,%2")
  until k == 0
  return s
end

--- A daemon thread (task) running fn(...), started.
local function daemon(rt, fn, ...)
  local th = rt.Thread{target = fn, args = table.pack(...), daemon = true}
  th:start()
  return th
end

--- Join `th` (bounded) and return its results; a thread that raised or did
--- not finish fails the case with its error.
local function results(th)
  local r = table.pack(th:join(LONG))
  assert(r[1] ~= nil, ("thread %s did not finish within %d s"):format(th.name, LONG))
  assert(r[1], ("thread %s failed: %s"):format(th.name, tostring(r[2])))
  return table.unpack(r, 2, r.n)
end

-------------------------------------------------------------------- queue
-- The item stream: producer p of P sends ids p, p+P, p+2P, ... up to n.
-- Every 8th id travels as a small table {id=, tag=} and the rest as plain
-- integers, so a consumer can tell a corrupt item from a good one. Counts,
-- sums and sums of squares of the ids are the checksum: a lost or a
-- duplicated item changes them.

-- Producer: cycles through put(item, 0), put(item, 0.0005),
-- put(item, 0.002), put(item) and put_many(up to 4 items, 0.001). A put
-- that timed out is tried again with the same item, so one that had
-- enqueued something anyway would show up as a duplicate. Stops at the
-- end of its ids, or when the queue is closed under it.
-- Returns count, sum, sum of squares, timeouts, batches, "done"/"closed".
local function producer(q, p, P, n)
  local cnt, sum, sq, timeouts, batches = 0, 0, 0, 0, 0
  local function item(v)
    if v % 8 == 0 then return { id = v, tag = "t" .. v } end
    return v
  end
  local function closed(e)        -- true for a closed queue, else re-raise
    if tostring(e):find("put on a closed queue", 1, true) then return true end
    error(e, 0)
  end
  local v, mode = p, 0
  while v <= n do
    mode = mode % 5 + 1
    if mode == 5 then
      local list, ids, w = {}, {}, v
      while #ids < 4 and w <= n do
        ids[#ids + 1] = w
        list[#list + 1] = item(w)
        w = w + P
      end
      local ok, r = pcall(q.put_many, q, list, 0.001)
      if not ok then
        if closed(r) then return cnt, sum, sq, timeouts, batches, "closed" end
      elseif r then
        for _, id in ipairs(ids) do cnt, sum, sq = cnt + 1, sum + id, sq + id * id end
        batches = batches + 1
        v = w
      else
        timeouts = timeouts + 1
      end
    else
      local timeout = mode == 1 and 0 or mode == 2 and 0.0005
                      or mode == 3 and 0.002 or nil
      local ok, r = pcall(q.put, q, item(v), timeout)
      if not ok then
        if closed(r) then return cnt, sum, sq, timeouts, batches, "closed" end
      elseif r then
        cnt, sum, sq = cnt + 1, sum + v, sq + v * v
        v = v + P
      else
        timeouts = timeouts + 1
      end
    end
  end
  return cnt, sum, sq, timeouts, batches, "done"
end

-- Consumer: cycles through get(0), get(0.0005), get() and
-- get_many(8, 0.001) until the queue is closed and drained. Checks each
-- item's shape, and that the ids of each producer arrive in increasing
-- order (a FIFO queue keeps one producer's items in order).
-- Returns count, sum, sum of squares, timeouts, bad items, out of order.
local function consumer(q, P)
  local cnt, sum, sq, timeouts, bad, disorder = 0, 0, 0, 0, 0, 0
  local last = {}
  local function take(x)
    local v = x
    if type(x) == "table" then
      v = x.id
      if math.type(v) ~= "integer" or v % 8 ~= 0 or x.tag ~= "t" .. v then
        bad = bad + 1
        return
      end
    elseif math.type(x) ~= "integer" or x % 8 == 0 then
      bad = bad + 1
      return
    end
    local p = (v - 1) % P + 1
    if last[p] and v <= last[p] then disorder = disorder + 1 end
    last[p] = v
    cnt, sum, sq = cnt + 1, sum + v, sq + v * v
  end
  local mode = 0
  while true do
    mode = mode % 4 + 1
    local x, why
    if mode == 4 then
      x, why = q:get_many(8, 0.001)
      if x then for i = 1, #x do take(x[i]) end end
    else
      x, why = q:get(mode == 1 and 0 or mode == 2 and 0.0005 or nil)
      if x ~= nil then take(x) end
    end
    if x == nil then
      if why == "closed" then break end
      timeouts = timeouts + 1
    end
  end
  return cnt, sum, sq, timeouts, bad, disorder
end

--- Move ids 1..n from P producers to C consumers through a Queue(maxsize).
--- close_after: nil closes the queue once every producer is done; a number
--- closes it after that many seconds, racing the producers. Returns the
--- producers' totals, the consumers' totals and the counters.
local function stream(rt, n, P, C, maxsize, close_after)
  local q = rt.Queue(maxsize)
  local consumers, producers = {}, {}
  for c = 1, C do consumers[c] = daemon(rt, consumer, q, P) end
  for p = 1, P do producers[p] = daemon(rt, producer, q, p, P, n) end
  if close_after then
    rt.sleep(close_after)
    q:close()
  end
  local put = { cnt = 0, sum = 0, sq = 0, timeouts = 0, batches = 0, closed = 0 }
  for p = 1, P do
    local cnt, sum, sq, timeouts, batches, how = results(producers[p])
    put.cnt, put.sum, put.sq = put.cnt + cnt, put.sum + sum, put.sq + sq
    put.timeouts, put.batches = put.timeouts + timeouts, put.batches + batches
    if how == "closed" then put.closed = put.closed + 1 end
  end
  if not close_after then q:close() end
  local got = { cnt = 0, sum = 0, sq = 0, timeouts = 0, bad = 0, disorder = 0 }
  for c = 1, C do
    local cnt, sum, sq, timeouts, bad, disorder = results(consumers[c])
    got.cnt, got.sum, got.sq = got.cnt + cnt, got.sum + sum, got.sq + sq
    got.timeouts, got.bad = got.timeouts + timeouts, got.bad + bad
    got.disorder = got.disorder + disorder
  end
  -- closed and drained: nothing left, and a put still raises
  local x, why = q:get(0)
  assert.are.same({nil, "closed"}, {x, why})
  assert.has_error(function() q:put(1) end, "put on a closed queue")
  return put, got
end

describe("stress #stress", function()
  for _, name in ipairs(RUNTIMES) do
    local rt = duet.runtime(name)

    describe(name, function()
      describe("a bounded Queue, 8 producers x 8 consumers", function()
        it("moves 1,000,000 checksummed items, nothing lost or duplicated, with timeouts and close racing the getters", function()
          local N = 1000000
          local t0 = rt.now()
          local put, got = H.run(rt, stream, rt, N, 8, 8, 16)
          local secs = rt.now() - t0
          report("%s queue: %s items moved, 8 producers -> 8 consumers, maxsize 16, in %.1f s "
            .. "(%s put timeouts, %s put_many batches, %s get timeouts)",
            name, commas(got.cnt), secs, commas(put.timeouts), commas(put.batches),
            commas(got.timeouts))
          assert.are.same({N, N * (N + 1) // 2, N * (N + 1) * (2 * N + 1) // 6},
                          {put.cnt, put.sum, put.sq})
          assert.are.same({put.cnt, put.sum, put.sq}, {got.cnt, got.sum, got.sq})
          assert.are.equal(0, got.bad)
          assert.are.equal(0, got.disorder)
        end)

        it("loses and duplicates nothing when close races the producers (40 rounds)", function()
          local rounds, moved, cut = 40, 0, 0
          H.run(rt, function()
            for _ = 1, rounds do
              local put, got = stream(rt, 200000, 8, 8, 16, math.random() * 0.03)
              assert.are.same({put.cnt, put.sum, put.sq}, {got.cnt, got.sum, got.sq})
              assert.are.equal(0, got.bad)
              assert.are.equal(0, got.disorder)
              moved, cut = moved + got.cnt, cut + put.closed
            end
          end)
          report("%s queue, close racing: %d rounds, %s items moved, %d producers cut off by close",
            name, rounds, commas(moved), cut)
        end)
      end)

      describe("spawn, cancel, join", function()
        -- kind 0: cancelled before start; 1: sleeping (the cancel always
        -- wins); 2: busy in a Lua loop; 3: returns at once. Kinds 2 and 3
        -- race their cancel and may finish first.
        local function target(kind, i)
          if kind == 1 then
            rt.sleep(60)
          elseif kind == 2 then
            local x = 0
            for k = 1, 20000 + (i % 50) * 1000 do x = x + k end
          end
          return i, "done"
        end

        it("10,000 cycles, cancelled at random moments: each join gives the result or false, duet.cancelled", function()
          local CYCLES, BATCH = 10000, 20
          local outcome = { result = 0, cancelled = 0 }
          local t0 = rt.now()
          H.run(rt, function()
            for base = 0, CYCLES - 1, BATCH do
              local batch = {}
              for j = 1, BATCH do
                local i = base + j
                local kind = i % 4
                local th = rt.Thread{target = target, args = {kind, i}, daemon = true}
                if kind == 0 then th:cancel() end
                th:start()
                batch[j] = {th = th, i = i, kind = kind}
              end
              for _, c in ipairs(batch) do
                local when = math.random(0, 3)
                if when == 1 then rt.sleep(0)
                elseif when == 2 then rt.sleep(0.0002)
                elseif when == 3 then rt.sleep(0.001) end
                c.th:cancel()
              end
              for _, c in ipairs(batch) do
                local r = table.pack(c.th:join(LONG))
                if r[1] then
                  assert(c.kind >= 2, ("cycle %d (kind %d) ran to its end"):format(c.i, c.kind))
                  assert.are.same({n = 3, true, c.i, "done"}, r)
                  outcome.result = outcome.result + 1
                else
                  assert.are.same({n = 2, false, duet.cancelled}, r)
                  outcome.cancelled = outcome.cancelled + 1
                end
                assert.is_false(c.th:is_alive())
              end
            end
          end)
          report("%s: %s spawn/cancel/join cycles in %.1f s (%s ended with their result, %s cancelled)",
            name, commas(CYCLES), rt.now() - t0, commas(outcome.result), commas(outcome.cancelled))
          assert.are.equal(CYCLES, outcome.result + outcome.cancelled)
        end)
      end)

      describe("Executor shutdown{cancel_futures=true}", function()
        -- Submit tasks until the executor refuses; returns the futures
        -- and how it stopped.
        local function submitter(ex, id, started)
          local function task(x)
            if x % 5 == 0 then rt.sleep(0.0001) end
            return x * 2
          end
          local futs = {}
          for j = 1, 1000000 do
            local ok, f = pcall(ex.submit, ex, task, id * 10000000 + j)
            if not ok then
              if tostring(f):find("cannot schedule new futures after shutdown", 1, true) then
                return futs, "refused"
              end
              error(f, 0)
            end
            futs[j] = f
            if j == 1 then started:incr("n") end
            if j % 32 == 0 then rt.sleep(0) end
          end
          return futs, "never refused"
        end

        it("racing submits from 3 other threads: every future ends done, with its result or cancelled (200 rounds)", function()
          local ROUNDS, S = 200, 3
          local total = { futures = 0, ran = 0, cancelled = 0 }
          local t0 = rt.now()
          H.run(rt, function()
            for _ = 1, ROUNDS do
              local ex = rt.Executor{max_workers = 2}
              local started = rt.SharedTable{n = 0}
              local subs = {}
              for s = 1, S do subs[s] = daemon(rt, submitter, ex, s, started) end
              H.wait_until(rt, function() return started.n == S end)
              rt.sleep(math.random() * 0.003)
              ex:shutdown{cancel_futures = true}
              assert.has_error(function() ex:submit(function() end) end,
                "cannot schedule new futures after shutdown")
              for s = 1, S do
                local futs, how = results(subs[s])
                assert.are.equal("refused", how)
                for j, f in ipairs(futs) do
                  -- shutdown (wait=true) has returned: every future
                  -- accepted before it is finished, one way or the other
                  assert(f:done(), ("future %d of submitter %d not done after shutdown"):format(j, s))
                  if f:cancelled() then
                    local ok, e = pcall(f.result, f, 0)
                    assert.is_false(ok)
                    assert.are.equal(duet.cancelled, e)
                    total.cancelled = total.cancelled + 1
                  else
                    assert.are.equal((s * 10000000 + j) * 2, f:result(0))
                    total.ran = total.ran + 1
                  end
                end
                total.futures = total.futures + #futs
              end
              ex:shutdown()            -- idempotent
            end
          end)
          report("%s executor: %d shutdown races, %s futures (%s ran, %s cancelled) in %.1f s",
            name, ROUNDS, commas(total.futures), commas(total.ran), commas(total.cancelled),
            rt.now() - t0)
          assert.are.equal(total.futures, total.ran + total.cancelled)
        end)
      end)

      describe("locked cutlery", function()
        -- examples/cutlery.lua's logic: ten bots take knives and forks
        -- from the kitchen and bring them back, each change a read-modify-
        -- write of a SharedTable made exclusive by the kitchen's lock.
        local function add(counts, knives, forks)
          counts.knives = counts.knives + knives
          counts.forks = counts.forks + forks
        end
        local function change(c, knives, forks)
          c.lock:with(add, c.counts, knives, forks)
        end
        local function manage_table(tasks, mine, kitchen)
          while true do
            local task = tasks:get()
            if task == "prepare table" then
              change(kitchen, -4, -4)
              change(mine, 4, 4)
            elseif task == "clear table" then
              change(mine, -4, -4)
              change(kitchen, 4, 4)
            elseif task == "shutdown" then
              return
            end
          end
        end
        local function cutlery(knives, forks)
          return { counts = rt.SharedTable{knives = knives, forks = forks}, lock = rt.Lock() }
        end

        it("ends 100/100 in all of 200 runs (10 bots x 1,000 tables each)", function()
          local RUNS, BOTS, TABLES = 200, 10, 1000
          local t0 = rt.now()
          local ends = H.run(rt, function()
            local ends = {}
            for run = 1, RUNS do
              local kitchen = cutlery(100, 100)
              local bots = {}
              for b = 1, BOTS do
                local tasks, mine = rt.Queue(), cutlery(0, 0)
                for _ = 1, TABLES do
                  tasks:put("prepare table")
                  tasks:put("clear table")
                end
                tasks:put("shutdown")
                bots[b] = {mine = mine, th = rt.Thread{target = manage_table,
                  args = {tasks, mine, kitchen}, daemon = true}}
              end
              for _, bot in ipairs(bots) do bot.th:start() end
              local left = 0
              for _, bot in ipairs(bots) do
                results(bot.th)
                left = left + math.abs(bot.mine.counts.knives) + math.abs(bot.mine.counts.forks)
              end
              ends[run] = ("%d/%d, %d left with bots"):format(kitchen.counts.knives,
                kitchen.counts.forks, left)
            end
            return ends
          end)
          report("%s cutlery: %d locked runs x %d bots x %s tables in %.1f s",
            name, RUNS, BOTS, commas(TABLES), rt.now() - t0)
          local want = {}
          for run = 1, RUNS do want[run] = "100/100, 0 left with bots" end
          assert.are.same(want, ends)
        end)
      end)

      describe("very short timeouts", function()
        -- a deadline that passes while the wait is being set up must end
        -- the wait as a timeout, whatever the clock reads in between
        it("100,000 sleeps of 1-20 us all return", function()
          local n = H.run(rt, function()
            local n = 0
            for i = 1, 100000 do
              rt.sleep((i % 20 + 1) * 1e-6)
              n = n + 1
            end
            return n
          end)
          assert.are.equal(100000, n)
        end)

        it("100,000 waits of 1-20 us for a descriptor that never gets ready all time out", function()
          if not H.has(rt, "wait_readable") then return end
          local socket = require "socket"
          local srv = assert(socket.bind("127.0.0.1", 0))
          local ok, r = pcall(H.run, rt, function()
            local timeouts = 0
            for i = 1, 100000 do
              if rt.wait_readable(srv, (i % 20 + 1) * 1e-6) == false then
                timeouts = timeouts + 1
              end
            end
            return timeouts
          end)
          srv:close()
          assert(ok, r)
          assert.are.equal(100000, r)
        end)
      end)

      describe("many threads at once", function()
        it("keeps 10,000 alive, blocked on one Event, then releases and joins them all", function()
          local N = 10000
          local t0 = rt.now()
          local alive, before, sum = H.run(rt, function()
            local ev, count = rt.Event(), rt.SharedTable{waiting = 0, released = 0}
            local ths = {}
            for i = 1, N do
              ths[i] = daemon(rt, function(i)
                count:incr("waiting")
                local ok = ev:wait(120)
                count:incr("released")
                return ok and i
              end, i)
            end
            local deadline = rt.now() + 120
            while count.waiting < N and rt.now() < deadline do rt.sleep(0.01) end
            local alive = 0
            for i = 1, N do if ths[i]:is_alive() then alive = alive + 1 end end
            local before = count.released
            ev:set()
            local sum = 0
            for i = 1, N do sum = sum + results(ths[i]) end
            return alive, before, sum
          end)
          report("%s: %s threads alive at once, released and joined in %.1f s",
            name, commas(alive), rt.now() - t0)
          assert.are.same({N, 0, N * (N + 1) // 2}, {alive, before, sum})
        end)
      end)
    end)
  end
end)

-- rt.ProcessExecutor on both runtimes: what only a pool of child
-- processes has (faults that stay in one worker, what may cross a process,
-- children and descriptors that do not outlive the pool). The Executor
-- behaviour it shares runs in spec/conformance/executor.lua.
local busted = require "busted"
local assert = require "luassert"
local H = require "helpers"
local duet = require "duet"
local core = require "duet.core"
local describe, it = busted.describe, busted.it

local pid = core.process_self()

-- This process's children that run lua5.4 (a pool's workers; not the
-- shell that lists them), as a set of pids: a check compares the same
-- processes, not a count that another spec's leftover child, ending in
-- the meantime, would change.
local function lua_children()
  local p = assert(io.popen(("cat /proc/%d/task/*/children"):format(pid)))
  local set = {}
  for c in p:read("a"):gmatch("%d+") do
    local f = io.open("/proc/" .. c .. "/comm")
    if f then
      if f:read("l") == "lua5.4" then set[c] = true end
      f:close()
    end
  end
  p:close()
  return set
end

-- The pids of set `now` that set `before` lacks, sorted.
local function added(before, now)
  local list = {}
  for c in pairs(now) do
    if not before[c] then list[#list + 1] = c end
  end
  table.sort(list)
  return list
end
-- This process's open descriptors that lead to a socket or a pidfd: what
-- a pool's workers hold. (Other kinds, a pipe that another spec's leftover
-- thread opens for a moment, are not the pool's.)
local function descriptors()
  local p = assert(io.popen(("ls -l /proc/%d/fd"):format(pid)))
  local held = {}
  for fd, target in p:read("a"):gmatch(" (%d+) %-> ([^\n]+)") do
    if target:match("^socket:") or target:match("pidfd") then
      held[#held + 1] = fd .. " -> " .. target
    end
  end
  p:close()
  return held
end

-- Is process p running? (A zombie is not: it has ended, and only waits
-- for a parent that reaps; some containers' init never does.)
local function alive(p)
  local f = io.open(("/proc/%d/stat"):format(p))
  if not f then return false end
  local state = f:read("a"):match("^%d+ %b() (%a)")
  f:close()
  return state ~= "Z"
end

-- Run Lua `code` (for runtime `name`) as a script in the background, its
-- output into a file: a worker that outlived it would hold a pipe open and
-- hang a read. `driver` (sh) then acts on $pid, the script's process,
-- once its output has `lines` lines. Returns the output; a watchdog kills
-- the script after 7 s.
local function background(name, code, lines, driver)
  local script, out = os.tmpname(), os.tmpname()
  local f = assert(io.open(script, "w"))
  f:write(("package.path, package.cpath = %q, %q\nlocal rt = require('duet').runtime(%q)\n")
    :format(package.path, package.cpath, name), code)
  f:close()
  os.execute(([[
    exec 2>/dev/null
    lua5.4 %s >%s 2>&1 &
    pid=$!
    ( n=0; while [ $n -lt 70 ] && kill -0 $pid 2>/dev/null; do sleep 0.1; n=$((n+1)); done
      kill -KILL $pid 2>/dev/null ) >/dev/null 2>&1 &
    out=%s
    n=0
    while [ "$(grep -c . $out)" -lt %d ] && [ $n -lt 500 ]; do sleep 0.01; n=$((n+1)); done
    %s
    wait $pid
  ]]):format(script, out, out, lines, driver))
  local text = assert(io.open(out)):read("a")
  os.remove(script)
  os.remove(out)
  return text
end

-- A script's pool with one busy worker and one idle one: it prints both
-- pids, then waits for the busy one.
local BUSY_AND_IDLE = [[
  rt.run(function()
    local ex = rt.ProcessExecutor{max_workers = 2}
    local busy = ex:submit(function()
      io.stdout:write("busy ", (require("duet.core").process_self()), "\n")
      io.stdout:flush()
      while true do end
    end)
    local idle = ex:submit(function()
      return (require("duet.core").process_self())
    end)
    io.stdout:write("idle ", idle:result(), "\n")
    io.stdout:flush()
    busy:result()
  end)
]]

local function pids_of(text)
  local pids = {}
  for p in text:gmatch("%a+ (%d+)") do pids[#pids + 1] = tonumber(p) end
  assert.are.equal(2, #pids, text)
  return pids
end

local function all_ended(pids)
  local threads = duet.runtime("threads")
  return H.wait_until(threads, function()
    for _, p in ipairs(pids) do if alive(p) then return false end end
    return true
  end)
end

local function raised(fn, ...)
  local ok, e = pcall(fn, ...)
  assert.is_false(ok)
  return e
end

-- On the coroutines runtime a task waiting for a worker blocks only
-- itself: the worker's task waits for a file that another task creates.
describe("coroutines ProcessExecutor", function()
  it("blocks only the waiting task", function()
    local rt = duet.runtime("coroutines")
    local gate = os.tmpname()
    os.remove(gate)
    H.run(rt, function()
      local ex <close> = rt.ProcessExecutor{max_workers = 1}
      local fut = ex:submit(function()
        while not io.open(gate) do os.execute("sleep 0.01") end
        return "through"
      end)
      rt.spawn(function()
        rt.sleep(0.01)
        assert(io.open(gate, "w")):close()
      end)
      assert.are.equal("through", fut:result(H.LONG))
    end)
    os.remove(gate)
  end)
end)

for _, name in ipairs{ "threads", "coroutines" } do
  local rt = duet.runtime(name)
  describe(name .. " ProcessExecutor", function()
    H.describe_name(rt, "duet.ProcessExecutor",
      function() return rt.ProcessExecutor{max_workers = 1} end,
      function(ex) ex:shutdown() end)

    it("runs its tasks on at most max_workers processes", function()
      H.run(rt, function()
        local ex <close> = rt.ProcessExecutor{max_workers = 2}
        assert.are.equal(2, ex.max_workers)
        assert.has_error(function() ex.max_workers = 3 end,
          "field 'max_workers' is read-only")
        assert.has_error(function() ex.foo = 3 end,
          "cannot set field 'foo' of duet.ProcessExecutor")
        local futs, pids, n = {}, {}, 0
        for i = 1, 20 do
          futs[i] = ex:submit(function()
            return require("duet.core").process_self()
          end)
        end
        for i = 1, 20 do
          local p = futs[i]:result()
          if not pids[p] then pids[p], n = true, n + 1 end
        end
        assert.is_true(n >= 1 and n <= 2, n .. " workers")
      end)
    end)

    it("runs tasks in other processes and gives back every result", function()
      H.run(rt, function()
        local ex <close> = rt.ProcessExecutor{max_workers = 2}
        local fut = ex:submit(function(a, b) return a + b, nil, "x" end, 2, 3)
        assert.are.equal("duet.Future", H.typename(fut))
        assert.are.same({n = 3, 5, nil, "x"}, table.pack(fut:result()))
        local other = ex:submit(function()
          return require("duet.core").process_self()
        end):result()
        assert.are_not.equal(pid, other)
        assert.are.same({n = 3, 2, 4, 6}, ex:map(function(x) return 2 * x end, {1, 2, 3}))
      end)
    end)

    it("re-raises a task's error with the worker's traceback", function()
      H.run(rt, function()
        local ex <close> = rt.ProcessExecutor{max_workers = 1}
        local function inner() error({code = 7}) end
        local fut = ex:submit(function() inner() end)
        assert.are.same({code = 7}, raised(fut.result, fut))
        assert.matches("in upvalue 'inner'", fut.traceback)
        assert.are.same({code = 7}, fut:exception())
      end)
    end)

    it("fails only the future of a worker that dies, and replaces it #notsan", function()
      H.run(rt, function()
        local ex <close> = rt.ProcessExecutor{max_workers = 2}
        local exits = ex:submit(function() os.exit(3) end)
        local e = raised(exits.result, exits)
        assert.is_true(e == duet.broken_process)
        assert.is_true(duet.broken_process == e)
        assert.are.equal(3, e.exitcode)
        assert.is_nil(e.signal)
        assert.matches("^duet.broken_process: worker process %d+ exited with status 3$",
          tostring(e))
        local killed = ex:submit(function()
          local self = require("duet.core").process_self()
          os.execute("kill -9 " .. self)
        end)
        e = raised(killed.result, killed)
        assert.is_true(e == duet.broken_process)
        assert.are.equal(9, e.signal)
        assert.matches("killed by signal 9 %(SIGKILL%)", tostring(e))
        local crashed = ex:submit(function()
          os.execute("kill -SEGV " .. require("duet.core").process_self())
        end)
        e = raised(crashed.result, crashed)
        -- a sanitizer's own SIGSEGV handler ends the worker with SIGABRT
        assert.matches(os.getenv("DUET_SANITIZER") and "killed by signal %d+ %(SIG%u+%)"
          or "killed by signal 11 %(SIGSEGV%)", tostring(e))
        local futs = {}
        for i = 1, 6 do futs[i] = ex:submit(function() return i end) end
        for i = 1, 6 do assert.are.equal(i, futs[i]:result()) end
      end)
    end)

    it("moves its error values between threads like any duet object", function()
      H.run(rt, function()
        local ex <close> = rt.ProcessExecutor{max_workers = 1}
        local f = ex:submit(function() os.exit(5) end)
        f:wait()
        local got = rt.spawn(function()
          local ok, e = pcall(f.result, f)
          return ok, e == require("duet").broken_process, e.exitcode
        end)
        assert.are.same({true, false, true, 5}, {got:join()})
      end)
    end)

    it("serves other threads too, and outlives their copies of it", function()
      H.run(rt, function()
        local ex <close> = rt.ProcessExecutor{max_workers = 2}
        local function pid() return (require("duet.core").process_self()) end
        local threads = {}
        for i = 1, 3 do
          threads[i] = rt.spawn(function()
            local pids = {}
            for j = 1, 5 do pids[j] = ex:submit(pid):result() end
            return pids
          end)
        end
        local seen, n = {}, 0
        for i = 1, 3 do
          local ok, pids = threads[i]:join()
          assert.is_true(ok)
          for _, p in ipairs(pids) do
            if not seen[p] then seen[p], n = true, n + 1 end
          end
        end
        assert.is_true(n <= 2, n .. " workers")
        threads = nil   -- luacheck: ignore 311 (for the collector)
        collectgarbage()
        collectgarbage()
        assert.is_number(ex:submit(pid):result())
      end)
    end)

    it("refuses at submit a task that cannot move to another process", function()
      H.run(rt, function()
        local ex <close> = rt.ProcessExecutor{max_workers = 1}
        local co = coroutine.create(print)
        assert.matches("cannot move coroutine at args%[1%]",
          raised(ex.submit, ex, print, co))
        assert.matches("cannot move coroutine at fn<upvalue co>",
          raised(ex.submit, ex, function() return co end))
        assert.matches("cannot move userdata %(FILE%*%) at args%[2%]",
          raised(ex.submit, ex, print, 1, io.stdout))
        assert.matches("cannot move .* at args%[1%]",
          raised(ex.submit, ex, print, rt.Lock()))
        assert.are.equal(1, ex:submit(function() return 1 end):result())
      end)
    end)

    it("fails a task whose results cannot come back, with the reason", function()
      H.run(rt, function()
        local ex <close> = rt.ProcessExecutor{max_workers = 1}
        local fut = ex:submit(function() return coroutine.create(print) end)
        assert.matches("cannot move coroutine at results%[1%]",
          raised(fut.result, fut))
      end)
    end)

    it("never loads code a worker sends back", function()
      H.run(rt, function()
        local ex <close> = rt.ProcessExecutor{max_workers = 1}
        local fut = ex:submit(function() return function() end end)
        assert.are.equal("cannot take a worker's results: cannot decode: code not allowed",
          raised(fut.result, fut))
        assert.are.equal("ok", ex:submit(function() return "ok" end):result())
      end)
    end)

    it("waits for thread and process futures together", function()
      H.run(rt, function()
        local px <close> = rt.ProcessExecutor{max_workers = 1}
        local tx <close> = rt.Executor{max_workers = 1}
        local futs = { px:submit(function() return "p" end),
                       tx:submit(function() return "t" end) }
        local done = rt.wait(futs)
        assert.are.equal(2, #done)
        local seen = {}
        for f in rt.as_completed(futs) do seen[#seen + 1] = f:result() end
        table.sort(seen)
        assert.are.same({"p", "t"}, seen)
      end)
    end)

    it("uses no CPU while it waits for a worker", function()
      H.run(rt, function()
        local ex <close> = rt.ProcessExecutor{max_workers = 1}
        ex:submit(function() end):result()          -- the worker is up
        local cpu = os.clock()
        ex:submit(function() os.execute("sleep 0.5") end):result()
        -- a feeder or scheduler that spun would burn about 0.5 s here
        assert.is_true(os.clock() - cpu < 0.25, os.clock() - cpu .. " s")
      end)
    end)

    it("runs the initializer with initargs once in each worker", function()
      H.run(rt, function()
        local ex <close> = rt.ProcessExecutor{max_workers = 1,
          initializer = function(a, b) _G.started = (_G.started or 0) + a + b end,
          initargs = {1, 2}}
        for _ = 1, 3 do
          assert.are.equal(3, ex:submit(function() return _G.started end):result())
        end
      end)
    end)

    it("fails the futures with a raising initializer's error, and stops", function()
      H.run(rt, function()
        local ex <close> = rt.ProcessExecutor{max_workers = 2,
          initializer = function() error("no database", 0) end}
        local futs = {}
        for i = 1, 4 do futs[i] = ex:submit(function() return i end) end
        for i = 1, 4 do
          assert.are.equal("broken executor: the initializer raised: no database",
            raised(futs[i].result, futs[i]))
          assert.matches("no database", futs[i].traceback)
        end
        assert.matches("^broken executor: the initializer raised: no database$",
          (raised(ex.submit, ex, print):gsub("^.-:%d+: ", "")))
      end)
    end)

    -- A body larger than the channel's buffer is still being written when
    -- the worker replies "init" and ends: the reply must not be lost to
    -- the failed write (the same happens to a small body on a slow parent).
    it("reports a raising initializer also when the worker ended before the task reached it", function()
      H.run(rt, function()
        local ex <close> = rt.ProcessExecutor{max_workers = 1,
          initializer = function() error("no database", 0) end}
        local big = string.rep("x", 8 << 20)
        local fut = ex:submit(function() return #big end)
        assert.are.equal("broken executor: the initializer raised: no database",
          raised(fut.result, fut))
      end)
    end)

    it("runs the interpreter named by lua=, and fails its futures when there is none", function()
      H.run(rt, function()
        local ex <close> = rt.ProcessExecutor{max_workers = 1, lua = "lua5.4"}
        assert.are.equal(1, ex:submit(function() return 1 end):result())
        local bad <close> = rt.ProcessExecutor{max_workers = 2, lua = "/nonexistent/lua"}
        local fut = bad:submit(function() return 1 end)
        local why = "broken executor: cannot start a worker: "
          .. "cannot start process '/nonexistent/lua': No such file or directory"
        assert.are.equal(why, raised(fut.result, fut))
        assert.matches(why, raised(bad.submit, bad, print), 1, true)
      end)
    end)

    it("starts a fresh worker after max_tasks_per_child tasks", function()
      H.run(rt, function()
        local ex <close> = rt.ProcessExecutor{max_workers = 1,
          max_tasks_per_child = 2}
        local pids = {}
        for i = 1, 4 do
          pids[i] = ex:submit(function()
            return require("duet.core").process_self()
          end):result()
        end
        assert.are.equal(pids[1], pids[2])
        assert.are.equal(pids[3], pids[4])
        assert.are_not.equal(pids[1], pids[3])
      end)
    end)

    it("leaves no child and no descriptor behind after shutdown #notsan", function()
      local before, before_fds = lua_children(), descriptors()
      H.run(rt, function()
        local ex = rt.ProcessExecutor{max_workers = 2}
        local futs = {}
        for i = 1, 8 do futs[i] = ex:submit(function() return i end) end
        futs[9] = ex:submit(function() os.exit(1) end)
        for i = 1, 8 do futs[i]:result() end
        futs[9]:wait()
        assert.is_true(#added(before, lua_children()) > 0)
        ex:shutdown()
      end)
      assert.are.same({}, added(before, lua_children()))
      assert.are.same(before_fds, descriptors())
    end)

    it("cancels queued tasks on shutdown{cancel_futures = true}", function()
      local gate = os.tmpname()
      os.remove(gate)
      H.run(rt, function()
        local ex = rt.ProcessExecutor{max_workers = 1}
        local first = ex:submit(function()
          while not io.open(gate) do os.execute("sleep 0.01") end
          return 1
        end)
        local futs = {}
        for i = 1, 5 do futs[i] = ex:submit(function() return i end) end
        assert.is_true(H.wait_until(rt, function() return first:running() end))
        ex:shutdown{wait = false, cancel_futures = true}
        for i = 1, 5 do assert.is_true(futs[i]:cancelled()) end
        assert.has_error(function() ex:submit(print) end,
          "cannot schedule new futures after shutdown")
        assert(io.open(gate, "w")):close()
        assert.are.equal(1, first:result())
        ex:shutdown()
      end)
      os.remove(gate)
    end)

    it("runs 10,000 tasks through 20 killed workers, failing only theirs #stress #notsan", function()
      local before = lua_children()
      H.run(rt, function()
        local ex <close> = rt.ProcessExecutor{max_workers = 2}
        local futs = {}
        for i = 1, 10000 do
          futs[i] = ex:submit(function(x)
            if x % 500 == 0 then
              os.execute("kill -9 " .. require("duet.core").process_self())
            end
            return x * 2
          end, i)
        end
        for i = 1, 10000 do
          if i % 500 == 0 then
            local e = raised(futs[i].result, futs[i])
            assert.is_true(e == duet.broken_process and e.signal == 9)
          else
            assert.are.equal(2 * i, futs[i]:result())
          end
        end
      end)
      assert.are.same({}, added(before, lua_children()))
    end)

    it("rejects bad options with a clear error", function()
      assert.has_error(function() rt.ProcessExecutor{max_workers = 0} end,
        "bad argument #1 to 'ProcessExecutor' (max_workers must be at least 1)")
      assert.has_error(function() rt.ProcessExecutor{max_tasks_per_child = -1} end,
        "bad argument #1 to 'ProcessExecutor' (max_tasks_per_child must be at least 1)")
      assert.has_error(function() rt.ProcessExecutor{initializer = 1} end,
        "bad argument #1 to 'ProcessExecutor' (field 'initializer': function expected, got number)")
      assert.has_error(function() rt.ProcessExecutor{max_workers = 1.5} end,
        "bad argument #1 to 'ProcessExecutor' (field 'max_workers': integer expected, got float)")
      assert.has_error(function() rt.ProcessExecutor(3) end,
        "bad argument #1 to 'ProcessExecutor' (table expected, got number)")
      assert.has_error(function() rt.ProcessExecutor{thread_name_prefix = "x"} end,
        "bad argument #1 to 'ProcessExecutor' (field 'thread_name_prefix': a process pool has no threads to name)")
      assert.matches("cannot move coroutine at initargs%[1%]",
        raised(rt.ProcessExecutor, {initargs = {coroutine.create(print)}}))
    end)

    it("lets no worker outlive a parent killed with SIGKILL #notsan", function()
      local text = background(name, BUSY_AND_IDLE, 2, "kill -KILL $pid")
      assert.is_true(all_ended(pids_of(text)))
    end)

    it("lets no worker outlive a parent stopped by Ctrl-C #notsan", function()
      -- as with an Executor, a script's exit waits for its running tasks
      -- after the first Ctrl-C on the threads runtime, silently; the second
      -- ends it. On coroutines the second is sent once the first has been
      -- reported (or the script has ended), so that it cannot end the
      -- script before that.
      local wait_first = name == "coroutines" and [[
        n=0
        while ! grep -q 'interrupted!' $out && kill -0 $pid 2>/dev/null \
            && [ $n -lt 1000 ]; do sleep 0.01; n=$((n+1)); done
      ]] or "sleep 0.3"
      local text = background(name, BUSY_AND_IDLE, 2,
        "kill -INT $pid\n" .. wait_first .. "\nkill -INT $pid 2>/dev/null")
      if name == "coroutines" then assert.matches("interrupted!", text) end
      assert.is_true(all_ended(pids_of(text)))
    end)

    it("keeps rt.run and the script going while tasks are queued or running #notsan", function()
      local file = os.tmpname()
      os.remove(file)
      background(name, ([[
        rt.run(function()
          local ex = rt.ProcessExecutor{max_workers = 1}
          for i = 1, 3 do
            ex:submit(function()
              os.execute("sleep 0.1")
              local f = assert(io.open(%q, "a"))
              f:write(i, "\n")
              f:close()
            end)
          end
        end)
      ]]):format(file), 0, "")
      local f = io.open(file)
      local text = f and f:read("a") or ""
      if f then f:close() end
      os.remove(file)
      assert.are.equal("1\n2\n3\n", text)
    end)

    it("lets no worker outlive a script that ends without shutdown #notsan", function()
      local text = background(name, [[
        rt.run(function()
          local ex = rt.ProcessExecutor{max_workers = 2}
          local a = ex:submit(function() return (require("duet.core").process_self()) end)
          local b = ex:submit(function() return (require("duet.core").process_self()) end)
          print("a " .. a:result())
          print("b " .. b:result())
          _G.keep = ex
        end)
      ]], 0, "")
      assert.is_true(all_ended(pids_of(text)))
    end)
  end)
end

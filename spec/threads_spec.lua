-- The threads runtime's Thread: OS threads, each on its own Lua state
-- (API.md, "Threads"). What every runtime shares is also checked by
-- spec/conformance/thread.lua; this file holds what is particular to OS
-- threads, and the scale and failure cases.
--
-- Thread targets are copied into the new thread's own Lua state: they may
-- capture only movable values (rt, duet and plain data), and they report
-- back through their return values, never through upvalues. Threads that
-- could be left running when a case fails are daemons, so a failure never
-- hangs the run.

local busted = require "busted"
local assert = require "luassert"
local describe, it = busted.describe, busted.it
local setup, teardown = busted.setup, busted.teardown
local duet = require "duet"
local H = require "helpers"
local core = require "duet.core"
local rt = duet.threads

local LONG = 5                          -- bound on joins that must succeed
local SETTLE = 0.01                     -- let a new thread reach its wait

--- A fresh lua5.4 child (spec/helpers.lua); TSan's preload makes /bin/sh
--- crash, so cases using it are #notsan.
local child = H.child

local PRELUDE = 'local duet = require "duet"\nlocal rt = duet.threads\n'

--- A daemon thread running fn(...), started.
local function daemon(fn, ...)
  local th = rt.Thread{target = fn, args = table.pack(...), daemon = true}
  th:start()
  return th
end

--- Message without luassert's "file:line: " prefix.
local function strip(e)
  return (tostring(e):gsub("^.-:%d+: ", "", 1))
end

describe("Thread (threads runtime)", function()
  -- Errors here are read through join; one raised before join starts
  -- waiting also goes to the excepthook, which would print it.
  setup(function() core.set_excepthook(function() end) end)
  teardown(function() core.set_excepthook(nil) end)

  describe("rt.spawn()", function()
    it("runs 1,000 threads, each joined with its own results", function()
      local threads = {}
      for i = 1, 1000 do
        threads[i] = rt.spawn(function(n) return n * 2, rt.current().ident end, i)
      end
      local bad, idents, count = {}, {}, 0
      for i, th in ipairs(threads) do
        local ok, doubled, ident = th:join(LONG)
        if not ok or doubled ~= 2 * i or ident ~= th.ident then bad[#bad + 1] = i end
        if not idents[ident] then count = count + 1 end
        idents[ident] = true
      end
      assert.are.same({}, bad)
      assert.are.equal(1000, count)
    end)

    it("passes every argument, nil holes and a nil at the end included", function()
      local r = table.pack(rt.spawn(function(...)
        return select("#", ...), ...
      end, nil, 1, nil, "x", nil):join(LONG))
      assert.are.same({n = 7, true, 5, nil, 1, nil, "x", nil}, r)
    end)

    it("gives the new state Lua's standard libraries", function()
      local missing = rt.spawn(function()
        local libs = {"coroutine", "debug", "io", "math", "os", "package", "string",
                      "table", "utf8"}
        local out = {}
        for _, name in ipairs(libs) do
          if type(_G[name]) ~= "table" or package.loaded[name] ~= _G[name] then
            out[#out + 1] = name
          end
        end
        return out
      end)
      assert.are.same({true, {}}, {missing:join(LONG)})
    end)

    it("gives the new state the creator's package.path and cpath, so require works", function()
      local path, cpath = package.path, package.cpath
      package.path = "./nowhere/?.lua;" .. path
      local ok, r = pcall(function()
        return {rt.spawn(function()
          return package.path, package.cpath, require("duet").threads == require("duet.threads")
        end):join(LONG)}
      end)
      package.path = path
      assert.is_true(ok, r)
      assert.are.same({true, "./nowhere/?.lua;" .. path, cpath, true}, r)
    end)

    it("runs a standard C function as the target", function()
      assert.are.same({true, "ababab"}, {rt.spawn(string.rep, "ab", 3):join(LONG)})
      assert.are.same({true, 3}, {rt.spawn(select, "#", 1, nil, 3):join(LONG)})
    end)

    it("raises bad-argument errors", function()
      assert.has_error(function() rt.spawn(3) end,
        "bad argument #1 to 'spawn' (function expected, got number)")
      assert.has_error(function() rt.spawn() end,
        "bad argument #1 to 'spawn' (function expected, got no value)")
    end)
  end)

  describe("rt.Thread{}", function()
    it("creates a thread that runs only once started", function()
      local th = rt.Thread{target = function(a, b) return a + b end, args = {2, 3}}
      assert.is_false(th:is_alive())
      th:start()
      assert.are.same({true, 5}, {th:join(LONG)})
      assert.is_false(th:is_alive())
    end)

    it("takes name and daemon", function()
      local th = rt.Thread{target = function() return rt.current().name, rt.current().daemon end,
                           name = "worker", daemon = true}
      assert.are.equal("worker", th.name)
      assert.is_true(th.daemon)
      th:start()
      assert.are.same({true, "worker", true}, {th:join(LONG)})
    end)

    it("raises bad-argument errors for wrong fields", function()
      assert.has_error(function() rt.Thread(3) end,
        "bad argument #1 to 'Thread' (table expected, got number)")
      assert.has_error(function() rt.Thread{} end,
        "bad argument #1 to 'Thread' (field 'target': function expected, got nil)")
      assert.has_error(function() rt.Thread{target = print, name = 3} end,
        "bad argument #1 to 'Thread' (field 'name': string expected, got number)")
      assert.has_error(function() rt.Thread{target = print, args = 3} end,
        "bad argument #1 to 'Thread' (field 'args': table expected, got number)")
    end)
  end)

  describe(":start()", function()
    it("raises when called a second time", function()
      local th = rt.Thread{target = function() end}
      th:start()
      assert.has_error(function() th:start() end, "threads can only be started once")
      th:join(LONG)
      assert.has_error(function() th:start() end, "threads can only be started once")
      local sp = rt.spawn(function() end)
      assert.has_error(function() sp:start() end, "threads can only be started once")
      sp:join(LONG)
    end)
  end)

  describe(":join()", function()
    it("gives true and every result, nils in the middle and at the end included", function()
      local r = table.pack(rt.spawn(function() return 1, nil, "three", nil end):join(LONG))
      assert.are.same({n = 5, true, 1, nil, "three", nil}, r)
      assert.are.equal(1, select("#", rt.spawn(function() end):join(LONG)))
    end)

    it("gives false and the error; th.traceback shows the thread's own file:line", function()
      local function inner() error("deep in the thread") end
      local function target() inner() end
      local src = debug.getinfo(inner, "S").short_src
      local err_at = ("%s:%d:"):format(src, debug.getinfo(inner, "S").linedefined)
      local call_at = ("%s:%d:"):format(src, debug.getinfo(target, "S").linedefined)
      local th = rt.spawn(target)
      local ok, e = th:join(LONG)
      assert.is_false(ok)
      assert.are.equal(err_at .. " deep in the thread", e)
      assert.is_string(th.traceback)
      assert.is_truthy(th.traceback:find("stack traceback:", 1, true), th.traceback)
      assert.is_truthy(th.traceback:find(err_at .. " in ", 1, true), th.traceback)
      assert.is_truthy(th.traceback:find(call_at .. " in ", 1, true), th.traceback)
    end)

    it("gives an error that is not a string as the value itself", function()
      local ok, e = rt.spawn(function() error({code = 42}) end):join(LONG)
      assert.is_false(ok)
      assert.are.same({code = 42}, e)
      ok, e = rt.spawn(function() error() end):join(LONG)
      assert.are.same({false, nil}, {ok, e})
    end)

    it("leaves th.traceback nil when the thread returned", function()
      local th = rt.spawn(function() return 1 end)
      th:join(LONG)
      assert.is_nil(th.traceback)
    end)

    it("gives nil, 'timeout' when the wait times out, and changes nothing", function()
      local ready = rt.Event()
      local th = daemon(function()
        local ok, e = pcall(function()          -- a cancel from ready:set()
          ready:set()                           -- on is caught here, in the
          rt.sleep(60)                          -- sleep or in the Lua code
        end)                                    -- before it
        return ok, e == duet.cancelled, "results"
      end)
      ready:wait()
      assert.are.same({nil, "timeout"}, {th:join(SETTLE)})
      assert.are.same({nil, "timeout"}, {th:join(0)})
      assert.is_true(th:is_alive())
      th:cancel()
      assert.are.same({true, false, true, "results"}, {th:join(LONG)})
      assert.are.same({true, false, true, "results"}, {th:join(0)})
    end)

    it("gives every joiner the results, from any thread", function()
      local target = rt.spawn(function() rt.sleep(SETTLE); return "shared result" end)
      local joiners = {}
      for i = 1, 5 do
        joiners[i] = rt.spawn(function(t) return t:join(LONG) end, target)
      end
      for i = 1, 5 do
        assert.are.same({true, true, "shared result"}, {joiners[i]:join(LONG)})
      end
      assert.are.same({true, "shared result"}, {target:join(LONG)})
    end)

    it("raises when a thread joins itself", function()
      assert.has_error(function() rt.current():join() end, "cannot join current thread")
      local ok, inside_ok, e = rt.spawn(function()
        return pcall(function() rt.current():join(1) end)
      end):join(LONG)
      assert.is_true(ok)
      assert.is_false(inside_ok)
      assert.are.equal("cannot join current thread", strip(e))
    end)

    it("raises on a thread not started", function()
      local th = rt.Thread{target = function() end}
      assert.has_error(function() th:join() end, "cannot join thread before it is started")
      assert.has_error(function() th:join(0) end, "cannot join thread before it is started")
    end)

    it("raises bad-argument errors for a bad timeout", function()
      local th = rt.spawn(function() end)
      assert.has_error(function() th:join(-1) end,
        "bad argument #1 to 'join' (timeout must be a non-negative number)")
      assert.has_error(function() th:join(0 / 0) end,
        "bad argument #1 to 'join' (timeout must be a non-negative number)")
      assert.has_error(function() th:join("soon") end,
        "bad argument #1 to 'join' (number expected, got string)")
      th:join(LONG)
    end)
  end)

  describe(".name", function()
    it("is 'Thread-N' by default, a different N for each thread", function()
      local names = {}
      for i = 1, 20 do
        local th = rt.Thread{target = function() end}
        assert.matches("^Thread%-%d+$", th.name)
        names[th.name] = true
        if i % 2 == 0 then th:start(); th:join(LONG) end
      end
      local n = 0
      for _ in pairs(names) do n = n + 1 end
      assert.are.equal(20, n)
      assert.matches("^Thread%-%d+$", rt.spawn(function() end).name)
    end)

    it("is settable, and the thread sees the new name", function()
      local th = rt.Thread{target = function() return rt.current().name end}
      th.name = "renamed"
      th:start()
      assert.are.same({true, "renamed"}, {th:join(LONG)})
      th.name = "after"
      assert.are.equal("after", th.name)
    end)

    it("is 'MainThread' for rt.current() outside any thread", function()
      assert.are.equal("MainThread", rt.current().name)
    end)

    it("sits beside fields that cannot be set", function()
      local th = rt.Thread{target = function() end}
      assert.has_error(function() th.ident = 3 end, "field 'ident' is read-only")
      assert.has_error(function() th.traceback = "x" end,
        "field 'traceback' is read-only")
      assert.has_error(function() th.color = "red" end,
        "cannot set field 'color' of duet.Thread")
    end)
  end)

  describe(".ident", function()
    it("is an integer, unique among threads and main, the same seen from inside", function()
      local seen = {[rt.current().ident] = true}
      assert.are.equal("integer", math.type(rt.current().ident))
      local threads = {}
      for i = 1, 100 do threads[i] = rt.spawn(function() return rt.current().ident end) end
      for _, th in ipairs(threads) do
        local ok, inner = th:join(LONG)
        assert.is_true(ok)
        assert.are.equal("integer", math.type(th.ident))
        assert.are.equal(th.ident, inner)
        assert.is_nil(seen[th.ident])
        seen[th.ident] = true
      end
    end)
  end)

  describe(".daemon", function()
    it("is false by default and set by the daemon field", function()
      assert.is_false(rt.Thread{target = print}.daemon)
      assert.is_false(rt.current().daemon)
      assert.is_true(rt.Thread{target = print, daemon = true}.daemon)
    end)

    it("is settable only before start", function()
      local th = rt.Thread{target = function() return rt.current().daemon end}
      th.daemon = true
      assert.is_true(th.daemon)
      th:start()
      assert.has_error(function() th.daemon = false end,
        "cannot set daemon status of active thread")
      assert.are.same({true, true}, {th:join(LONG)})
    end)

    it("defaults to the creating thread's, as in Python", function()
      local outer = daemon(function()
        local inner = rt.Thread{target = function() end}
        local spawned = rt.spawn(function() end)
        spawned:join()
        return inner.daemon, spawned.daemon
      end)
      assert.are.same({true, true, true}, {outer:join(LONG)})
    end)
  end)

  describe(":cancel()", function()
    local function cancelled(th)
      local ok, e = th:join(LONG)
      return ok == false and e == duet.cancelled, tostring(ok) .. ", " .. tostring(e)
    end

    it("stops a thread blocked in rt.sleep: join gives false, duet.cancelled", function()
      local th = daemon(function() rt.sleep(60); return "slept" end)
      rt.sleep(SETTLE)
      th:cancel()
      assert.is_true(cancelled(th))
      assert.is_false(th:is_alive())
    end)

    it("stops a thread blocked joining another thread", function()
      local sleeper = daemon(function() rt.sleep(60) end)
      local joiner = daemon(function(s) return s:join() end, sleeper)
      rt.sleep(SETTLE)
      joiner:cancel()
      assert.is_true(cancelled(joiner))
      assert.is_true(sleeper:is_alive())
      sleeper:cancel()
      assert.is_true(cancelled(sleeper))
    end)

    it("stops a thread busy in a pure Lua loop #notsan", function()
      local th = daemon(function() while true do end end)
      rt.sleep(SETTLE)
      th:cancel()
      assert.is_true(cancelled(th))
    end)

    it("stops a thread busy calling C functions in a loop #notsan", function()
      local th = daemon(function()
        local t = {}
        while true do t[#t % 100 + 1] = string.rep("x", 100) end
      end)
      rt.sleep(SETTLE)
      th:cancel()
      assert.is_true(cancelled(th))
    end)

    it("is delivered once: the thread may catch it and go on", function()
      local ready = rt.Event()
      local th = daemon(function()
        local ok, e = pcall(function() ready:set(); rt.sleep(60) end)
        rt.sleep(0.001)                         -- not cancelled again
        local n = 0
        for i = 1, 1e6 do n = n + i end         -- nor is its Lua code
        return ok, e == duet.cancelled, n
      end)
      ready:wait()
      th:cancel()
      assert.are.same({true, false, true, 500000500000}, {th:join(LONG)})
    end)

    it("leaves no hook behind once delivered, so the thread goes on at full speed", function()
      local ready = rt.Event()
      local th = daemon(function()
        local ok, e = pcall(function() ready:set(); rt.sleep(60) end)
        for _ = 1, 1000 do end
        return ok, e == duet.cancelled, debug.gethook()
      end)
      ready:wait()
      th:cancel()
      assert.are.same({true, false, true, nil}, {th:join(LONG)})
    end)

    it("before start: the target never runs", function()
      local th = rt.Thread{target = function() return "ran" end, daemon = true}
      th:cancel()
      th:start()
      assert.is_true(cancelled(th))
    end)

    it("after the thread finished: changes nothing", function()
      local th = rt.spawn(function() return "done" end)
      assert.are.same({true, "done"}, {th:join(LONG)})
      th:cancel()
      assert.are.same({true, "done"}, {th:join(LONG)})
    end)

    it("works from another thread, on a Thread moved to it", function()
      local victim = daemon(function() rt.sleep(60) end)
      rt.sleep(SETTLE)
      local canceller = rt.spawn(function(v)
        v:cancel()
        local ok, e = v:join(5)
        return ok, e == duet.cancelled
      end, victim)
      assert.are.same({true, false, true}, {canceller:join(LONG)})
      assert.is_true(cancelled(victim))
    end)

    it("of the thread itself raises duet.cancelled at once", function()
      local th = rt.spawn(function()
        local ok, e = pcall(function() rt.current():cancel() end)
        return ok, e == duet.cancelled
      end)
      assert.are.same({true, false, true}, {th:join(LONG)})
    end)
  end)

  describe("rt.current()", function()
    it("is, inside a thread, that thread's own Thread object", function()
      local th = rt.spawn(function() return rt.current(), rt.current():is_alive() end)
      local ok, me, alive = th:join(LONG)
      assert.is_true(ok)
      assert.is_true(rawequal(th, me))
      assert.is_true(alive)
    end)

    it("is the same MainThread object every time outside threads", function()
      assert.is_true(rawequal(rt.current(), rt.current()))
      assert.is_true(rt.current():is_alive())
    end)
  end)

  describe("duet.excepthook", function()
    it("by default prints 'Exception in thread NAME:' and the traceback for an error nobody joins #notsan", function()
      local out, err, status = child(PRELUDE .. [[
rt.Thread{target = function() error("nobody joins me") end, name = "lonely"}:start()
print("main done")
]])
      assert.are.equal(0, status, err)
      assert.are.equal("main done\n", out)
      assert.matches("^Exception in thread lonely:\n[^\n]*:3: nobody joins me\nstack traceback:\n", err)
    end)

    it("can be replaced: the new one gets the thread, the error and the traceback #notsan", function()
      local out, err, status = child(PRELUDE .. [[
duet.excepthook = function(th, e, tb)
  io.stderr:write(("HOOK %s|%s|%s\n"):format(th.name, tostring(e), tostring(tb:find("stack traceback:", 1, true) ~= nil)))
end
rt.Thread{target = function() error("for the hook", 0) end, name = "hooked"}:start()
print("main done")
]])
      assert.are.equal(0, status, err)
      assert.are.equal("main done\n", out)
      assert.are.equal("HOOK hooked|for the hook|true\n", err)
    end)

    it("can pass on to the default one, in the threads too #notsan", function()
      local out, err, status = child(PRELUDE .. [[
local default = duet.excepthook
duet.excepthook = function(th, e, tb)
  io.stderr:write("MINE\n")
  return default(th, e, tb)
end
rt.Thread{target = function() error("passed on", 0) end, name = "chain"}:start()
]])
      assert.are.equal(0, status, err)
      assert.are.equal("", out)
      assert.matches("^MINE\nException in thread chain:\npassed on\n", err)
    end)

    it("is not called for an error that a waiting join receives #notsan", function()
      -- The thread fails once the main thread sleeps after setting `ready`:
      -- its only wait from then on is join's (Linux: the main thread's
      -- state in /proc is S).
      local out, err, status = child(PRELUDE .. [[
local ready = rt.Event()
local th = rt.spawn(function(ev)
  ev:wait()
  local f = assert(io.open("/proc/self/stat"))
  local pid = f:read("n")
  f:close()
  local state
  repeat
    f = assert(io.open("/proc/self/task/" .. pid .. "/stat"))
    state = f:read("a"):match("^%d+ %b() (%a)")
    f:close()
  until state == "S"
  error("joined", 0)
end, ready)
ready:set()
print(th:join())
]])
      assert.are.equal(0, status, err)
      assert.are.equal("false\tjoined\n", out)
      assert.are.equal("", err)
    end)

    it("is not called for threads that returned #notsan", function()
      local out, err, status = child(PRELUDE .. [[
for i = 1, 10 do rt.spawn(function() return i end) end
]])
      assert.are.equal(0, status, err)
      assert.are.equal("", out)
      assert.are.equal("", err)
    end)
  end)

  describe("rt.stack_size()", function()
    --- Run fn with the stack size set to `size`, restoring it afterwards.
    local function with_stack(size, fn)
      local old = rt.stack_size(size)
      local r = table.pack(pcall(fn))
      rt.stack_size(old)
      assert(r[1], r[2])
      return table.unpack(r, 2, r.n)
    end

    it("is rt.stack_size = duet.core.stack_size", function()
      assert.are.equal(core.stack_size, rt.stack_size)
    end)

    it("returns the current size, and the size before when setting one", function()
      local cur = rt.stack_size()
      assert.are.equal("integer", math.type(cur))
      assert.is_true(cur >= 262144)
      local before = rt.stack_size(262144)
      local now = rt.stack_size()
      rt.stack_size(cur)
      assert.are.equal(cur, before)
      assert.are.equal(262144, now)
      assert.are.equal(cur, rt.stack_size())
    end)

    it("0 restores the default", function()
      local default = with_stack(0, rt.stack_size)
      with_stack(524288, function()
        rt.stack_size(0)
        assert.are.equal(default, rt.stack_size())
      end)
    end)

    it("applies to threads started after it: one with the smallest stack still runs", function()
      local r = {with_stack(262144, function()
        return rt.spawn(function()
          local function depth(n) if n == 0 then return 0 end return 1 + depth(n - 1) end
          local t = {}
          for i = 1, 1000 do t[i] = tostring(-i) end
          table.sort(t)
          return depth(10000), #table.concat(t), require("duet") ~= nil
        end):join(LONG)
      end)}
      assert.are.same({true, 10000, 3893, true}, r)
    end)

    it("raises bad-argument errors for bad sizes", function()
      local cur = rt.stack_size()
      assert.has_error(function() rt.stack_size(100) end,
        "bad argument #1 to 'stack_size' (size must be 0 or at least 262144)")
      assert.has_error(function() rt.stack_size(-1) end,
        "bad argument #1 to 'stack_size' (size must be 0 or at least 262144)")
      assert.has_error(function() rt.stack_size(1.5) end,
        "bad argument #1 to 'stack_size' (number has no integer representation)")
      assert.has_error(function() rt.stack_size("big") end,
        "bad argument #1 to 'stack_size' (number expected, got string)")
      assert.are.equal(cur, rt.stack_size())
    end)

    it("never lets Lua code crash a thread: C calls nest up to Lua's own limit on the smallest stack #notsan", function()
      local out, err, status = child(PRELUDE .. [[
rt.stack_size(262144)
local th = rt.spawn(function()
  local function nest(n)
    if n == 0 then return "bottom" end
    local ok, r = pcall(nest, n - 1)
    return r
  end
  return nest(180), nest(300)
end)
print(th:join())
]])
      assert.are.equal(0, status, err)
      assert.matches("^true\tbottom\t.*C stack overflow", out)
    end)
  end)

  describe("duet.core", function()
    it("keeps Thread methods working when loaded a second time in one state #notsan", function()
      -- busted's insulation between spec files unloads and requires it again
      local out, err, status = child(PRELUDE .. [[
package.loaded["duet.core"] = nil
local again = require "duet.core"
print(again.current():is_alive(), rt.current():is_alive())
local th = again.spawn(function() return 1 end)
print(th:join())
]])
      assert.are.equal(0, status, err)
      assert.are.equal("true\ttrue\ntrue\t1\n", out)
    end)
  end)

  describe("rt.run()", function()
    it("returns main's results, nil included", function()
      local r = table.pack(rt.run(function(a, b) return b, nil, a, nil end, 1, 2))
      assert.are.same({n = 4, 2, nil, 1, nil}, r)
    end)

    it("waits for the non-daemon threads main started", function()
      local th = rt.run(function()
        return rt.spawn(function() rt.sleep(0.05) end)
      end)
      assert.is_false(th:is_alive())
    end)

    it("does not wait for daemon threads", function()
      local th = rt.run(function()
        return daemon(function() rt.sleep(60) end)
      end)
      assert.is_true(th:is_alive())
      th:cancel()
      th:join(LONG)
    end)

    it("propagates main's error with a traceback", function()
      local ok, e = pcall(rt.run, function() error("main failed") end)
      assert.is_false(ok)
      assert.matches("main failed\nstack traceback:", e)
    end)

    it("in a thread, waits for the other threads but not for itself", function()
      local th = rt.spawn(function()
        return rt.run(function()
          rt.spawn(function() return 7 end)
          return "ran"
        end)
      end)
      local r = table.pack(th:join(LONG))
      if r[1] == nil then th:cancel() end  -- stuck: do not keep the run alive
      assert.are.same({ true, "ran" }, { r[1], r[2] })
    end)

    it("in two threads at once, waits for the other threads, not for each other", function()
      local function prog(name)
        return function()
          return rt.run(function()
            rt.spawn(function() return name end)
            return name
          end)
        end
      end
      local a, b = rt.spawn(prog("a")), rt.spawn(prog("b"))
      local ra, rb = table.pack(a:join(LONG)), table.pack(b:join(LONG))
      if ra[1] == nil then a:cancel() end
      if rb[1] == nil then b:cancel() end
      assert.are.same({ true, "a", true, "b" }, { ra[1], ra[2], rb[1], rb[2] })
    end)

    it("in an executor's task, waits for the others but not for its own pool", function()
      -- rt.run's wait, with a bound: a running task cannot be cancelled
      local ex = rt.Executor{ max_workers = 1 }
      local f = ex:submit(function()
        return require("duet.core").wait_threads(LONG)
      end)
      local done = f:result()
      ex:shutdown{ wait = true }
      assert.is_true(done)
    end)

    it("in an executor's initializer, does not wait for the work queued on its own pool", function()
      local ex = rt.Executor{ max_workers = 1, initializer = function(n)
        _G.waited = require("duet.core").wait_threads(n)
      end, initargs = { LONG } }
      local f = ex:submit(function() return _G.waited end)
      local waited = f:result()
      ex:shutdown{ wait = true }
      assert.is_true(waited)
    end)

    it("in two tasks of one pool at once, still waits for a thread outside it", function()
      local go, met = rt.Event(), rt.Barrier(2)
      local outside = rt.spawn(function() go:wait() end)
      local ex = rt.Executor{ max_workers = 2 }
      local function task()
        met:wait()
        return require("duet.core").wait_threads(0.5)
      end
      local a, b = ex:submit(task), ex:submit(task)
      -- both time out: `outside` runs until both have given up
      local ra, rb = a:result(), b:result()
      go:set()
      outside:join()
      ex:shutdown{ wait = true }
      assert.are.same({ false, false }, { ra, rb })
    end)

    it("raises for a main that is not a function", function()
      assert.has_error(function() rt.run() end,
        "bad argument #1 to 'run' (function expected, got no value)")
      assert.are.same({ false, "bad argument #1 to 'run' (function expected, got table)" },
        { pcall(rt.run, {}) })
    end)
  end)

  -- rt and duet are built in C (csrc/threadsrt.c, csrc/duetmod.c); these
  -- of their fields call duet's Lua
  describe("rt's constructors that dispatch, duet.runtime and duet.explore", function()
    it("point their argument errors at the caller's line", function()
      local line = debug.getinfo(1, "l").currentline
      local _, a = pcall(function() return rt.RemoteQueue() end)
      local _, b = pcall(function() return rt.RemoteExecutor{} end)
      local _, c = pcall(function() return rt.TokenBucket{ redis = 5 } end)
      local _, d = pcall(function() return rt.TokenBucket{} end)
      local _, e = pcall(function() return duet.runtime("coroutines", { clock = 1 }) end)
      local _, f = pcall(function() return duet.explore(5) end)
      local function want(n, name)
        return "^spec/threads_spec%.lua:" .. (line + n) .. ": bad argument #1 to '"
          .. name .. "' %("
      end
      assert.matches(want(1, "RemoteQueue"), a)
      assert.matches(want(2, "RemoteExecutor"), b)
      assert.matches(want(3, "TokenBucket"), c)
      assert.matches(want(4, "TokenBucket"), d)
      assert.matches((want(5, "runtime"):gsub("#1", "#2")), e)
      assert.matches(want(6, "explore"), f)
    end)

    it("call duet.core's TokenBucket, even one the user replaced", function()
      assert.are.same({ true, "replaced 2" }, { rt.spawn(function()
        local core = require "duet.core"
        local tb = rt.TokenBucket
        rawset(core, "TokenBucket", function(_, n) return "replaced " .. n end)
        return tb(1, 2)
      end):join(LONG) })
    end)
  end)

  describe("error positions", function()
    it("after a tail call into a C method, the error names the tail call's line", function()
      local q = rt.Queue()
      local line = debug.getinfo(1, "l").currentline
      local function get_bad() return q:get(-1) end   -- Lua keeps this frame
      local ok, e = pcall(function() local v = get_bad(); return v end)
      assert.is_false(ok)
      assert.matches("^spec/threads_spec%.lua:" .. (line + 1) .. ": bad argument #1 to 'get'", e)
    end)
  end)
end)

-- Shared helpers for the conformance specs (spec/conformance/*.lua).
--
-- This module must stay loadable in any Lua state: it does not require
-- busted or luassert at load time (the few helpers that assert or declare
-- specs require them when called). Never capture it, or luassert, inside a
-- thread target: a target runs in another Lua state in the threads runtime.

local H = {}

-- Timeouts used by the "times out" cases: short, so the suite stays fast.
H.SHORT = 0.02
-- A safety bound on waits that must succeed when the code is right. It is
-- never reached by a correct runtime; it only turns a bug that would hang the
-- suite into a failure after a few seconds.
H.LONG = 5

--- The constructor `name` of `rt`, or nil after declaring a pending spec
--- "<runtime> has no <name> yet" (only a missing constructor is pending).
function H.has(rt, name)
  if rt[name] ~= nil then return true end
  require("busted").pending(("%s has no %s yet"):format(rt.name, name))
  return false
end

--- Every constructor in `names` exists in `rt` (else pending, as H.has).
function H.has_all(rt, ...)
  for i = 1, select("#", ...) do
    if not H.has(rt, (select(i, ...))) then return false end
  end
  return true
end

--- Is the case `description` one that cannot apply to `rt`? Then declare
--- it pending with the reason: a stand-in runtime (the ProcessExecutor
--- runs of spec/conformance_spec.lua) lists such cases in rt._skip.
function H.skipped(rt, description)
  local why = rawget(rt, "_skip") and rt._skip[description]
  if why then
    require("busted").pending(("%s (%s: %s)"):format(description, rt.name, why))
  end
  return why ~= nil
end

--- busted's `it` for runtime `rt`: cases rt._skip lists are pending.
function H.it_for(rt)
  return function(description, fn)
    if not H.skipped(rt, description) then require("busted").it(description, fn) end
  end
end

--- Declare `it(description, fn)`, or a pending spec when `rt` lacks one of
--- the constructors in list `needs` (a case that uses another family).
function H.it_needs(rt, needs, description, fn)
  local busted = require "busted"
  if H.skipped(rt, description) then return end
  for _, name in ipairs(needs) do
    if rt[name] == nil then
      busted.pending(("%s (%s has no %s yet)"):format(description, rt.name, name))
      return
    end
  end
  busted.it(description, fn)
end

-- xpcall handler: string errors get a traceback, other values (luassert's
-- failure objects, duet.cancelled, ...) pass through unchanged.
local function handler(e)
  if type(e) == "string" then return debug.traceback(e, 2) end
  return e
end

--- Run `fn(...)` inside `rt.run` and return its results. An error in `fn`
--- (an assertion failure included) is caught inside the runtime and raised
--- again here unchanged, so busted reports it as the failure it is.
function H.run(rt, fn, ...)
  local r = rt.run(function(...)
    return table.pack(xpcall(fn, handler, ...))
  end, ...)
  if not r[1] then error(r[2], 0) end
  return table.unpack(r, 2, r.n)
end

--- The error message `fn(...)` raises (position prefix "file:line: "
--- removed, as luassert's has_error does), or nil if it does not raise.
--- A non-string error value is returned as is.
function H.errmsg(fn, ...)
  local ok, e = pcall(fn, ...)
  if ok then return nil end
  if type(e) == "string" then e = e:gsub("^.-:%d+: ", "", 1) end
  return e
end

--- Does error message `msg` fit `expected`? `expected` is the exact
--- message, except that a final "(...)" stands for any explanation in
--- parentheses: "bad argument #1 to 'put' (...)".
function H.message_fits(msg, expected)
  if type(msg) ~= "string" then return false end
  local prefix = expected:match("^(.*)%(%.%.%.%)$")
  if not prefix then return msg == expected end
  return msg:sub(1, #prefix + 1) == prefix .. "(" and msg:sub(-1) == ")"
     and #msg > #prefix + 2
end

--- The `__name` of a value's metatable, read the way Lua's own error
--- messages read it (works even when getmetatable is protected).
function H.typename(v)
  local _, e = pcall(string.rep, "x", v)
  return (tostring(e):match("number expected, got (.-)%)$"))
end

--- Poll `pred()` until it returns a true value (sleeping 1 ms between
--- tries) or H.LONG passes; return its last value. Used only to observe
--- state (e.g. Barrier.n_waiting), never to order events.
function H.wait_until(rt, pred)
  local deadline = rt.now() + H.LONG
  while true do
    local v = pred()
    if v or rt.now() > deadline then return v end
    rt.sleep(0.001)
  end
end

--- Give threads just started a moment to reach their blocking call, so the
--- "blocked" path is the one exercised. Correctness never depends on it:
--- every case using it passes whichever path is taken.
function H.settle(rt)
  rt.sleep(0.01)
end

--- Count the permits of a semaphore-like object without changing it.
function H.permits(sem, limit)
  local n = 0
  while n < (limit or 1000) and sem:acquire(0) do n = n + 1 end
  if n > 0 then sem:release(n) end
  return n
end

--- Start fn(...) in a daemon thread and return it. Used for threads that
--- block with no timeout: if a runtime fails to wake them, the case fails at
--- its join(H.LONG) and rt.run does not wait for them forever.
function H.go(rt, fn, ...)
  local th = rt.Thread{target = fn, args = table.pack(...), daemon = true}
  th:start()
  return th
end

--- Can another thread acquire `lockish` right now? (It is released again.)
function H.free_elsewhere(rt, lockish)
  local th = rt.spawn(function()
    local ok = lockish:acquire(0)
    if ok then lockish:release() end
    return ok
  end)
  local joined, ok = th:join(H.LONG)
  assert(joined, "helper thread did not finish")
  return ok
end

--- Spawn a thread that sets `gate` if `stop` is not set within H.LONG.
--- Cases that must NOT wait for `gate` use it so that a runtime that
--- wrongly waits ends up with a visible wrong answer instead of a hang.
--- Returns a function that stops the failsafe (call it when done).
function H.failsafe(rt, gate)
  local stop = rt.Event()
  local th = rt.spawn(function()
    if not stop:wait(H.LONG) then gate:set() end
  end)
  return function()
    stop:set()
    th:join()
  end
end

--- The list part 1..n of `t` (n = #t by default) as a plain list, leaving
--- out extra fields such as table.pack's `n`; checks that #t == n.
function H.list(t, n)
  n = n or #t
  assert(#t == n, ("list of %d items expected, got %d"):format(n, #t))
  return { table.unpack(t, 1, n) }
end

--- Sorted copy of a list (numbers or strings).
function H.sorted(list)
  local c = {}
  for i, v in ipairs(list) do c[i] = v end
  table.sort(c)
  return c
end

--- Is `x` in list `list` (by ==)?
function H.contains(list, x)
  for _, v in ipairs(list) do
    if v == x then return true end
  end
  return false
end

--- Do lists a and b hold the same elements (by ==), in any order?
function H.same_members(a, b)
  if #a ~= #b then return false end
  local used = {}
  for _, x in ipairs(a) do
    local found = false
    for j, y in ipairs(b) do
      if not used[j] and x == y then used[j], found = true, true; break end
    end
    if not found then return false end
  end
  return true
end

--- Run Lua source `code` in a fresh lua5.4 process with this process's
--- package paths and `env` (a string of VAR=value words, may be empty);
--- returns its stdout+stderr and whether it exited with status 0.
function H.subprocess(code, env)
  local file = os.tmpname()
  local f = assert(io.open(file, "w"))
  f:write(("package.path = %q\npackage.cpath = %q\n")
    :format(package.path, package.cpath), code)
  f:close()
  local p = assert(io.popen(("env %s lua5.4 %s 2>&1"):format(env or "", file)))
  local out = p:read("a")
  local ok = p:close()
  os.remove(file)
  return out, ok == true
end

--- `s` quoted for the shell, as one word.
function H.shquote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

--- Run Lua source `code` in a fresh lua5.4 process that finds duet like
--- this one (LUA_PATH/LUA_CPATH from this process's package paths, so a
--- sanitizer build carries over), killed after `limit` seconds (default
--- 10). Returns stdout, stderr and the exit status (124: it had to be
--- killed; 128 + N: it died of signal N).
function H.child(code, limit)
  local script, errfile = os.tmpname(), os.tmpname()
  local f = assert(io.open(script, "w"))
  f:write(code)
  f:close()
  local p = assert(io.popen(("LUA_PATH=%s LUA_CPATH=%s timeout -k 1 %s lua5.4 %s 2>%s")
    :format(H.shquote(package.path), H.shquote(package.cpath), limit or 10, script, errfile)))
  local out = p:read("a")
  local _, how, status = p:close()
  local e = assert(io.open(errfile))
  local err = e:read("a")
  e:close()
  os.remove(script)
  os.remove(errfile)
  return out, err, how == "exit" and status or 128 + status
end

--- Declare the `:with()` and `:guard()` specs for a lock-like object made by
--- `make()` (Lock, RLock, Semaphore, BoundedSemaphore, Condition).
function H.describe_with_guard(rt, make)
  local busted = require "busted"
  local assert = require "luassert"
  local describe, it = busted.describe, busted.it

  describe(":with()", function()
    it("calls fn with the arguments and returns all its results", function()
      H.run(rt, function()
        local l = make()
        local n, a, b, c = (function(...) return select("#", ...), ... end)(
          l:with(function(x, y) return y, nil, x end, 1, 2))
        assert.are.same({3, 2, nil, 1}, {n, a, b, c})
      end)
    end)

    it("holds it while fn runs and releases it after", function()
      H.run(rt, function()
        local l = make()
        local held = l:with(function()
          return not H.free_elsewhere(rt, l)
        end)
        assert.is_true(held)
        assert.is_true(H.free_elsewhere(rt, l))
      end)
    end)

    it("releases it and re-raises when fn raises", function()
      H.run(rt, function()
        local l = make()
        local err = setmetatable({}, {__tostring = function() return "E" end})
        local ok, e = pcall(l.with, l, function() error(err) end)
        assert.is_false(ok)
        assert.are.equal(err, e)
        ok, e = pcall(l.with, l, function() error("boom") end)
        assert.is_false(ok)
        assert.matches("boom", e)
        assert.is_true(H.free_elsewhere(rt, l))
      end)
    end)
  end)

  describe(":guard()", function()
    it("holds it until the to-be-closed variable goes out of scope", function()
      H.run(rt, function()
        local l = make()
        do
          local _ <close> = l:guard()
          assert.is_false(H.free_elsewhere(rt, l))
        end
        assert.is_true(H.free_elsewhere(rt, l))
      end)
    end)

    it("releases it when an error leaves the scope", function()
      H.run(rt, function()
        local l = make()
        local ok = pcall(function()
          local _ <close> = l:guard()
          error("boom")
        end)
        assert.is_false(ok)
        assert.is_true(H.free_elsewhere(rt, l))
      end)
    end)
  end)
end

--- Declare the spec that objects made by `make()` have `__name` == name
--- and a `__tostring` that starts with it and tells two objects apart
--- ("duet.Queue (size 3/10): 0x55d…"). `finish(obj)`, if given, disposes
--- of each object made (e.g. shuts an executor down).
function H.describe_name(rt, name, make, finish)
  local assert = require "luassert"
  H.it_for(rt)("has __name '" .. name .. "' and a __tostring naming it", function()
    H.run(rt, function()
      local a, b = make(), make()
      local ta, tb, na = tostring(a), tostring(b), H.typename(a)
      if finish then finish(a); finish(b) end
      assert.are.equal(name, na)
      assert.are.equal(name, ta:sub(1, #name))
      assert.are_not.equal(ta, tb)
    end)
  end)
end

return H

-- Moving values between Lua states (threads runtime only): the portable
-- form duet.encode / duet.decode, and the same rules applied to a thread's
-- target and args (in) and its results (out). See API.md, "Moving values
-- between threads".
--
-- Thread targets are copied into the new thread's own Lua state: they may
-- capture only movable values (rt, duet, core and plain data), and they
-- report back through their return values, never through upvalues.

local busted = require "busted"
local assert = require "luassert"
local describe, it = busted.describe, busted.it
local setup, teardown = busted.setup, busted.teardown
local duet = require "duet"
local core = require "duet.core"
local rt = duet.threads

local LONG = 5                          -- bound on joins that must succeed
local CODE = {functions = true}
local NO_CODE = "cannot decode: code not allowed (pass {functions = true} to decode it)"

local encode, decode = core.encode, core.decode

--- Send the values to a new thread as its args and take them back as its
--- results: every value crosses two state boundaries.
local function through(...)
  local th = rt.spawn(function(...) return ... end, ...)
  local r = table.pack(th:join(LONG))
  assert(r[1] == true, "thread failed: " .. tostring(r[2]))
  return table.unpack(r, 2, r.n)
end

--- The results of fn(...) run in a new thread (it must not raise).
local function inside(fn, ...)
  local r = table.pack(rt.spawn(fn, ...):join(LONG))
  assert(r[1] == true, "thread failed: " .. tostring(r[2]))
  return table.unpack(r, 2, r.n)
end

local function roundtrip(v, opts)
  return decode(encode(v), opts)
end

--- The error message of fn(...) with luassert's "file:line: " prefix rule.
local function errmsg(fn, ...)
  local ok, e = pcall(fn, ...)
  assert(not ok, "expected an error")
  return (tostring(e):gsub("^.-:%d+: ", "", 1))
end

--- A table nested `depth` levels deep through field `n`.
local function nested(depth)
  local root = {}
  local t = root
  for _ = 1, depth do t.n = {}; t = t.n end
  t.leaf = "bottom"
  return root
end

local function depth_of(t)
  local d = 0
  while t.n do t = t.n; d = d + 1 end
  return d, t.leaf
end

--- A value with something of every portable kind in it.
local function rich_value()
  local shared = {tag = "shared"}
  local cyc = {}
  cyc.self = cyc
  return {
    1, 2.5, -0.0, math.maxinteger, math.mininteger, 1e308, "", "a\0b",
    true, false, ("x"):rep(300),
    nested = {a = {b = {c = "deep"}}},
    s1 = shared, s2 = shared, cyc = cyc,
    [false] = "false key", [2.5] = "float key", [shared] = "table key",
    meta = setmetatable({}, {__index = {inherited = true}}),
  }
end

describe("transfer", function()

  describe("duet.encode() / duet.decode()", function()
    it("are exposed on the duet module as duet.core's", function()
      assert.are.equal(core.encode, duet.encode)
      assert.are.equal(core.decode, duet.decode)
    end)

    describe("round trips", function()
      it("keep nil, booleans, integers and floats apart", function()
        assert.is_nil(roundtrip(nil))
        assert.is_true(roundtrip(true))
        assert.is_false(roundtrip(false))
        for _, n in ipairs {0, 1, -7, math.maxinteger, math.mininteger} do
          assert.are.equal(n, roundtrip(n))
          assert.are.equal("integer", math.type(roundtrip(n)))
        end
        for _, n in ipairs {0.0, 1.0, -7.5, 1e308, 2^63, math.pi} do
          assert.are.equal(n, roundtrip(n))
          assert.are.equal("float", math.type(roundtrip(n)))
        end
      end)

      it("keep infinities, the sign of -0.0 and NaN", function()
        assert.are.equal(math.huge, roundtrip(math.huge))
        assert.are.equal(-math.huge, roundtrip(-math.huge))
        assert.are.equal(-math.huge, 1 / roundtrip(-0.0))
        local nan = roundtrip(0 / 0)
        assert.are_not.equal(nan, nan)
      end)

      it("keep strings byte for byte, NUL bytes included", function()
        local all = {}
        for i = 0, 255 do all[#all + 1] = string.char(i) end
        all = table.concat(all)
        assert.are.equal(all, roundtrip(all))
        assert.are.equal("a\0b\0", roundtrip("a\0b\0"))
        assert.are.equal("", roundtrip(""))
        local long = ("0123456789"):rep(100000)
        assert.are.equal(long, roundtrip(long))
      end)

      it("copy big and nested tables", function()
        local big = {}
        for i = 1, 100000 do big[i] = i end
        for i = 1, 1000 do big["k" .. i] = {i, tostring(i)} end
        big.deep = nested(150)
        local r = roundtrip(big)
        assert.are_not.equal(big, r)
        assert.are.equal(100000, #r)
        assert.are.equal(77777, r[77777])
        assert.are.same({500, "500"}, r.k500)
        assert.are.same({150, "bottom"}, {depth_of(r.deep)})
      end)

      it("keep cycles and repeated references", function()
        local shared = {}
        local t = {shared, shared, {shared}}
        t.self = t
        local r = roundtrip(t)
        assert.are.equal(r, r.self)
        assert.are.equal(r[1], r[2])
        assert.are.equal(r[1], r[3][1])
        assert.are_not.equal(shared, r[1])
      end)

      it("keep tables used as keys, as the same tables", function()
        local k = {}
        local r = roundtrip({[k] = "value", key = k})
        assert.are.equal("value", r[r.key])
      end)

      it("keep metatables, a shared one as one table", function()
        local mt = {__index = {inherited = "yes"}, __metatable = "locked"}
        local r = roundtrip({setmetatable({}, mt), setmetatable({}, mt)})
        assert.are.equal("yes", r[1].inherited)
        assert.are.equal("locked", getmetatable(r[1]))
        assert.are.equal(debug.getmetatable(r[1]), debug.getmetatable(r[2]))
      end)

      it("keep a mix of everything", function()
        local v = rich_value()
        local r = roundtrip(v)
        assert.are.same(v[8], r[8])
        assert.are.equal(r.s1, r.s2)
        assert.are.equal("table key", r[r.s1])
        assert.are.equal(-math.huge, 1 / r[3])
        assert.are.equal(r.cyc, r.cyc.self)
        assert.are.equal("deep", r.nested.a.b.c)
        assert.is_true(r.meta.inherited)
        assert.are.equal("float key", r[2.5])
        assert.are.equal("false key", r[false])
      end)

      it("move Lua functions with their upvalues and debug info with {functions = true}", function()
        local base = 40
        local function add(x) return base + x end
        local function fails() error("raised in a moved function") end
        local f = roundtrip(add, CODE)
        assert.are_not.equal(add, f)
        assert.are.equal(42, f(2))
        local src = debug.getinfo(fails, "S")
        local ok, e = pcall(roundtrip(fails, CODE))
        assert.is_false(ok)
        assert.are.equal(("%s:%d: raised in a moved function")
          :format(src.short_src, src.linedefined), e)
      end)

      it("move standard C functions and loaded modules by name with {functions = true}", function()
        local r = roundtrip({print, string.format, math.sin, string, duet, rt}, CODE)
        assert.are.equal(print, r[1])
        assert.are.equal(string.format, r[2])
        assert.are.equal(math.sin, r[3])
        assert.are.equal(string, r[4])
        assert.are.equal(duet, r[5])
        assert.are.equal(rt, r[6])
      end)

      it("number modules and C functions like other values, so later references still match", function()
        local t = {}
        local r = roundtrip({string, print, t, t, print, string}, CODE)
        assert.are.equal(r[3], r[4])
        assert.are.equal(print, r[5])
        assert.are.equal(string, r[6])
      end)
    end)

    describe("refusals", function()
      it("refuse code without {functions = true}", function()
        assert.has_error(function() decode(encode(function() end)) end, NO_CODE)
        assert.has_error(function() decode(encode(print)) end, NO_CODE)
        assert.has_error(function() decode(encode(string)) end, NO_CODE)
        assert.has_error(function() decode(encode({a = {b = {print}}})) end, NO_CODE)
        assert.has_error(function() decode(encode(function() end), {functions = false}) end,
          NO_CODE)
      end)

      it("refuse duet objects, which cannot leave the process", function()
        assert.has_error(function() encode({rt.current()}) end,
          "cannot move duet.Thread out of the process at value[1]")
      end)

      it("refuse the coroutines runtime's objects too, which are Lua tables", function()
        local crt = duet.runtime("coroutines")
        assert.has_error(function() encode({crt.Queue()}) end,
          "cannot move duet.Queue out of the process at value[1]")
        assert.has_error(function() encode({q = {crt.Lock()}}) end,
          "cannot move duet.Lock out of the process at value.q[1]")
        local pe = rt.ProcessExecutor{max_workers = 1}
        finally(function() pe:shutdown() end)
        assert.has_error(function() encode(pe) end,
          "cannot move duet.ProcessExecutor out of the process at value")
        -- a table of the user's own, named or not, still moves
        local named = setmetatable({1}, {__name = "mine"})
        assert.are.equal(1, decode(encode(named))[1])
      end)

      it("refuse what cannot move anywhere, naming where it sits", function()
        assert.has_error(function() encode(io.stdout) end,
          "cannot move userdata (FILE*) at value")
        assert.has_error(function() encode({log = {io.stderr}}) end,
          "cannot move userdata (FILE*) at value.log[1]")
        assert.has_error(function() encode({co = coroutine.create(print)}) end,
          "cannot move coroutine at value.co")
      end)

      it("refuse a value nested too deeply", function()
        local msg = errmsg(encode, nested(300))
        assert.matches("^value too deeply nested at value%.n%.n%.n[.n]+", msg)
      end)

      it("raise bad-argument errors for wrong arguments", function()
        assert.has_error(function() encode() end,
          "bad argument #1 to 'encode' (value expected)")
        assert.has_error(function() decode() end,
          "bad argument #1 to 'decode' (string expected, got no value)")
        assert.has_error(function() decode(encode(1), 5) end,
          "bad argument #2 to 'decode' (table expected, got number)")
      end)
    end)

    describe("malformed input", function()
      it("rejects strings that are not duet encodings", function()
        for _, s in ipairs {"", "abc", "return 1", string.dump(function() end)} do
          assert.has_error(function() decode(s) end,
            "cannot decode: not a duet.encode string")
        end
      end)

      -- #notsan: thousands of errors raised (longjmp) out of instrumented
      -- frames by an uninstrumented Lua overflow TSan's shadow stack.
      it("rejects every truncation of a valid encoding #notsan", function()
        local up = {1}
        local cases = {
          {encode(rich_value())},
          {encode({f = function() return up end, p = print, s = string}), CODE},
          {encode(nested(50))},
        }
        local magic = #encode(nil) - 2     -- magic, count, nil tag
        for _, case in ipairs(cases) do
          local s, opts = case[1], case[2]
          decode(s, opts)                  -- the whole is valid
          for n = 0, #s - 1 do
            local ok, e = pcall(decode, s:sub(1, n), opts)
            assert.is_false(ok, "prefix of " .. n .. " bytes decoded")
            assert.are.equal(n < magic and "cannot decode: not a duet.encode string"
                             or "cannot decode: truncated input", e)
          end
        end
      end)

      it("rejects trailing bytes", function()
        for _, v in ipairs {1, "s", {1, {2}}} do
          assert.has_error(function() decode(encode(v) .. "\0") end,
            "cannot decode: trailing bytes")
        end
        assert.has_error(function() decode(encode(nil) .. encode(nil)) end,
          "cannot decode: trailing bytes")
      end)

      it("rejects input nested too deeply", function()
        local empty = encode({})           -- magic, count 1, table tag and
        local head, open = empty:sub(1, -6), empty:sub(-5, -3)  -- 2 size hints
        assert.has_error(function() decode(head .. open:rep(100000)) end,
          "cannot decode: nested too deeply")
      end)

      it("gives out nothing of the decoding state without {functions = true} #notsan", function()
        local loaded = {}
        for _, m in pairs(package.loaded) do
          if type(m) == "table" then loaded[m] = true end
        end
        local function leaks(v, seen)
          if loaded[v] then return true end
          if type(v) ~= "table" or seen[v] then return false end
          seen[v] = true
          for k, x in next, v do
            if leaks(k, seen) or leaks(x, seen) then return true end
          end
          return leaks(debug.getmetatable(v), seen)
        end
        local head = encode(nil):sub(1, -2)   -- magic, count 1
        local bad = {}
        for a = 0, 255 do
          for b = -1, 255 do
            local s = head .. string.char(a) .. (b >= 0 and string.char(b) or "")
            local ok, r = pcall(decode, s)
            if ok and leaks(r, {}) then bad[#bad + 1] = ("%q"):format(s) end
          end
        end
        assert.are.same({}, bad)
      end)

      it("never crashes on random bytes or mutated encodings #notsan", function()
        local magic = encode(nil):sub(1, -3)
        local base = encode(rich_value())
        local failures, successes = 0, 0
        local function try(s)
          local ok, e = pcall(decode, s)
          if ok then
            successes = successes + 1
          else
            failures = failures + 1
            assert.matches("^cannot decode: ", e)
          end
        end
        math.randomseed(20261121)
        for _ = 1, 3000 do              -- mostly small tags, so they go deep
          local b = {}
          for j = 1, math.random(0, 40) do
            b[j] = string.char(math.random(0, 3) > 0 and math.random(0, 15)
                               or math.random(0, 255))
          end
          try(magic .. table.concat(b))
        end
        for _ = 1, 3000 do
          local b = {base:byte(1, -1)}
          for _ = 1, math.random(1, 4) do
            b[math.random(#magic + 1, #b)] = math.random(0, 255)
          end
          try(string.char(table.unpack(b)))
        end
        assert.is_true(failures > 0 and successes > 0)
      end)
    end)
  end)

  describe("between threads", function()
    -- Errors here are read through join; one raised before join starts
    -- waiting also goes to the excepthook, which would print it.
    setup(function() core.set_excepthook(function() end) end)
    teardown(function() core.set_excepthook(nil) end)

    describe("copies", function()
      it("nil, booleans and numbers, integers and floats kept apart", function()
        local r = table.pack(through(nil, true, false, 1, 1.0, nil, math.mininteger, -0.0, nil))
        assert.are.equal(9, r.n)
        assert.are.same({nil, true, false, 1, 1.0, nil, math.mininteger}, {table.unpack(r, 1, 7)})
        assert.are.equal("integer", math.type(r[4]))
        assert.are.equal("float", math.type(r[5]))
        assert.are.equal(-math.huge, 1 / r[8])
        assert.is_nil(r[9])
        assert.are.same({"integer", "float", "integer"},
          {inside(function(a, b, c) return math.type(a), math.type(b), math.type(c) end,
                  3, 3.0, math.maxinteger)})
      end)

      it("strings with NUL bytes", function()
        assert.are.equal("a\0b\0c", through("a\0b\0c"))
        assert.are.equal(5, inside(function(s) return #s end, "a\0b\0c"))
      end)

      it("big and nested tables", function()
        local big = {}
        for i = 1, 100000 do big[i] = i * 2 end
        big.deep = nested(150)
        local r = through(big)
        assert.are.equal(100000, #r)
        assert.are.equal(20000, r[10000])
        assert.are.same({150, "bottom"}, {depth_of(r.deep)})
        assert.are.same({100000, 150},
          {inside(function(t)
            local d, x = 0, t.deep
            while x.n do x = x.n; d = d + 1 end
            return #t, d
          end, big)})
      end)

      it("cycles and repeated references: the same table twice arrives as one table twice", function()
        local shared = {}
        local t = {shared = shared}
        t.self = t
        local a, b, c = through(t, shared, shared)
        assert.are.equal(a, a.self)
        assert.are.equal(b, c)
        assert.are.equal(a.shared, b)
        assert.are_not.equal(shared, b)
        assert.are.same({true, true, true},
          {inside(function(x, y, z) return x == x.self, y == z, x.shared == y end, t, shared, shared)})
      end)

      it("metatables", function()
        local mt = {__index = function(_, k) return k .. "!" end}
        local o = through(setmetatable({}, mt))
        assert.are.equal("hi!", o.hi)
        assert.are.equal("there!",
          inside(function(x) return x.there end, setmetatable({}, mt)))
      end)

      it("Lua functions with their upvalues, as copies the sender does not see", function()
        local n = 10
        local function bump() n = n + 1; return n end
        assert.are.same({11, 12}, {inside(function(f) return f(), f() end, bump)})
        assert.are.equal(10, n)
        local f = through(bump)
        assert.are.same({11, 12}, {f(), f()})
        assert.are.equal(10, n)
      end)

      it("tables without calling their metamethods", function()
        local function boom() error("a metamethod ran") end
        local t = setmetatable({1, 2, x = 3}, {__index = boom, __newindex = boom,
          __pairs = boom, __len = boom, __eq = boom})
        local r = through(t)
        assert.are.same({1, 2, 3}, {rawget(r, 1), rawget(r, 2), rawget(r, "x")})
      end)

      it("the same function twice as one function", function()
        local function f() end
        local a, b = through(f, f)
        assert.are.equal(a, b)
        assert.is_true(inside(function(x, y) return x == y end, f, f))
      end)

      it("debug info: an error in a moved function names its original file:line", function()
        local function fails() error("raised in a moved function") end
        local function trace() return debug.traceback("here") end
        local src = debug.getinfo(fails, "S")
        local where = ("%s:%d:"):format(src.short_src, src.linedefined)
        local e, tb = inside(function(f, t) return select(2, pcall(f)), t() end, fails, trace)
        assert.are.equal(where .. " raised in a moved function", e)
        local where2 = ("%s:%d:"):format(src.short_src, debug.getinfo(trace, "S").linedefined)
        assert.is_truthy(tb:find(where2, 1, true), tb)
        local ok, err = rt.spawn(fails):join(LONG)
        assert.is_false(ok)
        assert.are.equal(where .. " raised in a moved function", err)
      end)

      it("recursive local functions", function()
        local function fact(n) if n <= 1 then return 1 end return n * fact(n - 1) end
        assert.are.equal(3628800, inside(fact, 10))
        assert.are.equal(3628800, through(fact)(10))
      end)

      it("mutually recursive local functions", function()
        local is_odd
        local function is_even(n) if n == 0 then return true end return is_odd(n - 1) end
        function is_odd(n) if n == 0 then return false end return is_even(n - 1) end
        assert.are.same({true, false}, {inside(function(f) return f(10), f(7) end, is_even)})
        local e = through(is_even)
        assert.are.same({true, false}, {e(10), e(7)})
      end)

      it("two closures sharing one upvalue, still sharing it", function()
        local function counter()
          local c = 0
          return function() c = c + 1 end, function() return c end
        end
        local inc, get = counter()
        assert.are.equal(3, inside(function(i, g) i(); i(); i(); return g() end, inc, get))
        assert.are.equal(0, get())
        local pair = through({inc = inc, get = get})
        pair.inc(); pair.inc()
        assert.are.equal(2, pair.get())
        assert.are.equal(0, get())
      end)

      it("the standard library's C functions, arriving as the receiver's own", function()
        local fns = {print, string.format, math.sin, table.concat, io.write, require,
                     coroutine.wrap, select, core.now}
        assert.is_true(inside(function(list)
          local own = {print, string.format, math.sin, table.concat, io.write, require,
                       coroutine.wrap, select, require("duet.core").now}
          for i = 1, #own do
            if list[i] ~= own[i] then return false end
          end
          return true
        end, fns))
        local back = through(fns)
        for i = 1, #fns do assert.are.equal(fns[i], back[i]) end
      end)

      it("duet's C methods, arriving as the receiver's own", function()
        local join = rt.current().join
        assert.is_true(inside(function(j) return j == rt.current().join end, join))
        assert.are.equal(join, through(join))
      end)

      it("a queue's methods, which every kind of queue shares", function()
        local q, lq = rt.Queue(), rt.LifoQueue()
        local put, get = q.put, lq.get
        assert.are.equal(put, lq.put)
        assert.is_true(inside(function(p, g, a, b)
          p(a, "x")
          p(b, "y")
          return g(a) == "x" and g(b) == "y"
        end, put, get, q, lq))
        assert.are.equal(put, through(put))
      end)

      it("the methods of a type the sender opened after its last move", function()
        -- a fresh state: moving acquire builds its maps before it has
        -- ever needed a Semaphore
        local ok, moved = inside(function()
          local lock = rt.Lock()
          assert(rt.spawn(function(f) return f end, lock.acquire):join())
          local sem = rt.Semaphore()
          return rt.spawn(function(f) return f end, sem.acquire):join()
        end)
        assert.is_true(ok, moved)
        assert.are.equal("function", type(moved))
      end)

      it("rt's functions first read after the sender's last move", function()
        -- a fresh state: its maps are built before it reads rt.sleep (a
        -- concept that makes no type) or rt.TokenBucket (kept by rt)
        assert.are.same({ true, true }, { inside(function()
          assert(rt.spawn(function(f) return f end, rt.now):join())
          local sleep, TokenBucket = rt.sleep, rt.TokenBucket
          local _, a, b = rt.spawn(function(s, t)
            s(0)
            return s, t
          end, sleep, TokenBucket):join()
          return a == sleep, b == TokenBucket
        end) })
      end)
    end)

    describe("rebinds", function()
      it("_ENV: a moved function reads and writes the receiver's globals", function()
        local function read() return DUET_TRANSFER_GLOBAL end
        local function write(v) DUET_TRANSFER_GLOBAL = v end
        _G.DUET_TRANSFER_GLOBAL = "sender"
        local ok, a, b = pcall(inside, function(r, w)
          _G.DUET_TRANSFER_GLOBAL = "receiver"
          local seen = r()
          w("written")
          return seen, _G.DUET_TRANSFER_GLOBAL
        end, read, write)
        local after = _G.DUET_TRANSFER_GLOBAL
        _G.DUET_TRANSFER_GLOBAL = nil
        assert.is_true(ok, a)
        assert.are.equal("receiver", a)
        assert.are.equal("written", b)
        assert.are.equal("sender", after)
      end)

      it("loaded modules captured as upvalues to the receiver's own require", function()
        local strlib, d, r, c = string, duet, rt, core
        assert.are.same({true, true, true, true}, {inside(function()
          return strlib == string, d == require "duet", r == require "duet.threads",
                 c == require "duet.core"
        end)})
        local a, b = through(string, _G)
        assert.are.equal(string, a)
        assert.are.equal(_G, b)
      end)

      it("the user's own module, which the receiver requires by name #notsan", function()
        local dir = os.tmpname()
        os.remove(dir)
        assert.is_true(os.execute("mkdir " .. dir))
        local file = dir .. "/duet_transfer_mod.lua"
        local f = assert(io.open(file, "w"))
        f:write("LOADS = (LOADS or 0) + 1\nreturn {loads = LOADS}\n")
        f:close()
        local path = package.path
        package.path = dir .. "/?.lua;" .. path
        local ok, res = pcall(function()
          local mod = require "duet_transfer_mod"
          local th = rt.spawn(function()
            return mod == require "duet_transfer_mod", mod.loads, mod
          end)
          return {th:join(LONG)}
        end)
        package.path = path
        package.loaded.duet_transfer_mod = nil
        _G.LOADS = nil
        os.remove(file)
        os.remove(dir)
        assert.is_true(ok, res)
        assert.are.same({true, true, 1}, {res[1], res[2], res[3]})
        assert.are.equal(1, res[4].loads)
      end)

      it("a module the receiver cannot require: join gives false and require's error", function()
        package.loaded.duet_transfer_nowhere = {}
        local mod = package.loaded.duet_transfer_nowhere
        local ok, th = pcall(rt.spawn, function() return mod end)
        package.loaded.duet_transfer_nowhere = nil
        assert.is_true(ok, th)
        local joined, e = th:join(LONG)
        assert.is_false(joined)
        assert.matches("^module 'duet_transfer_nowhere' not found:", e)
      end)

      it("a module loaded after package.loaded lost duet's metatable still goes by name", function()
        -- duet watches package.loaded for new modules through a metatable;
        -- once the user takes it away, the maps are rebuilt on each send
        assert.is_true(rt.spawn(function() return math end):join(LONG))  -- maps built
        local mt = getmetatable(package.loaded)
        setmetatable(package.loaded, nil)
        package.loaded.duet_transfer_late = {}
        local mod = package.loaded.duet_transfer_late
        local ok, th = pcall(rt.spawn, function() return mod end)
        package.loaded.duet_transfer_late = nil
        setmetatable(package.loaded, mt)
        assert.is_true(ok, th)
        local joined, e = th:join(LONG)
        assert.is_false(joined)
        assert.matches("^module 'duet_transfer_late' not found:", e)
      end)
    end)

    describe("passes by reference", function()
      it("a Thread object: both sides hold the same thread", function()
        local a = rt.spawn(function() return "from a" end)
        local b = rt.spawn(function(other)
          local r = {other:join(LONG)}
          return r[1], r[2], other.name, other
        end, a)
        local ok, joined, result, name, same = b:join(LONG)
        assert.is_true(ok)
        assert.is_true(joined)
        assert.are.equal("from a", result)
        assert.are.equal(a.name, name)
        assert.is_true(rawequal(a, same))
        assert.are.equal(a, through(a))
      end)

      it("duet.cancelled and duet.timeout, which compare equal after moving", function()
        assert.are.equal(duet.cancelled, through(duet.cancelled))
        assert.are.equal(duet.timeout, through(duet.timeout))
        assert.are.same({true, true, false}, {inside(function(c, t)
          return c == duet.cancelled, t == duet.timeout, c == t
        end, duet.cancelled, duet.timeout)})
        local _, inner = inside(function() return 1, duet.cancelled end)
        assert.are.equal(duet.cancelled, inner)
      end)
    end)

    describe("refuses", function()
      local function noop() end

      it("other userdata, naming where it sits", function()
        assert.has_error(function() rt.spawn(noop, 1, {log = io.stdout}) end,
          "cannot move userdata (FILE*) at args[2].log")
        assert.has_error(function() rt.spawn(noop, io.stdout) end,
          "cannot move userdata (FILE*) at args[1]")
        assert.has_error(function() rt.spawn(noop, nil, nil, io.stderr) end,
          "cannot move userdata (FILE*) at args[3]")
        assert.has_error(function() rt.Thread{target = noop, args = {1, {log = io.stdout}}} end,
          "cannot move userdata (FILE*) at args[2].log")
      end)

      it("naming keys, nested indices, metatables and upvalues in the path", function()
        assert.has_error(function() rt.spawn(noop, {x = {[true] = {[-3] = io.stdout}}}) end,
          "cannot move userdata (FILE*) at args[1].x[true][-3]")
        assert.has_error(function() rt.spawn(noop, {["a b"] = {[1.5] = io.stdout}}) end,
          "cannot move userdata (FILE*) at args[1][\"a b\"][1.5]")
        assert.has_error(function() rt.spawn(noop, {[io.stdout] = 1}) end,
          "cannot move userdata (FILE*) at args[1][userdata]<key>")
        assert.has_error(function() rt.spawn(noop, setmetatable({}, {x = io.stdout})) end,
          "cannot move userdata (FILE*) at args[1]<metatable>.x")
        local out = io.stdout
        local function g() return out end
        local function f() return g() end
        assert.has_error(function() rt.spawn(f) end,
          "cannot move userdata (FILE*) at target<upvalue g><upvalue out>")
        assert.has_error(function() rt.Thread{target = g} end,
          "cannot move userdata (FILE*) at target<upvalue out>")
      end)

      it("quotes a string key the way Lua would write it", function()
        assert.has_error(function() rt.spawn(noop, {['say "hi"'] = io.stdout}) end,
          'cannot move userdata (FILE*) at args[1]["say \\"hi\\""]')
      end)

      it("coroutines", function()
        assert.has_error(function() rt.spawn(noop, coroutine.create(noop)) end,
          "cannot move coroutine at args[1]")
        assert.has_error(function() rt.spawn(noop, {co = coroutine.running()}) end,
          "cannot move coroutine at args[1].co")
      end)

      it("C functions with upvalues", function()
        assert.has_error(function() rt.spawn(noop, string.gmatch("a", "a")) end,
          "cannot move C function with upvalues at args[1]")
        assert.has_error(function() rt.spawn(noop, coroutine.wrap(noop)) end,
          "cannot move C function with upvalues at args[1]")
      end)

      it("unknown C functions", function()
        local iter = ipairs({})            -- ipairs' iterator: in no module
        assert.has_error(function() rt.spawn(noop, iter) end,
          "cannot move unknown C function at args[1]")
        assert.has_error(function() rt.spawn(noop, {write = io.stdout.write}) end,
          "cannot move unknown C function at args[1].write")
      end)

      it("and starts nothing when a spawn or Thread{} is refused", function()
        local mark = os.tmpname()
        os.remove(mark)
        local function touch(path)
          local f = io.open(path, "w")
          if f then f:write("ran"); f:close() end
        end
        assert.has_error(function() rt.spawn(touch, mark, io.stdout) end,
          "cannot move userdata (FILE*) at args[2]")
        assert.has_error(function()
          rt.Thread{target = touch, args = {mark, coroutine.create(noop)}}:start()
        end, "cannot move coroutine at args[2]")
        assert.is_true(core.wait_threads(LONG), "a thread is still running")
        local f = io.open(mark)
        if f then f:close(); os.remove(mark) end
        assert.is_nil(f, "a refused thread ran")
      end)

      it("results that cannot move: join gives false and the reason", function()
        local ok, e = rt.spawn(function() return 1, io.stdout end):join(LONG)
        assert.is_false(ok)
        assert.are.equal("cannot move userdata (FILE*) at results[2]", e)
      end)

      it("an error value that cannot move: join gives its text", function()
        local ok, e = rt.spawn(function()
          error(setmetatable({co = coroutine.running()},
                             {__tostring = function() return "custom error" end}))
        end):join(LONG)
        assert.is_false(ok)
        assert.are.equal("custom error", e)
      end)

      it("a value nested too deeply", function()
        local msg = errmsg(rt.spawn, noop, nested(300))
        assert.matches("^value too deeply nested at args%[1%]%.n%.n%.n[.n]+", msg)
      end)
    end)
  end)
end)

-- A duet thread's _G is the plain _G of any Lua state (issue 17): its
-- standard libraries open on first use, behind a metatable duet keeps out
-- of the user's way. Asking for _G's metatable, or setting one (with base's
-- or debug's functions), sees a plain _G with every library in it.
local busted = require "busted"
local assert = require "luassert"
local describe, it = busted.describe, busted.it
local rt = require "duet".threads

--- Run fn in a new thread; its results (the join's, after `true`).
local function in_thread(fn)
  local th = rt.Thread{target = fn, daemon = true}
  th:start()
  local r = table.pack(th:join(5))
  assert.is_true(r[1], tostring(r[2]))
  return table.unpack(r, 2, r.n)
end

local LIBS = { "coroutine", "table", "io", "os", "math", "utf8", "debug", "string", "package" }

describe("a thread's _G", function()
  it("has no metatable, as in a plain state", function()
    assert.are.equal("nil", in_thread(function() return type(getmetatable(_G)) end))
    assert.are.equal("nil", in_thread(function() return type(debug.getmetatable(_G)) end))
  end)

  it("keeps every standard library after setmetatable(_G, nil)", function()
    local got = in_thread(function()
      setmetatable(_G, nil)
      local t = {}
      for _, name in ipairs { "coroutine", "table", "io", "os", "math", "utf8", "debug", "string", "package" } do
        t[#t + 1] = name .. "=" .. type(_G[name])
      end
      return table.concat(t, " ")
    end)
    local want = {}
    for _, name in ipairs(LIBS) do want[#want + 1] = name .. "=table" end
    assert.are.equal(table.concat(want, " "), got)
  end)

  it("keeps them after debug.setmetatable(_G, nil)", function()
    assert.are.same({ "table", "table" }, { in_thread(function()
      debug.setmetatable(_G, nil)
      return type(math), type(utf8)
    end) })
  end)

  it("takes a user's metatable (strict globals) and the libraries stay", function()
    assert.are.same({ "undefined variable nope", 2 }, { in_thread(function()
      setmetatable(_G, { __index = function(_, k) error("undefined variable " .. k, 2) end })
      local ok, e = pcall(function() return nope end) -- luacheck: ignore
      return (tostring(e):gsub("^.-:%d+: ", "")), math.floor(2.5) + (ok and 1 or 0)
    end) })
  end)

  it("lists every library in pairs(_G) once its metatable was asked for", function()
    local got = in_thread(function()
      getmetatable(_G)
      local n = 0
      for _, name in ipairs { "coroutine", "table", "io", "os", "math", "utf8", "debug", "string", "package" } do
        if rawget(_G, name) then n = n + 1 end
      end
      return n
    end)
    assert.are.equal(#LIBS, got)
  end)

  it("gives getmetatable and setmetatable their usual errors and results", function()
    assert.are.same({
      "bad argument #2 to 'setmetatable' (nil or table expected, got number)",
      "bad argument #1 to 'setmetatable' (table expected, got number)",
      "cannot change a protected metatable",
      "locked", true,
    }, { in_thread(function()
      local function err(f, ...)
        return (select(2, pcall(f, ...)):gsub("^.-:%d+: ", ""))
      end
      local t = setmetatable({}, { __metatable = "locked" })
      return err(setmetatable, _G, 5), err(setmetatable, 1, {}),
             err(setmetatable, t, {}), getmetatable(t),
             setmetatable(_G, nil) == _G
    end) })
  end)

  it("keeps package, require and base after setmetatable(_G, nil)", function()
    assert.are.same({ "table", "function", "function", "function", "function" }, { in_thread(function()
      setmetatable(_G, nil)
      return type(rawget(_G, "package")), type(rawget(_G, "require")),
             type(package.searchpath), type(rawget(_G, "print")), type(rawget(_G, "pairs"))
    end) })
  end)

  describe("package, opened on first use,", function()
    -- A module only findable through a template the creator added to its
    -- package.path.
    -- (No os.execute: a shell under the sanitizers' LD_PRELOAD can die.)
    local modname, tmp, file, saved_path = "duet_lazy_pkg_probe"
    busted.setup(function()
      tmp = os.tmpname()                  -- a fresh name: "<tmp>_?.lua"
      file = tmp .. "_" .. modname .. ".lua"
      local f = assert(io.open(file, "w"))
      f:write('return { answer = 42, where = ... }\n')
      f:close()
      saved_path = package.path
      package.path = tmp .. "_?.lua;" .. package.path
    end)
    busted.teardown(function()
      if saved_path then package.path = saved_path end
      if file then os.remove(file) end
      if tmp then os.remove(tmp) end
    end)

    it("gives require as the first use, with the creator's package.path", function()
      local want = package.path
      assert.are.same({ 42, want, package.cpath }, { in_thread(function()
        local m = require "duet_lazy_pkg_probe"
        return m.answer, package.path, package.cpath
      end) })
    end)

    it("requires the standard libraries, _G and duet.core as the first use", function()
      assert.are.same({ true, true, true, true, "function" }, { in_thread(function()
        local m, t, g, core = require "math", require "table", require "_G",
          require "duet.core"
        return m == math, t == table, g == _G, core == require "duet.core",
          type(core.now)
      end) })
    end)

    it("has duet and duet.threads preloaded: no search of the path for them", function()
      assert.are.same({ "function", "function", "threads", true }, { in_thread(function()
        local p1, p2 = type(package.preload.duet), type(package.preload["duet.threads"])
        local r = require "duet.threads"
        return p1, p2, r.name, r == require("duet").threads
      end) })
    end)

    it("gives `package` as the first use, with the creator's paths", function()
      assert.are.same({ package.path, package.cpath }, { in_thread(function()
        return package.path, package.cpath
      end) })
    end)

    it("has the paths when opened by setmetatable(_G, nil)", function()
      assert.are.same({ 42, package.path }, { in_thread(function()
        setmetatable(_G, nil)
        return require("duet_lazy_pkg_probe").answer, package.path
      end) })
    end)

    it("passes the paths on to a thread's own threads", function()
      assert.are.same({ 42, package.path }, { in_thread(function()
        local th = require("duet").threads.Thread{
          target = function()
            return require("duet_lazy_pkg_probe").answer, package.path
          end }
        th:start()
        return select(2, th:join(5))
      end) })
    end)

    it("leaves a removed require nil and `package` alone once open", function()
      assert.are.same({ "nil", "nil" }, { in_thread(function()
        local _ = require
        require, package = nil, nil -- luacheck: ignore
        return type(require), type(rawget(_G, "package"))
      end) })
    end)

    it("has duet's compiled-module searcher, after preload", function()
      assert.are.same({ 5, "function" }, { in_thread(function()
        return #package.searchers, type(package.searchers[2])
      end) })
    end)
  end)

  -- rt and duet.core are built in C: a function using them must not make
  -- each new thread open package and search the path.
  describe("rt and duet.core's functions, moved into a thread,", function()
    it("arrive without opening package", function()
      assert.are.same({ "nil", true, true, "userdata" }, { in_thread(function()
        local r = rt
        local loaded = debug.getregistry()._LOADED
        return type(rawget(_G, "package")), loaded["duet.threads"] == r,
          r.sleep == loaded["duet.core"].sleep, type(r.Queue())
      end) })
    end)

    it("take duet itself along without opening package", function()
      local duet = require "duet"
      assert.are.same({ "nil", true, true, "threads" }, { in_thread(function()
        local d = duet
        local loaded = debug.getregistry()._LOADED
        return type(rawget(_G, "package")), loaded.duet == d,
          d.cancelled == loaded["duet.core"].cancelled, d.runtime().name
      end) })
    end)

    it("come from duet.core, not from rt, when rt does not move", function()
      local sleep, Lock = rt.sleep, rt.Lock
      assert.are.same({ "nil", "nil", "true" }, { in_thread(function()
        local s, l = sleep, Lock
        s(0)
        local loaded = debug.getregistry()._LOADED
        return type(rawget(_G, "package")), type(loaded["duet.threads"]),
          tostring(l():acquire())
      end) })
    end)
  end)

  -- each type's metatable and methods cost a thread about half a KB
  describe("a duet object moved into a thread", function()
    it("makes only its own type there, and the rest of its family on demand", function()
      local lock, sem = rt.Lock(), rt.Semaphore(1)
      assert.are.same({ "nil", "nil", "nil", "true", "true", "true" }, { in_thread(function()
        local l, s = lock, sem
        local reg = debug.getregistry()
        local before = { type(reg["duet.RLock"]), type(reg["duet.BoundedSemaphore"]),
          type(reg["duet.Guard"]) }
        local r = require("duet.core").RLock()
        local b = require("duet.core").BoundedSemaphore(1)
        local ok = r:acquire() and b:acquire() and l:acquire() and s:acquire()
        return before[1], before[2], before[3], tostring(ok),
          tostring(reg["duet.RLock"] ~= nil), tostring(reg["duet.BoundedSemaphore"] ~= nil)
      end) })
    end)
  end)

  describe("string, opened on first use,", function()
    it("takes a method call on a string as the first use", function()
      assert.are.same({ "xxx", "X" }, { in_thread(function()
        return ("x"):rep(3), ("x"):upper()
      end) })
    end)

    it("coerces strings in arithmetic as the first use", function()
      local function probe(f)
        return { in_thread(f) }
      end
      assert.are.same({ 11 }, probe(function() return ("10") + 1 end))
      assert.are.same({ 9 }, probe(function() return 10 - "1" end))
      assert.are.same({ 12 }, probe(function() return "3" * "4" end))
      assert.are.same({ 1.5 }, probe(function() return "3" / 2 end))
      assert.are.same({ 3 }, probe(function() return "7" % "4" end))
      assert.are.same({ 8.0 }, probe(function() return "2" ^ 3 end))
      assert.are.same({ 3 }, probe(function() return "7" // 2 end))
      assert.are.same({ -2 }, probe(function() return -"2" end))
      assert.are.same({ "integer", "float" }, probe(function()
        return math.type("10" + 1), math.type("1.5" + 1)
      end))
    end)

    it("gives arithmetic on a non-number string its usual error", function()
      local function msg(f) return (select(2, pcall(f)):gsub("^.-:%d+: ", "")) end
      local want = { msg(function() return "x" + 1 end), msg(function() return -"y" end),
                     msg(function() return {} + "1" end) }
      assert.are.same(want, { in_thread(function()
        local function m(f) return (select(2, pcall(f)):gsub("^.-:%d+: ", "")) end
        return m(function() return "x" + 1 end), m(function() return -"y" end),
               m(function() return {} + "1" end)
      end) })
    end)

    it("lets the other operand's metamethod answer, as in a plain state", function()
      assert.are.same({ "mt:x", "mt:x" }, { in_thread(function()
        local t = setmetatable({}, { __add = function(a, b)
          return "mt:" .. (type(a) == "string" and a or b)
        end })
        return "x" + t, t + "x"
      end) })
    end)

    it("keeps #, .. and string.format as in a plain state", function()
      assert.are.same({ 3, "ab1", "7-x" }, { in_thread(function()
        local s = "abc"
        return #s, "ab" .. 1, string.format("%d-%s", 7, "x")
      end) })
    end)

    it("shows the real string metatable to getmetatable", function()
      assert.are.same({ true, true }, { in_thread(function()
        return getmetatable("").__index == string, rawequal(getmetatable("a").__index, string)
      end) })
      assert.are.same({ true, "function" }, { in_thread(function()
        local mt = debug.getmetatable("")
        return mt.__index == string, type(mt.__add)
      end) })
    end)

    it("keeps a string metatable the user set before string opened", function()
      assert.are.same({ "hi", "hi", "table" }, { in_thread(function()
        debug.setmetatable("", { __index = { hi = function() return "hi" end } })
        local a = ("x"):hi()
        local _ = string.rep
        return a, ("x"):hi(), type(string)
      end) })
    end)
  end)

  describe("base, opened on first use,", function()
    it("keeps the globals a thread set before it opened", function()
      assert.are.same({ "mine", "number", 7, "mine too", "x" }, { in_thread(function()
        print = function() return "mine" end -- luacheck: ignore
        tostring = 7 -- luacheck: ignore
        _VERSION = "mine too" -- luacheck: ignore
        x_user_global = "x" -- luacheck: ignore
        local t = type(1)                 -- the first miss: base opens
        return print(), t, rawget(_G, "tostring"), _VERSION, x_user_global
      end) })
    end)

    it("keeps a user's _G and getmetatable set before it opened", function()
      assert.are.same({ 5, "mine" }, { in_thread(function()
        local G = _ENV
        G.getmetatable = function() return "mine" end
        G._G = 5
        return G.rawget(G, "_G"), G.getmetatable()
      end) })
    end)

    it("is the plain base library once open", function()
      assert.are.same({ true, "Lua 5.4", true, true, "number", 3 }, { in_thread(function()
        return _G._G == _G, _VERSION, package.loaded._G == _G, require "_G" == _G,
               type(tonumber("5")), select("#", 1, 2, 3)
      end) })
    end)

    it("lists a global set before it opened in pairs(_G)", function()
      assert.is_true(in_thread(function()
        my_probe_global = 1 -- luacheck: ignore
        for k in pairs(_G) do
          if k == "my_probe_global" then return true end
        end
        return false
      end))
    end)

    it("decodes one of its functions as a target or an argument", function()
      local th = rt.Thread{ target = type, args = { 5 }, daemon = true }
      th:start()
      assert.are.same({ true, "number" }, { th:join(5) })
      assert.are.same({ true, true }, { in_thread(function()
        local th2 = require("duet").threads.Thread{
          target = function(f) return f == print end, args = { print } }
        th2:start()
        return th2:join(5)
      end) })
    end)

    it("gives an undefined global nil, without error", function()
      assert.are.same({ "nil", "nil" }, { in_thread(function()
        return type(no_such_global_1), type(rawget(_G, "no_such_global_1")) -- luacheck: ignore
      end) })
    end)
  end)
end)

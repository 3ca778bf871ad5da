-- docs/API.md documents every Lua-visible function: the `duet` module's,
-- each runtime's (rt.*), and every method of every object type of both
-- runtimes. A function counts as documented when some "### " heading holds
-- its call: `duet.runtime(`, `rt.spawn(` (or `rt.Thread{`), `q:put(`.
--
-- The functions are found, not listed by hand, so that a new one fails
-- here until it has a heading:
--   duet      pairs(duet), plus the replaceable duet.excepthook;
--   rt        the contract's names, pairs(rt), the names the threads
--             runtime resolves lazily (the tables its __index consults),
--             and every constructor duet.core registers (CapWords keys,
--             after touching each name in the luaL_Reg tables of the C
--             sources, since duet.core opens its parts on first use);
--   methods   one instance of each type, per runtime; its methods are what
--             its metatable reaches (__index table, __methods, methods, the
--             tables an __index function closes over), plus the contract's
--             list for the type, kept when the object really has them.
local busted = require "busted"
local describe, it = busted.describe, busted.it
local assert = require "luassert"
local duet = require "duet"
local core = require "duet.core"

local DOC = "docs/API.md"

---------------------------------------------------------------- headings

local function read_headings(path)
  local f = assert(io.open(path, "r"))
  local list, fence = {}, false
  for line in f:lines() do
    if line:match("^%s*```") then fence = not fence
    elseif not fence and line:match("^###%s") then list[#list + 1] = line end
  end
  f:close()
  return list
end

-- Is `pattern` (a Lua pattern) found in one of the headings?
local function in_headings(headings, pattern)
  for i = 1, #headings do
    if headings[i]:find(pattern) then return true end
  end
  return false
end

-- Patterns for a call: the prefix must not be the tail of a longer name.
local function fn_pattern(prefix, name)
  return "%f[%w_]" .. prefix .. "%." .. name .. "[%({]"
end

local function method_pattern(var, name)
  if var == nil then return ":" .. name .. "%(" end   -- any receiver
  return "%f[%w_]" .. var .. ":" .. name .. "%("
end

local function sorted_keys(set)
  local list = {}
  for k in pairs(set) do list[#list + 1] = k end
  table.sort(list)
  return list
end

local function assert_none_missing(missing)
  assert.is_true(#missing == 0, ("%s has no ### heading for %d function(s):\n  %s")
    :format(DOC, #missing, table.concat(missing, "\n  ")))
end

------------------------------------------------------------- the functions

-- What the contract names (docs/API.md).
local CONTRACT_RT = {
  "run", "sleep", "now", "current", "Thread", "spawn", "Lock", "RLock",
  "Semaphore", "BoundedSemaphore", "Condition", "Event", "Barrier", "Queue",
  "LifoQueue", "PriorityQueue", "SharedTable", "Executor", "TokenBucket",
  "wait", "as_completed", "wrap", "wait_readable", "wait_writable",
  "stack_size",
}

-- The C sources: those the rockspec builds (no directory listing: a shell
-- started by io.popen crashes under make tsan's preloaded TSan).
local function c_sources()
  local files = {}
  local f = io.open("duet-scm-1.rockspec", "r")
  if f then
    for file in f:read("a"):gmatch('"(csrc/[%w_]+%.c)"') do
      files[#files + 1] = file
    end
    f:close()
  end
  return files
end

-- The CapWords names of the C sources' luaL_Reg entries ({"Queue", queue_new}).
local function c_constructor_names()
  local names = {}
  for _, file in ipairs(c_sources()) do
    local f = io.open(file, "r")
    if f then
      local src = f:read("a")
      f:close()
      for name in src:gmatch('{%s*"(%u[%w_]*)"%s*,%s*[%w_]+%s*}') do
        names[name] = true
      end
    end
  end
  return names
end

-- Every constructor duet.core registers, after touching each known name.
local function core_constructors()
  for _, name in ipairs(CONTRACT_RT) do local _ = core[name] end
  for name in pairs(c_constructor_names()) do local _ = core[name] end
  local set = {}
  for k, v in pairs(core) do
    if type(k) == "string" and k:match("^%u") and type(v) == "function" then
      set[k] = true
    end
  end
  return set
end

-- The string keys of the tables a function closes over (its upvalues).
local function upvalue_table_keys(fn, into)
  if type(fn) ~= "function" then return end
  for i = 1, 255 do
    local name, v = debug.getupvalue(fn, i)
    if name == nil then break end
    if type(v) == "table" then
      for k in pairs(v) do
        if type(k) == "string" then into[k] = true end
      end
    end
  end
end

-- The names of rt's functions.
local function runtime_functions(rt)
  local candidates = {}
  for _, name in ipairs(CONTRACT_RT) do candidates[name] = true end
  for k in pairs(rt) do
    if type(k) == "string" then candidates[k] = true end
  end
  local mt = getmetatable(rt)
  if type(mt) == "table" then upvalue_table_keys(rawget(mt, "__index"), candidates) end
  for k in pairs(core_constructors()) do candidates[k] = true end
  local set = {}
  for k in pairs(candidates) do
    if k:match("^[%a_][%w_]*$") and type(rt[k]) == "function" then set[k] = true end
  end
  return set
end

-- The names of the duet module's functions.
local function duet_functions()
  local set = {}
  for k, v in pairs(duet) do
    if type(k) == "string" and type(v) == "function" then set[k] = true end
  end
  if type(duet.excepthook) == "function" then set.excepthook = true end
  return set
end

--------------------------------------------------------------- the methods

-- The name each type's receiver has in the headings, and the methods the
-- contract gives it.
local TYPES = {
  Thread = { "th", "start", "join", "is_alive", "cancel" },
  Lock = { "lock", "acquire", "release", "locked", "with", "guard" },
  RLock = { "rlock", "acquire", "release", "locked", "with", "guard" },
  Semaphore = { "sem", "acquire", "release", "with", "guard" },
  BoundedSemaphore = { "sem", "acquire", "release", "with", "guard" },
  Condition = { "cond", "acquire", "release", "with", "guard", "wait",
    "wait_for", "notify", "notify_all" },
  Event = { "ev", "set", "clear", "is_set", "wait" },
  Barrier = { "barrier", "wait", "reset", "abort" },
  Queue = { "q", "put", "get", "put_nowait", "get_nowait", "put_many",
    "get_many", "size", "empty", "full", "task_done", "join", "close", "iter" },
  LifoQueue = { "q", "put", "get", "put_nowait", "get_nowait", "put_many",
    "get_many", "size", "empty", "full", "task_done", "join", "close", "iter" },
  PriorityQueue = { "q", "put", "get", "put_nowait", "get_nowait", "put_many",
    "get_many", "size", "empty", "full", "task_done", "join", "close", "iter" },
  SharedTable = { "t", "incr", "update", "snapshot" },
  Executor = { "ex", "submit", "map", "shutdown" },
  Future = { "fut", "result", "exception", "wait", "done", "running",
    "cancel", "cancelled", "add_done_callback" },
  TokenBucket = { "tb", "take", "wait", "tokens" },
  Socket = { "sock", "accept", "bind", "close", "connect", "getsockname",
    "getpeername", "listen", "receive", "send", "setoption", "getoption",
    "settimeout", "shutdown", "getfd", "dirty", "getfamily" },
}

-- How to make one of each (inside rt.run). A constructor not listed here
-- is tried with no argument and with {}.
local RECIPES = {
  Thread = function(rt) return rt.Thread{ target = function() end } end,
  Semaphore = function(rt) return rt.Semaphore(1) end,
  BoundedSemaphore = function(rt) return rt.BoundedSemaphore(1) end,
  Barrier = function(rt) return rt.Barrier(1) end,
  Executor = function(rt) return rt.Executor{ max_workers = 1 } end,
  TokenBucket = function(rt) return rt.TokenBucket{ capacity = 1, rate = 1 } end,
  -- the private server of spec/redis_server.sh (make test starts it)
  RemoteQueue = function(rt)
    return rt.RemoteQueue{ redis = require("redis_helpers").url(), name = "docs_spec" }
  end,
  RemoteExecutor = function(rt)
    local ex = rt.RemoteExecutor{ redis = require("redis_helpers").url(),
      queue = "docs_spec" }
    ex:shutdown()
    return ex
  end,
}

-- A duet socket of `rt`: from a LuaSocket object when LuaSocket is there.
local function make_socket(rt)
  local ok, socket = pcall(require, "socket")
  if ok and type(socket) == "table" and socket.tcp then
    return rt.wrap(socket.tcp())
  end
  return core.socket_new(-1, "master", "unspec", rt.name == "coroutines")
end

-- The public methods that `o`'s metatable reaches.
local function methods_of(o, known)
  local found, seen = {}, {}
  local function add(t)
    if type(t) ~= "table" or seen[t] then return end
    seen[t] = true
    for k, v in pairs(t) do
      -- "_name": private; "__name": a metamethod
      if type(k) == "string" and type(v) == "function" and not k:find("^_") then
        found[k] = true
      end
    end
  end
  local mt = getmetatable(o)
  if type(mt) == "table" then
    add(rawget(mt, "__methods"))
    add(rawget(mt, "methods"))
    local index = rawget(mt, "__index")
    if type(index) == "table" then
      add(index)
    elseif type(index) == "function" then
      for i = 1, 255 do
        local name, v = debug.getupvalue(index, i)
        if name == nil then break end
        add(v)
      end
    end
  end
  for i = 2, known and #known or 0 do found[known[i]] = true end
  local set = {}
  for k in pairs(found) do
    local ok, v = pcall(function() return o[k] end)
    if ok and type(v) == "function" then set[k] = true end
  end
  return set
end

-- { {type = name, var = receiver, methods = set}, ... } for runtime `rt`.
local function runtime_objects(rt, constructors)
  local out, unmade = {}, {}
  rt.run(function()
    local objects = {}
    for name in pairs(constructors) do
      local recipe = RECIPES[name]
      local ok, o
      if recipe then
        ok, o = pcall(recipe, rt)
      else
        ok, o = pcall(rt[name])
        if not (ok and getmetatable(o)) then ok, o = pcall(rt[name], {}) end
      end
      if ok and getmetatable(o) then objects[name] = o
      else unmade[#unmade + 1] = name end
    end
    if objects.Executor then
      objects.Future = objects.Executor:submit(function() end)
    end
    objects.Socket = make_socket(rt)
    for name, o in pairs(objects) do
      local known = TYPES[name]
      out[#out + 1] = { type = name, var = known and known[1],
        methods = methods_of(o, known) }
    end
    if objects.Future then objects.Future:wait(5) end
    if objects.Executor then objects.Executor:shutdown() end
    objects.Socket:close()
  end)
  table.sort(out, function(a, b) return a.type < b.type end)
  table.sort(unmade)
  return out, unmade
end

------------------------------------------------------------------- specs

describe("docs/API.md", function()
  local headings = read_headings(DOC)

  it("has a heading for every function of the duet module", function()
    local missing = {}
    for _, name in ipairs(sorted_keys(duet_functions())) do
      if not in_headings(headings, fn_pattern("duet", name)) then
        missing[#missing + 1] = ("duet.%s("):format(name)
      end
    end
    assert_none_missing(missing)
  end)

  for _, rtname in ipairs({ "threads", "coroutines" }) do
    describe("(" .. rtname .. " runtime)", function()
      local rt = duet.runtime(rtname)

      it("has a heading for every function of rt", function()
        local missing = {}
        for _, name in ipairs(sorted_keys(runtime_functions(rt))) do
          if not in_headings(headings, fn_pattern("rt", name)) then
            missing[#missing + 1] = ("rt.%s(  (%s runtime)"):format(name, rtname)
          end
        end
        assert_none_missing(missing)
      end)

      it("has a heading for every method of every object type", function()
        local constructors = {}
        for name in pairs(runtime_functions(rt)) do
          if name:match("^%u") then constructors[name] = true end
        end
        local objects, unmade = runtime_objects(rt, constructors)
        assert.is_true(#unmade == 0, ("spec/docs_spec.lua cannot make an instance of "
          .. "rt.%s (%s runtime): add a recipe to RECIPES"):format(
            table.concat(unmade, ", rt."), rtname))
        local missing = {}
        for _, obj in ipairs(objects) do
          assert.is_true(next(obj.methods) ~= nil, ("found no method of %s (%s runtime)")
            :format(obj.type, rtname))
          for _, m in ipairs(sorted_keys(obj.methods)) do
            if not in_headings(headings, method_pattern(obj.var, m)) then
              missing[#missing + 1] = ("%s:%s(  (%s, %s runtime)"):format(
                obj.var or "<receiver>", m, obj.type, rtname)
            end
          end
        end
        assert_none_missing(missing)
      end)
    end)
  end
end)

-- Dependencies among duet.core's C files run one way (issue 17): compiles
-- each csrc/*.c on its own, reads which file defines and which uses each
-- global symbol (`nm`), and fails on any cycle of file-level calls,
-- naming the calls that close it. A lower layer reaches an upper one only
-- through pointers it is handed (duet_Type's open and moves, the module
-- opener), never by name.
-- Tagged nosan: a sanitizer preloaded into the compiler breaks it.
local H = require "helpers"

local function run(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  local ok = p:close()
  return ok, out
end

-- {file = {used symbol = true}}, {symbol = defining file}
local function symbols(objdir)
  local ok, out = run("cd " .. H.shquote(objdir) .. " && nm -A *.o")
  assert(ok, out)
  local uses, owner = {}, {}
  for file, kind, name in out:gmatch("([%w_]+)%.o:%x* *(%a) ([%w_]+)\n") do
    uses[file] = uses[file] or {}
    if kind == "U" then uses[file][name] = true
    elseif kind:match("[TDBRC]") then owner[name] = file end
  end
  return uses, owner
end

-- The file-level call graph: {file = {callee file = a symbol it uses}}.
local function graph(uses, owner)
  local g = {}
  for file, used in pairs(uses) do
    g[file] = {}
    for name in pairs(used) do
      local to = owner[name]
      if to and to ~= file then g[file][to] = name end
    end
  end
  return g
end

-- One cycle of g as "a -> b (sym)" lines, or nil if there is none.
local function find_cycle(g)
  local state, path = {}, {}
  local function visit(v)
    state[v] = "open"
    path[#path + 1] = v
    local callees = {}
    for w in pairs(g[v]) do callees[#callees + 1] = w end
    table.sort(callees)
    for _, w in ipairs(callees) do
      if state[w] == "open" then
        local lines, from = {}, nil
        for i = #path, 1, -1 do if path[i] == w then from = i break end end
        for i = from, #path do
          local a, b = path[i], path[i + 1] or w
          lines[#lines + 1] = ("%s -> %s (%s)"):format(a, b, g[a][b])
        end
        return lines
      elseif not state[w] then
        local c = visit(w)
        if c then return c end
      end
    end
    state[v] = "done"
    path[#path] = nil
  end
  local files = {}
  for v in pairs(g) do files[#files + 1] = v end
  table.sort(files)
  for _, v in ipairs(files) do
    if not state[v] then
      local c = visit(v)
      if c then return c end
    end
  end
end

describe("C file dependencies #nosan", function()
  local objdir

  setup(function()
    objdir = os.tmpname()
    os.remove(objdir)
    assert(os.execute("mkdir " .. H.shquote(objdir)))
    local lua_inc = select(2, run("pkg-config --cflags lua5.4")):gsub("%s+$", "")
    if lua_inc == "" or lua_inc:match("not found") then lua_inc = "-I/usr/include/lua5.4" end
    local root = select(2, run("pwd")):gsub("%s+$", "")
    local ok, out = run(("cd %s && gcc -std=c11 -D_GNU_SOURCE -fvisibility=hidden %s -O0 -c %s/csrc/*.c")
      :format(H.shquote(objdir), lua_inc, H.shquote(root)))
    assert(ok, out)
  end)

  teardown(function()
    if objdir then os.execute("rm -rf " .. H.shquote(objdir)) end
  end)

  it("has no cycle of calls between files", function()
    local cycle = find_cycle(graph(symbols(objdir)))
    assert.is_nil(cycle and table.concat(cycle, "\n"))
  end)

  it("the rockspec builds every C file of duet.core", function()
    local f = assert(io.open("duet-scm-1.rockspec"))
    local listed = {}
    for file in f:read("a"):gmatch('"csrc/([%w_]+%.c)"') do listed[file] = true end
    f:close()
    local ok, out = run("ls csrc")
    assert(ok, out)
    local missing = {}
    for file in out:gmatch("([%w_]+%.c)\n") do
      if not listed[file] then missing[#missing + 1] = file end
    end
    assert.are.same({}, missing)
  end)

  it("finds a cycle when there is one (the check can fail)", function()
    local g = { a = { b = "f" }, b = { c = "g" }, c = { a = "h" }, d = {} }
    assert.are.same({ "a -> b (f)", "b -> c (g)", "c -> a (h)" }, find_cycle(g))
    assert.is_nil(find_cycle { a = { b = "f" }, b = {} })
  end)

  it("sees the calls of the real files (thread.c calls wait.c)", function()
    local g = graph(symbols(objdir))
    assert.is_truthy(g.thread and g.thread.wait)
    assert.is_nil(g.wait.thread)
  end)
end)

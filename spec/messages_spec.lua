-- The error messages both runtimes raise are kept once, in duet.messages:
-- the C sources must spell each one the same, and the Lua sources take it
-- from there rather than writing it out again.
-- #nosan: it reads the sources through io.popen("find"), which a
-- sanitizer preloaded into the child can break; nothing in it runs C.
local root = (debug.getinfo(1, "S").source:match("^@(.*)/spec/") or ".")

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function files(dir, ext)
  local out = {}
  local p = assert(io.popen("find '" .. root .. "/" .. dir .. "' -name '*." .. ext .. "' | sort"))
  for line in p:lines() do out[#out + 1] = line end
  p:close()
  return out
end

-- The string literals of a C source, adjacent ones joined as the compiler
-- joins them ("a " "b" is "a b"); comments and character constants skipped.
local function c_literals(src)
  local out, i, n = {}, 1, #src
  local pending                           -- the literal being joined
  local escapes = { n = "\n", t = "\t", ['"'] = '"', ["\\"] = "\\", ["'"] = "'" }
  while i <= n do
    local c = src:sub(i, i)
    if src:sub(i, i + 1) == "/*" then
      i = (src:find("*/", i + 2, true) or n) + 2
    elseif src:sub(i, i + 1) == "//" then
      i = (src:find("\n", i, true) or n) + 1
    elseif c == "'" then
      i = i + (src:sub(i + 1, i + 1) == "\\" and 4 or 3)
    elseif c == '"' then
      local buf, j = {}, i + 1
      while src:sub(j, j) ~= '"' do
        local d = src:sub(j, j)
        if d == "\\" then
          d = escapes[src:sub(j + 1, j + 1)] or src:sub(j, j + 1)
          j = j + 1
        end
        buf[#buf + 1] = d
        j = j + 1
      end
      pending = (pending or "") .. table.concat(buf)
      i = j + 1
    elseif c:match("%s") then
      i = i + 1
    else
      if pending then out[#out + 1] = pending; pending = nil end
      i = i + 1
    end
  end
  if pending then out[#out + 1] = pending end
  return out
end

describe("duet.messages #nosan", function()
  local messages = require "duet.messages"

  local c_text = {}
  for _, path in ipairs(files("csrc", "c")) do
    for _, lit in ipairs(c_literals(read(path))) do c_text[#c_text + 1] = lit end
  end
  c_text = table.concat(c_text, "\0"):gsub("%%I", "%%d")  -- lua_pushfstring's

  local lua_src = {}
  for _, path in ipairs(files("lua/duet", "lua")) do
    if not path:match("/messages%.lua$") then lua_src[path] = read(path) end
  end

  it("joins adjacent C literals as the compiler does", function()
    local lits = c_literals('f("a " "b\\"c", \'"\'); /* "no" */ g("d"\n  "e") // "x"\n')
    assert.are.same({ 'a b"c', "de" }, lits)
  end)

  it("holds messages only", function()
    for k, v in pairs(messages) do
      assert.are.equal("string", type(k))
      assert.are.equal("string", type(v), k)
    end
  end)

  it("spells each message as a C literal does", function()
    local missing = {}
    for k, v in pairs(messages) do
      if not c_text:find(v, 1, true) then missing[#missing + 1] = k .. ": " .. v end
    end
    table.sort(missing)
    assert.are.same({}, missing)
  end)

  it("is where the Lua sources take each message from", function()
    local used, spelt = {}, {}
    for path, src in pairs(lua_src) do
      for k in src:gmatch("messages%.([%w_]+)") do used[k] = true end
      for k, v in pairs(messages) do
        -- a quoted literal that is the message, or starts with it
        if src:find('"' .. v, 1, true) then
          spelt[#spelt + 1] = path:match("lua/duet/(.*)") .. ": " .. k
        end
      end
    end
    local unused = {}
    for k in pairs(messages) do
      if not used[k] then unused[#unused + 1] = k end
    end
    table.sort(unused)
    table.sort(spelt)
    assert.are.same({}, unused)
    assert.are.same({}, spelt)
  end)
end)

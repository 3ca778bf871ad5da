-- duet.check: argument checks for duet's pure-Lua functions.
-- Messages read exactly like luaL_check* ones, e.g.
--   bad argument #1 to 'put' (number expected, got string)
-- Methods count `self` out, as luaL_argerror does for colon calls. Errors
-- point at the first caller outside duet's own Lua files, wherever inside
-- duet the check sits.
-- Lua cannot tell a missing argument from an explicit nil; a nil where a
-- value is required reads "got no value", as luaL says for a missing one.
local type, tonumber, getmetatable, rawget = type, tonumber, getmetatable, rawget
local mathtype, format, error, getinfo, getlocal, getregistry = math.type,
  string.format, error, debug.getinfo, debug.getlocal, debug.getregistry
local sub = string.sub
local messages = require "duet.messages"

local check = {}

-- The type name luaL_typeerror shows: a metatable's __name when it has one.
local function typename(v)
  local mt = getmetatable(v)
  if type(mt) == "table" then
    local name = rawget(mt, "__name")
    if type(name) == "string" then return name end
  end
  return type(v)
end
check.typename = typename

-- Every duet Lua file lives under the directory of this one.
local home = getinfo(1, "S").source:match("^(.*[/\\])check%.lua$") or "\0"

-- The functions of duet and rt written in C that call duet's Lua
-- (csrc/duetmod.c, csrc/threadsrt.c, which note them in the registry):
-- their frames count as duet's.
local function c_entry(f)
  local entries = getregistry()["duet.entries"]
  return entries ~= nil and entries[f] == true
end

-- Walk up from the frame at `level` (counted from the caller of outside) to
-- the first one outside duet's Lua files. A duet.Socket method counts as
-- duet's: it calls the scheduler's wait hook; so do the C entries above.
-- When the duet call was a tail call its caller is gone, so the walk goes
-- on to the first frame that has a line to show. Returns that frame's level from the caller (nil when
-- there is none) and the level of the duet function the user called.
local function outside(level)
  level = level + 1
  local tail, entry = false, nil
  while true do
    local info = getinfo(level, "Sltf")
    if info == nil then return nil, entry and entry - 1 end
    local mine = sub(info.source, 1, #home) == home
    if not mine and info.what == "C" then
      local _, self = getlocal(level, 1)
      mine = (typename(self) == "duet.Socket" and type(self) == "userdata")
        or c_entry(info.func)
    end
    if mine then
      tail, entry = info.istailcall, level
    elseif not tail or info.currentline > 0 then
      return level - 1, entry and entry - 1
    end
    level = level + 1
  end
end

-- The error() level of the first frame outside duet, seen from our caller
-- (0, no position, when there is none).
local function userlevel()
  local level = outside(3)
  return level and level - 1 or 0
end

-- The duet function the user called, as the error messages name it:
-- "duet.Queue:get", "sleep" (nil when the stack does not say).
function check.callname()
  local _, entry = outside(2)
  if not entry then return nil end
  local info = getinfo(entry, "n")
  local name = info and info.name
  if not name then return nil end
  if info.namewhat == "method" then
    local _, self = getlocal(entry, 1)
    return typename(self) .. ":" .. name
  end
  return name
end

-- Raise `text` (a string) at the user's call into duet, with its position.
function check.error(text)
  error(text, userlevel())
end

-- Raise "bad argument #n to 'fname' (text)".
function check.argerror(fname, n, text)
  error(format("bad argument #%d to '%s' (%s)", n, fname, text), userlevel())
end
local argerror = check.argerror

local function typeerror(fname, n, expected, v)
  local got = v == nil and "no value" or typename(v)
  argerror(fname, n, expected .. " expected, got " .. got)
end

-- luaL_checknumber also accepts strings that convert to numbers.
local function tonum(v)
  if type(v) == "string" then return tonumber(v) end
  return nil
end

function check.number(fname, n, v)
  if type(v) == "number" then return v end
  local x = tonum(v)
  if x == nil then typeerror(fname, n, "number", v) end
  return x
end

function check.opt_number(fname, n, v, default)
  if v == nil then return default end
  if type(v) == "number" then return v end
  local x = tonum(v)
  if x == nil then typeerror(fname, n, "number", v) end
  return x
end

--- v as an integer when it is a number with an integral value (4.0 is 4,
--- as luaL_checkinteger has it), else nil: for option fields, where a
--- string is refused.
function check.integral(v)
  if mathtype(v) == "integer" then return v end
  return type(v) == "number" and math.tointeger(v) or nil
end

local function tointeger(fname, n, v)
  local x = v
  if type(x) ~= "number" then
    x = tonum(x)
    if x == nil then typeerror(fname, n, "number", v) end
  end
  if mathtype(x) == "integer" then return x end
  local i = math.tointeger(x)
  if i == nil then argerror(fname, n, "number has no integer representation") end
  return i
end

function check.integer(fname, n, v)
  if mathtype(v) == "integer" then return v end
  return tointeger(fname, n, v)
end

function check.opt_integer(fname, n, v, default)
  if v == nil then return default end
  if mathtype(v) == "integer" then return v end
  return tointeger(fname, n, v)
end

-- A timeout: nil (forever) or a number >= 0; NaN and negatives are refused
-- with the message the C runtime uses.
function check.timeout(fname, n, v)
  if v == nil then return nil end
  local t = v
  if type(t) ~= "number" then
    t = tonum(t)
    if t == nil then typeerror(fname, n, "number", v) end
  end
  if not (t >= 0) then
    argerror(fname, n, messages.timeout)
  end
  return t
end

function check.func(fname, n, v)
  if type(v) ~= "function" then typeerror(fname, n, "function", v) end
  return v
end

function check.opt_func(fname, n, v)
  if v ~= nil and type(v) ~= "function" then typeerror(fname, n, "function", v) end
  return v
end

-- The length of list `v`, argument n of fname: its field n when set, as
-- table.pack sets it, else #v. An n that is not a non-negative integer
-- (1.0 counts as 1) is a bad argument, as in C (util.c's duet_list_len).
function check.list_len(fname, n, v)
  local len = v.n
  if len == nil then return #v end
  local i = check.integral(len)
  if not i or i < 0 then argerror(fname, n, messages.list_n) end
  return i
end

-- Whether v is a plain table: the coroutines runtime's objects are tables
-- too, but where a table is wanted they are refused as the threads
-- runtime's (userdata) are: "table expected, got duet.Event".
local function plain_table(v)
  if type(v) ~= "table" then return false end
  local mt = getmetatable(v)
  local name = type(mt) == "table" and rawget(mt, "__name")
  return not (type(name) == "string" and sub(name, 1, 5) == "duet.")
end
check.is_plain_table = plain_table

function check.table(fname, n, v)
  if not plain_table(v) then typeerror(fname, n, "table", v) end
  return v
end

function check.opt_table(fname, n, v)
  if v ~= nil and not plain_table(v) then typeerror(fname, n, "table", v) end
  return v
end

-- luaL_checkoption: `v` must be one of the strings in `options`.
function check.option(fname, n, v, options, default)
  if v == nil and default ~= nil then v = default end
  if type(v) ~= "string" then typeerror(fname, n, "string", v) end
  for i = 1, #options do
    if options[i] == v then return v end
  end
  argerror(fname, n, format("invalid option '%s'", v))
end

return check

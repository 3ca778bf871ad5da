-- What every example shares: finding duet, reading the command line, and
-- printing one line at a time. Each example loads it with
--
--   package.path = arg[0]:gsub("[^/\\]*$", "") .. "?.lua;" .. package.path
--   local common = require "common"
--
-- (the first line lets `require` find this file next to the script).

local common = {}

-- Run from a checkout without installing: when duet is not on the module
-- paths, use the checkout's lua/ directory (built by `make`). The paths are
-- only added when needed, so an installed duet or a LUA_CPATH chosen by the
-- caller (a sanitizer build, say) wins. New threads inherit these paths.
local this_file = select(2, ...) or ""      -- require passes the file's path
local examples_dir = this_file:match("^(.*)[/\\]") or "."
if not (package.searchpath("duet", package.path)
        and package.searchpath("duet.core", package.cpath)) then
  local lua_dir = examples_dir .. "/../lua/"
  package.path = lua_dir .. "?.lua;" .. lua_dir .. "?/init.lua;" .. package.path
  package.cpath = lua_dir .. "?.so;" .. package.cpath
end

local duet = require "duet"

--- Read the command line into a table of options.
---
--- `spec.options` maps each option name to its default value; the default's
--- type decides how a value is read: a number takes a number
--- (`--tables 10000` or `--tables=10000`), a string takes a word, and a
--- boolean is a flag (`--lock`). `spec.positional` names the options that
--- bare arguments fill, in order (`cutlery.lua 10000`).
--- Every example also takes `--runtime threads|coroutines` (default: env
--- DUET_RUNTIME, else threads), `--seed N` (coroutines: seeded preemption
--- and the virtual clock, replayable; threads: seeded jitter, which only
--- makes races show more often) and `--help`. The result holds every option
--- (a dash in a name becomes an underscore: `--stack-size` → `stack_size`)
--- plus `rt`, the chosen runtime.
function common.options(spec)
  local defaults = spec.options or {}
  local opts = {}
  for k, v in pairs(defaults) do opts[k] = v end

  local function usage(status, complaint)
    local out = status == 0 and io.stdout or io.stderr
    if complaint then out:write(arg[0], ": ", complaint, "\n") end
    local names = {}
    for k in pairs(defaults) do names[#names + 1] = k end
    table.sort(names)
    out:write("usage: lua5.4 ", arg[0], " [--runtime threads|coroutines] [--seed N]")
    for _, k in ipairs(names) do
      local flag = "--" .. k:gsub("_", "-")
      if type(defaults[k]) == "boolean" then
        out:write(" [", flag, "]")
      else
        out:write(" [", flag, " ", tostring(defaults[k]), "]")
      end
    end
    out:write("\n", spec.about and spec.about .. "\n" or "")
    os.exit(status)
  end

  local positional = spec.positional or {}
  local runtime, seed
  local i = 1
  while i <= #arg do
    local a = arg[i]
    local name, value = a:match("^%-%-([%w-]+)=(.*)$")
    name = name or a:match("^%-%-([%w-]+)$")
    if a == "--help" or a == "-h" then
      usage(0)
    elseif name then
      local key = name:gsub("-", "_")
      if key == "runtime" or key == "seed" or (defaults[key] ~= nil and type(defaults[key]) ~= "boolean") then
        if value == nil then
          i = i + 1
          value = arg[i]
          if value == nil then usage(2, "--" .. name .. " needs a value") end
        end
      elseif defaults[key] == nil then
        usage(2, "unknown option --" .. name)
      elseif value ~= nil then
        usage(2, "--" .. name .. " takes no value")
      else
        value = true
      end
      if key == "runtime" then
        runtime = value
      elseif key == "seed" then
        seed = math.tointeger(tonumber(value)) or usage(2, "--seed needs an integer")
      elseif type(defaults[key]) == "number" then
        opts[key] = tonumber(value) or usage(2, "--" .. name .. " needs a number")
      else
        opts[key] = value
      end
    elseif #positional > 0 then
      local key = table.remove(positional, 1)
      if type(defaults[key]) == "number" then
        opts[key] = tonumber(a) or usage(2, key .. " must be a number")
      else
        opts[key] = a
      end
    else
      usage(2, "unexpected argument " .. a)
    end
    i = i + 1
  end

  runtime = runtime or os.getenv("DUET_RUNTIME")
  local ok, rt = pcall(duet.runtime, runtime)
  if not ok then usage(2, "unknown runtime " .. runtime) end
  if seed then
    local options = rt.name == "coroutines" and { preempt = { seed = seed } }
      or { jitter = { seed = seed } }
    local done, err = pcall(duet.runtime, rt.name, options)
    if not done then usage(2, tostring(err)) end
  end
  opts.rt = rt
  opts.seed = seed
  return opts
end

--- Print one formatted line with a single write, so that lines printed at
--- the same time by different threads never mix (print, like io.write with
--- several arguments, writes its pieces one by one). It uses no upvalues, so
--- a thread's function can capture it cheaply: `local printf = common.printf`.
function common.printf(fmt, ...)
  io.write(fmt:format(...) .. "\n")
end

--- Run `fn(...)` `times` times; return the seconds the fastest run took and
--- that run's first result. Taking the fastest run leaves out most of the
--- time lost to whatever else the machine was doing.
function common.best_time(rt, times, fn, ...)
  local best, result
  for _ = 1, times do
    local t0 = rt.now()
    local r = fn(...)
    local seconds = rt.now() - t0
    if not best or seconds < best then best, result = seconds, r end
  end
  return best, result
end

--- The number written with a comma between thousands: 10000 → "10,000".
function common.thousands(n)
  local s = tostring(math.tointeger(n) or n)
  repeat
    local k
    s, k = s:gsub("^(-?%d+)(%d%d%d)", "%1,%2")
  until k == 0
  return s
end

return common

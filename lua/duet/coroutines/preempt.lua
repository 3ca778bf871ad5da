-- duet.coroutines.preempt: the coroutines runtime's seeded runs. Its
-- options (duet.runtime("coroutines", {preempt = ..., clock = ...}) and env
-- DUET_SEED), rt.trace, and duet.explore, which looks for a seed that makes
-- a function fail.
--
-- With preemption on, csrc/preempt.c's hook yields a task after a count of
-- instructions drawn from duet's own generator, and the scheduler draws the
-- next ready task from it too; with the virtual clock, time moves only when
-- every task is blocked, straight to the next timer. A run then depends on
-- its seed alone: the same seed, the same interleaving, the same output.
local core = require "duet.core"
local check = require "duet.check"
local S = require "duet.coroutines.scheduler"

local P = {}

local DEFAULT_MIN, DEFAULT_MAX = 50, 500
local DEFAULT_TRACE = 50                   -- preemptions a trace keeps
local DEFAULT_RUNS = 100                   -- explore's seeds

-- duet's own Lua files, where a task is never preempted (see preempt.c).
local home = debug.getinfo(1, "S").source:match("^(.*[/\\])coroutines[/\\]preempt%.lua$")

local config = { clock = "real" }   -- the options in force, checked

-- DUET_SEED, as an integer, or nil when unset.
local function env_seed()
  local s = os.getenv("DUET_SEED")
  if s == nil or s == "" then return nil end
  local n = math.tointeger(tonumber(s))
  if n == nil then
    error(("duet: DUET_SEED must be an integer, not '%s'"):format(s), 0)
  end
  return n
end

-- Each option's check: field `name` of table `t` for function fname's
-- argument #argn (`label`: the name in messages); a nil default means
-- required, false optional.
local function field_integer(fname, argn, t, name, default, low, label)
  local v = t[name]
  name = label or name
  if v == nil then
    if default == nil then
      check.argerror(fname, argn, ("field '%s': integer expected, got no value"):format(name))
    end
    return default
  end
  local i = check.integral(v)
  if not i then
    check.argerror(fname, argn, ("field '%s': integer expected, got %s"):format(name,
      type(v) == "number" and "non-integer number" or check.typename(v)))
  end
  if low and i < low then
    check.argerror(fname, argn, ("field '%s': must be at least %d"):format(name, low))
  end
  return i
end

local function no_unknown(fname, argn, t, known, prefix)
  for k in pairs(t) do
    if not known[k] then
      check.argerror(fname, argn, ("unknown option '%s%s'"):format(prefix, tostring(k)))
    end
  end
end

local PREEMPT_KEYS = { seed = true, min = true, max = true, trace = true }

-- A preempt table, checked: {seed, min, max, trace}. `seed_default` stands
-- in for a missing seed (explore's); DUET_SEED wins over both.
local function check_preempt(fname, argn, p, seed_default)
  if type(p) ~= "table" then
    check.argerror(fname, argn, "field 'preempt': table expected, got " .. check.typename(p))
  end
  no_unknown(fname, argn, p, PREEMPT_KEYS, "preempt.")
  local seed = field_integer(fname, argn, p, "seed", seed_default, nil, "preempt.seed")
  local lo = field_integer(fname, argn, p, "min", false, 1, "preempt.min")
  local hi = field_integer(fname, argn, p, "max", false, 1, "preempt.max")
  if not lo and not hi then lo, hi = DEFAULT_MIN, DEFAULT_MAX
  elseif not lo then lo = math.min(DEFAULT_MIN, hi)
  elseif not hi then hi = math.max(DEFAULT_MAX, lo) end
  if lo > hi then
    check.argerror(fname, argn, ("field 'preempt': min (%d) is greater than max (%d)"):format(lo, hi))
  end
  if hi > 1000000000 then
    check.argerror(fname, argn, "field 'preempt.max': must be at most 1000000000")
  end
  local keep = field_integer(fname, argn, p, "trace", DEFAULT_TRACE, 1, "preempt.trace")
  return { seed = seed, min = lo, max = hi, trace = keep }
end

local CLOCKS = { real = true, virtual = true }

local function check_clock(fname, argn, c, default)
  if c == nil then return default end
  if type(c) ~= "string" then
    check.argerror(fname, argn, "field 'clock': string expected, got " .. check.typename(c))
  end
  if not CLOCKS[c] then
    check.argerror(fname, argn, ("field 'clock': invalid option '%s'"):format(c))
  end
  return c
end

-- Put checked options in force.
local function apply(cfg)
  local p = cfg.preempt
  local seed = p and (env_seed() or p.seed)
  local preempter = p and core.preempter(seed, p.min, p.max, home) or false
  S.configure(preempter, cfg.clock == "virtual", p and p.trace or DEFAULT_TRACE)
  S.runtime.now = S.now
  config = cfg
end

-- Each seeded rt.run starts as the first did (scheduler.lua calls this).
function S.replay()
  apply(config)
end

local OPTION_KEYS = { preempt = true, clock = true }

--- duet.runtime("coroutines", options): check and put in force.
function P.configure(options, fname, argn)
  no_unknown(fname, argn, options, OPTION_KEYS, "")
  local p = options.preempt
  if p == false then p = nil end
  if p ~= nil then p = check_preempt(fname, argn, p, nil) end
  local clock = check_clock(fname, argn, options.clock, p and "virtual" or "real")
  apply({ preempt = p, clock = clock })
end

--- rt.trace(): the last run's preemptions, oldest first.
function P.trace()
  return (S.trace())
end

-- The text of a trace for an error message.
local function format_trace(list, total)
  local out = {}
  if total == 0 then
    out[1] = "no preemptions"
  else
    out[1] = ("the last %d of %d preemption(s), oldest first:"):format(#list, total)
    for i = 1, #list do
      out[#out + 1] = ("  %s at %s"):format(list[i].task, list[i].where)
    end
  end
  return table.concat(out, "\n")
end

local EXPLORE_KEYS = { runs = true, seed = true, preempt = true, clock = true }

--- duet.explore(fn [, options]): run rt.run(fn, rt) under one seed after
--- another; raise, naming the seed and its trace, at the first that fails.
function P.explore(fn, options)
  check.func("explore", 1, fn)
  check.opt_table("explore", 2, options)
  options = options or {}
  no_unknown("explore", 2, options, EXPLORE_KEYS, "")
  local runs = field_integer("explore", 2, options, "runs", DEFAULT_RUNS, 1)
  local first = field_integer("explore", 2, options, "seed", 1)
  if type(options.preempt) == "table" and options.preempt.seed ~= nil then
    check.argerror("explore", 2,
      "field 'preempt.seed': explore draws the seeds (give 'seed', the first)")
  end
  local p = check_preempt("explore", 2, options.preempt or {}, first)
  local clock = check_clock("explore", 2, options.clock, "virtual")
  if S.active() then check.error("duet.explore: cannot run inside rt.run") end
  local env = env_seed()
  if env then first, runs = env, 1 end   -- replaying one seed
  local saved, rt = config, S.runtime
  for i = 0, runs - 1 do
    local seed = first + i
    p.seed = seed
    apply({ preempt = p, clock = clock })
    local ok, err = pcall(rt.run, fn, rt)
    if not ok then
      local list, total = S.trace()
      apply(saved)
      local msg = type(err) == "string" and err or check.typename(err)
      local ok2, s = pcall(tostring, err)
      if type(err) ~= "string" and ok2 then msg = s end
      check.error(("duet.explore: seed %d failed (run %d of %d); replay it with DUET_SEED=%d\n%s\n%s")
        :format(seed, i + 1, runs, seed, format_trace(list, total), msg))
    end
  end
  apply(saved)
  return runs
end

--- Called by the runtime (coroutines/init.lua) when DUET_SEED is set: it
--- turns preemption on from the start.
function P.setup()
  apply({ preempt = { seed = env_seed(), min = DEFAULT_MIN, max = DEFAULT_MAX,
    trace = DEFAULT_TRACE }, clock = "virtual" })
end

return P

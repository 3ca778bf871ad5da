-- duet.executor_options: what every executor written in Lua shares (the
-- coroutines runtime's Executor, a process pool): its options checked with
-- the messages the threads runtime's C Executor gives, and its workers'
-- initializer, run once in each worker before it takes a task.
--
-- A raising initializer breaks the executor, as in Python: the tasks still
-- queued fail with broken(err), submit raises it from then on, and no
-- worker is started again (so a bad initializer never loops).
local check = require "duet.check"
local messages = require "duet.messages"

local type, format, mathtype, pcall, tostring, xpcall =
  type, string.format, math.type, pcall, tostring, xpcall
local traceback, pack = debug.traceback, table.pack

local M = {}

local function field_error(fname, name, want, v)
  check.argerror(fname, 1, format(messages.field_type, name,
    want, want == "integer" and mathtype(v) == "float" and "float"
    or check.typename(v)))
end

--- The options table `opts` of constructor `fname` (nil: all defaults),
--- checked. Returns a new table:
---   max_workers         integer >= 1 (default_max when not given; at most
---                       limit when limit is given)
---   initializer         the function, or nil
---   initargs            its arguments, packed (n set), or nil
---   thread_name_prefix  a string, or nil (the executor picks its own)
function M.check(fname, opts, default_max, limit)
  check.opt_table(fname, 1, opts)
  opts = opts or {}
  local max, init = opts.max_workers, opts.initializer
  local args, prefix = opts.initargs, opts.thread_name_prefix
  if max == nil then
    max = default_max
  else
    max = check.integral(max) or field_error(fname, "max_workers", "integer", max)
  end
  if max < 1 then
    check.argerror(fname, 1, messages.max_workers)
  elseif limit and max > limit then
    check.argerror(fname, 1, "max_workers must be at most " .. limit)
  end
  if init ~= nil and type(init) ~= "function" then
    field_error(fname, "initializer", "function", init)
  end
  if args ~= nil then
    if type(args) ~= "table" then field_error(fname, "initargs", "table", args) end
    local n = args.n
    if mathtype(n) ~= "integer" then n = #args end
    if n >= 65536 then check.argerror(fname, 1, messages.initargs_many) end
    args = pack(table.unpack(args, 1, n))
  end
  if prefix ~= nil and type(prefix) ~= "string" then
    field_error(fname, "thread_name_prefix", "string", prefix)
  end
  return { max_workers = max, initializer = init, initargs = args,
           thread_name_prefix = prefix }
end

-- The traceback of the error being raised.
local function handler(err)
  local ok, msg = pcall(tostring, err)
  return { err = err, tb = traceback(ok and msg or "(error object is not a string)", 2) }
end

--- Run the initializer of options `o` (from M.check) in the calling worker:
--- true, or false, err, traceback when it raised.
function M.initialize(o)
  local init = o.initializer
  if init == nil then return true end
  local a = o.initargs
  local ok, e = xpcall(init, handler, table.unpack(a or {}, 1, a and a.n or 0))
  if ok then return true end
  return false, e.err, e.tb
end

--- The error value that the futures of an executor broken by the
--- initializer error `err` fail with, and that its submit raises.
function M.broken(err)
  local ok, msg = pcall(tostring, err)
  return messages.broken_executor
    .. (ok and msg or "(error object is not a string)")
end

return M

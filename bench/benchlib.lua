-- benchlib: what every duet benchmark script shares.
--
-- A script declares its cases and calls benchlib.main(cases, ...):
--
--   lua5.4 bench/b1_queue.lua [threads|coroutines] [--case NAME] [--quick]
--
-- The runtime comes from the first plain argument, else from env
-- DUET_RUNTIME, else "threads". Each case runs inside rt.run and prints its
-- figures as lines the driver (bench/run.lua) parses:
--
--   RESULT <case> <metric> <value> <unit>
--
-- A case that fails prints `ERROR <case> <message>` on stderr and makes the
-- script exit non-zero, so the driver shows "n/a", never a number.
local M = {}

-- Run by hand (no LUA_PATH / LUA_CPATH, as `make` exports them), a script
-- finds duet in the checkout it sits in.
local root = ((arg and arg[0] or ""):match("^(.*)/[^/]*$") or ".") .. "/.."
do
  if not os.getenv("LUA_PATH") then
    package.path = ("%s/lua/?.lua;%s/lua/?/init.lua;"):format(root, root) .. package.path
  end
  if not os.getenv("LUA_CPATH") then
    package.cpath = root .. "/lua/?.so;" .. package.cpath
  end
end

--- Parse the command line: runtime name, --case NAME, --quick.
function M.parse_args(argv)
  local opts = { quick = false }
  local i = 1
  while i <= #argv do
    local a = argv[i]
    if a == "--quick" then
      opts.quick = true
    elseif a == "--case" then
      i = i + 1
      opts.case = argv[i]
    elseif a:sub(1, 1) ~= "-" and not opts.runtime then
      opts.runtime = a
    else
      error("unknown argument: " .. a, 0)
    end
    i = i + 1
  end
  opts.runtime = opts.runtime or os.getenv("DUET_RUNTIME") or "threads"
  return opts
end

-- The clock: duet's monotonic clock when the C core loads, else os.clock
-- (CPU time, only right for single-threaded code; plain-Lua cases use it
-- only when duet is missing altogether).
local ok, core = pcall(require, "duet.core")
M.now = ok and core.now or os.clock

--- The floors' C module (bench/floor.c): a sanitizer build on LUA_CPATH
--- first, else build/bench's (make bench and make test build it).
function M.floor()
  package.cpath = package.cpath .. ";" .. root .. "/build/bench/?.so"
  return require "floor"
end

local report = require "report"
M.rss_kb, M.result, M.check = report.rss_kb, report.result, report.check

--- Join a thread/task and return its first result, raising its error.
function M.join(th)
  local ok2, v = th:join()
  if not ok2 then error(v, 0) end
  return v
end

--- Run the selected case(s). `cases` maps a name to
--- {fn = function(rt, quick, name) ... end, plain = bool}; `order` lists the
--- names for a run without --case. A plain case runs without any runtime.
function M.main(prefix, cases, order, argv)
  local opts = M.parse_args(argv)
  local names = opts.case and { opts.case } or order
  local failed = false
  for _, name in ipairs(names) do
    local c = cases[name]
    local id = prefix .. "." .. name
    local okc, err
    if not c then
      okc, err = false, "no such case"
    elseif c.plain then
      okc, err = xpcall(c.fn, debug.traceback, nil, opts.quick, id)
    else
      okc, err = xpcall(function()
        local rt = require("duet").runtime(opts.runtime)
        return rt.run(c.fn, rt, opts.quick, id)
      end, debug.traceback)
    end
    if not okc then
      failed = true
      io.stderr:write(("ERROR %s %s\n"):format(id, tostring(err)))
      io.stderr:flush()
    end
  end
  os.exit(failed and 1 or 0)
end

return M

-- peerlib (Lua): what every Lua peer benchmark shares (the Python peers
-- have bench/peers/peerlib.py). A peer script declares its cases and calls
-- peerlib.main(prefix, cases, order, arg):
--
--   lua5.4 bench/peers/b3_spawn_cqueues.lua [--case NAME] [--quick]
--
-- and prints the same lines as the duet scripts (bench/benchlib.lua):
--
--   RESULT <case> <metric> <value> <unit>
--
-- A case that fails prints `ERROR <case> <message>` on stderr and makes the
-- script exit non-zero, so the driver shows "n/a", never a number. The
-- peers do not load duet.
local M = {}

-- bench/report.lua, one directory up
package.path = (debug.getinfo(1, "S").source:match("^@(.*)/peers/[^/]*$") or "..")
  .. "/?.lua;" .. package.path

-- The clock: the peer library's own monotonic clock.
do
  local okc, cqueues = pcall(require, "cqueues")
  if okc then
    M.now = cqueues.monotime
  else
    local oku, uv = pcall(require, "luv")
    M.now = oku and function() return uv.hrtime() * 1e-9 end or os.time
  end
end

local report = require "report"
M.rss_kb, M.result, M.check = report.rss_kb, report.result, report.check

--- A FIFO queue for cqueues coroutines: a Lua list and a
--- cqueues.condition (get() waits on it while the queue is empty; put()
--- signals one waiter). Unbounded unless maxsize is given.
function M.cq_queue(maxsize)
  local condition = require "cqueues.condition"
  local q = { head = 1, tail = 0, items = {}, nonempty = condition.new(), nonfull = condition.new() }
  function q:put(v)
    while maxsize and self.tail - self.head + 1 >= maxsize do self.nonfull:wait() end
    self.tail = self.tail + 1
    self.items[self.tail] = v
    self.nonempty:signal(1)
  end
  function q:get()
    while self.tail < self.head do self.nonempty:wait() end
    local h = self.head
    local v = self.items[h]
    self.items[h] = nil
    self.head = h + 1
    if maxsize then self.nonfull:signal(1) end
    return v
  end
  return q
end

local function parse_args(argv)
  local opts = { quick = false }
  local i = 1
  while i <= #argv do
    local a = argv[i]
    if a == "--quick" then opts.quick = true
    elseif a == "--case" then i = i + 1; opts.case = argv[i]
    else error("unknown argument: " .. a, 0) end
    i = i + 1
  end
  return opts
end

--- Run the selected case(s): `cases` maps a name to function(quick, id).
function M.main(prefix, cases, order, argv)
  local opts = parse_args(argv)
  local names = opts.case and { opts.case } or order
  local failed = false
  for _, name in ipairs(names) do
    local id = prefix .. "." .. name
    local fn = cases[name]
    local ok, err
    if fn then ok, err = xpcall(fn, debug.traceback, opts.quick, id)
    else ok, err = false, "no such case" end
    if not ok then
      failed = true
      io.stderr:write(("ERROR %s %s\n"):format(id, tostring(err)))
      io.stderr:flush()
    end
  end
  io.stdout:flush()
  os.exit(failed and 1 or 0)
end

--- Load a peer library or fail every case with "not installed".
function M.need(name)
  local ok, mod = pcall(require, name)
  if not ok then
    io.stderr:write(("ERROR %s not installed\n"):format(name))
    os.exit(3)
  end
  return mod
end

return M

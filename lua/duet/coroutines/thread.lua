-- duet.coroutines.thread: Thread objects (tasks) and their public methods.
-- Public fields: name (settable), ident, daemon (settable before start),
-- traceback (after an error).
local check = require "duet.check"
local messages = require "duet.messages"
local S = require "duet.coroutines.scheduler"
local class = require "duet.coroutines.class"

local setmetatable, unpack, rawset, rawget, type, tostring = setmetatable,
  table.unpack, rawset, rawget, type, tostring
local format, byte = string.format, string.byte
local NEW, ALIVE, DAEMON, DONE = S.NEW, S.ALIVE, S.DAEMON, S.DONE
-- The task slots this file reads (their layout is in scheduler.lua).
local STATE <const>, VALS <const>, ID <const>, NUM <const> = 5, 7, 8, 10

local Thread = { __name = "duet.Thread",
  __fields = { name = true, ident = true, daemon = true, traceback = true } }
local methods = {}

-- The public fields are served from private ones, so that every write to
-- them comes through __newindex (a table field that exists would not):
-- name (_name, made "Thread-N" on first read, since building that string
-- for every spawn would cost a fifth of it; N is the slot NUM), daemon
-- (_daemon), ident (the slot ID), traceback (_tb).
function Thread.__index(th, k)
  local m = methods[k]
  if m ~= nil then return m end
  if k == "name" then
    local name = rawget(th, "_name")
    if not name then
      name = "Thread-" .. th[NUM]
      rawset(th, "_name", name)
    end
    return name
  elseif k == "daemon" then
    return rawget(th, "_daemon") or false
  elseif k == "ident" then
    return th[ID]
  elseif k == "traceback" then
    return rawget(th, "_tb") or nil
  end
end

-- Only name and daemon (before start) are for the user to set, as on the
-- threads runtime; the scheduler's own fields start with "_" (a task gains
-- some as it runs).
function Thread.__newindex(th, k, v)
  if k == "name" then
    if type(v) == "number" then
      v = tostring(v)
    elseif type(v) ~= "string" then
      check.argerror("newindex", 3, "string expected, got " .. check.typename(v))
    end
    rawset(th, "_name", v)
  elseif k == "daemon" then
    if th[STATE] ~= NEW then check.error(messages.daemon_active) end
    rawset(th, "_daemon", v and true or false)
  elseif type(k) == "string" and byte(k) == 95 then
    rawset(th, k, v)
  else
    class.refuse(th, k)
  end
end

local states = { [NEW] = "initial", [ALIVE] = "started",
  [DAEMON] = "started", [DONE] = "stopped", [S.FAILED] = "stopped" }

function Thread.__tostring(th)
  return format("duet.Thread (%s, %s%s): %p", th.name, states[th[STATE]],
    th.daemon and " daemon" or "", th)
end

local M = {}

function M.Thread(opts)
  check.table("Thread", 1, opts)
  local target, args, name, daemon = opts.target, opts.args, opts.name,
    opts.daemon
  if type(target) ~= "function" then
    check.argerror("Thread", 1, messages.target_type
      .. check.typename(target))
  end
  if args ~= nil and type(args) ~= "table" then
    check.argerror("Thread", 1, messages.args_type
      .. check.typename(args))
  end
  if name ~= nil and type(name) ~= "string" then
    check.argerror("Thread", 1, "field 'name': string expected, got "
      .. check.typename(name))
  end
  -- checked as on the threads runtime, then ignored: a task has no state
  -- of its own to cap
  local limit = opts.memory_limit
  if limit ~= nil then
    limit = check.integral(limit)
    if not limit or limit <= 0 then
      check.argerror("Thread", 1, messages.memory_limit)
    end
  end
  local th = S.new(target, args or false, name ~= nil)
  if name then th._name = name end
  -- as in Python, a thread inherits daemon-ness from its creator
  if daemon == nil then daemon = S.current()[STATE] == DAEMON end
  if daemon then th._daemon = true end
  return th
end

M.spawn = S.spawn

-- The task that stands for the caller of rt.run (and for the code outside
-- it): ident 0, so spawned tasks count from Thread-1 like Python's.
local main = setmetatable({ false, false, false, false, ALIVE, false, false,
  0, false, false, _name = "MainThread" }, Thread)
S.setup(Thread, main)

function methods:start()
  if self[STATE] ~= NEW then check.error(messages.started_once) end
  S.start(self, self.daemon)
end

function methods:join(timeout)
  if timeout ~= nil then timeout = check.timeout("join", 1, timeout) end
  local state = self[STATE]
  if state == NEW then check.error(messages.join_unstarted) end
  local alive = state == ALIVE or state == DAEMON
  if alive and timeout ~= 0 then
    -- (S.join_wait refuses the current task where it waits)
    if not S.join_wait(self, timeout and S.deadline(timeout)) then
      return nil, "timeout"
    end
    state = self[STATE]
  else
    -- the current task may have failed: its excepthook runs in it
    if self == S.current() then check.error(messages.join_current) end
    if alive then return nil, "timeout" end
  end
  if state == DONE then
    local res = self[VALS]
    if res then return true, unpack(res, 1, res.n) end
    return true
  end
  return false, self._err
end

function methods:is_alive()
  local state = self[STATE]
  return state == ALIVE or state == DAEMON
end

-- A finished task ignores it; a task cancelling itself raises at once (as
-- on the threads runtime, where a running thread is interrupted).
function methods:cancel()
  if self[STATE] >= DONE then return end
  S.cancel(self)
  if self == S.current() then S.check_cancel() end
end

return M

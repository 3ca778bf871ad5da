-- duet.coroutines.thread: Thread objects (tasks) and their public methods.
-- Public fields: name (settable), ident, daemon, traceback (after an error).
local check = require "duet.check"
local S = require "duet.coroutines.scheduler"

local setmetatable, unpack = setmetatable, table.unpack
local format = string.format
local NEW, ALIVE, DAEMON, DONE = S.NEW, S.ALIVE, S.DAEMON, S.DONE

local Thread = { __name = "duet.Thread" }
local methods = {}

-- Fields absent from a task read through here. The default name is made on
-- first use: building "Thread-N" for every spawn would cost a fifth of it.
function Thread.__index(th, k)
  local m = methods[k]
  if m ~= nil then return m end
  if k == "name" then
    local name = "Thread-" .. th.ident
    th.name = name
    return name
  elseif k == "daemon" then
    return false
  end
end

local states = { [NEW] = "initial", [ALIVE] = "started",
  [DAEMON] = "started daemon", [DONE] = "stopped", [S.FAILED] = "stopped" }

function Thread.__tostring(th)
  return format("duet.Thread (%s, %s): %p", th.name, states[th._state], th)
end

local M = {}

function M.Thread(opts)
  check.table("Thread", 1, opts)
  local target, args, name, daemon = opts.target, opts.args, opts.name,
    opts.daemon
  if type(target) ~= "function" then
    check.argerror("Thread", 1, "field 'target': function expected, got "
      .. check.typename(target))
  end
  if args ~= nil and type(args) ~= "table" then
    check.argerror("Thread", 1, "field 'args': table expected, got "
      .. check.typename(args))
  end
  if name ~= nil and type(name) ~= "string" then
    check.argerror("Thread", 1, "field 'name': string expected, got "
      .. check.typename(name))
  end
  local th = S.new(target, args or false)
  if name then th.name = name end
  -- as in Python, a thread inherits daemon-ness from its creator
  if daemon == nil then daemon = S.current()._state == DAEMON end
  if daemon then th.daemon = true end
  return th
end

M.spawn = S.spawn

-- The task that stands for the caller of rt.run (and for the code outside
-- it): ident 0, so spawned tasks count from Thread-1 like Python's.
local main = setmetatable({ ident = 0, name = "MainThread", daemon = false,
  _target = false, _vals = false, _state = ALIVE, _co = false, _ai = false,
  _wl = false }, Thread)
S.setup(Thread, main)
M.main = main

function methods:start()
  if self._state ~= NEW then check.error("threads can only be started once") end
  S.start(self, self.daemon)
  return self
end

function methods:join(timeout)
  if timeout ~= nil then timeout = check.timeout("join", 1, timeout) end
  if self == S.current() then check.error("cannot join current thread") end
  local state = self._state
  if state == NEW then check.error("cannot join thread before it is started") end
  if state == ALIVE or state == DAEMON then
    if timeout == 0 then return nil, "timeout" end
    if not S.block(S.joiners(self), S.deadline(timeout)) then
      return nil, "timeout"
    end
    state = self._state
  end
  if state == DONE then
    local res = self._vals
    if res then return true, unpack(res, 1, res.n) end
    return true
  end
  return false, self._err
end

function methods:is_alive()
  local state = self._state
  return state == ALIVE or state == DAEMON
end

-- Returns true when the request was recorded (the task had not finished).
function methods:cancel()
  local state = self._state
  if state >= DONE then return false end
  S.cancel(self)
  return true
end

return M

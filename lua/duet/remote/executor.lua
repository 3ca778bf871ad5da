-- duet.remote.executor: rt.RemoteExecutor, the Executor API with tasks run
-- by duet-worker processes anywhere that reach the same Redis.
--
-- submit() packs the arguments, makes a settleable rt.Future and hands both
-- to two daemon threads (tasks, on the coroutines runtime) of the executor,
-- each with its own connection:
--   the sender  takes submissions in batches, registers each future with
--               the reader, then XADDs the batch in one pipeline;
--   the reader  waits on the executor's own reply stream (XREAD BLOCK: no
--               polling) and settles each task's future from its reply.
-- A future is registered before its task is sent, and the reader takes in
-- registrations after each read, so a reply always finds its future. The
-- workers send each task's reply once (protocol.STORE), and the reader
-- forgets a future once settled: a result reaches its future exactly once
-- even when the task ran twice.
local duet = require "duet"
local rc = require "duet.redis_core"
local redis = require "duet.redis"
local check = require "duet.check"
local messages = require "duet.messages"
local P = require "duet.remote.protocol"

local pack, unpack, rpack, runpack = table.pack, table.unpack, rc.pack, rc.unpack
local type, tostring, pcall = type, tostring, pcall

local M = {}

local RemoteExecutor = { __name = "duet.RemoteExecutor" }
RemoteExecutor.__index = RemoteExecutor
RemoteExecutor.__newindex = require("duet.coroutines.class").refuse_public

function RemoteExecutor:__tostring()
  return ("duet.RemoteExecutor (queue %s%s): %s"):format(self._queue,
    self._state.shutdown and ", shut down" or "", self._addr)
end

local function opt_field(opts, name, kind, default)
  local v = opts[name]
  if v == nil then return default end
  local good = type(v) == "number" and v == v and v >= 0
  if kind == "integer" then good = good and math.tointeger(v) ~= nil end
  if kind == "positive" then good = good and v > 0 end
  if not good then
    check.argerror("RemoteExecutor", 1, messages.field_type:format(name,
      kind == "integer" and "non-negative integer" or "positive number",
      type(v) == "number" and tostring(v) or check.typename(v)))
  end
  return kind == "integer" and math.tointeger(v) or v
end

--- rt.RemoteExecutor{redis = url, queue = name [, visibility_timeout = s,
--- max_retries = k, result_ttl = s]}
function M.RemoteExecutor(rt, opts)
  check.table("RemoteExecutor", 1, opts)
  local url = P.url_field("RemoteExecutor", opts)
  local queue = P.string_field("RemoteExecutor", opts, "queue")
  local cfg = {
    visibility_timeout = opt_field(opts, "visibility_timeout", "positive",
      P.DEFAULTS.visibility_timeout),
    max_retries = opt_field(opts, "max_retries", "integer", P.DEFAULTS.max_retries),
    result_ttl = opt_field(opts, "result_ttl", "integer", P.DEFAULTS.result_ttl),
  }
  if cfg.result_ttl < 1 then
    check.argerror("RemoteExecutor", 1, "field 'result_ttl' must be at least 1")
  end
  local keys = P.keys(queue)
  local conn = redis.connect(url, { runtime = rt })
  P.ensure_group(conn, keys)
  conn:call("HSET", keys.config, "visibility_timeout", cfg.visibility_timeout,
    "max_retries", cfg.max_retries, "result_ttl", cfg.result_ttl)
  local sid = conn:call("INCR", keys.submitters)
  conn:close()
  local reply = keys.reply .. sid
  local self = setmetatable({
    _rt = rt, _queue = queue, _sid = sid,
    _send_q = rt.Queue(), _reg_q = rt.Queue(),
    -- shared by every copy of this table (a threads-runtime thread that is
    -- handed the executor gets a copy): the id counter and shutdown flag
    _state = rt.SharedTable{ n = 0, shutdown = false },
  }, RemoteExecutor)
  self._addr = tostring(self._state):match("0x%x+") or "?"
  local args = { rt.name, url, queue, reply, self._send_q, self._reg_q }
  self._sender = rt.Thread{ name = "RemoteExecutor-sender", daemon = true, args = args,
    target = function(...) return require("duet.remote.executor").sender(...) end }
  self._reader = rt.Thread{ name = "RemoteExecutor-reader", daemon = true, args = args,
    target = function(...) return require("duet.remote.executor").reader(...) end }
  self._sender:start()
  self._reader:start()
  return self
end

--- ex:submit("module.function", ...) -> Future
function RemoteExecutor:submit(name, ...)
  if self._state.shutdown then check.error(messages.after_shutdown) end
  if not P.valid_name(name) then
    check.argerror("submit", 1, ("task name 'module.function' expected, got %s"):format(
      type(name) == "string" and "'" .. name .. "'" or check.typename(name)))
  end
  local ok, args = pcall(rpack, ...)
  if not ok then check.argerror("submit", 2, args) end
  local id = self._sid .. "-" .. self._state:incr("n")
  local fut = self._rt.Future()
  self._send_q:put({ id = id, fn = name, args = args, fut = fut })
  return fut
end

--- ex:map("module.function", items [, timeout]) -> list of results
function RemoteExecutor:map(name, items, timeout)
  check.table("map", 2, items)
  timeout = check.timeout("map", 3, timeout)
  local rt = self._rt
  local n = check.list_len("map", 2, items)
  local futs = {}
  for i = 1, n do futs[i] = self:submit(name, items[i]) end
  local dl = timeout and rt.now() + timeout
  local out = {}
  for i = 1, n do
    local left = dl and math.max(dl - rt.now(), 0)
    local ok, v = pcall(futs[i].result, futs[i], left)
    if not ok then
      for j = i + 1, n do futs[j]:cancel() end
      error(v, 0)
    end
    out[i] = v
  end
  out.n = n   -- a nil result leaves a hole
  return out
end

--- ex:shutdown{wait = true, cancel_futures = false}
function RemoteExecutor:shutdown(opts)
  opts = check.opt_table("shutdown", 1, opts) or {}
  local wait = opts.wait == nil or opts.wait
  local state = self._state
  if not state.shutdown then
    state.shutdown = true
    self._send_q:close()
    if opts.cancel_futures then
      -- what the sender has not taken yet never reaches Redis
      while true do
        local items = self._send_q:get_many(1000, 0)
        if not items then break end
        for _, t in ipairs(items) do t.fut:cancel() end
      end
    end
  end
  if wait then
    self._sender:join()
    self._reader:join()
  end
end

function RemoteExecutor:__close()
  self:shutdown{ wait = true }
end

------------------------------------------------------- the executor's threads

local function settle(fut, status, data)
  if fut:done() then return end                  -- cancelled meanwhile
  if status == "ok" then
    local res = pack(pcall(runpack, data))
    if res[1] then
      pcall(fut.set_result, fut, unpack(res, 2, res.n))
    else
      pcall(fut.set_exception, fut, "cannot read the task's results: " .. tostring(res[2]))
    end
  elseif status == "error" then
    local ok, e = pcall(runpack, data)
    pcall(fut.set_exception, fut, ok and e or "cannot read the task's error: " .. tostring(e))
  else                                           -- "dead": data is the message
    pcall(fut.set_exception, fut, data)
  end
end

function M.sender(rtname, url, queue, reply, send_q, reg_q)
  local rt = duet.runtime(rtname)
  local keys = P.keys(queue)
  local conn = redis.connect(url, { runtime = rt, retry_for = 3600 })
  while true do
    local batch = send_q:get_many(500)
    if not batch then break end
    local regs, cmds = {}, {}
    for _, t in ipairs(batch) do
      if not t.fut:done() then
        regs[#regs + 1] = { t.id, t.fut }
        cmds[#cmds + 1] = { "XADD", keys.tasks, "*", "id", t.id, "fn", t.fn,
          "args", t.args, "reply", reply }
      end
    end
    if #regs > 0 then
      reg_q:put_many(regs)
      -- a task the server refused (an error reply, or no link) fails its
      -- future at once, and the reader waits for its result no more
      local ok, replies = pcall(conn.pipeline, conn, cmds)
      local dropped = {}
      for i, r in ipairs(regs) do
        local answer = ok and replies[i]
        local why = not ok and replies
          or type(answer) == "table" and answer.err and "redis: " .. answer.err
        if why then
          pcall(r[2].set_exception, r[2], why)
          dropped[#dropped + 1] = { r[1], false }
        end
      end
      if #dropped > 0 then reg_q:put_many(dropped) end
    end
  end
  conn:call("XADD", reply, "*", "stop", "1")
  conn:close()
end

function M.reader(rtname, url, _, reply, _, reg_q)
  local rt = duet.runtime(rtname)
  local conn = redis.connect(url, { runtime = rt, retry_for = 3600 })
  local futures, waiting, last, stopping = {}, 0, "0-0", false
  while not (stopping and waiting == 0) do
    local r = conn:call("XREAD", "COUNT", 1000, "BLOCK", 0, "STREAMS", reply, last)
    local regs = reg_q:get_many(1 << 30, 0)
    for _, reg in ipairs(regs or {}) do   -- {id, future}, or {id, false}
      if reg[2] then
        futures[reg[1]] = reg[2]
        waiting = waiting + 1
      elseif futures[reg[1]] then         -- the sender failed it
        futures[reg[1]] = nil
        waiting = waiting - 1
      end
    end
    local seen = {}
    for _, e in ipairs(r and r[1] and r[1][2] or {}) do
      last = e[1]
      seen[#seen + 1] = e[1]
      local f = P.fields(e[2])
      if f.stop then
        stopping = true
      else
        local fut = futures[f.id]
        if fut then
          futures[f.id] = nil
          waiting = waiting - 1
          settle(fut, f.status, f.data)
        end
      end
    end
    if #seen > 0 then conn:call("XDEL", reply, unpack(seen)) end
  end
  conn:call("DEL", reply)
  conn:close()
end

M.settle = settle
return M

-- duet.remote.protocol: what a RemoteExecutor and its workers agree on in
-- Redis, for queue Q (the braces keep one queue's keys in one Cluster slot):
--   duet:{Q}:tasks        stream of tasks, consumer group "workers"; an
--                         entry: id, fn ("module.function"), args (packed),
--                         reply (the submitter's reply stream)
--   duet:{Q}:config       hash: visibility_timeout, max_retries, result_ttl
--   duet:{Q}:result:ID    a task's stored result (TTL result_ttl): its
--                         status, then its packed data
--   duet:{Q}:reply:S      submitter S's reply stream: id, status, data
--   duet:{Q}:dead         dead-letter stream: id, fn, args, error, deliveries
--   duet:{Q}:submitters   counter naming the submitters
-- status is "ok" (data: the packed results), "error" (data: the packed
-- error value) or "dead" (data: the message; the task was lost too often).
-- Values are packed with the portable codec (csrc/redis/portable.c).
local redis = require "duet.redis"
local check = require "duet.check"

local M = {}

-- The calling thread's (threads runtime) or task's (coroutines) own
-- connection to url, made on first use. Objects such as RemoteQueue hold
-- only the URL, so a copy handed to another thread connects there anew.
local conns = setmetatable({}, { __mode = "k" })
function M.connection(url, rt)
  local owner = rt.name == "coroutines" and rt.current() or conns
  local mine = conns[owner]
  if not mine then
    mine = {}
    conns[owner] = mine
  end
  local c = mine[url]
  if not c then
    c = redis.connect(url, { runtime = rt })
    mine[url] = c
  end
  return c
end

M.GROUP = "workers"
M.DEFAULTS = { visibility_timeout = 30, max_retries = 3, result_ttl = 3600 }

function M.keys(q)
  local p = "duet:{" .. q .. "}:"
  return {
    prefix = p, tasks = p .. "tasks", config = p .. "config",
    result = p .. "result:", reply = p .. "reply:", dead = p .. "dead",
    submitters = p .. "submitters",
  }
end

-- Create the group (reading from the stream's start, so tasks added before
-- any worker came are served); a group already there is fine.
function M.ensure_group(conn, keys)
  local ok, err = pcall(conn.call, conn, "XGROUP", "CREATE", keys.tasks,
    M.GROUP, "0", "MKSTREAM")
  if not ok and not tostring(err):find("BUSYGROUP", 1, true) then error(err, 0) end
end

-- The queue's settings, from its config hash or the defaults.
function M.config(conn, keys)
  local r = conn:call("HMGET", keys.config, "visibility_timeout",
    "max_retries", "result_ttl")
  return {
    visibility_timeout = tonumber(r[1]) or M.DEFAULTS.visibility_timeout,
    max_retries = math.tointeger(tonumber(r[2])) or M.DEFAULTS.max_retries,
    result_ttl = math.tointeger(tonumber(r[3])) or M.DEFAULTS.result_ttl,
  }
end

-- Store results and acknowledge their tasks, atomically. KEYS[1]: tasks;
-- ARGV: group, result key prefix, ttl, then per task five values: entry
-- id, task id, reply stream, status, data. A result already stored (the
-- task ran twice) is not sent again: each task's reply is sent once.
M.STORE = [=[
local tasks, group, prefix, ttl = KEYS[1], ARGV[1], ARGV[2], ARGV[3]
local sent = 0
for i = 4, #ARGV, 5 do
  local entry, id, reply, status, data = ARGV[i], ARGV[i+1], ARGV[i+2], ARGV[i+3], ARGV[i+4]
  if redis.call('SET', prefix .. id, status .. ':' .. data, 'NX', 'EX', ttl) then
    redis.call('XADD', reply, '*', 'id', id, 'status', status, 'data', data)
    sent = sent + 1
  end
  redis.call('XACK', tasks, group, entry)
  redis.call('XDEL', tasks, entry)
end
return sent
]=]

-- Take over tasks whose worker has held them for min_idle ms (it died or
-- hung); a task delivered more than 1 + max_retries times goes to the
-- dead-letter stream instead, and its submitter gets a "dead" reply.
-- KEYS: tasks, dead; ARGV: group, consumer, min_idle, count, max_retries,
-- result prefix, ttl. Returns the entries to run, as XREADGROUP does.
M.RECLAIM = [=[
local tasks, dead = KEYS[1], KEYS[2]
local group, consumer, min_idle, count = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local max_retries, prefix, ttl = tonumber(ARGV[5]), ARGV[6], ARGV[7]
local claimed = redis.call('XAUTOCLAIM', tasks, group, consumer, min_idle, '0-0', 'COUNT', count)[2]
local run = {}
for _, e in ipairs(claimed) do
  local entry, fields = e[1], e[2]
  local p = redis.call('XPENDING', tasks, group, entry, entry, 1)[1]
  local deliveries = p and p[4] or 1
  if deliveries > max_retries + 1 then
    local f = {}
    for i = 1, #fields, 2 do f[fields[i]] = fields[i+1] end
    local msg = 'task ' .. tostring(f.id) .. ' (' .. tostring(f.fn) .. ') lost: delivered '
      .. deliveries .. ' times, its worker stopped each time before finishing it'
    redis.call('XADD', dead, '*', 'id', f.id or '', 'fn', f.fn or '', 'args', f.args or '',
      'error', msg, 'deliveries', deliveries)
    if f.id and f.reply and redis.call('SET', prefix .. f.id, 'dead:' .. msg, 'NX', 'EX', ttl) then
      redis.call('XADD', f.reply, '*', 'id', f.id, 'status', 'dead', 'data', msg)
    end
    redis.call('XACK', tasks, group, entry)
    redis.call('XDEL', tasks, entry)
  else
    run[#run + 1] = e
  end
end
return run
]=]

-- Constructor options: a non-empty string field, and the URL in opts.redis.
function M.string_field(fname, opts, name)
  local v = opts[name]
  if type(v) ~= "string" or v == "" then
    check.argerror(fname, 1, ("field '%s': string expected, got %s"):format(name,
      v == nil and "no value" or check.typename(v)))
  end
  return v
end

-- The URL in opts.redis, checked for constructor fname.
function M.url_field(fname, opts)
  local url = M.string_field(fname, opts, "redis")
  local ok, why = redis.parse_url(url)
  if not ok then
    check.argerror(fname, 1, ("field 'redis': invalid Redis URL '%s': %s"):format(url, why))
  end
  return url
end

-- A stream entry's field list {k1, v1, k2, v2, ...} as a table.
function M.fields(list)
  local t = {}
  for i = 1, #list, 2 do t[list[i]] = list[i + 1] end
  return t
end

-- A task name must read "module.function".
function M.valid_name(name)
  return type(name) == "string" and name:match("^[%w_.%-]+%.[%a_][%w_]*$") ~= nil
end

-- The function that "module.function" names, by require; or nil, why.
function M.resolve(name, cache)
  local fn = cache[name]
  if fn then return fn end
  if not M.valid_name(name) then
    return nil, ("invalid task name '%s' (expected module.function)"):format(tostring(name))
  end
  local mod, fname = name:match("^(.*)%.([^.]+)$")
  local ok, m = pcall(require, mod)
  if not ok then
    return nil, ("cannot load module '%s' for task '%s': %s"):format(mod, name, tostring(m))
  end
  fn = type(m) == "table" and m[fname]
  if type(fn) ~= "function" then
    return nil, ("module '%s' has no function '%s'"):format(mod, fname)
  end
  cache[name] = fn
  return fn
end

return M

-- duet.remote.worker: the loop behind bin/duet-worker. Each of its threads
-- (or tasks) has its own connection and consumer name, reads tasks in
-- batches from the queue's consumer group, runs them, and stores their
-- results and acknowledges them in one server-side script (protocol.STORE),
-- so a task is acknowledged only once its result is stored. Every
-- visibility_timeout / 2 it takes over tasks that another consumer held too
-- long (protocol.RECLAIM). SIGTERM or SIGINT (redis_core.stop_signal) make
-- it finish the batch in hand and leave; nothing it read is lost.
local rc = require "duet.redis_core"
local redis = require "duet.redis"
local P = require "duet.remote.protocol"

local pack, unpack, rpack, runpack = table.pack, table.unpack, rc.pack, rc.unpack

local M = {}

function M.log(fmt, ...)
  io.stderr:write(("%s duet-worker[%s] %s\n"):format(os.date("!%Y-%m-%dT%H:%M:%SZ"),
    M.ident or "?", fmt:format(...)))
  io.stderr:flush()
end
local log = M.log

-- Run one task entry: status, data.
local function run_task(f, cache)
  local fn, why = P.resolve(f.fn, cache)
  if not fn then return "error", rpack(why) end
  local okargs, args = pcall(function() return pack(runpack(f.args)) end)
  if not okargs then
    return "error", rpack(("cannot read the arguments of task '%s': %s"):format(f.fn, tostring(args)))
  end
  local res = pack(xpcall(fn, function(e)
    if type(e) == "string" then return e end
    return e
  end, unpack(args, 1, args.n)))
  if not res[1] then
    local okp, data = pcall(rpack, res[2])
    if okp then return "error", data end
    return "error", rpack(tostring(res[2]))
  end
  local okp, data = pcall(rpack, unpack(res, 2, res.n))
  if okp then return "ok", data end
  return "error", rpack(("cannot send the results of task '%s': %s"):format(f.fn, data))
end

-- Run a batch of entries and store what they gave. The entries not run
-- yet stay this worker's: whenever a tenth of the visibility timeout has
-- passed since they were claimed or last renewed, it stores the results so
-- far and claims the rest again (JUSTID: no delivery counted), so that no
-- other worker's reclaim takes them from a worker that is alive. Only a
-- task that itself runs for most of the visibility timeout risks that.
local function run_batch(rt, conn, keys, cfg, entries, cache, consumer)
  local function fresh() return { P.GROUP, keys.result, cfg.result_ttl } end
  local argv, renew_at = fresh(), rt.now() + cfg.visibility_timeout / 10
  for i, e in ipairs(entries) do
    local f = P.fields(e[2])
    local status, data = run_task(f, cache)
    if status == "error" then
      log("task %s (%s) failed", tostring(f.id), tostring(f.fn))
    end
    argv[#argv + 1] = e[1]
    argv[#argv + 1] = f.id or ""
    argv[#argv + 1] = f.reply or (keys.reply .. "lost")
    argv[#argv + 1] = status
    argv[#argv + 1] = data
    if i < #entries and rt.now() >= renew_at then
      conn:eval(P.STORE, { keys.tasks }, argv)
      local claim = { keys.tasks, P.GROUP, consumer, 0 }
      for j = i + 1, #entries do claim[#claim + 1] = entries[j][1] end
      claim[#claim + 1] = "JUSTID"
      conn:call("XCLAIM", unpack(claim))
      argv, renew_at = fresh(), rt.now() + cfg.visibility_timeout / 10
    end
  end
  conn:eval(P.STORE, { keys.tasks }, argv)   -- the last entry is in it
end

-- Serve queue until a stop signal, counting the tasks run in count.n.
local function serve(url, queue, opts, count)
  local rt = opts.rt
  -- a worker keeps reconnecting to a server that went away (for an hour),
  -- but not once it has been told to stop; count.gave_up records that the
  -- connection gave up for that reason (it raises at once when it does)
  local function stop()
    if rc.stop_signal() then count.gave_up = true end
    return count.gave_up
  end
  local conn = redis.connect(url, { runtime = rt,
    retry_for = opts.retry_for or 3600, stop = stop })
  local keys = P.keys(queue)
  P.ensure_group(conn, keys)
  local cfg = P.config(conn, keys)
  local consumer, batch = opts.consumer, opts.batch or 100
  local cache, next_reclaim = {}, 0
  while not rc.stop_signal() do
    local entries
    if rt.now() >= next_reclaim then
      cfg = P.config(conn, keys)
      entries = conn:eval(P.RECLAIM, { keys.tasks, keys.dead }, {
        P.GROUP, consumer, math.floor(cfg.visibility_timeout * 1000), batch,
        cfg.max_retries, keys.result, cfg.result_ttl })
      if #entries > 0 then log("%s took over %d task(s) another worker held too long", consumer, #entries) end
      next_reclaim = rt.now() + cfg.visibility_timeout / 2
    end
    -- a read waits no longer than the next reclaim is due
    local block_ms = math.max(1, math.floor(math.min(opts.block or 1,
      cfg.visibility_timeout / 2) * 1000))
    if not entries or #entries == 0 then
      local r = conn:call("XREADGROUP", "GROUP", P.GROUP, consumer, "COUNT", batch,
        "BLOCK", block_ms, "STREAMS", keys.tasks, ">")
      entries = r and r[1] and r[1][2] or {}
    end
    if #entries > 0 then
      run_batch(rt, conn, keys, cfg, entries, cache, consumer)
      count.n = count.n + #entries
    end
  end
  conn:close()
end

--- loop(url, queue, opts): serve until a stop signal; the number of tasks
--- run. opts: consumer (name, unique per thread), batch (tasks per read,
--- default 100), rt (the runtime), block (seconds a read waits, default
--- 1). A server that cannot be reached once a stop signal has come ends
--- the loop instead of raising; any other error raises.
function M.loop(url, queue, opts)
  local count = { n = 0, gave_up = false }
  local ok, err = pcall(serve, url, queue, opts, count)
  if not ok and not count.gave_up then error(err, 0) end
  return count.n
end

local USAGE = [[
usage: lua5.4 bin/duet-worker --redis URL --queue NAME [--concurrency N]
                              [--runtime threads|coroutines] [--batch N]
Runs the tasks of RemoteExecutor queue NAME. Stops on SIGTERM or Ctrl-C,
after finishing the tasks it holds.]]

local function parse_args(argv)
  local o = { concurrency = 1, runtime = "threads", batch = 100 }
  local i = 1
  while i <= #argv do
    local a, v = argv[i], argv[i + 1]
    if a == "--help" or a == "-h" then return nil end
    local key = a:match("^%-%-([%w-]+)$")
    if not key or v == nil then return nil, "bad argument: " .. a end
    if key == "redis" then o.redis = v
    elseif key == "queue" then o.queue = v
    elseif key == "concurrency" or key == "batch" then
      o[key] = math.tointeger(tonumber(v))
      if not o[key] or o[key] < 1 then return nil, "--" .. key .. " wants a positive integer" end
    elseif key == "runtime" then
      if v ~= "threads" and v ~= "coroutines" then return nil, "--runtime: threads or coroutines" end
      o.runtime = v
    else return nil, "unknown option --" .. key end
    i = i + 2
  end
  if not o.redis or not o.queue then return nil, "--redis and --queue are required" end
  return o
end

--- main(argv) -> exit code
function M.main(argv)
  local o, why = parse_args(argv)
  if not o then
    io.stderr:write((why and why .. "\n" or "") .. USAGE .. "\n")
    return why and 2 or 0
  end
  local cfg, bad = redis.parse_url(o.redis)
  if not cfg then
    io.stderr:write(("duet-worker: invalid Redis URL '%s': %s\n"):format(o.redis, bad))
    return 2
  end
  local socket = require "socket"
  M.ident = ("%s:%d"):format(socket.dns.gethostname(), M.pid())
  rc.catch_stop_signals()
  local duet = require "duet"
  local rt = duet.runtime(o.runtime)
  log("serving queue %s on %s:%d with %d %s", o.queue, cfg.host, cfg.port,
    o.concurrency, o.runtime)
  local total = rt.run(function()
    local ident = M.ident
    local workers = {}
    for n = 1, o.concurrency do
      workers[n] = rt.spawn(function()
        local W = require "duet.remote.worker"
        W.ident = ident
        return W.loop(o.redis, o.queue, {
          rt = require("duet").runtime(o.runtime), batch = o.batch,
          consumer = ("%s/%d"):format(ident, n) })
      end)
    end
    local sum = 0
    for _, th in ipairs(workers) do
      local ok, n = th:join()
      if ok then sum = sum + n else log("a worker thread failed: %s", tostring(n)) end
    end
    return sum
  end)
  log("stopped (%s) after %d task(s)", rc.stop_signal() or "done", total)
  return 0
end

-- This process's id, from /proc (plain Lua has no getpid).
function M.pid()
  local f = io.open("/proc/self/stat", "r")
  if not f then return 0 end
  local pid = tonumber(f:read("l"):match("^(%d+)"))
  f:close()
  return pid or 0
end

return M

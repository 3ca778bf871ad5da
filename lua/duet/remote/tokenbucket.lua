-- duet.remote.tokenbucket: rt.TokenBucket{redis = url, key = name, ...},
-- one bucket shared by every process and host that reaches the Redis
-- server. The count lives in hash duet:bucket:{KEY} (tokens, and the time
-- it was last brought up to date); each take is one server-side script
-- (EVALSHA) that refills from the server's own clock with the local
-- bucket's arithmetic (lua/duet/coroutines/tokenbucket.lua), so processes
-- on hosts whose clocks differ still share one timeline. The bucket's
-- settings travel with every call: the last caller's settings apply.
local check = require "duet.check"
local messages = require "duet.messages"
local P = require "duet.remote.protocol"

local M = {}

-- KEYS[1]: the hash; ARGV: form ("c": capacity/rate, "d": discrete),
-- capacity, rate or refill_tokens, refill_period, starting tokens, n
-- (0: only read). Returns {granted 0/1, tokens, seconds until n are due}
-- as strings (a script's Lua numbers would reach the client truncated).
M.TAKE = [=[
local key, form = KEYS[1], ARGV[1]
local cap, rate, period = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local start, n = tonumber(ARGV[5]), tonumber(ARGV[6])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local b = redis.call('HMGET', key, 'tokens', 't')
local tokens, last = tonumber(b[1]), tonumber(b[2])
if not tokens or not last then tokens, last = start, now end
if form == 'c' then
  tokens = math.min(cap, tokens + math.max(now - last, 0) * rate)
  last = now
else
  local k = math.floor((now - last) / period)
  if k > 0 then
    tokens = math.min(cap, tokens + k * rate)
    last = last + k * period
  end
end
local granted, due = 0, 0
if n > 0 then
  if tokens >= n then
    tokens = tokens - n
    granted = 1
  elseif form == 'c' then
    due = (n - tokens) / rate
  else
    due = last + math.ceil((n - tokens) / rate) * period - now
  end
end
redis.call('HSET', key, 'tokens', string.format('%.17g', tokens), 't', string.format('%.17g', last))
-- a bucket nobody used since it filled up again can go
local full_in = form == 'c' and (cap - tokens) / rate or math.ceil((cap - tokens) / rate) * period
redis.call('PEXPIRE', key, math.ceil((full_in + 60) * 1000))
return {tostring(granted), string.format('%.17g', tokens), string.format('%.17g', due)}
]=]

local RemoteBucket = { __name = "duet.TokenBucket" }
RemoteBucket.__index = RemoteBucket
RemoteBucket.__newindex = require("duet.coroutines.class").refuse_public

local function field(opts, name)
  local v = opts[name]
  if type(v) ~= "number" then
    check.argerror("TokenBucket", 1, ("field '%s': number expected, got %s")
      :format(name, check.typename(v)))
  end
  if not (v > 0) then
    check.argerror("TokenBucket", 1, messages.field_positive:format(name))
  end
  return v
end

--- rt.TokenBucket{redis = url, key = name, capacity = c, rate = r [, tokens]}
--- or {redis, key, max_tokens, refill_tokens, refill_period [, tokens]}
function M.TokenBucket(rt, opts)
  local url = P.url_field("TokenBucket", opts)
  local key = P.string_field("TokenBucket", opts, "key")
  local self = { _rt = rt, _url = url, _key = "duet:bucket:{" .. key .. "}", _name = key }
  if opts.capacity ~= nil or opts.rate ~= nil then
    if opts.max_tokens ~= nil or opts.refill_tokens ~= nil or opts.refill_period ~= nil then
      check.argerror("TokenBucket", 1,
        messages.bucket_fields)
    end
    self._form, self._cap, self._rate, self._period = "c", field(opts, "capacity"),
      field(opts, "rate"), 0
  else
    self._form, self._cap, self._rate, self._period = "d", field(opts, "max_tokens"),
      field(opts, "refill_tokens"), field(opts, "refill_period")
  end
  local tokens = opts.tokens
  if tokens == nil then
    tokens = self._cap
  elseif type(tokens) ~= "number" then
    check.argerror("TokenBucket", 1, "field 'tokens': number expected, got " .. check.typename(tokens))
  elseif not (tokens >= 0 and tokens <= self._cap) then
    check.argerror("TokenBucket", 1, messages.bucket_tokens)
  end
  self._start = tokens
  return setmetatable(self, RemoteBucket)
end

function RemoteBucket:__tostring()
  return ("duet.TokenBucket (%s, %g tokens): %s"):format(self._name, self._cap,
    self._url)
end

local function run(self, n)
  local conn = P.connection(self._url, self._rt)
  local r = conn:eval(M.TAKE, { self._key }, { self._form, ("%.17g"):format(self._cap),
    ("%.17g"):format(self._rate), ("%.17g"):format(self._period),
    ("%.17g"):format(self._start), ("%.17g"):format(n) })
  -- the key now holds the bucket; if it goes, it went once full again
  -- (its time to live runs from then), so it comes back full
  self._start = self._cap
  return r[1] == "1", tonumber(r[2]), tonumber(r[3])
end

local function check_n(self, fname, n)
  n = check.opt_number(fname, 1, n, 1)
  if not (n > 0) then check.argerror(fname, 1, messages.n_positive) end
  if n > self._cap then check.argerror(fname, 1, messages.n_over_capacity) end
  return n
end

--- tb:take([n]) -> true (n tokens taken) or false (none taken)
function RemoteBucket:take(n)
  n = check_n(self, "take", n)
  return (run(self, n))
end

--- tb:wait([n [, timeout]]) -> true once n tokens are taken, false on timeout
function RemoteBucket:wait(n, timeout)
  n = check_n(self, "wait", n)
  timeout = check.timeout("wait", 2, timeout)
  local rt = self._rt
  local dl = timeout and rt.now() + timeout
  while true do
    local granted, _, due = run(self, n)
    if granted then return true end
    local left = dl and dl - rt.now()
    if left and left <= 0 then return false end
    -- another process may take the tokens first: then this tries again
    due = math.max(due, 0.001)
    rt.sleep(left and math.min(due, left) or due)
  end
end

--- tb:tokens() -> the tokens there now
function RemoteBucket:tokens()
  local _, tokens = run(self, 0)
  return tokens
end

return M

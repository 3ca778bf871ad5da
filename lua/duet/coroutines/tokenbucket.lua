-- duet.coroutines.tokenbucket: TokenBucket.
-- The count is brought up to date from the clock on every call, so no task
-- refills it. Two forms:
--   {capacity=, rate=}                       continuous: rate tokens/second
--   {max_tokens=, refill_tokens=, refill_period=}
--                                            discrete: refill_tokens at the
--                                            end of every refill_period
-- Waiters sleep until the time their tokens are due, then try again.
local check = require "duet.check"
local messages = require "duet.messages"
local S = require "duet.coroutines.scheduler"
local class = require "duet.coroutines.class"

local setmetatable, type, ceil, tointeger = setmetatable, type, math.ceil,
  math.tointeger

-- A time later than t, by a unit of its last place or two, as C's.
local function later(t)
  return t + (t < 0 and -t or t) * 0x1p-52 + 0x1p-1074
end

local TokenBucket = class.new("duet.TokenBucket", function(self)
  return (messages.bucket_tostring):format(self:tokens(), self._cap)
end)

local M = {}

local function field(opts, name)
  local v = opts[name]
  if type(v) ~= "number" then
    check.argerror("TokenBucket", 1, ("field '%s': number expected, got %s")
      :format(name, check.typename(v)))
  end
  if not (v > 0) then
    check.argerror("TokenBucket", 1, (messages.field_positive):format(name))
  end
  return v
end

function M.TokenBucket(opts)
  check.table("TokenBucket", 1, opts)
  local self = { _t = S.now(), _rate = 0, _refill = 0, _period = 0 }
  if opts.capacity ~= nil or opts.rate ~= nil then
    if opts.max_tokens ~= nil or opts.refill_tokens ~= nil
        or opts.refill_period ~= nil then
      check.argerror("TokenBucket", 1,
        messages.bucket_fields)
    end
    self._cap = field(opts, "capacity")
    self._rate = field(opts, "rate")
  else
    self._cap = field(opts, "max_tokens")
    self._refill = field(opts, "refill_tokens")
    self._period = field(opts, "refill_period")
  end
  local tokens = opts.tokens
  if tokens == nil then
    tokens = self._cap
  else
    if type(tokens) ~= "number" then
      check.argerror("TokenBucket", 1, "field 'tokens': number expected, got "
        .. check.typename(tokens))
    end
    if not (tokens >= 0 and tokens <= self._cap) then
      check.argerror("TokenBucket", 1, messages.bucket_tokens)
    end
  end
  self._tokens = tokens
  return setmetatable(self, TokenBucket)
end

-- Bring the count up to time t (an older t adds nothing). This is the
-- threads bucket's arithmetic (csrc/tokenbucket.c), written out again
-- because a call into C per take() costs this runtime a fifth of its
-- speed; spec/tokenbucket_count_spec.lua holds the two to the same results.
local function refill(self, t)
  local t0 = self._t
  if t <= t0 then return end
  local rate, cap = self._rate, self._cap
  if rate > 0 then
    local tokens = self._tokens + (t - t0) * rate
    self._tokens = tokens < cap and tokens or cap
    self._t = t
  else
    -- whole periods as due() counts them, so a waiter woken at its due
    -- time (exactly, on a virtual clock) finds its refill
    local period = self._period
    local k = (t - t0) // period
    if t0 + (k + 1) * period <= t then k = k + 1
    elseif k > 0 and t0 + k * period > t then k = k - 1 end
    if k > 0 then
      local tokens = self._tokens + k * self._refill
      self._tokens = tokens < cap and tokens or cap
      self._t = t0 + k * period
    end
  end
end

-- When n tokens will be there, counting from time t (after refill(t)):
-- always later than t, so a waiter never sleeps until the same instant.
local function due(self, n, t)
  local missing, at = n - self._tokens
  if self._rate > 0 then at = t + missing / self._rate
  else at = self._t + ceil(missing / self._refill) * self._period end
  if at > t then return at end
  return later(t)
end

local function check_n(self, fname, n)
  n = check.opt_number(fname, 1, n, 1)
  if not (n > 0) then check.argerror(fname, 1, messages.n_positive) end
  if n > self._cap then check.argerror(fname, 1, messages.n_over_capacity) end
  return n
end

function TokenBucket:take(n)
  n = check_n(self, "take", n)
  refill(self, S.now())
  local tokens = self._tokens
  if tokens < n then return false end
  self._tokens = tokens - n
  return true
end

function TokenBucket:wait(n, timeout)
  n = check_n(self, "wait", n)
  timeout = check.timeout("wait", 2, timeout)
  local dl = S.deadline(timeout)
  while true do
    local t = S.now()
    refill(self, t)
    local tokens = self._tokens
    if tokens >= n then
      self._tokens = tokens - n
      return true
    end
    if dl and t >= dl then return false end
    local at = due(self, n, t)
    S.block(nil, (dl and dl < at) and dl or at, self, "wait")
  end
end

function TokenBucket:tokens()                -- a whole count: an integer
  refill(self, S.now())
  local n = self._tokens
  return tointeger(n) or n
end

-- For spec/tokenbucket_count_spec.lua: the arithmetic on a bucket's fields.
M._refill, M._due = refill, due

return M

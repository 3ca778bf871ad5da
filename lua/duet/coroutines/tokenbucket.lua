-- duet.coroutines.tokenbucket: TokenBucket.
-- The count is brought up to date from the clock on every call, so no task
-- refills it. Two forms:
--   {capacity=, rate=}                       continuous: rate tokens/second
--   {max_tokens=, refill_tokens=, refill_period=}
--                                            discrete: refill_tokens at the
--                                            end of every refill_period
-- Waiters sleep until the time their tokens are due, then try again.
local check = require "duet.check"
local S = require "duet.coroutines.scheduler"
local class = require "duet.coroutines.class"

local setmetatable, type, ceil = setmetatable, type, math.ceil
local now = S.now

local TokenBucket = class.new("duet.TokenBucket", function(self)
  return ("%g/%g tokens"):format(self:tokens(), self._cap)
end)

local M = {}

local function field(opts, name)
  local v = opts[name]
  if type(v) ~= "number" then
    check.argerror("TokenBucket", 1, ("field '%s': number expected, got %s")
      :format(name, check.typename(v)))
  end
  if not (v > 0) then
    check.argerror("TokenBucket", 1, ("field '%s' must be positive"):format(name))
  end
  return v
end

function M.TokenBucket(opts)
  check.table("TokenBucket", 1, opts)
  local self = { _t = now() }
  if opts.capacity ~= nil or opts.rate ~= nil then
    if opts.max_tokens ~= nil or opts.refill_tokens ~= nil
        or opts.refill_period ~= nil then
      check.argerror("TokenBucket", 1,
        "give either capacity and rate, or max_tokens, refill_tokens and refill_period")
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
      check.argerror("TokenBucket", 1, "field 'tokens' must be between 0 and the capacity")
    end
  end
  self._tokens = tokens
  return setmetatable(self, TokenBucket)
end

-- Bring the count up to time t.
local function refill(self, t)
  local rate, cap = self._rate, self._cap
  if rate then
    local tokens = self._tokens + (t - self._t) * rate
    self._tokens = tokens < cap and tokens or cap
    self._t = t
  else
    local period = self._period
    local k = (t - self._t) // period
    if k > 0 then
      local tokens = self._tokens + k * self._refill
      self._tokens = tokens < cap and tokens or cap
      self._t = self._t + k * period
    end
  end
end

-- When n tokens will be there, counting from time t (after refill(t)).
local function due(self, n, t)
  local missing = n - self._tokens
  if self._rate then return t + missing / self._rate end
  return self._t + ceil(missing / self._refill) * self._period
end

local function check_n(self, fname, n)
  n = check.opt_number(fname, 1, n, 1)
  if not (n > 0) then check.argerror(fname, 1, "n must be positive") end
  if n > self._cap then check.argerror(fname, 1, "n exceeds the bucket's capacity") end
  return n
end

function TokenBucket:take(n)
  n = check_n(self, "take", n)
  refill(self, now())
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
    local t = now()
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

function TokenBucket:tokens()
  refill(self, now())
  return self._tokens
end

return M

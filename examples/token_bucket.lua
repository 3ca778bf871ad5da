-- A token bucket limits how often something may happen: each request takes
-- a token, tokens come back at a steady pace, and a request that finds the
-- bucket empty is denied.
--
-- Part 1 builds one the classic threaded way, from parts: a bounded queue
-- holding the tokens, a refill thread that tops it up every period, and an
-- event that tells the refill thread to stop. Part 2 does the same job with
-- rt.TokenBucket, which computes its refills from the clock and needs no
-- thread at all.
--
--   lua5.4 examples/token_bucket.lua [--requests 12] [--period 0.4]
package.path = arg[0]:gsub("[^/\\]*$", "") .. "?.lua;" .. package.path
local common = require "common"

local opts = common.options{
  options = { requests = 12, period = 0.4, max_tokens = 5, refill_tokens = 2 },
  about = "period: seconds between refills; a request is made every period/4",
}
local rt = opts.rt
local printf = common.printf

-- Log lines as Python's logging module would write them with the format
-- '[%(levelname)s %(asctime)s %(threadName)s]: %(message)s', except that
-- the time is the seconds since the start, which shows the refill pace.
local T0 = rt.now()
local function log(level, fmt, ...)
  printf("[%s %6.3f %s]: " .. fmt, level, rt.now() - T0, rt.current().name, ...)
end

------------------------------------------- part 1: a bucket built by hand

local TOKEN = "token"

local QueueBucket = {}
QueueBucket.__index = QueueBucket

function QueueBucket.new(refill_period, refill_tokens, max_tokens)
  local self = setmetatable({
    refill_period = refill_period,
    refill_tokens = refill_tokens,
    bucket = rt.Queue(max_tokens),
    stop_event = rt.Event(),
  }, QueueBucket)
  self.refill_thread = rt.Thread{
    target = QueueBucket.refill, args = { self }, name = "RefillThread",
  }
  return self
end

function QueueBucket:start()
  log("INFO", "Starting refill thread.")
  self.refill_thread:start()
end

function QueueBucket:stop()
  log("INFO", "Setting stop event to true.")
  self.stop_event:set()
  assert(self.refill_thread:join())
end

function QueueBucket:request()
  if self.bucket:get_nowait() then return "success" end
  return "denied"
end

-- The refill thread's loop. It waits on the stop event between refills
-- rather than sleeping, so that stop() ends it at once.
function QueueBucket:refill()
  while true do
    if self.stop_event:is_set() then
      log("INFO", "Stopping refill thread.")
      break
    end
    log("INFO", "Refilling bucket with %d tokens.", self.refill_tokens)
    for _ = 1, self.refill_tokens do
      if not self.bucket:put_nowait(TOKEN) then break end   -- full
    end
    self.stop_event:wait(self.refill_period)
  end
  log("INFO", "Refill thread completed.")
end

-------------------------------------------------------------- the client

-- Make `n` requests on a fixed schedule, one every `interval` seconds, and
-- count the answers. The first comes half an interval after the start, so
-- that no request is due just as a refill is (which of the two came first
-- would be luck).
local function client(request, n, interval)
  local count = { success = 0, denied = 0 }
  local start = rt.now()
  for i = 1, n do
    rt.sleep(math.max(0, start + (i - 0.5) * interval - rt.now()))
    local answer = request()
    count[answer] = count[answer] + 1
    log("INFO", "request %d: %s", i, answer)
  end
  log("INFO", "%d success, %d denied", count.success, count.denied)
end

rt.run(function()
  local interval = opts.period / 4

  print(("-- part 1: a queue of %d tokens, a refill thread adding %d every %g s, a stop event")
    :format(opts.max_tokens, opts.refill_tokens, opts.period))
  local tb = QueueBucket.new(opts.period, opts.refill_tokens, opts.max_tokens)
  tb:start()
  client(function() return tb:request() end, opts.requests, interval)
  tb:stop()

  print(("-- part 2: rt.TokenBucket, %d tokens at most, %d more every %g s, no thread")
    :format(opts.max_tokens, opts.refill_tokens, opts.period))
  T0 = rt.now()
  -- It starts with one refill's worth, as the hand-made one does after
  -- its first refill.
  local bucket = rt.TokenBucket{
    max_tokens = opts.max_tokens, refill_tokens = opts.refill_tokens,
    refill_period = opts.period, tokens = opts.refill_tokens,
  }
  client(function() return bucket:take() and "success" or "denied" end,
    opts.requests, interval)
end)

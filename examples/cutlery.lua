-- Robots and cutlery: ten ThreadBots serve tables, taking knives and forks
-- from the kitchen and bringing them back. Every bot returns all it took,
-- so the kitchen should end with what it started with.
--
--   lua5.4 examples/cutlery.lua 10000                      threads, no lock
--   lua5.4 examples/cutlery.lua 10000 --lock               threads, locked
--   lua5.4 examples/cutlery.lua 10000 --runtime coroutines
--   lua5.4 examples/cutlery.lua 10000 --runtime coroutines --seed 7
--   lua5.4 examples/cutlery.lua 100 --explore 100 [--lock]
--
-- On the threads runtime the bots run in parallel and `kitchen.knives =
-- kitchen.knives + n` is a read followed by a write: a bot that writes
-- between another's read and write has its change lost, and with enough
-- tables the counts drift. --lock makes each change exclusive. On the
-- coroutines runtime a bot is only ever switched out where it blocks in a
-- duet call (here, at most when its task queue is empty), never between a
-- read and a write, so the counts come out right with or without the lock.
--
-- --seed N (coroutines) has duet preempt the bots itself, anywhere in their
-- own code, from seed N: the race shows, and the same seed gives the same
-- wrong counts on every run. --explore R runs the service under seeds 1..R
-- with duet.explore and reports the first seed whose counts come out wrong
-- (none, with --lock).
package.path = arg[0]:gsub("[^/\\]*$", "") .. "?.lua;" .. package.path
local common = require "common"

local opts = common.options{
  options = { tables = 100, bots = 10, lock = false, explore = 0 },
  positional = { "tables" },
  about = "tables: how many tables each bot prepares and clears",
}
local rt = opts.rt

-- Cutlery: a set of knives and forks. The counts live in a SharedTable,
-- the one kind of table every thread sees (on the threads runtime each bot
-- runs in its own Lua state, and a plain table would be copied into it).
local Cutlery = {}
Cutlery.__index = Cutlery

function Cutlery.new(knives, forks, with_lock)
  return setmetatable({
    counts = rt.SharedTable{ knives = knives, forks = forks },
    lock = with_lock and rt.Lock() or nil,
  }, Cutlery)
end

-- The unprotected change: each line reads a count, adds to it, and writes
-- it back, three steps another thread can come between.
local function add(counts, knives, forks)
  counts.knives = counts.knives + knives
  counts.forks = counts.forks + forks
end

function Cutlery:change(knives, forks)
  if self.lock then
    self.lock:with(add, self.counts, knives, forks)
  else
    add(self.counts, knives, forks)
  end
end

function Cutlery:give(to, knives, forks)
  self:change(-knives, -forks)
  to:change(knives, forks)
end

function Cutlery:__tostring()
  return ("Cutlery(knives=%d, forks=%d)"):format(self.counts.knives, self.counts.forks)
end

-- A ThreadBot's work: take tasks from its queue until told to shut down.
-- Everything it uses comes in as arguments; the tables holding them are
-- copied into the bot's thread, the duet objects inside (queue, shared
-- counts, lock) are the same objects the main thread holds.
local function manage_table(bot, kitchen)
  while true do
    local task = bot.tasks:get()
    if task == "prepare table" then
      kitchen:give(bot.cutlery, 4, 4)
    elseif task == "clear table" then
      bot.cutlery:give(kitchen, 4, 4)
    elseif task == "shutdown" then
      return
    end
  end
end

local function ThreadBot(kitchen)
  local bot = { tasks = rt.Queue(), cutlery = Cutlery.new(0, 0, opts.lock) }
  bot.thread = rt.Thread{ target = manage_table, args = { bot, kitchen } }
  return bot
end

local function service(quiet)
  local kitchen = Cutlery.new(100, 100, opts.lock)
  local bots = {}
  for i = 1, opts.bots do bots[i] = ThreadBot(kitchen) end

  for _, bot in ipairs(bots) do
    for _ = 1, opts.tables do
      bot.tasks:put("prepare table")
      bot.tasks:put("clear table")
    end
    bot.tasks:put("shutdown")
  end

  if not quiet then print("Kitchen inventory before service: " .. tostring(kitchen)) end
  for _, bot in ipairs(bots) do bot.thread:start() end
  for _, bot in ipairs(bots) do assert(bot.thread:join()) end
  if not quiet then print("Kitchen inventory after service: " .. tostring(kitchen)) end
  return kitchen
end

if opts.explore > 0 then
  local duet = require "duet"
  rt = duet.runtime("coroutines")
  local ok, err = pcall(duet.explore, function()
    local kitchen = service(true)
    if kitchen.counts.knives ~= 100 or kitchen.counts.forks ~= 100 then
      error("changes lost: " .. tostring(kitchen), 0)
    end
  end, { runs = opts.explore })
  if ok then
    print(("duet.explore: all %d runs pass"):format(opts.explore))
  else
    -- the first line names the seed; the trace and the error follow
    local text = tostring(err)
    print(text:match("^[^\n]*"))
    print("  " .. (text:match("changes lost: [^\n]*") or text))
  end
else
  rt.run(service)
end

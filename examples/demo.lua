-- `make demo`: the restaurant of examples/cutlery.lua served four ways.
-- Ten bots each prepare and clear 10,000 tables, taking four knives and four
-- forks from the kitchen and bringing them back; the kitchen starts and
-- should end with 100 of each.
--
--   lua5.4 examples/demo.lua [--tables 10000]
--
-- The fourth way is a race found and replayed: the coroutines runtime
-- preempting the bots from a seed shows the race, the same seed shows the
-- same wrong counts again, and duet.explore finds a failing seed for the
-- unlocked kitchen and none once the lock is there.

package.path = arg[0]:gsub("[^/\\]*$", "") .. "?.lua;" .. package.path
local common = require "common"

-- Each run is the command shown, started as a child of this script.
local dir = arg[0]:match("^(.*)[/\\]") or "."
local lua = arg[-1] or "lua5.4"
local tables = 10000
if arg[1] == "--tables" and tonumber(arg[2]) then
  tables = tonumber(arg[2])
elseif arg[1] then
  io.stderr:write("usage: lua5.4 ", arg[0], " [--tables 10000]\n")
  os.exit(arg[1] == "--help" and 0 or 2)
end

local function quote(s) return "'" .. s:gsub("'", [['\'']]) .. "'" end

local runs = {
  { "--runtime threads",
    "1. OS threads, no lock: the bots run in parallel and overwrite each other's"
    .. " counts (a race), so the totals usually drift, differently each run." },
  { "--runtime threads --lock",
    "2. OS threads, a Lock around each change: no change is lost, always 100 and 100." },
  { "--runtime coroutines",
    "3. Coroutines, no lock: a bot never gives way between reading and writing"
    .. " a count, so always 100 and 100." },
  { "--runtime coroutines --seed 7",
    "4. Coroutines preempted by duet from seed 7: the bots are switched anywhere"
    .. " in their own code, so the race shows..." },
  { "--runtime coroutines --seed 7",
    "   ...and the same seed gives the same wrong counts again: the race replays." },
  { "--explore 100", "   duet.explore tries seeds 1 to 100 on a 100-table service"
    .. " and names the first that loses changes...", 100 },
  { "--explore 100 --lock", "   ...and with the Lock every run passes.", 100 },
}

print(("Ten bots each serve %s tables; the kitchen starts with 100 knives and"
  .. " 100 forks, and should end with all of them."):format(common.thousands(tables)))

for _, run in ipairs(runs) do
  local options, what, n = run[1], run[2], run[3] or tables
  print()
  print(what)
  print(("$ lua5.4 %s/cutlery.lua %d %s"):format(dir, n, options))
  io.stdout:flush()
  if not os.execute(("%s %s/cutlery.lua %d %s"):format(quote(lua), quote(dir), n, options)) then
    os.exit(1)
  end
end

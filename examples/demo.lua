-- `make demo`: the restaurant of examples/cutlery.lua served three ways.
-- Ten bots each prepare and clear 10,000 tables, taking four knives and four
-- forks from the kitchen and bringing them back; the kitchen starts and
-- should end with 100 of each.
--
--   lua5.4 examples/demo.lua [--tables 10000]

-- Each run is the command shown, started as a child of this script.
local dir = arg[0]:match("^(.*)[/\\]") or "."
local lua = arg[-1] or "lua5.4"
local tables = 10000
if arg[1] == "--tables" and tonumber(arg[2]) then tables = tonumber(arg[2]) end

local function quote(s) return "'" .. s:gsub("'", [['\'']]) .. "'" end

local runs = {
  { "--runtime threads",
    "OS threads in parallel, no lock: bots overwrite each other's counts (a race), so the totals drift." },
  { "--runtime threads --lock",
    "OS threads with a Lock around each change: always 100 and 100." },
  { "--runtime coroutines",
    "coroutines, no lock: a bot only gives way where it waits on its queue, never mid-change, so always 100 and 100." },
}

for _, run in ipairs(runs) do
  local options, what = run[1], run[2]
  print(what)
  print(("$ lua5.4 %s/cutlery.lua %d %s"):format(dir, tables, options))
  io.stdout:flush()
  local _, _, status = os.execute(("%s %s/cutlery.lua %d %s")
    :format(quote(lua), quote(dir), tables, options))
  -- 3: cutlery.lua skipped the run (it said why); anything else is a failure
  if status ~= 0 and status ~= 3 then os.exit(1) end
  print()
end

-- Each C module exports its luaopen_ function and nothing else (issue 17):
-- internal names such as duet_open_concept must not clash with, or be
-- called by, other libraries loaded in the same process. Built with
-- -fvisibility=hidden; this reads the dynamic symbol table with `nm -D`.
-- Tagged nosan: a sanitizer build exports the sanitizer's own hooks.
local H = require "helpers"

local function exported(path)
  local p = assert(io.popen("nm -D --defined-only " .. H.shquote(path) .. " 2>&1"))
  local out = p:read("a")
  assert(p:close(), out)
  local names = {}
  for name in out:gmatch("%x+ [TDBRVW] ([%w_@.]+)") do names[#names + 1] = name end
  table.sort(names)
  return names
end

describe("exported symbols #nosan", function()
  for _, m in ipairs { { "duet.core", "luaopen_duet_core" },
                       { "duet.redis_core", "luaopen_duet_redis_core" } } do
    it(m[1] .. " exports only " .. m[2], function()
      local path = assert(package.searchpath(m[1], package.cpath))
      assert.are.same({ m[2] }, exported(path))
    end)
  end
end)

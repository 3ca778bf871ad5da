-- The lockcheck build (make lockcheck, issue 17) aborts when a Lua API
-- function is called while the calling thread holds a mutex: this builds
-- spec/lockcheck/probe.c the way the Makefile builds duet.core for it, and
-- checks that the probe's violating function is caught, naming the
-- function, and that its clean one is not. x86-64 only (the trampolines).
-- Tagged nosan: it runs cc and a child lua5.4, not duet's own code.
local H = require "helpers"

local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  local ok, _, code = p:close()
  return ok and 0 or code, out
end

local function build(dir)
  local inc = select(2, sh("pkg-config --cflags lua5.4 || echo -I/usr/include/lua5.4")):gsub("%s+$", "")
  local cc = "cc -std=c11 -Wall -O1 -g -fPIC -shared -pthread " .. inc
  local plain, mod = dir .. "/plain.so", dir .. "/probe.so"
  for _, step in ipairs {
    cc .. " -o " .. plain .. " spec/lockcheck/probe.c",
    "sh spec/lockcheck/wrap.sh " .. plain .. " " .. dir,
    cc .. " -o " .. mod .. " spec/lockcheck/probe.c spec/lockcheck/held.c "
      .. dir .. "/wrap.S @" .. dir .. "/wrap.flags",
  } do
    local code, out = sh(step)
    assert(code == 0, step .. "\n" .. out)
  end
end

local function run(dir, fn)
  return sh(("lua5.4 -e %s"):format(H.shquote(("package.cpath=%q; print(require'probe'.%s())")
    :format(dir .. "/?.so", fn))))
end

describe("lockcheck #nosan", function()
  local dir
  setup(function()
    if select(2, sh("uname -m")):match("x86_64") then
      dir = os.tmpname()
      os.remove(dir)
      assert(os.execute("mkdir " .. H.shquote(dir)))
      build(dir)
    end
  end)
  teardown(function()
    if dir then os.execute("rm -rf " .. H.shquote(dir)) end
  end)

  it("lets a module that unlocks before calling Lua run", function()
    if not dir then return pending("lockcheck needs x86-64") end
    local code, out = run(dir, "clean")
    assert.are.equal(0, code, out)
    assert.are.equal("1\n", out)
  end)

  it("aborts, naming the function, on a Lua API call under a mutex", function()
    if not dir then return pending("lockcheck needs x86-64") end
    local code, out = run(dir, "violating")
    assert.are_not.equal(0, code, out)
    assert.matches("lockcheck: lua_pushinteger called while this thread holds 1 duet mutex", out, 1, true)
  end)
end)

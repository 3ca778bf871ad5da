-- Writes the portable fuzzer's seed corpus: duet.redis_core.pack of varied
-- values, and a few RESP replies. Usage: lua5.4 portable_corpus.lua DIR
local rc = require "duet.redis_core"
local dir = assert(arg[1], "usage: portable_corpus.lua DIR")
local seeds = {
  rc.pack(), rc.pack(nil, true, false), rc.pack(0, -1, 2^53, math.mininteger, 1.5, -0.0, 1/0),
  rc.pack("", "hello", ("x"):rep(300), "\0\1\2"),
  rc.pack({}, {1, 2, 3}, {a = 1, b = {c = {d = "deep"}}}, {[true] = false, [1.5] = "f"}),
  "*3\r\n$3\r\nfoo\r\n:42\r\n*2\r\n$-1\r\n-ERR no\r\n", "+OK\r\n-WRONGTYPE x\r\n",
}
for i, s in ipairs(seeds) do
  local f = assert(io.open(("%s/seed%02d"):format(dir, i), "wb"))
  f:write(s)
  f:close()
end

/*
** libFuzzer target for duet.redis_core: the untrusted bytes that arrive
** from Redis. Arbitrary input must give values or a Lua error, never a
** crash, a leak or UB, both from unpack() (the portable codec of
** RemoteExecutor, RemoteQueue) and from a Reader fed it as RESP.
*/
#include <stddef.h>
#include <stdint.h>

#include "lua.h"
#include "lauxlib.h"
#include "lualib.h"

int luaopen_duet_redis_core(lua_State *L);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static lua_State *L;
static unsigned long runs;

static const char feed_all[] =
  "local rc, s = ...\n"
  "local r = rc.reader()\n"
  "r:feed(s)\n"
  "for _ = 1, 64 do if r:get() == nil then break end end\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (L == NULL) {
    L = luaL_newstate();
    luaL_openlibs(L);
    luaL_requiref(L, "duet.redis_core", luaopen_duet_redis_core, 0);
    lua_setglobal(L, "rc");
  }
  lua_getglobal(L, "rc");
  lua_getfield(L, -1, "unpack");
  lua_pushlstring(L, (const char *)data, size);
  (void)lua_pcall(L, 1, LUA_MULTRET, 0);
  lua_settop(L, 0);
  if (luaL_loadstring(L, feed_all) == LUA_OK) {
    lua_getglobal(L, "rc");
    lua_pushlstring(L, (const char *)data, size);
    (void)lua_pcall(L, 2, 0, 0);
  }
  lua_settop(L, 0);
  if (++runs % 1000 == 0) lua_gc(L, LUA_GCCOLLECT);
  return 0;
}

/*
** libFuzzer target for duet.decode: arbitrary bytes after the format's
** magic must give a value or a Lua error, never a crash, a leak or UB.
** Code is not decoded ({functions = true} loads bytecode, which Lua itself
** cannot check; decode refuses it by default, which is what is fuzzed).
*/
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "lua.h"
#include "lauxlib.h"
#include "lualib.h"

int luaopen_duet_core(lua_State *L);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static lua_State *L;
static unsigned long runs;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const char magic[] = "\x1b" "duet1";
  luaL_Buffer b;
  if (L == NULL) {
    L = luaL_newstate();
    luaL_openlibs(L);
    luaL_requiref(L, "duet.core", luaopen_duet_core, 0);
    lua_setglobal(L, "core");
  }
  lua_getglobal(L, "core");
  lua_getfield(L, -1, "decode");
  luaL_buffinit(L, &b);
  luaL_addlstring(&b, magic, sizeof magic - 1);
  luaL_addlstring(&b, (const char *)data, size);
  luaL_pushresult(&b);
  (void)lua_pcall(L, 1, 1, 0);
  lua_settop(L, 0);
  if (++runs % 1000 == 0) lua_gc(L, LUA_GCCOLLECT);
  return 0;
}

/*
** execopts.c — the options of rt.Executor{...}, checked as
** duet.executor_options checks them for the executors written in Lua.
** (Apart from executor.c, which it would push past 800 lines.)
*/
#include <string.h>
#include <unistd.h>

#include "duet.h"

duet_Message **duet_executor_options(lua_State *L, lua_Integer *maxp,
                                     const char **prefixp) {
  lua_Integer max;
  duet_Message **init;
  const char *prefix = NULL;
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  max = ncpu > 0 ? ncpu : 1;
  lua_settop(L, 1);
  init = duet_new_box(L, 2);                              /* 2 */
  if (!lua_isnil(L, 1)) {
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_getfield(L, 1, "max_workers");
    if (!lua_isnil(L, -1)) {
      int exact = 0;                      /* 4.0 is 4, as luaL_checkinteger */
      if (lua_type(L, -1) == LUA_TNUMBER) max = lua_tointegerx(L, -1, &exact);
      if (!exact) duet_field_error(L, 1, "max_workers", "integer");
      luaL_argcheck(L, max >= 1, 1, "max_workers must be at least 1");
      luaL_argcheck(L, max <= 4096, 1, "max_workers must be at most 4096");
    }
    lua_settop(L, 2);
    if (lua_getfield(L, 1, "initializer") != LUA_TNIL                /* 3 */
        && !lua_isfunction(L, 3))
      duet_field_error(L, 1, "initializer", "function");
    if (lua_getfield(L, 1, "initargs") != LUA_TNIL) {                /* 4 */
      if (!lua_istable(L, 4)) duet_field_error(L, 1, "initargs", "table");
    }
    if (lua_getfield(L, 1, "thread_name_prefix") != LUA_TNIL) {     /* 5 */
      if (lua_type(L, 5) != LUA_TSTRING)
        duet_field_error(L, 1, "thread_name_prefix", "string");
      prefix = lua_tostring(L, 5);
    }
    if (!lua_isnil(L, 3)) {
      lua_Integer i, n = 0;
      int top;
      init[0] = duet_encode(L, 3, 1, "initializer", 0);
      if (!lua_isnil(L, 4)) {
        if (lua_getfield(L, 4, "n") == LUA_TNUMBER && lua_isinteger(L, -1))
          n = lua_tointeger(L, -1);
        else n = luaL_len(L, 4);
        lua_pop(L, 1);
      }
      luaL_argcheck(L, n < 1 << 16, 1, "field 'initargs': too many values");
      luaL_checkstack(L, (int)n + 1, "too many initargs");
      top = lua_gettop(L);
      for (i = 1; i <= n; i++) lua_geti(L, 4, i);
      init[1] = duet_encode(L, top + 1, (int)n, "initargs", DUET_LIST);
      lua_settop(L, top);
    }
  }
  *maxp = max;
  *prefixp = prefix;
  return init;
}

/*
** probe.c — a module for spec/lockcheck_spec.lua: one function keeps the
** house rule, one breaks it (a Lua API call while holding a mutex), so the
** spec can see that the lockcheck build catches the second and not the
** first.
*/
#include <pthread.h>

#include "lua.h"
#include "lauxlib.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int counter;

static int clean(lua_State *L) {          /* read under the mutex, push after */
  int n;
  pthread_mutex_lock(&mu);
  n = ++counter;
  pthread_mutex_unlock(&mu);
  lua_pushinteger(L, n);
  return 1;
}

static int violating(lua_State *L) {      /* pushes with the mutex held */
  pthread_mutex_lock(&mu);
  lua_pushinteger(L, ++counter);
  pthread_mutex_unlock(&mu);
  return 1;
}

int luaopen_probe(lua_State *L);
int luaopen_probe(lua_State *L) {
  const luaL_Reg fns[] = {{"clean", clean}, {"violating", violating},
                          {NULL, NULL}};
  luaL_newlib(L, fns);
  return 1;
}

/*
** duetmod.c — the duet module itself (require "duet"): duet.runtime,
** duet.explore, duet.excepthook, the runtimes, and duet.core's shared
** values (duet.cancelled, duet.now...).
**
** Built in C for the reason rt is (threadsrt.c): a function that uses
** `duet` takes it to every thread it runs on, and a Lua module would make
** each new thread's state open package, search the path and run a file.
** Here decode.c opens it directly, and duet.core's values come on first
** use. lua/duet/init.lua hands the same table to require.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "duet.h"

static const char duet_key = 'd';         /* registry: this state's duet */
static const char hook_key = 'h';         /* registry: its excepthook */

/* The runtime modules, and the module that checks each one's options. */
static const char *const runtimes[][3] = {
  {"threads", "duet.threads", "duet.jitter"},
  {"coroutines", "duet.coroutines", "duet.coroutines.preempt"},
  {NULL, NULL, NULL}
};

/* duet.runtime([name [, options]]): the runtime named `name`, or by env
** DUET_RUNTIME, else "threads"; with `options`, those options put in
** force (seeded runs). */
static int mod_runtime(lua_State *L) {
  const char *name;
  int i;
  if (!lua_isnoneornil(L, 1) && lua_type(L, 1) != LUA_TSTRING)
    return luaL_error(L, "bad argument #1 to 'runtime' (string expected, got %s)",
                      duet_type_name(L, 1));
  if (!lua_isnoneornil(L, 2) && !lua_istable(L, 2))
    return luaL_error(L, "bad argument #2 to 'runtime' (table expected, got %s)",
                      duet_type_name(L, 2));
  name = lua_tostring(L, 1);
  if (name != NULL && strlen(name) != lua_rawlen(L, 1))
    return luaL_error(L, "bad argument #1 to 'runtime' (invalid runtime '%s')",
                      name);
  if (name == NULL) name = getenv("DUET_RUNTIME");
  if (name == NULL) name = "threads";
  for (i = 0; runtimes[i][0]; i++)
    if (strcmp(name, runtimes[i][0]) == 0) break;
  if (runtimes[i][0] == NULL)
    return luaL_error(L, "bad argument #1 to 'runtime' (invalid runtime '%s')",
                      name);
  lua_settop(L, 2);
  duet_require(L, runtimes[i][1]);
  if (!lua_isnil(L, 2)) {
    duet_require(L, runtimes[i][2]);
    lua_getfield(L, -1, "configure");
    lua_pushvalue(L, 2);
    lua_pushliteral(L, "runtime");
    lua_pushinteger(L, 2);
    lua_call(L, 3, 0);
    lua_pop(L, 1);
  }
  return 1;
}

/* duet.explore(fn [, options]): fn under one seed after another on the
** coroutines runtime with preemption; raises at the first seed where it
** fails (naming the seed). */
static int mod_explore(lua_State *L) {
  lua_settop(L, 2);
  duet_require(L, "duet.coroutines");
  duet_require(L, "duet.coroutines.preempt");
  lua_getfield(L, -1, "explore");
  lua_pushvalue(L, 1);
  lua_pushvalue(L, 2);
  lua_call(L, 2, LUA_MULTRET);
  return lua_gettop(L) - 4;
}

/* The default excepthook: called for an error that ends a thread (task)
** nobody is joining. */
static int default_excepthook(lua_State *L) {
  const char *name = "?", *text;
  size_t nlen = 1, tlen;
  lua_settop(L, 3);
  if (lua_toboolean(L, 1)) {
    lua_getfield(L, 1, "name");
    if (lua_toboolean(L, -1)) name = luaL_tolstring(L, -1, &nlen);
  }
  text = luaL_tolstring(L, lua_toboolean(L, 3) ? 3 : 2, &tlen);
  fputs("Exception in thread ", stderr);
  fwrite(name, 1, nlen, stderr);
  fputs(":\n", stderr);
  fwrite(text, 1, tlen, stderr);
  fputs("\n", stderr);
  fflush(stderr);
  return 0;
}

/* The fields that are duet.core's own. */
static const char *const core_fields[] = {
  "cancelled", "timeout", "broken_barrier", "broken_process", "now",
  "encode", "decode", NULL
};

/* __index of duet: the runtimes and duet.redis on first use (redis links
** hiredis), duet.excepthook, and duet.core's values, kept once read. */
static int mod_index(lua_State *L) {
  const char *k = duet_index_key(L);
  int i;
  if (k == NULL) return 0;
  if (strcmp(k, "excepthook") == 0) {
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &hook_key) == LUA_TNIL) {
      /* duet.core's field, so that a hook calling it on can move */
      duet_push_module(L);
      lua_getfield(L, -1, "default_excepthook");
    }
    return 1;
  }
  if (strcmp(k, "redis") == 0) {
    duet_require(L, "duet.redis");
    return 1;
  }
  for (i = 0; runtimes[i][0]; i++)
    if (strcmp(k, runtimes[i][0]) == 0) {
      duet_require(L, runtimes[i][1]);
      return 1;
    }
  for (i = 0; core_fields[i]; i++)
    if (strcmp(k, core_fields[i]) == 0) {
      duet_push_module(L);
      lua_getfield(L, -1, k);             /* not raw: opens its concept */
      lua_pushvalue(L, 2);
      lua_pushvalue(L, -2);
      lua_rawset(L, 1);
      return 1;
    }
  return 0;
}

/* Hand `hook` (at the top; nil: the default) to duet.core, which moves it
** into each thread that reports: a hook that cannot move serves this
** state's tasks only, and threads report with the default. */
static int set_core_hook(lua_State *L) {
  duet_push_module(L);
  lua_getfield(L, -1, "set_excepthook");
  lua_pushvalue(L, 1);
  lua_call(L, 1, 0);
  return 0;
}

/* duet.excepthook is replaceable from any state (nil restores the
** default); any other field is the user's. */
static int mod_newindex(lua_State *L) {
  const char *k = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : NULL;
  lua_settop(L, 3);
  if (k == NULL || strcmp(k, "excepthook") != 0) {
    lua_rawset(L, 1);
    return 0;
  }
  if (!lua_isnil(L, 3) && lua_type(L, 3) != LUA_TFUNCTION)
    return luaL_error(L, "bad argument #3 to '__newindex' (function expected, got %s)",
                      duet_type_name(L, 3));
  if (lua_tocfunction(L, 3) == default_excepthook) {
    lua_pushnil(L);
    lua_replace(L, 3);
  }
  lua_pushcfunction(L, set_core_hook);
  lua_pushvalue(L, 3);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {  /* it cannot move: the default */
    lua_pushcfunction(L, set_core_hook);
    lua_pushnil(L);
    lua_call(L, 1, 0);
  }
  lua_settop(L, 3);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &hook_key);
  return 0;
}

/* The opener of duet, for luaL_requiref and for init.lua. */
int duet_duet_module(lua_State *L) {
  static const luaL_Reg funcs[] = {
    {"runtime", mod_runtime}, {"explore", mod_explore}, {NULL, NULL}
  };
  if (duet_module_table(L, &duet_key, funcs, mod_index, mod_newindex)) {
    duet_note_entry(L, mod_runtime);
    duet_note_entry(L, mod_explore);
  }
  return 1;
}

/* duet's modules built in C, which a thread's state opens without package
** or a search of the path; duet.core's opener is known only at run time. */
static const luaL_Reg builtin[] = {
  {"duet", duet_duet_module}, {"duet.threads", duet_threads_module},
  {"duet.core", NULL}, {NULL, NULL}
};

lua_CFunction duet_builtin_opener(const char *name) {
  const luaL_Reg *b;
  for (b = builtin; b->name; b++)
    if (strcmp(name, b->name) == 0)
      return b->func ? b->func : duet_module_opener();
  return NULL;
}

void duet_preload_builtins(lua_State *L) {
  const luaL_Reg *b;
  for (b = builtin; b->name; b++) {
    lua_pushcfunction(L, duet_builtin_opener(b->name));
    lua_setfield(L, -2, b->name);
  }
}

/* The concept's names in duet.core: init.lua's way in, and the default
** hook (a module field: functions that call it can move). */
int duet_duetmod_open(lua_State *L) {
  lua_pushcfunction(L, duet_duet_module);
  lua_setfield(L, -2, "duet_module");
  lua_pushcfunction(L, default_excepthook);
  lua_setfield(L, -2, "default_excepthook");
  return 0;
}

/*
** util.c — the small helpers more than one concept needs: a function's
** code in C memory, a byte hash, an adaptive mutex, a message handler
** that keeps the traceback, and the "field 'x': T expected" errors of
** option tables. Nothing here knows any duet type.
*/
#include <stdlib.h>
#include <string.h>

#include "duet.h"

typedef struct Dump {                     /* lua_dump output, in C memory */
  char *p;
  size_t len, cap;
} Dump;

static int dump_to_c(lua_State *L, const void *p, size_t n, void *ud) {
  Dump *d = (Dump *)ud;
  (void)L;
  if (d->cap - d->len < n) {
    size_t cap = d->cap ? d->cap : 512;
    char *q;
    while (cap - d->len < n) cap *= 2;
    if ((q = (char *)realloc(d->p, cap)) == NULL) return 1;
    d->p = q;
    d->cap = cap;
  }
  memcpy(d->p + d->len, p, n);
  d->len += n;
  return 0;
}

char *duet_dump(lua_State *L, size_t *len) {
  Dump d = {NULL, 0, 0};
  if (lua_dump(L, dump_to_c, &d, 0) != 0) {
    free(d.p);
    return NULL;
  }
  *len = d.len;
  return d.p;
}

uint64_t duet_fnv1a(const void *p, size_t n) {
  const unsigned char *s = (const unsigned char *)p;
  uint64_t h = 0xcbf29ce484222325ULL;
  size_t i;
  for (i = 0; i < n; i++) h = (h ^ s[i]) * 0x100000001b3ULL;
  return h;
}

void duet_mutex_init_adaptive(pthread_mutex_t *mu) {
  pthread_mutexattr_t a;
  pthread_mutexattr_init(&a);
  pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ADAPTIVE_NP);
  pthread_mutex_init(mu, &a);
  pthread_mutexattr_destroy(&a);
}

int duet_keep_traceback(lua_State *L) {
  char **slot = (char **)lua_touserdata(L, lua_upvalueindex(1));
  luaL_traceback(L, L, luaL_tolstring(L, 1, NULL), 1);
  free(*slot);
  *slot = strdup(lua_tostring(L, -1));    /* NULL when out of memory */
  lua_settop(L, 1);
  return 1;
}

void duet_new_weak(lua_State *L, const char *mode) {
  lua_newtable(L);
  lua_createtable(L, 0, 1);
  lua_pushstring(L, mode);
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
}

void duet_weak_at(lua_State *L, int t, const void *key, const char *mode) {
  t = lua_absindex(L, t);
  if (lua_rawgetp(L, t, key) == LUA_TTABLE) return;
  lua_pop(L, 1);
  duet_new_weak(L, mode);
  lua_pushvalue(L, -1);
  lua_rawsetp(L, t, key);
}

const char *duet_index_key(lua_State *L) {
  const char *k;
  size_t len;
  if (lua_type(L, 2) != LUA_TSTRING) return NULL;
  k = lua_tolstring(L, 2, &len);
  if (strlen(k) != len) return NULL;
  lua_settop(L, 2);
  return k;
}

void duet_require(lua_State *L, const char *name) {
  lua_getglobal(L, "require");
  lua_pushstring(L, name);
  lua_call(L, 1, 1);
}

int duet_module_table(lua_State *L, const void *key, const luaL_Reg *funcs,
                      lua_CFunction index, lua_CFunction newindex) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, key) == LUA_TTABLE) return 0;
  lua_pop(L, 1);
  lua_newtable(L);
  luaL_setfuncs(L, funcs, 0);
  lua_createtable(L, 0, 2);
  lua_pushcfunction(L, index);
  lua_setfield(L, -2, "__index");
  if (newindex) {
    lua_pushcfunction(L, newindex);
    lua_setfield(L, -2, "__newindex");
  }
  lua_setmetatable(L, -2);
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, key);
  return 1;
}

void duet_note_entry(lua_State *L, lua_CFunction f) {
  luaL_getsubtable(L, LUA_REGISTRYINDEX, "duet.entries");
  lua_pushcfunction(L, f);
  lua_pushboolean(L, 1);
  lua_rawset(L, -3);
  lua_pop(L, 1);
}

const char *duet_type_name(lua_State *L, int idx) {
  if (luaL_getmetafield(L, idx, "__name") == LUA_TSTRING)
    return lua_tostring(L, -1);
  if (lua_type(L, idx) == LUA_TLIGHTUSERDATA) return "light userdata";
  return luaL_typename(L, idx);
}

int duet_field_error(lua_State *L, int arg, const char *name,
                     const char *want) {
  int fl = lua_type(L, -1) == LUA_TNUMBER && strcmp(want, "integer") == 0;
  return luaL_argerror(L, arg, lua_pushfstring(L, "field '%s': %s expected, "
                       "got %s", name, want, fl ? "float"
                                                : duet_type_name(L, -1)));
}

lua_Integer duet_list_len(lua_State *L, int idx) {
  lua_Integer n;
  int isint = 0;
  int t = lua_getfield(L, idx, "n");
  if (t == LUA_TNIL) {
    lua_pop(L, 1);
    return luaL_len(L, idx);
  }
  n = lua_tointegerx(L, -1, &isint);
  if (t != LUA_TNUMBER || !isint || n < 0)
    luaL_argerror(L, idx, "field 'n' must be a non-negative integer");
  lua_pop(L, 1);
  return n;
}

/*
** object.c — the shared-object base.
** A native object lives in C with an atomic reference count. Each Lua state
** that holds it has exactly one proxy userdata for it (kept in a weak table
** in the registry), so objects compare equal with == inside a state; the
** proxy's __gc drops its reference.
*/
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include "duet.h"

typedef duet_Proxy Proxy;
#define SEAL(p) DUET_SEAL(p)

static const char proxies_key = 'p';      /* registry: object -> proxy */
const char duet_seal_key = 's';           /* its address seals proxies */

void duet_retain(duet_Object *o) {
  atomic_fetch_add_explicit(&o->refs, 1, memory_order_relaxed);
}

void duet_release(duet_Object *o) {
  if (atomic_fetch_sub_explicit(&o->refs, 1, memory_order_acq_rel) == 1)
    o->type->destroy(o);
}

/* ------------------------------------------------------ the module table */

static const char module_key = 'm';       /* registry: the duet.core table */
static const char opened_key = 'o';       /* registry: opener -> true */
static _Atomic(lua_CFunction) module_opener;

void duet_module_set(lua_State *L, lua_CFunction opener) {
  atomic_store_explicit(&module_opener, opener, memory_order_release);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &module_key);
}

lua_CFunction duet_module_opener(void) {
  return atomic_load_explicit(&module_opener, memory_order_acquire);
}

int duet_get_module(lua_State *L) {
  return lua_rawgetp(L, LUA_REGISTRYINDEX, &module_key);
}

void duet_push_module(lua_State *L) {
  if (duet_get_module(L) == LUA_TTABLE) return;
  lua_pop(L, 1);                          /* a state that never required it */
  luaL_requiref(L, "duet.core", duet_module_opener(), 0);
  lua_pop(L, 1);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &module_key);
}

int duet_open_concept(lua_State *L, lua_CFunction open) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &opened_key) == LUA_TNIL) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &opened_key);
  }
  lua_pushcfunction(L, open);             /* a light C function: its address */
  if (lua_rawget(L, -2) != LUA_TNIL) {
    lua_pop(L, 2);
    return 0;
  }
  lua_pop(L, 1);
  lua_pushcfunction(L, open);
  lua_pushboolean(L, 1);
  lua_rawset(L, -3);                      /* marked first: openers nest */
  lua_pop(L, 1);
  duet_push_module(L);
  open(L);
  lua_pop(L, 1);
  return 1;
}

/* Every type some state of the process has made, so that a method that
** travels by its type's name ("@duet.Queue") can be opened in a state that
** has not made that type yet. Appended under a mutex, never removed. */
static const duet_Type **known_types;
static int nknown, known_cap;
static pthread_mutex_t known_mu = PTHREAD_MUTEX_INITIALIZER;

/* Room for one more known type; 0: no memory. Called with known_mu. */
static int known_room(void) {
  int cap = known_cap ? 2 * known_cap : 32;
  const duet_Type **grown;
  if (nknown < known_cap) return 1;
  grown = (const duet_Type **)realloc((void *)known_types,
                                      (size_t)cap * sizeof *grown);
  if (grown == NULL) return 0;
  known_types = grown;
  known_cap = cap;
  return 1;
}

static void know_type(lua_State *L, const duet_Type *t) {
  int i, ok = 1;
  pthread_mutex_lock(&known_mu);
  for (i = 0; i < nknown && known_types[i] != t; i++) {}
  if (i == nknown && (ok = known_room()) != 0) known_types[nknown++] = t;
  pthread_mutex_unlock(&known_mu);
  if (!ok) luaL_error(L, "not enough memory");
}

int duet_open_type(lua_State *L, const char *name) {
  const duet_Type *t = NULL;
  int i;
  pthread_mutex_lock(&known_mu);
  for (i = 0; i < nknown && t == NULL; i++)
    if (strcmp(known_types[i]->name, name) == 0) t = known_types[i];
  pthread_mutex_unlock(&known_mu);
  if (t == NULL) return 0;
  duet_open_concept(L, t->open);
  return 1;
}

/* ------------------------------------------------------------- proxies */

/* Push the proxy cache; a state that never required duet.core (a thread
** whose target captured none of it) gets the module opened now. */
static void push_cache(lua_State *L) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &proxies_key) == LUA_TNIL) {
    lua_pop(L, 1);
    duet_push_module(L);
    lua_pop(L, 1);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &proxies_key);
  }
}

/* Push type t's metatable, opening the concept that defines it if this
** state has not made it yet; 1 if it was opened now. */
static int push_type_metatable(lua_State *L, const duet_Type *t) {
  if (luaL_getmetatable(L, t->name) != LUA_TNIL) return 0;
  lua_pop(L, 1);
  duet_open_concept(L, t->open);
  luaL_getmetatable(L, t->name);
  return 1;
}

/* A new empty proxy, in place of the metatable on top, which it wears. */
static Proxy *new_proxy(lua_State *L) {
  Proxy *p = (Proxy *)lua_newuserdatauv(L, sizeof(Proxy), 0);
  p->o = NULL;
  p->seal = SEAL(p);
  lua_insert(L, -2);
  lua_setmetatable(L, -2);
  return p;
}

static void cache_proxy(lua_State *L, duet_Object *o) {
  push_cache(L);
  lua_pushvalue(L, -2);
  lua_rawsetp(L, -2, o);
  lua_pop(L, 1);
}

void *duet_new_object(lua_State *L, const duet_Type *t, size_t size) {
  Proxy *p;
  duet_Object *o;
  push_type_metatable(L, t);
  /* the proxy first, empty, so a failed allocation leaves nothing behind */
  p = new_proxy(L);
  o = (duet_Object *)calloc(1, size);
  if (o == NULL) luaL_error(L, "not enough memory");
  atomic_init(&o->refs, 1);
  o->type = t;
  p->o = o;
  cache_proxy(L, o);
  return o;
}

/* Push o's proxy if this state has one; 0 (nothing pushed) if not. */
static int push_cached(lua_State *L, duet_Object *o) {
  push_cache(L);
  if (lua_rawgetp(L, -1, o) == LUA_TUSERDATA) {
    lua_remove(L, -2);
    return 1;
  }
  lua_pop(L, 2);
  return 0;
}

void duet_push_object(lua_State *L, duet_Object *o) {
  Proxy *p;
  if (push_cached(L, o)) return;
  /* the type before the proxy: the concept's opener may make o's proxy
  ** (an error value is a module field), and a state has one per object */
  if (push_type_metatable(L, o->type) && push_cached(L, o)) {
    lua_remove(L, -2);
    return;
  }
  if (o->type->push_meta != NULL) {       /* its own, not the type's */
    lua_pop(L, 1);
    o->type->push_meta(L, o);
  }
  p = new_proxy(L);
  duet_retain(o);
  p->o = o;
  cache_proxy(L, o);
}

/* By the seal and the type, not luaL_checkudata: a bounded Queue's proxy
** wears a metatable of its maxsize (queue.c), not the registry's. */
duet_Object *duet_check_object(lua_State *L, int arg, const duet_Type *t) {
  Proxy *p = duet_sealed(L, arg);
  if (p != NULL && p->o != NULL && p->o->type == t) return p->o;
  if (p != NULL && p->o == NULL && luaL_getmetafield(L, arg, "__name")
      == LUA_TSTRING && strcmp(lua_tostring(L, -1), t->name) == 0)
    luaL_argerror(L, arg, "object is collected");
  luaL_typeerror(L, arg, t->name);
  return NULL;
}

duet_Object *duet_to_object(lua_State *L, int idx) {
  Proxy *p = (Proxy *)lua_touserdata(L, idx);
  duet_Object *o;
  if (p == NULL || lua_rawlen(L, idx) != sizeof(Proxy)
      || !lua_getmetatable(L, idx))
    return NULL;
  o = p->o;
  /* a duet metatable carries __duet = true */
  if (lua_getfield(L, -1, "__duet") != LUA_TBOOLEAN) o = NULL;
  lua_pop(L, 2);
  return o;
}

static int object_gc(lua_State *L) {
  Proxy *p = (Proxy *)lua_touserdata(L, 1);
  if (p != NULL && p->o != NULL) {
    duet_Object *o = p->o;
    p->o = NULL;
    duet_release(o);
  }
  return 0;
}

static int object_tostring(lua_State *L) {
  Proxy *p = (Proxy *)lua_touserdata(L, 1);
  const char *name;
  char desc[128];
  lua_getmetatable(L, 1);
  lua_getfield(L, -1, "__name");
  name = lua_tostring(L, -1);
  if (p->o == NULL)
    lua_pushfstring(L, "%s (collected): %p", name, (void *)p);
  else if (p->o->type->describe != NULL) {
    desc[0] = '\0';
    p->o->type->describe(p->o, desc, sizeof desc);
    lua_pushfstring(L, "%s (%s): %p", name, desc, (void *)p->o);
  }
  else
    lua_pushfstring(L, "%s: %p", name, (void *)p->o);
  return 1;
}

/* __newindex of duet's objects (SharedTable and Thread have their own):
** their fields are read-only. A key that reads as something (a field, a
** method), or that the metatable's __fields lists (fields that read nil in
** some states, such as a traceback), is a read-only field; any other key
** names no field. */
int duet_newindex(lua_State *L) {
  const char *key;
  int known = 0;
  lua_settop(L, 2);
  key = luaL_tolstring(L, 2, NULL);
  if (luaL_getmetafield(L, 1, "__fields") == LUA_TTABLE) {
    lua_pushvalue(L, 2);
    known = lua_rawget(L, -2) != LUA_TNIL;
  }
  lua_settop(L, 3);
  if (!known && luaL_getmetafield(L, 1, "__index") != LUA_TNIL) {
    lua_pop(L, 1);
    lua_pushvalue(L, 2);
    known = lua_gettable(L, 1) != LUA_TNIL;
  }
  if (known) return luaL_error(L, "field '%s' is read-only", key);
  lua_settop(L, 3);
  luaL_getmetafield(L, 1, "__name");
  return luaL_error(L, "cannot set field '%s' of %s", key, lua_tostring(L, -1));
}

/* __index of a type with fields; upvalues: its methods, its fields (name
** -> the duet_Field), the type. Methods first: they are the hot path. */
static int field_index(lua_State *L) {
  const duet_Field *f;
  lua_settop(L, 2);
  lua_pushvalue(L, 2);
  if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL) return 1;
  lua_pushvalue(L, 2);
  if (lua_rawget(L, lua_upvalueindex(2)) != LUA_TLIGHTUSERDATA) return 1;
  f = (const duet_Field *)lua_touserdata(L, -1);
  f->get(L, duet_check_object(L, 1, (const duet_Type *)lua_touserdata(
                                        L, lua_upvalueindex(3))));
  return 1;
}

/* The methods table on top (the metatable below it) becomes field_index
** over it and t's fields; __fields (the same names) is set for
** duet_newindex. */
static void push_field_index(lua_State *L, const duet_Type *t) {
  const duet_Field *f;
  lua_newtable(L);
  for (f = t->fields; f->name; f++) {
    lua_pushlightuserdata(L, (void *)f);
    lua_setfield(L, -2, f->name);
  }
  lua_pushvalue(L, -1);
  lua_setfield(L, -4, "__fields");
  lua_pushlightuserdata(L, (void *)t);
  lua_pushcclosure(L, field_index, 3);
}

static const char types_key = 't';       /* registry: type names, a set */

int duet_new_type(lua_State *L, const duet_Type *t, const luaL_Reg *methods,
                  const luaL_Reg *metamethods) {
  know_type(L, t);                        /* first: it may raise */
  if (!luaL_newmetatable(L, t->name)) {   /* already made in this state */
    lua_pop(L, 1);
    return 0;
  }
  /* listed so that transfer.c can move these methods by name */
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &types_key) == LUA_TNIL) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &types_key);
  }
  lua_pushboolean(L, 1);
  lua_setfield(L, -2, t->name);
  lua_pop(L, 1);
  lua_pushboolean(L, 1);
  lua_setfield(L, -2, "__duet");
  lua_pushcfunction(L, object_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, object_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushcfunction(L, duet_newindex);
  lua_setfield(L, -2, "__newindex");
  if (methods != NULL || t->fields != NULL) {
    lua_newtable(L);
    if (methods) luaL_setfuncs(L, methods, 0);  /* light: no closures */
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "__methods");
    if (t->fields != NULL) push_field_index(L, t);
    lua_setfield(L, -2, "__index");
  }
  if (metamethods != NULL) luaL_setfuncs(L, metamethods, 0);
  lua_pop(L, 1);
  return 1;
}

void duet_push_types(lua_State *L) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &types_key);
}

/* ---------------------------------------------------------- error values */

typedef struct ErrorValue {
  duet_Object base;
  const char *text;
} ErrorValue;

static void error_destroy(duet_Object *o) { (void)o; }  /* static storage */

static const duet_Type error_type = {"duet.Error", error_destroy, NULL,
                                     duet_error_open, NULL, NULL, NULL};

static ErrorValue errors[] = {
  {{1, &error_type}, "duet.cancelled"},
  {{1, &error_type}, "duet.timeout"},
  {{1, &error_type}, "duet.broken_barrier"},
  {{1, &error_type}, "duet.broken_process"},
};

int duet_error_index(const duet_Object *o) {
  int i;
  for (i = 0; i < (int)(sizeof errors / sizeof errors[0]); i++)
    if (o == &errors[i].base) return i;
  return -1;
}

void duet_push_error(lua_State *L, int which) {
  duet_push_object(L, &errors[which].base);
}

int duet_raise(lua_State *L, int which) {
  duet_push_error(L, which);
  return lua_error(L);
}

static int error_tostring(lua_State *L) {
  ErrorValue *e = (ErrorValue *)duet_check_object(L, 1, &error_type);
  lua_pushstring(L, e->text);
  return 1;
}

static const luaL_Reg error_meta[] = {
  {"__tostring", error_tostring},
  {NULL, NULL}
};

int duet_object_open(lua_State *L) {
  duet_weak_at(L, LUA_REGISTRYINDEX, &proxies_key, "v");  /* proxy cache */
  lua_pop(L, 1);
  return 0;
}

/* The error values: opened on first use (duet.cancelled, or a raise), as
** most states never meet one. */
int duet_error_open(lua_State *L) {
  static const char *const names[] = {"cancelled", "timeout",
                                      "broken_barrier", "broken_process"};
  size_t i;
  duet_new_type(L, &error_type, NULL, error_meta);
  for (i = 0; i < sizeof errors / sizeof errors[0]; i++) {
    duet_push_error(L, (int)i);
    lua_setfield(L, -2, names[i]);
  }
  return 0;
}

/*
** pool.c — the OS threads that run duet threads, and their fresh states.
**
** A finished OS thread parks here and takes the next job, with a fresh Lua
** state it prepared while idle, so a spawn is one hand-off rather than a
** pthread_create plus a state build. Every job still gets a new state.
** New states open no standard library at once: each (base, package and
** string too) opens on first use, which halves their cost.
*/
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lualib.h"
#include "duet.h"

typedef struct PoolThread {
  pthread_cond_t cv;
  duet_Job *job;                          /* set under pool_mu */
  size_t stack;
  lua_State *fresh;                       /* prepared while parked */
  struct PoolThread *next;
} PoolThread;

static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static PoolThread *idle;
static int nidle;
static size_t stack_size = DUET_DEFAULT_STACK;  /* for new OS threads */

#define MAX_IDLE 64
#define IDLE_SECONDS 10.0

size_t duet_pool_stack(size_t set) {
  size_t old;
  pthread_mutex_lock(&pool_mu);
  old = stack_size;
  if (set) stack_size = set;
  pthread_mutex_unlock(&pool_mu);
  return old;
}

/* ---------------------------------------------------------- fresh states */

static int open_debug(lua_State *L);
static int open_package(lua_State *L);

/* Libraries a new state opens on first use: opening all of them would
** double the cost and the memory of a thread that needs few. */
static const luaL_Reg lazy_libs[] = {
  {LUA_LOADLIBNAME, open_package},
  {LUA_COLIBNAME, duet_open_coroutine}, {LUA_TABLIBNAME, luaopen_table},
  {LUA_IOLIBNAME, luaopen_io}, {LUA_OSLIBNAME, luaopen_os},
  {LUA_MATHLIBNAME, luaopen_math}, {LUA_UTF8LIBNAME, luaopen_utf8},
  {LUA_DBLIBNAME, open_debug}, {LUA_STRLIBNAME, luaopen_string},
  {NULL, NULL}
};

/* ------------------------------------------------- string, opened lazily */

/* Until string opens, strings have a stand-in metatable with the real one's
** fields: the first method call or arithmetic on a string opens string
** (whose luaopen_string sets the real metatable) and does it again. */
static int lazy_string_index(lua_State *L);

static int string_is_lazy(lua_State *L) {
  int lazy = 0;
  lua_pushliteral(L, "");
  if (lua_getmetatable(L, -1)) {
    lua_pushliteral(L, "__index");
    lua_rawget(L, -2);
    lazy = lua_tocfunction(L, -1) == lazy_string_index;
    lua_pop(L, 2);
  }
  lua_pop(L, 1);
  return lazy;
}

static void open_string_now(lua_State *L) {
  if (!string_is_lazy(L)) return;
  luaL_requiref(L, LUA_STRLIBNAME, luaopen_string, 1);
  lua_pop(L, 1);
  if (string_is_lazy(L)) {                /* package.loaded.string was set */
    luaopen_string(L);
    lua_pop(L, 1);
  }
}

static int lazy_string_index(lua_State *L) {
  open_string_now(L);
  lua_settop(L, 2);
  lua_gettable(L, 1);
  return 1;
}

static int lazy_string_arith(lua_State *L, int op) {
  open_string_now(L);
  lua_settop(L, 2);
  if (op == LUA_OPUNM) lua_pop(L, 1);
  lua_arith(L, op);
  return 1;
}

#define LAZY_ARITH(name, op) \
  static int name(lua_State *L) { return lazy_string_arith(L, op); }
LAZY_ARITH(lazy_add, LUA_OPADD)
LAZY_ARITH(lazy_sub, LUA_OPSUB)
LAZY_ARITH(lazy_mul, LUA_OPMUL)
LAZY_ARITH(lazy_mod, LUA_OPMOD)
LAZY_ARITH(lazy_pow, LUA_OPPOW)
LAZY_ARITH(lazy_div, LUA_OPDIV)
LAZY_ARITH(lazy_idiv, LUA_OPIDIV)
LAZY_ARITH(lazy_unm, LUA_OPUNM)

static const luaL_Reg lazy_string_meta[] = {
  {"__index", lazy_string_index}, {"__add", lazy_add}, {"__sub", lazy_sub},
  {"__mul", lazy_mul}, {"__mod", lazy_mod}, {"__pow", lazy_pow},
  {"__div", lazy_div}, {"__idiv", lazy_idiv}, {"__unm", lazy_unm},
  {NULL, NULL}
};

/* --------------------------------------------------- base, opened lazily */

static int base_getmetatable(lua_State *L);
static int base_setmetatable(lua_State *L);
static int lazy_global(lua_State *L);

/* Until base opens, _G's __index is lazy_base: the first miss of any name
** opens it (not a list of its names, which change between Lua versions),
** then lazy_global takes over. */
static int lazy_base(lua_State *L);

/* Open base into _G (at g), keeping every global set before: luaopen_base
** would overwrite a user's `print` or `_G`. */
static void open_base_at(lua_State *L, int g) {
  int snap;
  lua_createtable(L, 0, 4);
  snap = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, g)) {
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, snap);
  }
  lua_pushcfunction(L, luaopen_base);
  lua_pushliteral(L, LUA_GNAME);
  lua_call(L, 1, 1);
  lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  if (lua_getfield(L, -1, LUA_GNAME) == LUA_TNIL) {  /* as luaL_requiref */
    lua_pushvalue(L, -3);
    lua_setfield(L, -3, LUA_GNAME);       /* not raw: transfer.c's hook */
  }
  lua_pop(L, 3);
  lua_pushcfunction(L, base_getmetatable);
  lua_setfield(L, g, "getmetatable");
  lua_pushcfunction(L, base_setmetatable);
  lua_setfield(L, g, "setmetatable");
  lua_pushnil(L);
  while (lua_next(L, snap)) {             /* the user's globals again */
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, g);
  }
  lua_pop(L, 1);
}

/* Open base now if it is not open yet (in a state made here). */
static void open_base_now(lua_State *L) {
  lua_pushglobaltable(L);
  if (lua_getmetatable(L, -1)) {
    lua_pushliteral(L, "__index");
    lua_rawget(L, -2);
    if (lua_tocfunction(L, -1) == lazy_base) {
      lua_pop(L, 1);
      lua_pushliteral(L, "__index");
      lua_pushcfunction(L, lazy_global);
      lua_rawset(L, -3);                  /* before: no second opening */
      open_base_at(L, lua_gettop(L) - 1);
      lua_pushnil(L);
    }
    lua_pop(L, 2);
  }
  lua_pop(L, 1);
}

static int lazy_base(lua_State *L) {
  if (lua_type(L, 2) != LUA_TSTRING) return 0;
  open_base_now(L);
  lua_settop(L, 2);
  lua_pushvalue(L, 2);
  if (lua_rawget(L, 1) != LUA_TNIL) return 1;
  lua_pop(L, 1);
  return lazy_global(L);
}

/* package.preload._G: for require "_G" (decode.c's push_module). */
static int preload_base(lua_State *L) {
  open_base_now(L);
  lua_pushglobaltable(L);
  return 1;
}

/* __index of _G: the first use of `math` (say) opens it; `require` is
** package's. */
static int lazy_global(lua_State *L) {
  const char *k = lua_tostring(L, 2);
  const luaL_Reg *lib;
  if (k == NULL) return 0;
  if (strcmp(k, "require") == 0) {        /* unless package is open */
    lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    if (lua_getfield(L, -1, LUA_LOADLIBNAME) == LUA_TTABLE) return 0;
    luaL_requiref(L, LUA_LOADLIBNAME, open_package, 1);
    lua_pushliteral(L, "require");
    lua_rawget(L, 1);
    return 1;
  }
  for (lib = lazy_libs; lib->name; lib++)
    if (strcmp(k, lib->name) == 0) {
      luaL_requiref(L, lib->name, lib->func, 1);
      return 1;
    }
  return 0;
}

/* A user who asks for _G's metatable, or sets one, gets the plain _G of
** any Lua state: the lazy libraries still unopened open now and the lazy
** metatable goes, so setmetatable(_G, nil) or strict.lua's own metatable
** cannot make `math` nil. */
static void open_lazy_now(lua_State *L) {
  const luaL_Reg *lib;
  open_base_now(L);
  lua_pushglobaltable(L);
  if (lua_getmetatable(L, -1)) {
    lua_getfield(L, -1, "__index");
    if (lua_tocfunction(L, -1) == lazy_global) {
      for (lib = lazy_libs; lib->name; lib++) {
        luaL_requiref(L, lib->name, lib->func, 1);
        lua_pop(L, 1);
      }
      lua_pushnil(L);
      lua_setmetatable(L, -4);
    }
    lua_pop(L, 2);
  }
  lua_pop(L, 1);
}

static int is_globals(lua_State *L, int idx) {
  int g;
  lua_pushglobaltable(L);
  g = lua_rawequal(L, idx, -1);
  lua_pop(L, 1);
  return g;
}

/* base's getmetatable and setmetatable, as lbaselib has them, but seeing
** _G as plain first. */
static int base_getmetatable(lua_State *L) {
  luaL_checkany(L, 1);
  if (is_globals(L, 1)) open_lazy_now(L);
  else if (lua_type(L, 1) == LUA_TSTRING) open_string_now(L);
  if (!lua_getmetatable(L, 1)) {
    lua_pushnil(L);
    return 1;
  }
  luaL_getmetafield(L, 1, "__metatable");
  return 1;                               /* __metatable, or the metatable */
}

static int base_setmetatable(lua_State *L) {
  int t = lua_type(L, 2);
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_argexpected(L, t == LUA_TNIL || t == LUA_TTABLE, 2, "nil or table");
  if (is_globals(L, 1)) open_lazy_now(L);
  if (luaL_getmetafield(L, 1, "__metatable") != LUA_TNIL)
    return luaL_error(L, "cannot change a protected metatable");
  lua_settop(L, 2);
  lua_setmetatable(L, 1);
  return 1;
}

/* debug's, as ldblib has them (no __metatable), the same way. */
static int debug_getmetatable(lua_State *L) {
  luaL_checkany(L, 1);
  if (is_globals(L, 1)) open_lazy_now(L);
  else if (lua_type(L, 1) == LUA_TSTRING) open_string_now(L);
  if (!lua_getmetatable(L, 1)) lua_pushnil(L);
  return 1;
}

static int debug_setmetatable(lua_State *L) {
  int t = lua_type(L, 2);
  luaL_argexpected(L, t == LUA_TNIL || t == LUA_TTABLE, 2, "nil or table");
  if (is_globals(L, 1)) open_lazy_now(L);
  else if (lua_type(L, 1) == LUA_TSTRING) open_string_now(L);
  lua_settop(L, 2);
  lua_setmetatable(L, 1);
  return 1;
}

static int open_debug(lua_State *L) {
  luaopen_debug(L);
  lua_pushcfunction(L, debug_getmetatable);
  lua_setfield(L, -2, "getmetatable");
  lua_pushcfunction(L, debug_setmetatable);
  lua_setfield(L, -2, "setmetatable");
  return 1;
}

/* ------------------------------------------------ package, opened lazily */

/* Registry fields: a thread's package.path and cpath until package opens. */
#define PATH_KEY "duet.path"
#define CPATH_KEY "duet.cpath"

/* Set package[field] (the table at pkg) from the registry's key, if set,
** and clear that. */
static void apply_path(lua_State *L, int pkg, const char *field,
                       const char *key) {
  if (lua_getfield(L, LUA_REGISTRYINDEX, key) == LUA_TLIGHTUSERDATA) {
    lua_pushstring(L, (const char *)lua_touserdata(L, -1));
    lua_setfield(L, pkg, field);
    lua_pop(L, 1);
    lua_pushnil(L);
    lua_setfield(L, LUA_REGISTRYINDEX, key);
  }
  else lua_pop(L, 1);
}

/* Lua's package library, with the compiled-module searcher and the paths
** the thread's creator had. */
static int open_package(lua_State *L) {
  const luaL_Reg *lib;
  int pkg;
  /* what require finds without a search: the libraries not open yet,
  ** duet, duet.core and duet.threads (filled only now: a thread may never
  ** require) */
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  for (lib = lazy_libs; lib->name; lib++) {
    lua_pushcfunction(L, lib->func);
    lua_setfield(L, -2, lib->name);
  }
  lua_pushcfunction(L, preload_base);
  lua_setfield(L, -2, LUA_GNAME);
  duet_preload_builtins(L);
  lua_pop(L, 1);
  luaopen_package(L);
  pkg = lua_gettop(L);
  duet_modcache_install(L, pkg);
  apply_path(L, pkg, "path", PATH_KEY);
  apply_path(L, pkg, "cpath", CPATH_KEY);
  return 1;
}

void duet_set_paths(lua_State *L, const char *path, const char *cpath) {
  lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  if (lua_getfield(L, -1, LUA_LOADLIBNAME) == LUA_TTABLE) {  /* open */
    lua_pushstring(L, path);
    lua_setfield(L, -2, "path");
    lua_pushstring(L, cpath);
    lua_setfield(L, -2, "cpath");
  }
  else {                                  /* no copy: they outlive L */
    lua_pushlightuserdata(L, (void *)path);
    lua_setfield(L, LUA_REGISTRYINDEX, PATH_KEY);
    lua_pushlightuserdata(L, (void *)cpath);
    lua_setfield(L, LUA_REGISTRYINDEX, CPATH_KEY);
  }
  lua_pop(L, 2);
}

void duet_push_paths(lua_State *L) {
  if (lua_getfield(L, LUA_REGISTRYINDEX, PATH_KEY) == LUA_TLIGHTUSERDATA) {
    lua_pushglobaltable(L);               /* package not open yet */
    lua_pushliteral(L, LUA_LOADLIBNAME);
    if (lua_rawget(L, -2) == LUA_TNIL) {  /* nor a user's `package` */
      lua_pop(L, 2);
      lua_pushstring(L, (const char *)lua_touserdata(L, -1));
      lua_replace(L, -2);
      lua_getfield(L, LUA_REGISTRYINDEX, CPATH_KEY);
      lua_pushstring(L, (const char *)lua_touserdata(L, -1));
      lua_replace(L, -2);
      return;
    }
    lua_pop(L, 2);
  }
  lua_pop(L, 1);
  lua_getglobal(L, LUA_LOADLIBNAME);
  lua_getfield(L, -1, "path");
  lua_getfield(L, -2, "cpath");
  lua_remove(L, -3);
}

static int open_state(lua_State *L) {
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_pop(L, 1);
  lua_pushliteral(L, "");                 /* ("x"):rep() opens string */
  luaL_newlibtable(L, lazy_string_meta);
  luaL_setfuncs(L, lazy_string_meta, 0);
  lua_setmetatable(L, -2);
  lua_pop(L, 1);
  lua_pushglobaltable(L);
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, lazy_base);
  lua_setfield(L, -2, "__index");
  lua_setmetatable(L, -2);
  return 0;
}

static lua_State *new_state(void) {
  lua_State *L = luaL_newstate();
  if (L == NULL) return NULL;
  lua_pushcfunction(L, open_state);
  if (lua_pcall(L, 0, 0, 0) != LUA_OK) {  /* out of memory */
    lua_close(L);
    return NULL;
  }
  return L;
}

/* ------------------------------------------------------------- the pool */

/* Park `w` until a job comes; 0 when it should exit instead. Called and
** returns with pool_mu held. */
static int park(PoolThread *w) {
  while (w->job == NULL) {
    struct timespec ts;
    duet_timespec(duet_now() + IDLE_SECONDS, &ts);
    if (pthread_cond_timedwait(&w->cv, &pool_mu, &ts) == ETIMEDOUT
        && w->job == NULL) {
      PoolThread **p = &idle;                 /* leave the idle list */
      while (*p != w) p = &(*p)->next;
      *p = w->next;
      nidle--;
      return 0;
    }
  }
  return 1;
}

static void *worker_main(void *arg) {
  PoolThread *w = (PoolThread *)arg;
  for (;;) {
    duet_Job *job = w->job;
    lua_State *L = w->fresh ? w->fresh : new_state();
    int more;
    w->fresh = NULL;
    job->run(L, job);                     /* L is NULL when out of memory */
    /* Available again at once: closing the used state and preparing the
    ** next happen while parked, off the next spawn's path. */
    pthread_mutex_lock(&pool_mu);
    w->job = NULL;
    more = nidle < MAX_IDLE && w->stack == stack_size;
    if (more) {
      w->next = idle;
      idle = w;
      nidle++;
    }
    pthread_mutex_unlock(&pool_mu);
    if (L) lua_close(L);
    job->done(job);
    if (!more) break;
    L = new_state();
    pthread_mutex_lock(&pool_mu);
    w->fresh = L;                         /* a job may have come meanwhile */
    more = park(w);
    pthread_mutex_unlock(&pool_mu);
    if (!more) break;
  }
  if (w->fresh) lua_close(w->fresh);
  pthread_cond_destroy(&w->cv);
  free(w);
  return NULL;
}

int duet_pool_start(duet_Job *job) {
  PoolThread *w, **p;
  pthread_attr_t attr;
  pthread_t tid;
  int r;
  pthread_mutex_lock(&pool_mu);
  for (p = &idle; *p && (*p)->stack != stack_size; p = &(*p)->next) {}
  if ((w = *p) != NULL) {                 /* a parked worker takes it */
    *p = w->next;
    nidle--;
    w->job = job;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&pool_mu);
    return 0;
  }
  w = (PoolThread *)calloc(1, sizeof *w);
  if (w == NULL) {
    pthread_mutex_unlock(&pool_mu);
    return ENOMEM;
  }
  w->job = job;
  w->stack = stack_size;
  pthread_mutex_unlock(&pool_mu);
  duet_cond_init(&w->cv);
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, w->stack);
  r = pthread_create(&tid, &attr, worker_main, w);
  pthread_attr_destroy(&attr);
  if (r != 0) {
    pthread_cond_destroy(&w->cv);
    free(w);
  }
  return r;
}

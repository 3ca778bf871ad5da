/*
** taskfn.c — a task's function on its way to an executor's worker.
**
** Moving a function costs a lua_load on arrival, far more than running a
** tiny task, so a function's code travels apart from its upvalue values:
**   - the code (lua_dump bytes, an FnCode) is made once per function value
**     in the submitting state (a weak-keyed cache) and loaded once per
**     worker state, which keeps the loaded closure keyed by those bytes;
**   - the upvalue values are encoded with each submit and set on the
**     cached closure before each run, so every run starts from the values
**     of its own submit: a copy, exactly as if the whole function moved.
** That split is exact unless a function reachable from the upvalues shares
** an upvalue with fn itself (the whole encoding keeps such sharing), or fn
** itself is reachable other than as a direct upvalue: then, or when the
** values are too big to check cheaply, or hold something that cannot move
** (so that duet_encode names it), the whole function travels and is
** decoded for that run alone.
**
** One caveat of reusing a closure: an inner function a task creates and
** keeps in the worker's globals shares the cached closure's upvalues, which
** the next run of that code sets afresh.
*/
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "transfer.h"

struct duet_FnCode {
  atomic_long refs;
  uint64_t hash;
  size_t len;
  int nups;
  int env;                                /* the _ENV upvalue; 0: none */
  char data[];                            /* lua_dump bytes */
};

typedef duet_FnCode FnCode;

static void code_release(FnCode *c) {
  if (c && atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1)
    free(c);
}

/* The code of the Lua function at idx, with its debug info (tracebacks). */
static FnCode *code_new(lua_State *L, int idx) {
  char *code;
  size_t len = 0;
  FnCode *c;
  const char *name;
  int n = 0, env = 0;
  lua_pushvalue(L, idx);
  code = duet_dump(L, &len);
  lua_pop(L, 1);
  c = code ? (FnCode *)malloc(sizeof *c + len) : NULL;
  if (c == NULL) {
    free(code);
    luaL_error(L, "not enough memory");
  }
  memcpy(c->data, code, len);
  free(code);
  while ((name = lua_getupvalue(L, idx, n + 1)) != NULL) {
    lua_pop(L, 1);
    n++;
    if (env == 0 && strcmp(name, "_ENV") == 0) env = n;
  }
  atomic_init(&c->refs, 1);
  c->hash = duet_fnv1a(c->data, len);
  c->len = len;
  c->nups = n;
  c->env = env;
  return c;
}

/* The submitting side's cache: function -> FnBox, weak keys. */
typedef struct FnBox {
  FnCode *code;
} FnBox;

static const char fncache_key = 'f';

static int fnbox_gc(lua_State *L) {
  FnBox *b = (FnBox *)lua_touserdata(L, 1);
  code_release(b->code);
  b->code = NULL;
  return 0;
}

/* The FnBox of the Lua function at fn (made on first use), pushed; its
** user value is a table of the upvalues (by index) known to hold loaded
** modules. */
static FnBox *fn_box(lua_State *L, int fn) {
  FnBox *b;
  duet_weak_at(L, LUA_REGISTRYINDEX, &fncache_key, "k");
  lua_pushvalue(L, fn);
  if (lua_rawget(L, -2) == LUA_TUSERDATA) {
    b = (FnBox *)lua_touserdata(L, -1);
    lua_remove(L, -2);
    return b;
  }
  lua_pop(L, 1);
  b = (FnBox *)lua_newuserdatauv(L, sizeof(FnBox), 1);
  b->code = NULL;
  if (luaL_newmetatable(L, "duet.FnBox")) {
    lua_pushcfunction(L, fnbox_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  b->code = code_new(L, fn);
  lua_pushvalue(L, fn);
  lua_pushvalue(L, -2);
  lua_rawset(L, -4);
  lua_remove(L, -2);
  return b;
}

/* Is the table at idx a loaded module (which moves by name)? Upvalue `i`
** of the function whose FnBox is at box remembers a yes. */
static int is_module(lua_State *L, int idx, int box, int i) {
  int found = 0;
  if (lua_getiuservalue(L, box, 1) == LUA_TTABLE) {
    lua_rawgeti(L, -1, i);
    found = lua_rawequal(L, -1, idx);
    lua_pop(L, 2);
    if (found) return 1;
  }
  else lua_pop(L, 1);
  {                                       /* transfer.c's module map */
    int top = lua_gettop(L);
    duet_Maps maps = {NULL, 0, top + 1, 0};
    lua_pushnil(L);
    lua_pushnil(L);
    found = duet_map_lookup(L, &maps, idx, DUET_MAP_MODULES);
    lua_settop(L, top);
  }
  if (found) {
    if (lua_getiuservalue(L, box, 1) != LUA_TTABLE) {
      lua_pop(L, 1);
      lua_newtable(L);
      lua_pushvalue(L, -1);
      lua_setiuservalue(L, box, 1);
    }
    lua_pushvalue(L, idx);
    lua_rawseti(L, -2, i);
    lua_pop(L, 1);
  }
  return found;
}

/* What the split must not lose: the upvalue ids of fn (but _ENV's, which
** is the receiver's globals either way). */
#define SCAN_BUDGET 64

typedef struct Scan {
  int fn;                                 /* stack index of fn */
  int nids, nseen;
  void *ids[256];
  const void *seen[SCAN_BUDGET];          /* tables and functions checked */
} Scan;

/* Note the table or function at idx as seen: 1 if new, 0 if seen before,
** -1 past the budget. */
static int scan_visit(lua_State *L, int idx, Scan *s) {
  const void *p = lua_topointer(L, idx);
  int i;
  for (i = 0; i < s->nseen; i++)
    if (s->seen[i] == p) return 0;
  if (s->nseen == SCAN_BUDGET) return -1;
  s->seen[s->nseen++] = p;
  return 1;
}

/* Can the value at idx travel apart from fn without losing anything the
** whole-function encoding keeps? No function in it may share an upvalue
** with fn (nor be fn), and it must be small enough to check. Values that
** cannot move at all answer no, so the whole encoding names them. */
static int splittable(lua_State *L, int idx, Scan *s, int depth) {
  int j, ok = 1, v;
  switch (lua_type(L, idx)) {
    case LUA_TNIL: case LUA_TBOOLEAN: case LUA_TNUMBER: case LUA_TSTRING:
      return 1;
    case LUA_TUSERDATA:
      return duet_to_object(L, idx) != NULL;
    case LUA_TFUNCTION:
      if (lua_iscfunction(L, idx)) {
        if (lua_getupvalue(L, idx, 1) == NULL) return 1;
        lua_pop(L, 1);
        return 0;
      }
      if (lua_rawequal(L, idx, s->fn) || depth > 32
          || (v = scan_visit(L, idx, s)) < 0)
        return 0;
      if (v == 0) return 1;
      luaL_checkstack(L, 4, NULL);
      for (j = 1; ok; j++) {
        const char *name = lua_getupvalue(L, idx, j);
        int k;
        if (name == NULL) break;
        for (k = 0; k < s->nids && ok; k++)
          ok = s->ids[k] != lua_upvalueid(L, idx, j);
        if (ok && strcmp(name, "_ENV") != 0)
          ok = splittable(L, lua_gettop(L), s, depth + 1);
        lua_pop(L, 1);
      }
      return ok;
    case LUA_TTABLE:
      if (depth > 32 || (v = scan_visit(L, idx, s)) < 0) return 0;
      if (v == 0) return 1;
      luaL_checkstack(L, 4, NULL);
      lua_pushnil(L);
      while (lua_next(L, idx)) {
        int top = lua_gettop(L);
        if (!splittable(L, top - 1, s, depth + 1)
            || !splittable(L, top, s, depth + 1)) {
          lua_pop(L, 2);
          return 0;
        }
        lua_pop(L, 1);
      }
      if (lua_getmetatable(L, idx)) {
        ok = splittable(L, lua_gettop(L), s, depth + 1);
        lua_pop(L, 1);
      }
      return ok;
    default:
      return 0;
  }
}

/* (n values) -> their message, as a light userdata. */
static int encode_upvalues(lua_State *L) {
  lua_pushlightuserdata(L, duet_encode(L, 1, lua_gettop(L), "upvalues",
                                       DUET_LIST));
  return 1;
}

/* Encode the upvalues of fn apart from its code (see the top of this file)
** into *ups; 0 when fn must travel whole instead. Sets *self to the
** upvalue holding fn itself, if any. The FnBox is on the stack top. */
static int split_upvalues(lua_State *L, int fn, FnCode *code,
                          duet_Message **ups, int *self) {
  Scan s;
  int i, ok = 1, top = lua_gettop(L), fb = top;
  s.fn = fn;
  s.nids = s.nseen = 0;
  for (i = 1; i <= code->nups; i++)
    if (i != code->env) s.ids[s.nids++] = lua_upvalueid(L, fn, i);
  luaL_checkstack(L, code->nups + 8, "too many upvalues");
  lua_pushcfunction(L, encode_upvalues);
  for (i = 1; i <= code->nups && ok; i++) {
    int v;
    lua_getupvalue(L, fn, i);
    v = lua_gettop(L);
    if (i == code->env || (*self == 0 && lua_rawequal(L, v, fn))) {
      if (i != code->env) *self = i;
      lua_pop(L, 1);
      lua_pushnil(L);                     /* set by the worker */
    }
    else if (!(lua_istable(L, v) && is_module(L, v, fb, i)))
      ok = splittable(L, v, &s, 0);
  }
  if (ok && lua_pcall(L, code->nups, 1, 0) == LUA_OK)
    *ups = (duet_Message *)lua_touserdata(L, -1);
  else ok = 0;                            /* whole, to name what cannot move */
  lua_settop(L, top);
  return ok;
}


void duet_taskfn_make(lua_State *L, int fn, duet_TaskFn *tf) {
  int top = lua_gettop(L);
  fn = lua_absindex(L, fn);
  if (!lua_iscfunction(L, fn)) {
    FnCode *code = fn_box(L, fn)->code;   /* kept by the FnBox, pushed */
    if (code->nups <= (code->env ? 1 : 0)
        || split_upvalues(L, fn, code, &tf->ups, &tf->self_up)) {
      atomic_fetch_add_explicit(&code->refs, 1, memory_order_relaxed);
      tf->code = code;
    }
    else tf->self_up = 0;
    lua_settop(L, top);
  }
  if (tf->code == NULL) tf->whole = duet_encode(L, fn, 1, "fn", 0);
}

void duet_taskfn_clear(duet_TaskFn *tf) {
  code_release(tf->code);
  duet_message_free(tf->whole);
  duet_message_free(tf->ups);
  tf->code = NULL;
  tf->whole = tf->ups = NULL;
}

/* ------------------------------------------------------ in the worker */

#define CACHE_MAX 32

struct duet_FnCache {
  int n, last;
  struct {
    FnCode *code;                         /* retained */
    int ref;                              /* the loaded closure */
  } e[CACHE_MAX];
};

duet_FnCache *duet_fncache_new(void) {
  return (duet_FnCache *)calloc(1, sizeof(duet_FnCache));
}

static void cache_clear(lua_State *L, duet_FnCache *c) {
  int i;
  for (i = 0; i < c->n; i++) {
    luaL_unref(L, LUA_REGISTRYINDEX, c->e[i].ref);
    code_release(c->e[i].code);
  }
  c->n = c->last = 0;
}

void duet_fncache_free(lua_State *L, duet_FnCache *c) {
  if (c == NULL) return;
  cache_clear(L, c);
  free(c);
}

/* Push the closure for `code`: loaded on first sight in this state, then
** kept in `c` (which may be NULL: no memory for one). */
static void push_code(lua_State *L, duet_FnCache *c, FnCode *code) {
  int i;
  if (c && c->last < c->n && c->e[c->last].code == code) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->e[c->last].ref);
    return;
  }
  for (i = 0; c && i < c->n; i++) {
    FnCode *k = c->e[i].code;
    if (k == code || (k->hash == code->hash && k->len == code->len
                      && memcmp(k->data, code->data, k->len) == 0)) {
      c->last = i;
      lua_rawgeti(L, LUA_REGISTRYINDEX, c->e[i].ref);
      return;
    }
  }
  if (c && c->n == CACHE_MAX) cache_clear(L, c);   /* full: start again */
  if (luaL_loadbufferx(L, code->data, code->len, "=(moved function)", "b")
      != LUA_OK)
    lua_error(L);
  if (code->env > 1) {                    /* lua_load set upvalue 1 only */
    lua_pushglobaltable(L);
    lua_setupvalue(L, -2, code->env);
  }
  if (c == NULL) return;
  lua_pushvalue(L, -1);
  c->e[c->n].ref = luaL_ref(L, LUA_REGISTRYINDEX);
  c->e[c->n].code = code;
  atomic_fetch_add_explicit(&code->refs, 1, memory_order_relaxed);
  c->last = c->n++;
}

void duet_taskfn_push(lua_State *L, duet_FnCache *c, duet_TaskFn *tf) {
  duet_Message *m;
  int f, n, i;
  if (tf->whole) {
    m = tf->whole;
    tf->whole = NULL;
    duet_decode_free(L, m);
    return;
  }
  push_code(L, c, tf->code);
  f = lua_gettop(L);
  if ((m = tf->ups) != NULL) {
    tf->ups = NULL;
    n = duet_decode_free(L, m);
    if (n != tf->code->nups) luaL_error(L, "cannot decode: bad upvalues");
    for (i = 1; i <= n; i++) {
      if (i == tf->code->env) continue;
      lua_pushvalue(L, i == tf->self_up ? f : f + i);
      lua_setupvalue(L, f, i);
    }
    lua_settop(L, f);
    tf->set = n;
    tf->env_up = tf->code->env;
  }
  code_release(tf->code);
  tf->code = NULL;
}

/* The cached closure would otherwise keep the run's values (duet objects
** among them) alive in the worker until that code runs again. */
void duet_taskfn_done(lua_State *L, int idx, duet_TaskFn *tf) {
  int i;
  idx = lua_absindex(L, idx);
  for (i = 1; i <= tf->set; i++) {
    if (i == tf->env_up) continue;
    lua_pushnil(L);
    lua_setupvalue(L, idx, i);
  }
  tf->set = 0;
}

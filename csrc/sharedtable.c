/*
** sharedtable.c — SharedTable: a table living in C that every thread
** reaches by reference.
**
** A chained hash table under one mutex. Keys are strings, booleans and
** numbers (a float with an integral value is the integer key, as in Lua);
** values are duet_Values (value.c), so integers, floats, booleans, short
** strings and duet objects are stored without an allocation, anything else
** as an encoded message. A value is encoded before the lock is taken and
** decoded after it is released; the lock covers lookups and relinking only.
**
** Methods and data keys: t.incr, t.update and t.snapshot are always the
** methods, so t:incr(k) works whatever the table holds (as a Python dict's
** methods do). A data key of such a name can still be written (t.incr = 5,
** t:incr("incr"), t:update("incr", fn)) and is seen by pairs(t),
** t:snapshot(), incr and update; t.incr reads the method. The coroutines
** runtime follows the same rule.
**
** update(k, fn) runs fn in the caller's state without any lock held, so it
** is optimistic: every write stamps its entry with a fresh number from the
** table's counter; update reads the value and its stamp, calls fn, and
** commits only if the stamp is still the same, else calls fn again with
** the newer value.
**
** pairs(t) iterates a snapshot taken under the lock when the loop starts:
** consistent, and unaffected by writes made while it runs.
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "duet.h"

typedef struct Entry {
  struct Entry *next;
  uint64_t hash;
  uint64_t stamp;                         /* unique per write (update) */
  duet_Value v;                           /* never DUET_V_NIL */
  unsigned char ktag;                     /* DUET_V_FALSE .. DUET_V_STR */
  size_t klen;
  union { lua_Integer i; lua_Number n; } k;
  char kstr[];                            /* DUET_V_STR: klen bytes */
} Entry;

typedef struct SharedTable {
  duet_Object base;
  pthread_mutex_t mu;                     /* guards everything below */
  Entry **buckets;
  size_t nbuckets, count, keybytes;       /* nbuckets: power of two */
  uint64_t stamp;
  lua_Integer border;                     /* last answer of #t: a hint */
} SharedTable;

static const duet_Type st_type;

typedef struct Key {                      /* a key as the caller passed it */
  unsigned char tag;
  uint64_t hash;
  size_t len;
  const char *s;                          /* in the caller's Lua string */
  union { lua_Integer i; lua_Number n; } k;
} Key;

static const char *const method_names[] = {"incr", "update", "snapshot",
                                           NULL};

/* ---------------------------------------------------------------- keys */

static uint64_t mix64(uint64_t x) {       /* splitmix64's finalizer */
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

static uint64_t hash_bytes(const char *s, size_t n) {
  return mix64(duet_fnv1a(s, n) ^ n);
}

enum { KEY_OK, KEY_NIL, KEY_NAN, KEY_TYPE };

/* Read the key at idx; KEY_OK or why it cannot be a key. */
static int to_key(lua_State *L, int idx, Key *k) {
  switch (lua_type(L, idx)) {
    case LUA_TSTRING:
      k->s = lua_tolstring(L, idx, &k->len);
      k->tag = DUET_V_STR;
      k->hash = hash_bytes(k->s, k->len);
      return KEY_OK;
    case LUA_TNUMBER:
      if (lua_isinteger(L, idx)) k->k.i = lua_tointeger(L, idx);
      else {
        lua_Number n = lua_tonumber(L, idx);
        if (n != n) return KEY_NAN;
        if (!lua_numbertointeger(n, &k->k.i) || (lua_Number)k->k.i != n) {
          uint64_t bits;
          k->k.n = n;
          k->tag = DUET_V_FLOAT;
          memcpy(&bits, &n, sizeof bits);
          k->hash = mix64(bits ^ 0x5555555555555555ULL);
          return KEY_OK;
        }
      }
      k->tag = DUET_V_INT;
      k->hash = mix64((uint64_t)k->k.i);
      return KEY_OK;
    case LUA_TBOOLEAN:
      k->tag = lua_toboolean(L, idx) ? DUET_V_TRUE : DUET_V_FALSE;
      k->hash = mix64(k->tag);
      return KEY_OK;
    case LUA_TNIL: case LUA_TNONE: return KEY_NIL;
    default: return KEY_TYPE;
  }
}

/* The key at idx (argument `arg`), or a standard argument error. */
static void check_key(lua_State *L, int idx, int arg, Key *k) {
  switch (to_key(L, idx, k)) {
    case KEY_OK: return;
    case KEY_NAN: luaL_argerror(L, arg, "key is NaN"); return;
    default: luaL_typeerror(L, arg, "string, number or boolean key"); return;
  }
}

static int is_method_name(const char *s, size_t n) {
  int i;
  if (n < 4 || n > 8) return 0;           /* quick no for most keys */
  for (i = 0; method_names[i]; i++)
    if (strlen(method_names[i]) == n && memcmp(method_names[i], s, n) == 0)
      return 1;
  return 0;
}

/* ------------------------------------------------ the hash table (mu held) */

static int same_key(const Entry *e, const Key *k) {
  if (e->hash != k->hash || e->ktag != k->tag) return 0;
  switch (k->tag) {
    case DUET_V_INT: return e->k.i == k->k.i;
    case DUET_V_FLOAT: return e->k.n == k->k.n;
    case DUET_V_STR:
      return e->klen == k->len && memcmp(e->kstr, k->s, k->len) == 0;
    default: return 1;
  }
}

static Entry **find_slot(SharedTable *t, const Key *k) {
  Entry **p;
  if (t->nbuckets == 0) return NULL;
  p = &t->buckets[k->hash & (t->nbuckets - 1)];
  while (*p && !same_key(*p, k)) p = &(*p)->next;
  return p;
}

static Entry *find(SharedTable *t, const Key *k) {
  Entry **p = find_slot(t, k);
  return p ? *p : NULL;
}

static int present_int(SharedTable *t, lua_Integer i) {
  Key k;
  k.tag = DUET_V_INT;
  k.k.i = i;
  k.hash = mix64((uint64_t)i);
  return find(t, &k) != NULL;
}

static int grow(SharedTable *t) {
  size_t n = t->nbuckets ? t->nbuckets * 2 : 8, i;
  Entry **b = (Entry **)calloc(n, sizeof *b);
  if (b == NULL) return 0;
  for (i = 0; i < t->nbuckets; i++) {
    Entry *e = t->buckets[i], *next;
    for (; e; e = next) {
      next = e->next;
      e->next = b[e->hash & (n - 1)];
      b[e->hash & (n - 1)] = e;
    }
  }
  free(t->buckets);
  t->buckets = b;
  t->nbuckets = n;
  return 1;
}

/* Store v (taken) under k, or delete k if v is nil; the value replaced
** (to free once unlocked) goes into *old. 0: no memory (v not taken). */
static int store(SharedTable *t, const Key *k, duet_Value *v,
                 duet_Value *old) {
  Entry **p = find_slot(t, k), *e;
  old->tag = DUET_V_NIL;
  if (p && *p) {
    e = *p;
    *old = e->v;
    if (v->tag == DUET_V_NIL) {           /* delete */
      *p = e->next;
      t->count--;
      if (e->ktag == DUET_V_STR) t->keybytes -= e->klen;
      free(e);
    }
    else {
      e->v = *v;
      e->stamp = ++t->stamp;
    }
    v->tag = DUET_V_NIL;
    return 1;
  }
  if (v->tag == DUET_V_NIL) return 1;     /* deleting what is not there */
  if (t->count >= t->nbuckets && !grow(t) && t->nbuckets == 0) return 0;
  e = (Entry *)malloc(sizeof *e + (k->tag == DUET_V_STR ? k->len : 0));
  if (e == NULL) return 0;
  e->hash = k->hash;
  e->ktag = k->tag;
  e->klen = 0;
  memcpy(&e->k, &k->k, sizeof e->k);
  if (k->tag == DUET_V_STR) {
    e->klen = k->len;
    memcpy(e->kstr, k->s, k->len);
    t->keybytes += k->len;
  }
  e->v = *v;
  e->stamp = ++t->stamp;
  p = &t->buckets[k->hash & (t->nbuckets - 1)];
  e->next = *p;
  *p = e;
  t->count++;
  v->tag = DUET_V_NIL;
  return 1;
}

/* A border of the integer keys, as Lua's # gives: n with t[n] present (or
** n == 0) and t[n+1] absent. Tries the last answer and its neighbours
** first, so loops that append or pop at the end cost O(1). */
static lua_Integer border(SharedTable *t) {
  lua_Integer h = t->border, i, j;
  if (h >= 0 && (h == 0 || present_int(t, h))) {
    if (!present_int(t, h + 1)) return h;
    if (h < LUA_MAXINTEGER - 1 && !present_int(t, h + 2)) return h + 1;
  }
  else if (h > 0 && present_int(t, h - 1)) return h - 1;
  if (!present_int(t, 1)) return 0;
  i = 1;                                  /* present */
  j = 2;
  while (present_int(t, j)) {             /* find an absent j */
    i = j;
    if (j > LUA_MAXINTEGER / 2) {         /* pathological: walk on */
      while (i < LUA_MAXINTEGER && present_int(t, i + 1)) i++;
      return i;
    }
    j *= 2;
  }
  while (j - i > 1) {                     /* t[i] present, t[j] absent */
    lua_Integer m = i + (j - i) / 2;
    if (present_int(t, m)) i = m;
    else j = m;
  }
  return i;
}

/* ------------------------------------------------------------ snapshot */

typedef struct SnapItem {                 /* a copied entry */
  unsigned char ktag;
  size_t klen;
  union { lua_Integer i; lua_Number n; } k;
  const char *kstr;                       /* in Snap.strs */
  duet_Value v;
} SnapItem;

typedef struct Snap {
  size_t n;
  SnapItem *items;
  char *strs;
} Snap;

static int snap_gc(lua_State *L) {
  Snap *s = (Snap *)lua_touserdata(L, 1);
  size_t i;
  for (i = 0; i < s->n; i++) duet_value_free(&s->items[i].v);
  free(s->items);
  free(s->strs);
  s->items = NULL;
  s->strs = NULL;
  s->n = 0;
  return 0;
}

/* Push a plain table holding a copy of every key and value of t. */
static void push_snapshot(lua_State *L, SharedTable *t) {
  Snap *s = (Snap *)lua_newuserdatauv(L, sizeof(Snap), 0);
  int box = lua_gettop(L), ok = 1;
  size_t i, n = 0, off = 0;
  memset(s, 0, sizeof *s);
  if (luaL_newmetatable(L, "duet.snapshot")) {
    lua_pushcfunction(L, snap_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  pthread_mutex_lock(&t->mu);
  s->items = (SnapItem *)malloc((t->count ? t->count : 1) * sizeof(SnapItem));
  s->strs = (char *)malloc(t->keybytes ? t->keybytes : 1);
  if (s->items == NULL || s->strs == NULL) ok = 0;
  for (i = 0; ok && i < t->nbuckets; i++) {
    const Entry *e;
    for (e = t->buckets[i]; e && ok; e = e->next) {
      SnapItem *it = &s->items[n];
      it->ktag = e->ktag;
      it->klen = e->klen;
      memcpy(&it->k, &e->k, sizeof it->k);
      it->kstr = NULL;
      if (!duet_value_copy(&it->v, &e->v)) ok = 0;
      else n++;
      if (ok && e->ktag == DUET_V_STR) {
        memcpy(s->strs + off, e->kstr, e->klen);
        it->kstr = s->strs + off;
        off += e->klen;
      }
    }
  }
  s->n = n;
  pthread_mutex_unlock(&t->mu);
  if (!ok) luaL_error(L, "not enough memory");
  lua_createtable(L, 0, (int)n);
  for (i = 0; i < n; i++) {
    SnapItem *it = &s->items[i];
    switch (it->ktag) {
      case DUET_V_FALSE: lua_pushboolean(L, 0); break;
      case DUET_V_TRUE: lua_pushboolean(L, 1); break;
      case DUET_V_INT: lua_pushinteger(L, it->k.i); break;
      case DUET_V_FLOAT: lua_pushnumber(L, it->k.n); break;
      default: lua_pushlstring(L, it->kstr, it->klen); break;
    }
    duet_value_push(L, &it->v);
    lua_rawset(L, -3);
  }
  lua_remove(L, box);                     /* its __gc frees the rest */
}

/* ------------------------------------------------------------- methods */

#define check_st(L) ((SharedTable *)duet_check_self(L, &st_type))

static int st_index(lua_State *L) {
  SharedTable *t = check_st(L);
  duet_Value v;
  Entry *e;
  Key k;
  int ok = 1;
  if (to_key(L, 2, &k) != KEY_OK) return 0;   /* never a key: nil */
  if (k.tag == DUET_V_STR && is_method_name(k.s, k.len)) {
    lua_pushvalue(L, 2);                  /* the method, always */
    lua_rawget(L, lua_upvalueindex(2));
    return 1;
  }
  v.tag = DUET_V_NIL;
  pthread_mutex_lock(&t->mu);
  e = find(t, &k);
  if (e) ok = duet_value_copy(&v, &e->v);
  pthread_mutex_unlock(&t->mu);
  if (!ok) return luaL_error(L, "not enough memory");
  duet_value_push(L, &v);
  return 1;
}

static int st_newindex(lua_State *L) {
  SharedTable *t = check_st(L);
  duet_Value v, old;
  Key k;
  int ok;
  check_key(L, 2, 2, &k);
  duet_value_set(L, 3, "value", &v);
  pthread_mutex_lock(&t->mu);
  ok = store(t, &k, &v, &old);
  pthread_mutex_unlock(&t->mu);
  duet_value_free(&old);
  if (!ok) {
    duet_value_free(&v);
    return luaL_error(L, "not enough memory");
  }
  return 0;
}

static int st_len(lua_State *L) {
  SharedTable *t = check_st(L);
  lua_Integer n;
  pthread_mutex_lock(&t->mu);
  n = t->border = border(t);
  pthread_mutex_unlock(&t->mu);
  lua_pushinteger(L, n);
  return 1;
}

static int st_next(lua_State *L) {
  lua_settop(L, 2);
  if (lua_next(L, 1)) return 2;
  return 0;
}

/* pairs(t): iterates a snapshot taken now. */
static int st_pairs(lua_State *L) {
  SharedTable *t = check_st(L);
  lua_pushcfunction(L, st_next);
  push_snapshot(L, t);
  lua_pushnil(L);
  return 3;
}

static int st_snapshot(lua_State *L) {
  push_snapshot(L, check_st(L));
  return 1;
}

/* The type name of a stored value, as luaL_typeerror would show it. */
static const char *type_of_value(lua_State *L, duet_Value *v) {
  switch (v->tag) {
    case DUET_V_FALSE: case DUET_V_TRUE: return "boolean";
    case DUET_V_STR: return "string";
    case DUET_V_OBJ: return v->u.o->type->name;
    default: {                            /* a message: look at its value */
      duet_Value c;
      if (!duet_value_copy(&c, v)) return "value";
      duet_value_push(L, &c);
      if (luaL_getmetafield(L, -1, "__name") == LUA_TSTRING)
        return lua_tostring(L, -1);       /* stays on the stack */
      return luaL_typename(L, -1);
    }
  }
}

/* t:incr(k, [delta=1]) -> the new value; missing counts as 0. */
static int st_incr(lua_State *L) {
  SharedTable *t = check_st(L);
  duet_Value v, old, bad;
  Entry *e;
  Key k;
  int ok = 1, isint = 1;
  lua_Integer di = 1;
  lua_Number dn = 0;
  check_key(L, 2, 2, &k);
  if (lua_type(L, 3) == LUA_TSTRING) {    /* as luaL_checknumber does */
    if (!lua_stringtonumber(L, lua_tostring(L, 3)))
      return luaL_typeerror(L, 3, "number");
    lua_replace(L, 3);
  }
  if (lua_isinteger(L, 3)) di = lua_tointeger(L, 3);
  else if (lua_type(L, 3) == LUA_TNUMBER) {
    dn = lua_tonumber(L, 3);
    isint = 0;
  }
  else if (!lua_isnoneornil(L, 3)) return luaL_typeerror(L, 3, "number");
  bad.tag = DUET_V_NIL;
  old.tag = DUET_V_NIL;
  pthread_mutex_lock(&t->mu);
  e = find(t, &k);
  if (e == NULL) {
    if (isint) { v.tag = DUET_V_INT; v.u.i = di; }
    else { v.tag = DUET_V_FLOAT; v.u.n = dn; }
    ok = store(t, &k, &v, &old);
    v.tag = isint ? DUET_V_INT : DUET_V_FLOAT;   /* store took the copy */
  }
  else if (e->v.tag == DUET_V_INT && isint) {
    e->v.u.i = (lua_Integer)((lua_Unsigned)e->v.u.i + (lua_Unsigned)di);
    e->stamp = ++t->stamp;
    v = e->v;
  }
  else if (e->v.tag == DUET_V_INT || e->v.tag == DUET_V_FLOAT) {
    lua_Number a = e->v.tag == DUET_V_INT ? (lua_Number)e->v.u.i : e->v.u.n;
    e->v.u.n = a + (isint ? (lua_Number)di : dn);
    e->v.tag = DUET_V_FLOAT;
    e->stamp = ++t->stamp;
    v = e->v;
  }
  else ok = duet_value_copy(&bad, &e->v) ? -1 : 0;
  pthread_mutex_unlock(&t->mu);
  if (ok == 0) return luaL_error(L, "not enough memory");
  if (ok < 0) {
    const char *what = type_of_value(L, &bad);
    duet_value_free(&bad);
    return luaL_argerror(L, 2, lua_pushfstring(L, "value at key '%s' is a "
                                               "%s, not a number",
                                               luaL_tolstring(L, 2, NULL),
                                               what));
  }
  if (v.tag == DUET_V_INT) lua_pushinteger(L, v.u.i);
  else lua_pushnumber(L, v.u.n);
  return 1;
}

/* t:update(k, fn) -> the new value: t[k] = fn(t[k]) as one atomic step.
** fn may be called again (with the newer value) if another thread wrote
** t[k] while it ran. */
static int st_update(lua_State *L) {
  SharedTable *t = check_st(L);
  Key k;
  check_key(L, 2, 2, &k);
  luaL_checktype(L, 3, LUA_TFUNCTION);
  lua_settop(L, 3);
  for (;;) {
    duet_Value cur, nv, old;
    uint64_t seen;
    Entry *e;
    int ok = 1;
    cur.tag = DUET_V_NIL;
    pthread_mutex_lock(&t->mu);
    e = find(t, &k);
    seen = e ? e->stamp : 0;
    if (e) ok = duet_value_copy(&cur, &e->v);
    pthread_mutex_unlock(&t->mu);
    if (!ok) return luaL_error(L, "not enough memory");
    lua_pushvalue(L, 3);
    duet_value_push(L, &cur);
    lua_call(L, 1, 1);                    /* no lock held: fn may raise */
    duet_value_set(L, 4, "value", &nv);
    pthread_mutex_lock(&t->mu);
    e = find(t, &k);
    if ((e ? e->stamp : 0) == seen) ok = store(t, &k, &nv, &old) ? 1 : -1;
    else ok = 0;
    pthread_mutex_unlock(&t->mu);
    if (ok == 1) {
      duet_value_free(&old);
      return 1;
    }
    duet_value_free(&nv);
    if (ok < 0) return luaL_error(L, "not enough memory");
    lua_settop(L, 3);                     /* changed meanwhile: again */
  }
}

static const luaL_Reg st_methods[] = {
  {"incr", st_incr},
  {"update", st_update},
  {"snapshot", st_snapshot},
  {NULL, NULL}
};

static const luaL_Reg st_meta[] = {
  {"__newindex", st_newindex},
  {"__len", st_len},
  {"__pairs", st_pairs},
  {NULL, NULL}
};

/* ------------------------------------------------------ the type itself */

static void st_destroy(duet_Object *o) {
  SharedTable *t = (SharedTable *)o;
  size_t i;
  for (i = 0; i < t->nbuckets; i++) {
    Entry *e = t->buckets[i], *next;
    for (; e; e = next) {
      next = e->next;
      duet_value_free(&e->v);
      free(e);
    }
  }
  free(t->buckets);
  pthread_mutex_destroy(&t->mu);
  free(t);
}

static void st_describe(duet_Object *o, char *buf, size_t size) {
  SharedTable *t = (SharedTable *)o;
  size_t n;
  pthread_mutex_lock(&t->mu);
  n = t->count;
  pthread_mutex_unlock(&t->mu);
  snprintf(buf, size, "size %zu", n);
}

static const duet_Type st_type = {"duet.SharedTable", st_destroy,
                                  st_describe,
                                  duet_sharedtable_open, NULL, NULL, NULL};

/* SharedTable([init]): init is a table (or a SharedTable) to copy. */
static int st_new(lua_State *L) {
  SharedTable *t;
  int init;
  lua_settop(L, 1);
  if (lua_type(L, 1) == LUA_TUSERDATA && duet_to_object(L, 1) != NULL
      && duet_to_object(L, 1)->type == &st_type) {
    push_snapshot(L, (SharedTable *)duet_to_object(L, 1));
    lua_replace(L, 1);
  }
  else if (!lua_isnil(L, 1)) luaL_checktype(L, 1, LUA_TTABLE);
  init = lua_istable(L, 1);
  t = (SharedTable *)duet_new_object(L, &st_type, sizeof(SharedTable));
  duet_mutex_init_adaptive(&t->mu);
  if (init) {                             /* nobody else sees t yet */
    lua_pushnil(L);
    while (lua_next(L, 1)) {
      duet_Value v, old;
      Key k;
      int ok;
      if (to_key(L, -2, &k) != KEY_OK)    /* NaN cannot be a Lua key */
        luaL_argerror(L, 1, lua_pushfstring(L, "string, number or boolean "
                                            "key expected, got %s",
                                            duet_type_name(L, -2)));
      duet_value_set(L, -1, "value", &v);
      pthread_mutex_lock(&t->mu);
      ok = store(t, &k, &v, &old);
      pthread_mutex_unlock(&t->mu);
      duet_value_free(&old);
      if (!ok) {
        duet_value_free(&v);
        luaL_error(L, "not enough memory");
      }
      lua_pop(L, 1);
    }
  }
  return 1;
}

static const luaL_Reg st_funcs[] = {
  {"SharedTable", st_new},
  {NULL, NULL}
};

int duet_sharedtable_open(lua_State *L) {
  duet_new_type(L, &st_type, NULL, st_meta);
  luaL_getmetatable(L, st_type.name);
  if (lua_getfield(L, -1, "__index") != LUA_TNIL) {  /* loaded before */
    lua_pop(L, 2);
    luaL_setfuncs(L, st_funcs, 0);
    return 0;
  }
  lua_pop(L, 1);
  lua_pushvalue(L, -1);                   /* __index: (metatable, methods) */
  lua_createtable(L, 0, 4);
  lua_pushvalue(L, -3);
  luaL_setfuncs(L, st_methods, 1);
  lua_pushcclosure(L, st_index, 2);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  luaL_setfuncs(L, st_funcs, 0);
  return 0;
}

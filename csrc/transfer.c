/*
** transfer.c — moving values between Lua states (API.md, "Moving values").
**
** A value list is encoded into a flat byte message plus the duet objects it
** references; the receiving state decodes it. Encoding never runs Lua code
** and retains objects only once it has succeeded, so an error half-way
** leaves nothing behind. Decoding checks every byte it reads: a malformed or
** truncated message raises an error, never a crash.
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "duet.h"

enum {
  T_NIL, T_FALSE, T_TRUE, T_INT, T_FLOAT, T_STR, T_TABLE, T_END, T_REF,
  T_FUNC, T_CFUNC, T_MODULE, T_OBJECT, T_UPJOIN, T_GLOBALS, T_ERROR
};

#define MAX_DEPTH 200
#define PORTABLE_MAGIC "\x1b" "duet2"     /* first bytes of duet.encode */
#define SMALL_SEEN 16                     /* tables/functions seen, in C */

/* ------------------------------------------------------------ per state */

/* What a state caches for transfers: its module and C-function name maps
** (rebuilt when package.loaded gains a key). */
typedef struct StateInfo {
  lua_Integer loaded_version;             /* bumped by package.loaded */
  lua_Integer maps_version;               /* version the maps were built at */
  int hooked;                             /* loaded_version is reliable */
} StateInfo;

static const char info_key = 'i';         /* registry: StateInfo userdata */
static const char modules_key = 'm';      /* registry: table -> name */
static const char cfuncs_key = 'c';       /* registry: cfunction -> {mod,k} */

static StateInfo *state_info(lua_State *L) {
  StateInfo *si;
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &info_key) == LUA_TNIL) {
    lua_pop(L, 1);                        /* duet.core not opened here yet */
    luaL_requiref(L, "duet.core", luaopen_duet_core, 0);
    lua_pop(L, 1);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &info_key);
  }
  si = (StateInfo *)lua_touserdata(L, -1);
  lua_pop(L, 1);
  return si;
}

/* __newindex of package.loaded: store, and note that maps are stale. */
static int loaded_newindex(lua_State *L) {
  StateInfo *si = (StateInfo *)lua_touserdata(L, lua_upvalueindex(1));
  lua_rawset(L, 1);
  si->loaded_version++;
  return 0;
}

/* Note module `mod` (at stack index mod, named by the string at name) in
** the maps: modules[mod] = name, cfuncs[f] = {name, key} for its C
** functions. The first name found wins. */
static void map_module(lua_State *L, int modules, int cfuncs, int name,
                       int mod) {
  lua_pushvalue(L, mod);
  if (modules && lua_rawget(L, modules) == LUA_TNIL) {
    lua_pushvalue(L, mod);
    lua_pushvalue(L, name);
    lua_rawset(L, modules);
  }
  lua_pop(L, 1);
  lua_pushnil(L);
  while (lua_next(L, mod)) {
    if (lua_type(L, -2) == LUA_TSTRING && lua_iscfunction(L, -1)) {
      lua_pushvalue(L, -1);
      if (lua_rawget(L, cfuncs) == LUA_TNIL) {
        lua_pushvalue(L, -2);
        lua_createtable(L, 2, 0);
        lua_pushvalue(L, name);
        lua_rawseti(L, -2, 1);
        lua_pushvalue(L, -5);
        lua_rawseti(L, -2, 2);
        lua_rawset(L, cfuncs);
      }
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
}

/* Rebuild the table->module-name and C-function->name maps from
** package.loaded. */
static void build_maps(lua_State *L, StateInfo *si) {
  /* Lua's own names first: other modules often re-export its functions */
  static const char *const std_modules[] = {
    "_G", "string", "table", "math", "io", "os", "coroutine", "utf8",
    "debug", "package", NULL
  };
  const char *const *std;
  int top = lua_gettop(L);
  int modules = top + 1, cfuncs = top + 2, loaded = top + 3;
  luaL_checkstack(L, 12, NULL);
  lua_newtable(L);
  lua_newtable(L);
  lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  for (std = std_modules; *std; std++) {
    lua_pushstring(L, *std);
    if (lua_rawget(L, loaded) == LUA_TTABLE) {
      lua_pushstring(L, *std);
      map_module(L, modules, cfuncs, lua_gettop(L), lua_gettop(L) - 1);
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  lua_pushnil(L);
  while (lua_next(L, loaded)) {
    if (lua_type(L, -2) == LUA_TSTRING && lua_istable(L, -1))
      map_module(L, modules, cfuncs, lua_gettop(L) - 1, lua_gettop(L));
    lua_pop(L, 1);
  }
  /* duet's methods, named "@duet.Type" */
  duet_push_types(L);
  if (lua_istable(L, -1)) {
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      lua_pop(L, 1);
      lua_pushfstring(L, "@%s", lua_tostring(L, -1));
      if (luaL_getmetatable(L, lua_tostring(L, -2)) == LUA_TTABLE
          && lua_getfield(L, -1, "__methods") == LUA_TTABLE)
        map_module(L, 0, cfuncs, lua_gettop(L) - 2, lua_gettop(L));
      lua_settop(L, loaded + 2);          /* types, key */
    }
  }
  lua_pop(L, 1);
  lua_pushvalue(L, cfuncs);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &cfuncs_key);
  lua_pushvalue(L, modules);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &modules_key);
  lua_settop(L, top);
  si->maps_version = si->loaded_version;
}

/* ------------------------------------------------------------- encoding */

typedef struct Scratch {                  /* per OS thread, reused */
  char *buf;
  size_t cap;
  duet_Object **refs;
  size_t refcap;
} Scratch;

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_free(void *p) {
  Scratch *s = (Scratch *)p;
  free(s->buf);
  free(s->refs);
  free(s);
}

static void scratch_init(void) {
  pthread_key_create(&scratch_key, scratch_free);
}

typedef struct Path {                     /* where a value sits, for errors */
  const struct Path *up;
  enum { P_ROOT, P_INDEX, P_KEY, P_UPVALUE, P_META, P_KEYOF } kind;
  int idx;                                /* P_KEY/P_KEYOF: stack index */
  lua_Integer n;                          /* P_INDEX */
  const char *name;                       /* P_ROOT, P_UPVALUE */
} Path;

typedef struct Enc {
  lua_State *L;
  Scratch *s;
  size_t len, nrefs;
  int seen;                               /* stack slot: value -> index */
  int nseen;                              /* (the first SMALL_SEEN in small) */
  const void *small[SMALL_SEEN];
  int upvals;                             /* stack slot: upvalue id -> pos */
  int maps;                               /* stack slots: the two maps */
  int has_upvals;
  int flags;
  int maps_ready;
  StateInfo *si;
} Enc;

static void grow_buffer(Enc *e, size_t n) {
  Scratch *s = e->s;
  size_t cap = s->cap ? s->cap : 256;
  char *b;
  while (cap - e->len < n) cap *= 2;
  b = (char *)realloc(s->buf, cap);
  if (b == NULL) luaL_error(e->L, "not enough memory");
  s->buf = b;
  s->cap = cap;
}

static void put_bytes(Enc *e, const void *p, size_t n) {
  if (e->s->cap - e->len < n) grow_buffer(e, n);
  memcpy(e->s->buf + e->len, p, n);
  e->len += n;
}

static void put_byte(Enc *e, int b) {
  unsigned char c = (unsigned char)b;
  if (e->len < e->s->cap) e->s->buf[e->len++] = (char)c;
  else put_bytes(e, &c, 1);
}

/* The message refers back to a table or function (T_REF, T_UPJOIN): bit 0
** of the header (the value count, times two) tells the decoder to number
** them. */
static void note_refs(Enc *e) {
  e->s->buf[0] |= 1;
}

/* Size hint for a table part of n entries: 0, or 1 + log2 of the power of
** two that holds them. */
static int size_hint(size_t n) {
  int h = 0;
  while (n > 0 && ((size_t)1 << h) < n) h++;
  return n ? h + 1 : 0;
}

static void put_size(Enc *e, size_t n) {  /* LEB128 */
  unsigned char b[10];
  int i = 0;
  do {
    b[i] = (unsigned char)(n & 0x7f);
    n >>= 7;
    if (n) b[i] |= 0x80;
    i++;
  } while (n);
  put_bytes(e, b, (size_t)i);
}

static void put_string(Enc *e, const char *str, size_t n) {
  put_size(e, n);
  put_bytes(e, str, n);
}

/* Push ["k"] with k escaped the way %q would. */
static void push_quoted(lua_State *L, const char *k, size_t n) {
  luaL_Buffer b;
  size_t i;
  luaL_buffinit(L, &b);
  luaL_addstring(&b, "[\"");
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)k[i];
    if (c == '"' || c == '\\') {
      luaL_addchar(&b, '\\');
      luaL_addchar(&b, (char)c);
    }
    else if (c < 32 || c == 127) {
      char esc[8];
      snprintf(esc, sizeof esc, "\\%d", c);
      luaL_addstring(&b, esc);
    }
    else luaL_addchar(&b, (char)c);
  }
  luaL_addstring(&b, "\"]");
  luaL_pushresult(&b);
}

/* Format `p` onto the stack: "args[2].log". */
static void push_path(lua_State *L, const Path *p) {
  luaL_Buffer b;
  const Path *chain[MAX_DEPTH + 8];
  int n = 0;
  for (; p && n < MAX_DEPTH + 8; p = p->up) chain[n++] = p;
  luaL_buffinit(L, &b);
  while (n-- > 0) {
    p = chain[n];
    switch (p->kind) {
      case P_ROOT: luaL_addstring(&b, p->name); break;
      case P_INDEX:
        lua_pushfstring(L, "[%I]", (LUAI_UACINT)p->n);
        luaL_addvalue(&b);
        break;
      case P_UPVALUE:
        lua_pushfstring(L, "<upvalue %s>", p->name);
        luaL_addvalue(&b);
        break;
      case P_META: luaL_addstring(&b, "<metatable>"); break;
      case P_KEY: case P_KEYOF: {
        int t = lua_type(L, p->idx);
        if (t == LUA_TSTRING) {
          const char *k = lua_tostring(L, p->idx), *c = k;
          int ident = (*k != '\0' && !(*k >= '0' && *k <= '9'));
          for (; *c && ident; c++)
            ident = (*c == '_' || (*c >= 'a' && *c <= 'z')
                     || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9'));
          if (ident) lua_pushfstring(L, ".%s", k);
          else push_quoted(L, k, lua_rawlen(L, p->idx));
        }
        else if (t == LUA_TNUMBER || t == LUA_TBOOLEAN)
          lua_pushfstring(L, "[%s]", luaL_tolstring(L, p->idx, NULL)),
          lua_remove(L, -2);
        else lua_pushfstring(L, "[%s]", lua_typename(L, t));
        luaL_addvalue(&b);
        if (p->kind == P_KEYOF) luaL_addstring(&b, "<key>");
        break;
      }
    }
  }
  luaL_pushresult(&b);
}

static int refuse(Enc *e, const Path *p, const char *what) {
  lua_State *L = e->L;
  push_path(L, p);
  return luaL_error(L, "cannot move %s at %s", what, lua_tostring(L, -1));
}

static void encode_value(Enc *e, int idx, const Path *p, int depth);

/* Register the table/function at idx as seen; 0 if new, else its index.
** The first few are kept by address (alive: reachable from the values
** being encoded), the rest in a table. */
static int seen_index(Enc *e, int idx) {
  lua_State *L = e->L;
  const void *p = lua_topointer(L, idx);
  int n, k = e->nseen < SMALL_SEEN ? e->nseen : SMALL_SEEN;
  for (n = 0; n < k; n++)
    if (e->small[n] == p) return n + 1;
  if (e->nseen < SMALL_SEEN) {
    e->small[e->nseen++] = p;
    return 0;
  }
  if (e->nseen == SMALL_SEEN) {
    lua_createtable(L, 0, 4);
    lua_replace(L, e->seen);
  }
  lua_pushvalue(L, idx);
  if (lua_rawget(L, e->seen) == LUA_TNUMBER) {
    n = (int)lua_tointeger(L, -1);
    lua_pop(L, 1);
    return n;
  }
  lua_pop(L, 1);
  lua_pushvalue(L, idx);
  lua_pushinteger(L, ++e->nseen);
  lua_rawset(L, e->seen);
  return 0;
}

/* The name by which a loaded-module table or known C function travels. */
static int lookup_map(Enc *e, int idx, const void *key) {
  lua_State *L = e->L;
  int slot;
  if (e->si == NULL) e->si = state_info(L);
  /* without our hook on package.loaded, rebuild once per encode */
  if (!e->maps_ready && (!e->si->hooked
                         || e->si->maps_version != e->si->loaded_version))
    build_maps(L, e->si);
  e->maps_ready = 1;
  slot = key == &modules_key ? e->maps : e->maps + 1;
  if (lua_type(L, slot) == LUA_TNIL) {    /* once per encode */
    lua_rawgetp(L, LUA_REGISTRYINDEX, key);
    lua_replace(L, slot);
  }
  lua_pushvalue(L, idx);
  if (lua_rawget(L, slot) == LUA_TNIL) {
    lua_pop(L, 1);
    return 0;
  }
  return 1;                               /* name (or {mod, key}) on top */
}

static void encode_table(Enc *e, int idx, const Path *p, int depth) {
  lua_State *L = e->L;
  Path kp;
  size_t at, narr = 0, nrec = 0;
  lua_Integer border;
  if (lookup_map(e, idx, &modules_key)) {  /* a loaded module: by name */
    size_t n;
    const char *name = lua_tolstring(L, -1, &n);
    put_byte(e, T_MODULE);
    put_string(e, name, n);
    lua_pop(L, 1);
    return;
  }
  put_byte(e, T_TABLE);
  at = e->len;                            /* size hints, patched below */
  put_bytes(e, "\0\0", 2);
  border = (lua_Integer)lua_rawlen(L, idx);
  kp.up = p;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    int top = lua_gettop(L);
    lua_Integer k;
    if (lua_isinteger(L, top - 1) && (k = lua_tointeger(L, top - 1)) >= 1
        && k <= border)
      narr++;
    else nrec++;
    kp.kind = P_KEYOF;
    kp.idx = top - 1;
    encode_value(e, top - 1, &kp, depth + 1);
    kp.kind = P_KEY;
    encode_value(e, top, &kp, depth + 1);
    lua_pop(L, 1);
  }
  put_byte(e, T_END);
  e->s->buf[at] = (char)size_hint(narr);
  e->s->buf[at + 1] = (char)size_hint(nrec);
  if (lua_getmetatable(L, idx)) {
    kp.kind = P_META;
    encode_value(e, lua_gettop(L), &kp, depth + 1);
    lua_pop(L, 1);
  }
  else put_byte(e, T_NIL);
}

static int dump_writer(lua_State *L, const void *p, size_t n, void *ud) {
  (void)L;
  put_bytes((Enc *)ud, p, n);
  return 0;
}

/* `self` is the function's own seen index, for T_UPJOIN references. */
static void encode_function(Enc *e, int idx, int self, const Path *p,
                            int depth) {
  lua_State *L = e->L;
  size_t at, start;
  int i, nups = 0;
  Path up;
  if (lua_iscfunction(L, idx)) {
    if (!lookup_map(e, idx, &cfuncs_key))
      refuse(e, p, lua_getupvalue(L, idx, 1) ? "C function with upvalues"
                                             : "unknown C function");
    put_byte(e, T_CFUNC);
    for (i = 1; i <= 2; i++) {
      size_t n;
      const char *s;
      lua_rawgeti(L, -1, i);
      s = lua_tolstring(L, -1, &n);
      put_string(e, s, n);
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
    return;
  }
  put_byte(e, T_FUNC);
  /* reserve room for the dump's length, patched after lua_dump */
  at = e->len;
  put_bytes(e, "\0\0\0\0\0\0\0\0", 8);
  start = e->len;
  lua_pushvalue(L, idx);
  lua_dump(L, dump_writer, e, 0);         /* keep debug info: tracebacks */
  lua_pop(L, 1);
  {
    uint64_t n = (uint64_t)(e->len - start);
    memcpy(e->s->buf + at, &n, 8);
  }
  while (lua_getupvalue(L, idx, nups + 1)) {
    lua_pop(L, 1);
    nups++;
  }
  put_size(e, (size_t)nups);
  if (nups > 0 && !e->has_upvals) {
    lua_newtable(L);
    lua_replace(L, e->upvals);
    e->has_upvals = 1;
  }
  up.up = p;
  up.kind = P_UPVALUE;
  for (i = 1; i <= nups; i++) {
    void *id = lua_upvalueid(L, idx, i);
    if (lua_rawgetp(L, e->upvals, id) == LUA_TNUMBER) {  /* shared */
      lua_Integer pos = lua_tointeger(L, -1);
      lua_pop(L, 1);
      put_byte(e, T_UPJOIN);
      note_refs(e);
      put_size(e, (size_t)(pos >> 8));
      put_size(e, (size_t)(pos & 0xff));
      continue;
    }
    lua_pop(L, 1);
    lua_pushinteger(L, ((lua_Integer)self << 8) | i);
    lua_rawsetp(L, e->upvals, id);
    up.name = lua_getupvalue(L, idx, i);
    /* _ENV is rebound to the receiver's globals, whatever it was here
    ** (a sandbox must be passed as a value instead) */
    if (strcmp(up.name, "_ENV") == 0) put_byte(e, T_GLOBALS);
    else encode_value(e, lua_gettop(L), &up, depth + 1);
    lua_pop(L, 1);
  }
}

static void encode_value(Enc *e, int idx, const Path *p, int depth) {
  lua_State *L = e->L;
  if (depth > MAX_DEPTH) {
    push_path(L, p);
    luaL_error(L, "value too deeply nested at %s", lua_tostring(L, -1));
  }
  switch (lua_type(L, idx)) {
    case LUA_TNIL: put_byte(e, T_NIL); break;
    case LUA_TBOOLEAN: put_byte(e, lua_toboolean(L, idx) ? T_TRUE : T_FALSE);
      break;
    case LUA_TNUMBER:
      if (lua_isinteger(L, idx)) {
        lua_Integer i = lua_tointeger(L, idx);
        put_byte(e, T_INT);
        put_bytes(e, &i, sizeof i);
      }
      else {
        lua_Number n = lua_tonumber(L, idx);
        put_byte(e, T_FLOAT);
        put_bytes(e, &n, sizeof n);
      }
      break;
    case LUA_TSTRING: {
      size_t n;
      const char *s = lua_tolstring(L, idx, &n);
      put_byte(e, T_STR);
      put_string(e, s, n);
      break;
    }
    case LUA_TTABLE: case LUA_TFUNCTION: {
      int ref;
      luaL_checkstack(L, 8, "value too deeply nested");
      ref = seen_index(e, idx);
      if (ref) {
        put_byte(e, T_REF);
        put_size(e, (size_t)ref);
        note_refs(e);
      }
      else if (lua_istable(L, idx)) encode_table(e, idx, p, depth);
      else encode_function(e, idx, e->nseen, p, depth);
      break;
    }
    case LUA_TUSERDATA: {
      duet_Object *o = duet_to_object(L, idx);
      if (o == NULL) {
        const char *name = "userdata";
        if (luaL_getmetafield(L, idx, "__name") == LUA_TSTRING)
          name = lua_pushfstring(L, "userdata (%s)", lua_tostring(L, -1));
        refuse(e, p, name);
      }
      if (duet_error_index(o) >= 0) {     /* by name: fine anywhere */
        put_byte(e, T_ERROR);
        put_byte(e, duet_error_index(o));
        break;
      }
      if (e->flags & DUET_PORTABLE) {
        const char *what = lua_pushfstring(L, "%s out of the process",
                                           o->type->name);
        refuse(e, p, what);
      }
      if (e->nrefs == e->s->refcap) {
        size_t cap = e->s->refcap ? e->s->refcap * 2 : 8;
        duet_Object **r = (duet_Object **)realloc(e->s->refs,
                                                  cap * sizeof *r);
        if (r == NULL) luaL_error(L, "not enough memory");
        e->s->refs = r;
        e->s->refcap = cap;
      }
      e->s->refs[e->nrefs++] = o;
      put_byte(e, T_OBJECT);
      put_size(e, e->nrefs - 1);
      break;
    }
    case LUA_TLIGHTUSERDATA: refuse(e, p, "light userdata"); break;
    case LUA_TTHREAD: refuse(e, p, "coroutine"); break;
    default: refuse(e, p, luaL_typename(L, idx)); break;
  }
}

duet_Message *duet_encode(lua_State *L, int first, int n, const char *where,
                          int flags) {
  Enc e;
  Path root, item;
  duet_Message *m;
  int i, top = lua_gettop(L);
  size_t k;
  pthread_once(&scratch_once, scratch_init);
  memset(&e, 0, sizeof e);
  e.L = L;
  e.flags = flags;
  e.si = NULL;                            /* needed only for the maps */
  e.s = (Scratch *)pthread_getspecific(scratch_key);
  if (e.s == NULL) {
    e.s = (Scratch *)calloc(1, sizeof(Scratch));
    if (e.s == NULL) luaL_error(L, "not enough memory");
    pthread_setspecific(scratch_key, e.s);
  }
  first = lua_absindex(L, first);
  root.up = NULL;
  root.kind = P_ROOT;
  root.name = where;
  item.up = &root;
  item.kind = P_INDEX;
  /* slots for the seen and upvalue tables, filled when first needed */
  luaL_checkstack(L, 16, NULL);
  lua_pushnil(L);
  lua_pushnil(L);
  lua_pushnil(L);
  lua_pushnil(L);
  e.seen = top + 1;
  e.upvals = top + 2;
  e.maps = top + 3;
  put_size(&e, (size_t)n * 2);            /* bit 0: note_refs */
  for (i = 0; i < n; i++) {
    item.n = i + 1;
    encode_value(&e, first + i, (n > 1 || (flags & DUET_LIST)) ? &item : &root,
                 0);
  }
  lua_settop(L, top);
  m = (duet_Message *)malloc(sizeof *m + e.nrefs * sizeof(duet_Object *)
                             + e.len);
  if (m == NULL) luaL_error(L, "not enough memory");
  m->len = e.len;
  m->nrefs = e.nrefs;
  m->refs = (duet_Object **)(m + 1);
  m->data = (char *)(m->refs + e.nrefs);
  memcpy(m->data, e.s->buf, e.len);
  for (k = 0; k < e.nrefs; k++) {         /* success: now hold them */
    m->refs[k] = e.s->refs[k];
    duet_retain(m->refs[k]);
    duet_socket_sent(L, m->refs[k]);      /* moved by ownership */
  }
  if (e.s->cap > (1u << 20)) {            /* do not keep a huge scratch */
    free(e.s->buf);
    e.s->buf = NULL;
    e.s->cap = 0;
  }
  return m;
}

void duet_message_free(duet_Message *m) {
  size_t k;
  if (m == NULL) return;
  for (k = 0; k < m->nrefs; k++) {
    if (m->refs[k] == NULL) continue;     /* a holder's weak self-reference */
    duet_socket_unsent(m->refs[k]);       /* never decoded: back home */
    duet_release(m->refs[k]);
  }
  free(m);
}

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

duet_Message *duet_message_copy(const duet_Message *m) {
  size_t size = sizeof *m + m->nrefs * sizeof(duet_Object *) + m->len, k;
  duet_Message *c = (duet_Message *)malloc(size);
  if (c == NULL) return NULL;
  memcpy(c, m, size);
  c->refs = (duet_Object **)(c + 1);
  c->data = (char *)(c->refs + c->nrefs);
  for (k = 0; k < c->nrefs; k++) duet_retain(c->refs[k]);
  return c;
}

static int box_gc(lua_State *L) {
  duet_Message **box = (duet_Message **)lua_touserdata(L, 1);
  size_t i, n = lua_rawlen(L, 1) / sizeof *box;
  for (i = 0; i < n; i++) {
    duet_message_free(box[i]);
    box[i] = NULL;
  }
  return 0;
}

duet_Message **duet_new_box(lua_State *L, int n) {
  duet_Message **box = (duet_Message **)lua_newuserdatauv(
      L, (size_t)n * sizeof *box, 0);
  memset(box, 0, (size_t)n * sizeof *box);
  if (luaL_newmetatable(L, "duet.box")) {
    lua_pushcfunction(L, box_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  return box;
}

/* ------------------------------------------------------------- decoding */

typedef struct Dec {
  lua_State *L;
  const unsigned char *p, *end;
  const duet_Message *m;                  /* NULL: a portable string */
  int seen;                               /* stack slot: index -> value */
  int nseen;
  int refs;                               /* T_REF/T_UPJOIN in it? */
  int functions;                          /* code allowed? */
} Dec;

__attribute__((noreturn))
static void dec_fail(Dec *d, const char *why) {
  luaL_error(d->L, "cannot decode: %s", why);
  for (;;) {}                             /* not reached */
}

static int get_byte(Dec *d) {
  if (d->p >= d->end) dec_fail(d, "truncated input");
  return *d->p++;
}

static size_t get_size(Dec *d) {
  size_t n = 0;
  int shift = 0, b;
  do {
    if (shift > 56) dec_fail(d, "bad length");
    b = get_byte(d);
    n |= (size_t)(b & 0x7f) << shift;
    shift += 7;
  } while (b & 0x80);
  return n;
}

static const char *get_bytes(Dec *d, size_t n) {
  const char *s = (const char *)d->p;
  if ((size_t)(d->end - d->p) < n) dec_fail(d, "truncated input");
  d->p += n;
  return s;
}

static void need_code(Dec *d) {
  if (!d->functions)
    dec_fail(d, "code not allowed (pass {functions = true} to decode it)");
}

/* Number the table/function at idx for T_REF; the table of them takes a
** slot reserved below the values, made only when first needed (and only
** if the message refers back at all). */
static void remember(Dec *d, int idx) {
  lua_State *L = d->L;
  if (!d->refs) return;
  if (d->nseen == 0) {
    lua_createtable(L, 4, 0);
    lua_replace(L, d->seen);
  }
  lua_pushvalue(L, idx);
  lua_rawseti(L, d->seen, ++d->nseen);
}

/* Push package.loaded[name], or require(name). */
static void push_module(Dec *d, const char *name) {
  lua_State *L = d->L;
  lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  if (lua_getfield(L, -1, name) != LUA_TNIL) {
    lua_remove(L, -2);
    return;
  }
  lua_pop(L, 2);
  lua_getglobal(L, "require");
  lua_pushstring(L, name);
  lua_call(L, 1, 1);
}

typedef struct Chunk { const char *p; size_t n; } Chunk;

static const char *chunk_reader(lua_State *L, void *ud, size_t *size) {
  Chunk *c = (Chunk *)ud;
  (void)L;
  *size = c->n;
  c->n = 0;
  return *size ? c->p : NULL;
}

static void decode_value(Dec *d, int depth);

static void decode_function(Dec *d, int depth) {
  lua_State *L = d->L;
  uint64_t len;
  Chunk c;
  size_t i, nups;
  int f;
  luaL_checkstack(L, 8, "cannot decode: nested too deeply");
  need_code(d);
  memcpy(&len, get_bytes(d, 8), 8);
  if (len > (uint64_t)(d->end - d->p)) dec_fail(d, "truncated input");
  c.n = (size_t)len;
  c.p = get_bytes(d, c.n);
  if (lua_load(L, chunk_reader, &c, "=(moved function)", "b") != LUA_OK)
    luaL_error(L, "cannot decode: %s", lua_tostring(L, -1));
  f = lua_gettop(L);
  remember(d, f);
  nups = get_size(d);
  if (nups > 255 || (nups > 0 && lua_getupvalue(L, f, (int)nups) == NULL)
      || lua_getupvalue(L, f, (int)nups + 1) != NULL)
    dec_fail(d, "upvalue count does not match");
  lua_settop(L, f);
  for (i = 1; i <= nups; i++) {
    if (d->p < d->end && *d->p == T_UPJOIN) {
      size_t other, n;
      d->p++;
      other = get_size(d);
      n = get_size(d);
      if (other < 1 || other > (size_t)d->nseen || n < 1 || n > 255)
        dec_fail(d, "bad upvalue reference");
      lua_rawgeti(L, d->seen, (lua_Integer)other);
      if (!lua_isfunction(L, -1) || lua_iscfunction(L, -1)
          || lua_getupvalue(L, -1, (int)n) == NULL)
        dec_fail(d, "bad upvalue reference");
      lua_pop(L, 1);
      lua_upvaluejoin(L, f, (int)i, -1, (int)n);
      lua_pop(L, 1);
    }
    else {
      decode_value(d, depth + 1);
      lua_setupvalue(L, f, (int)i);
    }
  }
}

/* A size hint from the encoder, bounded by what the input can hold. */
static int get_hint(Dec *d) {
  int h = get_byte(d);
  size_t n, room = (size_t)(d->end - d->p) / 2;
  if (h == 0) return 0;
  n = h > 31 ? room : (size_t)1 << (h - 1);
  return (int)(n < room ? n : room);
}

static void decode_table(Dec *d, int depth) {
  lua_State *L = d->L;
  int t, narr, nrec;
  luaL_checkstack(L, 8, "cannot decode: nested too deeply");
  narr = get_hint(d);
  nrec = get_hint(d);
  lua_createtable(L, narr, nrec);
  t = lua_gettop(L);
  remember(d, t);
  for (;;) {
    if (d->p < d->end && *d->p == T_END) {
      d->p++;
      break;
    }
    decode_value(d, depth + 1);
    if (lua_isnil(L, -1)
        || (lua_type(L, -1) == LUA_TNUMBER && lua_tonumber(L, -1)
            != lua_tonumber(L, -1)))
      dec_fail(d, "bad table key");
    decode_value(d, depth + 1);
    lua_rawset(L, t);
  }
  decode_value(d, depth + 1);             /* metatable */
  if (lua_istable(L, -1)) lua_setmetatable(L, t);
  else if (lua_isnil(L, -1)) lua_pop(L, 1);
  else dec_fail(d, "bad metatable");
}

/* Stack room: a scalar takes one slot, which decode_list (top level) and
** decode_table (its key and value) make sure of; every case that pushes
** more checks for itself. */
static void decode_value(Dec *d, int depth) {
  lua_State *L = d->L;
  int tag;
  if (depth > MAX_DEPTH) dec_fail(d, "nested too deeply");
  tag = get_byte(d);                      /* (room: see stack_room) */
  switch (tag) {
    case T_NIL: lua_pushnil(L); break;
    case T_FALSE: lua_pushboolean(L, 0); break;
    case T_TRUE: lua_pushboolean(L, 1); break;
    case T_INT: {
      lua_Integer i;
      memcpy(&i, get_bytes(d, sizeof i), sizeof i);
      lua_pushinteger(L, i);
      break;
    }
    case T_FLOAT: {
      lua_Number n;
      memcpy(&n, get_bytes(d, sizeof n), sizeof n);
      lua_pushnumber(L, n);
      break;
    }
    case T_STR: {
      size_t n = get_size(d);
      lua_pushlstring(L, get_bytes(d, n), n);
      break;
    }
    case T_TABLE: decode_table(d, depth); break;
    case T_REF: {
      size_t i = get_size(d);
      if (i < 1 || i > (size_t)d->nseen) dec_fail(d, "bad reference");
      lua_rawgeti(L, d->seen, (lua_Integer)i);
      break;
    }
    case T_FUNC: decode_function(d, depth); break;
    case T_CFUNC: {
      size_t n;
      const char *s;
      need_code(d);
    luaL_checkstack(L, 8, "cannot decode: nested too deeply");
      n = get_size(d);
      s = get_bytes(d, n);
      lua_pushlstring(L, s, n);
      if (s[0] == '@') {                  /* a duet method: "@duet.Type" */
        push_module(d, "duet.core");      /* makes the types in this state */
        lua_pop(L, 1);
        duet_open_named(L, lua_tostring(L, -1) + 1);
        if (luaL_getmetatable(L, lua_tostring(L, -1) + 1) == LUA_TTABLE)
          lua_getfield(L, -1, "__methods");
        else lua_pushnil(L);
        lua_remove(L, -2);
      }
      else push_module(d, lua_tostring(L, -1));
      n = get_size(d);
      s = get_bytes(d, n);
      lua_pushlstring(L, s, n);
      /* not raw: duet.core opens a concept when a name is first used */
      if (!lua_istable(L, -2) || lua_gettable(L, -2) != LUA_TFUNCTION
          || !lua_iscfunction(L, -1))
        dec_fail(d, "unknown C function");
      lua_replace(L, -3);
      lua_pop(L, 1);
      remember(d, lua_gettop(L));         /* numbered like any function */
      break;
    }
    case T_MODULE: {
      size_t n;
      const char *s;
      need_code(d);
    luaL_checkstack(L, 8, "cannot decode: nested too deeply");
      n = get_size(d);
      s = get_bytes(d, n);
      lua_pushlstring(L, s, n);
      push_module(d, lua_tostring(L, -1));
      lua_remove(L, -2);
      remember(d, lua_gettop(L));         /* numbered like any table */
      break;
    }
    case T_GLOBALS:
      need_code(d);
      lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
      break;
    case T_ERROR: {
      int which = get_byte(d);
      if (which > DUET_ERR_BROKEN_BARRIER) dec_fail(d, "bad error value");
      duet_push_error(L, which);
      break;
    }
    case T_OBJECT: {
      size_t i = get_size(d);
      if (d->m == NULL || i >= d->m->nrefs) dec_fail(d, "bad object");
      duet_push_object(L, d->m->refs[i]);
      duet_socket_arrived(L, d->m->refs[i]);
      break;
    }
    default: dec_fail(d, "unknown tag");
  }
}

/* Decode the value list in [p, end); leaves only the values pushed. */
static int decode_list(lua_State *L, const duet_Message *m, const char *p,
                       size_t len, int functions) {
  Dec d;
  size_t n, i;
  int top = lua_gettop(L);
  d.L = L;
  d.p = (const unsigned char *)p;
  d.end = d.p + len;
  d.m = m;
  d.nseen = 0;
  d.functions = functions;
  n = get_size(&d);
  d.refs = (int)(n & 1);
  n >>= 1;
  if (n > (size_t)(d.end - d.p)) dec_fail(&d, "truncated input");
  luaL_checkstack(L, (int)n + 8, "too many values");
  lua_pushnil(L);                         /* slot for the seen table */
  d.seen = top + 1;
  for (i = 0; i < n; i++) decode_value(&d, 0);
  if (d.p != d.end) dec_fail(&d, "trailing bytes");
  lua_remove(L, d.seen);
  return lua_gettop(L) - top;
}

int duet_decode(lua_State *L, const duet_Message *m) {
  return decode_list(L, m, m->data, m->len, 1);
}

int duet_decode_bytes(lua_State *L, const char *p, size_t len,
                      int functions) {
  return decode_list(L, NULL, p, len, functions);
}

/* The message goes in a box, so that __gc frees it if decoding raises.
** One box per call: decoding can run Lua (a require, a finalizer) and so
** decode again, inside, in the same state. */
int duet_decode_free(lua_State *L, duet_Message *m) {
  int n, at = lua_gettop(L) + 1;
  duet_Message **box = duet_new_box(L, 1);
  box[0] = m;
  n = duet_decode(L, m);
  box[0] = NULL;
  duet_message_free(m);
  lua_remove(L, at);
  return n;
}

/* ------------------------------------------------------- the public face */

static int transfer_encode(lua_State *L) {
  duet_Message *m;
  luaL_checkany(L, 1);
  lua_settop(L, 1);
  m = duet_encode(L, 1, 1, "value", DUET_PORTABLE);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addstring(&b, PORTABLE_MAGIC);
  luaL_addlstring(&b, m->data, m->len);
  duet_message_free(m);                   /* portable: holds no objects */
  luaL_pushresult(&b);
  return 1;
}

static int transfer_decode(lua_State *L) {
  size_t len, magic = sizeof PORTABLE_MAGIC - 1;
  const char *s = luaL_checklstring(L, 1, &len);
  int functions = 0;
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_getfield(L, 2, "functions");
    functions = lua_toboolean(L, -1);
  }
  lua_settop(L, 1);
  if (len < magic || memcmp(s, PORTABLE_MAGIC, magic) != 0)
    return luaL_error(L, "cannot decode: not a duet.encode string");
  if (decode_list(L, NULL, s + magic, len - magic, functions) != 1)
    return luaL_error(L, "cannot decode: expected one value");
  return 1;
}

static const luaL_Reg transfer_funcs[] = {
  {"encode", transfer_encode},
  {"decode", transfer_decode},
  {NULL, NULL}
};

int duet_transfer_open(lua_State *L) {
  luaL_setfuncs(L, transfer_funcs, 0);
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &info_key) != LUA_TNIL) {
    lua_pop(L, 1);                        /* loaded twice: keep the first */
    return 0;
  }
  lua_pop(L, 1);
  StateInfo *si = (StateInfo *)lua_newuserdatauv(L, sizeof(StateInfo), 0);
  memset(si, 0, sizeof *si);
  si->maps_version = -1;
  lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  if (!lua_getmetatable(L, -1)) {          /* watch for new modules */
    lua_createtable(L, 0, 1);
    lua_pushvalue(L, -3);
    lua_pushcclosure(L, loaded_newindex, 1);
    lua_setfield(L, -2, "__newindex");
    lua_setmetatable(L, -2);
    si->hooked = 1;
  }
  else lua_pop(L, 1);
  lua_pop(L, 1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &info_key);
  return 0;
}

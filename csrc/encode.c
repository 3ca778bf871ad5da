/*
** encode.c — a value list into a duet_Message: flat bytes (transfer.h's
** tags) plus the duet objects it references. It runs no Lua code, and it
** retains those objects only once it has succeeded, so an error half-way
** leaves nothing behind; the error names where the value sits
** ("args[2].log").
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transfer.h"

#define SMALL_SEEN 16                     /* tables/functions seen, in C */

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
  int has_upvals;
  int flags;
  duet_Maps maps;                         /* names of modules, C functions */
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

static void encode_table(Enc *e, int idx, const Path *p, int depth) {
  lua_State *L = e->L;
  Path kp;
  size_t at, narr = 0, nrec = 0;
  lua_Integer border;
  if (duet_map_lookup(L, &e->maps, idx, DUET_MAP_MODULES)) {  /* by name */
    size_t n;
    const char *name = lua_tolstring(L, -1, &n);
    put_byte(e, T_MODULE);
    put_string(e, name, n);
    lua_pop(L, 1);
    return;
  }
  /* duet's objects written in Lua (all of the coroutines runtime's) are
  ** tables: like the C ones, none means anything in another process */
  if ((e->flags & DUET_PORTABLE) && lua_getmetatable(L, idx)) {
    lua_pushliteral(L, "__name");
    if (lua_rawget(L, -2) == LUA_TSTRING
        && strncmp(lua_tostring(L, -1), "duet.", 5) == 0)
      refuse(e, p, lua_pushfstring(L, "%s out of the process",
                                   lua_tostring(L, -1)));
    lua_pop(L, 2);
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
    if (!duet_map_lookup(L, &e->maps, idx, DUET_MAP_CFUNCS))
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
  e.maps.slot = top + 3;
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
    if (m->refs[k]->type->moves)          /* moved by ownership */
      m->refs[k]->type->moves->sent(L, m->refs[k]);
  }
  if (e.s->cap > (1u << 20)) {            /* do not keep a huge scratch */
    free(e.s->buf);
    e.s->buf = NULL;
    e.s->cap = 0;
  }
  return m;
}


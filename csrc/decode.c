/*
** decode.c — a duet_Message (or duet.encode's portable bytes) back into
** values in the receiving state. Every byte read is checked: a malformed
** or truncated message raises an error, never a crash. Code (functions,
** modules, _ENV) is decoded only where allowed.
*/
#include <stdint.h>
#include <string.h>

#include "transfer.h"

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
  lua_CFunction open;
  lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  if (lua_getfield(L, -1, name) != LUA_TNIL) {
    lua_remove(L, -2);
    return;
  }
  lua_pop(L, 2);
  if ((open = duet_builtin_opener(name)) != NULL) {  /* no package */
    luaL_requiref(L, name, open, 0);
    return;
  }
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

/* ------------------------------------------------- one helper per tag */

static void decode_int(Dec *d) {
  lua_Integer i;
  memcpy(&i, get_bytes(d, sizeof i), sizeof i);
  lua_pushinteger(d->L, i);
}

static void decode_float(Dec *d) {
  lua_Number n;
  memcpy(&n, get_bytes(d, sizeof n), sizeof n);
  lua_pushnumber(d->L, n);
}

static void decode_string(Dec *d) {
  size_t n = get_size(d);
  lua_pushlstring(d->L, get_bytes(d, n), n);
}

/* A table or function met before, by its number. */
static void decode_ref(Dec *d) {
  size_t i = get_size(d);
  if (i < 1 || i > (size_t)d->nseen) dec_fail(d, "bad reference");
  lua_rawgeti(d->L, d->seen, (lua_Integer)i);
}

/* Push the name that follows, as a string. */
static const char *push_name(Dec *d) {
  size_t n = get_size(d);
  const char *s = get_bytes(d, n);
  return lua_pushlstring(d->L, s, n);
}

/* A C function by name: module (or "@duet.Type", a duet method) and key. */
static void decode_cfunction(Dec *d) {
  lua_State *L = d->L;
  const char *mod;
  need_code(d);
  luaL_checkstack(L, 8, "cannot decode: nested too deeply");
  mod = push_name(d);
  if (mod[0] == '@') {                    /* a duet method: "@duet.Type" */
    duet_open_type(L, mod + 1);
    if (luaL_getmetatable(L, mod + 1) == LUA_TTABLE)
      lua_getfield(L, -1, "__methods");
    else lua_pushnil(L);
    lua_remove(L, -2);
  }
  else push_module(d, mod);
  push_name(d);
  /* not raw: duet.core opens a concept when a name is first used */
  if (!lua_istable(L, -2) || lua_gettable(L, -2) != LUA_TFUNCTION
      || !lua_iscfunction(L, -1))
    dec_fail(d, "unknown C function");
  lua_replace(L, -3);
  lua_pop(L, 1);
  remember(d, lua_gettop(L));             /* numbered like any function */
}

/* A loaded module by name: this state's own, required if need be. */
static void decode_module(Dec *d) {
  lua_State *L = d->L;
  need_code(d);
  luaL_checkstack(L, 8, "cannot decode: nested too deeply");
  push_module(d, push_name(d));
  lua_remove(L, -2);
  remember(d, lua_gettop(L));             /* numbered like any table */
}

static void decode_error(Dec *d) {
  int which = get_byte(d);
  if (which > DUET_ERR_BROKEN_BARRIER) dec_fail(d, "bad error value");
  duet_push_error(d->L, which);
}

/* A duet object of the message; one that moves by ownership (a socket)
** arrives with it. */
static void decode_object(Dec *d) {
  size_t i = get_size(d);
  duet_Object *o;
  if (d->m == NULL || i >= d->m->nrefs) dec_fail(d, "bad object");
  o = d->m->refs[i];
  duet_push_object(d->L, o);
  if (o->type->moves) o->type->moves->arrived(d->L, o);
}

/* Stack room: a scalar takes one slot, which decode_list (top level) and
** decode_table (its key and value) make sure of; every helper that pushes
** more (a table, a function, a C function, a module) checks for itself. */
static void decode_value(Dec *d, int depth) {
  lua_State *L = d->L;
  if (depth > MAX_DEPTH) dec_fail(d, "nested too deeply");
  switch (get_byte(d)) {
    case T_NIL: lua_pushnil(L); break;
    case T_FALSE: lua_pushboolean(L, 0); break;
    case T_TRUE: lua_pushboolean(L, 1); break;
    case T_INT: decode_int(d); break;
    case T_FLOAT: decode_float(d); break;
    case T_STR: decode_string(d); break;
    case T_TABLE: decode_table(d, depth); break;
    case T_REF: decode_ref(d); break;
    case T_FUNC: decode_function(d, depth); break;
    case T_CFUNC: decode_cfunction(d); break;
    case T_MODULE: decode_module(d); break;
    case T_GLOBALS:                       /* a moved function's _ENV */
      need_code(d);
      lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
      break;
    case T_ERROR: decode_error(d); break;
    case T_OBJECT: decode_object(d); break;
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


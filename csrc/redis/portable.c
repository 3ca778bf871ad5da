/*
** portable.c — pack(...) / unpack(s): the values that cross the network
** between a RemoteExecutor and its workers, in a format that any build on
** any byte order reads the same way, and that never carries code.
**
**   message  = version:u8 (1)  count:u32  value*count
**   value    = 0 nil | 1 false | 2 true
**            | 3 integer:i64 | 4 float:f64 (IEEE 754 bits)
**            | 5 length:u32 bytes | 6 pairs:u32 (key value)*pairs
**
** Every multi-byte number is big-endian. Tables are trees of plain data:
** a table met twice on one path (a cycle) or a function, userdata or
** coroutine is refused. unpack() reads untrusted bytes: every length is
** checked against what is left, nesting is bounded, and malformed input
** raises an error, never reads out of bounds (spec/fuzz/portable_fuzzer.c).
*/
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "redis_core.h"

#define VERSION 1
#define MAX_DEPTH 100

enum { T_NIL, T_FALSE, T_TRUE, T_INT, T_FLOAT, T_STRING, T_TABLE };

/* The output grows in a userdata of its own rather than a luaL_Buffer,
** whose stack slots may not be mixed with the table traversal's; an
** error on the way leaves the memory to this userdata's __gc. */
typedef struct {
  char *data;
  size_t len, cap;
} Out;

#define OUT "duet.redis.PackBuffer"

static void add(lua_State *L, Out *o, const void *p, size_t n) {
  if (o->cap - o->len < n) {
    size_t cap = o->cap ? o->cap : 256;
    char *d;
    while (cap - o->len < n) {
      if (cap > ((size_t)-1) / 2) luaL_error(L, "not enough memory");
      cap *= 2;
    }
    d = realloc(o->data, cap);
    if (d == NULL) luaL_error(L, "not enough memory");
    o->data = d;
    o->cap = cap;
  }
  memcpy(o->data + o->len, p, n);
  o->len += n;
}

static void add_byte(lua_State *L, Out *o, int c) {
  unsigned char u = (unsigned char)c;
  add(L, o, &u, 1);
}

static void put_u32(lua_State *L, Out *o, uint32_t v) {
  unsigned char c[4];
  int i;
  for (i = 3; i >= 0; i--) { c[i] = (unsigned char)(v & 0xff); v >>= 8; }
  add(L, o, c, 4);
}

static void put_u64(lua_State *L, Out *o, uint64_t v) {
  unsigned char c[8];
  int i;
  for (i = 7; i >= 0; i--) { c[i] = (unsigned char)(v & 0xff); v >>= 8; }
  add(L, o, c, 8);
}

static int out_gc(lua_State *L) {
  Out *o = luaL_checkudata(L, 1, OUT);
  free(o->data);
  o->data = NULL;
  o->len = o->cap = 0;
  return 0;
}

/* Encode the value at index idx; `seen` (an absolute index) holds the
** tables on the current path. */
static void encode(lua_State *L, Out *b, int idx, int seen, int depth) {
  switch (lua_type(L, idx)) {
    case LUA_TNIL: add_byte(L, b, T_NIL); break;
    case LUA_TBOOLEAN:
      add_byte(L, b, lua_toboolean(L, idx) ? T_TRUE : T_FALSE);
      break;
    case LUA_TNUMBER:
      if (lua_isinteger(L, idx)) {
        add_byte(L, b, T_INT);
        put_u64(L, b, (uint64_t)lua_tointeger(L, idx));
      } else {
        double d = (double)lua_tonumber(L, idx);
        uint64_t bits;
        memcpy(&bits, &d, sizeof bits);
        add_byte(L, b, T_FLOAT);
        put_u64(L, b, bits);
      }
      break;
    case LUA_TSTRING: {
      size_t len;
      const char *s = lua_tolstring(L, idx, &len);
      if (len > UINT32_MAX) luaL_error(L, "cannot pack a string over 4 GiB");
      add_byte(L, b, T_STRING);
      put_u32(L, b, (uint32_t)len);
      add(L, b, s, len);
      break;
    }
    case LUA_TTABLE: {
      uint32_t pairs = 0;
      if (depth >= MAX_DEPTH) luaL_error(L, "cannot pack tables nested over %d deep", MAX_DEPTH);
      luaL_checkstack(L, 6, "tables nested too deep");
      lua_pushvalue(L, idx);
      if (lua_rawget(L, seen) != LUA_TNIL) luaL_error(L, "cannot pack a table that contains itself");
      lua_pop(L, 1);
      lua_pushvalue(L, idx);
      lua_pushboolean(L, 1);
      lua_rawset(L, seen);
      lua_pushnil(L);
      while (lua_next(L, idx) != 0) { pairs++; lua_pop(L, 1); }
      add_byte(L, b, T_TABLE);
      put_u32(L, b, pairs);
      lua_pushnil(L);
      while (lua_next(L, idx) != 0) {
        int top = lua_gettop(L);
        encode(L, b, top - 1, seen, depth + 1);
        encode(L, b, top, seen, depth + 1);
        lua_pop(L, 1);
      }
      lua_pushvalue(L, idx);
      lua_pushnil(L);
      lua_rawset(L, seen);
      break;
    }
    default:
      luaL_error(L, "cannot pack a %s (only nil, booleans, numbers, strings and tables travel)",
                 luaL_typename(L, idx));
  }
}

/* pack(...) -> string */
static int pk_pack(lua_State *L) {
  int i, n = lua_gettop(L), seen;
  Out *o;
  lua_newtable(L);
  seen = lua_gettop(L);
  o = lua_newuserdatauv(L, sizeof *o, 0);
  o->data = NULL;
  o->len = o->cap = 0;
  luaL_setmetatable(L, OUT);
  add_byte(L, o, VERSION);
  put_u32(L, o, (uint32_t)n);
  for (i = 1; i <= n; i++) encode(L, o, i, seen, 0);
  lua_pushlstring(L, o->data, o->len);
  free(o->data);
  o->data = NULL;
  o->len = o->cap = 0;
  return 1;
}

typedef struct {
  const unsigned char *p, *end;
} Input;

static int malformed(lua_State *L, const char *why) {
  return luaL_error(L, "malformed portable data: %s", why);
}

static uint64_t get_n(lua_State *L, Input *in, int bytes) {
  uint64_t v = 0;
  int i;
  if (in->end - in->p < bytes) malformed(L, "truncated");
  for (i = 0; i < bytes; i++) v = (v << 8) | *in->p++;
  return v;
}

static void decode(lua_State *L, Input *in, int depth) {
  int tag;
  luaL_checkstack(L, 4, "tables nested too deep");
  if (in->p >= in->end) malformed(L, "truncated");
  tag = *in->p++;
  switch (tag) {
    case T_NIL: lua_pushnil(L); break;
    case T_FALSE: lua_pushboolean(L, 0); break;
    case T_TRUE: lua_pushboolean(L, 1); break;
    case T_INT: lua_pushinteger(L, (lua_Integer)get_n(L, in, 8)); break;
    case T_FLOAT: {
      uint64_t bits = get_n(L, in, 8);
      double d;
      memcpy(&d, &bits, sizeof d);
      lua_pushnumber(L, (lua_Number)d);
      break;
    }
    case T_STRING: {
      uint64_t len = get_n(L, in, 4);
      if ((uint64_t)(in->end - in->p) < len) malformed(L, "string longer than the data");
      lua_pushlstring(L, (const char *)in->p, (size_t)len);
      in->p += len;
      break;
    }
    case T_TABLE: {
      uint64_t pairs = get_n(L, in, 4), i;
      if (depth >= MAX_DEPTH) malformed(L, "tables nested too deep");
      if ((uint64_t)(in->end - in->p) / 2 < pairs) malformed(L, "more pairs than the data holds");
      lua_createtable(L, 0, pairs > 1024 ? 1024 : (int)pairs);
      for (i = 0; i < pairs; i++) {
        decode(L, in, depth + 1);
        if (lua_isnil(L, -1)) malformed(L, "nil key");
        if (lua_type(L, -1) == LUA_TNUMBER && lua_tonumber(L, -1) != lua_tonumber(L, -1))
          malformed(L, "NaN key");
        decode(L, in, depth + 1);
        lua_rawset(L, -3);
      }
      break;
    }
    default: malformed(L, "unknown tag");
  }
}

/* unpack(s) -> the values pack() was given. */
static int pk_unpack(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  Input in;
  uint64_t n, i;
  in.p = (const unsigned char *)s;
  in.end = in.p + len;
  if (len < 1) malformed(L, "empty");
  if (*in.p != VERSION) return luaL_error(L, "portable data of unknown version %d", *in.p);
  in.p++;
  n = get_n(L, &in, 4);
  if ((uint64_t)(in.end - in.p) < n) malformed(L, "more values than the data holds");
  luaL_checkstack(L, (int)n + 4, "too many values");
  for (i = 0; i < n; i++) decode(L, &in, 0);
  if (in.p != in.end) malformed(L, "trailing bytes");
  return (int)n;
}

static const luaL_Reg functions[] = {
  {"pack", pk_pack},
  {"unpack", pk_unpack},
  {NULL, NULL}
};

void duet_portable_open(lua_State *L) {
  if (luaL_newmetatable(L, OUT)) {
    lua_pushcfunction(L, out_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  luaL_setfuncs(L, functions, 0);
}

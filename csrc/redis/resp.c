/*
** resp.c — RESP, Redis's wire format: duet.redis.Reader wraps hiredis's
** reply reader (the parser only: the bytes come from a duet socket, so
** waiting for them blocks only the calling thread or task), and format()
** writes a command as a RESP array of bulk strings.
**
** Replies become Lua values: a bulk or status string a string, an integer
** an integer, an array a table, nil nil (false inside an array, which
** cannot hold nil) and an error reply {err = message} inside an array; at
** the top, get() returns an error reply as false, message.
*/
#include <stdio.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "redis_core.h"

#define READER "duet.redis.Reader"

typedef struct {
  redisReader *reader;                  /* NULL once closed */
  redisReply *held;                     /* a reply being turned into Lua */
} Reader;

static Reader *check_reader(lua_State *L) {
  Reader *r = luaL_checkudata(L, 1, READER);
  luaL_argcheck(L, r->reader != NULL, 1, "closed reader");
  return r;
}

static void drop_held(Reader *r) {
  if (r->held != NULL) {
    freeReplyObject(r->held);
    r->held = NULL;
  }
}

/* reader() -> a Reader in a safe empty state before hiredis allocates. */
static int resp_reader(lua_State *L) {
  Reader *r = lua_newuserdatauv(L, sizeof *r, 0);
  r->reader = NULL;
  r->held = NULL;
  luaL_setmetatable(L, READER);
  r->reader = redisReaderCreate();
  if (r->reader == NULL) return luaL_error(L, "not enough memory");
  return 1;
}

static int reader_gc(lua_State *L) {
  Reader *r = luaL_checkudata(L, 1, READER);
  drop_held(r);
  if (r->reader != NULL) {
    redisReaderFree(r->reader);
    r->reader = NULL;
  }
  return 0;
}

/* r:feed(bytes) -> nothing */
static int reader_feed(lua_State *L) {
  Reader *r = check_reader(L);
  size_t len;
  const char *s = luaL_checklstring(L, 2, &len);
  if (redisReaderFeed(r->reader, s, len) != REDIS_OK)
    return luaL_error(L, "redis protocol error: %s", r->reader->errstr);
  return 0;
}

static void push_reply(lua_State *L, const redisReply *rep, int nested) {
  size_t i;
  luaL_checkstack(L, 3, "reply nested too deep");
  switch (rep->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
      lua_pushlstring(L, rep->str, rep->len);
      break;
    case REDIS_REPLY_INTEGER:
      lua_pushinteger(L, (lua_Integer)rep->integer);
      break;
    case REDIS_REPLY_NIL:
      if (nested) lua_pushboolean(L, 0);
      else lua_pushnil(L);
      break;
    case REDIS_REPLY_ERROR:
      lua_createtable(L, 0, 1);
      lua_pushlstring(L, rep->str, rep->len);
      lua_setfield(L, -2, "err");
      break;
    default:                            /* REDIS_REPLY_ARRAY */
      lua_createtable(L, rep->elements > 0x7fffffff ? 0 : (int)rep->elements, 0);
      for (i = 0; i < rep->elements; i++) {
        push_reply(L, rep->element[i], 1);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
      }
      break;
  }
}

/* r:get() -> nothing while no whole reply has arrived; true, value for a
** reply; false, message for an error reply. The reply is held by the
** reader while it becomes Lua values, so a memory error frees it later. */
static int reader_get(lua_State *L) {
  Reader *r = check_reader(L);
  void *rep = NULL;
  drop_held(r);
  if (redisReaderGetReply(r->reader, &rep) != REDIS_OK)
    return luaL_error(L, "redis protocol error: %s", r->reader->errstr);
  if (rep == NULL) return 0;
  r->held = rep;
  if (r->held->type == REDIS_REPLY_ERROR) {
    lua_pushboolean(L, 0);
    lua_pushlstring(L, r->held->str, r->held->len);
  } else {
    lua_pushboolean(L, 1);
    push_reply(L, r->held, 0);
  }
  drop_held(r);
  return 2;
}

static void add_bulk(luaL_Buffer *b, const char *s, size_t len) {
  char head[32];
  snprintf(head, sizeof head, "$%zu\r\n", len);
  luaL_addstring(b, head);
  luaL_addlstring(b, s, len);
  luaL_addlstring(b, "\r\n", 2);
}

/* format(cmd, ...) -> the command as RESP. Arguments are strings or
** numbers: integers in decimal, floats with 17 digits (Redis reads both). */
static int resp_format(lua_State *L) {
  int i, n = lua_gettop(L);
  luaL_Buffer b;
  char num[64];
  luaL_checkstring(L, 1);
  for (i = 2; i <= n; i++) {
    int t = lua_type(L, i);
    if (t != LUA_TSTRING && t != LUA_TNUMBER)
      luaL_typeerror(L, i, "string or number");
  }
  luaL_buffinit(L, &b);
  snprintf(num, sizeof num, "*%d\r\n", n);
  luaL_addstring(&b, num);
  for (i = 1; i <= n; i++) {
    size_t len;
    const char *s;
    if (lua_type(L, i) == LUA_TNUMBER) {
      if (lua_isinteger(L, i))
        len = (size_t)snprintf(num, sizeof num, LUA_INTEGER_FMT, lua_tointeger(L, i));
      else
        len = (size_t)snprintf(num, sizeof num, "%.17g", (double)lua_tonumber(L, i));
      s = num;
    } else {
      s = lua_tolstring(L, i, &len);
    }
    add_bulk(&b, s, len);
  }
  luaL_pushresult(&b);
  return 1;
}

static int reader_tostring(lua_State *L) {
  Reader *r = luaL_checkudata(L, 1, READER);
  lua_pushfstring(L, "%s%s: %p", READER, r->reader ? "" : " (closed)", (void *)r);
  return 1;
}

static const luaL_Reg reader_methods[] = {
  {"feed", reader_feed},
  {"get", reader_get},
  {"close", reader_gc},
  {NULL, NULL}
};

static const luaL_Reg reader_meta[] = {
  {"__gc", reader_gc},
  {"__close", reader_gc},
  {"__tostring", reader_tostring},
  {"__index", NULL},
  {NULL, NULL}
};

static const luaL_Reg functions[] = {
  {"reader", resp_reader},
  {"format", resp_format},
  {NULL, NULL}
};

void duet_resp_open(lua_State *L) {
  luaL_newmetatable(L, READER);
  luaL_setfuncs(L, reader_meta, 0);
  luaL_newlib(L, reader_methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  luaL_setfuncs(L, functions, 0);
}

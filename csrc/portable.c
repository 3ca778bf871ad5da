/*
** portable.c — duet.encode and duet.decode: a value as a string that any
** duet process can decode (API.md): encode.c's bytes with DUET_PORTABLE
** (no duet objects, which live in this process only) behind a magic prefix.
*/
#include <string.h>

#include "duet.h"

#define PORTABLE_MAGIC "\x1b" "duet2"     /* first bytes of duet.encode */

static int portable_encode(lua_State *L) {
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

static int portable_decode(lua_State *L) {
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
  if (duet_decode_bytes(L, s + magic, len - magic, functions) != 1)
    return luaL_error(L, "cannot decode: expected one value");
  return 1;
}

static const luaL_Reg portable_funcs[] = {
  {"encode", portable_encode},
  {"decode", portable_decode},
  {NULL, NULL}
};

int duet_portable_open(lua_State *L) {
  luaL_setfuncs(L, portable_funcs, 0);
  return 0;
}

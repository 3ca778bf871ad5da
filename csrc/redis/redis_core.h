/*
** redis_core.h — the parts of duet.redis_core (lua/duet/redis_core.so), the
** C half of duet.redis. It is a module of its own so that duet.core never
** links hiredis: only scripts that talk to Redis load it.
*/
#ifndef DUET_REDIS_CORE_H
#define DUET_REDIS_CORE_H

#include "lua.h"
#include "lauxlib.h"

#pragma GCC visibility push(hidden)
void duet_resp_open(lua_State *L);      /* resp.c: reader, command format */
void duet_portable_open(lua_State *L);  /* portable.c: pack, unpack */
#pragma GCC visibility pop

__attribute__((visibility("default")))
int luaopen_duet_redis_core(lua_State *L);

#endif

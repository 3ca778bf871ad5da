/*
** value.c — one transferable value in a fixed-size slot (duet_Value).
**
** Queues and SharedTable store these. The common cases need no allocation:
** nil, booleans, numbers, strings of up to DUET_VALUE_SHORT bytes and a
** lone duet object (held by one reference) sit inside the slot; anything
** else is encoded by transfer.c into a duet_Message. Setting a value reads
** the caller's state and may raise; pushing one writes into the caller's
** state. Neither is ever done while a native mutex is held: copy the slot
** under the lock, then push it after unlocking.
*/
#include <stdlib.h>
#include <string.h>

#include "duet.h"

void duet_value_set(lua_State *L, int idx, const char *where,
                    duet_Value *v) {
  switch (lua_type(L, idx)) {
    case LUA_TNIL: v->tag = DUET_V_NIL; return;
    case LUA_TBOOLEAN:
      v->tag = lua_toboolean(L, idx) ? DUET_V_TRUE : DUET_V_FALSE;
      return;
    case LUA_TNUMBER:
      if (lua_isinteger(L, idx)) {
        v->u.i = lua_tointeger(L, idx);
        v->tag = DUET_V_INT;
      }
      else {
        v->u.n = lua_tonumber(L, idx);
        v->tag = DUET_V_FLOAT;
      }
      return;
    case LUA_TSTRING: {
      size_t n;
      const char *s = lua_tolstring(L, idx, &n);
      if (n <= DUET_VALUE_SHORT) {
        memcpy(v->u.s, s, n);
        v->len = (unsigned char)n;
        v->tag = DUET_V_STR;
        return;
      }
      break;
    }
    case LUA_TUSERDATA: {
      duet_Object *o = duet_to_object(L, idx);
      if (o != NULL && o->type->moves == NULL) {  /* moved: encoded */
        duet_retain(o);
        v->u.o = o;
        v->tag = DUET_V_OBJ;
        return;
      }
      break;                              /* duet_encode names the refusal */
    }
    default: break;
  }
  v->u.m = duet_encode(L, idx, 1, where, 0);
  v->tag = DUET_V_MSG;
}

void duet_value_push(lua_State *L, duet_Value *v) {
  int tag = v->tag;
  v->tag = DUET_V_NIL;                    /* ours now, even if we raise */
  switch (tag) {
    case DUET_V_NIL: lua_pushnil(L); break;
    case DUET_V_FALSE: lua_pushboolean(L, 0); break;
    case DUET_V_TRUE: lua_pushboolean(L, 1); break;
    case DUET_V_INT: lua_pushinteger(L, v->u.i); break;
    case DUET_V_FLOAT: lua_pushnumber(L, v->u.n); break;
    case DUET_V_STR: lua_pushlstring(L, v->u.s, v->len); break;
    case DUET_V_OBJ:
      duet_push_object(L, v->u.o);        /* the proxy holds its own */
      duet_release(v->u.o);
      break;
    default: duet_decode_free(L, v->u.m); break;
  }
}

int duet_value_copy(duet_Value *dst, const duet_Value *src) {
  if (src->tag == DUET_V_MSG) {
    duet_Message *m = duet_message_copy(src->u.m);
    if (m == NULL) return 0;
    dst->u.m = m;
    dst->tag = DUET_V_MSG;
    return 1;
  }
  *dst = *src;
  if (src->tag == DUET_V_OBJ) duet_retain(src->u.o);
  return 1;
}

void duet_value_free(duet_Value *v) {
  if (v->tag == DUET_V_MSG) duet_message_free(v->u.m);
  else if (v->tag == DUET_V_OBJ) duet_release(v->u.o);
  v->tag = DUET_V_NIL;
}


/*
** sockopt.c — duet.Socket's names and options (getsockname, getpeername,
** setoption, getoption, shutdown), as LuaSocket answers them. They never
** wait; socket.c checks self and they reach the descriptor through
** socket_fd (socketio.c), so a handle that is closed or not this state's
** reads as closed here too.
*/
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "socket.h"

static int push_address(lua_State *L, Socket *s, int peer) {
  int fd = socket_fd(L, s, -1), r;
  struct sockaddr_storage a;
  socklen_t len = sizeof a;
  char host[NI_MAXHOST], serv[NI_MAXSERV];
  if (fd < 0) return socket_fail(L, EPIPE);
  r = peer ? getpeername(fd, (struct sockaddr *)&a, &len)
           : getsockname(fd, (struct sockaddr *)&a, &len);
  if (r != 0) return socket_fail(L, errno);
  r = getnameinfo((struct sockaddr *)&a, len, host, sizeof host, serv,
                  sizeof serv, NI_NUMERICHOST | NI_NUMERICSERV);
  if (r != 0) {
    lua_pushnil(L);
    lua_pushstring(L, gai_strerror(r));
    return 2;
  }
  lua_pushstring(L, host);
  /* as LuaSocket: the peer's port a number, one's own a string */
  if (peer) lua_pushinteger(L, (lua_Integer)strtol(serv, NULL, 10));
  else lua_pushstring(L, serv);
  lua_pushstring(L, a.ss_family == AF_INET6 ? "inet6" : "inet");
  return 3;
}

/* getsockname() -> ip, port (string), family | nil, err */
int opt_getsockname(lua_State *L, Socket *s) {
  return push_address(L, s, 0);
}

/* getpeername() -> ip, port (number), family | nil, err */
int opt_getpeername(lua_State *L, Socket *s) {
  return push_address(L, s, 1);
}

static const char *const options[] = {
  "keepalive", "reuseaddr", "reuseport", "tcp-nodelay", "ipv6-v6only",
  "linger", "error", NULL
};
static const int opt_level[] = {
  SOL_SOCKET, SOL_SOCKET, SOL_SOCKET, IPPROTO_TCP, IPPROTO_IPV6
};
static const int opt_name[] = {
  SO_KEEPALIVE, SO_REUSEADDR, SO_REUSEPORT, TCP_NODELAY, IPV6_V6ONLY
};
enum { OPT_LINGER = 5, OPT_ERROR = 6 };

/* setoption(name, value) -> 1 | nil, err: a boolean, or for "linger" a
** table {on = boolean, timeout = seconds} */
int opt_setoption(lua_State *L, Socket *s) {
  int o = luaL_checkoption(L, 2, NULL, options), r, fd;
  luaL_argcheck(L, o != OPT_ERROR, 2, "invalid option 'error'");
  if (o == OPT_LINGER) {
    struct linger li;
    luaL_checktype(L, 3, LUA_TTABLE);
    lua_getfield(L, 3, "on");
    li.l_onoff = lua_toboolean(L, -1);
    lua_getfield(L, 3, "timeout");
    li.l_linger = (int)lua_tointeger(L, -1);
    lua_pop(L, 2);
    if ((fd = socket_fd(L, s, -1)) < 0) return socket_fail(L, EPIPE);
    r = setsockopt(fd, SOL_SOCKET, SO_LINGER, &li, sizeof li);
  }
  else {
    int v;
    luaL_checktype(L, 3, LUA_TBOOLEAN);
    v = lua_toboolean(L, 3);
    if ((fd = socket_fd(L, s, -1)) < 0) return socket_fail(L, EPIPE);
    r = setsockopt(fd, opt_level[o], opt_name[o], &v, sizeof v);
  }
  if (r != 0) {
    lua_pushnil(L);
    lua_pushliteral(L, "setsockopt failed");   /* LuaSocket's words */
    return 2;
  }
  lua_pushinteger(L, 1);
  return 1;
}

/* getoption(name) -> value | nil, err */
int opt_getoption(lua_State *L, Socket *s) {
  int o = luaL_checkoption(L, 2, NULL, options), r, v = 0;
  int fd = socket_fd(L, s, -1);
  socklen_t len = sizeof v;
  if (fd < 0) return socket_fail(L, EPIPE);
  if (o == OPT_LINGER) {
    struct linger li;
    len = sizeof li;
    if (getsockopt(fd, SOL_SOCKET, SO_LINGER, &li, &len) != 0)
      return socket_fail(L, errno);
    lua_createtable(L, 0, 2);
    lua_pushboolean(L, li.l_onoff);
    lua_setfield(L, -2, "on");
    lua_pushinteger(L, li.l_linger);
    lua_setfield(L, -2, "timeout");
    return 1;
  }
  r = o == OPT_ERROR ? getsockopt(fd, SOL_SOCKET, SO_ERROR, &v, &len)
                     : getsockopt(fd, opt_level[o], opt_name[o], &v, &len);
  if (r != 0) return socket_fail(L, errno);
  if (o != OPT_ERROR) lua_pushboolean(L, v);
  else if (v == 0) lua_pushnil(L);
  else {                                  /* the pending error's words */
    socket_fail(L, v);
    lua_remove(L, -2);
  }
  return 1;
}

/* shutdown([how = "both"]) -> 1: "receive", "send" or "both" */
int opt_shutdown(lua_State *L, Socket *s) {
  static const char *const hows[] = {"receive", "send", "both", NULL};
  int how = luaL_checkoption(L, 2, "both", hows);
  int fd = socket_fd(L, s, CLIENT);
  if (fd < 0) return socket_fail(L, EPIPE);
  shutdown(fd, how == 0 ? SHUT_RD : how == 1 ? SHUT_WR : SHUT_RDWR);
  lua_pushinteger(L, 1);
  return 1;
}

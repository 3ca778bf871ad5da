/*
** socket.c — duet.Socket: a TCP socket that owns its descriptor, with
** LuaSocket's methods and return values, for both runtimes.
**
** The descriptor is always non-blocking, and every method is a loop of
** non-blocking attempts. When one would block, the method waits in one of
** two ways: a socket of the threads runtime blocks its OS thread in
** duet_poll_fd (poll.c, cancellable); a socket of the coroutines runtime
** calls the scheduler's wait hook with lua_callk, so the task suspends and
** the method resumes in its continuation. Input is read ahead into the
** socket's own buffer and taken out only when a receive completes (or
** times out, or meets the end): a receive interrupted by cancel leaves
** every byte in the buffer for the next one.
**
** Ownership (API.md, "Moving values"): the object is shared by reference
** like any duet object, but only its owner, one Lua state, may use it;
** every other handle reads as closed. transfer.c moves ownership: a message
** holding the socket takes it from the sender (its duet_Moves' sent), the
** first state that decodes it becomes the owner (arrived), and a message
** freed undecoded (a put that timed out) gives it back to the sender
** (unsent). Only the owner's thread ever touches the
** descriptor and the buffer, so they need no lock.
**
** This file is a socket's life: made, owned and moved, closed, and its
** settings. The methods that wait (receive, send, accept, connect, with
** bind and listen, which share its address lookup) are socketio.c, where
** the descriptor and the read-ahead buffer are used; socket.h is what the
** two share.
*/
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "socket.h"


static void socket_destroy(duet_Object *o) {
  Socket *s = (Socket *)o;
  if (FD(s) >= 0) close(FD(s));
  free(s->buf);
  free(s);
}

static void socket_describe(duet_Object *o, char *buf, size_t size) {
  Socket *s = (Socket *)o;
  int fd = FD(s);
  if (fd < 0) snprintf(buf, size, "%s", KIND(s) == MASTER
                       && !atomic_load(&s->closed) ? "master" : "closed");
  else snprintf(buf, size, "%s, fd %d", socket_kinds[KIND(s)], fd);
}

static const duet_Moves socket_moves;

static const duet_Type socket_type = {"duet.Socket", socket_destroy,
                                      socket_describe, duet_socket_open,
                                      &socket_moves, NULL, NULL};

#define check_socket(L) ((Socket *)duet_check_self(L, &socket_type))

/* ------------------------------------------------------------ ownership */

/* Its moves (duet_Moves): the sender gives it up, the first state that
** decodes it takes it, and a message freed undecoded gives it back. */
static void socket_sent(lua_State *L, duet_Object *o) {
  Socket *s = (Socket *)o;
  long long me = socket_state_id(L);
  if (atomic_load(&s->owner) == me) {     /* only the owner can give it */
    atomic_store(&s->sender, me);
    atomic_store(&s->owner, 0);
  }
}

static void socket_unsent(duet_Object *o) {
  Socket *s = (Socket *)o;
  long long none = 0;
  atomic_compare_exchange_strong(&s->owner, &none, atomic_load(&s->sender));
}

static void socket_arrived(lua_State *L, duet_Object *o) {
  Socket *s = (Socket *)o;
  long long none = 0, me = socket_state_id(L);
  /* a socket that changed states now waits by blocking its OS thread:
  ** only the threads runtime moves values between states */
  if (atomic_compare_exchange_strong(&s->owner, &none, me)
      && atomic_load(&s->sender) != me)
    s->coro = 0;
}

static const duet_Moves socket_moves = {socket_sent, socket_arrived,
                                        socket_unsent};

/* ------------------------------------------------------------- helpers */

static void set_nonblocking(int fd) {
  int fl = fcntl(fd, F_GETFL, 0);
  if (fl >= 0 && !(fl & O_NONBLOCK)) fcntl(fd, F_SETFL, fl | O_NONBLOCK);
  fcntl(fd, F_SETFD, FD_CLOEXEC);
}

/* ------------------------------------------------------ the small ones */

/* close() -> 1. Idempotent; on a handle that is not the owner's, it does
** nothing (the socket lives on where it went). */
static int sock_close(lua_State *L) {
  Socket *s = check_socket(L);
  int fd = FD(s);
  if (socket_usable(L, s)) {
    if (s->coro && fd >= 0
        && lua_rawgetp(L, LUA_REGISTRYINDEX, &socket_hooks_key)
           == LUA_TTABLE) {
      lua_rawgeti(L, -1, 2);              /* wake the tasks waiting on it */
      lua_pushinteger(L, fd);
      lua_call(L, 1, 0);
    }
    atomic_store(&s->closed, 1);
    atomic_store(&s->fd, -1);
    if (fd >= 0) close(fd);
    free(s->buf);
    s->buf = NULL;
    s->first = s->last = s->cap = s->scanned = 0;
  }
  lua_pushinteger(L, 1);
  return 1;
}

/* settimeout(seconds [, mode]) -> 1: nil or negative: no limit; mode "b"
** (each call, the default) or "t" (total; "r" too, as LuaSocket). */
static int sock_settimeout(lua_State *L) {
  Socket *s = check_socket(L);
  double t = luaL_optnumber(L, 2, -1);
  const char *mode = luaL_optstring(L, 3, "b");
  if (t != t) t = -1;
  switch (*mode) {
    case 'b': case 'r': case 't': break;
    default: return luaL_argerror(L, 3, "invalid timeout mode");
  }
  if (socket_usable(L, s)) {
    if (*mode == 'b') s->block = t;
    else s->total = t;
  }
  lua_pushinteger(L, 1);
  return 1;
}

/* getfd() -> the descriptor, -1 when closed (or not this state's) */
static int sock_getfd(lua_State *L) {
  Socket *s = check_socket(L);
  lua_pushinteger(L, socket_usable(L, s) ? FD(s) : -1);
  return 1;
}

/* dirty() -> is input read ahead waiting in the buffer? */
static int sock_dirty(lua_State *L) {
  Socket *s = check_socket(L);
  lua_pushboolean(L, socket_usable(L, s) && s->last > s->first);
  return 1;
}

/* getfamily() -> "inet4" | "inet6", as LuaSocket */
static int sock_getfamily(lua_State *L) {
  Socket *s = check_socket(L);
  lua_pushstring(L, socket_usable(L, s) && s->family == AF_INET6 ? "inet6"
                                                          : "inet4");
  return 1;
}

static int sock_tbc(lua_State *L) {
  lua_settop(L, 1);
  return sock_close(L);
}

/* ------------------------------------------------------ module functions */

/* socket_new(fd, kind, family, coroutines [, pending]) -> a duet socket
** owning fd (rt.wrap: lua/duet/socket.lua took it from LuaSocket). */
static int socket_new(lua_State *L) {
  static const char *const families[] = {"inet4", "inet6", "unspec", NULL};
  static const int family_of[] = {AF_INET, AF_INET6, AF_UNSPEC};
  lua_Integer fd = luaL_checkinteger(L, 1);
  int kind = luaL_checkoption(L, 2, NULL, socket_kinds);
  int family = family_of[luaL_checkoption(L, 3, NULL, families)];
  int coro = lua_toboolean(L, 4);
  size_t n = 0;
  const char *pending = luaL_optlstring(L, 5, NULL, &n);
  Socket *s;
  luaL_argcheck(L, fd >= -1 && fd <= 0x7fffffff, 1, "invalid descriptor");
  s = (Socket *)duet_new_object(L, &socket_type, sizeof(Socket));
  socket_init(s, socket_state_id(L), -1, kind, family, coro);
  if (n > 0) {
    s->buf = (char *)malloc(n);
    if (s->buf == NULL) return luaL_error(L, "not enough memory");
    memcpy(s->buf, pending, n);
    s->cap = s->last = n;
  }
  if (fd >= 0) {
    set_nonblocking((int)fd);
    atomic_store(&s->fd, (int)fd);
  }
  else if (kind != MASTER)                /* a closed LuaSocket object */
    atomic_store(&s->closed, 1);
  return 1;
}

/* socket_hooks(wait, closing): how coroutines sockets wait in this state.
** wait(fd, ev, deadline) suspends the running task until fd is ready for
** ev (1 read, 2 write) -> true, or until the deadline -> false; closing(fd)
** wakes the tasks waiting on fd, about to be closed. */
static int socket_hooks(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_createtable(L, 2, 0);
  lua_pushvalue(L, 1);
  lua_rawseti(L, -2, 1);
  lua_pushvalue(L, 2);
  lua_rawseti(L, -2, 2);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &socket_hooks_key);
  return 0;
}

/* is_socket(x) -> is x a duet socket? */
static int socket_is(lua_State *L) {
  duet_Object *o = duet_to_object(L, 1);
  lua_pushboolean(L, o != NULL && o->type == &socket_type);
  return 1;
}

/* socketio.c's and sockopt.c's methods, with self checked here */
#define WITH_SELF(name, impl) \
  static int name(lua_State *L) { return impl(L, check_socket(L)); }
WITH_SELF(sock_receive, io_receive)
WITH_SELF(sock_send, io_send)
WITH_SELF(sock_accept, io_accept)
WITH_SELF(sock_connect, io_connect)
WITH_SELF(sock_bind, io_bind)
WITH_SELF(sock_listen, io_listen)
WITH_SELF(sock_getsockname, opt_getsockname)
WITH_SELF(sock_getpeername, opt_getpeername)
WITH_SELF(sock_setoption, opt_setoption)
WITH_SELF(sock_getoption, opt_getoption)
WITH_SELF(sock_shutdown, opt_shutdown)

static const luaL_Reg socket_methods[] = {
  {"accept", sock_accept},
  {"bind", sock_bind},
  {"close", sock_close},
  {"connect", sock_connect},
  {"dirty", sock_dirty},
  {"getfamily", sock_getfamily},
  {"getfd", sock_getfd},
  {"getoption", sock_getoption},
  {"getpeername", sock_getpeername},
  {"getsockname", sock_getsockname},
  {"listen", sock_listen},
  {"receive", sock_receive},
  {"send", sock_send},
  {"setoption", sock_setoption},
  {"settimeout", sock_settimeout},
  {"shutdown", sock_shutdown},
  {NULL, NULL}
};

static const luaL_Reg socket_meta[] = {
  {"__close", sock_tbc},
  {NULL, NULL}
};

static const luaL_Reg socket_funcs[] = {
  {"socket_new", socket_new},
  {"socket_hooks", socket_hooks},
  {"is_socket", socket_is},
  {NULL, NULL}
};

int duet_socket_open(lua_State *L) {
  duet_new_type(L, &socket_type, socket_methods, socket_meta);
  luaL_setfuncs(L, socket_funcs, 0);
  return 0;
}

/*
** socket.h — what socket.c (the type: a socket made, moved, closed, and
** its methods), socketio.c (ownership checks and the I/O that waits:
** receive, send, accept, connect...) and sockopt.c (names and options)
** share. Private to the three.
*/
#ifndef DUET_SOCKET_H
#define DUET_SOCKET_H

#include "duet.h"

enum { MASTER, CLIENT, SERVER };          /* LuaSocket's tcp{...} classes */

typedef struct Socket {
  duet_Object base;
  atomic_llong owner;                     /* state id; 0: in transit */
  atomic_llong sender;                    /* in transit: where it came from */
  atomic_int fd;                          /* -1: none */
  atomic_int kind;
  atomic_int closed;                      /* by close(); a closed object */
  int family;                             /* AF_INET, AF_INET6, AF_UNSPEC */
  int coro;                               /* waits through the scheduler */
  double block, total;                    /* settimeout(); < 0: none */
  char *buf;                              /* input read ahead: */
  size_t first, last, cap;                /* [first, last) of buf[cap] */
  size_t scanned;                         /* bytes after first without \n */
  int drained;                            /* the last read emptied the
                                          ** descriptor: wait before the next */
} Socket;

#define FD(s) atomic_load_explicit(&(s)->fd, memory_order_relaxed)
#define KIND(s) atomic_load_explicit(&(s)->kind, memory_order_relaxed)

/* socketio.c: ownership, kinds and LuaSocket's errors, which socket.c
** uses too */
extern const char *const socket_kinds[];  /* "master", "client", "server" */
long long socket_state_id(lua_State *L);
int socket_usable(lua_State *L, Socket *s);
void socket_check_kind(lua_State *L, Socket *s, int want);
void socket_init(Socket *s, long long owner, int fd, int kind, int family,
                 int coro);
int socket_fd(lua_State *L, Socket *s, int want);  /* -1: closed here */
int socket_fail(lua_State *L, int err);   /* nil, LuaSocket's words */
extern const char socket_hooks_key;       /* the coroutines runtime's hooks */

/* The methods of socketio.c (they wait) and sockopt.c (they do not), each
** given self as socket.c checked it: only socket.c, which opens the
** concept, names socket_type. */
int io_receive(lua_State *L, Socket *s);
int io_send(lua_State *L, Socket *s);
int io_accept(lua_State *L, Socket *s);
int io_connect(lua_State *L, Socket *s);
int io_bind(lua_State *L, Socket *s);
int io_listen(lua_State *L, Socket *s);
int opt_getsockname(lua_State *L, Socket *s);
int opt_getpeername(lua_State *L, Socket *s);
int opt_setoption(lua_State *L, Socket *s);
int opt_getoption(lua_State *L, Socket *s);
int opt_shutdown(lua_State *L, Socket *s);

#endif

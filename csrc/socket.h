/*
** socket.h — what socket.c (a socket's life: made, owned, moved, closed)
** and socketio.c (its I/O methods: receive, send, accept, connect...)
** share. Private to the two; duet.h has what poll.c, transfer.c and
** sockopt.c need.
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

/* socket.c */
extern const duet_Type socket_type;
#define check_socket(L) ((Socket *)duet_check_self(L, &socket_type))
long long socket_state_id(lua_State *L);
int socket_usable(lua_State *L, Socket *s);
void socket_check_kind(lua_State *L, Socket *s, int want);
void socket_init(Socket *s, long long owner, int fd, int kind, int family,
                 int coro);
extern const char socket_hooks_key;       /* the coroutines runtime's hooks */

/* socketio.c: methods */
int sock_receive(lua_State *L);
int sock_send(lua_State *L);
int sock_accept(lua_State *L);
int sock_connect(lua_State *L);
int sock_bind(lua_State *L);
int sock_listen(lua_State *L);

#endif

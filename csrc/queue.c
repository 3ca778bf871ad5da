/*
** queue.c — Queue (FIFO), LifoQueue and PriorityQueue, shared by reference.
**
** Items are duet_Values (value.c): scalars and short strings sit inline in
** the queue's array, anything else is a duet_Message encoded before the
** lock is taken and decoded after it is released, so the mutex guards only
** the linking and unlinking of fixed-size slots. FIFO is a power-of-two
** ring, LIFO a stack, PriorityQueue a binary heap ordered by (priority,
** sequence number), so equal priorities come out first-in first-out.
**
** Waiting: getters that find no item (putters that find no room) wait in
** line, first come first served; items that arrive are handed to the
** getters at the head of the line, and the items of the putters at the
** head go in as room frees up, so later arrivals cannot overtake. A waiter
** spins briefly on its own node, then parks on its own condition variable,
** which is signalled only if it is parked. A waiter that gives up
** (timeout, cancel) leaves the queue as it found it: a cancelled getter
** puts back what it was handed; nothing is stranded.
**
** The three kinds differ only in where an item goes in and comes out;
** everything else is common. Three files hold it: queuestore.c keeps the
** items (the containers, under the lock), queuewait.c the waiting in line,
** and this one the Lua side: encoding and decoding items, the methods and
** the types. queue.h is what they share.
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue.h"

static const duet_Type queue_types[3];
static int open_fifo(lua_State *L);
static int open_lifo(lua_State *L);
static int open_prio(lua_State *L);

/* ------------------------------------------------------------- items */

/* Check the priority of the item at idx (argument `arg`, named `where`):
** returns the stack index of the priority (pushed if the item is a table). */
static int check_priority(lua_State *L, int idx, int arg, const char *where) {
  int p = idx;
  if (lua_type(L, idx) == LUA_TTABLE) {
    lua_rawgeti(L, idx, 1);
    p = lua_gettop(L);
    if (lua_type(L, p) != LUA_TNUMBER && lua_type(L, p) != LUA_TSTRING)
      luaL_argerror(L, arg, lua_pushfstring(L, "priority (%s[1]) must be a "
                                            "number or a string, got %s",
                                            where, duet_type_name(L, p)));
  }
  else if (lua_type(L, p) != LUA_TNUMBER && lua_type(L, p) != LUA_TSTRING)
    luaL_argerror(L, arg, lua_pushfstring(L, "number, string or table "
                                          "expected, got %s",
                                          duet_type_name(L, p)));
  if (lua_type(L, p) == LUA_TNUMBER && !lua_isinteger(L, p)
      && lua_tonumber(L, p) != lua_tonumber(L, p))
    luaL_argerror(L, arg, "priority is NaN");
  return p;
}

/* Fill it->key from the checked priority at p; 0: no memory. */
static int make_key(lua_State *L, int p, Key *k) {
  if (lua_type(L, p) == LUA_TSTRING) {
    const char *s = lua_tolstring(L, p, &k->len);
    k->u.s = (char *)malloc(k->len ? k->len : 1);
    if (k->u.s == NULL) return 0;
    memcpy(k->u.s, s, k->len);
    k->tag = DUET_V_STR;
  }
  else if (lua_isinteger(L, p)) {
    k->u.i = lua_tointeger(L, p);
    k->tag = DUET_V_INT;
  }
  else {
    k->u.n = lua_tonumber(L, p);
    k->tag = DUET_V_FLOAT;
  }
  return 1;
}

/* Encode the item at idx (argument `arg`, named `where` in errors; number
** `index` of a put_many list, else 0) into `it`, in the putter's own
** state. Raises with nothing held. */
static void item_set(lua_State *L, const Queue *q, int idx, int arg,
                     const char *where, size_t index, Item *it) {
  int top = lua_gettop(L), p = 0;
  it->key.tag = DUET_V_NIL;
  it->v.tag = DUET_V_NIL;
  if (lua_isnoneornil(L, idx)) {
    if (index) luaL_argerror(L, arg, lua_pushfstring(L, "nil item at index "
                                                     "%I", (LUAI_UACINT)index));
    luaL_argerror(L, arg, "non-nil value expected");
  }
  if (q->kind == PRIO) p = check_priority(L, idx, arg, where);
  duet_value_set(L, idx, where, &it->v);
  if (p && !make_key(L, p, &it->key)) {
    duet_value_free(&it->v);
    luaL_error(L, "not enough memory");
  }
  lua_settop(L, top);
}

/* Items in flight for put_many and get_many: a state's methods share one
** reusable Batch (in the registry), or, when it is in use (a __gc that runs Lua
** code while a batch is being pushed), a temporary one. Either way it is
** a to-be-closed slot, so whatever it still holds is freed when the method
** returns or raises. */
#define BATCH_KEEP 4096                   /* larger arrays are not kept */

static int batch_close(lua_State *L) {
  Batch *b = (Batch *)lua_touserdata(L, 1);
  size_t i;
  for (i = 0; i < b->used; i++) queue_item_free(&b->items[i]);
  b->used = 0;
  b->busy = 0;
  if (b->cap > BATCH_KEEP) {
    free(b->items);
    b->items = NULL;
    b->cap = 0;
  }
  return 0;
}

static int batch_gc(lua_State *L) {
  Batch *b = (Batch *)lua_touserdata(L, 1);
  batch_close(L);
  free(b->items);
  b->items = NULL;
  b->cap = 0;
  return 0;
}

static const char batch_key = 'b';        /* registry: the state's Batch */

static Batch *new_batch(lua_State *L) {
  Batch *b = (Batch *)lua_newuserdatauv(L, sizeof(Batch), 0);
  memset(b, 0, sizeof *b);
  if (luaL_newmetatable(L, "duet.batch")) {
    lua_pushcfunction(L, batch_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, batch_close);
    lua_setfield(L, -2, "__close");
  }
  lua_setmetatable(L, -2);
  return b;
}

/* Room for n items, as a to-be-closed slot pushed on the stack; fill
** b->used as items are set. */
static Batch *borrow_batch(lua_State *L, size_t n) {
  Batch *b;
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &batch_key) == LUA_TNIL) {
    lua_pop(L, 1);
    new_batch(L);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &batch_key);
  }
  b = (Batch *)lua_touserdata(L, -1);
  if (b->busy) {
    lua_pop(L, 1);
    b = new_batch(L);
  }
  if (b->cap < n) {
    Item *items = (Item *)realloc(b->items, n * sizeof *items);
    if (items == NULL) luaL_error(L, "not enough memory");
    b->items = items;
    b->cap = n;
  }
  b->busy = 1;
  b->used = 0;
  lua_toclose(L, -1);
  return b;
}

/* ------------------------------------------------------------ methods */

/* `self`: a sealed proxy of any of the three kinds, which share their
** methods (light C functions, no upvalues: one set per state). */
static Queue *check_queue(lua_State *L) {
  duet_Proxy *p = duet_sealed(L, 1);
  if (p != NULL && p->o != NULL && p->o->type >= queue_types
      && p->o->type < queue_types + 3)
    return (Queue *)p->o;
  return (Queue *)duet_check_object(L, 1, &queue_types[FIFO]);
}

/* The answer of a put that did not happen. */
static int put_failed(lua_State *L, int res, int r) {
  if (res == FAILED && r != DUET_TIMEDOUT) return duet_wait_error(L, r);
  if (res == CLOSED) return luaL_error(L, "put on a closed queue");
  if (res == NO_MEMORY) return luaL_error(L, "not enough memory");
  lua_pushnil(L);
  lua_pushliteral(L, "full");
  return 2;
}

/* The answer of a get that took nothing. */
static int get_failed(lua_State *L, int why, int r) {
  if (why == FAILED && r != DUET_TIMEDOUT) return duet_wait_error(L, r);
  lua_pushnil(L);
  if (why == CLOSED) lua_pushliteral(L, "closed");
  else lua_pushliteral(L, "empty");
  return 2;
}

static int put_one(lua_State *L, Queue *q, double timeout) {
  Item it;
  int r, res;
  duet_jitter();
  item_set(L, q, 2, 2, "item", 0, &it);
  res = queue_put_wait(L, q, &it, 1, timeout, &r);
  if (res == DONE) {
    lua_pushboolean(L, 1);
    return 1;
  }
  queue_item_free(&it);                   /* nothing was enqueued */
  return put_failed(L, res, r);
}

static int decode_message(lua_State *L) {
  return duet_decode(L, (duet_Message *)lua_touserdata(L, 1));
}

/* Decode an encoded item into a value on the stack top, in a protected
** call; the item keeps its message. Returns the pcall status. */
static int decode_item(lua_State *L, Item *it) {
  lua_pushcfunction(L, decode_message);
  lua_pushlightuserdata(L, it->v.u.m);
  return lua_pcall(L, 1, 1, 0);
}

/* Put back at the head `k` items a getter took but cannot hand over, for
** the next get; if the queue was shut down with immediate, or there is no
** memory for that, they are dropped (and count as done). */
static void put_back(Queue *q, Item *items, size_t k) {
  size_t i;
  pthread_mutex_lock(&q->mu);
  if (q->closed == DISCARDED || !queue_unget(q, items, k)) {
    for (i = 0; i < k; i++) queue_item_free(&items[i]);
    queue_count_done(q, k);
  }
  pthread_mutex_unlock(&q->mu);
}

/* Item `bad` of the `k` a get took failed to decode, with status st and
** the error on the stack top; raises. Out of memory may pass: all go back.
** Any other error would repeat at every get and block the queue behind
** it: that item is taken off (it counts as done), the others go back. */
static int undecodable(lua_State *L, Queue *q, Item *items, size_t k,
                       size_t bad, int st) {
  if (st == LUA_ERRMEM) {
    put_back(q, items, k);
    return lua_error(L);
  }
  queue_item_free(&items[bad]);
  memmove(&items[bad], &items[bad + 1], (k - bad - 1) * sizeof *items);
  pthread_mutex_lock(&q->mu);
  queue_count_done(q, 1);
  pthread_mutex_unlock(&q->mu);
  if (k > 1) put_back(q, items, k - 1);
  return luaL_error(L, "cannot decode a queue item (it is taken off the "
                    "queue): %s", luaL_tolstring(L, -1, NULL));
}

/* Push the item a get took; if it cannot be decoded, see undecodable. */
static void push_taken(lua_State *L, Queue *q, Item *it) {
  if (it->v.tag == DUET_V_MSG) {
    int st = decode_item(L, it);
    if (st != LUA_OK) undecodable(L, q, it, 1, 0, st);
    duet_message_free(it->v.u.m);
    it->v.tag = DUET_V_NIL;
  }
  else duet_value_push(L, &it->v);
  if (q->kind == PRIO) queue_key_free(&it->key);
}

/* Push one item, or nil and why; returns 1 or 2. */
static int get_one(lua_State *L, Queue *q, double timeout) {
  Item it;
  int r, why;
  duet_jitter();
  if (queue_get_wait(L, q, &it, 1, NULL, 1, timeout, &r, &why) == 0)
    return get_failed(L, why, r);
  push_taken(L, q, &it);
  return 1;
}

/* q:put(item, [timeout]) -> true | nil, "full" */
static int queue_put(lua_State *L) {
  Queue *q = check_queue(L);
  return put_one(L, q, duet_opt_timeout(L, 3));
}

static int queue_put_nowait(lua_State *L) {
  Queue *q = check_queue(L);
  return put_one(L, q, 0);
}

/* q:get([timeout]) -> item | nil, "empty" | nil, "closed" */
static int queue_get(lua_State *L) {
  Queue *q = check_queue(L);
  return get_one(L, q, duet_opt_timeout(L, 2));
}

static int queue_get_nowait(lua_State *L) {
  Queue *q = check_queue(L);
  return get_one(L, q, 0);
}

/* Set a scalar item (not for a PriorityQueue) the quick way: 1 if done. */
static int quick_set(lua_State *L, int t, duet_Value *v) {
  switch (t) {
    case LUA_TNUMBER:
      if (lua_isinteger(L, -1)) {
        v->u.i = lua_tointeger(L, -1);
        v->tag = DUET_V_INT;
      }
      else {
        v->u.n = lua_tonumber(L, -1);
        v->tag = DUET_V_FLOAT;
      }
      return 1;
    case LUA_TBOOLEAN:
      v->tag = lua_toboolean(L, -1) ? DUET_V_TRUE : DUET_V_FALSE;
      return 1;
    default: return 0;
  }
}

/* q:put_many(list, [timeout]): every item or none. */
static int queue_put_many(lua_State *L) {
  Queue *q = check_queue(L);
  double timeout = duet_opt_timeout(L, 3);
  size_t k, i;
  int r, res;
  Batch *b;
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 3);
  k = (size_t)duet_list_len(L, 2);
  b = borrow_batch(L, k);                 /* stack index 4 */
  for (i = 0; i < k; i++) {
    Item *it = &b->items[i];
    int t = lua_rawgeti(L, 2, (lua_Integer)i + 1);
    it->key.tag = DUET_V_NIL;
    if (q->kind == PRIO || !quick_set(L, t, &it->v)) {
      char where[40];                     /* named only where it may fail */
      snprintf(where, sizeof where, "items[%zu]", i + 1);
      item_set(L, q, 5, 2, where, i + 1, it);
    }
    b->used = i + 1;
    lua_settop(L, 4);
  }
  luaL_argcheck(L, q->maxsize == 0 || k <= q->maxsize, 2,
                "more items than maxsize");
  duet_check_cancel(L);
  if (k == 0) {                           /* nothing to wait for */
    pthread_mutex_lock(&q->mu);
    res = q->closed ? CLOSED : DONE;
    pthread_mutex_unlock(&q->mu);
  }
  else res = queue_put_wait(L, q, b->items, k, timeout, &r);
  if (res == DONE) {
    b->used = 0;                          /* the queue's now */
    lua_pushboolean(L, 1);
    return 1;
  }
  return put_failed(L, res, r);           /* closing b frees the items */
}

/* q:get_many(max, [timeout]) -> list of 1..max items | nil, reason */
static int queue_get_many(lua_State *L) {
  Queue *q = check_queue(L);
  lua_Integer max = luaL_checkinteger(L, 2);
  double timeout = duet_opt_timeout(L, 3);
  size_t room, k, i;
  int r, why;
  Batch *b;
  luaL_argcheck(L, max >= 1, 2, "max must be at least 1");
  duet_check_cancel(L);
  /* room for a batch is set aside before locking, more taken if there */
  room = max < 1024 ? (size_t)max : 1024;
  lua_settop(L, 3);
  b = borrow_batch(L, room);
  k = queue_get_wait(L, q, b->items, room, b,
                     (lua_Unsigned)max < SIZE_MAX ? (size_t)max : SIZE_MAX,
                     timeout, &r, &why);
  if (k == 0) return get_failed(L, why, r);
  b->used = k;
  lua_createtable(L, (int)k, 0);
  /* the encoded items first, keeping every item until all decode: one
  ** that fails leaves the others intact to go back */
  for (i = 0; i < k; i++) {
    if (b->items[i].v.tag != DUET_V_MSG) continue;
    int st = decode_item(L, &b->items[i]);
    if (st != LUA_OK) {
      b->used = 0;                        /* undecodable hands them all on */
      return undecodable(L, q, b->items, k, i, st);
    }
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  for (i = 0; i < k; i++) {
    if (b->items[i].v.tag == DUET_V_MSG) {
      duet_message_free(b->items[i].v.u.m);
      b->items[i].v.tag = DUET_V_NIL;
    }
    else {
      duet_value_push(L, &b->items[i].v);
      lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
  }
  if (q->kind != PRIO) b->used = 0;       /* nothing left to free */
  return 1;                               /* closing b frees the keys */
}

static int queue_size(lua_State *L) {
  Queue *q = check_queue(L);
  size_t n;
  pthread_mutex_lock(&q->mu);
  n = q->n;
  pthread_mutex_unlock(&q->mu);
  lua_pushinteger(L, (lua_Integer)n);
  return 1;
}

static int queue_empty(lua_State *L) {
  Queue *q = check_queue(L);
  size_t n;
  pthread_mutex_lock(&q->mu);
  n = q->n;
  pthread_mutex_unlock(&q->mu);
  lua_pushboolean(L, n == 0);
  return 1;
}

static int queue_full(lua_State *L) {
  Queue *q = check_queue(L);
  size_t n;
  pthread_mutex_lock(&q->mu);
  n = q->n;
  pthread_mutex_unlock(&q->mu);
  lua_pushboolean(L, q->maxsize > 0 && n >= q->maxsize);
  return 1;
}

static int queue_task_done(lua_State *L) {
  Queue *q = check_queue(L);
  int ok;
  pthread_mutex_lock(&q->mu);
  ok = q->unfinished > 0;
  if (ok && --q->unfinished == 0 && q->joiners > 0)
    pthread_cond_broadcast(&q->all_done);
  pthread_mutex_unlock(&q->mu);
  if (!ok) return luaL_error(L, "task_done() called too many times");
  return 0;
}

/* q:join([timeout]) -> true when every item put was task_done, or false */
static int queue_join(lua_State *L) {
  Queue *q = check_queue(L);
  double timeout = duet_opt_timeout(L, 2);
  int r = 0;
  pthread_mutex_lock(&q->mu);
  if (q->unfinished > 0 && timeout != 0) {
    double deadline = duet_deadline(timeout);
    pthread_mutex_unlock(&q->mu);
    duet_wait_begin(L, &q->all_done, &q->mu);
    pthread_mutex_lock(&q->mu);
    q->joiners++;
    while (q->unfinished > 0
           && (r = duet_wait(L, &q->all_done, &q->mu, deadline)) == 0) {}
    q->joiners--;
    if (q->unfinished == 0) r = 0;
    pthread_mutex_unlock(&q->mu);
    duet_wait_end(L);
  }
  else {
    if (q->unfinished > 0) r = DUET_TIMEDOUT;
    pthread_mutex_unlock(&q->mu);
  }
  if (r != 0 && r != DUET_TIMEDOUT) return duet_wait_error(L, r);
  lua_pushboolean(L, r == 0);
  return 1;
}

static int queue_close(lua_State *L) {
  Queue *q = check_queue(L);
  pthread_mutex_lock(&q->mu);
  queue_shut(q);
  pthread_mutex_unlock(&q->mu);
  return 0;
}

/* q:shutdown([immediate]): close(); immediate also discards what is
** queued, each item counted as done for join. The items are freed after
** the lock is let go. */
static int queue_shutdown(lua_State *L) {
  Queue *q = check_queue(L);
  int immediate = 0;
  Contents c;
  c.n = 0;
  c.ring = NULL;
  c.heap = NULL;
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TBOOLEAN);
    immediate = lua_toboolean(L, 2);
  }
  pthread_mutex_lock(&q->mu);
  queue_shut(q);
  if (immediate) {
    q->closed = DISCARDED;
    queue_count_done(q, q->n);
    c = queue_take_contents(q);
  }
  pthread_mutex_unlock(&q->mu);
  queue_free_contents(&c);
  return 0;
}

/* q:is_shutdown(): closed (or shut down), by close() or shutdown() */
static int queue_is_shutdown(lua_State *L) {
  Queue *q = check_queue(L);
  int closed;
  pthread_mutex_lock(&q->mu);
  closed = q->closed != OPEN;
  pthread_mutex_unlock(&q->mu);
  lua_pushboolean(L, closed);
  return 1;
}

static int queue_iter_next(lua_State *L) {
  Queue *q = check_queue(L);
  if (get_one(L, q, -1) == 2) return 0;   /* nil, "closed": the loop ends */
  return 1;
}

/* for item in q:iter() do ... end: gets until closed and drained. */
static int queue_iter(lua_State *L) {
  check_queue(L);
  lua_pushcfunction(L, queue_iter_next);
  lua_pushvalue(L, 1);
  return 2;
}

/* Method lookup costs one table read, not a C call: a queue's metatable
** has as __index a plain table of the methods plus its maxsize. An
** unbounded queue wears its type's own metatable, whose __index is the
** methods table the three kinds share (maxsize 0); a bounded one wears a
** copy with its maxsize, shared by the queues of that kind and maxsize in
** a state and kept in a weak cache in the type's metatable. */
static const char cache_key = 'c';        /* type metatable: maxsize -> mt */

/* duet_Type.push_meta: the metatable a proxy of queue o wears. */
static void queue_meta(lua_State *L, duet_Object *o) {
  static const char *const copied[] = {"__gc", "__tostring", "__newindex",
                                       "__name", "__duet", "__methods", NULL};
  const Queue *q = (const Queue *)o;
  int i, tmt, cache;
  luaL_getmetatable(L, o->type->name);
  if (q->maxsize == 0) return;
  luaL_checkstack(L, 8, NULL);
  tmt = lua_gettop(L);
  duet_weak_at(L, tmt, &cache_key, "v");
  cache = tmt + 1;
  if (lua_rawgeti(L, cache, (lua_Integer)q->maxsize) == LUA_TTABLE) {
    lua_replace(L, tmt);
    lua_settop(L, tmt);
    return;
  }
  lua_pop(L, 1);
  lua_createtable(L, 0, 7);               /* the metatable */
  for (i = 0; copied[i]; i++) {
    lua_getfield(L, tmt, copied[i]);
    lua_setfield(L, -2, copied[i]);
  }
  lua_createtable(L, 0, 16);              /* its __index */
  lua_getfield(L, tmt, "__methods");
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, -5);
  }
  lua_pop(L, 1);
  lua_pushinteger(L, (lua_Integer)q->maxsize);
  lua_setfield(L, -2, "maxsize");
  lua_setfield(L, -2, "__index");
  lua_pushvalue(L, -1);
  lua_rawseti(L, cache, (lua_Integer)q->maxsize);
  lua_replace(L, tmt);
  lua_settop(L, tmt);
}

static const luaL_Reg queue_methods[] = {
  {"put", queue_put},
  {"get", queue_get},
  {"put_nowait", queue_put_nowait},
  {"get_nowait", queue_get_nowait},
  {"put_many", queue_put_many},
  {"get_many", queue_get_many},
  {"size", queue_size},
  {"empty", queue_empty},
  {"full", queue_full},
  {"task_done", queue_task_done},
  {"join", queue_join},
  {"close", queue_close},
  {"iter", queue_iter},
  {"shutdown", queue_shutdown},
  {"is_shutdown", queue_is_shutdown},
  {NULL, NULL}
};

/* ------------------------------------------------------ the type itself */

static void queue_destroy(duet_Object *o) {
  Queue *q = (Queue *)o;
  Contents c = queue_take_contents(q);
  queue_free_contents(&c);
  pthread_mutex_destroy(&q->mu);
  pthread_cond_destroy(&q->all_done);
  free(q);
}

/* "size 3/10, putters 2, closed": the waiters in line are shown when there
** are any (as asyncio's Queue repr does). */
static void queue_describe(duet_Object *o, char *buf, size_t size) {
  Queue *q = (Queue *)o;
  size_t n, getters, putters;
  int closed, len;
  pthread_mutex_lock(&q->mu);
  n = q->n;
  closed = q->closed;
  getters = queue_line_length(q->getters);
  putters = queue_line_length(q->putters);
  pthread_mutex_unlock(&q->mu);
  if (q->maxsize > 0) len = snprintf(buf, size, "size %zu/%zu", n, q->maxsize);
  else len = snprintf(buf, size, "size %zu", n);
  if (getters > 0 && len >= 0 && (size_t)len < size)
    len += snprintf(buf + len, size - len, ", getters %zu", getters);
  if (putters > 0 && len >= 0 && (size_t)len < size)
    len += snprintf(buf + len, size - len, ", putters %zu", putters);
  if (closed && len >= 0 && (size_t)len < size)
    snprintf(buf + len, size - len, ", closed");
}

static const duet_Type queue_types[3] = {
  {"duet.Queue", queue_destroy, queue_describe, open_fifo, NULL, NULL,
   queue_meta},
  {"duet.LifoQueue", queue_destroy, queue_describe, open_lifo, NULL, NULL,
   queue_meta},
  {"duet.PriorityQueue", queue_destroy, queue_describe, open_prio, NULL,
   NULL, queue_meta},
};

static int new_queue(lua_State *L, int kind) {
  lua_Integer maxsize = luaL_optinteger(L, 1, 0);
  Queue *q = (Queue *)duet_new_object(L, &queue_types[kind], sizeof(Queue));
  q->kind = kind;
  q->maxsize = maxsize > 0 ? (size_t)maxsize : 0;
  duet_mutex_init_adaptive(&q->mu);
  duet_cond_init(&q->all_done);
  if (q->maxsize > 0) {                   /* made with its type's: unbounded */
    queue_meta(L, &q->base);
    lua_setmetatable(L, -2);
  }
  return 1;
}

/* Queue([maxsize]), LifoQueue([maxsize]), PriorityQueue([maxsize]) */
static int queue_new(lua_State *L) { return new_queue(L, FIFO); }
static int lifo_new(lua_State *L) { return new_queue(L, LIFO); }
static int prio_new(lua_State *L) { return new_queue(L, PRIO); }

static const luaL_Reg queue_funcs[] = {
  {"Queue", queue_new},
  {"LifoQueue", lifo_new},
  {"PriorityQueue", prio_new},
  {NULL, NULL}
};

/* The three kinds share one methods table, and a queue arriving in a
** state opens only its own kind: a state that meets one kind of queue
** pays little for the other two. */
static const char methods_key = 'm';      /* registry: the shared methods */

static void open_kind(lua_State *L, int kind) {
  const duet_Type *t = &queue_types[kind];
  if (!duet_new_type(L, t, NULL, NULL)) return;  /* made before */
  luaL_getmetatable(L, t->name);
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &methods_key) == LUA_TNIL) {
    lua_pop(L, 1);
    lua_createtable(L, 0, 16);
    luaL_setfuncs(L, queue_methods, 0);
    lua_pushinteger(L, 0);
    lua_setfield(L, -2, "maxsize");
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &methods_key);
  }
  lua_pushvalue(L, -1);
  lua_setfield(L, -3, "__methods");       /* transfer.c names them by it */
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
}

static int open_fifo(lua_State *L) { open_kind(L, FIFO); return 0; }
static int open_lifo(lua_State *L) { open_kind(L, LIFO); return 0; }
static int open_prio(lua_State *L) { open_kind(L, PRIO); return 0; }

int duet_queue_open(lua_State *L) {
  open_kind(L, FIFO);
  open_kind(L, LIFO);
  open_kind(L, PRIO);
  luaL_setfuncs(L, queue_funcs, 0);
  return 0;
}

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
** The three kinds share one file: they differ only in where an item goes
** in and comes out (push_item, pop_item); everything else is common.
*/
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "duet.h"

enum { FIFO, LIFO, PRIO };

typedef struct Key {                      /* a PriorityQueue priority */
  unsigned char tag;                      /* DUET_V_INT, _FLOAT or _STR */
  size_t len;                             /* DUET_V_STR */
  union { lua_Integer i; lua_Number n; char *s; } u;  /* s: malloc'd */
} Key;

typedef struct Item {                     /* an item on its way in or out */
  duet_Value v;
  Key key;                                /* PriorityQueue only: priority */
  uint64_t seq;                           /* and arrival, once it is in */
} Item;

typedef struct Entry {                    /* a PriorityQueue heap slot */
  Key key;
  uint64_t seq;
  duet_Value v;
} Entry;

typedef struct Waiter Waiter;

typedef struct Queue {
  duet_Object base;
  int kind;
  size_t maxsize;                         /* 0: unbounded */
  /* the fields above are read by every call (duet_check_self reads the
  ** type); keep them off the cache line the lock makes both cores fight
  ** over */
  char pad[64];
  pthread_mutex_t mu;                     /* guards everything below */
  pthread_cond_t all_done;                /* for join */
  size_t n, cap, head;                    /* head: FIFO ring start */
  duet_Value *ring;                       /* FIFO, LIFO */
  Entry *heap;                            /* PRIO */
  uint64_t seq;
  size_t unfinished;                      /* task_done/join */
  int closed;                             /* OPEN, SHUT or DISCARDED */
  Waiter *getters, *putters;              /* in line, first come first */
  int joiners;                            /* parked in join */
} Queue;

static const duet_Type queue_types[3];

/* close() or shutdown() make a queue SHUT: no more puts, what is left can
** still be taken. shutdown(true) makes it DISCARDED: what was queued is
** gone (and counts as done for join), and whatever comes back later (a
** cancelled getter's items) is dropped too. */
enum { OPEN, SHUT, DISCARDED };

/* ------------------------------------------------------------- items */

static void key_free(Key *k) {
  if (k->tag == DUET_V_STR) free(k->u.s);
  k->tag = DUET_V_NIL;
}

static void item_free(Item *it) {
  duet_value_free(&it->v);
  key_free(&it->key);
}

/* int i compared with float f (not NaN), exactly */
static int cmp_int_float(lua_Integer i, lua_Number f) {
  lua_Number c;
  lua_Integer ci;
  if (f >= -(lua_Number)LUA_MININTEGER) return -1;   /* f >= 2^63 */
  if (f < (lua_Number)LUA_MININTEGER) return 1;
  c = ceil(f);
  ci = (lua_Integer)c;
  if (i < ci) return -1;
  if (i == ci && c == f) return 0;
  return 1;                               /* i >= ceil(f) > f, or i > ci */
}

/* Total order: numbers (by value) before strings (byte order). */
static int key_cmp(const Key *a, const Key *b) {
  if (a->tag == DUET_V_STR || b->tag == DUET_V_STR) {
    size_t n;
    int c;
    if (a->tag != b->tag) return a->tag == DUET_V_STR ? 1 : -1;
    n = a->len < b->len ? a->len : b->len;
    c = memcmp(a->u.s, b->u.s, n);
    if (c != 0) return c;
    return a->len < b->len ? -1 : a->len > b->len;
  }
  if (a->tag == DUET_V_INT && b->tag == DUET_V_INT)
    return a->u.i < b->u.i ? -1 : a->u.i > b->u.i;
  if (a->tag == DUET_V_FLOAT && b->tag == DUET_V_FLOAT)
    return a->u.n < b->u.n ? -1 : a->u.n > b->u.n;
  if (a->tag == DUET_V_INT) return cmp_int_float(a->u.i, b->u.n);
  return -cmp_int_float(b->u.i, a->u.n);
}

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
                                            where, luaL_typename(L, p)));
  }
  else if (lua_type(L, p) != LUA_TNUMBER && lua_type(L, p) != LUA_TSTRING)
    luaL_argerror(L, arg, lua_pushfstring(L, "number, string or table "
                                          "expected, got %s",
                                          luaL_typename(L, p)));
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
** reusable array (upvalue 3), or, when it is in use (a __gc that runs Lua
** code while a batch is being pushed), a temporary one. Either way it is
** a to-be-closed slot, so whatever it still holds is freed when the method
** returns or raises. */
typedef struct Batch {
  Item *items;
  size_t cap, used;                       /* items [0, used) may own */
  int busy;
} Batch;

#define BATCH_KEEP 4096                   /* larger arrays are not kept */

static int batch_close(lua_State *L) {
  Batch *b = (Batch *)lua_touserdata(L, 1);
  size_t i;
  for (i = 0; i < b->used; i++) item_free(&b->items[i]);
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
  Batch *b = (Batch *)lua_touserdata(L, lua_upvalueindex(3));
  if (b->busy) b = new_batch(L);
  else lua_pushvalue(L, lua_upvalueindex(3));
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

/* ------------------------------------------- the containers (mu held) */

static size_t pow2_at_least(size_t n) {
  size_t c = 16;
  while (c < n) c *= 2;
  return c;
}

/* Move the items into an array of `cap` slots (cap >= n); 0: no memory. */
static int resize(Queue *q, size_t cap) {
  if (q->kind == PRIO) {
    Entry *h = (Entry *)realloc(q->heap, cap * sizeof *h);
    if (h == NULL) return 0;
    q->heap = h;
  }
  else if (q->kind == LIFO) {
    duet_Value *r = (duet_Value *)realloc(q->ring, cap * sizeof *r);
    if (r == NULL) return 0;
    q->ring = r;
  }
  else {                                  /* FIFO: unwrap into a new ring */
    duet_Value *r = (duet_Value *)malloc(cap * sizeof *r);
    size_t i;
    if (r == NULL) return 0;
    for (i = 0; i < q->n; i++) r[i] = q->ring[(q->head + i) & (q->cap - 1)];
    free(q->ring);
    q->ring = r;
    q->head = 0;
  }
  q->cap = cap;
  return 1;
}

static int reserve(Queue *q, size_t k) {
  if (q->n + k <= q->cap) return 1;
  return resize(q, pow2_at_least(q->n + k));
}

/* A queue's containers, taken out whole, to be freed outside its lock. */
typedef struct Contents {
  int kind;
  size_t n, head, cap;
  duet_Value *ring;
  Entry *heap;
} Contents;

static Contents take_contents(Queue *q) {
  Contents c;
  c.kind = q->kind;
  c.n = q->n;
  c.head = q->head;
  c.cap = q->cap;
  c.ring = q->ring;
  c.heap = q->heap;
  q->n = q->head = q->cap = 0;
  q->ring = NULL;
  q->heap = NULL;
  return c;
}

static void free_contents(Contents *c) {
  size_t i;
  for (i = 0; i < c->n; i++) {
    if (c->kind == PRIO) {
      key_free(&c->heap[i].key);
      duet_value_free(&c->heap[i].v);
    }
    else if (c->kind == LIFO) duet_value_free(&c->ring[i]);
    else duet_value_free(&c->ring[(c->head + i) & (c->cap - 1)]);
  }
  free(c->ring);
  free(c->heap);
}

/* `k` items will never be task_done: count them done. */
static void count_done(Queue *q, size_t k) {
  q->unfinished -= k < q->unfinished ? k : q->unfinished;
  if (q->unfinished == 0 && q->joiners > 0)
    pthread_cond_broadcast(&q->all_done);
}

/* After takes: give memory back once the queue has drained well below a
** large capacity (halving, so a busy queue does not thrash). */
static void maybe_shrink(Queue *q) {
  if (q->cap > 1024 && q->n < q->cap / 8) resize(q, q->cap / 2);
}

static int entry_less(const Entry *a, const Entry *b) {
  int c = key_cmp(&a->key, &b->key);
  return c < 0 || (c == 0 && a->seq < b->seq);
}

/* Add `it`; a PriorityQueue item gets the next arrival number unless it
** is going back in (again: keeps the one it had). */
static void push_item(Queue *q, Item *it, int again) {
  if (q->kind == FIFO) q->ring[(q->head + q->n) & (q->cap - 1)] = it->v;
  else if (q->kind == LIFO) q->ring[q->n] = it->v;
  else {
    Entry e;
    size_t i = q->n;
    e.key = it->key;
    e.seq = again ? it->seq : q->seq++;
    e.v = it->v;
    while (i > 0 && entry_less(&e, &q->heap[(i - 1) / 2])) {
      q->heap[i] = q->heap[(i - 1) / 2];
      i = (i - 1) / 2;
    }
    q->heap[i] = e;
  }
  it->v.tag = DUET_V_NIL;                 /* the queue's now */
  it->key.tag = DUET_V_NIL;
  q->n++;
}

static void pop_item(Queue *q, Item *it) {
  q->n--;
  it->key.tag = DUET_V_NIL;
  if (q->kind == FIFO) {
    it->v = q->ring[q->head];
    q->head = (q->head + 1) & (q->cap - 1);
  }
  else if (q->kind == LIFO) it->v = q->ring[q->n];
  else {
    Entry last = q->heap[q->n];
    size_t i = 0, n = q->n;
    it->v = q->heap[0].v;
    it->key = q->heap[0].key;
    it->seq = q->heap[0].seq;
    for (;;) {
      size_t c = 2 * i + 1;
      if (c >= n) break;
      if (c + 1 < n && entry_less(&q->heap[c + 1], &q->heap[c])) c++;
      if (!entry_less(&q->heap[c], &last)) break;
      q->heap[i] = q->heap[c];
      i = c;
    }
    if (n > 0) q->heap[i] = last;
  }
}

/* ------------------------------------------------------------ waiting */

/* A thread waiting for items or room waits in line, first come first
** served, on a node on its own stack. Whoever takes items moves the items
** of the putters at the head of the line into the room it made; whoever
** puts items hands them to the getters at the head of the line. Either way
** the waiter is served without taking the lock again, and a thread
** arriving later cannot overtake. A waiter spins on its node for about as
** long as a wake-up costs, then parks on its own condition variable, which
** is signalled only if it is parked. */
enum { WAITING, SERVED, CLOSED, NO_ROOM_MEMORY };

struct Waiter {
  Waiter *prev, *next;                    /* head->prev: the last one */
  atomic_int state;                       /* changed under q->mu */
  int parked;                             /* in duet_wait (q->mu held) */
  int has_cv;
  Item *items;                            /* putters: k to put; getters: */
  size_t k, got;                          /* room for k, got handed over */
  pthread_cond_t cv;
};

#define SPIN_SECONDS 15e-6

static void line_push(Waiter **head, Waiter *w) {
  w->next = NULL;
  if (*head == NULL) {
    w->prev = w;
    *head = w;
  }
  else {
    Waiter *last = (*head)->prev;
    last->next = w;
    w->prev = last;
    (*head)->prev = w;
  }
}

static void line_remove(Waiter **head, Waiter *w) {
  if (w == *head) {
    *head = w->next;
    if (*head) (*head)->prev = w->prev;
  }
  else {
    w->prev->next = w->next;
    if (w->next) w->next->prev = w->prev;
    else (*head)->prev = w->prev;
  }
}

/* Take the head of the line out and tell it `state`. A waiter not parked
** may return the moment it sees the new state (its node is on its stack),
** so nothing of the node is touched after the store unless it is parked:
** then it cannot leave before q->mu, held here, is released. */
static void serve(Waiter **head, int state) {
  Waiter *w = *head;
  int parked = w->parked;
  line_remove(head, w);
  atomic_store_explicit(&w->state, state, memory_order_release);
  if (parked) pthread_cond_signal(&w->cv);
}

static void put_items(Queue *q, Item *items, size_t k);

/* Move the items of the putters at the head of the line in, while they
** fit. */
static void serve_putters(Queue *q) {
  while (q->putters && (q->maxsize == 0
                        || q->maxsize - q->n >= q->putters->k)) {
    Waiter *w = q->putters;
    if (!reserve(q, w->k)) {
      serve(&q->putters, NO_ROOM_MEMORY);
      continue;
    }
    put_items(q, w->items, w->k);
    serve(&q->putters, SERVED);
  }
}

/* Take up to max items (at least one is there). */
static size_t take_items(Queue *q, Item *items, size_t max) {
  size_t i, k = q->n < max ? q->n : max;
  for (i = 0; i < k; i++) pop_item(q, &items[i]);
  maybe_shrink(q);
  serve_putters(q);
  return k;
}

static void hand_items(Queue *q) {
  while (q->getters && q->n > 0) {
    Waiter *w = q->getters;
    w->got = take_items(q, w->items, w->k);
    serve(&q->getters, SERVED);
  }
}

static void put_items(Queue *q, Item *items, size_t k) {
  size_t i;
  for (i = 0; i < k; i++) push_item(q, &items[i], 0);
  q->unfinished += k;
  hand_items(q);
}

/* Put back items a getter was handed but may not keep (it was cancelled),
** where they were, for the next in line; 0 if there is no memory for that
** (the getter keeps them then). */
static int unget_items(Queue *q, Item *items, size_t k) {
  size_t i;
  if (!reserve(q, k)) return 0;
  for (i = k; i-- > 0;) {
    if (q->kind == FIFO) {
      q->head = (q->head + q->cap - 1) & (q->cap - 1);
      q->n++;
      q->ring[q->head] = items[i].v;
      items[i].v.tag = DUET_V_NIL;
    }
    else push_item(q, &items[i], 1);
  }
  hand_items(q);
  return 1;
}

/* Room for k more, for a putter that is not in line? */
static int has_room(const Queue *q, size_t k) {
  return q->putters == NULL && (q->maxsize == 0 || q->maxsize - q->n >= k);
}

static void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

/* Wait in line: called with q->mu held; returns w's final state (SERVED,
** CLOSED, NO_ROOM_MEMORY), or WAITING when it gave up (*r says why; w is
** out of the line then). Returns with q->mu held, unless w was served while
** spinning: then *unlocked is set and q->mu is not held. */
static int wait_turn(lua_State *L, Queue *q, Waiter **head, Waiter *w,
                     double timeout, int *r, int *unlocked) {
  double deadline = duet_deadline(timeout);
  int s;
  *r = 0;
  atomic_init(&w->state, WAITING);
  w->parked = 0;
  w->has_cv = 0;
  line_push(head, w);
  pthread_mutex_unlock(&q->mu);
  if ((s = atomic_load_explicit(&w->state, memory_order_acquire))
      == WAITING) {
    double until = duet_now() + SPIN_SECONDS;
    int i;
    if (until > deadline) until = deadline;
    do {
      for (i = 0; i < 32; i++) cpu_relax();
    } while ((s = atomic_load_explicit(&w->state, memory_order_acquire))
             == WAITING && duet_now() < until);
  }
  if (s != WAITING) {                     /* served while spinning */
    *unlocked = 1;
    return s;
  }
  duet_cond_init(&w->cv);
  w->has_cv = 1;
  duet_wait_begin(L, &w->cv, &q->mu);
  pthread_mutex_lock(&q->mu);
  /* the state is read again after every wait, a failed one too: it may
  ** have been served just as it timed out or was cancelled */
  while ((s = atomic_load_explicit(&w->state, memory_order_relaxed))
         == WAITING && *r == 0) {
    w->parked = 1;
    *r = duet_wait(L, &w->cv, &q->mu, deadline);
    w->parked = 0;
  }
  if (s == WAITING) line_remove(head, w);
  return s;
}

/* After q->mu is released: duet_wait_end is never called under it, since
** thread_cancel takes the two locks the other way round. */
static void wait_done(lua_State *L, Waiter *w) {
  if (w->has_cv) {
    duet_wait_end(L);
    pthread_cond_destroy(&w->cv);
  }
}

/* ----------------------------------------------------- putting, getting */

enum { DONE, FAILED, IS_CLOSED, NO_MEMORY };

/* Put k items (k >= 1), all or none. FAILED: *r says why (DUET_TIMEDOUT,
** or an error for duet_wait_error). Items put are the queue's; the rest
** stay the caller's. */
static int put_items_wait(lua_State *L, Queue *q, Item *items, size_t k,
                          double timeout, int *r) {
  Waiter w;
  int res = FAILED, queued = 0, unlocked = 0;
  *r = 0;
  duet_wait_prepare(L);                   /* nothing raises once w is in line */
  pthread_mutex_lock(&q->mu);
  if (q->closed) res = IS_CLOSED;
  else if (has_room(q, k)) {
    res = reserve(q, k) ? DONE : NO_MEMORY;
    if (res == DONE) put_items(q, items, k);
  }
  else if (timeout == 0) *r = DUET_TIMEDOUT;
  else {
    int s;
    queued = 1;
    w.items = items;
    w.k = k;
    s = wait_turn(L, q, &q->putters, &w, timeout, r, &unlocked);
    if (s == SERVED) {                    /* in, if at the deadline too */
      *r = 0;
      res = DONE;
    }
    else if (s == CLOSED && *r == 0) res = IS_CLOSED;
    else if (s == NO_ROOM_MEMORY && *r == 0) res = NO_MEMORY;
    else if (s == WAITING) serve_putters(q);  /* those behind may fit */
  }
  if (!unlocked) pthread_mutex_unlock(&q->mu);
  if (queued) wait_done(L, &w);
  return res;
}

/* Take 1..max items into `items`; returns how many, or 0 and *why:
** IS_CLOSED, or FAILED with *r (DUET_TIMEDOUT or an error). With a batch
** b (items is b->items), up to `want` items that are there already are
** taken, b growing as needed. */
static size_t get_items_wait(lua_State *L, Queue *q, Item *items, size_t max,
                             Batch *b, size_t want, double timeout, int *r,
                             int *why) {
  Waiter w;
  size_t k = 0, discard = 0, i;
  int queued = 0, unlocked = 0;
  *r = 0;
  *why = FAILED;
  duet_wait_prepare(L);                   /* nothing raises once w is in line */
  pthread_mutex_lock(&q->mu);
  if (b && q->n > max && want > max) {    /* more than set aside: grow */
    size_t n = q->n < want ? q->n : want;
    Item *more = (Item *)realloc(b->items, n * sizeof *more);
    if (more) {
      b->items = items = more;
      b->cap = max = n;
    }
  }
  if (q->n > 0) k = take_items(q, items, max);  /* nobody is in line */
  else if (q->closed) *why = IS_CLOSED;
  else if (timeout == 0) *r = DUET_TIMEDOUT;
  else {
    int s;
    queued = 1;
    w.items = items;
    w.k = max;
    w.got = 0;
    s = wait_turn(L, q, &q->getters, &w, timeout, r, &unlocked);
    if (s == SERVED) {
      int give_back;
      if (*r == 0 && duet_cancel_pending()) *r = DUET_CANCELLED;
      give_back = *r == DUET_CANCELLED || *r == DUET_INTERRUPTED;
      if (give_back) {                    /* it takes nothing after all */
        if (unlocked) pthread_mutex_lock(&q->mu);
        unlocked = 0;
        if (q->closed == DISCARDED) {     /* nowhere to go back: dropped */
          count_done(q, w.got);
          discard = w.got;
        }
        else give_back = unget_items(q, items, w.got);
      }
      if (!give_back) {                   /* served, if at the deadline */
        *r = 0;
        k = w.got;
      }
    }
    else if (s == CLOSED && *r == 0) *why = IS_CLOSED;
  }
  if (!unlocked) pthread_mutex_unlock(&q->mu);
  if (queued) wait_done(L, &w);
  for (i = 0; i < discard; i++) item_free(&items[i]);
  return k;
}

/* ------------------------------------------------------------ methods */

static Queue *check_queue(lua_State *L) {
  return (Queue *)duet_check_self(
      L, (const duet_Type *)lua_touserdata(L, lua_upvalueindex(2)));
}

/* The answer of a put that did not happen. */
static int put_failed(lua_State *L, int res, int r) {
  if (res == FAILED && r != DUET_TIMEDOUT) return duet_wait_error(L, r);
  if (res == IS_CLOSED) return luaL_error(L, "put on a closed queue");
  if (res == NO_MEMORY) return luaL_error(L, "not enough memory");
  lua_pushnil(L);
  lua_pushliteral(L, "full");
  return 2;
}

/* The answer of a get that took nothing. */
static int get_failed(lua_State *L, int why, int r) {
  if (why == FAILED && r != DUET_TIMEDOUT) return duet_wait_error(L, r);
  lua_pushnil(L);
  if (why == IS_CLOSED) lua_pushliteral(L, "closed");
  else lua_pushliteral(L, "empty");
  return 2;
}

static int put_one(lua_State *L, Queue *q, double timeout) {
  Item it;
  int r, res;
  duet_jitter();
  item_set(L, q, 2, 2, "item", 0, &it);
  res = put_items_wait(L, q, &it, 1, timeout, &r);
  if (res == DONE) {
    lua_pushboolean(L, 1);
    return 1;
  }
  item_free(&it);                         /* nothing was enqueued */
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
  if (q->closed == DISCARDED || !unget_items(q, items, k)) {
    for (i = 0; i < k; i++) item_free(&items[i]);
    count_done(q, k);
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
  item_free(&items[bad]);
  memmove(&items[bad], &items[bad + 1], (k - bad - 1) * sizeof *items);
  pthread_mutex_lock(&q->mu);
  count_done(q, 1);
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
  if (q->kind == PRIO) key_free(&it->key);
}

/* Push one item, or nil and why; returns 1 or 2. */
static int get_one(lua_State *L, Queue *q, double timeout) {
  Item it;
  int r, why;
  duet_jitter();
  if (get_items_wait(L, q, &it, 1, NULL, 1, timeout, &r, &why) == 0)
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
  if (lua_getfield(L, 2, "n") == LUA_TNUMBER && lua_isinteger(L, -1)
      && lua_tointeger(L, -1) >= 0)       /* a table.pack list */
    k = (size_t)lua_tointeger(L, -1);
  else k = (size_t)lua_rawlen(L, 2);
  lua_settop(L, 3);
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
    res = q->closed ? IS_CLOSED : DONE;
    pthread_mutex_unlock(&q->mu);
  }
  else res = put_items_wait(L, q, b->items, k, timeout, &r);
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
  k = get_items_wait(L, q, b->items, room, b,
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

/* Shut `q` (held): everyone in line is told it is closed. */
static void shut(Queue *q) {
  if (q->closed == OPEN) {
    q->closed = SHUT;
    while (q->getters) serve(&q->getters, CLOSED);
    while (q->putters) serve(&q->putters, CLOSED);
  }
}

static int queue_close(lua_State *L) {
  Queue *q = check_queue(L);
  pthread_mutex_lock(&q->mu);
  shut(q);
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
  shut(q);
  if (immediate) {
    q->closed = DISCARDED;
    count_done(q, q->n);
    c = take_contents(q);
  }
  pthread_mutex_unlock(&q->mu);
  free_contents(&c);
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
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_pushvalue(L, lua_upvalueindex(2));
  lua_pushcclosure(L, queue_iter_next, 2);
  lua_pushvalue(L, 1);
  return 2;
}

/* Method lookup. A queue's proxy starts with its type's metatable, whose
** __index is a function (below). It is then given a metatable whose
** __index is a plain table of the methods plus the queue's maxsize, so a
** method call costs one table read rather than a C call. These metatables
** are shared by the queues of one type and maxsize in a state, kept in a
** weak cache in the type's metatable. */
static const char methods_key = 'm';      /* type metatable: methods */
static const char cache_key = 'c';        /* type metatable: maxsize -> mt */

static void push_fast_meta(lua_State *L, const Queue *q) {
  static const char *const copied[] = {"__gc", "__tostring", "__newindex",
                                       "__name", "__duet", NULL};
  int i, tmt, cache;
  luaL_checkstack(L, 8, NULL);
  luaL_getmetatable(L, q->base.type->name);
  tmt = lua_gettop(L);
  lua_rawgetp(L, tmt, &cache_key);
  cache = tmt + 1;
  if (lua_rawgeti(L, cache, (lua_Integer)q->maxsize) == LUA_TTABLE) {
    lua_replace(L, tmt);
    lua_settop(L, tmt);
    return;
  }
  lua_pop(L, 1);
  lua_createtable(L, 0, 6);               /* the metatable */
  for (i = 0; copied[i]; i++) {
    lua_getfield(L, tmt, copied[i]);
    lua_setfield(L, -2, copied[i]);
  }
  lua_createtable(L, 0, 16);              /* its __index */
  lua_rawgetp(L, tmt, &methods_key);
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

/* The type metatable's __index: upgrade the proxy, then look k up. */
static int queue_index(lua_State *L) {
  Queue *q = (Queue *)duet_to_object(L, 1);
  if (q == NULL || q->base.type < queue_types
      || q->base.type >= queue_types + 3) {
    lua_pushvalue(L, 2);                  /* a method, or nothing */
    lua_rawget(L, lua_upvalueindex(1));
    return 1;
  }
  push_fast_meta(L, q);
  lua_pushvalue(L, -1);
  lua_setmetatable(L, 1);
  lua_getfield(L, -1, "__index");
  lua_pushvalue(L, 2);
  lua_rawget(L, -2);
  return 1;
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
  Contents c = take_contents(q);
  free_contents(&c);
  pthread_mutex_destroy(&q->mu);
  pthread_cond_destroy(&q->all_done);
  free(q);
}

static void queue_describe(duet_Object *o, char *buf, size_t size) {
  Queue *q = (Queue *)o;
  size_t n;
  int closed;
  pthread_mutex_lock(&q->mu);
  n = q->n;
  closed = q->closed;
  pthread_mutex_unlock(&q->mu);
  if (q->maxsize > 0)
    snprintf(buf, size, "size %zu/%zu%s", n, q->maxsize,
             closed ? ", closed" : "");
  else snprintf(buf, size, "size %zu%s", n, closed ? ", closed" : "");
}

static const duet_Type queue_types[3] = {
  {"duet.Queue", queue_destroy, queue_describe},
  {"duet.LifoQueue", queue_destroy, queue_describe},
  {"duet.PriorityQueue", queue_destroy, queue_describe},
};

static int new_queue(lua_State *L, int kind) {
  lua_Integer maxsize = luaL_optinteger(L, 1, 0);
  Queue *q = (Queue *)duet_new_object(L, &queue_types[kind], sizeof(Queue));
  pthread_mutexattr_t a;
  q->kind = kind;
  q->maxsize = maxsize > 0 ? (size_t)maxsize : 0;
  pthread_mutexattr_init(&a);
  pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ADAPTIVE_NP);
  pthread_mutex_init(&q->mu, &a);
  pthread_mutexattr_destroy(&a);
  duet_cond_init(&q->all_done);
  push_fast_meta(L, q);
  lua_setmetatable(L, -2);
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

int duet_queue_open(lua_State *L) {
  int i, batch;
  new_batch(L);                           /* one per state, shared */
  batch = lua_gettop(L);
  for (i = 0; i < 3; i++) {
    const duet_Type *t = &queue_types[i];
    duet_new_type(L, t, NULL, NULL);
    luaL_getmetatable(L, t->name);
    if (lua_getfield(L, -1, "__index") != LUA_TNIL) {  /* loaded before */
      lua_pop(L, 2);
      continue;
    }
    lua_pop(L, 1);
    /* methods carry (metatable, type, batch) */
    lua_createtable(L, 0, 16);
    lua_pushvalue(L, -2);
    lua_pushlightuserdata(L, (void *)t);
    lua_pushvalue(L, batch);
    luaL_setfuncs(L, queue_methods, 3);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, -3, &methods_key);
    lua_pushcclosure(L, queue_index, 1);
    lua_setfield(L, -2, "__index");
    lua_newtable(L);                      /* maxsize -> fast metatable */
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "v");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_rawsetp(L, -2, &cache_key);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  luaL_setfuncs(L, queue_funcs, 0);
  return 0;
}

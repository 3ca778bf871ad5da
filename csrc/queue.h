/*
** queue.h — what the three parts of the queues share: queue.c (the Lua
** methods), queuestore.c (where items are kept) and queuewait.c (waiting
** in line). Private to them; duet.h has only duet_queue_open.
*/
#ifndef DUET_QUEUE_H
#define DUET_QUEUE_H

#include <stdint.h>

#include "duet.h"

enum { FIFO, LIFO, PRIO };                /* Queue, LifoQueue, PriorityQueue */

/* close() or shutdown() make a queue SHUT: no more puts, what is left can
** still be taken. shutdown(true) makes it DISCARDED: what was queued is
** gone (and counts as done for join), and whatever comes back later (a
** cancelled getter's items) is dropped too. */
enum { OPEN, SHUT, DISCARDED };

/* How a put or a get ends. A waiter in line is WAITING until whoever
** serves it tells it DONE, CLOSED or NO_MEMORY (no memory for the room its
** items need); FAILED is a put or get that gave up: timed out, cancelled
** or interrupted (an `r` beside it says which). */
enum { WAITING, DONE, CLOSED, NO_MEMORY, FAILED };

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

typedef struct Waiter Waiter;             /* queuewait.c */

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

/* Items in flight for put_many and get_many (queue.c lends them). */
typedef struct Batch {
  Item *items;
  size_t cap, used;                       /* items [0, used) may own */
  int busy;
} Batch;

/* A queue's containers, taken out whole, to be freed outside its lock. */
typedef struct Contents {
  int kind;
  size_t n, head, cap;
  duet_Value *ring;
  Entry *heap;
} Contents;

/* queuestore.c: with q->mu held (but the frees), no Lua API */
void queue_key_free(Key *k);
void queue_item_free(Item *it);
int queue_reserve(Queue *q, size_t k);    /* room for k more; 0: no memory */
Contents queue_take_contents(Queue *q);
void queue_free_contents(Contents *c);
void queue_count_done(Queue *q, size_t k);
void queue_maybe_shrink(Queue *q);
void queue_push_item(Queue *q, Item *it, int again);
void queue_pop_item(Queue *q, Item *it);
void queue_unpop_item(Queue *q, Item *it);

/* queuewait.c */
int queue_put_wait(lua_State *L, Queue *q, Item *items, size_t k,
                   double timeout, int *r);
size_t queue_get_wait(lua_State *L, Queue *q, Item *items, size_t max,
                      Batch *b, size_t want, double timeout, int *r,
                      int *why);
int queue_unget(Queue *q, Item *items, size_t k);     /* q->mu held */
void queue_shut(Queue *q);                            /* q->mu held */
size_t queue_line_length(const Waiter *head);         /* q->mu held */

#endif

/*
** queuewait.c — waiting in line, for items (getters) or for room
** (putters), and serving those in line as items come and go. Apart from
** the containers (queuestore.c) and the Lua methods (queue.c) because it
** is the queues' concurrency protocol: the one place that decides who
** gets what, and what a waiter that gives up leaves behind.
*/
#include <stdlib.h>

#include "queue.h"

/* ------------------------------------------------------------ waiting */

/* A thread waiting for items or room waits in line, first come first
** served, on a node on its own stack. Whoever takes items moves the items
** of the putters at the head of the line into the room it made; whoever
** puts items hands them to the getters at the head of the line. Either way
** the waiter is served without taking the lock again, and a thread
** arriving later cannot overtake. A waiter spins on its node for about as
** long as a wake-up costs, then parks on its own condition variable, which
** is signalled only if it is parked. A waiter's state is WAITING, then
** what it was told (queue.h). */

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

/* How many wait in the line that starts at `head`. */
size_t queue_line_length(const Waiter *head) {
  size_t n = 0;
  for (; head; head = head->next) n++;
  return n;
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
    if (!queue_reserve(q, w->k)) {
      serve(&q->putters, NO_MEMORY);
      continue;
    }
    put_items(q, w->items, w->k);
    serve(&q->putters, DONE);
  }
}

/* Take up to max items (at least one is there). */
static size_t take_items(Queue *q, Item *items, size_t max) {
  size_t i, k = q->n < max ? q->n : max;
  for (i = 0; i < k; i++) queue_pop_item(q, &items[i]);
  queue_maybe_shrink(q);
  serve_putters(q);
  return k;
}

static void hand_items(Queue *q) {
  while (q->getters && q->n > 0) {
    Waiter *w = q->getters;
    w->got = take_items(q, w->items, w->k);
    serve(&q->getters, DONE);
  }
}

static void put_items(Queue *q, Item *items, size_t k) {
  size_t i;
  for (i = 0; i < k; i++) queue_push_item(q, &items[i], 0);
  q->unfinished += k;
  hand_items(q);
}

/* Put back items a getter was handed but may not keep (it was cancelled),
** where they were, for the next in line; 0 if there is no memory for that
** (the getter keeps them then). */
int queue_unget(Queue *q, Item *items, size_t k) {
  size_t i;
  if (!queue_reserve(q, k)) return 0;
  for (i = k; i-- > 0;) queue_unpop_item(q, &items[i]);
  hand_items(q);
  return 1;
}

/* Room for k more, for a putter that is not in line? */
static int has_room(const Queue *q, size_t k) {
  return q->putters == NULL && (q->maxsize == 0 || q->maxsize - q->n >= k);
}

/* Wait in line: called with q->mu held; returns w's final state (DONE,
** CLOSED, NO_MEMORY), or WAITING when it gave up (*r says why; w is
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
      for (i = 0; i < 32; i++) duet_cpu_relax();
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

/* Put k items (k >= 1), all or none. FAILED: *r says why (DUET_TIMEDOUT,
** or an error for duet_wait_error). Items put are the queue's; the rest
** stay the caller's. */
int queue_put_wait(lua_State *L, Queue *q, Item *items, size_t k,
                   double timeout, int *r) {
  Waiter w;
  int res = FAILED, queued = 0, unlocked = 0;
  *r = 0;
  duet_wait_prepare(L);                   /* nothing raises once w is in line */
  pthread_mutex_lock(&q->mu);
  if (q->closed) res = CLOSED;
  else if (has_room(q, k)) {
    res = queue_reserve(q, k) ? DONE : NO_MEMORY;
    if (res == DONE) put_items(q, items, k);
  }
  else if (timeout == 0) *r = DUET_TIMEDOUT;
  else {
    int s;
    queued = 1;
    w.items = items;
    w.k = k;
    s = wait_turn(L, q, &q->putters, &w, timeout, r, &unlocked);
    if (s == DONE) {                      /* in, if at the deadline too */
      *r = 0;
      res = DONE;
    }
    else if (s == CLOSED && *r == 0) res = CLOSED;
    else if (s == NO_MEMORY && *r == 0) res = NO_MEMORY;
    else if (s == WAITING) serve_putters(q);  /* those behind may fit */
  }
  if (!unlocked) pthread_mutex_unlock(&q->mu);
  if (queued) wait_done(L, &w);
  return res;
}

/* Take 1..max items into `items`; returns how many, or 0 and *why:
** CLOSED, or FAILED with *r (DUET_TIMEDOUT or an error). With a batch
** b (items is b->items), up to `want` items that are there already are
** taken, b growing as needed. */
size_t queue_get_wait(lua_State *L, Queue *q, Item *items, size_t max,
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
  else if (q->closed) *why = CLOSED;
  else if (timeout == 0) *r = DUET_TIMEDOUT;
  else {
    int s;
    queued = 1;
    w.items = items;
    w.k = max;
    w.got = 0;
    s = wait_turn(L, q, &q->getters, &w, timeout, r, &unlocked);
    if (s == DONE) {
      int give_back;
      if (*r == 0 && duet_cancel_pending()) *r = DUET_CANCELLED;
      give_back = *r == DUET_CANCELLED || *r == DUET_INTERRUPTED;
      if (give_back) {                    /* it takes nothing after all */
        if (unlocked) pthread_mutex_lock(&q->mu);
        unlocked = 0;
        if (q->closed == DISCARDED) {     /* nowhere to go back: dropped */
          queue_count_done(q, w.got);
          discard = w.got;
        }
        else give_back = queue_unget(q, items, w.got);
      }
      if (!give_back) {                   /* served, if at the deadline */
        *r = 0;
        k = w.got;
      }
    }
    else if (s == CLOSED && *r == 0) *why = CLOSED;
  }
  if (!unlocked) pthread_mutex_unlock(&q->mu);
  if (queued) wait_done(L, &w);
  for (i = 0; i < discard; i++) queue_item_free(&items[i]);
  return k;
}

/* Shut `q` (held): everyone in line is told it is closed. */
void queue_shut(Queue *q) {
  if (q->closed == OPEN) {
    q->closed = SHUT;
    while (q->getters) serve(&q->getters, CLOSED);
    while (q->putters) serve(&q->putters, CLOSED);
  }
}

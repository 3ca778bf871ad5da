/*
** queuestore.c — where a queue keeps its items: the PriorityQueue keys and
** their order, and the containers (a power-of-two ring for FIFO, a stack
** for LIFO, a binary heap for PriorityQueue) that items go into and come
** out of. The three kinds differ only here (queue_push_item,
** queue_pop_item). A file of its own because it is plain data structures:
** nothing here locks, waits or calls the Lua API (callers hold q->mu, but
** for freeing items and contents already taken out), so it reads and
** changes apart from the waiting (queuewait.c) and the methods (queue.c).
*/
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "queue.h"

/* ------------------------------------------------------------- items */

void queue_key_free(Key *k) {
  if (k->tag == DUET_V_STR) free(k->u.s);
  k->tag = DUET_V_NIL;
}

void queue_item_free(Item *it) {
  duet_value_free(&it->v);
  queue_key_free(&it->key);
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

/* ------------------------------------------------------- the containers */

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

int queue_reserve(Queue *q, size_t k) {
  if (q->n + k <= q->cap) return 1;
  return resize(q, pow2_at_least(q->n + k));
}

Contents queue_take_contents(Queue *q) {
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

void queue_free_contents(Contents *c) {
  size_t i;
  for (i = 0; i < c->n; i++) {
    if (c->kind == PRIO) {
      queue_key_free(&c->heap[i].key);
      duet_value_free(&c->heap[i].v);
    }
    else if (c->kind == LIFO) duet_value_free(&c->ring[i]);
    else duet_value_free(&c->ring[(c->head + i) & (c->cap - 1)]);
  }
  free(c->ring);
  free(c->heap);
}

/* `k` items will never be task_done: count them done. */
void queue_count_done(Queue *q, size_t k) {
  q->unfinished -= k < q->unfinished ? k : q->unfinished;
  if (q->unfinished == 0 && q->joiners > 0)
    pthread_cond_broadcast(&q->all_done);
}

/* After takes: give memory back once the queue has drained well below a
** large capacity (halving, so a busy queue does not thrash). */
void queue_maybe_shrink(Queue *q) {
  if (q->cap > 1024 && q->n < q->cap / 8) resize(q, q->cap / 2);
}

static int entry_less(const Entry *a, const Entry *b) {
  int c = key_cmp(&a->key, &b->key);
  return c < 0 || (c == 0 && a->seq < b->seq);
}

/* Add `it`; a PriorityQueue item gets the next arrival number unless it
** is going back in (again: keeps the one it had). */
void queue_push_item(Queue *q, Item *it, int again) {
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

void queue_pop_item(Queue *q, Item *it) {
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

/* Put `it` back where it came out, ahead of the others (room is reserved).
** A PriorityQueue item keeps its arrival number, so it goes back into its
** place. */
void queue_unpop_item(Queue *q, Item *it) {
  if (q->kind == FIFO) {
    q->head = (q->head + q->cap - 1) & (q->cap - 1);
    q->n++;
    q->ring[q->head] = it->v;
    it->v.tag = DUET_V_NIL;
  }
  else queue_push_item(q, it, 1);
}

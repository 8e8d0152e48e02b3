/*
 * Per-process timers: a binary min-heap ordered by (deadline, ref).
 *
 * The heap itself is not synchronised: its owner (struct actor) guards it
 * with a mutex so that any thread can set and cancel timers exactly.  Refs grow monotonically per process, so timers with the
 * same deadline fire in the order they were set.  Insert and pop cost
 * O(log n); cancel looks the ref up linearly, O(n) in the timers of that one
 * process (processes keep few timers; the cache keeps its own expiry index).
 */
#ifndef GC_TIMERS_H
#define GC_TIMERS_H

#include "mailbox.h"

#include <stddef.h>
#include <stdint.h>

typedef struct gc_timer {
    uint64_t deadline;   /* ms on the process clock */
    uint64_t ref;
    uint32_t tag;
    size_t len;
    unsigned char data[]; /* payload copied at send_after */
} gc_timer_t;

typedef struct gc_timer_heap {
    gc_timer_t **v;
    size_t n, cap;
} gc_timer_heap_t;

void gc_timers_init(gc_timer_heap_t *h);
/* Free every timer and the heap storage. */
void gc_timers_fini(gc_timer_heap_t *h);
/* Returns 0 or -ENOMEM (t is then still the caller's). */
int gc_timers_insert(gc_timer_heap_t *h, gc_timer_t *t);
/* The earliest timer, or NULL. */
gc_timer_t *gc_timers_peek(const gc_timer_heap_t *h);
/* Remove and return the earliest timer if its deadline <= now, else NULL. */
gc_timer_t *gc_timers_pop_due(gc_timer_heap_t *h, uint64_t now);
/* Remove the timer with this ref; returns it (caller frees) or NULL. */
gc_timer_t *gc_timers_remove(gc_timer_heap_t *h, uint64_t ref);

#endif /* GC_TIMERS_H */

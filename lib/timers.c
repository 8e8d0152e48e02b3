/*
 * Binary min-heap of timers (see timers.h).
 */
#include "alloc.h"
#include "timers.h"

#include <errno.h>
#include <stdlib.h>

static int
gc_timer_before(const gc_timer_t *a, const gc_timer_t *b)
{
    if (a->deadline != b->deadline)
        return a->deadline < b->deadline;
    return a->ref < b->ref;
}

static void
gc_heap_swap(gc_timer_heap_t *h, size_t i, size_t j)
{
    gc_timer_t *t = h->v[i];

    h->v[i] = h->v[j];
    h->v[j] = t;
}

static void
gc_heap_up(gc_timer_heap_t *h, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;

        if (!gc_timer_before(h->v[i], h->v[p]))
            break;
        gc_heap_swap(h, i, p);
        i = p;
    }
}

static void
gc_heap_down(gc_timer_heap_t *h, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;

        if (l < h->n && gc_timer_before(h->v[l], h->v[m]))
            m = l;
        if (r < h->n && gc_timer_before(h->v[r], h->v[m]))
            m = r;
        if (m == i)
            return;
        gc_heap_swap(h, i, m);
        i = m;
    }
}

void
gc_timers_init(gc_timer_heap_t *h)
{
    h->v = NULL;
    h->n = h->cap = 0;
}

void
gc_timers_fini(gc_timer_heap_t *h)
{
    size_t i;

    for (i = 0; i < h->n; i++)
        gc_free(h->v[i]);
    gc_free(h->v);
    gc_timers_init(h);
}

int
gc_timers_insert(gc_timer_heap_t *h, gc_timer_t *t)
{
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 16;
        gc_timer_t **v = gc_realloc(h->v, cap * sizeof(*v));

        if (v == NULL)
            return -ENOMEM;
        h->v = v;
        h->cap = cap;
    }
    h->v[h->n] = t;
    gc_heap_up(h, h->n++);
    return 0;
}

gc_timer_t *
gc_timers_peek(const gc_timer_heap_t *h)
{
    return h->n ? h->v[0] : NULL;
}

static gc_timer_t *
gc_heap_remove_at(gc_timer_heap_t *h, size_t i)
{
    gc_timer_t *t = h->v[i];

    h->n--;
    if (i != h->n) {
        h->v[i] = h->v[h->n];
        gc_heap_down(h, i);
        gc_heap_up(h, i);
    }
    return t;
}

gc_timer_t *
gc_timers_pop_due(gc_timer_heap_t *h, uint64_t now)
{
    if (h->n == 0 || h->v[0]->deadline > now)
        return NULL;
    return gc_heap_remove_at(h, 0);
}

gc_timer_t *
gc_timers_remove(gc_timer_heap_t *h, uint64_t ref)
{
    size_t i;

    for (i = 0; i < h->n; i++)
        if (h->v[i]->ref == ref)
            return gc_heap_remove_at(h, i);
    return NULL;
}

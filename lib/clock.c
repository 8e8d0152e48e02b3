/*
 * Clocks: the monotonic clock (NULL) and manual clocks for tests.
 *
 * A manual clock keeps its time in one 64-bit word read without a lock by
 * any thread (timers, cache TTL checks on the read path) and a list of the
 * processes using it, so that advancing the clock can wake each one to fire
 * its due timers.  The list is guarded by a mutex: attaching, detaching and
 * advancing are rare.
 */
#include "alloc.h"
#include "process.h"
#include "park.h"

#include "atomic.h"
#include <errno.h>
#include <stdlib.h>

#define GC_CLOCK_MAGIC 0x636c6f6bu /* "clok" */

struct actor_clock {
    uint32_t magic;
    uint64_t now_ms;
    pthread_mutex_t lock;
    actor_t **procs;        /* processes using it (timers), under lock */
    size_t n, cap;
    size_t holds;           /* other users (caches reading TTLs), under lock */
};

int
actor_clock_manual_new(uint64_t start_ms, actor_clock_t **out)
{
    actor_clock_t *c;

    if (out == NULL)
        return -EINVAL;
    *out = NULL;
    c = gc_calloc(1, sizeof(*c));
    if (c == NULL)
        return -ENOMEM;
    c->magic = GC_CLOCK_MAGIC;
    c->now_ms = start_ms;
    pthread_mutex_init(&c->lock, NULL);
    *out = c;
    return 0;
}

int
actor__clock_is_manual(const actor_clock_t *c)
{
    return c != NULL && c->magic == GC_CLOCK_MAGIC;
}

uint64_t
actor_clock_now(const actor_clock_t *c)
{
    if (c == NULL)
        return (uint64_t)(gc_mono_ns() / 1000000);
    /* Pairs with the fetch-and-add in actor_clock_advance; a reader only
     * needs an untorn value, which a 64-bit atomic load gives. */
    return gc_load_64(&((actor_clock_t *)c)->now_ms);
}

int
actor_clock_advance(actor_clock_t *c, uint64_t ms)
{
    uint64_t now;
    size_t i;

    if (!actor__clock_is_manual(c))
        return -EINVAL;
    /* Refuse to wrap: a clock that went back would serve expired entries
     * again.  The new time is stored before the wake-ups below;
     * gc_mbox_poke's atomic OR and fence order it before the worker's
     * re-read. */
    now = gc_load_64(&c->now_ms);
    do {
        if (ms > UINT64_MAX - now)
            return -EOVERFLOW;
    } while (!ck_pr_cas_64_value(&c->now_ms, now, now + ms, &now));
    pthread_mutex_lock(&c->lock);
    for (i = 0; i < c->n; i++)
        gc_mbox_poke(&c->procs[i]->mbox, GC_ATTN_TICK);
    pthread_mutex_unlock(&c->lock);
    return 0;
}

int
actor__clock_attach(actor_clock_t *c, actor_t *a)
{
    int rc = 0;

    if (!actor__clock_is_manual(c))
        return 0;
    pthread_mutex_lock(&c->lock);
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 8;
        actor_t **p = gc_realloc(c->procs, cap * sizeof(*p));

        if (p == NULL) {
            rc = -ENOMEM;
            goto out;
        }
        c->procs = p;
        c->cap = cap;
    }
    c->procs[c->n++] = a;
out:
    pthread_mutex_unlock(&c->lock);
    return rc;
}

void
actor__clock_detach(actor_clock_t *c, actor_t *a)
{
    size_t i;

    if (!actor__clock_is_manual(c))
        return;
    pthread_mutex_lock(&c->lock);
    for (i = 0; i < c->n; i++) {
        if (c->procs[i] == a) {
            c->procs[i] = c->procs[--c->n];
            break;
        }
    }
    pthread_mutex_unlock(&c->lock);
}

void
actor__clock_hold(actor_clock_t *c)
{
    if (!actor__clock_is_manual(c))
        return;
    pthread_mutex_lock(&c->lock);
    c->holds++;
    pthread_mutex_unlock(&c->lock);
}

void
actor__clock_unhold(actor_clock_t *c)
{
    if (!actor__clock_is_manual(c))
        return;
    pthread_mutex_lock(&c->lock);
    c->holds--;
    pthread_mutex_unlock(&c->lock);
}

int
actor_clock_free(actor_clock_t *c)
{
    size_t n;

    if (!actor__clock_is_manual(c))
        return -EINVAL;
    pthread_mutex_lock(&c->lock);
    n = c->n + c->holds;
    pthread_mutex_unlock(&c->lock);
    if (n != 0)
        return -EBUSY;
    c->magic = 0;
    pthread_mutex_destroy(&c->lock);
    gc_free(c->procs);
    gc_free(c);
    return 0;
}

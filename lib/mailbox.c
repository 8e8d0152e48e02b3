/*
 * Mailbox implementation: see mailbox.h for the algorithm.
 *
 * Memory ordering, in one place:
 *
 *  (1) publish: a producer fills its message, then ck_pr_fence_store()
 *      orders those stores before the CAS that links the message into head.
 *      It pairs with (2).
 *  (2) acquire: the consumer exchanges head, then ck_pr_fence_load() orders
 *      its later reads of the messages after the exchange.  Pairs with (1).
 *  (3) wake-up handshake (Dekker): the consumer sets `sleeping` with an
 *      atomic exchange, then ck_pr_fence_atomic_load() orders that before it
 *      re-reads head and attn; a producer CASes head (or ORs attn), then
 *      ck_pr_fence_atomic_load() orders that before it reads `sleeping`.
 *      So either the consumer sees the new message, or the producer sees
 *      sleeping == 1 and wakes it: a wake-up cannot be lost.  On x86 both
 *      fences are compiler barriers (locked instructions are full barriers).
 *
 * Only a producer that found the stack empty needs to check `sleeping`: if
 * the stack was not empty, the consumer has not yet taken the earlier
 * message, and the producer that pushed onto the empty stack wakes it.
 */
#include "alloc.h"
#include "mailbox.h"
#include "park.h"

#include "atomic.h"
#include <errno.h>
#include <limits.h>

void
gc_mbox_init(gc_mbox_t *mb, size_t limit)
{
    mb->head = NULL;
    mb->sleeping = 0;
    mb->attn = 0;
    mb->depth = 0;
    mb->limit = limit;
    mb->space_seq = 0;
    mb->space_waiters = 0;
}

static void
gc_mbox_wake(gc_mbox_t *mb)
{
    /* (3) producer side: our CAS/OR on head/attn happens before this read. */
    ck_pr_fence_atomic_load();
    if (gc_load_32(&mb->sleeping) != 0 &&
        gc_fas_32(&mb->sleeping, 0) != 0)
        gc_futex_wake(&mb->sleeping, 1);
}

int
gc_mbox_push(gc_mbox_t *mb, gc_msg_t *m, int bounded)
{
    gc_msg_t *h;

    if (bounded && mb->limit != 0) {
        /* depth is a counter, not a synchronisation point: the limit is
         * approximate by at most the number of concurrent producers. */
        if (ck_pr_faa_64(&mb->depth, 1) >= mb->limit) {
            ck_pr_dec_64(&mb->depth);
            return -EAGAIN;
        }
    } else {
        ck_pr_inc_64(&mb->depth);
    }

    /* (1) the message's contents before the CAS that publishes it. */
    ck_pr_fence_store();
    h = gc_load_ptr(&mb->head);
    for (;;) {
        if (h == GC_MBOX_CLOSED) {
            ck_pr_dec_64(&mb->depth);
            return -ESRCH;
        }
        m->next = h;
        if (ck_pr_cas_ptr_value(&mb->head, h, m, &h))
            break;
    }
    if (h == NULL)
        gc_mbox_wake(mb);
    return 0;
}

void gc_mbox_consumed(gc_mbox_t *mb, size_t n);

/* Reverse the taken stack into push order; the messages have left the
 * mailbox, so they no longer count in its depth. */
static gc_msg_t *
gc_mbox_reverse(gc_mbox_t *mb, gc_msg_t *m)
{
    gc_msg_t *out = NULL;
    size_t n = 0;

    while (m != NULL) {
        gc_msg_t *next = m->next;
        m->next = out;
        out = m;
        m = next;
        n++;
    }
    if (n > 0)
        gc_mbox_consumed(mb, n);
    return out;
}

gc_msg_t *
gc_mbox_take_all(gc_mbox_t *mb)
{
    gc_msg_t *m = gc_load_ptr(&mb->head);

    /* Closed stays closed: only the consumer closes, and no push replaces
     * the sentinel, so this read cannot be stale. */
    if (m == NULL || m == GC_MBOX_CLOSED)
        return NULL;
    m = gc_fas_ptr(&mb->head, NULL);
    /* (2) read the messages only after taking them. */
    ck_pr_fence_load();
    return gc_mbox_reverse(mb, m);
}

gc_msg_t *
gc_mbox_close(gc_mbox_t *mb)
{
    gc_msg_t *m = gc_fas_ptr(&mb->head, GC_MBOX_CLOSED);

    /* (2) as in take_all. */
    ck_pr_fence_load();
    if (m == GC_MBOX_CLOSED)
        return NULL;
    return gc_mbox_reverse(mb, m);
}

void
gc_mbox_consumed(gc_mbox_t *mb, size_t n)
{
    /* Counter only; see gc_mbox_push. */
    ck_pr_sub_64(&mb->depth, n);
    /* Waiters for room re-check at least every GC_SPACE_POLL_NS, so this
     * wake-up needs no Dekker handshake: a missed one costs that long. */
    if (mb->limit != 0 && gc_load_32(&mb->space_waiters) != 0) {
        ck_pr_inc_32(&mb->space_seq);
        gc_futex_wake(&mb->space_seq, INT_MAX);
    }
}

/* Longest sleep of a caller waiting for room (1 ms). */
#define GC_SPACE_POLL_NS 1000000

int
gc_mbox_push_wait(gc_mbox_t *mb, gc_msg_t *m, int64_t deadline_ns)
{
    int rc;

    for (;;) {
        uint32_t seq = gc_load_32(&mb->space_seq);
        int64_t left;

        rc = gc_mbox_push(mb, m, 1);
        if (rc != -EAGAIN)
            return rc;
        left = deadline_ns < 0 ? GC_SPACE_POLL_NS : deadline_ns - gc_mono_ns();
        if (left <= 0)
            return -ETIMEDOUT;
        ck_pr_inc_32(&mb->space_waiters);
        gc_futex_wait(&mb->space_seq, seq, left < GC_SPACE_POLL_NS ? left : GC_SPACE_POLL_NS);
        ck_pr_dec_32(&mb->space_waiters);
    }
}

void
gc_mbox_poke(gc_mbox_t *mb, uint32_t bits)
{
    ck_pr_or_32(&mb->attn, bits);
    gc_mbox_wake(mb);
}

static int
gc_mbox_ready(gc_mbox_t *mb)
{
    gc_msg_t *h = gc_load_ptr(&mb->head);

    return (h != NULL && h != GC_MBOX_CLOSED) || gc_load_32(&mb->attn) != 0;
}

void
gc_mbox_park(gc_mbox_t *mb, int64_t timeout_ns)
{
    if (gc_park_spin_begin()) {
        int i;

        for (i = 0; i < GC_PARK_SPINS; i++) {
            if (gc_mbox_ready(mb)) {
                gc_park_spin_end();
                return;
            }
            ck_pr_stall();
        }
        gc_park_spin_end();
    }

    gc_fas_32(&mb->sleeping, 1);
    /* (3) consumer side: sleeping = 1 before we re-read head and attn. */
    ck_pr_fence_atomic_load();
    if (!gc_mbox_ready(mb))
        gc_futex_wait(&mb->sleeping, 1, timeout_ns);
    gc_store_32(&mb->sleeping, 0);
}

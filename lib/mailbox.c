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

void
gc_mbox_init(gc_mbox_t *mb, size_t limit)
{
    mb->head = NULL;
    mb->sleeping = 0;
    mb->attn = 0;
    mb->depth = 0;
    mb->limit = limit;
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

static gc_msg_t *
gc_mbox_reverse(gc_msg_t *m)
{
    gc_msg_t *out = NULL;

    while (m != NULL) {
        gc_msg_t *next = m->next;
        m->next = out;
        out = m;
        m = next;
    }
    return out;
}

gc_msg_t *
gc_mbox_take_all(gc_mbox_t *mb)
{
    gc_msg_t *m;

    if (gc_load_ptr(&mb->head) == NULL)
        return NULL;
    m = gc_fas_ptr(&mb->head, NULL);
    /* (2) read the messages only after taking them. */
    ck_pr_fence_load();
    return gc_mbox_reverse(m);
}

gc_msg_t *
gc_mbox_close(gc_mbox_t *mb)
{
    gc_msg_t *m = gc_fas_ptr(&mb->head, GC_MBOX_CLOSED);

    /* (2) as in take_all. */
    ck_pr_fence_load();
    if (m == GC_MBOX_CLOSED)
        return NULL;
    return gc_mbox_reverse(m);
}

void
gc_mbox_consumed(gc_mbox_t *mb, size_t n)
{
    /* Counter only; see gc_mbox_push. */
    ck_pr_sub_64(&mb->depth, n);
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

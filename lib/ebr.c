/*
 * Epoch-based reclamation with an asymmetric fence (see ebr.h for the
 * algorithm and the argument).  This file holds the slow paths: process
 * initialisation (membarrier registration), reader registration and
 * recycling, and the writer's sync.
 */
#define _GNU_SOURCE
#include "ebr.h"

#include <linux/membarrier.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

uint64_t gc_ebr_global = 1;
int gc_ebr_asym;
__thread gc_ebr_rec_t *gc_ebr_self __attribute__((tls_model("initial-exec")));

static gc_ebr_rec_t *gc_ebr_head;     /* push-only list of every record */
static pthread_once_t gc_ebr_once = PTHREAD_ONCE_INIT;
static pthread_key_t gc_ebr_key;

static void
gc_ebr_thread_exit(void *arg)
{
    gc_ebr_rec_t *r = arg;

    /* The thread is outside any section (sections do not span its exit).
     * Release: a later owner of the record is ordered after our use. */
    gc_store_64(&r->active, 0);
    gc_store_32(&r->used, 0);
}

static void
gc_ebr_init_once(void)
{
    (void)pthread_key_create(&gc_ebr_key, gc_ebr_thread_exit);
#if !defined(GC_TSAN) && defined(__NR_membarrier)
    /* TSan cannot see the ordering a membarrier gives, so TSan builds keep
     * the symmetric fences (which it does not model either, but its acquire
     * and release edges on `active` are what prove reclamation safe). */
    {
        long cmds = syscall(__NR_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);

        if (cmds > 0 && (cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED) &&
            (cmds & MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) &&
            getenv("GC_EBR_NO_MEMBARRIER") == NULL &&
            syscall(__NR_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0)
            gc_ebr_asym = 1;
    }
#endif
}

void
gc_ebr_init(void)
{
    (void)pthread_once(&gc_ebr_once, gc_ebr_init_once);
}

gc_ebr_rec_t *
gc_ebr_register(void)
{
    gc_ebr_rec_t *r;

    gc_ebr_init();
    /* Reuse a record a finished thread handed back.  The CAS (acq_rel)
     * pairs with the release store of `used` = 0 at that thread's exit. */
    for (r = gc_load_ptr(&gc_ebr_head); r != NULL; r = r->next) {
        uint32_t zero = 0;

        if (gc_load_32(&r->used) == 0 &&
            __atomic_compare_exchange_n(&r->used, &zero, 1, 0, __ATOMIC_ACQ_REL,
                                        __ATOMIC_RELAXED))
            goto mine;
    }
    /* Cache-line aligned: calloc's 16-byte alignment would let two
     * readers' records share a line, and every section stores `active`. */
    r = aligned_alloc(64, sizeof(*r));
    if (r == NULL)
        return NULL;
    memset(r, 0, sizeof(*r));
    r->used = 1;
    /* Push: the release CAS publishes the record's fields to scanners,
     * which load the head with acquire. */
    {
        gc_ebr_rec_t *head = gc_load_ptr(&gc_ebr_head);

        do
            r->next = head;
        while (!__atomic_compare_exchange_n(&gc_ebr_head, &head, r, 0, __ATOMIC_RELEASE,
                                            __ATOMIC_RELAXED));
    }
mine:
    gc_ebr_self = r;
    (void)pthread_setspecific(gc_ebr_key, r);
    return r;
}

uint64_t
gc_ebr_sync(uint64_t *tag)
{
    uint64_t e, min;
    gc_ebr_rec_t *r;

    gc_ebr_init();
    /* Publish the new epoch after every unlink this writer made (acq_rel
     * RMW; several tables' writers may sync at once).  A reader that loads
     * e or later sees those unlinks. */
    e = __atomic_add_fetch(&gc_ebr_global, 1, __ATOMIC_SEQ_CST);
    /* The asymmetric half of gc_ebr_enter's Dekker: after this returns,
     * each reader's store of `active` is visible to the loads below, or
     * its section's loads see our unlinks. */
#ifndef GC_TSAN
    if (gc_ebr_asym)
        (void)syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
    else
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
#endif
    /* (TSan builds: the seq_cst RMW above is the writer's full barrier,
     * and the scan's loads below are seq_cst.) */
    *tag = e;
    min = e;
    /* Acquire on `active` pairs with gc_ebr_exit's release store: a section
     * seen ended (0) is done with every object retired before; a section
     * that began with epoch a acquired a value of the epoch at or after
     * the RMW that produced tag g <= a, so it saw the unlinks tagged g. */
    for (r = gc_load_ptr(&gc_ebr_head); r != NULL; r = r->next) {
#ifdef GC_TSAN
        uint64_t a = __atomic_load_n(&r->active, __ATOMIC_SEQ_CST);
#else
        uint64_t a = gc_load_64(&r->active);
#endif

        if (a != 0 && a < min)
            min = a;
    }
    return min;
}

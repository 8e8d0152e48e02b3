/*
 * Epoch-based reclamation with an asymmetric fence: the read side of the
 * new table (lib/tab.c).  Internal (prefix gc_ebr_).
 *
 * Readers are nearly free.  A reader section stores the global epoch into
 * the thread's record and, at its end, stores 0; between the first store
 * and the section's loads there is only a compiler barrier.  The StoreLoad
 * ordering a reader would otherwise pay for with a full fence (ck_epoch's
 * mfence on every ck_epoch_begin) is paid by the writer instead: before it
 * scans the records it calls membarrier(2) MEMBARRIER_CMD_PRIVATE_EXPEDITED,
 * which runs a full barrier on every CPU currently running a thread of this
 * process (liburcu's "memb" flavour does the same).  Where membarrier is not
 * available (old kernels, seccomp, TSan builds) readers fall back to a full
 * fence and the writer to an ordinary one: same algorithm, dearer reads.
 *
 * Writers never wait.  gc_ebr_sync() advances the epoch with a
 * read-modify-write (so that every later value of the epoch, whoever
 * produced it, heads a release sequence that carries the writer's unlinks),
 * runs the barrier and returns the new epoch E (the tag of everything the
 * writer unlinked before the call) and a threshold T: whatever carries a tag
 * <= T can be freed now; the rest waits for a later sync.  (A tag read from
 * the epoch right after an unlink would not do: another table's writer may
 * advance the epoch without any order with our unlink.)  A reader preempted inside a section holds
 * back reclamation (memory), never the writer (time).  membarrier costs
 * 1.5-21 us on the development VM, so callers sync once per batch of
 * retirements, never once per retirement (tab.c: gc_tab_maintain).
 *
 * Records.  A thread registers on its first section (libc aligned_alloc, like
 * ck_epoch records: records are recycled between threads for the life of
 * the program and must not depend on a replaceable allocator) and hands its
 * record back at exit through a pthread key destructor.  One domain serves
 * every table in the process: a table's writer scans all readers.
 *
 * Sections do not nest.
 */
#ifndef GC_EBR_H
#define GC_EBR_H

#include "atomic.h"

#include <stddef.h>
#include <stdint.h>

/*
 * Reader-path atomics for the table (tab.c, slab.h, this file).  ck_pr's
 * loads and stores are inline assembly with a "memory" clobber: each is a
 * full compiler barrier, which on the get path forced reloads and spills
 * (callgrind: ~180 instructions per get with them).  The C11 builtins give
 * the same x86 code for each access (a plain mov) and the ordering we need
 * (acquire loads, release stores) while leaving the compiler free to keep
 * values in registers.  TSan sees them natively.
 */
#define GC_RD_ACQ(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define GC_RD_RLX(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define GC_WR_REL(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define GC_WR_RLX(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)

typedef struct gc_ebr_rec {
    uint64_t active;            /* 0: outside a section; else the epoch it began in */
    struct gc_ebr_rec *next;    /* registry list, push-only */
    uint32_t used;              /* 1: owned by a live thread */
    char pad[64 - 20];
} __attribute__((aligned(64))) gc_ebr_rec_t;   /* one line per reader */

/* The global epoch (starts at 1) and whether readers may rely on the
 * writer's membarrier (1) or must fence themselves (0).  Set once by
 * gc_ebr_init, before any record exists. */
extern uint64_t gc_ebr_global;
extern int gc_ebr_asym;
/* initial-exec: the library is built -fPIC, and the default model would
 * make every get call __tls_get_addr. */
extern __thread gc_ebr_rec_t *gc_ebr_self __attribute__((tls_model("initial-exec")));

/* Once per process (idempotent, thread-safe): query and register membarrier. */
void gc_ebr_init(void);

/* The calling thread's record, registering it: NULL only when the
 * allocation fails. */
gc_ebr_rec_t *gc_ebr_register(void);

static inline gc_ebr_rec_t *
gc_ebr_reader(void)
{
    gc_ebr_rec_t *r = gc_ebr_self;

    return r != NULL ? r : gc_ebr_register();
}

/*
 * Begin a read section.  The store of the epoch into r->active must be
 * visible to a writer's scan before this thread's later loads of shared
 * pointers can return values the writer has since unlinked (Dekker's
 * StoreLoad).  Asymmetric mode: only a compiler barrier here; the writer's
 * membarrier in gc_ebr_sync forces a full barrier on this CPU, so either
 * the scan sees our store, or our loads come after that barrier and see
 * the writer's unlink (which precedes the membarrier).  Fallback: a full
 * fence here pairs with the writer's full fence before its scan.
 * The epoch load is an acquire (pairs with the fetch-and-add in
 * gc_ebr_sync): a reader that saw epoch E also sees every unlink made
 * before E was published, which is why objects retired with tag < E are
 * safe from this section.
 */
static inline void
gc_ebr_enter(gc_ebr_rec_t *r)
{
#ifdef GC_TSAN
    /* TSan models no fences (and gcc warns about them): a seq_cst exchange
     * is the full barrier here (xchg on x86), paired with the seq_cst RMW
     * and loads in gc_ebr_sync. */
    (void)__atomic_exchange_n(&r->active, __atomic_load_n(&gc_ebr_global, __ATOMIC_ACQUIRE),
                              __ATOMIC_SEQ_CST);
#else
    GC_WR_RLX(&r->active, GC_RD_ACQ(&gc_ebr_global));
    if (__builtin_expect(gc_ebr_asym, 1))
        __atomic_signal_fence(__ATOMIC_SEQ_CST);   /* compiler barrier only */
    else
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
#endif
}

/*
 * End a read section: every load of the section happens before the store
 * of 0 (release; on x86 a compiler barrier), which the writer's scan reads
 * with acquire: after that the writer may free what the section saw.
 */
static inline void
gc_ebr_exit(gc_ebr_rec_t *r)
{
#ifdef GC_TSAN
    __atomic_store_n(&r->active, 0, __ATOMIC_RELEASE);
#else
    GC_WR_REL(&r->active, 0);
#endif
}

/*
 * Writer: advance the epoch, barrier, scan every record.  *tag receives
 * the new epoch E: give it to every object unlinked before this call and
 * not tagged yet.  Returns the threshold T (<= E): an object whose tag is
 * <= T is unreachable by every reader.  Costs one membarrier (or fence)
 * plus one load per registered thread; never waits.
 */
uint64_t gc_ebr_sync(uint64_t *tag);

#endif /* GC_EBR_H */

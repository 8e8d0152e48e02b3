/*
 * The cache front's private view of a cache (lib/cache.c, lib/fetch.c).
 * Not installed, and not included by any backend: backends see a cache only
 * as the opaque gc_host_t of cache_backend.h.
 */
#ifndef GC_CACHE_INT_H
#define GC_CACHE_INT_H

#include <gencache/cache.h>

#include "cache_backend.h"
#include "request.h"
#include "tab.h"

#include <ck_cc.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define GC_CACHE_MAGIC 0x63616368u /* "cach" */
#define GC_STRIPES 16
#define GC_EXPIRE_SLICE 4096
#define GC_RECLAIM_MS 10

/* Message tags of the worker.  Calls: GC_CALL_OP.  Casts: GC_CAST_OP, or a
 * backend's message at GC_MSG_BACKEND + its tag.  Timers: the front's
 * below, or a backend's at GC_TAG_BACKEND + its tag. */
enum {
    GC_CALL_OP = 1,
    GC_CAST_OP = 2,
    GC_TAG_EXPIRE = 3,
    GC_TAG_RECLAIM = 4,
    GC_MSG_BACKEND = 0x10000,
    GC_TAG_BACKEND = 0x20000,
};

/* Per-thread stripes of the read counters, so readers on different cores
 * never write the same cache line. */
typedef struct gc_stripe {
    uint64_t hits, misses;
} CK_CC_CACHELINE gc_stripe_t;

/* Casts of one sending thread that were dropped unapplied (lost) or
 * refused when applied (failed), not yet reported by its cache_sync. */
typedef struct gc_loss {
    uint32_t sender;
    uint32_t pad;
    uint64_t lost, failed;
} gc_loss_t;

/* gc_fetch_t.status when the value was found stored, not computed: every
 * caller then reads it from the cache. */
#define GC_FETCH_STORED 1

typedef struct gc_fetch {
    struct gc_fetch *next;
    unsigned long hash;
    size_t klen;
    unsigned char *key;    /* namespace, NUL, key */
    uint32_t done;         /* futex word: 1 when the result is in */
    uint32_t refs;         /* under flock */
    int status;
    void *value;
    size_t value_len;
} gc_fetch_t;

struct cache {
    uint32_t magic;
    uint32_t refs;
    uint32_t stopped;        /* 1 after cache_stop */
    uint32_t incarnation;    /* futex word, see cache.c's file comment */

    char name[ACTOR_NAME_MAX + 1];
    int has_name;
    char ns[CACHE_NS_MAX + 1];
    gc_req_cfg_t cfg;        /* default namespace, default TTL, TTL limit */
    int async_writes;
    size_t max_entries, max_bytes;
    int keep_data;
    actor_clock_t *clock;
    size_t mailbox_limit;
    cache_event_fn on_event; /* NULL: none (the table then has no hook) */
    void *event_ctx;

    gc_tab_t *tab;           /* the lock-free table (tab.h) */
    uint16_t ns_id;          /* the default namespace's id in it */
    const gc_backend_ops_t *ops;   /* the backend (cache_backend.h) */
    gc_backend_t *be;

    pthread_mutex_t wlock;   /* guards worker changes, supervised, stopped */
    actor_t *worker;         /* current incarnation; read in epoch sections */
    uint32_t supervised;     /* 1 once a supervisor started a worker;
                                gc_store_32 under wlock, gc_load_32 by callers */
    actor_t *sup;            /* the process that last ran cache_child_start
                                (its supervisor; NULL when a plain thread
                                did), with a reference; under wlock (stored
                                with gc_store_ptr: callers only test it for
                                NULL without the lock) */
    int started_once;
    uint64_t restarts;

    /* Worker-thread fields (the one writer). */
    actor_t *self;
    uint64_t timer_ref, timer_deadline;
    int reclaim_armed;
    uint64_t puts, deletes, expirations, evictions; /* gc_store_64 */

    /* Casts lost or failed, per sending thread, until that thread's next
     * cache_sync reports them (see gc_loss_note). */
    pthread_mutex_t llock;   /* guards losses, nlosses, lcap, unattributed */
    gc_loss_t *losses;
    size_t nlosses, lcap;
    uint64_t unattr_lost, unattr_failed;  /* could not be recorded per sender */
    uint32_t loss_pending;   /* 1 while anything above is unreported:
                                gc_store_32 under llock, gc_load_32 by
                                cache_sync to skip the lock */

    pthread_mutex_t flock;   /* guards inflight (fetch.c) */
    gc_fetch_t *inflight;

    gc_stripe_t stripes[GC_STRIPES];
};

struct cache_txn {
    cache_t *c;
    actor_reply_t *reply;    /* NULL for casts */
};

/* cache.c, for fetch.c */
int gc_cache_valid(const cache_t *c);

#endif /* GC_CACHE_INT_H */

/*
 * Internal view of a cache (lib/cache.c), shared with its Redis backend
 * (lib/redis.c).  Not installed.  "(see the file comment)" below means
 * lib/cache.c's.
 */
#ifndef GC_CACHE_INT_H
#define GC_CACHE_INT_H

#include <gencache/cache.h>

#include "mailbox.h"
#include "table.h"

#include <ck_cc.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

typedef struct gc_redis gc_redis_t;

#define GC_CACHE_MAGIC 0x63616368u /* "cach" */
#define GC_STRIPES 16
#define GC_EXPIRE_SLICE 4096
#define GC_RECLAIM_MS 10

enum { GC_TAG_EXPIRE = 1, GC_TAG_RECLAIM = 2, GC_TAG_RECONNECT = 3, GC_TAG_REDIS_FLUSH = 4,
       GC_TAG_REDIS_PING = 5 };

/* Internal request kind for cache_all: it appears only in gc_req_t.kind
 * (gc_req_write's kind argument), never in a public cache_op_t. */
#define GC_OP_ALL 100

/* gc_fetch_t.status when the value was found stored, not computed: every
 * caller then reads it from the cache. */
#define GC_FETCH_STORED 1

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

typedef struct gc_fetch {
    struct gc_fetch *next;
    unsigned long hash;
    size_t klen;
    unsigned char *key;    /* composite key */
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
    uint32_t incarnation;    /* futex word, see the file comment */

    char name[ACTOR_NAME_MAX + 1];
    int has_name;
    char ns[CACHE_NS_MAX + 1];
    size_t ns_len;
    int64_t default_ttl;     /* 0: none */
    int async_writes;
    size_t max_entries, max_bytes;
    int keep_data;
    actor_clock_t *clock;
    size_t mailbox_limit;

    gc_table_t table;
    gc_redis_t *redis;       /* NULL: a local cache; else the Redis backend
                                (config set at creation; connection state
                                owned by the worker thread) */

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
    uint64_t puts, deletes, expirations, evictions; /* ck_pr_store_64 */

    /* Casts lost or failed, per sending thread, until that thread's next
     * cache_sync reports them (see gc_cast_lost). */
    pthread_mutex_t llock;   /* guards losses, nlosses, lcap, unattributed */
    gc_loss_t *losses;
    size_t nlosses, lcap;
    uint64_t unattr_lost, unattr_failed;  /* could not be recorded per sender */
    uint32_t loss_pending;   /* 1 while anything above is unreported:
                                gc_store_32 under llock, gc_load_32 by
                                cache_sync to skip the lock */
    uint32_t cur_sender;     /* worker only: sender of the cast being applied
                                (0 for calls) */

    pthread_mutex_t flock;   /* guards inflight */
    gc_fetch_t *inflight;

    struct cache *reg_next;  /* cache name registry, under gc_reg_lock */

    gc_stripe_t stripes[GC_STRIPES];
};

struct cache_txn {
    cache_t *c;
    actor_reply_t *reply;    /* NULL for casts */
};

/* A request as laid out in a call record or a cast message; the bytes
 * follow it: ns, key, value, arg (batch: sub-requests, each with its own
 * bytes).  All fields are fixed-size, so it is memcpy'd in and out. */
typedef struct gc_req {
    uint32_t kind;
    uint32_t ns_len;
    uint64_t key_len, value_len, arg_len, cap;
    int64_t ttl_ms;          /* resolved: 0 none, > 0 ms; -1 default */
    cache_user_fn fn;
    uint64_t batch_len;
} gc_req_t;

/* A request starts a max_align_t-aligned buffer (a call record's request
 * buffer from malloc, a cast message's data[]); the user operation's arg
 * follows the header at once and so keeps that alignment. */
_Static_assert(sizeof(gc_req_t) % _Alignof(max_align_t) == 0,
               "gc_req_t must keep the arg that follows it aligned");

typedef struct gc_cast_msg {
    gc_msg_t hdr;
    cache_t *c;
    size_t len;
    max_align_t data[];      /* gc_req_t + bytes */
} gc_cast_msg_t;

/* Parsed view of one request and its bytes. */
typedef struct gc_view {
    gc_req_t r;
    const char *ns;
    const unsigned char *key, *value, *arg;
    const unsigned char *next;  /* just past this request's bytes */
} gc_view_t;

/* cache.c helpers used by the backend (worker thread unless noted). */
int gc_stopped(cache_t *c);                       /* any thread */
gc_stripe_t *gc_stripe(cache_t *c);               /* any thread */
int gc_ns(const cache_t *c, const char *ns, const char **out, size_t *len);
int gc_key_ok(const void *key, size_t key_len);
int gc_value_ok(const void *value, size_t value_len);
int gc_ttl(const cache_t *c, int64_t ttl_ms, int64_t *out);
unsigned char *gc_compose(unsigned char *stack, size_t stack_len, const char *ns,
                          size_t ns_len, const void *key, size_t key_len, size_t *len);
int64_t gc_ttl_left(const gc_entry_t *e, uint64_t deadline, uint64_t now);
void gc_stat_inc(uint64_t *p, uint64_t n);
/* Worker: n casts of `sender` were lost (never applied: a dead mailbox, a
 * broken link) or failed (applied with an error), for its next cache_sync
 * to report (-ECONNRESET, -EIO).  sender 0 (a call) is ignored. */
void gc_cast_lost(cache_t *c, uint32_t sender, uint64_t n);
void gc_cast_failed(cache_t *c, uint32_t sender, uint64_t n);
void gc_after_write(cache_t *c);
int gc_apply_put(cache_t *c, gc_entry_t *e);
/* Insert e with its deadline counted from now, evicting as configured;
 * not counted as a put.  e is ours: freed on error (-E2BIG, -ENOMEM). */
int gc_cache_insert(cache_t *c, gc_entry_t *e, uint64_t now);
void gc_parse(const unsigned char *p, gc_view_t *v);
int gc_apply_delete(cache_t *c, const char *ns, size_t ns_len, const void *key,
                    size_t key_len);
gc_entry_t *gc_find(cache_t *c, const char *ns, size_t ns_len, const void *key,
                    size_t key_len);

#endif /* GC_CACHE_INT_H */

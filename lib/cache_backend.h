/*
 * The seam between the cache front (lib/cache.c) and its backends
 * (lib/backends/): where a cache's data lives and how a request is applied
 * to it.  Internal, prefix gc_backend_ / gc_host_.
 *
 * The front does everything that is the same for every backend: handles,
 * names, incarnations of the worker, calls and casts, validation and
 * encoding of requests, the lock-free table that direct reads use, expiry
 * and eviction of that table, counters, lost-cast accounting.  A backend
 * says what a request does: the local backend keeps its data in that table;
 * the Redis backend keeps it in Redis and the table is its near-cache.
 *
 * Two directions, each a narrow interface:
 *   - down: the front calls a backend only through its const ops table
 *     (gc_backend_ops_t), and knows it only as an opaque gc_backend_t;
 *   - up: a backend calls the front only through the gc_host_* functions
 *     below (the table, counters, timers, messages, lost casts), on an
 *     opaque gc_host_t.  No backend includes the front's private header or
 *     reaches into struct cache.
 * Calls go down, and the host functions a backend calls up are leaves
 * (they never call back into the backend), so there is no re-entry: as in
 * nng's transports, an op never finds the front in the middle of itself.
 *
 * Threads.  "worker" below means the cache's current worker thread (the one
 * writer of the table); "any" means any thread.  A backend's state is
 * touched only by the worker, except in the ops marked "any".
 *
 * Adding a backend: write its ops, add one line to gc_backend_select
 * (lib/backends/backends.c).  Nothing in the front changes.
 */
#ifndef GC_CACHE_BACKEND_H
#define GC_CACHE_BACKEND_H

#include <gencache/cache.h>

#include "request.h"

#include <stddef.h>
#include <stdint.h>

typedef struct cache gc_host_t;          /* the front, opaque here */
typedef struct gc_backend gc_backend_t;  /* a backend's state, opaque to the front */

/* gc_backend_ops_t.flags */
#define GC_BE_READ_THROUGH 1u  /* a direct read that misses the table asks the
                                  worker (cache_call GET): the table holds
                                  only part of the data */
#define GC_BE_TTL_REMOTE   2u  /* cache_ttl asks the worker: the table's
                                  deadlines may be shorter than the data's */
#define GC_BE_NO_KEEP_DATA 4u  /* the table never outlives an incarnation */
#define GC_BE_NO_CLOCK     8u  /* refuses a manual clock (time is not ours) */
#define GC_BE_INLINE      16u  /* a synchronous write may be applied by the
                                  calling thread in place of an idle worker
                                  (actor_try_inline): apply must then not
                                  block and must need nothing of the worker
                                  thread itself */
#define GC_BE_SNAPSHOT    64u  /* the table is the whole data: cache_dump and
                                  cache_load work on it */
#define GC_BE_EVENTS      32u  /* the table is the data, so its removals are
                                  the cache's events (cache_opts_t.on_event);
                                  without it cache_new refuses on_event with
                                  -ENOTSUP */

typedef struct gc_backend_ops {
    const char *name;
    unsigned flags;
    int64_t ttl_max;      /* longest TTL it accepts (longer: -EINVAL) */

    /*
     * any (cache_new): validate and copy what the backend needs from opts
     * (the caller's strings may go once cache_new returns), remember host.
     * 0, -EINVAL, -ENOMEM, -ENOTSUP.  *out is the backend's from then on.
     */
    int (*create)(const cache_opts_t *opts, gc_host_t *host, gc_backend_t **out);
    /* any: free it; no incarnation runs (stop ran), none will. */
    void (*destroy)(gc_backend_t *b);

    /*
     * worker: an incarnation starts (its init) / exits (its terminate,
     * for every reason, after its queued requests were answered or
     * dropped).  start returns 0 or a negative errno (the incarnation then
     * fails to start and stop is not called).  Optional (NULL).
     */
    int (*start)(gc_backend_t *b);
    void (*stop)(gc_backend_t *b);

    /*
     * worker: apply one request (v: a parsed view, valid during the call).
     * reply is the caller's reply for a call (GET: [int64 ttl][value]; TTL:
     * [int64 ttl]; ALL: records.h's format, with actor_reply_set/_buf), or
     * NULL for a cast; sender identifies a cast's sending thread (for
     * gc_host_cast_lost/_failed when its result arrives later), 0 for a
     * call.  Returns the request's result (cache.h's errors); for a cast
     * the front reports an error to the sender's next cache_sync.  Never
     * CACHE_OP_USER (the front runs user operations with the txn ops).
     */
    int (*apply)(gc_backend_t *b, const gc_view_t *v, actor_reply_t *reply, uint32_t sender);

    /*
     * worker, inside a user operation: cache_txn_get / _put / _delete with
     * the namespace resolved and inputs validated (ttl: 0 none, > 0 ms).
     * Same results as the public functions.  before_user (optional) runs
     * before the operation: finish what earlier casts left in flight.
     */
    int (*txn_get)(gc_backend_t *b, const char *ns, size_t ns_len, const void *key,
                   size_t key_len, void *buf, size_t cap, size_t *value_len);
    int (*txn_put)(gc_backend_t *b, const char *ns, size_t ns_len, const void *key,
                   size_t key_len, const void *value, size_t value_len, int64_t ttl);
    int (*txn_delete)(gc_backend_t *b, const char *ns, size_t ns_len, const void *key,
                      size_t key_len);
    void (*before_user)(gc_backend_t *b);

    /* worker, optional: the end of a batch of mailbox messages (before
     * timers fire and before the worker parks). */
    void (*idle)(gc_backend_t *b);
    /* worker, optional: a timer set with gc_host_timer fired. */
    void (*timer)(gc_backend_t *b, uint32_t tag);
    /* worker, optional: a message sent with gc_host_msg_send (data valid
     * during the call). */
    void (*message)(gc_backend_t *b, uint32_t tag, const void *data, size_t len);

    /* any, optional: 0 when casts should be refused now (-ENOTCONN); a
     * hint, racy by nature.  NULL: always ready. */
    int (*ready)(const gc_backend_t *b);
    /* any, optional: fill the backend's own fields of st. */
    void (*stats)(const gc_backend_t *b, cache_stats_t *st);
} gc_backend_ops_t;

/* The backend for opts (lib/backends/backends.c): 0 and *ops, or -ENOTSUP
 * (asked for a backend this build does not have). */
int gc_backend_select(const cache_opts_t *opts, const gc_backend_ops_t **ops);

extern const gc_backend_ops_t gc_backend_local;
#ifdef GC_HAVE_REDIS
extern const gc_backend_ops_t gc_backend_redis;
#endif

/* ------------------------------------------------------------------ */
/* The host interface: what a backend may ask of the front              */

/*
 * The table (worker only): the store of the local backend and the
 * near-cache of a remote one.  Direct reads (any thread) see what these do.
 * Keys are (namespace, key) with the namespace resolved.
 *
 * gc_host_put: insert or replace, the deadline ttl_ms (0: none) counted
 *   from base_ms on the cache's clock (0: now), evicting to respect
 *   max_entries / max_bytes, never the entry just put.  Allocates first:
 *   0, -ENOMEM, -E2BIG (larger than max_bytes alone) and nothing changed.
 *   Counts no put (the caller counts what it means).
 * gc_host_drop: remove the entry if there is one: 0 (it was live), -ENOENT
 *   (absent, or expired: removed anyway, *expired = 1 when not NULL).
 * gc_host_find: a live entry's value (valid until the next host call),
 *   its remaining TTL (ms, CACHE_TTL_NONE) and its TTL length (0 none):
 *   0 or -ENOENT.  Any pointer may be NULL.
 * gc_host_set_ttl: restart a live entry's TTL: ttl > 0 a new length, 0
 *   none, -1 the same length.  0, -ENOENT, -ENOMEM (nothing changed).
 * gc_host_batch: a batch of CACHE_OP_PUTs (v's sub-requests), all or
 *   nothing: 0, -ENOMEM, -E2BIG.  Counts the puts.
 * gc_host_all: the cache_all reply for (ns, pattern) from the table.
 * gc_host_clear: remove every entry.
 */
int gc_host_put(gc_host_t *h, const char *ns, size_t ns_len, const void *key, size_t key_len,
                const void *value, size_t value_len, int64_t ttl_ms, uint64_t base_ms);
int gc_host_drop(gc_host_t *h, const char *ns, size_t ns_len, const void *key, size_t key_len,
                 int *expired);
int gc_host_find(gc_host_t *h, const char *ns, size_t ns_len, const void *key, size_t key_len,
                 const void **value, size_t *value_len, int64_t *ttl_left, int64_t *ttl_len);
int gc_host_set_ttl(gc_host_t *h, const char *ns, size_t ns_len, const void *key,
                    size_t key_len, int64_t ttl);
int gc_host_batch(gc_host_t *h, const gc_view_t *v);
int gc_host_all(gc_host_t *h, const gc_view_t *v, actor_reply_t *reply);
void gc_host_clear(gc_host_t *h);
/*
 * gc_host_ns_count: the live entries of namespace (ns, ns_len), walking
 *   it (O(its entries)); ns NULL: of the whole table, exact too (what has
 *   expired is removed first, as the worker's expiry would, then the
 *   table's count is read).
 * gc_host_ns_clear: remove every entry of (ns, ns_len), or of the whole
 *   table with ns NULL, each reported as deleted (or expired) to the
 *   cache's events; *removed (may be NULL) gets how many were live.
 *   0, or -ENOMEM with nothing removed.  Counts nothing.
 */
uint64_t gc_host_ns_count(gc_host_t *h, const char *ns, size_t ns_len);
int gc_host_ns_clear(gc_host_t *h, const char *ns, size_t ns_len, uint64_t *removed);
/* The cache's limit on one record's bytes (key + value; 0: none), and
 * the entries in the table now. */
size_t gc_host_max_bytes(const gc_host_t *h);
uint64_t gc_host_entries(const gc_host_t *h);

/* Counters (worker only; cache_stats reads them from any thread). */
enum gc_host_stat {
    GC_STAT_PUTS, GC_STAT_DELETES, GC_STAT_EXPIRATIONS, GC_STAT_EVICTIONS,
    GC_STAT_HITS, GC_STAT_MISSES,
};
void gc_host_count(gc_host_t *h, enum gc_host_stat which, uint64_t n);

/* Casts (worker only): n casts of `sender` were lost (never applied: a
 * broken link) or failed (applied with an error, or refused), reported by
 * that thread's next cache_sync (-ECONNRESET / -EIO). */
void gc_host_cast_lost(gc_host_t *h, uint32_t sender, uint64_t n);
void gc_host_cast_failed(gc_host_t *h, uint32_t sender, uint64_t n);

/* Time and timers.  gc_host_now: the cache's clock (any thread).
 * gc_host_timer (worker): ops->timer(b, tag) after delay_ms; 0, -ENOMEM. */
uint64_t gc_host_now(const gc_host_t *h);
int gc_host_timer(gc_host_t *h, uint64_t delay_ms, uint32_t tag);

/* The worker (worker only): messages waiting in its mailbox now (to decide
 * whether to keep work in flight), and a crash: the incarnation exits with
 * `reason` (abnormal, a negative errno) after the current message, for its
 * supervisor to restart or give up on. */
size_t gc_host_backlog(const gc_host_t *h);
void gc_host_crash(gc_host_t *h, int reason);

/*
 * Messages to the worker from a thread of the backend's own (a listener):
 * gc_host_msg_buf (any thread) allocates len bytes (NULL: -ENOMEM), which
 * may be kept to be sent later; gc_host_msg_send (any thread, while an
 * incarnation the backend started runs, i.e. between start and stop)
 * queues it for ops->message(b, tag, ...): 0 (it is the worker's now), or
 * -ESRCH / -EAGAIN (still the caller's: free it with gc_host_msg_free).
 */
void *gc_host_msg_buf(size_t len);
int gc_host_msg_send(gc_host_t *h, uint32_t tag, void *buf);
void gc_host_msg_free(void *buf);

#endif /* GC_CACHE_BACKEND_H */

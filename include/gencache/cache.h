/*
 * gencache cache processes (public prefix cache_).
 *
 * A cache is Pow's EtsCache rebuilt in C: a process (a worker thread, see
 * actor.h) that owns an in-memory key/value table with expiry.  Writes reach
 * the worker as messages (cache_call: synchronous; cache_cast: asynchronous);
 * the worker is the table's only writer.  Reads (cache_get) do not wait for
 * the worker: the calling thread looks the key up directly in the table,
 * lock-free, with epoch-based reclamation keeping every entry it may still be
 * reading alive.
 *
 * Keys and values are byte strings, copied in: the caller's buffers are free
 * the moment a put returns (for a cast too).  Values are copied out.  Every
 * key lives in a namespace (a NUL-terminated string, NULL meaning the cache's
 * default namespace, itself "cache" unless configured): the same key in two
 * namespaces is two entries with independent TTLs.
 *
 * Handles.  A cache_t * is reference counted and stable for the life of the
 * cache, across restarts of its worker: cache_start and cache_lookup return a
 * reference that the caller drops with cache_release.  After cache_stop every
 * operation on the handle returns -ESRCH, except cache_stats (the last
 * figures), cache_worker (NULL), cache_retain and cache_release.  A named
 * cache stays registered, and alive, until cache_stop releases its name.
 *
 * Errors are 0 or a negative errno, described by cache_strerror.  An error
 * means nothing changed (the worker allocates before it commits), except
 * -ETIMEDOUT, which means "no answer in time": the request may still be
 * applied.  Common ones: -EINVAL (bad input), -ENOENT (no such key, or it
 * has expired), -ESRCH (never handled: the cache is stopped, or its worker
 * is down and no worker can come back (not supervised, or its supervisor
 * has exited: returned at once), or none came back within the timeout),
 * -ETIMEDOUT, -ENOMEM, -ENOBUFS (a value did not fit the caller's buffer:
 * the required length is reported), -E2BIG (a record, key plus value,
 * larger than the cache's max_bytes on its own: refused, never stored).
 * A Redis cache adds: -ENOTCONN (not connected to Redis: nothing was sent),
 * -ECONNRESET (the connection broke or timed out with the command in
 * flight: it may or may not have been applied), -EIO (Redis answered with
 * an error), -ENOTSUP (gencache was built without hiredis).
 *
 * Threads: every function may be called from any thread, except that
 * functions taking a cache_txn_t are only valid inside the user operation
 * they were given to.
 */
#ifndef GENCACHE_CACHE_H
#define GENCACHE_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "actor.h"
#include "version.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cache cache_t;
typedef struct cache_txn cache_txn_t;

/* Limits: larger inputs get -EINVAL. */
#define CACHE_KEY_MAX   ((size_t)64 << 10)   /* 64 KiB */
#define CACHE_VALUE_MAX ((size_t)64 << 20)   /* 64 MiB */
#define CACHE_NS_MAX    255                  /* namespace bytes */

/* TTL arguments (milliseconds).  Any other value <= 0 is -EINVAL. */
#define CACHE_TTL_DEFAULT INT64_MIN  /* the cache's default TTL */
#define CACHE_TTL_NONE    INT64_MAX  /* never expires */
/* A Redis cache refuses longer TTLs with -EINVAL (Redis cannot set an
 * expiry past INT64_MAX ms from now); about 146 million years. */
#define CACHE_REDIS_TTL_MAX ((int64_t)1 << 62)


/* Timeout used by the convenience wrappers for their calls (ms). */
#define CACHE_DEFAULT_TIMEOUT 5000

/*
 * Redis backend (docs/redis.md).  A cache started with cache_opts_t.redis
 * set keeps the same API, but its data lives in Redis, shared by every
 * instance (every machine) that uses the same server, db and prefix (or
 * the same Sentinel-managed primary, or the same Redis Cluster).  The
 * worker owns two connections per primary (commands, pipelined;
 * invalidations), made for it by a connector thread so that it never waits
 * on a connection or a name lookup, and keeps
 * a near-cache of recent reads in its local table, which cache_get reads
 * without waiting; Redis's server-assisted client-side caching (BCAST
 * tracking of the prefix) tells it which entries another instance changed.
 *
 * Consistency, in short: a write is in Redis when its call returns.  A
 * synchronous read (cache_call with CACHE_OP_GET or CACHE_OP_TTL, cache_all)
 * always asks Redis, so it sees every write that returned before it was
 * sent, from any instance.  A direct read (cache_get) answers from the
 * near-cache when it can: it may return a value another instance has just
 * overwritten or deleted, until the invalidation reaches this worker
 * (normally well under a millisecond on one network) and never for longer
 * than near_ttl_ms, and never a value past its own TTL.  Its own instance's
 * writes are seen at once once they return.
 *
 * Redis keys are prefix, namespace, NUL, key.  Values carry a 12-byte header
 * (the TTL length, for touch).  TTLs are Redis expirations (PX), so expiry
 * is the server's, the same for every instance.
 *
 * Zeroed fields take the default given in brackets.
 */
/* One Redis server or sentinel, by address (cache_redis_opts_t's sentinels
 * and cluster lists).  host: a name (resolved off the worker thread, within
 * connect_timeout_ms) or a numeric address; port 1..65535. */
typedef struct cache_redis_node {
    const char *host;
    int port;
} cache_redis_node_t;

typedef struct cache_redis_opts {
    const char *host;          /* ["127.0.0.1"] host name or address */
    int port;                  /* [6379] */
    const char *username;      /* [none] ACL user (with password) */
    const char *password;      /* [none] sent with AUTH */
    int db;                    /* [0] SELECT'ed database */
    const char *prefix;        /* ["gencache:"] before every key; "" allowed */
    int connect_timeout_ms;    /* [500] per connection step (name lookup,
                                  connect, each set-up command), all on the
                                  cache's connector thread: the worker never
                                  waits for one.  cache_start waits for the
                                  first attempt at most 2x this + 100 ms */
    int io_timeout_ms;         /* [2000] a command without a reply in this
                                  time drops the connection (the worker also
                                  PINGs every min(1 s, near_ttl_ms / 2) to
                                  find a dead link while idle) */
    int no_near_cache;         /* [0] 1: cache_get always asks Redis */
    int64_t near_ttl_ms;       /* [30000] longest life of a near-cache entry */
    int serve_stale;           /* [0] 1: while Redis is unreachable, cache_get
                                  keeps serving near-cache entries (each at
                                  most near_ttl_ms old); 0: they are dropped
                                  when the connection is lost */
    int reconnect_max_ms;      /* [1000] backoff ceiling: reconnection
                                  attempts start 10 ms apart and double */
    int down_limit_ms;         /* [30000] the worker exits (reason
                                  -ENOTCONN, abnormal: its supervisor restarts
                                  it) after this long without Redis; < 0:
                                  never */
    /* Topology (docs/redis.md, "One server, Sentinel, Cluster").  At most
     * one of the two lists may be given; with neither, host:port is the
     * one server.  host and port are then ignored. */
    const cache_redis_node_t *sentinels; /* [none] Sentinel: these
                                  sentinels are asked for the primary of
                                  master_name; the cache follows failovers
                                  (+switch-master) and reconnects */
    size_t n_sentinels;
    const char *master_name;   /* required with sentinels (<= 255 bytes) */
    const char *sentinel_password; /* [none] AUTH sent to the sentinels
                                  (username / password go to the data
                                  servers) */
    const cache_redis_node_t *cluster; /* [none] Redis Cluster: seed nodes;
                                  keys are sharded by slot over the
                                  primaries; db must be 0 */
    size_t n_cluster;
} cache_redis_opts_t;

/*
 * Events: why an entry left a local cache's table (cache_opts_t.on_event).
 *   CACHE_EVENT_EXPIRED  its TTL passed: removed by the worker's expiry, or
 *                        found expired by a delete, take or clear;
 *   CACHE_EVENT_EVICTED  removed to respect max_entries / max_bytes;
 *   CACHE_EVENT_DELETED  removed by cache_delete, cache_take, cache_clear,
 *                        cache_clear_all, cache_txn_delete (or a DELETE /
 *                        TAKE / CLEAR request, call or cast).
 * Not reported: a value replaced by a put (the key stays), and the table
 * emptied when a worker exits or restarts without keep_data, or when the
 * cache stops.
 */
typedef enum cache_event {
    CACHE_EVENT_EXPIRED = 1,
    CACHE_EVENT_EVICTED = 2,
    CACHE_EVENT_DELETED = 3,
} cache_event_t;

/*
 * Event callback.  Runs on the cache's worker thread, after the entry left
 * the table, one event at a time and in the order they happened.  ns
 * (ns_len bytes, not NUL-terminated) and key are valid during the call
 * only.  It must not block for long (the worker serves no request
 * meanwhile) and must not make calls to the same cache (cache_call and the
 * wrappers that call: they would wait for the worker that runs it); direct
 * reads (cache_get) and casts are fine.
 */
typedef void (*cache_event_fn)(void *ctx, cache_event_t why, const char *ns, size_t ns_len,
                               const void *key, size_t key_len);

typedef struct cache_opts {
    const char *name;          /* register for cache_lookup (NULL: none) */
    const char *default_ns;    /* NULL: "cache" */
    int64_t default_ttl_ms;    /* 0 or CACHE_TTL_NONE: entries never expire;
                                  > 0: TTL in ms */
    int async_writes;          /* 0: put/delete wait for the worker (Pow's
                                  default); 1: they are casts */
    size_t max_entries;        /* 0: unlimited; else evict (CLOCK) */
    size_t max_bytes;          /* 0: unlimited; key + value bytes (the
                                  namespace is not counted); a record
                                  larger than this alone is -E2BIG */
    int keep_data;             /* 1: the table survives an abnormal exit of
                                  the worker, for its next incarnation */
    actor_clock_t *clock;      /* TTL clock (NULL: CLOCK_MONOTONIC).
                                  Borrowed: the cache holds it until the
                                  cache's memory is freed (after cache_stop
                                  and the last cache_release), and
                                  actor_clock_free refuses (-EBUSY) before */
    size_t mailbox_limit;      /* 0: unbounded (see actor_opts_t).  Counts
                                  the messages queued and not yet taken by
                                  the worker: the worker takes its whole
                                  mailbox at once, so the message being
                                  handled, and those taken with it, do not
                                  count */
    const cache_redis_opts_t *redis; /* NULL: a local cache.  Else a Redis
                                  cache (copied at start, strings included:
                                  the caller's may go once cache_start or
                                  cache_new returns); clock must then be
                                  NULL, keep_data is ignored, and max_entries
                                  / max_bytes bound the near-cache */
    cache_event_fn on_event;   /* NULL: no events (and no cost).  Else called
                                  on the worker thread for every entry that
                                  leaves the table (see cache_event_t); the
                                  worker then applies every write itself:
                                  a synchronous write is never applied on
                                  the caller's thread in place of an idle
                                  worker, as it is without events.  A Redis
                                  cache refuses it (-ENOTSUP): Redis expires
                                  and evicts its keys itself; use Redis
                                  keyspace notifications there */
    void *event_ctx;           /* on_event's ctx (borrowed) */
} cache_opts_t;
/* Ownership of cache_opts_t: name, default_ns and redis (with its strings)
 * are copied by cache_start / cache_new; clock is borrowed (see above). */

/*
 * What the counters count.  hits / misses: cache_get, cache_fetch's own
 * lookups, and CACHE_OP_GET calls (a key present but past its TTL, not yet
 * removed, is a miss); cache_ttl, cache_all, cache_txn_get and TTL calls
 * count neither.  puts: every put applied (each record of a batch, cache_txn_put,
 * cast or call).  deletes: deletes that removed a live key.  expirations:
 * entries removed because their TTL passed (by the worker's expiry, or by a
 * delete that found the key already expired).  evictions: entries removed
 * to respect max_entries / max_bytes.
 */
typedef struct cache_stats {
    uint64_t hits, misses, puts, deletes, expirations, evictions;
    uint64_t entries;          /* live entries in the table */
    uint64_t bytes;            /* key + value bytes of those entries */
    uint64_t mailbox_depth;    /* messages waiting for the worker */
    uint64_t restarts;         /* worker incarnations started after the first */
    /* Redis backend only (0 for a local cache).  entries and bytes above
     * count the near-cache; hits and misses count every read. */
    uint64_t remote_reads;     /* reads sent to Redis (near-cache misses) */
    uint64_t remote_errors;    /* commands failed: error reply or lost link */
    uint64_t invalidations;    /* near-cache keys dropped for other writers */
    uint64_t reconnects;       /* connections made after the first */
    uint64_t connected;        /* 1 while the worker is connected to Redis
                                  (a cluster: to every primary) */
    uint64_t redirects;        /* cluster: MOVED / ASK redirects followed */
    uint64_t primaries;        /* primaries connected now (1 for one server
                                  or Sentinel; a cluster's count) */
    uint64_t failovers;        /* primary changes followed (Sentinel's
                                  +switch-master, a cluster slot map
                                  refresh that found a new primary) */
} cache_stats_t;

/* One record returned by cache_all. */
typedef struct cache_record {
    const void *key;
    size_t key_len;
    const void *value;
    size_t value_len;
    int64_t ttl_ms;            /* remaining ms, or CACHE_TTL_NONE */
} cache_record_t;

/*
 * A user operation, run on the worker thread with exclusive write access to
 * the table (GenServer's handle_call on the table): use the cache_txn_*
 * functions on txn.  `arg` is a copy of the bytes given with the operation,
 * valid during the call, aligned to alignof(max_align_t) (so it may be cast
 * to a pointer to a struct); NULL when arg_len is 0.  Its return value
 * (0 or any negative errno, -ESRCH included) is cache_call's result, given
 * back exactly once: the operation never runs twice for one call.
 * A user operation may also be cast (cache_cast): it then runs the same
 * way, its reply (cache_txn_reply) is discarded, and a negative result
 * other than -ENOENT is reported to the sender's next cache_sync (-EIO).
 */
typedef int (*cache_user_fn)(cache_txn_t *txn, const void *arg, size_t arg_len);

/*
 * Compute function for cache_fetch, run on the calling thread of one caller.
 * On success return 0 with *value set to a malloc'ed buffer of *value_len
 * bytes: the cache takes it over and frees it.  Otherwise return a negative
 * errno: nothing is stored and every waiting caller receives that error.
 */
typedef int (*cache_compute_fn)(const void *key, size_t key_len, void *arg,
                                void **value, size_t *value_len);

typedef enum cache_op_kind {
    CACHE_OP_PUT = 1,   /* ns, key, value, ttl_ms */
    CACHE_OP_PUT_BATCH, /* batch[0..batch_len): each a CACHE_OP_PUT; all or
                           nothing (no other write in between, an error
                           stores none).  Local cache: a direct reader
                           (cache_get) sees all of it or none of it, and
                           a replaced value until the whole batch is in.
                           Redis cache: one MULTI/EXEC (atomic in Redis);
                           the near-cache is refreshed record by record
                           after EXEC, so a direct read may briefly see
                           part of it */
    CACHE_OP_GET,       /* ns, key -> buf/cap/out_len (+ out_ttl_ms) */
    CACHE_OP_DELETE,    /* ns, key */
    CACHE_OP_EXPIRE,    /* ns, key, ttl_ms: set a new TTL from now */
    CACHE_OP_TOUCH,     /* ns, key: restart its TTL with the same length:
                           the length last set, by a put or by EXPIRE (after
                           EXPIRE(5000), TOUCH restarts 5000 ms) */
    CACHE_OP_PERSIST,   /* ns, key: drop its TTL */
    CACHE_OP_TTL,       /* ns, key -> out_ttl_ms */
    CACHE_OP_USER,      /* fn(txn, arg, arg_len) -> buf/cap/out_len */
    CACHE_OP_SYNC,      /* nothing: returns once earlier casts are applied */
    /* Issue 15 (appended: the values above are stable). */
    CACHE_OP_PUT_NEW,   /* ns, key, value, ttl_ms: stored only when no live
                           entry has the key (-EEXIST, nothing changed) */
    CACHE_OP_TAKE,      /* ns, key -> buf/cap/out_len: get and delete in one
                           step; -ENOBUFS takes nothing */
    CACHE_OP_INCR,      /* ns, key, delta, ttl_ms -> out_int: see cache_incr */
    CACHE_OP_CAS,       /* ns, key, expected/expected_len, value, ttl_ms:
                           see cache_cas */
    CACHE_OP_COUNT,     /* ns -> out_int: live entries of the namespace */
    CACHE_OP_COUNT_ALL, /* -> out_int: live entries of the cache (ns unused) */
    CACHE_OP_CLEAR,     /* ns: remove every entry of the namespace */
    CACHE_OP_CLEAR_ALL, /* remove every entry of the cache (ns unused) */
} cache_op_kind_t;

/*
 * A message for cache_call / cache_cast.  Inputs are copied before the call
 * waits or the cast returns.  Outputs (buf, out_len, out_ttl_ms) are written
 * only by cache_call, only on the calling thread, and only when it returns.
 */
typedef struct cache_op {
    cache_op_kind_t kind;
    const char *ns;            /* NULL: default namespace */
    const void *key;
    size_t key_len;
    const void *value;
    size_t value_len;
    int64_t ttl_ms;            /* PUT/EXPIRE: > 0, CACHE_TTL_DEFAULT or
                                  CACHE_TTL_NONE; 0 is -EINVAL */
    const struct cache_op *batch;
    size_t batch_len;
    cache_user_fn fn;
    const void *arg;
    size_t arg_len;
    void *buf;                 /* GET / USER reply buffer */
    size_t cap;
    size_t *out_len;           /* full reply/value length */
    int64_t *out_ttl_ms;       /* GET / TTL: remaining ms or CACHE_TTL_NONE */
    /* Appended for issue 15's kinds (zero for the others). */
    int64_t delta;             /* INCR: added to the value (may be < 0) */
    const void *expected;      /* CAS: the value expected now */
    size_t expected_len;
    int64_t *out_int;          /* INCR: the new value; COUNT, COUNT_ALL: the
                                  count (may be NULL) */
} cache_op_t;

/*
 * Start a cache: create its table and its worker process.  On success
 * returns 0 and a new reference in *out (drop it with cache_release).
 * Errors (nothing created, *out = NULL): -EINVAL (out NULL, bad name,
 * namespace empty or longer than CACHE_NS_MAX, default_ttl_ms < 0),
 * -EEXIST (a live cache already has the name), -ENOMEM, -EAGAIN.
 * With opts->redis: also -EINVAL (empty host, port outside 1..65535, db < 0,
 * a clock given, prefix over 1024 bytes, negative timeouts or near_ttl_ms;
 * both sentinels and cluster given; a list with a count of 0 or more than
 * 64 nodes, or a node with an empty host or a bad port; sentinels without
 * master_name; cluster with db != 0)
 * and -ENOTSUP (built without hiredis, or on_event set: see cache_event_fn).
 * A Redis cache starts even when
 * Redis is unreachable: its worker keeps reconnecting (see
 * cache_redis_opts_t) and operations get -ENOTCONN until it is connected.
 */
GC_EXPORT int cache_start(const cache_opts_t *opts, cache_t **out);

/*
 * Create a cache without starting its worker, for a supervisor to start it
 * through cache_child_start (see docs/supervisor.md).  Same results as
 * cache_start.  Reads see an empty table; writes get -ESRCH until a worker
 * runs (or wait for it within their timeout).
 */
GC_EXPORT int cache_new(const cache_opts_t *opts, cache_t **out);

/*
 * Child start function for supervisors: start a worker for the cache `arg`
 * (a cache_t *) when it has none running.  On success returns 0 and stores
 * a new reference to the worker process in *out (the supervisor monitors and
 * stops it).  With keep_data the new worker serves the table as it was;
 * without it the table is emptied first.  A stopped cache returns 0 with
 * *out = NULL (OTP's `ignore`, so its supervisor does not restart it).
 * Errors: -EINVAL, -EALREADY (a worker is running or still exiting),
 * -ENOMEM, -EAGAIN.
 */
GC_EXPORT int cache_child_start(void *arg, actor_t **out);

/* Find a cache by name: 0 and a new reference in *out, -ENOENT, -EINVAL. */
GC_EXPORT int cache_lookup(const char *name, cache_t **out);

/* Take / drop a reference.  The table's memory is freed when the last
 * reference goes after cache_stop.  cache_retain(NULL) returns NULL;
 * cache_release(NULL) does nothing. */
GC_EXPORT cache_t *cache_retain(cache_t *c);
GC_EXPORT void cache_release(cache_t *c);

/*
 * Stop the cache for good: stop its worker (waiting up to timeout_ms for it
 * to finish the message it is handling), release the name, and fail every
 * later operation with -ESRCH.  Callers waiting on the worker get -ESRCH.
 * Returns 0, -ESRCH (already stopped), -ETIMEDOUT (the worker did not stop
 * in time; it will still stop at its next message boundary and the cache is
 * stopped regardless), -EINVAL.  Does not drop the caller's reference.
 */
GC_EXPORT int cache_stop(cache_t *c, int timeout_ms);

/* The current worker process (a new reference, or NULL if none is running). */
GC_EXPORT actor_t *cache_worker(cache_t *c);

/*
 * Send op to the worker and wait for its result, up to timeout_ms
 * (ACTOR_INFINITY: no limit).  If the worker is down (restarting), the call
 * waits within its timeout for the next incarnation; a request the dead
 * worker never handled is sent again (known from the call's own state, so
 * nothing is applied twice).  Results: 0 or the operation's result (GET:
 * -ENOENT when missing, -ENOBUFS when the value is longer than cap:
 * *out_len has its length and buf the first cap bytes; DELETE, TOUCH,
 * PERSIST, EXPIRE: -ENOENT when the key is missing; PUT and PUT_BATCH:
 * -E2BIG, -ENOMEM; the kinds of issue 15 as their wrappers, cache_put_new
 * and below: TAKE fills buf/out_len as GET does, but not out_ttl_ms); -EINVAL for bad input (nothing changed), -ESRCH (never
 * handled, see the file comment), -ETIMEDOUT (the operation may still be
 * applied later: a timed-out write is not undone).
 */
GC_EXPORT int cache_call(cache_t *c, const cache_op_t *op, int timeout_ms);

/*
 * Send op to the worker and return at once.  GET, TTL, SYNC, TAKE, CAS,
 * COUNT and COUNT_ALL have no meaning as casts (-EINVAL); a USER operation
 * may be cast (its reply is discarded), and so may PUT_NEW (-EEXIST is
 * not a failure), INCR (-EDOM / -EOVERFLOW are) and CLEAR / CLEAR_ALL.  Returns 0 once the message is queued, or -EINVAL, -ESRCH
 * (stopped, or no worker running: not queued), -EAGAIN (mailbox limit),
 * -ENOMEM; for a Redis cache, -ENOTCONN (not connected: not queued).  A
 * queued cast that is later lost (its worker exits first, or a Redis link
 * breaks with it in flight) or fails when applied (-ENOMEM, -E2BIG, a Redis
 * error reply, a cast USER operation's error) is reported by this thread's
 * next cache_sync.  The caller's later cache_call operations are ordered
 * after it; direct reads (cache_get) are not: use cache_sync first.
 */
GC_EXPORT int cache_cast(cache_t *c, const cache_op_t *op);

/*
 * Convenience wrappers.  cache_put and cache_delete are calls (with
 * CACHE_DEFAULT_TIMEOUT) or casts, by the cache's async_writes option, with
 * the results of cache_call / cache_cast.  ttl_ms: > 0, CACHE_TTL_DEFAULT
 * or CACHE_TTL_NONE.  cache_put: also -E2BIG (record over max_bytes).
 * cache_delete of a missing (or expired) key returns -ENOENT, where Pow's
 * delete answers :ok: a C caller can ignore it, and one that needs to know
 * whether the key was there (a one-time token) learns it without a race.
 */
GC_EXPORT int cache_put(cache_t *c, const char *ns, const void *key, size_t key_len,
                        const void *value, size_t value_len, int64_t ttl_ms);
GC_EXPORT int cache_delete(cache_t *c, const char *ns, const void *key, size_t key_len);

/*
 * Direct, lock-free read from the calling thread (never waits for the
 * worker).  Copies up to cap bytes of the value into buf and stores its
 * length in *value_len (when not NULL).  Returns 0, -ENOENT (missing or
 * expired: an expired value is never returned), -ENOBUFS (longer than cap:
 * buf holds the first cap bytes, *value_len the length), -EINVAL, -ESRCH.
 * Not ordered after the caller's own pending casts (see cache_sync).
 * Redis cache: a near-cache hit is answered at once; a miss (or any read
 * with no_near_cache) is a call to the worker, which asks Redis, waiting up
 * to CACHE_DEFAULT_TIMEOUT, with cache_call's errors (-ENOTCONN...).  With
 * serve_stale, a read while Redis is unreachable answers from the
 * near-cache, and -ENOTCONN when the key is not there.
 */
GC_EXPORT int cache_get(cache_t *c, const char *ns, const void *key, size_t key_len,
                        void *buf, size_t cap, size_t *value_len);

/* Remaining TTL of a key, read directly: 0 and *ttl_ms (ms left, or
 * CACHE_TTL_NONE), -ENOENT, -EINVAL, -ESRCH.  Redis cache: always asks
 * Redis (PTTL), as a call with CACHE_DEFAULT_TIMEOUT. */
GC_EXPORT int cache_ttl(cache_t *c, const char *ns, const void *key, size_t key_len,
                        int64_t *ttl_ms);

/* Synchronous TTL changes (calls): restart the TTL (touch), drop it
 * (persist), or set a new one (expire, ttl_ms > 0 or CACHE_TTL_NONE).
 * Return 0, -ENOENT, -EINVAL, -ESRCH, -ETIMEDOUT. */
GC_EXPORT int cache_touch(cache_t *c, const char *ns, const void *key, size_t key_len);
GC_EXPORT int cache_persist(cache_t *c, const char *ns, const void *key, size_t key_len);
GC_EXPORT int cache_expire(cache_t *c, const char *ns, const void *key, size_t key_len,
                           int64_t ttl_ms);

/*
 * Wait until every cast this thread sent before is applied, and say whether
 * they were.  Returns 0 when every cast this thread sent since its previous
 * cache_sync on this cache was applied; -ECONNRESET when some were lost,
 * never applied (the worker exited with them queued, or a Redis link broke
 * with them in flight); else -EIO when some failed when applied (-ENOMEM,
 * -E2BIG, a Redis error reply, a cast USER operation's error; -ENOENT from a
 * delete or touch of a missing key is not a failure).  Each loss is
 * reported once, to the thread that sent the cast (a loss that could not be
 * recorded for want of memory is reported to the next cache_sync of any
 * thread).  Also cache_call's errors (-ESRCH, -ETIMEDOUT: then nothing is
 * reported yet), and -ENOTCONN for a Redis cache not connected now.
 */
GC_EXPORT int cache_sync(cache_t *c, int timeout_ms);

/*
 * The live records of namespace ns whose key matches the glob pattern
 * (`*` any run, `?` one byte, `[abc]`/`[a-z]`/`[!x]` classes, `\` escapes;
 * NULL or "*" matches all), sorted by key as memcmp sorts, a key that is a
 * prefix of another first (a, a1, a10, a2, ab, b).  A call to the worker,
 * so ordered after this thread's casts.  On success returns 0 and stores in
 * *out an array of *n records that the caller frees with one
 * cache_records_free(*out) (the key and value pointers live in that block).
 * Errors: -EINVAL, -ESRCH, -ETIMEDOUT, -ENOMEM, -EMSGSIZE (the matching
 * records add up to more than ACTOR_MSG_MAX bytes: narrow the pattern).
 * Redis cache: a SCAN of the namespace's keys in Redis, so not a snapshot:
 * a key written during the scan may or may not be listed.
 */
GC_EXPORT int cache_all(cache_t *c, const char *ns, const char *pattern,
                        cache_record_t **out, size_t *n, int timeout_ms);
GC_EXPORT void cache_records_free(cache_record_t *recs);

/*
 * Get-or-compute.  Returns the cached value if present; otherwise exactly
 * one of the concurrent callers for the same (ns, key) runs compute (on its
 * own thread), stores its result with ttl_ms, and every caller receives that
 * result (the value, or compute's error).  buf/cap/value_len as cache_get.
 * Errors: compute's error, -EINVAL, -ESRCH, -ETIMEDOUT (waited longer than
 * timeout_ms for another caller's compute), -ENOMEM, -ENOBUFS.
 */
GC_EXPORT int cache_fetch(cache_t *c, const char *ns, const void *key, size_t key_len,
                          cache_compute_fn compute, void *arg, int64_t ttl_ms,
                          void *buf, size_t cap, size_t *value_len, int timeout_ms);

/*
 * Atomic single-key operations (issue 15).  Each is one request applied by
 * the worker as a whole (Redis: one command or one script, atomic in Redis
 * against every instance), so concurrent callers, from any thread, never
 * interleave inside one.  All are calls with CACHE_DEFAULT_TIMEOUT, even
 * with async_writes (their answer is their point), with cache_call's
 * errors (-EINVAL, -ESRCH, -ETIMEDOUT: may still be applied, -ENOMEM;
 * Redis: -ENOTCONN, -ECONNRESET, -EIO) besides those listed.  An error
 * changes nothing.  Keys, values and buffers are the caller's (copied in /
 * out).  ttl_ms as for cache_put.
 *
 * cache_put_new: store the value only when no live entry has the key (an
 * expired one does not count): 0 stored, -EEXIST (a live entry: nothing
 * changed), -E2BIG.  Of concurrent put_new of one key, exactly one gets 0.
 * Redis: SET NX.
 */
GC_EXPORT int cache_put_new(cache_t *c, const char *ns, const void *key, size_t key_len,
                            const void *value, size_t value_len, int64_t ttl_ms);

/*
 * cache_take: get and delete in one step.  Copies the value into buf as
 * cache_get does and removes the entry: 0, -ENOENT (absent or expired),
 * -ENOBUFS (longer than cap: *value_len has its length, buf the first cap
 * bytes, and nothing is taken: the entry stays).  Of concurrent takers of
 * one key, exactly one gets it, the others -ENOENT.  Counted as a delete.
 * buf may be NULL with cap 0 (a value of any length then is -ENOBUFS, an
 * empty one is taken).
 */
GC_EXPORT int cache_take(cache_t *c, const char *ns, const void *key, size_t key_len,
                         void *buf, size_t cap, size_t *value_len);

/*
 * cache_incr: add delta to the value read as a decimal signed 64-bit
 * integer, as Redis's INCRBY reads and writes it ("0", or an optional '-'
 * then digits without a leading zero, nothing else, within INT64_MIN ..
 * INT64_MAX), and store the sum the same way.  An absent (or expired) key
 * is created as delta, with ttl_ms; an existing key keeps its TTL (ttl_ms
 * is used only at creation).  On 0, *result (may be NULL) gets the new
 * value.  Errors: -EDOM (the value is not such an integer), -EOVERFLOW (the
 * sum leaves the int64 range): nothing changed.  Counted as a put.
 * Redis: a Lua script (exact 64-bit arithmetic); a value another client
 * wrote without gencache's header (say with INCRBY) is read the same way
 * and stays without it, so that client keeps reading a plain integer.
 */
GC_EXPORT int cache_incr(cache_t *c, const char *ns, const void *key, size_t key_len,
                         int64_t delta, int64_t ttl_ms, int64_t *result);

/*
 * cache_cas: compare-and-set.  Replace the value with (value, value_len),
 * with ttl_ms as a put would, only if the current value equals (expected,
 * expected_len) byte for byte: 0 swapped, -ECANCELED (it differs: nothing
 * changed), -ENOENT (absent or expired), -E2BIG.  A read-modify-write loop
 * (read, compute, cas, again on -ECANCELED) from any number of threads or
 * instances loses no update.  Redis: a Lua script comparing the value
 * without gencache's header.
 */
GC_EXPORT int cache_cas(cache_t *c, const char *ns, const void *key, size_t key_len,
                        const void *expected, size_t expected_len, const void *value,
                        size_t value_len, int64_t ttl_ms);

/*
 * Count the live entries of namespace ns (NULL: the default namespace), or
 * of the whole cache, into *n: a call to the worker (ordered after this
 * thread's casts), timeout_ms as cache_call.  0, -EINVAL, -ESRCH,
 * -ETIMEDOUT, -ENOMEM.  Local: exact at the moment the worker counts
 * (cache_count walks the namespace, O(its entries); cache_count_all first
 * removes what has expired, then reads the table's count).  Redis: a SCAN
 * of the namespace's keys (of the prefix's, for count_all), so not a
 * snapshot: a key written or deleted by another instance during the scan
 * may or may not be counted; keys under the prefix that are not
 * gencache's (no namespace) are not counted.
 */
GC_EXPORT int cache_count(cache_t *c, const char *ns, uint64_t *n, int timeout_ms);
GC_EXPORT int cache_count_all(cache_t *c, uint64_t *n, int timeout_ms);

/*
 * Remove every entry of namespace ns (NULL: the default namespace), or of
 * the whole cache.  A call (timeout_ms as cache_call): 0, -EINVAL, -ESRCH,
 * -ETIMEDOUT, -ENOMEM (local: nothing removed).  Each live entry removed
 * counts as a delete (and is reported CACHE_EVENT_DELETED with on_event).
 * Redis: SCAN of the namespace (of the prefix, for clear_all) and DEL in
 * batches, so not atomic: a key another instance writes during the clear
 * may survive it; on an error part may be removed.  Also as a cast
 * (cache_cast with CACHE_OP_CLEAR / CACHE_OP_CLEAR_ALL).
 */
GC_EXPORT int cache_clear(cache_t *c, const char *ns, int timeout_ms);
GC_EXPORT int cache_clear_all(cache_t *c, int timeout_ms);

/* Statistics (approximate while writes are in flight).  0, -EINVAL. */
GC_EXPORT int cache_stats(cache_t *c, cache_stats_t *st);

/*
 * Inside a CACHE_OP_USER function only (worker thread): read, write and
 * delete in the table, with the same meaning and errors as cache_get,
 * cache_put and cache_delete, applied at once and in order.  cache_txn_reply
 * sets the bytes returned to the caller's buf (copied; last call wins).
 * Redis cache: each cache_txn_get/put/delete is one Redis command, applied
 * in order; another instance's writes may come in between (a user
 * operation is atomic only against this instance's operations).  A batch
 * (CACHE_OP_PUT_BATCH) is one MULTI/EXEC: atomic in Redis too.
 */
GC_EXPORT int cache_txn_get(cache_txn_t *txn, const char *ns, const void *key,
                            size_t key_len, void *buf, size_t cap, size_t *value_len);
GC_EXPORT int cache_txn_put(cache_txn_t *txn, const char *ns, const void *key,
                            size_t key_len, const void *value, size_t value_len,
                            int64_t ttl_ms);
GC_EXPORT int cache_txn_delete(cache_txn_t *txn, const char *ns, const void *key,
                               size_t key_len);
GC_EXPORT int cache_txn_reply(cache_txn_t *txn, const void *data, size_t len);

/*
 * Snapshots of a local cache, to keep its data across a restart of the
 * whole service (Cachex save/restore; a worker crash needs none: see
 * keep_data).
 *
 * cache_dump writes every live record (namespace, key, value, and its TTL
 * as a wall-clock deadline) to path: a point-in-time copy of the table as
 * the worker saw it when it collected the records (writes after that are
 * not in it).  The worker is busy only for that collection (one pass over
 * the table, pointers only); the calling thread writes the file while the
 * worker keeps serving.  Crash-safe: the file is written under a temporary
 * name in the same directory, fsync'ed, renamed over path and the
 * directory fsync'ed, so a crash leaves the previous file intact.  Returns
 * 0, -EINVAL (bad c or path), -ESRCH (stopped, or no worker running),
 * -ETIMEDOUT (the collection did not answer in time; no file was written),
 * -ENOMEM, -ENOTSUP (a Redis cache: Redis persists itself), or a negative
 * errno from the file system (-ENOENT, -EACCES, -ENOSPC, -EIO...: the
 * previous file is intact).  Any thread; the file format is described in
 * lib/snapshot.c (versioned, CRC-32C checksummed).
 *
 * cache_load puts the records of a file written by cache_dump into c, as
 * puts with the TTL each had left (an entry whose deadline passed while
 * the service was down is skipped; its TTL length, for touch, becomes the
 * time it had left).  Keys not in the file are kept.  The whole file is
 * validated before anything is put, so a bad file loads nothing: -ENOENT
 * (no file), -EPROTO (not a gencache snapshot), -EPROTONOSUPPORT (written
 * by a newer gencache), -EBADMSG (truncated or corrupt), -E2BIG (a record
 * larger than this cache's max_bytes), -ENOTSUP (a Redis cache).  Once
 * validated, records are put in batches of 1024 (each all or nothing):
 * cache_call's errors (-ESRCH, -ETIMEDOUT, -ENOMEM) may then leave the
 * batches before the failing one loaded.  Any thread.
 */
GC_EXPORT int cache_dump(cache_t *c, const char *path, int timeout_ms);
GC_EXPORT int cache_load(cache_t *c, const char *path, int timeout_ms);

/* Text for an error code; never NULL. */
GC_EXPORT const char *cache_strerror(int err);

#ifdef __cplusplus
}
#endif

#endif /* GENCACHE_CACHE_H */

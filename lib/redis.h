/*
 * The Redis backend of a cache (lib/redis.c; lib/redis_none.c when gencache
 * is built without hiredis).  Internal, prefix gc_redis_.
 *
 * cache.c calls these at fixed points of a Redis cache's life: creation
 * (gc_redis_new, any thread), worker start and exit, every request the
 * worker applies, the end of each mailbox batch, and its reconnect timer.
 * Everything but gc_redis_new, gc_redis_free and gc_redis_stats runs on
 * the worker thread, which alone owns the connections.
 */
#ifndef GC_REDIS_H
#define GC_REDIS_H

#include "cache_int.h"

/* Validate and copy the options: 0, -EINVAL, -ENOMEM, -ENOTSUP. */
int gc_redis_new(const cache_redis_opts_t *o, gc_redis_t **out);
/* Free the config; the worker must have exited (gc_redis_exit ran). */
void gc_redis_free(gc_redis_t *r);

/* Worker init: connect, or arm the reconnect timer.  0 or -ENOMEM. */
int gc_redis_init(cache_t *c);
/* Worker exit: finish the pipeline, stop the listener, close. */
void gc_redis_exit(cache_t *c);

/* Apply one request (reply NULL for casts): the cache_op result. */
int gc_redis_apply(cache_t *c, const gc_view_t *v, actor_reply_t *reply);
/* A cast put that travelled as the entry itself (e is ours). */
void gc_redis_put_entry(cache_t *c, gc_entry_t *e);
/* End of a mailbox batch: send the pipeline and read its replies. */
void gc_redis_idle(cache_t *c);
/* The GC_TAG_RECONNECT timer fired. */
void gc_redis_timer(cache_t *c);
/* The GC_TAG_REDIS_FLUSH timer fired: read back what the pipeline owes. */
void gc_redis_flush_timer(cache_t *c);
/* The GC_TAG_REDIS_PING timer fired: check that `cmd` is alive. */
void gc_redis_ping_timer(cache_t *c);
/* Before a user operation: read back what the pipeline owes. */
void gc_redis_quiesce(cache_t *c);

/* cache_txn_* on a Redis cache (worker thread). */
int gc_redis_txn_get(cache_t *c, const char *ns, size_t ns_len, const void *key,
                     size_t key_len, void *buf, size_t cap, size_t *value_len);
int gc_redis_txn_put(cache_t *c, const char *ns, size_t ns_len, const void *key,
                     size_t key_len, const void *value, size_t value_len, int64_t ttl);
int gc_redis_txn_delete(cache_t *c, const char *ns, size_t ns_len, const void *key,
                        size_t key_len);

/* 1 while the worker is connected (any thread; a hint, racy). */
int gc_redis_connected(const cache_t *c);
/* Fill the backend's fields of st (any thread). */
void gc_redis_stats(const cache_t *c, cache_stats_t *st);

#endif /* GC_REDIS_H */

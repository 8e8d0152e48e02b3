/*
 * The Redis backend when gencache is built without hiredis
 * (-DGC_WITH_REDIS=OFF): a cache asked for Redis is refused with -ENOTSUP
 * at creation, so none of the worker-side functions below can be reached
 * with a backend; they exist to satisfy lib/cache.c.
 */
#include "redis.h"

#include <errno.h>

int
gc_redis_new(const cache_redis_opts_t *o, gc_redis_t **out)
{
    (void)o;
    *out = NULL;
    return -ENOTSUP;
}

void
gc_redis_free(gc_redis_t *r)
{
    (void)r;
}

int
gc_redis_init(cache_t *c)
{
    (void)c;
    return -ENOTSUP;
}

void
gc_redis_exit(cache_t *c)
{
    (void)c;
}

int
gc_redis_apply(cache_t *c, const gc_view_t *v, actor_reply_t *reply)
{
    (void)c;
    (void)v;
    (void)reply;
    return -ENOTSUP;
}

void
gc_redis_put_entry(cache_t *c, gc_entry_t *e)
{
    (void)c;
    gc_entry_free(e);
}

void
gc_redis_idle(cache_t *c)
{
    (void)c;
}

void
gc_redis_timer(cache_t *c)
{
    (void)c;
}

void
gc_redis_flush_timer(cache_t *c)
{
    (void)c;
}

void
gc_redis_ping_timer(cache_t *c)
{
    (void)c;
}

void
gc_redis_quiesce(cache_t *c)
{
    (void)c;
}

int
gc_redis_txn_get(cache_t *c, const char *ns, size_t ns_len, const void *key,
                 size_t key_len, void *buf, size_t cap, size_t *value_len)
{
    (void)c, (void)ns, (void)ns_len, (void)key, (void)key_len;
    (void)buf, (void)cap, (void)value_len;
    return -ENOTSUP;
}

int
gc_redis_txn_put(cache_t *c, const char *ns, size_t ns_len, const void *key,
                 size_t key_len, const void *value, size_t value_len, int64_t ttl)
{
    (void)c, (void)ns, (void)ns_len, (void)key, (void)key_len;
    (void)value, (void)value_len, (void)ttl;
    return -ENOTSUP;
}

int
gc_redis_txn_delete(cache_t *c, const char *ns, size_t ns_len, const void *key,
                    size_t key_len)
{
    (void)c, (void)ns, (void)ns_len, (void)key, (void)key_len;
    return -ENOTSUP;
}

int
gc_redis_connected(const cache_t *c)
{
    (void)c;
    return 0;
}

void
gc_redis_stats(const cache_t *c, cache_stats_t *st)
{
    (void)c;
    (void)st;
}

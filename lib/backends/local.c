/*
 * The local backend: a cache's data is its table (the host's), so every
 * request is a table operation through the host interface
 * (cache_backend.h).  It has no state, no thread, no timer of its own.
 */
#include "cache_backend.h"
#include "alloc.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

struct gc_backend {
    gc_host_t *h;
};

static int
lb_create(const cache_opts_t *opts, gc_host_t *host, gc_backend_t **out)
{
    gc_backend_t *b;

    (void)opts;
    b = gc_calloc(1, sizeof(*b));
    if (b == NULL)
        return -ENOMEM;
    b->h = host;
    *out = b;
    return 0;
}

static void
lb_destroy(gc_backend_t *b)
{
    gc_free(b);
}

/* GET / TTL reply: [int64 ttl][value]. */
static int
lb_reply_get(gc_backend_t *b, const gc_view_t *v, actor_reply_t *reply)
{
    const void *val;
    size_t vlen;
    int64_t ttl;

    if (gc_host_find(b->h, v->ns, v->r.ns_len, v->key, v->r.key_len, &val, &vlen, &ttl,
                     NULL) != 0) {
        gc_host_count(b->h, GC_STAT_MISSES, 1);
        return -ENOENT;
    }
    gc_host_count(b->h, GC_STAT_HITS, 1);
    if (v->r.kind == CACHE_OP_TTL)
        return actor_reply_set(reply, &ttl, sizeof(ttl));
    return gc_reply_value(reply, ttl, val, vlen);
}

static int
lb_put(gc_backend_t *b, const char *ns, size_t ns_len, const void *key, size_t key_len,
       const void *value, size_t value_len, int64_t ttl)
{
    int rc = gc_host_put(b->h, ns, ns_len, key, key_len, value, value_len, ttl, 0);

    if (rc == 0)
        gc_host_count(b->h, GC_STAT_PUTS, 1);
    return rc;
}

/* Delete: an entry past its deadline is absent (-ENOENT) as for a get,
 * but it is removed all the same and counted as an expiration. */
static int
lb_delete(gc_backend_t *b, const char *ns, size_t ns_len, const void *key, size_t key_len)
{
    int expired = 0;
    int rc = gc_host_drop(b->h, ns, ns_len, key, key_len, &expired);

    if (rc == 0)
        gc_host_count(b->h, GC_STAT_DELETES, 1);
    else if (expired)
        gc_host_count(b->h, GC_STAT_EXPIRATIONS, 1);
    return rc;
}

/* Put if absent: a live entry wins (an expired one is replaced). */
static int
lb_put_new(gc_backend_t *b, const gc_view_t *v)
{
    if (gc_host_find(b->h, v->ns, v->r.ns_len, v->key, v->r.key_len, NULL, NULL, NULL,
                     NULL) == 0)
        return -EEXIST;
    return lb_put(b, v->ns, v->r.ns_len, v->key, v->r.key_len, v->value, v->r.value_len,
                  v->r.ttl_ms);
}

/* Take: the reply is GET's ([int64 ttl][value]), then the delete.  A value
 * longer than the caller's cap is replied and not taken (-ENOBUFS), so
 * that a short buffer never loses it. */
static int
lb_take(gc_backend_t *b, const gc_view_t *v, actor_reply_t *reply)
{
    const void *val;
    size_t vlen;
    int64_t ttl;

    if (gc_host_find(b->h, v->ns, v->r.ns_len, v->key, v->r.key_len, &val, &vlen, &ttl,
                     NULL) != 0)
        return lb_delete(b, v->ns, v->r.ns_len, v->key, v->r.key_len);  /* expired: removed */
    if (reply != NULL) {
        if (gc_reply_value(reply, ttl, val, vlen) != 0)
            return -ENOMEM;
        if (vlen > v->r.cap)
            return -ENOBUFS;
    }
    return lb_delete(b, v->ns, v->r.ns_len, v->key, v->r.key_len);
}

/*
 * Parse a decimal int64 exactly as Redis's string2ll does (what INCRBY
 * accepts): "0", or an optional '-' then a digit 1-9 then digits, within
 * the int64 range; nothing else (no '+', no space, no leading zero, no
 * "-0").  0 and *out, or -EDOM.
 */
static int
lb_parse_i64(const unsigned char *p, size_t len, int64_t *out)
{
    uint64_t v = 0, lim;
    size_t i = 0;
    int neg = 0;

    if (len == 1 && p[0] == '0') {
        *out = 0;
        return 0;
    }
    if (len > 0 && p[0] == '-') {
        neg = 1;
        i = 1;
    }
    if (i >= len || p[i] < '1' || p[i] > '9')
        return -EDOM;
    lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; i < len; i++) {
        if (p[i] < '0' || p[i] > '9' || v > (lim - (uint64_t)(p[i] - '0')) / 10)
            return -EDOM;
        v = v * 10 + (uint64_t)(p[i] - '0');
    }
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}

/* Increment: absent -> delta with the request's TTL; present -> the sum,
 * with the same deadline (put again with the time it has left, which
 * becomes the length a later touch restarts). */
static int
lb_incr(gc_backend_t *b, const gc_view_t *v, actor_reply_t *reply)
{
    const void *val;
    size_t vlen;
    int64_t cur, sum, left, ttl;
    char num[24];
    int n, rc;

    if (gc_host_find(b->h, v->ns, v->r.ns_len, v->key, v->r.key_len, &val, &vlen, &left,
                     NULL) != 0) {
        sum = v->r.delta;
        ttl = v->r.ttl_ms;
    } else {
        if (lb_parse_i64(val, vlen, &cur) != 0)
            return -EDOM;
        if (__builtin_add_overflow(cur, v->r.delta, &sum))
            return -EOVERFLOW;
        ttl = left == CACHE_TTL_NONE ? 0 : left;
        if (ttl == 0 && left != CACHE_TTL_NONE)
            ttl = 1;   /* in its last millisecond: keep it mortal */
    }
    n = snprintf(num, sizeof(num), "%lld", (long long)sum);
    rc = lb_put(b, v->ns, v->r.ns_len, v->key, v->r.key_len, num, (size_t)n, ttl);
    if (rc != 0)
        return rc;
    return reply != NULL ? actor_reply_set(reply, &sum, sizeof(sum)) : 0;
}

/* Compare-and-set: the whole value, byte for byte. */
static int
lb_cas(gc_backend_t *b, const gc_view_t *v)
{
    const void *val;
    size_t vlen;

    if (gc_host_find(b->h, v->ns, v->r.ns_len, v->key, v->r.key_len, &val, &vlen, NULL,
                     NULL) != 0)
        return -ENOENT;
    if (vlen != v->r.arg_len || (vlen > 0 && memcmp(val, v->arg, vlen) != 0))
        return -ECANCELED;
    return lb_put(b, v->ns, v->r.ns_len, v->key, v->r.key_len, v->value, v->r.value_len,
                  v->r.ttl_ms);
}

static int
lb_count(gc_backend_t *b, const gc_view_t *v, actor_reply_t *reply)
{
    int64_t n = (int64_t)gc_host_ns_count(b->h, v->r.kind == CACHE_OP_COUNT ? v->ns : NULL,
                                          v->r.ns_len);

    return reply != NULL ? actor_reply_set(reply, &n, sizeof(n)) : -EINVAL;
}

static int
lb_clear(gc_backend_t *b, const gc_view_t *v)
{
    uint64_t n = 0;
    int rc = gc_host_ns_clear(b->h, v->r.kind == CACHE_OP_CLEAR ? v->ns : NULL, v->r.ns_len, &n);

    if (rc == 0)
        gc_host_count(b->h, GC_STAT_DELETES, n);
    return rc;
}

static int
lb_apply(gc_backend_t *b, const gc_view_t *v, actor_reply_t *reply, uint32_t sender)
{
    (void)sender;
    switch (v->r.kind) {
    case CACHE_OP_PUT_NEW:
        return lb_put_new(b, v);
    case CACHE_OP_TAKE:
        return lb_take(b, v, reply);
    case CACHE_OP_INCR:
        return lb_incr(b, v, reply);
    case CACHE_OP_CAS:
        return lb_cas(b, v);
    case CACHE_OP_COUNT:
    case CACHE_OP_COUNT_ALL:
        return lb_count(b, v, reply);
    case CACHE_OP_CLEAR:
    case CACHE_OP_CLEAR_ALL:
        return lb_clear(b, v);
    case CACHE_OP_PUT:
        return lb_put(b, v->ns, v->r.ns_len, v->key, v->r.key_len, v->value, v->r.value_len,
                      v->r.ttl_ms);
    case CACHE_OP_PUT_BATCH:
        return gc_host_batch(b->h, v);
    case CACHE_OP_DELETE:
        return lb_delete(b, v->ns, v->r.ns_len, v->key, v->r.key_len);
    case CACHE_OP_EXPIRE:
        return gc_host_set_ttl(b->h, v->ns, v->r.ns_len, v->key, v->r.key_len, v->r.ttl_ms);
    case CACHE_OP_PERSIST:
        return gc_host_set_ttl(b->h, v->ns, v->r.ns_len, v->key, v->r.key_len, 0);
    case CACHE_OP_TOUCH:
        return gc_host_set_ttl(b->h, v->ns, v->r.ns_len, v->key, v->r.key_len, -1);
    case CACHE_OP_GET:
    case CACHE_OP_TTL:
        return reply != NULL ? lb_reply_get(b, v, reply) : -EINVAL;
    case GC_OP_ALL:
        return reply != NULL ? gc_host_all(b->h, v, reply) : -EINVAL;
    case CACHE_OP_SYNC:
        return 0;   /* FIFO per sender: every earlier cast is applied */
    default:
        return -EINVAL;
    }
}

static int
lb_txn_get(gc_backend_t *b, const char *ns, size_t ns_len, const void *key, size_t key_len,
           void *buf, size_t cap, size_t *value_len)
{
    const void *val;
    size_t vlen;

    if (gc_host_find(b->h, ns, ns_len, key, key_len, &val, &vlen, NULL, NULL) != 0)
        return -ENOENT;
    if (value_len != NULL)
        *value_len = vlen;
    if (cap > 0 && vlen > 0)
        memcpy(buf, val, vlen < cap ? vlen : cap);
    return vlen > cap ? -ENOBUFS : 0;
}

static int
lb_txn_put(gc_backend_t *b, const char *ns, size_t ns_len, const void *key, size_t key_len,
           const void *value, size_t value_len, int64_t ttl)
{
    return lb_put(b, ns, ns_len, key, key_len, value, value_len, ttl);
}

static int
lb_txn_delete(gc_backend_t *b, const char *ns, size_t ns_len, const void *key, size_t key_len)
{
    return lb_delete(b, ns, ns_len, key, key_len);
}

const gc_backend_ops_t gc_backend_local = {
    .name = "local",
    .flags = GC_BE_INLINE | GC_BE_EVENTS | GC_BE_SNAPSHOT,
    .ttl_max = INT64_MAX - 1,   /* CACHE_TTL_NONE itself means "none" */
    .create = lb_create,
    .destroy = lb_destroy,
    .apply = lb_apply,
    .txn_get = lb_txn_get,
    .txn_put = lb_txn_put,
    .txn_delete = lb_txn_delete,
};

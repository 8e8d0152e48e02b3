/*
 * Cache requests: validation, encoding and parsing (request.h).
 */
#include "request.h"

#include <errno.h>
#include <string.h>

int
gc_req_ns(const gc_req_cfg_t *cfg, const char *ns, const char **out, size_t *len)
{
    size_t n;

    if (ns == NULL) {
        *out = cfg->ns;
        *len = cfg->ns_len;
        return 0;
    }
    n = strnlen(ns, CACHE_NS_MAX + 1);
    if (n == 0 || n > CACHE_NS_MAX)
        return -EINVAL;
    *out = ns;
    *len = n;
    return 0;
}

int
gc_req_key_ok(const void *key, size_t key_len)
{
    return key != NULL && key_len > 0 && key_len <= CACHE_KEY_MAX;
}

int
gc_req_value_ok(const void *value, size_t value_len)
{
    return (value != NULL || value_len == 0) && value_len <= CACHE_VALUE_MAX;
}

int
gc_req_ttl(const gc_req_cfg_t *cfg, int64_t ttl_ms, int64_t *out)
{
    if (ttl_ms == CACHE_TTL_DEFAULT)
        *out = cfg->default_ttl;
    else if (ttl_ms == CACHE_TTL_NONE)
        *out = 0;
    else if (ttl_ms > 0 && ttl_ms <= cfg->ttl_max)
        *out = ttl_ms;
    else
        return -EINVAL;
    return 0;
}

/* Which byte fields a request kind carries (mirrors gc_req_write). */
static int
gc_req_has_key(uint32_t kind)
{
    return kind != CACHE_OP_SYNC && kind != CACHE_OP_USER && kind != CACHE_OP_PUT_BATCH &&
        kind != GC_OP_ALL && kind != CACHE_OP_COUNT && kind != CACHE_OP_COUNT_ALL &&
        kind != CACHE_OP_CLEAR && kind != CACHE_OP_CLEAR_ALL;
}

static int
gc_req_has_value(uint32_t kind)
{
    return kind == CACHE_OP_PUT || kind == CACHE_OP_PUT_NEW || kind == CACHE_OP_CAS;
}

/* The bytes in the arg slot: a user operation's arg, cache_all's pattern,
 * CAS's expected value. */
static size_t
gc_req_arg_len(const cache_op_t *op)
{
    return op->kind == CACHE_OP_USER ? op->arg_len
        : op->kind == CACHE_OP_CAS ? op->expected_len : 0;
}

static size_t
gc_req_size(const cache_op_t *op, size_t ns_len)
{
    uint32_t k = (uint32_t)op->kind;

    return sizeof(gc_req_t) + ns_len + (gc_req_has_key(k) ? op->key_len : 0) +
        (gc_req_has_value(k) ? op->value_len : 0) + gc_req_arg_len(op);
}

/* Validate op (one level) and resolve its namespace and TTL. */
static int
gc_req_check(const gc_req_cfg_t *cfg, const cache_op_t *op, const char **ns, size_t *ns_len,
             int64_t *ttl, int nested)
{
    *ttl = 0;
    if (gc_req_ns(cfg, op->ns, ns, ns_len) != 0)
        return -EINVAL;
    switch (op->kind) {
    case CACHE_OP_PUT:
    case CACHE_OP_PUT_NEW:
        if (!gc_req_key_ok(op->key, op->key_len) || !gc_req_value_ok(op->value, op->value_len))
            return -EINVAL;
        return gc_req_ttl(cfg, op->ttl_ms, ttl);
    case CACHE_OP_CAS:
        if (!gc_req_key_ok(op->key, op->key_len) || !gc_req_value_ok(op->value, op->value_len) ||
            !gc_req_value_ok(op->expected, op->expected_len))
            return -EINVAL;
        return gc_req_ttl(cfg, op->ttl_ms, ttl);
    case CACHE_OP_INCR:
        if (!gc_req_key_ok(op->key, op->key_len))
            return -EINVAL;
        return gc_req_ttl(cfg, op->ttl_ms, ttl);
    case CACHE_OP_TAKE:
        return gc_req_key_ok(op->key, op->key_len) ? 0 : -EINVAL;
    case CACHE_OP_COUNT:
    case CACHE_OP_COUNT_ALL:
    case CACHE_OP_CLEAR:
    case CACHE_OP_CLEAR_ALL:
        return 0;
    case CACHE_OP_EXPIRE:
        if (!gc_req_key_ok(op->key, op->key_len) || op->ttl_ms == CACHE_TTL_DEFAULT)
            return -EINVAL;
        return gc_req_ttl(cfg, op->ttl_ms, ttl);
    case CACHE_OP_GET:
    case CACHE_OP_DELETE:
    case CACHE_OP_TOUCH:
    case CACHE_OP_PERSIST:
    case CACHE_OP_TTL:
        return gc_req_key_ok(op->key, op->key_len) ? 0 : -EINVAL;
    case CACHE_OP_PUT_BATCH:
        return !nested && (op->batch != NULL || op->batch_len == 0) &&
            op->batch_len <= (ACTOR_MSG_MAX / sizeof(gc_req_t)) ? 0 : -EINVAL;
    case CACHE_OP_USER:
        return op->fn != NULL && (op->arg != NULL || op->arg_len == 0) &&
            op->arg_len <= ACTOR_MSG_MAX ? 0 : -EINVAL;
    case CACHE_OP_SYNC:
        return 0;
    default:
        return -EINVAL;
    }
}

/* Encode one request of kind `kind`; returns the next byte. */
static unsigned char *
gc_req_write(unsigned char *p, uint32_t kind, const char *ns, size_t ns_len,
             const void *key, size_t key_len, const void *value, size_t value_len,
             const void *arg, size_t arg_len, int64_t ttl, cache_user_fn fn, size_t cap,
             size_t batch_len, int64_t delta)
{
    gc_req_t r;

    memset(&r, 0, sizeof(r));
    r.kind = kind;
    r.ns_len = (uint32_t)ns_len;
    r.ttl_ms = ttl;
    r.fn = fn;
    r.cap = cap;
    r.key_len = gc_req_has_key(kind) ? key_len : 0;
    r.value_len = gc_req_has_value(kind) ? value_len : 0;
    r.arg_len = kind == CACHE_OP_USER || kind == GC_OP_ALL || kind == CACHE_OP_CAS ? arg_len : 0;
    r.batch_len = kind == CACHE_OP_PUT_BATCH ? batch_len : 0;
    r.delta = kind == CACHE_OP_INCR ? delta : 0;
    memcpy(p, &r, sizeof(r));
    p += sizeof(r);
    if (r.arg_len)
        memcpy(p, arg, r.arg_len);   /* aligned: see the file comment */
    p += r.arg_len;
    memcpy(p, ns, ns_len);
    p += ns_len;
    if (r.key_len)
        memcpy(p, key, r.key_len);
    p += r.key_len;
    if (r.value_len)
        memcpy(p, value, r.value_len);
    return p + r.value_len;
}

int64_t
gc_req_measure(const gc_req_cfg_t *cfg, const cache_op_t *op)
{
    const char *ns;
    size_t ns_len, i;
    int64_t ttl;
    uint64_t size;

    if (gc_req_check(cfg, op, &ns, &ns_len, &ttl, 0) != 0)
        return -EINVAL;
    size = gc_req_size(op, ns_len);
    for (i = 0; op->kind == CACHE_OP_PUT_BATCH && i < op->batch_len; i++) {
        const cache_op_t *s = &op->batch[i];

        if (s->kind != CACHE_OP_PUT || gc_req_check(cfg, s, &ns, &ns_len, &ttl, 1) != 0)
            return -EINVAL;
        size += gc_req_size(s, ns_len);
        if (size > ACTOR_MSG_MAX)
            return -EINVAL;
    }
    if (size > ACTOR_MSG_MAX)
        return -EINVAL;
    return (int64_t)size;
}

void
gc_req_encode(const gc_req_cfg_t *cfg, const cache_op_t *op, unsigned char *p)
{
    const char *ns;
    size_t ns_len, i;
    int64_t ttl;

    (void)gc_req_check(cfg, op, &ns, &ns_len, &ttl, 0);
    p = gc_req_write(p, (uint32_t)op->kind, ns, ns_len, op->key, op->key_len, op->value,
                     op->value_len, op->kind == CACHE_OP_CAS ? op->expected : op->arg,
                     gc_req_arg_len(op), ttl, op->fn, op->cap, op->batch_len, op->delta);
    for (i = 0; op->kind == CACHE_OP_PUT_BATCH && i < op->batch_len; i++) {
        const cache_op_t *s = &op->batch[i];

        (void)gc_req_check(cfg, s, &ns, &ns_len, &ttl, 1);
        p = gc_req_write(p, (uint32_t)s->kind, ns, ns_len, s->key, s->key_len, s->value,
                         s->value_len, NULL, 0, ttl, NULL, 0, 0, 0);
    }
}

size_t
gc_req_all_size(size_t ns_len, size_t pat_len)
{
    return sizeof(gc_req_t) + pat_len + ns_len;
}

void
gc_req_encode_all(unsigned char *p, const char *ns, size_t ns_len, const char *pat,
                  size_t pat_len)
{
    (void)gc_req_write(p, GC_OP_ALL, ns, ns_len, NULL, 0, NULL, 0, pat, pat_len, 0, NULL, 0, 0,
                       0);
}

void
gc_view_parse(const unsigned char *p, gc_view_t *v)
{
    memcpy(&v->r, p, sizeof(v->r));
    p += sizeof(v->r);
    v->arg = p;
    p += v->r.arg_len;
    v->ns = (const char *)p;
    p += v->r.ns_len;
    v->key = p;
    p += v->r.key_len;
    v->value = p;
    p += v->r.value_len;
    v->next = p;
}

int
gc_reply_value(actor_reply_t *reply, int64_t ttl, const void *value, size_t value_len)
{
    unsigned char *out = actor_reply_buf(reply, sizeof(ttl) + value_len);

    if (out == NULL)
        return -ENOMEM;
    memcpy(out, &ttl, sizeof(ttl));
    if (value_len > 0)
        memcpy(out + sizeof(ttl), value, value_len);
    return 0;
}

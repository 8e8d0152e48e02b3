/*
 * Cache requests: how a cache_op_t travels from a caller to the worker
 * (internal, prefix gc_req_ / gc_view_).  Shared by the cache front, which
 * validates and encodes, and the backends, which receive parsed views.
 *
 * Layout.  A request is a fixed-size header (gc_req_t) followed by its
 * bytes: the user operation's arg first (so it keeps the max_align_t
 * alignment of the buffer: cache.h promises it), then the namespace, the
 * key and the value (CAS carries its expected value in the arg's place:
 * the view's arg, r.arg_len); a batch's sub-requests follow, each with its own
 * header and bytes.  The header holds only fixed-size fields, so it is
 * memcpy'd in and out and the buffer needs no alignment beyond the arg's.
 */
#ifndef GC_REQUEST_H
#define GC_REQUEST_H

#include <gencache/cache.h>

#include <stddef.h>
#include <stdint.h>

/* Internal request kind for cache_all: it appears only in gc_req_t.kind,
 * never in a public cache_op_t. */
#define GC_OP_ALL 100
/* Internal request kind for cache_dump: collect the live records. */
#define GC_OP_DUMP 101
/* Internal request kind for cache_load: make room for batch_len more
 * entries at once (a hint; see snapshot.c). */
#define GC_OP_RESERVE 102

typedef struct gc_req {
    uint32_t kind;           /* cache_op_kind_t, or GC_OP_ALL */
    uint32_t ns_len;
    uint64_t key_len, value_len, arg_len, cap;
    int64_t ttl_ms;          /* resolved: 0 none, > 0 ms (EXPIRE too) */
    cache_user_fn fn;
    uint64_t batch_len;
    int64_t delta;           /* INCR */
    uint64_t pad;            /* keeps the size a multiple of max_align_t */
} gc_req_t;

/* A request starts a max_align_t-aligned buffer (a call record's request
 * buffer from malloc, a cast message's payload); the user operation's arg
 * follows the header at once and so keeps that alignment. */
_Static_assert(sizeof(gc_req_t) % _Alignof(max_align_t) == 0,
               "gc_req_t must keep the arg that follows it aligned");

/* Parsed view of one request and its bytes (pointers into the buffer). */
typedef struct gc_view {
    gc_req_t r;
    const char *ns;
    const unsigned char *key, *value, *arg;
    const unsigned char *next;  /* just past this request's bytes */
} gc_view_t;

/* What validation needs to know of the cache. */
typedef struct gc_req_cfg {
    const char *ns;          /* the default namespace */
    size_t ns_len;
    int64_t default_ttl;     /* 0: none */
    int64_t ttl_max;         /* longest TTL the backend accepts */
} gc_req_cfg_t;

/* Validation of single arguments (cache.h's limits). */
int gc_req_ns(const gc_req_cfg_t *cfg, const char *ns, const char **out, size_t *len);
int gc_req_key_ok(const void *key, size_t key_len);
int gc_req_value_ok(const void *value, size_t value_len);
/* Resolve a TTL argument: 0 none, > 0 ms; -EINVAL. */
int gc_req_ttl(const gc_req_cfg_t *cfg, int64_t ttl_ms, int64_t *out);

/* Validate op (and its batch) and return its encoded size, or -EINVAL. */
int64_t gc_req_measure(const gc_req_cfg_t *cfg, const cache_op_t *op);
/* Encode an op that gc_req_measure accepted into p (room for its size). */
void gc_req_encode(const gc_req_cfg_t *cfg, const cache_op_t *op, unsigned char *p);
/* Encode a cache_all request (namespace resolved, pattern with its NUL). */
size_t gc_req_all_size(size_t ns_len, size_t pat_len);
void gc_req_encode_all(unsigned char *p, const char *ns, size_t ns_len, const char *pat,
                       size_t pat_len);

/* The reply of a GET or TAKE call: [int64 ttl][value] (cache.c decodes
 * it).  0 or -ENOMEM (actor_reply_buf). */
int gc_reply_value(actor_reply_t *reply, int64_t ttl, const void *value, size_t value_len);

/* Parse the request at p. */
void gc_view_parse(const unsigned char *p, gc_view_t *v);

#endif /* GC_REQUEST_H */

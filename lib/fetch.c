/*
 * cache_fetch: get-or-compute with one computation per key at a time.
 *
 * The first caller that misses registers an in-flight record (under the
 * cache's flock) and runs the compute function on its own thread; later
 * callers for the same (namespace, key) find the record and sleep on its
 * `done` futex word until the result is in.  The value is stored with a
 * synchronous put, so a get after the fetch sees it.  Part of the front
 * (it uses only the public calls and the in-flight list of struct cache).
 */
#define _GNU_SOURCE
#include <gencache/cache.h>

#include "alloc.h"
#include "atomic.h"
#include "cache_int.h"
#include "park.h"
#include "tab.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

static void
gc_fetch_unref(cache_t *c, gc_fetch_t *f)
{
    int last;

    pthread_mutex_lock(&c->flock);
    last = --f->refs == 0;
    pthread_mutex_unlock(&c->flock);
    if (last) {
        gc_free(f->key);
        free(f->value);   /* from the compute function: C library */
        gc_free(f);
    }
}

static int
gc_fetch_result(cache_t *c, const char *ns, const void *key, size_t key_len,
                const gc_fetch_t *f, void *buf, size_t cap, size_t *value_len)
{
    if (f->status == GC_FETCH_STORED)
        return cache_get(c, ns, key, key_len, buf, cap, value_len);
    if (f->status != 0)
        return f->status;
    if (value_len != NULL)
        *value_len = f->value_len;
    if (cap > 0)
        memcpy(buf, f->value, f->value_len < cap ? f->value_len : cap);
    return f->value_len > cap ? -ENOBUFS : 0;
}

int
cache_fetch(cache_t *c, const char *ns, const void *key, size_t key_len,
            cache_compute_fn compute, void *arg, int64_t ttl_ms, void *buf,
            size_t cap, size_t *value_len, int timeout_ms)
{
    const char *nsp;
    size_t ns_len, klen;
    unsigned long hash;
    unsigned char *kb;
    gc_fetch_t *f;
    int64_t ttl;
    int rc;

    if (value_len != NULL)
        *value_len = 0;
    if (!gc_cache_valid(c) || compute == NULL || gc_req_ns(&c->cfg, ns, &nsp, &ns_len) != 0 ||
        !gc_req_key_ok(key, key_len) || (buf == NULL && cap > 0) || gc_req_ttl(&c->cfg, ttl_ms, &ttl) != 0)
        return -EINVAL;
    rc = cache_get(c, ns, key, key_len, buf, cap, value_len);
    if (rc != -ENOENT)
        return rc;

    klen = ns_len + 1 + key_len;
    kb = gc_malloc(klen);
    if (kb == NULL)
        return -ENOMEM;
    memcpy(kb, nsp, ns_len);
    kb[ns_len] = '\0';
    memcpy(kb + ns_len + 1, key, key_len);
    hash = (unsigned long)gc_tab_hash(0, kb, klen);
    pthread_mutex_lock(&c->flock);
    for (f = c->inflight; f != NULL; f = f->next)
        if (f->hash == hash && f->klen == klen && memcmp(f->key, kb, klen) == 0)
            break;
    if (f != NULL) {
        /* Someone computes it: wait for their result. */
        int64_t deadline = timeout_ms < 0 ? -1 : gc_mono_ns() + (int64_t)timeout_ms * 1000000;

        f->refs++;
        pthread_mutex_unlock(&c->flock);
        gc_free(kb);
        /* Pairs with the store of done = 1 by the computing caller. */
        while (gc_load_32(&f->done) == 0) {
            int64_t left = deadline < 0 ? -1 : deadline - gc_mono_ns();

            if (deadline >= 0 && left <= 0) {
                gc_fetch_unref(c, f);
                return -ETIMEDOUT;
            }
            gc_futex_wait(&f->done, 0, left);
        }
        ck_pr_fence_load();
        rc = gc_fetch_result(c, ns, key, key_len, f, buf, cap, value_len);
        gc_fetch_unref(c, f);
        return rc;
    }
    f = gc_calloc(1, sizeof(*f));
    if (f == NULL) {
        pthread_mutex_unlock(&c->flock);
        gc_free(kb);
        return -ENOMEM;
    }
    f->key = kb;
    f->klen = klen;
    f->hash = hash;
    f->refs = 1;
    f->next = c->inflight;
    c->inflight = f;
    pthread_mutex_unlock(&c->flock);

    /* A fetch that finished between our miss and our registration has
     * stored the value: use it rather than compute again. */
    rc = cache_get(c, ns, key, key_len, buf, cap, value_len);
    if (rc == 0 || rc == -ENOBUFS) {
        f->status = GC_FETCH_STORED;
    } else {
        void *v = NULL;
        size_t vl = 0;

        f->status = compute(key, key_len, arg, &v, &vl);
        if (f->status == 0 && (v == NULL && vl > 0))
            f->status = -EINVAL;
        if (f->status == 0) {
            cache_op_t op = { .kind = CACHE_OP_PUT, .ns = ns, .key = key,
                              .key_len = key_len, .value = v, .value_len = vl,
                              .ttl_ms = ttl_ms };

            f->value = v;
            f->value_len = vl;
            /* Stored synchronously so a get after the fetch sees it; a
             * failed store still hands the computed value to every caller. */
            (void)cache_call(c, &op, timeout_ms);
        } else {
            free(v);          /* from the compute function: C library */
        }
        rc = gc_fetch_result(c, ns, key, key_len, f, buf, cap, value_len);
    }
    pthread_mutex_lock(&c->flock);
    {
        gc_fetch_t **pp;

        for (pp = &c->inflight; *pp != NULL; pp = &(*pp)->next)
            if (*pp == f) {
                *pp = f->next;
                break;
            }
    }
    pthread_mutex_unlock(&c->flock);
    /* The result before done = 1; pairs with the waiters' fence_load. */
    ck_pr_fence_store();
    gc_store_32(&f->done, 1);
    gc_futex_wake(&f->done, INT_MAX);
    gc_fetch_unref(c, f);
    return rc;
}


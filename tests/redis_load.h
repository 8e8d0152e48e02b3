/*
 * A recorded write load for the failover tests of tests/test_sentinel.c and
 * tests/test_cluster.c; header-only, every function static.
 *
 * wl_start runs a thread that puts unique keys (tag + number, value
 * "v<number>.<tag>") through a cache, one synchronous call at a time
 * (cache_call CACHE_OP_PUT with the given timeout), and records every call:
 * when it was sent, when it returned, and its result.  The main thread
 * reads the records while the thread runs (each is published with a
 * release store of the count, read with an acquire load) and after
 * wl_stop.  The thread never asserts (Check's assertions belong to the
 * test's main thread); wl_check turns the records into a verdict:
 *
 *   - every put that returned 0 is read back with a synchronous GET
 *     (cache_call, which always asks Redis) and must have its value,
 *     unless it falls in the failover window: returned after safe_before
 *     (the moment from which the replica was not known to have every
 *     acknowledged write) and sent before safe_after (the moment from which
 *     the old primary could no longer acknowledge anything), and its key
 *     may be lost at all (maylose; NULL: every key).  Redis's replication
 *     is asynchronous: a write the old primary acknowledged in that window
 *     may be lost by Redis itself; those are counted and reported, never
 *     failed;
 *   - a put that did not return 0 must have failed as a lost link does:
 *     -ENOTCONN (refused, at once) or -ECONNRESET (in flight when the link
 *     broke); anything else (-ETIMEDOUT: a worker that blocked; -EIO: an
 *     error reply such as READONLY passed through) is counted as "other";
 *   - the refusal gap: from the return of the first failed put (of a key
 *     maylose accepts) to the return of the first later successful one.
 */
#ifndef GC_REDIS_LOAD_H
#define GC_REDIS_LOAD_H

#include <gencache/gencache.h>

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redis_harness.h"

#define WL_FN static __attribute__((unused))

typedef struct wl_rec {
    int64_t t0, t1;            /* sent, returned (rh_now_ms) */
    uint32_t n;                /* the key's number */
    int rc;
} wl_rec_t;

typedef struct wl {
    cache_t *c;
    char tag[16];
    int timeout_ms;
    int pause_ms;              /* between puts */
    wl_rec_t *recs;
    size_t cap;
    atomic_size_t n;           /* records published: release by the thread,
                                  acquire by the readers, so recs[0..n) are
                                  complete when read */
    atomic_int stop;
    pthread_t th;
    int running;
} wl_t;

typedef int (*wl_filter_fn)(void *ctx, const char *key, size_t key_len);

typedef struct wl_result {
    size_t puts, acked;
    size_t checked;            /* acked writes that had to be kept */
    size_t window, window_lost; /* acked in the failover window; of those lost */
    size_t notconn, reset, other;
    int other_rc;              /* the first "other" result */
    int64_t max_notconn_ms;    /* the slowest -ENOTCONN */
    int64_t gap_ms;            /* refusal gap; -1: no refusal */
    int gap_closed;            /* a success followed the first refusal */
    size_t lost;               /* writes that had to be kept and were not */
    char first_lost[256];
} wl_result_t;

WL_FN int
wl_key(const wl_t *w, uint32_t n, char *buf, size_t cap)
{
    return snprintf(buf, cap, "%s%u", w->tag, n);
}

WL_FN int
wl_value(const wl_t *w, uint32_t n, char *buf, size_t cap)
{
    return snprintf(buf, cap, "v%u.%s", n, w->tag);
}

static void *
wl_main(void *p)
{
    wl_t *w = p;
    size_t i;

    for (i = 0; i < w->cap && !atomic_load_explicit(&w->stop, memory_order_relaxed); i++) {
        char key[48], val[48];
        cache_op_t op = { .kind = CACHE_OP_PUT, .ttl_ms = CACHE_TTL_NONE };
        wl_rec_t *r = &w->recs[i];

        op.key = key;
        op.key_len = (size_t)wl_key(w, (uint32_t)i, key, sizeof(key));
        op.value = val;
        op.value_len = (size_t)wl_value(w, (uint32_t)i, val, sizeof(val));
        r->n = (uint32_t)i;
        r->t0 = rh_now_ms();
        r->rc = cache_call(w->c, &op, w->timeout_ms);
        r->t1 = rh_now_ms();
        /* Pairs with the acquire loads of wl_count / wl_check: the record
         * is complete before it is counted. */
        atomic_store_explicit(&w->n, i + 1, memory_order_release);
        if (w->pause_ms > 0)
            rh_sleep_ms(w->pause_ms);
    }
    return NULL;
}

/* Start the load on c: keys tag0, tag1... (tag: a few bytes), each put a
 * call with timeout_ms, pause_ms apart, at most cap puts. */
WL_FN void
wl_start(wl_t *w, cache_t *c, const char *tag, int timeout_ms, int pause_ms, size_t cap)
{
    memset(w, 0, sizeof(*w));
    w->c = c;
    snprintf(w->tag, sizeof(w->tag), "%s", tag);
    w->timeout_ms = timeout_ms;
    w->pause_ms = pause_ms;
    w->cap = cap;
    w->recs = calloc(cap, sizeof(*w->recs));
    ck_assert_ptr_nonnull(w->recs);
    atomic_init(&w->n, 0);
    atomic_init(&w->stop, 0);
    ck_assert_int_eq(pthread_create(&w->th, NULL, wl_main, w), 0);
    w->running = 1;
}

WL_FN void
wl_stop(wl_t *w)
{
    if (!w->running)
        return;
    atomic_store_explicit(&w->stop, 1, memory_order_relaxed);
    pthread_join(w->th, NULL);
    w->running = 0;
}

WL_FN void
wl_free(wl_t *w)
{
    wl_stop(w);
    free(w->recs);
    w->recs = NULL;
}

/* The records published so far. */
WL_FN size_t
wl_published(wl_t *w)
{
    return atomic_load_explicit(&w->n, memory_order_acquire);
}

/* Puts that returned rc so far. */
WL_FN size_t
wl_count(wl_t *w, int rc)
{
    size_t n = wl_published(w), i, k = 0;

    for (i = 0; i < n; i++)
        k += w->recs[i].rc == rc;
    return k;
}

/* Wait (bounded) until `want` puts have returned 0.  0 or -1. */
WL_FN int
wl_wait_acked(wl_t *w, size_t want, int ms)
{
    int64_t deadline = rh_now_ms() + ms;

    while (rh_now_ms() < deadline) {
        if (wl_count(w, 0) >= want)
            return 0;
        rh_sleep_ms(5);
    }
    return -1;
}

/* Wait (bounded) until a put sent at or after t of a key that f accepts
 * (f NULL: any) has returned 0.  Its return time, or -1. */
WL_FN int64_t
wl_wait_ok_after(wl_t *w, int64_t t, wl_filter_fn f, void *ctx, int ms)
{
    int64_t deadline = rh_now_ms() + ms;
    size_t from = 0;

    while (rh_now_ms() < deadline) {
        size_t n = wl_published(w), i;

        for (i = from; i < n; i++) {
            char key[48];
            int kl = wl_key(w, w->recs[i].n, key, sizeof(key));

            if (w->recs[i].rc == 0 && w->recs[i].t0 >= t &&
                (f == NULL || f(ctx, key, (size_t)kl)))
                return w->recs[i].t1;
        }
        from = n;
        rh_sleep_ms(5);
    }
    return -1;
}

/* Describe into buf the results of the puts sent at or after t of keys f
 * accepts (f NULL: any): for a failure message. */
WL_FN const char *
wl_describe_after(wl_t *w, int64_t t, wl_filter_fn f, void *ctx, char *buf, size_t cap)
{
    size_t n = wl_published(w), i, total = 0, ok = 0, notconn = 0, reset = 0, other = 0;
    int other_rc = 0;

    for (i = 0; i < n; i++) {
        char key[48];
        int kl = wl_key(w, w->recs[i].n, key, sizeof(key));

        if (w->recs[i].t0 < t || (f != NULL && !f(ctx, key, (size_t)kl)))
            continue;
        total++;
        switch (w->recs[i].rc) {
        case 0: ok++; break;
        case -ENOTCONN: notconn++; break;
        case -ECONNRESET: reset++; break;
        default:
            if (other++ == 0)
                other_rc = w->recs[i].rc;
        }
    }
    snprintf(buf, cap, "%zu puts since: %zu ok, %zu -ENOTCONN, %zu -ECONNRESET, %zu other "
             "(first %d: %s)", total, ok, notconn, reset, other, other_rc,
             cache_strerror(other_rc));
    return buf;
}

/*
 * The verdict on the load (stopped first), read back through reader with
 * synchronous GETs of call_ms each.  safe_before / safe_after as in the
 * file comment (INT64_MAX / INT64_MIN: no window, every acknowledged write
 * must be kept); maylose (NULL: every key) says which keys the failover
 * could affect at all, and which count for the refusal gap.
 */
WL_FN void
wl_check(wl_t *w, cache_t *reader, int64_t safe_before, int64_t safe_after,
         wl_filter_fn maylose, void *ctx, int call_ms, wl_result_t *res)
{
    size_t n, i;
    int64_t first_refusal = -1;

    wl_stop(w);
    n = wl_published(w);
    memset(res, 0, sizeof(*res));
    res->gap_ms = -1;
    for (i = 0; i < n; i++) {
        const wl_rec_t *r = &w->recs[i];
        char key[48], want[48], buf[64];
        int kl = wl_key(w, r->n, key, sizeof(key));
        int affected = maylose == NULL || maylose(ctx, key, (size_t)kl);

        wl_value(w, r->n, want, sizeof(want));
        res->puts++;
        if (r->rc != 0) {
            if (r->rc == -ENOTCONN) {
                res->notconn++;
                if (r->t1 - r->t0 > res->max_notconn_ms)
                    res->max_notconn_ms = r->t1 - r->t0;
            } else if (r->rc == -ECONNRESET) {
                res->reset++;
            } else if (res->other++ == 0) {
                res->other_rc = r->rc;
            }
            if (affected && first_refusal < 0)
                first_refusal = r->t1;
            continue;
        }
        res->acked++;
        if (affected && first_refusal >= 0 && !res->gap_closed) {
            res->gap_ms = r->t1 - first_refusal;
            res->gap_closed = 1;
        }
        {
            size_t len = 0;
            cache_op_t op = { .kind = CACHE_OP_GET, .key = key, .key_len = (size_t)kl,
                              .buf = buf, .cap = sizeof(buf) - 1, .out_len = &len };
            int rc = cache_call(reader, &op, call_ms);
            int kept = rc == 0 && len == strlen(want) && memcmp(buf, want, len) == 0;
            int window = affected && r->t1 > safe_before && r->t0 < safe_after;

            buf[rc == 0 && len < sizeof(buf) ? len : 0] = '\0';
            if (window) {
                res->window++;
                res->window_lost += !kept;
                continue;
            }
            res->checked++;
            if (!kept && res->lost++ == 0)
                snprintf(res->first_lost, sizeof(res->first_lost),
                         "key %s (put sent at %+lld ms, returned at %+lld ms from the "
                         "window's start): GET %d (%s) \"%s\", want \"%s\"",
                         key, (long long)(r->t0 - safe_before),
                         (long long)(r->t1 - safe_before), rc, cache_strerror(rc), buf, want);
        }
    }
    if (first_refusal >= 0 && !res->gap_closed)
        res->gap_ms = rh_now_ms() - first_refusal;
}

#endif /* GC_REDIS_LOAD_H */

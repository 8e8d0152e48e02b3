/*
 * The table (lib/tab.c): every function and error path, with gc_tab_check
 * after each step of the single-threaded cases; batches invisible until
 * commit; readers racing puts, replaces, deletes, growth, expiry and
 * eviction never see a torn, freed or never-written value (values carry a
 * checksum); S3-FIFO keeps a hot set through a scan; allocation failure
 * leaves everything unchanged.
 */
#define _GNU_SOURCE
#include "check_util.h"
#include "tab.h"

#include <gencache/actor.h>
#include <gencache/version.h>

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TC_TIMEOUT 120

/* ------------------------------------------------------------------ */
/* Helpers                                                              */

typedef struct tkey {
    char buf[32];
    gc_tab_key_t k;
} tkey_t;

static gc_tab_key_t *
mk(tkey_t *t, uint16_t ns, uint64_t i)
{
    int n = snprintf(t->buf, sizeof(t->buf), "key%013llu", (unsigned long long)i);

    t->k = (gc_tab_key_t){ ns, t->buf, (uint32_t)n, gc_tab_hash(ns, t->buf, (size_t)n) };
    return &t->k;
}

static gc_tab_key_t *
mks(tkey_t *t, uint16_t ns, const char *s)
{
    size_t n = strlen(s);

    memcpy(t->buf, s, n);
    t->k = (gc_tab_key_t){ ns, t->buf, (uint32_t)n, gc_tab_hash(ns, t->buf, n) };
    return &t->k;
}

/* A 64-byte value for (key i, round r) with a checksum in its last 8. */
static uint64_t
vsum(const uint64_t *w)
{
    uint64_t h = 0x9e3779b97f4a7c15ull;
    int j;

    for (j = 0; j < 7; j++)
        h = (h ^ w[j]) * 0xff51afd7ed558ccdull;
    return h;
}

static void
mkval(uint64_t *w, uint64_t i, uint64_t r)
{
    int j;

    w[0] = i;
    w[1] = r;
    for (j = 2; j < 7; j++)
        w[j] = i * 31 + r * 7 + (uint64_t)j;
    w[7] = vsum(w);
}

static int
valok(const uint64_t *w, uint64_t i)
{
    return w[0] == i && w[7] == vsum(w);
}

static void
chk(gc_tab_t *t)
{
    ck_assert_int_eq(gc_tab_check(t), 0);
}

/* ------------------------------------------------------------------ */
/* Basics                                                               */

START_TEST(test_basic)
{
    gc_tab_t *t;
    tkey_t a, b;
    char buf[16];
    size_t vlen;
    int64_t left, len;
    const void *v;
    int wexp;

    ck_assert_int_eq(gc_tab_new(NULL, &t), 0);
    chk(t);
    ck_assert_int_eq(gc_tab_get(t, mks(&a, 0, "a"), buf, sizeof(buf), &vlen, NULL), -ENOENT);
    ck_assert_int_eq(gc_tab_put(t, mks(&a, 0, "a"), "one", 3, 0, NULL), 0);
    chk(t);
    ck_assert_int_eq(gc_tab_count(t), 1);
    ck_assert_int_eq(gc_tab_bytes(t), 4);
    ck_assert_int_eq(gc_tab_get(t, &a.k, buf, sizeof(buf), &vlen, &left), 0);
    ck_assert_int_eq(vlen, 3);
    ck_assert_int_eq(memcmp(buf, "one", 3), 0);
    ck_assert(left == INT64_MAX);
    /* -ENOBUFS copies the first cap bytes; NULL buf with cap 0. */
    memset(buf, 0, sizeof(buf));
    ck_assert_int_eq(gc_tab_get(t, &a.k, buf, 2, &vlen, NULL), -ENOBUFS);
    ck_assert_int_eq(vlen, 3);
    ck_assert_int_eq(memcmp(buf, "on\0", 3), 0);
    ck_assert_int_eq(gc_tab_get(t, &a.k, NULL, 0, &vlen, NULL), -ENOBUFS);
    ck_assert_int_eq(gc_tab_get(t, &a.k, NULL, 0, NULL, NULL), -ENOBUFS);
    /* Replace. */
    ck_assert_int_eq(gc_tab_put(t, &a.k, "three", 5, 0, NULL), 0);
    chk(t);
    ck_assert_int_eq(gc_tab_count(t), 1);
    ck_assert_int_eq(gc_tab_bytes(t), 6);
    ck_assert_int_eq(gc_tab_find(t, &a.k, &v, &vlen, &left, &len), 0);
    ck_assert_int_eq(vlen, 5);
    ck_assert_int_eq(memcmp(v, "three", 5), 0);
    ck_assert_int_eq(len, 0);
    /* Empty key and empty value. */
    ck_assert_int_eq(gc_tab_put(t, mks(&b, 0, ""), "", 0, 0, NULL), 0);
    ck_assert_int_eq(gc_tab_get(t, &b.k, buf, sizeof(buf), &vlen, NULL), 0);
    ck_assert_int_eq(vlen, 0);
    chk(t);
    /* Delete. */
    ck_assert_int_eq(gc_tab_delete(t, &a.k, &wexp), 0);
    ck_assert_int_eq(wexp, 0);
    ck_assert_int_eq(gc_tab_delete(t, &a.k, &wexp), -ENOENT);
    ck_assert_int_eq(wexp, 0);
    ck_assert_int_eq(gc_tab_find(t, &a.k, NULL, NULL, NULL, NULL), -ENOENT);
    ck_assert_int_eq(gc_tab_get(t, &a.k, buf, sizeof(buf), NULL, NULL), -ENOENT);
    ck_assert_int_eq(gc_tab_count(t), 1);
    chk(t);
    /* Errors. */
    ck_assert_int_eq(gc_tab_put(t, &a.k, "x", 1, -5, NULL), -EINVAL);
    ck_assert_int_eq(gc_tab_set_ttl(t, &a.k, -2), -EINVAL);
    ck_assert_int_eq(gc_tab_set_ttl(t, &a.k, 10), -ENOENT);
    gc_tab_clear(t);
    ck_assert_int_eq(gc_tab_count(t), 0);
    ck_assert_int_eq(gc_tab_bytes(t), 0);
    chk(t);
    gc_tab_maintain(t);
    gc_tab_free(t);
}
END_TEST

START_TEST(test_namespaces)
{
    gc_tab_t *t;
    uint16_t id, id2, id0;
    tkey_t a, b;
    char buf[8];
    size_t vlen;
    int i;

    ck_assert_int_eq(gc_tab_new(NULL, &t), 0);
    ck_assert_int_eq(gc_tab_ns_find(t, "", 0, &id0), 0);
    ck_assert_int_eq(id0, 0);
    ck_assert_int_eq(gc_tab_ns_find(t, "users", 5, &id), -ENOENT);
    ck_assert_int_eq(gc_tab_ns_intern(t, "users", 5, &id), 0);
    ck_assert_int_ne(id, 0);
    ck_assert_int_eq(gc_tab_ns_intern(t, "users", 5, &id2), 0);
    ck_assert_int_eq(id, id2);
    ck_assert_int_eq(gc_tab_ns_find(t, "users", 5, &id2), 0);
    ck_assert_int_eq(id, id2);
    /* The same key in two namespaces: two entries. */
    ck_assert_int_eq(gc_tab_put(t, mks(&a, 0, "k"), "0", 1, 0, NULL), 0);
    ck_assert_int_eq(gc_tab_put(t, mks(&b, id, "k"), "1", 1, 0, NULL), 0);
    ck_assert_int_eq(gc_tab_count(t), 2);
    ck_assert_int_eq(gc_tab_get(t, &a.k, buf, sizeof(buf), &vlen, NULL), 0);
    ck_assert_int_eq(buf[0], '0');
    ck_assert_int_eq(gc_tab_get(t, &b.k, buf, sizeof(buf), &vlen, NULL), 0);
    ck_assert_int_eq(buf[0], '1');
    chk(t);
    /* Many names (crosses a block of 256). */
    for (i = 0; i < 600; i++) {
        char n[16];

        snprintf(n, sizeof(n), "ns%d", i);
        ck_assert_int_eq(gc_tab_ns_intern(t, n, strlen(n), &id), 0);
        ck_assert_int_eq(gc_tab_ns_find(t, n, strlen(n), &id2), 0);
        ck_assert_int_eq(id, id2);
    }
    gc_tab_free(t);
}
END_TEST

static int
count_fn(void *arg, const void *key, size_t klen, const void *v, size_t vlen, int64_t ttl_left)
{
    (void)key;
    (void)klen;
    (void)v;
    (void)vlen;
    (void)ttl_left;
    return ++*(int *)arg == 1000 ? 7 : 0;
}

START_TEST(test_growth)
{
    gc_tab_t *t;
    tkey_t a;
    uint64_t w[8], i, n = 1000000;
    size_t vlen;
    uint16_t ns;
    int c = 0;

    if (getenv("GC_TAB_SMALL") != NULL)
        n = 100000;
    ck_assert_int_eq(gc_tab_new(NULL, &t), 0);
    ck_assert_int_eq(gc_tab_ns_intern(t, "n", 1, &ns), 0);
    for (i = 0; i < n; i++) {
        mkval(w, i, 0);
        ck_assert_int_eq(gc_tab_put(t, mk(&a, ns, i), w, sizeof(w), 0, NULL), 0);
        if (i % 4096 == 0)
            gc_tab_maintain(t);
        if (i == 1000 || i == 20000)
            chk(t);
    }
    ck_assert_uint_eq(gc_tab_count(t), n);
    chk(t);
    for (i = 0; i < n; i++) {
        ck_assert_int_eq(gc_tab_get(t, mk(&a, ns, i), w, sizeof(w), &vlen, NULL), 0);
        ck_assert(valok(w, i));
    }
    ck_assert_int_eq(gc_tab_get(t, mk(&a, 0, 1), w, sizeof(w), &vlen, NULL), -ENOENT);
    for (i = 0; i < n; i += 2)
        ck_assert_int_eq(gc_tab_delete(t, mk(&a, ns, i), NULL), 0);
    ck_assert_uint_eq(gc_tab_count(t), n / 2);
    chk(t);
    ck_assert_int_eq(gc_tab_foreach(t, ns, count_fn, &c), 7);
    c = 0;
    ck_assert_int_eq(gc_tab_foreach(t, 0, count_fn, &c), 0);
    ck_assert_int_eq(c, 0);
    gc_tab_free(t);

    /* The same on huge-page arenas and maps (gc_tab_opts_t.huge_pages). */
    {
        gc_tab_opts_t o = { .huge_pages = 1 };

        ck_assert_int_eq(gc_tab_new(&o, &t), 0);
        for (i = 0; i < n / 4; i++) {
            mkval(w, i, 1);
            ck_assert_int_eq(gc_tab_put(t, mk(&a, 0, i), w, sizeof(w), 0, NULL), 0);
            if (i % 64 == 0)
                gc_tab_maintain(t);
        }
        chk(t);
        for (i = 0; i < n / 4; i += 3) {
            ck_assert_int_eq(gc_tab_get(t, mk(&a, 0, i), w, sizeof(w), &vlen, NULL), 0);
            ck_assert(valok(w, i));
            ck_assert_int_eq(gc_tab_delete(t, &a.k, NULL), 0);
        }
        chk(t);
        gc_tab_free(t);
    }
}
END_TEST

/* ------------------------------------------------------------------ */
/* TTL                                                                  */

typedef struct evrec {
    int n[4];
    char last[32];
} evrec_t;

static void
on_event(void *ctx, int why, uint16_t ns, const void *key, size_t klen)
{
    evrec_t *r = ctx;

    (void)ns;
    r->n[why]++;
    memcpy(r->last, key, klen < 31 ? klen : 31);
    r->last[klen < 31 ? klen : 31] = '\0';
}

START_TEST(test_ttl)
{
    actor_clock_t *clk;
    gc_tab_t *t;
    gc_tab_opts_t o = { 0 };
    tkey_t a, b, c;
    char buf[8];
    int64_t left, len;
    int wexp, i;
    evrec_t ev = { { 0 }, "" };

    ck_assert_int_eq(actor_clock_manual_new(1000, &clk), 0);
    o.clock = clk;
    ck_assert_int_eq(gc_tab_new(&o, &t), 0);
    gc_tab_set_events(t, on_event, &ev);
    ck_assert_uint_eq(gc_tab_next_deadline(t), 0);
    ck_assert_int_eq(gc_tab_put(t, mks(&a, 0, "a"), "v", 1, 100, NULL), 0);
    ck_assert_int_eq(gc_tab_put(t, mks(&b, 0, "b"), "w", 1, 50, NULL), 0);
    ck_assert_int_eq(gc_tab_put(t, mks(&c, 0, "c"), "x", 1, 0, NULL), 0);
    chk(t);
    ck_assert_uint_eq(gc_tab_next_deadline(t), 1050);
    ck_assert_int_eq(gc_tab_get(t, &a.k, buf, sizeof(buf), NULL, &left), 0);
    ck_assert_int_eq(left, 100);
    ck_assert_int_eq(gc_tab_find(t, &a.k, NULL, NULL, &left, &len), 0);
    ck_assert_int_eq(len, 100);
    actor_clock_advance(clk, 50);
    /* b is due: readers and find stop seeing it at once. */
    ck_assert_int_eq(gc_tab_get(t, &b.k, buf, sizeof(buf), NULL, NULL), -ENOENT);
    ck_assert_int_eq(gc_tab_find(t, &b.k, NULL, NULL, NULL, NULL), -ENOENT);
    ck_assert_int_eq(gc_tab_set_ttl(t, &b.k, 10), -ENOENT);
    ck_assert_int_eq(gc_tab_expire(t, 10), 1);
    ck_assert_int_eq(ev.n[GC_TAB_EXPIRED], 1);
    ck_assert_str_eq(ev.last, "b");
    chk(t);
    /* Touch restarts a's TTL with its last length; persist removes it. */
    ck_assert_int_eq(gc_tab_set_ttl(t, &a.k, -1), 0);
    ck_assert_uint_eq(gc_tab_next_deadline(t), 1150);
    chk(t);
    ck_assert_int_eq(gc_tab_set_ttl(t, &a.k, 20), 0);
    ck_assert_uint_eq(gc_tab_next_deadline(t), 1070);
    ck_assert_int_eq(gc_tab_find(t, &a.k, NULL, NULL, &left, &len), 0);
    ck_assert_int_eq(len, 20);
    ck_assert_int_eq(left, 20);
    ck_assert_int_eq(gc_tab_set_ttl(t, &a.k, 0), 0);
    ck_assert_uint_eq(gc_tab_next_deadline(t), 0);
    ck_assert_int_eq(gc_tab_get(t, &a.k, buf, sizeof(buf), NULL, &left), 0);
    ck_assert(left == INT64_MAX);
    ck_assert_int_eq(gc_tab_set_ttl(t, &a.k, -1), 0);   /* no length: nothing */
    ck_assert_uint_eq(gc_tab_next_deadline(t), 0);
    chk(t);
    /* A TTL on an entry put without one (copy-on-write). */
    ck_assert_int_eq(gc_tab_set_ttl(t, &c.k, 30), 0);
    ck_assert_uint_eq(gc_tab_next_deadline(t), 1080);
    ck_assert_int_eq(gc_tab_get(t, &c.k, buf, sizeof(buf), NULL, &left), 0);
    ck_assert_int_eq(buf[0], 'x');
    ck_assert_int_eq(left, 30);
    chk(t);
    /* A re-put without TTL removes the deadline; the old one cannot fire. */
    ck_assert_int_eq(gc_tab_put(t, &c.k, "y", 1, 0, NULL), 0);
    ck_assert_uint_eq(gc_tab_next_deadline(t), 0);
    actor_clock_advance(clk, 1000);
    ck_assert_int_eq(gc_tab_expire(t, 10), 0);
    ck_assert_int_eq(gc_tab_get(t, &c.k, buf, sizeof(buf), NULL, NULL), 0);
    chk(t);
    /* Delete of an expired entry: removed, -ENOENT, was_expired. */
    ck_assert_int_eq(gc_tab_put(t, &b.k, "w", 1, 5, NULL), 0);
    actor_clock_advance(clk, 5);
    ck_assert_int_eq(gc_tab_delete(t, &b.k, &wexp), -ENOENT);
    ck_assert_int_eq(wexp, 1);
    ck_assert_int_eq(ev.n[GC_TAB_EXPIRED], 2);
    ck_assert_int_eq(gc_tab_delete(t, &c.k, &wexp), 0);
    ck_assert_int_eq(ev.n[GC_TAB_DELETED], 1);
    chk(t);
    /* Mass expiry in slices. */
    for (i = 0; i < 10000; i++) {
        tkey_t k;

        ck_assert_int_eq(gc_tab_put(t, mk(&k, 0, (uint64_t)i), "z", 1, 1 + i % 7, NULL), 0);
    }
    chk(t);
    actor_clock_advance(clk, 10);
    for (i = 0; i < 10; i++)
        ck_assert_int_eq(gc_tab_expire(t, 1000), 1000);
    ck_assert_int_eq(gc_tab_expire(t, 1000), 0);
    ck_assert_uint_eq(gc_tab_count(t), 1);   /* a */
    chk(t);
    gc_tab_free(t);
    ck_assert_int_eq(actor_clock_free(clk), 0);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Eviction                                                             */

START_TEST(test_evict_scan)
{
    gc_tab_opts_t o = { .max_entries = 1000 };
    gc_tab_t *t;
    tkey_t a;
    uint64_t w[8], i, r;
    int64_t ev = 0;
    int hot = 0;
    evrec_t er = { { 0 }, "" };

    ck_assert_int_eq(gc_tab_new(&o, &t), 0);
    gc_tab_set_events(t, on_event, &er);
    /* A hot set of 200 keys read often. */
    for (r = 0; r < 5; r++)
        for (i = 0; i < 200; i++) {
            if (r == 0) {
                mkval(w, i, 0);
                ck_assert_int_eq(gc_tab_put(t, mk(&a, 0, i), w, sizeof(w), 0, &ev), 0);
            }
            ck_assert_int_eq(gc_tab_get(t, mk(&a, 0, i), w, sizeof(w), NULL, NULL), 0);
        }
    /* A scan of 20,000 keys read once, with hot reads in between. */
    for (i = 0; i < 20000; i++) {
        mkval(w, 1000000 + i, 0);
        ck_assert_int_eq(gc_tab_put(t, mk(&a, 0, 1000000 + i), w, sizeof(w), 0, &ev), 0);
        /* The entry just put is never the victim (find: a writer read,
         * which does not count as a hit). */
        ck_assert_int_eq(gc_tab_find(t, &a.k, NULL, NULL, NULL, NULL), 0);
        if (i % 10 == 0)
            (void)gc_tab_get(t, mk(&a, 0, i / 10 % 200), w, sizeof(w), NULL, NULL);
        ck_assert_uint_le(gc_tab_count(t), 1000);
        if (i % 1000 == 0)
            chk(t);
    }
    chk(t);
    ck_assert_int_eq(ev, 200 + 20000 - 1000);
    ck_assert_int_eq(er.n[GC_TAB_EVICTED], ev);
    for (i = 0; i < 200; i++)
        hot += gc_tab_get(t, mk(&a, 0, i), w, sizeof(w), NULL, NULL) == 0;
    ck_assert_int_ge(hot, 190);
    gc_tab_free(t);
}
END_TEST

START_TEST(test_max_bytes)
{
    gc_tab_opts_t o = { .max_bytes = 10000 };
    gc_tab_t *t;
    tkey_t a;
    static char big[20000];
    int64_t ev = 0;
    uint64_t i;

    ck_assert_int_eq(gc_tab_new(&o, &t), 0);
    ck_assert_int_eq(gc_tab_put(t, mks(&a, 0, "big"), big, 10000, 0, NULL), -E2BIG);
    ck_assert_int_eq(gc_tab_put(t, mks(&a, 0, "big"), big, 9997, 0, NULL), 0);
    chk(t);
    for (i = 0; i < 500; i++) {
        ck_assert_int_eq(gc_tab_put(t, mk(&a, 0, i), big, 100 + i % 300, 0, &ev), 0);
        ck_assert_uint_le(gc_tab_bytes(t), 10000);
        chk(t);
    }
    ck_assert_int_gt(ev, 400);
    /* A large value (own slab chunk) replacing many. */
    ck_assert_int_eq(gc_tab_put(t, mks(&a, 0, "huge"), big, 9000, 0, &ev), 0);
    ck_assert_uint_le(gc_tab_bytes(t), 10000);
    chk(t);
    gc_tab_free(t);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Batches                                                              */

START_TEST(test_batch)
{
    gc_tab_t *t;
    tkey_t a;
    uint64_t w[8], i;
    int64_t ev = 0;

    ck_assert_int_eq(gc_tab_new(NULL, &t), 0);
    for (i = 0; i < 50; i++) {
        mkval(w, i, 1);
        ck_assert_int_eq(gc_tab_put(t, mk(&a, 0, i), w, sizeof(w), 0, NULL), 0);
    }
    ck_assert_int_eq(gc_tab_batch_put(t, &a.k, w, sizeof(w), 0), -EINVAL);
    ck_assert_int_eq(gc_tab_batch_begin(t, 100), 0);
    ck_assert_int_eq(gc_tab_batch_begin(t, 100), -EINVAL);
    ck_assert_int_eq(gc_tab_put(t, &a.k, w, sizeof(w), 0, NULL), -EBUSY);
    ck_assert_int_eq(gc_tab_delete(t, &a.k, NULL), -EBUSY);
    ck_assert_int_eq(gc_tab_set_ttl(t, &a.k, 5), -EBUSY);
    ck_assert_int_eq(gc_tab_expire(t, 10), 0);
    for (i = 0; i < 100; i++) {
        mkval(w, i, 2);
        ck_assert_int_eq(gc_tab_batch_put(t, mk(&a, 0, i), w, sizeof(w), i % 2 ? 1000 : 0), 0);
    }
    /* A duplicate: the later put wins. */
    mkval(w, 7, 3);
    ck_assert_int_eq(gc_tab_batch_put(t, mk(&a, 0, 7), w, sizeof(w), 0), 0);
    ck_assert_int_eq(gc_tab_batch_put(t, mk(&a, 0, 500), w, sizeof(w), 0), -ENOSPC);
    chk(t);
    /* Nothing visible yet. */
    for (i = 0; i < 100; i++) {
        int rc = gc_tab_get(t, mk(&a, 0, i), w, sizeof(w), NULL, NULL);

        if (i < 50) {
            ck_assert_int_eq(rc, 0);
            ck_assert_int_eq(w[1], 1);
        } else {
            ck_assert_int_eq(rc, -ENOENT);
        }
    }
    ck_assert_uint_eq(gc_tab_count(t), 50);
    ck_assert_int_eq(gc_tab_batch_commit(t, &ev), 0);
    chk(t);
    ck_assert_uint_eq(gc_tab_count(t), 100);
    for (i = 0; i < 100; i++) {
        ck_assert_int_eq(gc_tab_get(t, mk(&a, 0, i), w, sizeof(w), NULL, NULL), 0);
        ck_assert(valok(w, i));
        ck_assert_int_eq(w[1], i == 7 ? 3 : 2);
    }
    /* Abort: nothing changed. */
    ck_assert_int_eq(gc_tab_batch_begin(t, 1000), 0);
    for (i = 0; i < 1000; i++) {
        mkval(w, i, 9);
        ck_assert_int_eq(gc_tab_batch_put(t, mk(&a, 0, i), w, sizeof(w), 0), 0);
    }
    gc_tab_batch_abort(t);
    chk(t);
    ck_assert_uint_eq(gc_tab_count(t), 100);
    for (i = 0; i < 1000; i++) {
        int rc = gc_tab_get(t, mk(&a, 0, i), w, sizeof(w), NULL, NULL);

        ck_assert_int_eq(rc, i < 100 ? 0 : -ENOENT);
        if (rc == 0)
            ck_assert_int_ne(w[1], 9);
    }
    /* Empty batch; commit without begin. */
    ck_assert_int_eq(gc_tab_batch_begin(t, 0), 0);
    ck_assert_int_eq(gc_tab_batch_commit(t, NULL), 0);
    ck_assert_int_eq(gc_tab_batch_commit(t, NULL), -EINVAL);
    /* A batch with eviction. */
    gc_tab_free(t);
    {
        gc_tab_opts_t o = { .max_entries = 64 };

        ck_assert_int_eq(gc_tab_new(&o, &t), 0);
        ck_assert_int_eq(gc_tab_batch_begin(t, 100), 0);
        for (i = 0; i < 100; i++)
            ck_assert_int_eq(gc_tab_batch_put(t, mk(&a, 0, i), w, sizeof(w), 0), 0);
        ev = 0;
        ck_assert_int_eq(gc_tab_batch_commit(t, &ev), 0);
        ck_assert_int_eq(ev, 36);
        chk(t);
        gc_tab_free(t);
    }
}
END_TEST

/* A reader hammering while batches commit: batch r sets keys 0..NB-1 to
 * round r.  Reading the keys in order, the rounds must never go down: a
 * read of round r followed by an older round of a later key would be part
 * of a batch. */
#define NB 16

typedef struct hammer {
    gc_tab_t *t;
    atomic_int stop;
    atomic_long reads;
    atomic_int bad;
} hammer_t;

static void *
batch_reader(void *arg)
{
    hammer_t *h = arg;
    tkey_t a;
    uint64_t w[8];

    while (!atomic_load(&h->stop)) {
        uint64_t last = 0, i;

        for (i = 0; i < NB; i++) {
            int rc = gc_tab_get(h->t, mk(&a, 0, i), w, sizeof(w), NULL, NULL);

            if (rc != 0 || !valok(w, i) || w[1] < last)
                atomic_store(&h->bad, 1);
            last = w[1];
        }
        atomic_fetch_add(&h->reads, 1);
    }
    return NULL;
}

START_TEST(test_batch_atomic)
{
    hammer_t h = { 0 };
    time_t until = time(NULL) + 5;
    pthread_t th[2];
    tkey_t a;
    uint64_t w[8], i, r;
    int j;

    ck_assert_int_eq(gc_tab_new(NULL, &h.t), 0);
    for (i = 0; i < NB; i++) {
        mkval(w, i, 0);
        ck_assert_int_eq(gc_tab_put(h.t, mk(&a, 0, i), w, sizeof(w), 0, NULL), 0);
    }
    for (j = 0; j < 2; j++)
        ck_assert_int_eq(pthread_create(&th[j], NULL, batch_reader, &h), 0);
    /* 20,000 batches, or 5 s (valgrind serialises the threads). */
    for (r = 1; r < 20000 && (r % 256 != 0 || time(NULL) < until); r++) {
        ck_assert_int_eq(gc_tab_batch_begin(h.t, NB + 2), 0);
        for (i = NB; i-- > 0;) {
            mkval(w, i, r);
            ck_assert_int_eq(gc_tab_batch_put(h.t, mk(&a, 0, i), w, sizeof(w), 0), 0);
        }
        /* Unrelated new keys in the batch (growth while readers read). */
        mkval(w, 100 + r, r);
        ck_assert_int_eq(gc_tab_batch_put(h.t, mk(&a, 0, 100 + r), w, sizeof(w), 0), 0);
        ck_assert_int_eq(gc_tab_batch_commit(h.t, NULL), 0);
        if (r % 64 == 0)
            gc_tab_maintain(h.t);
    }
    atomic_store(&h.stop, 1);
    for (j = 0; j < 2; j++)
        pthread_join(th[j], NULL);
    ck_assert_int_eq(atomic_load(&h.bad), 0);
    ck_assert_int_gt(atomic_load(&h.reads), 0);
    ck_assert_int_eq(gc_tab_check(h.t), 0);
    gc_tab_free(h.t);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Readers racing every kind of write                                   */

#define RK 20000

typedef struct race {
    gc_tab_t *t;
    actor_clock_t *clk;
    atomic_int stop;
    atomic_long hits, misses;
    atomic_int bad;
} race_t;

static void *
race_reader(void *arg)
{
    race_t *rc = arg;
    unsigned seed = (unsigned)(uintptr_t)&seed;
    tkey_t a;
    uint64_t w[8];
    char small[8];

    while (!atomic_load(&rc->stop)) {
        uint64_t i = (uint64_t)rand_r(&seed) % (RK * 2);
        size_t vlen;
        int r = gc_tab_get(rc->t, mk(&a, 0, i), w, sizeof(w), &vlen, NULL);

        if (r == 0) {
            if (vlen != sizeof(w) || !valok(w, i))
                atomic_store(&rc->bad, 1);
            atomic_fetch_add(&rc->hits, 1);
        } else if (r == -ENOENT) {
            atomic_fetch_add(&rc->misses, 1);
        } else {
            atomic_store(&rc->bad, 2);
        }
        r = gc_tab_get(rc->t, &a.k, small, sizeof(small), &vlen, NULL);
        if (r == -ENOBUFS && memcmp(small, &i, sizeof(small)) != 0)
            atomic_store(&rc->bad, 3);
    }
    return NULL;
}

static void
race_run(gc_tab_opts_t *o, int with_ttl)
{
    race_t rc = { 0 };
    pthread_t th[2];
    tkey_t a;
    uint64_t w[8], r;
    unsigned seed = 1;
    int j;
    time_t until = time(NULL) + 2;

    ck_assert_int_eq(actor_clock_manual_new(1, &rc.clk), 0);
    o->clock = rc.clk;
    ck_assert_int_eq(gc_tab_new(o, &rc.t), 0);
    for (j = 0; j < 2; j++)
        ck_assert_int_eq(pthread_create(&th[j], NULL, race_reader, &rc), 0);
    for (r = 1; time(NULL) < until || r < 20000; r++) {
        uint64_t i = (uint64_t)rand_r(&seed) % (RK * 2);
        int op = rand_r(&seed) % 10;

        mk(&a, 0, i);
        if (op < 6) {
            mkval(w, i, r);
            ck_assert_int_eq(gc_tab_put(rc.t, &a.k, w, sizeof(w),
                                        with_ttl ? rand_r(&seed) % 5 : 0, NULL), 0);
        } else if (op < 8) {
            (void)gc_tab_delete(rc.t, &a.k, NULL);
        } else if (op < 9 && with_ttl) {
            (void)gc_tab_set_ttl(rc.t, &a.k, rand_r(&seed) % 3 - 1);
        } else {
            actor_clock_advance(rc.clk, 1);
            (void)gc_tab_expire(rc.t, 50);
        }
        if (r % 100 == 0)
            gc_tab_maintain(rc.t);
        if (r % 50000 == 0) {
            /* Shrink back to nothing now and then: growth again. */
            gc_tab_clear(rc.t);
        }
        if (r > 2000000)
            break;
    }
    atomic_store(&rc.stop, 1);
    for (j = 0; j < 2; j++)
        pthread_join(th[j], NULL);
    ck_assert_int_eq(atomic_load(&rc.bad), 0);
    ck_assert_int_gt(atomic_load(&rc.hits), 0);
    ck_assert_int_eq(gc_tab_check(rc.t), 0);
    gc_tab_free(rc.t);
    ck_assert_int_eq(actor_clock_free(rc.clk), 0);
}

START_TEST(test_race_plain)
{
    gc_tab_opts_t o = { 0 };

    race_run(&o, 0);
}
END_TEST

START_TEST(test_race_ttl_evict)
{
    gc_tab_opts_t o = { .max_entries = RK / 2 };

    race_run(&o, 1);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Allocation failure                                                   */

static atomic_long alloc_count, fail_at;

static void *
f_malloc(size_t n)
{
    if (atomic_fetch_add(&alloc_count, 1) + 1 == atomic_load(&fail_at))
        return NULL;
    return malloc(n);
}

static void *
f_calloc(size_t c, size_t n)
{
    if (atomic_fetch_add(&alloc_count, 1) + 1 == atomic_load(&fail_at))
        return NULL;
    return calloc(c, n);
}

static void *
f_realloc(void *p, size_t n)
{
    if (atomic_fetch_add(&alloc_count, 1) + 1 == atomic_load(&fail_at))
        return NULL;
    return realloc(p, n);
}

typedef struct snap {
    uint64_t count, bytes, next;
    uint64_t sum;
} snap_t;

static int
sum_fn(void *arg, const void *key, size_t klen, const void *v, size_t vlen, int64_t ttl_left)
{
    uint64_t *s = arg, h = gc_tab_hash(0, key, klen) ^ gc_tab_hash(1, v, vlen);

    *s += h * 31 + (uint64_t)ttl_left;
    return 0;
}

static snap_t
snap(gc_tab_t *t)
{
    snap_t s = { gc_tab_count(t), gc_tab_bytes(t), gc_tab_next_deadline(t), 0 };

    ck_assert_int_eq(gc_tab_foreach(t, 0, sum_fn, &s.sum), 0);
    ck_assert_int_eq(gc_tab_check(t), 0);
    return s;
}

/* Run op with the Nth allocation failing, N = 1, 2, ... until it succeeds;
 * each failure must leave the table as it was. */
static void
fail_each(gc_tab_t *t, int (*op)(gc_tab_t *t, int i), int i)
{
    long n;

    for (n = 1;; n++) {
        snap_t before = snap(t), after;
        int rc;

        atomic_store(&alloc_count, 0);
        atomic_store(&fail_at, n);
        rc = op(t, i);
        atomic_store(&fail_at, 0);
        if (rc == 0)
            return;
        ck_assert_int_eq(rc, -ENOMEM);
        after = snap(t);
        ck_assert(memcmp(&before, &after, sizeof(before)) == 0);
        ck_assert_int_lt(n, 100);
    }
}

static int
op_put(gc_tab_t *t, int i)
{
    tkey_t a;
    char v[300];

    memset(v, 'a' + i % 26, sizeof(v));
    return gc_tab_put(t, mk(&a, 0, (uint64_t)i), v, 16 + (size_t)i * 7 % 280, i % 3 ? 0 : 1000,
                      NULL);
}

static int
op_ttl(gc_tab_t *t, int i)
{
    tkey_t a;

    return gc_tab_set_ttl(t, mk(&a, 0, (uint64_t)i), 500 + i);
}

static int
op_batch(gc_tab_t *t, int i)
{
    tkey_t a;
    int j, rc = gc_tab_batch_begin(t, 40);

    if (rc != 0)
        return rc;
    for (j = 0; j < 40; j++) {
        char v[100];

        memset(v, 'b', sizeof(v));
        rc = gc_tab_batch_put(t, mk(&a, 0, (uint64_t)(i * 13 + j)), v, 20 + (size_t)j,
                              j % 2 ? 100 : 0);
        if (rc != 0) {
            gc_tab_batch_abort(t);
            return rc;
        }
    }
    return gc_tab_batch_commit(t, NULL);
}

START_TEST(test_alloc_fail)
{
    gc_tab_t *t;
    int i;
    uint16_t id;
    actor_clock_t *clk;
    gc_tab_opts_t co = { 0 };

    ck_assert_int_eq(gencache_replace_allocator(f_malloc, f_realloc, f_calloc, free), 0);
    /* A manual clock: the snapshots compare ttl_left. */
    ck_assert_int_eq(actor_clock_manual_new(1, &clk), 0);
    co.clock = clk;
    ck_assert_int_eq(gc_tab_new(&co, &t), 0);
    for (i = 0; i < 300; i++) {
        fail_each(t, op_put, i);          /* new keys, classes, growth */
        if (i % 7 == 0)
            fail_each(t, op_put, i / 2);  /* replace */
        if (i % 5 == 0)
            fail_each(t, op_ttl, i);      /* set_ttl, some copy-on-write */
        if (i % 50 == 0)
            fail_each(t, op_batch, i);
    }
    for (i = 0; i < 3; i++) {
        long n;
        int rc;

        for (n = 1;; n++) {
            char name[8];

            snprintf(name, sizeof(name), "ns%d", i);
            atomic_store(&alloc_count, 0);
            atomic_store(&fail_at, n);
            rc = gc_tab_ns_intern(t, name, strlen(name), &id);
            atomic_store(&fail_at, 0);
            if (rc == 0)
                break;
            ck_assert_int_eq(rc, -ENOMEM);
            ck_assert_int_eq(gc_tab_ns_find(t, name, strlen(name), &id), -ENOENT);
        }
    }
    gc_tab_free(t);
    ck_assert_int_eq(actor_clock_free(clk), 0);
    for (i = 1; i < 10; i++) {
        atomic_store(&alloc_count, 0);
        atomic_store(&fail_at, i);
        if (gc_tab_new(NULL, &t) == 0) {
            atomic_store(&fail_at, 0);
            gc_tab_free(t);
            break;
        }
        atomic_store(&fail_at, 0);
    }
    {
        gc_tab_opts_t o = { .max_entries = 100 };

        atomic_store(&alloc_count, 0);
        atomic_store(&fail_at, 1);
        ck_assert_int_eq(gc_tab_new(&o, &t), -ENOMEM);
        atomic_store(&fail_at, 0);
    }
}
END_TEST

/* ------------------------------------------------------------------ */

static void
add(Suite *s, const char *name, const TTest *test)
{
    TCase *tc;

    if (gc_tcase_excluded(name))
        return;
    tc = tcase_create(name);
    tcase_set_timeout(tc, TC_TIMEOUT);
    tcase_add_test(tc, test);
    suite_add_tcase(s, tc);
}

static Suite *
tab_suite(void)
{
    Suite *s = suite_create("tab");

    add(s, "basic", test_basic);
    add(s, "namespaces", test_namespaces);
    add(s, "growth", test_growth);
    add(s, "ttl", test_ttl);
    add(s, "evict_scan", test_evict_scan);
    add(s, "max_bytes", test_max_bytes);
    add(s, "batch", test_batch);
    add(s, "batch_atomic", test_batch_atomic);
    add(s, "race_plain", test_race_plain);
    add(s, "race_ttl_evict", test_race_ttl_evict);
    add(s, "alloc_fail", test_alloc_fail);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(tab_suite());
    int nfailed;

    srunner_run_all(sr, CK_NORMAL);
    nfailed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nfailed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

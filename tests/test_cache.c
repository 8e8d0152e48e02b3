/*
 * Check suite for cache processes (cache.h): sync and async writes, batches,
 * all with patterns and ordering, expiry on a test-controlled clock,
 * namespaces, Pow's expiry bugs (which must not happen here), TTL changes,
 * eviction, stats, user operations, fetch, concurrent readers during writes
 * / expiry / eviction, restarts with and without keep_data, stop while
 * callers wait, names, and bad input.
 */
#include <gencache/gencache.h>

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void
sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

    nanosleep(&ts, NULL);
}

typedef struct fixture {
    actor_clock_t *clk;
    cache_t *c;
} fixture_t;

static fixture_t
fx_start(cache_opts_t o)
{
    fixture_t f;

    ck_assert_int_eq(actor_clock_manual_new(1000000, &f.clk), 0);
    o.clock = f.clk;
    ck_assert_int_eq(cache_start(&o, &f.c), 0);
    return f;
}

static void
fx_stop(fixture_t *f)
{
    int i;

    ck_assert_int_eq(cache_stop(f->c, 5000), 0);
    ck_assert_int_eq(cache_stop(f->c, 5000), -ESRCH);
    cache_release(f->c);
    /* The worker detaches from the clock as it exits: freeing it proves
     * the worker is gone. */
    for (i = 0; i < 1000 && actor_clock_free(f->clk) != 0; i++)
        sleep_ms(1);
    ck_assert_int_lt(i, 1000);
}

static int
get_str(cache_t *c, const char *ns, const char *key, char *buf, size_t cap)
{
    size_t len = 0;
    int rc = cache_get(c, ns, key, strlen(key), buf, cap - 1, &len);

    buf[rc == 0 ? len : 0] = '\0';
    return rc;
}

static int
put_str(cache_t *c, const char *ns, const char *key, const char *val, int64_t ttl)
{
    return cache_put(c, ns, key, strlen(key), val, strlen(val), ttl);
}

static uint64_t
entries(cache_t *c)
{
    cache_stats_t st;

    ck_assert_int_eq(cache_stats(c, &st), 0);
    return st.entries;
}

/* ------------------------------------------------------------------ */
/* Basics                                                               */

START_TEST(test_put_get_delete)
{
    fixture_t f = fx_start((cache_opts_t){ 0 });
    char buf[64];
    size_t len = 99;

    ck_assert_int_eq(get_str(f.c, NULL, "k", buf, sizeof(buf)), -ENOENT);
    ck_assert_int_eq(put_str(f.c, NULL, "k", "value", CACHE_TTL_DEFAULT), 0);
    ck_assert_int_eq(get_str(f.c, NULL, "k", buf, sizeof(buf)), 0);
    ck_assert_str_eq(buf, "value");
    /* The default namespace is "cache". */
    ck_assert_int_eq(get_str(f.c, "cache", "k", buf, sizeof(buf)), 0);
    /* Too small a buffer: the length and the first bytes. */
    memset(buf, 0, sizeof(buf));
    ck_assert_int_eq(cache_get(f.c, NULL, "k", 1, buf, 2, &len), -ENOBUFS);
    ck_assert_uint_eq(len, 5);
    ck_assert(memcmp(buf, "va", 2) == 0 && buf[2] == 0);
    ck_assert_int_eq(cache_get(f.c, NULL, "k", 1, NULL, 0, &len), -ENOBUFS);
    ck_assert_uint_eq(len, 5);
    /* Empty values are values. */
    ck_assert_int_eq(cache_put(f.c, NULL, "e", 1, NULL, 0, CACHE_TTL_NONE), 0);
    ck_assert_int_eq(cache_get(f.c, NULL, "e", 1, buf, sizeof(buf), &len), 0);
    ck_assert_uint_eq(len, 0);
    /* Replace, delete, delete again. */
    ck_assert_int_eq(put_str(f.c, NULL, "k", "v2", CACHE_TTL_NONE), 0);
    ck_assert_int_eq(get_str(f.c, NULL, "k", buf, sizeof(buf)), 0);
    ck_assert_str_eq(buf, "v2");
    ck_assert_int_eq(cache_delete(f.c, NULL, "k", 1), 0);
    ck_assert_int_eq(get_str(f.c, NULL, "k", buf, sizeof(buf)), -ENOENT);
    ck_assert_int_eq(cache_delete(f.c, NULL, "k", 1), -ENOENT);
    /* Binary keys and values with NUL bytes. */
    ck_assert_int_eq(cache_put(f.c, NULL, "a\0b", 3, "x\0y", 3, CACHE_TTL_NONE), 0);
    ck_assert_int_eq(cache_get(f.c, NULL, "a\0b", 3, buf, sizeof(buf), &len), 0);
    ck_assert(len == 3 && memcmp(buf, "x\0y", 3) == 0);
    ck_assert_int_eq(cache_get(f.c, NULL, "a\0c", 3, buf, sizeof(buf), &len), -ENOENT);
    fx_stop(&f);
}
END_TEST

START_TEST(test_async_writes_fifo)
{
    fixture_t f = fx_start((cache_opts_t){ .async_writes = 1 });
    char buf[64], val[16];
    int i;

    for (i = 0; i < 1000; i++) {
        snprintf(val, sizeof(val), "%d", i);
        ck_assert_int_eq(put_str(f.c, NULL, "k", val, CACHE_TTL_NONE), 0);
    }
    ck_assert_int_eq(put_str(f.c, NULL, "gone", "x", CACHE_TTL_NONE), 0);
    ck_assert_int_eq(cache_delete(f.c, NULL, "gone", 4), 0);
    /* A later call from this thread is ordered after its casts. */
    {
        size_t len;
        cache_op_t g = { .kind = CACHE_OP_GET, .key = "k", .key_len = 1, .buf = buf,
                         .cap = sizeof(buf), .out_len = &len };
        ck_assert_int_eq(cache_call(f.c, &g, 5000), 0);
        ck_assert(len == 3 && memcmp(buf, "999", 3) == 0);
    }
    ck_assert_int_eq(cache_sync(f.c, 5000), 0);
    ck_assert_int_eq(get_str(f.c, NULL, "k", buf, sizeof(buf)), 0);
    ck_assert_str_eq(buf, "999");
    ck_assert_int_eq(get_str(f.c, NULL, "gone", buf, sizeof(buf)), -ENOENT);
    fx_stop(&f);
}
END_TEST

START_TEST(test_batch_put)
{
    fixture_t f = fx_start((cache_opts_t){ 0 });
    cache_op_t puts[3] = {
        { .kind = CACHE_OP_PUT, .key = "a", .key_len = 1, .value = "1", .value_len = 1,
          .ttl_ms = CACHE_TTL_NONE },
        { .kind = CACHE_OP_PUT, .ns = "other", .key = "b", .key_len = 1, .value = "2",
          .value_len = 1, .ttl_ms = 50 },
        { .kind = CACHE_OP_PUT, .key = "c", .key_len = 1, .value = "3", .value_len = 1,
          .ttl_ms = CACHE_TTL_DEFAULT },
    };
    cache_op_t batch = { .kind = CACHE_OP_PUT_BATCH, .batch = puts, .batch_len = 3 };
    char buf[8];

    ck_assert_int_eq(cache_call(f.c, &batch, 5000), 0);
    ck_assert_int_eq(get_str(f.c, NULL, "a", buf, sizeof(buf)), 0);
    ck_assert_int_eq(get_str(f.c, "other", "b", buf, sizeof(buf)), 0);
    ck_assert_int_eq(get_str(f.c, NULL, "c", buf, sizeof(buf)), 0);
    ck_assert_uint_eq(entries(f.c), 3);
    /* One bad element: -EINVAL, nothing applied. */
    puts[0].value = "9";
    puts[1].key = NULL;
    ck_assert_int_eq(cache_call(f.c, &batch, 5000), -EINVAL);
    ck_assert_int_eq(get_str(f.c, NULL, "a", buf, sizeof(buf)), 0);
    ck_assert_str_eq(buf, "1");
    puts[1].key = "b";
    puts[2].kind = CACHE_OP_DELETE;   /* only puts in a batch */
    ck_assert_int_eq(cache_call(f.c, &batch, 5000), -EINVAL);
    ck_assert_str_eq(buf, "1");
    /* As a cast, then sync. */
    puts[2].kind = CACHE_OP_PUT;
    ck_assert_int_eq(cache_cast(f.c, &batch), 0);
    ck_assert_int_eq(cache_sync(f.c, 5000), 0);
    ck_assert_int_eq(get_str(f.c, NULL, "a", buf, sizeof(buf)), 0);
    ck_assert_str_eq(buf, "9");
    fx_stop(&f);
}
END_TEST

/* ------------------------------------------------------------------ */
/* all                                                                  */

START_TEST(test_all_patterns_order)
{
    fixture_t f = fx_start((cache_opts_t){ 0 });
    static const char *const keys[] = { "user:10", "user:2", "user:1", "user", "admin:1",
                                        "user:1a", "[x]", "a*b" };
    cache_record_t *r;
    size_t n, i;

    for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        ck_assert_int_eq(put_str(f.c, NULL, keys[i], keys[i], CACHE_TTL_NONE), 0);
    ck_assert_int_eq(put_str(f.c, "other", "user:3", "x", CACHE_TTL_NONE), 0);
    ck_assert_int_eq(put_str(f.c, NULL, "user:9", "soon", 10), 0);

    ck_assert_int_eq(cache_all(f.c, NULL, "user:*", &r, &n, 5000), 0);
    ck_assert_uint_eq(n, 5);
    /* Bytewise key order, a prefix first. */
    ck_assert(r[0].key_len == 6 && memcmp(r[0].key, "user:1", 6) == 0);
    ck_assert(r[1].key_len == 7 && memcmp(r[1].key, "user:10", 7) == 0);
    ck_assert(r[2].key_len == 7 && memcmp(r[2].key, "user:1a", 7) == 0);
    ck_assert(r[3].key_len == 6 && memcmp(r[3].key, "user:2", 6) == 0);
    ck_assert(r[4].key_len == 6 && memcmp(r[4].key, "user:9", 6) == 0);
    ck_assert(r[4].ttl_ms == 10 && r[0].ttl_ms == CACHE_TTL_NONE);
    ck_assert(r[0].value_len == 6 && memcmp(r[0].value, "user:1", 6) == 0);
    cache_records_free(r);

    ck_assert_int_eq(cache_all(f.c, NULL, "user:?", &r, &n, 5000), 0);
    ck_assert_uint_eq(n, 3);
    cache_records_free(r);
    ck_assert_int_eq(cache_all(f.c, NULL, "user:[0-1]*", &r, &n, 5000), 0);
    ck_assert_uint_eq(n, 3);
    cache_records_free(r);
    ck_assert_int_eq(cache_all(f.c, NULL, "user:[!1]", &r, &n, 5000), 0);
    ck_assert_uint_eq(n, 2);
    cache_records_free(r);
    ck_assert_int_eq(cache_all(f.c, NULL, "\\[x]", &r, &n, 5000), 0);
    ck_assert_uint_eq(n, 1);
    cache_records_free(r);
    ck_assert_int_eq(cache_all(f.c, NULL, "a\\*b", &r, &n, 5000), 0);
    ck_assert_uint_eq(n, 1);
    cache_records_free(r);
    ck_assert_int_eq(cache_all(f.c, NULL, NULL, &r, &n, 5000), 0);
    ck_assert_uint_eq(n, 9);
    cache_records_free(r);
    /* Namespaces isolate; expired records are left out. */
    ck_assert_int_eq(cache_all(f.c, "other", "*", &r, &n, 5000), 0);
    ck_assert_uint_eq(n, 1);
    cache_records_free(r);
    ck_assert_int_eq(actor_clock_advance(f.clk, 10), 0);
    ck_assert_int_eq(cache_all(f.c, NULL, "user:*", &r, &n, 5000), 0);
    ck_assert_uint_eq(n, 4);
    cache_records_free(r);
    ck_assert_int_eq(cache_all(f.c, NULL, "nothing*", &r, &n, 5000), 0);
    ck_assert_uint_eq(n, 0);
    cache_records_free(r);
    fx_stop(&f);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Expiry                                                               */

/* Wait until the worker has processed due expiries (a sync call after the
 * clock moved is ordered after the timer's wake-up, but the timer fires on
 * the worker's own schedule: poll the entry count). */
static void
wait_entries(cache_t *c, uint64_t n)
{
    int i;

    for (i = 0; i < 2000 && entries(c) != n; i++)
        sleep_ms(1);
    ck_assert_uint_eq(entries(c), n);
}

START_TEST(test_expiry_manual_clock)
{
    fixture_t f = fx_start((cache_opts_t){ .default_ttl_ms = 100 });
    char buf[16];
    int64_t ttl;
    cache_stats_t st;

    ck_assert_int_eq(put_str(f.c, NULL, "d", "x", CACHE_TTL_DEFAULT), 0);
    ck_assert_int_eq(put_str(f.c, NULL, "p", "x", 30), 0);
    ck_assert_int_eq(put_str(f.c, NULL, "n", "x", CACHE_TTL_NONE), 0);
    ck_assert_int_eq(cache_ttl(f.c, NULL, "d", 1, &ttl), 0);
    ck_assert_int_eq(ttl, 100);
    ck_assert_int_eq(cache_ttl(f.c, NULL, "n", 1, &ttl), 0);
    ck_assert(ttl == CACHE_TTL_NONE);
    ck_assert_int_eq(actor_clock_advance(f.clk, 29), 0);
    ck_assert_int_eq(get_str(f.c, NULL, "p", buf, sizeof(buf)), 0);
    ck_assert_int_eq(cache_ttl(f.c, NULL, "p", 1, &ttl), 0);
    ck_assert_int_eq(ttl, 1);
    ck_assert_int_eq(actor_clock_advance(f.clk, 1), 0);
    /* At the deadline: gone for readers at once, whatever the worker did. */
    ck_assert_int_eq(get_str(f.c, NULL, "p", buf, sizeof(buf)), -ENOENT);
    ck_assert_int_eq(cache_ttl(f.c, NULL, "p", 1, &ttl), -ENOENT);
    wait_entries(f.c, 2);
    ck_assert_int_eq(actor_clock_advance(f.clk, 70), 0);
    ck_assert_int_eq(get_str(f.c, NULL, "d", buf, sizeof(buf)), -ENOENT);
    wait_entries(f.c, 1);
    ck_assert_int_eq(actor_clock_advance(f.clk, 1000000), 0);
    ck_assert_int_eq(get_str(f.c, NULL, "n", buf, sizeof(buf)), 0);
    ck_assert_int_eq(cache_stats(f.c, &st), 0);
    ck_assert_uint_eq(st.expirations, 2);
    fx_stop(&f);
}
END_TEST

START_TEST(test_namespaces_independent_ttls)
{
    fixture_t f = fx_start((cache_opts_t){ 0 });
    char buf[16];

    ck_assert_int_eq(put_str(f.c, "a", "k", "A", 10), 0);
    ck_assert_int_eq(put_str(f.c, "b", "k", "B", 20), 0);
    ck_assert_int_eq(get_str(f.c, "a", "k", buf, sizeof(buf)), 0);
    ck_assert_str_eq(buf, "A");
    ck_assert_int_eq(get_str(f.c, "b", "k", buf, sizeof(buf)), 0);
    ck_assert_str_eq(buf, "B");
    ck_assert_int_eq(actor_clock_advance(f.clk, 10), 0);
    ck_assert_int_eq(get_str(f.c, "a", "k", buf, sizeof(buf)), -ENOENT);
    ck_assert_int_eq(get_str(f.c, "b", "k", buf, sizeof(buf)), 0);
    ck_assert_int_eq(cache_delete(f.c, "b", "k", 1), 0);
    ck_assert_int_eq(put_str(f.c, "a", "k", "A2", CACHE_TTL_NONE), 0);
    ck_assert_int_eq(get_str(f.c, "b", "k", buf, sizeof(buf)), -ENOENT);
    ck_assert_int_eq(get_str(f.c, "a", "k", buf, sizeof(buf)), 0);
    fx_stop(&f);
}
END_TEST

/* Pow's EtsCache lets an old deadline delete a newer value, and keys its
 * timers without the namespace.  None of this may happen here. */
START_TEST(test_pow_expiry_bugs)
{
    fixture_t f = fx_start((cache_opts_t){ 0 });
    char buf[16];

    /* (a) re-put with a longer TTL while the old expiry is pending. */
    ck_assert_int_eq(put_str(f.c, NULL, "a", "old", 10), 0);
    ck_assert_int_eq(put_str(f.c, NULL, "a", "new", 100), 0);
    /* (b) re-put with no TTL while the old expiry is pending. */
    ck_assert_int_eq(put_str(f.c, NULL, "b", "old", 10), 0);
    ck_assert_int_eq(put_str(f.c, NULL, "b", "new", CACHE_TTL_NONE), 0);
    /* (d) the same key in another namespace expires on its own schedule. */
    ck_assert_int_eq(put_str(f.c, "ns2", "a", "other", 10), 0);
    ck_assert_int_eq(put_str(f.c, NULL, "d", "keep", 15), 0);
    ck_assert_int_eq(put_str(f.c, "ns2", "d", "x", CACHE_TTL_NONE), 0);

    ck_assert_int_eq(actor_clock_advance(f.clk, 10), 0);
    /* (c) the old expiry is already due; re-put before the worker ran it. */
    ck_assert_int_eq(put_str(f.c, NULL, "c", "old", 5), 0);
    ck_assert_int_eq(actor_clock_advance(f.clk, 5), 0);
    ck_assert_int_eq(put_str(f.c, NULL, "c", "new", CACHE_TTL_NONE), 0);
    ck_assert_int_eq(cache_sync(f.c, 5000), 0);
    sleep_ms(20);
    ck_assert_int_eq(cache_sync(f.c, 5000), 0);

    ck_assert_int_eq(get_str(f.c, NULL, "a", buf, sizeof(buf)), 0);
    ck_assert_str_eq(buf, "new");
    ck_assert_int_eq(get_str(f.c, NULL, "b", buf, sizeof(buf)), 0);
    ck_assert_str_eq(buf, "new");
    ck_assert_int_eq(get_str(f.c, NULL, "c", buf, sizeof(buf)), 0);
    ck_assert_str_eq(buf, "new");
    ck_assert_int_eq(get_str(f.c, "ns2", "a", buf, sizeof(buf)), -ENOENT);
    /* ns2's no-TTL put of "d" did not cancel the default namespace's. */
    ck_assert_int_eq(get_str(f.c, NULL, "d", buf, sizeof(buf)), -ENOENT);
    ck_assert_int_eq(get_str(f.c, "ns2", "d", buf, sizeof(buf)), 0);
    ck_assert_int_eq(actor_clock_advance(f.clk, 85), 0);
    ck_assert_int_eq(get_str(f.c, NULL, "a", buf, sizeof(buf)), -ENOENT);
    ck_assert_int_eq(get_str(f.c, NULL, "b", buf, sizeof(buf)), 0);
    fx_stop(&f);
}
END_TEST

START_TEST(test_touch_persist_expire)
{
    fixture_t f = fx_start((cache_opts_t){ 0 });
    char buf[16];
    int64_t ttl;

    ck_assert_int_eq(put_str(f.c, NULL, "t", "x", 50), 0);
    ck_assert_int_eq(actor_clock_advance(f.clk, 40), 0);
    ck_assert_int_eq(cache_touch(f.c, NULL, "t", 1), 0);
    ck_assert_int_eq(cache_ttl(f.c, NULL, "t", 1, &ttl), 0);
    ck_assert_int_eq(ttl, 50);
    ck_assert_int_eq(actor_clock_advance(f.clk, 40), 0);
    ck_assert_int_eq(get_str(f.c, NULL, "t", buf, sizeof(buf)), 0);
    ck_assert_int_eq(cache_persist(f.c, NULL, "t", 1), 0);
    ck_assert_int_eq(cache_ttl(f.c, NULL, "t", 1, &ttl), 0);
    ck_assert(ttl == CACHE_TTL_NONE);
    ck_assert_int_eq(actor_clock_advance(f.clk, 1000), 0);
    ck_assert_int_eq(get_str(f.c, NULL, "t", buf, sizeof(buf)), 0);
    ck_assert_int_eq(cache_expire(f.c, NULL, "t", 1, 5), 0);
    ck_assert_int_eq(cache_ttl(f.c, NULL, "t", 1, &ttl), 0);
    ck_assert_int_eq(ttl, 5);
    ck_assert_int_eq(actor_clock_advance(f.clk, 5), 0);
    ck_assert_int_eq(get_str(f.c, NULL, "t", buf, sizeof(buf)), -ENOENT);
    ck_assert_int_eq(cache_touch(f.c, NULL, "t", 1), -ENOENT);
    ck_assert_int_eq(cache_persist(f.c, NULL, "missing", 7), -ENOENT);
    ck_assert_int_eq(cache_expire(f.c, NULL, "t", 1, 0), -EINVAL);
    ck_assert_int_eq(cache_expire(f.c, NULL, "t", 1, CACHE_TTL_DEFAULT), -EINVAL);
    fx_stop(&f);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Eviction and stats                                                   */

START_TEST(test_eviction_entries)
{
    fixture_t f = fx_start((cache_opts_t){ .max_entries = 100 });
    cache_stats_t st;
    char key[32], buf[16];
    int i, j, survived = 0;

    for (i = 0; i < 1000; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        ck_assert_int_eq(put_str(f.c, NULL, key, "v", CACHE_TTL_NONE), 0);
        /* Keep reading ten hot keys. */
        for (j = 0; j < 10; j++) {
            snprintf(key, sizeof(key), "k%d", j);
            (void)get_str(f.c, NULL, key, buf, sizeof(buf));
        }
        ck_assert_uint_le(entries(f.c), 100);
    }
    ck_assert_int_eq(cache_stats(f.c, &st), 0);
    ck_assert_uint_eq(st.entries, 100);
    ck_assert_uint_eq(st.evictions, 900);
    for (j = 0; j < 10; j++) {
        snprintf(key, sizeof(key), "k%d", j);
        survived += get_str(f.c, NULL, key, buf, sizeof(buf)) == 0;
    }
    /* CLOCK gives recently read keys a second chance. */
    ck_assert_int_ge(survived, 5);
    fx_stop(&f);
}
END_TEST

START_TEST(test_eviction_bytes)
{
    fixture_t f = fx_start((cache_opts_t){ .max_bytes = 1000 });
    cache_stats_t st;
    char key[32], val[100];
    int i;

    memset(val, 'v', sizeof(val));
    for (i = 0; i < 100; i++) {
        snprintf(key, sizeof(key), "k%03d", i);
        ck_assert_int_eq(cache_put(f.c, NULL, key, 4, val, 90, CACHE_TTL_NONE), 0);
    }
    ck_assert_int_eq(cache_stats(f.c, &st), 0);
    ck_assert_uint_le(st.bytes, 1000);
    ck_assert_uint_ge(st.evictions, 90);
    {
        char big[1200];

        memset(big, 'b', sizeof(big));
        ck_assert_int_eq(cache_put(f.c, NULL, "big", 3, big, sizeof(big), CACHE_TTL_NONE),
                         -E2BIG);
    }
    fx_stop(&f);
}
END_TEST

START_TEST(test_stats_counters)
{
    fixture_t f = fx_start((cache_opts_t){ 0 });
    cache_stats_t st;
    char buf[8];

    put_str(f.c, NULL, "a", "1", CACHE_TTL_NONE);
    put_str(f.c, NULL, "b", "22", CACHE_TTL_NONE);
    get_str(f.c, NULL, "a", buf, sizeof(buf));
    get_str(f.c, NULL, "a", buf, sizeof(buf));
    get_str(f.c, NULL, "zz", buf, sizeof(buf));
    cache_delete(f.c, NULL, "b", 1);
    ck_assert_int_eq(cache_stats(f.c, &st), 0);
    ck_assert_uint_eq(st.puts, 2);
    ck_assert_uint_eq(st.hits, 2);
    ck_assert_uint_eq(st.misses, 1);
    ck_assert_uint_eq(st.deletes, 1);
    ck_assert_uint_eq(st.entries, 1);
    ck_assert_uint_eq(st.bytes, strlen("cache") + 1 + 1 + 1);
    ck_assert_uint_eq(st.mailbox_depth, 0);
    ck_assert_uint_eq(st.restarts, 0);
    fx_stop(&f);
}
END_TEST

/* ------------------------------------------------------------------ */
/* User operations and fetch                                            */

static int
swap_op(cache_txn_t *txn, const void *arg, size_t arg_len)
{
    char old[32];
    size_t len = 0;
    int rc = cache_txn_get(txn, NULL, "k", 1, old, sizeof(old), &len);

    if (rc != 0)
        return rc;
    rc = cache_txn_put(txn, NULL, "k", 1, arg, arg_len, CACHE_TTL_NONE);
    if (rc != 0)
        return rc;
    ck_assert_int_eq(cache_txn_delete(txn, NULL, "gone", 4), 0);
    return cache_txn_reply(txn, old, len);
}

START_TEST(test_user_operation)
{
    fixture_t f = fx_start((cache_opts_t){ 0 });
    char buf[32];
    size_t len = 0;
    cache_op_t op = { .kind = CACHE_OP_USER, .fn = swap_op, .arg = "new", .arg_len = 3,
                      .buf = buf, .cap = sizeof(buf), .out_len = &len };

    ck_assert_int_eq(cache_call(f.c, &op, 5000), -ENOENT);
    put_str(f.c, NULL, "k", "old", CACHE_TTL_NONE);
    put_str(f.c, NULL, "gone", "x", CACHE_TTL_NONE);
    ck_assert_int_eq(cache_call(f.c, &op, 5000), 0);
    ck_assert(len == 3 && memcmp(buf, "old", 3) == 0);
    ck_assert_int_eq(get_str(f.c, NULL, "k", buf, sizeof(buf)), 0);
    ck_assert_str_eq(buf, "new");
    ck_assert_int_eq(get_str(f.c, NULL, "gone", buf, sizeof(buf)), -ENOENT);
    fx_stop(&f);
}
END_TEST

static atomic_int computes;

static int
slow_compute(const void *key, size_t key_len, void *arg, void **value, size_t *value_len)
{
    (void)key;
    (void)key_len;
    atomic_fetch_add(&computes, 1);
    sleep_ms(50);
    if (arg != NULL)
        return -EIO;
    *value = malloc(8);
    memcpy(*value, "computed", 8);
    *value_len = 8;
    return 0;
}

typedef struct fetch_arg {
    cache_t *c;
    void *err;
    int rc;
    char buf[16];
    size_t len;
} fetch_arg_t;

static void *
fetch_thread(void *p)
{
    fetch_arg_t *fa = p;

    fa->rc = cache_fetch(fa->c, NULL, "fk", 2, slow_compute, fa->err, CACHE_TTL_NONE,
                         fa->buf, sizeof(fa->buf), &fa->len, 5000);
    return NULL;
}

static void
fetch_round(cache_t *c, void *err, int want_rc)
{
    fetch_arg_t fa[4];
    pthread_t th[4];
    int i;

    atomic_store(&computes, 0);
    for (i = 0; i < 4; i++) {
        fa[i] = (fetch_arg_t){ .c = c, .err = err };
        pthread_create(&th[i], NULL, fetch_thread, &fa[i]);
    }
    for (i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        ck_assert_int_eq(fa[i].rc, want_rc);
        if (want_rc == 0)
            ck_assert(fa[i].len == 8 && memcmp(fa[i].buf, "computed", 8) == 0);
    }
    ck_assert_int_eq(atomic_load(&computes), 1);
}

START_TEST(test_fetch_once)
{
    fixture_t f = fx_start((cache_opts_t){ 0 });
    char buf[16];

    fetch_round(f.c, (void *)1, -EIO);   /* the error reaches every caller */
    ck_assert_int_eq(get_str(f.c, NULL, "fk", buf, sizeof(buf)), -ENOENT);
    fetch_round(f.c, NULL, 0);
    ck_assert_int_eq(get_str(f.c, NULL, "fk", buf, sizeof(buf)), 0);
    ck_assert_str_eq(buf, "computed");
    fx_stop(&f);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Concurrency: readers during writes, expiry and eviction              */

#define VAL_LEN 64

typedef struct conc {
    fixture_t f;
    atomic_int stop;
    atomic_long reads, bad;
} conc_t;

/* A value: 64 bytes, every byte the generation; a torn or freed read shows
 * as mixed bytes. */
static void *
reader_main(void *p)
{
    conc_t *cc = p;
    unsigned char buf[VAL_LEN];
    char key[16];
    unsigned i = 0;

    while (!atomic_load(&cc->stop)) {
        size_t len = 0;
        int rc, j;

        snprintf(key, sizeof(key), "k%u", i++ % 64);
        rc = cache_get(cc->f.c, NULL, key, strlen(key), buf, sizeof(buf), &len);
        atomic_fetch_add(&cc->reads, 1);
        if (rc == -ENOENT)
            continue;
        if (rc != 0 || len != VAL_LEN) {
            atomic_fetch_add(&cc->bad, 1);
            continue;
        }
        for (j = 1; j < VAL_LEN; j++)
            if (buf[j] != buf[0]) {
                atomic_fetch_add(&cc->bad, 1);
                break;
            }
    }
    return NULL;
}

START_TEST(test_readers_during_writes)
{
    conc_t cc;
    pthread_t th[3];
    unsigned char val[VAL_LEN];
    char key[16];
    int i, n;

    memset(&cc, 0, sizeof(cc));
    cc.f = fx_start((cache_opts_t){ .max_entries = 48 });
    for (i = 0; i < 3; i++)
        pthread_create(&th[i], NULL, reader_main, &cc);
    for (n = 0; n < 20000; n++) {
        int k = n % 64;

        memset(val, n & 0xff, sizeof(val));
        snprintf(key, sizeof(key), "k%d", k);
        if (n % 7 == 0) {
            (void)cache_delete(cc.f.c, NULL, key, strlen(key));
        } else {
            cache_op_t op = { .kind = CACHE_OP_PUT, .key = key, .key_len = strlen(key),
                              .value = val, .value_len = sizeof(val),
                              .ttl_ms = n % 3 ? CACHE_TTL_NONE : 1 + n % 5 };
            /* Mix casts and calls. */
            ck_assert_int_eq(n % 2 ? cache_cast(cc.f.c, &op) : cache_call(cc.f.c, &op, 5000),
                             0);
        }
        if (n % 100 == 0)
            actor_clock_advance(cc.f.clk, 2);
    }
    ck_assert_int_eq(cache_sync(cc.f.c, 5000), 0);
    atomic_store(&cc.stop, 1);
    for (i = 0; i < 3; i++)
        pthread_join(th[i], NULL);
    ck_assert_int_eq(atomic_load(&cc.bad), 0);
    ck_assert_int_gt(atomic_load(&cc.reads), 1000);
    fx_stop(&cc.f);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Restarts                                                             */

static void
kill_worker(cache_t *c)
{
    actor_t *w = cache_worker(c);

    ck_assert_ptr_nonnull(w);
    ck_assert_int_eq(actor_exit(w, ACTOR_KILLED), 0);
    ck_assert_int_eq(actor_wait(w, 5000, NULL), 0);
    actor_release(w);
    ck_assert_ptr_null(cache_worker(c));
}

static void
restart_case(int keep)
{
    cache_opts_t o = { .keep_data = keep };
    cache_t *c;
    actor_t *w = NULL;
    char buf[16];
    cache_stats_t st;

    ck_assert_int_eq(cache_new(&o, &c), 0);
    /* No worker yet: reads see an empty table; writes have nobody. */
    ck_assert_int_eq(get_str(c, NULL, "k", buf, sizeof(buf)), -ENOENT);
    ck_assert_int_eq(put_str(c, NULL, "k", "v", CACHE_TTL_NONE), -ESRCH);
    ck_assert_int_eq(cache_child_start(c, &w), 0);
    ck_assert_ptr_nonnull(w);
    {
        actor_t *w2 = (actor_t *)1;

        ck_assert_int_eq(cache_child_start(c, &w2), -EALREADY);
        ck_assert_ptr_null(w2);
    }
    actor_release(w);
    ck_assert_int_eq(put_str(c, NULL, "k", "v", CACHE_TTL_NONE), 0);
    kill_worker(c);
    /* Direct reads keep working while no worker runs. */
    ck_assert_int_eq(get_str(c, NULL, "k", buf, sizeof(buf)), keep ? 0 : -ENOENT);
    ck_assert_int_eq(cache_child_start(c, &w), 0);
    actor_release(w);
    ck_assert_int_eq(get_str(c, NULL, "k", buf, sizeof(buf)), keep ? 0 : -ENOENT);
    ck_assert_int_eq(put_str(c, NULL, "k2", "v2", CACHE_TTL_NONE), 0);
    ck_assert_int_eq(cache_stats(c, &st), 0);
    ck_assert_uint_eq(st.restarts, 1);
    ck_assert_uint_eq(st.entries, keep ? 2 : 1);
    ck_assert_int_eq(cache_stop(c, 5000), 0);
    /* A stopped cache asks its supervisor to ignore it. */
    ck_assert_int_eq(cache_child_start(c, &w), 0);
    ck_assert_ptr_null(w);
    cache_release(c);
}

START_TEST(test_restart_keep_data)
{
    restart_case(1);
}
END_TEST

START_TEST(test_restart_without_keep_data)
{
    restart_case(0);
}
END_TEST

static void *
late_restart(void *p)
{
    actor_t *w = NULL;

    sleep_ms(50);
    ck_assert_int_eq(cache_child_start(p, &w), 0);
    actor_release(w);
    return NULL;
}

START_TEST(test_call_waits_for_restart)
{
    cache_opts_t o = { .keep_data = 1 };
    cache_t *c;
    actor_t *w = NULL;
    pthread_t th;
    cache_op_t op = { .kind = CACHE_OP_PUT, .key = "k", .key_len = 1, .value = "v",
                      .value_len = 1, .ttl_ms = CACHE_TTL_NONE };

    ck_assert_int_eq(cache_new(&o, &c), 0);
    ck_assert_int_eq(cache_child_start(c, &w), 0);
    actor_release(w);
    kill_worker(c);
    /* Nobody restarts it: the call gives up at its timeout. */
    ck_assert_int_eq(cache_call(c, &op, 50), -ETIMEDOUT);
    /* Restarted from another thread within the timeout: the call succeeds. */
    pthread_create(&th, NULL, late_restart, c);
    ck_assert_int_eq(cache_call(c, &op, 5000), 0);
    pthread_join(th, NULL);
    ck_assert_int_eq(cache_stop(c, 5000), 0);
    cache_release(c);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Stop while callers wait                                              */

static atomic_int gate;

static int
block_op(cache_txn_t *txn, const void *arg, size_t arg_len)
{
    (void)txn;
    (void)arg;
    (void)arg_len;
    while (!atomic_load(&gate))
        sleep_ms(1);
    return 0;
}

static void *
waiting_caller(void *p)
{
    cache_t *c = p;
    cache_op_t op = { .kind = CACHE_OP_PUT, .key = "w", .key_len = 1, .value = "v",
                      .value_len = 1, .ttl_ms = CACHE_TTL_NONE };
    intptr_t rc = cache_call(c, &op, 30000);

    return (void *)rc;
}

START_TEST(test_stop_while_callers_wait)
{
    fixture_t f = fx_start((cache_opts_t){ 0 });
    cache_op_t blk = { .kind = CACHE_OP_USER, .fn = block_op };
    pthread_t th[3];
    char buf[8];
    int i;

    atomic_store(&gate, 0);
    ck_assert_int_eq(cache_cast(f.c, &blk), 0);
    for (i = 0; i < 3; i++)
        pthread_create(&th[i], NULL, waiting_caller, f.c);
    sleep_ms(50);
    atomic_store(&gate, 1);
    ck_assert_int_eq(cache_stop(f.c, 5000), 0);
    for (i = 0; i < 3; i++) {
        void *rc;

        pthread_join(th[i], &rc);
        ck_assert((intptr_t)rc == 0 || (intptr_t)rc == -ESRCH);
    }
    /* Every operation on the stopped handle: -ESRCH. */
    ck_assert_int_eq(put_str(f.c, NULL, "k", "v", CACHE_TTL_NONE), -ESRCH);
    ck_assert_int_eq(get_str(f.c, NULL, "k", buf, sizeof(buf)), -ESRCH);
    ck_assert_int_eq(cache_delete(f.c, NULL, "k", 1), -ESRCH);
    ck_assert_int_eq(cache_sync(f.c, 100), -ESRCH);
    ck_assert_int_eq(cache_cast(f.c, &blk), -ESRCH);
    ck_assert_int_eq(cache_stop(f.c, 100), -ESRCH);
    cache_release(f.c);
    for (i = 0; i < 1000 && actor_clock_free(f.clk) != 0; i++)
        sleep_ms(1);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Names                                                                */

START_TEST(test_names)
{
    cache_opts_t o = { .name = "named-cache" };
    cache_t *c, *d, *x = (cache_t *)1;

    ck_assert_int_eq(cache_start(&o, &c), 0);
    ck_assert_int_eq(cache_lookup("named-cache", &d), 0);
    ck_assert_ptr_eq(c, d);
    cache_release(d);
    ck_assert_int_eq(cache_start(&o, &x), -EEXIST);
    ck_assert_ptr_null(x);
    ck_assert_int_eq(cache_lookup("no-such-cache", &d), -ENOENT);
    ck_assert_int_eq(cache_stop(c, 5000), 0);
    ck_assert_int_eq(cache_lookup("named-cache", &d), -ENOENT);
    cache_release(c);
    ck_assert_int_eq(cache_start(&o, &c), 0);
    ck_assert_int_eq(cache_stop(c, 5000), 0);
    cache_release(c);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Bad input                                                            */

START_TEST(test_bad_input)
{
    fixture_t f = fx_start((cache_opts_t){ 0 });
    char buf[8], longns[CACHE_NS_MAX + 2];
    size_t len;
    cache_t *x;
    cache_op_t op;

    memset(longns, 'n', sizeof(longns) - 1);
    longns[sizeof(longns) - 1] = '\0';
    put_str(f.c, NULL, "k", "v", CACHE_TTL_NONE);
    ck_assert_int_eq(cache_put(NULL, NULL, "k", 1, "v", 1, CACHE_TTL_NONE), -EINVAL);
    ck_assert_int_eq(cache_put(f.c, NULL, NULL, 1, "v", 1, CACHE_TTL_NONE), -EINVAL);
    ck_assert_int_eq(cache_put(f.c, NULL, "k", 0, "v", 1, CACHE_TTL_NONE), -EINVAL);
    ck_assert_int_eq(cache_put(f.c, NULL, "k", CACHE_KEY_MAX + 1, "v", 1, CACHE_TTL_NONE),
                     -EINVAL);
    ck_assert_int_eq(cache_put(f.c, NULL, "k", 1, NULL, 1, CACHE_TTL_NONE), -EINVAL);
    ck_assert_int_eq(cache_put(f.c, NULL, "k", 1, "v", CACHE_VALUE_MAX + 1, CACHE_TTL_NONE),
                     -EINVAL);
    ck_assert_int_eq(cache_put(f.c, NULL, "k", 1, "x", 1, 0), -EINVAL);
    ck_assert_int_eq(cache_put(f.c, NULL, "k", 1, "x", 1, -5), -EINVAL);
    ck_assert_int_eq(cache_put(f.c, "", "k", 1, "x", 1, CACHE_TTL_NONE), -EINVAL);
    ck_assert_int_eq(cache_put(f.c, longns, "k", 1, "x", 1, CACHE_TTL_NONE), -EINVAL);
    ck_assert_int_eq(cache_get(NULL, NULL, "k", 1, buf, sizeof(buf), &len), -EINVAL);
    ck_assert_int_eq(cache_get(f.c, NULL, NULL, 1, buf, sizeof(buf), &len), -EINVAL);
    ck_assert_int_eq(cache_get(f.c, NULL, "k", 1, NULL, 5, &len), -EINVAL);
    ck_assert_int_eq(cache_delete(f.c, NULL, "k", 0), -EINVAL);
    ck_assert_int_eq(cache_ttl(f.c, NULL, "k", 1, NULL), -EINVAL);
    ck_assert_int_eq(cache_call(f.c, NULL, 100), -EINVAL);
    ck_assert_int_eq(cache_call(NULL, &op, 100), -EINVAL);
    op = (cache_op_t){ .kind = (cache_op_kind_t)999 };
    ck_assert_int_eq(cache_call(f.c, &op, 100), -EINVAL);
    op = (cache_op_t){ .kind = CACHE_OP_GET, .key = "k", .key_len = 1 };
    ck_assert_int_eq(cache_cast(f.c, &op), -EINVAL);
    op.kind = CACHE_OP_TTL;
    ck_assert_int_eq(cache_cast(f.c, &op), -EINVAL);
    op.kind = CACHE_OP_SYNC;
    ck_assert_int_eq(cache_cast(f.c, &op), -EINVAL);
    op = (cache_op_t){ .kind = CACHE_OP_USER };
    ck_assert_int_eq(cache_call(f.c, &op, 100), -EINVAL);
    ck_assert_int_eq(cache_all(f.c, NULL, "*", NULL, &len, 100), -EINVAL);
    ck_assert_int_eq(cache_fetch(f.c, NULL, "k", 1, NULL, NULL, CACHE_TTL_NONE, buf,
                                 sizeof(buf), &len, 100), -EINVAL);
    ck_assert_int_eq(cache_stats(f.c, NULL), -EINVAL);
    ck_assert_int_eq(cache_start(&(cache_opts_t){ .default_ttl_ms = -1 }, &x), -EINVAL);
    ck_assert_int_eq(cache_start(&(cache_opts_t){ .async_writes = 2 }, &x), -EINVAL);
    ck_assert_int_eq(cache_start(&(cache_opts_t){ .default_ns = "" }, &x), -EINVAL);
    ck_assert_int_eq(cache_start(NULL, NULL), -EINVAL);
    ck_assert_int_eq(cache_lookup(NULL, &x), -EINVAL);
    ck_assert_int_eq(cache_child_start(NULL, NULL), -EINVAL);
    ck_assert_int_eq(cache_stop(NULL, 100), -EINVAL);
    ck_assert_ptr_null(cache_retain(NULL));
    cache_release(NULL);
    ck_assert_ptr_nonnull(cache_strerror(-E2BIG));
    ck_assert_ptr_nonnull(cache_strerror(12345));
    /* Nothing changed. */
    ck_assert_uint_eq(entries(f.c), 1);
    ck_assert_int_eq(get_str(f.c, NULL, "k", buf, sizeof(buf)), 0);
    ck_assert_str_eq(buf, "v");
    fx_stop(&f);
}
END_TEST

static Suite *
cache_suite(void)
{
    Suite *s = suite_create("cache");
    TCase *basic = tcase_create("basic"), *ttl = tcase_create("expiry"),
          *evict = tcase_create("eviction"), *ops = tcase_create("ops"),
          *conc = tcase_create("concurrency"), *life = tcase_create("lifecycle");

    tcase_set_timeout(basic, 30);
    tcase_add_test(basic, test_put_get_delete);
    tcase_add_test(basic, test_async_writes_fifo);
    tcase_add_test(basic, test_batch_put);
    tcase_add_test(basic, test_all_patterns_order);
    tcase_add_test(basic, test_bad_input);
    suite_add_tcase(s, basic);

    tcase_set_timeout(ttl, 30);
    tcase_add_test(ttl, test_expiry_manual_clock);
    tcase_add_test(ttl, test_namespaces_independent_ttls);
    tcase_add_test(ttl, test_pow_expiry_bugs);
    tcase_add_test(ttl, test_touch_persist_expire);
    suite_add_tcase(s, ttl);

    tcase_set_timeout(evict, 60);
    tcase_add_test(evict, test_eviction_entries);
    tcase_add_test(evict, test_eviction_bytes);
    tcase_add_test(evict, test_stats_counters);
    suite_add_tcase(s, evict);

    tcase_set_timeout(ops, 30);
    tcase_add_test(ops, test_user_operation);
    tcase_add_test(ops, test_fetch_once);
    suite_add_tcase(s, ops);

    tcase_set_timeout(conc, 120);
    tcase_add_test(conc, test_readers_during_writes);
    suite_add_tcase(s, conc);

    tcase_set_timeout(life, 30);
    tcase_add_test(life, test_restart_keep_data);
    tcase_add_test(life, test_restart_without_keep_data);
    tcase_add_test(life, test_call_waits_for_restart);
    tcase_add_test(life, test_stop_while_callers_wait);
    tcase_add_test(life, test_names);
    suite_add_tcase(s, life);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(cache_suite());
    int nf;

    srunner_run_all(sr, CK_NORMAL);
    nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

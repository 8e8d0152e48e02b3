/*
 * Check suite "conformance": the cache contract of include/gencache/cache.h
 * that every backend meets, run once per backend from one source:
 *
 *   test_conformance local    a local cache on a manual clock
 *   test_conformance redis    a Redis cache on a redis-server of its own
 *
 * (CTest: conformance_local, conformance_redis.)  What differs between the
 * backends lives in the fixture below, nowhere else:
 *
 *   - Creating a cache: cf_opts() gives the backend's base options (a local
 *     cache gets the test's manual clock; a Redis cache the test's server,
 *     started by tests/redis_harness.h on a free loopback port, and
 *     cf_start() waits until it is connected).
 *   - Passing time: cf_pass(ms).  Local: actor_clock_advance, exact, so a
 *     key put with TTL ms is gone after cf_pass(ms) and a TTL is read back
 *     to the millisecond.  Redis: a manual clock is refused, so cf_pass
 *     sleeps ms + PASS_SLACK_MS of real time, and TTLs are asserted in a
 *     range (expect_ttl: (want - TTL_SLACK_MS, want]).  The tests only use
 *     TTLs of a few hundred ms that must run out, or of 100 s and more that
 *     must not, and every "still there" after a cf_pass keeps a margin of
 *     200 ms or more on Redis.
 *   - Teardown: every test ends with fx_end(), after cf_finish() of each of
 *     its caches (stopped twice, the second -ESRCH; released).  Local:
 *     actor_clock_free() == 0, which proves no cache still holds the clock;
 *     Redis: the server is stopped (and the tcases' checked teardown stops
 *     any server a failed test left behind).
 *
 * Direct reads (cache_get) of a key the same instance wrote are asserted
 * at once: both backends promise that once the write returned.  Cross-
 * instance behaviour of Redis (near-cache, invalidations), failures and
 * options are backend-specific and stay in test_redis; expiry internals,
 * eviction, restarts and mailbox limits in test_cache.
 *
 * Tcases: basic, ttl, all, ops, sync, bad_input, lifecycle, atomic (issue
 * 15's put_new, take, incr, cas, count, clear), concurrency.
 * tests/run.sh leaves concurrency (timing-bound) out of its valgrind pass,
 * and for Redis also ttl (real-time TTLs under valgrind's slowdown).
 *
 * Exit status: 0 all passed, 1 a failure, 2 bad usage, 77 (CTest: skipped)
 * for `redis` when redis-server is not in PATH or gencache was built
 * without hiredis.
 */
#include <gencache/gencache.h>

#include <check.h>

#include "check_util.h"
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "redis_harness.h"

#define T0 1000000u           /* manual clocks start here (ms) */
#define CALL_MS 10000         /* call timeouts where a hang must fail */
#define PASS_SLACK_MS 100     /* Redis: cf_pass sleeps this much longer */
#define TTL_SLACK_MS 1000     /* Redis: a TTL read back may be this much lower */
#define UP_WAIT_MS 5000       /* a Redis cache connects within this */
#define SHORT_TTL 300         /* a TTL that runs out within a test */
#define LONG_TTL 500000       /* one that does not */

/* ------------------------------------------------------------------ */
/* The fixture: what differs between backends                           */

static int redis_backend;     /* set by main from argv[1], before any fork */

typedef struct fx {
    actor_clock_t *clk;       /* local */
    rh_server_t *srv;         /* redis */
    cache_redis_opts_t r;
} fx_t;

static fx_t F;

static void
fx_begin(void)
{
    memset(&F, 0, sizeof(F));
    if (redis_backend) {
        F.srv = rh_server_new(NULL);
        ck_assert_ptr_nonnull(F.srv);
        ck_assert_msg(rh_server_start(F.srv) == 0, "redis-server would not start");
        F.r = (cache_redis_opts_t){ .host = "127.0.0.1", .port = F.srv->port };
    } else {
        ck_assert_int_eq(actor_clock_manual_new(T0, &F.clk), 0);
    }
}

/* After cf_finish of every cache: the clock is free (no cache holds it),
 * the server stopped. */
static void
fx_end(void)
{
    if (redis_backend) {
        ck_assert_int_eq(rh_server_stop(F.srv), 0);
        F.srv = NULL;
    } else {
        ck_assert_int_eq(actor_clock_free(F.clk), 0);
        F.clk = NULL;
    }
}

/* Checked teardown of every tcase: no server outlives its test. */
static void
teardown_servers(void)
{
    rh_server_stop_all();
}

/* o with the backend's part filled in. */
static cache_opts_t
cf_opts(cache_opts_t o)
{
    if (redis_backend)
        o.redis = &F.r;
    else
        o.clock = F.clk;
    return o;
}

static cache_stats_t
stats_of(cache_t *c)
{
    cache_stats_t st;

    memset(&st, 0xab, sizeof(st));
    ck_assert_int_eq(cache_stats(c, &st), 0);
    return st;
}

/* Start a cache of this backend with options o (connected, for Redis). */
static cache_t *
cf_start(cache_opts_t o)
{
    cache_opts_t full = cf_opts(o);
    cache_t *c = NULL;
    int rc = cache_start(&full, &c);
    int64_t t0 = rh_now_ms();

    ck_assert_msg(rc == 0, "cache_start: %d (%s)", rc, cache_strerror(rc));
    ck_assert_ptr_nonnull(c);
    while (redis_backend && stats_of(c).connected != 1) {
        ck_assert_msg(rh_now_ms() - t0 < UP_WAIT_MS, "not connected to Redis after %d ms",
                      UP_WAIT_MS);
        rh_sleep_ms(2);
    }
    return c;
}

/* Stop (twice: the second is -ESRCH) and release. */
static void
cf_finish(cache_t *c)
{
    ck_assert_int_eq(cache_stop(c, CALL_MS), 0);
    ck_assert_int_eq(cache_stop(c, CALL_MS), -ESRCH);
    cache_release(c);
}

/* Let at least ms of cache time pass (see the file comment). */
static void
cf_pass(int64_t ms)
{
    if (redis_backend)
        rh_sleep_ms((int)(ms + PASS_SLACK_MS));
    else
        ck_assert_int_eq(actor_clock_advance(F.clk, (uint64_t)ms), 0);
}

/* ------------------------------------------------------------------ */
/* Helpers                                                              */

#define NSNAME(ns) ((ns) != NULL ? (ns) : "(default)")

static int
put_s(cache_t *c, const char *ns, const char *key, const char *val, int64_t ttl)
{
    return cache_put(c, ns, key, strlen(key), val, strlen(val), ttl);
}

static int
del_s(cache_t *c, const char *ns, const char *key)
{
    return cache_delete(c, ns, key, strlen(key));
}

/* Direct read as a C string (NUL-terminated on success, "" otherwise). */
static int
get_s(cache_t *c, const char *ns, const char *key, char *out, size_t cap)
{
    size_t len = 0;
    int rc = cache_get(c, ns, key, strlen(key), out, cap - 1, &len);

    out[rc == 0 ? len : 0] = '\0';
    return rc;
}

/* Synchronous read (cache_call GET) as a C string. */
static int
sget_s(cache_t *c, const char *ns, const char *key, char *out, size_t cap)
{
    size_t len = 0;
    cache_op_t op = { .kind = CACHE_OP_GET, .ns = ns, .key = key, .key_len = strlen(key),
                      .buf = out, .cap = cap - 1, .out_len = &len };
    int rc = cache_call(c, &op, CALL_MS);

    out[rc == 0 ? len : 0] = '\0';
    return rc;
}

static void
expect_value(cache_t *c, const char *ns, const char *key, const char *want)
{
    char buf[256];
    int rc = get_s(c, ns, key, buf, sizeof(buf));

    ck_assert_msg(rc == 0, "cache_get(%s, %s): %d (%s), want \"%s\"", NSNAME(ns), key, rc,
                  cache_strerror(rc), want);
    ck_assert_msg(strcmp(buf, want) == 0, "cache_get(%s, %s) = \"%s\", want \"%s\"",
                  NSNAME(ns), key, buf, want);
}

static void
expect_missing(cache_t *c, const char *ns, const char *key)
{
    char buf[256];
    int rc = get_s(c, ns, key, buf, sizeof(buf));

    ck_assert_msg(rc == -ENOENT, "cache_get(%s, %s): %d (%s), value \"%s\", want -ENOENT",
                  NSNAME(ns), key, rc, cache_strerror(rc), buf);
}

/* Both reads, direct and synchronous. */
static void
expect_both(cache_t *c, const char *ns, const char *key, const char *want)
{
    char buf[256];
    int rc = sget_s(c, ns, key, buf, sizeof(buf));

    if (want == NULL) {
        expect_missing(c, ns, key);
        ck_assert_msg(rc == -ENOENT, "GET call (%s, %s): %d, want -ENOENT", NSNAME(ns), key,
                      rc);
        return;
    }
    expect_value(c, ns, key, want);
    ck_assert_msg(rc == 0 && strcmp(buf, want) == 0, "GET call (%s, %s): %d \"%s\", want \"%s\"",
                  NSNAME(ns), key, rc, buf, want);
}

static int64_t
ttl_of(cache_t *c, const char *ns, const char *key)
{
    int64_t ttl = -12345;
    int rc = cache_ttl(c, ns, key, strlen(key), &ttl);

    ck_assert_msg(rc == 0, "cache_ttl(%s, %s): %d (%s)", NSNAME(ns), key, rc,
                  cache_strerror(rc));
    return ttl;
}

/* A TTL read back: exactly want (local, or CACHE_TTL_NONE), or in
 * (want - TTL_SLACK_MS, want] (Redis: real time passed). */
static void
check_ttl(int64_t ttl, int64_t want, const char *what)
{
    if (want == CACHE_TTL_NONE || !redis_backend) {
        ck_assert_msg(ttl == want, "%s: ttl %lld, want %lld", what, (long long)ttl,
                      (long long)want);
    } else {
        int64_t lo = want > TTL_SLACK_MS ? want - TTL_SLACK_MS : 0;

        ck_assert_msg(ttl > lo && ttl <= want, "%s: ttl %lld, want in (%lld, %lld]", what,
                      (long long)ttl, (long long)lo, (long long)want);
    }
}

static void
expect_ttl(cache_t *c, const char *ns, const char *key, int64_t want)
{
    char what[96];

    snprintf(what, sizeof(what), "cache_ttl(%s, %s)", NSNAME(ns), key);
    check_ttl(ttl_of(c, ns, key), want, what);
}

/* A worker-blocking user operation (the gate) and a compute that waits. */
typedef struct gate {
    atomic_int entered;
    atomic_int open;
} gate_t;

static void
gate_init(gate_t *g)
{
    atomic_store(&g->entered, 0);
    atomic_store(&g->open, 0);
}

static void
wait_entered(gate_t *g)
{
    int i;

    for (i = 0; i < 10000 && !atomic_load(&g->entered); i++)
        rh_sleep_ms(1);
    ck_assert_msg(atomic_load(&g->entered), "the gate was never entered");
}

/* ------------------------------------------------------------------ */
/* basic                                                                */

START_TEST(test_sync_put_get_delete)
{
    cache_t *c;
    char buf[64];
    size_t len = 99;
    int64_t ttl = 0;

    fx_begin();
    c = cf_start((cache_opts_t){ 0 });
    /* Missing key. */
    ck_assert_int_eq(cache_get(c, NULL, "k", 1, buf, sizeof(buf), &len), -ENOENT);
    ck_assert_int_eq(cache_ttl(c, NULL, "k", 1, &ttl), -ENOENT);
    expect_both(c, NULL, "k", NULL);
    /* Put, read back; the default namespace is "cache". */
    ck_assert_int_eq(put_s(c, NULL, "k", "value", CACHE_TTL_DEFAULT), 0);
    expect_both(c, NULL, "k", "value");
    expect_value(c, "cache", "k", "value");
    expect_missing(c, "other", "k");
    expect_ttl(c, NULL, "k", CACHE_TTL_NONE);
    len = 0;
    ck_assert_int_eq(cache_get(c, NULL, "k", 1, buf, sizeof(buf), &len), 0);
    ck_assert_uint_eq(len, 5);
    ck_assert_int_eq(cache_get(c, NULL, "k", 1, buf, sizeof(buf), NULL), 0);
    /* Replace. */
    ck_assert_int_eq(put_s(c, NULL, "k", "second value", CACHE_TTL_NONE), 0);
    expect_both(c, NULL, "k", "second value");
    /* Binary keys and values (embedded NUL, high bytes). */
    ck_assert_int_eq(cache_put(c, NULL, "a\0b", 3, "x\0\xffy", 4, CACHE_TTL_NONE), 0);
    ck_assert_int_eq(cache_get(c, NULL, "a\0b", 3, buf, sizeof(buf), &len), 0);
    ck_assert(len == 4 && memcmp(buf, "x\0\xffy", 4) == 0);
    ck_assert_int_eq(cache_get(c, NULL, "a\0c", 3, buf, sizeof(buf), &len), -ENOENT);
    ck_assert_int_eq(cache_get(c, NULL, "a", 1, buf, sizeof(buf), &len), -ENOENT);
    /* Delete; delete again is -ENOENT. */
    ck_assert_int_eq(del_s(c, NULL, "k"), 0);
    expect_both(c, NULL, "k", NULL);
    ck_assert_int_eq(del_s(c, NULL, "k"), -ENOENT);
    ck_assert_int_eq(del_s(c, NULL, "never"), -ENOENT);
    /* The caller's buffers are free once put returns. */
    {
        char kb[8] = "mine", vb[8] = "data";

        ck_assert_int_eq(cache_put(c, NULL, kb, 4, vb, 4, CACHE_TTL_NONE), 0);
        memset(kb, 'X', sizeof(kb));
        memset(vb, 'Y', sizeof(vb));
        expect_both(c, NULL, "mine", "data");
    }
    cf_finish(c);
    fx_end();
}
END_TEST

START_TEST(test_get_enobufs)
{
    cache_t *c;
    unsigned char buf[16];
    size_t len;
    int64_t ttl = 0;
    int pass;

    fx_begin();
    c = cf_start((cache_opts_t){ 0 });
    ck_assert_int_eq(put_s(c, NULL, "k", "0123456789", CACHE_TTL_NONE), 0);
    /* Direct read: -ENOBUFS, the full length, the first cap bytes, and not
     * one byte past cap; twice (Redis: the second from the near-cache). */
    for (pass = 0; pass < 2; pass++) {
        memset(buf, 0xee, sizeof(buf));
        len = 0;
        ck_assert_int_eq(cache_get(c, NULL, "k", 1, buf, 4, &len), -ENOBUFS);
        ck_assert_uint_eq(len, 10);
        ck_assert(memcmp(buf, "0123", 4) == 0);
        ck_assert_uint_eq(buf[4], 0xee);
    }
    /* Exactly fitting is not -ENOBUFS. */
    ck_assert_int_eq(cache_get(c, NULL, "k", 1, buf, 10, &len), 0);
    ck_assert_uint_eq(len, 10);
    ck_assert_uint_eq(buf[10], 0xee);
    /* Length query with no buffer. */
    len = 0;
    ck_assert_int_eq(cache_get(c, NULL, "k", 1, NULL, 0, &len), -ENOBUFS);
    ck_assert_uint_eq(len, 10);
    /* The same through a GET call. */
    {
        cache_op_t g = { .kind = CACHE_OP_GET, .key = "k", .key_len = 1, .buf = buf,
                         .cap = 3, .out_len = &len, .out_ttl_ms = &ttl };

        memset(buf, 0xee, sizeof(buf));
        len = 0;
        ck_assert_int_eq(cache_call(c, &g, CALL_MS), -ENOBUFS);
        ck_assert_uint_eq(len, 10);
        ck_assert(memcmp(buf, "012", 3) == 0);
        ck_assert_uint_eq(buf[3], 0xee);
        g.cap = sizeof(buf);
        ck_assert_int_eq(cache_call(c, &g, CALL_MS), 0);
        ck_assert_uint_eq(len, 10);
        ck_assert(memcmp(buf, "0123456789", 10) == 0);
        ck_assert(ttl == CACHE_TTL_NONE);
        g.key = "missing";
        g.key_len = 7;
        ck_assert_int_eq(cache_call(c, &g, CALL_MS), -ENOENT);
    }
    cf_finish(c);
    fx_end();
}
END_TEST

START_TEST(test_empty_value)
{
    cache_t *c;
    char buf[8];
    size_t len = 77;
    cache_op_t g = { .kind = CACHE_OP_GET, .key = "e", .key_len = 1, .buf = buf,
                     .cap = sizeof(buf), .out_len = &len };

    fx_begin();
    c = cf_start((cache_opts_t){ 0 });
    ck_assert_int_eq(cache_put(c, NULL, "e", 1, NULL, 0, CACHE_TTL_NONE), 0);
    ck_assert_int_eq(cache_put(c, NULL, "f", 1, "ignored", 0, CACHE_TTL_NONE), 0);
    ck_assert_int_eq(cache_get(c, NULL, "e", 1, buf, sizeof(buf), &len), 0);
    ck_assert_uint_eq(len, 0);
    len = 77;
    ck_assert_int_eq(cache_get(c, NULL, "f", 1, NULL, 0, &len), 0);
    ck_assert_uint_eq(len, 0);
    len = 77;
    ck_assert_int_eq(cache_call(c, &g, CALL_MS), 0);
    ck_assert_uint_eq(len, 0);
    /* An empty value is present, not missing: delete finds it. */
    ck_assert_int_eq(cache_delete(c, NULL, "e", 1), 0);
    ck_assert_int_eq(cache_get(c, NULL, "e", 1, buf, sizeof(buf), &len), -ENOENT);
    ck_assert_int_eq(cache_call(c, &g, CALL_MS), -ENOENT);
    cf_finish(c);
    fx_end();
}
END_TEST

/* The largest key, binary, and a 4 MiB binary value, byte for byte; the
 * largest namespace.  (A CACHE_VALUE_MAX value: test_cache.) */
START_TEST(test_large_binary_limits)
{
    cache_t *c;
    const size_t vlen = (size_t)4 << 20;
    unsigned char *key = malloc(CACHE_KEY_MAX + 1), *val = malloc(vlen), *out = malloc(vlen + 1);
    char ns[CACHE_NS_MAX + 2];
    size_t i, len = 0;
    cache_op_t g;

    ck_assert(key != NULL && val != NULL && out != NULL);
    for (i = 0; i <= CACHE_KEY_MAX; i++)
        key[i] = (unsigned char)(i * 7 + 3);
    key[5] = 0;
    for (i = 0; i < vlen; i++)
        val[i] = (unsigned char)(i * 31 + (i >> 13));
    fx_begin();
    c = cf_start((cache_opts_t){ 0 });
    ck_assert_int_eq(cache_put(c, NULL, key, CACHE_KEY_MAX, val, vlen, CACHE_TTL_NONE), 0);
    ck_assert_int_eq(cache_put(c, NULL, key, CACHE_KEY_MAX + 1, "x", 1, CACHE_TTL_NONE),
                     -EINVAL);
    g = (cache_op_t){ .kind = CACHE_OP_GET, .key = key, .key_len = CACHE_KEY_MAX,
                      .buf = out, .cap = vlen + 1, .out_len = &len };
    memset(out, 0, vlen + 1);
    ck_assert_int_eq(cache_call(c, &g, CALL_MS), 0);
    ck_assert_uint_eq(len, vlen);
    ck_assert(memcmp(out, val, vlen) == 0);
    memset(out, 0, vlen + 1);
    len = 0;
    ck_assert_int_eq(cache_get(c, NULL, key, CACHE_KEY_MAX, out, vlen + 1, &len), 0);
    ck_assert_uint_eq(len, vlen);
    ck_assert(memcmp(out, val, vlen) == 0);
    /* A key one byte shorter is another key. */
    ck_assert_int_eq(cache_get(c, NULL, key, CACHE_KEY_MAX - 1, out, 8, &len), -ENOENT);
    ck_assert_int_eq(cache_delete(c, NULL, key, CACHE_KEY_MAX), 0);
    ck_assert_int_eq(cache_get(c, NULL, key, CACHE_KEY_MAX, out, 8, &len), -ENOENT);
    /* A namespace of CACHE_NS_MAX bytes works; one more is -EINVAL. */
    memset(ns, 'n', sizeof(ns));
    ns[CACHE_NS_MAX] = '\0';
    ck_assert_int_eq(put_s(c, ns, "k", "long ns", CACHE_TTL_NONE), 0);
    expect_both(c, ns, "k", "long ns");
    ns[CACHE_NS_MAX] = 'n';
    ns[CACHE_NS_MAX + 1] = '\0';
    ck_assert_int_eq(put_s(c, ns, "k", "x", CACHE_TTL_NONE), -EINVAL);
    free(key);
    free(val);
    free(out);
    cf_finish(c);
    fx_end();
}
END_TEST

START_TEST(test_namespaces)
{
    cache_t *c, *d;

    fx_begin();
    c = cf_start((cache_opts_t){ .default_ns = "mine" });
    d = cf_start((cache_opts_t){ 0 });
    ck_assert_int_eq(put_s(c, "a", "k", "A", SHORT_TTL), 0);
    ck_assert_int_eq(put_s(c, "b", "k", "B", LONG_TTL), 0);
    ck_assert_int_eq(put_s(c, NULL, "k", "D", CACHE_TTL_NONE), 0);
    expect_both(c, "a", "k", "A");
    expect_both(c, "b", "k", "B");
    expect_both(c, "mine", "k", "D");
    expect_missing(c, "cache", "k");
    expect_ttl(c, "a", "k", SHORT_TTL);
    expect_ttl(c, "b", "k", LONG_TTL);
    expect_ttl(c, NULL, "k", CACHE_TTL_NONE);
    /* A configured default namespace is a namespace like any other (for
     * another cache of the same backend: d reads (and on Redis shares) it). */
    if (redis_backend) {
        char buf[16];

        ck_assert_int_eq(sget_s(d, "mine", "k", buf, sizeof(buf)), 0);
        ck_assert_str_eq(buf, "D");
    }
    /* Expiring one leaves the other. */
    cf_pass(SHORT_TTL);
    expect_both(c, "a", "k", NULL);
    expect_both(c, "b", "k", "B");
    /* Deleting one leaves the other. */
    ck_assert_int_eq(put_s(c, "a", "k", "A2", CACHE_TTL_NONE), 0);
    ck_assert_int_eq(del_s(c, "b", "k"), 0);
    expect_both(c, "b", "k", NULL);
    expect_both(c, "a", "k", "A2");
    expect_value(c, NULL, "k", "D");
    ck_assert_int_eq(del_s(c, "b", "k"), -ENOENT);
    /* A namespace is not a key prefix: ("ab", "c") != ("a", "bc"), and
     * ("ab", "\0c") is neither. */
    ck_assert_int_eq(put_s(c, "ab", "c", "1", CACHE_TTL_NONE), 0);
    expect_missing(c, "a", "bc");
    ck_assert_int_eq(put_s(c, "a", "bc", "2", CACHE_TTL_NONE), 0);
    expect_both(c, "ab", "c", "1");
    expect_both(c, "a", "bc", "2");
    {
        char buf[8];
        size_t len;

        ck_assert_int_eq(cache_get(c, "ab", "\0c", 2, buf, sizeof(buf), &len), -ENOENT);
    }
    /* Glob characters in a namespace are bytes. */
    ck_assert_int_eq(put_s(c, "n*", "k", "star", CACHE_TTL_NONE), 0);
    expect_missing(c, "nx", "k");
    expect_both(c, "n*", "k", "star");
    cf_finish(c);
    cf_finish(d);
    fx_end();
}
END_TEST

/* ------------------------------------------------------------------ */
/* writes: async, batches                                               */

START_TEST(test_async_writes)
{
    cache_t *c, *s;
    char key[16], val[16];
    cache_op_t op;
    char buf[16];
    size_t len = 0;
    cache_op_t g = { .kind = CACHE_OP_GET, .key = "ord", .key_len = 3, .buf = buf,
                     .cap = sizeof(buf), .out_len = &len };
    int i;

    fx_begin();
    c = cf_start((cache_opts_t){ .async_writes = 1 });
    s = cf_start((cache_opts_t){ 0 });
    for (i = 0; i < 200; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        snprintf(val, sizeof(val), "v%d", i);
        ck_assert_int_eq(put_s(c, NULL, key, val, CACHE_TTL_NONE), 0);
    }
    ck_assert_int_eq(del_s(c, NULL, "k5"), 0);      /* a cast: 0 once queued */
    ck_assert_int_eq(del_s(c, NULL, "never"), 0);   /* its -ENOENT is not reported */
    ck_assert_int_eq(cache_sync(c, CALL_MS), 0);
    for (i = 0; i < 200; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        snprintf(val, sizeof(val), "v%d", i);
        expect_both(c, NULL, key, i == 5 ? NULL : val);
    }
    /* FIFO: the last write of a key wins; a put then a delete leaves
     * nothing (a reordering would leave it). */
    for (i = 0; i < 2000; i++) {
        snprintf(val, sizeof(val), "%d", i);
        ck_assert_int_eq(put_s(c, NULL, "same", val, CACHE_TTL_NONE), 0);
        if (i % 500 == 250)
            ck_assert_int_eq(del_s(c, NULL, "same"), 0);
    }
    for (i = 0; i < 100; i++) {
        snprintf(key, sizeof(key), "pd%d", i);
        ck_assert_int_eq(put_s(c, NULL, key, "doomed", CACHE_TTL_NONE), 0);
        ck_assert_int_eq(del_s(c, NULL, key), 0);
    }
    ck_assert_int_eq(cache_sync(c, CALL_MS), 0);
    expect_both(c, NULL, "same", "1999");
    for (i = 0; i < 100; i += 7) {
        snprintf(key, sizeof(key), "pd%d", i);
        expect_both(c, NULL, key, NULL);
    }
    ck_assert_uint_eq(stats_of(c).puts, 200 + 2000 + 100);
    ck_assert_uint_eq(stats_of(c).deletes, 1 + 4 + 100);
    /* A call from the same thread is ordered after its casts (no sync). */
    ck_assert_int_eq(put_s(c, NULL, "ord", "first", CACHE_TTL_NONE), 0);
    ck_assert_int_eq(put_s(c, NULL, "ord", "cast", CACHE_TTL_NONE), 0);
    ck_assert_int_eq(cache_call(c, &g, CALL_MS), 0);
    ck_assert(len == 4 && memcmp(buf, "cast", 4) == 0);
    ck_assert_int_eq(del_s(c, NULL, "ord"), 0);
    ck_assert_int_eq(cache_call(c, &g, CALL_MS), -ENOENT);
    /* The cast copied the caller's bytes. */
    {
        char kb[8] = "mine", vb[8] = "data";

        ck_assert_int_eq(cache_put(c, NULL, kb, 4, vb, 4, CACHE_TTL_NONE), 0);
        memset(kb, 'X', sizeof(kb));
        memset(vb, 'Y', sizeof(vb));
        ck_assert_int_eq(cache_sync(c, CALL_MS), 0);
        expect_both(c, NULL, "mine", "data");
    }
    /* cache_cast directly, on a cache with synchronous writes too. */
    op = (cache_op_t){ .kind = CACHE_OP_PUT, .key = "c1", .key_len = 2, .value = "cast",
                       .value_len = 4, .ttl_ms = CACHE_TTL_NONE };
    ck_assert_int_eq(cache_cast(s, &op), 0);
    op = (cache_op_t){ .kind = CACHE_OP_PUT, .key = "k6", .key_len = 2, .value = "x",
                       .value_len = 1, .ttl_ms = CACHE_TTL_NONE };
    ck_assert_int_eq(cache_cast(s, &op), 0);
    op = (cache_op_t){ .kind = CACHE_OP_DELETE, .key = "k6", .key_len = 2 };
    ck_assert_int_eq(cache_cast(s, &op), 0);
    op = (cache_op_t){ .kind = CACHE_OP_PUT, .key = "k7", .key_len = 2, .value = "x",
                       .value_len = 1, .ttl_ms = CACHE_TTL_NONE };
    ck_assert_int_eq(cache_cast(s, &op), 0);
    op = (cache_op_t){ .kind = CACHE_OP_EXPIRE, .key = "k7", .key_len = 2, .ttl_ms = LONG_TTL };
    ck_assert_int_eq(cache_cast(s, &op), 0);
    ck_assert_int_eq(cache_sync(s, CALL_MS), 0);
    expect_both(s, NULL, "c1", "cast");
    expect_both(s, NULL, "k6", NULL);
    expect_ttl(s, NULL, "k7", LONG_TTL);
    cf_finish(c);
    cf_finish(s);
    fx_end();
}
END_TEST

START_TEST(test_batch_put)
{
    cache_t *c;
    cache_op_t items[4] = {
        { .kind = CACHE_OP_PUT, .key = "a", .key_len = 1, .value = "1", .value_len = 1,
          .ttl_ms = CACHE_TTL_NONE },
        { .kind = CACHE_OP_PUT, .ns = "other", .key = "b", .key_len = 1, .value = "2",
          .value_len = 1, .ttl_ms = LONG_TTL },
        { .kind = CACHE_OP_PUT, .key = "c", .key_len = 1, .value = "3", .value_len = 1,
          .ttl_ms = CACHE_TTL_DEFAULT },
        { .kind = CACHE_OP_PUT, .key = "a", .key_len = 1, .value = "4", .value_len = 1,
          .ttl_ms = CACHE_TTL_NONE },   /* a later element of the same key wins */
    };
    cache_op_t batch = { .kind = CACHE_OP_PUT_BATCH, .batch = items, .batch_len = 4 };

    fx_begin();
    c = cf_start((cache_opts_t){ .default_ttl_ms = 2 * LONG_TTL });
    ck_assert_int_eq(cache_call(c, &batch, CALL_MS), 0);
    expect_both(c, NULL, "a", "4");
    expect_both(c, "other", "b", "2");
    expect_both(c, NULL, "c", "3");
    expect_ttl(c, "other", "b", LONG_TTL);
    expect_ttl(c, NULL, "c", 2 * LONG_TTL);
    expect_ttl(c, NULL, "a", CACHE_TTL_NONE);
    ck_assert_uint_eq(stats_of(c).puts, 4);
    /* Empty batches are fine. */
    batch.batch_len = 0;
    ck_assert_int_eq(cache_call(c, &batch, CALL_MS), 0);
    batch.batch = NULL;
    ck_assert_int_eq(cache_call(c, &batch, CALL_MS), 0);
    ck_assert_uint_eq(stats_of(c).puts, 4);
    /* The same as a cast. */
    items[3] = (cache_op_t){ .kind = CACHE_OP_PUT, .key = "z", .key_len = 1, .value = "zz",
                             .value_len = 2, .ttl_ms = CACHE_TTL_NONE };
    items[0].value = "new";
    items[0].value_len = 3;
    batch.batch = items;
    batch.batch_len = 4;
    ck_assert_int_eq(cache_cast(c, &batch), 0);
    ck_assert_int_eq(cache_sync(c, CALL_MS), 0);
    expect_both(c, NULL, "a", "new");
    expect_both(c, NULL, "z", "zz");
    ck_assert_uint_eq(stats_of(c).puts, 8);
    cf_finish(c);
    fx_end();
}
END_TEST

START_TEST(test_batch_invalid_changes_nothing)
{
    cache_t *c;
    cache_op_t items[3] = {
        { .kind = CACHE_OP_PUT, .key = "a", .key_len = 1, .value = "new", .value_len = 3,
          .ttl_ms = CACHE_TTL_NONE },
        { .kind = CACHE_OP_PUT, .key = "b", .key_len = 1, .value = "new", .value_len = 3,
          .ttl_ms = CACHE_TTL_NONE },
        { .kind = CACHE_OP_PUT, .key = "z", .key_len = 1, .value = "new", .value_len = 3,
          .ttl_ms = CACHE_TTL_NONE },
    };
    cache_op_t batch = { .kind = CACHE_OP_PUT_BATCH, .batch = items, .batch_len = 3 };
    uint64_t puts;
    int variant;

    fx_begin();
    c = cf_start((cache_opts_t){ 0 });
    ck_assert_int_eq(put_s(c, NULL, "a", "old", CACHE_TTL_NONE), 0);
    ck_assert_int_eq(put_s(c, NULL, "b", "old", CACHE_TTL_NONE), 0);
    puts = stats_of(c).puts;
    for (variant = 0; variant < 8; variant++) {
        cache_op_t save = items[1];

        switch (variant) {
        case 0: items[1].key = NULL; break;
        case 1: items[1].key_len = 0; break;
        case 2: items[1].ttl_ms = 0; break;
        case 3: items[1].ttl_ms = -7; break;
        case 4: items[1].value = NULL; break;
        case 5: items[1].kind = CACHE_OP_DELETE; break;
        case 6: items[1].key_len = CACHE_KEY_MAX + 1; break;
        default: items[1].ns = ""; break;
        }
        ck_assert_msg(cache_call(c, &batch, CALL_MS) == -EINVAL, "variant %d", variant);
        ck_assert_msg(cache_cast(c, &batch) == -EINVAL, "cast variant %d", variant);
        items[1] = save;
    }
    /* A batch inside a batch. */
    {
        cache_op_t nested[2] = { items[0], batch };

        batch.batch = nested;
        batch.batch_len = 2;
        ck_assert_int_eq(cache_call(c, &batch, CALL_MS), -EINVAL);
        batch.batch = items;
        batch.batch_len = 3;
    }
    /* batch NULL with a length. */
    {
        cache_op_t bad = { .kind = CACHE_OP_PUT_BATCH, .batch = NULL, .batch_len = 2 };

        ck_assert_int_eq(cache_call(c, &bad, CALL_MS), -EINVAL);
    }
    ck_assert_int_eq(cache_sync(c, CALL_MS), 0);
    expect_both(c, NULL, "a", "old");
    expect_both(c, NULL, "b", "old");
    expect_both(c, NULL, "z", NULL);
    ck_assert_uint_eq(stats_of(c).puts, puts);
    /* The good batch applies whole. */
    ck_assert_int_eq(cache_call(c, &batch, CALL_MS), 0);
    expect_both(c, NULL, "a", "new");
    expect_both(c, NULL, "b", "new");
    expect_both(c, NULL, "z", "new");
    cf_finish(c);
    fx_end();
}
END_TEST

/* ------------------------------------------------------------------ */
/* ttl                                                                  */

/* Expiry, re-put with a new TTL (longer, shorter) and without one (Pow's
 * expiry bugs): a new value never inherits the old deadline. */
START_TEST(test_ttl_expiry_reput)
{
    cache_t *c;
    char buf[64];
    size_t len;
    int64_t ttl = 0;
    cache_op_t g = { .kind = CACHE_OP_GET, .key = "k", .key_len = 1, .buf = buf,
                     .cap = sizeof(buf), .out_len = &len, .out_ttl_ms = &ttl };

    fx_begin();
    c = cf_start((cache_opts_t){ 0 });
    ck_assert_int_eq(put_s(c, NULL, "k", "short", SHORT_TTL), 0);
    expect_ttl(c, NULL, "k", SHORT_TTL);
    ck_assert_int_eq(cache_call(c, &g, CALL_MS), 0);
    ck_assert(len == 5 && memcmp(buf, "short", 5) == 0);
    check_ttl(ttl, SHORT_TTL, "GET call");
    expect_value(c, NULL, "k", "short");
    ck_assert_int_eq(put_s(c, NULL, "none", "v", CACHE_TTL_NONE), 0);
    expect_ttl(c, NULL, "none", CACHE_TTL_NONE);
    /* Re-put without a TTL drops the old one. */
    ck_assert_int_eq(put_s(c, NULL, "reput", "v1", SHORT_TTL), 0);
    ck_assert_int_eq(put_s(c, NULL, "reput", "v2", CACHE_TTL_NONE), 0);
    expect_ttl(c, NULL, "reput", CACHE_TTL_NONE);
    /* Re-put with a shorter TTL replaces it. */
    ck_assert_int_eq(put_s(c, NULL, "renew", "v1", LONG_TTL), 0);
    ck_assert_int_eq(put_s(c, NULL, "renew", "v2", SHORT_TTL), 0);
    expect_ttl(c, NULL, "renew", SHORT_TTL);
    expect_value(c, NULL, "renew", "v2");
    /* ... and with a longer one. */
    ck_assert_int_eq(put_s(c, NULL, "longer", "v1", SHORT_TTL), 0);
    ck_assert_int_eq(put_s(c, NULL, "longer", "v2", LONG_TTL), 0);
    expect_ttl(c, NULL, "longer", LONG_TTL);
    /* A deleted key put again has no TTL left over. */
    ck_assert_int_eq(put_s(c, NULL, "dl", "v1", SHORT_TTL), 0);
    ck_assert_int_eq(del_s(c, NULL, "dl"), 0);
    ck_assert_int_eq(put_s(c, NULL, "dl", "v2", CACHE_TTL_NONE), 0);

    cf_pass(SHORT_TTL);
    expect_both(c, NULL, "k", NULL);
    ck_assert_int_eq(cache_ttl(c, NULL, "k", 1, &ttl), -ENOENT);
    ck_assert_int_eq(cache_call(c, &g, CALL_MS), -ENOENT);
    expect_both(c, NULL, "renew", NULL);
    expect_both(c, NULL, "reput", "v2");
    expect_both(c, NULL, "longer", "v2");
    expect_ttl(c, NULL, "longer", LONG_TTL - SHORT_TTL);
    expect_both(c, NULL, "none", "v");
    expect_both(c, NULL, "dl", "v2");
    /* An expired key is gone, not just hidden: delete finds nothing. */
    ck_assert_int_eq(del_s(c, NULL, "k"), -ENOENT);
    cf_finish(c);
    fx_end();
}
END_TEST

/* default_ttl_ms: CACHE_TTL_DEFAULT takes it (put, call, batch, fetch); an
 * explicit TTL or CACHE_TTL_NONE overrides it; without one (0), the
 * default is "never". */
START_TEST(test_ttl_default_override_none)
{
    cache_t *d, *z;
    cache_op_t items[2] = {
        { .kind = CACHE_OP_PUT, .key = "b1", .key_len = 2, .value = "1", .value_len = 1,
          .ttl_ms = CACHE_TTL_DEFAULT },
        { .kind = CACHE_OP_PUT, .key = "b2", .key_len = 2, .value = "2", .value_len = 1,
          .ttl_ms = CACHE_TTL_NONE },
    };
    cache_op_t batch = { .kind = CACHE_OP_PUT_BATCH, .batch = items, .batch_len = 2 };
    cache_op_t put = { .kind = CACHE_OP_PUT, .key = "c", .key_len = 1, .value = "call",
                       .value_len = 4, .ttl_ms = CACHE_TTL_DEFAULT };

    fx_begin();
    d = cf_start((cache_opts_t){ .default_ttl_ms = SHORT_TTL });
    z = cf_start((cache_opts_t){ .default_ns = "z" });
    ck_assert_int_eq(put_s(d, NULL, "dflt", "v", CACHE_TTL_DEFAULT), 0);
    ck_assert_int_eq(put_s(d, NULL, "none", "v", CACHE_TTL_NONE), 0);
    ck_assert_int_eq(put_s(d, NULL, "own", "v", LONG_TTL), 0);
    ck_assert_int_eq(cache_call(d, &put, CALL_MS), 0);
    ck_assert_int_eq(cache_call(d, &batch, CALL_MS), 0);
    ck_assert_int_eq(put_s(z, NULL, "zd", "v", CACHE_TTL_DEFAULT), 0);

    expect_ttl(d, NULL, "dflt", SHORT_TTL);
    expect_ttl(d, NULL, "c", SHORT_TTL);
    expect_ttl(d, NULL, "b1", SHORT_TTL);
    expect_ttl(d, NULL, "b2", CACHE_TTL_NONE);
    expect_ttl(d, NULL, "none", CACHE_TTL_NONE);
    expect_ttl(d, NULL, "own", LONG_TTL);
    expect_ttl(z, NULL, "zd", CACHE_TTL_NONE);
    expect_value(d, NULL, "dflt", "v");
    /* touch restarts the default length. */
    ck_assert_int_eq(cache_touch(d, NULL, "c", 1), 0);
    expect_ttl(d, NULL, "c", SHORT_TTL);

    cf_pass(SHORT_TTL);
    expect_both(d, NULL, "dflt", NULL);
    expect_both(d, NULL, "c", NULL);
    expect_both(d, NULL, "b1", NULL);
    expect_both(d, NULL, "b2", "2");
    expect_both(d, NULL, "none", "v");
    expect_both(d, NULL, "own", "v");
    expect_both(z, NULL, "zd", "v");
    expect_ttl(z, NULL, "zd", CACHE_TTL_NONE);
    cf_finish(d);
    cf_finish(z);
    fx_end();
}
END_TEST

START_TEST(test_touch_persist_expire_ttl)
{
    cache_t *c;
    int64_t ttl = 5, before;

    fx_begin();
    c = cf_start((cache_opts_t){ 0 });
    ck_assert_int_eq(put_s(c, NULL, "t", "x", 800), 0);
    ck_assert_int_eq(put_s(c, NULL, "n", "x", CACHE_TTL_NONE), 0);
    ck_assert_int_eq(cache_ttl(c, NULL, "missing", 7, &ttl), -ENOENT);

    /* touch restarts the TTL with the same length. */
    cf_pass(300);
    before = ttl_of(c, NULL, "t");
    check_ttl(before, 500, "ttl before touch");
    ck_assert_int_eq(cache_touch(c, NULL, "t", 1), 0);
    expect_ttl(c, NULL, "t", 800);
    ck_assert_int_gt(ttl_of(c, NULL, "t"), before);
    cf_pass(500);            /* the old deadline (local: exactly) */
    expect_both(c, NULL, "t", "x");
    expect_ttl(c, NULL, "t", 300);
    /* touch of a key without TTL leaves it without. */
    ck_assert_int_eq(cache_touch(c, NULL, "n", 1), 0);
    expect_ttl(c, NULL, "n", CACHE_TTL_NONE);

    /* persist drops the TTL: "t" outlives its deadline. */
    ck_assert_int_eq(cache_persist(c, NULL, "t", 1), 0);
    expect_ttl(c, NULL, "t", CACHE_TTL_NONE);
    cf_pass(400);
    expect_both(c, NULL, "t", "x");

    /* expire sets a new TTL from now (on a key that had none, too). */
    ck_assert_int_eq(cache_expire(c, NULL, "t", 1, SHORT_TTL), 0);
    expect_ttl(c, NULL, "t", SHORT_TTL);
    ck_assert_int_eq(cache_expire(c, NULL, "n", 1, LONG_TTL), 0);
    expect_ttl(c, NULL, "n", LONG_TTL);
    ck_assert_int_eq(cache_expire(c, NULL, "n", 1, 2 * LONG_TTL), 0);   /* longer */
    expect_ttl(c, NULL, "n", 2 * LONG_TTL);
    cf_pass(SHORT_TTL);
    /* A touch after expire restarts the new length. */
    ck_assert_int_eq(cache_touch(c, NULL, "n", 1), 0);
    expect_ttl(c, NULL, "n", 2 * LONG_TTL);
    expect_both(c, NULL, "t", NULL);
    ck_assert_int_eq(cache_touch(c, NULL, "t", 1), -ENOENT);      /* expired */
    ck_assert_int_eq(cache_persist(c, NULL, "t", 1), -ENOENT);
    ck_assert_int_eq(cache_expire(c, NULL, "t", 1, 10), -ENOENT);
    /* expire with CACHE_TTL_NONE is persist. */
    ck_assert_int_eq(cache_expire(c, NULL, "n", 1, CACHE_TTL_NONE), 0);
    expect_ttl(c, NULL, "n", CACHE_TTL_NONE);

    /* Missing keys, bad TTLs. */
    ck_assert_int_eq(cache_touch(c, NULL, "missing", 7), -ENOENT);
    ck_assert_int_eq(cache_persist(c, NULL, "missing", 7), -ENOENT);
    ck_assert_int_eq(cache_expire(c, NULL, "missing", 7, 10), -ENOENT);
    ck_assert_int_eq(cache_expire(c, NULL, "n", 1, 0), -EINVAL);
    ck_assert_int_eq(cache_expire(c, NULL, "n", 1, -3), -EINVAL);
    ck_assert_int_eq(cache_expire(c, NULL, "n", 1, CACHE_TTL_DEFAULT), -EINVAL);
    expect_ttl(c, NULL, "n", CACHE_TTL_NONE);

    /* The TTL operations through cache_call. */
    {
        cache_op_t q = { .kind = CACHE_OP_TTL, .key = "n", .key_len = 1, .out_ttl_ms = &ttl };
        cache_op_t op = { .kind = CACHE_OP_EXPIRE, .key = "n", .key_len = 1, .ttl_ms = 77000 };

        ck_assert_int_eq(cache_call(c, &op, CALL_MS), 0);
        ttl = 0;
        ck_assert_int_eq(cache_call(c, &q, CALL_MS), 0);
        check_ttl(ttl, 77000, "TTL call");
        op.kind = CACHE_OP_PERSIST;
        ck_assert_int_eq(cache_call(c, &op, CALL_MS), 0);
        ck_assert_int_eq(cache_call(c, &q, CALL_MS), 0);
        ck_assert(ttl == CACHE_TTL_NONE);
        op.kind = CACHE_OP_TOUCH;
        ck_assert_int_eq(cache_call(c, &op, CALL_MS), 0);
        op.key = "zz";
        op.key_len = 2;
        ck_assert_int_eq(cache_call(c, &op, CALL_MS), -ENOENT);
        q.key = "zz";
        q.key_len = 2;
        ck_assert_int_eq(cache_call(c, &q, CALL_MS), -ENOENT);
    }
    cf_finish(c);
    fx_end();
}
END_TEST

/* ------------------------------------------------------------------ */
/* cache_all                                                            */

/* cache_all keys (in order) against want[] (NULL ends); values equal keys. */
static void
expect_all(cache_t *c, const char *ns, const char *pat, const char *const *want)
{
    cache_record_t *r = (cache_record_t *)1;
    size_t n = 999, i, nwant = 0;

    while (want[nwant] != NULL)
        nwant++;
    ck_assert_int_eq(cache_all(c, ns, pat, &r, &n, CALL_MS), 0);
    ck_assert_msg(n == nwant, "all(%s, \"%s\"): %zu records, want %zu", NSNAME(ns),
                  pat ? pat : "(null)", n, nwant);
    for (i = 0; i < n; i++) {
        size_t wl = strlen(want[i]);

        ck_assert_msg(r[i].key_len == wl && memcmp(r[i].key, want[i], wl) == 0,
                      "all(%s, \"%s\")[%zu] = \"%.*s\", want \"%s\"", NSNAME(ns),
                      pat ? pat : "(null)", i, (int)r[i].key_len, (const char *)r[i].key,
                      want[i]);
        ck_assert_msg(r[i].value_len == wl && memcmp(r[i].value, want[i], wl) == 0,
                      "all(\"%s\")[%zu]: wrong value", pat ? pat : "(null)", i);
    }
    cache_records_free(r);
}

START_TEST(test_all_patterns)
{
    cache_t *c;
    static const char *const keys[] = {
        "user:1", "user:2", "user:10", "user:1a", "user", "admin:1", "a*b", "axb",
        "a?c", "abc", "[x]", "x", "back\\slash", "b", "c", "d", "^", "!",
    };
    size_t i;

    fx_begin();
    c = cf_start((cache_opts_t){ 0 });
    for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        ck_assert_int_eq(put_s(c, NULL, keys[i], keys[i], CACHE_TTL_NONE), 0);
    ck_assert_int_eq(put_s(c, "other", "user:3", "user:3", CACHE_TTL_NONE), 0);
    /* Namespaces with glob characters must not match other namespaces. */
    ck_assert_int_eq(put_s(c, "n*", "k", "k", CACHE_TTL_NONE), 0);
    ck_assert_int_eq(put_s(c, "nx", "j", "j", CACHE_TTL_NONE), 0);
    ck_assert_int_eq(put_s(c, "n?", "i", "i", CACHE_TTL_NONE), 0);
    ck_assert_int_eq(put_s(c, "n[", "h", "h", CACHE_TTL_NONE), 0);

    expect_all(c, NULL, "user:*",
               (const char *const[]){ "user:1", "user:10", "user:1a", "user:2", NULL });
    expect_all(c, NULL, "user*",
               (const char *const[]){ "user", "user:1", "user:10", "user:1a", "user:2", NULL });
    expect_all(c, NULL, "user:?", (const char *const[]){ "user:1", "user:2", NULL });
    expect_all(c, NULL, "user:??", (const char *const[]){ "user:10", "user:1a", NULL });
    expect_all(c, NULL, "*:1", (const char *const[]){ "admin:1", "user:1", NULL });
    expect_all(c, NULL, "[a-c]", (const char *const[]){ "b", "c", NULL });
    expect_all(c, NULL, "[!b-c]", (const char *const[]){ "!", "^", "d", "x", NULL });
    expect_all(c, NULL, "user:1[!0]", (const char *const[]){ "user:1a", NULL });
    expect_all(c, NULL, "user:[12]", (const char *const[]){ "user:1", "user:2", NULL });
    /* Escapes: a literal '*', '?', '[' and '\'. */
    expect_all(c, NULL, "a*b", (const char *const[]){ "a*b", "axb", NULL });
    expect_all(c, NULL, "a\\*b", (const char *const[]){ "a*b", NULL });
    expect_all(c, NULL, "a?c", (const char *const[]){ "a?c", "abc", NULL });
    expect_all(c, NULL, "a\\?c", (const char *const[]){ "a?c", NULL });
    expect_all(c, NULL, "\\[x]", (const char *const[]){ "[x]", NULL });
    expect_all(c, NULL, "[x]", (const char *const[]){ "x", NULL });
    expect_all(c, NULL, "back\\\\slash", (const char *const[]){ "back\\slash", NULL });
    /* Exact, none. */
    expect_all(c, NULL, "abc", (const char *const[]){ "abc", NULL });
    expect_all(c, NULL, "nothing*", (const char *const[]){ NULL });
    /* NULL and "*" match everything in the namespace, only it. */
    {
        cache_record_t *r;
        size_t n;

        ck_assert_int_eq(cache_all(c, NULL, NULL, &r, &n, CALL_MS), 0);
        ck_assert_uint_eq(n, sizeof(keys) / sizeof(keys[0]));
        cache_records_free(r);
        ck_assert_int_eq(cache_all(c, "cache", "*", &r, &n, CALL_MS), 0);
        ck_assert_uint_eq(n, sizeof(keys) / sizeof(keys[0]));
        cache_records_free(r);
    }
    expect_all(c, "other", NULL, (const char *const[]){ "user:3", NULL });
    expect_all(c, "other", "user:?", (const char *const[]){ "user:3", NULL });
    expect_all(c, "empty-ns", "*", (const char *const[]){ NULL });
    expect_all(c, "n*", NULL, (const char *const[]){ "k", NULL });
    expect_all(c, "n?", "*", (const char *const[]){ "i", NULL });
    expect_all(c, "n[", NULL, (const char *const[]){ "h", NULL });
    expect_all(c, "nx", NULL, (const char *const[]){ "j", NULL });
    cf_finish(c);
    fx_end();
}
END_TEST

/* The order cache.h documents (memcmp order, a prefix before its
 * extensions: a, a1, a10, a2, ab, b), values, TTLs; expired records and
 * other namespaces are left out. */
START_TEST(test_all_order_values_ttls)
{
    cache_t *c;
    cache_record_t *recs;
    size_t n, i;
    static const struct {
        const char *k;
        size_t kl;
        const char *v;
        size_t vl;
        int64_t ttl;
    } want[] = {
        { "\x01", 1, "v01", 3, 2 * LONG_TTL },
        { "B", 1, "vB", 2, CACHE_TTL_NONE },
        { "a", 1, "", 0, CACHE_TTL_NONE },
        { "a\0", 2, "va\0", 3, CACHE_TTL_NONE },
        { "a1", 2, "v1", 2, CACHE_TTL_NONE },
        { "a10", 3, "v10", 3, CACHE_TTL_NONE },
        { "a2", 2, "v2", 2, CACHE_TTL_NONE },
        { "aa", 2, "vaa", 3, CACHE_TTL_NONE },
        { "ab", 2, "vab", 3, LONG_TTL },
        { "a\xff", 2, "vaff", 4, CACHE_TTL_NONE },
        { "b", 1, "vb", 2, CACHE_TTL_NONE },
    };
    const size_t nw = sizeof(want) / sizeof(want[0]);

    fx_begin();
    c = cf_start((cache_opts_t){ 0 });
    /* Put in scrambled order. */
    for (i = 0; i < nw; i++) {
        size_t j = (i * 5 + 3) % nw;

        ck_assert_int_eq(cache_put(c, NULL, want[j].k, want[j].kl, want[j].v, want[j].vl,
                                   want[j].ttl), 0);
    }
    ck_assert_int_eq(put_s(c, "ns2", "a", "not listed", CACHE_TTL_NONE), 0);
    ck_assert_int_eq(put_s(c, "cache2", "a", "not listed", CACHE_TTL_NONE), 0);
    /* A short-lived one, gone by the time of the listing. */
    ck_assert_int_eq(put_s(c, NULL, "gone", "x", SHORT_TTL), 0);
    cf_pass(SHORT_TTL);

    ck_assert_int_eq(cache_all(c, NULL, "*", &recs, &n, CALL_MS), 0);
    ck_assert_uint_eq(n, nw);
    for (i = 0; i < nw; i++) {
        char what[32];

        ck_assert_msg(recs[i].key_len == want[i].kl &&
                          memcmp(recs[i].key, want[i].k, want[i].kl) == 0,
                      "record %zu has the wrong key (%zu bytes)", i, recs[i].key_len);
        ck_assert_msg(recs[i].value_len == want[i].vl &&
                          (want[i].vl == 0 || memcmp(recs[i].value, want[i].v, want[i].vl) == 0),
                      "record %zu has the wrong value", i);
        snprintf(what, sizeof(what), "record %zu", i);
        check_ttl(recs[i].ttl_ms, want[i].ttl == CACHE_TTL_NONE ? CACHE_TTL_NONE
                                                                : want[i].ttl - SHORT_TTL,
                  what);
    }
    cache_records_free(recs);
    cf_finish(c);
    fx_end();
}
END_TEST

/* ------------------------------------------------------------------ */
/* ops: user operations, fetch                                          */

/* Swap "k" in namespace "u" for the argument, reply with the old value. */
static int
user_swap(cache_txn_t *txn, const void *arg, size_t arg_len)
{
    char old[32], now[32];
    size_t len = 0, nlen = 0;
    int rc = cache_txn_get(txn, "u", "k", 1, old, sizeof(old), &len);

    if (rc != 0)
        return rc;
    rc = cache_txn_put(txn, "u", "k", 1, arg, arg_len, CACHE_TTL_NONE);
    if (rc != 0)
        return rc;
    /* Applied at once: the operation reads its own write. */
    rc = cache_txn_get(txn, "u", "k", 1, now, sizeof(now), &nlen);
    if (rc != 0 || nlen != arg_len || memcmp(now, arg, arg_len) != 0)
        return -EPROTO;
    if (cache_txn_reply(txn, "overwritten", 11) != 0)   /* last call wins */
        return -EPROTO;
    return cache_txn_reply(txn, old, len);
}

/* Runs the txn calls whose results the test checks; replies with them. */
static int
user_probe(cache_txn_t *txn, const void *arg, size_t arg_len)
{
    int rcs[10];
    char buf[4];
    size_t len = 0;

    (void)arg;
    (void)arg_len;
    rcs[0] = cache_txn_get(txn, NULL, "missing", 7, buf, sizeof(buf), &len);
    rcs[1] = cache_txn_put(txn, NULL, "p", 1, "0123456789", 10, 0);
    rcs[2] = cache_txn_put(txn, NULL, NULL, 1, "x", 1, CACHE_TTL_NONE);
    rcs[3] = cache_txn_put(txn, NULL, "p", 1, "0123456789", 10, LONG_TTL);
    rcs[4] = cache_txn_get(txn, NULL, "p", 1, buf, sizeof(buf), &len);
    rcs[5] = (int)len;
    rcs[6] = memcmp(buf, "0123", 4) == 0;
    rcs[7] = cache_txn_delete(txn, NULL, "gone", 4);
    rcs[8] = cache_txn_delete(txn, NULL, "gone", 4);
    rcs[9] = cache_txn_put(txn, "", "p", 1, "x", 1, CACHE_TTL_NONE);
    return cache_txn_reply(txn, rcs, sizeof(rcs));
}

static int
user_long_reply(cache_txn_t *txn, const void *arg, size_t arg_len)
{
    (void)arg;
    (void)arg_len;
    return cache_txn_reply(txn, "abcdefghijklmnopqrstuvwxyz", 26);
}

/* Put "partial", then fail with the errno in the (unaligned-copied) arg. */
static int
user_fail(cache_txn_t *txn, const void *arg, size_t arg_len)
{
    int err;

    if (arg_len != sizeof(err))
        return -EPROTO;
    memcpy(&err, arg, sizeof(err));
    if (cache_txn_put(txn, NULL, "partial", 7, "x", 1, CACHE_TTL_NONE) != 0)
        return -EPROTO;
    return err;
}

static int
user_put_arg(cache_txn_t *txn, const void *arg, size_t arg_len)
{
    return cache_txn_put(txn, NULL, "cast", 4, arg, arg_len, CACHE_TTL_NONE);
}

static atomic_int misaligned;

static int
align_fn(cache_txn_t *txn, const void *arg, size_t arg_len)
{
    (void)txn;
    if (arg_len > 0 && (uintptr_t)arg % _Alignof(max_align_t) != 0)
        atomic_fetch_add(&misaligned, 1);
    if (arg_len == 0 && arg != NULL)
        atomic_fetch_add(&misaligned, 1);
    return 0;
}

START_TEST(test_user_operation)
{
    cache_t *c;
    char buf[64];
    size_t len = 0;
    cache_op_t op = { .kind = CACHE_OP_USER, .fn = user_swap, .arg = "new", .arg_len = 3,
                      .buf = buf, .cap = sizeof(buf), .out_len = &len };

    fx_begin();
    c = cf_start((cache_opts_t){ 0 });
    /* The function's result is the call's. */
    ck_assert_int_eq(cache_call(c, &op, CALL_MS), -ENOENT);
    ck_assert_int_eq(put_s(c, "u", "k", "old", CACHE_TTL_NONE), 0);
    len = 0;
    ck_assert_int_eq(cache_call(c, &op, CALL_MS), 0);
    ck_assert_uint_eq(len, 3);
    ck_assert(memcmp(buf, "old", 3) == 0);
    expect_both(c, "u", "k", "new");

    /* txn calls and their errors. */
    {
        int rcs[10];

        ck_assert_int_eq(put_s(c, NULL, "gone", "x", CACHE_TTL_NONE), 0);
        op = (cache_op_t){ .kind = CACHE_OP_USER, .fn = user_probe, .buf = rcs,
                           .cap = sizeof(rcs), .out_len = &len };
        ck_assert_int_eq(cache_call(c, &op, CALL_MS), 0);
        ck_assert_uint_eq(len, sizeof(rcs));
        ck_assert_int_eq(rcs[0], -ENOENT);
        ck_assert_int_eq(rcs[1], -EINVAL);
        ck_assert_int_eq(rcs[2], -EINVAL);
        ck_assert_int_eq(rcs[3], 0);
        ck_assert_int_eq(rcs[4], -ENOBUFS);
        ck_assert_int_eq(rcs[5], 10);
        ck_assert_int_eq(rcs[6], 1);
        ck_assert_int_eq(rcs[7], 0);
        ck_assert_int_eq(rcs[8], -ENOENT);
        ck_assert_int_eq(rcs[9], -EINVAL);
        expect_both(c, NULL, "p", "0123456789");
        expect_ttl(c, NULL, "p", LONG_TTL);
        expect_both(c, NULL, "gone", NULL);
    }
    /* A reply longer than cap: out_len has its length, buf the first cap
     * bytes, nothing past cap is written. */
    memset(buf, 0xee, sizeof(buf));
    op = (cache_op_t){ .kind = CACHE_OP_USER, .fn = user_long_reply, .buf = buf, .cap = 5,
                       .out_len = &len };
    ck_assert_int_eq(cache_call(c, &op, CALL_MS), 0);
    ck_assert_uint_eq(len, 26);
    ck_assert(memcmp(buf, "abcde", 5) == 0);
    ck_assert_uint_eq((unsigned char)buf[5], 0xee);
    /* No reply buffer at all. */
    op.buf = NULL;
    op.cap = 0;
    ck_assert_int_eq(cache_call(c, &op, CALL_MS), 0);
    ck_assert_uint_eq(len, 26);
    /* A user error comes back as is (writes before it stay applied). */
    {
        int err = -EPERM;

        op = (cache_op_t){ .kind = CACHE_OP_USER, .fn = user_fail, .arg = &err,
                           .arg_len = sizeof(err) };
        ck_assert_int_eq(cache_call(c, &op, CALL_MS), -EPERM);
        expect_both(c, NULL, "partial", "x");
    }
    /* As a cast: the argument is copied before cache_cast returns. */
    {
        char arg[8] = "casted";

        op = (cache_op_t){ .kind = CACHE_OP_USER, .fn = user_put_arg, .arg = arg,
                           .arg_len = 6 };
        ck_assert_int_eq(cache_cast(c, &op), 0);
        memset(arg, 'Z', sizeof(arg));
        ck_assert_int_eq(cache_sync(c, CALL_MS), 0);
        expect_both(c, NULL, "cast", "casted");
    }
    /* arg is aligned to max_align_t (NULL when empty), called or cast,
     * whatever the namespace and length. */
    {
        static const char *nss[] = { NULL, "a", "abcde", "ns-7" };
        char arg[24] = "0123456789abcdefghijklm";
        size_t i, n;

        atomic_store(&misaligned, 0);
        for (i = 0; i < 4; i++) {
            for (n = 0; n <= sizeof(arg); n += 7) {
                op = (cache_op_t){ .kind = CACHE_OP_USER, .ns = nss[i], .fn = align_fn,
                                   .arg = n ? arg + 1 : NULL, .arg_len = n ? n - 1 : 0 };
                ck_assert_int_eq(cache_call(c, &op, CALL_MS), 0);
                ck_assert_int_eq(cache_cast(c, &op), 0);
            }
        }
        ck_assert_int_eq(cache_sync(c, CALL_MS), 0);
        ck_assert_int_eq(atomic_load(&misaligned), 0);
    }
    cf_finish(c);
    fx_end();
}
END_TEST

static atomic_int esrch_runs;

static int
esrch_fn(cache_txn_t *txn, const void *arg, size_t arg_len)
{
    (void)txn;
    (void)arg;
    (void)arg_len;
    atomic_fetch_add(&esrch_runs, 1);
    return -ESRCH;
}

/* A user operation's -ESRCH is its result, returned once, at once; it is
 * never read as "the worker exited".  (Supervised: test_cache
 * test_reg_user_op_esrch_supervised.) */
START_TEST(test_user_op_esrch_once)
{
    cache_t *c;
    cache_op_t op = { .kind = CACHE_OP_USER, .fn = esrch_fn };
    int64_t t0;

    fx_begin();
    c = cf_start((cache_opts_t){ 0 });
    atomic_store(&esrch_runs, 0);
    t0 = rh_now_ms();
    ck_assert_int_eq(cache_call(c, &op, CALL_MS), -ESRCH);
    ck_assert_msg(rh_now_ms() - t0 < CALL_MS / 2, "took %lld ms", (long long)(rh_now_ms() - t0));
    ck_assert_int_eq(atomic_load(&esrch_runs), 1);
    ck_assert_int_eq(cache_call(c, &op, ACTOR_INFINITY), -ESRCH);
    ck_assert_int_eq(atomic_load(&esrch_runs), 2);
    /* The cache is still up: nothing was taken for a dead worker. */
    ck_assert_int_eq(put_s(c, NULL, "k", "v", CACHE_TTL_NONE), 0);
    expect_both(c, NULL, "k", "v");
    ck_assert_uint_eq(stats_of(c).restarts, 0);
    cf_finish(c);
    fx_end();
}
END_TEST

typedef struct fetch_ctx {
    atomic_int calls;
    int err;
    int sleep;
    gate_t *gate;                 /* if set: compute waits for it */
} fetch_ctx_t;

static int
compute_fn(const void *key, size_t key_len, void *arg, void **value, size_t *value_len)
{
    fetch_ctx_t *fc = arg;
    char *v;

    atomic_fetch_add(&fc->calls, 1);
    if (fc->gate != NULL) {
        atomic_store(&fc->gate->entered, 1);
        while (!atomic_load(&fc->gate->open))
            rh_sleep_ms(1);
    }
    if (fc->sleep > 0)
        rh_sleep_ms(fc->sleep);
    if (fc->err != 0)
        return fc->err;
    v = malloc(9 + key_len);
    if (v == NULL)
        return -ENOMEM;
    memcpy(v, "computed:", 9);
    memcpy(v + 9, key, key_len);
    *value = v;
    *value_len = 9 + key_len;
    return 0;
}

typedef struct fetcher {
    cache_t *c;
    fetch_ctx_t *fc;
    pthread_barrier_t *bar;
    int rc;
    char buf[32];
    size_t len;
} fetcher_t;

static void *
fetcher_main(void *p)
{
    fetcher_t *ft = p;

    if (ft->bar != NULL)
        pthread_barrier_wait(ft->bar);
    ft->rc = cache_fetch(ft->c, NULL, "fk", 2, compute_fn, ft->fc, CACHE_TTL_NONE, ft->buf,
                         sizeof(ft->buf), &ft->len, CALL_MS);
    return NULL;
}

/* Four threads fetch "fk" at once. */
static void
fetch_round(cache_t *c, fetch_ctx_t *fc, int want_rc)
{
    fetcher_t ft[4];
    pthread_t th[4];
    pthread_barrier_t bar;
    int i;

    ck_assert_int_eq(pthread_barrier_init(&bar, NULL, 4), 0);
    for (i = 0; i < 4; i++) {
        memset(&ft[i], 0, sizeof(ft[i]));
        ft[i].c = c;
        ft[i].fc = fc;
        ft[i].bar = &bar;
        ck_assert_int_eq(pthread_create(&th[i], NULL, fetcher_main, &ft[i]), 0);
    }
    for (i = 0; i < 4; i++) {
        ck_assert_int_eq(pthread_join(th[i], NULL), 0);
        ck_assert_msg(ft[i].rc == want_rc, "fetcher %d: %d, want %d", i, ft[i].rc, want_rc);
        if (want_rc == 0)
            ck_assert(ft[i].len == 11 && memcmp(ft[i].buf, "computed:fk", 11) == 0);
    }
    pthread_barrier_destroy(&bar);
}

START_TEST(test_fetch_once)
{
    cache_t *c;
    fetch_ctx_t fc;
    char buf[32];
    size_t len = 0;

    fx_begin();
    c = cf_start((cache_opts_t){ 0 });
    /* The compute error reaches every caller; nothing is stored. */
    memset(&fc, 0, sizeof(fc));
    fc.err = -EIO;
    fc.sleep = 50;
    fetch_round(c, &fc, -EIO);
    ck_assert_int_eq(atomic_load(&fc.calls), 1);
    expect_both(c, NULL, "fk", NULL);
    /* Success: computed once, every caller has the value. */
    memset(&fc, 0, sizeof(fc));
    fc.sleep = 50;
    fetch_round(c, &fc, 0);
    ck_assert_int_eq(atomic_load(&fc.calls), 1);
    /* Stored: a later get sees it, a later fetch does not compute. */
    expect_both(c, NULL, "fk", "computed:fk");
    expect_ttl(c, NULL, "fk", CACHE_TTL_NONE);
    ck_assert_int_eq(cache_fetch(c, NULL, "fk", 2, compute_fn, &fc, CACHE_TTL_NONE, buf,
                                 sizeof(buf), &len, CALL_MS), 0);
    ck_assert(len == 11 && memcmp(buf, "computed:fk", 11) == 0);
    ck_assert_int_eq(atomic_load(&fc.calls), 1);
    /* -ENOBUFS like cache_get. */
    ck_assert_int_eq(cache_fetch(c, NULL, "fk", 2, compute_fn, &fc, CACHE_TTL_NONE, buf, 4,
                                 &len, CALL_MS), -ENOBUFS);
    ck_assert_uint_eq(len, 11);
    /* With a TTL. */
    fc.sleep = 0;
    ck_assert_int_eq(cache_fetch(c, "t", "tk", 2, compute_fn, &fc, LONG_TTL, buf, sizeof(buf),
                                 &len, CALL_MS), 0);
    expect_ttl(c, "t", "tk", LONG_TTL);
    ck_assert_int_eq(atomic_load(&fc.calls), 2);
    cf_finish(c);
    fx_end();
}
END_TEST

START_TEST(test_fetch_wait_timeout)
{
    cache_t *c;
    fetch_ctx_t fc;
    gate_t g;
    fetcher_t ft;
    pthread_t th;
    char buf[32];
    size_t len;

    fx_begin();
    c = cf_start((cache_opts_t){ 0 });
    memset(&fc, 0, sizeof(fc));
    gate_init(&g);
    fc.gate = &g;
    memset(&ft, 0, sizeof(ft));
    ft.c = c;
    ft.fc = &fc;
    ck_assert_int_eq(pthread_create(&th, NULL, fetcher_main, &ft), 0);
    wait_entered(&g);
    /* Another caller waits for that compute, up to its timeout. */
    ck_assert_int_eq(cache_fetch(c, NULL, "fk", 2, compute_fn, &fc, CACHE_TTL_NONE, buf,
                                 sizeof(buf), &len, 100), -ETIMEDOUT);
    atomic_store(&g.open, 1);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_int_eq(ft.rc, 0);
    ck_assert_int_eq(atomic_load(&fc.calls), 1);
    expect_both(c, NULL, "fk", "computed:fk");
    cf_finish(c);
    fx_end();
}
END_TEST

/* ------------------------------------------------------------------ */
/* sync: cache_sync reporting, stats                                    */

typedef struct sync_probe {
    cache_t *c;
    int rc;
} sync_probe_t;

static void *
other_sync_main(void *p)
{
    sync_probe_t *sp = p;

    sp->rc = cache_sync(sp->c, CALL_MS);
    return NULL;
}

/* A cast that fails when applied is reported by the sender's next
 * cache_sync as -EIO, once; -ENOENT (a delete, touch or user operation
 * finding nothing) is not a failure; another thread is not told.  The
 * failure every backend can produce is a cast user operation's error;
 * the backends' own (local -E2BIG over max_bytes, a Redis error reply)
 * are in test_cache and test_redis. */
START_TEST(test_sync_reports_failed_casts)
{
    cache_t *c;
    int err = -EPERM, enoent = -ENOENT;
    cache_op_t fail = { .kind = CACHE_OP_USER, .fn = user_fail, .arg = &err,
                        .arg_len = sizeof(err) };
    cache_op_t quiet = { .kind = CACHE_OP_USER, .fn = user_fail, .arg = &enoent,
                         .arg_len = sizeof(enoent) };
    cache_op_t del = { .kind = CACHE_OP_DELETE, .key = "missing", .key_len = 7 };
    cache_op_t touch = { .kind = CACHE_OP_TOUCH, .key = "missing", .key_len = 7 };
    sync_probe_t other;
    pthread_t th;

    fx_begin();
    c = cf_start((cache_opts_t){ 0 });
    ck_assert_int_eq(cache_sync(c, CALL_MS), 0);          /* nothing sent */
    ck_assert_int_eq(cache_cast(c, &del), 0);
    ck_assert_int_eq(cache_cast(c, &touch), 0);
    ck_assert_int_eq(cache_cast(c, &quiet), 0);
    ck_assert_int_eq(cache_sync(c, CALL_MS), 0);
    ck_assert_int_eq(cache_cast(c, &fail), 0);
    ck_assert_int_eq(cache_cast(c, &del), 0);
    /* Another thread sent nothing that failed. */
    other.c = c;
    other.rc = 1;
    ck_assert_int_eq(pthread_create(&th, NULL, other_sync_main, &other), 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_int_eq(other.rc, 0);
    ck_assert_int_eq(cache_sync(c, CALL_MS), -EIO);
    ck_assert_int_eq(cache_sync(c, CALL_MS), 0);         /* reported once */
    expect_both(c, NULL, "partial", "x");                 /* applied up to the error */
    cf_finish(c);
    fx_end();
}
END_TEST

/* The counters both backends promise: hits, misses, puts, deletes
 * (restarts 0).  Local also: entries and bytes of the table (a Redis
 * cache counts its near-cache there: test_redis). */
START_TEST(test_stats_counters)
{
    cache_t *c;
    cache_stats_t st;
    char buf[8];
    size_t len;
    cache_op_t g = { .kind = CACHE_OP_GET, .key = "a", .key_len = 1, .buf = buf,
                     .cap = sizeof(buf), .out_len = &len };

    fx_begin();
    c = cf_start((cache_opts_t){ 0 });
    st = stats_of(c);
    ck_assert_uint_eq(st.hits, 0);
    ck_assert_uint_eq(st.misses, 0);
    ck_assert_uint_eq(st.puts, 0);
    ck_assert_uint_eq(st.deletes, 0);
    ck_assert_uint_eq(st.expirations, 0);
    ck_assert_uint_eq(st.evictions, 0);
    ck_assert_uint_eq(st.entries, 0);
    ck_assert_uint_eq(st.bytes, 0);
    ck_assert_uint_eq(st.restarts, 0);

    ck_assert_int_eq(put_s(c, NULL, "a", "1", CACHE_TTL_NONE), 0);
    ck_assert_int_eq(put_s(c, NULL, "b", "22", CACHE_TTL_NONE), 0);
    ck_assert_int_eq(put_s(c, NULL, "a", "333", CACHE_TTL_NONE), 0);   /* replace */
    ck_assert_int_eq(put_s(c, NULL, "c", "4", CACHE_TTL_NONE), 0);
    expect_value(c, NULL, "a", "333");                                  /* hit */
    expect_value(c, NULL, "b", "22");                                   /* hit */
    expect_missing(c, NULL, "zz");                                      /* miss */
    ck_assert_int_eq(cache_call(c, &g, CALL_MS), 0);                    /* hit */
    ck_assert_int_eq(del_s(c, NULL, "b"), 0);
    ck_assert_int_eq(del_s(c, NULL, "b"), -ENOENT);                     /* no delete */
    expect_missing(c, NULL, "b");                                       /* miss */
    ck_assert_int_eq(put_s(c, NULL, "", "x", CACHE_TTL_NONE), -EINVAL); /* no put */
    {
        int64_t ttl;
        cache_record_t *r;
        size_t n;

        /* cache_ttl and cache_all count neither hits nor misses. */
        ck_assert_int_eq(cache_ttl(c, NULL, "a", 1, &ttl), 0);
        ck_assert_int_eq(cache_ttl(c, NULL, "zz", 2, &ttl), -ENOENT);
        ck_assert_int_eq(cache_all(c, NULL, NULL, &r, &n, CALL_MS), 0);
        cache_records_free(r);
    }
    st = stats_of(c);
    ck_assert_uint_eq(st.puts, 4);
    ck_assert_uint_eq(st.hits, 3);
    ck_assert_uint_eq(st.misses, 2);
    ck_assert_uint_eq(st.deletes, 1);
    ck_assert_uint_eq(st.evictions, 0);
    ck_assert_uint_eq(st.restarts, 0);
    if (!redis_backend) {
        ck_assert_uint_eq(st.entries, 2);
        ck_assert_uint_eq(st.bytes, 1 + 3 + 1 + 1);
        ck_assert_uint_eq(st.mailbox_depth, 0);
    }
    ck_assert_int_eq(del_s(c, NULL, "a"), 0);
    ck_assert_int_eq(del_s(c, NULL, "c"), 0);
    st = stats_of(c);
    ck_assert_uint_eq(st.deletes, 3);
    if (!redis_backend) {
        ck_assert_uint_eq(st.bytes, 0);
        ck_assert_uint_eq(st.entries, 0);
    }
    cf_finish(c);
    fx_end();
}
END_TEST

/* ------------------------------------------------------------------ */
/* bad_input                                                            */

/* Keys, values, namespaces, TTLs at every entry point: -EINVAL, nothing
 * changed; for a sync and an async cache. */
static void
bad_input_kv(int async)
{
    cache_t *c;
    char small[4] = "abc", buf[8], longns[CACHE_NS_MAX + 2];
    size_t len;
    int64_t ttl;
    cache_op_t op;
    uint64_t puts, deletes;

    memset(longns, 'n', sizeof(longns) - 1);
    longns[sizeof(longns) - 1] = '\0';
    fx_begin();
    c = cf_start((cache_opts_t){ .async_writes = async });
    ck_assert_int_eq(put_s(c, NULL, "k", "v", CACHE_TTL_NONE), 0);
    ck_assert_int_eq(put_s(c, "ns", "k", "nsv", CACHE_TTL_NONE), 0);
    ck_assert_int_eq(cache_sync(c, CALL_MS), 0);
    puts = stats_of(c).puts;
    deletes = stats_of(c).deletes;

    /* NULL cache. */
    ck_assert_int_eq(cache_put(NULL, NULL, "k", 1, "v", 1, CACHE_TTL_NONE), -EINVAL);
    ck_assert_int_eq(cache_delete(NULL, NULL, "k", 1), -EINVAL);
    ck_assert_int_eq(cache_get(NULL, NULL, "k", 1, buf, sizeof(buf), &len), -EINVAL);
    ck_assert_int_eq(cache_ttl(NULL, NULL, "k", 1, &ttl), -EINVAL);
    ck_assert_int_eq(cache_touch(NULL, NULL, "k", 1), -EINVAL);
    ck_assert_int_eq(cache_persist(NULL, NULL, "k", 1), -EINVAL);
    ck_assert_int_eq(cache_expire(NULL, NULL, "k", 1, 10), -EINVAL);
    ck_assert_int_eq(cache_sync(NULL, 100), -EINVAL);
    /* Keys: NULL, empty, too long (a bogus length over a 4-byte buffer:
     * validation must reject it before reading). */
    ck_assert_int_eq(cache_put(c, NULL, NULL, 1, "x", 1, CACHE_TTL_NONE), -EINVAL);
    ck_assert_int_eq(cache_put(c, NULL, NULL, 0, "x", 1, CACHE_TTL_NONE), -EINVAL);
    ck_assert_int_eq(cache_put(c, NULL, "k", 0, "x", 1, CACHE_TTL_NONE), -EINVAL);
    ck_assert_int_eq(cache_put(c, NULL, small, CACHE_KEY_MAX + 1, "x", 1, CACHE_TTL_NONE),
                     -EINVAL);
    ck_assert_int_eq(cache_put(c, NULL, small, SIZE_MAX, "x", 1, CACHE_TTL_NONE), -EINVAL);
    ck_assert_int_eq(cache_get(c, NULL, NULL, 1, buf, sizeof(buf), &len), -EINVAL);
    ck_assert_int_eq(cache_get(c, NULL, "k", 0, buf, sizeof(buf), &len), -EINVAL);
    ck_assert_int_eq(cache_get(c, NULL, small, CACHE_KEY_MAX + 1, buf, sizeof(buf), &len),
                     -EINVAL);
    ck_assert_int_eq(cache_delete(c, NULL, NULL, 1), -EINVAL);
    ck_assert_int_eq(cache_delete(c, NULL, "k", 0), -EINVAL);
    ck_assert_int_eq(cache_delete(c, NULL, small, CACHE_KEY_MAX + 1), -EINVAL);
    ck_assert_int_eq(cache_ttl(c, NULL, "k", 0, &ttl), -EINVAL);
    ck_assert_int_eq(cache_ttl(c, NULL, small, CACHE_KEY_MAX + 1, &ttl), -EINVAL);
    ck_assert_int_eq(cache_touch(c, NULL, "k", 0), -EINVAL);
    ck_assert_int_eq(cache_persist(c, NULL, NULL, 1), -EINVAL);
    ck_assert_int_eq(cache_expire(c, NULL, small, CACHE_KEY_MAX + 1, 10), -EINVAL);
    /* Values: NULL with a length, too long (bogus length, small buffer). */
    ck_assert_int_eq(cache_put(c, NULL, "k", 1, NULL, 1, CACHE_TTL_NONE), -EINVAL);
    ck_assert_int_eq(cache_put(c, NULL, "k", 1, small, CACHE_VALUE_MAX + 1, CACHE_TTL_NONE),
                     -EINVAL);
    ck_assert_int_eq(cache_put(c, NULL, "k", 1, small, SIZE_MAX, CACHE_TTL_NONE), -EINVAL);
    /* Output arguments. */
    ck_assert_int_eq(cache_get(c, NULL, "k", 1, NULL, 5, &len), -EINVAL);
    ck_assert_int_eq(cache_ttl(c, NULL, "k", 1, NULL), -EINVAL);
    /* TTLs: 0 and negatives other than CACHE_TTL_DEFAULT. */
    ck_assert_int_eq(cache_put(c, NULL, "k", 1, "x", 1, 0), -EINVAL);
    ck_assert_int_eq(cache_put(c, NULL, "k", 1, "x", 1, -1), -EINVAL);
    ck_assert_int_eq(cache_put(c, NULL, "k", 1, "x", 1, -1000), -EINVAL);
    ck_assert_int_eq(cache_put(c, NULL, "k", 1, "x", 1, INT64_MIN + 1), -EINVAL);
    ck_assert_int_eq(cache_put(c, NULL, "new", 3, "x", 1, 0), -EINVAL);
    ck_assert_int_eq(cache_expire(c, NULL, "k", 1, 0), -EINVAL);
    ck_assert_int_eq(cache_expire(c, NULL, "k", 1, -1), -EINVAL);
    /* Namespaces: empty, longer than CACHE_NS_MAX. */
    ck_assert_int_eq(cache_put(c, "", "k", 1, "x", 1, CACHE_TTL_NONE), -EINVAL);
    ck_assert_int_eq(cache_put(c, longns, "k", 1, "x", 1, CACHE_TTL_NONE), -EINVAL);
    ck_assert_int_eq(cache_get(c, "", "k", 1, buf, sizeof(buf), &len), -EINVAL);
    ck_assert_int_eq(cache_get(c, longns, "k", 1, buf, sizeof(buf), &len), -EINVAL);
    ck_assert_int_eq(cache_delete(c, "", "k", 1), -EINVAL);
    ck_assert_int_eq(cache_delete(c, longns, "k", 1), -EINVAL);
    ck_assert_int_eq(cache_ttl(c, longns, "k", 1, &ttl), -EINVAL);
    ck_assert_int_eq(cache_touch(c, "", "k", 1), -EINVAL);
    /* The same through cache_call and cache_cast. */
    op = (cache_op_t){ .kind = CACHE_OP_PUT, .key = small, .key_len = 1, .value = small,
                       .value_len = CACHE_VALUE_MAX + 1, .ttl_ms = CACHE_TTL_NONE };
    ck_assert_int_eq(cache_call(c, &op, 100), -EINVAL);
    ck_assert_int_eq(cache_cast(c, &op), -EINVAL);
    op.value_len = 1;
    op.key_len = CACHE_KEY_MAX + 1;
    ck_assert_int_eq(cache_call(c, &op, 100), -EINVAL);
    ck_assert_int_eq(cache_cast(c, &op), -EINVAL);
    op.key_len = 1;
    op.ttl_ms = 0;
    ck_assert_int_eq(cache_call(c, &op, 100), -EINVAL);
    ck_assert_int_eq(cache_cast(c, &op), -EINVAL);
    op.ttl_ms = -2;
    ck_assert_int_eq(cache_cast(c, &op), -EINVAL);
    op.ttl_ms = CACHE_TTL_NONE;
    op.ns = longns;
    ck_assert_int_eq(cache_call(c, &op, 100), -EINVAL);
    ck_assert_int_eq(cache_cast(c, &op), -EINVAL);
    op.ns = "";
    ck_assert_int_eq(cache_cast(c, &op), -EINVAL);
    op = (cache_op_t){ .kind = CACHE_OP_DELETE, .key = NULL, .key_len = 1 };
    ck_assert_int_eq(cache_call(c, &op, 100), -EINVAL);
    ck_assert_int_eq(cache_cast(c, &op), -EINVAL);
    op = (cache_op_t){ .kind = CACHE_OP_EXPIRE, .key = "k", .key_len = 1, .ttl_ms = 0 };
    ck_assert_int_eq(cache_call(c, &op, 100), -EINVAL);
    ck_assert_int_eq(cache_cast(c, &op), -EINVAL);

    /* Nothing changed. */
    ck_assert_int_eq(cache_sync(c, CALL_MS), 0);
    ck_assert_uint_eq(stats_of(c).puts, puts);
    ck_assert_uint_eq(stats_of(c).deletes, deletes);
    expect_both(c, NULL, "k", "v");
    expect_both(c, "ns", "k", "nsv");
    expect_both(c, NULL, "new", NULL);
    expect_ttl(c, NULL, "k", CACHE_TTL_NONE);
    cf_finish(c);
    fx_end();
}

START_TEST(test_bad_input_keys_values)
{
    bad_input_kv(0);
}
END_TEST

START_TEST(test_bad_input_keys_values_async)
{
    bad_input_kv(1);
}
END_TEST

static int
never_called(const void *key, size_t key_len, void *arg, void **value, size_t *value_len)
{
    (void)key;
    (void)key_len;
    (void)value;
    (void)value_len;
    atomic_fetch_add((atomic_int *)arg, 1);
    return -EIO;
}

START_TEST(test_bad_input_ops)
{
    cache_t *c;
    char buf[8];
    size_t len = 0;
    cache_record_t *r = NULL;
    size_t n = 0;
    cache_op_t op;
    atomic_int calls;
    static const cache_op_kind_t no_cast[] = { CACHE_OP_GET, CACHE_OP_TTL, CACHE_OP_SYNC };
    size_t i;
    uint64_t puts;

    atomic_store(&calls, 0);
    fx_begin();
    c = cf_start((cache_opts_t){ 0 });
    ck_assert_int_eq(put_s(c, NULL, "k", "v", CACHE_TTL_NONE), 0);
    ck_assert_int_eq(put_s(c, "ns", "k", "nsv", CACHE_TTL_NONE), 0);
    puts = stats_of(c).puts;

    /* NULL op, NULL cache. */
    op = (cache_op_t){ .kind = CACHE_OP_SYNC };
    ck_assert_int_eq(cache_call(c, NULL, 100), -EINVAL);
    ck_assert_int_eq(cache_cast(c, NULL), -EINVAL);
    ck_assert_int_eq(cache_call(NULL, &op, 100), -EINVAL);
    ck_assert_int_eq(cache_cast(NULL, &op), -EINVAL);
    /* Invalid kinds. */
    op = (cache_op_t){ .kind = (cache_op_kind_t)0, .key = "k", .key_len = 1 };
    ck_assert_int_eq(cache_call(c, &op, 100), -EINVAL);
    ck_assert_int_eq(cache_cast(c, &op), -EINVAL);
    op.kind = (cache_op_kind_t)999;
    ck_assert_int_eq(cache_call(c, &op, 100), -EINVAL);
    ck_assert_int_eq(cache_cast(c, &op), -EINVAL);
    op.kind = (cache_op_kind_t)100;    /* the library's internal "all" request */
    ck_assert_int_eq(cache_call(c, &op, 100), -EINVAL);
    ck_assert_int_eq(cache_cast(c, &op), -EINVAL);
    op.kind = (cache_op_kind_t)-1;
    ck_assert_int_eq(cache_call(c, &op, 100), -EINVAL);
    /* GET, TTL and SYNC have no meaning as casts. */
    for (i = 0; i < sizeof(no_cast) / sizeof(no_cast[0]); i++) {
        op = (cache_op_t){ .kind = no_cast[i], .key = "k", .key_len = 1, .buf = buf,
                           .cap = sizeof(buf), .out_len = &len };
        ck_assert_msg(cache_cast(c, &op) == -EINVAL, "cast of kind %d", (int)no_cast[i]);
    }
    /* GET: buf NULL with cap > 0. */
    op = (cache_op_t){ .kind = CACHE_OP_GET, .key = "k", .key_len = 1, .buf = NULL, .cap = 4 };
    ck_assert_int_eq(cache_call(c, &op, 100), -EINVAL);
    /* USER: no function; arg NULL with a length; buf NULL with cap > 0. */
    op = (cache_op_t){ .kind = CACHE_OP_USER };
    ck_assert_int_eq(cache_call(c, &op, 100), -EINVAL);
    ck_assert_int_eq(cache_cast(c, &op), -EINVAL);
    op = (cache_op_t){ .kind = CACHE_OP_USER, .fn = user_put_arg, .arg = NULL, .arg_len = 5 };
    ck_assert_int_eq(cache_call(c, &op, 100), -EINVAL);
    ck_assert_int_eq(cache_cast(c, &op), -EINVAL);
    op = (cache_op_t){ .kind = CACHE_OP_USER, .fn = user_long_reply, .buf = NULL, .cap = 4 };
    ck_assert_int_eq(cache_call(c, &op, 100), -EINVAL);
    /* EXPIRE with CACHE_TTL_DEFAULT. */
    op = (cache_op_t){ .kind = CACHE_OP_EXPIRE, .key = "k", .key_len = 1,
                       .ttl_ms = CACHE_TTL_DEFAULT };
    ck_assert_int_eq(cache_call(c, &op, 100), -EINVAL);
    /* cache_all. */
    ck_assert_int_eq(cache_all(NULL, NULL, "*", &r, &n, 100), -EINVAL);
    ck_assert_int_eq(cache_all(c, NULL, "*", NULL, &n, 100), -EINVAL);
    ck_assert_int_eq(cache_all(c, NULL, "*", &r, NULL, 100), -EINVAL);
    ck_assert_int_eq(cache_all(c, "", "*", &r, &n, 100), -EINVAL);
    cache_records_free(NULL);
    /* cache_fetch. */
    ck_assert_int_eq(cache_fetch(NULL, NULL, "x", 1, never_called, &calls, CACHE_TTL_NONE, buf,
                                 sizeof(buf), &len, 100), -EINVAL);
    ck_assert_int_eq(cache_fetch(c, NULL, "x", 1, NULL, NULL, CACHE_TTL_NONE, buf,
                                 sizeof(buf), &len, 100), -EINVAL);
    ck_assert_int_eq(cache_fetch(c, NULL, NULL, 1, never_called, &calls, CACHE_TTL_NONE, buf,
                                 sizeof(buf), &len, 100), -EINVAL);
    ck_assert_int_eq(cache_fetch(c, NULL, "x", 0, never_called, &calls, CACHE_TTL_NONE, buf,
                                 sizeof(buf), &len, 100), -EINVAL);
    ck_assert_int_eq(cache_fetch(c, NULL, "x", 1, never_called, &calls, 0, buf,
                                 sizeof(buf), &len, 100), -EINVAL);
    ck_assert_int_eq(cache_fetch(c, NULL, "x", 1, never_called, &calls, -5, buf,
                                 sizeof(buf), &len, 100), -EINVAL);
    ck_assert_int_eq(cache_fetch(c, NULL, "x", 1, never_called, &calls, CACHE_TTL_NONE, NULL,
                                 4, &len, 100), -EINVAL);
    ck_assert_int_eq(cache_fetch(c, "", "x", 1, never_called, &calls, CACHE_TTL_NONE, buf,
                                 sizeof(buf), &len, 100), -EINVAL);
    ck_assert_int_eq(atomic_load(&calls), 0);
    /* Stats, txn functions outside an operation, handles. */
    ck_assert_int_eq(cache_stats(c, NULL), -EINVAL);
    {
        cache_stats_t st;

        ck_assert_int_eq(cache_stats(NULL, &st), -EINVAL);
    }
    ck_assert_int_eq(cache_txn_get(NULL, NULL, "k", 1, buf, sizeof(buf), &len), -EINVAL);
    ck_assert_int_eq(cache_txn_put(NULL, NULL, "k", 1, "v", 1, CACHE_TTL_NONE), -EINVAL);
    ck_assert_int_eq(cache_txn_delete(NULL, NULL, "k", 1), -EINVAL);
    ck_assert_int_eq(cache_txn_reply(NULL, "x", 1), -EINVAL);
    ck_assert_int_eq(cache_stop(NULL, 100), -EINVAL);
    ck_assert_ptr_null(cache_worker(NULL));
    ck_assert_ptr_null(cache_retain(NULL));
    cache_release(NULL);
    {
        actor_t *w = (actor_t *)1;

        ck_assert_int_eq(cache_child_start(NULL, &w), -EINVAL);
        ck_assert_ptr_null(w);
        ck_assert_int_eq(cache_child_start(c, NULL), -EINVAL);
    }
    ck_assert_ptr_nonnull(cache_strerror(-E2BIG));
    ck_assert_ptr_nonnull(cache_strerror(-ESRCH));
    ck_assert_ptr_nonnull(cache_strerror(0));
    ck_assert_ptr_nonnull(cache_strerror(12345));
    ck_assert_ptr_nonnull(cache_strerror(INT32_MIN));

    ck_assert_int_eq(cache_sync(c, CALL_MS), 0);
    ck_assert_uint_eq(stats_of(c).puts, puts);
    expect_both(c, NULL, "k", "v");
    expect_both(c, "ns", "k", "nsv");
    cf_finish(c);
    fx_end();
}
END_TEST

/* Bad cache options, on top of the backend's: -EINVAL, *out NULL, through
 * cache_start and cache_new; the limits themselves are accepted. */
START_TEST(test_bad_opts)
{
    cache_t *c = (cache_t *)1;
    cache_opts_t o;
    char longns[CACHE_NS_MAX + 2];
    static const int64_t bad_ttls[] = { -1, -1000, INT64_MIN, INT64_MIN + 1 };
    size_t i;

    memset(longns, 'n', sizeof(longns) - 1);
    longns[sizeof(longns) - 1] = '\0';
    fx_begin();
    for (i = 0; i < sizeof(bad_ttls) / sizeof(bad_ttls[0]); i++) {
        o = cf_opts((cache_opts_t){ .default_ttl_ms = bad_ttls[i] });
        c = (cache_t *)1;
        ck_assert_int_eq(cache_start(&o, &c), -EINVAL);
        ck_assert_ptr_null(c);
        c = (cache_t *)1;
        ck_assert_int_eq(cache_new(&o, &c), -EINVAL);
        ck_assert_ptr_null(c);
    }
#define BAD_OPTS(...)                                                  \
    do {                                                               \
        o = cf_opts((cache_opts_t){ __VA_ARGS__ });                    \
        c = (cache_t *)1;                                              \
        ck_assert_int_eq(cache_start(&o, &c), -EINVAL);                \
        ck_assert_ptr_null(c);                                         \
        c = (cache_t *)1;                                              \
        ck_assert_int_eq(cache_new(&o, &c), -EINVAL);                  \
        ck_assert_ptr_null(c);                                         \
    } while (0)
    BAD_OPTS(.async_writes = 2);
    BAD_OPTS(.async_writes = -1);
    BAD_OPTS(.default_ns = "");
    BAD_OPTS(.default_ns = longns);
    BAD_OPTS(.name = "");
#undef BAD_OPTS
    o = cf_opts((cache_opts_t){ 0 });
    ck_assert_int_eq(cache_start(&o, NULL), -EINVAL);
    ck_assert_int_eq(cache_new(&o, NULL), -EINVAL);
    ck_assert_int_eq(cache_start(NULL, NULL), -EINVAL);
    /* Valid edge values are accepted. */
    longns[CACHE_NS_MAX] = '\0';
    c = cf_start((cache_opts_t){ .default_ns = longns });
    ck_assert_int_eq(put_s(c, NULL, "k", "v", CACHE_TTL_NONE), 0);
    expect_value(c, longns, "k", "v");
    cf_finish(c);
    fx_end();
}
END_TEST

/* ------------------------------------------------------------------ */
/* lifecycle: ops after stop, names                                     */

START_TEST(test_ops_after_stop)
{
    cache_t *c;
    char buf[8];
    size_t len = 9;
    int64_t ttl;
    cache_record_t *r = (cache_record_t *)1;
    size_t n = 9;
    atomic_int calls;
    cache_op_t op;
    cache_stats_t st;
    actor_t *w;
    static const cache_op_kind_t kinds[] = {
        CACHE_OP_PUT, CACHE_OP_GET, CACHE_OP_DELETE, CACHE_OP_EXPIRE, CACHE_OP_TOUCH,
        CACHE_OP_PERSIST, CACHE_OP_TTL, CACHE_OP_USER, CACHE_OP_SYNC, CACHE_OP_PUT_BATCH,
    };
    size_t i;

    atomic_store(&calls, 0);
    fx_begin();
    c = cf_start((cache_opts_t){ .async_writes = 1 });
    ck_assert_int_eq(put_s(c, NULL, "k", "v", CACHE_TTL_NONE), 0);
    ck_assert_int_eq(cache_sync(c, CALL_MS), 0);
    w = cache_worker(c);
    ck_assert_ptr_nonnull(w);
    ck_assert_int_eq(cache_stop(c, CALL_MS), 0);
    ck_assert_int_eq(actor_wait(w, CALL_MS, NULL), 0);
    actor_release(w);

    ck_assert_int_eq(put_s(c, NULL, "k", "v", CACHE_TTL_NONE), -ESRCH);
    ck_assert_int_eq(del_s(c, NULL, "k"), -ESRCH);
    ck_assert_int_eq(cache_get(c, NULL, "k", 1, buf, sizeof(buf), &len), -ESRCH);
    ck_assert_int_eq(cache_ttl(c, NULL, "k", 1, &ttl), -ESRCH);
    ck_assert_int_eq(cache_touch(c, NULL, "k", 1), -ESRCH);
    ck_assert_int_eq(cache_persist(c, NULL, "k", 1), -ESRCH);
    ck_assert_int_eq(cache_expire(c, NULL, "k", 1, 10), -ESRCH);
    ck_assert_int_eq(cache_sync(c, 100), -ESRCH);
    ck_assert_int_eq(cache_all(c, NULL, "*", &r, &n, 100), -ESRCH);
    ck_assert_int_eq(cache_fetch(c, NULL, "k", 1, never_called, &calls, CACHE_TTL_NONE, buf,
                                 sizeof(buf), &len, 100), -ESRCH);
    ck_assert_int_eq(cache_fetch(c, NULL, "new", 3, never_called, &calls, CACHE_TTL_NONE,
                                 buf, sizeof(buf), &len, 100), -ESRCH);
    ck_assert_int_eq(atomic_load(&calls), 0);
    for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        op = (cache_op_t){ .kind = kinds[i], .key = "k", .key_len = 1, .value = "v",
                           .value_len = 1, .ttl_ms = 5, .fn = user_long_reply };
        ck_assert_msg(cache_call(c, &op, 100) == -ESRCH, "call kind %d", (int)kinds[i]);
        if (kinds[i] != CACHE_OP_GET && kinds[i] != CACHE_OP_TTL && kinds[i] != CACHE_OP_SYNC)
            ck_assert_msg(cache_cast(c, &op) == -ESRCH, "cast kind %d", (int)kinds[i]);
    }
    ck_assert_ptr_null(cache_worker(c));
    /* The last figures stay readable. */
    st = stats_of(c);
    ck_assert_uint_eq(st.puts, 1);
    ck_assert_uint_eq(st.connected, 0);
    ck_assert_int_eq(cache_stop(c, 100), -ESRCH);
    /* The handle itself stays valid until released. */
    ck_assert_ptr_eq(cache_retain(c), c);
    cache_release(c);
    cache_release(c);
    fx_end();
}
END_TEST

START_TEST(test_names)
{
    cache_opts_t o;
    cache_t *c = NULL, *d = NULL, *x = (cache_t *)1, *e = NULL;
    char longname[ACTOR_NAME_MAX + 2];

    fx_begin();
    c = cf_start((cache_opts_t){ .name = "named-cache" });
    o = cf_opts((cache_opts_t){ .name = "named-cache" });
    /* Found by name: the same cache, a new reference. */
    ck_assert_int_eq(cache_lookup("named-cache", &d), 0);
    ck_assert_ptr_eq(c, d);
    ck_assert_int_eq(put_s(d, NULL, "k", "v", CACHE_TTL_NONE), 0);
    cache_release(d);
    expect_value(c, NULL, "k", "v");
    /* Duplicate: -EEXIST, *out NULL; also through cache_new. */
    ck_assert_int_eq(cache_start(&o, &x), -EEXIST);
    ck_assert_ptr_null(x);
    x = (cache_t *)1;
    ck_assert_int_eq(cache_new(&o, &x), -EEXIST);
    ck_assert_ptr_null(x);
    ck_assert_int_eq(cache_lookup("no-such-cache", &d), -ENOENT);
    /* Released by cache_stop, while the old handle is still held. */
    ck_assert_int_eq(cache_stop(c, CALL_MS), 0);
    ck_assert_int_eq(cache_lookup("named-cache", &d), -ENOENT);
    e = cf_start((cache_opts_t){ .name = "named-cache" });
    ck_assert_ptr_ne(e, c);
    ck_assert_int_eq(cache_lookup("named-cache", &d), 0);
    ck_assert_ptr_eq(d, e);
    cache_release(d);
    cache_release(c);
    cf_finish(e);
    ck_assert_int_eq(cache_lookup("named-cache", &d), -ENOENT);
    /* Bad names. */
    memset(longname, 'n', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    ck_assert_int_eq(cache_lookup("", &d), -EINVAL);
    ck_assert_int_eq(cache_lookup(longname, &d), -EINVAL);
    ck_assert_int_eq(cache_lookup(NULL, &d), -EINVAL);
    ck_assert_int_eq(cache_lookup("named-cache", NULL), -EINVAL);
    o.name = longname;
    ck_assert_int_eq(cache_start(&o, &x), -EINVAL);
    /* The longest name is fine. */
    longname[ACTOR_NAME_MAX] = '\0';
    x = cf_start((cache_opts_t){ .name = longname });
    ck_assert_int_eq(cache_lookup(longname, &d), 0);
    cache_release(d);
    cf_finish(x);
    fx_end();
}
END_TEST

/* Dropping the last reference of a named cache never stopped (created
 * with cache_new, no worker yet): a lookup must not reach freed memory.
 * It may find the (still live) cache, or nothing. */
START_TEST(test_names_release_without_stop)
{
    cache_opts_t o = { .name = "orphan" };
    cache_t *c = NULL, *d = NULL;
    int rc;

    fx_begin();
    if (redis_backend)
        o = cf_opts(o);   /* local: no clock, which the orphan might keep */
    ck_assert_int_eq(cache_new(&o, &c), 0);
    cache_release(c);
    rc = cache_lookup("orphan", &d);
    ck_assert_msg(rc == 0 || rc == -ENOENT, "lookup: %d", rc);
    if (rc == 0) {
        cache_stats_t st;

        ck_assert_msg(cache_stats(d, &st) == 0,
                      "cache_lookup returned a handle to a freed cache");
        ck_assert_int_eq(cache_stop(d, CALL_MS), 0);
        cache_release(d);
    }
    fx_end();
}
END_TEST

/* ------------------------------------------------------------------ */
/* concurrency                                                          */

#define CONC_THREADS 4
#define CONC_ROUNDS 150

static int
incr_fn(cache_txn_t *txn, const void *arg, size_t arg_len)
{
    uint64_t n = 0;
    size_t len = 0;
    int rc = cache_txn_get(txn, "conc", "ctr", 3, &n, sizeof(n), &len);

    (void)arg;
    (void)arg_len;
    if (rc == -ENOENT)
        n = 0;
    else if (rc != 0 || len != sizeof(n))
        return rc != 0 ? rc : -EPROTO;
    n++;
    return cache_txn_put(txn, "conc", "ctr", 3, &n, sizeof(n), CACHE_TTL_NONE);
}

typedef struct worker_arg {
    cache_t *c;
    int id;
    int failures;
    char first[160];
} worker_arg_t;

static void
conc_fail(worker_arg_t *wa, const char *what, int rc)
{
    if (wa->failures++ == 0)
        snprintf(wa->first, sizeof(wa->first), "thread %d: %s: %d (%s)", wa->id, what, rc,
                 cache_strerror(rc));
}

/* Each thread: puts (calls and casts), reads back its own keys, deletes,
 * batches, and increments the shared counter by call and by cast. */
static void *
conc_main(void *p)
{
    worker_arg_t *wa = p;
    cache_t *c = wa->c;
    cache_op_t incr = { .kind = CACHE_OP_USER, .ns = "conc", .fn = incr_fn };
    int i, rc;

    for (i = 0; i < CONC_ROUNDS; i++) {
        char key[32], val[32], buf[32];
        size_t len = 0;
        cache_op_t put;

        snprintf(key, sizeof(key), "t%d:k%d", wa->id, i % 16);
        snprintf(val, sizeof(val), "t%d:v%d", wa->id, i);
        put = (cache_op_t){ .kind = CACHE_OP_PUT, .ns = "conc", .key = key,
                            .key_len = strlen(key), .value = val, .value_len = strlen(val),
                            .ttl_ms = CACHE_TTL_NONE };
        rc = i % 2 ? cache_cast(c, &put) : cache_call(c, &put, CALL_MS);
        if (rc == 0 && i % 2)
            rc = cache_sync(c, CALL_MS);
        if (rc != 0) {
            conc_fail(wa, "put", rc);
            continue;
        }
        /* Its own write, seen at once (after the sync, for a cast). */
        rc = cache_get(c, "conc", key, strlen(key), buf, sizeof(buf), &len);
        if (rc != 0 || len != strlen(val) || memcmp(buf, val, len) != 0)
            conc_fail(wa, "read back", rc != 0 ? rc : -EPROTO);
        rc = i % 3 == 0 ? cache_cast(c, &incr) : cache_call(c, &incr, CALL_MS);
        if (rc != 0)
            conc_fail(wa, "increment", rc);
        if (i % 10 == 9) {
            rc = cache_delete(c, "conc", key, strlen(key));
            if (rc != 0)
                conc_fail(wa, "delete", rc);
            rc = cache_get(c, "conc", key, strlen(key), buf, sizeof(buf), &len);
            if (rc != -ENOENT)
                conc_fail(wa, "read after delete", rc == 0 ? -EPROTO : rc);
        }
    }
    rc = cache_sync(c, CALL_MS);
    if (rc != 0)
        conc_fail(wa, "final sync", rc);
    return NULL;
}

START_TEST(test_concurrent_writers_increments)
{
    cache_t *c;
    worker_arg_t wa[CONC_THREADS];
    pthread_t th[CONC_THREADS];
    uint64_t n = 0;
    size_t len = 0;
    cache_op_t g = { .kind = CACHE_OP_GET, .ns = "conc", .key = "ctr", .key_len = 3,
                     .buf = &n, .cap = sizeof(n), .out_len = &len };
    int i;

    fx_begin();
    c = cf_start((cache_opts_t){ 0 });
    for (i = 0; i < CONC_THREADS; i++) {
        memset(&wa[i], 0, sizeof(wa[i]));
        wa[i].c = c;
        wa[i].id = i;
        ck_assert_int_eq(pthread_create(&th[i], NULL, conc_main, &wa[i]), 0);
    }
    for (i = 0; i < CONC_THREADS; i++) {
        ck_assert_int_eq(pthread_join(th[i], NULL), 0);
        ck_assert_msg(wa[i].failures == 0, "%d failures, first: %s", wa[i].failures,
                      wa[i].first);
    }
    /* Every increment applied exactly once. */
    ck_assert_int_eq(cache_call(c, &g, CALL_MS), 0);
    ck_assert_uint_eq(len, sizeof(n));
    ck_assert_uint_eq(n, (uint64_t)CONC_THREADS * CONC_ROUNDS);
    ck_assert_int_eq(cache_get(c, "conc", "ctr", 3, &n, sizeof(n), &len), 0);
    ck_assert_uint_eq(n, (uint64_t)CONC_THREADS * CONC_ROUNDS);
    /* What each thread left behind: its last value of each key kept. */
    for (i = 0; i < CONC_THREADS; i++) {
        char key[32], val[32];
        int k, last;

        for (k = 0; k < 16; k++) {
            snprintf(key, sizeof(key), "t%d:k%d", i, k);
            last = CONC_ROUNDS - 1 - ((CONC_ROUNDS - 1 - k) % 16);
            snprintf(val, sizeof(val), "t%d:v%d", i, last);
            expect_both(c, "conc", key, last % 10 == 9 ? NULL : val);
        }
    }
    ck_assert_uint_eq(stats_of(c).puts,
                      (uint64_t)CONC_THREADS * CONC_ROUNDS * 2);   /* puts + increments */
    cf_finish(c);
    fx_end();
}
END_TEST

/* ------------------------------------------------------------------ */
/* atomic: put_new, take, incr, cas, count, clear (issue 15)            */

static int
incr_s(cache_t *c, const char *ns, const char *key, int64_t delta, int64_t ttl, int64_t *res)
{
    return cache_incr(c, ns, key, strlen(key), delta, ttl, res);
}

START_TEST(test_put_new)
{
    cache_t *c;

    fx_begin();
    c = cf_start((cache_opts_t){ 0 });
    ck_assert_int_eq(cache_put_new(c, NULL, "k", 1, "v1", 2, CACHE_TTL_DEFAULT), 0);
    expect_both(c, NULL, "k", "v1");
    /* A live entry wins: nothing changed. */
    ck_assert_int_eq(cache_put_new(c, NULL, "k", 1, "v2", 2, CACHE_TTL_DEFAULT), -EEXIST);
    expect_both(c, NULL, "k", "v1");
    /* Per namespace. */
    ck_assert_int_eq(cache_put_new(c, "other", "k", 1, "o", 1, CACHE_TTL_NONE), 0);
    expect_both(c, "other", "k", "o");
    expect_both(c, NULL, "k", "v1");
    /* Absent again after a delete, and after an expiry. */
    ck_assert_int_eq(del_s(c, NULL, "k"), 0);
    ck_assert_int_eq(cache_put_new(c, NULL, "k", 1, "v3", 2, SHORT_TTL), 0);
    expect_both(c, NULL, "k", "v3");
    cf_pass(SHORT_TTL);
    ck_assert_int_eq(cache_put_new(c, NULL, "k", 1, "v4", 2, LONG_TTL), 0);
    expect_both(c, NULL, "k", "v4");
    expect_ttl(c, NULL, "k", LONG_TTL);
    /* Empty values are values. */
    ck_assert_int_eq(cache_put_new(c, NULL, "e", 1, NULL, 0, CACHE_TTL_NONE), 0);
    ck_assert_int_eq(cache_put_new(c, NULL, "e", 1, "x", 1, CACHE_TTL_NONE), -EEXIST);
    expect_both(c, NULL, "e", "");
    /* As a cast: -EEXIST is not a failure for cache_sync. */
    {
        cache_op_t op = { .kind = CACHE_OP_PUT_NEW, .key = "k", .key_len = 1, .value = "z",
                          .value_len = 1, .ttl_ms = CACHE_TTL_NONE };

        ck_assert_int_eq(cache_cast(c, &op), 0);
        op.key = "cast";
        op.key_len = 4;
        ck_assert_int_eq(cache_cast(c, &op), 0);
        ck_assert_int_eq(cache_sync(c, CALL_MS), 0);
        expect_both(c, NULL, "k", "v4");
        expect_both(c, NULL, "cast", "z");
    }
    cf_finish(c);
    fx_end();
}
END_TEST

START_TEST(test_take)
{
    cache_t *c;
    char buf[64];
    size_t len = 0;

    fx_begin();
    c = cf_start((cache_opts_t){ 0 });
    ck_assert_int_eq(put_s(c, NULL, "tok", "secret", CACHE_TTL_NONE), 0);
    ck_assert_int_eq(put_s(c, "ns2", "tok", "other", CACHE_TTL_NONE), 0);
    /* Too short a buffer: nothing taken. */
    ck_assert_int_eq(cache_take(c, NULL, "tok", 3, buf, 2, &len), -ENOBUFS);
    ck_assert_uint_eq(len, 6);
    ck_assert_int_eq(memcmp(buf, "se", 2), 0);
    ck_assert_int_eq(cache_take(c, NULL, "tok", 3, NULL, 0, &len), -ENOBUFS);
    expect_both(c, NULL, "tok", "secret");
    /* Taken once. */
    memset(buf, 0, sizeof(buf));
    ck_assert_int_eq(cache_take(c, NULL, "tok", 3, buf, sizeof(buf), &len), 0);
    ck_assert_uint_eq(len, 6);
    ck_assert_int_eq(memcmp(buf, "secret", 6), 0);
    expect_both(c, NULL, "tok", NULL);
    ck_assert_int_eq(cache_take(c, NULL, "tok", 3, buf, sizeof(buf), &len), -ENOENT);
    ck_assert_uint_eq(len, 0);
    expect_both(c, "ns2", "tok", "other");
    /* An empty value fits any buffer. */
    ck_assert_int_eq(cache_put(c, NULL, "e", 1, NULL, 0, CACHE_TTL_NONE), 0);
    ck_assert_int_eq(cache_take(c, NULL, "e", 1, NULL, 0, &len), 0);
    ck_assert_uint_eq(len, 0);
    expect_both(c, NULL, "e", NULL);
    /* Expired: absent. */
    ck_assert_int_eq(put_s(c, NULL, "short", "x", SHORT_TTL), 0);
    cf_pass(SHORT_TTL);
    ck_assert_int_eq(cache_take(c, NULL, "short", 5, buf, sizeof(buf), &len), -ENOENT);
    /* Counted as a delete. */
    ck_assert_uint_eq(stats_of(c).deletes, 2);
    cf_finish(c);
    fx_end();
}
END_TEST

START_TEST(test_incr)
{
    static const struct {
        const char *start;
        int64_t delta;
        const char *want;   /* NULL: the error below */
        int err;
    } cases[] = {
        { "0", 1, "1", 0 },
        { "-1", 1, "0", 0 },
        { "999999999", 1, "1000000000", 0 },
        { "1000000000", -1, "999999999", 0 },
        { "-999999999", -1, "-1000000000", 0 },
        { "-1000000000", 1, "-999999999", 0 },
        { "5", -1000000005, "-1000000000", 0 },
        { "9223372036854775806", 1, "9223372036854775807", 0 },
        { "9223372036854775807", 1, NULL, -EOVERFLOW },
        { "-9223372036854775807", -1, "-9223372036854775808", 0 },
        { "-9223372036854775808", -1, NULL, -EOVERFLOW },
        { "-9223372036854775808", INT64_MAX, "-1", 0 },
        { "9223372036854775807", INT64_MIN, "-1", 0 },
        { "1", INT64_MAX, NULL, -EOVERFLOW },
        { "123456789012", 987654321098, "1111111110110", 0 },
        { "abc", 1, NULL, -EDOM },
        { "", 1, NULL, -EDOM },
        { "007", 1, NULL, -EDOM },
        { "-0", 1, NULL, -EDOM },
        { "+1", 1, NULL, -EDOM },
        { " 1", 1, NULL, -EDOM },
        { "1 ", 1, NULL, -EDOM },
        { "1.5", 1, NULL, -EDOM },
        { "-", 1, NULL, -EDOM },
        { "9223372036854775808", 0, NULL, -EDOM },
        { "-9223372036854775809", 0, NULL, -EDOM },
        { "12345678901234567890", 0, NULL, -EDOM },
    };
    cache_t *c;
    int64_t res;
    size_t i;

    fx_begin();
    c = cf_start((cache_opts_t){ .default_ttl_ms = LONG_TTL });
    /* Absent: created as delta, with ttl_ms. */
    res = 0;
    ck_assert_int_eq(incr_s(c, NULL, "n", 5, CACHE_TTL_NONE, &res), 0);
    ck_assert_int_eq(res, 5);
    expect_both(c, NULL, "n", "5");
    expect_ttl(c, NULL, "n", CACHE_TTL_NONE);
    ck_assert_int_eq(incr_s(c, NULL, "n", -7, SHORT_TTL, &res), 0);
    ck_assert_int_eq(res, -2);
    expect_both(c, NULL, "n", "-2");
    expect_ttl(c, NULL, "n", CACHE_TTL_NONE);   /* ttl_ms only at creation */
    ck_assert_int_eq(incr_s(c, NULL, "n", 0, CACHE_TTL_DEFAULT, NULL), 0);
    expect_both(c, NULL, "n", "-2");
    /* Created with the default TTL, kept by later increments. */
    ck_assert_int_eq(incr_s(c, "ctr", "d", -3, CACHE_TTL_DEFAULT, &res), 0);
    ck_assert_int_eq(res, -3);
    expect_ttl(c, "ctr", "d", LONG_TTL);
    /* A short TTL at creation runs out even though increments follow with
     * a long one. */
    ck_assert_int_eq(incr_s(c, "ctr", "s", 1, SHORT_TTL, &res), 0);
    ck_assert_int_eq(incr_s(c, "ctr", "s", 1, LONG_TTL, &res), 0);
    ck_assert_int_eq(res, 2);
    cf_pass(SHORT_TTL);
    expect_both(c, "ctr", "s", NULL);
    ck_assert_int_eq(incr_s(c, "ctr", "s", 1, LONG_TTL, &res), 0);
    ck_assert_int_eq(res, 1);
    /* The value format and the range, as Redis's INCRBY. */
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char key[16];

        snprintf(key, sizeof(key), "c%zu", i);
        ck_assert_int_eq(put_s(c, "fmt", key, cases[i].start, CACHE_TTL_NONE), 0);
        res = 424242;
        int rc = incr_s(c, "fmt", key, cases[i].delta, CACHE_TTL_NONE, &res);

        if (cases[i].want != NULL) {
            ck_assert_msg(rc == 0, "incr(\"%s\", %lld): %d (%s)", cases[i].start,
                          (long long)cases[i].delta, rc, cache_strerror(rc));
            ck_assert_int_eq(res, strtoll(cases[i].want, NULL, 10));
            expect_both(c, "fmt", key, cases[i].want);
        } else {
            ck_assert_msg(rc == cases[i].err, "incr(\"%s\", %lld): %d, want %d", cases[i].start,
                          (long long)cases[i].delta, rc, cases[i].err);
            ck_assert_int_eq(res, 424242);
            expect_both(c, "fmt", key, cases[i].start);   /* nothing changed */
        }
    }
    cf_finish(c);
    fx_end();
}
END_TEST

START_TEST(test_cas)
{
    cache_t *c;

    fx_begin();
    c = cf_start((cache_opts_t){ 0 });
    ck_assert_int_eq(cache_cas(c, NULL, "k", 1, "a", 1, "b", 1, CACHE_TTL_NONE), -ENOENT);
    expect_both(c, NULL, "k", NULL);
    ck_assert_int_eq(put_s(c, NULL, "k", "a", CACHE_TTL_NONE), 0);
    ck_assert_int_eq(cache_cas(c, NULL, "k", 1, "x", 1, "b", 1, CACHE_TTL_NONE), -ECANCELED);
    ck_assert_int_eq(cache_cas(c, NULL, "k", 1, "ab", 2, "b", 1, CACHE_TTL_NONE), -ECANCELED);
    ck_assert_int_eq(cache_cas(c, NULL, "k", 1, NULL, 0, "b", 1, CACHE_TTL_NONE), -ECANCELED);
    expect_both(c, NULL, "k", "a");
    ck_assert_int_eq(cache_cas(c, NULL, "k", 1, "a", 1, "bb", 2, LONG_TTL), 0);
    expect_both(c, NULL, "k", "bb");
    expect_ttl(c, NULL, "k", LONG_TTL);   /* as a put: ttl_ms */
    /* To and from empty values. */
    ck_assert_int_eq(cache_cas(c, NULL, "k", 1, "bb", 2, NULL, 0, CACHE_TTL_NONE), 0);
    expect_both(c, NULL, "k", "");
    ck_assert_int_eq(cache_cas(c, NULL, "k", 1, "", 0, "c", 1, SHORT_TTL), 0);
    expect_both(c, NULL, "k", "c");
    cf_pass(SHORT_TTL);
    ck_assert_int_eq(cache_cas(c, NULL, "k", 1, "c", 1, "d", 1, CACHE_TTL_NONE), -ENOENT);
    /* Binary, per namespace. */
    ck_assert_int_eq(cache_put(c, "b", "k", 1, "\0\1\2", 3, CACHE_TTL_NONE), 0);
    ck_assert_int_eq(cache_cas(c, "b", "k", 1, "\0\1\3", 3, "x", 1, CACHE_TTL_NONE), -ECANCELED);
    ck_assert_int_eq(cache_cas(c, "b", "k", 1, "\0\1\2", 3, "y", 1, CACHE_TTL_NONE), 0);
    expect_both(c, "b", "k", "y");
    cf_finish(c);
    fx_end();
}
END_TEST

static uint64_t
count_of(cache_t *c, const char *ns)
{
    uint64_t n = 12345;

    ck_assert_int_eq(cache_count(c, ns, &n, CALL_MS), 0);
    return n;
}

static uint64_t
count_all_of(cache_t *c)
{
    uint64_t n = 12345;

    ck_assert_int_eq(cache_count_all(c, &n, CALL_MS), 0);
    return n;
}

START_TEST(test_count_clear)
{
    cache_t *c;
    char key[16];
    int i;

    fx_begin();
    c = cf_start((cache_opts_t){ .default_ns = "dflt" });
    ck_assert_uint_eq(count_all_of(c), 0);
    ck_assert_uint_eq(count_of(c, NULL), 0);
    ck_assert_uint_eq(count_of(c, "never"), 0);
    for (i = 0; i < 30; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        ck_assert_int_eq(put_s(c, "a", key, "v", CACHE_TTL_NONE), 0);
        if (i < 20)
            ck_assert_int_eq(put_s(c, "b", key, "v", CACHE_TTL_NONE), 0);
        if (i < 10)
            ck_assert_int_eq(put_s(c, NULL, key, "v", CACHE_TTL_NONE), 0);
    }
    /* Expired entries are not counted. */
    ck_assert_int_eq(put_s(c, "a", "short", "v", SHORT_TTL), 0);
    ck_assert_int_eq(put_s(c, NULL, "short", "v", SHORT_TTL), 0);
    ck_assert_uint_eq(count_of(c, "a"), 31);
    ck_assert_uint_eq(count_all_of(c), 62);
    cf_pass(SHORT_TTL);
    ck_assert_uint_eq(count_of(c, "a"), 30);
    ck_assert_uint_eq(count_of(c, "b"), 20);
    ck_assert_uint_eq(count_of(c, NULL), 10);
    ck_assert_uint_eq(count_of(c, "dflt"), 10);
    ck_assert_uint_eq(count_all_of(c), 60);
    /* Clear one namespace. */
    ck_assert_int_eq(cache_clear(c, "b", CALL_MS), 0);
    ck_assert_uint_eq(count_of(c, "b"), 0);
    ck_assert_uint_eq(count_of(c, "a"), 30);
    ck_assert_uint_eq(count_all_of(c), 40);
    expect_both(c, "b", "k0", NULL);
    expect_both(c, "a", "k0", "v");
    expect_both(c, NULL, "k9", "v");
    ck_assert_int_eq(cache_clear(c, "b", CALL_MS), 0);   /* already empty */
    ck_assert_int_eq(cache_clear(c, "never", CALL_MS), 0);
    /* The default namespace. */
    ck_assert_int_eq(cache_clear(c, NULL, CALL_MS), 0);
    ck_assert_uint_eq(count_of(c, NULL), 0);
    ck_assert_uint_eq(count_all_of(c), 30);
    expect_both(c, NULL, "k1", NULL);
    /* Writable again. */
    ck_assert_int_eq(put_s(c, "b", "k0", "again", CACHE_TTL_NONE), 0);
    expect_both(c, "b", "k0", "again");
    ck_assert_uint_eq(count_all_of(c), 31);
    /* Everything: removed live entries count as deletes. */
    {
        uint64_t before = stats_of(c).deletes;

        ck_assert_int_eq(cache_clear_all(c, CALL_MS), 0);
        ck_assert_uint_eq(stats_of(c).deletes - before, 31);
    }
    ck_assert_uint_eq(count_all_of(c), 0);
    ck_assert_uint_eq(count_of(c, "a"), 0);
    expect_both(c, "a", "k3", NULL);
    expect_both(c, "b", "k0", NULL);
    /* As casts. */
    ck_assert_int_eq(put_s(c, "a", "x", "v", CACHE_TTL_NONE), 0);
    ck_assert_int_eq(put_s(c, "b", "x", "v", CACHE_TTL_NONE), 0);
    {
        cache_op_t op = { .kind = CACHE_OP_CLEAR, .ns = "a" };

        ck_assert_int_eq(cache_cast(c, &op), 0);
        ck_assert_int_eq(cache_sync(c, CALL_MS), 0);
        ck_assert_uint_eq(count_all_of(c), 1);
        op.kind = CACHE_OP_CLEAR_ALL;
        ck_assert_int_eq(cache_cast(c, &op), 0);
        ck_assert_int_eq(cache_sync(c, CALL_MS), 0);
        ck_assert_uint_eq(count_all_of(c), 0);
    }
    cf_finish(c);
    fx_end();
}
END_TEST

START_TEST(test_ops_bad_input)
{
    cache_t *c;
    char buf[8];
    char longns[CACHE_NS_MAX + 2];
    uint64_t n;
    int64_t r;

    memset(longns, 'n', sizeof(longns) - 1);
    longns[sizeof(longns) - 1] = '\0';
    fx_begin();
    c = cf_start((cache_opts_t){ 0 });
    ck_assert_int_eq(put_s(c, NULL, "k", "1", CACHE_TTL_NONE), 0);
    ck_assert_int_eq(cache_put_new(c, NULL, NULL, 1, "v", 1, CACHE_TTL_NONE), -EINVAL);
    ck_assert_int_eq(cache_put_new(c, NULL, "k", 0, "v", 1, CACHE_TTL_NONE), -EINVAL);
    ck_assert_int_eq(cache_put_new(c, NULL, "z", 1, NULL, 1, CACHE_TTL_NONE), -EINVAL);
    ck_assert_int_eq(cache_put_new(c, NULL, "z", 1, "v", 1, 0), -EINVAL);
    ck_assert_int_eq(cache_put_new(c, longns, "z", 1, "v", 1, CACHE_TTL_NONE), -EINVAL);
    ck_assert_int_eq(cache_put_new(c, "", "z", 1, "v", 1, CACHE_TTL_NONE), -EINVAL);
    ck_assert_int_eq(cache_take(c, NULL, NULL, 1, buf, sizeof(buf), NULL), -EINVAL);
    ck_assert_int_eq(cache_take(c, NULL, "k", 1, NULL, 4, NULL), -EINVAL);
    ck_assert_int_eq(cache_take(c, longns, "k", 1, buf, sizeof(buf), NULL), -EINVAL);
    ck_assert_int_eq(cache_incr(c, NULL, NULL, 1, 1, CACHE_TTL_NONE, &r), -EINVAL);
    ck_assert_int_eq(cache_incr(c, NULL, "k", 1, 1, -5, &r), -EINVAL);
    ck_assert_int_eq(cache_incr(c, NULL, "k", CACHE_KEY_MAX + 1, 1, CACHE_TTL_NONE, &r),
                     -EINVAL);
    ck_assert_int_eq(cache_cas(c, NULL, "k", 1, NULL, 1, "v", 1, CACHE_TTL_NONE), -EINVAL);
    ck_assert_int_eq(cache_cas(c, NULL, "k", 1, "1", 1, NULL, 1, CACHE_TTL_NONE), -EINVAL);
    ck_assert_int_eq(cache_cas(c, NULL, "k", 1, "1", CACHE_VALUE_MAX + 1, "v", 1,
                               CACHE_TTL_NONE), -EINVAL);
    ck_assert_int_eq(cache_cas(c, NULL, NULL, 1, "1", 1, "v", 1, CACHE_TTL_NONE), -EINVAL);
    ck_assert_int_eq(cache_count(c, NULL, NULL, CALL_MS), -EINVAL);
    ck_assert_int_eq(cache_count(c, longns, &n, CALL_MS), -EINVAL);
    ck_assert_int_eq(cache_count(c, "", &n, CALL_MS), -EINVAL);
    ck_assert_int_eq(cache_count_all(c, NULL, CALL_MS), -EINVAL);
    ck_assert_int_eq(cache_count_all(NULL, &n, CALL_MS), -EINVAL);
    ck_assert_int_eq(cache_clear(c, longns, CALL_MS), -EINVAL);
    ck_assert_int_eq(cache_clear(NULL, NULL, CALL_MS), -EINVAL);
    ck_assert_int_eq(cache_clear_all(NULL, CALL_MS), -EINVAL);
    ck_assert_int_eq(cache_put_new(NULL, NULL, "k", 1, "v", 1, CACHE_TTL_NONE), -EINVAL);
    ck_assert_int_eq(cache_take(NULL, NULL, "k", 1, buf, sizeof(buf), NULL), -EINVAL);
    ck_assert_int_eq(cache_incr(NULL, NULL, "k", 1, 1, CACHE_TTL_NONE, &r), -EINVAL);
    ck_assert_int_eq(cache_cas(NULL, NULL, "k", 1, "1", 1, "v", 1, CACHE_TTL_NONE), -EINVAL);
    /* Kinds whose answer is their point are not casts. */
    {
        static const cache_op_kind_t calls_only[] = { CACHE_OP_TAKE, CACHE_OP_CAS,
                                                      CACHE_OP_COUNT, CACHE_OP_COUNT_ALL };
        size_t i;

        for (i = 0; i < sizeof(calls_only) / sizeof(calls_only[0]); i++) {
            cache_op_t op = { .kind = calls_only[i], .key = "k", .key_len = 1, .value = "v",
                              .value_len = 1, .expected = "1", .expected_len = 1,
                              .ttl_ms = CACHE_TTL_NONE };

            ck_assert_int_eq(cache_cast(c, &op), -EINVAL);
        }
    }
    /* Nothing changed. */
    expect_both(c, NULL, "k", "1");
    ck_assert_uint_eq(count_all_of(c), 1);
    /* After stop: -ESRCH. */
    ck_assert_int_eq(cache_stop(c, CALL_MS), 0);
    ck_assert_int_eq(cache_put_new(c, NULL, "k", 1, "v", 1, CACHE_TTL_NONE), -ESRCH);
    ck_assert_int_eq(cache_take(c, NULL, "k", 1, buf, sizeof(buf), NULL), -ESRCH);
    ck_assert_int_eq(cache_incr(c, NULL, "k", 1, 1, CACHE_TTL_NONE, &r), -ESRCH);
    ck_assert_int_eq(cache_cas(c, NULL, "k", 1, "1", 1, "v", 1, CACHE_TTL_NONE), -ESRCH);
    ck_assert_int_eq(cache_count(c, NULL, &n, CALL_MS), -ESRCH);
    ck_assert_int_eq(cache_count_all(c, &n, CALL_MS), -ESRCH);
    ck_assert_int_eq(cache_clear(c, NULL, CALL_MS), -ESRCH);
    ck_assert_int_eq(cache_clear_all(c, CALL_MS), -ESRCH);
    ck_assert_int_eq(cache_stop(c, CALL_MS), -ESRCH);
    cache_release(c);
    fx_end();
}
END_TEST

/* Races: several threads on one key, round after round, each round
 * started together (a barrier), the outcome checked by the main thread. */
#define RACE_THREADS 4
#define RACE_ROUNDS 200
#define RMW_PER_THREAD 200

typedef struct race {
    cache_t *c;
    pthread_barrier_t start, done;
    atomic_int wins[RACE_THREADS];
    atomic_int failures;
    int op;                   /* 0 take, 1 put_new */
} race_t;

typedef struct race_arg {
    race_t *r;
    int id;
} race_arg_t;

static void *
race_main(void *p)
{
    race_arg_t *a = p;
    race_t *r = a->r;
    char buf[32], mine[16];
    int i, rc;

    snprintf(mine, sizeof(mine), "t%d", a->id);
    for (i = 0; i < RACE_ROUNDS; i++) {
        size_t len = 0;

        pthread_barrier_wait(&r->start);
        if (r->op == 0)
            rc = cache_take(r->c, "race", "k", 1, buf, sizeof(buf), &len);
        else
            rc = cache_put_new(r->c, "race", "k", 1, mine, strlen(mine), CACHE_TTL_NONE);
        if (rc == 0)
            atomic_fetch_add(&r->wins[a->id], 1);
        else if (rc != (r->op == 0 ? -ENOENT : -EEXIST))
            atomic_fetch_add(&r->failures, 1);
        pthread_barrier_wait(&r->done);
    }
    return NULL;
}

static void
race_run(int op)
{
    race_t r;
    race_arg_t a[RACE_THREADS];
    pthread_t th[RACE_THREADS];
    int i, round, total = 0;

    memset(&r, 0, sizeof(r));
    r.op = op;
    r.c = cf_start((cache_opts_t){ 0 });
    ck_assert_int_eq(pthread_barrier_init(&r.start, NULL, RACE_THREADS + 1), 0);
    ck_assert_int_eq(pthread_barrier_init(&r.done, NULL, RACE_THREADS + 1), 0);
    for (i = 0; i < RACE_THREADS; i++) {
        a[i] = (race_arg_t){ &r, i };
        ck_assert_int_eq(pthread_create(&th[i], NULL, race_main, &a[i]), 0);
    }
    for (round = 0; round < RACE_ROUNDS; round++) {
        int before = 0, after = 0;

        for (i = 0; i < RACE_THREADS; i++)
            before += atomic_load(&r.wins[i]);
        if (op == 0)
            ck_assert_int_eq(put_s(r.c, "race", "k", "prize", CACHE_TTL_NONE), 0);
        else
            (void)del_s(r.c, "race", "k");
        pthread_barrier_wait(&r.start);
        pthread_barrier_wait(&r.done);
        for (i = 0; i < RACE_THREADS; i++)
            after += atomic_load(&r.wins[i]);
        ck_assert_msg(after - before == 1, "round %d: %d winners", round, after - before);
        if (op == 0)
            expect_both(r.c, "race", "k", NULL);
        else
            ck_assert_uint_eq(count_of(r.c, "race"), 1);
    }
    for (i = 0; i < RACE_THREADS; i++) {
        ck_assert_int_eq(pthread_join(th[i], NULL), 0);
        total += atomic_load(&r.wins[i]);
    }
    ck_assert_int_eq(atomic_load(&r.failures), 0);
    ck_assert_int_eq(total, RACE_ROUNDS);
    pthread_barrier_destroy(&r.start);
    pthread_barrier_destroy(&r.done);
    cf_finish(r.c);
}

START_TEST(test_take_race_one_winner)
{
    fx_begin();
    race_run(0);
    fx_end();
}
END_TEST

START_TEST(test_put_new_race_one_winner)
{
    fx_begin();
    race_run(1);
    fx_end();
}
END_TEST

typedef struct rmw_arg {
    cache_t *c;
    int id;
    int failures;
    int rc;
} rmw_arg_t;

/* +3 and -1 in turn, and one large step each way: the sum is known. */
static void *
incr_main(void *p)
{
    rmw_arg_t *a = p;
    int i, rc;

    for (i = 0; i < RMW_PER_THREAD; i++) {
        rc = cache_incr(a->c, "rmw", "ctr", 3, i % 2 == 0 ? 3 : -1, CACHE_TTL_NONE, NULL);
        if (rc != 0 && a->failures++ == 0)
            a->rc = rc;
    }
    rc = cache_incr(a->c, "rmw", "ctr", 3, INT64_MAX / 8, CACHE_TTL_NONE, NULL);
    if (rc == 0)
        rc = cache_incr(a->c, "rmw", "ctr", 3, -(INT64_MAX / 8), CACHE_TTL_NONE, NULL);
    if (rc != 0 && a->failures++ == 0)
        a->rc = rc;
    return NULL;
}

/* A read-modify-write loop on cas: read the decimal counter, cas it to
 * one more, again on -ECANCELED. */
static void *
cas_main(void *p)
{
    rmw_arg_t *a = p;
    int i, rc;

    for (i = 0; i < RMW_PER_THREAD; i++) {
        for (;;) {
            char cur[32], next[32];
            size_t len = 0;

            rc = cache_get(a->c, "rmw", "cas", 3, cur, sizeof(cur) - 1, &len);
            if (rc != 0)
                break;
            cur[len] = '\0';
            snprintf(next, sizeof(next), "%lld", strtoll(cur, NULL, 10) + 1);
            rc = cache_cas(a->c, "rmw", "cas", 3, cur, len, next, strlen(next), CACHE_TTL_NONE);
            if (rc != -ECANCELED)
                break;
        }
        if (rc != 0 && a->failures++ == 0)
            a->rc = rc;
    }
    return NULL;
}

static void
rmw_run(void *(*fn)(void *), const char *key, int64_t want)
{
    cache_t *c = cf_start((cache_opts_t){ 0 });
    rmw_arg_t a[RACE_THREADS];
    pthread_t th[RACE_THREADS];
    char buf[32];
    int i;

    if (fn == cas_main)
        ck_assert_int_eq(put_s(c, "rmw", "cas", "0", CACHE_TTL_NONE), 0);
    for (i = 0; i < RACE_THREADS; i++) {
        a[i] = (rmw_arg_t){ c, i, 0, 0 };
        ck_assert_int_eq(pthread_create(&th[i], NULL, fn, &a[i]), 0);
    }
    for (i = 0; i < RACE_THREADS; i++) {
        ck_assert_int_eq(pthread_join(th[i], NULL), 0);
        ck_assert_msg(a[i].failures == 0, "thread %d: %d failures, first %d (%s)", i,
                      a[i].failures, a[i].rc, cache_strerror(a[i].rc));
    }
    snprintf(buf, sizeof(buf), "%lld", (long long)want);
    expect_both(c, "rmw", key, buf);
    cf_finish(c);
}

START_TEST(test_incr_threads_sum)
{
    fx_begin();
    rmw_run(incr_main, "ctr", (int64_t)RACE_THREADS * (RMW_PER_THREAD / 2) * (3 - 1));
    fx_end();
}
END_TEST

START_TEST(test_cas_threads_sum)
{
    fx_begin();
    rmw_run(cas_main, "cas", (int64_t)RACE_THREADS * RMW_PER_THREAD);
    fx_end();
}
END_TEST

/* A Redis cache refuses events; a local one takes them. */
static void
ev_nop(void *ctx, cache_event_t why, const char *ns, size_t ns_len, const void *key,
       size_t key_len)
{
    (void)ctx, (void)why, (void)ns, (void)ns_len, (void)key, (void)key_len;
}

START_TEST(test_events_option)
{
    cache_opts_t o;
    cache_t *c = NULL;

    fx_begin();
    o = cf_opts((cache_opts_t){ .on_event = ev_nop });
    if (redis_backend) {
        ck_assert_int_eq(cache_start(&o, &c), -ENOTSUP);
        ck_assert_ptr_null(c);
        ck_assert_int_eq(cache_new(&o, &c), -ENOTSUP);
        ck_assert_ptr_null(c);
    } else {
        c = cf_start((cache_opts_t){ .on_event = ev_nop });
        ck_assert_int_eq(put_s(c, NULL, "k", "v", CACHE_TTL_NONE), 0);
        ck_assert_int_eq(del_s(c, NULL, "k"), 0);
        cf_finish(c);
    }
    fx_end();
}
END_TEST

/* ------------------------------------------------------------------ */

/* A tcase named `name` (tagged with it), 60 s, with the checked teardown
 * that stops any server left running; NULL when CK_EXCLUDE_TCASE names it
 * (Check 0.15 does not know that variable itself). */
static TCase *
tc_new(Suite *s, const char *name)
{
    TCase *tc;

    if (gc_tcase_excluded(name))
        return NULL;
    tc = tcase_create(name);
    tcase_set_timeout(tc, 60);
    tcase_set_tags(tc, name);
    tcase_add_checked_fixture(tc, NULL, teardown_servers);
    suite_add_tcase(s, tc);
    return tc;
}

#define ADD(tc, t)                  \
    do {                            \
        if ((tc) != NULL)           \
            tcase_add_test(tc, t);  \
    } while (0)

static Suite *
conformance_suite(void)
{
    Suite *s = suite_create("conformance");
    TCase *tc;

    tc = tc_new(s, "basic");
    ADD(tc, test_sync_put_get_delete);
    ADD(tc, test_get_enobufs);
    ADD(tc, test_empty_value);
    ADD(tc, test_large_binary_limits);
    ADD(tc, test_namespaces);
    ADD(tc, test_async_writes);
    ADD(tc, test_batch_put);
    ADD(tc, test_batch_invalid_changes_nothing);

    tc = tc_new(s, "ttl");
    ADD(tc, test_ttl_expiry_reput);
    ADD(tc, test_ttl_default_override_none);
    ADD(tc, test_touch_persist_expire_ttl);

    tc = tc_new(s, "all");
    ADD(tc, test_all_patterns);
    ADD(tc, test_all_order_values_ttls);

    tc = tc_new(s, "ops");
    ADD(tc, test_user_operation);
    ADD(tc, test_user_op_esrch_once);
    ADD(tc, test_fetch_once);
    ADD(tc, test_fetch_wait_timeout);

    tc = tc_new(s, "sync");
    ADD(tc, test_sync_reports_failed_casts);
    ADD(tc, test_stats_counters);

    tc = tc_new(s, "bad_input");
    ADD(tc, test_bad_input_keys_values);
    ADD(tc, test_bad_input_keys_values_async);
    ADD(tc, test_bad_input_ops);
    ADD(tc, test_bad_opts);

    tc = tc_new(s, "lifecycle");
    ADD(tc, test_ops_after_stop);
    ADD(tc, test_names);
    ADD(tc, test_names_release_without_stop);

    tc = tc_new(s, "atomic");
    ADD(tc, test_put_new);
    ADD(tc, test_take);
    ADD(tc, test_incr);
    ADD(tc, test_cas);
    ADD(tc, test_count_clear);
    ADD(tc, test_ops_bad_input);
    ADD(tc, test_events_option);

    tc = tc_new(s, "concurrency");
    ADD(tc, test_concurrent_writers_increments);
    ADD(tc, test_take_race_one_winner);
    ADD(tc, test_put_new_race_one_winner);
    ADD(tc, test_incr_threads_sum);
    ADD(tc, test_cas_threads_sum);
    return s;
}

int
main(int argc, char **argv)
{
    SRunner *sr;
    int nf;

    if (argc != 2 || (strcmp(argv[1], "local") != 0 && strcmp(argv[1], "redis") != 0)) {
        fprintf(stderr, "usage: %s local|redis\n", argv[0]);
        return 2;
    }
    redis_backend = strcmp(argv[1], "redis") == 0;
    if (redis_backend && !rh_backend_built()) {
        printf("test_conformance redis: gencache built without hiredis: SKIPPED\n");
        return 77;
    }
    if (redis_backend && !rh_find_server()) {
        printf("test_conformance redis: redis-server not found: SKIPPED "
               "(install redis-server)\n");
        return 77;
    }
    printf("test_conformance: backend %s\n", argv[1]);
    sr = srunner_create(conformance_suite());
    /* Fork mode stays on (the default; CK_FORK=no to debug in-process). */
    srunner_run_all(sr, CK_NORMAL);
    nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    rh_server_stop_all();
    return nf == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

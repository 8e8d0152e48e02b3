/*
 * Check suite "redis": what include/gencache/cache.h promises of the Redis
 * backend beyond the contract every backend meets (that contract is
 * tests/test_conformance.c, run against this backend as conformance_redis):
 * several instances sharing a server, the near-cache and its
 * invalidations, TTLs against real time at the edges, SCAN, batch
 * atomicity and pipelining, failures and reconnection (serve_stale,
 * SIGPIPE, down_limit_ms, supervision), an unreachable host (a "black
 * hole": connection attempts never block a call), options (AUTH, db,
 * prefix, the raw key layout), the Redis fields of cache_stats_t, and
 * -ENOTSUP without hiredis.  (Sentinel and Cluster: tests/test_sentinel.c,
 * tests/test_cluster.c.)
 *
 * Every test starts its own real redis-server (tests/redis_harness.h) on a
 * free port of 127.0.0.1, without persistence, and stops it at the end; the
 * checked teardown stops whatever a test left running, and a server whose
 * test process died is killed by the kernel (PR_SET_PDEATHSIG).  Without
 * redis-server in PATH the suite prints one line and exits 77 (CTest:
 * skipped); a gencache built without hiredis only gets the -ENOTSUP case.
 *
 * Two cache instances started against one server with the same options
 * model two machines sharing Redis ("A" and "B" below): distinct cache
 * objects in one process, each with its own worker, connections and
 * near-cache.
 *
 * Determinism.  The backend runs on real time (Redis expiry, network), so
 * these tests cannot use a manual clock (a clock with opts.redis is
 * -EINVAL).  The rules instead:
 *   - Every wait is a bounded poll (1-10 ms steps) with a generous bound;
 *     a test fails on the bound, it never hangs (60 s per case).
 *   - What the header promises at once is asserted at once, with no poll:
 *     a synchronous read (cache_call GET/TTL, cache_ttl, cache_all) sees
 *     every write that returned before it was sent, from any instance; an
 *     instance's own writes are seen by its cache_get once they return.
 *     What it promises "eventually" (another instance's write reaching a
 *     near-cache) is polled, with a bound well under near_ttl_ms so that the
 *     bound is the invalidation's, not the near-cache's age limit.
 *   - Before an instance fills its near-cache with a key another instance
 *     has just written, the test sleeps NEAR_SETTLE_MS, so that the
 *     invalidation of that write has reached it (an invalidation of an
 *     older write arriving after the fill would drop the fresh entry and
 *     make a "served from the near-cache" assertion flaky).
 *   - A synchronous read refreshes (or, for a missing key, drops) the
 *     reading instance's near-cache entry itself, so counts of
 *     invalidations are taken with no synchronous read in between; and a
 *     direct read that may have left a negative entry is never followed by
 *     an "at once" assertion about another instance's write.
 *   - stats.connected may drop a moment before the worker has finished
 *     handling the loss: before asserting what a disconnected instance
 *     serves, the test makes one call that must fail (a round trip through
 *     the worker, which has handled the loss by then).
 *   - TTL assertions have margins of 100+ ms in the directions that
 *     scheduling can move them (2 shared cores, sanitizers); expiry bounds
 *     ("never a value past its TTL") allow EXPIRY_SLACK_MS after the
 *     latest possible deadline, measured from the return of the put and
 *     compared with the start of the read.
 *   - Every call that may meet a dead or frozen server has its duration
 *     measured: it must return within its timeout plus CALL_SLACK_MS.
 *   - A "black hole" (tests/redis_topo.h: a listener that never accepts,
 *     its queue full, so a connect() hangs until its timeout) stands for
 *     an unreachable host: connection attempts then last connect_timeout_ms
 *     (1000 ms there), so a call that waited for one would show.
 * SIGPIPE keeps its default action on purpose: a library that lets a write
 * to a closed Redis connection kill the process fails here.
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
#include <time.h>

#include "redis_harness.h"
#include "redis_topo.h"

#define CALL_MS 5000           /* call timeouts where a hang must fail */
#define CALL_SLACK_MS 500      /* a call returns within its timeout + this */
#define NEAR_SETTLE_MS 100     /* see "Determinism" */
#define EXPIRY_SLACK_MS 50     /* a value is never read this long past its TTL */
#define INVAL_WAIT_MS 2000     /* an invalidation reaches the other instance */
#define DOWN_WAIT_MS 3000      /* a lost server is noticed */
#define UP_WAIT_MS 5000        /* a (re)started server is (re)connected */

/* ------------------------------------------------------------------ */
/* Helpers                                                              */

#define sleep_ms rh_sleep_ms
#define now_ms rh_now_ms

static rh_server_t *
srv_start(const char *password)
{
    rh_server_t *s = rh_server_new(password);

    ck_assert_ptr_nonnull(s);
    ck_assert_msg(rh_server_start(s) == 0, "redis-server would not start");
    return s;
}

/* Restart a stopped server on its port. */
static void
srv_restart(rh_server_t *s)
{
    ck_assert_msg(rh_server_start(s) == 0, "redis-server would not restart on port %d",
                  s->port);
}

static void
srv_stop(rh_server_t *s)
{
    ck_assert_int_eq(rh_server_stop(s), 0);
}

/* Checked teardown of every tcase: no server outlives its test, no black
 * hole stays open. */
static void
teardown_servers(void)
{
    rh_topo_teardown();
}

/* Options for s: its port and password, everything else default. */
static cache_redis_opts_t
ropts(const rh_server_t *s)
{
    cache_redis_opts_t r = { .host = "127.0.0.1", .port = s->port };

    if (s->password[0] != '\0')
        r.password = s->password;
    return r;
}

static cache_stats_t
stats_of(cache_t *c)
{
    cache_stats_t st;

    memset(&st, 0xab, sizeof(st));
    ck_assert_int_eq(cache_stats(c, &st), 0);
    return st;
}

/* Poll until c's connected flag is `want`; the time it took, or -1. */
static int64_t
wait_connected(cache_t *c, uint64_t want, int ms)
{
    int64_t t0 = now_ms();

    for (;;) {
        if (stats_of(c).connected == want)
            return now_ms() - t0;
        if (now_ms() - t0 > ms)
            return -1;
        sleep_ms(2);
    }
}

/* Start a cache with opts o on Redis options r and wait until it is
 * connected. */
static cache_t *
cstart(cache_opts_t o, const cache_redis_opts_t *r)
{
    cache_t *c = NULL;
    int rc;

    o.redis = r;
    rc = cache_start(&o, &c);
    ck_assert_msg(rc == 0, "cache_start: %d (%s)", rc, cache_strerror(rc));
    ck_assert_ptr_nonnull(c);
    ck_assert_msg(wait_connected(c, 1, UP_WAIT_MS) >= 0,
                  "not connected to Redis %d ms after cache_start", UP_WAIT_MS);
    return c;
}

/* Stop (twice: the second is -ESRCH) and release. */
static void
cfinish(cache_t *c)
{
    ck_assert_int_eq(cache_stop(c, CALL_MS), 0);
    ck_assert_int_eq(cache_stop(c, CALL_MS), -ESRCH);
    cache_release(c);
}

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

/* Synchronous read (cache_call GET) as a C string, with its TTL. */
static int
sget_s(cache_t *c, const char *ns, const char *key, char *out, size_t cap, int64_t *ttl)
{
    size_t len = 0;
    int64_t t = -12345;
    cache_op_t op = { .kind = CACHE_OP_GET, .ns = ns, .key = key, .key_len = strlen(key),
                      .buf = out, .cap = cap - 1, .out_len = &len, .out_ttl_ms = &t };
    int rc = cache_call(c, &op, CALL_MS);

    out[rc == 0 ? len : 0] = '\0';
    if (ttl != NULL)
        *ttl = t;
    return rc;
}

#define NSNAME(ns) ((ns) != NULL ? (ns) : "(default)")

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

static void
expect_sync_value(cache_t *c, const char *ns, const char *key, const char *want)
{
    char buf[256];
    int rc = sget_s(c, ns, key, buf, sizeof(buf), NULL);

    ck_assert_msg(rc == 0, "GET call (%s, %s): %d (%s), want \"%s\"", NSNAME(ns), key, rc,
                  cache_strerror(rc), want);
    ck_assert_msg(strcmp(buf, want) == 0, "GET call (%s, %s) = \"%s\", want \"%s\"",
                  NSNAME(ns), key, buf, want);
}

static void
expect_sync_missing(cache_t *c, const char *ns, const char *key)
{
    char buf[256];
    int rc = sget_s(c, ns, key, buf, sizeof(buf), NULL);

    ck_assert_msg(rc == -ENOENT, "GET call (%s, %s): %d (%s), value \"%s\", want -ENOENT",
                  NSNAME(ns), key, rc, cache_strerror(rc), buf);
}

/* Poll cache_get until it returns `want` (NULL: -ENOENT); the time it
 * took, or -1 after ms. */
static int64_t
poll_get(cache_t *c, const char *ns, const char *key, const char *want, int ms)
{
    int64_t t0 = now_ms();
    char buf[256];

    for (;;) {
        int rc = get_s(c, ns, key, buf, sizeof(buf));

        if (want == NULL ? rc == -ENOENT : (rc == 0 && strcmp(buf, want) == 0))
            return now_ms() - t0;
        if (now_ms() - t0 > ms)
            return -1;
        sleep_ms(1);
    }
}

static void
expect_eventually(cache_t *c, const char *ns, const char *key, const char *want)
{
    char buf[256];
    int64_t dt = poll_get(c, ns, key, want, INVAL_WAIT_MS);
    int rc;

    if (dt >= 0)
        return;
    rc = get_s(c, ns, key, buf, sizeof(buf));
    ck_assert_msg(0, "cache_get(%s, %s) still %d \"%s\" after %d ms, want %s%s%s",
                  NSNAME(ns), key, rc, buf, INVAL_WAIT_MS, want ? "\"" : "-ENOENT",
                  want ? want : "", want ? "\"" : "");
}

static long long
raw_dbsize(const rh_server_t *s, int db)
{
    rh_reply_t *rep = rh_server_cmd(s, db, "DBSIZE", NULL);
    long long n;

    ck_assert_ptr_nonnull(rep);
    ck_assert_int_eq(rep->type, ':');
    n = rep->integer;
    rh_reply_free(rep);
    return n;
}

/* The errors of an unreachable Redis. */
static int
is_down_err(int rc)
{
    return rc == -ENOTCONN || rc == -ECONNRESET;
}

/* ------------------------------------------------------------------ */
/* harness: the test's own tools, against a real server                 */

START_TEST(test_harness_selfcheck)
{
    rh_server_t *s = srv_start(NULL), *p = srv_start("secret");
    rh_reply_t *rep;
    const char *set[3] = { "SET", "a\0b", "x\0y" }, *get[2] = { "GET", "a\0b" };
    size_t setl[3] = { 3, 3, 3 }, getl[2] = { 3, 3 };
    int port = s->port;

    ck_assert_int_ne(s->port, p->port);
    ck_assert(rh_ping(s->port) && rh_ping(p->port));
    /* Binary-safe commands, databases, nil. */
    rep = rh_server_cmdb(s, 2, 3, set, setl);
    ck_assert(rep != NULL && rep->type == '+');
    rh_reply_free(rep);
    rep = rh_server_cmdb(s, 2, 2, get, getl);
    ck_assert(rep != NULL && rep->type == '$' && rep->len == 3 &&
              memcmp(rep->str, "x\0y", 3) == 0);
    rh_reply_free(rep);
    rep = rh_server_cmdb(s, 0, 2, get, getl);
    ck_assert(rep != NULL && rep->type == 'n');
    rh_reply_free(rep);
    ck_assert_int_eq(raw_dbsize(s, 2), 1);
    /* No persistence. */
    rep = rh_server_cmd(s, -1, "CONFIG", "GET", "save", NULL);
    ck_assert(rep != NULL && rep->type == '*' && rep->n == 2 && rep->elem[1].len == 0);
    rh_reply_free(rep);
    rep = rh_server_cmd(s, -1, "CONFIG", "GET", "appendonly", NULL);
    ck_assert(rep != NULL && rep->n == 2 && strcmp(rep->elem[1].str, "no") == 0);
    rh_reply_free(rep);
    /* Passwords. */
    {
        const char *dbsize[1] = { "DBSIZE" };

        rep = rh_cmd(p->port, NULL, -1, 1, dbsize, NULL);
        ck_assert(rep != NULL && rep->type == '-' && strncmp(rep->str, "NOAUTH", 6) == 0);
        rh_reply_free(rep);
        ck_assert_ptr_null(rh_cmd(p->port, "wrong", -1, 1, dbsize, NULL));
        ck_assert_int_eq(raw_dbsize(p, 0), 0);
    }
    /* Stop, restart on the same port (empty), freeze, thaw, kill. */
    srv_stop(s);
    ck_assert(!rh_ping(port));
    srv_restart(s);
    ck_assert_int_eq(s->port, port);
    ck_assert_int_eq(raw_dbsize(s, 2), 0);
    ck_assert_int_eq(rh_server_freeze(s, 1), 0);
    {
        int64_t t0 = now_ms();

        ck_assert(!rh_ping(port));                      /* accepted, unanswered */
        ck_assert_int_ge(now_ms() - t0, RH_IO_TIMEOUT_MS - 100);
    }
    ck_assert_int_eq(rh_server_freeze(s, 0), 0);
    ck_assert(rh_ping(port));
    ck_assert_int_eq(rh_server_kill(s), 0);
    ck_assert(!rh_ping(port));
    srv_restart(s);
    ck_assert(rh_ping(port));
    /* A frozen server is stopped too. */
    ck_assert_int_eq(rh_server_freeze(s, 1), 0);
    srv_stop(s);
    ck_assert(!rh_ping(port));
    /* p is left to the checked teardown. */
}
END_TEST

/* ------------------------------------------------------------------ */
/* basic                                                                */

START_TEST(test_basic_roundtrip)
{
    rh_server_t *s = srv_start(NULL);
    cache_redis_opts_t r = ropts(s);
    cache_t *a = cstart((cache_opts_t){ .name = "redis-a" }, &r);
    cache_t *b = cstart((cache_opts_t){ .name = "redis-b" }, &r);
    cache_t *l = NULL;
    char buf[64];
    int64_t ttl;

    ck_assert_ptr_ne(a, b);
    ck_assert_int_eq(cache_lookup("redis-a", &l), 0);
    ck_assert_ptr_eq(l, a);
    cache_release(l);

    /* Missing everywhere.  (B reads it only synchronously here: a direct
     * read could leave a negative near-cache entry, which another
     * instance's put invalidates only eventually.) */
    expect_missing(a, NULL, "k");
    expect_sync_missing(b, NULL, "k");
    ck_assert_int_eq(cache_ttl(b, NULL, "k", 1, &ttl), -ENOENT);

    /* A's put is in Redis when it returns: B's synchronous read sees it
     * at once, so does B's direct read (B never had the key). */
    ck_assert_int_eq(put_s(a, NULL, "k", "value", CACHE_TTL_NONE), 0);
    ck_assert_int_eq(sget_s(b, NULL, "k", buf, sizeof(buf), &ttl), 0);
    ck_assert_str_eq(buf, "value");
    ck_assert(ttl == CACHE_TTL_NONE);
    expect_value(b, NULL, "k", "value");
    expect_value(a, NULL, "k", "value");

    /* B replaces it: A's synchronous read sees it at once, B's own direct
     * read too (its own write). */
    ck_assert_int_eq(put_s(b, NULL, "k", "second", CACHE_TTL_NONE), 0);
    expect_sync_value(a, NULL, "k", "second");
    expect_value(b, NULL, "k", "second");

    /* Delete on A: gone for B's synchronous read at once, for A's direct
     * read at once; a second delete is -ENOENT. */
    ck_assert_int_eq(del_s(a, NULL, "k"), 0);
    expect_sync_missing(b, NULL, "k");
    expect_missing(a, NULL, "k");
    ck_assert_int_eq(del_s(a, NULL, "k"), -ENOENT);
    ck_assert_int_eq(del_s(b, NULL, "k"), -ENOENT);
    ck_assert_int_eq(del_s(b, NULL, "never"), -ENOENT);
    expect_eventually(b, NULL, "k", NULL);

    /* The caller's buffers are free once put returns. */
    {
        char kb[8] = "mine", vb[8] = "data";

        ck_assert_int_eq(cache_put(a, NULL, kb, 4, vb, 4, CACHE_TTL_NONE), 0);
        memset(kb, 'X', sizeof(kb));
        memset(vb, 'Y', sizeof(vb));
        expect_sync_value(b, NULL, "mine", "data");
        expect_value(a, NULL, "mine", "data");
    }
    cfinish(a);
    cfinish(b);
    ck_assert_int_eq(cache_lookup("redis-a", &l), -ENOENT);
}
END_TEST

/* -ENOBUFS on another instance's first read, from Redis (no near-cache
 * entry yet), then from its near-cache; and a length query of a key it
 * never read.  (One instance's -ENOBUFS and empty values: conformance.) */
START_TEST(test_basic_enobufs_empty)
{
    rh_server_t *s = srv_start(NULL);
    cache_redis_opts_t r = ropts(s);
    cache_t *a = cstart((cache_opts_t){ 0 }, &r);
    cache_t *b = cstart((cache_opts_t){ 0 }, &r);
    unsigned char buf[16];
    size_t len;
    int pass;

    ck_assert_int_eq(put_s(a, NULL, "k", "0123456789", CACHE_TTL_NONE), 0);
    sleep_ms(NEAR_SETTLE_MS);
    /* Pass 0: B's first read (from Redis); pass 1: from its near-cache. */
    for (pass = 0; pass < 2; pass++) {
        memset(buf, 0xee, sizeof(buf));
        len = 0;
        ck_assert_int_eq(cache_get(b, NULL, "k", 1, buf, 4, &len), -ENOBUFS);
        ck_assert_uint_eq(len, 10);
        ck_assert(memcmp(buf, "0123", 4) == 0);
        ck_assert_uint_eq(buf[4], 0xee);
    }
    /* A read with no near-cache entry and no buffer at all. */
    ck_assert_int_eq(put_s(a, NULL, "k2", "abcdef", CACHE_TTL_NONE), 0);
    sleep_ms(NEAR_SETTLE_MS);
    len = 0;
    ck_assert_int_eq(cache_get(b, NULL, "k2", 2, NULL, 0, &len), -ENOBUFS);
    ck_assert_uint_eq(len, 6);
    /* An empty value another instance wrote is present, not missing. */
    ck_assert_int_eq(cache_put(a, NULL, "e", 1, NULL, 0, CACHE_TTL_NONE), 0);
    len = 77;
    ck_assert_int_eq(cache_get(b, NULL, "e", 1, buf, sizeof(buf), &len), 0);
    ck_assert_uint_eq(len, 0);
    ck_assert_int_eq(cache_delete(b, NULL, "e", 1), 0);
    expect_sync_missing(a, NULL, "e");
    cfinish(a);
    cfinish(b);
}
END_TEST

/* Bad input is -EINVAL as for a local cache; after cache_stop, -ESRCH. */
/* The data is Redis's: it outlives a stopped instance, and a new one
 * reads it.  (Bad input and every operation after cache_stop:
 * conformance.) */
START_TEST(test_basic_bad_input_and_stopped)
{
    rh_server_t *s = srv_start(NULL);
    cache_redis_opts_t r = ropts(s);
    cache_t *a = cstart((cache_opts_t){ 0 }, &r), *b;
    cache_stats_t st;

    ck_assert_int_eq(put_s(a, NULL, "k", "v", CACHE_TTL_NONE), 0);
    ck_assert_int_eq(cache_stop(a, CALL_MS), 0);
    st = stats_of(a);
    ck_assert_uint_eq(st.puts, 1);
    ck_assert_uint_eq(st.connected, 0);
    cache_release(a);
    b = cstart((cache_opts_t){ 0 }, &r);
    expect_value(b, NULL, "k", "v");
    ck_assert_int_eq(raw_dbsize(s, 0), 1);
    cfinish(b);
}
END_TEST

/* ------------------------------------------------------------------ */
/* ttl                                                                  */

/* Poll cache_get of key on c (1 ms steps) until -ENOENT or `until`;
 * return the start time of the last read that still returned the value
 * (0 if none).  Once gone, it must stay gone (20 more reads). */
static int64_t
last_value_read(cache_t *c, const char *key, int64_t until, int *gone)
{
    int64_t last = 0;
    char buf[64];
    int i, rc;

    *gone = 0;
    while (now_ms() < until) {
        int64_t t = now_ms();

        rc = get_s(c, NULL, key, buf, sizeof(buf));
        if (rc == 0) {
            last = t;
        } else {
            ck_assert_msg(rc == -ENOENT, "cache_get(%s): %d (%s)", key, rc,
                          cache_strerror(rc));
            *gone = 1;
            break;
        }
        sleep_ms(1);
    }
    for (i = 0; *gone && i < 20; i++) {
        rc = get_s(c, NULL, key, buf, sizeof(buf));
        ck_assert_msg(rc == -ENOENT, "cache_get(%s) after it expired: %d \"%s\"", key, rc,
                      buf);
        sleep_ms(1);
    }
    return last;
}

/* "never a value past its own TTL": neither the writer nor a reader that
 * has the key in its near-cache returns it after its deadline (at the
 * latest put return + TTL), even when the reader first read it late. */
START_TEST(test_ttl_expiry_bound_near_cache)
{
    rh_server_t *s = srv_start(NULL);
    cache_redis_opts_t r = ropts(s);
    cache_t *a = cstart((cache_opts_t){ 0 }, &r);
    cache_t *b = cstart((cache_opts_t){ 0 }, &r);
    cache_t *c = cstart((cache_opts_t){ 0 }, &r);
    int64_t t_put, last_a, last_b, last_c, until;
    int gone_a, gone_b, gone_c;

    ck_assert_int_eq(put_s(a, NULL, "k", "v", 300), 0);
    t_put = now_ms();
    expect_value(a, NULL, "k", "v");
    expect_value(b, NULL, "k", "v");           /* B: near-cached at once */
    sleep_ms((int)(t_put + 200 - now_ms()));
    expect_value(c, NULL, "k", "v");           /* C: first read late */
    expect_value(c, NULL, "k", "v");
    /* Watch B until the value is gone, then C, then A: only reads after
     * the deadline matter, and each watch ends after it. */
    until = t_put + 1500;
    last_b = last_value_read(b, "k", until, &gone_b);
    last_c = last_value_read(c, "k", until, &gone_c);
    last_a = last_value_read(a, "k", until, &gone_a);
    ck_assert_msg(gone_b && gone_c && gone_a, "never expired (A %d, B %d, C %d)", gone_a,
                  gone_b, gone_c);
    ck_assert_msg(last_b < t_put + 300 + EXPIRY_SLACK_MS,
                  "B returned the value %lld ms after the put returned (TTL 300)",
                  (long long)(last_b - t_put));
    ck_assert_msg(last_c < t_put + 300 + EXPIRY_SLACK_MS,
                  "C (first read 200 ms in) returned the value %lld ms after the put "
                  "returned (TTL 300)", (long long)(last_c - t_put));
    ck_assert_msg(last_a < t_put + 300 + EXPIRY_SLACK_MS,
                  "A returned the value %lld ms after the put returned (TTL 300)",
                  (long long)(last_a - t_put));
    cfinish(a);
    cfinish(b);
    cfinish(c);
}
END_TEST

/* A key with a TTL reports a TTL until it is gone, also in its last
 * millisecond (when Redis's PTTL says 0): never CACHE_TTL_NONE, never more
 * than it was given.  Polled as fast as the calls go around its deadline,
 * through cache_ttl, a GET call's out_ttl_ms and cache_all. */
START_TEST(test_ttl_last_millisecond)
{
    rh_server_t *s = srv_start(NULL);
    cache_redis_opts_t r = ropts(s);
    cache_t *a = cstart((cache_opts_t){ 0 }, &r);
    cache_t *b = cstart((cache_opts_t){ 0 }, &r);
    int round;

    for (round = 0; round < 3; round++) {
        int64_t t_put, ttl;
        long polls = 0;
        int rc = 0;

        ck_assert_int_eq(put_s(a, NULL, "k", "v", 200), 0);
        t_put = now_ms();
        sleep_ms((int)(t_put + 150 - now_ms()));
        while (now_ms() < t_put + 1000) {
            char buf[8];
            size_t len;
            cache_op_t g = { .kind = CACHE_OP_GET, .key = "k", .key_len = 1, .buf = buf,
                             .cap = sizeof(buf), .out_len = &len, .out_ttl_ms = &ttl };

            polls++;
            switch (polls % 3) {
            case 0:
                ttl = -12345;
                rc = cache_ttl(b, NULL, "k", 1, &ttl);
                break;
            case 1:
                ttl = -12345;
                rc = cache_call(b, &g, CALL_MS);
                break;
            default: {
                cache_record_t *recs = NULL;
                size_t n = 0;

                rc = cache_all(b, NULL, "k", &recs, &n, CALL_MS);
                ck_assert_int_eq(rc, 0);
                ck_assert_uint_le(n, 1);
                rc = n == 1 ? 0 : -ENOENT;
                ttl = n == 1 ? recs[0].ttl_ms : 0;
                cache_records_free(recs);
                break;
            }
            }
            if (rc == -ENOENT)
                break;
            ck_assert_int_eq(rc, 0);
            ck_assert_msg(ttl >= 0 && ttl <= 200,
                          "round %d, %s %lld ms after the put: ttl %lld (CACHE_TTL_NONE is "
                          "%lld) for a key put with ttl 200", round,
                          polls % 3 == 0 ? "cache_ttl" : polls % 3 == 1 ? "GET call"
                                                                       : "cache_all",
                          (long long)(now_ms() - t_put), (long long)ttl,
                          (long long)CACHE_TTL_NONE);
        }
        ck_assert_msg(rc == -ENOENT, "the key did not expire");
    }
    cfinish(a);
    cfinish(b);
}
END_TEST

/* ------------------------------------------------------------------ */
/* near                                                                 */

START_TEST(test_near_hit_and_invalidation)
{
    rh_server_t *s = srv_start(NULL);
    cache_redis_opts_t r = ropts(s);
    cache_t *a = cstart((cache_opts_t){ 0 }, &r);
    cache_t *b = cstart((cache_opts_t){ 0 }, &r);
    cache_stats_t st0, st1, st2;
    int64_t dt;

    ck_assert_int_eq(put_s(a, NULL, "k", "v1", CACHE_TTL_NONE), 0);
    sleep_ms(NEAR_SETTLE_MS);
    st0 = stats_of(b);
    expect_value(b, NULL, "k", "v1");          /* from Redis */
    st1 = stats_of(b);
    ck_assert_uint_eq(st1.remote_reads, st0.remote_reads + 1);
    ck_assert_uint_eq(st1.entries, st0.entries + 1);
    expect_value(b, NULL, "k", "v1");          /* from the near-cache */
    st2 = stats_of(b);
    ck_assert_msg(st2.remote_reads == st1.remote_reads,
                  "a second cache_get went to Redis (remote_reads %llu -> %llu)",
                  (unsigned long long)st1.remote_reads, (unsigned long long)st2.remote_reads);
    ck_assert_uint_eq(st2.hits, st1.hits + 1);

    /* A overwrites: B's direct read follows once the invalidation has
     * arrived, and counts it.  (No synchronous read on B in between: a GET
     * call refreshes or drops B's entry itself, and the invalidation then
     * may find nothing to drop.) */
    ck_assert_int_eq(put_s(a, NULL, "k", "v2", CACHE_TTL_NONE), 0);
    dt = poll_get(b, NULL, "k", "v2", INVAL_WAIT_MS);
    ck_assert_msg(dt >= 0, "B still serves the overwritten value after %d ms", INVAL_WAIT_MS);
    st1 = stats_of(b);
    ck_assert_msg(st1.invalidations > st2.invalidations,
                  "B's invalidations did not increase (%llu)",
                  (unsigned long long)st1.invalidations);
    /* B's synchronous read sees A's write at once. */
    ck_assert_int_eq(put_s(a, NULL, "k", "v3", CACHE_TTL_NONE), 0);
    expect_sync_value(b, NULL, "k", "v3");
    expect_eventually(b, NULL, "k", "v3");
    /* A delete, the same way. */
    sleep_ms(NEAR_SETTLE_MS);
    expect_value(b, NULL, "k", "v3");
    st1 = stats_of(b);
    ck_assert_int_eq(del_s(a, NULL, "k"), 0);
    expect_eventually(b, NULL, "k", NULL);
    st2 = stats_of(b);
    ck_assert_uint_gt(st2.invalidations, st1.invalidations);
    expect_sync_missing(b, NULL, "k");

    /* An instance's own writes: seen by its direct reads at once, also
     * when the key was in its near-cache; they are not "invalidations"
     * (near-cache keys dropped for other writers). */
    sleep_ms(NEAR_SETTLE_MS);
    st1 = stats_of(b);
    ck_assert_int_eq(put_s(b, NULL, "own", "b1", CACHE_TTL_NONE), 0);
    expect_value(b, NULL, "own", "b1");
    ck_assert_int_eq(put_s(b, NULL, "own", "b2", CACHE_TTL_NONE), 0);
    expect_value(b, NULL, "own", "b2");
    ck_assert_int_eq(del_s(b, NULL, "own"), 0);
    expect_missing(b, NULL, "own");
    ck_assert_int_eq(put_s(b, NULL, "own", "b3", CACHE_TTL_NONE), 0);
    expect_value(b, NULL, "own", "b3");
    sleep_ms(NEAR_SETTLE_MS);
    st2 = stats_of(b);
    ck_assert_msg(st2.invalidations == st1.invalidations,
                  "B's own writes counted as invalidations (%llu -> %llu)",
                  (unsigned long long)st1.invalidations, (unsigned long long)st2.invalidations);
    /* ... and A, which reads it, follows. */
    sleep_ms(NEAR_SETTLE_MS);
    expect_value(a, NULL, "own", "b3");
    ck_assert_int_eq(put_s(b, NULL, "own", "b4", CACHE_TTL_NONE), 0);
    expect_eventually(a, NULL, "own", "b4");
    ck_assert_int_eq(del_s(b, NULL, "own"), 0);
    expect_eventually(a, NULL, "own", NULL);
    printf("near: invalidation after %lld ms\n", (long long)dt);
    cfinish(a);
    cfinish(b);
}
END_TEST

/* no_near_cache: every cache_get is a read from Redis, so it also sees
 * every write that returned before it, at once. */
START_TEST(test_near_disabled)
{
    rh_server_t *s = srv_start(NULL);
    cache_redis_opts_t r = ropts(s), rn = ropts(s);
    cache_t *a, *b;
    cache_stats_t st0, st1;
    int i;

    rn.no_near_cache = 1;
    a = cstart((cache_opts_t){ 0 }, &r);
    b = cstart((cache_opts_t){ 0 }, &rn);
    ck_assert_int_eq(put_s(a, NULL, "k", "v0", CACHE_TTL_NONE), 0);
    st0 = stats_of(b);
    for (i = 0; i < 3; i++)
        expect_value(b, NULL, "k", "v0");
    expect_missing(b, NULL, "nope");
    st1 = stats_of(b);
    ck_assert_uint_eq(st1.remote_reads, st0.remote_reads + 4);
    ck_assert_uint_eq(st1.hits, st0.hits + 3);
    ck_assert_uint_eq(st1.misses, st0.misses + 1);
    ck_assert_uint_eq(st1.entries, 0);
    for (i = 1; i <= 20; i++) {
        char v[16];

        snprintf(v, sizeof(v), "v%d", i);
        ck_assert_int_eq(put_s(a, NULL, "k", v, CACHE_TTL_NONE), 0);
        expect_value(b, NULL, "k", v);
    }
    ck_assert_int_eq(del_s(a, NULL, "k"), 0);
    expect_missing(b, NULL, "k");
    ck_assert_uint_eq(stats_of(b).entries, 0);
    cfinish(a);
    cfinish(b);
}
END_TEST

/* near_ttl_ms bounds a near-cache entry's life: after it, the next read
 * goes to Redis again. */
START_TEST(test_near_ttl_bound)
{
    rh_server_t *s = srv_start(NULL);
    cache_redis_opts_t r = ropts(s), rn = ropts(s);
    cache_t *a, *b;
    cache_stats_t st0, st1, st2;

    rn.near_ttl_ms = 200;
    a = cstart((cache_opts_t){ 0 }, &r);
    b = cstart((cache_opts_t){ 0 }, &rn);
    ck_assert_int_eq(put_s(a, NULL, "k", "v", CACHE_TTL_NONE), 0);
    sleep_ms(NEAR_SETTLE_MS);
    st0 = stats_of(b);
    expect_value(b, NULL, "k", "v");
    expect_value(b, NULL, "k", "v");
    st1 = stats_of(b);
    ck_assert_uint_eq(st1.remote_reads, st0.remote_reads + 1);
    sleep_ms(350);
    expect_value(b, NULL, "k", "v");
    st2 = stats_of(b);
    ck_assert_msg(st2.remote_reads == st1.remote_reads + 1,
                  "a near-cache entry older than near_ttl_ms was served (remote_reads %llu "
                  "-> %llu)", (unsigned long long)st1.remote_reads,
                  (unsigned long long)st2.remote_reads);
    cfinish(a);
    cfinish(b);
}
END_TEST

/* max_entries bounds the near-cache (reads stay right). */
START_TEST(test_near_bounded)
{
    rh_server_t *s = srv_start(NULL);
    cache_redis_opts_t r = ropts(s);
    cache_t *a = cstart((cache_opts_t){ 0 }, &r);
    cache_t *b = cstart((cache_opts_t){ .max_entries = 2 }, &r);
    char key[16], val[16];
    int i, round;
    cache_stats_t st;

    for (i = 0; i < 6; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        snprintf(val, sizeof(val), "v%d", i);
        ck_assert_int_eq(put_s(a, NULL, key, val, CACHE_TTL_NONE), 0);
    }
    sleep_ms(NEAR_SETTLE_MS);
    for (round = 0; round < 2; round++) {
        for (i = 0; i < 6; i++) {
            snprintf(key, sizeof(key), "k%d", i);
            snprintf(val, sizeof(val), "v%d", i);
            expect_value(b, NULL, key, val);
            st = stats_of(b);
            ck_assert_msg(st.entries <= 2, "near-cache holds %llu entries, max_entries 2",
                          (unsigned long long)st.entries);
        }
    }
    ck_assert_uint_gt(stats_of(b).evictions, 0);
    /* max_bytes: a record too big for the near-cache is still read (from
     * Redis, every time), and the near-cache stays within its bound. */
    {
        cache_t *m = cstart((cache_opts_t){ .max_bytes = 64 }, &r);
        char big[101];
        cache_stats_t st0;

        memset(big, 'b', 100);
        big[100] = '\0';
        ck_assert_int_eq(put_s(a, NULL, "big", big, CACHE_TTL_NONE), 0);
        ck_assert_int_eq(put_s(a, NULL, "small", "s", CACHE_TTL_NONE), 0);
        sleep_ms(NEAR_SETTLE_MS);
        st0 = stats_of(m);
        expect_value(m, NULL, "big", big);
        expect_value(m, NULL, "big", big);
        expect_value(m, NULL, "small", "s");
        st = stats_of(m);
        ck_assert_uint_eq(st.remote_reads, st0.remote_reads + 3);
        ck_assert_msg(st.bytes <= 64, "near-cache of %llu bytes, max_bytes 64",
                      (unsigned long long)st.bytes);
        cfinish(m);
    }
    cfinish(a);
    cfinish(b);
}
END_TEST

/*
 * Writes by a plain Redis client (not a gencache instance) reach the
 * near-cache the same way: Redis's tracking reports every change of a key
 * under the prefix, whoever made it.  A raw DEL of one key, then a
 * FLUSHALL (which Redis reports as "everything changed").
 */
START_TEST(test_near_third_party_writes)
{
    rh_server_t *s = srv_start(NULL);
    cache_redis_opts_t r = ropts(s);
    cache_t *a = cstart((cache_opts_t){ 0 }, &r);
    cache_t *b = cstart((cache_opts_t){ 0 }, &r);
    static const char rk[] = "gencache:cache\0k";
    const char *argv[2] = { "DEL", rk };
    size_t argl[2] = { 3, sizeof(rk) - 1 };
    rh_reply_t *rep;

    ck_assert_int_eq(put_s(a, NULL, "k", "v", CACHE_TTL_NONE), 0);
    ck_assert_int_eq(put_s(a, NULL, "k2", "v2", CACHE_TTL_NONE), 0);
    sleep_ms(NEAR_SETTLE_MS);
    expect_value(b, NULL, "k", "v");
    expect_value(b, NULL, "k2", "v2");
    expect_value(a, NULL, "k", "v");
    rep = rh_server_cmdb(s, 0, 2, argv, argl);
    ck_assert_ptr_nonnull(rep);
    ck_assert_msg(rep->type == ':' && rep->integer == 1,
                  "raw DEL of \"gencache:cache\\0k\": the key is not where the header "
                  "says (type %c, %lld)", rep->type, rep->integer);
    rh_reply_free(rep);
    expect_eventually(b, NULL, "k", NULL);
    expect_eventually(a, NULL, "k", NULL);
    expect_value(b, NULL, "k2", "v2");
    rep = rh_server_cmd(s, 0, "FLUSHALL", NULL);
    ck_assert_ptr_nonnull(rep);
    ck_assert_int_eq(rep->type, '+');
    rh_reply_free(rep);
    expect_eventually(b, NULL, "k2", NULL);
    /* Still in business afterwards. */
    ck_assert_int_eq(put_s(a, NULL, "k3", "v3", CACHE_TTL_NONE), 0);
    sleep_ms(NEAR_SETTLE_MS);
    expect_value(b, NULL, "k3", "v3");
    ck_assert_int_eq(put_s(a, NULL, "k3", "v4", CACHE_TTL_NONE), 0);
    expect_eventually(b, NULL, "k3", "v4");
    cfinish(a);
    cfinish(b);
}
END_TEST

/* ------------------------------------------------------------------ */
/* all                                                                  */

static void
expect_all(cache_t *c, const char *ns, const char *pat, const char *const *want)
{
    cache_record_t *recs = (cache_record_t *)1;
    size_t n = 999, i, nwant = 0;
    int rc;

    while (want[nwant] != NULL)
        nwant++;
    rc = cache_all(c, ns, pat, &recs, &n, CALL_MS);
    ck_assert_msg(rc == 0, "all(%s, \"%s\"): %d (%s)", NSNAME(ns), pat ? pat : "(null)", rc,
                  cache_strerror(rc));
    ck_assert_msg(n == nwant, "all(%s, \"%s\"): %zu records, want %zu", NSNAME(ns),
                  pat ? pat : "(null)", n, nwant);
    for (i = 0; i < n; i++) {
        size_t wl = strlen(want[i]);

        ck_assert_msg(recs[i].key_len == wl && memcmp(recs[i].key, want[i], wl) == 0,
                      "all(%s, \"%s\")[%zu] = \"%.*s\", want \"%s\"", NSNAME(ns),
                      pat ? pat : "(null)", i, (int)recs[i].key_len,
                      (const char *)recs[i].key, want[i]);
        ck_assert_msg(recs[i].value_len == wl && memcmp(recs[i].value, want[i], wl) == 0,
                      "all(\"%s\")[%zu]: wrong value", pat ? pat : "(null)", i);
    }
    cache_records_free(recs);
}

/* Both instances list the same records (SCAN of Redis, not a near-cache),
 * and a prefix with glob characters is a prefix, not a pattern.  (Order,
 * values, TTLs: conformance.) */
START_TEST(test_all_order_values_ttls)
{
    rh_server_t *s = srv_start(NULL);
    cache_redis_opts_t r = ropts(s), rp = ropts(s), rx = ropts(s);
    cache_t *a = cstart((cache_opts_t){ 0 }, &r);
    cache_t *b = cstart((cache_opts_t){ 0 }, &r);
    cache_t *p, *x;

    ck_assert_int_eq(put_s(a, NULL, "b", "b", CACHE_TTL_NONE), 0);
    ck_assert_int_eq(put_s(a, NULL, "a", "a", CACHE_TTL_NONE), 0);
    ck_assert_int_eq(put_s(b, NULL, "a1", "a1", CACHE_TTL_NONE), 0);
    expect_all(a, NULL, NULL, (const char *const[]){ "a", "a1", "b", NULL });
    expect_all(b, NULL, "*", (const char *const[]){ "a", "a1", "b", NULL });
    rp.prefix = "p*:";
    rx.prefix = "px:";
    p = cstart((cache_opts_t){ 0 }, &rp);
    x = cstart((cache_opts_t){ 0 }, &rx);
    ck_assert_int_eq(put_s(p, NULL, "mine", "mine", CACHE_TTL_NONE), 0);
    ck_assert_int_eq(put_s(x, NULL, "theirs", "theirs", CACHE_TTL_NONE), 0);
    expect_all(p, NULL, NULL, (const char *const[]){ "mine", NULL });
    expect_all(x, NULL, "*", (const char *const[]){ "theirs", NULL });
    cfinish(p);
    cfinish(x);
    cfinish(a);
    cfinish(b);
}
END_TEST

/* A namespace among many other keys: SCAN pages that match nothing do not
 * end the listing; a large namespace is listed whole. */
START_TEST(test_all_many_keys)
{
    rh_server_t *s = srv_start(NULL);
    cache_redis_opts_t r = ropts(s);
    cache_t *a = cstart((cache_opts_t){ 0 }, &r);
    cache_t *b = cstart((cache_opts_t){ 0 }, &r);
    enum { NOISE = 3000, MANY = 300 };
    cache_op_t *items = calloc(NOISE, sizeof(*items));
    char (*keys)[24] = calloc(NOISE, sizeof(*keys));
    cache_op_t batch = { .kind = CACHE_OP_PUT_BATCH, .batch = items };
    cache_record_t *recs;
    size_t n, i;

    ck_assert(items != NULL && keys != NULL);
    for (i = 0; i < NOISE; i++) {
        snprintf(keys[i], sizeof(keys[i]), "n%05zu", i);
        items[i] = (cache_op_t){ .kind = CACHE_OP_PUT, .ns = "noise", .key = keys[i],
                                 .key_len = strlen(keys[i]), .value = "x", .value_len = 1,
                                 .ttl_ms = CACHE_TTL_NONE };
    }
    batch.batch_len = NOISE;
    ck_assert_int_eq(cache_call(a, &batch, 30000), 0);
    for (i = 0; i < MANY; i++) {
        snprintf(keys[i], sizeof(keys[i]), "m%05zu", MANY - 1 - i);
        items[i].ns = "many";
        items[i].key_len = strlen(keys[i]);
        items[i].value = keys[i];
        items[i].value_len = items[i].key_len;
    }
    batch.batch_len = MANY;
    ck_assert_int_eq(cache_call(a, &batch, 30000), 0);
    for (i = 0; i < 5; i++) {
        char k[8];

        snprintf(k, sizeof(k), "f%zu", i);
        ck_assert_int_eq(put_s(a, "few", k, k, CACHE_TTL_NONE), 0);
    }
    expect_all(b, "few", NULL, (const char *const[]){ "f0", "f1", "f2", "f3", "f4", NULL });
    expect_all(b, "few", "f[13]", (const char *const[]){ "f1", "f3", NULL });
    ck_assert_int_eq(cache_all(b, "many", NULL, &recs, &n, CALL_MS), 0);
    ck_assert_uint_eq(n, MANY);
    for (i = 0; i < n; i++) {
        char k[24];

        snprintf(k, sizeof(k), "m%05zu", i);
        ck_assert_msg(recs[i].key_len == 6 && memcmp(recs[i].key, k, 6) == 0 &&
                          recs[i].value_len == 6 && memcmp(recs[i].value, k, 6) == 0,
                      "many[%zu] is \"%.*s\", want %s", i, (int)recs[i].key_len,
                      (const char *)recs[i].key, k);
    }
    cache_records_free(recs);
    ck_assert_int_eq(cache_all(a, "noise", "n0000?", &recs, &n, CALL_MS), 0);
    ck_assert_uint_eq(n, 10);
    cache_records_free(recs);
    free(items);
    free(keys);
    cfinish(a);
    cfinish(b);
}
END_TEST

/* ------------------------------------------------------------------ */
/* writes: batch, async                                                 */

typedef struct batcher {
    cache_t *c;
    atomic_int stop;
    atomic_long batches;
    int rc;
} batcher_t;

static void *
batcher_main(void *p)
{
    batcher_t *bt = p;
    long i;

    for (i = 0; !atomic_load(&bt->stop); i++) {
        char v[24];
        cache_op_t items[2] = {
            { .kind = CACHE_OP_PUT, .ns = "at", .key = "x", .key_len = 1, .value = v,
              .value_len = 8, .ttl_ms = CACHE_TTL_NONE },
            { .kind = CACHE_OP_PUT, .ns = "at", .key = "y", .key_len = 1, .value = v,
              .value_len = 8, .ttl_ms = CACHE_TTL_NONE },
        };
        cache_op_t batch = { .kind = CACHE_OP_PUT_BATCH, .batch = items, .batch_len = 2 };

        snprintf(v, sizeof(v), "%08ld", i);
        bt->rc = cache_call(bt->c, &batch, CALL_MS);
        if (bt->rc != 0)
            break;
        atomic_fetch_add(&bt->batches, 1);
    }
    return NULL;
}

/* "A batch is one MULTI/EXEC: atomic in Redis too": a raw client reading
 * both keys in one MULTI/EXEC never sees half a batch. */
START_TEST(test_batch_atomic_in_redis)
{
    rh_server_t *s = srv_start(NULL);
    cache_redis_opts_t r = ropts(s);
    cache_t *a = cstart((cache_opts_t){ 0 }, &r);
    static const char kx[] = "gencache:at\0x", ky[] = "gencache:at\0y";
    const char *multi[1] = { "MULTI" }, *exec[1] = { "EXEC" };
    const char *gx[2] = { "GET", kx }, *gy[2] = { "GET", ky };
    size_t lx[2] = { 3, sizeof(kx) - 1 }, ly[2] = { 3, sizeof(ky) - 1 };
    batcher_t bt = { .c = a };
    pthread_t th;
    rh_conn_t *conn = rh_server_conn(s, 0);
    int64_t t0;
    long checks = 0, both = 0;

    ck_assert_ptr_nonnull(conn);
    ck_assert_int_eq(pthread_create(&th, NULL, batcher_main, &bt), 0);
    t0 = now_ms();
    while (now_ms() - t0 < 500) {
        rh_reply_t *rep[4];
        int i;

        ck_assert_int_eq(rh_conn_send(conn, 1, multi, NULL), 0);
        ck_assert_int_eq(rh_conn_send(conn, 2, gx, lx), 0);
        ck_assert_int_eq(rh_conn_send(conn, 2, gy, ly), 0);
        ck_assert_int_eq(rh_conn_send(conn, 1, exec, NULL), 0);
        for (i = 0; i < 4; i++) {
            rep[i] = rh_conn_read(conn);
            ck_assert_ptr_nonnull(rep[i]);
        }
        ck_assert_int_eq(rep[3]->type, '*');
        ck_assert_uint_eq(rep[3]->n, 2);
        if (rep[3]->elem[0].type == 'n' || rep[3]->elem[1].type == 'n') {
            ck_assert_msg(rep[3]->elem[0].type == rep[3]->elem[1].type,
                          "half a batch: one key set, the other not");
        } else {
            rh_reply_t *x = &rep[3]->elem[0], *y = &rep[3]->elem[1];

            /* The stored value is a 12-byte header and the value. */
            ck_assert_msg(x->len == 12 + 8 && y->len == 12 + 8,
                          "stored values of %zu and %zu bytes, want 12 + 8", x->len, y->len);
            ck_assert_msg(memcmp(x->str + 12, y->str + 12, 8) == 0,
                          "half a batch: x = %.8s, y = %.8s", x->str + 12, y->str + 12);
            both++;
        }
        for (i = 0; i < 4; i++)
            rh_reply_free(rep[i]);
        checks++;
    }
    atomic_store(&bt.stop, 1);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    rh_conn_close(conn);
    ck_assert_int_eq(bt.rc, 0);
    printf("batch atomicity: %ld reads (%ld of both keys) over %ld batches\n", checks, both,
           atomic_load(&bt.batches));
    ck_assert_int_gt(both, 10);
    ck_assert_int_gt(atomic_load(&bt.batches), 10);
    cfinish(a);
}
END_TEST

/*
 * Long streams of casts go through the overlapped pipeline (commands sent
 * every 512, the previous batch's replies read back meanwhile): every
 * write lands, in order, deletes included; and what stays owed is read
 * back without any cache_sync (stats.puts reaches the count by itself).
 */
START_TEST(test_async_stream)
{
    rh_server_t *s = srv_start(NULL);
    cache_redis_opts_t r = ropts(s);
    cache_t *a = cstart((cache_opts_t){ .async_writes = 1 }, &r);
    cache_t *b = cstart((cache_opts_t){ 0 }, &r);
    const int n = 5000;
    uint64_t puts0 = stats_of(a).puts, dels0 = stats_of(a).deletes;
    char key[16], val[24];
    cache_record_t *recs;
    size_t nrec, j;
    int64_t t0;
    int i;

    for (i = 0; i < n; i++) {
        snprintf(key, sizeof(key), "s%05d", i);
        snprintf(val, sizeof(val), "first-%d", i);
        ck_assert_int_eq(put_s(a, "stream", key, val, CACHE_TTL_NONE), 0);
    }
    for (i = 0; i < n; i++) {
        snprintf(key, sizeof(key), "s%05d", i);
        if (i % 10 == 0) {
            ck_assert_int_eq(del_s(a, "stream", key), 0);
        } else if (i % 10 == 1) {
            snprintf(val, sizeof(val), "second-%d", i);
            ck_assert_int_eq(put_s(a, "stream", key, val, CACHE_TTL_NONE), 0);
        }
    }
    /* Everything is confirmed by Redis without a sync, promptly. */
    t0 = now_ms();
    while (stats_of(a).puts - puts0 < (uint64_t)(n + n / 10) && now_ms() - t0 < 5000)
        sleep_ms(2);
    ck_assert_uint_eq(stats_of(a).puts - puts0, (uint64_t)(n + n / 10));
    ck_assert_uint_eq(stats_of(a).deletes - dels0, (uint64_t)(n / 10));
    ck_assert_uint_eq(stats_of(a).remote_errors, 0);
    ck_assert_int_eq(cache_sync(a, CALL_MS), 0);
    ck_assert_int_eq(cache_all(b, "stream", NULL, &recs, &nrec, CALL_MS), 0);
    ck_assert_uint_eq(nrec, (size_t)(n - n / 10));
    for (i = 0, j = 0; i < n; i++) {
        if (i % 10 == 0)
            continue;
        snprintf(key, sizeof(key), "s%05d", i);
        snprintf(val, sizeof(val), i % 10 == 1 ? "second-%d" : "first-%d", i);
        ck_assert_uint_lt(j, nrec);
        ck_assert_uint_eq(recs[j].key_len, strlen(key));
        ck_assert_int_eq(memcmp(recs[j].key, key, strlen(key)), 0);
        ck_assert_uint_eq(recs[j].value_len, strlen(val));
        ck_assert_int_eq(memcmp(recs[j].value, val, strlen(val)), 0);
        j++;
    }
    cache_records_free(recs);
    /* The writer's own direct reads agree after the sync. */
    expect_missing(a, "stream", "s00000");
    expect_value(a, "stream", "s00001", "second-1");
    expect_value(a, "stream", "s00002", "first-2");
    cfinish(a);
    cfinish(b);
}
END_TEST

/* ------------------------------------------------------------------ */
/* stats                                                                */

START_TEST(test_stats_counters)
{
    rh_server_t *s = srv_start(NULL);
    cache_redis_opts_t r = ropts(s);
    cache_t *a = cstart((cache_opts_t){ 0 }, &r);
    cache_t *b = cstart((cache_opts_t){ 0 }, &r);
    cache_t *l = NULL;
    cache_stats_t st;
    char buf[16];

    st = stats_of(a);
    ck_assert_uint_eq(st.connected, 1);
    ck_assert_uint_eq(st.puts, 0);
    ck_assert_uint_eq(st.deletes, 0);
    ck_assert_uint_eq(st.hits, 0);
    ck_assert_uint_eq(st.misses, 0);
    ck_assert_uint_eq(st.remote_reads, 0);
    ck_assert_uint_eq(st.remote_errors, 0);
    ck_assert_uint_eq(st.reconnects, 0);
    ck_assert_uint_eq(st.restarts, 0);
    ck_assert_uint_eq(st.entries, 0);

    ck_assert_int_eq(put_s(a, NULL, "a", "1", CACHE_TTL_NONE), 0);
    ck_assert_int_eq(put_s(a, NULL, "b", "22", CACHE_TTL_NONE), 0);
    ck_assert_int_eq(put_s(a, NULL, "a", "333", CACHE_TTL_NONE), 0);
    ck_assert_int_eq(put_s(a, NULL, "", "x", CACHE_TTL_NONE), -EINVAL);   /* no put */
    ck_assert_int_eq(del_s(a, NULL, "b"), 0);
    ck_assert_int_eq(del_s(a, NULL, "b"), -ENOENT);                      /* no delete */
    st = stats_of(a);
    ck_assert_uint_eq(st.puts, 3);
    ck_assert_uint_eq(st.deletes, 1);
    ck_assert_uint_eq(st.remote_errors, 0);
    ck_assert_uint_eq(st.connected, 1);

    sleep_ms(NEAR_SETTLE_MS);
    expect_value(b, NULL, "a", "333");     /* hit, remote read */
    expect_value(b, NULL, "a", "333");     /* hit, near-cache */
    expect_missing(b, NULL, "zz");         /* miss, remote read */
    st = stats_of(b);
    ck_assert_msg(st.remote_reads == 2, "remote_reads %llu, want 2 (two near-cache misses)",
                  (unsigned long long)st.remote_reads);
    ck_assert_int_eq(sget_s(b, NULL, "a", buf, sizeof(buf), NULL), 0);   /* hit */
    st = stats_of(b);
    ck_assert_uint_eq(st.hits, 3);
    ck_assert_uint_eq(st.misses, 1);
    ck_assert_uint_eq(st.entries, 1);
    ck_assert_uint_gt(st.bytes, 0);
    ck_assert_uint_eq(st.puts, 0);
    ck_assert_uint_eq(st.connected, 1);
    ck_assert_uint_eq(st.reconnects, 0);
    ck_assert_uint_eq(st.remote_errors, 0);

    /* A local cache has the Redis fields at 0. */
    ck_assert_int_eq(cache_start(&(cache_opts_t){ 0 }, &l), 0);
    ck_assert_int_eq(put_s(l, NULL, "k", "v", CACHE_TTL_NONE), 0);
    expect_value(l, NULL, "k", "v");
    st = stats_of(l);
    ck_assert_uint_eq(st.remote_reads, 0);
    ck_assert_uint_eq(st.remote_errors, 0);
    ck_assert_uint_eq(st.invalidations, 0);
    ck_assert_uint_eq(st.reconnects, 0);
    ck_assert_uint_eq(st.connected, 0);
    cfinish(l);
    cfinish(a);
    cfinish(b);
}
END_TEST

/* ------------------------------------------------------------------ */
/* failure                                                              */

/* A PUT call with timeout_ms; asserts it returned in time. */
static int
timed_put(cache_t *c, const char *key, const char *val, int timeout_ms, int64_t *took)
{
    cache_op_t op = { .kind = CACHE_OP_PUT, .key = key, .key_len = strlen(key), .value = val,
                      .value_len = strlen(val), .ttl_ms = CACHE_TTL_NONE };
    int64_t t0 = now_ms(), dt;
    int rc = cache_call(c, &op, timeout_ms);

    dt = now_ms() - t0;
    ck_assert_msg(dt < timeout_ms + CALL_SLACK_MS, "a call with timeout %d ms took %lld ms "
                  "(rc %d)", timeout_ms, (long long)dt, rc);
    if (took != NULL)
        *took = dt;
    return rc;
}

/* Poll puts until one succeeds (each must fail with a "down" error
 * meanwhile); the time it took, or -1. */
static int64_t
wait_put_ok(cache_t *c, const char *key, const char *val, int ms)
{
    int64_t t0 = now_ms();

    for (;;) {
        int rc = timed_put(c, key, val, 1000, NULL);

        if (rc == 0)
            return now_ms() - t0;
        /* -ETIMEDOUT / -ESRCH: a worker between incarnations (supervised). */
        ck_assert_msg(is_down_err(rc) || rc == -ETIMEDOUT || rc == -ESRCH,
                      "put while reconnecting: %d (%s)", rc, cache_strerror(rc));
        if (now_ms() - t0 > ms)
            return -1;
        sleep_ms(10);
    }
}

/* Every operation of c fails fast with a "down" error. */
static void
expect_all_ops_down(cache_t *c, const char *cached_key)
{
    char buf[16];
    int64_t ttl, t0;
    cache_record_t *recs = NULL;
    size_t n = 0;
    int rc;

#define DOWN_OP(expr, what)                                                              \
    do {                                                                                 \
        t0 = now_ms();                                                                   \
        rc = (expr);                                                                     \
        ck_assert_msg(is_down_err(rc), "%s while Redis is down: %d (%s)", what, rc,      \
                      cache_strerror(rc));                                               \
        ck_assert_msg(now_ms() - t0 < 1500, "%s while Redis is down took %lld ms", what, \
                      (long long)(now_ms() - t0));                                       \
    } while (0)

    DOWN_OP(put_s(c, NULL, "x", "y", CACHE_TTL_NONE), "put");
    DOWN_OP(del_s(c, NULL, "x"), "delete");
    DOWN_OP(get_s(c, NULL, "never-read", buf, sizeof(buf)), "cache_get (not near-cached)");
    DOWN_OP(get_s(c, NULL, cached_key, buf, sizeof(buf)),
            "cache_get of a near-cached key (serve_stale 0)");
    DOWN_OP(sget_s(c, NULL, cached_key, buf, sizeof(buf), NULL), "GET call");
    DOWN_OP(cache_ttl(c, NULL, cached_key, strlen(cached_key), &ttl), "cache_ttl");
    DOWN_OP(cache_touch(c, NULL, cached_key, strlen(cached_key)), "cache_touch");
    DOWN_OP(cache_all(c, NULL, NULL, &recs, &n, CALL_MS), "cache_all");
#undef DOWN_OP
}

START_TEST(test_failure_server_down_and_back)
{
    rh_server_t *s = srv_start(NULL);
    cache_redis_opts_t r = ropts(s);
    cache_t *a, *b;
    cache_stats_t st;
    int64_t t_stop, t0, dt;
    int saw_reset = 0, got_notconn = 0;

    r.reconnect_max_ms = 200;
    a = cstart((cache_opts_t){ 0 }, &r);
    b = cstart((cache_opts_t){ 0 }, &r);
    ck_assert_int_eq(put_s(a, NULL, "k", "v", CACHE_TTL_NONE), 0);
    ck_assert_int_eq(put_s(a, NULL, "k2", "v", CACHE_TTL_NONE), 0);
    sleep_ms(NEAR_SETTLE_MS);
    expect_value(b, NULL, "k", "v");
    expect_value(a, NULL, "k2", "v");

    srv_stop(s);
    t_stop = now_ms();
    /* A's puts fail (-ECONNRESET for one caught in flight, then
     * -ENOTCONN), each within its timeout. */
    while (now_ms() - t_stop < DOWN_WAIT_MS) {
        int rc = timed_put(a, "k", "while down", 1000, NULL);

        ck_assert_msg(is_down_err(rc), "put after the server stopped: %d (%s)", rc,
                      cache_strerror(rc));
        saw_reset |= rc == -ECONNRESET;
        if (rc == -ENOTCONN && stats_of(a).connected == 0) {
            got_notconn = 1;
            break;
        }
        sleep_ms(10);
    }
    ck_assert_msg(got_notconn, "no -ENOTCONN / connected 0 within %d ms", DOWN_WAIT_MS);
    ck_assert_msg(wait_connected(b, 0, DOWN_WAIT_MS) >= 0, "B still connected");
    st = stats_of(a);
    if (saw_reset)
        ck_assert_uint_gt(st.remote_errors, 0);
    expect_all_ops_down(a, "k2");
    expect_all_ops_down(b, "k");

    /* Back on the same port (empty: no persistence). */
    srv_restart(s);
    t0 = now_ms();
    dt = wait_put_ok(a, "k3", "after", UP_WAIT_MS);
    ck_assert_msg(dt >= 0, "puts still fail %d ms after the server came back", UP_WAIT_MS);
    st = stats_of(a);
    ck_assert_uint_eq(st.connected, 1);
    ck_assert_uint_ge(st.reconnects, 1);
    ck_assert_msg(wait_connected(b, 1, UP_WAIT_MS) >= 0, "B did not reconnect");
    ck_assert_uint_ge(stats_of(b).reconnects, 1);
    expect_sync_value(b, NULL, "k3", "after");
    /* The old data is gone, and no near-cache kept it. */
    expect_sync_missing(b, NULL, "k");
    expect_missing(b, NULL, "k");
    expect_missing(a, NULL, "k2");
    /* Invalidation works on the new connections. */
    ck_assert_int_eq(put_s(a, NULL, "k4", "v1", CACHE_TTL_NONE), 0);
    sleep_ms(NEAR_SETTLE_MS);
    expect_value(b, NULL, "k4", "v1");
    ck_assert_int_eq(put_s(a, NULL, "k4", "v2", CACHE_TTL_NONE), 0);
    expect_eventually(b, NULL, "k4", "v2");
    printf("failure: reconnected %lld ms after the restart\n", (long long)(now_ms() - t0));
    cfinish(a);
    cfinish(b);
}
END_TEST

/* A server that accepts but never answers (SIGSTOP): io_timeout_ms drops
 * the connection, the command gets -ECONNRESET; reconnection attempts hang
 * no call; after SIGCONT all works again, with the data. */
START_TEST(test_failure_hung_server)
{
    rh_server_t *s = srv_start(NULL);
    cache_redis_opts_t r = ropts(s);
    cache_t *a;
    int64_t t0, took;
    int rc;

    r.io_timeout_ms = 300;
    r.connect_timeout_ms = 300;
    r.reconnect_max_ms = 200;
    a = cstart((cache_opts_t){ 0 }, &r);
    ck_assert_int_eq(put_s(a, NULL, "k", "v", CACHE_TTL_NONE), 0);
    expect_value(a, NULL, "k", "v");

    ck_assert_int_eq(rh_server_freeze(s, 1), 0);
    rc = timed_put(a, "k2", "v2", CALL_MS, &took);
    ck_assert_msg(rc == -ECONNRESET, "put to a frozen server: %d (%s), want -ECONNRESET", rc,
                  cache_strerror(rc));
    ck_assert_msg(took >= 250 && took < 300 + 1500,
                  "-ECONNRESET after %lld ms with io_timeout_ms 300", (long long)took);
    /* While frozen: calls return within their timeout, never succeed. */
    t0 = now_ms();
    while (now_ms() - t0 < 1500) {
        rc = timed_put(a, "k3", "v3", 1000, NULL);
        ck_assert_msg(is_down_err(rc) || rc == -ETIMEDOUT,
                      "put to a frozen server: %d (%s)", rc, cache_strerror(rc));
        sleep_ms(20);
    }
    ck_assert_msg(wait_connected(a, 0, DOWN_WAIT_MS) >= 0, "connected stays 1");
    {
        char buf[16];

        rc = timed_put(a, "k3", "v3", 1000, NULL);
        ck_assert_msg(rc != 0, "put to a frozen server succeeded");
        rc = get_s(a, NULL, "k", buf, sizeof(buf));
        ck_assert_msg(rc != 0, "near-cached value served while disconnected (serve_stale 0)");
    }
    ck_assert_int_eq(rh_server_freeze(s, 0), 0);
    ck_assert_msg(wait_put_ok(a, "k4", "v4", UP_WAIT_MS) >= 0,
                  "puts still fail %d ms after the server was thawed", UP_WAIT_MS);
    ck_assert_uint_eq(stats_of(a).connected, 1);
    ck_assert_uint_ge(stats_of(a).reconnects, 1);
    /* "remote_errors: commands failed: error reply or lost link": the put
     * that got -ECONNRESET above is one. */
    ck_assert_msg(stats_of(a).remote_errors > 0,
                  "remote_errors is 0 after a put failed with -ECONNRESET");
    expect_sync_value(a, NULL, "k", "v");
    expect_value(a, NULL, "k4", "v4");
    cfinish(a);
}
END_TEST

/* The server drops the instances' connections (CLIENT KILL): they
 * reconnect, and no near-cache entry survives its invalidations' loss. */
START_TEST(test_failure_connections_killed)
{
    rh_server_t *s = srv_start(NULL);
    cache_redis_opts_t r = ropts(s);
    cache_t *a, *b;
    rh_reply_t *rep;

    r.reconnect_max_ms = 200;
    a = cstart((cache_opts_t){ 0 }, &r);
    b = cstart((cache_opts_t){ 0 }, &r);
    ck_assert_int_eq(put_s(a, NULL, "k", "v1", CACHE_TTL_NONE), 0);
    sleep_ms(NEAR_SETTLE_MS);
    expect_value(b, NULL, "k", "v1");

    /* Every connection (both instances, both connections each). */
    rep = rh_server_cmd(s, -1, "CLIENT", "KILL", "SKIPME", "yes", NULL);
    ck_assert_ptr_nonnull(rep);
    ck_assert_int_eq(rep->type, ':');
    ck_assert_msg(rep->integer >= 4, "CLIENT KILL killed %lld connections, want the two "
                  "of each instance", rep->integer);
    rh_reply_free(rep);
    ck_assert_msg(wait_put_ok(a, "k", "v2", UP_WAIT_MS) >= 0, "A did not recover");
    expect_eventually(b, NULL, "k", "v2");
    ck_assert_msg(wait_connected(b, 1, UP_WAIT_MS) >= 0, "B did not reconnect");
    ck_assert_uint_ge(stats_of(a).reconnects, 1);
    ck_assert_uint_ge(stats_of(b).reconnects, 1);

    /* Only the invalidation connections (the subscribers).  B's commands
     * still work, but it no longer hears of A's writes until it notices. */
    sleep_ms(NEAR_SETTLE_MS);
    expect_value(b, NULL, "k", "v2");
    rep = rh_server_cmd(s, -1, "CLIENT", "KILL", "TYPE", "pubsub", NULL);
    ck_assert_ptr_nonnull(rep);
    ck_assert_int_eq(rep->type, ':');
    printf("failure: CLIENT KILL TYPE pubsub killed %lld connections\n", rep->integer);
    rh_reply_free(rep);
    sleep_ms(NEAR_SETTLE_MS);
    ck_assert_int_eq(put_s(a, NULL, "k", "v3", CACHE_TTL_NONE), 0);
    expect_eventually(b, NULL, "k", "v3");
    sleep_ms(500);     /* whatever reconnection that takes */
    expect_value(b, NULL, "k", "v3");
    ck_assert_int_eq(put_s(a, NULL, "k", "v4", CACHE_TTL_NONE), 0);
    expect_eventually(b, NULL, "k", "v4");
    cfinish(a);
    cfinish(b);
}
END_TEST

/*
 * Only the command connection dies (the server's idle `timeout` exempts
 * subscribers): tracking lives on it, so reports stop with no error on the
 * invalidation connection.  The worker's health check must notice, and B
 * must not keep serving a value A replaced for near_ttl_ms (30 s here).
 */
START_TEST(test_failure_cmd_link_only)
{
    rh_server_t *s = srv_start(NULL);
    cache_redis_opts_t r = ropts(s);
    cache_t *a, *b;
    rh_reply_t *rep;
    int64_t dt;

    r.reconnect_max_ms = 100;
    a = cstart((cache_opts_t){ 0 }, &r);
    b = cstart((cache_opts_t){ 0 }, &r);
    ck_assert_int_eq(put_s(a, NULL, "k", "v1", CACHE_TTL_NONE), 0);
    sleep_ms(NEAR_SETTLE_MS);
    expect_value(b, NULL, "k", "v1");
    /* Kill only B's command connection (type normal; its subscriber is a
     * pubsub client and survives), the way an idle timeout would. */
    rep = rh_server_cmd(s, -1, "CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes", NULL);
    ck_assert_ptr_nonnull(rep);
    rh_reply_free(rep);
    sleep_ms(50);
    /* A (also cut) comes back; its write must reach B's reads. */
    ck_assert_msg(wait_put_ok(a, "k", "v2", UP_WAIT_MS) >= 0, "A did not recover");
    dt = poll_get(b, NULL, "k", "v2", 5000);
    ck_assert_msg(dt >= 0, "B still serves the replaced value 5 s after the write "
                  "(its command link died; near_ttl_ms is 30 s)");
    printf("failure: command link only: B saw the new value after %lld ms\n", (long long)dt);
    cfinish(a);
    cfinish(b);
}
END_TEST

/*
 * A batch Redis refuses to run as a transaction (an ACL user without
 * MULTI): the batch fails with -EIO, and the near-cache does not keep a
 * value Redis no longer holds.
 */
START_TEST(test_failure_batch_refused)
{
    rh_server_t *s = srv_start(NULL);
    cache_redis_opts_t r = ropts(s), ra;
    cache_op_t items[2], op;
    cache_t *a;
    rh_reply_t *rep;

    rep = rh_server_cmd(s, -1, "ACL", "SETUSER", "nomulti", "on", ">pw", "~*", "&*", "+@all",
                        "-multi", NULL);
    ck_assert_ptr_nonnull(rep);
    ck_assert_int_eq(rep->type, '+');
    rh_reply_free(rep);
    ra = r;
    ra.username = "nomulti";
    ra.password = "pw";
    a = cstart((cache_opts_t){ 0 }, &ra);
    ck_assert_int_eq(put_s(a, NULL, "x", "old", CACHE_TTL_NONE), 0);
    expect_value(a, NULL, "x", "old");
    items[0] = (cache_op_t){ .kind = CACHE_OP_PUT, .key = "x", .key_len = 1, .value = "new",
                             .value_len = 3, .ttl_ms = CACHE_TTL_NONE };
    items[1] = (cache_op_t){ .kind = CACHE_OP_PUT, .key = "y", .key_len = 1, .value = "new",
                             .value_len = 3, .ttl_ms = CACHE_TTL_NONE };
    op = (cache_op_t){ .kind = CACHE_OP_PUT_BATCH, .batch = items, .batch_len = 2 };
    ck_assert_int_eq(cache_call(a, &op, CALL_MS), -EIO);
    /* Whatever Redis holds now, A's direct read agrees with a sync read. */
    {
        char buf[16], sbuf[16];
        size_t n = 0, sn = 0;
        cache_op_t g = { .kind = CACHE_OP_GET, .key = "x", .key_len = 1, .buf = sbuf,
                         .cap = sizeof(sbuf), .out_len = &sn };
        int rc = cache_get(a, NULL, "x", 1, buf, sizeof(buf), &n);
        int src = cache_call(a, &g, CALL_MS);

        ck_assert_int_eq(rc, src);
        if (rc == 0) {
            ck_assert_uint_eq(n, sn);
            ck_assert_int_eq(memcmp(buf, sbuf, n), 0);
        }
    }
    cfinish(a);
}
END_TEST

/* cache_sync reports casts Redis refused since the previous sync (-EIO),
 * once; a later sync with nothing refused returns 0. */
START_TEST(test_failure_sync_reports_refused_casts)
{
    rh_server_t *s = srv_start(NULL);
    cache_redis_opts_t r = ropts(s);
    cache_op_t op;
    cache_t *a;
    rh_reply_t *rep;

    rep = rh_server_cmd(s, -1, "ACL", "SETUSER", "noset", "on", ">pw", "~*", "&*", "+@all",
                        "-set", NULL);
    ck_assert_ptr_nonnull(rep);
    ck_assert_int_eq(rep->type, '+');
    rh_reply_free(rep);
    r.username = "noset";
    r.password = "pw";
    a = cstart((cache_opts_t){ .async_writes = 1 }, &r);
    ck_assert_int_eq(put_s(a, NULL, "k", "v", CACHE_TTL_NONE), 0);   /* a cast: queued */
    ck_assert_int_eq(cache_sync(a, CALL_MS), -EIO);
    ck_assert_int_eq(cache_sync(a, CALL_MS), 0);
    ck_assert_uint_ge(stats_of(a).remote_errors, 1);
    /* A sync put is refused at once. */
    op = (cache_op_t){ .kind = CACHE_OP_PUT, .key = "k", .key_len = 1, .value = "v",
                       .value_len = 1, .ttl_ms = CACHE_TTL_NONE };
    ck_assert_int_eq(cache_call(a, &op, CALL_MS), -EIO);
    expect_sync_missing(a, NULL, "k");
    cfinish(a);
}
END_TEST

/*
 * The server closes the command connection; the next put is large, so
 * hiredis writes it in several write(2) calls, and the ones after the
 * server's RST fail with EPIPE.  Unless the library keeps SIGPIPE from
 * the process (SIGPIPE has its default action here), the process dies.
 */
START_TEST(test_failure_sigpipe)
{
    rh_server_t *s = srv_start(NULL);
    cache_redis_opts_t r = ropts(s);
    size_t big = (size_t)8 << 20;
    char *v = calloc(1, big);
    rh_reply_t *rep;
    cache_t *a;
    int rc, i;

    ck_assert_ptr_nonnull(v);
    r.reconnect_max_ms = 100;
    a = cstart((cache_opts_t){ 0 }, &r);
    ck_assert_int_eq(put_s(a, NULL, "k", "v1", CACHE_TTL_NONE), 0);
    rep = rh_server_cmd(s, -1, "CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes", NULL);
    ck_assert_ptr_nonnull(rep);
    ck_assert_int_eq(rep->type, ':');
    ck_assert_int_ge(rep->integer, 1);
    rh_reply_free(rep);
    sleep_ms(100);   /* the server's FIN has arrived */
    for (i = 0; i < 3; i++) {
        rc = cache_put(a, NULL, "k", 1, v, big, CACHE_TTL_NONE);
        ck_assert_msg(rc == -ECONNRESET || rc == -ENOTCONN || rc == 0,
                      "put after the kill: %d (%s)", rc, cache_strerror(rc));
    }
    /* Still alive, and it reconnects. */
    ck_assert_msg(wait_put_ok(a, "k", "v2", UP_WAIT_MS) >= 0, "A did not recover");
    free(v);
    cfinish(a);
}
END_TEST

START_TEST(test_failure_serve_stale)
{
    rh_server_t *s = srv_start(NULL);
    cache_redis_opts_t r = ropts(s), rs = ropts(s);
    cache_t *a, *b, *c;
    char buf[32];
    int64_t t_kt, t_read;
    int rc;

    r.reconnect_max_ms = 200;
    rs.reconnect_max_ms = 200;
    rs.serve_stale = 1;
    rs.near_ttl_ms = 1500;
    a = cstart((cache_opts_t){ 0 }, &r);
    b = cstart((cache_opts_t){ 0 }, &rs);     /* serve_stale */
    c = cstart((cache_opts_t){ 0 }, &r);      /* not */
    ck_assert_int_eq(put_s(a, NULL, "k", "v", CACHE_TTL_NONE), 0);
    ck_assert_int_eq(put_s(a, NULL, "kt", "t", 600), 0);
    t_kt = now_ms();
    sleep_ms(NEAR_SETTLE_MS);
    expect_value(b, NULL, "k", "v");
    expect_value(b, NULL, "kt", "t");
    expect_value(c, NULL, "k", "v");
    t_read = now_ms();

    srv_stop(s);
    ck_assert_msg(wait_connected(b, 0, DOWN_WAIT_MS) >= 0, "B still connected");
    ck_assert_msg(wait_connected(c, 0, DOWN_WAIT_MS) >= 0, "C still connected");
    ck_assert_msg(now_ms() < t_read + 1200, "too slow to test serve_stale (%lld ms)",
                  (long long)(now_ms() - t_read));
    /* B serves what it has; -ENOTCONN for what it has not. */
    rc = get_s(b, NULL, "k", buf, sizeof(buf));
    ck_assert_msg(rc == 0 && strcmp(buf, "v") == 0,
                  "serve_stale: near-cached key while down: %d (%s)", rc, cache_strerror(rc));
    expect_value(b, NULL, "k", "v");
    rc = get_s(b, NULL, "other", buf, sizeof(buf));
    ck_assert_msg(rc == -ENOTCONN, "serve_stale: key not near-cached while down: %d (%s)", rc,
                  cache_strerror(rc));
    /* C (serve_stale 0) dropped its entries with the connection.  (A put
     * first: once C's worker has answered it with a "down" error, it has
     * handled the loss; the connected flag alone may be cleared a moment
     * before the drop.) */
    rc = put_s(c, NULL, "other", "x", CACHE_TTL_NONE);
    ck_assert_msg(is_down_err(rc), "put on C while down: %d", rc);
    rc = get_s(c, NULL, "k", buf, sizeof(buf));
    ck_assert_msg(is_down_err(rc), "no serve_stale: near-cached key while down: %d (%s) "
                  "\"%s\"", rc, cache_strerror(rc), buf);
    /* Synchronous operations never serve stale data. */
    rc = sget_s(b, NULL, "k", buf, sizeof(buf), NULL);
    ck_assert_msg(is_down_err(rc), "serve_stale: GET call while down: %d", rc);
    /* Never past the key's own TTL... */
    sleep_ms((int)(t_kt + 600 + EXPIRY_SLACK_MS - now_ms()));
    rc = get_s(b, NULL, "kt", buf, sizeof(buf));
    ck_assert_msg(rc != 0, "serve_stale: a value served past its TTL");
    ck_assert_msg(rc == -ENOENT || rc == -ENOTCONN, "serve_stale, expired key: %d", rc);
    /* ... nor past near_ttl_ms. */
    expect_value(b, NULL, "k", "v");
    sleep_ms((int)(t_read + 1500 + 100 - now_ms()));
    rc = get_s(b, NULL, "k", buf, sizeof(buf));
    ck_assert_msg(rc == -ENOTCONN, "serve_stale: entry older than near_ttl_ms: %d (%s) \"%s\"",
                  rc, cache_strerror(rc), buf);

    srv_restart(s);
    ck_assert_msg(wait_connected(b, 1, UP_WAIT_MS) >= 0, "B did not reconnect");
    expect_missing(b, NULL, "k");
    ck_assert_msg(wait_put_ok(a, "k", "new", UP_WAIT_MS) >= 0, "A did not reconnect");
    expect_eventually(b, NULL, "k", "new");
    cfinish(a);
    cfinish(b);
    cfinish(c);
}
END_TEST

/* cache_start while Redis is down: 0 at once, -ENOTCONN until it is up. */
START_TEST(test_failure_start_while_down)
{
    rh_server_t *s = rh_server_new(NULL);
    cache_redis_opts_t r;
    cache_t *a = NULL;
    char buf[16];
    int64_t t0, ttl;
    cache_record_t *recs;
    size_t n;

    ck_assert_ptr_nonnull(s);
    s->port = rh_free_port();
    ck_assert_int_gt(s->port, 0);
    r = ropts(s);
    r.reconnect_max_ms = 200;
    t0 = now_ms();
    ck_assert_int_eq(cache_start(&(cache_opts_t){ .redis = &r }, &a), 0);
    ck_assert_msg(now_ms() - t0 < 1500, "cache_start took %lld ms", (long long)(now_ms() - t0));
    ck_assert_ptr_nonnull(a);
    ck_assert_uint_eq(stats_of(a).connected, 0);
    t0 = now_ms();
    ck_assert_int_eq(put_s(a, NULL, "k", "v", CACHE_TTL_NONE), -ENOTCONN);
    ck_assert_int_eq(get_s(a, NULL, "k", buf, sizeof(buf)), -ENOTCONN);
    ck_assert_int_eq(sget_s(a, NULL, "k", buf, sizeof(buf), NULL), -ENOTCONN);
    ck_assert_int_eq(cache_ttl(a, NULL, "k", 1, &ttl), -ENOTCONN);
    ck_assert_int_eq(cache_all(a, NULL, NULL, &recs, &n, CALL_MS), -ENOTCONN);
    ck_assert_msg(now_ms() - t0 < 1500, "five -ENOTCONN calls took %lld ms",
                  (long long)(now_ms() - t0));
    ck_assert_uint_eq(stats_of(a).connected, 0);
    /* A cast is refused too (not queued), also through an async_writes
     * cache's put and delete. */
    {
        cache_op_t op = { .kind = CACHE_OP_PUT, .key = "c", .key_len = 1, .value = "v",
                          .value_len = 1, .ttl_ms = CACHE_TTL_NONE };
        cache_t *as = NULL;

        ck_assert_int_eq(cache_cast(a, &op), -ENOTCONN);
        ck_assert_int_eq(cache_start(&(cache_opts_t){ .redis = &r, .async_writes = 1 }, &as),
                         0);
        ck_assert_int_eq(put_s(as, NULL, "c", "v", CACHE_TTL_NONE), -ENOTCONN);
        ck_assert_int_eq(del_s(as, NULL, "c"), -ENOTCONN);
        cfinish(as);
    }

    srv_restart(s);       /* its first start, on the port chosen above */
    ck_assert_msg(wait_put_ok(a, "k", "v", UP_WAIT_MS) >= 0,
                  "not working %d ms after the server started", UP_WAIT_MS);
    ck_assert_uint_eq(stats_of(a).connected, 1);
    expect_value(a, NULL, "k", "v");
    expect_sync_value(a, NULL, "k", "v");
    cfinish(a);
}
END_TEST

/* down_limit_ms: the worker exits with -ENOTCONN (abnormal) after that
 * long without Redis; a new worker (cache_child_start) works once Redis is
 * back.  With down_limit_ms < 0 it never exits. */
START_TEST(test_failure_down_limit_exit)
{
    rh_server_t *s = srv_start(NULL), *s2 = srv_start(NULL);
    cache_redis_opts_t r = ropts(s), r2 = ropts(s2);
    cache_t *a, *d;
    actor_t *w, *w2 = NULL, *wd;
    int reason = 12345, rc;
    int64_t t_stop, dt;

    r.down_limit_ms = 300;
    r.reconnect_max_ms = 50;
    r2.down_limit_ms = -1;
    r2.reconnect_max_ms = 50;
    a = cstart((cache_opts_t){ 0 }, &r);
    d = cstart((cache_opts_t){ 0 }, &r2);
    ck_assert_int_eq(put_s(a, NULL, "k", "v", CACHE_TTL_NONE), 0);
    w = cache_worker(a);
    wd = cache_worker(d);
    ck_assert_ptr_nonnull(w);
    ck_assert_ptr_nonnull(wd);

    srv_stop(s);
    t_stop = now_ms();
    srv_stop(s2);
    ck_assert_int_eq(actor_wait(w, 5000, &reason), 0);
    dt = now_ms() - t_stop;
    ck_assert_msg(reason == -ENOTCONN, "worker exit reason %d, want -ENOTCONN", reason);
    ck_assert(actor_reason_is_abnormal(reason));
    ck_assert_msg(dt >= 250 && dt < 3000, "worker exited %lld ms after the server stopped "
                  "(down_limit_ms 300)", (long long)dt);
    actor_release(w);
    ck_assert_ptr_null(cache_worker(a));
    rc = timed_put(a, "k", "x", 100, NULL);
    ck_assert_msg(rc == -ETIMEDOUT || rc == -ESRCH, "put with no worker: %d", rc);
    ck_assert_uint_eq(stats_of(a).connected, 0);
    /* down_limit_ms < 0: still running well past 300 ms. */
    sleep_ms((int)(t_stop + 800 - now_ms()));
    ck_assert_int_eq(actor_is_alive(wd), 1);

    srv_restart(s);
    srv_restart(s2);
    ck_assert_int_eq(cache_child_start(a, &w2), 0);
    ck_assert_ptr_nonnull(w2);
    ck_assert_msg(wait_put_ok(a, "k", "again", UP_WAIT_MS) >= 0, "no Redis after restart");
    expect_value(a, NULL, "k", "again");
    ck_assert_uint_eq(stats_of(a).restarts, 1);
    ck_assert_uint_eq(stats_of(a).connected, 1);
    ck_assert_msg(wait_put_ok(d, "k", "d", UP_WAIT_MS) >= 0, "D did not reconnect");
    ck_assert_int_eq(actor_is_alive(wd), 1);
    actor_release(wd);
    cfinish(a);
    ck_assert_int_eq(actor_wait(w2, 5000, NULL), 0);
    actor_release(w2);
    cfinish(d);
}
END_TEST

/* Supervisor log: the CHILD_EXITED reports (reason, time). */
static pthread_mutex_t sup_log_mu = PTHREAD_MUTEX_INITIALIZER;
static int sup_exits, sup_first_reason;
static int64_t sup_first_exit_ms;

static void
sup_log(void *ctx, const sup_report_t *rep)
{
    (void)ctx;
    if (rep->kind != SUP_REPORT_CHILD_EXITED)
        return;
    pthread_mutex_lock(&sup_log_mu);
    if (sup_exits++ == 0) {
        sup_first_reason = rep->reason;
        sup_first_exit_ms = now_ms();
    }
    pthread_mutex_unlock(&sup_log_mu);
}

/* A supervised Redis cache: the worker exits after down_limit_ms without
 * Redis, the supervisor restarts it (again and again while Redis is down),
 * and once Redis is back the same handle works. */
START_TEST(test_failure_supervised)
{
    rh_server_t *s = srv_start(NULL);
    cache_redis_opts_t r = ropts(s);
    cache_t *c = NULL;
    sup_flags_t flags = { SUP_ONE_FOR_ONE, 1000, 10000 };
    sup_opts_t so = { .log = sup_log };
    sup_child_spec_t spec;
    actor_t *sup = NULL;
    int64_t t_stop, t0;
    int exits, first_reason;

    r.down_limit_ms = 300;
    r.reconnect_max_ms = 50;
    ck_assert_int_eq(cache_new(&(cache_opts_t){ .redis = &r }, &c), 0);
    ck_assert_ptr_nonnull(c);
    spec = (sup_child_spec_t){ .id = "redis-cache", .start = cache_child_start, .arg = c,
                               .restart = SUP_PERMANENT };
    ck_assert_int_eq(sup_start(&flags, &spec, 1, &so, &sup, NULL), 0);
    ck_assert_msg(wait_connected(c, 1, UP_WAIT_MS) >= 0, "not connected");
    ck_assert_int_eq(put_s(c, NULL, "k", "v", CACHE_TTL_NONE), 0);
    expect_value(c, NULL, "k", "v");

    srv_stop(s);
    t_stop = now_ms();
    t0 = now_ms();
    while (stats_of(c).restarts < 1 && now_ms() - t0 < 5000)
        sleep_ms(5);
    ck_assert_msg(stats_of(c).restarts >= 1, "no restart 5 s after Redis went away");
    pthread_mutex_lock(&sup_log_mu);
    exits = sup_exits;
    first_reason = sup_first_reason;
    t0 = sup_first_exit_ms;
    pthread_mutex_unlock(&sup_log_mu);
    ck_assert_int_ge(exits, 1);
    ck_assert_msg(first_reason == -ENOTCONN, "worker exit reason %d, want -ENOTCONN",
                  first_reason);
    ck_assert_msg(t0 - t_stop >= 250 && t0 - t_stop < 3000,
                  "worker exited %lld ms after the server stopped (down_limit_ms 300)",
                  (long long)(t0 - t_stop));

    srv_restart(s);
    ck_assert_msg(wait_put_ok(c, "k", "back", UP_WAIT_MS) >= 0,
                  "the supervised cache did not come back");
    expect_value(c, NULL, "k", "back");
    ck_assert_uint_eq(stats_of(c).connected, 1);

    ck_assert_int_eq(actor_stop(sup, ACTOR_SHUTDOWN, 10000), 0);
    actor_release(sup);
    ck_assert_int_eq(cache_stop(c, CALL_MS), 0);
    cache_release(c);
}
END_TEST


/* Issue 12, item 2, on the Redis backend: a cast queued behind a running
 * operation and dropped with the worker's mailbox is reported by the
 * sender's next cache_sync (-ECONNRESET), once. */
static atomic_int hold_open;

static int
hold_fn(cache_txn_t *txn, const void *arg, size_t arg_len)
{
    (void)txn;
    (void)arg;
    (void)arg_len;
    while (!atomic_load(&hold_open))
        sleep_ms(1);
    return 0;
}

START_TEST(test_sync_reports_casts_lost_with_worker)
{
    rh_server_t *s = srv_start(NULL);
    cache_redis_opts_t r = ropts(s);
    cache_t *c = NULL;
    sup_flags_t flags = { SUP_ONE_FOR_ONE, 1000, 10000 };
    sup_opts_t so = { .log = sup_log };
    sup_child_spec_t spec;
    actor_t *sup = NULL, *w;
    cache_op_t hold = { .kind = CACHE_OP_USER, .fn = hold_fn };
    cache_op_t put = { .kind = CACHE_OP_PUT, .key = "lost", .key_len = 4, .value = "v",
                       .value_len = 1, .ttl_ms = CACHE_TTL_NONE };
    char buf[8];
    size_t len = 0;
    cache_op_t get = { .kind = CACHE_OP_GET, .key = "lost", .key_len = 4, .buf = buf,
                       .cap = sizeof(buf), .out_len = &len };
    int rc, i;

    ck_assert_int_eq(cache_new(&(cache_opts_t){ .redis = &r }, &c), 0);
    spec = (sup_child_spec_t){ .id = "redis-cache", .start = cache_child_start, .arg = c };
    ck_assert_int_eq(sup_start(&flags, &spec, 1, &so, &sup, NULL), 0);
    ck_assert_msg(wait_connected(c, 1, UP_WAIT_MS) >= 0, "not connected");
    w = cache_worker(c);
    ck_assert_ptr_nonnull(w);
    atomic_store(&hold_open, 0);
    ck_assert_int_eq(cache_cast(c, &hold), 0);
    sleep_ms(20);
    ck_assert_int_eq(cache_cast(c, &put), 0);
    ck_assert_int_eq(actor_exit(w, ACTOR_KILLED), 0);
    atomic_store(&hold_open, 1);
    ck_assert_int_eq(actor_wait(w, CALL_MS, NULL), 0);
    actor_release(w);
    /* The next incarnation connects; until then sync says -ENOTCONN. */
    for (i = 0; i < 500 && (rc = cache_sync(c, CALL_MS)) == -ENOTCONN; i++)
        sleep_ms(10);
    ck_assert_int_eq(rc, -ECONNRESET);
    ck_assert_int_eq(cache_sync(c, CALL_MS), 0);
    ck_assert_int_eq(cache_call(c, &get, CALL_MS), -ENOENT);

    ck_assert_int_eq(actor_stop(sup, ACTOR_SHUTDOWN, 10000), 0);
    actor_release(sup);
    ck_assert_int_eq(cache_stop(c, CALL_MS), 0);
    cache_release(c);
}
END_TEST

/* ------------------------------------------------------------------ */
/* blackhole: connection attempts that hang never block the worker      */

#define HOLE_MS 3000           /* how long each test keeps calling */
#define HOLE_CONNECT_MS 1000   /* connect_timeout_ms against the black hole */

/* A call c must refuse at once: -ENOTCONN within CALL_SLACK_MS (and
 * within its own timeout). */
#define EXPECT_REFUSED(expr, what)                                                         \
    do {                                                                                   \
        int64_t t0_ = now_ms(), dt_;                                                       \
        int rc_ = (expr);                                                                  \
                                                                                           \
        dt_ = now_ms() - t0_;                                                              \
        ck_assert_msg(rc_ == -ENOTCONN, "%s while connecting to a black hole: %d (%s), "   \
                      "want -ENOTCONN", what, rc_, cache_strerror(rc_));                   \
        ck_assert_msg(dt_ < CALL_SLACK_MS, "%s took %lld ms to be refused (a connection "  \
                      "attempt lasts %d ms): want at once", what, (long long)dt_,          \
                      HOLE_CONNECT_MS);                                                    \
    } while (0)

/*
 * A cache pointed at a black hole (connect_timeout_ms 1000, down_limit_ms
 * < 0): cache_start returns within about 2x connect_timeout_ms, and for
 * HOLE_MS every call is refused with -ENOTCONN at once, whatever its
 * timeout (a 200 ms call, cache_put's 5 s, a direct read), while attempt
 * after attempt hangs on the connector thread.
 */
START_TEST(test_blackhole_never_connects)
{
    rh_hole_t *h = rh_hole_open(0);
    cache_redis_opts_t r = { .host = "127.0.0.1", .connect_timeout_ms = HOLE_CONNECT_MS,
                             .down_limit_ms = -1, .reconnect_max_ms = 200 };
    cache_op_t op = { .kind = CACHE_OP_PUT, .key = "k", .key_len = 1, .value = "v",
                      .value_len = 1, .ttl_ms = CACHE_TTL_NONE };
    cache_t *a = NULL;
    char buf[16];
    int64_t t0, dt;
    int n = 0, rc;

    ck_assert_msg(h != NULL, "no black hole");
    r.port = h->port;
    t0 = now_ms();
    rc = cache_start(&(cache_opts_t){ .redis = &r }, &a);
    dt = now_ms() - t0;
    ck_assert_msg(rc == 0, "cache_start against a black hole: %d (%s)", rc, cache_strerror(rc));
    ck_assert_msg(dt < 2 * HOLE_CONNECT_MS + CALL_SLACK_MS, "cache_start against a black hole "
                  "took %lld ms (connect_timeout_ms %d)", (long long)dt, HOLE_CONNECT_MS);
    ck_assert_uint_eq(stats_of(a).connected, 0);
    t0 = now_ms();
    while (now_ms() - t0 < HOLE_MS) {
        EXPECT_REFUSED(cache_call(a, &op, 200), "a put with a 200 ms timeout");
        EXPECT_REFUSED(put_s(a, NULL, "k", "v", CACHE_TTL_NONE), "cache_put (5 s timeout)");
        EXPECT_REFUSED(get_s(a, NULL, "k", buf, sizeof(buf)), "cache_get");
        n++;
        sleep_ms(20);
    }
    ck_assert_uint_eq(stats_of(a).connected, 0);
    printf("blackhole: %d rounds of refused calls in %d ms\n", n, HOLE_MS);
    ck_assert_int_gt(n, 10);
    cfinish(a);
    rh_hole_close(h);
}
END_TEST

/*
 * serve_stale while the server's port turns into a black hole: the cache,
 * connected when cache_start returned, loses its server; then for HOLE_MS,
 * with every reconnection attempt hanging for connect_timeout_ms, cache_get
 * of a near-cached key answers at once with its value and puts are refused
 * at once.  Once a server listens there again, the cache comes back.
 */
START_TEST(test_blackhole_serve_stale)
{
    rh_server_t *s = srv_start(NULL);
    cache_redis_opts_t r = ropts(s);
    cache_op_t op = { .kind = CACHE_OP_PUT, .key = "k2", .key_len = 2, .value = "x",
                      .value_len = 1, .ttl_ms = CACHE_TTL_NONE };
    cache_t *a = NULL;
    rh_hole_t *h;
    char buf[16];
    int64_t t0;
    int n = 0, rc, port = s->port;

    r.serve_stale = 1;
    r.connect_timeout_ms = HOLE_CONNECT_MS;
    r.down_limit_ms = -1;
    r.reconnect_max_ms = 200;
    ck_assert_int_eq(cache_start(&(cache_opts_t){ .redis = &r }, &a), 0);
    /* cache_start waits for the first connection attempt. */
    ck_assert_msg(stats_of(a).connected == 1, "not connected when cache_start returned, with "
                  "the server up");
    ck_assert_int_eq(put_s(a, NULL, "k", "v", CACHE_TTL_NONE), 0);
    expect_value(a, NULL, "k", "v");

    srv_stop(s);
    h = rh_hole_open(port);
    ck_assert_msg(h != NULL, "no black hole on the server's port %d", port);
    ck_assert_msg(wait_connected(a, 0, DOWN_WAIT_MS) >= 0, "still connected");
    rc = timed_put(a, "k2", "x", 1000, NULL);
    ck_assert_msg(is_down_err(rc), "put after the server stopped: %d (%s)", rc,
                  cache_strerror(rc));
    t0 = now_ms();
    while (now_ms() - t0 < HOLE_MS) {
        int64_t t1 = now_ms();

        rc = get_s(a, NULL, "k", buf, sizeof(buf));
        ck_assert_msg(rc == 0 && strcmp(buf, "v") == 0, "serve_stale, server unreachable: "
                      "cache_get: %d (%s) \"%s\", want \"v\"", rc, cache_strerror(rc), buf);
        ck_assert_msg(now_ms() - t1 < 200, "serve_stale: cache_get took %lld ms",
                      (long long)(now_ms() - t1));
        EXPECT_REFUSED(cache_call(a, &op, 200), "a put with a 200 ms timeout");
        n++;
        sleep_ms(20);
    }
    ck_assert_uint_eq(stats_of(a).connected, 0);
    ck_assert_int_gt(n, 10);
    rh_hole_close(h);
    srv_restart(s);
    ck_assert_msg(wait_put_ok(a, "k3", "back", UP_WAIT_MS) >= 0,
                  "puts still fail %d ms after the server came back", UP_WAIT_MS);
    expect_sync_value(a, NULL, "k3", "back");
    cfinish(a);
}
END_TEST

/* ------------------------------------------------------------------ */
/* options                                                              */

static void
expect_bad_redis_opts(const cache_redis_opts_t *r, actor_clock_t *clk, const char *what)
{
    cache_t *c = (cache_t *)1, *l = NULL;
    cache_opts_t o = { .name = "bad-redis", .redis = r, .clock = clk };
    int rc;

    rc = cache_start(&o, &c);
    ck_assert_msg(rc == -EINVAL, "cache_start with %s: %d (%s), want -EINVAL", what, rc,
                  cache_strerror(rc));
    ck_assert_ptr_null(c);
    c = (cache_t *)1;
    rc = cache_new(&o, &c);
    ck_assert_msg(rc == -EINVAL, "cache_new with %s: %d, want -EINVAL", what, rc);
    ck_assert_ptr_null(c);
    ck_assert_int_eq(cache_lookup("bad-redis", &l), -ENOENT);
}

START_TEST(test_opts_invalid)
{
    rh_server_t *s = srv_start(NULL);
    cache_redis_opts_t base = ropts(s), r;
    actor_clock_t *clk = NULL;
    char prefix[1026];
    cache_t *c;

    ck_assert_int_eq(actor_clock_manual_new(1000, &clk), 0);
    r = base; r.port = 70000;          expect_bad_redis_opts(&r, NULL, "port 70000");
    r = base; r.port = 65536;          expect_bad_redis_opts(&r, NULL, "port 65536");
    r = base; r.port = -1;             expect_bad_redis_opts(&r, NULL, "port -1");
    r = base; r.db = -1;               expect_bad_redis_opts(&r, NULL, "db -1");
    r = base; r.host = "";             expect_bad_redis_opts(&r, NULL, "host \"\"");
    r = base;                          expect_bad_redis_opts(&r, clk, "a manual clock");
    r = base; r.connect_timeout_ms = -1; expect_bad_redis_opts(&r, NULL, "connect_timeout -1");
    r = base; r.io_timeout_ms = -1;    expect_bad_redis_opts(&r, NULL, "io_timeout -1");
    r = base; r.near_ttl_ms = -1;      expect_bad_redis_opts(&r, NULL, "near_ttl_ms -1");
    memset(prefix, 'p', sizeof(prefix));
    prefix[1025] = '\0';
    r = base; r.prefix = prefix;       expect_bad_redis_opts(&r, NULL, "a 1025-byte prefix");
    /* Non-Redis checks still apply. */
    {
        cache_t *x = (cache_t *)1;

        ck_assert_int_eq(cache_start(&(cache_opts_t){ .redis = &base, .default_ns = "" }, &x),
                         -EINVAL);
        ck_assert_ptr_null(x);
        ck_assert_int_eq(cache_start(&(cache_opts_t){ .redis = &base,
                                                      .default_ttl_ms = -1 }, &x), -EINVAL);
    }
    ck_assert_int_eq(actor_clock_free(clk), 0);

    /* The limits themselves are fine: a 1024-byte prefix (and the key is
     * prefix, namespace, NUL, key), port 65535 and 1 (nothing listens
     * there: the cache starts anyway), down_limit_ms < 0, host NULL
     * (default) and a host name. */
    prefix[1024] = '\0';
    r = base;
    r.prefix = prefix;
    c = cstart((cache_opts_t){ 0 }, &r);
    ck_assert_int_eq(put_s(c, NULL, "k", "v", CACHE_TTL_NONE), 0);
    expect_sync_value(c, NULL, "k", "v");
    {
        rh_reply_t *rep = rh_server_cmd(s, 0, "KEYS", "*", NULL);

        ck_assert_ptr_nonnull(rep);
        ck_assert_uint_eq(rep->n, 1);
        ck_assert_uint_eq(rep->elem[0].len, 1024 + 5 + 1 + 1);
        ck_assert(memcmp(rep->elem[0].str, prefix, 1024) == 0 &&
                  memcmp(rep->elem[0].str + 1024, "cache\0k", 7) == 0);
        rh_reply_free(rep);
    }
    cfinish(c);
    r = base;
    r.port = 65535;
    c = NULL;
    ck_assert_int_eq(cache_start(&(cache_opts_t){ .redis = &r }, &c), 0);
    cfinish(c);
    r.port = 1;
    ck_assert_int_eq(cache_start(&(cache_opts_t){ .redis = &r }, &c), 0);
    cfinish(c);
    r = base;
    r.down_limit_ms = -1;
    r.host = NULL;
    c = cstart((cache_opts_t){ 0 }, &r);
    ck_assert_int_eq(put_s(c, NULL, "h", "null host", CACHE_TTL_NONE), 0);
    cfinish(c);
    r = base;
    r.host = "localhost";
    c = cstart((cache_opts_t){ 0 }, &r);
    expect_sync_value(c, NULL, "h", "null host");
    cfinish(c);
}
END_TEST

START_TEST(test_opts_auth)
{
    rh_server_t *s = srv_start("secret");
    cache_redis_opts_t ok = ropts(s), wrong = ropts(s), none = ropts(s), user = ropts(s);
    cache_t *w = NULL, *n = NULL, *a, *b;
    int64_t t0;
    int rc;

    wrong.password = "wrong";
    wrong.reconnect_max_ms = 100;
    none.password = NULL;
    none.reconnect_max_ms = 100;
    user.username = "default";
    ck_assert_int_eq(cache_start(&(cache_opts_t){ .redis = &wrong }, &w), 0);
    ck_assert_int_eq(cache_start(&(cache_opts_t){ .redis = &none }, &n), 0);
    a = cstart((cache_opts_t){ 0 }, &ok);
    b = cstart((cache_opts_t){ 0 }, &user);
    ck_assert_int_eq(put_s(a, NULL, "k", "v", CACHE_TTL_NONE), 0);
    expect_value(b, NULL, "k", "v");
    t0 = now_ms();
    while (now_ms() - t0 < 700) {
        char buf[8];

        rc = timed_put(w, "k", "w", 1000, NULL);
        ck_assert_msg(rc == -ENOTCONN || rc == -EIO, "put with a wrong password: %d (%s)",
                      rc, cache_strerror(rc));
        rc = timed_put(n, "k", "n", 1000, NULL);
        ck_assert_msg(rc == -ENOTCONN || rc == -EIO, "put with no password: %d (%s)", rc,
                      cache_strerror(rc));
        rc = get_s(w, NULL, "k", buf, sizeof(buf));
        ck_assert_msg(rc == -ENOTCONN || rc == -EIO, "get with a wrong password: %d", rc);
        ck_assert_uint_eq(stats_of(w).connected, 0);
        ck_assert_uint_eq(stats_of(n).connected, 0);
        sleep_ms(50);
    }
    expect_sync_value(a, NULL, "k", "v");
    cfinish(w);
    cfinish(n);
    cfinish(a);
    cfinish(b);
}
END_TEST

/* The only key of db, checked against want (want_len bytes). */
static void
expect_only_key(const rh_server_t *s, int db, const char *want, size_t want_len)
{
    rh_reply_t *rep = rh_server_cmd(s, db, "KEYS", "*", NULL);

    ck_assert_ptr_nonnull(rep);
    ck_assert_int_eq(rep->type, '*');
    ck_assert_msg(rep->n == 1, "db %d has %zu keys, want 1", db, rep->n);
    ck_assert_msg(rep->elem[0].len == want_len && memcmp(rep->elem[0].str, want, want_len) == 0,
                  "db %d key is \"%s\" (%zu bytes)", db, rep->elem[0].str, rep->elem[0].len);
    rh_reply_free(rep);
}

START_TEST(test_opts_db_prefix_layout)
{
    rh_server_t *s = srv_start(NULL);
    cache_redis_opts_t r3 = ropts(s), r0 = ropts(s), rd = ropts(s), re = ropts(s),
                       rf = ropts(s);
    cache_t *a, *b, *z, *d, *e, *f;
    rh_reply_t *rep;
    static const char k3[] = "app1:cache\0k", t3[] = "app1:cache\0t";

    r3.db = 3;
    r3.prefix = "app1:";
    r0.prefix = "app1:";
    re.prefix = "";
    re.db = 5;
    rf.prefix = "other:";
    rf.db = 5;
    a = cstart((cache_opts_t){ 0 }, &r3);
    b = cstart((cache_opts_t){ 0 }, &r3);
    z = cstart((cache_opts_t){ 0 }, &r0);
    d = cstart((cache_opts_t){ 0 }, &rd);
    e = cstart((cache_opts_t){ 0 }, &re);
    f = cstart((cache_opts_t){ 0 }, &rf);

    /* db 3, prefix "app1:": the key is "app1:" "cache" NUL "k", the value
     * a 12-byte header and the bytes. */
    ck_assert_int_eq(put_s(a, NULL, "k", "v", CACHE_TTL_NONE), 0);
    ck_assert_int_eq(raw_dbsize(s, 3), 1);
    ck_assert_int_eq(raw_dbsize(s, 0), 0);
    expect_only_key(s, 3, k3, sizeof(k3) - 1);
    {
        const char *argv[2] = { "STRLEN", k3 };
        size_t argl[2] = { 6, sizeof(k3) - 1 };

        rep = rh_server_cmdb(s, 3, 2, argv, argl);
        ck_assert_ptr_nonnull(rep);
        ck_assert_int_eq(rep->type, ':');
        ck_assert_int_eq(rep->integer, 12 + 1);
        rh_reply_free(rep);
    }
    /* TTLs are Redis expirations. */
    ck_assert_int_eq(put_s(a, NULL, "t", "x", 500000), 0);
    {
        const char *argv[2] = { "PTTL", t3 };
        size_t argl[2] = { 4, sizeof(t3) - 1 };

        rep = rh_server_cmdb(s, 3, 2, argv, argl);
        ck_assert_ptr_nonnull(rep);
        ck_assert_int_eq(rep->type, ':');
        ck_assert_msg(rep->integer > 400000 && rep->integer <= 500000, "raw PTTL %lld",
                      rep->integer);
        rh_reply_free(rep);
    }
    ck_assert_int_eq(del_s(a, NULL, "t"), 0);
    /* Same prefix, db 0: another store. */
    expect_sync_missing(z, NULL, "k");
    /* Invalidation between two db-3 instances. */
    sleep_ms(NEAR_SETTLE_MS);
    expect_value(b, NULL, "k", "v");
    ck_assert_int_eq(put_s(a, NULL, "k", "v2", CACHE_TTL_NONE), 0);
    expect_eventually(b, NULL, "k", "v2");
    /* ... and a db-0 instance with the same prefix keeps its own value. */
    ck_assert_int_eq(put_s(z, NULL, "k", "z", CACHE_TTL_NONE), 0);
    expect_sync_value(b, NULL, "k", "v2");
    expect_value(z, NULL, "k", "z");

    /* The default prefix is "gencache:". */
    ck_assert_int_eq(put_s(d, NULL, "k", "dv", CACHE_TTL_NONE), 0);
    ck_assert_int_eq(raw_dbsize(s, 0), 2);
    {
        const char *argv[2] = { "EXISTS", "gencache:cache\0k" };
        size_t argl[2] = { 6, 16 };

        rep = rh_server_cmdb(s, 0, 2, argv, argl);
        ck_assert_ptr_nonnull(rep);
        ck_assert_int_eq(rep->integer, 1);
        rh_reply_free(rep);
    }
    /* Prefix "" (db 5): namespace NUL key; and instances with another
     * prefix do not see it. */
    ck_assert_int_eq(put_s(e, "n", "k", "ev", CACHE_TTL_NONE), 0);
    expect_only_key(s, 5, "n\0k", 3);
    expect_sync_missing(f, "n", "k");
    ck_assert_int_eq(put_s(f, "n", "k", "fv", CACHE_TTL_NONE), 0);
    /* The layout, read back the other way: with prefix "", f's key is
     * namespace "other:n", key "k". */
    expect_sync_value(e, "other:n", "k", "fv");
    expect_sync_value(e, "n", "k", "ev");
    cfinish(a);
    cfinish(b);
    cfinish(z);
    cfinish(d);
    cfinish(e);
    cfinish(f);
}
END_TEST

/* ------------------------------------------------------------------ */
/* concurrency                                                          */

#define CONC_WRITE_MS 1000

typedef struct conc {
    cache_t *a, *b;
    atomic_ullong attempted;   /* highest n sent */
    atomic_ullong written;     /* highest n whose put returned */
    atomic_int phase;          /* 0 running, 1 writer stopped, 2 final check */
    pthread_mutex_t mu;
    char failure[256];
} conc_t;

static uint32_t
conc_check(unsigned long long n)
{
    uint64_t x = n * 0x9e3779b97f4a7c15ull;

    return (uint32_t)(x ^ (x >> 29));
}

static void
conc_fail(conc_t *cx, const char *fmt, long long a, long long b)
{
    pthread_mutex_lock(&cx->mu);
    if (cx->failure[0] == '\0')
        snprintf(cx->failure, sizeof(cx->failure), fmt, a, b);
    pthread_mutex_unlock(&cx->mu);
}

/* Parse a value; 0 and *n, or -1 when it is not one that was written. */
static int
conc_parse(const char *buf, size_t len, unsigned long long *n)
{
    char tmp[64];
    unsigned int chk;

    if (len == 0 || len >= sizeof(tmp))
        return -1;
    memcpy(tmp, buf, len);
    tmp[len] = '\0';
    if (sscanf(tmp, "n=%llu;c=%x", n, &chk) != 2 || chk != conc_check(*n))
        return -1;
    return 0;
}

static void *
conc_writer(void *p)
{
    conc_t *cx = p;
    unsigned long long n;
    int64_t t0 = now_ms();

    for (n = 1; now_ms() - t0 < CONC_WRITE_MS; n++) {
        char v[64];
        int rc;

        snprintf(v, sizeof(v), "n=%llu;c=%x", n, conc_check(n));
        atomic_store(&cx->attempted, n);
        rc = put_s(cx->a, NULL, "ctr", v, CACHE_TTL_NONE);
        if (rc != 0) {
            conc_fail(cx, "writer: put %lld: %lld", (long long)n, rc);
            break;
        }
        atomic_store(&cx->written, n);
    }
    atomic_store(&cx->phase, 1);
    return NULL;
}

typedef struct reader {
    conc_t *cx;
    int kind;                  /* 0: cache_get on B; 1: GET call on B; 2: cache_get on A */
    long reads;
} reader_t;

static int
reader_read(reader_t *rd, unsigned long long *n)
{
    conc_t *cx = rd->cx;
    char buf[64];
    size_t len = 0;
    int rc;

    if (rd->kind == 1) {
        cache_op_t op = { .kind = CACHE_OP_GET, .key = "ctr", .key_len = 3, .buf = buf,
                          .cap = sizeof(buf), .out_len = &len };

        rc = cache_call(cx->b, &op, CALL_MS);
    } else {
        rc = cache_get(rd->kind == 0 ? cx->b : cx->a, NULL, "ctr", 3, buf, sizeof(buf), &len);
    }
    if (rc != 0) {
        conc_fail(cx, "reader %lld: read error %lld", rd->kind, rc);
        return -1;
    }
    if (conc_parse(buf, len, n) != 0) {
        conc_fail(cx, "reader %lld: a value never written (%lld bytes)", rd->kind,
                  (long long)len);
        return -1;
    }
    return 0;
}

static void *
conc_reader(void *p)
{
    reader_t *rd = p;
    conc_t *cx = rd->cx;
    unsigned long long n, last = 0, final;

    while (atomic_load(&cx->phase) == 0) {
        unsigned long long w0 = atomic_load(&cx->written);

        if (reader_read(rd, &n) != 0)
            return NULL;
        rd->reads++;
        if (n > atomic_load(&cx->attempted)) {
            conc_fail(cx, "a value from the future: %lld > %lld", (long long)n,
                      (long long)atomic_load(&cx->attempted));
            return NULL;
        }
        /* A synchronous read sees every write that returned before it was
         * sent (so it never goes backwards either); so does the writer's
         * own instance's direct read. */
        if (rd->kind != 0 && n < w0) {
            conc_fail(cx, "a read older than a write that had returned: %lld < %lld",
                      (long long)n, (long long)w0);
            return NULL;
        }
        if (rd->kind == 1 && n < last) {
            conc_fail(cx, "GET calls went backwards: %lld after %lld", (long long)n,
                      (long long)last);
            return NULL;
        }
        last = n;
    }
    while (atomic_load(&cx->phase) != 2)
        sleep_ms(1);
    final = atomic_load(&cx->written);
    if (reader_read(rd, &n) != 0)
        return NULL;
    if (n != final)
        conc_fail(cx, "1 s after the last write, a direct read sees %lld, not %lld",
                  (long long)n, (long long)final);
    return NULL;
}

START_TEST(test_concurrent_readers_writer)
{
    rh_server_t *s = srv_start(NULL);
    cache_redis_opts_t r = ropts(s);
    conc_t cx;
    reader_t rd[4] = { { .kind = 0 }, { .kind = 0 }, { .kind = 1 }, { .kind = 2 } };
    pthread_t wth, rth[4];
    int i;

    memset(&cx, 0, sizeof(cx));
    pthread_mutex_init(&cx.mu, NULL);
    cx.a = cstart((cache_opts_t){ 0 }, &r);
    cx.b = cstart((cache_opts_t){ 0 }, &r);
    ck_assert_int_eq(put_s(cx.a, NULL, "ctr", "n=0;c=0", CACHE_TTL_NONE), 0);
    ck_assert_uint_eq(conc_check(0), 0);
    sleep_ms(NEAR_SETTLE_MS);
    for (i = 0; i < 4; i++) {
        rd[i].cx = &cx;
        ck_assert_int_eq(pthread_create(&rth[i], NULL, conc_reader, &rd[i]), 0);
    }
    ck_assert_int_eq(pthread_create(&wth, NULL, conc_writer, &cx), 0);
    ck_assert_int_eq(pthread_join(wth, NULL), 0);
    sleep_ms(1000);
    atomic_store(&cx.phase, 2);
    for (i = 0; i < 4; i++)
        ck_assert_int_eq(pthread_join(rth[i], NULL), 0);
    printf("concurrency: %llu writes; reads: B direct %ld + %ld, B calls %ld, A direct %ld\n",
           (unsigned long long)atomic_load(&cx.written), rd[0].reads, rd[1].reads,
           rd[2].reads, rd[3].reads);
    ck_assert_msg(cx.failure[0] == '\0', "%s", cx.failure);
    ck_assert_uint_gt(atomic_load(&cx.written), 10);
    for (i = 0; i < 4; i++)
        ck_assert_int_gt(rd[i].reads, 10);
    cfinish(cx.a);
    cfinish(cx.b);
    pthread_mutex_destroy(&cx.mu);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Built without hiredis                                                */

START_TEST(test_notsup)
{
    cache_redis_opts_t r = { .port = 6379 };
    cache_t *c = (cache_t *)1;

    ck_assert_int_eq(cache_start(&(cache_opts_t){ .redis = &r }, &c), -ENOTSUP);
    ck_assert_ptr_null(c);
    c = (cache_t *)1;
    ck_assert_int_eq(cache_new(&(cache_opts_t){ .redis = &r }, &c), -ENOTSUP);
    ck_assert_ptr_null(c);
}
END_TEST

/* ------------------------------------------------------------------ */

/* A tcase named `name` with a 60 s timeout, tagged with its name, whose
 * checked teardown stops any server left running; NULL when excluded by
 * CK_EXCLUDE_TCASE (which Check 0.15 does not know itself). */
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
redis_suite(void)
{
    Suite *s = suite_create("redis");
    TCase *tc;

    tc = tc_new(s, "harness");
    ADD(tc, test_harness_selfcheck);

    tc = tc_new(s, "basic");
    ADD(tc, test_basic_roundtrip);
    ADD(tc, test_basic_enobufs_empty);
    ADD(tc, test_basic_bad_input_and_stopped);

    tc = tc_new(s, "ttl");
    ADD(tc, test_ttl_expiry_bound_near_cache);
    ADD(tc, test_ttl_last_millisecond);

    tc = tc_new(s, "near");
    ADD(tc, test_near_hit_and_invalidation);
    ADD(tc, test_near_disabled);
    ADD(tc, test_near_ttl_bound);
    ADD(tc, test_near_bounded);
    ADD(tc, test_near_third_party_writes);

    tc = tc_new(s, "all");
    ADD(tc, test_all_order_values_ttls);
    ADD(tc, test_all_many_keys);

    tc = tc_new(s, "writes");
    ADD(tc, test_batch_atomic_in_redis);
    ADD(tc, test_async_stream);
    ADD(tc, test_stats_counters);

    tc = tc_new(s, "failure");
    ADD(tc, test_failure_server_down_and_back);
    ADD(tc, test_failure_hung_server);
    ADD(tc, test_failure_connections_killed);
    ADD(tc, test_failure_sigpipe);
    ADD(tc, test_failure_cmd_link_only);
    ADD(tc, test_failure_batch_refused);
    ADD(tc, test_failure_sync_reports_refused_casts);
    ADD(tc, test_failure_serve_stale);
    ADD(tc, test_failure_start_while_down);
    ADD(tc, test_failure_down_limit_exit);
    ADD(tc, test_failure_supervised);
    ADD(tc, test_sync_reports_casts_lost_with_worker);

    tc = tc_new(s, "blackhole");
    ADD(tc, test_blackhole_never_connects);
    ADD(tc, test_blackhole_serve_stale);

    tc = tc_new(s, "options");
    ADD(tc, test_opts_invalid);
    ADD(tc, test_opts_auth);
    ADD(tc, test_opts_db_prefix_layout);

    tc = tc_new(s, "concurrency");
    ADD(tc, test_concurrent_readers_writer);
    return s;
}

static Suite *
notsup_suite(void)
{
    Suite *s = suite_create("redis");
    TCase *tc = tc_new(s, "notsup");

    ADD(tc, test_notsup);
    return s;
}

int
main(void)
{
    SRunner *sr;
    int nf;

    if (!rh_backend_built()) {
        printf("test_redis: gencache built without hiredis: checking -ENOTSUP only\n");
        sr = srunner_create(notsup_suite());
    } else if (!rh_find_server()) {
        printf("test_redis: redis-server not found: SKIPPED (install redis-server)\n");
        return 77;
    } else {
        sr = srunner_create(redis_suite());
    }
    /* Fork mode stays on (the default; CK_FORK=no to debug in-process). */
    srunner_run_all(sr, CK_NORMAL);
    nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    rh_server_stop_all();
    return nf == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

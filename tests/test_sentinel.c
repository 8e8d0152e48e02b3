/*
 * Check suite "sentinel": a Redis cache behind Redis Sentinel
 * (cache_redis_opts_t.sentinels + master_name), as include/gencache/cache.h
 * promises it: the cache asks the sentinels for the primary (any of them,
 * even with one down or hung), connects to it, follows a failover
 * (+switch-master, or a write refused by a demoted primary) to the new
 * primary, and meanwhile refuses calls at once with -ENOTCONN; no write it
 * acknowledged before a failover is lost when Redis kept it; its near-cache
 * stays coherent across the switch; the topology fields of cache_stats_t
 * (connected, primaries, failovers); sentinel_password; bad options.
 *
 * Every test starts its own topology (tests/redis_topo.h): a primary, a
 * replica of it, three sentinels monitoring it as "mymaster" (quorum 2,
 * down-after 1000 ms, failover timeout 5000 ms), all on free ports of
 * 127.0.0.1 with their files in a per-test directory; the checked teardown
 * kills whatever is left and removes the directory, and a process whose
 * test died is killed by the kernel (PR_SET_PDEATHSIG).  Without
 * redis-server, redis-sentinel or redis-cli in PATH, or in a build without
 * hiredis, the suite prints one line and exits 77 (CTest: skipped).
 *
 * Determinism.  Failovers run on real time and Redis's replication is
 * asynchronous, so:
 *   - Every wait is a bounded poll with a generous bound (2 shared cores,
 *     sanitizers); a test fails on the bound, it never hangs.
 *   - A failover starts only once the sentinels agree on the topology (each
 *     sees the primary, its replica and the two other sentinels) and the
 *     replica has caught up with the primary's replication offset read
 *     after a moment t_before: every write acknowledged before t_before is
 *     then on the replica and must survive.  A write sent after t_after
 *     must survive too: t_after is when the old primary was killed and
 *     reaped, or, for SENTINEL FAILOVER, when the cache was seen to have
 *     followed the switch (stats.failovers) or the old primary was seen
 *     demoted, whichever came first; from then on only the new primary can
 *     acknowledge the cache's writes.  A write acknowledged in between may
 *     be lost by Redis itself (the old primary acknowledged it after the
 *     promotion, or before the replica got it): those are counted and
 *     printed, never failed (tests/redis_load.h).
 *   - "At once" means within CALL_SLACK_MS: a refused call (-ENOTCONN) never
 *     waits for a connection attempt (connect_timeout_ms is 1000 here, so a
 *     worker blocked in one would show).
 *   - Near-cache assertions poll with INVAL_WAIT_MS, well under near_ttl_ms
 *     (30 s), so the bound is the invalidation's (or the emptying of the
 *     near-cache at reconnection), not the entry's age limit.
 *   - The time writes were refused during a failover is printed on stderr
 *     ("sentinel: SENTINEL FAILOVER: writes refused for N ms"); only a
 *     generous bound is asserted.
 */
#include <gencache/gencache.h>

#include <check.h>

#include "check_util.h"
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redis_load.h"
#include "redis_topo.h"

#define MASTER "mymaster"
#define CALL_MS 5000           /* call timeouts where a hang must fail */
#define CALL_SLACK_MS 500      /* "at once"; and a call returns within its timeout + this */
#define CONNECT_MS 1000        /* connect_timeout_ms of the caches here */
#define NEAR_SETTLE_MS 100     /* as in test_redis.c */
#define INVAL_WAIT_MS 2000     /* a change reaches another instance's near-cache */
#define UP_WAIT_MS 10000       /* a cache is connected */
#define READY_WAIT_MS 30000    /* sentinels agree on the topology */
#define FAILOVER_WAIT_MS 30000 /* a failover completes */
#define GAP_MAX_MS 20000       /* writes refused at most this long */
#define LOAD_CAP 200000        /* puts recorded at most */

#define sleep_ms rh_sleep_ms
#define now_ms rh_now_ms

/* ------------------------------------------------------------------ */
/* Topology                                                             */

typedef struct stopo {
    rh_server_t *primary, *replica, *sent[3];
    cache_redis_node_t nodes[3];   /* the sentinels, for the cache */
} stopo_t;

static void
setup_dir(void)
{
    ck_assert_msg(rh_tmpdir_new() == 0, "mkdtemp: %s", strerror(errno));
}

static void
teardown_topo(void)
{
    rh_topo_teardown();
}

static void
srv_start(rh_server_t *s, const char *what)
{
    ck_assert_msg(s != NULL, "no server slot for %s", what);
    ck_assert_msg(rh_server_start(s) == 0, "%s would not start", what);
}

/* Wait until replica's link to its primary is up. */
static void
wait_replica_up(const rh_server_t *replica)
{
    int64_t deadline = now_ms() + READY_WAIT_MS;
    char link[16] = "";

    while (now_ms() < deadline) {
        if (rh_info(replica, "replication", "master_link_status", link, sizeof(link)) == 0 &&
            strcmp(link, "up") == 0)
            return;
        sleep_ms(10);
    }
    ck_abort_msg("replica %d: master_link_status %s after %d ms", replica->port, link,
                 READY_WAIT_MS);
}

/* Primary, replica (in sync), three sentinels that agree.  password: the
 * data servers' (NULL: none); spassword: the sentinels' (NULL: none). */
static void
stopo_start_auth(stopo_t *t, const char *password, const char *spassword)
{
    int i;

    memset(t, 0, sizeof(*t));
    t->primary = rh_primary_new(password);
    srv_start(t->primary, "the primary");
    t->replica = rh_replica_new(t->primary);
    srv_start(t->replica, "the replica");
    wait_replica_up(t->replica);
    for (i = 0; i < 3; i++) {
        t->sent[i] = rh_sentinel_new(MASTER, t->primary->port);
        ck_assert_ptr_nonnull(t->sent[i]);
        if (password != NULL) {
            size_t l = strlen(t->sent[i]->conf_body);

            snprintf(t->sent[i]->conf_body + l, sizeof(t->sent[i]->conf_body) - l,
                     "sentinel auth-pass %s %s\n", MASTER, password);
        }
        if (spassword != NULL) {
            size_t l = strlen(t->sent[i]->conf_body);

            snprintf(t->sent[i]->conf_body + l, sizeof(t->sent[i]->conf_body) - l,
                     "requirepass %s\n", spassword);
            snprintf(t->sent[i]->password, sizeof(t->sent[i]->password), "%s", spassword);
        }
        srv_start(t->sent[i], "a sentinel");
        t->nodes[i] = (cache_redis_node_t){ .host = "127.0.0.1", .port = t->sent[i]->port };
    }
    ck_assert_msg(rh_sentinels_wait_ready(t->sent, 3, MASTER, 1, 2, READY_WAIT_MS) == 0,
                  "the sentinels do not agree on the primary, its replica and each other "
                  "after %d ms", READY_WAIT_MS);
}

static void
stopo_start(stopo_t *t)
{
    stopo_start_auth(t, NULL, NULL);
}

/* Cache options through t's sentinels. */
static cache_redis_opts_t
sopts(stopo_t *t)
{
    cache_redis_opts_t r = { .sentinels = t->nodes, .n_sentinels = 3, .master_name = MASTER,
                             .connect_timeout_ms = CONNECT_MS, .reconnect_max_ms = 200,
                             .down_limit_ms = -1 };
    return r;
}

/* Wait until every running sentinel names port as the primary. */
static void
wait_sentinels_agree(stopo_t *t, int port)
{
    ck_assert_msg(rh_sentinels_wait_primary(t->sent, 3, MASTER, port, FAILOVER_WAIT_MS) == 0,
                  "the sentinels do not all name %d as the primary after %d ms", port,
                  FAILOVER_WAIT_MS);
}

/* ------------------------------------------------------------------ */
/* Cache helpers                                                        */

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

static cache_t *
cstart(const cache_redis_opts_t *r)
{
    cache_t *c = NULL;
    int rc = cache_start(&(cache_opts_t){ .redis = r }, &c);

    ck_assert_msg(rc == 0, "cache_start: %d (%s)", rc, cache_strerror(rc));
    ck_assert_ptr_nonnull(c);
    ck_assert_msg(wait_connected(c, 1, UP_WAIT_MS) >= 0,
                  "not connected through the sentinels %d ms after cache_start", UP_WAIT_MS);
    return c;
}

static void
cfinish(cache_t *c)
{
    ck_assert_int_eq(cache_stop(c, CALL_MS), 0);
    cache_release(c);
}

static int
put_s(cache_t *c, const char *key, const char *val)
{
    return cache_put(c, NULL, key, strlen(key), val, strlen(val), CACHE_TTL_NONE);
}

/* Direct read (cache_get) as a C string ("" unless 0). */
static int
get_s(cache_t *c, const char *key, char *out, size_t cap)
{
    size_t len = 0;
    int rc = cache_get(c, NULL, key, strlen(key), out, cap - 1, &len);

    out[rc == 0 ? len : 0] = '\0';
    return rc;
}

/* Synchronous read (cache_call GET, always from Redis). */
static int
sget_s(cache_t *c, const char *key, char *out, size_t cap)
{
    size_t len = 0;
    cache_op_t op = { .kind = CACHE_OP_GET, .key = key, .key_len = strlen(key), .buf = out,
                      .cap = cap - 1, .out_len = &len };
    int rc = cache_call(c, &op, CALL_MS);

    out[rc == 0 ? len : 0] = '\0';
    return rc;
}

static void
expect_value(cache_t *c, const char *key, const char *want)
{
    char buf[128];
    int rc = get_s(c, key, buf, sizeof(buf));

    ck_assert_msg(rc == 0 && strcmp(buf, want) == 0, "cache_get(%s): %d \"%s\", want \"%s\"",
                  key, rc, buf, want);
}

static void
expect_sync_value(cache_t *c, const char *key, const char *want)
{
    char buf[128];
    int rc = sget_s(c, key, buf, sizeof(buf));

    ck_assert_msg(rc == 0 && strcmp(buf, want) == 0, "GET call (%s): %d \"%s\", want \"%s\"",
                  key, rc, buf, want);
}

/* Poll cache_get until it returns want; the time it took, or -1. */
static int64_t
poll_get(cache_t *c, const char *key, const char *want, int ms)
{
    int64_t t0 = now_ms();
    char buf[128];

    for (;;) {
        if (get_s(c, key, buf, sizeof(buf)) == 0 && strcmp(buf, want) == 0)
            return now_ms() - t0;
        if (now_ms() - t0 > ms)
            return -1;
        sleep_ms(1);
    }
}

static void
expect_eventually(cache_t *c, const char *key, const char *want, const char *why)
{
    char buf[128];
    int64_t dt = poll_get(c, key, want, INVAL_WAIT_MS);
    int rc;

    if (dt >= 0)
        return;
    rc = get_s(c, key, buf, sizeof(buf));
    ck_abort_msg("%s: cache_get(%s) still %d \"%s\" after %d ms, want \"%s\"", why, key, rc,
                 buf, INVAL_WAIT_MS, want);
}

/* Poll puts (1 s calls) until one succeeds; each failure must be a lost
 * link's.  The time it took, or -1. */
static int64_t
wait_put_ok(cache_t *c, const char *key, const char *val, int ms)
{
    int64_t t0 = now_ms();
    cache_op_t op = { .kind = CACHE_OP_PUT, .key = key, .key_len = strlen(key), .value = val,
                      .value_len = strlen(val), .ttl_ms = CACHE_TTL_NONE };

    for (;;) {
        int rc = cache_call(c, &op, 1000);

        if (rc == 0)
            return now_ms() - t0;
        ck_assert_msg(rc == -ENOTCONN || rc == -ECONNRESET, "put while reconnecting: %d (%s)",
                      rc, cache_strerror(rc));
        if (now_ms() - t0 > ms)
            return -1;
        sleep_ms(10);
    }
}

/* A raw command with binary arguments on s. */
static rh_reply_t *
raw(const rh_server_t *s, int argc, const char *const *argv, const size_t *argl)
{
    return rh_server_cmdb(s, -1, argc, argv, argl);
}

/* The raw key of key in the default namespace: "gencache:cache\0key". */
static size_t
raw_key(const char *key, char *out, size_t cap)
{
    int n = snprintf(out, cap, "gencache:cache%c%s", '\0', key);

    return (size_t)n;
}

/* Raw SET of key's raw key on s to val (a plain value: no gencache
 * header, read as is).  Must answer +OK: s is a primary. */
static void
raw_set(const rh_server_t *s, const char *key, const char *val)
{
    char rk[128];
    const char *argv[3] = { "SET", rk, val };
    size_t argl[3] = { 3, raw_key(key, rk, sizeof(rk)), strlen(val) };
    rh_reply_t *rep = raw(s, 3, argv, argl);

    ck_assert_msg(rep != NULL && rep->type == '+', "raw SET %s on %d: %s", key, s->port,
                  rep != NULL && rep->str != NULL ? rep->str : "no reply");
    rh_reply_free(rep);
}

/* Does s hold key (raw EXISTS)? */
static int
raw_exists(const rh_server_t *s, const char *key)
{
    char rk[128];
    const char *argv[2] = { "EXISTS", rk };
    size_t argl[2] = { 6, raw_key(key, rk, sizeof(rk)) };
    rh_reply_t *rep = raw(s, 2, argv, argl);
    int yes;

    ck_assert_ptr_nonnull(rep);
    yes = rep->type == ':' && rep->integer == 1;
    rh_reply_free(rep);
    return yes;
}

/* ------------------------------------------------------------------ */
/* harness: the topology alone, with raw clients                        */

/* The topology works without gencache: replication, sentinels that agree,
 * a SENTINEL FAILOVER that promotes the replica and demotes the primary,
 * a black hole that never answers. */
START_TEST(test_harness_topology)
{
    stopo_t t;
    rh_reply_t *rep;
    rh_hole_t *h;
    int64_t t0;

    stopo_start(&t);
    ck_assert_int_eq(rh_is_primary(t.primary), 1);
    ck_assert_int_eq(rh_is_primary(t.replica), 0);
    ck_assert_int_eq(rh_sentinel_primary_port(t.sent[1], MASTER), t.primary->port);
    rep = rh_server_cmd(t.primary, -1, "SET", "hk", "hv", NULL);
    ck_assert(rep != NULL && rep->type == '+');
    rh_reply_free(rep);
    ck_assert_int_eq(rh_wait_replica_caught_up(t.primary, t.replica, 5000), 0);
    rep = rh_server_cmd(t.replica, -1, "GET", "hk", NULL);
    ck_assert(rep != NULL && rep->type == '$' && strcmp(rep->str, "hv") == 0);
    rh_reply_free(rep);
    rep = rh_server_cmd(t.replica, -1, "SET", "hk", "x", NULL);
    ck_assert(rep != NULL && rep->type == '-' && strncmp(rep->str, "READONLY", 8) == 0);
    rh_reply_free(rep);

    /* A forced failover. */
    t0 = now_ms();
    rep = rh_server_cmd(t.sent[0], -1, "SENTINEL", "FAILOVER", MASTER, NULL);
    ck_assert_msg(rep != NULL && rep->type == '+', "SENTINEL FAILOVER: %s",
                  rep != NULL && rep->str ? rep->str : "no reply");
    rh_reply_free(rep);
    wait_sentinels_agree(&t, t.replica->port);
    ck_assert_int_eq(rh_is_primary(t.replica), 1);
    fprintf(stderr, "sentinel: harness: SENTINEL FAILOVER took %lld ms\n",
            (long long)(now_ms() - t0));
    /* (The old primary stays a primary until a sentinel reconfigures it,
     * some 8 s later: Sentinel waits 4 publish periods.) */
    rep = rh_server_cmd(t.replica, -1, "GET", "hk", NULL);
    ck_assert(rep != NULL && rep->type == '$' && strcmp(rep->str, "hv") == 0);
    rh_reply_free(rep);

    /* A black hole: a connect to it gets no answer within 300 ms. */
    h = rh_hole_open(0);
    ck_assert_ptr_nonnull(h);
    t0 = now_ms();
    ck_assert(!rh_ping(h->port));
    ck_assert_int_ge(now_ms() - t0, RH_IO_TIMEOUT_MS - 100);
    rh_hole_close(h);
}
END_TEST

/* A sentinel killed: the others take over and the killed one is gone. */
START_TEST(test_harness_sentinel_restart)
{
    stopo_t t;
    int port;

    stopo_start(&t);
    port = t.sent[2]->port;
    ck_assert_int_eq(rh_server_kill(t.sent[2]), 0);
    ck_assert(!rh_ping(port));
    ck_assert_msg(rh_server_start(t.sent[2]) == 0, "sentinel would not restart on %d", port);
    ck_assert_int_eq(rh_sentinel_primary_port(t.sent[2], MASTER), t.primary->port);
}
END_TEST

/* ------------------------------------------------------------------ */
/* connect                                                              */

/*
 * The cache finds the primary through the sentinels, with the first one
 * listed down (connection refused), and through a list whose first entry is
 * a black hole (a connection attempt that hangs): cache_start returns within
 * about 2x connect_timeout_ms either way, and the cache connects.  Its data
 * goes to the primary, in the usual layout; the stats say one primary,
 * connected, no failover.
 */
START_TEST(test_connect_one_sentinel_down)
{
    stopo_t t;
    cache_redis_opts_t r;
    cache_redis_node_t holed[3];
    cache_t *a, *b = NULL;
    cache_stats_t st;
    rh_hole_t *h;
    int64_t t0, dt;
    int rc;

    stopo_start(&t);
    ck_assert_int_eq(rh_server_kill(t.sent[0]), 0);   /* listed first */
    r = sopts(&t);
    t0 = now_ms();
    a = cstart(&r);
    ck_assert_msg(now_ms() - t0 < UP_WAIT_MS, "connecting took %lld ms",
                  (long long)(now_ms() - t0));
    st = stats_of(a);
    ck_assert_uint_eq(st.connected, 1);
    ck_assert_uint_eq(st.primaries, 1);
    ck_assert_uint_eq(st.failovers, 0);
    ck_assert_uint_eq(st.redirects, 0);
    ck_assert_int_eq(put_s(a, "k", "v"), 0);
    expect_value(a, "k", "v");
    expect_sync_value(a, "k", "v");
    /* On the primary (the replica would have refused the write). */
    ck_assert_msg(raw_exists(t.primary, "k"), "the put is not on the primary %d",
                  t.primary->port);

    /* A black hole first, the dead sentinel second. */
    h = rh_hole_open(0);
    ck_assert_ptr_nonnull(h);
    holed[0] = (cache_redis_node_t){ .host = "127.0.0.1", .port = h->port };
    holed[1] = t.nodes[0];
    holed[2] = t.nodes[2];
    r.sentinels = holed;
    r.connect_timeout_ms = 500;
    t0 = now_ms();
    rc = cache_start(&(cache_opts_t){ .redis = &r }, &b);
    dt = now_ms() - t0;
    ck_assert_msg(rc == 0, "cache_start with a black-hole sentinel first: %d (%s)", rc,
                  cache_strerror(rc));
    ck_assert_msg(dt < 2 * 500 + CALL_SLACK_MS,
                  "cache_start took %lld ms with connect_timeout_ms 500 (a black hole first)",
                  (long long)dt);
    ck_assert_msg(wait_connected(b, 1, UP_WAIT_MS) >= 0,
                  "not connected %d ms after cache_start (black-hole sentinel first)",
                  UP_WAIT_MS);
    expect_sync_value(b, "k", "v");
    ck_assert_int_eq(put_s(b, "k2", "v2"), 0);
    ck_assert(raw_exists(t.primary, "k2"));
    ck_assert_uint_eq(stats_of(b).primaries, 1);
    cfinish(a);
    cfinish(b);
}
END_TEST

/* With every sentinel up: cache_start waits for its first connection
 * attempt, so the cache is connected when it returns. */
START_TEST(test_connect_start_waits)
{
    stopo_t t;
    cache_redis_opts_t r;
    cache_t *a = NULL;
    int64_t t0, dt;

    stopo_start(&t);
    r = sopts(&t);
    t0 = now_ms();
    ck_assert_int_eq(cache_start(&(cache_opts_t){ .redis = &r }, &a), 0);
    dt = now_ms() - t0;
    ck_assert_msg(dt < 2 * CONNECT_MS + CALL_SLACK_MS, "cache_start took %lld ms",
                  (long long)dt);
    ck_assert_msg(stats_of(a).connected == 1,
                  "not connected when cache_start returned (%lld ms) with every sentinel "
                  "and the primary up", (long long)dt);
    ck_assert_int_eq(put_s(a, "k", "v"), 0);
    cfinish(a);
}
END_TEST

/* sentinel_password goes to the sentinels, password to the data servers;
 * a wrong sentinel password never connects, and calls are refused at once
 * meanwhile. */
START_TEST(test_connect_auth)
{
    stopo_t t;
    cache_redis_opts_t r;
    cache_t *a, *bad = NULL;
    int64_t t0;
    int rc, i;

    stopo_start_auth(&t, "datapw", "sentpw");
    r = sopts(&t);
    r.password = "datapw";
    r.sentinel_password = "sentpw";
    a = cstart(&r);
    ck_assert_int_eq(put_s(a, "k", "v"), 0);
    ck_assert(raw_exists(t.primary, "k"));

    r.sentinel_password = "wrong";
    ck_assert_int_eq(cache_start(&(cache_opts_t){ .redis = &r }, &bad), 0);
    for (i = 0; i < 5; i++) {
        cache_op_t op = { .kind = CACHE_OP_PUT, .key = "k", .key_len = 1, .value = "x",
                          .value_len = 1, .ttl_ms = CACHE_TTL_NONE };

        sleep_ms(200);
        t0 = now_ms();
        rc = cache_call(bad, &op, CALL_MS);
        ck_assert_msg(rc == -ENOTCONN, "put with a wrong sentinel password: %d (%s)", rc,
                      cache_strerror(rc));
        ck_assert_msg(now_ms() - t0 < CALL_SLACK_MS, "-ENOTCONN after %lld ms",
                      (long long)(now_ms() - t0));
    }
    ck_assert_uint_eq(stats_of(bad).connected, 0);
    expect_sync_value(a, "k", "v");
    cfinish(bad);
    cfinish(a);
}
END_TEST

/* ------------------------------------------------------------------ */
/* failover                                                             */

/* Print and check the load's verdict; label names the failover. */
static void
check_load(wl_t *w, cache_t *reader, int64_t safe_before, int64_t safe_after,
           const char *label)
{
    wl_result_t res;

    wl_check(w, reader, safe_before, safe_after, NULL, NULL, CALL_MS, &res);
    fprintf(stderr, "sentinel: %s: writes refused for %lld ms\n", label,
            (long long)(res.gap_ms < 0 ? 0 : res.gap_ms));
    fprintf(stderr, "sentinel: %s: %zu puts, %zu acknowledged (%zu checked), %zu -ENOTCONN "
            "(slowest %lld ms), %zu -ECONNRESET; %zu acknowledged in the failover window, "
            "%zu of them lost by Redis (reported, not a failure)\n", label, res.puts,
            res.acked, res.checked, res.notconn, (long long)res.max_notconn_ms, res.reset,
            res.window, res.window_lost);
    ck_assert_msg(res.lost == 0, "%s: %zu acknowledged writes lost outside the failover "
                  "window; first: %s", label, res.lost, res.first_lost);
    ck_assert_msg(res.other == 0, "%s: %zu puts failed with neither -ENOTCONN nor "
                  "-ECONNRESET; first: %d (%s)", label, res.other, res.other_rc,
                  cache_strerror(res.other_rc));
    ck_assert_msg(res.max_notconn_ms < CALL_SLACK_MS, "%s: a put took %lld ms to be refused "
                  "with -ENOTCONN (want at once)", label, (long long)res.max_notconn_ms);
    ck_assert_msg(res.checked > 0, "%s: no acknowledged write to check", label);
    ck_assert_msg(res.gap_ms < GAP_MAX_MS, "%s: writes refused for %lld ms", label,
                  (long long)res.gap_ms);
}

/*
 * SENTINEL FAILOVER under a load of synchronous puts: the cache follows the
 * switch (failovers 1, still one primary, connected), writes resume, and
 * every write acknowledged before the failover (the replica had caught up)
 * or sent after the old primary was demoted is in Redis afterwards.
 */
START_TEST(test_failover_forced_under_load)
{
    stopo_t t;
    cache_redis_opts_t r;
    cache_t *a;
    cache_stats_t st;
    rh_reply_t *rep;
    wl_t w;
    int64_t t_before, t_after, t0;

    stopo_start(&t);
    r = sopts(&t);
    a = cstart(&r);
    wl_start(&w, a, "f", CALL_MS, 1, LOAD_CAP);
    ck_assert_msg(wl_wait_acked(&w, 200, 10000) == 0, "the load does not get going");
    t_before = now_ms();
    ck_assert_msg(rh_wait_replica_caught_up(t.primary, t.replica, 10000) == 0,
                  "the replica does not catch up with the primary");
    t0 = now_ms();
    rep = rh_server_cmd(t.sent[1], -1, "SENTINEL", "FAILOVER", MASTER, NULL);
    ck_assert_msg(rep != NULL && rep->type == '+', "SENTINEL FAILOVER: %s",
                  rep != NULL && rep->str ? rep->str : "no reply");
    rh_reply_free(rep);
    /* t_after: the cache is seen to have followed the switch (a put sent
     * later goes to the new primary), or the old primary is seen demoted
     * (it acknowledges nothing from then on), whichever comes first.
     * Sentinel demotes the old primary only some 8 s after the switch. */
    t_after = -1;
    while (t_after < 0 && now_ms() - t0 < FAILOVER_WAIT_MS) {
        if (stats_of(a).failovers >= 1 || rh_is_primary(t.primary) == 0)
            t_after = now_ms();
        else
            sleep_ms(2);
    }
    ck_assert_msg(t_after >= 0, "%d ms after SENTINEL FAILOVER, neither did the cache follow "
                  "(stats.failovers 0) nor was the old primary demoted", FAILOVER_WAIT_MS);
    wait_sentinels_agree(&t, t.replica->port);
    ck_assert_int_eq(rh_is_primary(t.replica), 1);
    ck_assert_msg(wl_wait_ok_after(&w, t_after, NULL, NULL, FAILOVER_WAIT_MS) >= 0,
                  "no put succeeded within %d ms after the failover", FAILOVER_WAIT_MS);
    sleep_ms(300);
    check_load(&w, a, t_before, t_after, "SENTINEL FAILOVER");
    st = stats_of(a);
    ck_assert_uint_eq(st.connected, 1);
    ck_assert_uint_eq(st.primaries, 1);
    ck_assert_msg(st.failovers == 1, "stats.failovers %llu after one failover",
                  (unsigned long long)st.failovers);
    /* The new primary has the cache's writes from now on. */
    ck_assert_int_eq(put_s(a, "after", "x"), 0);
    ck_assert(raw_exists(t.replica, "after"));
    wl_free(&w);
    cfinish(a);
}
END_TEST

/* REPLICAOF on s (host NULL: NO ONE); must answer +OK. */
static void
replicaof(const rh_server_t *s, const rh_server_t *of)
{
    char port[16];
    rh_reply_t *rep;

    if (of == NULL) {
        rep = rh_server_cmd(s, -1, "REPLICAOF", "NO", "ONE", NULL);
    } else {
        snprintf(port, sizeof(port), "%d", of->port);
        rep = rh_server_cmd(s, -1, "REPLICAOF", "127.0.0.1", port, NULL);
    }
    ck_assert_msg(rep != NULL && rep->type == '+', "REPLICAOF on %d: %s", s->port,
                  rep != NULL && rep->str ? rep->str : "no reply");
    rh_reply_free(rep);
}

/*
 * A demoted primary (READONLY) is a lost link.  Under load, the test swaps
 * the roles behind the sentinels' back (the replica promoted, the primary
 * made its replica), too briefly for them to act (a primary that reports
 * itself a replica is judged down only after down-after plus two INFO
 * periods, some 21 s): the sentinels keep naming the old primary, so the
 * cache's writes meet READONLY.  They must fail as a lost link's
 * (-ENOTCONN, -ECONNRESET; never -EIO passed through), at once; then the
 * roles are swapped back and the cache, reconnecting to the same address,
 * works again (no failover counted: the primary did not change).  Writes
 * acknowledged before the swap (the replica caught up first) or sent after
 * the swap back must be in Redis.
 */
START_TEST(test_failover_demoted_primary_readonly)
{
    stopo_t t;
    cache_redis_opts_t r;
    cache_t *a;
    cache_stats_t st;
    wl_t w;
    char ro[64] = "";
    size_t failed_before;
    int64_t t_before, t_restored;

    stopo_start(&t);
    r = sopts(&t);
    a = cstart(&r);
    wl_start(&w, a, "d", CALL_MS, 1, LOAD_CAP);
    ck_assert_msg(wl_wait_acked(&w, 200, 10000) == 0, "the load does not get going");
    t_before = now_ms();
    ck_assert_msg(rh_wait_replica_caught_up(t.primary, t.replica, 10000) == 0,
                  "the replica does not catch up with the primary");
    replicaof(t.replica, NULL);
    replicaof(t.primary, t.replica);
    failed_before = wl_count(&w, -ENOTCONN) + wl_count(&w, -ECONNRESET);
    sleep_ms(1500);
    ck_assert_msg(rh_info(t.primary, "errorstats", "errorstat_READONLY", ro, sizeof(ro)) == 0,
                  "the demoted primary answered no write with READONLY: the cache did not "
                  "write to it (or this Redis has no errorstats)");
    fprintf(stderr, "sentinel: demoted primary: READONLY replies: %s\n", ro);
    ck_assert_msg(wl_count(&w, -ENOTCONN) + wl_count(&w, -ECONNRESET) > failed_before,
                  "no put failed while the primary was demoted");
    replicaof(t.primary, NULL);
    replicaof(t.replica, t.primary);
    t_restored = now_ms();
    ck_assert_msg(wl_wait_ok_after(&w, t_restored, NULL, NULL, FAILOVER_WAIT_MS) >= 0,
                  "no put succeeded within %d ms after the primary was restored",
                  FAILOVER_WAIT_MS);
    sleep_ms(300);
    check_load(&w, a, t_before, t_restored, "demoted primary");
    st = stats_of(a);
    ck_assert_uint_eq(st.connected, 1);
    ck_assert_uint_eq(st.primaries, 1);
    ck_assert_uint_ge(st.reconnects, 1);
    ck_assert_msg(st.failovers == 0, "stats.failovers %llu: the primary never changed",
                  (unsigned long long)st.failovers);
    wl_free(&w);
    cfinish(a);
}
END_TEST

/*
 * The primary killed (SIGKILL) under load: the sentinels agree it is down
 * (1000 ms), promote the replica, and the cache follows.  Writes
 * acknowledged before the kill's window (replica caught up) or sent after
 * the kill must be in Redis; those acknowledged in between are reported.
 */
START_TEST(test_failover_primary_killed)
{
    stopo_t t;
    cache_redis_opts_t r;
    cache_t *a;
    cache_stats_t st;
    wl_t w;
    int64_t t_before, t_kill;

    stopo_start(&t);
    r = sopts(&t);
    a = cstart(&r);
    wl_start(&w, a, "k", CALL_MS, 1, LOAD_CAP);
    ck_assert_msg(wl_wait_acked(&w, 200, 10000) == 0, "the load does not get going");
    t_before = now_ms();
    ck_assert_msg(rh_wait_replica_caught_up(t.primary, t.replica, 10000) == 0,
                  "the replica does not catch up with the primary");
    ck_assert_int_eq(rh_server_kill(t.primary), 0);
    t_kill = now_ms();
    wait_sentinels_agree(&t, t.replica->port);
    ck_assert_msg(wl_wait_ok_after(&w, t_kill, NULL, NULL, FAILOVER_WAIT_MS) >= 0,
                  "no put succeeded within %d ms after the sentinels agreed on the new "
                  "primary", FAILOVER_WAIT_MS);
    sleep_ms(300);
    check_load(&w, a, t_before, t_kill, "primary killed");
    st = stats_of(a);
    ck_assert_uint_eq(st.connected, 1);
    ck_assert_uint_eq(st.primaries, 1);
    ck_assert_msg(st.failovers == 1, "stats.failovers %llu after one failover",
                  (unsigned long long)st.failovers);
    ck_assert_uint_ge(st.reconnects, 1);
    wl_free(&w);
    cfinish(a);
}
END_TEST

/* ------------------------------------------------------------------ */
/* near                                                                 */

/*
 * Near-cache coherence across a failover.  A holds k1 in its near-cache;
 * the moment the replica is promoted, a raw client changes k1 on it: A must
 * come to see the change (its near-cache emptied when it reconnected, or
 * tracking on the new primary reports it).  Then, on the new primary, B's
 * overwrite of k2 and a raw client's overwrite of k3 reach A's near-cache
 * within the usual bound, as before the failover.
 */
START_TEST(test_near_coherent_after_failover)
{
    stopo_t t;
    cache_redis_opts_t r;
    cache_t *a, *b;
    rh_reply_t *rep;
    int64_t t0, dt;

    stopo_start(&t);
    r = sopts(&t);
    a = cstart(&r);
    b = cstart(&r);
    ck_assert_int_eq(put_s(b, "k1", "old1"), 0);
    ck_assert_int_eq(put_s(b, "k2", "old2"), 0);
    ck_assert_int_eq(put_s(b, "k3", "old3"), 0);
    sleep_ms(NEAR_SETTLE_MS);
    expect_value(a, "k1", "old1");
    expect_value(a, "k1", "old1");
    /* Before the failover, invalidation works (the baseline). */
    ck_assert_int_eq(put_s(b, "k1", "b1"), 0);
    expect_eventually(a, "k1", "b1", "before the failover, B's overwrite");
    ck_assert_int_eq(rh_wait_replica_caught_up(t.primary, t.replica, 10000), 0);

    t0 = now_ms();
    rep = rh_server_cmd(t.sent[2], -1, "SENTINEL", "FAILOVER", MASTER, NULL);
    ck_assert_msg(rep != NULL && rep->type == '+', "SENTINEL FAILOVER: %s",
                  rep != NULL && rep->str ? rep->str : "no reply");
    rh_reply_free(rep);
    while (rh_is_primary(t.replica) != 1 && now_ms() - t0 < FAILOVER_WAIT_MS)
        sleep_ms(2);
    ck_assert_int_eq(rh_is_primary(t.replica), 1);
    raw_set(t.replica, "k1", "raw1");
    wait_sentinels_agree(&t, t.replica->port);
    /* Both caches are on the new primary once their puts work. */
    ck_assert_msg(wait_put_ok(a, "ping-a", "x", FAILOVER_WAIT_MS) >= 0, "A does not recover");
    ck_assert_msg(wait_put_ok(b, "ping-b", "x", FAILOVER_WAIT_MS) >= 0, "B does not recover");
    dt = poll_get(a, "k1", "raw1", INVAL_WAIT_MS);
    ck_assert_msg(dt >= 0, "A still serves k1 from before the failover %d ms after it "
                  "reconnected (the new primary has \"raw1\"; near_ttl_ms is 30 s)",
                  INVAL_WAIT_MS);

    /* Tracking on the new primary: another instance, then a raw client. */
    expect_value(a, "k2", "old2");
    expect_value(a, "k3", "old3");
    sleep_ms(NEAR_SETTLE_MS);
    ck_assert_int_eq(put_s(b, "k2", "new2"), 0);
    expect_eventually(a, "k2", "new2", "after the failover, B's overwrite");
    raw_set(t.replica, "k3", "raw3");
    expect_eventually(a, "k3", "raw3", "after the failover, a raw SET on the new primary");
    ck_assert_uint_eq(stats_of(a).failovers, 1);
    ck_assert_uint_eq(stats_of(b).failovers, 1);
    cfinish(a);
    cfinish(b);
}
END_TEST

/* ------------------------------------------------------------------ */
/* options                                                              */

static void
expect_bad(const cache_redis_opts_t *r, const char *what)
{
    cache_t *c = (cache_t *)1;
    int rc = cache_start(&(cache_opts_t){ .redis = r }, &c);

    ck_assert_msg(rc == -EINVAL, "cache_start with %s: %d (%s), want -EINVAL", what, rc,
                  cache_strerror(rc));
    ck_assert_ptr_null(c);
    c = (cache_t *)1;
    rc = cache_new(&(cache_opts_t){ .redis = r }, &c);
    ck_assert_msg(rc == -EINVAL, "cache_new with %s: %d (%s), want -EINVAL", what, rc,
                  cache_strerror(rc));
    ck_assert_ptr_null(c);
}

/* Bad Sentinel options are -EINVAL (nothing started, no server needed);
 * the limits themselves are accepted. */
START_TEST(test_opts_invalid)
{
    static cache_redis_node_t many[65];
    cache_redis_node_t one[1] = { { "127.0.0.1", 26379 } }, bad[1];
    cache_redis_opts_t base = { .sentinels = one, .n_sentinels = 1, .master_name = MASTER,
                                .connect_timeout_ms = 100 },
                       r;
    char name[257];
    cache_t *c = NULL;
    size_t i;

    r = base; r.master_name = NULL;     expect_bad(&r, "sentinels without master_name");
    r = base; r.cluster = one; r.n_cluster = 1;
    expect_bad(&r, "both sentinels and cluster");
    r = base; r.n_sentinels = 0;        expect_bad(&r, "n_sentinels 0 with a list");
    for (i = 0; i < 65; i++)
        many[i] = one[0];
    r = base; r.sentinels = many; r.n_sentinels = 65; expect_bad(&r, "65 sentinels");
    bad[0] = (cache_redis_node_t){ "127.0.0.1", 0 };
    r = base; r.sentinels = bad;        expect_bad(&r, "a sentinel on port 0");
    bad[0] = (cache_redis_node_t){ "127.0.0.1", 65536 };
    r = base; r.sentinels = bad;        expect_bad(&r, "a sentinel on port 65536");
    bad[0] = (cache_redis_node_t){ "127.0.0.1", -1 };
    r = base; r.sentinels = bad;        expect_bad(&r, "a sentinel on port -1");
    bad[0] = (cache_redis_node_t){ "", 26379 };
    r = base; r.sentinels = bad;        expect_bad(&r, "a sentinel with an empty host");
    memset(name, 'm', sizeof(name));
    name[256] = '\0';
    r = base; r.master_name = name;     expect_bad(&r, "a 256-byte master_name");

    /* The limits are fine: 64 sentinels, a 255-byte name, port 65535
     * (nothing listens: the cache starts anyway). */
    name[255] = '\0';
    r = base;
    r.sentinels = many;
    r.n_sentinels = 64;
    r.master_name = name;
    ck_assert_int_eq(cache_new(&(cache_opts_t){ .redis = &r }, &c), 0);
    ck_assert_int_eq(cache_stop(c, CALL_MS), 0);
    cache_release(c);
    bad[0] = (cache_redis_node_t){ "127.0.0.1", 65535 };
    r = base;
    r.sentinels = bad;
    ck_assert_int_eq(cache_new(&(cache_opts_t){ .redis = &r }, &c), 0);
    ck_assert_int_eq(cache_stop(c, CALL_MS), 0);
    cache_release(c);
}
END_TEST

/* ------------------------------------------------------------------ */

/* A tcase named `name` (tagged with it) with a 120 s timeout, whose
 * checked fixture gives each test its directory and kills everything it
 * started; NULL when excluded by CK_EXCLUDE_TCASE. */
static TCase *
tc_new(Suite *s, const char *name)
{
    TCase *tc;

    if (gc_tcase_excluded(name))
        return NULL;
    tc = tcase_create(name);
    tcase_set_timeout(tc, 120);
    tcase_set_tags(tc, name);
    tcase_add_checked_fixture(tc, setup_dir, teardown_topo);
    suite_add_tcase(s, tc);
    return tc;
}

#define ADD(tc, t)                  \
    do {                            \
        if ((tc) != NULL)           \
            tcase_add_test(tc, t);  \
    } while (0)

static Suite *
sentinel_suite(void)
{
    Suite *s = suite_create("sentinel");
    TCase *tc;

    tc = tc_new(s, "harness");
    ADD(tc, test_harness_topology);
    ADD(tc, test_harness_sentinel_restart);

    tc = tc_new(s, "connect");
    ADD(tc, test_connect_one_sentinel_down);
    ADD(tc, test_connect_start_waits);
    ADD(tc, test_connect_auth);

    tc = tc_new(s, "failover");
    ADD(tc, test_failover_forced_under_load);
    ADD(tc, test_failover_demoted_primary_readonly);
    ADD(tc, test_failover_primary_killed);

    tc = tc_new(s, "near");
    ADD(tc, test_near_coherent_after_failover);

    tc = tc_new(s, "options");
    ADD(tc, test_opts_invalid);
    return s;
}

int
main(void)
{
    return rh_topo_main("test_sentinel", sentinel_suite);
}

/*
 * Check suite "cluster": a Redis cache on Redis Cluster
 * (cache_redis_opts_t.cluster, seed nodes), as include/gencache/cache.h
 * promises it: keys (prefix + namespace + NUL + key) are mapped to slots
 * with CRC16 and hash tags and sent to the slot's primary, one connection
 * and one invalidation tracking per primary; cache_all, cache_count_all
 * and cache_clear_all (and a namespace's count and clear) cover every
 * primary; a batch is atomic per slot, and a namespace named like a hash
 * tag ("{users}") keeps all its keys in one slot, so its batches are atomic
 * as a whole; MOVED and ASK are followed (stats.redirects) while slots move;
 * a coordinated failover loses no acknowledged write; a primary killed is
 * replaced by its replica and the cache follows; the near-cache hears of
 * every primary's changes; stats.primaries; bad options.
 *
 * Every test starts its own cluster (tests/redis_topo.h): six redis-server
 * nodes on 127.0.0.1 (free ports whose +10000, the bus, is free too),
 * joined by `redis-cli --cluster create ... --cluster-replicas 1` into 3
 * primaries with one replica each, cluster-node-timeout 1000 ms, and
 * cluster-require-full-coverage off (a dead primary stops only its own
 * slots); the nodes' files live in a per-test directory.  The checked
 * teardown kills every process left (redis-cli included) and removes the
 * directory, and a process whose test died is killed by the kernel
 * (PR_SET_PDEATHSIG).  Without redis-server or redis-cli in PATH (or
 * redis-sentinel: the suites share one dependency list), or in a build
 * without hiredis, the suite prints one line and exits 77 (CTest: skipped).
 *
 * Determinism.  Clusters run on real time (gossip, failure detection,
 * asynchronous replication):
 *   - Every wait is a bounded poll with a generous bound (2 shared cores,
 *     sanitizers); a test fails on the bound, it never hangs.  A test acts
 *     only on a settled cluster (every node: state ok, 16384 slots ok, the
 *     same slot map, replicas' links up: rh_cluster_wait_ok).
 *   - Where a test needs to know which primary holds a key, it computes the
 *     slot itself (rh_key_slot, checked against CLUSTER KEYSLOT by the
 *     harness tcase) and reads the owner from CLUSTER SLOTS, then talks to
 *     that node directly: a wrong guess gets MOVED, which fails the test.
 *   - Failovers under load follow tests/redis_load.h: every write
 *     acknowledged before the replica was seen caught up, or sent after the
 *     primary was killed, or to a slot the failover does not touch, must be
 *     in Redis afterwards; a write to the killed primary's slots
 *     acknowledged in between may be lost by Redis itself (asynchronous
 *     replication): counted and printed, never failed.  A coordinated
 *     failover (CLUSTER FAILOVER) has no such window.
 *   - Near-cache assertions poll with INVAL_WAIT_MS, well under near_ttl_ms.
 *   - The time writes to the killed primary's slots were refused is printed
 *     ("cluster: primary killed: writes refused for N ms"); only a generous
 *     bound is asserted.
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

#define NODES 6
#define NODE_TIMEOUT_MS 1000
#define CALL_MS 5000           /* call timeouts where a hang must fail */
#define CALL_SLACK_MS 500      /* "at once"; a call returns within its timeout + this */
#define CONNECT_MS 1000        /* connect_timeout_ms of the caches here */
#define NEAR_SETTLE_MS 100     /* as in test_redis.c */
#define INVAL_WAIT_MS 2000     /* a change reaches another instance's near-cache */
#define UP_WAIT_MS 10000       /* a cache is connected to every primary */
#define CREATE_WAIT_MS 60000   /* the cluster forms and settles */
#define SETTLE_WAIT_MS 30000   /* the cluster settles after a change */
#define RESHARD_WAIT_MS 90000  /* redis-cli --cluster reshard of RESHARD_SLOTS */
#define RESHARD_SLOTS 1200
#define GAP_MAX_MS 20000       /* writes refused at most this long */
#define LOAD_CAP 200000

#define sleep_ms rh_sleep_ms
#define now_ms rh_now_ms

/* ------------------------------------------------------------------ */
/* Topology                                                             */

typedef struct ctopo {
    rh_server_t *node[NODES];
    cache_redis_node_t seeds[NODES];
    int owner[RH_SLOTS];       /* slot -> primary's port, as of ctopo_refresh */
} ctopo_t;

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

/* A running node's port (for cluster-wide queries). */
static int
any_port(const ctopo_t *t)
{
    int i;

    for (i = 0; i < NODES; i++)
        if (t->node[i]->pid != 0)
            return t->node[i]->port;
    ck_abort_msg("no node running");
    return -1;
}

/* Wait until the cluster is settled, then read its slot map. */
static void
ctopo_refresh(ctopo_t *t)
{
    ck_assert_msg(rh_cluster_wait_ok(t->node, NODES, SETTLE_WAIT_MS) == 0,
                  "the cluster does not settle within %d ms", SETTLE_WAIT_MS);
    ck_assert_int_eq(rh_cluster_slot_owners(any_port(t), t->owner), RH_SLOTS);
}

static void
ctopo_start(ctopo_t *t)
{
    int i;

    memset(t, 0, sizeof(*t));
    for (i = 0; i < NODES; i++) {
        t->node[i] = rh_cluster_node_new(NODE_TIMEOUT_MS);
        ck_assert_ptr_nonnull(t->node[i]);
        ck_assert_msg(rh_server_start(t->node[i]) == 0, "cluster node %d would not start", i);
        t->seeds[i] = (cache_redis_node_t){ .host = "127.0.0.1", .port = t->node[i]->port };
    }
    ck_assert_msg(rh_cluster_create(t->node, NODES, 1, CREATE_WAIT_MS) == 0,
                  "redis-cli --cluster create failed (log above)");
    ctopo_refresh(t);
}

static rh_server_t *
node_of_port(const ctopo_t *t, int port)
{
    int i;

    for (i = 0; i < NODES; i++)
        if (t->node[i]->port == port)
            return t->node[i];
    ck_abort_msg("no node on port %d", port);
    return NULL;
}

/* The running primaries (as the cluster sees them), into p[0..3). */
static int
primaries(const ctopo_t *t, rh_server_t **p)
{
    rh_cnode_t cn[16];
    int n = rh_cluster_nodes(any_port(t), cn, 16), i, k = 0;

    ck_assert_int_gt(n, 0);
    for (i = 0; i < n; i++) {
        rh_server_t *s;

        if (!cn[i].primary || cn[i].failed || cn[i].nslots == 0)
            continue;
        s = node_of_port(t, cn[i].port);
        if (s->pid != 0 && k < 3)
            p[k++] = s;
    }
    ck_assert_int_eq(k, 3);
    return k;
}

/* The replica of primary p: asked of the replicas themselves (INFO
 * replication), not of the gossip of CLUSTER NODES, which may not have
 * reached every node yet when the cluster has just settled. */
static rh_server_t *
replica_of(const ctopo_t *t, const rh_server_t *p)
{
    int64_t deadline = rh_now_ms() + SETTLE_WAIT_MS;
    int i;

    do {
        for (i = 0; i < NODES; i++) {
            char port[16];

            if (t->node[i]->pid == 0 || t->node[i] == p || rh_is_primary(t->node[i]) != 0)
                continue;
            if (rh_info(t->node[i], "replication", "master_port", port, sizeof(port)) == 0 &&
                atoi(port) == p->port)
                return t->node[i];
        }
        rh_sleep_ms(50);
    } while (rh_now_ms() < deadline);
    ck_abort_msg("primary %d has no replica", p->port);
    return NULL;
}

/* Cache options with seeds t->seeds[first..first+n). */
static cache_redis_opts_t
copts(ctopo_t *t, int first, int n)
{
    cache_redis_opts_t r = { .cluster = &t->seeds[first], .n_cluster = (size_t)n,
                             .connect_timeout_ms = CONNECT_MS, .reconnect_max_ms = 200,
                             .down_limit_ms = -1 };
    return r;
}

/* The raw Redis key of (ns, key) with the default prefix. */
static size_t
raw_key(const char *ns, const char *key, char *out, size_t cap)
{
    int n = snprintf(out, cap, "gencache:%s%c%s", ns != NULL ? ns : "cache", '\0', key);

    return (size_t)n;
}

static unsigned
slot_of(const char *ns, const char *key)
{
    char rk[512];

    return rh_key_slot(rk, raw_key(ns, key, rk, sizeof(rk)));
}

/* A key "<stem><n>" of ns whose slot belongs to the primary on port. */
static void
key_on(const ctopo_t *t, const char *ns, const char *stem, int port, char *out, size_t cap)
{
    int i;

    for (i = 0; i < 100000; i++) {
        snprintf(out, cap, "%s%d", stem, i);
        if (t->owner[slot_of(ns, out)] == port)
            return;
    }
    ck_abort_msg("no key %s* on %d", stem, port);
}

/* A raw command with binary arguments straight to the node on port (no
 * redirection followed). */
static rh_reply_t *
raw_at(int port, int argc, const char *const *argv, const size_t *argl)
{
    return rh_cmd(port, NULL, -1, argc, argv, argl);
}

static long long
raw_dbsize(const rh_server_t *s)
{
    rh_reply_t *rep = rh_server_cmd(s, -1, "DBSIZE", NULL);
    long long n;

    ck_assert_ptr_nonnull(rep);
    ck_assert_int_eq(rep->type, ':');
    n = rep->integer;
    rh_reply_free(rep);
    return n;
}

/* EXISTS of (ns, key) on the node on port, without redirection: 1, 0, or
 * -1 for an error reply (MOVED: not that node's key). */
static int
raw_exists_at(int port, const char *ns, const char *key)
{
    char rk[512];
    const char *argv[2] = { "EXISTS", rk };
    size_t argl[2] = { 6, raw_key(ns, key, rk, sizeof(rk)) };
    rh_reply_t *rep = raw_at(port, 2, argv, argl);
    int v;

    ck_assert_ptr_nonnull(rep);
    v = rep->type == ':' ? (int)rep->integer : -1;
    rh_reply_free(rep);
    return v;
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
                  "not connected to every primary %d ms after cache_start", UP_WAIT_MS);
    return c;
}

static void
cfinish(cache_t *c)
{
    ck_assert_int_eq(cache_stop(c, CALL_MS), 0);
    cache_release(c);
}

static int
put_s(cache_t *c, const char *ns, const char *key, const char *val, int64_t ttl)
{
    return cache_put(c, ns, key, strlen(key), val, strlen(val), ttl);
}

static int
get_s(cache_t *c, const char *ns, const char *key, char *out, size_t cap)
{
    size_t len = 0;
    int rc = cache_get(c, ns, key, strlen(key), out, cap - 1, &len);

    out[rc == 0 ? len : 0] = '\0';
    return rc;
}

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

#define NSNAME(ns) ((ns) != NULL ? (ns) : "(default)")

static void
expect_value(cache_t *c, const char *ns, const char *key, const char *want)
{
    char buf[128];
    int rc = get_s(c, ns, key, buf, sizeof(buf));

    ck_assert_msg(rc == 0 && strcmp(buf, want) == 0,
                  "cache_get(%s, %s): %d (%s) \"%s\", want \"%s\"", NSNAME(ns), key, rc,
                  cache_strerror(rc), buf, want);
}

static void
expect_sync_value(cache_t *c, const char *ns, const char *key, const char *want)
{
    char buf[128];
    int rc = sget_s(c, ns, key, buf, sizeof(buf));

    ck_assert_msg(rc == 0 && strcmp(buf, want) == 0,
                  "GET call (%s, %s): %d (%s) \"%s\", want \"%s\"", NSNAME(ns), key, rc,
                  cache_strerror(rc), buf, want);
}

static void
expect_sync_missing(cache_t *c, const char *ns, const char *key)
{
    char buf[128];
    int rc = sget_s(c, ns, key, buf, sizeof(buf));

    ck_assert_msg(rc == -ENOENT, "GET call (%s, %s): %d \"%s\", want -ENOENT", NSNAME(ns), key,
                  rc, buf);
}

static void
expect_eventually(cache_t *c, const char *ns, const char *key, const char *want,
                  const char *why)
{
    int64_t t0 = now_ms();
    char buf[128];
    int rc;

    for (;;) {
        rc = get_s(c, ns, key, buf, sizeof(buf));
        if (rc == 0 && strcmp(buf, want) == 0)
            return;
        if (now_ms() - t0 > INVAL_WAIT_MS)
            break;
        sleep_ms(1);
    }
    ck_abort_msg("%s: cache_get(%s, %s) still %d \"%s\" after %d ms, want \"%s\"", why,
                 NSNAME(ns), key, rc, buf, INVAL_WAIT_MS, want);
}

/* Poll puts (1 s calls) of (NULL, key) until one succeeds; each failure
 * must be a lost link's.  The time it took, or -1. */
static int64_t
wait_put_ok(cache_t *c, const char *key, int ms)
{
    int64_t t0 = now_ms();

    for (;;) {
        cache_op_t op = { .kind = CACHE_OP_PUT, .key = key, .key_len = strlen(key),
                          .value = "x", .value_len = 1, .ttl_ms = CACHE_TTL_NONE };
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

/* ------------------------------------------------------------------ */
/* harness: the cluster alone, with raw clients                         */

/* The cluster forms (3 primaries, 3 replicas, 16384 slots), rh_key_slot
 * agrees with CLUSTER KEYSLOT (hash tags included), the raw client follows
 * MOVED, reshard and CLUSTER FAILOVER work through redis-cli. */
START_TEST(test_harness_cluster)
{
    ctopo_t t;
    rh_server_t *p[3], *rep;
    rh_reply_t *r;
    char from[41], to[41];
    rh_proc_t *proc;
    int i, before;
    static const char *const keys[] = { "", "a", "foo", "{users}", "{}x", "x{}{y}", "{a}{b}",
                                        "gencache:{users}\0k", "123456789", "{{x}}" };
    static const size_t lens[] = { 0, 1, 3, 7, 3, 6, 6, 18, 9, 5 };

    ctopo_start(&t);
    primaries(&t, p);
    for (i = 0; i < 3; i++) {
        rep = replica_of(&t, p[i]);
        ck_assert_int_eq(rh_is_primary(rep), 0);
        ck_assert_int_eq(rh_is_primary(p[i]), 1);
    }
    for (i = 0; i < (int)(sizeof(keys) / sizeof(keys[0])); i++)
        ck_assert_msg(rh_key_slot(keys[i], lens[i]) ==
                      (unsigned)rh_cluster_keyslot(any_port(&t), keys[i], lens[i]),
                      "rh_key_slot(\"%s\") = %u, CLUSTER KEYSLOT says %d", keys[i],
                      rh_key_slot(keys[i], lens[i]),
                      rh_cluster_keyslot(any_port(&t), keys[i], lens[i]));
    ck_assert_uint_eq(rh_key_slot("gencache:{users}\0k", 18), rh_key_slot("users", 5));
    ck_assert_uint_eq(rh_key_slot("123456789", 9), 12739);     /* Redis's test vector */
    /* A SET sent to the wrong node is redirected. */
    {
        const char *set[3] = { "SET", "hk", "hv" }, *get[2] = { "GET", "hk" };
        int owner = t.owner[rh_key_slot("hk", 2)], other = p[0]->port == owner ? p[1]->port
                                                                                : p[0]->port;

        r = rh_cluster_cmd(other, 3, set, NULL);
        ck_assert(r != NULL && r->type == '+');
        rh_reply_free(r);
        r = raw_at(other, 2, get, NULL);
        ck_assert(r != NULL && r->type == '-' && strncmp(r->str, "MOVED", 5) == 0);
        rh_reply_free(r);
        r = raw_at(owner, 2, get, NULL);
        ck_assert(r != NULL && r->type == '$' && strcmp(r->str, "hv") == 0);
        rh_reply_free(r);
    }
    /* Reshard 100 slots from p[0] to p[1]. */
    ck_assert_int_eq(rh_cluster_myid(p[0]->port, from), 0);
    ck_assert_int_eq(rh_cluster_myid(p[1]->port, to), 0);
    for (before = 0, i = 0; i < RH_SLOTS; i++)
        before += t.owner[i] == p[0]->port;
    proc = rh_cluster_reshard_start(p[0]->port, from, to, 100);
    ck_assert_ptr_nonnull(proc);
    ck_assert_int_eq(rh_proc_wait(proc, RESHARD_WAIT_MS), 0);
    ctopo_refresh(&t);
    for (i = 0; i < RH_SLOTS; i++)
        before -= t.owner[i] == p[0]->port;
    ck_assert_int_eq(before, 100);
    /* A coordinated failover. */
    rep = replica_of(&t, p[2]);
    ck_assert_int_eq(rh_cluster_failover(rep, SETTLE_WAIT_MS), 0);
    ctopo_refresh(&t);
    ck_assert_int_eq(rh_is_primary(p[2]), 0);
    /* A killed primary is replaced by its replica. */
    rep = replica_of(&t, p[0]);
    ck_assert_int_eq(rh_server_kill(p[0]), 0);
    ctopo_refresh(&t);
    ck_assert_int_eq(rh_is_primary(rep), 1);
}
END_TEST

/* ------------------------------------------------------------------ */
/* basic                                                                */

/*
 * One seed is enough (node 5, a replica or a primary), the cache connects
 * to the three primaries, and keys land on the primary of their slot
 * (computed here with CRC16 and checked with a raw EXISTS on that node,
 * which would answer MOVED otherwise), spread over all three.  A cache
 * that maps keys right needs no redirect on a stable cluster.
 */
START_TEST(test_basic_spread)
{
    ctopo_t t;
    cache_redis_opts_t r;
    cache_t *a;
    cache_stats_t st;
    rh_server_t *p[3];
    long long total = 0;
    char key[32];
    int i;

    ctopo_start(&t);
    r = copts(&t, NODES - 1, 1);
    a = cstart(&r);
    st = stats_of(a);
    ck_assert_uint_eq(st.primaries, 3);
    ck_assert_uint_eq(st.connected, 1);
    for (i = 0; i < 300; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        ck_assert_int_eq(put_s(a, NULL, key, key, CACHE_TTL_NONE), 0);
    }
    primaries(&t, p);
    for (i = 0; i < 3; i++) {
        long long n = raw_dbsize(p[i]);

        ck_assert_msg(n > 0, "primary %d holds no key of 300", p[i]->port);
        total += n;
    }
    ck_assert_int_eq(total, 300);
    for (i = 0; i < 300; i++) {
        int port;

        snprintf(key, sizeof(key), "k%d", i);
        port = t.owner[slot_of(NULL, key)];
        ck_assert_msg(raw_exists_at(port, NULL, key) == 1,
                      "key %s (slot %u) is not on its primary %d", key, slot_of(NULL, key),
                      port);
    }
    for (i = 0; i < 300; i += 7) {
        snprintf(key, sizeof(key), "k%d", i);
        expect_sync_value(a, NULL, key, key);
        expect_value(a, NULL, key, key);
    }
    st = stats_of(a);
    ck_assert_msg(st.redirects == 0, "%llu redirects on a stable cluster: keys are not "
                  "mapped to their slots' primaries", (unsigned long long)st.redirects);
    ck_assert_uint_eq(st.failovers, 0);
    cfinish(a);
}
END_TEST

/* get, put, delete, take, incr, cas, put_new, ttl, expire, persist on a key
 * of each primary; each lands on that primary. */
START_TEST(test_basic_ops_each_primary)
{
    ctopo_t t;
    cache_redis_opts_t r;
    cache_t *a;
    rh_server_t *p[3];
    int i;

    ctopo_start(&t);
    r = copts(&t, 0, NODES);
    a = cstart(&r);
    primaries(&t, p);
    for (i = 0; i < 3; i++) {
        char k[32], buf[64];
        size_t len = 0;
        int64_t ttl, v = 0;

        key_on(&t, "ops", "key", p[i]->port, k, sizeof(k));
        /* put, get, ttl */
        ck_assert_int_eq(put_s(a, "ops", k, "v1", 100000), 0);
        ck_assert_int_eq(raw_exists_at(p[i]->port, "ops", k), 1);
        expect_value(a, "ops", k, "v1");
        expect_sync_value(a, "ops", k, "v1");
        ck_assert_int_eq(cache_ttl(a, "ops", k, strlen(k), &ttl), 0);
        ck_assert_msg(ttl > 90000 && ttl <= 100000, "ttl %lld", (long long)ttl);
        ck_assert_int_eq(cache_persist(a, "ops", k, strlen(k)), 0);
        ck_assert_int_eq(cache_ttl(a, "ops", k, strlen(k), &ttl), 0);
        ck_assert(ttl == CACHE_TTL_NONE);
        ck_assert_int_eq(cache_expire(a, "ops", k, strlen(k), 50000), 0);
        ck_assert_int_eq(cache_ttl(a, "ops", k, strlen(k), &ttl), 0);
        ck_assert(ttl > 40000 && ttl <= 50000);
        /* put_new, cas */
        ck_assert_int_eq(cache_put_new(a, "ops", k, strlen(k), "x", 1, CACHE_TTL_NONE),
                         -EEXIST);
        ck_assert_int_eq(cache_cas(a, "ops", k, strlen(k), "v1", 2, "v2", 2, CACHE_TTL_NONE),
                         0);
        ck_assert_int_eq(cache_cas(a, "ops", k, strlen(k), "v1", 2, "v3", 2, CACHE_TTL_NONE),
                         -ECANCELED);
        expect_sync_value(a, "ops", k, "v2");
        /* take, delete */
        ck_assert_int_eq(cache_take(a, "ops", k, strlen(k), buf, sizeof(buf), &len), 0);
        ck_assert(len == 2 && memcmp(buf, "v2", 2) == 0);
        ck_assert_int_eq(raw_exists_at(p[i]->port, "ops", k), 0);
        ck_assert_int_eq(cache_take(a, "ops", k, strlen(k), buf, sizeof(buf), &len), -ENOENT);
        ck_assert_int_eq(cache_put_new(a, "ops", k, strlen(k), "n", 1, CACHE_TTL_NONE), 0);
        ck_assert_int_eq(cache_delete(a, "ops", k, strlen(k)), 0);
        ck_assert_int_eq(cache_delete(a, "ops", k, strlen(k)), -ENOENT);
        expect_sync_missing(a, "ops", k);
        /* incr */
        ck_assert_int_eq(cache_incr(a, "ops", k, strlen(k), 5, CACHE_TTL_NONE, &v), 0);
        ck_assert_int_eq(v, 5);
        ck_assert_int_eq(cache_incr(a, "ops", k, strlen(k), -7, CACHE_TTL_NONE, &v), 0);
        ck_assert_int_eq(v, -2);
        expect_sync_value(a, "ops", k, "-2");
        ck_assert_int_eq(raw_exists_at(p[i]->port, "ops", k), 1);
    }
    ck_assert_uint_eq(stats_of(a).redirects, 0);
    cfinish(a);
}
END_TEST

/* ------------------------------------------------------------------ */
/* all: SCAN-based calls cover every primary                            */

START_TEST(test_all_count_clear_span_primaries)
{
    ctopo_t t;
    cache_redis_opts_t r;
    cache_t *a;
    rh_server_t *p[3];
    cache_record_t *recs = NULL;
    size_t n = 0, i;
    uint64_t cnt = 0;
    char key[32];
    int on[3] = { 0, 0, 0 }, j;

    ctopo_start(&t);
    r = copts(&t, 0, 2);
    a = cstart(&r);
    primaries(&t, p);
    for (i = 0; i < 200; i++) {
        snprintf(key, sizeof(key), "k%03zu", i);
        ck_assert_int_eq(put_s(a, "n", key, key, CACHE_TTL_NONE), 0);
        for (j = 0; j < 3; j++)
            on[j] += t.owner[slot_of("n", key)] == p[j]->port;
    }
    ck_assert_msg(on[0] > 0 && on[1] > 0 && on[2] > 0, "keys not spread: %d %d %d", on[0],
                  on[1], on[2]);
    for (i = 0; i < 50; i++) {
        snprintf(key, sizeof(key), "m%02zu", i);
        ck_assert_int_eq(put_s(a, "m", key, "x", CACHE_TTL_NONE), 0);
    }
    /* cache_all: every key of every primary, sorted. */
    ck_assert_int_eq(cache_all(a, "n", NULL, &recs, &n, CALL_MS), 0);
    ck_assert_msg(n == 200, "cache_all: %zu records of 200 (keys on primaries: %d %d %d)", n,
                  on[0], on[1], on[2]);
    for (i = 0; i < n; i++) {
        snprintf(key, sizeof(key), "k%03zu", i);
        ck_assert_msg(recs[i].key_len == strlen(key) &&
                      memcmp(recs[i].key, key, strlen(key)) == 0,
                      "cache_all[%zu] = \"%.*s\", want %s", i, (int)recs[i].key_len,
                      (const char *)recs[i].key, key);
        ck_assert(recs[i].value_len == strlen(key) &&
                  memcmp(recs[i].value, key, strlen(key)) == 0);
    }
    cache_records_free(recs);
    ck_assert_int_eq(cache_all(a, "n", "k1*", &recs, &n, CALL_MS), 0);
    ck_assert_uint_eq(n, 100);
    cache_records_free(recs);
    /* count, count_all */
    ck_assert_int_eq(cache_count(a, "n", &cnt, CALL_MS), 0);
    ck_assert_uint_eq(cnt, 200);
    ck_assert_int_eq(cache_count_all(a, &cnt, CALL_MS), 0);
    ck_assert_uint_eq(cnt, 250);
    /* clear one namespace, then everything. */
    ck_assert_int_eq(cache_clear(a, "n", CALL_MS), 0);
    ck_assert_int_eq(cache_count(a, "n", &cnt, CALL_MS), 0);
    ck_assert_uint_eq(cnt, 0);
    ck_assert_int_eq(cache_count(a, "m", &cnt, CALL_MS), 0);
    ck_assert_uint_eq(cnt, 50);
    ck_assert_int_eq(raw_dbsize(p[0]) + raw_dbsize(p[1]) + raw_dbsize(p[2]), 50);
    ck_assert_int_eq(cache_clear_all(a, CALL_MS), 0);
    ck_assert_int_eq(cache_count_all(a, &cnt, CALL_MS), 0);
    ck_assert_uint_eq(cnt, 0);
    for (j = 0; j < 3; j++)
        ck_assert_msg(raw_dbsize(p[j]) == 0, "primary %d keeps %lld keys after clear_all",
                      p[j]->port, raw_dbsize(p[j]));
    cfinish(a);
}
END_TEST

/* ------------------------------------------------------------------ */
/* batch                                                                */

/* A batch of 100 records over many slots (all three primaries) returns 0,
 * and every record is in Redis, on its slot's primary. */
START_TEST(test_batch_many_slots)
{
    ctopo_t t;
    cache_redis_opts_t r;
    cache_t *a;
    cache_op_t items[100], op;
    char keys[100][16];
    int i, on[3] = { 0, 0, 0 }, j;
    rh_server_t *p[3];

    ctopo_start(&t);
    r = copts(&t, 0, NODES);
    a = cstart(&r);
    primaries(&t, p);
    for (i = 0; i < 100; i++) {
        snprintf(keys[i], sizeof(keys[i]), "b%d", i);
        items[i] = (cache_op_t){ .kind = CACHE_OP_PUT, .ns = "bt", .key = keys[i],
                                 .key_len = strlen(keys[i]), .value = keys[i],
                                 .value_len = strlen(keys[i]), .ttl_ms = CACHE_TTL_NONE };
        for (j = 0; j < 3; j++)
            on[j] += t.owner[slot_of("bt", keys[i])] == p[j]->port;
    }
    ck_assert(on[0] > 0 && on[1] > 0 && on[2] > 0);
    op = (cache_op_t){ .kind = CACHE_OP_PUT_BATCH, .batch = items, .batch_len = 100 };
    ck_assert_int_eq(cache_call(a, &op, CALL_MS), 0);
    for (i = 0; i < 100; i++) {
        expect_sync_value(a, "bt", keys[i], keys[i]);
        ck_assert_int_eq(raw_exists_at(t.owner[slot_of("bt", keys[i])], "bt", keys[i]), 1);
    }
    ck_assert_uint_eq(stats_of(a).puts, 100);
    cfinish(a);
}
END_TEST

/* A batch thread: batches of the same generation number over groups of
 * keys, until stopped. */
typedef struct batcher {
    cache_t *c;
    const char *ns;
    const char *const *keys;
    int nkeys;
    atomic_int stop;
    atomic_long batches;
    int rc;
} batcher_t;

static void *
batcher_main(void *arg)
{
    batcher_t *bt = arg;
    cache_op_t items[32];
    long g;
    int i;

    for (g = 0; !atomic_load(&bt->stop); g++) {
        char v[24];
        cache_op_t batch = { .kind = CACHE_OP_PUT_BATCH, .batch = items,
                             .batch_len = (size_t)bt->nkeys };

        snprintf(v, sizeof(v), "%08ld", g);
        for (i = 0; i < bt->nkeys; i++)
            items[i] = (cache_op_t){ .kind = CACHE_OP_PUT, .ns = bt->ns, .key = bt->keys[i],
                                     .key_len = strlen(bt->keys[i]), .value = v,
                                     .value_len = 8, .ttl_ms = CACHE_TTL_NONE };
        bt->rc = cache_call(bt->c, &batch, CALL_MS);
        if (bt->rc != 0)
            break;
        atomic_fetch_add(&bt->batches, 1);
    }
    return NULL;
}

/* MGET of keys[0..n) of ns (one slot) on conn, the slot's primary: 1 when
 * all are missing or all hold the same value (after gencache's 12-byte
 * header), 0 when mixed (msg says how); *seen counts the reads that found
 * every key set. */
static int
mget_consistent(rh_conn_t *conn, const char *ns, const char *const *keys, int n, char *msg,
                size_t cap, long *seen)
{
    char rk[32][128];
    const char *argv[33];
    size_t argl[33];
    rh_reply_t *rep;
    int i, ok = 1, nil = 0;

    argv[0] = "MGET";
    argl[0] = 4;
    for (i = 0; i < n; i++) {
        argl[i + 1] = raw_key(ns, keys[i], rk[i], sizeof(rk[i]));
        argv[i + 1] = rk[i];
    }
    ck_assert_int_eq(rh_conn_send(conn, n + 1, argv, argl), 0);
    rep = rh_conn_read(conn);
    ck_assert_ptr_nonnull(rep);
    ck_assert_msg(rep->type == '*' && rep->n == (size_t)n, "MGET: %c %s", rep->type,
                  rep->str ? rep->str : "");
    for (i = 0; i < n; i++)
        nil += rep->elem[i].type == 'n';
    if (nil != 0 && nil != n) {
        snprintf(msg, cap, "%d of %d keys set", n - nil, n);
        ok = 0;
    }
    for (i = 0; ok && nil == 0 && i < n; i++) {
        const rh_reply_t *x = &rep->elem[0], *y = &rep->elem[i];

        ck_assert_msg(y->len >= 12, "%s: a %zu-byte value, without gencache's header",
                      keys[i], y->len);
        if (y->len != x->len || memcmp(y->str + 12, x->str + 12, x->len - 12) != 0) {
            snprintf(msg, cap, "%s = \"%.*s\", %s = \"%.*s\"", keys[0], (int)(x->len - 12),
                     x->str + 12, keys[i], (int)(y->len - 12), y->str + 12);
            ok = 0;
        }
    }
    *seen += nil == 0;
    rh_reply_free(rep);
    return ok;
}

/*
 * Atomic per slot.  Batches over keys of two hash tags (two slots on two
 * primaries): a raw MGET of either group (one slot, so atomic in Redis)
 * never sees two generations.  Then a namespace named "{users}": every key
 * of it hashes "users" (CLUSTER KEYSLOT of the raw key), all are on one
 * primary, and a batch over 20 of them is never seen half applied.
 */
START_TEST(test_batch_atomic_per_slot)
{
    ctopo_t t;
    cache_redis_opts_t r;
    cache_t *a;
    static const char *const two[8] = { "{t1}a", "{t1}b", "{t1}c", "{t1}d",
                                        "{t2}a", "{t2}b", "{t2}c", "{t2}d" };
    char ukeys[20][8];
    const char *uk[20];
    batcher_t bt;
    pthread_t th;
    rh_conn_t *c1, *c2, *cu;
    long seen1 = 0, seen2 = 0, seenu = 0;
    char msg[128];
    int64_t t0;
    int users_slot, i;
    rh_server_t *p[3];

    ctopo_start(&t);
    r = copts(&t, 0, NODES);
    a = cstart(&r);
    primaries(&t, p);
    ck_assert_uint_ne(slot_of("g", "{t1}a"), slot_of("g", "{t2}a"));
    c1 = rh_conn_open(t.owner[slot_of("g", "{t1}a")], NULL, -1);
    c2 = rh_conn_open(t.owner[slot_of("g", "{t2}a")], NULL, -1);
    ck_assert(c1 != NULL && c2 != NULL);

    memset(&bt, 0, sizeof(bt));
    bt.c = a;
    bt.ns = "g";
    bt.keys = two;
    bt.nkeys = 8;
    ck_assert_int_eq(pthread_create(&th, NULL, batcher_main, &bt), 0);
    t0 = now_ms();
    while (now_ms() - t0 < 1000) {
        ck_assert_msg(mget_consistent(c1, "g", two, 4, msg, sizeof(msg), &seen1),
                      "half a batch in slot of {t1}: %s", msg);
        ck_assert_msg(mget_consistent(c2, "g", two + 4, 4, msg, sizeof(msg), &seen2),
                      "half a batch in slot of {t2}: %s", msg);
    }
    atomic_store(&bt.stop, 1);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_int_eq(bt.rc, 0);
    fprintf(stderr, "cluster: batch per slot: %ld / %ld consistent reads over %ld batches\n",
            seen1, seen2, atomic_load(&bt.batches));
    ck_assert_int_gt(atomic_load(&bt.batches), 10);
    ck_assert(seen1 > 10 && seen2 > 10);

    /* The "{users}" namespace: one slot. */
    users_slot = rh_cluster_keyslot(any_port(&t), "users", 5);
    ck_assert_int_ge(users_slot, 0);
    for (i = 0; i < 20; i++) {
        char rk[64];
        size_t rl;

        snprintf(ukeys[i], sizeof(ukeys[i]), "u%d", i);
        uk[i] = ukeys[i];
        ck_assert_int_eq(put_s(a, "{users}", uk[i], "0", CACHE_TTL_NONE), 0);
        rl = raw_key("{users}", uk[i], rk, sizeof(rk));
        ck_assert_int_eq(rh_cluster_keyslot(any_port(&t), rk, rl), users_slot);
        ck_assert_int_eq(raw_exists_at(t.owner[users_slot], "{users}", uk[i]), 1);
    }
    ck_assert_int_eq(raw_dbsize(node_of_port(&t, t.owner[users_slot])), 20);
    cu = rh_conn_open(t.owner[users_slot], NULL, -1);
    ck_assert_ptr_nonnull(cu);
    memset(&bt, 0, sizeof(bt));
    bt.c = a;
    bt.ns = "{users}";
    bt.keys = uk;
    bt.nkeys = 20;
    ck_assert_int_eq(pthread_create(&th, NULL, batcher_main, &bt), 0);
    t0 = now_ms();
    while (now_ms() - t0 < 1000)
        ck_assert_msg(mget_consistent(cu, "{users}", uk, 20, msg, sizeof(msg), &seenu),
                      "half a batch of namespace {users}: %s", msg);
    atomic_store(&bt.stop, 1);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_int_eq(bt.rc, 0);
    ck_assert_int_gt(atomic_load(&bt.batches), 10);
    fprintf(stderr, "cluster: namespace {users}: %ld consistent reads over %ld batches\n",
            seenu, atomic_load(&bt.batches));
    rh_conn_close(c1);
    rh_conn_close(c2);
    rh_conn_close(cu);
    cfinish(a);
}
END_TEST

/* ------------------------------------------------------------------ */
/* reshard                                                              */

/*
 * redis-cli moves RESHARD_SLOTS slots from one primary to another while a
 * thread puts unique keys: no acknowledged write is lost, and the cache
 * followed MOVED / ASK on the way (stats.redirects > 0).
 */
START_TEST(test_reshard_under_load)
{
    ctopo_t t;
    cache_redis_opts_t r;
    cache_t *a;
    rh_server_t *p[3];
    char from[41], to[41];
    rh_proc_t *proc;
    wl_t w;
    wl_result_t res;
    cache_stats_t st;
    static int owner_before[RH_SLOTS];
    int before = 0, after = 0, i, rc;
    int64_t t0;

    ctopo_start(&t);
    r = copts(&t, 0, NODES);
    a = cstart(&r);
    primaries(&t, p);
    ck_assert_int_eq(rh_cluster_myid(p[0]->port, from), 0);
    ck_assert_int_eq(rh_cluster_myid(p[1]->port, to), 0);
    for (i = 0; i < RH_SLOTS; i++)
        before += t.owner[i] == p[0]->port;
    memcpy(owner_before, t.owner, sizeof(owner_before));
    wl_start(&w, a, "r", CALL_MS, 0, LOAD_CAP);
    ck_assert_msg(wl_wait_acked(&w, 200, 10000) == 0, "the load does not get going");
    t0 = now_ms();
    proc = rh_cluster_reshard_start(p[0]->port, from, to, RESHARD_SLOTS);
    ck_assert_ptr_nonnull(proc);
    rc = rh_proc_wait(proc, RESHARD_WAIT_MS);
    ck_assert_msg(rc == 0, "redis-cli --cluster reshard: exit %d (log above)", rc);
    fprintf(stderr, "cluster: resharding %d slots took %lld ms under load\n", RESHARD_SLOTS,
            (long long)(now_ms() - t0));
    ctopo_refresh(&t);
    for (i = 0; i < RH_SLOTS; i++)
        after += t.owner[i] == p[0]->port;
    ck_assert_int_eq(before - after, RESHARD_SLOTS);
    sleep_ms(300);
    wl_check(&w, a, INT64_MAX, INT64_MIN, NULL, NULL, CALL_MS, &res);
    st = stats_of(a);
    fprintf(stderr, "cluster: reshard: %zu puts, %zu acknowledged, %zu -ENOTCONN, "
            "%zu -ECONNRESET, %llu redirects\n", res.puts, res.acked, res.notconn, res.reset,
            (unsigned long long)st.redirects);
    ck_assert_msg(res.lost == 0, "reshard: %zu acknowledged writes lost; first: %s", res.lost,
                  res.first_lost);
    ck_assert_msg(res.other == 0, "reshard: %zu puts failed with %d (%s) or the like",
                  res.other, res.other_rc, cache_strerror(res.other_rc));
    ck_assert_int_gt(res.checked, 200);
    ck_assert_msg(st.redirects > 0, "no redirect followed while %d slots moved under load",
                  RESHARD_SLOTS);
    ck_assert_uint_eq(st.primaries, 3);
    ck_assert_uint_eq(st.connected, 1);
    /* A key of a moved slot goes to its new primary (through the cache's
     * map, or a redirect), and is read back. */
    for (i = 0; i < 1000; i++) {
        char key[16];
        unsigned slot;

        snprintf(key, sizeof(key), "moved%d", i);
        slot = slot_of(NULL, key);
        if (owner_before[slot] != p[0]->port || t.owner[slot] != p[1]->port)
            continue;
        ck_assert_int_eq(put_s(a, NULL, key, "m", CACHE_TTL_NONE), 0);
        ck_assert_int_eq(raw_exists_at(p[1]->port, NULL, key), 1);
        expect_sync_value(a, NULL, key, "m");
        break;
    }
    ck_assert_int_lt(i, 1000);
    wl_free(&w);
    cfinish(a);
}
END_TEST

/* ------------------------------------------------------------------ */
/* failover                                                             */

/* Keys of the slots a set of slots (ports == victim in owner) covers. */
typedef struct victim {
    const int *owner;
    int port;
} victim_t;

static int
on_victim(void *ctx, const char *key, size_t key_len)
{
    victim_t *v = ctx;
    char rk[128];
    int n = snprintf(rk, sizeof(rk), "gencache:cache%c%.*s", '\0', (int)key_len, key);

    return v->owner[rh_key_slot(rk, (size_t)n)] == v->port;
}

/* Some put to the victim's slots succeeds within SETTLE_WAIT_MS after
 * t_settled, or the test fails saying what the puts got and the stats. */
static void
expect_victim_ok(cache_t *a, wl_t *w, int64_t t_settled, victim_t *v, const char *what)
{
    cache_stats_t st;
    char why[256];

    if (wl_wait_ok_after(w, t_settled, on_victim, v, SETTLE_WAIT_MS) >= 0)
        return;
    st = stats_of(a);
    ck_abort_msg("no put to %s succeeded within %d ms (%s; stats: connected %llu, primaries "
                 "%llu, failovers %llu, redirects %llu, reconnects %llu)", what,
                 SETTLE_WAIT_MS, wl_describe_after(w, t_settled, on_victim, v, why, sizeof(why)),
                 (unsigned long long)st.connected, (unsigned long long)st.primaries,
                 (unsigned long long)st.failovers, (unsigned long long)st.redirects,
                 (unsigned long long)st.reconnects);
}

/*
 * CLUSTER FAILOVER on a replica under load: a coordinated switch (the
 * primary stops writes until the replica has caught up), so nothing
 * acknowledged may be lost; the cache follows the new primary
 * (stats.failovers, three primaries again).
 */
START_TEST(test_failover_coordinated_under_load)
{
    ctopo_t t;
    cache_redis_opts_t r;
    cache_t *a;
    rh_server_t *p[3], *rep;
    static int owner_before[RH_SLOTS];
    victim_t v;
    wl_t w;
    wl_result_t res;
    cache_stats_t st;
    int64_t t_fo, t_settled;

    ctopo_start(&t);
    r = copts(&t, 0, NODES);
    a = cstart(&r);
    primaries(&t, p);
    rep = replica_of(&t, p[0]);
    memcpy(owner_before, t.owner, sizeof(owner_before));
    v = (victim_t){ .owner = owner_before, .port = p[0]->port };
    wl_start(&w, a, "f", CALL_MS, 1, LOAD_CAP);
    ck_assert_msg(wl_wait_acked(&w, 200, 10000) == 0, "the load does not get going");
    t_fo = now_ms();
    ck_assert_msg(rh_cluster_failover(rep, SETTLE_WAIT_MS) == 0,
                  "CLUSTER FAILOVER: the replica is not a primary after %d ms",
                  SETTLE_WAIT_MS);
    ctopo_refresh(&t);
    t_settled = now_ms();
    expect_victim_ok(a, &w, t_settled, &v, "the old primary's slots, after the failover");
    sleep_ms(300);
    wl_check(&w, a, INT64_MAX, INT64_MIN, on_victim, &v, CALL_MS, &res);
    st = stats_of(a);
    fprintf(stderr, "cluster: CLUSTER FAILOVER: writes refused for %lld ms; %zu puts, "
            "%zu acknowledged, %zu -ENOTCONN, %zu -ECONNRESET, %llu redirects, took %lld ms\n",
            (long long)(res.gap_ms < 0 ? 0 : res.gap_ms), res.puts, res.acked, res.notconn,
            res.reset, (unsigned long long)st.redirects, (long long)(now_ms() - t_fo));
    ck_assert_msg(res.lost == 0, "CLUSTER FAILOVER: %zu acknowledged writes lost; first: %s",
                  res.lost, res.first_lost);
    ck_assert_msg(res.other == 0, "CLUSTER FAILOVER: %zu puts failed with %d (%s) or the like",
                  res.other, res.other_rc, cache_strerror(res.other_rc));
    ck_assert_msg(res.max_notconn_ms < CALL_SLACK_MS, "a put took %lld ms to be refused",
                  (long long)res.max_notconn_ms);
    ck_assert_int_gt(res.checked, 200);
    ck_assert_uint_eq(st.primaries, 3);
    ck_assert_uint_eq(st.connected, 1);
    ck_assert_msg(st.failovers >= 1, "stats.failovers 0 after a failover the cache followed");
    /* The old primary's slots are the new one's: a key of them lands there. */
    {
        char k[32];

        key_on(&t, NULL, "new", rep->port, k, sizeof(k));
        ck_assert_int_eq(put_s(a, NULL, k, "n", CACHE_TTL_NONE), 0);
        ck_assert_int_eq(raw_exists_at(rep->port, NULL, k), 1);
    }
    wl_free(&w);
    cfinish(a);
}
END_TEST

/*
 * A primary killed (SIGKILL) under load: after the node timeout the
 * cluster promotes its replica and the cache follows.  Writes to the other
 * primaries' slots, and writes to the victim's slots acknowledged before
 * the replica was seen caught up or sent after the kill, must be in Redis;
 * the victim's writes acknowledged in between are reported.
 */
START_TEST(test_failover_primary_killed)
{
    ctopo_t t;
    cache_redis_opts_t r;
    cache_t *a;
    rh_server_t *p[3], *rep;
    static int owner_before[RH_SLOTS];
    victim_t v;
    wl_t w;
    wl_result_t res;
    cache_stats_t st;
    int64_t t_before, t_kill, t_settled;

    ctopo_start(&t);
    r = copts(&t, 0, NODES);
    a = cstart(&r);
    primaries(&t, p);
    rep = replica_of(&t, p[1]);
    memcpy(owner_before, t.owner, sizeof(owner_before));
    v = (victim_t){ .owner = owner_before, .port = p[1]->port };
    wl_start(&w, a, "k", CALL_MS, 1, LOAD_CAP);
    ck_assert_msg(wl_wait_acked(&w, 200, 10000) == 0, "the load does not get going");
    t_before = now_ms();
    ck_assert_msg(rh_wait_replica_caught_up(p[1], rep, 10000) == 0,
                  "the replica does not catch up with its primary");
    ck_assert_int_eq(rh_server_kill(p[1]), 0);
    t_kill = now_ms();
    ctopo_refresh(&t);
    ck_assert_int_eq(rh_is_primary(rep), 1);
    t_settled = now_ms();
    expect_victim_ok(a, &w, t_settled, &v, "the killed primary's slots, after its replica took over");
    sleep_ms(300);
    wl_check(&w, a, t_before, t_kill, on_victim, &v, CALL_MS, &res);
    st = stats_of(a);
    fprintf(stderr, "cluster: primary killed: writes refused for %lld ms\n",
            (long long)(res.gap_ms < 0 ? 0 : res.gap_ms));
    fprintf(stderr, "cluster: primary killed: %zu puts, %zu acknowledged (%zu checked), "
            "%zu -ENOTCONN (slowest %lld ms), %zu -ECONNRESET; %zu acknowledged in the "
            "window, %zu of them lost by Redis (reported, not a failure)\n", res.puts,
            res.acked, res.checked, res.notconn, (long long)res.max_notconn_ms, res.reset,
            res.window, res.window_lost);
    ck_assert_msg(res.lost == 0, "primary killed: %zu acknowledged writes lost outside the "
                  "window; first: %s", res.lost, res.first_lost);
    ck_assert_msg(res.other == 0, "primary killed: %zu puts failed with %d (%s) or the like",
                  res.other, res.other_rc, cache_strerror(res.other_rc));
    ck_assert_msg(res.max_notconn_ms < CALL_SLACK_MS, "a put took %lld ms to be refused",
                  (long long)res.max_notconn_ms);
    ck_assert_msg(res.gap_ms < GAP_MAX_MS, "writes refused for %lld ms",
                  (long long)res.gap_ms);
    ck_assert_int_gt(res.checked, 200);
    ck_assert_uint_eq(st.primaries, 3);
    ck_assert_uint_eq(st.connected, 1);
    ck_assert_msg(st.failovers >= 1, "stats.failovers 0 after a failover the cache followed");
    ck_assert_uint_eq(wait_put_ok(a, "after", UP_WAIT_MS) >= 0, 1);
    wl_free(&w);
    cfinish(a);
}
END_TEST

/* ------------------------------------------------------------------ */
/* near                                                                 */

/* Each primary's changes reach the near-cache: for a key on each, a raw
 * SET straight on that primary (found from the key's slot; it must answer
 * +OK, not MOVED) and another instance's put. */
START_TEST(test_near_invalidation_each_primary)
{
    ctopo_t t;
    cache_redis_opts_t r;
    cache_t *a, *b;
    rh_server_t *p[3];
    int i;

    ctopo_start(&t);
    r = copts(&t, 0, NODES);
    a = cstart(&r);
    b = cstart(&r);
    primaries(&t, p);
    for (i = 0; i < 3; i++) {
        char k[32], k2[32], rk[64];
        const char *set[3] = { "SET", rk, "raw" };
        size_t setl[3] = { 3, 0, 3 };
        rh_reply_t *rep;

        key_on(&t, NULL, "near", p[i]->port, k, sizeof(k));
        key_on(&t, NULL, "other", p[i]->port, k2, sizeof(k2));
        ck_assert_int_eq(put_s(b, NULL, k, "v1", CACHE_TTL_NONE), 0);
        ck_assert_int_eq(put_s(b, NULL, k2, "w1", CACHE_TTL_NONE), 0);
        sleep_ms(NEAR_SETTLE_MS);
        expect_value(a, NULL, k, "v1");
        expect_value(a, NULL, k, "v1");
        expect_value(a, NULL, k2, "w1");
        setl[1] = raw_key(NULL, k, rk, sizeof(rk));
        rep = raw_at(p[i]->port, 3, set, setl);
        ck_assert_msg(rep != NULL && rep->type == '+', "raw SET %s on %d: %s", k, p[i]->port,
                      rep != NULL && rep->str ? rep->str : "no reply");
        rh_reply_free(rep);
        expect_eventually(a, NULL, k, "raw", "a raw SET on the key's primary");
        ck_assert_int_eq(put_s(b, NULL, k2, "w2", CACHE_TTL_NONE), 0);
        expect_eventually(a, NULL, k2, "w2", "another instance's put");
    }
    ck_assert_uint_gt(stats_of(a).invalidations, 0);
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

START_TEST(test_opts_invalid)
{
    static cache_redis_node_t many[65];
    cache_redis_node_t one[1] = { { "127.0.0.1", 7000 } }, bad[1];
    cache_redis_opts_t base = { .cluster = one, .n_cluster = 1, .connect_timeout_ms = 100 }, r;
    cache_t *c = NULL;
    size_t i;

    r = base; r.db = 1;                 expect_bad(&r, "cluster with db 1");
    r = base; r.n_cluster = 0;          expect_bad(&r, "n_cluster 0 with a list");
    for (i = 0; i < 65; i++)
        many[i] = one[0];
    r = base; r.cluster = many; r.n_cluster = 65; expect_bad(&r, "65 seed nodes");
    bad[0] = (cache_redis_node_t){ "127.0.0.1", 0 };
    r = base; r.cluster = bad;          expect_bad(&r, "a seed on port 0");
    bad[0] = (cache_redis_node_t){ "127.0.0.1", 70000 };
    r = base; r.cluster = bad;          expect_bad(&r, "a seed on port 70000");
    bad[0] = (cache_redis_node_t){ "", 7000 };
    r = base; r.cluster = bad;          expect_bad(&r, "a seed with an empty host");
    r = base; r.sentinels = one; r.n_sentinels = 1; r.master_name = "m";
    expect_bad(&r, "both cluster and sentinels");
    /* 64 seeds, db 0: fine (nothing listens: the cache starts anyway). */
    r = base;
    r.cluster = many;
    r.n_cluster = 64;
    ck_assert_int_eq(cache_new(&(cache_opts_t){ .redis = &r }, &c), 0);
    ck_assert_int_eq(cache_stop(c, CALL_MS), 0);
    cache_release(c);
}
END_TEST

/* ------------------------------------------------------------------ */

/* A tcase named `name` (tagged with it) with a 150 s timeout, whose
 * checked fixture gives each test its directory and kills everything it
 * started; NULL when excluded by CK_EXCLUDE_TCASE. */
static TCase *
tc_new(Suite *s, const char *name)
{
    TCase *tc;

    if (gc_tcase_excluded(name))
        return NULL;
    tc = tcase_create(name);
    tcase_set_timeout(tc, 150);
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
cluster_suite(void)
{
    Suite *s = suite_create("cluster");
    TCase *tc;

    tc = tc_new(s, "harness");
    ADD(tc, test_harness_cluster);

    tc = tc_new(s, "basic");
    ADD(tc, test_basic_spread);
    ADD(tc, test_basic_ops_each_primary);

    tc = tc_new(s, "all");
    ADD(tc, test_all_count_clear_span_primaries);

    tc = tc_new(s, "batch");
    ADD(tc, test_batch_many_slots);
    ADD(tc, test_batch_atomic_per_slot);

    tc = tc_new(s, "reshard");
    ADD(tc, test_reshard_under_load);

    tc = tc_new(s, "failover");
    ADD(tc, test_failover_coordinated_under_load);
    ADD(tc, test_failover_primary_killed);

    tc = tc_new(s, "near");
    ADD(tc, test_near_invalidation_each_primary);

    tc = tc_new(s, "options");
    ADD(tc, test_opts_invalid);
    return s;
}

int
main(void)
{
    return rh_topo_main("test_cluster", cluster_suite);
}

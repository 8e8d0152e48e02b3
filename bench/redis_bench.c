/*
 * gencache_redis_bench: the Redis backend of a cache against a local cache
 * and against a plain hiredis client doing the same work, all in the same
 * process and against the same redis-server, so that every figure comes
 * with a ratio that holds on a noisy machine.
 *
 *   gencache_redis_bench [--quick] [--json] [--port N] [--no-cluster] [--threads T]
 *
 * Without --port it starts its own redis-server on a free loopback port
 * (no persistence), and kills it at exit; if redis-server is not on PATH it
 * says so and exits 77 (skipped).  With --port N it uses the server at
 * 127.0.0.1:N, touching only keys under "gcbench:<pid>:" (deleted at the
 * end).
 *
 * Workloads (keys of 16 bytes, values of 64 bytes, every write with a TTL of
 * BTTL ms, gencache and plain client alike; the plain client's Redis keys
 * have the same length as gencache's "prefix + namespace + NUL + key", its
 * values lack gencache's 12-byte header):
 *   1. near-cache hit: cache_get on a Redis cache whose near-cache holds the
 *      10k keys, against cache_get on a local cache holding the same keys
 *      with the same TTL (1 thread).  stats.remote_reads must not grow
 *      during the timed loops.
 *   2. remote read: cache_get with no_near_cache (a worker call and a
 *      MULTI/GET/PTTL/EXEC round trip) against a synchronous GET
 *      (redisCommand) on the plain client's own connection.
 *   3. sync put: cache_put on a cache without async_writes against a
 *      synchronous SET key value PX ttl.
 *   4. pipelined writes: N cache_put casts on an async_writes cache and one
 *      cache_sync (all confirmed by Redis), against the plain client
 *      appending the same N SETs in batches of 1000 and reading every reply.
 *      Diagnostic rows: the same casts with no_near_cache (no near-cache
 *      upkeep, no tracking); the plain client with its own prefix tracked
 *      (CLIENT TRACKING BCAST NOLOOP, as a Redis cache's connection is); the
 *      CPU time per write of this process (every thread) and of the
 *      redis-server's main thread (own server only, /proc/PID/schedstat).
 *   5. invalidation delay: instance A puts a new value; instance B's
 *      cache_get polls in a tight loop until it returns it; the delay from
 *      A's put returning to B's first observation (it includes B's fetch of
 *      the new value).  Baseline: two plain clients, one SETs, the other
 *      GETs until it sees the value.  Again with B sleeping between polls.
 *   6. one server against a Redis Cluster of 3 primaries (no replicas),
 *      started here: sync put, remote read, N casts + cache_sync from one
 *      thread and from T threads (--threads, default the number of CPUs),
 *      each cluster figure against the same on the one server, in the same
 *      run and alternating.  hiredis 0.14 has no cluster client: there is
 *      no plain-client row.
 *   7. failover gap: a thread does sync puts (at most one every 200 us,
 *      each key once) while a replica takes over: on a cluster of 3
 *      primaries + 3 replicas, (a) CLUSTER FAILOVER sent to a replica,
 *      (b) SIGKILL of a primary (cluster-node-timeout 1000 ms); on Sentinel
 *      (a primary, a replica, 3 sentinels), SENTINEL FAILOVER.  Figures:
 *      the longest refusal (from the issue of the first refused put of a
 *      key of the failing primary to the return of the next accepted one),
 *      against the time until the new primary is known (cluster: its ROLE
 *      says master; Sentinel: the sentinels name it); the puts refused; the
 *      acknowledged puts then unreadable (a CACHE_OP_GET call for each,
 *      once the cache has followed); the longest put; stats.failovers.
 *   Workloads 6 and 7 start their servers on free loopback ports (files
 *   and logs in a directory under /tmp, removed at exit unless a check
 *   failed) and need redis-server and redis-cli on PATH, the Sentinel
 *   rows redis-sentinel too; without them, or with --no-cluster, they are
 *   skipped with a note.
 *
 * Each figure of workloads 1-4 and 6 is the median of several repetitions (5, or
 * 3 with --quick, which also uses smaller counts: 1M instead of 4M gets,
 * 5k instead of 20k round trips, N = 20k instead of 200k, 200 instead of
 * 1000 rounds; workload 6: 2k instead of 10k sync operations, N = 20k
 * instead of 200k; workload 7 waits 0.5 s instead of 1 s after the last
 * refusal, and gives up after 5 s instead of 20 s); workload 5 reports percentiles over its rounds.  --json prints
 * one JSON object per figure and line instead of the table (the notes then
 * go to stderr).  A failed check (a wrong value, an error,
 * remote reads during the near-cache loop) is reported on stderr and makes
 * the exit status 1.  See docs/benchmarks.md ("Redis backend").
 */
#define _GNU_SOURCE
#include <gencache/gencache.h>

#include "baselines.h"
#include "bench_util.h"

#include <hiredis/hiredis.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BTTL 600000           /* ms, every write of every workload */
#define BTTL_STR "600000"
#define PLAIN_BATCH 1000      /* the plain client's pipeline batch */

static int quick, json, problems;
static int reps = 5;
static int port;
static pid_t server_pid;
static char base[64];         /* "gcbench:<pid>:" */

/* ------------------------------------------------------------------ */
/* Helpers                                                              */


static void
problem(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
problem(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fprintf(stderr, "WARNING: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    problems++;
}


/* ------------------------------------------------------------------ */
/* Our own redis-server                                                 */

/* The path of `name` on PATH (or the usual directories) in out. */
static int
find_exe(const char *name, char *out, size_t cap)
{
    const char *path = getenv("PATH");
    const char *p = path != NULL && path[0] != '\0' ? path : "/usr/local/bin:/usr/bin:/bin";

    while (*p != '\0') {
        const char *end = strchr(p, ':');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);

        if (len > 0 && (size_t)snprintf(out, cap, "%.*s/%s", (int)len, p, name) < cap &&
            access(out, X_OK) == 0)
            return 0;
        p += len;
        if (*p == ':')
            p++;
    }
    return -ENOENT;
}

static int
free_port(void)
{
    struct sockaddr_in a;
    socklen_t alen = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0), p = -1;

    if (fd < 0)
        return -1;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &alen) == 0)
        p = ntohs(a.sin_port);
    close(fd);
    return p;
}

/* SIGTERM, then SIGKILL after 5 s; reaped.  pid <= 0: nothing. */
static void
child_stop(pid_t pid)
{
    int i, st;

    if (pid <= 0)
        return;
    kill(pid, SIGTERM);
    for (i = 0; i < 500; i++) {
        if (waitpid(pid, &st, WNOHANG) == pid)
            return;
        usleep(10000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
}

static void
stop_server(void)
{
    child_stop(server_pid);
    server_pid = 0;
}

/*
 * fork + exec of exe with argv, stdout and stderr to `log` (NULL:
 * /dev/null), stdin from /dev/null.  The child gets SIGKILL when the
 * thread that forked it ends (PR_SET_PDEATHSIG counts the thread, not the
 * process): call from the main thread only.  The pid, or -1.
 */
static pid_t
spawn(const char *exe, char *const argv[], const char *log)
{
    pid_t parent = getpid(), pid;

    fflush(NULL);
    pid = fork();
    if (pid < 0) {
        perror("fork");
        return -1;
    }
    if (pid == 0) {
        /* Async-signal-safe calls only: the arguments are ready. */
        int dn, out;

        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(1);
        dn = open("/dev/null", O_RDWR);
        out = log != NULL ? open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644) : dn;
        if (dn >= 0)
            dup2(dn, 0);
        if (out >= 0) {
            dup2(out, 1);
            dup2(out, 2);
        }
        execv(exe, argv);
        _exit(127);
    }
    return pid;
}

/* 1 when the server (or sentinel) at port p answers PING. */
static int
ping_port(int p)
{
    struct timeval tv = { 0, 200000 };
    redisContext *x = redisConnectWithTimeout("127.0.0.1", p, tv);
    redisReply *rep;
    int ok = 0;

    if (x == NULL)
        return 0;
    if (x->err == 0 && (rep = redisCommand(x, "PING")) != NULL) {
        ok = rep->type == REDIS_REPLY_STATUS && strcmp(rep->str, "PONG") == 0;
        freeReplyObject(rep);
    }
    redisFree(x);
    return ok;
}

static int
ping(void)
{
    return ping_port(port);
}

/* Start redis-server on a free port; exits 77 when it is not installed. */
static void
start_server(void)
{
    char exe[4096], portbuf[16];
    int attempt;

    if (find_exe("redis-server", exe, sizeof(exe)) != 0) {
        fprintf(stderr, "gencache_redis_bench: redis-server not found on PATH; install "
                        "redis-server or pass --port N for a running server (skipped)\n");
        exit(77);
    }
    for (attempt = 0; attempt < 5; attempt++) {
        char *argv[] = { exe, "--port", portbuf, "--bind", "127.0.0.1", "--save", "",
                         "--appendonly", "no", "--protected-mode", "no", NULL };
        pid_t pid;
        int i, st;

        if ((port = free_port()) <= 0) {
            fprintf(stderr, "gencache_redis_bench: no free loopback port\n");
            exit(1);
        }
        snprintf(portbuf, sizeof(portbuf), "%d", port);
        if ((pid = spawn(exe, argv, NULL)) < 0)
            exit(1);
        server_pid = pid;
        for (i = 0; i < 250; i++) {   /* 5 s */
            if (waitpid(pid, &st, WNOHANG) == pid) {
                server_pid = 0;       /* exited: the port was taken? */
                break;
            }
            if (ping())
                return;
            usleep(20000);
        }
        stop_server();
    }
    fprintf(stderr, "gencache_redis_bench: %s did not answer PING\n", exe);
    exit(1);
}

/* ------------------------------------------------------------------ */
/* The plain client and key clean-up                                    */

static redisContext *
plain_connect(void)
{
    struct timeval tv = { 2, 0 };
    redisContext *x = redisConnectWithTimeout("127.0.0.1", port, tv);

    if (x == NULL || x->err != 0) {
        fprintf(stderr, "gencache_redis_bench: cannot connect to 127.0.0.1:%d: %s\n", port,
                x != NULL ? x->errstr : "out of memory");
        exit(1);
    }
    redisSetTimeout(x, tv);
    return x;
}

/* Plain keys: base + "pN:" + "cache." + the 16-byte key, the same length
 * as gencache's Redis keys, base + "wN:" + namespace + NUL + key. */
static unsigned char *
plain_keys(const char *tag, const unsigned char *keys, size_t n, size_t *klen)
{
    char pfx[128];
    size_t plen = (size_t)snprintf(pfx, sizeof(pfx), "%s%s:cache.", base, tag), i;
    unsigned char *pk = malloc(n * (plen + BKEY));

    for (i = 0; i < n; i++) {
        memcpy(pk + i * (plen + BKEY), pfx, plen);
        memcpy(pk + i * (plen + BKEY) + plen, keys + i * BKEY, BKEY);
    }
    *klen = plen + BKEY;
    return pk;
}

static int
reply_ok(redisReply *rep)
{
    return rep != NULL && rep->type == REDIS_REPLY_STATUS && strcmp(rep->str, "OK") == 0;
}

/* The plain client's pipelined SETs of n keys: batches of PLAIN_BATCH
 * appends, then one reply read per SET.  Returns the replies not OK. */
static size_t
plain_pipeline(redisContext *x, const unsigned char *pk, size_t klen, size_t n,
               const unsigned char *val)
{
    size_t i, j, bad = 0;

    for (i = 0; i < n; i += PLAIN_BATCH) {
        size_t m = n - i < PLAIN_BATCH ? n - i : PLAIN_BATCH;

        for (j = 0; j < m; j++)
            redisAppendCommand(x, "SET %b %b PX %s", pk + (i + j) * klen, klen, val,
                               (size_t)BVAL, BTTL_STR);
        for (j = 0; j < m; j++) {
            redisReply *rep = NULL;

            if (redisGetReply(x, (void **)&rep) != REDIS_OK) {
                fprintf(stderr, "gencache_redis_bench: plain client: %s\n", x->errstr);
                exit(1);
            }
            if (!reply_ok(rep))
                bad++;
            freeReplyObject(rep);
        }
    }
    return bad;
}

/* Delete every key under base (SCAN + UNLINK), for the next workload. */
static void
purge(void)
{
    redisContext *x = plain_connect();
    char cursor[32] = "0", pat[80];

    snprintf(pat, sizeof(pat), "%s*", base);
    do {
        redisReply *rep = redisCommand(x, "SCAN %s MATCH %s COUNT 1000", cursor, pat);
        redisReply *keys;
        size_t i;

        if (rep == NULL || rep->type != REDIS_REPLY_ARRAY || rep->elements != 2) {
            problem("purge: SCAN failed");
            freeReplyObject(rep);
            break;
        }
        snprintf(cursor, sizeof(cursor), "%s", rep->element[0]->str);
        keys = rep->element[1];
        for (i = 0; i < keys->elements; i++)
            redisAppendCommand(x, "UNLINK %b", keys->element[i]->str,
                               (size_t)keys->element[i]->len);
        for (i = 0; i < keys->elements; i++) {
            redisReply *r2 = NULL;

            if (redisGetReply(x, (void **)&r2) == REDIS_OK)
                freeReplyObject(r2);
        }
        freeReplyObject(rep);
    } while (strcmp(cursor, "0") != 0);
    redisFree(x);
}

/* ------------------------------------------------------------------ */
/* gencache caches                                                      */

/* Where a cache connects: one server (port), a cluster (its seeds), or
 * Sentinel (the sentinels and "mymaster"); primaries: how many primaries
 * the cache must be connected to before it is used. */
typedef struct target {
    int port;
    const cache_redis_node_t *cluster;
    size_t n_cluster;
    const cache_redis_node_t *sentinels;
    size_t n_sentinels;
    size_t primaries;
} target_t;

/* A cache with prefix base + tag + ":" on t, connected (exits after 5 s
 * otherwise). */
static cache_t *
cache_on(const target_t *t, const char *tag, int async_writes, int no_near)
{
    char pfx[128];
    cache_redis_opts_t ro = { .host = "127.0.0.1", .port = t->port, .prefix = pfx,
                              .no_near_cache = no_near, .cluster = t->cluster,
                              .n_cluster = t->n_cluster, .sentinels = t->sentinels,
                              .n_sentinels = t->n_sentinels,
                              .master_name = t->sentinels != NULL ? "mymaster" : NULL };
    cache_opts_t o = { .async_writes = async_writes, .redis = &ro };
    cache_stats_t st;
    cache_t *c;
    int rc, i;

    if (ro.port == 0)
        ro.port = 6379;   /* unused with a cluster or sentinels, but checked */
    snprintf(pfx, sizeof(pfx), "%s%s:", base, tag);
    if ((rc = cache_start(&o, &c)) != 0) {
        fprintf(stderr, "gencache_redis_bench: cache_start: %s\n", cache_strerror(rc));
        exit(1);
    }
    for (i = 0; i < 500; i++) {
        if (cache_stats(c, &st) == 0 && st.connected &&
            st.primaries >= (t->primaries > 0 ? t->primaries : 1))
            return c;
        usleep(10000);
    }
    fprintf(stderr, "gencache_redis_bench: the Redis cache did not connect (%s)\n",
            t->cluster != NULL ? "cluster" : t->sentinels != NULL ? "sentinel" : "one server");
    exit(1);
}

/* A cache on the one server (port). */
static cache_t *
redis_cache(const char *tag, int async_writes, int no_near)
{
    target_t t = { .port = port, .primaries = 1 };

    return cache_on(&t, tag, async_writes, no_near);
}

static void
stop_cache(cache_t *c)
{
    cache_stop(c, ACTOR_INFINITY);
    cache_release(c);
}

/* Put n keys by casts (BTTL) and wait until all are applied. */
static void
fill(cache_t *c, const unsigned char *keys, size_t n, const unsigned char *val)
{
    cache_op_t op = { .kind = CACHE_OP_PUT, .key_len = BKEY, .value = val,
                      .value_len = BVAL, .ttl_ms = BTTL };
    size_t i;
    int rc;

    for (i = 0; i < n; i++) {
        op.key = keys + i * BKEY;
        while ((rc = cache_cast(c, &op)) == -EAGAIN)
            ;
        if (rc != 0)
            problem("fill: cache_cast: %s", cache_strerror(rc));
    }
    if ((rc = cache_sync(c, ACTOR_INFINITY)) != 0)
        problem("fill: cache_sync: %s", cache_strerror(rc));
}

static cache_stats_t
stats_of(cache_t *c)
{
    cache_stats_t st;

    memset(&st, 0, sizeof(st));
    cache_stats(c, &st);
    return st;
}

/* ------------------------------------------------------------------ */
/* 1. Near-cache hit against a local get                                */

/* ns per get of `ops` gets in `order`; counts results that are not a hit
 * of the expected value into *bad. */
static double
time_gets(cache_t *c, const unsigned char *keys, const uint32_t *order, size_t n, size_t ops,
          size_t *bad)
{
    unsigned char buf[BVAL];
    size_t i, len, nbad = 0;
    uint64_t t0 = now_ns(), t;

    for (i = 0; i < ops; i++) {
        const unsigned char *k = keys + (size_t)order[i % n] * BKEY;

        if (cache_get(c, NULL, k, BKEY, buf, sizeof(buf), &len) != 0 || len != BVAL)
            nbad++;
    }
    t = now_ns() - t0;
    *bad += nbad;
    return (double)t / (double)ops;
}

static void
bench_near(void)
{
    size_t n = 10000, ops = quick ? 1000000 : 4000000, i, bad = 0;
    unsigned char *keys = bench_make_keys(n), val[BVAL];
    uint32_t *order = bench_make_order(n, 42);
    double vl[16], vn[16];
    uint64_t remote = 0, misses = 0;
    cache_t *local, *rc;
    int rep;

    memset(val, 'v', sizeof(val));
    if (cache_start(NULL, &local) != 0)
        exit(1);
    fill(local, keys, n, val);
    rc = redis_cache("w1", 0, 0);
    fill(rc, keys, n, val);
    for (rep = 0; rep < reps; rep++) {
        cache_stats_t a, b;
        unsigned char buf[BVAL];

        /* Warm: read every key once (near-cache entries live at most
         * near_ttl_ms, 30 s by default; a repetition is well under it). */
        for (i = 0; i < n; i++)
            if (cache_get(rc, NULL, keys + i * BKEY, BKEY, buf, sizeof(buf), NULL) != 0)
                bad++;
        vl[rep] = time_gets(local, keys, order, n, ops, &bad);
        a = stats_of(rc);
        vn[rep] = time_gets(rc, keys, order, n, ops, &bad);
        b = stats_of(rc);
        remote += b.remote_reads - a.remote_reads;
        misses += b.misses - a.misses;
    }
    if (bad != 0)
        problem("near-cache hit: %zu gets did not return the 64-byte value", bad);
    if (remote != 0)
        problem("near-cache hit: %llu remote reads during the timed loops (%llu misses): "
                "the near-cache did not hold every key",
                (unsigned long long)remote, (unsigned long long)misses);
    bench_emit((row_t){ "near-cache hit, 10k keys", "1 thread", bench_median(vn, reps), "ns/get",
                  "local cache get", bench_median(vl, reps), "<= 1.2x local get",
                  bench_median(vn, reps) <= 1.2 * bench_median(vl, reps) });
    bench_emit((row_t){ "near-cache hit, 10k keys", "remote reads in loop", (double)remote, "reads",
                  NULL, 0, "0", remote == 0 });
    stop_cache(rc);
    stop_cache(local);
    free(keys);
    free(order);
    purge();
}

/* ------------------------------------------------------------------ */
/* 2. Remote read and 3. sync put against the plain client               */

/* The four loops of workloads 2 and 3, each over order[from, from + cnt):
 * ns taken; failures counted in *bad. */
typedef struct sctx {
    const unsigned char *keys, *pk, *val;
    size_t klen, n;
    const uint32_t *order;
    redisContext *x;
    cache_t *rc, *wc;
} sctx_t;

static uint64_t
plain_gets(const sctx_t *s, size_t from, size_t cnt, size_t *bad)
{
    uint64_t t0 = now_ns();
    size_t i;

    for (i = from; i < from + cnt; i++) {
        redisReply *r = redisCommand(s->x, "GET %b", s->pk + (size_t)s->order[i % s->n] * s->klen,
                                     s->klen);

        if (r == NULL) {
            fprintf(stderr, "gencache_redis_bench: plain client: %s\n", s->x->errstr);
            exit(1);
        }
        if (r->type != REDIS_REPLY_STRING || r->len != BVAL)
            (*bad)++;
        freeReplyObject(r);
    }
    return now_ns() - t0;
}

static uint64_t
gc_gets(const sctx_t *s, size_t from, size_t cnt, size_t *bad)
{
    unsigned char buf[BVAL];
    uint64_t t0 = now_ns();
    size_t i, len;

    for (i = from; i < from + cnt; i++) {
        const unsigned char *k = s->keys + (size_t)s->order[i % s->n] * BKEY;

        if (cache_get(s->rc, NULL, k, BKEY, buf, sizeof(buf), &len) != 0 || len != BVAL ||
            memcmp(buf, s->val, BVAL) != 0)
            (*bad)++;
    }
    return now_ns() - t0;
}

static uint64_t
plain_sets(const sctx_t *s, size_t from, size_t cnt, size_t *bad)
{
    uint64_t t0 = now_ns();
    size_t i;

    for (i = from; i < from + cnt; i++) {
        redisReply *r = redisCommand(s->x, "SET %b %b PX %s",
                                     s->pk + (size_t)s->order[i % s->n] * s->klen, s->klen,
                                     s->val, (size_t)BVAL, BTTL_STR);

        if (r == NULL) {
            fprintf(stderr, "gencache_redis_bench: plain client: %s\n", s->x->errstr);
            exit(1);
        }
        if (!reply_ok(r))
            (*bad)++;
        freeReplyObject(r);
    }
    return now_ns() - t0;
}

static uint64_t
gc_puts(const sctx_t *s, size_t from, size_t cnt, size_t *bad)
{
    uint64_t t0 = now_ns();
    size_t i;

    for (i = from; i < from + cnt; i++) {
        const unsigned char *k = s->keys + (size_t)s->order[i % s->n] * BKEY;

        if (cache_put(s->wc, NULL, k, BKEY, s->val, BVAL, BTTL) != 0)
            (*bad)++;
    }
    return now_ns() - t0;
}

static void
bench_sync(void)
{
    size_t n = 10000, ops = quick ? 5000 : 20000, chunk = ops / 10, i, klen, bad = 0, pbad = 0;
    unsigned char *keys = bench_make_keys(n), *pk = plain_keys("p2", keys, n, &klen), val[BVAL];
    uint32_t *order = bench_make_order(n, 7);
    double vg[16], vp[16], vs[16], vq[16];
    sctx_t s;
    int rep;

    memset(val, 'v', sizeof(val));
    s = (sctx_t){ keys, pk, val, klen, n, order, plain_connect(), redis_cache("w2", 0, 1),
                  redis_cache("w3", 0, 0) };
    fill(s.rc, keys, n, val);
    pbad += plain_pipeline(s.x, pk, klen, n, val);

    /* Each repetition alternates the two clients in 10 chunks, so that a
     * change in the machine's load hits both alike. */
    for (rep = 0; rep < reps; rep++) {
        uint64_t tp = 0, tg = 0, tq = 0, ts = 0;

        for (i = 0; i < ops; i += chunk) {
            tp += plain_gets(&s, i, chunk, &pbad);
            tg += gc_gets(&s, i, chunk, &bad);
        }
        for (i = 0; i < ops; i += chunk) {
            tq += plain_sets(&s, i, chunk, &pbad);
            ts += gc_puts(&s, i, chunk, &bad);
        }
        vp[rep] = (double)tp / 1e3 / (double)ops;
        vg[rep] = (double)tg / 1e3 / (double)ops;
        vq[rep] = (double)tq / 1e3 / (double)ops;
        vs[rep] = (double)ts / 1e3 / (double)ops;
    }
    if (bad != 0)
        problem("remote read / sync put: %zu gencache operations failed", bad);
    if (pbad != 0)
        problem("remote read / sync put: %zu plain client replies were wrong", pbad);
    bench_emit((row_t){ "remote read (no near-cache)", "1 thread", bench_median(vg, reps), "us/get",
                  "plain GET", bench_median(vp, reps), "", -1 });
    bench_emit((row_t){ "sync put", "1 thread", bench_median(vs, reps), "us/op", "plain SET PX",
                  bench_median(vq, reps), "", -1 });
    stop_cache(s.rc);
    stop_cache(s.wc);
    redisFree(s.x);
    free(keys);
    free(pk);
    free(order);
    purge();
}

/* ------------------------------------------------------------------ */
/* 4. Pipelined writes                                                  */

/* CPU time of this process (every thread) and of the main threads of the
 * redis-servers given (one, or a cluster's), in ns. */
typedef struct cpu {
    uint64_t wall, proc, srv;
} cpu_t;

/* The servers whose CPU time is counted: 0 pids (or pid <= 0) count 0. */
typedef struct srvset {
    const pid_t *pid;
    size_t n;
} srvset_t;

static uint64_t
server_cpu_ns(srvset_t s)
{
    uint64_t sum = 0;
    size_t i;

    for (i = 0; i < s.n; i++) {
        char path[64];
        unsigned long long ns = 0;
        FILE *f;

        if (s.pid[i] <= 0)
            continue;
        snprintf(path, sizeof(path), "/proc/%ld/schedstat", (long)s.pid[i]);
        if ((f = fopen(path, "r")) == NULL)
            continue;
        if (fscanf(f, "%llu", &ns) == 1)
            sum += ns;
        fclose(f);
    }
    return sum;
}

static cpu_t
cpu_now(srvset_t s)
{
    struct timespec ts;
    cpu_t c;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    c.proc = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    c.srv = server_cpu_ns(s);
    c.wall = now_ns();
    return c;
}

/* One timed pipelined run: writes/s, and CPU ns per write of this process
 * and of the server(s). */
typedef struct prun {
    double rate[16], proc[16], srv[16];
} prun_t;

static void
account(prun_t *p, int rep, cpu_t a, size_t n, srvset_t s)
{
    cpu_t b = cpu_now(s);

    p->rate[rep] = (double)n / ((double)(b.wall - a.wall) / 1e9);
    p->proc[rep] = (double)(b.proc - a.proc) / (double)n;
    p->srv[rep] = (double)(b.srv - a.srv) / (double)n;
}

/* N casts and one cache_sync on c.  Checks that every put was confirmed
 * (stats.puts) and none failed. */
static void
gencache_pipeline(cache_t *c, const unsigned char *keys, size_t n, const unsigned char *val,
                  prun_t *p, int rep, srvset_t srv)
{
    cache_stats_t a = stats_of(c), b;
    cpu_t t0 = cpu_now(srv);
    size_t i, bad = 0;
    int rc;

    for (i = 0; i < n; i++) {
        while ((rc = cache_put(c, NULL, keys + i * BKEY, BKEY, val, BVAL, BTTL)) == -EAGAIN)
            ;
        if (rc != 0)
            bad++;
    }
    rc = cache_sync(c, ACTOR_INFINITY);
    if (p != NULL)
        account(p, rep, t0, n, srv);
    b = stats_of(c);
    if (rc != 0 || bad != 0 || b.puts - a.puts != n || b.remote_errors != a.remote_errors)
        problem("pipelined writes: cache_sync %s, %zu casts refused, %llu of %zu confirmed, "
                "%llu remote errors",
                cache_strerror(rc), bad, (unsigned long long)(b.puts - a.puts), n,
                (unsigned long long)(b.remote_errors - a.remote_errors));
}

/* A plain client whose connection tracks its own prefix the way a Redis
 * cache's does (BCAST PREFIX, NOLOOP, redirected to a subscribed second
 * connection *sub): for the diagnostic row only. */
static redisContext *
plain_tracked(const char *tag, redisContext **sub)
{
    redisContext *x = plain_connect();
    redisReply *r;
    char pfx[128];
    long long id;

    *sub = plain_connect();
    snprintf(pfx, sizeof(pfx), "%s%s:", base, tag);
    r = redisCommand(*sub, "CLIENT ID");
    id = r != NULL && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    freeReplyObject(r);
    r = redisCommand(*sub, "SUBSCRIBE __redis__:invalidate");
    freeReplyObject(r);
    r = redisCommand(x, "CLIENT TRACKING on REDIRECT %lld BCAST PREFIX %s NOLOOP", id, pfx);
    if (!reply_ok(r))
        problem("plain client: CLIENT TRACKING failed");
    freeReplyObject(r);
    return x;
}

static void
bench_pipeline(void)
{
    size_t n = quick ? 20000 : 200000, klen, pbad = 0;
    unsigned char *keys = bench_make_keys(n), val[BVAL];
    unsigned char *pk = plain_keys("p4", keys, n, &klen), *ptk = plain_keys("pt", keys, n, &klen);
    redisContext *x = plain_connect(), *sub, *xt = plain_tracked("pt", &sub);
    cache_t *c = redis_cache("w4", 1, 0), *cx = redis_cache("wx", 1, 1);
    srvset_t one = { &server_pid, 1 };
    prun_t g, gx, pl, pt;
    char wl[64];
    int rep;

    memset(val, 'v', sizeof(val));
    /* A first round of each, not timed: every timed SET then replaces a key
     * that exists, for every client. */
    pbad += plain_pipeline(x, pk, klen, n, val);
    pbad += plain_pipeline(xt, ptk, klen, n, val);
    gencache_pipeline(c, keys, n, val, NULL, 0, one);
    gencache_pipeline(cx, keys, n, val, NULL, 0, one);
    for (rep = 0; rep < reps; rep++) {
        cpu_t t0 = cpu_now(one);

        pbad += plain_pipeline(x, pk, klen, n, val);
        account(&pl, rep, t0, n, one);
        gencache_pipeline(c, keys, n, val, &g, rep, one);
        gencache_pipeline(cx, keys, n, val, &gx, rep, one);
        t0 = cpu_now(one);
        pbad += plain_pipeline(xt, ptk, klen, n, val);
        account(&pt, rep, t0, n, one);
    }
    if (pbad != 0)
        problem("pipelined writes: %zu plain SET replies were not OK", pbad);
    snprintf(wl, sizeof(wl), "pipelined writes, %zuk", n / 1000);
    bench_emit((row_t){ wl, "casts + cache_sync", bench_median(g.rate, reps) / 1e3, "kops/s",
                  "plain pipelined SET", bench_median(pl.rate, reps) / 1e3, ">= 1.0x plain",
                  bench_median(g.rate, reps) >= bench_median(pl.rate, reps) });
    bench_emit((row_t){ wl, "same, no near-cache", bench_median(gx.rate, reps) / 1e3, "kops/s",
                  "plain pipelined SET", bench_median(pl.rate, reps) / 1e3, "", -1 });
    bench_emit((row_t){ wl, "plain, BCAST-tracked", bench_median(pt.rate, reps) / 1e3, "kops/s",
                  "plain pipelined SET", bench_median(pl.rate, reps) / 1e3, "", -1 });
    bench_emit((row_t){ wl, "client CPU/write", bench_median(g.proc, reps), "ns", "plain client",
                  bench_median(pl.proc, reps), "", -1 });
    bench_emit((row_t){ wl, "client CPU, no near", bench_median(gx.proc, reps), "ns", "plain client",
                  bench_median(pl.proc, reps), "", -1 });
    if (server_pid > 0) {
        bench_emit((row_t){ wl, "server CPU/write", bench_median(g.srv, reps), "ns", "for plain SET",
                      bench_median(pl.srv, reps), "", -1 });
        bench_emit((row_t){ wl, "server CPU, no near", bench_median(gx.srv, reps), "ns", "for plain SET",
                      bench_median(pl.srv, reps), "", -1 });
        bench_emit((row_t){ wl, "server CPU, plain trkd", bench_median(pt.srv, reps), "ns",
                      "for plain SET", bench_median(pl.srv, reps), "", -1 });
    }
    stop_cache(c);
    stop_cache(cx);
    redisFree(x);
    redisFree(xt);
    redisFree(sub);
    free(keys);
    free(pk);
    free(ptk);
    purge();
}

/* ------------------------------------------------------------------ */
/* 5. Invalidation delay                                                */

/* `rounds` rounds of: A puts value i, B polls until cache_get returns it.
 * Sorted delays (ns) into lat, their count returned; the mean number of
 * stale reads per round in *stale.  sleep_ns > 0: B sleeps between polls. */
static size_t
inval_rounds(cache_t *a, cache_t *b, size_t rounds, long sleep_ns, uint64_t *lat,
             double *stale)
{
    const unsigned char key[BKEY] = "inval-key-000000";
    unsigned char val[BVAL], buf[BVAL];
    size_t i, n = 0, nstale = 0;
    cache_stats_t sa, sb;
    uint64_t r0;
    int rc;

    memset(val, 'v', sizeof(val));
    r0 = (uint64_t)(sleep_ns > 0) << 32;
    memcpy(val, &r0, sizeof(r0));
    /* B reads the first value only after A's invalidation for it has come
     * and gone, so that every round starts with B's near-cache holding the
     * previous value. */
    if ((rc = cache_put(a, NULL, key, BKEY, val, BVAL, BTTL)) != 0)
        problem("invalidation delay: set-up: %s", cache_strerror(rc));
    usleep(50000);
    if ((rc = cache_get(b, NULL, key, BKEY, buf, sizeof(buf), NULL)) != 0)
        problem("invalidation delay: set-up: %s", cache_strerror(rc));
    sa = stats_of(b);
    for (i = 1; i <= rounds; i++) {
        uint64_t t0, deadline, seen, tag = r0 + i;

        /* Every worker parked between rounds. */
        usleep(500);
        memcpy(val, &tag, sizeof(tag));
        if ((rc = cache_put(a, NULL, key, BKEY, val, BVAL, BTTL)) != 0) {
            problem("invalidation delay: cache_put: %s", cache_strerror(rc));
            continue;
        }
        t0 = now_ns();
        deadline = t0 + 2000000000ull;
        for (;;) {
            rc = cache_get(b, NULL, key, BKEY, buf, sizeof(buf), NULL);
            if (rc == 0 && memcmp(buf, &tag, sizeof(tag)) == 0) {
                seen = now_ns();
                break;
            }
            if (rc != 0)
                problem("invalidation delay: cache_get: %s", cache_strerror(rc));
            nstale++;
            if (now_ns() > deadline) {
                problem("invalidation delay: round %zu: B still returns the old value "
                        "2 s after A's put returned", i);
                seen = 0;
                break;
            }
            if (sleep_ns > 0) {
                struct timespec ts = { 0, sleep_ns };

                nanosleep(&ts, NULL);
            }
        }
        if (seen != 0)
            lat[n++] = seen - t0;
    }
    sb = stats_of(b);
    if (sb.invalidations - sa.invalidations != n)
        problem("invalidation delay: B counted %llu invalidations in %zu rounds",
                (unsigned long long)(sb.invalidations - sa.invalidations), n);
    qsort(lat, n, sizeof(*lat), bench_cmp_u64);
    *stale = n > 0 ? (double)nstale / (double)n : 0;
    return n;
}

/* The same rounds with two plain clients: xa SETs the value, xb GETs until
 * it returns it (its first GET normally does: one round trip). */
static size_t
plain_inval_rounds(redisContext *xa, redisContext *xb, size_t rounds, uint64_t *lat)
{
    unsigned char val[BVAL], key[64];
    size_t i, n = 0, klen = (size_t)snprintf((char *)key, sizeof(key), "%sp5:inval-key", base);

    memset(val, 'v', sizeof(val));
    for (i = 1; i <= rounds; i++) {
        uint64_t t0, deadline, seen = 0;
        redisReply *r;

        usleep(500);
        memcpy(val, &i, sizeof(i));
        r = redisCommand(xa, "SET %b %b PX %s", key, klen, val, (size_t)BVAL, BTTL_STR);
        if (!reply_ok(r))
            problem("invalidation delay: plain SET failed");
        freeReplyObject(r);
        t0 = now_ns();
        deadline = t0 + 2000000000ull;
        while (now_ns() < deadline) {
            int ok;

            if ((r = redisCommand(xb, "GET %b", key, klen)) == NULL) {
                fprintf(stderr, "gencache_redis_bench: plain client: %s\n", xb->errstr);
                exit(1);
            }
            ok = r->type == REDIS_REPLY_STRING && r->len == BVAL &&
                 memcmp(r->str, &i, sizeof(i)) == 0;
            freeReplyObject(r);
            if (ok) {
                seen = now_ns();
                break;
            }
        }
        if (seen != 0)
            lat[n++] = seen - t0;
        else
            problem("invalidation delay: plain GET did not see the SET in 2 s");
    }
    qsort(lat, n, sizeof(*lat), bench_cmp_u64);
    return n;
}

static void
bench_inval(void)
{
    size_t rounds = quick ? 200 : 1000, n, pn;
    uint64_t *lat = malloc(rounds * sizeof(*lat)), *pl = malloc(rounds * sizeof(*pl));
    cache_t *a = redis_cache("w5", 0, 0), *b = redis_cache("w5", 0, 0);
    redisContext *xa = plain_connect(), *xb = plain_connect();
    double stale;

    pn = plain_inval_rounds(xa, xb, rounds, pl);
    n = inval_rounds(a, b, rounds, 0, lat, &stale);
    if (n > 0 && pn > 0) {
        bench_emit((row_t){ "invalidation delay", "p50", (double)bench_pct(lat, n, 0.5) / 1e3, "us",
                      "plain SET, then GET", (double)bench_pct(pl, pn, 0.5) / 1e3, "< 1000 us",
                      bench_pct(lat, n, 0.5) < 1000000 });
        bench_emit((row_t){ "invalidation delay", "p99", (double)bench_pct(lat, n, 0.99) / 1e3, "us",
                      "plain SET, then GET", (double)bench_pct(pl, pn, 0.99) / 1e3, "", -1 });
        bench_emit((row_t){ "invalidation delay", "mean stale reads/round", stale, "reads", NULL, 0,
                      "", -1 });
    }
    /* The same with B sleeping between polls (5 us asked; the kernel's
     * timer slack makes it about 55 us), leaving the CPU to the threads
     * that carry the invalidation. */
    n = inval_rounds(a, b, rounds, 5000, lat, &stale);
    if (n > 0 && pn > 0) {
        bench_emit((row_t){ "inval. delay, sleepy poll", "p50", (double)bench_pct(lat, n, 0.5) / 1e3,
                      "us", "plain SET, then GET", (double)bench_pct(pl, pn, 0.5) / 1e3, "", -1 });
        bench_emit((row_t){ "inval. delay, sleepy poll", "p99", (double)bench_pct(lat, n, 0.99) / 1e3,
                      "us", "plain SET, then GET", (double)bench_pct(pl, pn, 0.99) / 1e3, "", -1 });
    }
    stop_cache(a);
    stop_cache(b);
    redisFree(xa);
    redisFree(xb);
    free(lat);
    free(pl);
    purge();
}

/* ------------------------------------------------------------------ */
/* Topologies: the processes of a Redis Cluster or of Sentinel          */

#define KIDS_MAX 16
#define NODES_MAX 6
#define SLOTS 16384
#define NODE_TIMEOUT_MS "1000"   /* cluster-node-timeout */

static int no_cluster, threads;
static char srv_exe[4096], cli_exe[4096], sent_exe[4096];
static char tmpdir[64];          /* logs, nodes-P.conf, sentinel-P.conf */
static pid_t kids[KIDS_MAX];     /* topology processes still running */
static size_t nkids;
static int used_ports[64];       /* ports (and cluster bus ports) handed out */
static size_t nused;
static char notes[8192];         /* printed after the table */
static size_t notes_len;

/* A line for the reader: after the table (on stderr with --json, which
 * prints figures only). */
static void
note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
note(const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (json || n < 0) {
        fprintf(stderr, "gencache_redis_bench: %s\n", line);
        return;
    }
    if (notes_len + (size_t)n + 4 < sizeof(notes))
        notes_len += (size_t)snprintf(notes + notes_len, sizeof(notes) - notes_len, "- %s\n",
                                      line);
}

static void
kid_forget(pid_t pid)
{
    size_t i;

    for (i = 0; i < nkids; i++)
        if (kids[i] == pid) {
            kids[i] = kids[--nkids];
            return;
        }
}

static void
kid_stop(pid_t pid)
{
    child_stop(pid);
    kid_forget(pid);
}

/* At exit: every topology process stopped; the directory removed unless a
 * check failed (its logs are then worth reading). */
static void
topo_cleanup(void)
{
    DIR *d;
    struct dirent *e;

    while (nkids > 0)
        kid_stop(kids[nkids - 1]);
    if (tmpdir[0] == '\0')
        return;
    if (problems != 0) {
        fprintf(stderr, "gencache_redis_bench: server logs kept in %s\n", tmpdir);
        return;
    }
    if ((d = opendir(tmpdir)) != NULL) {
        while ((e = readdir(d)) != NULL) {
            char path[512];

            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            snprintf(path, sizeof(path), "%s/%s", tmpdir, e->d_name);
            unlink(path);
        }
        closedir(d);
    }
    rmdir(tmpdir);
}

static int
ensure_tmpdir(void)
{
    if (tmpdir[0] != '\0')
        return 0;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/gcbench-%ld-XXXXXX", (long)getpid());
    if (mkdtemp(tmpdir) == NULL) {
        tmpdir[0] = '\0';
        return -errno;
    }
    atexit(topo_cleanup);
    return 0;
}

/* 1 when nothing listens on 127.0.0.1:p now. */
static int
port_free(int p)
{
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM, 0), ok;

    if (fd < 0)
        return 0;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)p);
    ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(fd);
    return ok;
}

static int
port_used(int p)
{
    size_t i;

    for (i = 0; i < nused; i++)
        if (used_ports[i] == p)
            return 1;
    return p == port;
}

/* A free port not handed out before; with bus, port + 10000 (the cluster
 * bus) free too.  -1 when none was found. */
static int
fresh_port(int bus)
{
    int i;

    for (i = 0; i < 200 && nused + 2 <= sizeof(used_ports) / sizeof(used_ports[0]); i++) {
        int p = free_port();

        if (p <= 0 || port_used(p))
            continue;
        if (bus && (p + 10000 > 65535 || port_used(p + 10000) || !port_free(p + 10000)))
            continue;
        used_ports[nused++] = p;
        if (bus)
            used_ports[nused++] = p + 10000;
        return p;
    }
    return -1;
}

/* The reply to a command sent to 127.0.0.1:p on a connection of its own
 * (the caller frees it), or NULL. */
static redisReply *
ask_port(int p, const char *fmt, ...)
{
    struct timeval tv = { 0, 500000 }, io = { 2, 0 };
    redisContext *x = redisConnectWithTimeout("127.0.0.1", p, tv);
    redisReply *rep = NULL;
    va_list ap;

    if (x == NULL)
        return NULL;
    if (x->err == 0) {
        redisSetTimeout(x, io);
        va_start(ap, fmt);
        rep = redisvCommand(x, fmt, ap);
        va_end(ap);
    }
    redisFree(x);
    return rep;
}

/* 1 when the (string or status) reply to `cmd` at port p contains needle. */
static int
reply_has(int p, const char *cmd, const char *needle)
{
    redisReply *r = ask_port(p, cmd);
    int ok = r != NULL && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) &&
             strstr(r->str, needle) != NULL;

    freeReplyObject(r);
    return ok;
}

/* 1 when the server at port p says it is a primary (ROLE). */
static int
is_primary(int p)
{
    redisReply *r = ask_port(p, "ROLE");
    int ok = r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
             r->element[0]->type == REDIS_REPLY_STRING && strcmp(r->element[0]->str, "master") == 0;

    freeReplyObject(r);
    return ok;
}

typedef enum { NODE_CLUSTER, NODE_PLAIN, NODE_SENTINEL } node_kind_t;

/*
 * Start one process on a fresh port and wait (5 s) until it answers PING:
 * a cluster node (cluster-enabled, cluster-node-timeout NODE_TIMEOUT_MS),
 * a plain server (a replica of 127.0.0.1:replicaof when > 0), or a
 * sentinel monitoring "mymaster" at 127.0.0.1:replicaof (quorum 2,
 * down-after-milliseconds 1000, failover-timeout 5000).  Every server has
 * no persistence and its own RDB file name (replicas write one when they
 * sync).  Output goes to tmpdir/<kind>-P.log.  The pid (and *out_port), or
 * -1 after 5 attempts.
 */
static pid_t
start_node(node_kind_t kind, int replicaof, int *out_port)
{
    static const char *const kname[] = { "cluster", "server", "sentinel" };
    int attempt;

    for (attempt = 0; attempt < 5; attempt++) {
        char pbuf[16], rbuf[16], log[256], conf[256], rdb[64];
        char *argv[32];
        int p = fresh_port(kind == NODE_CLUSTER), a = 0, i, st;
        pid_t pid;

        if (p <= 0)
            return -1;
        snprintf(pbuf, sizeof(pbuf), "%d", p);
        snprintf(rbuf, sizeof(rbuf), "%d", replicaof);
        snprintf(log, sizeof(log), "%s/%s-%d.log", tmpdir, kname[kind], p);
        snprintf(rdb, sizeof(rdb), "dump-%d.rdb", p);
        if (kind == NODE_SENTINEL) {
            FILE *f;

            snprintf(conf, sizeof(conf), "%s/sentinel-%d.conf", tmpdir, p);
            if ((f = fopen(conf, "w")) == NULL)
                return -1;
            fprintf(f,
                    "port %d\nbind 127.0.0.1\nprotected-mode no\ndir %s\n"
                    "sentinel monitor mymaster 127.0.0.1 %d 2\n"
                    "sentinel down-after-milliseconds mymaster 1000\n"
                    "sentinel failover-timeout mymaster 5000\n",
                    p, tmpdir, replicaof);
            fclose(f);
            argv[a++] = sent_exe;
            argv[a++] = conf;
        } else {
            char *common[] = { srv_exe, "--port", pbuf, "--bind", "127.0.0.1",
                               "--protected-mode", "no", "--save", "", "--appendonly", "no",
                               "--dir", tmpdir, "--dbfilename", rdb };

            for (i = 0; i < (int)(sizeof(common) / sizeof(common[0])); i++)
                argv[a++] = common[i];
            if (kind == NODE_CLUSTER) {
                snprintf(conf, sizeof(conf), "%s/nodes-%d.conf", tmpdir, p);
                argv[a++] = "--cluster-enabled";
                argv[a++] = "yes";
                argv[a++] = "--cluster-config-file";
                argv[a++] = conf;
                argv[a++] = "--cluster-node-timeout";
                argv[a++] = NODE_TIMEOUT_MS;
            } else if (replicaof > 0) {
                argv[a++] = "--replicaof";
                argv[a++] = "127.0.0.1";
                argv[a++] = rbuf;
            }
        }
        argv[a] = NULL;
        if ((pid = spawn(argv[0], argv, log)) < 0)
            return -1;
        if (nkids < KIDS_MAX)
            kids[nkids++] = pid;
        for (i = 0; i < 250; i++) {
            if (waitpid(pid, &st, WNOHANG) == pid) {
                kid_forget(pid);   /* exited: the port was taken? */
                pid = 0;
                break;
            }
            if (ping_port(p)) {
                *out_port = p;
                return pid;
            }
            usleep(20000);
        }
        if (pid > 0)
            kid_stop(pid);
    }
    return -1;
}

/* Run exe argv to its end (at most timeout_ms), output to log: 0 when it
 * exited with status 0. */
static int
run_tool(char *const argv[], const char *log, int timeout_ms)
{
    pid_t pid = spawn(argv[0], argv, log);
    int i, st;

    if (pid < 0)
        return -1;
    for (i = 0; i < timeout_ms / 10; i++) {
        if (waitpid(pid, &st, WNOHANG) == pid)
            return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
        usleep(10000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    return -1;
}

typedef struct cluster {
    size_t n, primaries;          /* nodes; primaries among them */
    int port[NODES_MAX];
    pid_t pid[NODES_MAX];         /* 0 once killed */
    cache_redis_node_t seeds[NODES_MAX];   /* every node */
} cluster_t;

/* One slot range of CLUSTER SLOTS: its primary and first replica (0: none). */
typedef struct range {
    int start, end, primary, replica;
} range_t;

static const range_t *range_of(const range_t *rg, size_t nr, int slot);

/* The slot ranges as node p sees them, at most cap; their count (0 when it
 * did not answer). */
static size_t
cluster_ranges(int p, range_t *out, size_t cap)
{
    redisReply *r = ask_port(p, "CLUSTER SLOTS");
    size_t i, n = 0;

    if (r != NULL && r->type == REDIS_REPLY_ARRAY) {
        for (i = 0; i < r->elements && n < cap; i++) {
            redisReply *e = r->element[i];

            if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 ||
                e->element[2]->type != REDIS_REPLY_ARRAY || e->element[2]->elements < 2)
                continue;
            out[n].start = (int)e->element[0]->integer;
            out[n].end = (int)e->element[1]->integer;
            out[n].primary = (int)e->element[2]->element[1]->integer;
            out[n].replica = e->elements > 3 && e->element[3]->type == REDIS_REPLY_ARRAY &&
                                     e->element[3]->elements >= 2
                                 ? (int)e->element[3]->element[1]->integer
                                 : 0;
            n++;
        }
    }
    freeReplyObject(r);
    return n;
}

/* Wait (timeout_ms) until every node says cluster_state:ok and, when the
 * cluster has replicas, every replica's link to its primary is up and
 * every slot range lists a replica.  0, or -1. */
static int
cluster_wait(const cluster_t *cl, int timeout_ms)
{
    uint64_t end = now_ns() + (uint64_t)timeout_ms * 1000000u;

    do {
        size_t i, ok = 0, nr;
        range_t rg[16];

        for (i = 0; i < cl->n; i++) {
            if (cl->pid[i] <= 0) {
                ok++;
                continue;
            }
            if (!reply_has(cl->port[i], "CLUSTER INFO", "cluster_state:ok"))
                break;
            if (!reply_has(cl->port[i], "INFO replication", "role:slave") ||
                reply_has(cl->port[i], "INFO replication", "master_link_status:up"))
                ok++;
        }
        if (ok == cl->n) {
            if (cl->n == cl->primaries)
                return 0;
            for (i = 0; i < cl->n && cl->pid[i] <= 0; i++)
                ;
            nr = cluster_ranges(cl->port[i], rg, 16);
            for (i = 0; i < nr && rg[i].replica != 0; i++)
                ;
            if (nr > 0 && i == nr)
                return 0;
        }
        usleep(50000);
    } while (now_ns() < end);
    return -1;
}

static void
cluster_stop(cluster_t *cl)
{
    size_t i;

    for (i = 0; i < cl->n; i++)
        if (cl->pid[i] > 0)
            kid_stop(cl->pid[i]);
    cl->n = 0;
}

/* The tools the topology rows need, found once: 0, or -1 with a note. */
static int
topo_ready(void)
{
    static int state;   /* 0 not checked, 1 ready, -1 not */
    int rc;

    if (state != 0)
        return state > 0 ? 0 : -1;
    state = -1;
    if (find_exe("redis-server", srv_exe, sizeof(srv_exe)) != 0) {
        note("Cluster and Sentinel rows skipped: redis-server is not on PATH");
        return -1;
    }
    if (find_exe("redis-cli", cli_exe, sizeof(cli_exe)) != 0) {
        note("Cluster and Sentinel rows skipped: redis-cli is not on PATH "
             "(it creates the cluster; Debian: apt-get install redis-tools)");
        return -1;
    }
    if ((rc = ensure_tmpdir()) != 0) {
        note("Cluster and Sentinel rows skipped: no temporary directory (%s)", strerror(-rc));
        return -1;
    }
    state = 1;
    return 0;
}

/*
 * Start a Redis Cluster of `primaries` primaries with `replicas` replicas
 * each: the nodes, then `redis-cli --cluster create` (30 s at most), then
 * cluster_wait (20 s).  0, or -1 with a note saying why (nothing is left
 * running then).
 */
static int
cluster_start(cluster_t *cl, size_t primaries, int replicas)
{
    char addr[NODES_MAX][32], rbuf[8], log[256];
    char *argv[NODES_MAX + 8];
    size_t i;
    int a = 0;

    memset(cl, 0, sizeof(*cl));
    if (topo_ready() != 0)
        return -1;
    cl->primaries = primaries;
    for (i = 0; i < primaries * (size_t)(1 + replicas) && i < NODES_MAX; i++) {
        if ((cl->pid[i] = start_node(NODE_CLUSTER, 0, &cl->port[i])) < 0) {
            cl->pid[i] = 0;
            cl->n = i;
            cluster_stop(cl);
            note("Cluster rows skipped: a cluster node did not start (see %s)", tmpdir);
            return -1;
        }
        cl->seeds[i] = (cache_redis_node_t){ "127.0.0.1", cl->port[i] };
        cl->n = i + 1;
    }
    argv[a++] = cli_exe;
    argv[a++] = "--cluster";
    argv[a++] = "create";
    for (i = 0; i < cl->n; i++) {
        snprintf(addr[i], sizeof(addr[i]), "127.0.0.1:%d", cl->port[i]);
        argv[a++] = addr[i];
    }
    snprintf(rbuf, sizeof(rbuf), "%d", replicas);
    argv[a++] = "--cluster-replicas";
    argv[a++] = rbuf;
    argv[a++] = "--cluster-yes";
    argv[a] = NULL;
    snprintf(log, sizeof(log), "%s/create-%d.log", tmpdir, cl->port[0]);
    if (run_tool(argv, log, 30000) != 0) {
        cluster_stop(cl);
        note("Cluster rows skipped: redis-cli --cluster create failed (see %s)", log);
        return -1;
    }
    if (cluster_wait(cl, 20000) != 0) {
        cluster_stop(cl);
        note("Cluster rows skipped: the cluster did not reach cluster_state:ok%s in 20 s",
             replicas > 0 ? " with every replica linked" : "");
        return -1;
    }
    return 0;
}

/* Redis Cluster's slot of a key: CRC16-XMODEM of the key, or of its hash
 * tag (the bytes between the first '{' and the next '}', when not empty),
 * modulo 16384.  Written here bit by bit, apart from the library's. */
static unsigned
key_slot(const unsigned char *k, size_t n)
{
    const unsigned char *open = memchr(k, '{', n), *close;
    uint16_t crc = 0;
    size_t i;
    int b;

    if (open != NULL &&
        (close = memchr(open + 1, '}', n - (size_t)(open + 1 - k))) != NULL && close > open + 1) {
        k = open + 1;
        n = (size_t)(close - k);
    }
    for (i = 0; i < n; i++) {
        crc ^= (uint16_t)(k[i] << 8);
        for (b = 0; b < 8; b++)
            crc = crc & 0x8000 ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
    }
    return crc & (SLOTS - 1);
}

/* The slot of a cache's key: its Redis key is prefix + namespace ("cache")
 * + NUL + key. */
static unsigned
cache_key_slot(const char *prefix, const unsigned char *key)
{
    unsigned char rk[256];
    size_t pl = strlen(prefix);

    memcpy(rk, prefix, pl);
    memcpy(rk + pl, "cache", 6);   /* with its NUL */
    memcpy(rk + pl + 6, key, BKEY);
    return key_slot(rk, pl + 6 + BKEY);
}

/* ------------------------------------------------------------------ */
/* 6. One server against a cluster of 3 primaries                       */

/* One of T threads casting keys [from, to) and syncing. */
typedef struct caster {
    cache_t *c;
    const unsigned char *keys, *val;
    size_t from, to, refused;
    pthread_barrier_t *go;
    uint64_t end;
    int sync_rc;
    pthread_t th;
} caster_t;

static void *
caster_main(void *arg)
{
    caster_t *w = arg;
    size_t i;
    int rc;

    pthread_barrier_wait(w->go);
    for (i = w->from; i < w->to; i++) {
        while ((rc = cache_put(w->c, NULL, w->keys + i * BKEY, BKEY, w->val, BVAL, BTTL)) ==
               -EAGAIN)
            ;
        if (rc != 0)
            w->refused++;
    }
    w->sync_rc = cache_sync(w->c, ACTOR_INFINITY);
    w->end = now_ns();
    return NULL;
}

/* n casts on the async_writes cache c from nt threads (an equal share
 * each, then each its cache_sync): writes/s from the moment they are let
 * go to the last sync's return.  Checks as gencache_pipeline. */
static double
cast_threads(cache_t *c, const unsigned char *keys, size_t n, const unsigned char *val, int nt)
{
    caster_t *w = calloc((size_t)nt, sizeof(*w));
    cache_stats_t a = stats_of(c), b;
    pthread_barrier_t go;
    uint64_t t0, end = 0;
    size_t refused = 0;
    int i, bad = 0;

    pthread_barrier_init(&go, NULL, (unsigned)nt + 1);
    for (i = 0; i < nt; i++) {
        w[i] = (caster_t){ .c = c, .keys = keys, .val = val, .go = &go,
                           .from = n * (size_t)i / (size_t)nt,
                           .to = n * (size_t)(i + 1) / (size_t)nt };
        if (pthread_create(&w[i].th, NULL, caster_main, &w[i]) != 0) {
            fprintf(stderr, "gencache_redis_bench: pthread_create failed\n");
            exit(1);
        }
    }
    pthread_barrier_wait(&go);
    t0 = now_ns();
    for (i = 0; i < nt; i++) {
        pthread_join(w[i].th, NULL);
        end = w[i].end > end ? w[i].end : end;
        refused += w[i].refused;
        bad += w[i].sync_rc != 0;
    }
    pthread_barrier_destroy(&go);
    free(w);
    b = stats_of(c);
    if (bad != 0 || refused != 0 || b.puts - a.puts != n || b.remote_errors != a.remote_errors)
        problem("casts from %d threads: %d cache_sync failed, %zu casts refused, %llu of %zu "
                "confirmed, %llu remote errors",
                nt, bad, refused, (unsigned long long)(b.puts - a.puts), n,
                (unsigned long long)(b.remote_errors - a.remote_errors));
    return (double)n / ((double)(end - t0) / 1e9);
}

static void
bench_scale(void)
{
    size_t n = 10000, ops = quick ? 2000 : 10000, chunk = ops / 10, np = quick ? 20000 : 200000;
    size_t i, bad = 0;
    unsigned char *keys = bench_make_keys(np), val[BVAL];
    uint32_t *order = bench_make_order(n, 11);
    double vs[2][16], vg[2][16], vt[2][16];
    prun_t pr[2];
    cache_t *wc[2], *rc[2], *ac[2];
    cache_stats_t st0, st1;
    srvset_t srv[2];
    cluster_t cl;
    target_t tg[2];
    char fig[64];
    int rep, k;

    if (cluster_start(&cl, 3, 0) != 0)
        return;
    memset(val, 'v', sizeof(val));
    tg[0] = (target_t){ .port = port, .primaries = 1 };
    tg[1] = (target_t){ .cluster = cl.seeds, .n_cluster = cl.n, .primaries = cl.primaries };
    srv[0] = (srvset_t){ &server_pid, 1 };
    srv[1] = (srvset_t){ cl.pid, cl.n };
    for (k = 0; k < 2; k++) {
        char tag[16];

        snprintf(tag, sizeof(tag), "s%d", k);
        wc[k] = cache_on(&tg[k], tag, 0, 0);
        snprintf(tag, sizeof(tag), "r%d", k);
        rc[k] = cache_on(&tg[k], tag, 0, 1);
        snprintf(tag, sizeof(tag), "a%d", k);
        ac[k] = cache_on(&tg[k], tag, 1, 0);
        fill(rc[k], keys, n, val);
        /* Every timed write replaces a key that exists, as in workload 4. */
        gencache_pipeline(ac[k], keys, np, val, NULL, 0, srv[k]);
    }
    st0 = stats_of(ac[1]);
    for (rep = 0; rep < reps; rep++) {
        uint64_t ts[2] = { 0, 0 }, tgt[2] = { 0, 0 };

        /* Chunks alternate between the two, as in workloads 2 and 3. */
        for (i = 0; i < ops; i += chunk)
            for (k = 0; k < 2; k++) {
                sctx_t s = { keys, NULL, val, 0, n, order, NULL, rc[k], wc[k] };

                ts[k] += gc_puts(&s, i, chunk, &bad);
            }
        for (i = 0; i < ops; i += chunk)
            for (k = 0; k < 2; k++) {
                sctx_t s = { keys, NULL, val, 0, n, order, NULL, rc[k], wc[k] };

                tgt[k] += gc_gets(&s, i, chunk, &bad);
            }
        for (k = 0; k < 2; k++) {
            vs[k][rep] = (double)ts[k] / 1e3 / (double)ops;
            vg[k][rep] = (double)tgt[k] / 1e3 / (double)ops;
        }
        for (k = 0; k < 2; k++)
            gencache_pipeline(ac[k], keys, np, val, &pr[k], rep, srv[k]);
        for (k = 0; k < 2; k++)
            vt[k][rep] = cast_threads(ac[k], keys, np, val, threads);
    }
    st1 = stats_of(ac[1]);
    if (bad != 0)
        problem("cluster rows: %zu sync puts or remote reads failed", bad);
#define CL_ROW(figure, v, unit) \
    bench_emit((row_t){ "cluster, 3 primaries", figure, bench_median(v[1], reps), unit, \
                        "1 server, same run", bench_median(v[0], reps), "", -1 })
    CL_ROW("sync put, 1 thread", vs, "us/op");
    CL_ROW("remote read, 1 thread", vg, "us/get");
    for (k = 0; k < 2; k++)
        for (rep = 0; rep < reps; rep++)
            pr[k].rate[rep] /= 1e3;
    snprintf(fig, sizeof(fig), "%zuk casts+sync, 1 thr", np / 1000);
    bench_emit((row_t){ "cluster, 3 primaries", fig, bench_median(pr[1].rate, reps), "kops/s",
                        "1 server, same run", bench_median(pr[0].rate, reps), "", -1 });
    for (k = 0; k < 2; k++)
        for (rep = 0; rep < reps; rep++)
            vt[k][rep] /= 1e3;
    snprintf(fig, sizeof(fig), "%zuk casts+sync, %d thr", np / 1000, threads);
    bench_emit((row_t){ "cluster, 3 primaries", fig, bench_median(vt[1], reps), "kops/s",
                        "1 server, same run", bench_median(vt[0], reps), "", -1 });
    bench_emit((row_t){ "cluster, 3 primaries", "client CPU/write", bench_median(pr[1].proc, reps),
                        "ns", "1 server, same run", bench_median(pr[0].proc, reps), "", -1 });
    if (server_pid > 0)
        bench_emit((row_t){ "cluster, 3 primaries", "server CPU/write (sum)",
                            bench_median(pr[1].srv, reps), "ns", "1 server, same run",
                            bench_median(pr[0].srv, reps), "", -1 });
    bench_emit((row_t){ "cluster, 3 primaries", "redirects followed",
                        (double)(st1.redirects - st0.redirects), "redirects", NULL, 0, "0",
                        st1.redirects == st0.redirects });
#undef CL_ROW
    if (st1.primaries != 3)
        problem("cluster rows: the cache counts %llu primaries, not 3",
                (unsigned long long)st1.primaries);
    for (k = 0; k < 2; k++) {
        stop_cache(wc[k]);
        stop_cache(rc[k]);
        stop_cache(ac[k]);
    }
    cluster_stop(&cl);
    free(keys);
    free(order);
    purge();
}

/* ------------------------------------------------------------------ */
/* 7. Failover gap                                                      */

#define FO_PACE_NS 200000u       /* at most one put every 200 us */
#define FO_WARM_MS 300           /* writes before the event */

/* One sync put of the writer: when it was issued and returned, and what
 * it returned. */
typedef struct wrec {
    uint64_t t0, t1;
    int rc, victim;
} wrec_t;

typedef struct writer {
    cache_t *c;
    const char *prefix;
    const unsigned char *victim;  /* [SLOTS]: 1 for the failing primary's
                                     slots; NULL: every key is on it */
    wrec_t *rec;
    size_t cap;
    atomic_size_t n;              /* records written */
    atomic_int stop;
    /* t1 of the latest refused / accepted put of a victim key.  Relaxed
     * stores and loads: the main thread only polls them to decide when
     * to stop; it reads rec[] after pthread_join. */
    _Atomic uint64_t last_refused, last_ok;
    pthread_t th;
} writer_t;

static void
fo_value(unsigned char *val, uint64_t i)
{
    memset(val, 'f', BVAL);
    memcpy(val, &i, sizeof(i));
}

/* The writer: sync puts of keys 0, 1, 2... (each written once, so a key
 * read back later must hold the value of its one acknowledged put). */
static void *
writer_main(void *arg)
{
    writer_t *w = arg;
    unsigned char key[BKEY], val[BVAL];
    size_t i;

    for (i = 0; i < w->cap && !atomic_load_explicit(&w->stop, memory_order_relaxed); i++) {
        wrec_t *r = &w->rec[i];
        uint64_t spent;

        bench_make_key(key, i);
        fo_value(val, i);
        r->victim = w->victim == NULL || w->victim[cache_key_slot(w->prefix, key)];
        r->t0 = now_ns();
        r->rc = cache_put(w->c, NULL, key, BKEY, val, BVAL, BTTL);
        r->t1 = now_ns();
        if (r->victim)
            atomic_store_explicit(r->rc != 0 ? &w->last_refused : &w->last_ok, r->t1,
                                  memory_order_relaxed);
        atomic_store_explicit(&w->n, i + 1, memory_order_relaxed);
        spent = r->t1 - r->t0;
        if (spent < FO_PACE_NS) {
            struct timespec ts = { 0, (long)(FO_PACE_NS - spent) };

            nanosleep(&ts, NULL);
        }
    }
    return NULL;
}

/* An event that makes a replica take over; 0 when it was set off. */
typedef int (*trigger_fn)(void *arg);

static int
trigger_cluster_failover(void *arg)
{
    redisReply *r = ask_port(*(int *)arg, "CLUSTER FAILOVER");
    int ok = reply_ok(r);

    if (!ok)
        problem("CLUSTER FAILOVER: %s", r != NULL && r->str != NULL ? r->str : "no reply");
    freeReplyObject(r);
    return ok ? 0 : -1;
}

static int
trigger_kill(void *arg)
{
    pid_t *pid = arg;
    int st;

    if (kill(*pid, SIGKILL) != 0)
        return -1;
    waitpid(*pid, &st, 0);
    kid_forget(*pid);
    *pid = 0;
    return 0;
}

static int
trigger_sentinel(void *arg)
{
    int i;

    /* A sentinel that has not refreshed the replica's INFO lately answers
     * NOGOODSLAVE: asked again for up to 3 s. */
    for (i = 0; i < 30; i++) {
        redisReply *r = ask_port(*(int *)arg, "SENTINEL FAILOVER mymaster");
        int ok = reply_ok(r);

        if (!ok && i == 29)
            problem("SENTINEL FAILOVER: %s", r != NULL && r->str != NULL ? r->str : "no reply");
        freeReplyObject(r);
        if (ok)
            return 0;
        usleep(100000);
    }
    return -1;
}

/* 1 when a plain GET finds the cache's key `key` with value `want` on its
 * primary now: the owner of its slot as node `cluster` (> 0) maps it, or
 * the server at `one`.  A cross-check of a read the cache said was lost. */
static int
plain_has(const char *prefix, const unsigned char *key, const unsigned char *want, int cluster,
          int one)
{
    char rkey[256];
    size_t rklen = (size_t)snprintf(rkey, sizeof(rkey), "%scache", prefix) + 1;
    redisReply *r;
    int p = one, ok;

    memcpy(rkey + rklen, key, BKEY);
    rklen += BKEY;
    if (cluster > 0) {
        range_t rg[16];
        size_t nr = cluster_ranges(cluster, rg, 16);
        const range_t *v = range_of(rg, nr, (int)key_slot((unsigned char *)rkey, rklen));

        if (v == NULL)
            return 0;
        p = v->primary;
    }
    r = ask_port(p, "GET %b", rkey, rklen);
    ok = r != NULL && r->type == REDIS_REPLY_STRING && r->len >= BVAL &&
         memcmp(r->str + r->len - BVAL, want, BVAL) == 0;
    freeReplyObject(r);
    return ok;
}

/* "t - t0" as "N ms" in buf (32 bytes), or "(never)" when t is 0. */
static const char *
ms_since(uint64_t t, uint64_t t0, char *buf)
{
    if (t == 0)
        return "(never)";
    snprintf(buf, 32, "%.0f ms", (double)(t - t0) / 1e6);
    return buf;
}

/* Who names the new primary, and when it is known: the promoted node
 * itself (cluster: ROLE says master, and its slots come with it), or the
 * sentinels (they name it to clients only once they have switched). */
typedef struct promo {
    int port;          /* the replica to be promoted */
    int sentinel;      /* > 0: the sentinel asked for the master's address */
} promo_t;

static int
promo_known(const promo_t *p)
{
    redisReply *r;
    int ok;

    if (!is_primary(p->port))
        return 0;
    if (p->sentinel <= 0)
        return 1;
    r = ask_port(p->sentinel, "SENTINEL GET-MASTER-ADDR-BY-NAME mymaster");
    ok = r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
         r->element[1]->type == REDIS_REPLY_STRING && atoi(r->element[1]->str) == p->port;
    freeReplyObject(r);
    return ok;
}

/*
 * On a new cache on t (prefix base + tag + ":", sync writes, so that no
 * event inherits the state another left), the writer runs FO_WARM_MS, then
 * `trigger` sets off a failover that promotes the server pr->port; it runs
 * on until the new primary is known (promo_known), the cache has followed
 * (stats.failovers grew), and no victim put was refused for the settle
 * time (1 s, 0.5 s with --quick); 20 s at most (5 s with --quick, so
 * that a cache that never follows keeps a quick run short).  Then every
 * acknowledged key is read back with a CACHE_OP_GET call (which asks
 * Redis: the new primary, since the cache has followed).  Rows under
 * `wl`.  lossless: the event is one that must not lose an acknowledged
 * write.
 */
static void
run_failover(const char *wl, const target_t *t, const char *tag, const unsigned char *victim,
             const promo_t *pr, trigger_fn trigger, void *arg, int lossless)
{
    uint64_t settle = (quick ? 500u : 1000u) * 1000000u;
    uint64_t limit = (quick ? 5000u : 20000u) * 1000000ull;
    size_t max_retries = quick ? 100 : 500;
    cache_t *c = cache_on(t, tag, 0, 0);
    char prefix[128];
    uint64_t t_ev, t_role = 0, t_prom = 0, t_follow = 0, gap = 0, gap_start = 0, longest = 0;
    uint64_t now;
    size_t i, n, acked = 0, refused = 0, refused_other = 0, lost = 0, unsure = 0;
    size_t e_notconn = 0, e_reset = 0, e_timeout = 0, e_io = 0, e_other = 0, retries = 0;
    size_t there = 0;
    int other_rc = 0;
    char role_ms[32], follow_ms[32];
    cache_stats_t a = stats_of(c), b;
    writer_t w = { .c = c, .prefix = prefix, .victim = victim };
    int in_gap = 0;

    snprintf(prefix, sizeof(prefix), "%s%s:", base, tag);
    w.cap = (size_t)((limit + 5000000000u) / FO_PACE_NS);
    if ((w.rec = calloc(w.cap, sizeof(*w.rec))) == NULL)
        exit(1);
    if (pthread_create(&w.th, NULL, writer_main, &w) != 0)
        exit(1);
    usleep(FO_WARM_MS * 1000);
    t_ev = now_ns();
    if (trigger(arg) != 0) {
        atomic_store(&w.stop, 1);
        pthread_join(w.th, NULL);
        free(w.rec);
        stop_cache(c);
        return;
    }
    for (;;) {
        uint64_t lr = atomic_load_explicit(&w.last_refused, memory_order_relaxed);
        uint64_t lo = atomic_load_explicit(&w.last_ok, memory_order_relaxed), since;

        now = now_ns();
        if (t_role == 0 && is_primary(pr->port))
            t_role = now_ns();
        if (t_role != 0 && t_prom == 0 && promo_known(pr))
            t_prom = now_ns();
        if (t_follow == 0 && stats_of(c).failovers > a.failovers)
            t_follow = now_ns();
        since = lr > t_prom ? lr : t_prom;
        since = since > t_follow ? since : t_follow;
        if (t_prom != 0 && t_follow != 0 && lo > lr && now - since >= settle &&
            now - t_ev >= settle)
            break;
        if (now - t_ev > limit) {
            problem("%s: %s %.0f s after the event", wl,
                    t_prom == 0     ? "the new primary was not known"
                    : t_follow == 0 ? "the cache had not followed the failover"
                                    : "puts were still refused",
                    (double)limit / 1e9);
            break;
        }
        usleep(10000);
    }
    atomic_store(&w.stop, 1);
    pthread_join(w.th, NULL);
    b = stats_of(c);
    n = atomic_load(&w.n);

    /* The longest refusal: from the issue of a victim put refused after a
     * success (or first) to the return of the next accepted victim put. */
    for (i = 0; i < n; i++) {
        const wrec_t *r = &w.rec[i];

        longest = r->t1 - r->t0 > longest ? r->t1 - r->t0 : longest;
        if (r->rc == 0) {
            acked++;
            if (r->victim && in_gap) {
                gap = r->t1 - gap_start > gap ? r->t1 - gap_start : gap;
                in_gap = 0;
            }
            continue;
        }
        refused++;
        refused_other += !r->victim;
        e_notconn += r->rc == -ENOTCONN;
        e_reset += r->rc == -ECONNRESET;
        e_timeout += r->rc == -ETIMEDOUT;
        e_io += r->rc == -EIO;
        if (r->rc != -ENOTCONN && r->rc != -ECONNRESET && r->rc != -ETIMEDOUT &&
            r->rc != -EIO) {
            e_other++;
            other_rc = r->rc;
        }
        if (r->victim && !in_gap) {
            in_gap = 1;
            gap_start = r->t0;
        }
    }
    if (in_gap) {
        /* Still refused at the end: the gap counts up to the last put. */
        gap = w.rec[n - 1].t1 - gap_start > gap ? w.rec[n - 1].t1 - gap_start : gap;
        problem("%s: the last victim puts were refused", wl);
    }

    /* Every acknowledged write read back from Redis.  A transient refusal
     * of the read is asked again (10 ms apart, max_retries times in all). */
    for (i = 0; i < n; i++) {
        unsigned char key[BKEY], want[BVAL], buf[BVAL];
        size_t len = 0;
        cache_op_t op = { .kind = CACHE_OP_GET, .key = key, .key_len = BKEY, .buf = buf,
                          .cap = sizeof(buf), .out_len = &len };
        int rc;

        if (w.rec[i].rc != 0)
            continue;
        bench_make_key(key, i);
        fo_value(want, i);
        while ((rc = cache_call(c, &op, CACHE_DEFAULT_TIMEOUT)) != 0 && rc != -ENOENT &&
               retries < max_retries) {
            retries++;
            usleep(10000);
        }
        if (rc == -ENOENT || (rc == 0 && (len != BVAL || memcmp(buf, want, BVAL) != 0))) {
            lost++;
            there += plain_has(prefix, key, want, victim != NULL ? pr->port : 0, pr->port);
        } else if (rc != 0) {
            unsure++;
        }
    }
    if (unsure != 0)
        problem("%s: %zu acknowledged writes could not be read back (errors)", wl, unsure);
    if (there != 0)
        problem("%s: %zu writes the cache could not read back are on their primary, "
                "read with a plain GET", wl, there);

    bench_emit((row_t){ wl, "longest refusal", (double)gap / 1e6, "ms", "new primary known after",
                        t_prom != 0 ? (double)(t_prom - t_ev) / 1e6 : 0, "", -1 });
    bench_emit((row_t){ wl, "writes refused", (double)refused, "writes", NULL, 0, "", -1 });
    if (victim != NULL)
        bench_emit((row_t){ wl, "refused, other shards", (double)refused_other, "writes", NULL,
                            0, "", -1 });
    bench_emit((row_t){ wl, "acked, then unreadable", (double)lost, "writes", NULL, 0,
                        lossless ? "0" : "", lossless ? lost == 0 : -1 });
    bench_emit((row_t){ wl, "longest put", (double)longest / 1e6, "ms", NULL, 0, "", -1 });
    bench_emit((row_t){ wl, "failovers counted", (double)(b.failovers - a.failovers), "changes", NULL, 0,
                        ">= 1", b.failovers > a.failovers });
    note("%s: %zu puts in %.1f s (one every %u us at most), %zu acknowledged; refused: %zu "
         "ENOTCONN, %zu ECONNRESET, %zu ETIMEDOUT, %zu EIO, %zu other (last: %s); the replica said "
         "ROLE master after %s, the cache followed after %s and counted %llu "
         "redirects, %llu reconnects, %llu remote errors",
         wl, n, n > 0 ? (double)(w.rec[n - 1].t1 - w.rec[0].t0) / 1e9 : 0.0, FO_PACE_NS / 1000,
         acked, e_notconn, e_reset, e_timeout, e_io, e_other,
         e_other > 0 ? cache_strerror(other_rc) : "none", ms_since(t_role, t_ev, role_ms),
         ms_since(t_follow, t_ev, follow_ms),
         (unsigned long long)(b.redirects - a.redirects),
         (unsigned long long)(b.reconnects - a.reconnects),
         (unsigned long long)(b.remote_errors - a.remote_errors));
    free(w.rec);
    stop_cache(c);
}

/* The slots of primary p in rg[0..nr) as SLOTS flags. */
static void
victim_slots(const range_t *rg, size_t nr, int p, unsigned char *flags)
{
    size_t i;
    int s;

    memset(flags, 0, SLOTS);
    for (i = 0; i < nr; i++)
        if (rg[i].primary == p)
            for (s = rg[i].start; s <= rg[i].end && s < SLOTS; s++)
                flags[s] = 1;
}

/* The range holding `slot`, or NULL. */
static const range_t *
range_of(const range_t *rg, size_t nr, int slot)
{
    size_t i;

    for (i = 0; i < nr; i++)
        if (rg[i].start <= slot && slot <= rg[i].end)
            return &rg[i];
    return NULL;
}

static void
bench_failover(void)
{
    static unsigned char victim[SLOTS];
    unsigned char key[BKEY] = "slot-check-00000", val[BVAL];
    char prefix[128], rkey[256];
    const range_t *v;
    range_t rg[16];
    promo_t pr;
    size_t nr, i, rklen;
    redisReply *r;
    cluster_t cl;
    target_t t;
    cache_t *c;
    int rport, ok;

    if (cluster_start(&cl, 3, 1) != 0)
        return;
    t = (target_t){ .cluster = cl.seeds, .n_cluster = cl.n, .primaries = cl.primaries };
    c = cache_on(&t, "fo", 0, 0);
    snprintf(prefix, sizeof(prefix), "%sfo:", base);
    memset(victim, 0, sizeof(victim));

    /* The rows count refusals by the failing primary's slots, computed
     * here: check once that a key is where this computation says. */
    nr = cluster_ranges(cl.port[0], rg, 16);
    memset(val, 'v', sizeof(val));
    if (cache_put(c, NULL, key, BKEY, val, BVAL, BTTL) != 0 ||
        (v = range_of(rg, nr, (int)cache_key_slot(prefix, key))) == NULL) {
        problem("failover: set-up put failed, or no slot map");
        goto out;
    }
    rklen = (size_t)snprintf(rkey, sizeof(rkey), "%scache", prefix) + 1;
    memcpy(rkey + rklen, key, BKEY);
    rklen += BKEY;
    r = ask_port(v->primary, "EXISTS %b", rkey, rklen);
    ok = r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer == 1;
    freeReplyObject(r);
    if (!ok)
        problem("failover: a key is not on the primary its slot names (%u): the victim "
                "counts below are wrong", cache_key_slot(prefix, key));
    stop_cache(c);
    c = NULL;

    /* (a) CLUSTER FAILOVER on the replica of the primary of slot 0. */
    if ((v = range_of(rg, nr, 0)) == NULL || v->replica == 0) {
        problem("failover: slot 0 has no replica");
        goto out;
    }
    victim_slots(rg, nr, v->primary, victim);
    rport = v->replica;
    pr = (promo_t){ rport, 0 };
    run_failover("failover: CLUSTER FAILOVER", &t, "fa", victim, &pr, trigger_cluster_failover,
                 &rport, 1);

    /* (b) SIGKILL of the primary of slot 16383 (another shard), once
     * every replica is linked again. */
    if (cluster_wait(&cl, 20000) != 0)
        problem("failover: the cluster did not settle after CLUSTER FAILOVER");
    nr = cluster_ranges(rport, rg, 16);
    if ((v = range_of(rg, nr, SLOTS - 1)) == NULL || v->replica == 0) {
        problem("failover: slot 16383 has no replica");
        goto out;
    }
    for (i = 0; i < cl.n && cl.port[i] != v->primary; i++)
        ;
    if (i == cl.n) {
        problem("failover: the primary of slot 16383 is not ours");
        goto out;
    }
    victim_slots(rg, nr, v->primary, victim);
    pr = (promo_t){ v->replica, 0 };
    run_failover("failover: kill -9 primary", &t, "fb", victim, &pr, trigger_kill, &cl.pid[i], 0);
out:
    if (c != NULL)
        stop_cache(c);
    cluster_stop(&cl);
}

/* Wait (15 s) until every sentinel knows the other two and the replica. */
static int
sentinels_wait(const int *sp, size_t n)
{
    uint64_t end = now_ns() + 15000000000u;

    do {
        size_t i, ok = 0;

        for (i = 0; i < n; i++) {
            redisReply *r = ask_port(sp[i], "SENTINEL MASTER mymaster");
            int others = -1, slaves = -1;
            size_t j;

            for (j = 0; r != NULL && r->type == REDIS_REPLY_ARRAY && j + 1 < r->elements;
                 j += 2) {
                if (r->element[j]->type != REDIS_REPLY_STRING ||
                    r->element[j + 1]->type != REDIS_REPLY_STRING)
                    continue;
                if (strcmp(r->element[j]->str, "num-other-sentinels") == 0)
                    others = atoi(r->element[j + 1]->str);
                else if (strcmp(r->element[j]->str, "num-slaves") == 0)
                    slaves = atoi(r->element[j + 1]->str);
            }
            freeReplyObject(r);
            ok += others == (int)n - 1 && slaves == 1;
        }
        if (ok == n)
            return 0;
        usleep(100000);
    } while (now_ns() < end);
    return -1;
}

static void
bench_sentinel(void)
{
    cache_redis_node_t sn[3];
    int pport, rport, sp[3];
    promo_t pr;
    pid_t pids[5];
    size_t np = 0, i;
    target_t t;

    if (topo_ready() != 0)
        return;
    if (find_exe("redis-sentinel", sent_exe, sizeof(sent_exe)) != 0) {
        note("Sentinel rows skipped: redis-sentinel is not on PATH (Debian: apt-get install "
             "redis-sentinel)");
        return;
    }
    /* A primary, its replica, three sentinels: np counts those started. */
    if ((pids[np] = start_node(NODE_PLAIN, 0, &pport)) > 0)
        np++;
    if (np == 1 && (pids[np] = start_node(NODE_PLAIN, pport, &rport)) > 0)
        np++;
    for (i = 0; i < 3 && np == 2 + i; i++) {
        if ((pids[np] = start_node(NODE_SENTINEL, pport, &sp[i])) > 0)
            np++;
        sn[i] = (cache_redis_node_t){ "127.0.0.1", sp[i] };
    }
    if (np < 5) {
        note("Sentinel rows skipped: a server or sentinel did not start (see %s)", tmpdir);
        goto out;
    }
    for (i = 0; i < 500 && !reply_has(rport, "INFO replication", "master_link_status:up"); i++)
        usleep(20000);
    if (i == 500 || sentinels_wait(sp, 3) != 0) {
        note("Sentinel rows skipped: the replica or the sentinels were not ready in time "
             "(see %s)", tmpdir);
        goto out;
    }
    t = (target_t){ .sentinels = sn, .n_sentinels = 3, .primaries = 1 };
    pr = (promo_t){ rport, sp[1] };
    run_failover("failover: SENTINEL FAILOVER", &t, "fs", NULL, &pr, trigger_sentinel, &sp[0], 0);
out:
    while (np > 0)
        kid_stop(pids[--np]);
}

/* ------------------------------------------------------------------ */

int
main(int argc, char **argv)
{
    int i;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            quick = 1;
        } else if (strcmp(argv[i], "--json") == 0) {
            json = bench_json = 1;
        } else if (strcmp(argv[i], "--port") == 0 && i + 1 < argc && atoi(argv[i + 1]) > 0 &&
                   atoi(argv[i + 1]) < 65536) {
            port = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--no-cluster") == 0) {
            no_cluster = 1;
        } else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc && atoi(argv[i + 1]) > 0 &&
                   atoi(argv[i + 1]) <= 64) {
            threads = atoi(argv[++i]);
        } else {
            fprintf(stderr, "usage: %s [--quick] [--json] [--port N] [--no-cluster] "
                            "[--threads T]\n", argv[0]);
            return 2;
        }
    }
    if (quick)
        reps = 3;
    if (threads == 0) {
        long nc = sysconf(_SC_NPROCESSORS_ONLN);

        threads = nc < 1 ? 1 : nc > 64 ? 64 : (int)nc;
    }
    signal(SIGPIPE, SIG_IGN);
    snprintf(base, sizeof(base), "gcbench:%ld:", (long)getpid());
    if (port == 0) {
        start_server();
        atexit(stop_server);
    } else if (!ping()) {
        fprintf(stderr, "gencache_redis_bench: no Redis answering PING at 127.0.0.1:%d\n",
                port);
        return 1;
    }
    if (!json) {
        printf("gencache %s Redis backend benchmark (%s: medians of %d runs; redis-server "
               "on 127.0.0.1:%d%s)\n\n",
               gencache_version_string(), quick ? "quick" : "full", reps, port,
               server_pid > 0 ? ", started here" : "");
        printf("| %-30s | %-22s | %21s | %-33s | %7s | %-30s |\n", "workload", "figure", "value",
               "baseline (same process)", "ratio", "target");
        printf("|%s|%s|%s|%s|%s|%s|\n", "--------------------------------",
               "------------------------", "-----------------------",
               "-----------------------------------", "---------",
               "--------------------------------");
    }
    bench_near();
    bench_sync();
    bench_pipeline();
    bench_inval();
    if (no_cluster) {
        note("Cluster and Sentinel rows skipped (--no-cluster)");
    } else {
        uint64_t t0 = now_ns();

        bench_scale();
        bench_failover();
        bench_sentinel();
        if (topo_ready() == 0)
            note("workloads 6 and 7 (cluster, failover) took %.0f s",
                 (double)(now_ns() - t0) / 1e9);
    }
    if (!json && notes_len > 0)
        printf("\n%s", notes);
    if (problems != 0) {
        fprintf(stderr, "gencache_redis_bench: %d check(s) failed, see the warnings above\n",
                problems);
        return 1;
    }
    return 0;
}

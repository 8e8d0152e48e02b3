/*
 * gencache_redis_bench: the Redis backend of a cache against a local cache
 * and against a plain hiredis client doing the same work, all in the same
 * process and against the same redis-server, so that every figure comes
 * with a ratio that holds on a noisy machine.
 *
 *   gencache_redis_bench [--quick] [--json] [--port N]
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
 *
 * Each figure of workloads 1-4 is the median of several repetitions (5, or
 * 3 with --quick, which also uses smaller counts: 1M instead of 4M gets,
 * 5k instead of 20k round trips, N = 20k instead of 200k, 200 instead of
 * 1000 rounds); workload 5 reports percentiles over its rounds.  --json prints one JSON object per figure
 * and line instead of the table.  A failed check (a wrong value, an error,
 * remote reads during the near-cache loop) is reported on stderr and makes
 * the exit status 1.  See docs/benchmarks.md ("Redis backend").
 */
#define _GNU_SOURCE
#include <gencache/gencache.h>

#include "baselines.h"
#include "bench_util.h"

#include <hiredis/hiredis.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
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

static cache_t *
redis_cache(const char *tag, int async_writes, int no_near)
{
    char pfx[128];
    cache_redis_opts_t ro = { .host = "127.0.0.1", .port = port, .prefix = pfx,
                              .no_near_cache = no_near };
    cache_opts_t o = { .async_writes = async_writes, .redis = &ro };
    cache_stats_t st;
    cache_t *c;
    int rc, i;

    snprintf(pfx, sizeof(pfx), "%s%s:", base, tag);
    if ((rc = cache_start(&o, &c)) != 0) {
        fprintf(stderr, "gencache_redis_bench: cache_start: %s\n", cache_strerror(rc));
        exit(1);
    }
    for (i = 0; i < 500; i++) {
        if (cache_stats(c, &st) == 0 && st.connected)
            return c;
        usleep(10000);
    }
    fprintf(stderr, "gencache_redis_bench: the Redis cache did not connect\n");
    exit(1);
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
        } else {
            fprintf(stderr, "usage: %s [--quick] [--json] [--port N]\n", argv[0]);
            return 2;
        }
    }
    if (quick)
        reps = 3;
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
    if (problems != 0) {
        fprintf(stderr, "gencache_redis_bench: %d check(s) failed, see the warnings above\n",
                problems);
        return 1;
    }
    return 0;
}

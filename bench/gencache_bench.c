/*
 * gencache_bench: gencache against baselines and peers run in the same
 * process, so every figure comes with a ratio that holds on a noisy machine.
 *
 *   gencache_bench [--quick] [--json] [--threads N]
 *
 * Systems: gencache (cache_get read directly; writes by cache_put on a cache
 * without async_writes, a call, or by cache_cast); the unsynchronised
 * baseline map and the ping-pong floor (baselines.h); and the peers a C
 * engineer would pick instead (peers.h: liburcu's cds_lfht in the qsbr and
 * memb flavours, GLib's GHashTable behind a GRWLock and behind a GMutex).
 * Every workload runs against every system in the same run; a peer whose
 * library was missing at build time prints "peer not built".
 *
 * Each figure is the median of 5 repetitions (3 with --quick).  --quick
 * uses 200k keys where the full run uses 1M (the workload names say which)
 * and fewer operations, and finishes in under a minute on 2 cores.  Read
 * workloads run with 1, 2, 4, ... threads up to the number of online CPUs
 * (--threads N caps it); mixed workloads with 2 threads (or N).  --json
 * prints one JSON object per row.  See docs/benchmarks.md.
 */
#define _GNU_SOURCE
#include <gencache/gencache.h>

#include "baselines.h"
#include "bench_util.h"
#include "peers.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int quick, json;
static int reps = 5;
static int times;            /* GENCACHE_BENCH_TIMES set: section times on stderr */
static int max_threads;      /* read workloads: 1, 2, 4, ... up to this */
static int mix_threads = 2;  /* mixed workloads */

/* Filled by bench_latency, baselines of later rows. */
static double call_p99_ns, call_p999_ns;
/* Filled by bench_bulk: how long casting `big` keys takes, to plan the
 * expiry workload's deadlines. */
static double cast_load_s = 1.0;

/* ------------------------------------------------------------------ */
/* Systems under test                                                   */

typedef enum {
    SYS_CACHE_SYNC,     /* cache_get; puts by cache_put (a call) */
    SYS_CACHE_ASYNC,    /* cache_get; puts by cache_cast, cache_sync at the end */
    SYS_UNSYNC,         /* the baseline map, one thread only */
    SYS_PEER,
} sys_kind_t;

typedef struct sys {
    sys_kind_t kind;
    cache_t *c;
    bmap_t *m;
    peer_t *p;
} sys_t;

typedef struct job {
    const sys_t *s;
    const unsigned char *keys;
    const uint32_t *order;
    size_t n;                /* keys */
    size_t start;            /* this thread's first index in order */
    size_t ops;
    int put_pct;             /* % of operations that are puts */
    pthread_barrier_t *bar;
    uint64_t ns;
} job_t;

static void *
job_main(void *arg)
{
    job_t *j = arg;
    const sys_t *s = j->s;
    unsigned char val[BVAL];
    cache_op_t put = { .kind = CACHE_OP_PUT, .key_len = BKEY, .value = val, .value_len = BVAL,
                       .ttl_ms = CACHE_TTL_NONE };
    size_t i, len;
    unsigned seed = (unsigned)(uintptr_t)arg;
    uint64_t t0;
    volatile int sink = 0;

    memset(val, 'v', sizeof(val));
    if (s->kind == SYS_PEER)
        peer_thread_register(s->p);
    pthread_barrier_wait(j->bar);
    t0 = now_ns();
    for (i = 0; i < j->ops; i++) {
        const unsigned char *k = j->keys + (size_t)j->order[(j->start + i) % j->n] * BKEY;
        int w = 0;

        if (j->put_pct) {
            seed = seed * 1103515245u + 12345u;
            w = (int)((seed >> 16) % 100) < j->put_pct;
        }
        switch (s->kind) {
        case SYS_CACHE_SYNC:
            sink += w ? cache_put(s->c, NULL, k, BKEY, val, BVAL, CACHE_TTL_NONE)
                      : cache_get(s->c, NULL, k, BKEY, val, BVAL, &len);
            break;
        case SYS_CACHE_ASYNC:
            if (w) {
                put.key = k;
                while (cache_cast(s->c, &put) == -EAGAIN)
                    ;
            } else {
                sink += cache_get(s->c, NULL, k, BKEY, val, BVAL, &len);
            }
            break;
        case SYS_UNSYNC:
            sink += w ? bmap_put(s->m, k, val) : bmap_get(s->m, k, val);
            break;
        case SYS_PEER:
            sink += w ? peer_put(s->p, k, val) : peer_get(s->p, k, val);
            if (i % PEER_QUIESCE_EVERY == 0)
                peer_quiescent(s->p);
            break;
        }
    }
    /* Async writes count once the worker has applied them. */
    if (s->kind == SYS_CACHE_ASYNC)
        cache_sync(s->c, ACTOR_INFINITY);
    j->ns = now_ns() - t0;
    if (s->kind == SYS_PEER)
        peer_thread_unregister(s->p);
    (void)sink;
    return NULL;
}

/* Operations per second of `threads` threads each doing `ops` operations
 * (the slowest thread's time), median of reps. */
static double
run_jobs(const sys_t *s, const unsigned char *keys, const uint32_t *order, size_t n, size_t ops,
         int threads, int put_pct)
{
    pthread_t *th = calloc((size_t)threads, sizeof(*th));
    job_t *j = calloc((size_t)threads, sizeof(*j));
    double v[16];
    int rep, t;

    for (rep = 0; rep < reps; rep++) {
        pthread_barrier_t bar;
        uint64_t maxns = 0;

        pthread_barrier_init(&bar, NULL, (unsigned)threads);
        for (t = 0; t < threads; t++) {
            j[t] = (job_t){ s, keys, order, n, (size_t)t * 7919 % n, ops, put_pct, &bar, 0 };
            pthread_create(&th[t], NULL, job_main, &j[t]);
        }
        for (t = 0; t < threads; t++) {
            pthread_join(th[t], NULL);
            if (j[t].ns > maxns)
                maxns = j[t].ns;
        }
        pthread_barrier_destroy(&bar);
        v[rep] = (double)ops * threads / ((double)maxns / 1e9);
    }
    free(th);
    free(j);
    return bench_median(v, reps);
}

/* Resident set size of this process in bytes (/proc/self/statm). */
static double
rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, res = 0;

    if (f != NULL) {
        if (fscanf(f, "%lu %lu", &size, &res) != 2)
            res = 0;
        fclose(f);
    }
    return (double)res * (double)sysconf(_SC_PAGESIZE);
}

/* A cache without async_writes holding keys[0..n), loaded by casts. */
static cache_t *
filled_cache(const unsigned char *keys, size_t n)
{
    unsigned char val[BVAL];
    cache_op_t op = { .kind = CACHE_OP_PUT, .key_len = BKEY, .value = val,
                      .value_len = BVAL, .ttl_ms = CACHE_TTL_NONE };
    cache_t *c;
    size_t i;

    memset(val, 'v', sizeof(val));
    if (cache_start(NULL, &c) != 0)
        exit(1);
    for (i = 0; i < n; i++) {
        op.key = keys + i * BKEY;
        while (cache_cast(c, &op) == -EAGAIN)
            ;
    }
    cache_sync(c, ACTOR_INFINITY);
    return c;
}

/* A peer holding keys[0..n) (NULL when not built). */
static peer_t *
filled_peer(peer_kind_t k, const unsigned char *keys, size_t n)
{
    unsigned char val[BVAL];
    peer_t *p;
    size_t i;

    if (peer_new(k, n, &p) != 0)
        return NULL;
    memset(val, 'v', sizeof(val));
    peer_thread_register(p);
    for (i = 0; i < n; i++) {
        peer_put(p, keys + i * BKEY, val);
        if (i % PEER_QUIESCE_EVERY == 0)
            peer_quiescent(p);
    }
    peer_thread_unregister(p);
    return p;
}

/* One row of gencache's figure against peer k's (higher is better for
 * "x >= r" targets; target_ratio 0: no target). */
static void
emit_vs_peer(const char *wl, const char *fig, double value, const char *unit, peer_kind_t k,
             double peer_value, const char *thr, double target_ratio, int lower_is_better)
{
    char base[64], target[64];
    int met = -1;

    if (!peer_built(k)) {
        snprintf(base, sizeof(base), "%s: peer not built", peer_name(k));
        peer_value = 0;
    } else {
        snprintf(base, sizeof(base), "%s%s%s", peer_name(k), thr[0] ? " " : "", thr);
    }
    target[0] = '\0';
    if (target_ratio > 0) {
        snprintf(target, sizeof(target), "%s %.1fx %s", lower_is_better ? "<=" : ">=", target_ratio,
                 peer_name(k));
        if (!peer_built(k))
            met = BENCH_UNMEASURED;
        else if (lower_is_better)
            met = value <= target_ratio * peer_value;
        else
            met = value >= target_ratio * peer_value;
    }
    bench_emit((row_t){ wl, fig, value, unit, base, peer_value, target, met });
}

/* ------------------------------------------------------------------ */
/* Reads and mixed reads/writes                                         */

static size_t
read_ops(void)
{
    return quick ? 200000 : 2000000;
}

/* Get hit at 10k keys, 1 thread, against the unsynchronised map. */
static void
bench_get_small(void)
{
    size_t n = 10000, i;
    unsigned char *keys = bench_make_keys(n), val[BVAL];
    uint32_t *order = bench_make_order(n, 42);
    bmap_t m;
    sys_t sc = { SYS_CACHE_SYNC, NULL, NULL, NULL }, su = { SYS_UNSYNC, NULL, &m, NULL };
    double g, u;

    memset(val, 'v', sizeof(val));
    bmap_init(&m, n);
    for (i = 0; i < n; i++)
        bmap_put(&m, keys + i * BKEY, val);
    sc.c = filled_cache(keys, n);
    u = run_jobs(&su, keys, order, n, read_ops() * 2, 1, 0);
    g = run_jobs(&sc, keys, order, n, read_ops() * 2, 1, 0);
    bench_emit((row_t){ "get hit, 10k keys", "1 thread", g / 1e6, "Mops/s", "unsync map 1 thr",
                        u / 1e6, ">= 0.7x unsync map", g >= 0.7 * u });
    cache_stop(sc.c, ACTOR_INFINITY);
    cache_release(sc.c);
    bmap_fini(&m);
    free(keys);
    free(order);
}

/* Target ratio of gencache's gets over peer k's at 1 and 2 threads. */
static double
get_target(peer_kind_t k, int threads)
{
    if (threads > 2)
        return 0;
    return k == PEER_URCU_QSBR ? 1.2 : k == PEER_GLIB_RW ? 1.5 : 0;
}

static void
bench_mixed(const sys_t *sc, peer_t *const *peers, const unsigned char *keys,
            const uint32_t *order, size_t n, int put_pct)
{
    /* Sync writes are calls (microseconds each, far more on a loaded
     * machine): a quarter of the operations (an eighth with --quick), so
     * that 50/50 stays within the quick budget. */
    size_t ops = quick ? 100000 : 1000000;
    sys_t sa = *sc;
    double vs, va, vp[PEER_COUNT] = { 0 };
    char wl[64], fig[32], thr[16];
    int k;

    sa.kind = SYS_CACHE_ASYNC;
    va = run_jobs(&sa, keys, order, n, ops, mix_threads, put_pct);
    vs = run_jobs(sc, keys, order, n, ops / (quick ? 8 : 4), mix_threads, put_pct);
    for (k = 0; k < PEER_COUNT; k++)
        if (peers[k] != NULL) {
            sys_t sp = { SYS_PEER, NULL, NULL, peers[k] };

            vp[k] = run_jobs(&sp, keys, order, n, ops, mix_threads, put_pct);
        }
    snprintf(wl, sizeof(wl), "%d/%d get/put, %zuk keys", 100 - put_pct, put_pct, n / 1000);
    snprintf(thr, sizeof(thr), "%d thr", mix_threads);
    snprintf(fig, sizeof(fig), "async (cast), %d thr", mix_threads);
    for (k = 0; k < PEER_COUNT; k++)
        emit_vs_peer(wl, fig, va / 1e6, "Mops/s", (peer_kind_t)k, vp[k] / 1e6, thr,
                     k == PEER_URCU_QSBR ? 1.0 : 0, 0);
    snprintf(fig, sizeof(fig), "sync (call), %d thr", mix_threads);
    for (k = 0; k < PEER_COUNT; k++)
        emit_vs_peer(wl, fig, vs / 1e6, "Mops/s", (peer_kind_t)k, vp[k] / 1e6, thr,
                     k == PEER_GLIB_RW ? 0.7 : 0, 0);
}

/*
 * Get hit at n keys with 1, 2, 4, ... threads, gencache against every
 * peer; with `mixed`, also the 90/10 and 50/50 workloads on the same
 * tables.  The scaling file (bench/plot.sh) gets one line per thread count.
 */
static void
bench_gets(size_t n, int mixed)
{
    unsigned char *keys = bench_make_keys(n);
    uint32_t *order = bench_make_order(n, 42);
    peer_t *peers[PEER_COUNT];
    sys_t sc = { SYS_CACHE_SYNC, NULL, NULL, NULL };
    FILE *scaling = NULL;
    char wl[64], fig[32], thr[16];
    int k, t;

    sc.c = filled_cache(keys, n);
    for (k = 0; k < PEER_COUNT; k++)
        peers[k] = filled_peer((peer_kind_t)k, keys, n);
    if (mixed && getenv("GENCACHE_BENCH_SCALING_FILE") != NULL)
        scaling = fopen(getenv("GENCACHE_BENCH_SCALING_FILE"), "w");

    snprintf(wl, sizeof(wl), "get hit, %zuk keys", n / 1000);
    for (t = 1; t <= max_threads; t = t * 2 > max_threads && t < max_threads ? max_threads : t * 2) {
        double g = run_jobs(&sc, keys, order, n, read_ops(), t, 0), vp[PEER_COUNT] = { 0 };

        for (k = 0; k < PEER_COUNT; k++)
            if (peers[k] != NULL) {
                sys_t sp = { SYS_PEER, NULL, NULL, peers[k] };

                vp[k] = run_jobs(&sp, keys, order, n, read_ops(), t, 0);
            }
        snprintf(fig, sizeof(fig), "%d thread%s", t, t > 1 ? "s" : "");
        snprintf(thr, sizeof(thr), "%d thr", t);
        for (k = 0; k < PEER_COUNT; k++)
            emit_vs_peer(wl, fig, g / 1e6, "Mops/s", (peer_kind_t)k, vp[k] / 1e6, thr,
                         get_target((peer_kind_t)k, t), 0);
        if (scaling != NULL) {
            fprintf(scaling, "%d %.3f", t, g / 1e6);
            for (k = 0; k < PEER_COUNT; k++)
                fprintf(scaling, " %.3f", vp[k] / 1e6);
            fprintf(scaling, "\n");
        }
    }
    if (scaling != NULL)
        fclose(scaling);

    if (mixed) {
        bench_mixed(&sc, peers, keys, order, n, 10);
        bench_mixed(&sc, peers, keys, order, n, 50);
    }

    cache_stop(sc.c, ACTOR_INFINITY);
    cache_release(sc.c);
    for (k = 0; k < PEER_COUNT; k++)
        if (peers[k] != NULL)
            peer_free(peers[k]);
    free(keys);
    free(order);
}

/* ------------------------------------------------------------------ */
/* Bulk load, memory, and sync put latency while the table grows       */

/* Median over reps of each rep's p-quantile: lat[rep] sorted, n each. */
static double
median_pct(uint64_t **lat, size_t n, double p)
{
    double v[16];
    int rep;

    for (rep = 0; rep < reps; rep++)
        v[rep] = (double)bench_pct(lat[rep], n, p);
    return bench_median(v, reps);
}

/*
 * Load n fresh keys into an empty table, one thread:
 *   - gencache by casts, then one cache_sync (in the time);
 *   - gencache by casts in chunks of 1000 + cache_sync, untimed, with the
 *     RSS measured before and after (memory per entry);
 *   - gencache by cache_put on a cache without async_writes (calls), each
 *     put timed (latency while the table grows); 50k keys with --quick;
 *   - each peer by its insert, timed, with its RSS measured as gencache's.
 * RSS: /proc/self/statm before and after the load, after malloc_trim(0)
 * so that memory freed by the previous repetition is not reused for free;
 * the delta divided by n, minus the 80 bytes of key and value.
 */
static void
bench_bulk(size_t n)
{
    unsigned char *keys = bench_make_keys(n), val[BVAL];
    cache_op_t op = { .kind = CACHE_OP_PUT, .key_len = BKEY, .value = val, .value_len = BVAL,
                      .ttl_ms = CACHE_TTL_NONE };
    double vcast[16], vsync[16], vmem[16], pr[PEER_COUNT][16], pm[PEER_COUNT][16];
    double cast_rate, sync_rate, mem, prate[PEER_COUNT] = { 0 }, pmem[PEER_COUNT] = { 0 };
    uint64_t *lat[16];
    /* Sync puts are calls (microseconds each, far more on a loaded
     * machine): --quick loads 50k keys that way to stay within a minute. */
    size_t ns = quick && n > 50000 ? 50000 : n, i;
    int rep, k;
    char wl[64], fig[48];

    memset(val, 'v', sizeof(val));
    for (rep = 0; rep < reps; rep++) {
        cache_t *c;
        uint64_t t0;
        double r0;

        if (cache_start(NULL, &c) != 0)
            exit(1);
        t0 = now_ns();
        for (i = 0; i < n; i++) {
            op.key = keys + i * BKEY;
            while (cache_cast(c, &op) == -EAGAIN)
                ;
        }
        cache_sync(c, ACTOR_INFINITY);
        vcast[rep] = (double)n / ((double)(now_ns() - t0) / 1e9);
        cache_stop(c, ACTOR_INFINITY);
        cache_release(c);

        /* Memory: the same keys cast in chunks of 1000, each followed by
         * cache_sync, so that no backlog of cast messages (freed but
         * still resident) is counted.  First let the stopped worker finish
         * freeing. */
        usleep(100000);
        malloc_trim(0);
        if (cache_start(NULL, &c) != 0)
            exit(1);
        r0 = rss_bytes();
        for (i = 0; i < n; i++) {
            op.key = keys + i * BKEY;
            while (cache_cast(c, &op) == -EAGAIN)
                ;
            if (i % 1000 == 999)
                cache_sync(c, ACTOR_INFINITY);
        }
        cache_sync(c, ACTOR_INFINITY);
        vmem[rep] = (rss_bytes() - r0) / (double)n - (BKEY + BVAL);
        cache_stop(c, ACTOR_INFINITY);
        cache_release(c);

        /* Sync puts, each timed, into a growing table. */
        if (cache_start(NULL, &c) != 0)
            exit(1);
        lat[rep] = malloc(ns * sizeof(**lat));
        t0 = now_ns();
        for (i = 0; i < ns; i++) {
            uint64_t t1 = now_ns();

            cache_put(c, NULL, keys + i * BKEY, BKEY, val, BVAL, CACHE_TTL_NONE);
            lat[rep][i] = now_ns() - t1;
        }
        vsync[rep] = (double)ns / ((double)(now_ns() - t0) / 1e9);
        qsort(lat[rep], ns, sizeof(**lat), bench_cmp_u64);
        cache_stop(c, ACTOR_INFINITY);
        cache_release(c);

        for (k = 0; k < PEER_COUNT; k++) {
            peer_t *p;

            usleep(20000);
            malloc_trim(0);
            if (peer_new((peer_kind_t)k, 0, &p) != 0)
                continue;
            peer_thread_register(p);
            r0 = rss_bytes();
            t0 = now_ns();
            for (i = 0; i < n; i++) {
                peer_put(p, keys + i * BKEY, val);
                if (i % PEER_QUIESCE_EVERY == 0)
                    peer_quiescent(p);
            }
            pr[k][rep] = (double)n / ((double)(now_ns() - t0) / 1e9);
            pm[k][rep] = (rss_bytes() - r0) / (double)n - (BKEY + BVAL);
            peer_thread_unregister(p);
            peer_free(p);
        }
    }
    cast_rate = bench_median(vcast, reps);
    sync_rate = bench_median(vsync, reps);
    mem = bench_median(vmem, reps);
    cast_load_s = (double)n / cast_rate;
    for (k = 0; k < PEER_COUNT; k++)
        if (peer_built((peer_kind_t)k)) {
            prate[k] = bench_median(pr[k], reps);
            pmem[k] = bench_median(pm[k], reps);
        }

    snprintf(wl, sizeof(wl), "bulk load, %zuk fresh keys", n / 1000);
    for (k = 0; k < PEER_COUNT; k++)
        emit_vs_peer(wl, "casts + cache_sync", cast_rate / 1e6, "Mops/s", (peer_kind_t)k,
                     prate[k] / 1e6, "insert", k <= PEER_URCU_MEMB ? 1.0 : 0, 0);
    snprintf(fig, sizeof(fig), "sync puts, %zuk keys", ns / 1000);
    for (k = 0; k < PEER_COUNT; k++)
        emit_vs_peer(wl, fig, sync_rate / 1e6, "Mops/s", (peer_kind_t)k,
                     prate[k] / 1e6, "insert", k <= PEER_URCU_MEMB ? 0.5 : 0, 0);

    snprintf(wl, sizeof(wl), "memory (RSS), %zuk keys", n / 1000);
    bench_emit((row_t){ wl, "gencache B/entry", mem, "B", NULL, 0, "<= 40 B beyond key+value",
                        mem <= 40 });
    for (k = 0; k < PEER_COUNT; k++)
        emit_vs_peer(wl, "gencache B/entry", mem, "B", (peer_kind_t)k, pmem[k], "B/entry", 0, 1);

    snprintf(wl, sizeof(wl), "sync put, growing to %zuk", ns / 1000);
    bench_emit((row_t){ wl, "p99", median_pct(lat, ns, 0.99) / 1e3, "us", "empty call p99",
                        call_p99_ns / 1e3, "", -1 });
    bench_emit((row_t){ wl, "p99.9", median_pct(lat, ns, 0.999) / 1e3, "us", "empty call p99.9",
                        call_p999_ns / 1e3, "<= 1000 us", median_pct(lat, ns, 0.999) <= 1e6 });
    bench_emit((row_t){ wl, "max", median_pct(lat, ns, 1.0) / 1e3, "us", NULL, 0, "", -1 });
    for (rep = 0; rep < reps; rep++)
        free(lat[rep]);
    free(keys);
}

/* ------------------------------------------------------------------ */
/* Calls: put by call against an empty call, round-trip latency         */

static void
bench_calls(void)
{
    size_t n = quick ? 20000 : 200000, i;
    unsigned char *keys = bench_make_keys(n), val[BVAL];
    cache_op_t sync = { .kind = CACHE_OP_SYNC };
    double vput[16], vsync[16], put_rate, sync_rate;
    int rep;

    memset(val, 'v', sizeof(val));
    for (rep = 0; rep < reps; rep++) {
        cache_t *c;
        uint64_t t0;

        if (cache_start(NULL, &c) != 0)
            exit(1);
        for (i = 0; i < 1000; i++)   /* warm up: the worker's first wake-ups */
            cache_call(c, &sync, ACTOR_INFINITY);
        t0 = now_ns();
        for (i = 0; i < n; i++)
            cache_call(c, &sync, ACTOR_INFINITY);
        vsync[rep] = (double)n / ((double)(now_ns() - t0) / 1e9);
        t0 = now_ns();
        for (i = 0; i < n; i++)
            cache_put(c, NULL, keys + i * BKEY, BKEY, val, BVAL, CACHE_TTL_NONE);
        vput[rep] = (double)n / ((double)(now_ns() - t0) / 1e9);
        cache_stop(c, ACTOR_INFINITY);
        cache_release(c);
    }
    put_rate = bench_median(vput, reps);
    sync_rate = bench_median(vsync, reps);
    bench_emit((row_t){ "put by call (sync), fresh keys", "1 thread", put_rate / 1e6, "Mops/s",
                        "empty call (OP_SYNC)", sync_rate / 1e6, ">= 0.8x empty calls",
                        put_rate >= 0.8 * sync_rate });
    free(keys);
}

static void
bench_latency(void)
{
    size_t n = quick ? 20000 : 200000, i;
    uint64_t *lat[16], *pl[16];
    cache_op_t op = { .kind = CACHE_OP_SYNC };
    double c50, c99, c999, p50, p99, p999;
    int rep;
    FILE *f = NULL;

    pingpong(n / 10, NULL);  /* warm up */
    for (rep = 0; rep < reps; rep++) {
        cache_t *c;

        lat[rep] = malloc(n * sizeof(**lat));
        pl[rep] = malloc(n * sizeof(**pl));
        pingpong(n, pl[rep]);
        qsort(pl[rep], n, sizeof(**pl), bench_cmp_u64);
        if (cache_start(NULL, &c) != 0)
            exit(1);
        for (i = 0; i < n / 10; i++)
            cache_call(c, &op, ACTOR_INFINITY);
        for (i = 0; i < n; i++) {
            uint64_t t0 = now_ns();

            cache_call(c, &op, ACTOR_INFINITY);
            lat[rep][i] = now_ns() - t0;
        }
        cache_stop(c, ACTOR_INFINITY);
        cache_release(c);
        qsort(lat[rep], n, sizeof(**lat), bench_cmp_u64);
    }
    c50 = median_pct(lat, n, 0.5);
    c99 = median_pct(lat, n, 0.99);
    c999 = median_pct(lat, n, 0.999);
    p50 = median_pct(pl, n, 0.5);
    p99 = median_pct(pl, n, 0.99);
    p999 = median_pct(pl, n, 0.999);
    call_p99_ns = c99;
    call_p999_ns = c999;
    bench_emit((row_t){ "call round trip (OP_SYNC)", "p50", c50, "ns", "ping-pong p50", p50,
                        "<= 2x ping-pong", c50 <= 2 * p50 });
    bench_emit((row_t){ "call round trip (OP_SYNC)", "p99", c99, "ns", "ping-pong p99", p99,
                        "<= 5x ping-pong", c99 <= 5 * p99 });
    bench_emit((row_t){ "call round trip (OP_SYNC)", "p99.9", c999, "ns", "ping-pong p99.9", p999,
                        "", -1 });

    /* The last repetition's distribution for the chart (bench/plot.sh). */
    if (getenv("GENCACHE_BENCH_LATENCY_FILE") != NULL)
        f = fopen(getenv("GENCACHE_BENCH_LATENCY_FILE"), "w");
    if (f != NULL) {
        for (i = 0; i < 1000; i++)
            fprintf(f, "%.4f %llu %llu\n", (double)i / 1000.0,
                    (unsigned long long)bench_pct(lat[reps - 1], n, (double)i / 1000.0),
                    (unsigned long long)bench_pct(pl[reps - 1], n, (double)i / 1000.0));
        fclose(f);
    }
    for (rep = 0; rep < reps; rep++) {
        free(lat[rep]);
        free(pl[rep]);
    }
}

/* ------------------------------------------------------------------ */
/* A call while many keys expire                                        */

static uint64_t
entries_of(cache_t *c)
{
    cache_stats_t st;

    cache_stats(c, &st);
    return st.entries;
}

/*
 * n keys whose deadlines are spread evenly over one second [D, D + 1 s),
 * D chosen after the load ends (twice the measured cast load time plus
 * 200 ms).  Each key's TTL is computed from the clock just before its cast
 * and rounded up, and the worker starts the TTL when it applies the cast,
 * so every real deadline is at or after the planned one: measuring from
 * the planned last deadline, D + 1 s, overstates the delay, never hides
 * it.  The loading is in chunks of 1000 casts, each followed by
 * cache_sync, so that no backlog skews the deadlines.  Then the main
 * thread calls CACHE_OP_SYNC in a loop, timing each call that starts at or
 * after D, until stats.entries is 0 (checked every 64 calls).
 */
static void
bench_expiry(size_t n)
{
    unsigned char *keys = bench_make_keys(n), val[BVAL];
    cache_op_t put = { .kind = CACHE_OP_PUT, .key_len = BKEY, .value = val, .value_len = BVAL };
    cache_op_t sync = { .kind = CACHE_OP_SYNC };
    size_t cap = (size_t)8 << 20, i;
    uint64_t *lat = malloc(cap * sizeof(*lat));
    double v99[16], vgone[16];
    int rep;
    char wl[64];

    memset(val, 'v', sizeof(val));
    for (rep = 0; rep < reps; rep++) {
        cache_t *c;
        uint64_t d0, last, t_empty = 0, limit;
        size_t nl = 0, calls = 0;

        if (cache_start(NULL, &c) != 0)
            exit(1);
        d0 = now_ns() + (uint64_t)(2 * cast_load_s * 1e9) + 200000000ull;
        last = d0 + 1000000000ull;
        limit = last + 10000000000ull;   /* give up 10 s after the last deadline */
        for (i = 0; i < n; i++) {
            uint64_t due = d0 + (uint64_t)((double)i * 1e9 / (double)n), now = now_ns();

            put.key = keys + i * BKEY;
            put.ttl_ms = due > now ? (int64_t)((due - now + 999999) / 1000000) : 1;
            while (cache_cast(c, &put) == -EAGAIN)
                ;
            if (i % 1000 == 999)
                cache_sync(c, ACTOR_INFINITY);
        }
        cache_sync(c, ACTOR_INFINITY);
        for (;;) {
            uint64_t t0 = now_ns();

            cache_call(c, &sync, ACTOR_INFINITY);
            if (t0 >= d0 && nl < cap)
                lat[nl++] = now_ns() - t0;
            if (++calls % 64 == 0 && entries_of(c) == 0) {
                t_empty = now_ns();
                break;
            }
            if (t0 > limit) {
                t_empty = t0;
                break;
            }
        }
        qsort(lat, nl, sizeof(*lat), bench_cmp_u64);
        v99[rep] = nl ? (double)bench_pct(lat, nl, 0.99) : 0;
        vgone[rep] = t_empty > last ? (double)(t_empty - last) / 1e6 : 0;
        cache_stop(c, ACTOR_INFINITY);
        cache_release(c);
    }
    snprintf(wl, sizeof(wl), "call while %zuk keys expire", n / 1000);
    bench_emit((row_t){ wl, "p99", bench_median(v99, reps) / 1e3, "us", "idle call p99",
                        call_p99_ns / 1e3, "<= 1000 us", bench_median(v99, reps) <= 1e6 });
    bench_emit((row_t){ wl, "deadline to 0 entries", bench_median(vgone, reps), "ms", NULL, 0,
                        "<= 2000 ms", bench_median(vgone, reps) <= 2000 });
    free(lat);
    free(keys);
}

/* ------------------------------------------------------------------ */
/* Restart and idle                                                     */

static void
quiet(void *ctx, const sup_report_t *r)
{
    (void)ctx;
    (void)r;
}

static void
bench_restart(void)
{
    size_t n = quick ? 100 : 300, i;
    uint64_t *lat = malloc(n * sizeof(*lat));
    cache_opts_t co = { .keep_data = 1 };
    sup_flags_t flags = { SUP_ONE_FOR_ONE, 1000000, 1000 };
    sup_opts_t so = { .log = quiet };
    sup_child_spec_t spec;
    cache_op_t sync = { .kind = CACHE_OP_SYNC };
    actor_t *sup;
    cache_t *c;

    cache_new(&co, &c);
    spec = (sup_child_spec_t){ .id = "c", .start = cache_child_start, .arg = c };
    if (sup_start(&flags, &spec, 1, &so, &sup, NULL) != 0)
        exit(1);
    for (i = 0; i < n; i++) {
        actor_t *w;
        uint64_t t0;

        while ((w = cache_worker(c)) == NULL)
            usleep(10);
        cache_call(c, &sync, ACTOR_INFINITY);  /* idle, between messages */
        t0 = now_ns();
        actor_exit(w, ACTOR_KILLED);
        actor_release(w);
        while (cache_call(c, &sync, 1000) != 0)
            ;
        lat[i] = now_ns() - t0;
    }
    qsort(lat, n, sizeof(*lat), bench_cmp_u64);
    bench_emit((row_t){ "restart (kill to answering)", "p50", (double)bench_pct(lat, n, 0.5) / 1e3, "us",
                        NULL, 0, "", -1 });
    bench_emit((row_t){ "restart (kill to answering)", "p99", (double)bench_pct(lat, n, 0.99) / 1e3, "us",
                        NULL, 0, "<= 1000 us", bench_pct(lat, n, 0.99) <= 1000000 });
    actor_stop(sup, ACTOR_SHUTDOWN, ACTOR_INFINITY);
    actor_release(sup);
    cache_stop(c, ACTOR_INFINITY);
    cache_release(c);
    free(lat);
}

static double
cpu_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
bench_idle(void)
{
    cache_t *c;
    double c0, used;

    cache_start(NULL, &c);
    cache_put(c, NULL, "k", 1, "v", 1, CACHE_TTL_NONE);
    usleep(50000);
    c0 = cpu_s();
    sleep(1);
    used = cpu_s() - c0;
    bench_emit((row_t){ "idle cache", "CPU over 1 s", used * 100, "% core", NULL, 0, "< 1% of a core",
                        used < 0.01 });
    cache_stop(c, ACTOR_INFINITY);
    cache_release(c);
}

/* ------------------------------------------------------------------ */

static void
section(const char *name, void (*fn)(size_t), size_t n)
{
    uint64_t t0 = now_ns();
    const char *only = getenv("GENCACHE_BENCH_ONLY");

    /* GENCACHE_BENCH_ONLY=name runs one section (for profiling it). */
    if (only != NULL && strcmp(only, name) != 0)
        return;
    fn(n);
    if (times)
        fprintf(stderr, "[%s: %.1f s]\n", name, (double)(now_ns() - t0) / 1e9);
}

static void
run_get_small(size_t n)
{
    (void)n;
    bench_get_small();
}

static void
run_gets_mixed(size_t n)
{
    bench_gets(n, 1);
}

static void
run_gets(size_t n)
{
    bench_gets(n, 0);
}

static void
run_latency(size_t n)
{
    (void)n;
    bench_latency();
}

static void
run_calls(size_t n)
{
    (void)n;
    bench_calls();
}

static void
run_restart(size_t n)
{
    (void)n;
    bench_restart();
}

static void
run_idle(size_t n)
{
    (void)n;
    bench_idle();
}

/* ------------------------------------------------------------------ */
/* Snapshots                                                            */

/* Copy a file the way a careful program would (read, write, fsync): the
 * baseline a dump and a load are measured against, on the same disk. */
static double
copy_file_s(const char *from, const char *to)
{
    static char buf[1 << 20];
    uint64_t t0 = now_ns();
    FILE *in = fopen(from, "rb");
    int out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    size_t n;

    if (in == NULL || out < 0)
        exit(1);
    while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
        if (write(out, buf, n) != (ssize_t)n)
            exit(1);
    fsync(out);
    close(out);
    fclose(in);
    return (double)(now_ns() - t0) / 1e9;
}

static void
bench_snapshot(size_t n)
{
    unsigned char *keys = bench_make_keys(n), val[BVAL];
    cache_op_t op = { .kind = CACHE_OP_PUT, .key_len = BKEY, .value = val, .value_len = BVAL,
                      .ttl_ms = CACHE_TTL_NONE };
    double vd[16], vl[16], vc[16];
    char path[64], copy[80];
    size_t i;
    int rep;
    char wl[64];

    memset(val, 'v', sizeof(val));
    snprintf(path, sizeof(path), "/tmp/gencache-bench-snap-%ld", (long)getpid());
    snprintf(copy, sizeof(copy), "%s.copy", path);
    for (rep = 0; rep < reps; rep++) {
        cache_t *c, *d;
        uint64_t t0;

        if (cache_start(NULL, &c) != 0)
            exit(1);
        for (i = 0; i < n; i++) {
            op.key = keys + i * BKEY;
            while (cache_cast(c, &op) == -EAGAIN)
                ;
        }
        cache_sync(c, ACTOR_INFINITY);
        t0 = now_ns();
        if (cache_dump(c, path, ACTOR_INFINITY) != 0)
            exit(1);
        vd[rep] = (double)(now_ns() - t0) / 1e9;
        vc[rep] = copy_file_s(path, copy);
        if (cache_start(NULL, &d) != 0)
            exit(1);
        t0 = now_ns();
        if (cache_load(d, path, ACTOR_INFINITY) != 0)
            exit(1);
        vl[rep] = (double)(now_ns() - t0) / 1e9;
        cache_stop(c, ACTOR_INFINITY);
        cache_release(c);
        cache_stop(d, ACTOR_INFINITY);
        cache_release(d);
        unlink(path);
        unlink(copy);
    }
    snprintf(wl, sizeof(wl), "snapshot, %zuk keys", n / 1000);
    bench_emit((row_t){ wl, "dump (collect + write + fsync)", bench_median(vd, reps), "s",
                        "file copy (read + write + fsync)", bench_median(vc, reps), "", -1 });
    bench_emit((row_t){ wl, "load (validate + put)", bench_median(vl, reps), "s",
                        "file copy (read + write + fsync)", bench_median(vc, reps), "", -1 });
    free(keys);
}

static void
usage(const char *argv0)
{
    fprintf(stderr, "usage: %s [--quick] [--json] [--threads N]\n", argv0);
    exit(2);
}

int
main(int argc, char **argv)
{
    int i, k, cap = 0;
    size_t big, mid;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            quick = 1;
        } else if (strcmp(argv[i], "--json") == 0) {
            json = bench_json = 1;
        } else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
            cap = atoi(argv[++i]);
            if (cap < 1)
                usage(argv[0]);
        } else {
            usage(argv[0]);
        }
    }
    max_threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (max_threads < 1)
        max_threads = 1;
    if (cap > 0) {
        max_threads = cap < max_threads ? cap : max_threads;
        mix_threads = cap;
    }
    if (quick)
        reps = 3;
    big = quick ? 200000 : 1000000;
    mid = 100000;
    if (!json) {
        printf("gencache %s benchmark (%s: medians of %d runs; %zu large keys; up to %d reader "
               "threads, %d in mixed workloads)\npeers:", gencache_version_string(),
               quick ? "quick" : "full", reps, big, max_threads, mix_threads);
        for (k = 0; k < PEER_COUNT; k++)
            printf(" %s%s", peer_name((peer_kind_t)k), peer_built((peer_kind_t)k) ? "" : " (not built)");
        printf("\n\n| %-30s | %-22s | %21s | %-33s | %7s | %-30s |\n", "workload", "figure", "value",
               "baseline (same process)", "ratio", "target");
        printf("|%s|%s|%s|%s|%s|%s|\n", "--------------------------------",
               "------------------------", "-----------------------",
               "-----------------------------------", "---------",
               "--------------------------------");
    }
    times = getenv("GENCACHE_BENCH_TIMES") != NULL;
    section("get 10k", run_get_small, 0);
    section("get + mixed, mid", run_gets_mixed, mid);
    section("get, big", run_gets, big);
    section("call latency", run_latency, 0);
    section("put by call", run_calls, 0);
    section("bulk load", bench_bulk, big);
    section("expiry", bench_expiry, big);
    section("snapshot", bench_snapshot, big);
    section("restart", run_restart, 0);
    section("idle", run_idle, 0);
    return 0;
}

/*
 * gencache_bench: gencache against baselines run in the same process, so
 * every figure comes with a ratio that holds on a noisy machine.
 *
 *   gencache_bench [--quick] [--json]
 *
 * Each figure is the median of several repetitions.  --quick uses fewer
 * repetitions and 200k instead of 1M keys, and finishes in under a minute on
 * 2 cores.  --json prints one JSON object per workload and line instead of
 * the table.  See docs/benchmarks.md for the latest results.
 */
#define _GNU_SOURCE
#include <gencache/gencache.h>

#include "baselines.h"
#include "bench_util.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int quick, json;
static int reps = 5;

/* ------------------------------------------------------------------ */
/* Helpers                                                              */



/* ------------------------------------------------------------------ */
/* Read workloads                                                       */

typedef enum { SYS_CACHE, SYS_UNSYNC, SYS_MUTEX, SYS_RWLOCK } sys_t;

typedef struct reader {
    sys_t sys;
    cache_t *c;
    bmap_t *m;
    const unsigned char *keys;   /* looked-up keys (hits or misses) */
    const uint32_t *order;
    size_t start;                /* this thread's first index in order */
    size_t n, ops;
    int put_pct;                 /* mixed workload: % puts */
    const unsigned char *putkeys;
    pthread_barrier_t *bar;
    uint64_t ns;
} reader_t;

static void *
reader_main(void *p)
{
    reader_t *r = p;
    unsigned char val[BVAL];
    size_t i, len;
    uint64_t t0;
    unsigned seed = (unsigned)(uintptr_t)p;
    volatile int sink = 0;

    memset(val, 'v', sizeof(val));
    pthread_barrier_wait(r->bar);
    t0 = now_ns();
    for (i = 0; i < r->ops; i++) {
        const unsigned char *k = r->keys + (size_t)r->order[(r->start + i) % r->n] * BKEY;
        int put = 0;

        if (r->put_pct) {
            seed = seed * 1103515245u + 12345u;
            put = (int)((seed >> 16) % 100) < r->put_pct;
        }
        switch (r->sys) {
        case SYS_CACHE:
            sink += put ? cache_put(r->c, NULL, k, BKEY, val, BVAL, CACHE_TTL_NONE)
                        : cache_get(r->c, NULL, k, BKEY, val, BVAL, &len);
            break;
        case SYS_UNSYNC:
            sink += bmap_get(r->m, k, val);
            break;
        case SYS_MUTEX:
            sink += put ? bmap_put_mutex(r->m, k, val) : bmap_get_mutex(r->m, k, val);
            break;
        case SYS_RWLOCK:
            sink += put ? bmap_put_rwlock(r->m, k, val) : bmap_get_rwlock(r->m, k, val);
            break;
        }
    }
    r->ns = now_ns() - t0;
    (void)sink;
    return NULL;
}

/* Ops per second of `threads` readers, median of reps. */
static double
run_readers(sys_t sys, cache_t *c, bmap_t *m, const unsigned char *keys,
            const uint32_t *order, size_t n, size_t ops, int threads, int put_pct)
{
    double v[16];
    int rep;

    for (rep = 0; rep < reps; rep++) {
        pthread_t th[4];
        reader_t r[4];
        pthread_barrier_t bar;
        uint64_t maxns = 0;
        int t;

        pthread_barrier_init(&bar, NULL, (unsigned)threads);
        for (t = 0; t < threads; t++) {
            r[t] = (reader_t){ sys, c, m, keys, order, (size_t)t * 7919 % n, n, ops, put_pct,
                               NULL, &bar, 0 };
            pthread_create(&th[t], NULL, reader_main, &r[t]);
        }
        for (t = 0; t < threads; t++) {
            pthread_join(th[t], NULL);
            if (r[t].ns > maxns)
                maxns = r[t].ns;
        }
        pthread_barrier_destroy(&bar);
        v[rep] = (double)ops * threads / ((double)maxns / 1e9);
    }
    return bench_median(v, reps);
}

static cache_t *
filled_cache(const unsigned char *keys, size_t n, double *cast_rate)
{
    cache_opts_t o = { 0 };
    cache_t *c;
    unsigned char val[BVAL];
    cache_op_t op = { .kind = CACHE_OP_PUT, .key_len = BKEY, .value = val,
                      .value_len = BVAL, .ttl_ms = CACHE_TTL_NONE };
    size_t i;
    uint64_t t0;

    memset(val, 'v', sizeof(val));
    if (cache_start(&o, &c) != 0)
        exit(1);
    t0 = now_ns();
    for (i = 0; i < n; i++) {
        op.key = keys + i * BKEY;
        while (cache_cast(c, &op) == -EAGAIN)
            ;
    }
    cache_sync(c, ACTOR_INFINITY);
    if (cast_rate != NULL)
        *cast_rate = (double)n / ((double)(now_ns() - t0) / 1e9);
    return c;
}

static void
bench_reads(size_t n)
{
    unsigned char *keys = bench_make_keys(n), *miss = malloc(n * BKEY), val[BVAL];
    uint32_t *order = bench_make_order(n, 42);
    size_t ops = quick ? 1000000 : 4000000, i;
    bmap_t m;
    cache_t *c;
    char wl[64];
    double unsync1, mutex2, rw2, g1, g2, m1, um1, mixc, mixm, mixr;

    for (i = 0; i < n; i++)
        bench_make_key(miss + i * BKEY, i + n * 10);
    memset(val, 'v', sizeof(val));
    bmap_init(&m, n);
    for (i = 0; i < n; i++)
        bmap_put(&m, keys + i * BKEY, val);
    c = filled_cache(keys, n, NULL);

    unsync1 = run_readers(SYS_UNSYNC, NULL, &m, keys, order, n, ops, 1, 0);
    mutex2 = run_readers(SYS_MUTEX, NULL, &m, keys, order, n, ops, 2, 0);
    rw2 = run_readers(SYS_RWLOCK, NULL, &m, keys, order, n, ops, 2, 0);
    g1 = run_readers(SYS_CACHE, c, NULL, keys, order, n, ops, 1, 0);
    g2 = run_readers(SYS_CACHE, c, NULL, keys, order, n, ops, 2, 0);
    um1 = run_readers(SYS_UNSYNC, NULL, &m, miss, order, n, ops, 1, 0);
    m1 = run_readers(SYS_CACHE, c, NULL, miss, order, n, ops, 1, 0);

    snprintf(wl, sizeof(wl), "get hit, %zuk keys", n / 1000);
    bench_emit((row_t){ wl, "1 thread", g1 / 1e6, "Mops/s", "unsync map 1 thr", unsync1 / 1e6,
                  ">= 0.7x unsync", g1 >= 0.7 * unsync1 });
    bench_emit((row_t){ wl, "2 threads", g2 / 1e6, "Mops/s", "gencache 1 thr", g1 / 1e6,
                  ">= 1.7x 1 thread", g2 >= 1.7 * g1 });
    bench_emit((row_t){ wl, "2 threads vs mutex", g2 / 1e6, "Mops/s", "mutex map 2 thr", mutex2 / 1e6,
                  ">= 3x mutex 2 thr", g2 >= 3 * mutex2 });
    bench_emit((row_t){ wl, "2 threads vs rwlock", g2 / 1e6, "Mops/s", "rwlock map 2 thr",
                  rw2 / 1e6, "", -1 });
    snprintf(wl, sizeof(wl), "get miss, %zuk keys", n / 1000);
    bench_emit((row_t){ wl, "1 thread", m1 / 1e6, "Mops/s", "unsync map 1 thr", um1 / 1e6, "", -1 });
    {
        double m2 = run_readers(SYS_CACHE, c, NULL, miss, order, n, ops, 2, 0);

        bench_emit((row_t){ wl, "2 threads", m2 / 1e6, "Mops/s", "gencache 1 thr", m1 / 1e6, "", -1 });
    }

    /* 90% get / 10% put, 2 threads. */
    mixc = run_readers(SYS_CACHE, c, NULL, keys, order, n, ops / 4, 2, 10);
    mixm = run_readers(SYS_MUTEX, NULL, &m, keys, order, n, ops / 4, 2, 10);
    mixr = run_readers(SYS_RWLOCK, NULL, &m, keys, order, n, ops / 4, 2, 10);
    snprintf(wl, sizeof(wl), "90/10 get/put, %zuk keys", n / 1000);
    bench_emit((row_t){ wl, "2 threads", mixc / 1e6, "Mops/s", "mutex map 2 thr", mixm / 1e6, "", -1 });
    bench_emit((row_t){ wl, "2 threads", mixc / 1e6, "Mops/s", "rwlock map 2 thr", mixr / 1e6, "",
                  -1 });

    /* Throughput by thread count, for the chart (bench/plot.sh). */
    if (n <= 10000 && getenv("GENCACHE_BENCH_SCALING_FILE") != NULL) {
        FILE *f = fopen(getenv("GENCACHE_BENCH_SCALING_FILE"), "w");
        int t;

        for (t = 1; f != NULL && t <= 4; t++)
            fprintf(f, "%d %.3f %.3f %.3f\n", t,
                    run_readers(SYS_CACHE, c, NULL, keys, order, n, ops, t, 0) / 1e6,
                    run_readers(SYS_MUTEX, NULL, &m, keys, order, n, ops, t, 0) / 1e6,
                    run_readers(SYS_RWLOCK, NULL, &m, keys, order, n, ops, t, 0) / 1e6);
        if (f != NULL)
            fclose(f);
    }

    cache_stop(c, ACTOR_INFINITY);
    cache_release(c);
    bmap_fini(&m);
    free(keys);
    free(miss);
    free(order);
}

/* ------------------------------------------------------------------ */
/* Write workloads and memory                                           */

static void
bench_writes(size_t n)
{
    unsigned char *keys = bench_make_keys(n), val[BVAL];
    double v[16], vc[16], vm[16], cast_rate, unsync_rate, call_rate;
    size_t i, ncall = quick ? 50000 : 200000;
    int rep;
    char wl[64];

    memset(val, 'v', sizeof(val));
    for (rep = 0; rep < reps; rep++) {
        bmap_t m;
        cache_t *c;
        uint64_t t0;
        struct mallinfo2 a, b;

        bmap_init(&m, n);
        t0 = now_ns();
        for (i = 0; i < n; i++)
            bmap_put(&m, keys + i * BKEY, val);
        v[rep] = (double)n / ((double)(now_ns() - t0) / 1e9);
        bmap_fini(&m);

        /* Let the previous repetition's worker finish freeing (its epoch
         * barrier runs as its thread exits) before the first reading. */
        usleep(100000);
        a = mallinfo2();
        c = filled_cache(keys, n, &vc[rep]);
        b = mallinfo2();
        /* Heap bytes per entry beyond the 16-byte key and 64-byte value
         * (includes the 6-byte "cache" namespace prefix, the entry header,
         * hash-set slots, the eviction and expiry indexes and malloc's own
         * overhead). */
        vm[rep] = ((double)b.uordblks - (double)a.uordblks) / (double)n - (BKEY + BVAL);
        cache_stop(c, ACTOR_INFINITY);
        cache_release(c);
    }
    unsync_rate = bench_median(v, reps);
    cast_rate = bench_median(vc, reps);
    snprintf(wl, sizeof(wl), "put by cast, %zuk keys", n / 1000);
    bench_emit((row_t){ wl, "incl. worker applying", cast_rate / 1e6, "Mops/s", "unsync insert",
                  unsync_rate / 1e6, ">= 0.5x unsync insert", cast_rate >= 0.5 * unsync_rate });
    snprintf(wl, sizeof(wl), "memory, %zuk keys", n / 1000);
    bench_emit((row_t){ wl, "bytes/entry overhead", bench_median(vm, reps), "B", NULL, 0,
                  "<= 64 B", bench_median(vm, reps) <= 64 });

    for (rep = 0; rep < reps; rep++) {
        cache_t *c;
        cache_opts_t o = { 0 };
        uint64_t t0;

        cache_start(&o, &c);
        t0 = now_ns();
        for (i = 0; i < ncall; i++)
            cache_put(c, NULL, keys + (i % n) * BKEY, BKEY, val, BVAL, CACHE_TTL_NONE);
        v[rep] = (double)ncall / ((double)(now_ns() - t0) / 1e9);
        cache_stop(c, ACTOR_INFINITY);
        cache_release(c);
    }
    call_rate = bench_median(v, reps);
    snprintf(wl, sizeof(wl), "put by call (sync)");
    bench_emit((row_t){ wl, "1 thread", call_rate / 1e6, "Mops/s", "unsync insert",
                  unsync_rate / 1e6, "", -1 });
    free(keys);
}

/* ------------------------------------------------------------------ */
/* Call latency                                                         */

static void
bench_latency(void)
{
    size_t n = quick ? 50000 : 200000, i;
    uint64_t *lat = malloc(n * sizeof(*lat)), *pl = malloc(n * sizeof(*pl));
    cache_op_t op = { .kind = CACHE_OP_SYNC };
    cache_opts_t o = { 0 };
    cache_t *c;
    FILE *f = NULL;

    pingpong(n / 10, NULL);  /* warm up */
    pingpong(n, pl);
    qsort(pl, n, sizeof(*pl), bench_cmp_u64);

    cache_start(&o, &c);
    for (i = 0; i < n / 10; i++)
        cache_call(c, &op, ACTOR_INFINITY);
    for (i = 0; i < n; i++) {
        uint64_t t0 = now_ns();

        cache_call(c, &op, ACTOR_INFINITY);
        lat[i] = now_ns() - t0;
    }
    cache_stop(c, ACTOR_INFINITY);
    cache_release(c);
    qsort(lat, n, sizeof(*lat), bench_cmp_u64);

    bench_emit((row_t){ "call round trip", "p50", (double)bench_pct(lat, n, 0.5), "ns", "ping-pong p50",
                  (double)bench_pct(pl, n, 0.5), "<= 2x ping-pong",
                  bench_pct(lat, n, 0.5) <= 2 * bench_pct(pl, n, 0.5) });
    bench_emit((row_t){ "call round trip", "p99", (double)bench_pct(lat, n, 0.99), "ns", "ping-pong p99",
                  (double)bench_pct(pl, n, 0.99), "<= 10x ping-pong",
                  bench_pct(lat, n, 0.99) <= 10 * bench_pct(pl, n, 0.99) });
    bench_emit((row_t){ "call round trip", "p99.9", (double)bench_pct(lat, n, 0.999), "ns",
                  "ping-pong p99.9", (double)bench_pct(pl, n, 0.999), "", -1 });

    /* The latency distribution for the chart (bench/plot.sh). */
    if (getenv("GENCACHE_BENCH_LATENCY_FILE") != NULL)
        f = fopen(getenv("GENCACHE_BENCH_LATENCY_FILE"), "w");
    if (f != NULL) {
        for (i = 0; i < 1000; i++)
            fprintf(f, "%.4f %llu %llu\n", (double)i / 1000.0,
                    (unsigned long long)bench_pct(lat, n, (double)i / 1000.0),
                    (unsigned long long)bench_pct(pl, n, (double)i / 1000.0));
        fclose(f);
    }
    free(lat);
    free(pl);
}

/* ------------------------------------------------------------------ */
/* Expiry                                                               */

static uint64_t
entries_of(cache_t *c)
{
    cache_stats_t st;

    cache_stats(c, &st);
    return st.entries;
}

static void
bench_expiry(size_t n)
{
    unsigned char *keys = bench_make_keys(n), val[BVAL];
    cache_op_t put = { .kind = CACHE_OP_PUT, .key_len = BKEY, .value = val, .value_len = BVAL,
                       .ttl_ms = 10 };
    cache_op_t del = { .kind = CACHE_OP_DELETE, .key_len = BKEY };
    double ve[16], vd[16], vl[16];
    size_t i;
    int rep, r = quick ? 3 : reps;
    char wl[64];

    memset(val, 'v', sizeof(val));
    for (rep = 0; rep < r; rep++) {
        actor_clock_t *clk;
        cache_opts_t o = { 0 };
        cache_t *c;
        uint64_t t0;

        /* Worker cost per expired key: all n due at once on a manual clock,
         * timed until the table is empty. */
        actor_clock_manual_new(0, &clk);
        o.clock = clk;
        cache_start(&o, &c);
        for (i = 0; i < n; i++) {
            put.key = keys + i * BKEY;
            while (cache_cast(c, &put) == -EAGAIN)
                ;
        }
        cache_sync(c, ACTOR_INFINITY);
        t0 = now_ns();
        actor_clock_advance(clk, 10);
        while (entries_of(c) != 0)
            usleep(50);
        ve[rep] = (double)(now_ns() - t0) / (double)n;
        cache_stop(c, ACTOR_INFINITY);
        cache_release(c);
        while (actor_clock_free(clk) != 0)
            usleep(100);

        /* The same keys deleted by casts: worker cost per delete. */
        put.ttl_ms = CACHE_TTL_NONE;
        cache_start(NULL, &c);
        for (i = 0; i < n; i++) {
            put.key = keys + i * BKEY;
            while (cache_cast(c, &put) == -EAGAIN)
                ;
        }
        cache_sync(c, ACTOR_INFINITY);
        t0 = now_ns();
        for (i = 0; i < n; i++) {
            del.key = keys + i * BKEY;
            while (cache_cast(c, &del) == -EAGAIN)
                ;
        }
        cache_sync(c, ACTOR_INFINITY);
        vd[rep] = (double)(now_ns() - t0) / (double)n;
        cache_stop(c, ACTOR_INFINITY);
        cache_release(c);
        put.ttl_ms = 10;

        /* Lateness on the real clock: n keys with a 200 ms TTL; time from
         * the last key's deadline until the table is empty. */
        {
            cache_op_t p2 = put;
            uint64_t last_deadline;

            p2.ttl_ms = 200;
            cache_start(NULL, &c);
            for (i = 0; i < n; i++) {
                p2.key = keys + i * BKEY;
                while (cache_cast(c, &p2) == -EAGAIN)
                    ;
            }
            cache_sync(c, ACTOR_INFINITY);
            last_deadline = now_ns() + 200000000ull;
            while (entries_of(c) != 0)
                usleep(100);
            vl[rep] = now_ns() > last_deadline ? (double)(now_ns() - last_deadline) / 1e6 : 0;
            cache_stop(c, ACTOR_INFINITY);
            cache_release(c);
        }
    }
    snprintf(wl, sizeof(wl), "expiry, %zuk keys", n / 1000);
    bench_emit((row_t){ wl, "worker ns per expired key", bench_median(ve, r), "ns",
                  "ns per delete (cast)", bench_median(vd, r), "<= 2x a delete",
                  bench_median(ve, r) <= 2 * bench_median(vd, r) });
    bench_emit((row_t){ wl, "last deadline to all gone", bench_median(vl, r), "ms", NULL, 0, "<= 10 ms",
                  bench_median(vl, r) <= 10 });
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

int
main(int argc, char **argv)
{
    int i;
    size_t big;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            quick = 1;
        } else if (strcmp(argv[i], "--json") == 0) {
            json = bench_json = 1;
        } else {
            fprintf(stderr, "usage: %s [--quick] [--json]\n", argv[0]);
            return 2;
        }
    }
    if (quick)
        reps = 3;
    big = quick ? 200000 : 1000000;
    if (!json) {
        printf("gencache %s benchmark (%s: medians of %d runs; %zu large keys)\n\n",
               gencache_version_string(), quick ? "quick" : "full", reps, big);
        printf("| %-30s | %-22s | %21s | %-33s | %7s | %-30s |\n", "workload", "figure", "value",
               "baseline (same process)", "ratio", "target");
        printf("|%s|%s|%s|%s|%s|%s|\n", "--------------------------------",
               "------------------------", "-----------------------",
               "-----------------------------------", "---------",
               "--------------------------------");
    }
    bench_reads(10000);
    bench_reads(big);
    bench_writes(10000);
    bench_writes(big);
    bench_latency();
    bench_expiry(big);
    bench_restart();
    bench_idle();
    return 0;
}

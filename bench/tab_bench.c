/*
 * tab_bench: the new table (lib/tab.c) against the peers (bench/peers.h:
 * liburcu cds_lfht qsbr and memb, GLib GHashTable + GRWLock / GMutex) and
 * the unsynchronised baseline map (bench/baselines.h), all in this process,
 * on issue 14's workloads: 16-byte keys, 64-byte values copied out on get.
 *
 *   get hit, 10k / 100k / 1M keys, 1 .. nproc threads (keys in a shuffled
 *     order, each thread from its own offset; the key is hashed inside
 *     every get, as the peers do);
 *   memory: RSS delta per entry beyond key+value after loading 1M keys
 *     (also with max_entries = 1M: S3-FIFO queues and ghost);
 *   put latency: each single put timed while the table grows from empty
 *     to 1M keys (gc_tab_maintain after every 64 puts, as the cache calls
 *     it after each mailbox batch);
 *   mass expiry: 1M keys due at once, removed by gc_tab_expire slices of
 *     1,000 (each slice timed, with the gc_tab_maintain that follows it).
 *
 * Run: ./build/bench/tab_bench [--quick] [--huge] [--threads N]   (--quick < 30 s;
 * --huge: the table with gc_tab_opts_t.huge_pages; TAB_BENCH_NO_THP=1 turns
 * THP off for the process, TAB_BENCH_ONLY_BIG=1 runs only the 1M gets)
 * Prints a markdown table.
 */
#define _GNU_SOURCE
#include "baselines.h"
#include "bench_util.h"
#include "peers.h"
#include "tab.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

static int quick, reps = 5, max_threads;

typedef enum { S_TAB, S_BMAP, S_PEER } skind_t;

typedef struct sys {
    skind_t kind;
    gc_tab_t *t;
    bmap_t *m;
    peer_t *p;
} sys_t;

typedef struct job {
    const sys_t *s;
    const unsigned char *keys;
    const uint32_t *order;
    size_t n, start, ops;
    pthread_barrier_t *bar;
    uint64_t ns;
    long misses;
} job_t;

static void *
job_main(void *arg)
{
    job_t *j = arg;
    const sys_t *s = j->s;
    unsigned char val[BVAL];
    size_t i, vlen;
    uint64_t t0;
    long miss = 0;

    if (s->kind == S_PEER)
        peer_thread_register(s->p);
    if (s->kind == S_TAB) {
        /* Register this reader before the clock starts. */
        gc_tab_key_t k = { 0, j->keys, BKEY, gc_tab_hash(0, j->keys, BKEY) };

        (void)gc_tab_get(s->t, &k, val, sizeof(val), &vlen, NULL);
    }
    pthread_barrier_wait(j->bar);
    t0 = now_ns();
    for (i = 0; i < j->ops; i++) {
        const unsigned char *key = j->keys + (size_t)j->order[(j->start + i) % j->n] * BKEY;

        switch (s->kind) {
        case S_TAB: {
            gc_tab_key_t k = { 0, key, BKEY, gc_tab_hash(0, key, BKEY) };

            miss += gc_tab_get(s->t, &k, val, sizeof(val), &vlen, NULL) != 0;
            break;
        }
        case S_BMAP:
            miss += bmap_get(s->m, key, val) != 0;
            break;
        case S_PEER:
            miss += peer_get(s->p, key, val) != 0;
            if (i % PEER_QUIESCE_EVERY == 0)
                peer_quiescent(s->p);
            break;
        }
    }
    j->ns = now_ns() - t0;
    j->misses = miss;
    if (s->kind == S_PEER)
        peer_thread_unregister(s->p);
    return NULL;
}

/* Gets per second of `threads` threads doing `ops` each (slowest thread),
 * median of reps. */
static double
run_gets(const sys_t *s, const unsigned char *keys, const uint32_t *order, size_t n, size_t ops,
         int threads)
{
    pthread_t th[64];
    job_t j[64];
    double v[16];
    int rep, t;

    for (rep = 0; rep < reps; rep++) {
        pthread_barrier_t bar;
        uint64_t maxns = 0;

        pthread_barrier_init(&bar, NULL, (unsigned)threads);
        for (t = 0; t < threads; t++) {
            j[t] = (job_t){ s, keys, order, n, (size_t)t * 7919 % n, ops, &bar, 0, 0 };
            pthread_create(&th[t], NULL, job_main, &j[t]);
        }
        for (t = 0; t < threads; t++) {
            pthread_join(th[t], NULL);
            if (j[t].misses != 0) {
                fprintf(stderr, "tab_bench: %ld misses on a hit workload\n", j[t].misses);
                exit(1);
            }
            if (j[t].ns > maxns)
                maxns = j[t].ns;
        }
        pthread_barrier_destroy(&bar);
        v[rep] = (double)ops * threads / ((double)maxns / 1e9);
    }
    return bench_median(v, reps);
}

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

static void
row(const char *wl, const char *fig, double v, const char *unit, const char *base, double bv,
    const char *target, int met)
{
    char ratio[16] = "", b[48] = "";

    if (bv > 0) {
        snprintf(ratio, sizeof(ratio), "%.2fx", v / bv);
        snprintf(b, sizeof(b), "%.2f", bv);
    }
    printf("| %-24s | %-18s | %9.2f %-6s | %-16s | %9s | %7s | %-22s |%s\n", wl, fig, v, unit,
           base, b, ratio, target, met < 0 ? "" : met ? " met" : " **not met**");
    fflush(stdout);
}

/* A table holding keys[0..n): the value is the key repeated. */
static int huge;   /* --huge: gc_tab_opts_t.huge_pages */

static gc_tab_t *
filled_tab(const unsigned char *keys, size_t n, size_t max_entries)
{
    gc_tab_opts_t o = { .max_entries = max_entries, .huge_pages = huge };
    unsigned char val[BVAL];
    gc_tab_t *t;
    size_t i;

    memset(val, 'v', sizeof(val));
    if (gc_tab_new(&o, &t) != 0)
        exit(1);
    for (i = 0; i < n; i++) {
        const unsigned char *k = keys + i * BKEY;
        gc_tab_key_t key = { 0, k, BKEY, gc_tab_hash(0, k, BKEY) };

        if (gc_tab_put(t, &key, val, BVAL, 0, NULL) != 0)
            exit(1);
        if (i % 64 == 63)
            gc_tab_maintain(t);
    }
    /* Let the incremental resize finish (as the worker's idle maintain
     * calls would) and reclaim. */
    for (i = 0; i < 100000; i++)
        gc_tab_maintain(t);
    return t;
}

static peer_t *
filled_peer(peer_kind_t k, const unsigned char *keys, size_t n)
{
    unsigned char val[BVAL];
    peer_t *p;
    size_t i;

    memset(val, 'v', sizeof(val));
    if (peer_new(k, n, &p) != 0)
        return NULL;
    peer_thread_register(p);
    for (i = 0; i < n; i++) {
        peer_put(p, keys + i * BKEY, val);
        if (i % PEER_QUIESCE_EVERY == 0)
            peer_quiescent(p);
    }
    peer_thread_unregister(p);
    return p;
}

static void
bench_get(size_t n)
{
    unsigned char *keys = bench_make_keys(n), val[BVAL];
    uint32_t *order = bench_make_order(n, 7);
    size_t ops = quick ? (n >= 1000000 ? 200000 : 400000) : 1000000, i;
    double r0, tabmem, tabmem_lim = 0, pmem[PEER_COUNT] = { 0 };
    peer_t *peers[PEER_COUNT];
    bmap_t m;
    gc_tab_t *t;
    char wl[48];
    int k, th;

    memset(val, 'v', sizeof(val));
    /* Each table measured from the same state: the bounded one first,
     * freed and trimmed, then the one the gets use. */
    if (n >= 1000000) {
        gc_tab_t *tl;

        malloc_trim(0);
        r0 = rss_bytes();
        tl = filled_tab(keys, n, n);
        tabmem_lim = (rss_bytes() - r0) / (double)n - (BKEY + BVAL);
        gc_tab_free(tl);
    }
    malloc_trim(0);
    r0 = rss_bytes();
    t = filled_tab(keys, n, 0);
    tabmem = (rss_bytes() - r0) / (double)n - (BKEY + BVAL);
    for (k = 0; k < PEER_COUNT; k++) {
        malloc_trim(0);
        r0 = rss_bytes();
        peers[k] = peer_built((peer_kind_t)k) ? filled_peer((peer_kind_t)k, keys, n) : NULL;
        pmem[k] = (rss_bytes() - r0) / (double)n - (BKEY + BVAL);
    }
    bmap_init(&m, n);
    for (i = 0; i < n; i++)
        bmap_put(&m, keys + i * BKEY, val);

    /* The machine is shared: noise comes in phases of seconds.  So the
     * systems take turns, one repetition each per round, and each figure
     * is the median of its repetitions. */
    for (th = 1; th <= max_threads; th *= 2) {
        sys_t sys[2 + PEER_COUNT];
        double v[2 + PEER_COUNT][16], med[2 + PEER_COUNT];
        int ns = 0, rep, x, saved = reps;
        char fig[32];

        sys[ns++] = (sys_t){ S_TAB, t, NULL, NULL };
        if (th == 1)
            sys[ns++] = (sys_t){ S_BMAP, NULL, &m, NULL };
        for (k = 0; k < PEER_COUNT; k++)
            if (peers[k] != NULL)
                sys[ns++] = (sys_t){ S_PEER, NULL, NULL, peers[k] };
        reps = 1;
        for (rep = 0; rep < saved; rep++)
            for (x = 0; x < ns; x++)
                v[x][rep] = run_gets(&sys[x], keys, order, n, ops, th);
        reps = saved;
        for (x = 0; x < ns; x++)
            med[x] = bench_median(v[x], reps);
        snprintf(wl, sizeof(wl), "get hit, %zuk keys", n / 1000);
        snprintf(fig, sizeof(fig), "%d thread%s", th, th > 1 ? "s" : "");
        for (x = 1; x < ns; x++) {
            double tgt = 0;
            const char *name = "bmap (unsync)";
            char ts[24] = "";

            if (sys[x].kind == S_PEER) {
                for (k = 0; k < PEER_COUNT; k++)
                    if (peers[k] == sys[x].p)
                        break;
                name = peer_name((peer_kind_t)k);
                tgt = k == PEER_URCU_QSBR ? 1.2 : k == PEER_GLIB_RW ? 1.5 : 0;
                if (n < 100000)
                    tgt = 0;
            } else if (n <= 10000) {
                tgt = 0.7;
            }
            if (tgt > 0)
                snprintf(ts, sizeof(ts), ">= %.1fx", tgt);
            row(wl, fig, med[0] / 1e6, "Mops/s", name, med[x] / 1e6, ts,
                tgt > 0 ? med[0] >= tgt * med[x] : -1);
        }
    }
    if (n >= 1000000) {
        snprintf(wl, sizeof(wl), "memory, %zuk keys", n / 1000);
        row(wl, "tab B/entry", tabmem, "B", "", 0, "<= 40 B", tabmem <= 40);
        row(wl, "tab, max_entries", tabmem_lim, "B", "", 0, "<= 40 B", tabmem_lim <= 40);
        for (k = 0; k < PEER_COUNT; k++)
            if (peers[k] != NULL)
                row(wl, "peer B/entry", pmem[k], "B", peer_name((peer_kind_t)k), 0, "", -1);
    }
    for (k = 0; k < PEER_COUNT; k++)
        if (peers[k] != NULL)
            peer_free(peers[k]);
    bmap_fini(&m);
    gc_tab_free(t);
    free(keys);
    free(order);
}

/* Each put timed while the table grows from empty to n. */
static void
bench_put_latency(size_t n)
{
    unsigned char *keys = bench_make_keys(n), val[BVAL];
    uint64_t *lat = malloc(n * sizeof(*lat)), t0, total;
    gc_tab_t *t;
    size_t i;
    char wl[48];

    memset(val, 'v', sizeof(val));
    if (gc_tab_new(NULL, &t) != 0)
        exit(1);
    total = now_ns();
    for (i = 0; i < n; i++) {
        const unsigned char *k = keys + i * BKEY;
        gc_tab_key_t key = { 0, k, BKEY, gc_tab_hash(0, k, BKEY) };

        t0 = now_ns();
        if (gc_tab_put(t, &key, val, BVAL, 0, NULL) != 0)
            exit(1);
        if (i % 64 == 63)
            gc_tab_maintain(t);
        lat[i] = now_ns() - t0;
    }
    total = now_ns() - total;
    qsort(lat, n, sizeof(*lat), bench_cmp_u64);
    snprintf(wl, sizeof(wl), "put, growing to %zuk", n / 1000);
    row(wl, "rate", (double)n / ((double)total / 1e9) / 1e6, "Mops/s", "", 0, "", -1);
    row(wl, "p99", (double)bench_pct(lat, n, 0.99) / 1e3, "us", "", 0, "", -1);
    row(wl, "p99.9", (double)bench_pct(lat, n, 0.999) / 1e3, "us", "", 0, "<= 1000 us",
        bench_pct(lat, n, 0.999) <= 1000000);
    row(wl, "max", (double)lat[n - 1] / 1e3, "us", "", 0, "", -1);
    gc_tab_free(t);
    free(lat);
    free(keys);
}

/* n keys with TTLs, all due at once: each gc_tab_expire(t, 1000) slice
 * timed. */
static void
bench_expiry(size_t n)
{
    unsigned char *keys = bench_make_keys(n), val[BVAL];
    gc_tab_opts_t o = { 0 };
    actor_clock_t *clk;
    gc_tab_t *t;
    uint64_t t0, worst = 0, total = 0, sl[2048];
    size_t i, slices = 0, got;
    char wl[48];

    memset(val, 'v', sizeof(val));
    if (actor_clock_manual_new(1, &clk) != 0)
        exit(1);
    o.clock = clk;
    if (gc_tab_new(&o, &t) != 0)
        exit(1);
    for (i = 0; i < n; i++) {
        const unsigned char *k = keys + i * BKEY;
        gc_tab_key_t key = { 0, k, BKEY, gc_tab_hash(0, k, BKEY) };

        if (gc_tab_put(t, &key, val, BVAL, 1000 + (int64_t)(i % 1000), NULL) != 0)
            exit(1);
        if (i % 64 == 63)
            gc_tab_maintain(t);
    }
    actor_clock_advance(clk, 5000);
    do {
        t0 = now_ns();
        got = gc_tab_expire(t, 1000);
        gc_tab_maintain(t);
        t0 = now_ns() - t0;
        total += t0;
        if (t0 > worst)
            worst = t0;
        if (slices < 2048)
            sl[slices] = t0;
        slices++;
    } while (got > 0);
    snprintf(wl, sizeof(wl), "expire %zuk due, max 1000", n / 1000);
    row(wl, "slice mean", (double)total / (double)slices / 1e3, "us", "", 0, "", -1);
    qsort(sl, slices < 2048 ? slices : 2048, sizeof(sl[0]), bench_cmp_u64);
    row(wl, "slice p99", (double)bench_pct(sl, slices < 2048 ? slices : 2048, 0.99) / 1e3, "us",
        "", 0, "<= ~1000 us", bench_pct(sl, slices < 2048 ? slices : 2048, 0.99) <= 1000000);
    row(wl, "slice max", (double)worst / 1e3, "us", "", 0, "", -1);
    if (gc_tab_count(t) != 0)
        exit(1);
    gc_tab_free(t);
    actor_clock_free(clk);
    free(keys);
}

int
main(int argc, char **argv)
{
    int i, cap = 0, k;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0)
            quick = 1;
        else if (strcmp(argv[i], "--huge") == 0)
            huge = 1;
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            cap = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--quick] [--huge] [--threads N]\n", argv[0]);
            return 2;
        }
    }
    /* TAB_BENCH_NO_THP=1: no transparent huge pages for this process (the
     * A/B of the table's MADV_HUGEPAGE advice). */
    if (getenv("TAB_BENCH_NO_THP") != NULL)
        (void)prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0);
    max_threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (max_threads < 1)
        max_threads = 1;
    if (max_threads > 64)
        max_threads = 64;
    if (cap > 0 && cap < max_threads)
        max_threads = cap;
    reps = quick ? 5 : 9;
    printf("tab_bench (%s: medians of %d runs; 1..%d threads%s); peers:", quick ? "quick" : "full",
           reps, max_threads, huge ? "; tab with huge_pages" : "");
    for (k = 0; k < PEER_COUNT; k++)
        printf(" %s%s", peer_name((peer_kind_t)k), peer_built((peer_kind_t)k) ? "" : " (not built)");
    printf("\n\n| %-24s | %-18s | %16s | %-16s | %9s | %7s | %-22s |\n", "workload", "figure",
           "tab", "baseline", "base", "ratio", "target");
    printf("|--------------------------|--------------------|------------------|------------------|"
           "-----------|---------|------------------------|\n");
    if (getenv("TAB_BENCH_ONLY_BIG") == NULL) {
        bench_get(10000);
        bench_get(100000);
    }
    bench_get(1000000);
    bench_put_latency(1000000);
    bench_expiry(1000000);
    return 0;
}

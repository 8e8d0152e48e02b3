/*
 * gencache_hitratio: a trace-driven simulator of eviction policies for a
 * bounded gencache cache (issue 16).  It replays generated request traces
 * against each policy and reports hit ratios, so the default policy can be
 * chosen by measurement.  One row is not simulated: "gencache (lib/tab.c)"
 * drives the library's own table (gc_tab_get, else gc_tab_put) on the same
 * traces, so the targets are checked against the code that ships.
 *
 *   gencache_hitratio [--quick] [--json]
 *
 * Every policy is written the way it would have to run inside gencache's
 * table: one writer thread (the cache's worker) does all the queue work at
 * insert and eviction time, and readers, which never take a lock, may at most
 * bump a small per-entry counter (a relaxed store, only when its value
 * changes, as the CLOCK bit is set today).  Exact LRU and the textbook
 * W-TinyLFU break that rule (a hit moves the entry in a list; a hit
 * increments a shared sketch); they are simulated as references.  Belady's
 * OPT (evict the entry used farthest in the future) is the offline bound.
 *
 * Requests follow a cache-aside service: a miss inserts the key (demand
 * fill).  Keys are small integers, so a policy indexes its per-key arrays
 * directly instead of hashing: the simulator's ns per request measure the
 * policy's own work, not a hash table's.  All traces come from fixed seeds.
 */
#include "bench_util.h"
#include "tab.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NIL UINT32_MAX

static int quick, json;

/* ---------------------------------------------------------------- random */

static uint64_t
rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double
rng_unit(uint64_t *s)
{
    return (double)(rng_next(s) >> 11) * (1.0 / 9007199254740992.0);
}

static uint64_t
hash64(uint64_t x)
{
    uint64_t s = x;

    return rng_next(&s);
}

static double
now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void *
xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);

    if (p == NULL) {
        fprintf(stderr, "gencache_hitratio: out of memory\n");
        exit(1);
    }
    return p;
}

/* ---------------------------------------------------------------- traces */

/* A request trace.  Keys are < universe.  size[k] is key k's weight in
 * bytes (NULL: every entry weighs 1, the budget is an entry count).  Scan
 * traces mark windows of hot requests just before and just after each scan
 * (win[i]: 0 none, 1 before, 2 after) and the scan requests (3), which are
 * left out of the trace's hit ratio. */
typedef struct trace {
    uint32_t *key;
    size_t n;
    uint32_t universe;
    uint16_t *size;
    uint8_t *win;
} trace_t;

static void
trace_free(trace_t *t)
{
    free(t->key);
    free(t->size);
    free(t->win);
    memset(t, 0, sizeof(*t));
}

/* Zipf(alpha) ranks over n keys by inverse CDF; rank r maps to perm[r]. */
typedef struct zipf {
    double *cdf;
    uint32_t *perm;
    uint32_t n;
} zipf_t;

static void
zipf_init(zipf_t *z, uint32_t n, double alpha, uint64_t seed)
{
    double sum = 0;
    uint32_t i;

    z->n = n;
    z->cdf = xcalloc(n, sizeof(double));
    z->perm = xcalloc(n, sizeof(uint32_t));
    for (i = 0; i < n; i++) {
        sum += 1.0 / pow((double)(i + 1), alpha);
        z->cdf[i] = sum;
        z->perm[i] = i;
    }
    for (i = 0; i < n; i++)
        z->cdf[i] /= sum;
    for (i = n - 1; i > 0; i--) {
        uint32_t j = (uint32_t)(rng_next(&seed) % (i + 1)), t = z->perm[i];

        z->perm[i] = z->perm[j];
        z->perm[j] = t;
    }
}

static uint32_t
zipf_rank(const zipf_t *z, uint64_t *s)
{
    double u = rng_unit(s);
    uint32_t lo = 0, hi = z->n - 1;

    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;

        if (z->cdf[mid] < u)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void
zipf_fini(zipf_t *z)
{
    free(z->cdf);
    free(z->perm);
}

static void
trace_alloc(trace_t *t, size_t n, uint32_t universe)
{
    memset(t, 0, sizeof(*t));
    t->key = xcalloc(n, sizeof(uint32_t));
    t->n = n;
    t->universe = universe;
}

/* n requests drawn from Zipf(alpha) over nkeys keys. */
static void
trace_zipf(trace_t *t, uint32_t nkeys, size_t n, double alpha, uint64_t seed)
{
    zipf_t z;
    size_t i;

    zipf_init(&z, nkeys, alpha, seed);
    trace_alloc(t, n, nkeys);
    for (i = 0; i < n; i++)
        t->key[i] = z.perm[zipf_rank(&z, &seed)];
    zipf_fini(&z);
}

/* Zipf(1.0) whose hot keys change 10 times: in phase p rank r is the key of
 * rank (r + p * nkeys / 10) mod nkeys, so each phase's head was cold. */
static void
trace_shift(trace_t *t, uint32_t nkeys, size_t n, uint64_t seed)
{
    zipf_t z;
    size_t i;

    zipf_init(&z, nkeys, 1.0, seed);
    trace_alloc(t, n, nkeys);
    for (i = 0; i < n; i++) {
        uint64_t phase = i * 10 / n;
        uint32_t r = zipf_rank(&z, &seed);

        t->key[i] = z.perm[(r + phase * (nkeys / 10)) % nkeys];
    }
    zipf_fini(&z);
}

/* Zipf(0.9) over nkeys keys whose values weigh 16 B..4 KiB, log-uniform and
 * independent of popularity (a function of the key). */
static void
trace_varsize(trace_t *t, uint32_t nkeys, size_t n, uint64_t seed)
{
    uint32_t k;

    trace_zipf(t, nkeys, n, 0.9, seed);
    t->size = xcalloc(nkeys, sizeof(uint16_t));
    for (k = 0; k < nkeys; k++) {
        double u = (double)(hash64(k ^ seed) >> 11) * (1.0 / 9007199254740992.0);

        t->size[k] = (uint16_t)(16.0 * pow(256.0, u));
    }
}

/* A loop over ceil(1.1 * cap) keys, repeated 20 times. */
static void
trace_loop(trace_t *t, uint32_t cap)
{
    uint32_t len = cap + (cap + 9) / 10;
    size_t i, n = (size_t)len * 20;

    trace_alloc(t, n, len);
    for (i = 0; i < n; i++)
        t->key[i] = (uint32_t)(i % len);
}

/* Zipf(1.0) over nkeys keys (the hot set), interrupted by scans of 10 * cap
 * keys seen once each.  Each cycle is 20 * cap hot requests (at least 5000)
 * then a scan; the cap hot requests before and after each scan are marked. */
static void
trace_scan(trace_t *t, uint32_t nkeys, uint32_t cap, uint64_t seed)
{
    size_t hot = (size_t)cap * 20 < 5000 ? 5000 : (size_t)cap * 20;
    size_t scan = (size_t)cap * 10, cycles = 50000 / cap, i = 0, c, j;
    uint32_t next_scan_key = nkeys;
    zipf_t z;

    if (cycles < 3)
        cycles = 3;
    if (cycles > 50)
        cycles = 50;
    zipf_init(&z, nkeys, 1.0, seed);
    trace_alloc(t, cycles * (hot + scan) + hot, (uint32_t)(nkeys + cycles * scan));
    t->win = xcalloc(t->n, 1);
    for (c = 0; c <= cycles; c++) {
        for (j = 0; j < hot; j++, i++) {
            t->key[i] = z.perm[zipf_rank(&z, &seed)];
            if (c > 0 && j < cap)
                t->win[i] = 2;
            else if (c < cycles && j >= hot - cap)
                t->win[i] = 1;
        }
        if (c == cycles)
            break;
        for (j = 0; j < scan; j++, i++) {
            t->key[i] = next_scan_key++;
            t->win[i] = 3;
        }
    }
    zipf_fini(&z);
}

/* ---------------------------------------------------------------- queues */

/* Doubly linked queues over key-indexed link arrays: a key is in at most
 * one queue of a policy, so the queues of one policy share the arrays.
 * head = most recently inserted, tail = next to leave. */
typedef struct links {
    uint32_t *prev, *next;
} links_t;

typedef struct queue {
    uint32_t head, tail, n;
    uint64_t w;     /* total weight */
} queue_t;

static void
links_init(links_t *l, uint32_t universe)
{
    l->prev = xcalloc(universe, sizeof(uint32_t));
    l->next = xcalloc(universe, sizeof(uint32_t));
}

static void
links_fini(links_t *l)
{
    free(l->prev);
    free(l->next);
}

static void
q_init(queue_t *q)
{
    q->head = q->tail = NIL;
    q->n = 0;
    q->w = 0;
}

static void
q_push(links_t *l, queue_t *q, uint32_t k, uint32_t w)
{
    l->prev[k] = NIL;
    l->next[k] = q->head;
    if (q->head != NIL)
        l->prev[q->head] = k;
    else
        q->tail = k;
    q->head = k;
    q->n++;
    q->w += w;
}

static void
q_remove(links_t *l, queue_t *q, uint32_t k, uint32_t w)
{
    if (l->prev[k] != NIL)
        l->next[l->prev[k]] = l->next[k];
    else
        q->head = l->next[k];
    if (l->next[k] != NIL)
        l->prev[l->next[k]] = l->prev[k];
    else
        q->tail = l->prev[k];
    q->n--;
    q->w -= w;
}

/* ---------------------------------------------------------------- policies */

/* What a policy is built from.  cap is the budget in weight units (entries,
 * or bytes when sizes != NULL); entries estimates how many entries fit (for
 * the ghost and sketch sizes); next_use is Belady's oracle. */
typedef struct sim_cfg {
    uint32_t universe;
    uint64_t cap;
    uint32_t entries;
    const uint16_t *sizes;
    const uint32_t *next_use;
} sim_cfg_t;

typedef struct policy_ops {
    const char *name;
    /* Per-entry metadata the policy would need inside gencache's table
     * (bytes), not counting fixed tables (ghost, sketch), which meta()
     * adds divided by the entry count. */
    double entry_bytes;
    void *(*create)(const sim_cfg_t *cfg);
    /* Request i for key k: 1 on a hit; a miss inserts k. */
    int (*access)(void *p, uint32_t k, size_t i);
    double (*fixed_bytes)(void *p);
    void (*destroy)(void *p);
} policy_ops_t;

static uint32_t
weight(const sim_cfg_t *c, uint32_t k)
{
    return c->sizes ? c->sizes[k] : 1;
}

/* ---- exact LRU: a hit moves the entry to the head (a write a lock-free
 * reader cannot do; the reference every other policy is held to). */
typedef struct lru {
    sim_cfg_t c;
    links_t l;
    queue_t q;
    uint8_t *in;
} lru_t;

static void *
lru_create(const sim_cfg_t *cfg)
{
    lru_t *p = xcalloc(1, sizeof(*p));

    p->c = *cfg;
    links_init(&p->l, cfg->universe);
    q_init(&p->q);
    p->in = xcalloc(cfg->universe, 1);
    return p;
}

static int
lru_access(void *pp, uint32_t k, size_t i)
{
    lru_t *p = pp;
    uint32_t w = weight(&p->c, k);

    (void)i;
    if (p->in[k]) {
        q_remove(&p->l, &p->q, k, w);
        q_push(&p->l, &p->q, k, w);
        return 1;
    }
    q_push(&p->l, &p->q, k, w);
    p->in[k] = 1;
    while (p->q.w > p->c.cap && p->q.n > 1) {
        uint32_t v = p->q.tail;

        q_remove(&p->l, &p->q, v, weight(&p->c, v));
        p->in[v] = 0;
    }
    return 0;
}

static void
lru_destroy(void *pp)
{
    lru_t *p = pp;

    links_fini(&p->l);
    free(p->in);
    free(p);
}

static double
no_fixed_bytes(void *p)
{
    (void)p;
    return 0;
}

/* ---- CLOCK as lib/table.c does it today: a dense array of entries, a new
 * entry appended with its bit set, readers set a clear bit on a hit, the
 * hand skips the entry just inserted, clears set bits and evicts the first
 * clear one; removal moves the last entry into the freed slot (and the hand
 * stays, so that entry is looked at next). */
typedef struct clk {
    sim_cfg_t c;
    uint32_t *all, *slot;
    uint8_t *ref, *in;
    uint32_t n, hand;
    uint64_t w;
} clk_t;

static void *
clk_create(const sim_cfg_t *cfg)
{
    clk_t *p = xcalloc(1, sizeof(*p));

    p->c = *cfg;
    p->all = xcalloc(cfg->universe, sizeof(uint32_t));
    p->slot = xcalloc(cfg->universe, sizeof(uint32_t));
    p->ref = xcalloc(cfg->universe, 1);
    p->in = xcalloc(cfg->universe, 1);
    return p;
}

static int
clk_evict_one(clk_t *p, uint32_t keep)
{
    size_t steps;

    for (steps = 0; steps <= 2 * (size_t)p->n + 1 && p->n > 0; steps++) {
        uint32_t e;

        if (p->hand >= p->n)
            p->hand = 0;
        e = p->all[p->hand];
        if (e == keep) {
            p->hand++;
            continue;
        }
        if (p->ref[e]) {
            p->ref[e] = 0;
            p->hand++;
            continue;
        }
        p->in[e] = 0;
        p->w -= weight(&p->c, e);
        p->all[p->hand] = p->all[--p->n];
        p->slot[p->all[p->hand]] = p->hand;
        return 1;
    }
    return 0;
}

static int
clk_access(void *pp, uint32_t k, size_t i)
{
    clk_t *p = pp;

    (void)i;
    if (p->in[k]) {
        if (!p->ref[k])
            p->ref[k] = 1;
        return 1;
    }
    p->in[k] = 1;
    p->ref[k] = 1;
    p->slot[k] = p->n;
    p->all[p->n++] = k;
    p->w += weight(&p->c, k);
    while (p->w > p->c.cap)
        if (!clk_evict_one(p, k))
            break;
    return 0;
}

static void
clk_destroy(void *pp)
{
    clk_t *p = pp;

    free(p->all);
    free(p->slot);
    free(p->ref);
    free(p->in);
    free(p);
}

/* ---- ghost queues: the keys recently evicted from S3-FIFO's small queue.
 *
 * The cheap ghost keeps 16-bit fingerprints in buckets of four, each bucket
 * in age order: an insert shifts its bucket by one (forgetting the bucket's
 * oldest) and writes at the front; a hit removes the fingerprint.  With
 * entries / 4 buckets it remembers about the last `entries` keys at 2 bytes
 * each, and a key not there matches by chance with probability about
 * 4 / 65535 per lookup.  The exact ghost (a reference) remembers the last
 * `entries` keys exactly. */
typedef struct ghost {
    int exact;
    uint16_t *fp;       /* nb * 4 fingerprints, 0 = empty */
    uint32_t nb;
    uint32_t *stamp;    /* exact: insertion number + 1, 0 = absent */
    uint32_t seq, len;
} ghost_t;

static void
ghost_init(ghost_t *g, int exact, uint32_t entries, uint32_t universe)
{
    memset(g, 0, sizeof(*g));
    g->exact = exact;
    g->len = entries ? entries : 1;
    if (exact) {
        g->stamp = xcalloc(universe, sizeof(uint32_t));
    } else {
        g->nb = (g->len + 3) / 4;
        g->fp = xcalloc((size_t)g->nb * 4, sizeof(uint16_t));
    }
}

static void
ghost_fini(ghost_t *g)
{
    free(g->fp);
    free(g->stamp);
}

static uint16_t *
ghost_bucket(const ghost_t *g, uint32_t k, uint16_t *fp)
{
    uint64_t h = hash64((uint64_t)k + 0x51ed27a1u);
    uint16_t f = (uint16_t)(h >> 48);

    *fp = f ? f : 1;
    return g->fp + (size_t)(((h & 0xffffffffu) * g->nb) >> 32) * 4;
}

/* 1 if k was in the ghost (it is removed). */
static int
ghost_take(ghost_t *g, uint32_t k)
{
    uint16_t f, *b;
    int j;

    if (g->exact) {
        if (g->stamp[k] != 0 && g->seq - g->stamp[k] < g->len) {
            g->stamp[k] = 0;
            return 1;
        }
        return 0;
    }
    b = ghost_bucket(g, k, &f);
    for (j = 0; j < 4; j++)
        if (b[j] == f) {
            for (; j < 3; j++)
                b[j] = b[j + 1];
            b[3] = 0;
            return 1;
        }
    return 0;
}

static void
ghost_put(ghost_t *g, uint32_t k)
{
    uint16_t f, *b;

    if (g->exact) {
        g->stamp[k] = ++g->seq;
        return;
    }
    b = ghost_bucket(g, k, &f);
    memmove(b + 1, b, 3 * sizeof(*b));
    b[0] = f;
}

/* ---- S3-FIFO (Yang et al., SOSP'23): a small FIFO S (10% of the budget)
 * takes new keys, a main FIFO M the rest; readers bump a 2-bit counter.
 * S's tail goes to M if it was read while in S, else its key goes to the
 * ghost; M's tail is reinserted with its counter decremented while the
 * counter is not zero (M is a CLOCK with 2-bit counters).  A miss whose key
 * is in the ghost goes straight to M. */
typedef struct s3 {
    sim_cfg_t c;
    links_t l;
    queue_t s, m;
    uint8_t *where;     /* 0 absent, 1 S, 2 M */
    uint8_t *freq;      /* the readers' 2-bit counter */
    ghost_t g;
    uint64_t s_cap;
} s3_t;

static void *
s3_create_ghost(const sim_cfg_t *cfg, int exact)
{
    s3_t *p = xcalloc(1, sizeof(*p));

    p->c = *cfg;
    links_init(&p->l, cfg->universe);
    q_init(&p->s);
    q_init(&p->m);
    p->where = xcalloc(cfg->universe, 1);
    p->freq = xcalloc(cfg->universe, 1);
    ghost_init(&p->g, exact, cfg->entries - cfg->entries / 10, cfg->universe);
    p->s_cap = cfg->cap / 10 ? cfg->cap / 10 : 1;
    return p;
}

static void *
s3_create(const sim_cfg_t *cfg)
{
    return s3_create_ghost(cfg, 0);
}

static void *
s3x_create(const sim_cfg_t *cfg)
{
    return s3_create_ghost(cfg, 1);
}

/* One step of eviction; moving S's tail to M frees nothing, the caller
 * loops until the budget holds.  Each step either frees an entry, moves one
 * out of S for good, or decrements a counter that readers raised: O(1)
 * amortized. */
static void
s3_evict_step(s3_t *p)
{
    uint32_t v;

    if (p->s.n > 0 && (p->s.w > p->s_cap || p->m.n == 0)) {
        v = p->s.tail;
        q_remove(&p->l, &p->s, v, weight(&p->c, v));
        if (p->freq[v] > 0) {
            p->freq[v] = 0;
            q_push(&p->l, &p->m, v, weight(&p->c, v));
            p->where[v] = 2;
        } else {
            p->where[v] = 0;
            ghost_put(&p->g, v);
        }
        return;
    }
    v = p->m.tail;
    q_remove(&p->l, &p->m, v, weight(&p->c, v));
    if (p->freq[v] > 0) {
        p->freq[v]--;
        q_push(&p->l, &p->m, v, weight(&p->c, v));
    } else {
        p->where[v] = 0;
    }
}

static int
s3_access(void *pp, uint32_t k, size_t i)
{
    s3_t *p = pp;
    uint32_t w = weight(&p->c, k);

    (void)i;
    if (p->where[k]) {
        if (p->freq[k] < 3)     /* a reader's only write */
            p->freq[k]++;
        return 1;
    }
    p->freq[k] = 0;
    if (ghost_take(&p->g, k)) {
        q_push(&p->l, &p->m, k, w);
        p->where[k] = 2;
    } else {
        q_push(&p->l, &p->s, k, w);
        p->where[k] = 1;
    }
    while (p->s.w + p->m.w > p->c.cap && p->s.n + p->m.n > 1)
        s3_evict_step(p);
    return 0;
}

static double
s3_fixed_bytes(void *pp)
{
    s3_t *p = pp;

    return p->g.exact ? 0 : (double)p->g.nb * 4 * sizeof(uint16_t);
}

static void
s3_destroy(void *pp)
{
    s3_t *p = pp;

    links_fini(&p->l);
    ghost_fini(&p->g);
    free(p->where);
    free(p->freq);
    free(p);
}

/* ---- the count-min sketch of W-TinyLFU: 4 rows of 4-bit counters, each row
 * as wide as the next power of two above the entry count (so 2 to 4 bytes
 * per entry in all); every 10 * entries increments, every counter is
 * halved, so old popularity fades. */
typedef struct sketch {
    uint8_t *t;         /* 4 rows * width counters, two per byte */
    uint32_t width;     /* counters per row, a power of two */
    uint64_t adds, period;
} sketch_t;

static void
sketch_init(sketch_t *s, uint32_t entries)
{
    s->width = 16;
    while (s->width < entries)
        s->width *= 2;
    s->t = xcalloc((size_t)s->width * 2, 1);
    s->adds = 0;
    s->period = (uint64_t)10 * (entries ? entries : 1);
}

static uint32_t
sketch_idx(const sketch_t *s, uint64_t h, int row)
{
    uint64_t x = h * (0x9e3779b97f4a7c15ull + 2 * (uint64_t)row) + (uint64_t)row;

    return (uint32_t)(row * s->width + ((x >> 32) & (s->width - 1)));
}

static unsigned
sketch_get_ctr(const sketch_t *s, uint32_t i)
{
    return (s->t[i / 2] >> (4 * (i & 1))) & 15;
}

static unsigned
sketch_estimate(const sketch_t *s, uint32_t k)
{
    uint64_t h = hash64(k);
    unsigned m = 15;
    int r;

    for (r = 0; r < 4; r++) {
        unsigned v = sketch_get_ctr(s, sketch_idx(s, h, r));

        if (v < m)
            m = v;
    }
    return m;
}

static void
sketch_add(sketch_t *s, uint32_t k)
{
    uint64_t h = hash64(k);
    int r;

    for (r = 0; r < 4; r++) {
        uint32_t i = sketch_idx(s, h, r);

        if (sketch_get_ctr(s, i) < 15)
            s->t[i / 2] = (uint8_t)(s->t[i / 2] + (1u << (4 * (i & 1))));
    }
    if (++s->adds >= s->period) {
        size_t j;

        for (j = 0; j < (size_t)s->width * 2; j++)
            s->t[j] = (uint8_t)((s->t[j] >> 1) & 0x77);
        s->adds /= 2;
    }
}

/* ---- W-TinyLFU (Einziger, Friedman, Manes): a window (1% of the budget)
 * takes new keys; its victims enter the main space (a segmented LRU,
 * probation + protected, 80% protected) only when the sketch says they are
 * more frequent than main's victim.
 *
 * Textbook (`rd` = 0): every request increments the sketch and a hit moves
 * the entry within LRU lists: two shared writes per read.
 *
 * Realizable (`rd` = 1): readers only bump a 2-bit hit counter in the entry.
 * The writer increments the sketch on each insert (it sees every miss: the
 * fill is a put), and folds an entry's hit counter into the sketch when it
 * meets the entry at a queue's tail, where a counter that is not zero also
 * buys the entry a second chance (window and protected: back to the head;
 * probation: promotion to protected), as CLOCK does for LRU. */
enum { WT_NONE, WT_WIN, WT_PROB, WT_PROT };

typedef struct wt {
    sim_cfg_t c;
    int rd;
    links_t l;
    queue_t win, prob, prot;
    uint8_t *where, *hits;
    sketch_t sk;
    uint64_t win_cap, prot_cap;
} wt_t;

static void *
wt_create_mode(const sim_cfg_t *cfg, int rd)
{
    wt_t *p = xcalloc(1, sizeof(*p));

    p->c = *cfg;
    p->rd = rd;
    links_init(&p->l, cfg->universe);
    q_init(&p->win);
    q_init(&p->prob);
    q_init(&p->prot);
    p->where = xcalloc(cfg->universe, 1);
    p->hits = xcalloc(cfg->universe, 1);
    sketch_init(&p->sk, cfg->entries);
    p->win_cap = cfg->cap / 100 ? cfg->cap / 100 : 1;
    p->prot_cap = (cfg->cap - p->win_cap) * 8 / 10;
    return p;
}

static void *
wt_create(const sim_cfg_t *cfg)
{
    return wt_create_mode(cfg, 0);
}

static void *
wtr_create(const sim_cfg_t *cfg)
{
    return wt_create_mode(cfg, 1);
}

static queue_t *
wt_queue(wt_t *p, uint32_t k)
{
    switch (p->where[k]) {
    case WT_WIN:
        return &p->win;
    case WT_PROB:
        return &p->prob;
    default:
        return &p->prot;
    }
}

static void
wt_move(wt_t *p, uint32_t k, int to)
{
    uint32_t w = weight(&p->c, k);

    q_remove(&p->l, wt_queue(p, k), k, w);
    p->where[k] = (uint8_t)to;
    q_push(&p->l, wt_queue(p, k), k, w);
}

static void
wt_drop(wt_t *p, uint32_t k)
{
    q_remove(&p->l, wt_queue(p, k), k, weight(&p->c, k));
    p->where[k] = WT_NONE;
}

/* Realizable variant: feed k's reader hits to the sketch; 1 if it had any. */
static int
wt_fold(wt_t *p, uint32_t k)
{
    unsigned h = p->hits[k];

    if (!p->rd || h == 0)
        return 0;
    p->hits[k] = 0;
    while (h-- > 0)
        sketch_add(&p->sk, k);
    return 1;
}

/* Protected over its share: its tail goes back to probation (realizable:
 * unless it was read since the writer last met it). */
static void
wt_trim_protected(wt_t *p)
{
    while (p->prot.w > p->prot_cap && p->prot.n > 0) {
        uint32_t t = p->prot.tail;

        wt_move(p, t, wt_fold(p, t) ? WT_PROT : WT_PROB);
    }
}

static uint64_t
wt_used(const wt_t *p)
{
    return p->win.w + p->prob.w + p->prot.w;
}

/* Main's victim: probation's tail (realizable: entries read while in
 * probation are promoted on the way), else protected's. */
static uint32_t
wt_victim(wt_t *p, uint32_t cand)
{
    for (;;) {
        uint32_t v = p->prob.tail;

        if (v == NIL || v == cand) {
            v = p->prot.tail;
            if (v != NIL && p->rd && wt_fold(p, v)) {
                wt_move(p, v, WT_PROT);
                continue;
            }
            return v != NIL ? v : p->prob.tail;
        }
        if (p->rd && wt_fold(p, v)) {
            wt_move(p, v, WT_PROT);
            wt_trim_protected(p);
            continue;
        }
        return v;
    }
}

static void
wt_evict(wt_t *p)
{
    /* Window victims become candidates for the main space. */
    while (p->win.w > p->win_cap && p->win.n > 1) {
        uint32_t c = p->win.tail;

        if (p->rd && wt_fold(p, c)) {
            wt_move(p, c, WT_WIN);
            continue;
        }
        wt_move(p, c, WT_PROB);
        /* Duel: the candidate against main's victim while over budget. */
        while (wt_used(p) > p->c.cap) {
            uint32_t v = wt_victim(p, c);

            if (v == NIL || v == c) {
                wt_drop(p, c);
                break;
            }
            if (sketch_estimate(&p->sk, c) > sketch_estimate(&p->sk, v)) {
                wt_drop(p, v);
            } else {
                wt_drop(p, c);
                break;
            }
        }
    }
    while (wt_used(p) > p->c.cap) {
        uint32_t v = p->prob.n ? p->prob.tail : p->prot.n ? p->prot.tail : p->win.tail;

        if (p->win.n + p->prob.n + p->prot.n <= 1)
            break;
        wt_drop(p, v);
    }
}

static int
wt_access(void *pp, uint32_t k, size_t i)
{
    wt_t *p = pp;

    (void)i;
    if (p->where[k] != WT_NONE) {
        if (p->rd) {
            if (p->hits[k] < 3)     /* a reader's only write */
                p->hits[k]++;
            return 1;
        }
        sketch_add(&p->sk, k);
        if (p->where[k] == WT_PROB) {
            wt_move(p, k, WT_PROT);
            wt_trim_protected(p);
        } else {
            wt_move(p, k, p->where[k]);
        }
        return 1;
    }
    sketch_add(&p->sk, k);
    p->hits[k] = 0;
    p->where[k] = WT_WIN;
    q_push(&p->l, &p->win, k, weight(&p->c, k));
    wt_evict(p);
    return 0;
}

static double
wt_fixed_bytes(void *pp)
{
    wt_t *p = pp;

    return (double)p->sk.width * 2;
}

static void
wt_destroy(void *pp)
{
    wt_t *p = pp;

    links_fini(&p->l);
    free(p->where);
    free(p->hits);
    free(p->sk.t);
    free(p);
}

/* ---- the library's table (lib/tab.c), not a simulation: a gc_tab_t with
 * max_entries = the budget (max_bytes for the weighted trace), one
 * namespace, the key as 4 bytes and a value that makes key + value weigh
 * what the trace says (8 bytes when unweighted).  A request is a
 * gc_tab_get; a miss is filled with gc_tab_put.  This thread is both the
 * writer and the reader, which tab.h allows.  Its ns per request include
 * hashing, the index probe and the value copy, unlike the simulated rows. */
typedef struct tabp {
    sim_cfg_t c;
    gc_tab_t *t;
    uint16_t ns;
    unsigned char buf[4096];
} tabp_t;

static void
tab_fail(const char *what, int rc)
{
    fprintf(stderr, "gencache_hitratio: %s: %s\n", what, strerror(-rc));
    exit(1);
}

static void *
tab_create(const sim_cfg_t *cfg)
{
    tabp_t *p = xcalloc(1, sizeof(*p));
    gc_tab_opts_t o = {0};
    int rc;

    p->c = *cfg;
    if (cfg->sizes != NULL)
        o.max_bytes = cfg->cap;
    else
        o.max_entries = cfg->cap;
    if ((rc = gc_tab_new(&o, &p->t)) != 0)
        tab_fail("gc_tab_new", rc);
    if ((rc = gc_tab_ns_intern(p->t, "hr", 2, &p->ns)) != 0)
        tab_fail("gc_tab_ns_intern", rc);
    return p;
}

static int
tab_access(void *pp, uint32_t k, size_t i)
{
    tabp_t *p = pp;
    gc_tab_key_t key = {p->ns, &k, sizeof(k), gc_tab_hash(p->ns, &k, sizeof(k))};
    size_t vlen = p->c.sizes != NULL ? p->c.sizes[k] - sizeof(k) : 8;
    int rc = gc_tab_get(p->t, &key, p->buf, sizeof(p->buf), NULL, NULL);

    (void)i;
    if (rc == 0)
        return 1;
    if (rc != -ENOENT)
        tab_fail("gc_tab_get", rc);
    if ((rc = gc_tab_put(p->t, &key, p->buf, vlen, 0, NULL)) != 0)
        tab_fail("gc_tab_put", rc);
    return 0;
}

/* The ghost as gc_tab_new sizes it: buckets of four 16-bit fingerprints
 * (8 B), a power of two of them holding at least 90% of max_entries (65536
 * fingerprints under max_bytes alone). */
static double
tab_fixed_bytes(void *pp)
{
    tabp_t *p = pp;
    uint64_t g = p->c.sizes == NULL ? p->c.cap - p->c.cap / 10 : 65536, nbk = 1;

    while (nbk * 4 < g)
        nbk *= 2;
    return (double)nbk * 8;
}

static void
tab_destroy(void *pp)
{
    tabp_t *p = pp;

    gc_tab_free(p->t);
    free(p);
}

/* ---- Belady's OPT: evict the entry whose next use is farthest (a max-heap
 * on next use, indexed by key); a new key used farther than everything
 * cached is evicted at once, i.e. not admitted.  With sizes it is the same
 * rule, which is no longer optimal but a useful reference. */
typedef struct opt {
    sim_cfg_t c;
    uint32_t *heap, *pos, *nu;  /* pos: heap index + 1, 0 = absent */
    uint32_t n;
    uint64_t w;
} opt_t;

static void *
opt_create(const sim_cfg_t *cfg)
{
    opt_t *p = xcalloc(1, sizeof(*p));

    p->c = *cfg;
    p->heap = xcalloc(cfg->universe, sizeof(uint32_t));
    p->pos = xcalloc(cfg->universe, sizeof(uint32_t));
    p->nu = xcalloc(cfg->universe, sizeof(uint32_t));
    return p;
}

static void
opt_set(opt_t *p, uint32_t i, uint32_t k)
{
    p->heap[i] = k;
    p->pos[k] = i + 1;
}

static void
opt_sift(opt_t *p, uint32_t i)
{
    uint32_t k = p->heap[i];

    while (i > 0 && p->nu[p->heap[(i - 1) / 2]] < p->nu[k]) {
        opt_set(p, i, p->heap[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    for (;;) {
        uint32_t c = 2 * i + 1;

        if (c >= p->n)
            break;
        if (c + 1 < p->n && p->nu[p->heap[c + 1]] > p->nu[p->heap[c]])
            c++;
        if (p->nu[p->heap[c]] <= p->nu[k])
            break;
        opt_set(p, i, p->heap[c]);
        i = c;
    }
    opt_set(p, i, k);
}

static int
opt_access(void *pp, uint32_t k, size_t i)
{
    opt_t *p = pp;

    p->nu[k] = p->c.next_use[i];
    if (p->pos[k]) {
        opt_sift(p, p->pos[k] - 1);
        return 1;
    }
    opt_set(p, p->n++, k);
    opt_sift(p, p->n - 1);
    p->w += weight(&p->c, k);
    while (p->w > p->c.cap && p->n > 0) {
        uint32_t v = p->heap[0];

        p->w -= weight(&p->c, v);
        p->pos[v] = 0;
        if (--p->n > 0) {
            opt_set(p, 0, p->heap[p->n]);
            opt_sift(p, 0);
        }
    }
    return 0;
}

static void
opt_destroy(void *pp)
{
    opt_t *p = pp;

    free(p->heap);
    free(p->pos);
    free(p->nu);
    free(p);
}

/* Per-entry bytes as gencache's table would need them, beyond the entry
 * pointer array and slot index that the dense array of today already has:
 *   LRU: two 32-bit links (and a lock for readers: not realizable);
 *   CLOCK: the ref byte (the dense array and slot exist today);
 *   S3-FIFO: two 32-bit links for S and M (removals from the middle by
 *     delete and expiry need them) + a byte (2-bit counter, queue bit);
 *   W-TinyLFU: two 32-bit links + a byte (2-bit hits, 2-bit queue);
 *   gencache's table: its S3-FIFO links and counter byte (qprev, qnext,
 *     freq in ent_t) + its ghost;
 *   OPT: offline, not a real policy. */
enum { P_LRU, P_CLOCK, P_S3, P_S3X, P_TAB, P_WT, P_WTR, P_OPT, NPOL };

static const policy_ops_t policies[NPOL] = {
    [P_LRU] = {"LRU", 8, lru_create, lru_access, no_fixed_bytes, lru_destroy},
    [P_CLOCK] = {"CLOCK", 1, clk_create, clk_access, no_fixed_bytes, clk_destroy},
    [P_S3] = {"S3-FIFO", 9, s3_create, s3_access, s3_fixed_bytes, s3_destroy},
    [P_S3X] = {"S3-FIFO exact ghost", 9, s3x_create, s3_access, s3_fixed_bytes, s3_destroy},
    [P_TAB] = {"gencache (lib/tab.c)", 9, tab_create, tab_access, tab_fixed_bytes, tab_destroy},
    [P_WT] = {"W-TinyLFU textbook", 9, wt_create, wt_access, wt_fixed_bytes, wt_destroy},
    [P_WTR] = {"W-TinyLFU reader bits", 9, wtr_create, wt_access, wt_fixed_bytes, wt_destroy},
    [P_OPT] = {"Belady OPT", 0, opt_create, opt_access, no_fixed_bytes, opt_destroy},
};

/* ---------------------------------------------------------------- runs */

typedef struct result {
    double ratio;           /* hits / counted requests */
    double before, after;   /* scan traces: the windows' hit ratios */
    double ns;              /* simulator time */
    double meta;            /* metadata bytes per entry */
} result_t;

/* next_use[i]: the index of the next request for key[i], or UINT32_MAX. */
static uint32_t *
next_uses(const trace_t *t)
{
    uint32_t *nu = xcalloc(t->n, sizeof(uint32_t));
    uint32_t *last = xcalloc(t->universe, sizeof(uint32_t));
    size_t i;

    for (i = 0; i < t->universe; i++)
        last[i] = UINT32_MAX;
    for (i = t->n; i-- > 0;) {
        nu[i] = last[t->key[i]];
        last[t->key[i]] = (uint32_t)i;
    }
    free(last);
    return nu;
}

static result_t
simulate(int pol, const trace_t *t, uint64_t cap, uint32_t entries, const uint32_t *nu)
{
    const policy_ops_t *o = &policies[pol];
    sim_cfg_t cfg = {t->universe, cap, entries, t->size, nu};
    size_t i, hits = 0, counted = 0, wh[3] = {0, 0, 0}, wn[3] = {0, 0, 0};
    result_t r;
    void *p = o->create(&cfg);
    double t0 = now_ns();

    for (i = 0; i < t->n; i++) {
        int h = o->access(p, t->key[i], i);

        if (t->win != NULL) {
            if (t->win[i] == 3)
                continue;
            if (t->win[i] != 0) {
                wh[t->win[i]] += (size_t)h;
                wn[t->win[i]]++;
            }
        }
        hits += (size_t)h;
        counted++;
    }
    r.ns = (now_ns() - t0) / (double)t->n;
    r.ratio = counted ? (double)hits / (double)counted : 0;
    r.before = wn[1] ? (double)wh[1] / (double)wn[1] : 0;
    r.after = wn[2] ? (double)wh[2] / (double)wn[2] : 0;
    r.meta = o->entry_bytes + o->fixed_bytes(p) / (double)(entries ? entries : 1);
    o->destroy(p);
    return r;
}

/* Which traces; the cache sizes are fractions of the distinct keys. */
enum { T_Z06, T_Z08, T_Z10, T_Z12, T_SCAN, T_LOOP, T_SHIFT, T_VAR, NTRACE };

static const char *const trace_names[NTRACE] = {
    "zipf 0.6", "zipf 0.8", "zipf 1.0", "zipf 1.2",
    "scan 10x (hot set)", "loop 1.1x", "shifting hot set", "var size, bytes",
};
static const double fracs[3] = {0.001, 0.01, 0.1};
static const char *const frac_names[3] = {"0.1%", "1%", "10%"};

static result_t res[NTRACE][3][NPOL];
static double ns_sum[NPOL];
static double meta_sum[NPOL];
static size_t req_sum[NPOL], meta_n[NPOL];

static void
run_trace(int tr, int fi, const trace_t *t, uint64_t cap, uint32_t entries)
{
    uint32_t *nu = next_uses(t);
    int p;

    for (p = 0; p < NPOL; p++) {
        result_t r = simulate(p, t, cap, entries, nu);

        res[tr][fi][p] = r;
        ns_sum[p] += r.ns * (double)t->n;
        req_sum[p] += t->n;
        if (!t->size) {
            meta_sum[p] += r.meta;
            meta_n[p]++;
        }
    }
    free(nu);
    if (!json) {
        fprintf(stderr, ".");
        fflush(stderr);
    }
}

static void
run_all(void)
{
    uint32_t nkeys = quick ? 100000 : 1000000;
    size_t nreq = quick ? 1000000 : 10000000;
    static const double alphas[4] = {0.6, 0.8, 1.0, 1.2};
    trace_t t;
    int a, fi;

    for (a = 0; a < 4; a++) {
        trace_zipf(&t, nkeys, nreq, alphas[a], 1000 + (uint64_t)a);
        for (fi = 0; fi < 3; fi++) {
            uint32_t cap = (uint32_t)(fracs[fi] * nkeys);

            run_trace(T_Z06 + a, fi, &t, cap, cap);
        }
        trace_free(&t);
    }
    trace_shift(&t, nkeys, nreq, 2000);
    for (fi = 0; fi < 3; fi++) {
        uint32_t cap = (uint32_t)(fracs[fi] * nkeys);

        run_trace(T_SHIFT, fi, &t, cap, cap);
    }
    trace_free(&t);
    for (fi = 0; fi < 3; fi++) {
        uint32_t cap = (uint32_t)(fracs[fi] * nkeys);

        trace_scan(&t, nkeys, cap, 3000 + (uint64_t)fi);
        run_trace(T_SCAN, fi, &t, cap, cap);
        trace_free(&t);
        trace_loop(&t, cap);
        run_trace(T_LOOP, fi, &t, cap, cap);
        trace_free(&t);
    }
    trace_varsize(&t, nkeys, nreq, 4000);
    {
        uint64_t total = 0;
        uint32_t k;

        for (k = 0; k < nkeys; k++)
            total += t.size[k];
        for (fi = 0; fi < 3; fi++) {
            uint64_t cap = (uint64_t)(fracs[fi] * (double)total);

            run_trace(T_VAR, fi, &t, cap, (uint32_t)(fracs[fi] * nkeys));
        }
    }
    trace_free(&t);
    if (!json)
        fprintf(stderr, "\n");
}

/* ---------------------------------------------------------------- output */

/* The realizable candidates whose targets are checked. */
static const int candidates[] = {P_S3, P_TAB, P_WTR};
#define NCAND ((int)(sizeof(candidates) / sizeof(candidates[0])))

static void
print_table(void)
{
    int tr, fi, p;

    printf("| trace | size |");
    for (p = 0; p < NPOL; p++)
        printf(" %s |", policies[p].name);
    printf("\n|---|---|");
    for (p = 0; p < NPOL; p++)
        printf("---:|");
    printf("\n");
    for (tr = 0; tr < NTRACE; tr++)
        for (fi = 0; fi < 3; fi++) {
            printf("| %s | %s |", trace_names[tr], frac_names[fi]);
            for (p = 0; p < NPOL; p++)
                printf(" %.2f |", 100 * res[tr][fi][p].ratio);
            printf("\n");
        }
    printf("\nScan trace, hit ratio of the hot requests in the cache-size window "
           "just before / just after each scan:\n\n| size |");
    for (p = 0; p < NPOL; p++)
        printf(" %s |", policies[p].name);
    printf("\n|---|");
    for (p = 0; p < NPOL; p++)
        printf("---:|");
    printf("\n");
    for (fi = 0; fi < 3; fi++) {
        printf("| %s |", frac_names[fi]);
        for (p = 0; p < NPOL; p++)
            printf(" %.1f / %.1f |", 100 * res[T_SCAN][fi][p].before,
                   100 * res[T_SCAN][fi][p].after);
        printf("\n");
    }
    printf("\nSimulator cost and metadata:\n\n| policy | ns/request | metadata B/entry |\n"
           "|---|---:|---:|\n");
    for (p = 0; p < NPOL; p++)
        printf("| %s | %.1f | %.1f |\n", policies[p].name, ns_sum[p] / (double)req_sum[p],
               meta_n[p] ? meta_sum[p] / (double)meta_n[p] : 0);
    printf("\n");
}

/* Checks every target for the candidates; prints JSON or a summary. */
static void
check_targets(void)
{
    char wl[96], fig[96], base[96];
    int tr, fi, c, missed[NPOL] = {0}, checked[NPOL] = {0};

    if (!json)
        printf("Targets (S3-FIFO, the library's table and realizable W-TinyLFU):\n\n| policy | target | "
               "trace | size | value | against | met |\n|---|---|---|---|---:|---:|---|\n");
    for (tr = 0; tr < NTRACE; tr++)
        for (fi = 0; fi < 3; fi++) {
            const result_t *r = res[tr][fi];
            int p;

            snprintf(wl, sizeof(wl), "%s, %s", trace_names[tr], frac_names[fi]);
            for (p = 0; p < NPOL; p++) {
                double lru = r[P_LRU].ratio, clock = r[P_CLOCK].ratio;
                int is_cand = 0, met = -1;

                for (c = 0; c < NCAND; c++)
                    is_cand |= candidates[c] == p;
                if (is_cand)
                    met = r[p].ratio >= lru && r[p].ratio >= clock;
                if (json) {
                    snprintf(fig, sizeof(fig), "%s hit ratio", policies[p].name);
                    bench_emit((row_t){wl, fig, 100 * r[p].ratio, "%", "LRU", 100 * lru,
                                       ">= LRU and CLOCK", met});
                }
                if (!is_cand)
                    continue;
                checked[p]++;
                if (!met) {
                    missed[p]++;
                    if (!json)
                        printf("| %s | >= LRU and CLOCK | %s | %s | %.2f | %.2f | **no** |\n",
                               policies[p].name, trace_names[tr], frac_names[fi],
                               100 * r[p].ratio, 100 * (lru > clock ? lru : clock));
                }
            }
            for (c = 0; c < NCAND; c++) {
                int p2 = candidates[c];
                double v = r[p2].ratio;

                if (fi == 1 && tr >= T_Z08 && tr <= T_Z12) {
                    int met = v >= r[P_LRU].ratio + 0.05 || v >= r[P_OPT].ratio - 0.03;

                    if (json) {
                        snprintf(fig, sizeof(fig), "%s vs OPT", policies[p2].name);
                        bench_emit((row_t){wl, fig, 100 * v, "%", "Belady OPT",
                                           100 * r[P_OPT].ratio,
                                           ">= LRU + 5 pts or >= OPT - 3 pts", met});
                    } else {
                        printf("| %s | LRU + 5 or OPT - 3 | %s | %s | %.2f | LRU %.2f, "
                               "OPT %.2f | %s |\n", policies[p2].name, trace_names[tr],
                               frac_names[fi], 100 * v, 100 * r[P_LRU].ratio,
                               100 * r[P_OPT].ratio, met ? "yes" : "**no**");
                    }
                    checked[p2]++;
                    missed[p2] += !met;
                }
                if (tr == T_SCAN) {
                    int met = r[p2].after >= 0.9 * r[p2].before;

                    if (json) {
                        snprintf(fig, sizeof(fig), "%s hot after scan", policies[p2].name);
                        bench_emit((row_t){wl, fig, 100 * r[p2].after, "%",
                                           "hot before scan", 100 * r[p2].before,
                                           ">= 0.9x before", met});
                    } else {
                        printf("| %s | after scan >= 0.9x before | %s | %s | %.2f | "
                               "%.2f | %s |\n", policies[p2].name, trace_names[tr],
                               frac_names[fi], 100 * r[p2].after, 100 * r[p2].before,
                               met ? "yes" : "**no**");
                    }
                    checked[p2]++;
                    missed[p2] += !met;
                }
            }
        }
    for (c = 0; c < NCAND; c++) {
        int p = candidates[c];

        if (json) {
            snprintf(base, sizeof(base), "%s", policies[p].name);
            snprintf(wl, sizeof(wl), "cost, %s", policies[p].name);
            bench_emit((row_t){wl, "simulator ns per request", ns_sum[p] / (double)req_sum[p],
                               "ns", NULL, 0, "", -1});
            bench_emit((row_t){wl, "metadata per entry", meta_sum[p] / (double)meta_n[p],
                               "B/entry", NULL, 0, "", -1});
            bench_emit((row_t){"targets", base, (double)(checked[p] - missed[p]), "met",
                               "checked", (double)checked[p], "all", missed[p] == 0});
        } else {
            printf("\n%s: %d of %d target rows met (rows with >= LRU and CLOCK shown only "
                   "when missed).\n", policies[p].name, checked[p] - missed[p], checked[p]);
        }
    }
}

/* GENCACHE_HITRATIO_PLOT_FILE: where to write "frac policy... " rows of
 * hit ratio by cache size for the chart (bench/plot-hitratio.sh). */
static void
write_plot_data(void)
{
    const char *path = getenv("GENCACHE_HITRATIO_PLOT_FILE");
    FILE *f;
    int tr, fi, p;

    if (path == NULL)
        return;
    f = fopen(path, "w");
    if (f == NULL) {
        perror(path);
        return;
    }
    for (tr = 0; tr < NTRACE; tr++) {
        fprintf(f, "# %s\n", trace_names[tr]);
        for (fi = 0; fi < 3; fi++) {
            fprintf(f, "%g", 100 * fracs[fi]);
            for (p = 0; p < NPOL; p++)
                fprintf(f, " %.4f", 100 * res[tr][fi][p].ratio);
            fprintf(f, "\n");
        }
        fprintf(f, "\n\n");
    }
    fclose(f);
}

int
main(int argc, char **argv)
{
    int i;

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
    run_all();
    if (!json)
        print_table();
    check_targets();
    write_plot_data();
    return 0;
}

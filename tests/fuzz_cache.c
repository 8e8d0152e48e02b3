/*
 * Differential fuzz target: random sequences of put, get, delete, expire,
 * touch, persist, clock advance, cast, batch, all, and worker kill + restart,
 * applied to a cache and to a simple reference model; any divergence aborts.
 *
 * Built two ways:
 *   - with clang -fsanitize=fuzzer (GC_FUZZ=ON): a libFuzzer target;
 *   - with any compiler: a replay driver (main below) that runs every file
 *     of the corpus directories given on the command line, so the corpus is
 *     a regression test in every build (CTest "fuzz_replay").
 *
 * The cache keeps data across restarts (keep_data), so a kill never changes
 * the model.  All writes are synchronous calls or casts followed by a sync,
 * and the clock is manual, so the model can predict every answer.
 */
#include <gencache/gencache.h>

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define NS_COUNT 2
#define KEY_COUNT 8
#define VALUE_MAX 24

static const char *const ns_names[NS_COUNT] = { "cache", "other" };

typedef struct model_entry {
    int live;
    uint64_t deadline;   /* 0: none */
    int64_t ttl;         /* 0: none */
    size_t len;
    unsigned char value[VALUE_MAX];
} model_entry_t;

typedef struct fuzz {
    cache_t *c;
    actor_clock_t *clk;
    uint64_t now;
    model_entry_t m[NS_COUNT][KEY_COUNT];
    const uint8_t *p, *end;
} fuzz_t;

#define FAIL(...)                                                       \
    do {                                                                \
        fprintf(stderr, "fuzz_cache divergence: " __VA_ARGS__);         \
        fputc('\n', stderr);                                            \
        abort();                                                        \
    } while (0)

static unsigned
next(fuzz_t *f)
{
    return f->p < f->end ? *f->p++ : 0;
}

static void
key_of(unsigned k, char out[8])
{
    snprintf(out, 8, "k%u", k);
}

/* The model's view: is (ns, k) live now? Expired entries read as absent. */
static model_entry_t *
model_get(fuzz_t *f, unsigned ns, unsigned k)
{
    model_entry_t *e = &f->m[ns][k];

    if (!e->live)
        return NULL;
    if (e->deadline != 0 && e->deadline <= f->now) {
        e->live = 0;
        return NULL;
    }
    return e;
}

static int64_t
pick_ttl(fuzz_t *f)
{
    unsigned t = next(f) % 4;

    if (t == 0)
        return CACHE_TTL_NONE;
    if (t == 1)
        return CACHE_TTL_DEFAULT;  /* the cache default below: 40 ms */
    return 1 + (int64_t)(next(f) % 60);
}

static int64_t
resolve_ttl(int64_t ttl)
{
    if (ttl == CACHE_TTL_NONE)
        return 0;
    if (ttl == CACHE_TTL_DEFAULT)
        return 40;
    return ttl;
}

static void
model_put(fuzz_t *f, unsigned ns, unsigned k, const unsigned char *v, size_t len,
          int64_t ttl)
{
    model_entry_t *e = &f->m[ns][k];

    e->live = 1;
    e->ttl = resolve_ttl(ttl);
    e->deadline = e->ttl ? f->now + (uint64_t)e->ttl : 0;
    e->len = len;
    memcpy(e->value, v, len);
}

static void
check_get(fuzz_t *f, unsigned ns, unsigned k)
{
    char key[8], buf[VALUE_MAX];
    size_t len = 0;
    int64_t ttl = 0;
    model_entry_t *e = model_get(f, ns, k);
    int rc;

    key_of(k, key);
    rc = cache_get(f->c, ns_names[ns], key, strlen(key), buf, sizeof(buf), &len);
    if (e == NULL) {
        if (rc != -ENOENT)
            FAIL("get %s/%s: model absent, cache rc %d", ns_names[ns], key, rc);
        return;
    }
    if (rc != 0 || len != e->len || memcmp(buf, e->value, len) != 0)
        FAIL("get %s/%s: rc %d len %zu, model len %zu", ns_names[ns], key, rc, len, e->len);
    rc = cache_ttl(f->c, ns_names[ns], key, strlen(key), &ttl);
    if (rc != 0)
        FAIL("ttl %s/%s: rc %d", ns_names[ns], key, rc);
    if (e->deadline == 0 ? ttl != CACHE_TTL_NONE : ttl != (int64_t)(e->deadline - f->now))
        FAIL("ttl %s/%s: %lld, model deadline %llu now %llu", ns_names[ns], key,
             (long long)ttl, (unsigned long long)e->deadline, (unsigned long long)f->now);
}

static void
check_all(fuzz_t *f, unsigned ns)
{
    cache_record_t *r;
    size_t n = 0, want = 0, i, j = 0;
    unsigned k;
    int rc = cache_all(f->c, ns_names[ns], "k*", &r, &n, 5000);

    if (rc != 0)
        FAIL("all %s: rc %d", ns_names[ns], rc);
    /* Keys k0..k7 sort in index order. */
    for (k = 0; k < KEY_COUNT; k++) {
        model_entry_t *e = model_get(f, ns, k);
        char key[8];

        if (e == NULL)
            continue;
        want++;
        key_of(k, key);
        if (j >= n || r[j].key_len != strlen(key) || memcmp(r[j].key, key, r[j].key_len) != 0 ||
            r[j].value_len != e->len || memcmp(r[j].value, e->value, e->len) != 0)
            FAIL("all %s: record %zu differs (model key %s)", ns_names[ns], j, key);
        j++;
    }
    if (n != want)
        FAIL("all %s: %zu records, model %zu", ns_names[ns], n, want);
    for (i = 1; i < n; i++)
        if (r[i - 1].key_len == r[i].key_len &&
            memcmp(r[i - 1].key, r[i].key, r[i].key_len) >= 0)
            FAIL("all %s: not in key order", ns_names[ns]);
    cache_records_free(r);
}

static void
kill_and_restart(fuzz_t *f)
{
    actor_t *w = cache_worker(f->c), *nw = NULL;
    int rc;

    if (w == NULL)
        FAIL("no worker before kill");
    actor_exit(w, ACTOR_KILLED);
    if (actor_wait(w, 5000, NULL) != 0)
        FAIL("worker did not exit");
    actor_release(w);
    rc = cache_child_start(f->c, &nw);
    if (rc != 0 || nw == NULL)
        FAIL("restart: rc %d", rc);
    actor_release(nw);
}

static void
step(fuzz_t *f)
{
    unsigned op = next(f) % 12, ns = next(f) % NS_COUNT, k = next(f) % KEY_COUNT;
    char key[8];
    unsigned char v[VALUE_MAX];
    size_t len;
    model_entry_t *e;
    int rc;
    int64_t ttl;

    key_of(k, key);
    switch (op) {
    case 0: /* sync put */
    case 1: /* cast put, then sync */
        len = next(f) % VALUE_MAX;
        memset(v, (int)next(f), len);
        ttl = pick_ttl(f);
        if (op == 0) {
            rc = cache_put(f->c, ns_names[ns], key, strlen(key), v, len, ttl);
        } else {
            cache_op_t o = { .kind = CACHE_OP_PUT, .ns = ns_names[ns], .key = key,
                             .key_len = strlen(key), .value = v, .value_len = len,
                             .ttl_ms = ttl };
            rc = cache_cast(f->c, &o);
            if (rc == 0)
                rc = cache_sync(f->c, 5000);
        }
        if (rc != 0)
            FAIL("put %s/%s: rc %d", ns_names[ns], key, rc);
        model_put(f, ns, k, v, len, ttl);
        break;
    case 2:
        check_get(f, ns, k);
        break;
    case 3: /* delete: a live key deletes with 0, anything else -ENOENT */
        e = model_get(f, ns, k);
        rc = cache_delete(f->c, ns_names[ns], key, strlen(key));
        if (rc != (e != NULL ? 0 : -ENOENT))
            FAIL("delete %s/%s: rc %d, model %s", ns_names[ns], key, rc,
                 e ? "live" : "absent");
        f->m[ns][k].live = 0;
        break;
    case 4: /* expire with a new TTL */
    case 5: /* touch */
    case 6: /* persist */
        e = model_get(f, ns, k);
        ttl = 1 + (int64_t)(next(f) % 60);
        rc = op == 4 ? cache_expire(f->c, ns_names[ns], key, strlen(key), ttl)
           : op == 5 ? cache_touch(f->c, ns_names[ns], key, strlen(key))
                     : cache_persist(f->c, ns_names[ns], key, strlen(key));
        if ((e == NULL) != (rc == -ENOENT) || (e != NULL && rc != 0))
            FAIL("ttl op %u %s/%s: rc %d, model %s", op, ns_names[ns], key, rc,
                 e ? "live" : "absent");
        if (e != NULL) {
            if (op == 4)
                e->ttl = ttl;
            else if (op == 6)
                e->ttl = 0;
            e->deadline = e->ttl ? f->now + (uint64_t)e->ttl : 0;
        }
        break;
    case 7: /* advance the clock */
    case 8: {
        uint64_t d = 1 + next(f) % 30;

        actor_clock_advance(f->clk, d);
        f->now += d;
        break;
    }
    case 9:
        check_all(f, ns);
        break;
    case 10: /* batch of two puts in one namespace */
    {
        unsigned k2 = next(f) % KEY_COUNT;
        char key2[8];
        unsigned char v2 = (unsigned char)next(f);
        cache_op_t puts[2] = {
            { .kind = CACHE_OP_PUT, .ns = ns_names[ns], .key = key, .key_len = strlen(key),
              .value = &v2, .value_len = 1, .ttl_ms = CACHE_TTL_NONE },
            { .kind = CACHE_OP_PUT, .ns = ns_names[ns], .key = key2, .value = &v2,
              .value_len = 1, .ttl_ms = 25 },
        };
        cache_op_t b = { .kind = CACHE_OP_PUT_BATCH, .batch = puts, .batch_len = 2 };

        key_of(k2, key2);
        puts[1].key_len = strlen(key2);
        rc = cache_call(f->c, &b, 5000);
        if (rc != 0)
            FAIL("batch: rc %d", rc);
        model_put(f, ns, k, &v2, 1, CACHE_TTL_NONE);
        model_put(f, ns, k2, &v2, 1, 25);
        break;
    }
    default:
        if (next(f) % 4 == 0)
            kill_and_restart(f);
        break;
    }
}

static int
run_one(const uint8_t *data, size_t size)
{
    cache_opts_t o = { .default_ttl_ms = 40, .keep_data = 1 };
    fuzz_t *f = calloc(1, sizeof(*f));
    actor_t *w = NULL;
    unsigned ns, k;

    if (f == NULL)
        return 0;
    f->p = data;
    f->end = data + (size > 4096 ? 4096 : size);
    f->now = 1000;
    if (actor_clock_manual_new(f->now, &f->clk) != 0)
        abort();
    o.clock = f->clk;
    if (cache_new(&o, &f->c) != 0 || cache_child_start(f->c, &w) != 0)
        abort();
    actor_release(w);
    while (f->p < f->end)
        step(f);
    for (ns = 0; ns < NS_COUNT; ns++)
        for (k = 0; k < KEY_COUNT; k++)
            check_get(f, ns, k);
    cache_stop(f->c, 5000);
    cache_release(f->c);
    if (actor_clock_free(f->clk) != 0)
        FAIL("clock still in use after stop");
    free(f);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return run_one(data, size);
}

#ifndef GC_LIBFUZZER
#include "fuzz_replay.h"

int
main(int argc, char **argv)
{
    return gc_replay_main(argc, argv, 4096, run_one, "fuzz_replay (no divergence)");
}
#endif

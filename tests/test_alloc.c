/*
 * Allocation failure: through gencache_replace_allocator, fail the Nth
 * allocation of a scenario that exercises processes and caches, for every N
 * until a run completes without reaching N.  Every public call must answer
 * 0 or -ENOMEM (never crash), every write acknowledged with 0 must be
 * readable afterwards, and the live allocation count must come back to where
 * it started once everything is stopped (no leak; the ASan build checks the
 * same with LeakSanitizer).
 */
#include <gencache/gencache.h>

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "redis_harness.h"

static atomic_long alloc_count;   /* allocations made since the run began */
static atomic_long alloc_live;    /* outstanding allocations */
static atomic_long fail_at;       /* fail the allocation with this number */
static atomic_int failed;         /* the injected failure happened */

static void *
t_malloc(size_t n)
{
    long k = atomic_fetch_add(&alloc_count, 1) + 1;
    void *p;

    if (k == atomic_load(&fail_at)) {
        atomic_store(&failed, 1);
        return NULL;
    }
    p = malloc(n);
    if (p != NULL)
        atomic_fetch_add(&alloc_live, 1);
    return p;
}

static void *
t_calloc(size_t c, size_t n)
{
    void *p = t_malloc(c * n);

    if (p != NULL)
        memset(p, 0, c * n);
    return p;
}

static void *
t_realloc(void *p, size_t n)
{
    void *q;

    if (p == NULL)
        return t_malloc(n);
    if (atomic_fetch_add(&alloc_count, 1) + 1 == atomic_load(&fail_at)) {
        atomic_store(&failed, 1);
        return NULL;
    }
    q = realloc(p, n);
    return q;
}

static void
t_free(void *p)
{
    if (p != NULL)
        atomic_fetch_sub(&alloc_live, 1);
    free(p);
}

#define OK_OR_NOMEM(expr)                                                    \
    do {                                                                     \
        int rc_ = (expr);                                                    \
        ck_assert_msg(rc_ == 0 || rc_ == -ENOMEM, "%s -> %d (%s)", #expr,    \
                      rc_, cache_strerror(rc_));                             \
    } while (0)

static int
echo_call(void *state, const actor_msg_view_t *req, actor_reply_t *reply)
{
    (void)state;
    return actor_reply_set(reply, req->data, req->len);
}

static const actor_behaviour_t echo = { .handle_call = echo_call };

#define KEYS 24

/* One run of the scenario; returns when everything it started is stopped. */
static void
scenario(void)
{
    cache_opts_t o = { .name = "alloc-test", .max_entries = 1000 };
    cache_t *c = NULL;
    actor_t *a = NULL;
    int acked[KEYS] = { 0 };
    char key[16], val[16], buf[16];
    size_t len, n, i;
    cache_record_t *recs;
    cache_op_t puts[3];
    cache_op_t batch = { .kind = CACHE_OP_PUT_BATCH, .batch = puts, .batch_len = 3 };
    int rc;

    /* Processes. */
    rc = actor_start(&echo, NULL, NULL, &a);
    OK_OR_NOMEM(rc);
    if (rc == 0) {
        OK_OR_NOMEM(actor_call(a, 1, "ping", 4, buf, sizeof(buf), &len, 5000));
        OK_OR_NOMEM(actor_cast(a, 1, "x", 1));
        OK_OR_NOMEM(actor_send_after(a, 100000, 1, "t", 1, NULL));
        ck_assert_int_eq(actor_stop(a, ACTOR_SHUTDOWN, 5000), 0);
        actor_release(a);
    }

    /* Caches. */
    rc = cache_start(&o, &c);
    OK_OR_NOMEM(rc);
    if (rc != 0) {
        cache_t *x;
        ck_assert_int_eq(cache_lookup("alloc-test", &x), -ENOENT);
        return;
    }
    for (i = 0; i < KEYS; i++) {
        snprintf(key, sizeof(key), "key-%zu", i);
        snprintf(val, sizeof(val), "val-%zu", i);
        rc = cache_put(c, NULL, key, strlen(key), val, strlen(val),
                       i % 2 ? CACHE_TTL_NONE : 60000);
        OK_OR_NOMEM(rc);
        acked[i] = rc == 0;
    }
    for (i = 0; i < 3; i++) {
        static const char *const bk[3] = { "b0", "b1", "b2" };
        puts[i] = (cache_op_t){ .kind = CACHE_OP_PUT, .key = bk[i], .key_len = 2,
                                .value = "bv", .value_len = 2, .ttl_ms = CACHE_TTL_NONE };
    }
    rc = cache_call(c, &batch, 5000);
    OK_OR_NOMEM(rc);
    /* A batch is all or nothing. */
    {
        int got = 0;
        for (i = 0; i < 3; i++) {
            char k2[3] = { 'b', (char)('0' + i), 0 };
            got += cache_get(c, NULL, k2, 2, buf, sizeof(buf), &len) == 0;
        }
        ck_assert_int_eq(got, rc == 0 ? 3 : 0);
    }
    {
        cache_op_t cp = { .kind = CACHE_OP_PUT, .key = "cast", .key_len = 4, .value = "v",
                          .value_len = 1, .ttl_ms = CACHE_TTL_NONE };
        OK_OR_NOMEM(cache_cast(c, &cp));
    }
    rc = cache_all(c, NULL, "key-*", &recs, &n, 5000);
    OK_OR_NOMEM(rc);
    if (rc == 0)
        cache_records_free(recs);
    rc = cache_delete(c, NULL, "key-0", 5);
    ck_assert_msg(rc == 0 || rc == -ENOMEM || (rc == -ENOENT && !acked[0]),
                  "delete -> %d", rc);

    /* Every acknowledged write is there (key-0 may have been deleted). */
    for (i = 1; i < KEYS; i++) {
        if (!acked[i])
            continue;
        snprintf(key, sizeof(key), "key-%zu", i);
        snprintf(val, sizeof(val), "val-%zu", i);
        rc = cache_get(c, NULL, key, strlen(key), buf, sizeof(buf), &len);
        ck_assert_msg(rc == 0, "acknowledged %s lost: %d", key, rc);
        ck_assert(len == strlen(val) && memcmp(buf, val, len) == 0);
    }
    ck_assert_int_eq(cache_stop(c, 5000), 0);
    cache_release(c);
}

/* A process started before the runs.  A call to it leaves this thread's
 * call record holding a reply buffer, whatever the scenario did with it
 * (cache_all takes the buffer over), so every run ends in the same state. */
static actor_t *probe;

static void
normalize(void)
{
    char b[8];
    size_t l;

    if (probe == NULL)
        ck_assert_int_eq(actor_start(&echo, NULL, NULL, &probe), 0);
    ck_assert_int_eq(actor_call(probe, 1, "p", 1, b, sizeof(b), &l, 5000), 0);
}

/* Wait (bounded) for detached worker threads to drop their last memory. */
static long
settle(long base)
{
    int i;

    normalize();
    for (i = 0; i < 200 && atomic_load(&alloc_live) != base; i++) {
        struct timespec ts = { 0, 5 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
    return atomic_load(&alloc_live);
}

START_TEST(test_fail_each_allocation)
{
    long base, n, runs = 0, injected = 0;

    /* Warm up: this thread's call record and epoch record exist from here
     * on and are part of the baseline. */
    atomic_store(&fail_at, 0);
    scenario();
    normalize();
    base = settle(atomic_load(&alloc_live));

    /* ALLOC_ONLY=N runs just that failure point (for debugging a leak under
     * the ASan build, whose LeakSanitizer then names the allocation). */
    if (getenv("ALLOC_ONLY") != NULL) {
        atomic_store(&alloc_count, 0);
        atomic_store(&fail_at, atol(getenv("ALLOC_ONLY")));
        scenario();
        settle(base);
        return;
    }
    for (n = 1; n < 5000; n++) {
        atomic_store(&alloc_count, 0);
        atomic_store(&failed, 0);
        atomic_store(&fail_at, n);
        scenario();
        atomic_store(&fail_at, 0);
        runs++;
        if (!atomic_load(&failed))
            break;  /* the scenario no longer reaches allocation n */
        injected++;
        ck_assert_msg(settle(base) == base, "fail at %ld: %ld allocations leaked", n,
                      atomic_load(&alloc_live) - base);
    }
    ck_assert_msg(injected > 20, "only %ld failures injected", injected);
    actor_stop(probe, ACTOR_SHUTDOWN, 5000);
    actor_release(probe);
    printf("alloc: %ld runs, %ld injected failures, no crash, no leak\n", runs, injected);
}
END_TEST


/* ------------------------------------------------------------------ */
/* "An error means nothing changed" (issue 12, item 3)                 */

#define T0 1000000u
#define NTTL 64       /* TTL'd keys: the expiry heap's first capacity */

/* The observable state: every record (key, value, TTL) and the count. */
typedef struct snap {
    cache_record_t *recs;
    size_t n;
    uint64_t entries;
} snap_t;

static snap_t
snap_take(cache_t *c)
{
    snap_t sn;
    cache_stats_t st;

    ck_assert_int_eq(cache_all(c, NULL, NULL, &sn.recs, &sn.n, 5000), 0);
    ck_assert_int_eq(cache_stats(c, &st), 0);
    sn.entries = st.entries;
    return sn;
}

static void
snap_same(const snap_t *a, const snap_t *b, const char *what, long n)
{
    size_t i;

    ck_assert_msg(a->n == b->n && a->entries == b->entries,
                  "%s failed at allocation %ld but changed the count: %zu -> %zu", what, n,
                  a->n, b->n);
    for (i = 0; i < a->n; i++) {
        const cache_record_t *x = &a->recs[i], *y = &b->recs[i];

        ck_assert_msg(x->key_len == y->key_len && memcmp(x->key, y->key, x->key_len) == 0 &&
                          x->value_len == y->value_len &&
                          memcmp(x->value, y->value, x->value_len) == 0 &&
                          x->ttl_ms == y->ttl_ms,
                      "%s failed at allocation %ld but changed record %.*s", what, n,
                      (int)x->key_len, (const char *)x->key);
    }
}

static int64_t
ttl_or(cache_t *c, const char *key)
{
    int64_t t = 0;

    return cache_ttl(c, NULL, key, strlen(key), &t) == 0 ? t : -1;
}

typedef int (*mut_fn)(cache_t *c);

static int
mut_put_new(cache_t *c)
{
    return cache_put(c, NULL, "new", 3, "nv", 2, 500);   /* evicts: at max_entries */
}

static int
mut_put_replace(cache_t *c)
{
    return cache_put(c, NULL, "k", 1, "kv2", 3, 500);
}

static int
mut_batch(cache_t *c)
{
    cache_op_t puts[3] = {
        { .kind = CACHE_OP_PUT, .key = "b0", .key_len = 2, .value = "x", .value_len = 1,
          .ttl_ms = 700 },
        { .kind = CACHE_OP_PUT, .key = "k", .key_len = 1, .value = "y", .value_len = 1,
          .ttl_ms = 700 },
        { .kind = CACHE_OP_PUT, .key = "b1", .key_len = 2, .value = "z", .value_len = 1,
          .ttl_ms = CACHE_TTL_NONE },
    };
    cache_op_t b = { .kind = CACHE_OP_PUT_BATCH, .batch = puts, .batch_len = 3 };

    return cache_call(c, &b, 5000);
}

static int
mut_expire(cache_t *c)
{
    return cache_expire(c, NULL, "k", 1, 1000);   /* k has no TTL: the heap grows */
}

static int
mut_persist(cache_t *c)
{
    return cache_persist(c, NULL, "t0", 2);
}

static int
mut_touch(cache_t *c)
{
    return cache_touch(c, NULL, "t1", 2);
}

static int
mut_delete(cache_t *c)
{
    return cache_delete(c, NULL, "t2", 2);
}

static int
txn_put_fn(cache_txn_t *txn, const void *arg, size_t arg_len)
{
    (void)arg;
    (void)arg_len;
    return cache_txn_put(txn, NULL, "k", 1, "txn", 3, 900);
}

static int
mut_txn(cache_t *c)
{
    cache_op_t op = { .kind = CACHE_OP_USER, .fn = txn_put_fn };

    return cache_call(c, &op, 5000);
}

static int
mut_cast_put(cache_t *c)
{
    cache_op_t op = { .kind = CACHE_OP_PUT, .key = "k", .key_len = 1, .value = "cast",
                      .value_len = 4, .ttl_ms = 800 };
    int rc = cache_cast(c, &op);

    /* A cast that failed on the worker is reported by cache_sync. */
    if (rc == 0)
        rc = cache_sync(c, 5000);
    return rc == -EIO ? -ENOMEM : rc;
}

/* A cache holding NTTL keys with a TTL (the heap full to its capacity),
 * k without one, at max_entries. */
static cache_t *
atomic_setup(actor_clock_t *clk)
{
    cache_opts_t o = { .clock = clk, .max_entries = NTTL + 1 };
    cache_t *c = NULL;
    char key[16];
    int i;

    ck_assert_int_eq(cache_start(&o, &c), 0);
    for (i = 0; i < NTTL - 1; i++) {
        snprintf(key, sizeof(key), "t%d", i);
        ck_assert_int_eq(cache_put(c, NULL, key, strlen(key), "tv", 2, 60000 + i), 0);
    }
    ck_assert_int_eq(cache_put(c, NULL, "k", 1, "kv", 2, CACHE_TTL_NONE), 0);
    ck_assert_int_eq(cache_put(c, NULL, "last", 4, "lv", 2, 90000), 0);
    return c;
}

static void
check_atomic(mut_fn fn, const char *what)
{
    long n, injected = 0;

    for (n = 1; n < 400; n++) {
        actor_clock_t *clk;
        cache_t *c;
        snap_t before, after;
        int64_t kttl;
        int rc;

        ck_assert_int_eq(actor_clock_manual_new(T0, &clk), 0);
        c = atomic_setup(clk);
        before = snap_take(c);
        kttl = ttl_or(c, "k");
        atomic_store(&failed, 0);
        atomic_store(&alloc_count, 0);
        atomic_store(&fail_at, n);
        rc = fn(c);
        atomic_store(&fail_at, 0);
        ck_assert_msg(rc == 0 || rc == -ENOMEM, "%s -> %d", what, rc);
        if (rc != 0) {
            injected++;
            after = snap_take(c);
            snap_same(&before, &after, what, n);
            cache_records_free(after.recs);
            /* A later touch must not bring back a half-set TTL. */
            ck_assert_int_eq(cache_touch(c, NULL, "k", 1), 0);
            ck_assert_msg(ttl_or(c, "k") == kttl, "%s failed at allocation %ld: touch gave "
                          "k the TTL %lld (it had %lld)", what, n, (long long)ttl_or(c, "k"),
                          (long long)kttl);
        }
        cache_records_free(before.recs);
        ck_assert_int_eq(cache_stop(c, 5000), 0);
        cache_release(c);
        ck_assert_int_eq(actor_clock_free(clk), 0);
        if (!atomic_load(&failed))
            break;   /* the operation no longer reaches allocation n */
    }
    /* An operation that allocates nothing at all (persist) is atomic by
     * construction: then no failure could be injected. */
    ck_assert_msg(injected > 0 || n == 1, "%s: no failure injected", what);
}

START_TEST(test_error_changes_nothing)
{
    check_atomic(mut_put_new, "put (evicting)");
    check_atomic(mut_put_replace, "put (replacing)");
    check_atomic(mut_batch, "batch");
    check_atomic(mut_expire, "expire");
    check_atomic(mut_persist, "persist");
    check_atomic(mut_touch, "touch");
    check_atomic(mut_delete, "delete");
    check_atomic(mut_txn, "user txn put");
    check_atomic(mut_cast_put, "cast put");
}
END_TEST

/* ------------------------------------------------------------------ */
/* Ownership on the retry path (issue 12, item 4)                       */

typedef struct retry_arg {
    cache_t *c;
    atomic_int phase;
    int rc;
} retry_arg_t;

static int
reply_fn(cache_txn_t *txn, const void *arg, size_t arg_len)
{
    (void)arg;
    (void)arg_len;
    return cache_txn_reply(txn, "a reply kept in the call record", 31);
}

static void *
retry_main(void *p)
{
    retry_arg_t *ra = p;
    cache_op_t get = { .kind = CACHE_OP_GET, .key = "x", .key_len = 1 };
    char buf[64];
    size_t len;

    get.buf = buf;
    get.cap = sizeof(buf);
    get.out_len = &len;
    /* A first call whose reply is copied out (not handed over, as a GET's
     * is) leaves a reply buffer in this thread's call record. */
    {
        cache_op_t u = { .kind = CACHE_OP_USER, .fn = reply_fn, .buf = buf, .cap = sizeof(buf),
                         .out_len = &len };

        ck_assert_int_eq(cache_call(ra->c, &u, 5000), 0);
    }
    atomic_store(&ra->phase, 1);
    while (atomic_load(&ra->phase) != 2) {
        struct timespec ts = { 0, 1000000 };
        nanosleep(&ts, NULL);
    }
    /* This one is queued behind the gate, dropped with the worker, and
     * sent again to the next incarnation. */
    ra->rc = cache_call(ra->c, &get, 30000);
    return NULL;
}

static atomic_int gate_open;

static int
hold_fn(cache_txn_t *txn, const void *arg, size_t arg_len)
{
    struct timespec ts = { 0, 1000000 };

    (void)txn;
    (void)arg;
    (void)arg_len;
    while (!atomic_load(&gate_open))
        nanosleep(&ts, NULL);
    return 0;
}

START_TEST(test_retry_frees_reply)
{
    cache_t *c = NULL;
    actor_t *w = NULL, *w2 = NULL;
    cache_op_t hold = { .kind = CACHE_OP_USER, .fn = hold_fn };
    retry_arg_t ra = { 0 };
    pthread_t th;
    struct timespec ts = { 0, 50 * 1000000 };
    long base;
    int round;

    atomic_store(&fail_at, 0);
    normalize();
    base = settle(atomic_load(&alloc_live));
    for (round = 0; round < 3; round++) {
        ck_assert_int_eq(cache_new(&(cache_opts_t){ .keep_data = 1 }, &c), 0);
        ck_assert_int_eq(cache_child_start(c, &w), 0);
        ck_assert_int_eq(cache_put(c, NULL, "x", 1, "value", 5, CACHE_TTL_NONE), 0);
        atomic_store(&gate_open, 0);
        ra.c = c;
        atomic_store(&ra.phase, 0);
        ck_assert_int_eq(pthread_create(&th, NULL, retry_main, &ra), 0);
        while (atomic_load(&ra.phase) == 0)
            nanosleep(&ts, NULL);
        ck_assert_int_eq(cache_cast(c, &hold), 0);
        atomic_store(&ra.phase, 2);
        nanosleep(&ts, NULL);   /* the second GET is queued by now */
        ck_assert_int_eq(actor_exit(w, ACTOR_KILLED), 0);
        atomic_store(&gate_open, 1);
        ck_assert_int_eq(actor_wait(w, 5000, NULL), 0);
        actor_release(w);
        ck_assert_int_eq(cache_child_start(c, &w2), 0);
        ck_assert_int_eq(pthread_join(th, NULL), 0);
        ck_assert_int_eq(ra.rc, 0);
        ck_assert_int_eq(cache_stop(c, 5000), 0);
        ck_assert_int_eq(actor_wait(w2, 5000, NULL), 0);
        actor_release(w2);
        cache_release(c);
    }
    ck_assert_msg(settle(base) == base, "%ld allocations leaked", atomic_load(&alloc_live) - base);
}
END_TEST

START_TEST(test_replace_allocator_bad_input)
{
    ck_assert_int_eq(gencache_replace_allocator(NULL, realloc, calloc, free), -EINVAL);
    ck_assert_int_eq(gencache_replace_allocator(malloc, NULL, calloc, free), -EINVAL);
    ck_assert_int_eq(gencache_replace_allocator(malloc, realloc, NULL, free), -EINVAL);
    ck_assert_int_eq(gencache_replace_allocator(malloc, realloc, calloc, NULL), -EINVAL);
}
END_TEST

/*
 * The Redis backend's error paths: fail each allocation, in turn, of a
 * batch put, a put and a cast (then cache_sync) on a Redis cache with its
 * near-cache.  Each answers 0 or -ENOMEM; a batch that failed left none of
 * its keys in Redis (one MULTI/EXEC: all or nothing), a put that failed
 * left its key's old value; and once the cache is stopped, every
 * allocation made through the hook is freed.  Skipped without hiredis or
 * redis-server.
 */
START_TEST(test_redis_error_changes_nothing)
{
    static const char *const keys[4] = { "b0", "b1", "b2", "b3" };
    rh_server_t *srv;
    long n, injected = 0;

    if (!rh_backend_built() || !rh_find_server())
        return;
    srv = rh_server_new(NULL);
    ck_assert_ptr_nonnull(srv);
    ck_assert_int_eq(rh_server_start(srv), 0);
    /* n = 0: a warm-up run without a failure, which also makes what this
     * thread keeps for good (its call buffer) before live0 is read. */
    for (n = 0; n < 300; n++) {
        cache_redis_opts_t ro = { .host = "127.0.0.1", .port = srv->port };
        cache_op_t ops[4], batch = { .kind = CACHE_OP_PUT_BATCH, .batch = ops, .batch_len = 4 };
        cache_op_t cast = { .kind = CACHE_OP_PUT, .key = "c", .key_len = 1, .value = "cv",
                            .value_len = 2, .ttl_ms = CACHE_TTL_NONE };
        long live0 = atomic_load(&alloc_live);
        rh_reply_t *rep;
        char buf[8];
        size_t len;
        cache_t *c;
        int i, rc_b, rc_p, rc_c, rc_s;

        rep = rh_server_cmd(srv, 0, "FLUSHALL", NULL);
        rh_reply_free(rep);
        ck_assert_int_eq(cache_start(&(cache_opts_t){ .redis = &ro }, &c), 0);
        ck_assert_int_eq(cache_put(c, NULL, "p", 1, "old", 3, CACHE_TTL_NONE), 0);
        for (i = 0; i < 4; i++)
            ops[i] = (cache_op_t){ .kind = CACHE_OP_PUT, .key = keys[i], .key_len = 2,
                                   .value = "bv", .value_len = 2, .ttl_ms = CACHE_TTL_NONE };
        atomic_store(&failed, 0);
        atomic_store(&alloc_count, 0);
        atomic_store(&fail_at, n);
        rc_b = cache_call(c, &batch, 5000);
        rc_p = cache_put(c, NULL, "p", 1, "new", 3, CACHE_TTL_NONE);
        rc_c = cache_cast(c, &cast);
        rc_s = cache_sync(c, 5000);
        atomic_store(&fail_at, 0);
        /* An allocation failure the worker cannot account for (a command
         * appended, its reply's record not kept) drops the link: what
         * follows may be refused (-ENOTCONN) until it is back, and a cast
         * lost with it is reported by the sync (-ECONNRESET; -EIO for one
         * that failed). */
        ck_assert_msg(rc_b == 0 || rc_b == -ENOMEM || rc_b == -ENOTCONN, "batch -> %d at %ld",
                      rc_b, n);
        ck_assert_msg(rc_p == 0 || rc_p == -ENOMEM || rc_p == -ENOTCONN, "put -> %d at %ld",
                      rc_p, n);
        ck_assert_msg(rc_c == 0 || rc_c == -ENOMEM || rc_c == -ENOTCONN, "cast -> %d at %ld",
                      rc_c, n);
        ck_assert_msg(rc_s == 0 || rc_s == -ENOMEM || rc_s == -EIO || rc_s == -ECONNRESET ||
                      rc_s == -ENOTCONN, "sync -> %d at %ld", rc_s, n);
        if (rc_b != 0) {
            for (i = 0; i < 4; i++) {
                char rk[32];
                int kl = snprintf(rk, sizeof(rk), "gencache:cache%c%s", '\0', keys[i]);
                const char *argv[2] = { "EXISTS", rk };
                size_t lens[2] = { 6, (size_t)kl };

                rep = rh_server_cmdb(srv, 0, 2, argv, lens);
                ck_assert_ptr_nonnull(rep);
                ck_assert_msg(rep->integer == 0, "a failed batch (allocation %ld) left %s "
                              "in Redis", n, keys[i]);
                rh_reply_free(rep);
            }
        }
        {
            cache_op_t get = { .kind = CACHE_OP_GET, .key = "p", .key_len = 1, .buf = buf,
                               .cap = sizeof(buf), .out_len = &len };
            int64_t t0 = (int64_t)time(NULL);
            int rc;

            /* Asked of Redis itself, once the link is back. */
            while ((rc = cache_call(c, &get, 5000)) == -ENOTCONN && time(NULL) - t0 < 10)
                nanosleep(&(struct timespec){ 0, 5000000 }, NULL);
            ck_assert_int_eq(rc, 0);
            ck_assert_msg(rc_p == -ECONNRESET ||
                          (len == 3 && memcmp(buf, rc_p == 0 ? "new" : "old", 3) == 0),
                          "put -> %d at %ld, but p holds %.*s", rc_p, n, (int)len, buf);
        }
        ck_assert_int_eq(cache_stop(c, 5000), 0);
        cache_release(c);
        /* The worker thread frees the last of its process once it has
         * returned, after cache_stop: wait for that (bounded).  At most
         * as many as before: a failed call may also have freed this
         * thread's kept call buffer.  LeakSanitizer (ASan build) checks
         * the same exactly. */
        for (i = 0; i < 1000 && atomic_load(&alloc_live) > live0; i++)
            nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
        ck_assert_msg(n == 0 || atomic_load(&alloc_live) <= live0, "allocation %ld failed: "
                      "%ld allocations left after the cache stopped", n,
                      atomic_load(&alloc_live) - live0);
        if (n > 0 && !atomic_load(&failed))
            break;   /* a run that reached no allocation n: all were tried */
        injected += rc_b != 0 || rc_p != 0 || rc_c != 0 || rc_s != 0;
    }
    fprintf(stderr, "alloc redis: %ld runs, %ld with a failure that reached a caller, no "
            "leak\n", n, injected);
    ck_assert_msg(injected > 0, "no allocation failure reached a caller");
    rh_server_stop_all();
}
END_TEST

static Suite *
alloc_suite(void)
{
    Suite *s = suite_create("alloc");
    TCase *tc = tcase_create("alloc");

    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, test_replace_allocator_bad_input);
    tcase_add_test(tc, test_fail_each_allocation);
    tcase_add_test(tc, test_error_changes_nothing);
    tcase_add_test(tc, test_retry_frees_reply);
    tcase_add_test(tc, test_redis_error_changes_nothing);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr;
    int failed_n;

    /* Before any other gencache call, as the contract requires. */
    if (gencache_replace_allocator(t_malloc, t_realloc, t_calloc, t_free) != 0)
        return 1;
    sr = srunner_create(alloc_suite());
    srunner_run_all(sr, CK_NORMAL);
    failed_n = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed_n == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/*
 * Soak: a supervised keep_data cache under load from client threads while a
 * killer thread kills its worker hundreds of times and a ticker moves the
 * cache's (manual) clock.  For a bounded time, checks:
 *   - no value is read that was never put (values carry a checksum and a
 *     sequence number no higher than the writer's last attempt);
 *   - no expired value is read (values carry their deadline);
 *   - every acknowledged write survives the restarts (keep_data);
 *   - no caller waits past its timeout (plus scheduling slack);
 *   - memory returns to where it started after stop (counting allocator).
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

#define CLIENTS 3
#define KEYS_PER_CLIENT 64
#define CALL_TIMEOUT_MS 300
#define SLACK_MS 2000         /* scheduling noise on 2 oversubscribed cores, sanitizers */
#define SOAK_MS 4000
#define KILL_EVERY_MS 8

static atomic_long live_allocs;

static void *c_malloc(size_t n) { void *p = malloc(n); if (p) atomic_fetch_add(&live_allocs, 1); return p; }
static void *c_calloc(size_t k, size_t n) { void *p = calloc(k, n); if (p) atomic_fetch_add(&live_allocs, 1); return p; }
static void *c_realloc(void *p, size_t n) { void *q; if (!p) return c_malloc(n); q = realloc(p, n); return q; }
static void c_free(void *p) { if (p) atomic_fetch_sub(&live_allocs, 1); free(p); }

typedef struct value {
    uint32_t client, key;
    uint64_t seq;
    uint64_t deadline;     /* clock when sent + TTL (a lower bound of the
                              real deadline, which runs from application) */
    uint64_t check;
} value_t;

static uint64_t
checksum(const value_t *v)
{
    return (v->client * 0x9e3779b97f4a7c15ull) ^ (v->key * 0xc2b2ae3d27d4eb4full) ^
        (v->seq * 0x165667b19e3779f9ull) ^ v->deadline;
}

static int64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

typedef struct soak {
    cache_t *c;
    actor_clock_t *clk;
    atomic_int stop;
    atomic_long kills;
    atomic_long acked, errors, reads, late_calls;
} soak_t;

typedef struct client {
    soak_t *s;
    uint32_t id;
    uint64_t attempted[2][KEYS_PER_CLIENT]; /* highest seq sent, [durable][key] */
    uint64_t acked[KEYS_PER_CLIENT];      /* highest seq acknowledged (durable) */
    /* TTL keys: the last acknowledged seq and the latest its deadline can be
     * (the clock when the put returned + its TTL: the worker applied it
     * before the return, and a TTL runs from the application). */
    uint64_t ttl_seq[KEYS_PER_CLIENT];
    uint64_t ttl_bound[KEYS_PER_CLIENT];
    char failure[200];
} client_t;

static void
soak_fail(client_t *cl, const char *what, long a, long b)
{
    if (cl->failure[0] == '\0')
        snprintf(cl->failure, sizeof(cl->failure), "client %u: %s (%ld, %ld)", cl->id, what,
                 a, b);
}

/* Read key k of client owner and validate what comes back. */
static void
check_read(client_t *cl, const client_t *owner, uint32_t k, int durable)
{
    char key[32];
    value_t v;
    size_t len;
    uint64_t before = actor_clock_now(cl->s->clk);
    int rc;

    snprintf(key, sizeof(key), "%s%u-%u", durable ? "d" : "t", owner->id, k);
    rc = cache_get(cl->s->c, NULL, key, strlen(key), &v, sizeof(v), &len);
    atomic_fetch_add(&cl->s->reads, 1);
    if (rc == -ENOENT) {
        /* Only possible for a durable key never acknowledged (by its own
         * writer: other clients' view is checked only by value). */
        if (durable && owner == cl && cl->acked[k] != 0)
            soak_fail(cl, "acknowledged durable write lost", k, (long)cl->acked[k]);
        return;
    }
    if (rc != 0) {
        soak_fail(cl, "get error", rc, k);
        return;
    }
    if (len != sizeof(v) || v.check != checksum(&v) || v.client != owner->id || v.key != k) {
        soak_fail(cl, "value never put", (long)len, k);
        return;
    }
    if (owner == cl && v.seq > cl->attempted[durable][k])
        soak_fail(cl, "sequence from the future", (long)v.seq,
                  (long)cl->attempted[durable][k]);
    if (owner == cl && durable && v.seq < cl->acked[k])
        soak_fail(cl, "older than an acknowledged write", (long)v.seq, (long)cl->acked[k]);
    if (owner == cl && !durable && v.seq == cl->ttl_seq[k] && cl->ttl_bound[k] <= before)
        soak_fail(cl, "expired value read", (long)cl->ttl_bound[k], (long)before);
}

static void *
client_main(void *arg)
{
    client_t *cl = arg;
    soak_t *s = cl->s;
    uint64_t seq = 0;
    unsigned r = cl->id * 7919u + 1;

    while (!atomic_load(&s->stop) && cl->failure[0] == '\0') {
        uint32_t k;
        int durable, rc;
        value_t v;
        char key[32];
        int64_t t0, dt;
        uint64_t ttl;

        r = r * 1103515245u + 12345u;
        k = (r >> 8) % KEYS_PER_CLIENT;
        durable = (r >> 20) & 1;
        ttl = durable ? 0 : 5 + (r >> 24) % 40;
        v.client = cl->id;
        v.key = k;
        v.seq = ++seq;
        v.deadline = ttl ? actor_clock_now(s->clk) + ttl : 0;
        v.check = checksum(&v);
        snprintf(key, sizeof(key), "%s%u-%u", durable ? "d" : "t", cl->id, k);
        cl->attempted[durable][k] = v.seq;
        t0 = now_ms();
        {
            cache_op_t op = { .kind = CACHE_OP_PUT, .key = key, .key_len = strlen(key),
                              .value = &v, .value_len = sizeof(v),
                              .ttl_ms = ttl ? (int64_t)ttl : CACHE_TTL_NONE };
            rc = cache_call(s->c, &op, CALL_TIMEOUT_MS);
        }
        dt = now_ms() - t0;
        if (dt > CALL_TIMEOUT_MS + SLACK_MS)
            atomic_fetch_add(&s->late_calls, 1);
        if (rc == 0) {
            atomic_fetch_add(&s->acked, 1);
            if (durable) {
                cl->acked[k] = v.seq;
            } else {
                cl->ttl_seq[k] = v.seq;
                cl->ttl_bound[k] = actor_clock_now(s->clk) + ttl;
            }
        } else if (rc == -ETIMEDOUT || rc == -ESRCH) {
            atomic_fetch_add(&s->errors, 1);
        } else {
            soak_fail(cl, "unexpected put error", rc, k);
        }
        check_read(cl, cl, k, durable);
        check_read(cl, cl, (k + 1) % KEYS_PER_CLIENT, 1);
    }
    return NULL;
}

static void
sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

    nanosleep(&ts, NULL);
}

static void *
killer_main(void *arg)
{
    soak_t *s = arg;

    while (!atomic_load(&s->stop)) {
        actor_t *w = cache_worker(s->c);

        if (w != NULL) {
            actor_exit(w, ACTOR_KILLED);
            actor_release(w);
            atomic_fetch_add(&s->kills, 1);
        }
        sleep_ms(KILL_EVERY_MS);
        actor_clock_advance(s->clk, 3);
    }
    return NULL;
}

static void
quiet_log(void *ctx, const sup_report_t *r)
{
    (void)ctx;
    (void)r;
}

START_TEST(test_soak_kills_under_load)
{
    soak_t s;
    client_t cl[CLIENTS];
    pthread_t th[CLIENTS], killer;
    cache_opts_t co = { .keep_data = 1 };
    sup_flags_t flags = { SUP_ONE_FOR_ONE, 100000, 1000 };
    sup_opts_t so = { .log = quiet_log };
    sup_child_spec_t spec;
    actor_t *sup;
    long base;
    int i, j;

    memset(&s, 0, sizeof(s));
    base = atomic_load(&live_allocs);
    ck_assert_int_eq(actor_clock_manual_new(1000, &s.clk), 0);
    co.clock = s.clk;
    ck_assert_int_eq(cache_new(&co, &s.c), 0);
    spec = (sup_child_spec_t){ .id = "cache", .start = cache_child_start, .arg = s.c,
                               .restart = SUP_PERMANENT };
    ck_assert_int_eq(sup_start(&flags, &spec, 1, &so, &sup, NULL), 0);

    for (i = 0; i < CLIENTS; i++) {
        memset(&cl[i], 0, sizeof(cl[i]));
        cl[i].s = &s;
        cl[i].id = (uint32_t)i;
        pthread_create(&th[i], NULL, client_main, &cl[i]);
    }
    pthread_create(&killer, NULL, killer_main, &s);
    sleep_ms(SOAK_MS);
    atomic_store(&s.stop, 1);
    pthread_join(killer, NULL);
    for (i = 0; i < CLIENTS; i++)
        pthread_join(th[i], NULL);

    for (i = 0; i < CLIENTS; i++)
        ck_assert_msg(cl[i].failure[0] == '\0', "%s", cl[i].failure);
    /* After the dust settles, every acknowledged durable write is there. */
    for (i = 0; i < CLIENTS; i++)
        for (j = 0; j < KEYS_PER_CLIENT; j++)
            check_read(&cl[i], &cl[i], (uint32_t)j, 1);
    for (i = 0; i < CLIENTS; i++)
        ck_assert_msg(cl[i].failure[0] == '\0', "%s", cl[i].failure);

    printf("soak: %ld kills, %ld acknowledged writes, %ld clear errors, %ld reads, "
           "%ld calls over timeout+slack\n", atomic_load(&s.kills), atomic_load(&s.acked),
           atomic_load(&s.errors), atomic_load(&s.reads), atomic_load(&s.late_calls));
    ck_assert_int_ge(atomic_load(&s.kills), 100);
    ck_assert_int_gt(atomic_load(&s.acked), 1000);
    ck_assert_int_eq(atomic_load(&s.late_calls), 0);

    ck_assert_int_eq(actor_stop(sup, ACTOR_SHUTDOWN, ACTOR_INFINITY), 0);
    actor_release(sup);
    ck_assert_int_eq(cache_stop(s.c, 5000), 0);
    cache_release(s.c);
    for (i = 0; i < 400 && actor_clock_free(s.clk) != 0; i++)
        sleep_ms(5);
    ck_assert_int_lt(i, 400);
    /* Detached worker threads drop their last memory just after exiting. */
    for (i = 0; i < 400 && atomic_load(&live_allocs) != base; i++)
        sleep_ms(5);
    ck_assert_msg(atomic_load(&live_allocs) == base, "%ld allocations not freed",
                  atomic_load(&live_allocs) - base);
}
END_TEST

static Suite *
soak_suite(void)
{
    Suite *s = suite_create("soak");
    TCase *tc = tcase_create("soak");

    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_soak_kills_under_load);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr;
    int nf;

    if (gencache_replace_allocator(c_malloc, c_realloc, c_calloc, c_free) != 0)
        return 1;
    sr = srunner_create(soak_suite());
    srunner_run_all(sr, CK_NORMAL);
    nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/*
 * Check suite "events": cache_opts_t.on_event of a local cache (issue 15).
 * Every way an entry leaves the table is reported once, with its
 * namespace and key, on the worker thread: expiry (on the test's manual
 * clock), eviction (max_entries), delete, take, clear and clear_all.  What
 * is not an event (a put replacing a value) is not reported.  A Redis
 * cache refuses on_event: tests/test_conformance.c (test_events_option).
 */
#include <gencache/gencache.h>

#include <check.h>

#include "check_util.h"
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define T0 1000000u
#define CALL_MS 10000
#define EV_MAX 256

typedef struct ev {
    cache_event_t why;
    char ns[64], key[64];
    pthread_t thread;
} ev_t;

typedef struct evlog {
    pthread_mutex_t lock;
    ev_t ev[EV_MAX];
    int n;
} evlog_t;

static evlog_t L;

static void
on_event(void *ctx, cache_event_t why, const char *ns, size_t ns_len, const void *key,
         size_t key_len)
{
    evlog_t *l = ctx;

    pthread_mutex_lock(&l->lock);
    if (l->n < EV_MAX) {
        ev_t *e = &l->ev[l->n++];

        e->why = why;
        snprintf(e->ns, sizeof(e->ns), "%.*s", (int)ns_len, ns);
        snprintf(e->key, sizeof(e->key), "%.*s", (int)key_len, (const char *)key);
        e->thread = pthread_self();
    }
    pthread_mutex_unlock(&l->lock);
}

static int
ev_count(void)
{
    int n;

    pthread_mutex_lock(&L.lock);
    n = L.n;
    pthread_mutex_unlock(&L.lock);
    return n;
}

/* Wait (real time, bounded) until n events are in. */
static void
ev_wait(int n)
{
    int i;

    for (i = 0; i < 5000 && ev_count() < n; i++)
        nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
    ck_assert_msg(ev_count() >= n, "%d events, want %d", ev_count(), n);
}

/* Is (why, ns, key) among the events from index `from`?  Each found is
 * consumed (why set to 0), so a duplicate shows as a count mismatch. */
static void
ev_expect(int from, cache_event_t why, const char *ns, const char *key)
{
    int i, found = 0;

    pthread_mutex_lock(&L.lock);
    for (i = from; i < L.n && !found; i++) {
        ev_t *e = &L.ev[i];

        if (e->why == why && strcmp(e->ns, ns) == 0 && strcmp(e->key, key) == 0) {
            ck_assert_msg(!pthread_equal(e->thread, pthread_self()),
                          "event (%s, %s) ran on the caller's thread", ns, key);
            e->why = 0;
            found = 1;
        }
    }
    pthread_mutex_unlock(&L.lock);
    ck_assert_msg(found, "no event %d for (%s, %s)", (int)why, ns, key);
}

static actor_clock_t *clk;

static cache_t *
ev_start(cache_opts_t o)
{
    cache_t *c = NULL;

    memset(&L.ev, 0, sizeof(L.ev));
    L.n = 0;
    pthread_mutex_init(&L.lock, NULL);
    ck_assert_int_eq(actor_clock_manual_new(T0, &clk), 0);
    o.clock = clk;
    o.on_event = on_event;
    o.event_ctx = &L;
    ck_assert_int_eq(cache_start(&o, &c), 0);
    return c;
}

static void
ev_finish(cache_t *c)
{
    ck_assert_int_eq(cache_stop(c, CALL_MS), 0);
    cache_release(c);
    ck_assert_int_eq(actor_clock_free(clk), 0);
}

static int
put_s(cache_t *c, const char *ns, const char *key, int64_t ttl)
{
    return cache_put(c, ns, key, strlen(key), "v", 1, ttl);
}

START_TEST(test_expired)
{
    cache_t *c = ev_start((cache_opts_t){ 0 });

    ck_assert_int_eq(put_s(c, "sess", "a", 100), 0);
    ck_assert_int_eq(put_s(c, NULL, "b", 200), 0);
    ck_assert_int_eq(put_s(c, NULL, "forever", CACHE_TTL_NONE), 0);
    ck_assert_int_eq(put_s(c, "sess", "a", 100), 0);   /* a replace: no event */
    ck_assert_int_eq(actor_clock_advance(clk, 100), 0);
    ev_wait(1);
    ev_expect(0, CACHE_EVENT_EXPIRED, "sess", "a");
    ck_assert_int_eq(actor_clock_advance(clk, 100), 0);
    ev_wait(2);
    ev_expect(0, CACHE_EVENT_EXPIRED, "cache", "b");
    /* A delete that finds its key expired reports the expiry. */
    ck_assert_int_eq(put_s(c, NULL, "d", 50), 0);
    ck_assert_int_eq(cache_sync(c, CALL_MS), 0);
    ck_assert_int_eq(actor_clock_advance(clk, 50), 0);
    (void)cache_delete(c, NULL, "d", 1);
    ev_wait(3);
    ev_expect(0, CACHE_EVENT_EXPIRED, "cache", "d");
    ck_assert_int_eq(cache_sync(c, CALL_MS), 0);
    ck_assert_int_eq(ev_count(), 3);
    ev_finish(c);
}
END_TEST

START_TEST(test_evicted)
{
    cache_t *c = ev_start((cache_opts_t){ .max_entries = 2 });
    int i;
    uint64_t n = 0;

    for (i = 0; i < 5; i++) {
        char key[8];

        snprintf(key, sizeof(key), "k%d", i);
        ck_assert_int_eq(put_s(c, "lim", key, CACHE_TTL_NONE), 0);
    }
    ck_assert_int_eq(cache_count_all(c, &n, CALL_MS), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(ev_count(), 3);
    pthread_mutex_lock(&L.lock);
    for (i = 0; i < 3; i++) {
        ck_assert_int_eq(L.ev[i].why, CACHE_EVENT_EVICTED);
        ck_assert_str_eq(L.ev[i].ns, "lim");
        ck_assert_int_eq(cache_get(c, "lim", L.ev[i].key, strlen(L.ev[i].key), NULL, 0, NULL),
                         -ENOENT);
    }
    pthread_mutex_unlock(&L.lock);
    ev_finish(c);
}
END_TEST

START_TEST(test_deleted)
{
    cache_t *c = ev_start((cache_opts_t){ .default_ns = "dflt" });
    char buf[8];
    uint64_t n = 0;

    ck_assert_int_eq(put_s(c, NULL, "del", CACHE_TTL_NONE), 0);
    ck_assert_int_eq(put_s(c, "t", "take", CACHE_TTL_NONE), 0);
    ck_assert_int_eq(put_s(c, "a", "x", CACHE_TTL_NONE), 0);
    ck_assert_int_eq(put_s(c, "a", "y", CACHE_TTL_NONE), 0);
    ck_assert_int_eq(put_s(c, "b", "z", CACHE_TTL_NONE), 0);
    ck_assert_int_eq(put_s(c, NULL, "w", CACHE_TTL_NONE), 0);
    ck_assert_int_eq(ev_count(), 0);
    ck_assert_int_eq(cache_delete(c, NULL, "del", 3), 0);
    ck_assert_int_eq(cache_delete(c, NULL, "del", 3), -ENOENT);   /* no event */
    ck_assert_int_eq(ev_count(), 1);
    ev_expect(0, CACHE_EVENT_DELETED, "dflt", "del");
    ck_assert_int_eq(cache_take(c, "t", "take", 4, buf, sizeof(buf), NULL), 0);
    ck_assert_int_eq(ev_count(), 2);
    ev_expect(1, CACHE_EVENT_DELETED, "t", "take");
    ck_assert_int_eq(cache_clear(c, "a", CALL_MS), 0);
    ck_assert_int_eq(ev_count(), 4);
    ev_expect(2, CACHE_EVENT_DELETED, "a", "x");
    ev_expect(2, CACHE_EVENT_DELETED, "a", "y");
    ck_assert_int_eq(cache_clear_all(c, CALL_MS), 0);
    ck_assert_int_eq(ev_count(), 6);
    ev_expect(4, CACHE_EVENT_DELETED, "b", "z");
    ev_expect(4, CACHE_EVENT_DELETED, "dflt", "w");
    ck_assert_int_eq(cache_count_all(c, &n, CALL_MS), 0);
    ck_assert_uint_eq(n, 0);
    ev_finish(c);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("events");
    TCase *tc = tcase_create("events");
    SRunner *sr;
    int nf;

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_expired);
    tcase_add_test(tc, test_evicted);
    tcase_add_test(tc, test_deleted);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

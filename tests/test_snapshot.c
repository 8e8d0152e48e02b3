/*
 * Check suite "snapshot": cache_dump / cache_load (cache.h).
 *
 * Round trips (namespaces, binary keys, empty and large values, TTLs as
 * wall-clock deadlines across a "restart" with a manual clock), every bad
 * file (missing, truncated at every length, corrupt, foreign, a future
 * version), crash safety (a dumping process killed part-way leaves a valid
 * file), a dump while writes go on, and the refusals.  Every test ends with
 * its caches stopped and released and its clocks freed.
 */
#define _GNU_SOURCE
#include <gencache/gencache.h>

#include <check.h>

#include "check_util.h"
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define T0 1000000u
#define LONG_MS 30000

static char dir[64];

static void
setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/gc-snap-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void
teardown(void)
{
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

static const char *
path_of(const char *name)
{
    static char p[2][128];
    static int k;

    k ^= 1;
    snprintf(p[k], sizeof(p[k]), "%s/%s", dir, name);
    return p[k];
}

typedef struct fx {
    actor_clock_t *clk;
    cache_t *c;
} fx_t;

static void
fx_start(fx_t *f, cache_opts_t o)
{
    ck_assert_int_eq(actor_clock_manual_new(T0, &f->clk), 0);
    o.clock = f->clk;
    ck_assert_int_eq(cache_start(&o, &f->c), 0);
}

static void
fx_finish(fx_t *f)
{
    ck_assert_int_eq(cache_stop(f->c, 5000), 0);
    cache_release(f->c);
    ck_assert_int_eq(actor_clock_free(f->clk), 0);
}

static uint64_t
entries_of(cache_t *c)
{
    cache_stats_t st;

    ck_assert_int_eq(cache_stats(c, &st), 0);
    return st.entries;
}

static void
expect(cache_t *c, const char *ns, const void *key, size_t klen, const void *val, size_t vlen)
{
    static char buf[1 << 16];
    size_t len = 0;
    int rc = cache_get(c, ns, key, klen, buf, sizeof(buf), &len);

    ck_assert_msg(rc == 0, "get %.*s: %d", (int)klen, (const char *)key, rc);
    ck_assert_uint_eq(len, vlen);
    ck_assert(vlen == 0 || memcmp(buf, val, vlen) == 0);
}

/* A cache with a mix of records. */
static void
fill(cache_t *c)
{
    static const unsigned char bin[5] = { 0, 1, 0xff, 0, 7 };
    char big[4000];

    memset(big, 'b', sizeof(big));
    ck_assert_int_eq(cache_put(c, NULL, "k1", 2, "v1", 2, CACHE_TTL_NONE), 0);
    ck_assert_int_eq(cache_put(c, NULL, "empty", 5, "", 0, CACHE_TTL_NONE), 0);
    ck_assert_int_eq(cache_put(c, "other", "k1", 2, "ov", 2, CACHE_TTL_NONE), 0);
    ck_assert_int_eq(cache_put(c, "bin", bin, sizeof(bin), bin, sizeof(bin), CACHE_TTL_NONE), 0);
    ck_assert_int_eq(cache_put(c, NULL, "big", 3, big, sizeof(big), CACHE_TTL_NONE), 0);
    ck_assert_int_eq(cache_put(c, NULL, "ttl", 3, "t", 1, 60000), 0);
}

static void
check_filled(cache_t *c)
{
    static const unsigned char bin[5] = { 0, 1, 0xff, 0, 7 };
    char big[4000];
    int64_t ttl = 0;

    memset(big, 'b', sizeof(big));
    expect(c, NULL, "k1", 2, "v1", 2);
    expect(c, NULL, "empty", 5, "", 0);
    expect(c, "other", "k1", 2, "ov", 2);
    expect(c, "bin", bin, sizeof(bin), bin, sizeof(bin));
    expect(c, NULL, "big", 3, big, sizeof(big));
    ck_assert_int_eq(cache_ttl(c, NULL, "k1", 2, &ttl), 0);
    ck_assert(ttl == CACHE_TTL_NONE);
    ck_assert_int_eq(cache_ttl(c, NULL, "ttl", 3, &ttl), 0);
    /* Wall-clock time passed between the dump and the load (a little). */
    ck_assert_msg(ttl > 50000 && ttl <= 60000, "ttl after load: %lld", (long long)ttl);
    ck_assert_uint_eq(entries_of(c), 6);
}

START_TEST(test_round_trip)
{
    fx_t a, b;
    const char *p = path_of("snap");

    fx_start(&a, (cache_opts_t){ 0 });
    fill(a.c);
    ck_assert_int_eq(cache_dump(a.c, p, LONG_MS), 0);
    /* A "restarted service": a new cache on a new clock. */
    fx_start(&b, (cache_opts_t){ 0 });
    ck_assert_int_eq(cache_load(b.c, p, LONG_MS), 0);
    check_filled(b.c);
    /* The TTL runs on the new cache's clock. */
    ck_assert_int_eq(actor_clock_advance(b.clk, 60000), 0);
    ck_assert_int_eq(cache_get(b.c, NULL, "ttl", 3, NULL, 0, NULL), -ENOENT);
    /* Loading again overwrites the same keys; other keys stay. */
    ck_assert_int_eq(cache_put(b.c, NULL, "k1", 2, "changed", 7, CACHE_TTL_NONE), 0);
    ck_assert_int_eq(cache_put(b.c, NULL, "mine", 4, "m", 1, CACHE_TTL_NONE), 0);
    ck_assert_int_eq(cache_load(b.c, p, LONG_MS), 0);
    expect(b.c, NULL, "k1", 2, "v1", 2);
    expect(b.c, NULL, "mine", 4, "m", 1);
    /* Dumping over an existing file replaces it. */
    ck_assert_int_eq(cache_dump(b.c, p, LONG_MS), 0);
    fx_finish(&a);
    fx_finish(&b);
}
END_TEST

START_TEST(test_empty_cache_and_expired_records)
{
    fx_t a, b;
    const char *p = path_of("e");
    struct timespec ts = { 0, 80 * 1000000 };

    fx_start(&a, (cache_opts_t){ 0 });
    ck_assert_int_eq(cache_dump(a.c, p, LONG_MS), 0);
    fx_start(&b, (cache_opts_t){ 0 });
    ck_assert_int_eq(cache_load(b.c, p, LONG_MS), 0);
    ck_assert_uint_eq(entries_of(b.c), 0);
    /* A record whose deadline passes while "the service is down" (in wall
     * time between the dump and the load) is not loaded. */
    ck_assert_int_eq(cache_put(a.c, NULL, "short", 5, "s", 1, 30), 0);
    ck_assert_int_eq(cache_put(a.c, NULL, "long", 4, "l", 1, 600000), 0);
    ck_assert_int_eq(cache_dump(a.c, p, LONG_MS), 0);
    nanosleep(&ts, NULL);
    ck_assert_int_eq(cache_load(b.c, p, LONG_MS), 0);
    ck_assert_int_eq(cache_get(b.c, NULL, "short", 5, NULL, 0, NULL), -ENOENT);
    expect(b.c, NULL, "long", 4, "l", 1);
    /* Already expired on the dumping cache's clock: not dumped. */
    ck_assert_int_eq(cache_put(a.c, NULL, "gone", 4, "g", 1, 10), 0);
    ck_assert_int_eq(actor_clock_advance(a.clk, 10), 0);
    ck_assert_int_eq(cache_dump(a.c, p, LONG_MS), 0);
    fx_finish(&b);
    fx_start(&b, (cache_opts_t){ 0 });
    ck_assert_int_eq(cache_load(b.c, p, LONG_MS), 0);
    ck_assert_int_eq(cache_get(b.c, NULL, "gone", 4, NULL, 0, NULL), -ENOENT);
    fx_finish(&a);
    fx_finish(&b);
}
END_TEST

static unsigned char *
slurp(const char *p, size_t *len)
{
    FILE *f = fopen(p, "rb");
    unsigned char *b;
    long n;

    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    b = malloc((size_t)n + 1);
    ck_assert_uint_eq(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

static void
spit(const char *p, const void *b, size_t len)
{
    FILE *f = fopen(p, "wb");

    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(b, 1, len, f), len);
    fclose(f);
}

/* CRC-32C as the format defines it, to craft a file with a valid checksum. */
static uint32_t
crc32c(const unsigned char *p, size_t n)
{
    uint32_t c = ~0u;
    int k;

    while (n-- > 0) {
        c ^= *p++;
        for (k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
    }
    return ~c;
}

static void
reseal(unsigned char *b, size_t len)
{
    uint32_t c = crc32c(b, len - 4);
    int i;

    for (i = 0; i < 4; i++)
        b[len - 4 + i] = (unsigned char)(c >> (8 * i));
}

static void
expect_load_fails(cache_t *c, const char *p, int want, const char *what)
{
    int rc = cache_load(c, p, LONG_MS);

    ck_assert_msg(rc == want, "%s: cache_load -> %d (%s), want %d", what, rc,
                  cache_strerror(rc), want);
    ck_assert_msg(entries_of(c) == 0, "%s: something was loaded", what);
}

START_TEST(test_bad_files)
{
    fx_t a, b;
    char good[128], bad[128];
    unsigned char *img, *x;
    size_t len, n;

    snprintf(good, sizeof(good), "%s", path_of("good"));
    snprintf(bad, sizeof(bad), "%s", path_of("bad"));
    fx_start(&a, (cache_opts_t){ 0 });
    fx_start(&b, (cache_opts_t){ .max_bytes = 100 });
    fill(a.c);
    ck_assert_int_eq(cache_dump(a.c, good, LONG_MS), 0);
    img = slurp(good, &len);
    x = malloc(len);

    expect_load_fails(b.c, path_of("missing"), -ENOENT, "missing");
    /* Truncated at every length (an empty file and the bare magic too). */
    for (n = 0; n < len; n += n < 64 ? 1 : 97) {
        spit(bad, img, n);
        expect_load_fails(b.c, bad, n < 8 && n < len ? (n == 0 ? -EPROTO : -EPROTO) : -EBADMSG,
                          "truncated");
    }
    /* Every byte flipped in turn (the checksum catches it; a flipped magic
     * byte makes it foreign). */
    for (n = 0; n < len; n += n < 64 ? 1 : 131) {
        memcpy(x, img, len);
        x[n] ^= 0x5a;
        spit(bad, x, len);
        if (n >= 8 && n < 12 &&
            ((uint32_t)x[8] | (uint32_t)x[9] << 8 | (uint32_t)x[10] << 16 |
             (uint32_t)x[11] << 24) > 1) {
            /* A version byte that now reads "newer": refused as such. */
            expect_load_fails(b.c, bad, -EPROTONOSUPPORT, "corrupt version");
            continue;
        }
        expect_load_fails(b.c, bad, n < 8 ? -EPROTO : -EBADMSG, "corrupt");
    }
    /* Foreign. */
    spit(bad, "hello, world: not a snapshot at all\n", 36);
    expect_load_fails(b.c, bad, -EPROTO, "foreign");
    /* A future version, otherwise valid. */
    memcpy(x, img, len);
    x[8] = 2;
    reseal(x, len);
    spit(bad, x, len);
    expect_load_fails(b.c, bad, -EPROTONOSUPPORT, "future version");
    /* A structurally wrong file with a valid checksum (count too large). */
    memcpy(x, img, len);
    x[16] = (unsigned char)(x[16] + 1);
    reseal(x, len);
    spit(bad, x, len);
    expect_load_fails(b.c, bad, -EBADMSG, "bad count");
    /* A record larger than this cache's max_bytes: nothing loaded. */
    expect_load_fails(b.c, good, -E2BIG, "record over max_bytes");
    /* A directory is not a snapshot. */
    expect_load_fails(b.c, dir, -EINVAL, "directory");
    ck_assert_ptr_nonnull(strstr(cache_strerror(-EBADMSG), "snapshot"));
    free(img);
    free(x);
    fx_finish(&a);
    fx_finish(&b);
}
END_TEST

START_TEST(test_refusals)
{
    fx_t a;
    cache_t *r = NULL;
    cache_redis_opts_t ro = { .host = "127.0.0.1", .port = 1 };
    cache_opts_t o = { .redis = &ro };
    int rc;

    fx_start(&a, (cache_opts_t){ 0 });
    ck_assert_int_eq(cache_dump(NULL, path_of("x"), LONG_MS), -EINVAL);
    ck_assert_int_eq(cache_dump(a.c, NULL, LONG_MS), -EINVAL);
    ck_assert_int_eq(cache_dump(a.c, "", LONG_MS), -EINVAL);
    ck_assert_int_eq(cache_load(NULL, path_of("x"), LONG_MS), -EINVAL);
    ck_assert_int_eq(cache_load(a.c, NULL, LONG_MS), -EINVAL);
    /* A directory that does not exist: the file system's error. */
    ck_assert_int_eq(cache_dump(a.c, "/nonexistent-dir/snap", LONG_MS), -ENOENT);
    /* A Redis cache: Redis persists itself. */
    rc = cache_new(&o, &r);
    if (rc == 0) {
        ck_assert_int_eq(cache_dump(r, path_of("r"), LONG_MS), -ENOTSUP);
        ck_assert_int_eq(cache_load(r, path_of("r"), LONG_MS), -ENOTSUP);
        ck_assert_int_eq(cache_stop(r, 5000), 0);
        cache_release(r);
    } else {
        ck_assert_int_eq(rc, -ENOTSUP);   /* built without hiredis */
    }
    /* Stopped. */
    ck_assert_int_eq(cache_stop(a.c, 5000), 0);
    ck_assert_int_eq(cache_dump(a.c, path_of("s"), LONG_MS), -ESRCH);
    cache_release(a.c);
    ck_assert_int_eq(actor_clock_free(a.clk), 0);
}
END_TEST

/* A dumping process killed part-way leaves the previous file intact (or
 * the new one whole): whatever is at the path always loads. */
START_TEST(test_crash_safety)
{
    const char *p = path_of("crash");
    fx_t a, b;
    int round;

    fx_start(&a, (cache_opts_t){ 0 });
    fill(a.c);
    ck_assert_int_eq(cache_dump(a.c, p, LONG_MS), 0);
    for (round = 0; round < 6; round++) {
        pid_t pid = fork();

        ck_assert_int_ne(pid, -1);
        if (pid == 0) {
            cache_t *c;
            char key[32], val[200];
            int i;

            memset(val, 'x', sizeof(val));
            if (cache_start(NULL, &c) != 0)
                _exit(2);
            for (i = 0; i < 100000; i++) {
                snprintf(key, sizeof(key), "key-%d", i);
                cache_op_t op = { .kind = CACHE_OP_PUT, .key = key, .key_len = strlen(key),
                                  .value = val, .value_len = sizeof(val),
                                  .ttl_ms = CACHE_TTL_NONE };
                while (cache_cast(c, &op) == -EAGAIN)
                    ;
            }
            cache_sync(c, LONG_MS);
            for (;;)
                (void)cache_dump(c, p, LONG_MS);
        }
        {
            struct timespec ts = { 0, (long)(50 + 37 * round) * 1000000 };
            int st;

            nanosleep(&ts, NULL);
            kill(pid, SIGKILL);
            ck_assert_int_eq(waitpid(pid, &st, 0), pid);
        }
        fx_start(&b, (cache_opts_t){ 0 });
        ck_assert_int_eq(cache_load(b.c, p, LONG_MS), 0);
        ck_assert(entries_of(b.c) == 6 || entries_of(b.c) == 100000);
        fx_finish(&b);
    }
    fx_finish(&a);
}
END_TEST

/* Writes go on during a dump; the file holds one point in time. */
typedef struct writer {
    cache_t *c;
    atomic_int stop;
    long n;
} writer_t;

static void *
writer_main(void *arg)
{
    writer_t *w = arg;
    char key[32];

    while (!atomic_load(&w->stop)) {
        snprintf(key, sizeof(key), "w-%ld", w->n % 5000);
        cache_put(w->c, NULL, key, strlen(key), key, strlen(key), CACHE_TTL_NONE);
        w->n++;
    }
    return NULL;
}

START_TEST(test_dump_while_writing)
{
    const char *p = path_of("live");
    writer_t w = { 0 };
    pthread_t th;
    fx_t a, b;
    char key[32];
    int i;

    fx_start(&a, (cache_opts_t){ 0 });
    for (i = 0; i < 20000; i++) {
        snprintf(key, sizeof(key), "base-%d", i);
        ck_assert_int_eq(cache_put(a.c, NULL, key, strlen(key), key, strlen(key),
                                   CACHE_TTL_NONE), 0);
    }
    w.c = a.c;
    ck_assert_int_eq(pthread_create(&th, NULL, writer_main, &w), 0);
    for (i = 0; i < 5; i++)
        ck_assert_int_eq(cache_dump(a.c, p, LONG_MS), 0);
    atomic_store(&w.stop, 1);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    fx_start(&b, (cache_opts_t){ 0 });
    ck_assert_int_eq(cache_load(b.c, p, LONG_MS), 0);
    for (i = 0; i < 20000; i += 997) {
        snprintf(key, sizeof(key), "base-%d", i);
        expect(b.c, NULL, key, strlen(key), key, strlen(key));
    }
    /* Every written key that made it holds its own name as its value. */
    for (i = 0; i < 5000; i += 101) {
        char buf[32];
        size_t len = 0;
        int rc;

        snprintf(key, sizeof(key), "w-%d", i);
        rc = cache_get(b.c, NULL, key, strlen(key), buf, sizeof(buf), &len);
        ck_assert(rc == -ENOENT || (rc == 0 && len == strlen(key) && memcmp(buf, key, len) == 0));
    }
    fx_finish(&a);
    fx_finish(&b);
}
END_TEST

static Suite *
snapshot_suite(void)
{
    Suite *s = suite_create("snapshot");
    TCase *tc;

    if (!gc_tcase_excluded("files")) {
        tc = tcase_create("files");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_round_trip);
        tcase_add_test(tc, test_empty_cache_and_expired_records);
        tcase_add_test(tc, test_bad_files);
        tcase_add_test(tc, test_refusals);
        suite_add_tcase(s, tc);
    }
    if (!gc_tcase_excluded("crash")) {
        tc = tcase_create("crash");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, test_crash_safety);
        tcase_add_test(tc, test_dump_while_writing);
        suite_add_tcase(s, tc);
    }
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(snapshot_suite());
    int nf;

    srunner_run_all(sr, CK_NORMAL);
    nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

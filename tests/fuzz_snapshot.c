/*
 * Fuzz target of the snapshot loader (lib/snapshot.c, gc_snap_parse): any
 * byte string must be either accepted with every record inside the input
 * and within the limits, or refused with -EPROTO, -EPROTONOSUPPORT or
 * -EBADMSG; never a crash, a read outside the input (ASan), or a hang.
 * An accepted input is then loaded into a real cache through a file, and
 * every live record must read back.
 *
 * Built twice (tests/CMakeLists.txt): fuzz_snapshot (clang, libFuzzer,
 * GC_LIBFUZZER) and fuzz_snapshot_replay, which replays a corpus in every
 * build: tests/fuzz/snapshot_corpus.
 */
#define _GNU_SOURCE
#include <gencache/gencache.h>

#include "snapshot.h"

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct bounds {
    const uint8_t *lo, *hi;
    size_t n;
} bounds_t;

static int
check_rec(void *arg, const gc_snap_rec_t *r)
{
    bounds_t *b = arg;
    const uint8_t *ns = (const uint8_t *)r->ns, *k = r->key, *v = r->value;

    if (ns < b->lo || ns + r->ns_len > b->hi || k < b->lo || k + r->key_len > b->hi ||
        v < b->lo || v + r->value_len > b->hi || r->ns_len == 0 ||
        r->ns_len > CACHE_NS_MAX || r->key_len == 0 || r->key_len > CACHE_KEY_MAX ||
        r->value_len > CACHE_VALUE_MAX)
        abort();
    b->n++;
    return 0;
}

/* Records of an accepted input must be readable after a load. */
typedef struct rb {
    cache_t *c;
} rb_t;

static int
read_back(void *arg, const gc_snap_rec_t *r)
{
    rb_t *x = arg;
    char ns[CACHE_NS_MAX + 1];
    size_t len = 0;
    int rc;

    if (r->ttl_left == 0)
        return 0;
    memcpy(ns, r->ns, r->ns_len);
    ns[r->ns_len] = '\0';
    rc = cache_get(x->c, ns, r->key, r->key_len, NULL, 0, &len);
    /* A later record with the same key may have replaced this one. */
    if (rc != 0 && rc != -ENOBUFS)
        abort();
    return 0;
}

static int
run_one(const uint8_t *data, size_t size)
{
    bounds_t b = { data, data + size, 0 };
    int rc = gc_snap_parse(data, size, 1, check_rec, &b);

    if (rc != 0 && rc != -EPROTO && rc != -EPROTONOSUPPORT && rc != -EBADMSG)
        abort();
    if (rc == 0 && size < (1u << 20)) {
        char path[64];
        cache_t *c;
        FILE *f;
        rb_t x;

        snprintf(path, sizeof(path), "/tmp/gc-fuzz-snap-%ld", (long)getpid());
        f = fopen(path, "wb");
        if (f == NULL || fwrite(data, 1, size, f) != size)
            abort();
        fclose(f);
        if (cache_start(NULL, &c) != 0)
            abort();
        rc = cache_load(c, path, 10000);
        if (rc != 0 && rc != -EBADMSG)   /* deadlines differ: wall clock */
            abort();
        x.c = c;
        if (rc == 0)
            (void)gc_snap_parse(data, size, 1, read_back, &x);
        cache_stop(c, 10000);
        cache_release(c);
        unlink(path);
    }
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
    return gc_replay_main(argc, argv, 1 << 20, run_one, "fuzz_snapshot_replay (all accepted or refused cleanly)");
}
#endif

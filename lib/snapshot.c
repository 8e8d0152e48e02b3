/*
 * Snapshots of a local cache: cache_dump writes every live record to a
 * file, cache_load puts a file's records back (Cachex save/restore, Nebulex
 * dump/load), so a whole service restart keeps its sessions.
 *
 * Format (version 1, integers little-endian):
 *   header  "GCSNAP\r\n" (8 bytes: a text-mode or truncated copy is seen
 *           at once), u32 version, u32 flags (0), u64 record count,
 *           u64 wall-clock ms at the dump
 *   records u16 namespace length, u32 key length, u32 value length,
 *           i64 deadline (wall-clock ms; 0: none), namespace, key, value
 *   trailer u32 CRC-32C of every byte before it
 * TTLs are stored as wall-clock deadlines, so an entry that expired while
 * the service was down is not loaded, and one that had 10 minutes left an
 * hour before the load has 10 minutes less.
 *
 * Dumping without stopping the cache.  The worker only collects pointers
 * to the live entries (one pass over the table: a few ms for a million
 * entries), and the calling thread writes them.  That is safe while the
 * worker keeps serving because the table's entries are immutable (a put
 * writes a new entry: copy-on-write) and are freed only through the
 * table's epoch reclamation (lib/ebr.c): the dumping thread holds a read
 * section from before the collection until its last read, so no entry it
 * may read can be freed meanwhile (it only delays the reuse of memory the
 * worker retires during the dump).  The snapshot is the table as it was at
 * the collection: a point in time, with later writes not in it.
 *
 * Crash safety.  The file is written under a temporary name in the same
 * directory, fsync'ed, renamed over the target (atomic), and the directory
 * fsync'ed, so a crash at any point leaves the previous snapshot intact
 * (or the new one complete).
 *
 * Loading validates the whole file (structure, lengths, limits, checksum)
 * before it puts anything, so a truncated, corrupt, foreign or
 * future-version file loads nothing.
 */
#define _GNU_SOURCE
#include <gencache/cache.h>

#include "alloc.h"
#include "cache_int.h"
#include "ebr.h"
#include "snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define GC_SNAP_MAGIC "GCSNAP\r\n"
#define GC_SNAP_VERSION 1u
#define GC_SNAP_HDR 32u         /* magic, version, flags, count, time */
#define GC_SNAP_REC 18u         /* ns len, key len, value len, deadline */
#define GC_SNAP_BATCH 1024      /* records per put batch when loading */

/* ------------------------------------------------------------------ */
/* CRC-32C (Castagnoli), table-driven; the table is built once.         */

static uint32_t gc_crc_tab[256];
static pthread_once_t gc_crc_once = PTHREAD_ONCE_INIT;

static void
gc_crc_init(void)
{
    uint32_t i, j, c;

    for (i = 0; i < 256; i++) {
        c = i;
        for (j = 0; j < 8; j++)
            c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
        gc_crc_tab[i] = c;
    }
}

static uint32_t
gc_crc(uint32_t crc, const void *p, size_t n)
{
    const unsigned char *b = p;

    pthread_once(&gc_crc_once, gc_crc_init);
    crc = ~crc;
    while (n-- > 0)
        crc = gc_crc_tab[(crc ^ *b++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

/* ------------------------------------------------------------------ */
/* Little-endian fields                                                 */

static void
gc_put_le(unsigned char *p, uint64_t v, int n)
{
    int i;

    for (i = 0; i < n; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t
gc_get_le(const unsigned char *p, int n)
{
    uint64_t v = 0;
    int i;

    for (i = n - 1; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static int64_t
gc_wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------------ */
/* Writing                                                              */

typedef struct gc_snap_out {
    int fd;
    unsigned char buf[1 << 16];
    size_t n;
    uint32_t crc;
    int err;
} gc_snap_out_t;

static void
gc_out_flush(gc_snap_out_t *o)
{
    size_t off = 0;

    while (o->err == 0 && off < o->n) {
        ssize_t w = write(o->fd, o->buf + off, o->n - off);

        if (w < 0) {
            if (errno != EINTR)
                o->err = -errno;
            continue;
        }
        off += (size_t)w;
    }
    o->n = 0;
}

static void
gc_out(gc_snap_out_t *o, const void *p, size_t len)
{
    const unsigned char *b = p;

    o->crc = gc_crc(o->crc, p, len);
    while (len > 0 && o->err == 0) {
        size_t k = sizeof(o->buf) - o->n < len ? sizeof(o->buf) - o->n : len;

        memcpy(o->buf + o->n, b, k);
        o->n += k;
        b += k;
        len -= k;
        if (o->n == sizeof(o->buf))
            gc_out_flush(o);
    }
}

/* fsync the directory holding path, so the rename itself is durable. */
static int
gc_sync_dir(const char *path)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    int fd, rc = 0;

    if (slash == NULL) {
        strcpy(dir, ".");
    } else if (slash == path) {
        strcpy(dir, "/");
    } else {
        if ((size_t)(slash - path) >= sizeof(dir))
            return -ENAMETOOLONG;
        memcpy(dir, path, (size_t)(slash - path));
        dir[slash - path] = '\0';
    }
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (fsync(fd) != 0 && errno != EINVAL)
        rc = -errno;
    close(fd);
    return rc;
}

static int
gc_snap_write(const char *path, const gc_snap_rec_t *recs, size_t n)
{
    char tmp[PATH_MAX];
    gc_snap_out_t *o;
    unsigned char h[GC_SNAP_HDR], rh[GC_SNAP_REC], tr[4];
    int64_t now_wall = gc_wall_ms();
    size_t i;
    int rc;

    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= sizeof(tmp))
        return -ENAMETOOLONG;
    o = gc_malloc(sizeof(*o));
    if (o == NULL)
        return -ENOMEM;
    o->n = 0;
    o->crc = 0;
    o->err = 0;
    o->fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (o->fd < 0) {
        rc = -errno;
        gc_free(o);
        return rc;
    }
    memcpy(h, GC_SNAP_MAGIC, 8);
    gc_put_le(h + 8, GC_SNAP_VERSION, 4);
    gc_put_le(h + 12, 0, 4);
    gc_put_le(h + 16, n, 8);
    gc_put_le(h + 24, (uint64_t)now_wall, 8);
    gc_out(o, h, sizeof(h));
    for (i = 0; i < n && o->err == 0; i++) {
        const gc_snap_rec_t *r = &recs[i];
        int64_t dl = r->ttl_left == CACHE_TTL_NONE ? 0 : now_wall + (r->ttl_left > 0 ? r->ttl_left : 1);

        gc_put_le(rh, r->ns_len, 2);
        gc_put_le(rh + 2, r->key_len, 4);
        gc_put_le(rh + 6, r->value_len, 4);
        gc_put_le(rh + 10, (uint64_t)dl, 8);
        gc_out(o, rh, sizeof(rh));
        gc_out(o, r->ns, r->ns_len);
        gc_out(o, r->key, r->key_len);
        gc_out(o, r->value, r->value_len);
    }
    gc_put_le(tr, o->crc, 4);
    gc_out(o, tr, sizeof(tr));
    gc_out_flush(o);
    rc = o->err;
    if (rc == 0 && fsync(o->fd) != 0)
        rc = -errno;
    if (close(o->fd) != 0 && rc == 0)
        rc = -errno;
    gc_free(o);
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    if (rc != 0) {
        (void)unlink(tmp);
        return rc;
    }
    return gc_sync_dir(path);
}

int
cache_dump(cache_t *c, const char *path, int timeout_ms)
{
    gc_ebr_rec_t *rec;
    gc_snap_rec_t *recs = NULL;
    size_t n = 0;
    int rc;

    if (!gc_cache_valid(c) || path == NULL || path[0] == '\0')
        return -EINVAL;
    rec = gc_ebr_reader();
    if (rec == NULL)
        return -ENOMEM;
    /* The section begins before the worker collects: no entry it hands us
     * can be freed until we leave it (the file comment). */
    gc_ebr_enter(rec);
    rc = gc_cache_collect(c, &recs, &n, timeout_ms);
    if (rc == 0)
        rc = gc_snap_write(path, recs, n);
    gc_ebr_exit(rec);
    gc_free(recs);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Reading                                                              */

int
gc_snap_parse(const unsigned char *buf, size_t len, int64_t now_wall,
              int (*fn)(void *arg, const gc_snap_rec_t *r), void *arg)
{
    const unsigned char *p, *end;
    uint64_t count, i;
    uint32_t crc;

    if (len < 8 || memcmp(buf, GC_SNAP_MAGIC, 8) != 0)
        return -EPROTO;               /* not a gencache snapshot */
    if (len < GC_SNAP_HDR + 4)
        return -EBADMSG;              /* truncated */
    if (gc_get_le(buf + 8, 4) > GC_SNAP_VERSION)
        return -EPROTONOSUPPORT;      /* from a newer gencache */
    if (gc_get_le(buf + 8, 4) == 0 || gc_get_le(buf + 12, 4) != 0)
        return -EBADMSG;
    crc = (uint32_t)gc_get_le(buf + len - 4, 4);
    if (gc_crc(0, buf, len - 4) != crc)
        return -EBADMSG;              /* corrupt or truncated */
    count = gc_get_le(buf + 16, 8);
    p = buf + GC_SNAP_HDR;
    end = buf + len - 4;
    for (i = 0; i < count; i++) {
        gc_snap_rec_t r;
        int64_t dl;

        if ((size_t)(end - p) < GC_SNAP_REC)
            return -EBADMSG;
        r.ns_len = (uint32_t)gc_get_le(p, 2);
        r.key_len = (uint32_t)gc_get_le(p + 2, 4);
        r.value_len = (uint32_t)gc_get_le(p + 6, 4);
        dl = (int64_t)gc_get_le(p + 10, 8);
        p += GC_SNAP_REC;
        if (r.ns_len == 0 || r.ns_len > CACHE_NS_MAX || r.key_len == 0 ||
            r.key_len > CACHE_KEY_MAX || r.value_len > CACHE_VALUE_MAX || dl < 0 ||
            (size_t)(end - p) < (size_t)r.ns_len + r.key_len + r.value_len ||
            memchr(p, '\0', r.ns_len) != NULL)
            return -EBADMSG;
        r.ns = (const char *)p;
        r.key = p + r.ns_len;
        r.value = p + r.ns_len + r.key_len;
        p += r.ns_len + r.key_len + r.value_len;
        if (dl == 0)
            r.ttl_left = CACHE_TTL_NONE;
        else if (dl <= now_wall)
            r.ttl_left = 0;           /* expired while the service was down */
        else
            r.ttl_left = dl - now_wall;
        if (fn != NULL) {
            int rc = fn(arg, &r);

            if (rc != 0)
                return rc;
        }
    }
    return p == end ? 0 : -EBADMSG;
}

typedef struct gc_load_ctx {
    cache_t *c;
    size_t max_bytes;
    cache_op_t *ops;        /* a batch being built */
    char (*nsbuf)[CACHE_NS_MAX + 1];
    size_t n;
    uint64_t loaded;
    int timeout_ms;
} gc_load_ctx_t;

/* Pass 1: every record within the cache's limits. */
static int
gc_load_check(void *arg, const gc_snap_rec_t *r)
{
    const gc_load_ctx_t *x = arg;

    if (x->max_bytes != 0 && (size_t)r->key_len + r->value_len > x->max_bytes)
        return -E2BIG;
    return 0;
}

static int
gc_load_flush(gc_load_ctx_t *x)
{
    cache_op_t b = { .kind = CACHE_OP_PUT_BATCH, .batch = x->ops, .batch_len = x->n };
    int rc;

    if (x->n == 0)
        return 0;
    rc = cache_call(x->c, &b, x->timeout_ms);
    if (rc == 0)
        x->loaded += x->n;
    x->n = 0;
    return rc;
}

/* Pass 2: put the live records, in batches. */
static int
gc_load_put(void *arg, const gc_snap_rec_t *r)
{
    gc_load_ctx_t *x = arg;

    if (r->ttl_left == 0)
        return 0;                     /* expired while down: not loaded */
    memcpy(x->nsbuf[x->n], r->ns, r->ns_len);
    x->nsbuf[x->n][r->ns_len] = '\0';
    x->ops[x->n] = (cache_op_t){ .kind = CACHE_OP_PUT, .ns = x->nsbuf[x->n], .key = r->key,
                                 .key_len = r->key_len, .value = r->value,
                                 .value_len = r->value_len, .ttl_ms = r->ttl_left };
    if (++x->n == GC_SNAP_BATCH)
        return gc_load_flush(x);
    return 0;
}

/* The whole file in memory (gc_free'd by the caller). */
static int
gc_read_file(const char *path, unsigned char **out, size_t *len)
{
    struct stat st;
    unsigned char *buf;
    size_t off = 0;
    int fd, rc = 0;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = fstat(fd, &st) != 0 ? -errno : -EINVAL;
        close(fd);
        return rc;
    }
    buf = gc_malloc(st.st_size > 0 ? (size_t)st.st_size : 1);
    if (buf == NULL) {
        close(fd);
        return -ENOMEM;
    }
    while (off < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + off, (size_t)st.st_size - off);

        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            rc = r < 0 ? -errno : -EBADMSG;
            break;
        }
        off += (size_t)r;
    }
    close(fd);
    if (rc != 0) {
        gc_free(buf);
        return rc;
    }
    *out = buf;
    *len = off;
    return 0;
}

int
cache_load(cache_t *c, const char *path, int timeout_ms)
{
    gc_load_ctx_t x = { 0 };
    unsigned char *buf = NULL;
    size_t len = 0;
    int64_t now_wall;
    int rc;

    if (!gc_cache_valid(c) || path == NULL || path[0] == '\0')
        return -EINVAL;
    if (!(c->ops->flags & GC_BE_SNAPSHOT))
        return -ENOTSUP;
    if ((rc = gc_read_file(path, &buf, &len)) != 0)
        return rc;
    now_wall = gc_wall_ms();
    x.c = c;
    x.max_bytes = c->max_bytes;
    x.timeout_ms = timeout_ms;
    /* Everything checked before anything is put, the file first (a
     * structurally bad file is -EBADMSG whatever the cache's limits), then
     * the records against this cache's limits: a bad file loads nothing. */
    rc = gc_snap_parse(buf, len, now_wall, NULL, NULL);
    if (rc == 0)
        rc = gc_snap_parse(buf, len, now_wall, gc_load_check, &x);
    if (rc == 0) {
        x.ops = gc_malloc(GC_SNAP_BATCH * sizeof(*x.ops));
        x.nsbuf = gc_malloc(GC_SNAP_BATCH * sizeof(*x.nsbuf));
        if (x.ops == NULL || x.nsbuf == NULL)
            rc = -ENOMEM;
    }
    if (rc == 0)
        (void)gc_cache_reserve(c, gc_get_le(buf + 16, 8), timeout_ms);
    if (rc == 0)
        rc = gc_snap_parse(buf, len, now_wall, gc_load_put, &x);
    if (rc == 0)
        rc = gc_load_flush(&x);
    gc_free(x.ops);
    gc_free(x.nsbuf);
    gc_free(buf);
    return rc;
}

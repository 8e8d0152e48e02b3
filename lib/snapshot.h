/*
 * Snapshots (lib/snapshot.c): internal interface between the snapshot file
 * code, the cache front that collects the records, and the fuzz target of
 * the loader.  Prefix gc_snap_ / gc_cache_collect.
 */
#ifndef GC_SNAPSHOT_H
#define GC_SNAPSHOT_H

#include <gencache/cache.h>

#include <stddef.h>
#include <stdint.h>

/* One record: pointers into the table's (immutable) entries when
 * collected for a dump, or into the file's bytes when parsed. */
typedef struct gc_snap_rec {
    const char *ns;           /* not NUL-terminated */
    const void *key, *value;
    uint32_t ns_len, key_len, value_len;
    int64_t ttl_left;         /* ms; CACHE_TTL_NONE: none; 0: expired */
} gc_snap_rec_t;

/*
 * Front (cache.c): collect every live record of a local cache at one point
 * in time, on its worker (or in its place when idle).  The caller must be
 * inside an ebr read section (ebr.h) that began before this call, and stay
 * in it while it reads the records: the entries are immutable and freed
 * only through that reclamation.  *recs is the caller's (gc_free).
 * 0, -ENOTSUP (not a local cache), -ESRCH, -ETIMEDOUT, -ENOMEM, -EINVAL.
 */
int gc_cache_collect(cache_t *c, gc_snap_rec_t **recs, size_t *n, int timeout_ms);

/* Front (cache.c): make room in a local cache's table for n more entries
 * at once, before a load puts them (a hint: errors are ignored by the
 * caller).  0 or a negative errno. */
int gc_cache_reserve(cache_t *c, uint64_t n, int timeout_ms);

/*
 * Validate a snapshot image buf[0..len) and call fn for each record (fn
 * may be NULL: validation only); records dead by now_wall (wall-clock ms)
 * have ttl_left 0.  Returns 0, fn's first non-zero result, -EPROTO (not a
 * gencache snapshot), -EPROTONOSUPPORT (a newer format version), -EBADMSG
 * (truncated, corrupt: structure or checksum).  Never reads outside buf.
 */
int gc_snap_parse(const unsigned char *buf, size_t len, int64_t now_wall,
                  int (*fn)(void *arg, const gc_snap_rec_t *r), void *arg);

#endif /* GC_SNAPSHOT_H */

/*
 * The table (issue 14): one writer, many lock-free readers.  Internal
 * (prefix gc_tab_).  The design and its measurements are in docs/design.md,
 * "The table (lib/tab.c)"; the mechanics are in tab.c's opening comment.
 *
 * Threads.  "Writer" functions must be called by one thread at a time (the
 * thread that owns the table, or any thread the owner hands it to with a
 * happens-before edge such as a mutex or a mailbox).  "Any thread"
 * functions are lock-free and may run concurrently with the writer and
 * with each other; a reader thread registers itself on its first call
 * (one cache line from libc per thread for the life of the program; -ENOMEM
 * if that fails) and unregisters at exit.  gc_tab_new/gc_tab_free: no
 * other thread may use the table.
 *
 * Batches.  Between gc_tab_batch_begin and gc_tab_batch_commit or
 * gc_tab_batch_abort the writer calls only gc_tab_batch_put (and the any-
 * thread functions and gc_tab_find): gc_tab_put, gc_tab_delete and
 * gc_tab_set_ttl refuse with -EBUSY, gc_tab_expire, gc_tab_clear and
 * gc_tab_maintain do nothing, and gc_tab_batch_begin returns -EINVAL.
 */
#ifndef GC_TAB_H
#define GC_TAB_H

#include <gencache/actor.h>

#include <stddef.h>
#include <stdint.h>

typedef struct gc_tab gc_tab_t;

typedef struct gc_tab_key {
    uint16_t ns;          /* interned namespace id */
    const void *key;
    uint32_t len;
    uint64_t hash;        /* gc_tab_hash(ns, key, len) */
} gc_tab_key_t;

/* Seeded per process (getrandom), so collisions cannot be planned. */
uint64_t gc_tab_hash(uint16_t ns, const void *key, size_t len);

typedef struct gc_tab_opts {
    size_t max_entries, max_bytes;   /* 0: unlimited */
    const actor_clock_t *clock;      /* TTL clock; NULL: monotonic */
    int huge_pages;                  /* (addition) 1: advise MADV_HUGEPAGE for
                                        large maps and the entry slab: fewer
                                        TLB misses at millions of entries,
                                        ~7 B/entry more RSS measured at 1M */
} gc_tab_opts_t;

/* 0, -ENOMEM.  o may be NULL (no limits, monotonic clock). */
int gc_tab_new(const gc_tab_opts_t *o, gc_tab_t **out);
/* No reader or writer left. */
void gc_tab_free(gc_tab_t *t);

/* Namespaces.  Id 0 is the empty namespace "", interned by gc_tab_new.
 * Any thread may look up; only the writer interns. */
int gc_tab_ns_find(gc_tab_t *t, const char *ns, size_t len, uint16_t *id);   /* 0, -ENOENT */
int gc_tab_ns_intern(gc_tab_t *t, const char *ns, size_t len, uint16_t *id); /* 0, -ENOMEM, -ENOSPC */
/* Any thread: the name of an interned id (not NUL-terminated; valid for
 * the table's life: names are never removed), or NULL for an unknown id. */
const char *gc_tab_ns_name(gc_tab_t *t, uint16_t id, size_t *len);

/*
 * Any thread, lock-free, no allocation in the steady state.  Copies
 * min(vlen, cap) bytes of the value into buf and returns 0, or -ENOBUFS when
 * vlen > cap (the first cap bytes copied), -ENOENT (absent, or its deadline
 * <= the clock's now; the clock is read only when the entry has a
 * deadline), -ENOMEM (this thread's first call could not register it).
 * *vlen (may be NULL) gets the value's length; *ttl_left (may be NULL) the
 * ms left, or INT64_MAX for none.  buf may be NULL with cap 0.  Bumps the
 * entry's 2-bit frequency counter when it is below 3.
 */
int gc_tab_get(gc_tab_t *t, const gc_tab_key_t *k, void *buf, size_t cap, size_t *vlen,
               int64_t *ttl_left);

/*
 * Writer.  Insert or replace (the replaced value stays readable to readers
 * already holding it).  ttl_ms: 0 none, > 0 ms from now.  Allocates first:
 * on error nothing changed.  0, -ENOMEM, -E2BIG (key+value > max_bytes),
 * -EINVAL (ttl_ms < 0), -EBUSY (a batch is open).  Evicts (S3-FIFO) to
 * respect the limits, never the entry just put; *evicted (may be NULL) +=
 * how many.
 */
int gc_tab_put(gc_tab_t *t, const gc_tab_key_t *k, const void *v, size_t vlen, int64_t ttl_ms,
               int64_t *evicted);
/* 0, -ENOENT (absent; or expired: removed anyway, *was_expired = 1),
 * -EBUSY (a batch is open). */
int gc_tab_delete(gc_tab_t *t, const gc_tab_key_t *k, int *was_expired);
/* Writer-side read of a live entry, valid until the next writer call:
 * 0, -ENOENT.  Any out-pointer may be NULL; *ttl_len: the TTL it was last
 * given (0: none). */
int gc_tab_find(gc_tab_t *t, const gc_tab_key_t *k, const void **v, size_t *vlen,
                int64_t *ttl_left, int64_t *ttl_len);
/* Restart the TTL: ttl_ms > 0 new length from now, 0 none (persist), -1
 * the length last set (touch; nothing to do without one).  Allocates
 * first: 0, -ENOENT, -ENOMEM, -EINVAL, -EBUSY (a batch is open; nothing
 * changed). */
int gc_tab_set_ttl(gc_tab_t *t, const gc_tab_key_t *k, int64_t ttl_ms);

/* Reserve room for n puts (entries may still fail to allocate in
 * gc_tab_batch_put): 0, -ENOMEM (no batch is open then). */
int gc_tab_batch_begin(gc_tab_t *t, size_t n);
/* Staged, invisible to readers: 0, -ENOMEM, -E2BIG, -EINVAL, -ENOSPC (more
 * than n puts); on error the put is not staged, the batch stays open. */
int gc_tab_batch_put(gc_tab_t *t, const gc_tab_key_t *k, const void *v, size_t vlen,
                     int64_t ttl_ms);
/* Every staged put visible at once to readers (none before); cannot fail.
 * Evicts afterwards like gc_tab_put (possibly entries of the batch when the
 * batch alone exceeds a limit). */
int gc_tab_batch_commit(gc_tab_t *t, int64_t *evicted);
/* Drop the staged puts: nothing changed. */
void gc_tab_batch_abort(gc_tab_t *t);

/* Writer: remove at most max entries whose deadline passed; how many. */
size_t gc_tab_expire(gc_tab_t *t, size_t max);
/* Writer: earliest deadline (clock ms), 0 none. */
uint64_t gc_tab_next_deadline(const gc_tab_t *t);
/* Writer: remove every entry (O(n); no events). */
void gc_tab_clear(gc_tab_t *t);
/* Writer: fn on the live entries of ns in any order; stops when fn returns
 * non-zero and returns that.  fn must not call writer functions. */
int gc_tab_foreach(gc_tab_t *t, uint16_t ns,
                   int (*fn)(void *arg, const void *key, size_t klen, const void *v,
                             size_t vlen, int64_t ttl_left),
                   void *arg);
/* Writer, cheap, after each mailbox batch: incremental resize steps and
 * reclamation of retired memory (one membarrier at most). */
void gc_tab_maintain(gc_tab_t *t);
/* Writer: 1 while retired memory waits for reclamation (so the owner can
 * come back later, e.g. from a timer, when no write comes). */
int gc_tab_pending(const gc_tab_t *t);
/* Writer: reclaim what readers can no longer reach now (one membarrier);
 * for an owner that went idle with gc_tab_pending true. */
void gc_tab_reclaim(gc_tab_t *t);

enum { GC_TAB_EXPIRED = 1, GC_TAB_EVICTED = 2, GC_TAB_DELETED = 3 };
typedef void (*gc_tab_event_fn)(void *ctx, int why, uint16_t ns, const void *key, size_t klen);
/* Writer; zero cost when NULL.  Called after the entry left the table;
 * the key is valid during the call. */
void gc_tab_set_events(gc_tab_t *t, gc_tab_event_fn fn, void *ctx);

/* Any thread (atomic loads).  bytes: key+value of live entries. */
uint64_t gc_tab_count(const gc_tab_t *t);
uint64_t gc_tab_bytes(const gc_tab_t *t);

/* Debug, writer: walk every index and check its invariants; 0 or -EFAULT
 * with a message on stderr. */
int gc_tab_check(gc_tab_t *t);

#endif /* GC_TAB_H */

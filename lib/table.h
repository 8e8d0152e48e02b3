/*
 * The cache table: one writer (the cache's worker thread), many lock-free
 * readers (any thread).  Internal (prefix gc_table_, gc_entry_, gc_epoch_).
 *
 * Structure.  Entries are found through a ck_hs hash set in SPMC mode that
 * stores pointers to the entries' keys.  Beside it the writer keeps two
 * indexes that readers never see:
 *   - a dense array of every entry, swept by a CLOCK hand to pick an
 *     eviction victim (readers set an entry's `ref` bit on a hit);
 *   - a binary min-heap of the entries that have a deadline, so expiry
 *     visits only due entries and never scans the table.
 * Each entry records its positions in both, so removing any entry costs
 * O(log n) and no timer can outlive the entry it belongs to: re-putting a
 * key replaces the entry, and the old entry leaves the heap with it.
 *
 * Reclamation.  A removed entry (and a map ck_hs replaced while growing) is
 * freed through ck_epoch: readers hold an epoch section while they touch
 * the table, and the writer frees only what no section can still reach.
 * One global epoch serves every cache; each thread has one record.
 *
 * Keys.  An entry's key is the composite "namespace NUL key": a namespace is
 * a C string and cannot contain NUL, so the composite is unambiguous.
 */
#ifndef GC_TABLE_H
#define GC_TABLE_H

#include "mailbox.h"

#include <ck_epoch.h>
#include <ck_hs.h>
#include <stddef.h>
#include <stdint.h>

typedef struct gc_key {
    unsigned long hash;
    const unsigned char *bytes;   /* namespace, NUL, key */
    size_t len;
} gc_key_t;

typedef struct gc_entry {
    /* An entry in flight (a cast put) is a mailbox message; a removed one
     * waits for reclamation on an epoch list; never both. */
    union {
        gc_msg_t msg;
        ck_epoch_entry_t ep;
    } u;
    gc_key_t key;
    uint64_t deadline;   /* ms on the cache clock; 0: none.  Written by the
                            writer with ck_pr_store_64, read by readers. */
    int64_t ttl_ms;      /* the TTL it was given (for touch); 0: none */
    uint32_t ns_len;     /* namespace bytes (before the NUL) */
    uint32_t value_len;
    uint32_t heap_idx;   /* 1 + position in the expiry heap; 0: not there */
    uint32_t slot;       /* position in the dense array */
    uint8_t ref;         /* CLOCK bit: set by readers on a hit */
    unsigned char data[]; /* namespace, NUL, key, value */
} gc_entry_t;

static inline const unsigned char *
gc_entry_value(const gc_entry_t *e)
{
    return e->data + e->key.len;
}

static inline size_t
gc_entry_user_key_len(const gc_entry_t *e)
{
    return e->key.len - e->ns_len - 1;
}

/* What max_bytes and stats.bytes count: the user's key and value bytes
 * (not the namespace prefix). */
static inline size_t
gc_entry_record_bytes(const gc_entry_t *e)
{
    return e->key.len - e->ns_len - 1 + e->value_len;
}

static inline const unsigned char *
gc_entry_user_key(const gc_entry_t *e)
{
    return e->data + e->ns_len + 1;
}

typedef struct gc_table {
    ck_hs_t hs;
    int ready;             /* ck_hs_init succeeded */
    gc_entry_t **all;      /* dense array, writer only */
    size_t n, cap;
    size_t hand;           /* CLOCK hand */
    gc_entry_t **heap;     /* expiry heap, writer only */
    size_t hn, hcap;
    uint64_t bytes;        /* key + value bytes; ck_pr_store_64 by writer */
    uint64_t count;        /* entries; ck_pr_store_64 by writer */
} gc_table_t;

/* Hash of a composite key. */
unsigned long gc_key_hash(const void *bytes, size_t len);

/*
 * Allocate an entry for (ns, key, value).  Returns NULL on -ENOMEM.  Its
 * deadline is set by gc_table_insert from ttl_ms (0: none).
 */
gc_entry_t *gc_entry_new(const char *ns, size_t ns_len, const void *key,
                         size_t key_len, const void *value, size_t value_len,
                         int64_t ttl_ms);
void gc_entry_free(gc_entry_t *e);

int gc_table_init(gc_table_t *t);
/* Free everything at once: only when no reader and no writer can be in it. */
void gc_table_destroy(gc_table_t *t);

/* Reader or writer: the entry for key, or NULL.  A reader must be inside an
 * epoch section (gc_epoch_begin) for as long as it uses the result. */
gc_entry_t *gc_table_find(gc_table_t *t, const gc_key_t *key);

/*
 * Writer: insert e, replacing (and retiring) the entry with the same key.
 * The deadline becomes now + e->ttl_ms (none when ttl_ms is 0).
 * Returns 0 or -ENOMEM (e is then still the caller's; nothing changed).
 */
int gc_table_insert(gc_table_t *t, gc_entry_t *e, uint64_t now);

/*
 * Writer: gc_table_insert in two steps, for all-or-nothing batches.  The
 * replaced entry (if any) is unindexed but not retired: it comes back in
 * *old.  Then either gc_table_retire(old) commits, or gc_table_undo(t, e,
 * old) puts old back exactly where readers find it and retires e; undo
 * never allocates and cannot fail (call it in reverse insertion order).
 */
int gc_table_insert_keep(gc_table_t *t, gc_entry_t *e, uint64_t now, gc_entry_t **old);
void gc_table_retire(gc_entry_t *e);
void gc_table_undo(gc_table_t *t, gc_entry_t *e, gc_entry_t *old);

/* Writer: make room for n more entries at once (for batches): 0 or -ENOMEM. */
int gc_table_reserve(gc_table_t *t, size_t n);

/* Writer: remove e from every index and retire it. */
void gc_table_remove(gc_table_t *t, gc_entry_t *e);

/* Writer: set e's deadline (0: none) and keep the heap in order. */
int gc_table_set_deadline(gc_table_t *t, gc_entry_t *e, uint64_t deadline);

/* Writer: the earliest deadline, or 0 when nothing expires. */
uint64_t gc_table_next_deadline(const gc_table_t *t);

/* Writer: remove up to max entries whose deadline <= now; returns how many. */
size_t gc_table_expire(gc_table_t *t, uint64_t now, size_t max);

/* Writer: evict one entry chosen by CLOCK, never `keep`; 1 if one went. */
int gc_table_evict_one(gc_table_t *t, const gc_entry_t *keep);

/* Writer: remove every entry. */
void gc_table_clear(gc_table_t *t);

/* This thread's epoch record (registered on first use), or NULL (-ENOMEM). */
ck_epoch_record_t *gc_epoch_record(void);

/* Writer: free what no reader can reach any more (cheap; call often). */
void gc_epoch_poll(void);

/* Writer: wait until every section that began before now has ended, then
 * free everything this thread retired. */
void gc_epoch_barrier(void);

/* A reader calls this just before ck_epoch_end (a no-op outside TSan
 * builds: see atomic.h). */
void gc_epoch_reader_done(void);

/* Entries this thread retired that are not yet freed. */
unsigned int gc_epoch_pending(void);

#endif /* GC_TABLE_H */

/*
 * The cache table (see table.h for the structure) and the epoch glue.
 *
 * Everything named gc_table_* except gc_table_find runs on the writer thread
 * only.  Readers reach entries solely through ck_hs_get inside an epoch
 * section; ck_hs in SPMC mode publishes a slot only after the object it
 * points to is written (its own store fences), and the writer never changes
 * an entry a reader can see except for `deadline` (ck_pr_store_64 here,
 * ck_pr_load_64 in the reader) and `ref` (advisory, single-byte atomics).
 */
#define _GNU_SOURCE
#include "alloc.h"
#include "table.h"

#include "atomic.h"
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define GC_CONTAINER(p, type, member) \
    ((type *)(void *)((char *)(p) - offsetof(type, member)))

/* ------------------------------------------------------------------ */
/* Epoch records                                                        */

static ck_epoch_t gc_epoch;
static pthread_once_t gc_epoch_once = PTHREAD_ONCE_INIT;
static pthread_key_t gc_epoch_key;
static __thread ck_epoch_record_t *gc_tls_rec;
static unsigned long gc_hash_seed;
static char gc_tsan_epoch_sync __attribute__((unused));

/* Thread exit: free what this thread retired, then hand the record back
 * for reuse by a later thread (ck never frees records). */
static void
gc_epoch_thread_exit(void *p)
{
    ck_epoch_record_t *rec = p;

    if (rec->n_pending > 0)
        ck_epoch_barrier(rec);
    /* Hand-off to the thread that recycles it (inside libck: TSan needs
     * the edge stated, see atomic.h). */
    GC_TSAN_RELEASE(rec);
    ck_epoch_unregister(rec);
}

static void
gc_epoch_global_init(void)
{
    unsigned long seed = 0x9e3779b97f4a7c15ul;

    ck_epoch_init(&gc_epoch);
    (void)pthread_key_create(&gc_epoch_key, gc_epoch_thread_exit);
    /* A per-process random seed keeps hash flooding from being planned. */
    if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != sizeof(seed))
        seed ^= (unsigned long)&seed;
    gc_hash_seed = seed;
}

ck_epoch_record_t *
gc_epoch_record(void)
{
    ck_epoch_record_t *rec = gc_tls_rec;

    if (rec != NULL)
        return rec;
    pthread_once(&gc_epoch_once, gc_epoch_global_init);
    rec = ck_epoch_recycle(&gc_epoch, NULL);
    if (rec != NULL)
        GC_TSAN_ACQUIRE(rec);
    if (rec == NULL) {
        rec = aligned_alloc(CK_MD_CACHELINE, sizeof(*rec));
        if (rec == NULL)
            return NULL;
        ck_epoch_register(&gc_epoch, rec, NULL);
    }
    if (pthread_setspecific(gc_epoch_key, rec) != 0) {
        ck_epoch_unregister(rec);
        return NULL;
    }
    gc_tls_rec = rec;
    return rec;
}

void
gc_epoch_poll(void)
{
    if (gc_tls_rec != NULL && gc_tls_rec->n_pending > 0)
        ck_epoch_poll(gc_tls_rec);
}

void
gc_epoch_barrier(void)
{
    if (gc_tls_rec != NULL && gc_tls_rec->n_pending > 0)
        ck_epoch_barrier(gc_tls_rec);
}

unsigned int
gc_epoch_pending(void)
{
    return gc_tls_rec != NULL ? gc_tls_rec->n_pending : 0;
}

/* ------------------------------------------------------------------ */
/* Hashing and the ck_hs callbacks                                      */

static inline uint64_t
gc_mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

/*
 * Seeded hash of a composite key: one multiply and rotate per 8-byte word,
 * then one full avalanche (gc_mix).  About 4 instructions a word instead of
 * a full mix per word; keys are short (namespace + key), so the final mix
 * dominates, and the per-process random seed keeps collisions unplannable.
 */
unsigned long
gc_key_hash(const void *bytes, size_t len)
{
    const unsigned char *p = bytes;
    uint64_t h, w;

    /* No pthread_once here (it is on every lookup): the seed is set by
     * gc_table_init, which runs before any cache can hand out a key, and a
     * thread only reaches a cache through a handle whose hand-off (thread
     * creation, a lock, a mailbox) orders the seed's store before us. */
    h = gc_hash_seed ^ (len * 0x9e3779b97f4a7c15ull);
    while (len >= 8) {
        memcpy(&w, p, 8);
        h = (h ^ w) * 0x9ddfea08eb382d69ull;
        h = (h << 29) | (h >> 35);
        p += 8;
        len -= 8;
    }
    w = 0;
    memcpy(&w, p, len);
    h = (h ^ w) * 0x9ddfea08eb382d69ull;
    return (unsigned long)gc_mix(h);
}

static unsigned long
gc_hs_hash(const void *k, unsigned long seed)
{
    (void)seed;
    return ((const gc_key_t *)k)->hash;
}

static bool
gc_hs_compare(const void *a, const void *b)
{
    const gc_key_t *x = a, *y = b;

    /* Probing reads entries other than the one found: each was published
     * by ck_hs_set (TSan edge, see atomic.h). */
    GC_TSAN_ACQUIRE(a);
    GC_TSAN_ACQUIRE(b);
    return x->hash == y->hash && x->len == y->len &&
        memcmp(x->bytes, y->bytes, x->len) == 0;
}

/* ck_hs replaces its map when it grows; readers may still be probing the
 * old one, so a "deferred" free goes through the epoch. */
typedef struct gc_block {
    ck_epoch_entry_t ep;
    size_t size;
    max_align_t align[];
} gc_block_t;

/* Set when the map allocator fails: ck_hs_grow returns false both when the
 * map is already large enough and when it ran out of memory, and this tells
 * the two apart (writer thread only). */
static __thread int gc_hs_alloc_failed;

static void *
gc_hs_malloc(size_t r)
{
    gc_block_t *b = gc_malloc(sizeof(*b) + r);

    if (b == NULL) {
        gc_hs_alloc_failed = 1;
        return NULL;
    }
    b->size = r;
    return b + 1;
}

static void
gc_block_free_cb(ck_epoch_entry_t *ep)
{
    GC_TSAN_ACQUIRE(&gc_tsan_epoch_sync);
    gc_free(GC_CONTAINER(ep, gc_block_t, ep));
}

static void
gc_hs_free(void *p, size_t size, bool defer)
{
    gc_block_t *b;
    ck_epoch_record_t *rec;

    (void)size;
    if (p == NULL)
        return;
    b = (gc_block_t *)p - 1;
    if (defer && (rec = gc_epoch_record()) != NULL)
        ck_epoch_call(rec, &b->ep, gc_block_free_cb);
    else
        gc_free(b);
}

static void *
gc_hs_realloc(void *p, size_t old, size_t new_size, bool defer)
{
    void *n = gc_hs_malloc(new_size);

    if (n == NULL)
        return NULL;
    memcpy(n, p, old < new_size ? old : new_size);
    gc_hs_free(p, old, defer);
    return n;
}

static struct ck_malloc gc_hs_allocator = {
    .malloc = gc_hs_malloc,
    .realloc = gc_hs_realloc,
    .free = gc_hs_free,
};

/* ------------------------------------------------------------------ */
/* Entries                                                              */

gc_entry_t *
gc_entry_new(const char *ns, size_t ns_len, const void *key, size_t key_len,
             const void *value, size_t value_len, int64_t ttl_ms)
{
    size_t klen = ns_len + 1 + key_len;
    gc_entry_t *e = gc_malloc(sizeof(*e) + klen + value_len);

    if (e == NULL)
        return NULL;
    memcpy(e->data, ns, ns_len);
    e->data[ns_len] = '\0';
    if (key_len > 0)
        memcpy(e->data + ns_len + 1, key, key_len);
    if (value_len > 0)
        memcpy(e->data + klen, value, value_len);
    e->key.bytes = e->data;
    e->key.len = klen;
    e->key.hash = gc_key_hash(e->data, klen);
    e->deadline = 0;
    e->ttl_ms = ttl_ms;
    e->ns_len = (uint32_t)ns_len;
    e->value_len = (uint32_t)value_len;
    e->heap_idx = 0;
    e->slot = 0;
    e->ref = 0;
    return e;
}

void
gc_entry_free(gc_entry_t *e)
{
    gc_free(e);
}

/* The single object every reader's section end releases and every
 * reclamation acquires (TSan build only, see atomic.h): it states that the
 * epoch grace period orders every earlier read before the free. */
void
gc_epoch_reader_done(void)
{
    GC_TSAN_RELEASE(&gc_tsan_epoch_sync);
}

static void
gc_entry_free_cb(ck_epoch_entry_t *ep)
{
    GC_TSAN_ACQUIRE(&gc_tsan_epoch_sync);
    gc_free(GC_CONTAINER(ep, gc_entry_t, u.ep));
}

static void
gc_entry_retire(gc_entry_t *e)
{
    ck_epoch_record_t *rec = gc_epoch_record();

    /* Without a record (no memory for one) we cannot defer safely; wait
     * for every reader instead by leaking is worse than a short stall. */
    if (rec != NULL) {
        ck_epoch_call(rec, &e->u.ep, gc_entry_free_cb);
    } else {
        ck_epoch_synchronize_wait(&gc_epoch, NULL, NULL);
        gc_free(e);
    }
}

/* ------------------------------------------------------------------ */
/* The expiry heap                                                      */

static int
gc_heap_less(const gc_table_t *t, size_t i, size_t j)
{
    return t->heap[i]->deadline < t->heap[j]->deadline;
}

static void
gc_heap_set(gc_table_t *t, size_t i, gc_entry_t *e)
{
    t->heap[i] = e;
    e->heap_idx = (uint32_t)(i + 1);
}

static void
gc_heap_swap(gc_table_t *t, size_t i, size_t j)
{
    gc_entry_t *a = t->heap[i];

    gc_heap_set(t, i, t->heap[j]);
    gc_heap_set(t, j, a);
}

static void
gc_heap_up(gc_table_t *t, size_t i)
{
    while (i > 0 && gc_heap_less(t, i, (i - 1) / 2)) {
        gc_heap_swap(t, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void
gc_heap_down(gc_table_t *t, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;

        if (l < t->hn && gc_heap_less(t, l, m))
            m = l;
        if (r < t->hn && gc_heap_less(t, r, m))
            m = r;
        if (m == i)
            return;
        gc_heap_swap(t, i, m);
        i = m;
    }
}

static int
gc_grow(void *pp, size_t *cap, size_t need)
{
    gc_entry_t ***p = pp;
    size_t n = *cap ? *cap : 64;
    gc_entry_t **v;

    if (need <= *cap)
        return 0;
    while (n < need)
        n *= 2;
    v = gc_realloc(*p, n * sizeof(*v));
    if (v == NULL)
        return -ENOMEM;
    *p = v;
    *cap = n;
    return 0;
}

static void
gc_heap_remove(gc_table_t *t, gc_entry_t *e)
{
    size_t i;

    if (e->heap_idx == 0)
        return;
    i = e->heap_idx - 1;
    e->heap_idx = 0;
    t->hn--;
    if (i != t->hn) {
        gc_heap_set(t, i, t->heap[t->hn]);
        gc_heap_down(t, i);
        gc_heap_up(t, i);
    }
}

/* ------------------------------------------------------------------ */
/* The table                                                            */

int
gc_table_init(gc_table_t *t)
{
    memset(t, 0, sizeof(*t));
    pthread_once(&gc_epoch_once, gc_epoch_global_init);
    if (!ck_hs_init(&t->hs, CK_HS_MODE_OBJECT | CK_HS_MODE_SPMC | CK_HS_MODE_DELETE,
                    gc_hs_hash, gc_hs_compare, &gc_hs_allocator, 64, gc_hash_seed))
        return -ENOMEM;
    t->ready = 1;
    return 0;
}

void
gc_table_destroy(gc_table_t *t)
{
    size_t i;

    for (i = 0; i < t->n; i++)
        gc_free(t->all[i]);
    if (t->ready)
        ck_hs_destroy(&t->hs);  /* not after a failed ck_hs_init */
    gc_free(t->all);
    gc_free(t->heap);
    memset(t, 0, sizeof(*t));
}

gc_entry_t *
gc_table_find(gc_table_t *t, const gc_key_t *key)
{
    void *k = ck_hs_get(&t->hs, key->hash, key);

    /* ck_hs_set published the entry (TSan cannot see inside libck). */
    if (k != NULL)
        GC_TSAN_ACQUIRE(k);
    return k != NULL ? GC_CONTAINER(k, gc_entry_t, key) : NULL;
}

static void
gc_table_account(gc_table_t *t, const gc_entry_t *e, int sign)
{
    uint64_t sz = gc_entry_record_bytes(e);

    /* Stores for stats readers (cache_stats); the writer is alone. */
    gc_store_64(&t->bytes, sign > 0 ? t->bytes + sz : t->bytes - sz);
    gc_store_64(&t->count, sign > 0 ? t->count + 1 : t->count - 1);
}

/* Remove e from the dense array and the heap (not from ck_hs). */
static void
gc_table_unindex(gc_table_t *t, gc_entry_t *e)
{
    size_t i = e->slot;

    t->n--;
    if (i != t->n) {
        t->all[i] = t->all[t->n];
        t->all[i]->slot = (uint32_t)i;
    }
    gc_heap_remove(t, e);
    gc_table_account(t, e, -1);
}

int
gc_table_reserve(gc_table_t *t, size_t n)
{
    if (gc_grow(&t->all, &t->cap, t->n + n) != 0 ||
        gc_grow(&t->heap, &t->hcap, t->hn + n) != 0)
        return -ENOMEM;
    /* ck_hs grows itself past half full; ask for that room up front so no
     * insert of the batch has to allocate. */
    gc_hs_alloc_failed = 0;
    if (!ck_hs_grow(&t->hs, (unsigned long)(t->n + n) * 4) && gc_hs_alloc_failed)
        return -ENOMEM;
    return 0;
}

int
gc_table_insert_keep(gc_table_t *t, gc_entry_t *e, uint64_t now, gc_entry_t **old)
{
    void *prev = NULL;

    *old = NULL;
    if (gc_grow(&t->all, &t->cap, t->n + 1) != 0 ||
        gc_grow(&t->heap, &t->hcap, t->hn + 1) != 0)
        return -ENOMEM;
    if (e->ttl_ms > 0)
        e->deadline = (uint64_t)e->ttl_ms > UINT64_MAX - now ? UINT64_MAX
                                                             : now + (uint64_t)e->ttl_ms;
    else
        e->deadline = 0;
    e->ref = 1;
    e->heap_idx = 0;
    /* Publishes e: ck_hs orders e's contents before the slot store. */
    GC_TSAN_RELEASE(&e->key);
    if (!ck_hs_set(&t->hs, e->key.hash, &e->key, &prev))
        return -ENOMEM;
    e->slot = (uint32_t)t->n;
    t->all[t->n++] = e;
    if (e->deadline != 0) {
        gc_heap_set(t, t->hn++, e);
        gc_heap_up(t, t->hn - 1);
    }
    gc_table_account(t, e, 1);
    if (prev != NULL) {
        *old = GC_CONTAINER(prev, gc_entry_t, key);
        /* The old entry leaves the heap with it: its deadline can never
         * remove the new value. */
        gc_table_unindex(t, *old);
    }
    return 0;
}

void
gc_table_retire(gc_entry_t *e)
{
    if (e != NULL)
        gc_entry_retire(e);
}

void
gc_table_undo(gc_table_t *t, gc_entry_t *e, gc_entry_t *old)
{
    if (old == NULL) {
        /* e was new: removing it from ck_hs never allocates. */
        ck_hs_remove(&t->hs, e->key.hash, &e->key);
    } else {
        void *prev = NULL;

        /* Same key: ck_hs_set finds e's slot and replaces it in place,
         * which never allocates, so this cannot fail. */
        GC_TSAN_RELEASE(&old->key);
        (void)ck_hs_set(&t->hs, old->key.hash, &old->key, &prev);
    }
    gc_table_unindex(t, e);
    if (old != NULL) {
        /* The slot e freed in the dense array, and the heap room old had
         * before, are still allocated: no allocation here either. */
        old->slot = (uint32_t)t->n;
        t->all[t->n++] = old;
        old->heap_idx = 0;
        if (old->deadline != 0) {
            gc_heap_set(t, t->hn++, old);
            gc_heap_up(t, t->hn - 1);
        }
        gc_table_account(t, old, 1);
    }
    /* e was published: a reader may hold it, so it goes through the epoch
     * like any removed entry. */
    gc_entry_retire(e);
}

int
gc_table_insert(gc_table_t *t, gc_entry_t *e, uint64_t now)
{
    gc_entry_t *old;
    int rc = gc_table_insert_keep(t, e, now, &old);

    if (rc == 0)
        gc_table_retire(old);
    return rc;
}

void
gc_table_remove(gc_table_t *t, gc_entry_t *e)
{
    ck_hs_remove(&t->hs, e->key.hash, &e->key);
    gc_table_unindex(t, e);
    gc_entry_retire(e);
}

int
gc_table_set_deadline(gc_table_t *t, gc_entry_t *e, uint64_t deadline)
{
    if (deadline != 0 && e->heap_idx == 0 &&
        gc_grow(&t->heap, &t->hcap, t->hn + 1) != 0)
        return -ENOMEM;
    /* Readers check expiry with ck_pr_load_64 on this word: the new
     * deadline is one atomic store, so a reader sees the old or the new. */
    gc_store_64(&e->deadline, deadline);
    if (deadline == 0) {
        gc_heap_remove(t, e);
    } else if (e->heap_idx == 0) {
        gc_heap_set(t, t->hn++, e);
        gc_heap_up(t, t->hn - 1);
    } else {
        gc_heap_down(t, e->heap_idx - 1);
        gc_heap_up(t, e->heap_idx - 1);
    }
    return 0;
}

uint64_t
gc_table_next_deadline(const gc_table_t *t)
{
    return t->hn ? t->heap[0]->deadline : 0;
}

size_t
gc_table_expire(gc_table_t *t, uint64_t now, size_t max)
{
    size_t k = 0;

    while (k < max && t->hn > 0 && t->heap[0]->deadline <= now) {
        gc_table_remove(t, t->heap[0]);
        k++;
    }
    return k;
}

int
gc_table_evict_one(gc_table_t *t, const gc_entry_t *keep)
{
    size_t steps;

    /* Two sweeps at most: the first may only clear reference bits. */
    for (steps = 0; steps <= 2 * t->n + 1 && t->n > 0; steps++) {
        gc_entry_t *e;

        if (t->hand >= t->n)
            t->hand = 0;
        e = t->all[t->hand];
        if (e == keep) {
            t->hand++;
            continue;
        }
        if (gc_load_8(&e->ref)) {
            gc_store_8(&e->ref, 0);
            t->hand++;
            continue;
        }
        gc_table_remove(t, e);  /* the last entry moves into this slot */
        return 1;
    }
    return 0;
}

void
gc_table_clear(gc_table_t *t)
{
    while (t->n > 0)
        gc_table_remove(t, t->all[t->n - 1]);
}

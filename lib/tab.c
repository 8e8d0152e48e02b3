/*
 * The table: one writer, many lock-free readers (see tab.h for the
 * contract and docs/design.md, "The table (lib/tab.c)", for the argument
 * and the measurements).
 *
 * Index.  64-byte buckets of 12 slots: twelve 1-byte tags (the hash's low
 * byte, 0 meaning empty), an overflow count and twelve 32-bit entry ids
 * (slab.h).  A key's home bucket comes from the hash's high 32 bits
 * (multiply-shift, so any bucket count works); an insert takes the first
 * bucket with a free slot from home on, raising the overflow count of every
 * full bucket it passes (F14's scheme; it saturates at 255), so a lookup
 * stops at the first bucket whose overflow count is 0.  A lookup compares
 * the 12 tags at once (SWAR on an 8- and a 4-byte word) and touches an
 * entry only on a tag match: a miss costs one cache line.
 *
 * Entries are immutable once readers can reach them (copy-on-write): a
 * put of a present key writes a new entry and swaps the slot's id; a
 * slot's id is the unit of publication (a release store, paired with the
 * readers' acquire load), and a reader validates what it found by comparing
 * the full key in the entry.  So no per-bucket version is needed: entries
 * never move within a map, a slot only goes empty -> id -> other id ->
 * empty, and whatever id a reader loads names an entry that stays valid
 * for its whole read section (ebr.h).  What is mutated in place is atomic:
 * the deadline (64-bit store), the frequency counter (readers' byte store).
 *
 * Growth is incremental (Redis dict.c's idea, with lock-free readers): when
 * the newest map is 7/8 full a map twice as large is linked as old->next
 * and becomes the target of new keys; every writer call moves one old
 * bucket (gc_tab_maintain 64) by inserting each of its entries in the new
 * map before clearing the old slot.  Readers probe the oldest map first and
 * follow ->next: a reader that finds a slot cleared by a move acquires the
 * insert that preceded it.  The oldest map, once empty, is unlinked and
 * retired.
 *
 * Batches.  A staged put allocates its entry and reserves its slot (a new
 * key's slot holds GC_TAB_RES, which readers skip); the commit stores every
 * slot's id inside a table-wide sequence window (odd: a commit is in
 * progress; readers retry when the sequence moved during their read, and
 * wait while it is odd), so a reader sees all of a batch or none.
 *
 * Writer-only indexes.  S3-FIFO queues (small, main) doubly linked by entry
 * ids in the entries, only when a limit is set; a ghost of 16-bit
 * fingerprints in buckets of four; a binary min-heap of (deadline, id) for
 * the entries with a TTL, each of which knows its heap position.
 */
#define _GNU_SOURCE
#include "tab.h"

#include "alloc.h"
#include "atomic.h"
#include "ebr.h"
#include "slab.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define GC_TAB_SLOTS 12
#define GC_TAB_RES 0xFFFFFFFFu        /* a staged new key's reserved slot */
#define GC_TAB_MAIN 0x80000000u       /* in self: the entry is in M */
#define GC_TAB_F_TTL 1                /* the entry has an ext_t */
#define GC_TAB_RECLAIM_AT 1024        /* retired entries that force a sync */

typedef struct bucket {
    uint64_t tag_lo;      /* tags of slots 0-7, byte i = slot i; 0 empty */
    uint32_t tag_hi;      /* tags of slots 8-11 */
    uint8_t ovf;          /* entries that passed this bucket; saturates */
    uint8_t pad[3];
    uint32_t id[GC_TAB_SLOTS];
} __attribute__((aligned(64))) bucket_t;

_Static_assert(sizeof(bucket_t) == 64, "a bucket is one cache line");

typedef struct map {
    /* line 0: what readers read */
    struct map *next;     /* the newer map while a resize runs */
    uint32_t nb;          /* buckets */
    char pad0[64 - 12];
    /* line 1: the writer's */
    struct map *rnext;    /* retired maps */
    uint64_t rtag;        /* ebr tag, 0: not tagged yet */
    uint32_t count;       /* occupied slots (ids and reservations) */
    uint32_t cursor;      /* next bucket to move out (old maps) */
    void *raw;            /* what gc_calloc returned */
    char pad1[64 - 32];
    bucket_t b[];
} map_t;

typedef struct ent {
    uint32_t klen, vlen;
    uint32_t self;        /* writer: own id | GC_TAB_MAIN */
    uint32_t qprev, qnext;/* writer: S3-FIFO links (ids); qnext: retire list */
    uint16_t ns;
    uint8_t freq;         /* 0..3: readers raise it, the writer lowers it */
    uint8_t flags;        /* GC_TAB_F_TTL; immutable */
    unsigned char data[]; /* [ext_t] key value */
} ent_t;

_Static_assert(sizeof(ent_t) == 24, "entry header");

typedef struct ext {
    uint64_t deadline;    /* clock ms, 0: none; atomic (readers) */
    int64_t ttl_ms;       /* the length last set (touch), 0: none */
    uint32_t hpos;        /* 1 + heap index; 0: not in the heap */
    uint32_t pad;
} ext_t;

typedef struct fifo {
    uint32_t head, tail;  /* ids; head is the oldest */
    uint64_t count, bytes;
} fifo_t;

typedef struct hitem {
    uint64_t deadline;
    uint32_t id;
    uint32_t pad;
} hitem_t;

typedef struct stage {
    map_t *m;
    uint32_t bi, si;
    uint32_t old_id;      /* 0: a new key (the slot holds GC_TAB_RES) */
    uint32_t new_id;
    uint64_t hash;
} stage_t;

typedef struct seg {
    uint32_t head, tail;  /* retired entries linked by qnext */
    uint64_t tag;
} seg_t;

#define GC_TAB_SEGS 32

typedef struct nsname {
    uint32_t len;
    char name[];
} nsname_t;

struct gc_tab {
    /* line 0: what readers read (written rarely) */
    map_t *map;                  /* oldest map */
    const actor_clock_t *clock;
    uint32_t bseq;               /* batch commit sequence, odd: committing */
    uint32_t pad0;
    gc_slab_t slab;              /* slab.arr is read by readers; the rest is
                                    the writer's, on later lines */
    /* the writer's */
    map_t *newest;
    map_t *retired_maps;
    uint64_t max_entries, max_bytes;
    int limited;
    fifo_t S, M;
    uint64_t *ghost;
    uint32_t gmask;
    hitem_t *heap;
    size_t hn, hcap;
    /* retired entries: fresh (untagged) list and tagged segments */
    uint32_t fresh_head, fresh_tail;
    size_t fresh_n;
    seg_t segs[GC_TAB_SEGS];
    unsigned seg_first, seg_n;
    unsigned maint;
    /* batches */
    int in_batch;
    stage_t *st;
    size_t sn, scap;
    uint32_t *sidx;
    size_t smask;
    gc_tab_event_fn ev;
    void *ev_ctx;
    /* namespaces: 256 blocks of 256 names, published by nns */
    nsname_t **nsblk[256];
    uint32_t nns;
    /* stats: their own line, written on every change */
    uint64_t count __attribute__((aligned(64)));
    uint64_t bytes;
};

/* ------------------------------------------------------------------ */
/* Hash                                                                 */

static uint64_t gc_tab_seed = 0x2d358dccaa6c78a5ull;

__attribute__((constructor)) static void
tab_seed_init(void)
{
    uint64_t s;

    /* A per-process random seed keeps hash flooding from being planned. */
    if (getrandom(&s, sizeof(s), GRND_NONBLOCK) == sizeof(s))
        gc_tab_seed ^= s;
    else
        gc_tab_seed ^= (uint64_t)(uintptr_t)&s;
}

static inline uint64_t
tab_mix(uint64_t a, uint64_t b)
{
    __uint128_t r = (__uint128_t)a * b;

    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

static inline uint64_t
tab_rd64(const unsigned char *p)
{
    uint64_t v;

    memcpy(&v, p, 8);
    return v;
}

static inline uint64_t
tab_rd32(const unsigned char *p)
{
    uint32_t v;

    memcpy(&v, p, 4);
    return v;
}

/*
 * wyhash-style: one 64x64->128 multiply per 16 bytes plus one to finish.
 * A key of up to 16 bytes (the common case) is read as two overlapping
 * words with no loop: about 15 instructions.
 */
uint64_t
gc_tab_hash(uint16_t ns, const void *key, size_t len)
{
    const unsigned char *p = key;
    uint64_t s = gc_tab_seed ^ (((uint64_t)ns << 40 | len) * 0x9e3779b97f4a7c15ull);
    uint64_t a, b;

    if (len <= 16) {
        if (len >= 8) {
            a = tab_rd64(p);
            b = tab_rd64(p + len - 8);
        } else if (len >= 4) {
            a = tab_rd32(p);
            b = tab_rd32(p + len - 4);
        } else if (len > 0) {
            a = (uint64_t)p[0] << 16 | (uint64_t)p[len / 2] << 8 | p[len - 1];
            b = 0;
        } else {
            a = b = 0;
        }
    } else {
        size_t n = len;

        while (n > 16) {
            s = tab_mix(tab_rd64(p) ^ 0xa0761d6478bd642full, tab_rd64(p + 8) ^ s);
            p += 16;
            n -= 16;
        }
        a = tab_rd64(p + n - 16);
        b = tab_rd64(p + n - 8);
    }
    return tab_mix(tab_mix(a ^ 0xe7037ed1a0b428dbull, b ^ s) ^ 0x8ebc6af09c88c6e3ull,
                   s ^ 0x589965cc75374cc3ull);
}

/* ------------------------------------------------------------------ */
/* Entries, buckets                                                     */

static inline unsigned char *
ent_key(const ent_t *e)
{
    return (unsigned char *)e->data + ((e->flags & GC_TAB_F_TTL) ? sizeof(ext_t) : 0);
}

static inline ext_t *
ent_ext(const ent_t *e)
{
    return (ext_t *)e->data;
}

static inline size_t
ent_size(const ent_t *e)
{
    return sizeof(ent_t) + ((e->flags & GC_TAB_F_TTL) ? sizeof(ext_t) : 0) + e->klen + e->vlen;
}

static inline uint32_t
ent_id(const ent_t *e)
{
    return e->self & ~GC_TAB_MAIN;
}

static inline ent_t *
tab_ent(const gc_tab_t *t, uint32_t id)
{
    return gc_slab_ptr(&t->slab, id);
}

static inline uint32_t
tab_home(uint64_t hash, uint32_t nb)
{
    return (uint32_t)(((hash >> 32) * (uint64_t)nb) >> 32);
}

static inline uint8_t
tab_tag(uint64_t hash)
{
    uint8_t g = (uint8_t)hash;

    return g != 0 ? g : 1;
}

static inline int
tab_keq(const unsigned char *a, const void *b, uint32_t len)
{
    if (len == 16)
        return tab_rd64(a) == tab_rd64(b) && tab_rd64(a + 8) == tab_rd64((const unsigned char *)b + 8);
    return memcmp(a, b, len) == 0;
}

#define ONES 0x0101010101010101ull
#define HIGHS 0x8080808080808080ull

/* Candidate slots of bucket b whose tag may equal tag: bit 8*i+7 set for
 * slot i of the low word, bit 8*(i-8)+7 of the high word.  (The SWAR
 * zero-byte test can flag a byte after a true match; the id and key
 * checks reject it.) */
static inline uint64_t
match_lo(uint64_t w, uint8_t tag)
{
    uint64_t x = w ^ (ONES * tag);

    return (x - ONES) & ~x & HIGHS;
}

static inline uint32_t
match_hi(uint32_t w, uint8_t tag)
{
    uint32_t x = w ^ (0x01010101u * tag);

    return (x - 0x01010101u) & ~x & 0x80808080u;
}

/*
 * Bit s set for each slot s of b whose tag equals tag.  With SSE2 one
 * 16-byte load and compare covers the twelve tags (the load is not one
 * atomic access, but each of its aligned 8-byte halves is on x86-64, and
 * the two tag words are independent atomics anyway: a torn pair is a
 * pair of loads at two moments, which the id and key checks tolerate).
 * TSan builds and other targets use the two atomic words and SWAR.
 */
static inline uint32_t
tag_match(const bucket_t *b, uint8_t tag)
{
#if defined(__SSE2__) && !defined(GC_TSAN)
    __m128i w = _mm_load_si128((const __m128i *)(const void *)b);

    /* Acquire for the ids read after it (x86: loads are not reordered
     * with loads; this keeps the compiler from doing it). */
    __atomic_signal_fence(__ATOMIC_ACQUIRE);
    return (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(w, _mm_set1_epi8((char)tag))) & 0xfffu;
#else
    uint64_t ml = match_lo(GC_RD_ACQ(&b->tag_lo), tag);
    uint32_t mh = match_hi(GC_RD_ACQ(&b->tag_hi), tag), r = 0, s;

    for (s = 0; s < 8; s++)
        r |= (uint32_t)((ml >> (8 * s + 7)) & 1) << s;
    for (s = 0; s < 4; s++)
        r |= ((mh >> (8 * s + 7)) & 1) << (8 + s);
    return r;
#endif
}

static inline uint8_t
tag_get(const bucket_t *b, uint32_t s)
{
    return s < 8 ? (uint8_t)(b->tag_lo >> (8 * s)) : (uint8_t)(b->tag_hi >> (8 * (s - 8)));
}

/* Writer: the only writer of tags, so read-modify-write then one atomic
 * store of the word (release: a reader that sees the tag sees the id stored
 * before it). */
static inline void
tag_set(bucket_t *b, uint32_t s, uint8_t tag)
{
    if (s < 8) {
        uint64_t w = (b->tag_lo & ~(0xffull << (8 * s))) | (uint64_t)tag << (8 * s);

        gc_store_64(&b->tag_lo, w);
    } else {
        uint32_t w = (b->tag_hi & ~(0xffu << (8 * (s - 8)))) | (uint32_t)tag << (8 * (s - 8));

        gc_store_32(&b->tag_hi, w);
    }
}

/*
 * Probe map m for k.  Readers and the writer.  Returns the entry (and its
 * bucket and slot when bi is not NULL), or NULL.  Each tag word and id is
 * an acquire load (pairs with tag_set and the id stores); the entry's
 * fields, written before its id was published, are then visible.  Visits
 * at most nb buckets (in practice one).
 */
static inline ent_t *
map_probe(const gc_tab_t *t, map_t *m, const gc_tab_key_t *k, uint32_t *bi, uint32_t *si)
{
    uint32_t nb = GC_RD_ACQ(&m->nb), i = tab_home(k->hash, nb), step;
    uint8_t tag = tab_tag(k->hash);

    for (step = 0; step < nb; step++) {
        bucket_t *b = &m->b[i];
        uint32_t mm = tag_match(b, tag);

        while (mm) {
            uint32_t s = (uint32_t)__builtin_ctz(mm), id;
            ent_t *e;

            mm &= mm - 1;
            id = GC_RD_ACQ(&b->id[s]);
            if (id == 0 || id == GC_TAB_RES)
                continue;
            e = tab_ent(t, id);
            if (e->klen == k->len && e->ns == k->ns && tab_keq(ent_key(e), k->key, k->len)) {
                if (bi != NULL) {
                    *bi = i;
                    *si = s;
                }
                return e;
            }
        }
        if (GC_RD_ACQ(&b->ovf) == 0)
            return NULL;
        i = i + 1 == nb ? 0 : i + 1;
    }
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Reads                                                                */

/* Copy n bytes: up to 64 inline as two overlapping moves of the largest
 * fitting power of two (no call, no size loop), more by memcpy. */
static inline void
tab_copy(void *dst, const void *src, size_t n)
{
    unsigned char *d = dst;
    const unsigned char *s = src;

    /* dst and src never overlap; the two halves may overlap each other
     * in dst, writing the same bytes twice. */
    if (n >= 32 && n <= 64) {
        memcpy(d, s, 32);
        memcpy(d + n - 32, s + n - 32, 32);
    } else if (n >= 16 && n < 32) {
        memcpy(d, s, 16);
        memcpy(d + n - 16, s + n - 16, 16);
    } else if (n > 64 || n >= 4) {
        memcpy(d, s, n);
    } else if (n > 0) {
        d[0] = s[0];
        d[n / 2] = s[n / 2];
        d[n - 1] = s[n - 1];
    }
}

static uint64_t
tab_now(const gc_tab_t *t)
{
    return actor_clock_now(t->clock);
}

int
gc_tab_get(gc_tab_t *t, const gc_tab_key_t *k, void *buf, size_t cap, size_t *vlen,
           int64_t *ttl_left)
{
    gc_ebr_rec_t *r = gc_ebr_reader();
    unsigned spins = 0;
    uint32_t s1;
    int rc;

    if (r == NULL)
        return -ENOMEM;
    gc_ebr_enter(r);
retry:
    /* Acquire: pairs with the commit's closing release store; odd means a
     * commit is storing its slots: wait (it stores ids only, no
     * allocation), yielding if the writer seems preempted. */
    s1 = GC_RD_ACQ(&t->bseq);
    if (s1 & 1) {
        if (++spins > 128)
            sched_yield();
        else
            ck_pr_stall();
        goto retry;
    }
    {
        map_t *m;
        ent_t *e = NULL;

        for (m = GC_RD_ACQ(&t->map); m != NULL; m = GC_RD_ACQ(&m->next)) {
            e = map_probe(t, m, k, NULL, NULL);
            if (e != NULL)
                break;
        }
        rc = -ENOENT;
        if (e != NULL) {
            int64_t left = INT64_MAX;
            uint8_t c;

            if (e->flags & GC_TAB_F_TTL) {
                /* Pairs with the writer's atomic store in set_ttl. */
                uint64_t d = GC_RD_ACQ(&ent_ext(e)->deadline);

                if (d != 0) {
                    uint64_t now = tab_now(t);

                    if (d <= now)
                        goto done;
                    left = (int64_t)(d - now);
                }
            }
            if (ttl_left != NULL)
                *ttl_left = left;
            if (vlen != NULL)
                *vlen = e->vlen;
            if (e->vlen <= cap) {
                tab_copy(buf, ent_key(e) + e->klen, e->vlen);
                rc = 0;
            } else {
                tab_copy(buf, ent_key(e) + e->klen, cap);
                rc = -ENOBUFS;
            }
            /* Relaxed byte store only when the counter changes, so a hot
             * entry's line stays shared; a lost race loses one count. */
            c = GC_RD_ACQ(&e->freq);
            if (c < 3)
                GC_WR_RLX(&e->freq, (uint8_t)(c + 1));
        }
    }
done:
    /* The seqlock's read side: the id loads above are acquires, so this
     * second load of bseq cannot move before them; a reader that loaded an
     * id the commit stored (after its odd store, see below) then loads
     * the odd or a later value here. */
    if (GC_RD_ACQ(&t->bseq) != s1)
        goto retry;
    gc_ebr_exit(r);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Maps                                                                 */

/* A zeroed map.  gc_calloc rather than gc_aligned_calloc: the latter
 * memsets, which for a 16 MiB map is a multi-millisecond stall in one put;
 * calloc gets fresh zero pages from mmap for a large block, and their first
 * touch is spread over the inserts and moves that follow. */
static map_t *
map_new(uint32_t nb, int huge)
{
    void *raw = gc_calloc(1, sizeof(map_t) + (size_t)nb * sizeof(bucket_t) + 64);
    map_t *m;

    if (raw == NULL)
        return NULL;
    m = (map_t *)(((uintptr_t)raw + 63) & ~(uintptr_t)63);
    m->raw = raw;
    m->nb = nb;
    /* A large map on huge pages (advice only; see slab.h for why: a TLB
     * miss per get costs more than the cache miss on this VM).  Only the
     * 2 MiB-aligned interior; a small map stays on small pages. */
    if (huge && nb >= 32768) {
        uintptr_t lo = ((uintptr_t)m->b + (2u << 20) - 1) & ~(uintptr_t)((2u << 20) - 1);
        uintptr_t hi = ((uintptr_t)(m->b + nb)) & ~(uintptr_t)((2u << 20) - 1);

        if (hi > lo)
            (void)madvise((void *)lo, hi - lo, MADV_HUGEPAGE);
    }
    return m;
}

static void
map_free(map_t *m)
{
    gc_free(m->raw);
}

static inline uint64_t
map_cap(const map_t *m)
{
    return (uint64_t)m->nb * GC_TAB_SLOTS * 7 / 8;
}

/* Writer: put id (or GC_TAB_RES) in the first free slot from hash's home.
 * The overflow counts along the way are raised first, then the id is
 * stored (release: the entry's contents before it), then the tag (release:
 * a reader that matches the tag finds the id). */
static void
map_insert(map_t *m, uint64_t hash, uint32_t id, uint32_t *obi, uint32_t *osi)
{
    uint32_t nb = m->nb, i = tab_home(hash, nb);

    for (;;) {
        bucket_t *b = &m->b[i];
        uint64_t free_lo = match_lo(b->tag_lo, 0);
        uint32_t free_hi = match_hi(b->tag_hi, 0);
        uint32_t s;

        /* A zero tag is exactly a free slot: no false positives on the
         * byte after a zero, since that false positive needs a 0x01 byte
         * following the zero and we take the lowest set bit. */
        if (free_lo | free_hi) {
            s = free_lo ? (uint32_t)__builtin_ctzll(free_lo) >> 3
                        : 8 + ((uint32_t)__builtin_ctz(free_hi) >> 3);
            gc_store_32(&b->id[s], id);
            tag_set(b, s, tab_tag(hash));
            m->count++;
            *obi = i;
            *osi = s;
            return;
        }
        if (b->ovf < 255)
            gc_store_8(&b->ovf, (uint8_t)(b->ovf + 1));
        i = i + 1 == nb ? 0 : i + 1;
    }
}

/* Writer: empty slot (bi, si) of m, whose entry hashes to hash, and lower
 * the overflow counts it had raised (a saturated count stays). */
static void
map_remove(map_t *m, uint32_t bi, uint32_t si, uint64_t hash)
{
    uint32_t i = tab_home(hash, m->nb);

    tag_set(&m->b[bi], si, 0);
    gc_store_32(&m->b[bi].id[si], 0);
    m->count--;
    while (i != bi) {
        bucket_t *b = &m->b[i];

        if (b->ovf < 255)
            gc_store_8(&b->ovf, (uint8_t)(b->ovf - 1));
        i = i + 1 == m->nb ? 0 : i + 1;
    }
}

/* Writer: find k in every map. */
static ent_t *
tab_wfind(gc_tab_t *t, const gc_tab_key_t *k, map_t **om, uint32_t *bi, uint32_t *si)
{
    map_t *m;

    for (m = t->map; m != NULL; m = m->next) {
        ent_t *e = map_probe(t, m, k, bi, si);

        if (e != NULL) {
            *om = m;
            return e;
        }
    }
    return NULL;
}

static uint64_t
ent_hash(const ent_t *e)
{
    return gc_tab_hash(e->ns, ent_key(e), e->klen);
}

/* Writer: where entry e sits (it must be in the table). */
static int
tab_locate(gc_tab_t *t, const ent_t *e, uint64_t hash, map_t **om, uint32_t *obi, uint32_t *osi)
{
    uint32_t id = ent_id(e);
    uint8_t tag = tab_tag(hash);
    map_t *m;

    for (m = t->map; m != NULL; m = m->next) {
        uint32_t i = tab_home(hash, m->nb), step, s;

        for (step = 0; step < m->nb; step++) {
            bucket_t *b = &m->b[i];

            for (s = 0; s < GC_TAB_SLOTS; s++)
                if (b->id[s] == id && tag_get(b, s) == tag) {
                    *om = m;
                    *obi = i;
                    *osi = s;
                    return 0;
                }
            if (b->ovf == 0)
                break;
            i = i + 1 == m->nb ? 0 : i + 1;
        }
    }
    return -ENOENT;
}

/* Writer: make sure the newest map can take `extra` more entries, linking
 * a larger one if needed.  0 or -ENOMEM (nothing changed). */
static int
tab_room(gc_tab_t *t, uint64_t extra)
{
    map_t *n = t->newest, *nm;
    uint64_t want = gc_load_64(&t->count) + extra, nb;

    if (n->count + extra <= map_cap(n) && want <= map_cap(n))
        return 0;
    nb = (uint64_t)n->nb * 2;
    while (nb * GC_TAB_SLOTS * 7 / 8 < want + want / 4)
        nb *= 2;
    if (nb > UINT32_MAX)
        return -ENOMEM;
    nm = map_new((uint32_t)nb, t->slab.huge);
    if (nm == NULL)
        return -ENOMEM;
    /* Release: the zeroed map is visible to a reader that follows ->next. */
    gc_store_ptr(&n->next, nm);
    t->newest = nm;
    return 0;
}

static void tab_retire_map(gc_tab_t *t, map_t *m);

/* Writer: move up to nbk buckets of the oldest map into the newest.  Each
 * entry is inserted in the newest map before its old slot is cleared (both
 * release stores), so a reader probing old then new never misses it. */
static void
tab_migrate(gc_tab_t *t, unsigned nbk)
{
    while (nbk-- > 0 && t->map != t->newest) {
        map_t *m = t->map;
        bucket_t *b = &m->b[m->cursor];
        uint32_t s, bi, si;

        for (s = 0; s < GC_TAB_SLOTS; s++) {
            uint32_t id = b->id[s];
            ent_t *e;
            uint64_t h;

            if (id == 0)
                continue;
            e = tab_ent(t, id);
            h = ent_hash(e);
            map_insert(t->newest, h, id, &bi, &si);
            map_remove(m, m->cursor, s, h);
        }
        if (++m->cursor == m->nb) {
            /* Release: readers that load the new oldest map see it whole. */
            gc_store_ptr(&t->map, m->next);
            tab_retire_map(t, m);
        }
    }
}

/* ------------------------------------------------------------------ */
/* Reclamation                                                          */

static void
tab_retire_map(gc_tab_t *t, map_t *m)
{
    m->rtag = 0;
    m->rnext = t->retired_maps;
    t->retired_maps = m;
}

static void
ent_free_now(gc_tab_t *t, ent_t *e)
{
    gc_slab_free(&t->slab, e, ent_id(e), ent_size(e));
}

/* Writer: e is unlinked from every index; free it once no reader can hold it. */
static void
tab_retire(gc_tab_t *t, ent_t *e)
{
    uint32_t id = ent_id(e);

    e->qnext = 0;
    if (t->fresh_tail != 0)
        tab_ent(t, t->fresh_tail)->qnext = id;
    else
        t->fresh_head = id;
    t->fresh_tail = id;
    t->fresh_n++;
}

static void
seg_free(gc_tab_t *t, seg_t *s)
{
    uint32_t id = s->head;

    while (id != 0) {
        ent_t *e = tab_ent(t, id);

        id = e->qnext;
        ent_free_now(t, e);
    }
}

/* Writer: one ebr sync: tag what was retired since the last one, free what
 * no reader can hold. */
static void
tab_reclaim(gc_tab_t *t)
{
    uint64_t tag, thr;
    map_t **pp, *m;

    if (t->fresh_n == 0 && t->seg_n == 0 && t->retired_maps == NULL && t->slab.retired == NULL)
        return;
    thr = gc_ebr_sync(&tag);
    if (t->fresh_n != 0) {
        seg_t *s;

        if (t->seg_n == GC_TAB_SEGS) {
            /* A reader is stuck: merge into the last segment (a later tag
             * is conservative). */
            s = &t->segs[(t->seg_first + t->seg_n - 1) % GC_TAB_SEGS];
            tab_ent(t, s->tail)->qnext = t->fresh_head;
        } else {
            s = &t->segs[(t->seg_first + t->seg_n) % GC_TAB_SEGS];
            t->seg_n++;
            s->head = t->fresh_head;
        }
        s->tail = t->fresh_tail;
        s->tag = tag;
        t->fresh_head = t->fresh_tail = 0;
        t->fresh_n = 0;
    }
    while (t->seg_n > 0 && t->segs[t->seg_first].tag <= thr) {
        seg_free(t, &t->segs[t->seg_first]);
        t->seg_first = (t->seg_first + 1) % GC_TAB_SEGS;
        t->seg_n--;
    }
    for (pp = &t->retired_maps; (m = *pp) != NULL;) {
        if (m->rtag == 0)
            m->rtag = tag;
        if (m->rtag <= thr) {
            *pp = m->rnext;
            map_free(m);
        } else {
            pp = &m->rnext;
        }
    }
    gc_slab_reclaim(&t->slab, tag, thr);
}

/* ------------------------------------------------------------------ */
/* Queues (S3-FIFO), ghost, heap                                        */

static inline fifo_t *
ent_fifo(gc_tab_t *t, const ent_t *e)
{
    return (e->self & GC_TAB_MAIN) ? &t->M : &t->S;
}

static void
q_push(gc_tab_t *t, fifo_t *q, ent_t *e)
{
    uint32_t id = ent_id(e);

    e->self = id | (q == &t->M ? GC_TAB_MAIN : 0);
    e->qnext = 0;
    e->qprev = q->tail;
    if (q->tail != 0)
        tab_ent(t, q->tail)->qnext = id;
    else
        q->head = id;
    q->tail = id;
    q->count++;
    q->bytes += e->klen + e->vlen;
}

static void
q_unlink(gc_tab_t *t, ent_t *e)
{
    fifo_t *q = ent_fifo(t, e);

    if (e->qprev != 0)
        tab_ent(t, e->qprev)->qnext = e->qnext;
    else
        q->head = e->qnext;
    if (e->qnext != 0)
        tab_ent(t, e->qnext)->qprev = e->qprev;
    else
        q->tail = e->qprev;
    q->count--;
    q->bytes -= e->klen + e->vlen;
}

/* ne takes old's place in its queue. */
static void
q_replace(gc_tab_t *t, ent_t *old, ent_t *ne)
{
    fifo_t *q = ent_fifo(t, old);
    uint32_t id = ent_id(ne);

    ne->self = id | (old->self & GC_TAB_MAIN);
    ne->qprev = old->qprev;
    ne->qnext = old->qnext;
    if (ne->qprev != 0)
        tab_ent(t, ne->qprev)->qnext = id;
    else
        q->head = id;
    if (ne->qnext != 0)
        tab_ent(t, ne->qnext)->qprev = id;
    else
        q->tail = id;
    q->bytes += (uint64_t)ne->klen + ne->vlen - old->klen - old->vlen;
}

/*
 * The ghost remembers about as many keys as M holds (90% of the entries):
 * it uses the first power-of-two buckets holding count * 0.9 fingerprints,
 * at most the gmask + 1 allocated.  Under max_entries that is the whole
 * array once the table is full.  Under max_bytes alone the entry count is
 * unknown at gc_tab_new, and a ghost much larger than M sends nearly every
 * returning key straight to M, which undoes S's filter: measured with
 * bench/gencache_hitratio on Zipf 0.9 with 16 B-4 KiB values, a fixed
 * 65536-key ghost gave 19.9% at 0.1% of the bytes against 27.9% with this
 * sizing (simulated S3-FIFO: 28.1%).  When the count grows, keys remembered
 * under the smaller mask are looked for in other buckets and forgotten.
 */
static inline uint64_t *
ghost_bucket(gc_tab_t *t, uint64_t hash, uint16_t *fp)
{
    uint16_t f = (uint16_t)(hash >> 8);
    uint64_t want = (t->count - t->count / 10 + 3) / 4;
    uint64_t mask = want <= 1 ? 0 : (2ull << (63 - __builtin_clzll(want - 1))) - 1;

    *fp = f != 0 ? f : 1;
    if (mask > t->gmask)
        mask = t->gmask;
    return &t->ghost[(hash >> 24) & mask];
}

/* Remember hash, forgetting the oldest fingerprint of its bucket. */
static void
ghost_put(gc_tab_t *t, uint64_t hash)
{
    uint16_t fp;
    uint64_t *b = ghost_bucket(t, hash, &fp);

    *b = (*b << 16) | fp;
}

/* 1 if hash was remembered (it is forgotten). */
static int
ghost_take(gc_tab_t *t, uint64_t hash)
{
    uint16_t fp;
    uint64_t *b = ghost_bucket(t, hash, &fp);
    int l;

    for (l = 0; l < 4; l++)
        if ((uint16_t)(*b >> (16 * l)) == fp) {
            uint64_t low = l == 0 ? 0 : *b & ((1ull << (16 * l)) - 1);
            uint64_t high = l == 3 ? 0 : (*b >> (16 * (l + 1))) << (16 * l);

            *b = high | low;
            return 1;
        }
    return 0;
}

static int
heap_reserve(gc_tab_t *t, size_t n)
{
    hitem_t *h;
    size_t cap;

    if (t->hn + n <= t->hcap)
        return 0;
    cap = t->hcap < 64 ? 64 : t->hcap * 2;
    while (cap < t->hn + n)
        cap *= 2;
    h = gc_realloc(t->heap, cap * sizeof(*h));
    if (h == NULL)
        return -ENOMEM;
    t->heap = h;
    t->hcap = cap;
    return 0;
}

static inline void
heap_set(gc_tab_t *t, size_t i, hitem_t it)
{
    t->heap[i] = it;
    ent_ext(tab_ent(t, it.id))->hpos = (uint32_t)i + 1;
}

static void
heap_fix(gc_tab_t *t, size_t i)
{
    hitem_t it = t->heap[i];

    while (i > 0 && t->heap[(i - 1) / 2].deadline > it.deadline) {
        heap_set(t, i, t->heap[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    for (;;) {
        size_t c = 2 * i + 1;

        if (c >= t->hn)
            break;
        if (c + 1 < t->hn && t->heap[c + 1].deadline < t->heap[c].deadline)
            c++;
        if (t->heap[c].deadline >= it.deadline)
            break;
        heap_set(t, i, t->heap[c]);
        i = c;
    }
    heap_set(t, i, it);
}

/* Room reserved by heap_reserve. */
static void
heap_push(gc_tab_t *t, ent_t *e)
{
    t->heap[t->hn] = (hitem_t){ ent_ext(e)->deadline, ent_id(e), 0 };
    t->hn++;
    heap_fix(t, t->hn - 1);
}

static void
heap_remove(gc_tab_t *t, ent_t *e)
{
    ext_t *x = ent_ext(e);
    size_t i = x->hpos - 1;

    x->hpos = 0;
    t->hn--;
    if (i != t->hn) {
        t->heap[i] = t->heap[t->hn];
        heap_fix(t, i);
    }
}

/* ------------------------------------------------------------------ */
/* Writer operations                                                    */

static void
stats_add(gc_tab_t *t, int64_t dc, int64_t db)
{
    /* Plain read by the only writer, atomic store for the stats readers. */
    gc_store_64(&t->count, t->count + (uint64_t)dc);
    gc_store_64(&t->bytes, t->bytes + (uint64_t)db);
}

static int
tab_check_args(const gc_tab_t *t, const gc_tab_key_t *k, size_t vlen, int64_t ttl_ms)
{
    if (ttl_ms < 0 || vlen > UINT32_MAX || k->len > UINT32_MAX - vlen)
        return -EINVAL;
    if (t->max_bytes != 0 && (uint64_t)k->len + vlen > t->max_bytes)
        return -E2BIG;
    return 0;
}

/* A new entry (not yet reachable): NULL on -ENOMEM. */
static ent_t *
ent_new(gc_tab_t *t, uint16_t ns, const void *key, uint32_t klen, const void *v, size_t vlen,
        int64_t ttl_ms, uint64_t now)
{
    size_t sz = sizeof(ent_t) + (ttl_ms > 0 ? sizeof(ext_t) : 0) + klen + vlen;
    uint32_t id;
    ent_t *e = gc_slab_alloc(&t->slab, sz < 16 ? 16 : sz, &id);

    if (e == NULL)
        return NULL;
    e->klen = klen;
    e->vlen = (uint32_t)vlen;
    e->self = id;
    e->qprev = e->qnext = 0;
    e->ns = ns;
    e->freq = 0;
    e->flags = ttl_ms > 0 ? GC_TAB_F_TTL : 0;
    if (ttl_ms > 0) {
        ext_t *x = ent_ext(e);

        x->deadline = now + (uint64_t)ttl_ms;
        if (x->deadline == 0)
            x->deadline = 1;
        x->ttl_ms = ttl_ms;
        x->hpos = 0;
        x->pad = 0;
    }
    if (klen > 0)
        memcpy(ent_key(e), key, klen);
    if (vlen > 0)
        memcpy(ent_key(e) + klen, v, vlen);
    return e;
}

static inline int
ent_expired(const ent_t *e, uint64_t now)
{
    uint64_t d;

    if (!(e->flags & GC_TAB_F_TTL))
        return 0;
    d = ent_ext(e)->deadline;
    return d != 0 && d <= now;
}

static inline int
ent_has_deadline(const ent_t *e)
{
    return (e->flags & GC_TAB_F_TTL) && ent_ext(e)->deadline != 0;
}

/* Writer: ne replaces old in slot (m, bi, si) and every index; heap room
 * reserved when ne has a deadline. */
static void
tab_replace(gc_tab_t *t, map_t *m, uint32_t bi, uint32_t si, ent_t *old, ent_t *ne)
{
    /* Atomic: in a batch commit ne is already published. */
    gc_store_8(&ne->freq, gc_load_8(&old->freq));
    if (t->limited)
        q_replace(t, old, ne);
    /* Release: ne's contents before its id (pairs with map_probe's acquire). */
    gc_store_32(&m->b[bi].id[si], ent_id(ne));
    if (ent_has_deadline(old)) {
        size_t i = ent_ext(old)->hpos - 1;

        if (ent_has_deadline(ne)) {
            t->heap[i] = (hitem_t){ ent_ext(ne)->deadline, ent_id(ne), 0 };
            heap_fix(t, i);
        } else {
            heap_remove(t, old);
        }
    } else if (ent_has_deadline(ne)) {
        heap_push(t, ne);
    }
    stats_add(t, 0, (int64_t)ne->klen + ne->vlen - old->klen - old->vlen);
    tab_retire(t, old);
}

/* Writer: index a new key's entry already stored in its slot. */
static void
tab_index_new(gc_tab_t *t, ent_t *e, uint64_t hash)
{
    if (t->limited)
        q_push(t, ghost_take(t, hash) ? &t->M : &t->S, e);
    if (ent_has_deadline(e))
        heap_push(t, e);
    stats_add(t, 1, (int64_t)e->klen + e->vlen);
}

/* Writer: remove e (in slot m, bi, si) from everything and retire it. */
static void
tab_remove(gc_tab_t *t, ent_t *e, map_t *m, uint32_t bi, uint32_t si, uint64_t hash, int why)
{
    map_remove(m, bi, si, hash);
    if (t->limited)
        q_unlink(t, e);
    if ((e->flags & GC_TAB_F_TTL) && ent_ext(e)->hpos != 0)
        heap_remove(t, e);
    stats_add(t, -1, -(int64_t)e->klen - e->vlen);
    tab_retire(t, e);
    if (why != 0 && t->ev != NULL)
        t->ev(t->ev_ctx, why, e->ns, ent_key(e), e->klen);
}

static int
tab_over(const gc_tab_t *t)
{
    return (t->max_entries != 0 && t->count > t->max_entries) ||
           (t->max_bytes != 0 && t->bytes > t->max_bytes);
}

/*
 * Writer: evict one entry by S3-FIFO, never keep.  S is used while it
 * holds more than 10% of the entries (or of max_bytes); S's oldest moves
 * to M if it was read while in S, else it is evicted and remembered in the
 * ghost; M's oldest is reinserted with its counter lowered until the
 * counter is 0.  At most 64 reinsertions per eviction (then M's oldest
 * goes whatever its counter), so one eviction is bounded.  1 if one went.
 */
static int
tab_evict_one(gc_tab_t *t, const ent_t *keep)
{
    unsigned moves = 0;

    for (;;) {
        int use_s = t->S.count > 0 &&
                    (t->S.count * 10 > t->count ||
                     (t->max_bytes != 0 && t->S.bytes * 10 > t->max_bytes) || t->M.count == 0);
        fifo_t *q = use_s ? &t->S : &t->M;
        ent_t *e;
        uint8_t c;
        map_t *m;
        uint32_t bi, si;
        uint64_t h;

        if (q->head == 0)
            return 0;
        e = tab_ent(t, q->head);
        if (e == keep) {
            if (q->count == 1 && (use_s ? t->M.count : t->S.count) == 0)
                return 0;
            if (q->count == 1) {
                /* Only keep in this queue: take from the other one. */
                q = use_s ? &t->M : &t->S;
                e = tab_ent(t, q->head);
            } else {
                q_unlink(t, e);
                q_push(t, q, e);
                continue;
            }
        }
        c = gc_load_8(&e->freq);
        if (q == &t->S && c > 0 && moves < 64) {
            q_unlink(t, e);
            gc_store_8(&e->freq, 0);
            q_push(t, &t->M, e);
            moves++;
            continue;
        }
        if (q == &t->M && c > 0 && moves < 64) {
            q_unlink(t, e);
            gc_store_8(&e->freq, (uint8_t)(c - 1));
            q_push(t, &t->M, e);
            moves++;
            continue;
        }
        h = ent_hash(e);
        if (q == &t->S && t->ghost != NULL)
            ghost_put(t, h);
        if (tab_locate(t, e, h, &m, &bi, &si) != 0)
            return 0;   /* cannot happen: gc_tab_check catches it */
        tab_remove(t, e, m, bi, si, h, GC_TAB_EVICTED);
        return 1;
    }
}

static void
tab_evict(gc_tab_t *t, const ent_t *keep, int64_t *evicted)
{
    while (tab_over(t) && tab_evict_one(t, keep))
        if (evicted != NULL)
            (*evicted)++;
}

static void
tab_after_write(gc_tab_t *t)
{
    tab_migrate(t, 1);
    if (t->fresh_n >= GC_TAB_RECLAIM_AT)
        tab_reclaim(t);
}

int
gc_tab_put(gc_tab_t *t, const gc_tab_key_t *k, const void *v, size_t vlen, int64_t ttl_ms,
           int64_t *evicted)
{
    uint64_t now = ttl_ms > 0 ? tab_now(t) : 0;
    ent_t *e, *old;
    map_t *m;
    uint32_t bi, si;
    int rc = tab_check_args(t, k, vlen, ttl_ms);

    if (rc != 0)
        return rc;
    if (t->in_batch)
        return -EBUSY;
    e = ent_new(t, k->ns, k->key, k->len, v, vlen, ttl_ms, now);
    if (e == NULL)
        return -ENOMEM;
    if ((ttl_ms > 0 && heap_reserve(t, 1) != 0)) {
        ent_free_now(t, e);
        return -ENOMEM;
    }
    old = tab_wfind(t, k, &m, &bi, &si);
    if (old != NULL) {
        tab_replace(t, m, bi, si, old, e);
    } else {
        if (tab_room(t, 1) != 0) {
            ent_free_now(t, e);   /* never reachable */
            return -ENOMEM;
        }
        map_insert(t->newest, k->hash, ent_id(e), &bi, &si);
        tab_index_new(t, e, k->hash);
    }
    tab_evict(t, e, evicted);
    tab_after_write(t);
    return 0;
}

int
gc_tab_delete(gc_tab_t *t, const gc_tab_key_t *k, int *was_expired)
{
    map_t *m;
    uint32_t bi, si;
    ent_t *e = tab_wfind(t, k, &m, &bi, &si);
    int exp;

    if (was_expired != NULL)
        *was_expired = 0;
    if (t->in_batch)
        return -EBUSY;   /* a staged put may name this entry's slot */
    if (e == NULL)
        return -ENOENT;
    exp = ent_has_deadline(e) && ent_expired(e, tab_now(t));
    tab_remove(t, e, m, bi, si, k->hash, exp ? GC_TAB_EXPIRED : GC_TAB_DELETED);
    tab_after_write(t);
    if (exp) {
        if (was_expired != NULL)
            *was_expired = 1;
        return -ENOENT;
    }
    return 0;
}

int
gc_tab_find(gc_tab_t *t, const gc_tab_key_t *k, const void **v, size_t *vlen, int64_t *ttl_left,
            int64_t *ttl_len)
{
    map_t *m;
    uint32_t bi, si;
    ent_t *e = tab_wfind(t, k, &m, &bi, &si);
    int64_t left = INT64_MAX;

    if (e == NULL)
        return -ENOENT;
    if (ent_has_deadline(e)) {
        uint64_t now = tab_now(t), d = ent_ext(e)->deadline;

        if (d <= now)
            return -ENOENT;
        left = (int64_t)(d - now);
    }
    if (v != NULL)
        *v = ent_key(e) + e->klen;
    if (vlen != NULL)
        *vlen = e->vlen;
    if (ttl_left != NULL)
        *ttl_left = left;
    if (ttl_len != NULL)
        *ttl_len = (e->flags & GC_TAB_F_TTL) ? ent_ext(e)->ttl_ms : 0;
    return 0;
}

int
gc_tab_set_ttl(gc_tab_t *t, const gc_tab_key_t *k, int64_t ttl_ms)
{
    map_t *m;
    uint32_t bi, si;
    ent_t *e, *ne;
    ext_t *x;
    uint64_t now, d;

    if (t->in_batch)
        return -EBUSY;   /* a staged put may name this entry's slot */
    if (ttl_ms < -1)
        return -EINVAL;
    e = tab_wfind(t, k, &m, &bi, &si);
    if (e == NULL)
        return -ENOENT;
    now = tab_now(t);
    if (ent_expired(e, now))
        return -ENOENT;
    x = ent_ext(e);
    if (ttl_ms == -1) {
        if (!(e->flags & GC_TAB_F_TTL) || x->ttl_ms == 0)
            return 0;
        ttl_ms = x->ttl_ms;
    }
    if (ttl_ms == 0) {
        if (e->flags & GC_TAB_F_TTL) {
            if (x->hpos != 0)
                heap_remove(t, e);
            /* Pairs with gc_tab_get's atomic load: 0 is "no deadline". */
            gc_store_64(&x->deadline, 0);
            x->ttl_ms = 0;
        }
        return 0;
    }
    if (heap_reserve(t, 1) != 0)
        return -ENOMEM;
    d = now + (uint64_t)ttl_ms;
    if (e->flags & GC_TAB_F_TTL) {
        gc_store_64(&x->deadline, d);
        x->ttl_ms = ttl_ms;
        if (x->hpos != 0) {
            t->heap[x->hpos - 1].deadline = d;
            heap_fix(t, x->hpos - 1);
        } else {
            heap_push(t, e);
        }
        return 0;
    }
    /* No room for a deadline in this entry: copy it with one. */
    ne = ent_new(t, e->ns, ent_key(e), e->klen, ent_key(e) + e->klen, e->vlen, ttl_ms, now);
    if (ne == NULL)
        return -ENOMEM;
    tab_replace(t, m, bi, si, e, ne);
    tab_after_write(t);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Batches                                                              */

static void
batch_free(gc_tab_t *t)
{
    gc_free(t->st);
    gc_free(t->sidx);
    t->st = NULL;
    t->sidx = NULL;
    t->sn = t->scap = 0;
    t->in_batch = 0;
}

int
gc_tab_batch_begin(gc_tab_t *t, size_t n)
{
    size_t cap = 8;

    if (t->in_batch)
        return -EINVAL;
    while (cap < 2 * n)
        cap *= 2;
    if (tab_room(t, n) != 0 || heap_reserve(t, n) != 0)
        return -ENOMEM;
    t->st = gc_malloc((n ? n : 1) * sizeof(*t->st));
    t->sidx = gc_calloc(cap, sizeof(*t->sidx));
    if (t->st == NULL || t->sidx == NULL) {
        batch_free(t);
        return -ENOMEM;
    }
    t->smask = cap - 1;
    t->scap = n;
    t->sn = 0;
    t->in_batch = 1;
    return 0;
}

int
gc_tab_batch_put(gc_tab_t *t, const gc_tab_key_t *k, const void *v, size_t vlen, int64_t ttl_ms)
{
    uint64_t now = ttl_ms > 0 ? tab_now(t) : 0;
    size_t i;
    stage_t *s;
    ent_t *e, *old;
    map_t *m;
    uint32_t bi, si;
    int rc;

    if (!t->in_batch)
        return -EINVAL;
    rc = tab_check_args(t, k, vlen, ttl_ms);
    if (rc != 0)
        return rc;
    e = ent_new(t, k->ns, k->key, k->len, v, vlen, ttl_ms, now);
    if (e == NULL)
        return -ENOMEM;
    /* The same key staged before: the later put wins; the earlier staged
     * entry was never visible and is freed now. */
    for (i = k->hash & t->smask; t->sidx[i] != 0; i = (i + 1) & t->smask) {
        s = &t->st[t->sidx[i] - 1];
        if (s->hash == k->hash) {
            ent_t *p = tab_ent(t, s->new_id);

            if (p->klen == k->len && p->ns == k->ns && tab_keq(ent_key(p), k->key, k->len)) {
                ent_free_now(t, p);
                s->new_id = ent_id(e);
                return 0;
            }
        }
    }
    if (t->sn == t->scap) {
        ent_free_now(t, e);
        return -ENOSPC;
    }
    s = &t->st[t->sn];
    old = tab_wfind(t, k, &m, &bi, &si);
    if (old != NULL) {
        *s = (stage_t){ m, bi, si, ent_id(old), ent_id(e), k->hash };
    } else {
        /* Reserve a slot: readers skip GC_TAB_RES. */
        map_insert(t->newest, k->hash, GC_TAB_RES, &bi, &si);
        *s = (stage_t){ t->newest, bi, si, 0, ent_id(e), k->hash };
    }
    t->sidx[i] = (uint32_t)++t->sn;
    return 0;
}

int
gc_tab_batch_commit(gc_tab_t *t, int64_t *evicted)
{
    size_t i;
    uint32_t q = t->bseq;

    if (!t->in_batch)
        return -EINVAL;
    if (t->sn > 0) {
        /* The seqlock's write side: odd, then the id stores (each a
         * release, so a reader that acquires one also sees the odd value
         * when it re-reads bseq), then even with release. */
        gc_store_32(&t->bseq, q + 1);
        for (i = 0; i < t->sn; i++) {
            stage_t *s = &t->st[i];

            /* Release (and on x86 a store after a store): the odd value
             * is visible before the id. */
            GC_WR_REL(&s->m->b[s->bi].id[s->si], s->new_id);
        }
        gc_store_32(&t->bseq, q + 2);
        /* Now the writer-only indexes (readers do not see them). */
        for (i = 0; i < t->sn; i++) {
            stage_t *s = &t->st[i];
            ent_t *e = tab_ent(t, s->new_id);

            if (s->old_id != 0) {
                ent_t *old = tab_ent(t, s->old_id);

                /* tab_replace's slot store again (same value), then the
                 * indexes. */
                tab_replace(t, s->m, s->bi, s->si, old, e);
            } else {
                tab_index_new(t, e, s->hash);
            }
        }
    }
    batch_free(t);
    tab_evict(t, NULL, evicted);
    tab_after_write(t);
    return 0;
}

void
gc_tab_batch_abort(gc_tab_t *t)
{
    size_t i;

    if (!t->in_batch)
        return;
    for (i = t->sn; i-- > 0;) {
        stage_t *s = &t->st[i];

        if (s->old_id == 0)
            map_remove(s->m, s->bi, s->si, s->hash);
        ent_free_now(t, tab_ent(t, s->new_id));   /* never visible */
    }
    batch_free(t);
}

/* ------------------------------------------------------------------ */
/* Expiry, clear, foreach, maintain                                     */

size_t
gc_tab_expire(gc_tab_t *t, size_t max)
{
    uint64_t now;
    size_t n = 0;

    if (t->hn == 0 || t->in_batch)
        return 0;
    now = tab_now(t);
    while (n < max && t->hn > 0 && t->heap[0].deadline <= now) {
        ent_t *e = tab_ent(t, t->heap[0].id);
        uint64_t h = ent_hash(e);
        map_t *m;
        uint32_t bi, si;

        if (tab_locate(t, e, h, &m, &bi, &si) != 0)
            break;   /* cannot happen: gc_tab_check catches it */
        tab_remove(t, e, m, bi, si, h, GC_TAB_EXPIRED);
        n++;
    }
    if (t->fresh_n >= GC_TAB_RECLAIM_AT)
        tab_reclaim(t);
    return n;
}

uint64_t
gc_tab_next_deadline(const gc_tab_t *t)
{
    return t->hn > 0 ? t->heap[0].deadline : 0;
}

void
gc_tab_clear(gc_tab_t *t)
{
    map_t *m;
    uint32_t i, s;

    if (t->in_batch)
        return;
    for (m = t->map; m != NULL; m = m->next)
        for (i = 0; i < m->nb; i++)
            for (s = 0; s < GC_TAB_SLOTS; s++) {
                uint32_t id = m->b[i].id[s];

                if (id != 0) {
                    ent_t *e = tab_ent(t, id);

                    tab_remove(t, e, m, i, s, ent_hash(e), 0);
                }
            }
    tab_reclaim(t);
}

int
gc_tab_foreach(gc_tab_t *t, uint16_t ns,
               int (*fn)(void *arg, const void *key, size_t klen, const void *v, size_t vlen,
                         int64_t ttl_left),
               void *arg)
{
    uint64_t now = tab_now(t);
    map_t *m;
    uint32_t i, s;

    for (m = t->map; m != NULL; m = m->next)
        for (i = 0; i < m->nb; i++)
            for (s = 0; s < GC_TAB_SLOTS; s++) {
                uint32_t id = m->b[i].id[s];
                ent_t *e;
                int64_t left = INT64_MAX;
                int rc;

                if (id == 0 || id == GC_TAB_RES)
                    continue;
                e = tab_ent(t, id);
                if (e->ns != ns)
                    continue;
                if (ent_has_deadline(e)) {
                    if (ent_ext(e)->deadline <= now)
                        continue;
                    left = (int64_t)(ent_ext(e)->deadline - now);
                }
                rc = fn(arg, ent_key(e), e->klen, ent_key(e) + e->klen, e->vlen, left);
                if (rc != 0)
                    return rc;
            }
    return 0;
}

void
gc_tab_maintain(gc_tab_t *t)
{
    if (t->in_batch)
        return;
    tab_migrate(t, 64);
    /* One membarrier per call at most, and only when it frees something
     * worth it: 64 entries, a map, or anything after 64 quiet calls. */
    t->maint++;
    if (t->fresh_n >= 64 || t->retired_maps != NULL ||
        ((t->fresh_n != 0 || t->seg_n != 0 || t->slab.retired != NULL) && t->maint >= 64)) {
        t->maint = 0;
        tab_reclaim(t);
    }
}

int
gc_tab_pending(const gc_tab_t *t)
{
    return t->fresh_n != 0 || t->seg_n != 0 || t->slab.retired != NULL ||
        t->retired_maps != NULL;
}

void
gc_tab_reclaim(gc_tab_t *t)
{
    if (t->in_batch || !gc_tab_pending(t))
        return;
    t->maint = 0;
    tab_reclaim(t);
}

void
gc_tab_set_events(gc_tab_t *t, gc_tab_event_fn fn, void *ctx)
{
    t->ev = fn;
    t->ev_ctx = ctx;
}

uint64_t
gc_tab_count(const gc_tab_t *t)
{
    return gc_load_64(&((gc_tab_t *)t)->count);
}

uint64_t
gc_tab_bytes(const gc_tab_t *t)
{
    return gc_load_64(&((gc_tab_t *)t)->bytes);
}

/* ------------------------------------------------------------------ */
/* Namespaces                                                           */

const char *
gc_tab_ns_name(gc_tab_t *t, uint16_t id, size_t *len)
{
    /* Acquire on nns: see gc_tab_ns_find. */
    uint32_t n = gc_load_32(&t->nns);
    nsname_t **blk;
    const nsname_t *p;

    if (id >= n)
        return NULL;
    blk = gc_load_ptr(&t->nsblk[id >> 8]);
    p = gc_load_ptr(&blk[id & 255]);
    *len = p->len;
    return p->name;
}

int
gc_tab_ns_find(gc_tab_t *t, const char *ns, size_t len, uint16_t *id)
{
    /* Acquire on nns pairs with the release store in gc_tab_ns_intern:
     * the names below it are complete.  Names are never removed. */
    uint32_t n = gc_load_32(&t->nns), i;

    for (i = 0; i < n; i++) {
        nsname_t **blk = gc_load_ptr(&t->nsblk[i >> 8]);
        const nsname_t *p = gc_load_ptr(&blk[i & 255]);

        if (p->len == len && memcmp(p->name, ns, len) == 0) {
            *id = (uint16_t)i;
            return 0;
        }
    }
    return -ENOENT;
}

int
gc_tab_ns_intern(gc_tab_t *t, const char *ns, size_t len, uint16_t *id)
{
    uint32_t n = t->nns;
    nsname_t *p;

    if (gc_tab_ns_find(t, ns, len, id) == 0)
        return 0;
    if (n == 65536 || len > UINT32_MAX)
        return -ENOSPC;
    p = gc_malloc(sizeof(*p) + len + 1);
    if (p == NULL)
        return -ENOMEM;
    if (t->nsblk[n >> 8] == NULL) {
        nsname_t **blk = gc_calloc(256, sizeof(*blk));

        if (blk == NULL) {
            gc_free(p);
            return -ENOMEM;
        }
        gc_store_ptr(&t->nsblk[n >> 8], blk);
    }
    p->len = (uint32_t)len;
    memcpy(p->name, ns, len);
    p->name[len] = '\0';
    gc_store_ptr(&t->nsblk[n >> 8][n & 255], p);
    gc_store_32(&t->nns, n + 1);
    *id = (uint16_t)n;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Lifecycle                                                            */

int
gc_tab_new(const gc_tab_opts_t *o, gc_tab_t **out)
{
    gc_tab_t *t = gc_aligned_calloc(64, sizeof(*t));
    uint16_t id;

    if (t == NULL)
        return -ENOMEM;
    gc_ebr_init();
    gc_slab_init(&t->slab);
    if (o != NULL) {
        t->max_entries = o->max_entries;
        t->max_bytes = o->max_bytes;
        t->clock = o->clock;
        t->slab.huge = o->huge_pages != 0;
    }
    t->limited = t->max_entries != 0 || t->max_bytes != 0;
    if (t->limited) {
        uint64_t g = t->max_entries != 0 ? t->max_entries - t->max_entries / 10 : 65536;
        uint64_t nbk = 1;

        while (nbk * 4 < g)
            nbk *= 2;
        t->ghost = gc_calloc(nbk, sizeof(*t->ghost));
        if (t->ghost == NULL)
            goto fail;
        t->gmask = (uint32_t)(nbk - 1);
    }
    t->map = t->newest = map_new(8, 0);
    if (t->map == NULL || gc_tab_ns_intern(t, "", 0, &id) != 0)
        goto fail;
    *out = t;
    return 0;
fail:
    gc_tab_free(t);
    return -ENOMEM;
}

void
gc_tab_free(gc_tab_t *t)
{
    map_t *m, *n;
    unsigned b, i;

    if (t == NULL)
        return;
    for (m = t->map; m != NULL; m = n) {
        n = m->next;
        map_free(m);
    }
    for (m = t->retired_maps; m != NULL; m = n) {
        n = m->rnext;
        map_free(m);
    }
    gc_free(t->st);
    gc_free(t->sidx);
    gc_free(t->heap);
    gc_free(t->ghost);
    for (b = 0; b < 256; b++) {
        if (t->nsblk[b] == NULL)
            continue;
        for (i = 0; i < 256; i++)
            gc_free(t->nsblk[b][i]);
        gc_free(t->nsblk[b]);
    }
    gc_slab_fini(&t->slab);   /* every entry, retired or not */
    gc_aligned_free(t);
}

/* ------------------------------------------------------------------ */
/* Invariants                                                           */

#define CHECK(cond, ...)                                                  \
    do {                                                                  \
        if (!(cond)) {                                                    \
            fprintf(stderr, "gc_tab_check: " __VA_ARGS__);                \
            fputc('\n', stderr);                                          \
            return -EFAULT;                                               \
        }                                                                 \
    } while (0)

static int
check_fifo(gc_tab_t *t, fifo_t *q, int main)
{
    uint32_t id = q->head, prev = 0;
    uint64_t n = 0, bytes = 0;

    while (id != 0) {
        ent_t *e = tab_ent(t, id);

        CHECK(ent_id(e) == id, "queue entry %u has id %u", id, ent_id(e));
        CHECK(!!(e->self & GC_TAB_MAIN) == main, "entry %u in the wrong queue", id);
        CHECK(e->qprev == prev, "entry %u: qprev %u, expected %u", id, e->qprev, prev);
        CHECK(n <= t->count, "queue longer than the table");
        n++;
        bytes += e->klen + e->vlen;
        prev = id;
        id = e->qnext;
    }
    CHECK(q->tail == prev, "queue tail %u, last %u", q->tail, prev);
    CHECK(q->count == n, "queue count %llu, walked %llu", (unsigned long long)q->count,
          (unsigned long long)n);
    CHECK(q->bytes == bytes, "queue bytes %llu, walked %llu", (unsigned long long)q->bytes,
          (unsigned long long)bytes);
    return 0;
}

int
gc_tab_check(gc_tab_t *t)
{
    uint64_t n = 0, bytes = 0, ttl = 0;
    map_t *m;
    size_t i;

    CHECK((t->bseq & 1) == 0, "odd batch sequence");
    for (m = t->map; m != NULL; m = m->next) {
        uint32_t *ovf = gc_calloc(m->nb, sizeof(*ovf)), b, s, cnt = 0;
        const char *bad = NULL;

        CHECK(ovf != NULL, "out of memory");
        CHECK(m->next != NULL || m == t->newest, "newest map is not the last");
        for (b = 0; b < m->nb && bad == NULL; b++)
            for (s = 0; s < GC_TAB_SLOTS && bad == NULL; s++) {
                uint32_t id = m->b[b].id[s], j;
                uint8_t tag = tag_get(&m->b[b], s);
                ent_t *e;
                uint64_t h;
                gc_tab_key_t k;
                map_t *fm;
                uint32_t fb, fs;

                if (id == 0) {
                    if (tag != 0)
                        bad = "empty slot with a tag";
                    continue;
                }
                cnt++;
                if (id == GC_TAB_RES) {
                    if (!t->in_batch)
                        bad = "reserved slot outside a batch";
                    continue;
                }
                e = tab_ent(t, id);
                h = ent_hash(e);
                if (ent_id(e) != id) {
                    bad = "slot id differs from the entry's";
                    continue;
                }
                if (tab_tag(h) != tag) {
                    bad = "tag differs from the hash's";
                    continue;
                }
                for (j = tab_home(h, m->nb); j != b; j = j + 1 == m->nb ? 0 : j + 1)
                    ovf[j]++;
                k = (gc_tab_key_t){ e->ns, ent_key(e), e->klen, h };
                if (tab_wfind(t, &k, &fm, &fb, &fs) != e) {
                    bad = "entry not found by its key";
                    continue;
                }
                n++;
                bytes += e->klen + e->vlen;
                if (ent_has_deadline(e)) {
                    uint32_t hp = ent_ext(e)->hpos;

                    ttl++;
                    if (hp == 0 || hp > t->hn || t->heap[hp - 1].id != id)
                        bad = "entry with a deadline: bad heap position";
                }
            }
        for (b = 0; b < m->nb && bad == NULL; b++)
            if (m->b[b].ovf != (ovf[b] > 255 ? 255 : ovf[b]))
                bad = "overflow count differs from the entries past the bucket";
        if (bad != NULL)
            fprintf(stderr, "gc_tab_check: map of %u buckets, bucket %u: %s\n", m->nb,
                    b - 1, bad);
        gc_free(ovf);
        if (bad != NULL)
            return -EFAULT;
        CHECK(cnt == m->count, "map count %u, walked %u", m->count, cnt);
    }
    CHECK(n == t->count, "count %llu, walked %llu", (unsigned long long)t->count,
          (unsigned long long)n);
    CHECK(bytes == t->bytes, "bytes %llu, walked %llu", (unsigned long long)t->bytes,
          (unsigned long long)bytes);
    CHECK(ttl == t->hn, "%llu entries with deadlines, heap holds %zu", (unsigned long long)ttl,
          t->hn);
    for (i = 0; i < t->hn; i++) {
        ent_t *e = tab_ent(t, t->heap[i].id);

        CHECK(ent_has_deadline(e) && ent_ext(e)->deadline == t->heap[i].deadline,
              "heap item %zu: deadline differs from its entry", i);
        CHECK(i == 0 || t->heap[(i - 1) / 2].deadline <= t->heap[i].deadline,
              "heap order broken at %zu", i);
    }
    if (t->limited) {
        if (check_fifo(t, &t->S, 0) != 0 || check_fifo(t, &t->M, 1) != 0)
            return -EFAULT;
        CHECK(t->S.count + t->M.count == t->count, "queues hold %llu entries, table %llu",
              (unsigned long long)(t->S.count + t->M.count), (unsigned long long)t->count);
    }
    CHECK(t->max_entries == 0 || t->count <= t->max_entries, "over max_entries");
    CHECK(t->max_bytes == 0 || t->bytes <= t->max_bytes, "over max_bytes");
    return 0;
}

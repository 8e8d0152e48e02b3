/*
 * The entry slab (see slab.h): size classes of 8 bytes in 64 KiB chunks,
 * objects addressed by 32-bit ids through a bases array.
 */
#include "slab.h"

#include "alloc.h"

#include <string.h>
#include <sys/mman.h>

#define GC_SLAB_HUGE (2u << 20)
#define GC_SLAB_PLAIN_CHUNKS 32

typedef struct arena {
    struct arena *next;
} arena_t;

/* Writer: memory for one small chunk: 0 on -ENOMEM. */
static unsigned char *
slab_chunk_mem(gc_slab_t *s)
{
    unsigned char *p;

    if (!s->huge || s->small_chunks < GC_SLAB_PLAIN_CHUNKS)
        return gc_malloc(GC_SLAB_CHUNK);
    if (s->arena_left == 0) {
        arena_t *a = gc_malloc(2 * GC_SLAB_HUGE + 64);

        if (a == NULL)
            return NULL;
        a->next = s->arenas;
        s->arenas = a;
        p = (unsigned char *)(((uintptr_t)(a + 1) + GC_SLAB_HUGE - 1) & ~(uintptr_t)(GC_SLAB_HUGE - 1));
        /* Advice only: without THP the arena is ordinary memory. */
        (void)madvise(p, GC_SLAB_HUGE, MADV_HUGEPAGE);
        s->arena_next = p;
        s->arena_left = GC_SLAB_HUGE / GC_SLAB_CHUNK;
    }
    p = s->arena_next;
    s->arena_next += GC_SLAB_CHUNK;
    s->arena_left--;
    return p;
}

/* Give back the chunk slab_chunk_mem just returned. */
static void
slab_chunk_unget(gc_slab_t *s, unsigned char *p)
{
    if (!s->huge || s->small_chunks < GC_SLAB_PLAIN_CHUNKS) {
        gc_free(p);
    } else {
        s->arena_next -= GC_SLAB_CHUNK;
        s->arena_left++;
    }
}

static int
slab_in_arena(const gc_slab_t *s, const unsigned char *p)
{
    const arena_t *a;

    for (a = s->arenas; a != NULL; a = a->next)
        if (p > (const unsigned char *)a && p < (const unsigned char *)a + 2 * GC_SLAB_HUGE + 64)
            return 1;
    return 0;
}

void
gc_slab_init(gc_slab_t *s)
{
    memset(s, 0, sizeof(*s));
    s->nchunks = 1;   /* chunk number 0 does not exist: id 0 means "none" */
}

/* A chunk number for base, growing the array if needed: 0 on -ENOMEM
 * (the array may have grown; nothing else changed). */
static uint32_t
slab_chunk_no(gc_slab_t *s, unsigned char *base)
{
    gc_slab_arr_t *a = s->arr, *na;
    uint32_t c;

    if (s->free_chunk != 0) {
        c = s->free_chunk;
        s->free_chunk = (uint32_t)((uintptr_t)a->base[c] >> 1);
        /* Readers cannot hold an id of this chunk number any more (its
         * object was reclaimed); a plain store would do, but publish
         * with release anyway since the id will be. */
        gc_store_ptr(&a->base[c], base);
        return c;
    }
    if (s->nchunks >= GC_SLAB_MAX_CHUNKS - 1)
        return 0;
    if (a == NULL || s->nchunks == a->cap) {
        uint32_t cap = a == NULL ? 64 : a->cap * 2;

        na = gc_malloc(sizeof(*na) + (size_t)cap * sizeof(na->base[0]));
        if (na == NULL)
            return 0;
        na->rnext = NULL;
        na->rtag = 0;
        na->cap = cap;
        na->pad = 0;
        if (a != NULL)
            memcpy(na->base, a->base, (size_t)a->cap * sizeof(a->base[0]));
        /* Release: the copied bases are visible to a reader that loads the
         * new array (gc_slab_ptr loads it with acquire, after the id). */
        gc_store_ptr(&s->arr, na);
        if (a != NULL) {
            a->rnext = s->retired;
            s->retired = a;
        }
        a = na;
    }
    c = s->nchunks++;
    a->base[c] = base;
    return c;
}

void *
gc_slab_alloc(gc_slab_t *s, size_t size, uint32_t *id)
{
    gc_slab_cls_t *k;
    unsigned char *p;
    uint32_t c;

    size = (size + 7) & ~(size_t)7;
    if (size > GC_SLAB_MAX_SMALL) {
        p = gc_malloc(size);
        if (p == NULL)
            return NULL;
        c = slab_chunk_no(s, p);
        if (c == 0) {
            gc_free(p);
            return NULL;
        }
        s->bytes += size;
        *id = c << 13;
        return p;
    }
    k = &s->cls[size / 8];
    if (k->free != NULL) {
        p = k->free;
        memcpy(&k->free, p, sizeof(k->free));
        memcpy(id, p + sizeof(k->free), sizeof(*id));
        return p;
    }
    if (k->bump == NULL || (size_t)(k->end - k->bump) < size) {
        unsigned char *chunk = slab_chunk_mem(s);

        if (chunk == NULL)
            return NULL;
        c = slab_chunk_no(s, chunk);
        if (c == 0) {
            slab_chunk_unget(s, chunk);
            return NULL;
        }
        s->small_chunks++;
        /* The tail of the previous chunk (< size bytes) is lost. */
        s->bytes += GC_SLAB_CHUNK;
        k->bump = chunk;
        k->end = chunk + GC_SLAB_CHUNK;
        k->bump_id = c << 13;
    }
    p = k->bump;
    *id = k->bump_id;
    k->bump += size;
    k->bump_id += (uint32_t)(size / 8);
    return p;
}

void
gc_slab_free(gc_slab_t *s, void *p, uint32_t id, size_t size)
{
    gc_slab_cls_t *k;

    size = (size + 7) & ~(size_t)7;
    if (size > GC_SLAB_MAX_SMALL) {
        uint32_t c = id >> 13;

        gc_free(p);
        s->bytes -= size;
        s->arr->base[c] = (unsigned char *)(((uintptr_t)s->free_chunk << 1) | 1);
        s->free_chunk = c;
        return;
    }
    k = &s->cls[size / 8];
    memcpy(p, &k->free, sizeof(k->free));
    memcpy((unsigned char *)p + sizeof(k->free), &id, sizeof(id));
    k->free = p;
}

void
gc_slab_reclaim(gc_slab_t *s, uint64_t tag, uint64_t threshold)
{
    gc_slab_arr_t **pp = &s->retired, *a;

    while ((a = *pp) != NULL) {
        if (a->rtag == 0)
            a->rtag = tag;
        if (a->rtag <= threshold) {
            *pp = a->rnext;
            gc_free(a);
        } else {
            pp = &a->rnext;
        }
    }
}

void
gc_slab_fini(gc_slab_t *s)
{
    gc_slab_arr_t *a = s->arr, *r;
    uint32_t c;

    if (a != NULL) {
        for (c = 1; c < s->nchunks; c++)
            if (((uintptr_t)a->base[c] & 1) == 0 && !slab_in_arena(s, a->base[c]))
                gc_free(a->base[c]);
        gc_free(a);
    }
    while (s->arenas != NULL) {
        arena_t *n = ((arena_t *)s->arenas)->next;

        gc_free(s->arenas);
        s->arenas = n;
    }
    while ((r = s->retired) != NULL) {
        s->retired = r->rnext;
        gc_free(r);
    }
    memset(s, 0, sizeof(*s));
}

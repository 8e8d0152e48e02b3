/*
 * A slab for the table's entries, addressed by 32-bit ids.  Internal
 * (prefix gc_slab_).  One writer allocates and frees; any thread may turn
 * an id into an address (gc_slab_ptr) inside a reclamation section.
 *
 * Why: an entry from malloc costs 8-24 B of chunk header and rounding
 * (112 -> 128 B for a 24 B header + 16 B key + 64 B value... plus 8), and a
 * 64-bit pointer per bucket slot; an id is 4 B, so a 64-byte bucket holds
 * 12 slots instead of 7, and the writer's queue links are 4 B each.
 *
 * Layout.  Objects of up to GC_SLAB_MAX_SMALL bytes come in size classes of
 * 8 bytes, carved from 64 KiB chunks (gc_malloc); a larger object gets a
 * chunk of its own.  Chunk number c (1 .. GC_SLAB_MAX_CHUNKS-1) has its base
 * address in bases[c]; an id is c << 13 | offset / 8, so
 *   address = bases[id >> 13] + (id & 8191) * 8
 * with no division.  Id 0 is never used (chunk 0 does not exist) and ids
 * stay below 2^31 (the table keeps a flag in bit 31 of its copy).
 * The bases array grows by copy: the old array is retired through ebr.h,
 * since readers may hold it.  Freed small objects go on their class's free
 * list (their first 8 bytes, then their id); small chunks are kept until
 * gc_slab_fini; a large object's chunk is freed and its number reused.
 *
 * Huge pages.  A random get at 1M entries touches one bucket and one entry
 * in ~110 MB: on the development VM a TLB miss there (a nested page walk)
 * costs more than the cache miss itself.  So after its first 32 chunks a
 * slab takes chunks from 2 MiB arenas aligned to 2 MiB and advised
 * MADV_HUGEPAGE (each arena is one gc_malloc of 4 MiB + 64: the unaligned
 * rest is never touched, so it costs address space, not memory).  A small
 * table keeps plain 64 KiB chunks: a huge page would cost it 2 MiB of RSS.
 * Only when `huge` is set (gc_tab_opts_t.huge_pages): measured at 1M
 * entries it cost ~7 B/entry of RSS for a speed-up lost in this VM's noise.
 */
#ifndef GC_SLAB_H
#define GC_SLAB_H

#include "atomic.h"
#include "ebr.h"

#include <stddef.h>
#include <stdint.h>

#define GC_SLAB_CHUNK 65536u
#define GC_SLAB_MAX_SMALL 4096u
#define GC_SLAB_CLASSES (GC_SLAB_MAX_SMALL / 8 + 1)
#define GC_SLAB_MAX_CHUNKS (1u << 18)

typedef struct gc_slab_arr {
    struct gc_slab_arr *rnext;   /* retired arrays, writer only */
    uint64_t rtag;               /* ebr tag; 0: not tagged yet */
    uint32_t cap;
    uint32_t pad;
    unsigned char *base[];       /* bases; odd value: free chunk number link */
} gc_slab_arr_t;

typedef struct gc_slab_cls {
    unsigned char *free;         /* free list: next pointer, then the id */
    unsigned char *bump, *end;   /* rest of the current chunk */
    uint32_t bump_id;            /* id of bump */
} gc_slab_cls_t;

typedef struct gc_slab {
    gc_slab_arr_t *arr;          /* published (gc_store_ptr), readers load it */
    uint32_t nchunks;            /* chunk numbers used: 1 .. nchunks-1 */
    uint32_t free_chunk;         /* head of reusable chunk numbers, 0: none */
    gc_slab_arr_t *retired;      /* old arrays waiting for readers */
    void *arenas;                /* 2 MiB huge-page arenas (list) */
    unsigned char *arena_next;   /* next chunk of the current arena */
    uint32_t arena_left;         /* chunks left in it */
    uint32_t small_chunks;       /* 64 KiB chunks handed out */
    int huge;                    /* use huge-page arenas (gc_tab_opts) */
    size_t bytes;                /* bytes held in chunks (stats) */
    gc_slab_cls_t cls[GC_SLAB_CLASSES];
} gc_slab_t;

/* Any thread, in a section: the address of object id.  Load the array
 * after the id (the id's publication orders the array that knows it). */
static inline void *
gc_slab_ptr(const gc_slab_t *s, uint32_t id)
{
    const gc_slab_arr_t *a = GC_RD_ACQ(&s->arr);

    return a->base[id >> 13] + ((size_t)(id & 8191) << 3);
}

void gc_slab_init(gc_slab_t *s);
/* Free every chunk and array: nothing may use the slab any more. */
void gc_slab_fini(gc_slab_t *s);
/* Writer: an object of `size` bytes (>= 16), and its id.  NULL on -ENOMEM
 * (nothing changed that a reader or a later call could notice). */
void *gc_slab_alloc(gc_slab_t *s, size_t size, uint32_t *id);
/* Writer: give back an object no reader can reach any more. */
void gc_slab_free(gc_slab_t *s, void *p, uint32_t id, size_t size);
/* Writer: tag retired arrays with `tag` and free those tagged <= threshold
 * (see ebr.h). */
void gc_slab_reclaim(gc_slab_t *s, uint64_t tag, uint64_t threshold);

#endif /* GC_SLAB_H */

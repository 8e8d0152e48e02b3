/*
 * Every allocation of the library goes through these (see
 * gencache_replace_allocator in version.h), so a test can fail the Nth one.
 * (One exception: ck_epoch records, which ck never frees and gencache
 * recycles between threads for the life of the program, come from libc's
 * aligned_alloc, so that replacing the allocator later cannot strand them.)
 */
#ifndef GC_ALLOC_H
#define GC_ALLOC_H

#include <stddef.h>

void *gc_malloc(size_t size);
void *gc_calloc(size_t count, size_t size);
void *gc_realloc(void *ptr, size_t size);
void gc_free(void *ptr);

/*
 * Zeroed memory aligned to `align` (a power of two, at most 4096) for
 * structs with cache-line-aligned members (CK_CC_CACHELINE): malloc only
 * promises alignof(max_align_t), and the user's allocator hook has no
 * aligned variant, so the block is carved out of a larger gc_malloc one,
 * with the original pointer kept just before the aligned address.  Free it
 * with gc_aligned_free only.  NULL on -ENOMEM (or a bad align).
 */
void *gc_aligned_calloc(size_t align, size_t size);
void gc_aligned_free(void *ptr);

#endif /* GC_ALLOC_H */

/*
 * Every allocation of the library goes through these (see
 * gencache_replace_allocator in version.h), so a test can fail the Nth one.
 */
#ifndef GC_ALLOC_H
#define GC_ALLOC_H

#include <stddef.h>

void *gc_malloc(size_t size);
void *gc_calloc(size_t count, size_t size);
void *gc_realloc(void *ptr, size_t size);
void gc_free(void *ptr);

#endif /* GC_ALLOC_H */

/*
 * The replaceable allocator.  The function pointers are written once, before
 * any other gencache call (documented in version.h), so they are read
 * without synchronisation.
 */
#include "alloc.h"

#include <gencache/version.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static gencache_malloc_fn gc_malloc_fn = malloc;
static gencache_realloc_fn gc_realloc_fn = realloc;
static gencache_calloc_fn gc_calloc_fn = calloc;
static gencache_free_fn gc_free_fn = free;

int
gencache_replace_allocator(gencache_malloc_fn malloc_fn, gencache_realloc_fn realloc_fn,
                           gencache_calloc_fn calloc_fn, gencache_free_fn free_fn)
{
    if (malloc_fn == NULL || realloc_fn == NULL || calloc_fn == NULL || free_fn == NULL)
        return -EINVAL;
    gc_malloc_fn = malloc_fn;
    gc_realloc_fn = realloc_fn;
    gc_calloc_fn = calloc_fn;
    gc_free_fn = free_fn;
    return 0;
}

void *
gc_malloc(size_t size)
{
    return gc_malloc_fn(size);
}

void *
gc_calloc(size_t count, size_t size)
{
    return gc_calloc_fn(count, size);
}

void *
gc_realloc(void *ptr, size_t size)
{
    return gc_realloc_fn(ptr, size);
}

void
gc_free(void *ptr)
{
    gc_free_fn(ptr);
}

void *
gc_aligned_calloc(size_t align, size_t size)
{
    unsigned char *raw, *p;

    if (align < sizeof(void *) || align > 4096 || (align & (align - 1)) != 0 ||
        size > SIZE_MAX - align - sizeof(void *))
        return NULL;
    raw = gc_malloc(size + align + sizeof(void *));
    if (raw == NULL)
        return NULL;
    p = (unsigned char *)(((uintptr_t)raw + sizeof(void *) + align - 1) & ~(uintptr_t)(align - 1));
    memcpy(p - sizeof(void *), &raw, sizeof(raw));
    memset(p, 0, size);
    return p;
}

void
gc_aligned_free(void *ptr)
{
    void *raw;

    if (ptr == NULL)
        return;
    memcpy(&raw, (unsigned char *)ptr - sizeof(void *), sizeof(raw));
    gc_free(raw);
}

/*
 * gencache version and symbol export macro.
 *
 * The version lives here and only here: CMake parses GENCACHE_VERSION_MAJOR,
 * _MINOR and _PATCH out of this file, and gencache_version_string() returns
 * the same numbers at run time.
 */
#ifndef GENCACHE_VERSION_H
#define GENCACHE_VERSION_H

#define GENCACHE_VERSION_MAJOR 0
#define GENCACHE_VERSION_MINOR 1
#define GENCACHE_VERSION_PATCH 0

#if defined(GENCACHE_STATIC)
#define GC_EXPORT
#elif defined(__GNUC__)
#define GC_EXPORT __attribute__((visibility("default")))
#else
#define GC_EXPORT
#endif

#ifdef __cplusplus
extern "C" {
#endif

#include <stddef.h>

/*
 * Returns "MAJOR.MINOR.PATCH" of the library the program is linked with.
 * The string is static: never free it. Callable from any thread.
 */
GC_EXPORT const char *gencache_version_string(void);

/*
 * Replace the memory allocator every gencache allocation goes through
 * (libuv's uv_replace_allocator).  The four functions must behave like their
 * C library namesakes.  Call it before any other gencache function, from
 * one thread, while no process or cache exists: memory allocated with one
 * allocator must be freed with the same.  Returns 0, or -EINVAL when a
 * function is NULL (nothing changed).  Two exceptions keep the C library:
 * values returned by a cache_fetch compute function (freed with free()),
 * and per-thread epoch records (aligned, never freed).
 */
typedef void *(*gencache_malloc_fn)(size_t size);
typedef void *(*gencache_realloc_fn)(void *ptr, size_t size);
typedef void *(*gencache_calloc_fn)(size_t count, size_t size);
typedef void (*gencache_free_fn)(void *ptr);
GC_EXPORT int gencache_replace_allocator(gencache_malloc_fn malloc_fn,
                                         gencache_realloc_fn realloc_fn,
                                         gencache_calloc_fn calloc_fn,
                                         gencache_free_fn free_fn);

#ifdef __cplusplus
}
#endif

#endif /* GENCACHE_VERSION_H */

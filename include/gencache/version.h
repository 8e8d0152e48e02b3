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

/*
 * Returns "MAJOR.MINOR.PATCH" of the library the program is linked with.
 * The string is static: never free it. Callable from any thread.
 */
GC_EXPORT const char *gencache_version_string(void);

#ifdef __cplusplus
}
#endif

#endif /* GENCACHE_VERSION_H */

/*
 * Glob matching of cache keys (internal, prefix gc_).  Used by every
 * backend's cache_all, so that one pattern means the same everywhere.
 */
#ifndef GC_GLOB_H
#define GC_GLOB_H

#include <stddef.h>

/*
 * 1 when the byte string s[0..n) matches the glob pattern pat, else 0.
 * `*` matches any run (also empty), `?` one byte, `[abc]`, `[a-z]` and
 * `[!x]` (or `[^x]`) a class, `\` escapes the next character; an
 * unterminated `[` is a literal.  Costs at most O(strlen(pat) * n).
 */
int gc_glob(const char *pat, const unsigned char *s, size_t n);

#endif /* GC_GLOB_H */

/*
 * Glob matching on byte strings, for cache_all's key patterns (glob.h).
 *
 * Iterative, with one saved backtracking point for the last `*`: a later
 * star supersedes an earlier one, so the match costs O(pattern x key) in
 * the worst case and never recurses (no stack depth to exhaust with a
 * hostile pattern).  Keys are byte strings and may hold NUL; the pattern is
 * a C string.
 */
#include "glob.h"

/* Match one class at p (after '['); *end gets the byte after ']'. */
static int
gc_class(const char *p, unsigned char ch, const char **end)
{
    int neg = 0, hit = 0;

    if (*p == '!' || *p == '^') {
        neg = 1;
        p++;
    }
    do {
        unsigned char lo, hi;

        if (*p == '\0')
            return -1; /* unterminated: treated as a literal '[' */
        if (*p == '\\' && p[1] != '\0')
            p++;
        lo = hi = (unsigned char)*p++;
        if (*p == '-' && p[1] != ']' && p[1] != '\0') {
            p++;
            if (*p == '\\' && p[1] != '\0')
                p++;
            hi = (unsigned char)*p++;
        }
        if (lo <= ch && ch <= hi)
            hit = 1;
    } while (*p != ']');
    *end = p + 1;
    return hit != neg;
}

int
gc_glob(const char *pat, const unsigned char *s, size_t n)
{
    const char *star_p = NULL;
    size_t star_i = 0, i = 0;

    for (;;) {
        if (*pat == '*') {
            while (*pat == '*')
                pat++;
            star_p = pat;
            star_i = i;
            continue;
        }
        if (i < n && *pat != '\0') {
            int ok;
            const char *next = pat + 1;

            if (*pat == '?') {
                ok = 1;
            } else if (*pat == '[') {
                int r = gc_class(pat + 1, s[i], &next);

                if (r < 0) {
                    ok = s[i] == '[';
                    next = pat + 1;
                } else {
                    ok = r;
                }
            } else if (*pat == '\\' && pat[1] != '\0') {
                ok = s[i] == (unsigned char)pat[1];
                next = pat + 2;
            } else {
                ok = s[i] == (unsigned char)*pat;
            }
            if (ok) {
                pat = next;
                i++;
                continue;
            }
        } else if (*pat == '\0' && i == n) {
            return 1;
        }
        if (star_p == NULL || star_i >= n)
            return 0;
        pat = star_p;
        i = ++star_i;
    }
}

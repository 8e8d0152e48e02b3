/*
 * Shared by the Check suites: Check 0.15 knows CK_RUN_CASE but not
 * CK_EXCLUDE_TCASE, which tests/run.sh sets to keep timing-bound tcases
 * out of its valgrind pass.  A suite asks gc_tcase_excluded() before it
 * creates a tcase (an unadded tcase would leak).
 */
#ifndef GC_CHECK_UTIL_H
#define GC_CHECK_UTIL_H

#include <stdlib.h>
#include <string.h>

/* 1 when `tcase` is in the comma-separated list CK_EXCLUDE_TCASE. */
static inline int
gc_tcase_excluded(const char *tcase)
{
    const char *list = getenv("CK_EXCLUDE_TCASE"), *p;
    size_t n = strlen(tcase);

    for (p = list; p != NULL && *p != '\0'; p += strcspn(p, ","), p += *p == ',') {
        if (strncmp(p, tcase, n) == 0 && (p[n] == '\0' || p[n] == ','))
            return 1;
    }
    return 0;
}

#endif /* GC_CHECK_UTIL_H */

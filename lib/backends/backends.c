/*
 * Which backend a cache gets (cache_backend.h): the one place that knows
 * every backend.  A build without hiredis (GC_WITH_REDIS=OFF) compiles
 * without the Redis backend at all, and a cache that asks for it is
 * refused with -ENOTSUP.
 */
#include "cache_backend.h"

#include <errno.h>

int
gc_backend_select(const cache_opts_t *opts, const gc_backend_ops_t **ops)
{
    if (opts->redis != NULL) {
#ifdef GC_HAVE_REDIS
        *ops = &gc_backend_redis;
        return 0;
#else
        return -ENOTSUP;
#endif
    }
    *ops = &gc_backend_local;
    return 0;
}

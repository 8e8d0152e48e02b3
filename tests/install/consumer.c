/* A program outside the tree, built against an installed gencache. */
#include <gencache/gencache.h>

#include <stdio.h>
#include <string.h>

int
main(void)
{
    cache_t *c;
    char buf[16];
    size_t len = 0;
    int rc;

    if ((rc = cache_start(NULL, &c)) != 0) {
        fprintf(stderr, "cache_start: %s\n", cache_strerror(rc));
        return 1;
    }
    rc = cache_put(c, NULL, "k", 1, "v", 1, CACHE_TTL_NONE);
    if (rc == 0)
        rc = cache_get(c, NULL, "k", 1, buf, sizeof(buf), &len);
    cache_stop(c, 1000);
    cache_release(c);
    if (rc != 0 || len != 1 || buf[0] != 'v') {
        fprintf(stderr, "consumer: round trip failed: %s\n", cache_strerror(rc));
        return 1;
    }
    printf("consumer: gencache %s works\n", gencache_version_string());
    return 0;
}

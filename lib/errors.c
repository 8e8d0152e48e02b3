/*
 * Error and exit-reason text (the one table of errors.h), and the run-time
 * version string.
 *
 * strerrordesc_np (glibc >= 2.32) returns static, thread-safe text, unlike
 * strerror, whose buffer for unknown codes is shared.
 */
#define _GNU_SOURCE
#include <gencache/actor.h>

#include "errors.h"

#include <errno.h>
#include <string.h>

#define GC_STR2(x) #x
#define GC_STR(x) GC_STR2(x)

const char *
gencache_version_string(void)
{
    return GC_STR(GENCACHE_VERSION_MAJOR) "." GC_STR(GENCACHE_VERSION_MINOR) "."
        GC_STR(GENCACHE_VERSION_PATCH);
}

typedef struct gc_errtext {
    int mod;
    int err;            /* negative errno */
    const char *text;
} gc_errtext_t;

static const gc_errtext_t gc_errtexts[] = {
#define GC_ERR_ROW(mod, name, text) { mod, -name, text },
    GC_ERROR_MAP(GC_ERR_ROW)
#undef GC_ERR_ROW
};

static const char *
gc_errtext_find(int mod, int err)
{
    size_t i;

    for (i = 0; i < sizeof(gc_errtexts) / sizeof(gc_errtexts[0]); i++)
        if (gc_errtexts[i].mod == mod && gc_errtexts[i].err == err)
            return gc_errtexts[i].text;
    return NULL;
}

const char *
gc_strerror(int mod, int err)
{
    const char *s;

    switch (err) {
    case ACTOR_NORMAL:
        return "success (exit reason: normal)";
    case ACTOR_SHUTDOWN:
        return "exit reason: shutdown";
    case ACTOR_KILLED:
        return "exit reason: killed";
    default:
        break;
    }
    if (err > 0)
        return "exit reason: user-defined (abnormal)";
    if (err == (-2147483647 - 1))
        return "unknown error";
    if ((s = gc_errtext_find(mod, err)) != NULL || (s = gc_errtext_find(GC_MOD_ACTOR, err)) != NULL)
        return s;
    s = strerrordesc_np(-err);
    return s != NULL ? s : "unknown error";
}

const char *
actor_strerror(int err)
{
    return gc_strerror(GC_MOD_ACTOR, err);
}

int
actor_reason_is_abnormal(int reason)
{
    return reason != ACTOR_NORMAL && reason != ACTOR_SHUTDOWN;
}

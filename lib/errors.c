/*
 * Error and exit-reason text, and the run-time version string.
 *
 * strerrordesc_np (glibc >= 2.32) returns static, thread-safe text, unlike
 * strerror, whose buffer for unknown codes is shared.
 */
#define _GNU_SOURCE
#include <gencache/actor.h>

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

const char *
actor_strerror(int err)
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
    if (err == -ESRCH)
        return "no such process (it has exited)";
    s = strerrordesc_np(-err);
    return s != NULL ? s : "unknown error";
}

int
actor_reason_is_abnormal(int reason)
{
    return reason != ACTOR_NORMAL && reason != ACTOR_SHUTDOWN;
}

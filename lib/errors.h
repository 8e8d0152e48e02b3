/*
 * One table of every error text of the library (internal, prefix gc_),
 * from which actor_strerror, cache_strerror and sup_strerror are all
 * generated, as libuv's UV_ERRNO_MAP generates uv_strerror and uv_err_name.
 * A module's text for an errno overrides the process core's; what no row
 * names falls back to the C library's description.
 */
#ifndef GC_ERRORS_H
#define GC_ERRORS_H

enum { GC_MOD_ACTOR = 0, GC_MOD_CACHE = 1, GC_MOD_SUP = 2 };

/* X(module, errno name (positive), text): every row is one message. */
#define GC_ERROR_MAP(X)                                                                 \
    X(GC_MOD_ACTOR, ESRCH, "no such process (it has exited)")                          \
    X(GC_MOD_CACHE, ESRCH, "cache stopped, or its worker is down and none can come "  \
                           "back in time (never handled)")                             \
    X(GC_MOD_CACHE, E2BIG, "record larger than the cache's max_bytes")                 \
    X(GC_MOD_CACHE, EMSGSIZE, "reply larger than ACTOR_MSG_MAX (128 MiB): narrow the " \
                              "pattern")                                               \
    X(GC_MOD_CACHE, ENOBUFS, "value longer than the buffer (the length is reported)")  \
    X(GC_MOD_CACHE, ENOTCONN, "not connected to Redis (nothing was sent)")             \
    X(GC_MOD_CACHE, ECONNRESET, "casts or a command lost with the worker or a Redis "  \
                                "connection (it may or may not have been applied)")    \
    X(GC_MOD_CACHE, EIO, "Redis answered with an error, or casts failed when applied") \
    X(GC_MOD_CACHE, ENOTSUP, "not supported by this cache's backend (a build without "  \
                             "hiredis; on_event or dump/load on a Redis cache)")       \
    X(GC_MOD_CACHE, EEXIST, "already exists: a live entry has the key (put_new: "      \
                            "nothing changed), or a live cache has the name")          \
    X(GC_MOD_CACHE, ECANCELED, "the value is not the one expected (cas: nothing "      \
                               "changed)")                                             \
    X(GC_MOD_CACHE, EDOM, "the value is not a decimal 64-bit integer (incr: nothing "  \
                          "changed)")                                                  \
    X(GC_MOD_CACHE, EOVERFLOW, "the increment would leave the 64-bit integer range "   \
                               "(nothing changed)")                                    \
    X(GC_MOD_CACHE, EBADMSG, "snapshot truncated or corrupt (nothing was loaded)")        \
    X(GC_MOD_CACHE, EPROTO, "not a gencache snapshot (nothing was loaded)")               \
    X(GC_MOD_CACHE, EPROTONOSUPPORT, "snapshot from a newer gencache (nothing was loaded)") \
    X(GC_MOD_SUP, EALREADY, "child already started")                                   \
    X(GC_MOD_SUP, EEXIST, "child spec already present")                                \
    X(GC_MOD_SUP, EBUSY, "child is running")                                           \
    X(GC_MOD_SUP, EINPROGRESS, "child is being restarted")                             \
    X(GC_MOD_SUP, ENOENT, "no such child")                                             \
    X(GC_MOD_SUP, ENOTSUP, "not supported by this supervisor's strategy")

/* Text for err (a negative errno or an exit reason) in module mod; never
 * NULL, static storage. */
const char *gc_strerror(int mod, int err);

#endif /* GC_ERRORS_H */

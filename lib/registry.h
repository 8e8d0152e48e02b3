/*
 * The name registry of the library (internal, prefix gc_reg_): one table
 * for every kind of named object, processes and caches alike, each kind a
 * namespace of its own (a process and a cache may share a name, as before).
 *
 * An entry borrows its object: the owner removes it before the object can
 * go.  Lookups run a retain function under the registry's lock, so "find
 * and take a reference" is atomic with respect to the owner removing the
 * name; the same lock guards the names stored in the objects (processes'
 * name and has_name).
 */
#ifndef GC_REGISTRY_H
#define GC_REGISTRY_H

#include <pthread.h>
#include <stddef.h>

enum gc_reg_kind { GC_REG_PROCESS = 0, GC_REG_CACHE = 1 };

/* The lock, for an owner that keeps its name in its own object. */
extern pthread_mutex_t gc_reg_lock;

/*
 * Register obj under (kind, name).  `ok` (may be NULL) runs under the lock
 * first and may refuse with a negative errno (a process that is exiting).
 * Returns 0, -EEXIST (the name is taken), -ENOMEM, or ok's error.  name is
 * copied.
 */
int gc_reg_add(int kind, const char *name, void *obj, int (*ok)(void *obj));

/* Remove (kind, name) if it is registered to obj (any object when obj is
 * NULL): 0, or -ENOENT. */
int gc_reg_remove(int kind, const char *name, const void *obj);

/* The object of (kind, name) with retain(obj) applied under the lock, or
 * NULL (-ENOENT). */
void *gc_reg_find(int kind, const char *name, void *(*retain)(void *obj));

/* 0 for a valid name (1..ACTOR_NAME_MAX bytes), else -EINVAL. */
int gc_reg_name_check(const char *name);

#endif /* GC_REGISTRY_H */

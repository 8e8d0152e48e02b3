/*
 * The name registry (registry.h): (kind, name) -> object, for processes and
 * caches.
 *
 * One mutex guards a chained hash table.  Lookups take the mutex too: a name
 * is resolved once (actor_whereis and cache_lookup return a counted handle
 * that the caller keeps), so the registry is never on a message's hot path,
 * and a mutex makes "look up and take a reference" atomic with respect to
 * the owner unregistering.  The table holds no reference of its own to a
 * process: an exiting process removes its entry (actor__registry_drop)
 * before its thread drops the thread's reference, so an entry never
 * outlives its process.  (A named cache is held by a reference the cache
 * module takes itself, until cache_stop.)
 */
#include "alloc.h"
#include "process.h"
#include "registry.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define GC_REG_BUCKETS 256

typedef struct gc_reg_entry {
    struct gc_reg_entry *next;
    int kind;
    void *obj;
    char name[ACTOR_NAME_MAX + 1];
} gc_reg_entry_t;

pthread_mutex_t gc_reg_lock = PTHREAD_MUTEX_INITIALIZER;
static gc_reg_entry_t *gc_reg_tab[GC_REG_BUCKETS];

static unsigned int
gc_reg_hash(int kind, const char *s)
{
    unsigned int h = 2166136261u ^ (unsigned int)kind; /* FNV-1a */

    while (*s)
        h = (h ^ (unsigned char)*s++) * 16777619u;
    return h % GC_REG_BUCKETS;
}

int
gc_reg_name_check(const char *name)
{
    if (name == NULL || name[0] == '\0' ||
        strnlen(name, ACTOR_NAME_MAX + 1) > ACTOR_NAME_MAX)
        return -EINVAL;
    return 0;
}

int
actor__name_check(const char *name)
{
    return gc_reg_name_check(name);
}

/* Registry lock held. */
static gc_reg_entry_t **
gc_reg_slot(int kind, const char *name)
{
    gc_reg_entry_t **pp = &gc_reg_tab[gc_reg_hash(kind, name)];

    while (*pp != NULL && ((*pp)->kind != kind || strcmp((*pp)->name, name) != 0))
        pp = &(*pp)->next;
    return pp;
}

int
gc_reg_add(int kind, const char *name, void *obj, int (*ok)(void *obj))
{
    gc_reg_entry_t **pp, *e;
    int rc = 0;

    e = gc_malloc(sizeof(*e));
    if (e == NULL)
        return -ENOMEM;
    pthread_mutex_lock(&gc_reg_lock);
    if (ok != NULL && (rc = ok(obj)) != 0)
        goto out;
    if (*(pp = gc_reg_slot(kind, name)) != NULL) {
        rc = -EEXIST;
        goto out;
    }
    e->next = NULL;
    e->kind = kind;
    e->obj = obj;
    memcpy(e->name, name, strlen(name) + 1);
    *pp = e;
    e = NULL;
out:
    pthread_mutex_unlock(&gc_reg_lock);
    gc_free(e);
    return rc;
}

/* Registry lock held. */
static int
gc_reg_remove_locked(int kind, const char *name, const void *obj)
{
    gc_reg_entry_t **pp = gc_reg_slot(kind, name), *e = *pp;

    if (e == NULL || (obj != NULL && e->obj != obj))
        return -ENOENT;
    *pp = e->next;
    if (kind == GC_REG_PROCESS) {
        actor_t *a = e->obj;

        a->has_name = 0;
        a->name[0] = '\0';
    }
    gc_free(e);
    return 0;
}

int
gc_reg_remove(int kind, const char *name, const void *obj)
{
    int rc;

    pthread_mutex_lock(&gc_reg_lock);
    rc = gc_reg_remove_locked(kind, name, obj);
    pthread_mutex_unlock(&gc_reg_lock);
    return rc;
}

void *
gc_reg_find(int kind, const char *name, void *(*retain)(void *obj))
{
    gc_reg_entry_t *e;
    void *obj = NULL;

    pthread_mutex_lock(&gc_reg_lock);
    e = *gc_reg_slot(kind, name);
    if (e != NULL)
        obj = retain != NULL ? retain(e->obj) : e->obj;
    pthread_mutex_unlock(&gc_reg_lock);
    return obj;
}

/* ------------------------------------------------------------------ */
/* Processes                                                            */

/* Under the lock: life is read there, since the exit path sets EXITING
 * before it takes this lock to drop the name, so a process that is exiting
 * can never gain a name after it dropped its own; and a process has at
 * most one name. */
static int
gc_reg_proc_ok(void *obj)
{
    actor_t *a = obj;

    if (__atomic_load_n(&a->life, __ATOMIC_ACQUIRE) >= GC_LIFE_EXITING)
        return -ESRCH;
    return a->has_name ? -EEXIST : 0;
}

int
actor__registry_add(actor_t *a, const char *name)
{
    int rc = gc_reg_add(GC_REG_PROCESS, name, a, gc_reg_proc_ok);

    if (rc == 0) {
        pthread_mutex_lock(&gc_reg_lock);
        /* Only the registry writes the name (under its lock); a second
         * add of the same process was refused by gc_reg_proc_ok. */
        memcpy(a->name, name, strlen(name) + 1);
        a->has_name = 1;
        pthread_mutex_unlock(&gc_reg_lock);
    }
    return rc;
}

void
actor__registry_drop(actor_t *a)
{
    pthread_mutex_lock(&gc_reg_lock);
    if (a->has_name)
        (void)gc_reg_remove_locked(GC_REG_PROCESS, a->name, a);
    pthread_mutex_unlock(&gc_reg_lock);
}

int
actor_register(actor_t *a, const char *name)
{
    if (!actor__valid(a) || gc_reg_name_check(name) != 0)
        return -EINVAL;
    return actor__registry_add(a, name);
}

int
actor_unregister(const char *name)
{
    if (gc_reg_name_check(name) != 0)
        return -EINVAL;
    return gc_reg_remove(GC_REG_PROCESS, name, NULL);
}

static void *
gc_reg_actor_retain(void *obj)
{
    return actor_retain(obj);
}

int
actor_whereis(const char *name, actor_t **out)
{
    if (out == NULL)
        return -EINVAL;
    *out = NULL;
    if (gc_reg_name_check(name) != 0)
        return -EINVAL;
    *out = gc_reg_find(GC_REG_PROCESS, name, gc_reg_actor_retain);
    return *out != NULL ? 0 : -ENOENT;
}

int
actor_name(const actor_t *a, char *buf, size_t cap)
{
    int rc = 0;

    if (!actor__valid(a) || (buf == NULL && cap > 0))
        return -EINVAL;
    pthread_mutex_lock(&gc_reg_lock);
    if (!a->has_name)
        rc = -ENOENT;
    else if (strlen(a->name) >= cap)
        rc = -ERANGE;
    else
        memcpy(buf, a->name, strlen(a->name) + 1);
    pthread_mutex_unlock(&gc_reg_lock);
    return rc;
}

/*
 * The name registry: name -> live process.
 *
 * One mutex guards a chained hash table.  Lookups take the mutex too: a name
 * is resolved once (actor_whereis returns a counted handle that the caller
 * keeps), so the registry is never on a message's hot path, and a mutex makes
 * "look up and take a reference" atomic with respect to the process
 * unregistering itself as it exits.  The table holds no reference of its own:
 * an exiting process removes its entry (actor__registry_drop) before its
 * thread drops the thread's reference, so an entry never outlives its process.
 */
#include "alloc.h"
#include "process.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define GC_REG_BUCKETS 256

typedef struct gc_reg_entry {
    struct gc_reg_entry *next;
    actor_t *proc;
} gc_reg_entry_t;

static pthread_mutex_t gc_reg_lock = PTHREAD_MUTEX_INITIALIZER;
static gc_reg_entry_t *gc_reg_tab[GC_REG_BUCKETS];

static unsigned int
gc_reg_hash(const char *s)
{
    unsigned int h = 2166136261u; /* FNV-1a */

    while (*s)
        h = (h ^ (unsigned char)*s++) * 16777619u;
    return h % GC_REG_BUCKETS;
}

int
actor__name_check(const char *name)
{
    if (name == NULL || name[0] == '\0' ||
        strnlen(name, ACTOR_NAME_MAX + 1) > ACTOR_NAME_MAX)
        return -EINVAL;
    return 0;
}

/* Registry lock held. */
static gc_reg_entry_t **
gc_reg_find(const char *name)
{
    gc_reg_entry_t **pp = &gc_reg_tab[gc_reg_hash(name)];

    while (*pp != NULL && strcmp((*pp)->proc->name, name) != 0)
        pp = &(*pp)->next;
    return pp;
}

int
actor__registry_add(actor_t *a, const char *name)
{
    gc_reg_entry_t **pp, *e;
    int rc = 0;

    e = gc_malloc(sizeof(*e));
    if (e == NULL)
        return -ENOMEM;
    pthread_mutex_lock(&gc_reg_lock);
    /* Life is read under the registry lock: the exit path sets EXITING
     * before it takes this lock to drop the name, so a process that is
     * exiting can never gain a name after it dropped its own. */
    if (__atomic_load_n(&a->life, __ATOMIC_ACQUIRE) >= GC_LIFE_EXITING) {
        rc = -ESRCH;
        goto out;
    }
    if (a->has_name || *(pp = gc_reg_find(name)) != NULL) {
        rc = -EEXIST;
        goto out;
    }
    memcpy(a->name, name, strlen(name) + 1);
    a->has_name = 1;
    e->proc = a;
    e->next = NULL;
    *pp = e;
    e = NULL;
out:
    pthread_mutex_unlock(&gc_reg_lock);
    gc_free(e);
    return rc;
}

static void
gc_reg_unlink(gc_reg_entry_t **pp)
{
    gc_reg_entry_t *e = *pp;

    *pp = e->next;
    e->proc->has_name = 0;
    e->proc->name[0] = '\0';
    gc_free(e);
}

void
actor__registry_drop(actor_t *a)
{
    pthread_mutex_lock(&gc_reg_lock);
    if (a->has_name) {
        gc_reg_entry_t **pp = gc_reg_find(a->name);

        if (*pp != NULL && (*pp)->proc == a)
            gc_reg_unlink(pp);
    }
    pthread_mutex_unlock(&gc_reg_lock);
}

int
actor_register(actor_t *a, const char *name)
{
    int rc;

    if (!actor__valid(a) || (rc = actor__name_check(name)) != 0)
        return -EINVAL;
    return actor__registry_add(a, name);
}

int
actor_unregister(const char *name)
{
    gc_reg_entry_t **pp;
    int rc = -ENOENT;

    if (actor__name_check(name) != 0)
        return -EINVAL;
    pthread_mutex_lock(&gc_reg_lock);
    pp = gc_reg_find(name);
    if (*pp != NULL) {
        gc_reg_unlink(pp);
        rc = 0;
    }
    pthread_mutex_unlock(&gc_reg_lock);
    return rc;
}

int
actor_whereis(const char *name, actor_t **out)
{
    gc_reg_entry_t **pp;
    int rc = -ENOENT;

    if (out == NULL)
        return -EINVAL;
    *out = NULL;
    if (actor__name_check(name) != 0)
        return -EINVAL;
    pthread_mutex_lock(&gc_reg_lock);
    pp = gc_reg_find(name);
    if (*pp != NULL) {
        *out = actor_retain((*pp)->proc);
        rc = 0;
    }
    pthread_mutex_unlock(&gc_reg_lock);
    return rc;
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

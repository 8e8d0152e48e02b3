/*
 * gencache umbrella header: include this one file to get the whole API.
 *
 *   version.h  version numbers and gencache_version_string()
 *   actor.h    processes: start, call, cast, timers, monitors, names
 *   sup.h      supervisors: child specs, restart strategies, intensity
 *   cache.h    cache processes: put/get/delete/all, TTL, eviction, fetch
 */
#ifndef GENCACHE_GENCACHE_H
#define GENCACHE_GENCACHE_H

#include "version.h"
#include "actor.h"
#include "sup.h"
#include "cache.h"

#endif /* GENCACHE_GENCACHE_H */

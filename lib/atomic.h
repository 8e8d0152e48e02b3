/*
 * Atomic loads, stores and exchanges, and the ThreadSanitizer shim.
 *
 * gencache uses Concurrency Kit's ck_pr for every atomic operation.  In the
 * TSan build (GC_TSAN, set by -fsanitize=thread) ck is compiled with
 * CK_USE_CC_BUILTINS=1, which turns its read-modify-write operations into
 * __sync builtins that TSan understands, but leaves ck_pr_load_* and
 * ck_pr_store_* as volatile accesses, its fences as __sync_synchronize (TSan
 * models neither), and ck_pr_fas_* and ck_pr_*_zero as a volatile load
 * followed by a CAS loop.  TSan would then report every lock-free handshake
 * of this library as a race.  So our code calls the gc_ names below: in every
 * normal build they are exactly the ck_pr operations; in the TSan build they
 * are __atomic operations with acquire loads and release stores, which is
 * what the ck fences around them provide in the normal build.  Nothing else
 * differs between the builds.
 *
 * libck.so itself is not instrumented, so TSan cannot see the ordering that
 * ck_hs publication, ck_epoch reclamation and ck_epoch record recycling
 * provide.  GC_TSAN_RELEASE and GC_TSAN_ACQUIRE state those three
 * happens-before edges explicitly (table.c);
 * they compile to nothing outside the TSan build.
 */
#ifndef GC_ATOMIC_H
#define GC_ATOMIC_H

#include <ck_pr.h>
#include <stdbool.h>
#include <stdint.h>

#if defined(__SANITIZE_THREAD__)
#define GC_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define GC_TSAN 1
#endif
#endif

#ifdef GC_TSAN
#include <sanitizer/tsan_interface.h>

#define GC_LD(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define GC_ST(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define gc_load_8(p) GC_LD(p)
#define gc_load_32(p) GC_LD(p)
#define gc_load_64(p) GC_LD(p)
#define gc_load_uint(p) GC_LD(p)
#define gc_load_ptr(p) GC_LD(p)
#define gc_store_8(p, v) GC_ST(p, v)
#define gc_store_32(p, v) GC_ST(p, v)
#define gc_store_64(p, v) GC_ST(p, v)
#define gc_store_uint(p, v) GC_ST(p, v)
#define gc_store_ptr(p, v) GC_ST(p, v)
#define gc_fas_32(p, v) __atomic_exchange_n((p), (v), __ATOMIC_ACQ_REL)
#define gc_fas_ptr(p, v) __atomic_exchange_n((p), (v), __ATOMIC_ACQ_REL)
#define gc_dec_32_is_zero(p) (__atomic_sub_fetch((p), 1, __ATOMIC_ACQ_REL) == 0)
#define GC_TSAN_RELEASE(addr) __tsan_release((void *)(addr))
#define GC_TSAN_ACQUIRE(addr) __tsan_acquire((void *)(addr))
#else
#define gc_load_8 ck_pr_load_8
#define gc_load_32 ck_pr_load_32
#define gc_load_64 ck_pr_load_64
#define gc_load_uint ck_pr_load_uint
#define gc_load_ptr ck_pr_load_ptr
#define gc_store_8 ck_pr_store_8
#define gc_store_32 ck_pr_store_32
#define gc_store_64 ck_pr_store_64
#define gc_store_uint ck_pr_store_uint
#define gc_store_ptr ck_pr_store_ptr
#define gc_fas_32 ck_pr_fas_32
#define gc_fas_ptr ck_pr_fas_ptr
#define gc_dec_32_is_zero ck_pr_dec_32_is_zero
#define GC_TSAN_RELEASE(addr) ((void)0)
#define GC_TSAN_ACQUIRE(addr) ((void)0)
#endif

#endif /* GC_ATOMIC_H */

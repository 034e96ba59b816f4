/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Memory ordering between the provider and the device (vhcad's engine),
 * with rdma-core's names.  The "device" is another CPU in another process
 * sharing the memfd mappings, so plain C11 fences are exactly what is
 * needed (no DMA or write-combining ordering):
 *
 *   udma_to_device_barrier()   our stores to queue memory (WQEs) become
 *                              visible before any later store (the producer
 *                              index): a release fence.  x86-64: compiler
 *                              barrier only; aarch64: dmb ish.
 *   udma_from_device_barrier() loads after it (a CQE body) see at least
 *                              what the device wrote before the value we
 *                              just read (the owner byte): an acquire
 *                              fence.  x86-64: compiler barrier; aarch64:
 *                              dmb ishld.
 *   udma_full_barrier()        also orders an earlier store before a later
 *                              load (store producer index, then read
 *                              needs_wakeup): seq_cst fence.  x86-64:
 *                              mfence/locked op; aarch64: dmb ish.
 *
 * The shared structures (include/vhca/queue.h) use plain __u32 fields, so
 * single accesses go through the __atomic builtins below rather than
 * _Atomic types; both compilers we support (gcc, clang) provide them, and
 * 32-bit naturally aligned accesses are lock-free on x86-64 and aarch64.
 */
#ifndef VHCA_BARRIER_H
#define VHCA_BARRIER_H

#include <assert.h>
#include <stdint.h>

#if !defined(__x86_64__) && !defined(__aarch64__)
#warning "vhca: barriers only reviewed for x86-64 and aarch64"
#endif

static_assert(__atomic_always_lock_free(sizeof(uint32_t), 0),
	      "32-bit atomics must be lock-free for shared memory");

static inline void udma_to_device_barrier(void)
{
	__atomic_thread_fence(__ATOMIC_RELEASE);
}

static inline void udma_from_device_barrier(void)
{
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
}

static inline void udma_full_barrier(void)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

/* Single accesses to shared 32-bit and 8-bit fields. */
static inline uint32_t vhca_load_acquire32(const uint32_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static inline uint32_t vhca_load_relaxed32(const uint32_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static inline void vhca_store_release32(uint32_t *p, uint32_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELEASE);
}

static inline uint8_t vhca_load_acquire8(const uint8_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

/* Returns the previous value; a full barrier on both architectures. */
static inline uint32_t vhca_xchg32(uint32_t *p, uint32_t v)
{
	return __atomic_exchange_n(p, v, __ATOMIC_SEQ_CST);
}

#endif /* VHCA_BARRIER_H */

// Shared-memory parallelism of the core (OpenMP when available).
//
// The core owns its threads: the BLAS runs single-threaded inside each task
// and the tasks are row blocks of the batch (samples propagate independently)
// or independent layers (every layer's gradient needs only u_n and lam_{n+1}).
// Row blocks go through all layers in one parallel region, so a sweep costs
// one fork/join, not one per layer, and each block stays hot in cache.
//
// A region is opened only where its work pays for it: each block must carry
// at least min_parallel_flops(), a multiple of the team's fork/join cost
// converted to flops with one thread's rate, both measured at first use on
// the machine the code runs on (not constants tuned to one processor).
#pragma once

#include <algorithm>

#include "config.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace layerparallel {

int num_threads();
void set_num_threads(int n);

// Bytes of this machine's level-1 data or level-2 cache (sysconf, else sysfs,
// else a common size), queried once: what kernels size their blocks by.
index_t cache_bytes(int level);

// Work (flops) a block needs before a team of `threads` pays for itself;
// measured once per team size and cached (0 for a single thread).
double min_parallel_flops(int threads);
// Override the measurement (tests, benchmarks); a negative value measures again.
void set_min_parallel_flops(double flops);

inline bool in_parallel() {
#ifdef _OPENMP
  return omp_in_parallel() != 0;
#else
  return false;
#endif
}

// Index of the calling thread inside a parallel region (0 outside).
inline int thread_id() {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

// The number of blocks parallel_blocks(n, flops_per_row, ...) uses: at most
// one per thread, each of at least kMinBlockRows rows and of at least
// min_parallel_flops() work; 1 inside a parallel region.
constexpr index_t kMinBlockRows = 8;
inline int block_count(index_t n, double flops_per_row) {
#ifdef _OPENMP
  const int threads = num_threads();
  if (threads < 2 || n < 2 * kMinBlockRows || in_parallel()) return 1;
  const index_t by_rows = n / kMinBlockRows;
  const double by_work = static_cast<double>(n) * flops_per_row / min_parallel_flops(threads);
  const index_t most = std::min<index_t>(threads, by_rows);
  return static_cast<int>(std::max<index_t>(1, std::min<double>(most, by_work)));
#else
  (void)n, (void)flops_per_row;
  return 1;
#endif
}

// f(t, begin, end) on contiguous blocks t = 0 .. block_count(n, flops_per_row) - 1
// of [0, n) (small problems run on the calling thread).
template <class F>
void parallel_blocks_indexed(index_t n, double flops_per_row, F&& f) {
  const int blocks = block_count(n, flops_per_row);
#ifdef _OPENMP
  if (blocks > 1) {
#pragma omp parallel for schedule(static) num_threads(blocks)
    for (int t = 0; t < blocks; ++t) f(t, n * t / blocks, n * (t + 1) / blocks);
    return;
  }
#endif
  (void)blocks;
  f(0, index_t{0}, n);
}

// f(begin, end) on the blocks of parallel_blocks_indexed.
template <class F>
void parallel_blocks(index_t n, double flops_per_row, F&& f) {
  parallel_blocks_indexed(n, flops_per_row, [&](int, index_t b, index_t e) { f(b, e); });
}

// f(i) for i in [0, n), dynamically scheduled (items of uneven cost). With
// `flops_per_item` known, a region opens only where two items pay for it.
template <class F>
void parallel_for(index_t n, F&& f, double flops_per_item = -1.0) {
#ifdef _OPENMP
  const int threads = num_threads();
  if (n > 1 && threads > 1 && !in_parallel() &&
      (flops_per_item < 0.0 || flops_per_item >= min_parallel_flops(threads))) {
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
    for (index_t i = 0; i < n; ++i) f(i);
    return;
  }
#endif
  (void)flops_per_item;
  for (index_t i = 0; i < n; ++i) f(i);
}

}  // namespace layerparallel

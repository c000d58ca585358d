// Shared-memory parallelism of the core (OpenMP when available).
//
// The core owns its threads: the BLAS runs single-threaded inside each task
// and the tasks are row blocks of the batch (samples propagate independently)
// or independent layers (every layer's gradient needs only u_n and lam_{n+1}).
// Row blocks go through all layers in one parallel region, so a sweep costs
// one fork/join, not one per layer, and each block stays hot in cache.
#pragma once

#include <algorithm>

#include "config.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace layerparallel {

int num_threads();
void set_num_threads(int n);

// Index of the calling thread inside a parallel region (0 outside).
inline int thread_id() {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

// The number of blocks parallel_blocks(n, min_block, ...) uses.
inline int block_count(index_t n, index_t min_block) {
#ifdef _OPENMP
  const index_t by_size = std::max<index_t>(1, n / std::max<index_t>(1, min_block));
  return static_cast<int>(std::min<index_t>(num_threads(), by_size));
#else
  (void)n, (void)min_block;
  return 1;
#endif
}

// f(t, begin, end) on contiguous blocks t = 0 .. block_count(n, min_block) - 1
// of [0, n), at most one block per thread and none smaller than min_block
// (tiny problems run on the calling thread).
template <class F>
void parallel_blocks_indexed(index_t n, index_t min_block, F&& f) {
  const int blocks = block_count(n, min_block);
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
void parallel_blocks(index_t n, index_t min_block, F&& f) {
  parallel_blocks_indexed(n, min_block, [&](int, index_t b, index_t e) { f(b, e); });
}

// f(i) for i in [0, n), dynamically scheduled (items of uneven cost).
template <class F>
void parallel_for(index_t n, F&& f) {
#ifdef _OPENMP
  if (n > 1 && num_threads() > 1) {
#pragma omp parallel for schedule(dynamic, 1) num_threads(num_threads())
    for (index_t i = 0; i < n; ++i) f(i);
    return;
  }
#endif
  for (index_t i = 0; i < n; ++i) f(i);
}

}  // namespace layerparallel

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
#include <utility>

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

// Run-time feedback on the threshold (parallel.cpp). A machine's load changes
// while a program runs: a team that paid at start-up may wait for a time
// slice later. So regions are timed: a parallel region that ran at less than
// ~1.1x the speed one thread has on the same work raises a scale on the
// threshold (x2), a good one lowers it again; while the scale keeps regions
// serial, every 16th region that the measured fork/join cost alone would have
// split runs in parallel as a probe. Each kind of region (its flops per row)
// has its own scale, one-thread rate and probe count, and its first region
// that a team would pay for runs on one thread to measure that rate (the
// rate of a small product in cache overstates that of a sweep through memory,
// which would make a good team look slow); a team is judged only against it.
double threshold_scale(double flops_per_row);
bool needs_calibration(double flops_per_row);
bool probe_region(double flops_per_row);
void report_region(double flops_per_row, double flops, double seconds, int blocks);

// Row-block regions run in parallel so far in this process (diagnostics and
// tests: whether a sweep of a given size actually splits).
long long row_block_regions();
void count_row_block_region();

// The number of blocks for n rows of `flops_per_row` work each: at most one
// per thread, each of at least kMinBlockRows rows and of at least
// min_parallel_flops() x threshold_scale(flops_per_row) work; 1 inside a parallel region.
// (Probes make two calls differ: call it once per region and pass the count
// to run_blocks.)
constexpr index_t kMinBlockRows = 8;

// The core's BLAS runs single-threaded (its threads come from the core's own
// regions). Others in the process may raise its thread count later, e.g.
// threadpoolctl's threadpool_limits, which sets every BLAS it finds, ours
// included: a multi-threaded BLAS inside the core's regions oversubscribes
// the CPUs and is many times slower on a loaded machine. Checked (one read
// of a global) before every region, reset where changed.
void keep_blas_single_threaded();

inline int block_count(index_t n, double flops_per_row) {
  if (!in_parallel()) keep_blas_single_threaded();
#ifdef _OPENMP
  const int threads = num_threads();
  if (threads < 2 || n < 2 * kMinBlockRows || in_parallel()) return 1;
  const double work = static_cast<double>(n) * flops_per_row;
  const double base = work / min_parallel_flops(threads);  // blocks the fork cost allows
  if (base < 2.0 || needs_calibration(flops_per_row)) return 1;
  const double most = static_cast<double>(std::min<index_t>(threads, n / kMinBlockRows));
  const double scaled = std::min(most, base / threshold_scale(flops_per_row));
  if (scaled >= 2.0) return static_cast<int>(scaled);
  return probe_region(flops_per_row) ? static_cast<int>(std::min(most, base)) : 1;
#else
  (void)n, (void)flops_per_row;
  return 1;
#endif
}

inline double seconds_now() {
#ifdef _OPENMP
  return omp_get_wtime();
#else
  return 0.0;
#endif
}

// f(t, begin, end) on contiguous blocks t = 0 .. blocks - 1 of [0, n) (in
// parallel when blocks > 1), timed for the threshold's feedback where the
// work is large enough for a clock reading not to matter.
template <class F>
void run_blocks(int blocks, index_t n, double flops_per_row, F&& f) {
#ifdef _OPENMP
  const double work = static_cast<double>(n) * flops_per_row;
  const bool timed = num_threads() > 1 && !in_parallel() &&
                     (blocks > 1 || work >= min_parallel_flops(num_threads()));
  const double t0 = timed ? seconds_now() : 0.0;
  if (blocks > 1) {
    count_row_block_region();
#pragma omp parallel for schedule(static) num_threads(blocks)
    for (int t = 0; t < blocks; ++t) f(t, n * t / blocks, n * (t + 1) / blocks);
  } else {
    f(0, index_t{0}, n);
  }
  if (timed) report_region(flops_per_row, work, seconds_now() - t0, blocks);
#else
  (void)blocks, (void)flops_per_row;
  f(0, index_t{0}, n);
#endif
}

// f(t, begin, end) on the blocks block_count(n, flops_per_row) chooses
// (small problems run on the calling thread).
template <class F>
void parallel_blocks_indexed(index_t n, double flops_per_row, F&& f) {
  run_blocks(block_count(n, flops_per_row), n, flops_per_row, std::forward<F>(f));
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
  if (!in_parallel()) keep_blas_single_threaded();
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

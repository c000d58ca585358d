#include "layerparallel/parallel.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "layerparallel/blas.hpp"

namespace layerparallel {

namespace {
int initial_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}
int& thread_setting() {
  static int n = [] {
    blas::set_num_threads(1);  // the core parallelizes around the BLAS, not inside it
    return initial_threads();
  }();
  return n;
}

using clock = std::chrono::steady_clock;

double seconds_since(clock::time_point a) {
  return std::chrono::duration<double>(clock::now() - a).count();
}

// Median of `reps` timings of f() after one untimed call.
template <class F>
double median_seconds(int reps, F&& f) {
  f();
  std::vector<double> t(reps);
  for (auto& x : t) {
    const auto a = clock::now();
    f();
    x = seconds_since(a);
  }
  std::nth_element(t.begin(), t.begin() + reps / 2, t.end());
  return t[reps / 2];
}

// One thread's flop rate on a small product of the kind the layers run
// (rows x 32 times 32 x 32): what a block of work costs on this machine.
double measure_flop_rate() {
  constexpr index_t rows = 256, w = 32;
  std::vector<double> a(rows * w, 0.5), b(w * w, 0.25), c(rows * w, 0.0);
  const double s = median_seconds(9, [&] {
    blas::gemm(false, false, rows, w, w, 1.0, a.data(), w, b.data(), w, 0.0, c.data(), w);
  });
  return 2.0 * rows * w * w / std::max(s, 1e-9);
}

// The cost of starting and joining a team of `threads` (empty region).
double measure_fork_join(int threads) {
#ifdef _OPENMP
  volatile int sink = 0;
  return median_seconds(21, [&] {
#pragma omp parallel num_threads(threads)
    { sink = sink + 0; }
  });
#else
  (void)threads;
  return 0.0;
#endif
}

// A region must carry this many times its fork/join cost in work: with two
// threads it then runs in at most ~0.6 of the one-thread time even when its
// blocks are uneven, so the threads never cost more than they save.
constexpr double kPayback = 10.0;

struct Threshold {
  std::mutex mutex;
  double forced = -1.0;        // set_min_parallel_flops; < 0: measure
  double rate = 0.0;           // flop/s of one thread (measured once)
  std::vector<double> by_team;  // min flops per block, per team size (0: not yet)
};
Threshold& threshold() {
  static Threshold t;
  return t;
}
// A data or unified cache of `level` from Linux's sysfs (e.g. "512K"), or 0.
index_t sysfs_cache(int level) {
  for (int i = 0; i < 8; ++i) {
    const std::string dir = "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(i) + "/";
    std::ifstream lv(dir + "level"), ty(dir + "type"), sz(dir + "size");
    int l = 0;
    std::string type, size;
    if (!(lv >> l) || !(ty >> type) || !(sz >> size)) break;
    if (l != level || type == "Instruction" || size.empty()) continue;
    index_t bytes = std::stoll(size);
    const char unit = size.back();
    if (unit == 'K') bytes <<= 10;
    if (unit == 'M') bytes <<= 20;
    return bytes;
  }
  return 0;
}

index_t query_cache(int level) {
  long v = 0;
#if defined(_SC_LEVEL1_DCACHE_SIZE) && defined(_SC_LEVEL2_CACHE_SIZE)
  v = sysconf(level == 1 ? _SC_LEVEL1_DCACHE_SIZE : _SC_LEVEL2_CACHE_SIZE);
#endif
  if (v <= 0) v = static_cast<long>(sysfs_cache(level));
  if (v <= 0) v = level == 1 ? (32L << 10) : (256L << 10);  // common sizes when unknown
  return static_cast<index_t>(v);
}
}  // namespace

index_t cache_bytes(int level) {
  static const index_t l1 = query_cache(1), l2 = query_cache(2);
  return level <= 1 ? l1 : l2;
}

int num_threads() { return thread_setting(); }

void keep_blas_single_threaded() {
  if (blas::get_num_threads() > 1) blas::set_num_threads(1);
}

void set_num_threads(int n) {
  if (n < 1) n = 1;
  thread_setting() = n;
}

double min_parallel_flops(int threads) {
  Threshold& t = threshold();
  std::lock_guard<std::mutex> lock(t.mutex);
  if (t.forced >= 0.0) return t.forced;
  if (threads < 2) return 0.0;
  if (static_cast<int>(t.by_team.size()) <= threads) t.by_team.resize(threads + 1, 0.0);
  double& v = t.by_team[threads];
  if (v == 0.0) {
    if (t.rate == 0.0) t.rate = measure_flop_rate();
    v = std::max(1.0, kPayback * measure_fork_join(threads) * t.rate);
  }
  return v;
}

namespace {
// The feedback of one kind of region: regions with the same work per row (the
// same sweep of the same layers), whose one-thread rate and whose gain from a
// team are alike. Kinds differ widely: a width-8 sweep gains nothing from a
// second thread where a width-64 sweep gains 1.6x, and one scale for both let
// the small regions keep the large ones serial.
struct KindFeedback {
  double scale = 1.0;        // on min_parallel_flops
  double serial_rate = 0.0;  // flop/s of one thread on this kind run serially (EMA)
  unsigned skipped = 0;      // regions kept serial by the scale since the last probe
};
struct Feedback {
  std::mutex mutex;
  std::map<double, KindFeedback> kinds;  // by flops per row
  KindFeedback& of(double flops_per_row) {
    if (kinds.size() >= kMaxKinds && !kinds.count(flops_per_row)) kinds.clear();
    return kinds[flops_per_row];
  }
  static constexpr std::size_t kMaxKinds = 256;  // a bound, far above any real program's
};
Feedback& feedback() {
  static Feedback f;
  return f;
}
constexpr double kMaxScale = 1e6;
std::atomic<long long> row_block_count{0};
}  // namespace

long long row_block_regions() { return row_block_count.load(std::memory_order_relaxed); }
void count_row_block_region() { row_block_count.fetch_add(1, std::memory_order_relaxed); }

double threshold_scale(double flops_per_row) {
  Feedback& f = feedback();
  std::lock_guard<std::mutex> lock(f.mutex);
  const auto it = f.kinds.find(flops_per_row);
  return it == f.kinds.end() ? 1.0 : it->second.scale;
}

bool needs_calibration(double flops_per_row) {
  {
    Threshold& t = threshold();
    std::lock_guard<std::mutex> lock(t.mutex);
    if (t.forced >= 0.0) return false;  // a fixed threshold takes no feedback
  }
  Feedback& f = feedback();
  std::lock_guard<std::mutex> lock(f.mutex);
  const auto it = f.kinds.find(flops_per_row);
  return it == f.kinds.end() || !(it->second.serial_rate > 0.0);
}

bool probe_region(double flops_per_row) {
  Feedback& f = feedback();
  std::lock_guard<std::mutex> lock(f.mutex);
  KindFeedback& k = f.of(flops_per_row);
  if (++k.skipped < 16) return false;
  k.skipped = 0;
  return true;
}

void report_region(double flops_per_row, double flops, double seconds, int blocks) {
  if (!(seconds > 0.0) || flops <= 0.0) return;
  {
    Threshold& t = threshold();
    std::lock_guard<std::mutex> lock(t.mutex);
    if (t.forced >= 0.0) return;  // a fixed threshold takes no feedback
  }
  Feedback& f = feedback();
  std::lock_guard<std::mutex> lock(f.mutex);
  KindFeedback& k = f.of(flops_per_row);
  if (blocks <= 1) {  // one thread's rate on the work actually run
    const double r = flops / seconds;
    k.serial_rate = k.serial_rate > 0.0 ? 0.8 * k.serial_rate + 0.2 * r : r;
    return;
  }
  // A team runs only once its kind is calibrated (block_count); a kind
  // forgotten since (set_min_parallel_flops) is not judged.
  if (!(k.serial_rate > 0.0)) return;
  const double one_thread = flops / k.serial_rate;
  const double ratio = seconds / one_thread;  // ideal 1/blocks
  if (ratio > 0.9)
    k.scale = std::min(kMaxScale, k.scale * 2.0);
  else if (ratio < 0.7)
    k.scale = std::max(1.0, k.scale * 0.7);
}

void set_min_parallel_flops(double flops) {
  {
    Feedback& f = feedback();
    std::lock_guard<std::mutex> lock(f.mutex);
    f.kinds.clear();
  }
  Threshold& t = threshold();
  std::lock_guard<std::mutex> lock(t.mutex);
  t.forced = flops;
}

}  // namespace layerparallel

// The choice between a specialised kernel family (narrow dense layers, direct
// convolutions) and the BLAS path, under the narrow-kernel mode: a thread's
// NarrowForce, else LP_NARROW_KERNEL / set_narrow_mode, else one timing per
// slot (a width, a channel count) on this machine, cached until the mode is
// set again.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <type_traits>
#include <utility>

#include "kernels_narrow.hpp"

namespace layerparallel {

// f(std::integral_constant<int, V>{}) for the V of Values equal to v, nothing
// when none is: a run-time size to the compile-time one a kernel family is
// built for (a width, a channel count).
template <int... Values, class F>
void with_one_of(index_t v, F&& f) {
  (void)((v == Values ? (f(std::integral_constant<int, Values>{}), true) : false) || ...);
}

// True when `once` (one representative call through the public layer
// functions, which dispatch on NarrowForce) runs clearly faster with the
// special kernels: both paths interleaved, `reps` calls per timing, best of
// several rounds after a warm-up, and a margin so that timing noise does not
// flip a near tie between runs.
template <class Once>
bool special_path_faster(Once&& once, int reps) {
  using clock = std::chrono::steady_clock;
  constexpr double kMargin = 0.9;
  auto timed = [&](bool special) {
    NarrowForce force(special);
    const auto a = clock::now();
    for (int i = 0; i < reps; ++i) once();
    return std::chrono::duration<double>(clock::now() - a).count();
  };
  double best[2] = {1e30, 1e30};
  timed(false), timed(true);  // warm caches and code
  for (int round = 0; round < 7; ++round)
    for (int p = 0; p < 2; ++p) {
      const bool special = (round + p) % 2 == 0;
      best[special] = std::min(best[special], timed(special));
    }
  return best[1] < kMargin * best[0];
}

// The outcome for each of `Slots` slots of one kernel family and scalar type.
template <int Slots>
class KernelChoice {
 public:
  // Whether slot `slot` takes the special kernels; `measure()` (a
  // special_path_faster call) runs at most once per slot and mode generation.
  template <class Measure>
  bool special(int slot, Measure&& measure) {
    if (narrow_forced() >= 0) return narrow_forced() == 1;
    const NarrowMode m = narrow_mode();
    if (m != NarrowMode::automatic) return m == NarrowMode::on;
    const int gen = narrow_generation();
    if (generation_[slot].load(std::memory_order_acquire) == gen) return special_[slot].load();
    std::lock_guard<std::mutex> lock(mutex_);
    if (generation_[slot].load() != gen) {
      special_[slot].store(measure());
      generation_[slot].store(gen, std::memory_order_release);
    }
    return special_[slot].load();
  }

 private:
  std::mutex mutex_;
  std::atomic<int> generation_[Slots] = {};  // generation of each outcome (0: none)
  std::atomic<bool> special_[Slots] = {};
};

}  // namespace layerparallel

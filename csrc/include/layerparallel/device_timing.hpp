// Device time of queued work, without the host's launch overhead: the work
// is queued behind a kernel that keeps the device busy, so its launches run
// back to back, and CUDA events time them on the device (for the crossover
// model's measured inputs, bench/gpu_layer_parallel.py).
#pragma once

#include <functional>

#include "backend.hpp"

namespace layerparallel {

struct DeviceTiming {
  double device_seconds;  // per repetition, on the device
  double host_seconds;    // per repetition, to queue it on the host
};

// Runs `work` `reps` times on `ex` (a CUDA executor; std::invalid_argument
// otherwise) and times it.
DeviceTiming time_on_device(Executor& ex, const std::function<void()>& work, int reps);

}  // namespace layerparallel

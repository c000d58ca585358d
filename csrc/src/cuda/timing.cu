// time_on_device: a spinning kernel holds the stream while the host queues
// the work (until the host releases it through mapped memory), so the device
// then runs the queued launches without gaps; the events after the spin and
// after the work give the device time alone.
#include <chrono>

#include "cuda_executor.cuh"
#include "layerparallel/device_timing.hpp"

namespace layerparallel {

namespace {
// Holds the device until the host sets *release (mapped host memory), or at
// most `cycles` clock ticks (a host blocked by a full launch queue must not
// wait forever; keep reps x launches per rep well under ~1000).
__global__ void spin(const volatile int* release, long long cycles) {
  const long long start = clock64();
  while (*release == 0 && clock64() - start < cycles) {
  }
}
}  // namespace

DeviceTiming time_on_device(Executor& ex, const std::function<void()>& work, int reps) {
  auto* cu = dynamic_cast<cuda::CudaExecutor*>(&ex);
  if (!cu) throw std::invalid_argument("time_on_device needs a CUDA executor");
  if (reps < 1) throw std::invalid_argument("reps must be >= 1");
  cu->activate();
  work();  // warm-up: allocations and first-call costs outside the timing
  cu->synchronize();
  cudaEvent_t a, b;
  cuda::check(cudaEventCreate(&a), "cudaEventCreate");
  cuda::check(cudaEventCreate(&b), "cudaEventCreate");
  int* release = nullptr;
  int* release_dev = nullptr;
  cuda::check(cudaHostAlloc(&release, sizeof(int), cudaHostAllocMapped), "cudaHostAlloc");
  cuda::check(cudaHostGetDevicePointer(&release_dev, release, 0), "cudaHostGetDevicePointer");
  *release = 0;
  spin<<<1, 1, 0, cu->stream()>>>(release_dev, 400000000LL);  // ~0.2-0.4 s
  cuda::check(cudaGetLastError(), "kernel launch");
  cuda::check(cudaEventRecord(a, cu->stream()), "cudaEventRecord");
  const auto t0 = std::chrono::steady_clock::now();
  for (int r = 0; r < reps; ++r) work();
  const double host = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  cuda::check(cudaEventRecord(b, cu->stream()), "cudaEventRecord");
  *reinterpret_cast<volatile int*>(release) = 1;
  cu->synchronize();
  cudaFreeHost(release);
  float ms = 0.0f;
  cuda::check(cudaEventElapsedTime(&ms, a, b), "cudaEventElapsedTime");
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  return {1e-3 * ms / reps, host / reps};
}

}  // namespace layerparallel

// The CUDA backend: device memory, one stream per executor, the engine's
// vector kernels (vector_kernels.hpp) launched one thread per entry, and a
// deterministic two-pass reduction (fixed grid, fixed order) so the residual
// norm has the same bits on every run.
#include <cstring>
#include <memory>
#include <mutex>
#include <vector>

#include "cuda_executor.cuh"
#include "layerparallel/vector_kernels.hpp"

namespace layerparallel {

namespace cuda {

__global__ void reduce_final(const double* partial, unsigned count, double* sum) {
  if (threadIdx.x == 0 && blockIdx.x == 0) {
    double acc = 0.0;
    for (unsigned b = 0; b < count; ++b) acc += partial[b];
    *sum += acc;
  }
}

CudaExecutor::CudaExecutor(int device) : device_(device) {
  activate();
  cudaDeviceProp prop;
  check(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties");
  name_ = std::string("cuda:") + std::to_string(device) + " (" + prop.name + ")";
  check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
  check(cublasCreate(&blas_), "cublasCreate");
  check(cublasSetStream(blas_, stream_), "cublasSetStream");
  check(cudaMalloc(&sum_, sizeof(double)), "cudaMalloc");
  check(cudaMalloc(&partial_, kReduceBlocks * sizeof(double)), "cudaMalloc");
  check(cudaMemset(sum_, 0, sizeof(double)), "cudaMemset");
}

CudaExecutor::~CudaExecutor() {
  cudaSetDevice(device_);
  cudaStreamSynchronize(stream_);
  cudaFree(partial_);
  cudaFree(pointers_);
  for (cudaEvent_t e : staging_events_) cudaEventDestroy(e);
  if (staging_) cudaFreeHost(staging_);
  for (auto& r : recordings_)
    if (r.second.exec) cudaGraphExecDestroy(r.second.exec);
  cudaFree(sum_);
  cublasDestroy(blas_);
  cudaStreamDestroy(stream_);
}

void* CudaExecutor::alloc_bytes(std::size_t bytes) {
  activate();
  void* p = nullptr;
  check(cudaMalloc(&p, bytes), "cudaMalloc");
  check(cudaMemsetAsync(p, 0, bytes, stream_), "cudaMemset");
  return p;
}

void CudaExecutor::free(void* p) noexcept {
  cudaStreamSynchronize(stream_);
  cudaFree(p);
}

template <class T>
void CudaExecutor::copy_t(index_t n, const T* src, T* dst) {
  if (dst == src || n <= 0) return;
  check(cudaMemcpyAsync(dst, src, static_cast<std::size_t>(n) * sizeof(T),
                        cudaMemcpyDeviceToDevice, stream_),
        "cudaMemcpy (device)");
}

template <class T>
void CudaExecutor::fill_t(index_t n, T a, T* x) {
  launch(stream_, n, vk::Fill<T>{a, x});
}

template <class T>
void CudaExecutor::axpy_t(index_t n, T a, const T* x, T* y) {
  launch(stream_, n, vk::Axpy<T>{a, x, y});
}

template <class T>
void CudaExecutor::fas_update_t(index_t n, const T* v, const T* phi, T* g) {
  launch(stream_, n, vk::FasUpdate<T>{v, phi, g});
}

// The partial sums are double for float states too (see vk::ResidualSq).
template <class T>
void CudaExecutor::residual_t(index_t n, const T* u, T* r) {
  if (n <= 0) return;
  const unsigned blocks = std::min<unsigned>(kReduceBlocks, blocks_for(n));
  reduce_partial<<<blocks, kThreads, 0, stream_>>>(n, vk::ResidualSq<T>{u, r}, partial_);
  check(cudaGetLastError(), "kernel launch");
  reduce_final<<<1, 1, 0, stream_>>>(partial_, blocks, sum_);
  check(cudaGetLastError(), "kernel launch");
}

double CudaExecutor::take_sum() {
  double s = 0.0;
  check(cudaMemcpyAsync(&s, sum_, sizeof(double), cudaMemcpyDeviceToHost, stream_),
        "cudaMemcpy (sum)");
  check(cudaMemsetAsync(sum_, 0, sizeof(double), stream_), "cudaMemset");
  check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
  return s;
}

template <class T>
void CudaExecutor::to_host_t(index_t n, const T* src, T* host) {
  if (n <= 0) return;
  check(cudaMemcpyAsync(host, src, static_cast<std::size_t>(n) * sizeof(T),
                        cudaMemcpyDeviceToHost, stream_),
        "cudaMemcpy (to host)");
  check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
}

template <class T>
void CudaExecutor::from_host_t(index_t n, const T* host, T* dst) {
  if (n <= 0) return;
  check(cudaMemcpyAsync(dst, host, static_cast<std::size_t>(n) * sizeof(T),
                        cudaMemcpyHostToDevice, stream_),
        "cudaMemcpy (from host)");
  // No synchronization: from pageable host memory (every host array here) the
  // copy is staged before cudaMemcpyAsync returns, so the caller may reuse the
  // host buffer at once, and stream order covers the device side.
}

void CudaExecutor::synchronize() { check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize"); }

// The header's inline overrides may be expanded in other files (layer.cu).
#define LP_CUDA_EXECUTOR_OPS(T)                                                   \
  template void CudaExecutor::copy_t<T>(index_t, const T*, T*);                 \
  template void CudaExecutor::fill_t<T>(index_t, T, T*);                        \
  template void CudaExecutor::axpy_t<T>(index_t, T, const T*, T*);              \
  template void CudaExecutor::fas_update_t<T>(index_t, const T*, const T*, T*); \
  template void CudaExecutor::residual_t<T>(index_t, const T*, T*);             \
  template void CudaExecutor::to_host_t<T>(index_t, const T*, T*);              \
  template void CudaExecutor::from_host_t<T>(index_t, const T*, T*);
LP_CUDA_EXECUTOR_OPS(float)
LP_CUDA_EXECUTOR_OPS(double)
#undef LP_CUDA_EXECUTOR_OPS

}  // namespace cuda

bool cuda_built() { return true; }

int cuda_device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // no driver or no device: clear the sticky error
    return 0;
  }
  return n;
}

std::shared_ptr<Executor> cuda_executor(int id) {
  const int n = cuda_device_count();
  if (n == 0)
    throw std::invalid_argument("device='cuda': no CUDA device is visible to this process");
  if (id < 0 || id >= n)
    throw std::invalid_argument("device='cuda:" + std::to_string(id) + "': only " +
                                std::to_string(n) + " CUDA device(s) visible");
  // One executor per device, alive for the whole process (never destroyed:
  // buffers anywhere may still point at it, and the CUDA runtime may be gone
  // by the time static destructors run); its stream orders all the work.
  static std::mutex mutex;
  static auto* made = new std::vector<std::shared_ptr<Executor>>();
  std::lock_guard<std::mutex> lock(mutex);
  if (static_cast<int>(made->size()) < n) made->resize(n);
  if (!(*made)[id]) (*made)[id] = std::make_shared<cuda::CudaExecutor>(id);
  return (*made)[id];
}

}  // namespace layerparallel

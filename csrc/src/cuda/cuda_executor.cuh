// The CUDA backend's executor and launchers (internal to src/cuda/).
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstring>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "layerparallel/backend.hpp"

namespace layerparallel::cuda {

inline void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess)
    throw std::runtime_error(std::string("CUDA ") + what + ": " + cudaGetErrorString(e));
}
inline void check(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS)
    throw std::runtime_error(std::string("cuBLAS ") + what + " failed (status " +
                             std::to_string(static_cast<int>(s)) + ")");
}

constexpr int kThreads = 256;

template <class K>
__global__ void elementwise(index_t n, K k) {
  for (index_t i = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<index_t>(gridDim.x) * blockDim.x)
    k(i);
}

// For a 2-D functor k(row, column) over a (rows x width) row-major array.
template <class K>
struct Flat2D {
  K k;
  index_t width;
  __device__ void operator()(index_t i) const { k(i / width, i % width); }
};

inline unsigned blocks_for(index_t n) {
  const index_t b = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(b < 65535 ? (b > 0 ? b : 1) : 65535);
}

// One launch of k(i) for i in [0, n) on `stream`.
template <class K>
void launch(cudaStream_t stream, index_t n, const K& k) {
  if (n <= 0) return;
  elementwise<<<blocks_for(n), kThreads, 0, stream>>>(n, k);
  check(cudaGetLastError(), "kernel launch");
}

template <class K>
void launch2d(cudaStream_t stream, index_t rows, index_t width, const K& k) {
  launch(stream, rows * width, Flat2D<K>{k, width});
}

constexpr unsigned kReduceBlocks = 256;

// partial[block] = sum of k(i) over this block's grid-stride entries.
template <class K>
__global__ void reduce_partial(index_t n, K k, double* partial) {
  __shared__ double s[kThreads];
  double acc = 0.0;
  for (index_t i = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<index_t>(gridDim.x) * blockDim.x)
    acc += k(i);
  s[threadIdx.x] = acc;
  __syncthreads();
  for (unsigned w = blockDim.x / 2; w > 0; w /= 2) {
    if (threadIdx.x < w) s[threadIdx.x] += s[threadIdx.x + w];
    __syncthreads();
  }
  if (threadIdx.x == 0) partial[blockIdx.x] = s[0];
}

// *sum += partial[0] + ... + partial[count - 1], in order.
__global__ void reduce_final(const double* partial, unsigned count, double* sum);

class CudaExecutor final : public Executor {
 public:
  explicit CudaExecutor(int device);
  ~CudaExecutor() override;
  Device device() const override { return Device::cuda; }
  std::string name() const override { return name_; }
  void* alloc_bytes(std::size_t bytes) override;
  void free(void* p) noexcept override;
  void copy(index_t n, const double* src, double* dst) override { copy_t(n, src, dst); }
  void copy(index_t n, const float* src, float* dst) override { copy_t(n, src, dst); }
  void fill(index_t n, double a, double* x) override { fill_t(n, a, x); }
  void fill(index_t n, float a, float* x) override { fill_t(n, a, x); }
  void axpy(index_t n, double a, const double* x, double* y) override { axpy_t(n, a, x, y); }
  void axpy(index_t n, float a, const float* x, float* y) override { axpy_t(n, a, x, y); }
  void fas_update(index_t n, const double* v, const double* phi, double* g) override {
    fas_update_t(n, v, phi, g);
  }
  void fas_update(index_t n, const float* v, const float* phi, float* g) override {
    fas_update_t(n, v, phi, g);
  }
  void residual_accumulate(index_t n, const double* u, double* r) override {
    residual_t(n, u, r);
  }
  void residual_accumulate(index_t n, const float* u, float* r) override { residual_t(n, u, r); }
  // Batched forms (executor_batch.cu): one launch each.
  void copy_batch(index_t n, index_t count, const double* const* src,
                  double* const* dst) override;
  void copy_batch(index_t n, index_t count, const float* const* src, float* const* dst) override;
  void axpy_batch(index_t n, index_t count, double a, const double* const* x,
                  double* const* y) override;
  void axpy_batch(index_t n, index_t count, float a, const float* const* x,
                  float* const* y) override;
  void fas_update_batch(index_t n, index_t count, const double* const* v,
                        const double* const* phi, double* const* g) override;
  void fas_update_batch(index_t n, index_t count, const float* const* v,
                        const float* const* phi, float* const* g) override;
  void residual_accumulate_batch(index_t n, index_t count, const double* const* u,
                                 double* const* r) override;
  void residual_accumulate_batch(index_t n, index_t count, const float* const* u,
                                 float* const* r) override;
  double take_sum() override;
  void to_host(index_t n, const double* src, double* host) override { to_host_t(n, src, host); }
  void from_host(index_t n, const double* host, double* dst) override {
    from_host_t(n, host, dst);
  }
  void to_host(index_t n, const float* src, float* host) override { to_host_t(n, src, host); }
  void from_host(index_t n, const float* host, float* dst) override { from_host_t(n, host, dst); }
  void synchronize() override;
  // Page-locked host memory for staged messages (fast, asynchronous copies).
  void* alloc_host_bytes(std::size_t bytes) override {
    void* p = nullptr;
    check(cudaMallocHost(&p, bytes), "cudaMallocHost");
    return p;
  }
  void free_host(void* p) noexcept override {
    cudaStreamSynchronize(stream_);
    cudaFreeHost(p);
  }

  cudaStream_t stream() const { return stream_; }
  cublasHandle_t blas() const { return blas_; }
  int id() const { return device_; }
  // CUDA graphs (graph.cu): record on the second sighting of a key, replay after.
  bool record_or_replay(std::uint64_t key, const std::function<void()>& work) override;

  // A host array of device pointers copied to the device (stream ordered;
  // valid until the next call): the batched operations' pointer arrays.
  void** upload_pointers(const std::vector<const void*>& host);
  // `bytes` of page-locked host memory for one asynchronous upload, or null
  // when it is too large for the staging ring (executor_batch.cu).
  void* stage(std::size_t bytes);
  // Make this executor's device current on the calling thread.
  void activate() const { check(cudaSetDevice(device_), "cudaSetDevice"); }

 private:
  // One definition per operation, for float and double (executor.cu).
  template <class T>
  void copy_t(index_t n, const T* src, T* dst);
  template <class T>
  void fill_t(index_t n, T a, T* x);
  template <class T>
  void axpy_t(index_t n, T a, const T* x, T* y);
  template <class T>
  void fas_update_t(index_t n, const T* v, const T* phi, T* g);
  template <class T>
  void residual_t(index_t n, const T* u, T* r);
  template <class T>
  void residual_batch_t(index_t n, index_t count, const T* const* u, T* const* r);
  template <class T>
  void to_host_t(index_t n, const T* src, T* host);
  template <class T>
  void from_host_t(index_t n, const T* host, T* dst);

  int device_;
  std::string name_;
  cudaStream_t stream_ = nullptr;
  cublasHandle_t blas_ = nullptr;
  double* sum_ = nullptr;       // the accumulator (device)
  double* partial_ = nullptr;   // per-block partial sums (device)
  void** pointers_ = nullptr;   // the batched operations' pointer arrays (device)
  struct Recording {
    int seen = 0;
    bool failed = false;  // recording is not possible for this key: run the work
    cudaGraphExec_t exec = nullptr;
  };
  std::unordered_map<std::uint64_t, Recording> recordings_;
  std::size_t pointers_cap_ = 0;
  void* staging_ = nullptr;  // page-locked ring for uploads (stage())
  std::vector<cudaEvent_t> staging_events_;
  std::vector<bool> staging_pending_;
  int staging_segment_ = 0;
  std::size_t staging_offset_ = 0;
};

}  // namespace layerparallel::cuda

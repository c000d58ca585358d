// The CUDA executor's batched vector operations (interval-batched MGRIT):
// the engine's element-wise functors (vector_kernels.hpp) applied to `count`
// vectors in one launch, each thread finding its vector through a pointer
// array uploaded once per call. The batched residual reduces over all the
// vectors in one deterministic pass (fixed grid and order).
#include <cstring>

#include "cuda_executor.cuh"
#include "layerparallel/vector_kernels.hpp"

namespace layerparallel {

namespace cuda {

namespace {

// Entry k of vector t for flat index i over count x n entries.
template <class T>
struct CopyB {
  index_t n;
  const T* const* src;
  T* const* dst;
  __device__ void operator()(index_t i) const { dst[i / n][i % n] = src[i / n][i % n]; }
};
template <class T>
struct AxpyB {
  index_t n;
  T a;
  const T* const* x;
  T* const* y;
  __device__ void operator()(index_t i) const { vk::Axpy<T>{a, x[i / n], y[i / n]}(i % n); }
};
template <class T>
struct FasUpdateB {
  index_t n;
  const T* const* v;
  const T* const* phi;
  T* const* g;
  __device__ void operator()(index_t i) const {
    vk::FasUpdate<T>{v[i / n], phi[i / n], g[i / n]}(i % n);
  }
};
template <class T>
struct ResidualSqB {
  index_t n;
  const T* const* u;
  T* const* r;
  __device__ double operator()(index_t i) const {
    return vk::ResidualSq<T>{u[i / n], r[i / n]}(i % n);
  }
};

template <class... P>
std::vector<const void*> pack(index_t count, P... arrays) {
  std::vector<const void*> host;
  host.reserve(sizeof...(P) * count);
  (..., [&] {
    for (index_t i = 0; i < count; ++i) host.push_back(arrays[i]);
  }());
  return host;
}

}  // namespace

void** CudaExecutor::upload_pointers(const std::vector<const void*>& host) {
  // Pointer arrays differ from call to call: a recorded graph would replay
  // stale ones, so a capture must fail here (the chain then runs unrecorded).
  cudaStreamCaptureStatus capturing = cudaStreamCaptureStatusNone;
  check(cudaStreamIsCapturing(stream_, &capturing), "cudaStreamIsCapturing");
  if (capturing != cudaStreamCaptureStatusNone)
    throw std::runtime_error("pointer uploads cannot be recorded in a CUDA graph");
  if (host.size() > pointers_cap_) {
    if (pointers_) {
      check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
      check(cudaFree(pointers_), "cudaFree");
      pointers_ = nullptr;
    }
    pointers_cap_ = std::max<std::size_t>(host.size(), 2 * pointers_cap_);
    check(cudaMalloc(&pointers_, pointers_cap_ * sizeof(void*)), "cudaMalloc (pointers)");
  }
  // Stream order keeps the previous launch's reads of pointers_ before this
  // write. From page-locked staging the copy is asynchronous (from pageable
  // memory the driver would stage it itself, at several microseconds a call).
  const std::size_t bytes = host.size() * sizeof(void*);
  const void* src = host.data();
  if (void* staged = stage(bytes)) {
    std::memcpy(staged, host.data(), bytes);
    src = staged;
  }
  check(cudaMemcpyAsync(pointers_, src, bytes, cudaMemcpyHostToDevice, stream_),
        "cudaMemcpy (pointers)");
  return pointers_;
}

// A ring of page-locked segments: a segment is reused only after the event
// recorded when the ring left it has passed, i.e. after its copies ran.
void* CudaExecutor::stage(std::size_t bytes) {
  constexpr std::size_t kSegment = std::size_t(256) << 10;
  constexpr int kSegments = 8;
  bytes = (bytes + 63) / 64 * 64;
  if (bytes > kSegment) return nullptr;
  if (!staging_) {
    check(cudaMallocHost(&staging_, kSegment * kSegments), "cudaMallocHost (staging)");
    staging_events_.resize(kSegments, nullptr);
    staging_pending_.assign(kSegments, false);
    for (auto& e : staging_events_)
      check(cudaEventCreateWithFlags(&e, cudaEventDisableTiming), "cudaEventCreate");
  }
  if (staging_offset_ + bytes > kSegment) {
    check(cudaEventRecord(staging_events_[staging_segment_], stream_), "cudaEventRecord");
    staging_pending_[staging_segment_] = true;
    staging_segment_ = (staging_segment_ + 1) % kSegments;
    staging_offset_ = 0;
    if (staging_pending_[staging_segment_]) {
      check(cudaEventSynchronize(staging_events_[staging_segment_]), "cudaEventSynchronize");
      staging_pending_[staging_segment_] = false;
    }
  }
  void* p = static_cast<char*>(staging_) + staging_segment_ * kSegment + staging_offset_;
  staging_offset_ += bytes;
  return p;
}

template <class T>
void copy_batch_t(CudaExecutor& ex, index_t n, index_t count, const T* const* src,
                  T* const* dst) {
  if (n <= 0 || count <= 0) return;
  void** p = ex.upload_pointers(pack(count, src, dst));
  launch(ex.stream(), n * count,
         CopyB<T>{n, reinterpret_cast<const T* const*>(p), reinterpret_cast<T* const*>(p + count)});
}

template <class T>
void axpy_batch_t(CudaExecutor& ex, index_t n, index_t count, T a, const T* const* x,
                  T* const* y) {
  if (n <= 0 || count <= 0) return;
  void** p = ex.upload_pointers(pack(count, x, y));
  launch(ex.stream(), n * count,
         AxpyB<T>{n, a, reinterpret_cast<const T* const*>(p),
                  reinterpret_cast<T* const*>(p + count)});
}

template <class T>
void fas_update_batch_t(CudaExecutor& ex, index_t n, index_t count, const T* const* v,
                        const T* const* phi, T* const* g) {
  if (n <= 0 || count <= 0) return;
  void** p = ex.upload_pointers(pack(count, v, phi, g));
  launch(ex.stream(), n * count,
         FasUpdateB<T>{n, reinterpret_cast<const T* const*>(p),
                       reinterpret_cast<const T* const*>(p + count),
                       reinterpret_cast<T* const*>(p + 2 * count)});
}

void CudaExecutor::copy_batch(index_t n, index_t count, const double* const* src,
                              double* const* dst) {
  copy_batch_t(*this, n, count, src, dst);
}
void CudaExecutor::copy_batch(index_t n, index_t count, const float* const* src,
                              float* const* dst) {
  copy_batch_t(*this, n, count, src, dst);
}
void CudaExecutor::axpy_batch(index_t n, index_t count, double a, const double* const* x,
                              double* const* y) {
  axpy_batch_t(*this, n, count, a, x, y);
}
void CudaExecutor::axpy_batch(index_t n, index_t count, float a, const float* const* x,
                              float* const* y) {
  axpy_batch_t(*this, n, count, a, x, y);
}
void CudaExecutor::fas_update_batch(index_t n, index_t count, const double* const* v,
                                    const double* const* phi, double* const* g) {
  fas_update_batch_t(*this, n, count, v, phi, g);
}
void CudaExecutor::fas_update_batch(index_t n, index_t count, const float* const* v,
                                    const float* const* phi, float* const* g) {
  fas_update_batch_t(*this, n, count, v, phi, g);
}
void CudaExecutor::residual_accumulate_batch(index_t n, index_t count, const double* const* u,
                                             double* const* r) {
  residual_batch_t(n, count, u, r);
}
void CudaExecutor::residual_accumulate_batch(index_t n, index_t count, const float* const* u,
                                             float* const* r) {
  residual_batch_t(n, count, u, r);
}

template <class T>
void CudaExecutor::residual_batch_t(index_t n, index_t count, const T* const* u, T* const* r) {
  if (n <= 0 || count <= 0) return;
  void** p = upload_pointers(pack(count, u, r));
  const unsigned blocks = std::min<unsigned>(kReduceBlocks, blocks_for(n * count));
  reduce_partial<<<blocks, kThreads, 0, stream_>>>(
      n * count,
      ResidualSqB<T>{n, reinterpret_cast<const T* const*>(p), reinterpret_cast<T* const*>(p + count)},
      partial_);
  check(cudaGetLastError(), "kernel launch");
  reduce_final<<<1, 1, 0, stream_>>>(partial_, blocks, sum_);
  check(cudaGetLastError(), "kernel launch");
}

}  // namespace cuda

}  // namespace layerparallel

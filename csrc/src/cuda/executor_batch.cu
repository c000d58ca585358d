// The CUDA executor's batched vector operations (interval-batched MGRIT):
// the engine's element-wise functors (vector_kernels.hpp) applied to `count`
// vectors in one launch, each thread finding its vector through a pointer
// array uploaded once per call. The batched residual reduces over all the
// vectors in one deterministic pass (fixed grid and order).
#include "cuda_executor.cuh"
#include "layerparallel/vector_kernels.hpp"

namespace layerparallel {

namespace cuda {

namespace {

// Entry k of vector t for flat index i over count x n entries.
struct CopyB {
  index_t n;
  const double* const* src;
  double* const* dst;
  __device__ void operator()(index_t i) const { dst[i / n][i % n] = src[i / n][i % n]; }
};
struct AxpyB {
  index_t n;
  double a;
  const double* const* x;
  double* const* y;
  __device__ void operator()(index_t i) const { vk::Axpy{a, x[i / n], y[i / n]}(i % n); }
};
struct FasUpdateB {
  index_t n;
  const double* const* v;
  const double* const* phi;
  double* const* g;
  __device__ void operator()(index_t i) const {
    vk::FasUpdate{v[i / n], phi[i / n], g[i / n]}(i % n);
  }
};
struct ResidualSqB {
  index_t n;
  const double* const* u;
  double* const* r;
  __device__ double operator()(index_t i) const { return vk::ResidualSq{u[i / n], r[i / n]}(i % n); }
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
  if (host.size() > pointers_cap_) {
    if (pointers_) {
      check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
      check(cudaFree(pointers_), "cudaFree");
      pointers_ = nullptr;
    }
    pointers_cap_ = std::max<std::size_t>(host.size(), 2 * pointers_cap_);
    check(cudaMalloc(&pointers_, pointers_cap_ * sizeof(void*)), "cudaMalloc (pointers)");
  }
  // From pageable memory the copy is staged before the call returns; stream
  // order keeps the previous launch's reads before this write.
  check(cudaMemcpyAsync(pointers_, host.data(), host.size() * sizeof(void*),
                        cudaMemcpyHostToDevice, stream_),
        "cudaMemcpy (pointers)");
  return pointers_;
}

void CudaExecutor::copy_batch(index_t n, index_t count, const double* const* src,
                              double* const* dst) {
  if (n <= 0 || count <= 0) return;
  void** p = upload_pointers(pack(count, src, dst));
  launch(stream_, n * count,
         CopyB{n, reinterpret_cast<const double* const*>(p),
               reinterpret_cast<double* const*>(p + count)});
}

void CudaExecutor::axpy_batch(index_t n, index_t count, double a, const double* const* x,
                              double* const* y) {
  if (n <= 0 || count <= 0) return;
  void** p = upload_pointers(pack(count, x, y));
  launch(stream_, n * count,
         AxpyB{n, a, reinterpret_cast<const double* const*>(p),
               reinterpret_cast<double* const*>(p + count)});
}

void CudaExecutor::fas_update_batch(index_t n, index_t count, const double* const* v,
                                    const double* const* phi, double* const* g) {
  if (n <= 0 || count <= 0) return;
  void** p = upload_pointers(pack(count, v, phi, g));
  launch(stream_, n * count,
         FasUpdateB{n, reinterpret_cast<const double* const*>(p),
                    reinterpret_cast<const double* const*>(p + count),
                    reinterpret_cast<double* const*>(p + 2 * count)});
}

void CudaExecutor::residual_accumulate_batch(index_t n, index_t count, const double* const* u,
                                             double* const* r) {
  if (n <= 0 || count <= 0) return;
  void** p = upload_pointers(pack(count, u, r));
  const unsigned blocks = std::min<unsigned>(kReduceBlocks, blocks_for(n * count));
  reduce_partial<<<blocks, kThreads, 0, stream_>>>(
      n * count,
      ResidualSqB{n, reinterpret_cast<const double* const*>(p),
                  reinterpret_cast<double* const*>(p + count)},
      partial_);
  check(cudaGetLastError(), "kernel launch");
  reduce_final<<<1, 1, 0, stream_>>>(partial_, blocks, sum_);
  check(cudaGetLastError(), "kernel launch");
}

}  // namespace cuda

}  // namespace layerparallel

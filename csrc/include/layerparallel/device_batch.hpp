// The residual layer's steps on a device, many at once: the interval-batched
// MGRIT sweeps hand the app step j of every interval of a level together, and
// each task has its own layer weights. Pointer arguments are host arrays of
// `count` device pointers (uploaded once per call); scratch arrays are
// contiguous, `count` states of batch x width each. One batched product per
// stage (cublas{D,S}gemmBatched) and one element-wise launch, whatever `count`.
#pragma once

#include <memory>

#include "backend.hpp"
#include "network.hpp"

namespace layerparallel {

template <class T>
class BasicDeviceBatchLayer {
 public:
  virtual ~BasicDeviceBatchLayer() = default;
  // u_next[t] = u[t] + h sigma(W[t] u[t] + b[t]); z: scratch.
  virtual void forward(const NetConfig& cfg, index_t count, const T* const* W,
                       const T* const* b, double h, const T* const* u, index_t batch,
                       T* const* u_next, T* z) = 0;
  // lam[t] = lam_next[t] + h W[t]^T d[t] with d[t] (stored in work + t S) =
  // D[t] * lam_next[t] when D is given, else sigma'(W[t] u[t] + b[t]) * lam_next[t].
  virtual void adjoint(const NetConfig& cfg, index_t count, const T* const* W,
                       const T* const* b, double h, const T* const* u, const T* const* D,
                       const T* const* lam_next, index_t batch, T* const* lam, T* work) = 0;
  // gW[t] = h d[t]^T u[t], gb[t] = h sum_rows d[t], d[t] = work + t S.
  virtual void gradient(const NetConfig& cfg, index_t count, double h, const T* const* u,
                        const T* work, index_t batch, T* const* gW, T* const* gb) = 0;
  // D[t] = sigma'(W[t] u[t] + b[t]): the cached derivatives of many layers.
  virtual void derivative(const NetConfig& cfg, index_t count, const T* const* W,
                          const T* const* b, const T* const* u, index_t batch,
                          T* const* D) = 0;
  // work + t S = D[t] * lam[t] (S entries each).
  virtual void scale(index_t count, index_t S, const T* const* D, const T* const* lam,
                     T* work) = 0;
};
using DeviceBatchLayer = BasicDeviceBatchLayer<double>;

// The batched kernels on `ex` (a CUDA executor); throws std::invalid_argument
// for executors without device kernels.
template <class T>
std::unique_ptr<BasicDeviceBatchLayer<T>> make_device_batch_layer(Executor& ex);

}  // namespace layerparallel

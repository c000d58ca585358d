// The residual layer's steps on a device, many at once: the interval-batched
// MGRIT sweeps hand the app step j of every interval of a level together, and
// each task has its own layer weights. Pointer arguments are host arrays of
// `count` device pointers (uploaded once per call); scratch arrays are
// contiguous, `count` states of batch x width each. One batched product per
// stage (cublasDgemmBatched) and one element-wise launch, whatever `count`.
#pragma once

#include <memory>

#include "backend.hpp"
#include "network.hpp"

namespace layerparallel {

class DeviceBatchLayer {
 public:
  virtual ~DeviceBatchLayer() = default;
  // u_next[t] = u[t] + h sigma(W[t] u[t] + b[t]); z: scratch.
  virtual void forward(const NetConfig& cfg, index_t count, const double* const* W,
                       const double* const* b, double h, const double* const* u, index_t batch,
                       double* const* u_next, double* z) = 0;
  // lam[t] = lam_next[t] + h W[t]^T d[t] with d[t] (stored in work + t S) =
  // D[t] * lam_next[t] when D is given, else sigma'(W[t] u[t] + b[t]) * lam_next[t].
  virtual void adjoint(const NetConfig& cfg, index_t count, const double* const* W,
                       const double* const* b, double h, const double* const* u,
                       const double* const* D, const double* const* lam_next, index_t batch,
                       double* const* lam, double* work) = 0;
  // gW[t] = h d[t]^T u[t], gb[t] = h sum_rows d[t], d[t] = work + t S.
  virtual void gradient(const NetConfig& cfg, index_t count, double h, const double* const* u,
                        const double* work, index_t batch, double* const* gW,
                        double* const* gb) = 0;
};

// The batched kernels on `ex` (a CUDA executor); throws std::invalid_argument
// for executors without device kernels.
std::unique_ptr<DeviceBatchLayer> make_device_batch_layer(Executor& ex);

}  // namespace layerparallel

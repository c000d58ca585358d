// The residual layer's operations on a device executor: the same mathematics
// as layer.hpp (forward, adjoint, linearization, gradient), with every pointer
// in the executor's memory and the products through the device BLAS
// (cuBLAS). The CPU path keeps its own hot loops in layer.cpp; both apply the
// same activation functors.
#pragma once

#include <memory>

#include "backend.hpp"
#include "network.hpp"

namespace layerparallel {

class DeviceLayer {
 public:
  virtual ~DeviceLayer() = default;
  // u_next = u + h sigma(W u + b); z receives W u + b. u_next may be u.
  virtual void forward(const NetConfig& cfg, const double* W, const double* b, double h,
                       const double* u, index_t batch, double* u_next, double* z) = 0;
  // lam = lam_next + h W^T (sigma'(W u + b) * lam_next); work = that factor d.
  virtual void adjoint(const NetConfig& cfg, const double* W, const double* b, double h,
                       const double* u, const double* lam_next, index_t batch, double* lam,
                       double* work) = 0;
  // D = sigma'(W u + b).
  virtual void derivative(const NetConfig& cfg, const double* W, const double* b,
                          const double* u, index_t batch, double* D) = 0;
  // lam = lam_next + h W^T (D * lam_next); work = D * lam_next.
  virtual void adjoint_linearized(const NetConfig& cfg, const double* W, double h,
                                  const double* D, const double* lam_next, index_t batch,
                                  double* lam, double* work) = 0;
  // gW = h d^T u, gb = h sum_rows d.
  virtual void gradient(const NetConfig& cfg, double h, const double* u, const double* d,
                        index_t batch, double* gW, double* gb) = 0;
  // out = D * lam on n entries.
  virtual void scale(index_t n, const double* D, const double* lam, double* out) = 0;
};

// The layer kernels on `ex` (a CUDA executor); throws std::invalid_argument
// for executors without device kernels.
std::unique_ptr<DeviceLayer> make_device_layer(Executor& ex);

}  // namespace layerparallel

// The residual layer's operations on a device executor: the same mathematics
// as layer.hpp (forward, adjoint, linearization, gradient), with every pointer
// in the executor's memory and the products through the device BLAS
// (cuBLAS). The CPU path keeps its own hot loops in layer.cpp; both apply the
// same activation functors. Templated on the scalar T (float or double).
#pragma once

#include <memory>

#include "backend.hpp"
#include "network.hpp"

namespace layerparallel {

template <class T>
class BasicDeviceLayer {
 public:
  virtual ~BasicDeviceLayer() = default;
  // u_next = u + h sigma(W u + b); z receives W u + b. u_next may be u.
  virtual void forward(const NetConfig& cfg, const T* W, const T* b, double h,
                       const T* u, index_t batch, T* u_next, T* z) = 0;
  // lam = lam_next + h W^T (sigma'(W u + b) * lam_next); work = that factor d.
  virtual void adjoint(const NetConfig& cfg, const T* W, const T* b, double h,
                       const T* u, const T* lam_next, index_t batch, T* lam,
                       T* work) = 0;
  // D = sigma'(W u + b).
  virtual void derivative(const NetConfig& cfg, const T* W, const T* b,
                          const T* u, index_t batch, T* D) = 0;
  // lam = lam_next + h W^T (D * lam_next); work = D * lam_next.
  virtual void adjoint_linearized(const NetConfig& cfg, const T* W, double h,
                                  const T* D, const T* lam_next, index_t batch,
                                  T* lam, T* work) = 0;
  // gW = h d^T u, gb = h sum_rows d.
  virtual void gradient(const NetConfig& cfg, double h, const T* u, const T* d,
                        index_t batch, T* gW, T* gb) = 0;
};
using DeviceLayer = BasicDeviceLayer<double>;

// The layer kernels on `ex` (a CUDA executor); throws std::invalid_argument
// for executors without device kernels.
template <class T>
std::unique_ptr<BasicDeviceLayer<T>> make_device_layer(Executor& ex);

}  // namespace layerparallel

// Opening layer u_0 = sigma(W_in y + b_in), its linear variant W_in y + b_in,
// and zero-padding of y to the network width (no parameters).
#include <algorithm>

#include "layerparallel/blas.hpp"
#include "layerparallel/kernels.hpp"
#include "layerparallel/model.hpp"

namespace layerparallel {

namespace {
template <class T>
void add_column_sums(const T* a, index_t rows, index_t cols, T* out) {
  for (index_t r = 0; r < rows; ++r)
    for (index_t j = 0; j < cols; ++j) out[j] += a[r * cols + j];
}
}  // namespace

template <class T>
void opening_forward(const NetConfig& cfg, const ParamView<const T>& theta, const T* X,
                     index_t n, T* u0, T* z0) {
  const index_t w = cfg.width, d = cfg.n_in;
  if (cfg.opening == Opening::padding) {
    std::fill(u0, u0 + n * w, T(0));
    for (index_t r = 0; r < n; ++r) std::copy(X + r * d, X + (r + 1) * d, u0 + r * w);
    return;
  }
  blas::gemm(false, true, n, w, d, 1.0, X, d, theta.W_in(), d, 0.0, z0, w);
  if (cfg.opening == Opening::linear) {
    const T* b = theta.b_in();
    for (index_t r = 0; r < n; ++r)
      for (index_t j = 0; j < w; ++j) u0[r * w + j] = z0[r * w + j] + b[j];
    return;
  }
  with_activation(cfg.activation, cfg.eta, [&](auto act) {
    launch_cpu(n, w, BiasActivationKernel<T, decltype(act)>{act, w, theta.b_in(), z0, u0});
  });
}

template <class T>
void opening_backward(const NetConfig& cfg, const ParamView<const T>& theta, const T* X,
                      index_t n, T* z0, const T* lam0, const ParamView<T>& grad,
                      nondeduced<T>* dX) {
  const index_t w = cfg.width, d = cfg.n_in;
  if (cfg.opening == Opening::padding) {
    if (dX)
      for (index_t r = 0; r < n; ++r) std::copy(lam0 + r * w, lam0 + r * w + d, dX + r * d);
    return;
  }
  const T* factor = lam0;
  if (cfg.opening == Opening::activation) {
    with_activation(cfg.activation, cfg.eta, [&](auto act) {
      launch_cpu(n, w, AdjointScaleKernel<T, decltype(act), false>{act, w, nullptr, lam0, z0});
    });
    factor = z0;
  }
  blas::gemm(true, false, w, d, n, 1.0, factor, w, X, d, 0.0, grad.W_in(), d);
  std::fill(grad.b_in(), grad.b_in() + w, T(0));
  add_column_sums(factor, n, w, grad.b_in());
  if (dX) blas::gemm(false, false, n, d, w, 1.0, factor, w, theta.W_in(), d, 0.0, dX, d);
}

template void opening_forward<float>(const NetConfig&, const ParamView<const float>&,
                                     const float*, index_t, float*, float*);
template void opening_forward<double>(const NetConfig&, const ParamView<const double>&,
                                      const double*, index_t, double*, double*);
template void opening_backward<float>(const NetConfig&, const ParamView<const float>&,
                                      const float*, index_t, float*, const float*,
                                      const ParamView<float>&, float*);
template void opening_backward<double>(const NetConfig&, const ParamView<const double>&,
                                       const double*, index_t, double*, const double*,
                                       const ParamView<double>&, double*);

}  // namespace layerparallel

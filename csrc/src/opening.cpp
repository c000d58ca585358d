// Opening layer u_0 = sigma(W_in y + b_in), its linear variant W_in y + b_in,
// and zero-padding of y to the network width (no parameters).
#include <algorithm>

#include "layerparallel/blas.hpp"
#include "layerparallel/kernels.hpp"
#include "layerparallel/model.hpp"

namespace layerparallel {

namespace {
void add_column_sums(const double* a, index_t rows, index_t cols, double* out) {
  for (index_t r = 0; r < rows; ++r)
    for (index_t j = 0; j < cols; ++j) out[j] += a[r * cols + j];
}
}  // namespace

void opening_forward(const NetConfig& cfg, const ParamView<const double>& theta, const double* X,
                     index_t n, double* u0, double* z0) {
  const index_t w = cfg.width, d = cfg.n_in;
  if (cfg.opening == Opening::padding) {
    std::fill(u0, u0 + n * w, 0.0);
    for (index_t r = 0; r < n; ++r) std::copy(X + r * d, X + (r + 1) * d, u0 + r * w);
    return;
  }
  blas::gemm(false, true, n, w, d, 1.0, X, d, theta.W_in(), d, 0.0, z0, w);
  if (cfg.opening == Opening::linear) {
    const double* b = theta.b_in();
    for (index_t r = 0; r < n; ++r)
      for (index_t j = 0; j < w; ++j) u0[r * w + j] = z0[r * w + j] + b[j];
    return;
  }
  with_activation(cfg.activation, cfg.eta, [&](auto act) {
    launch_cpu(n, w, BiasActivationKernel<decltype(act)>{act, w, theta.b_in(), z0, u0});
  });
}

void opening_backward(const NetConfig& cfg, const ParamView<const double>& theta, const double* X,
                      index_t n, double* z0, const double* lam0, const ParamView<double>& grad,
                      double* dX) {
  const index_t w = cfg.width, d = cfg.n_in;
  if (cfg.opening == Opening::padding) {
    if (dX)
      for (index_t r = 0; r < n; ++r) std::copy(lam0 + r * w, lam0 + r * w + d, dX + r * d);
    return;
  }
  const double* factor = lam0;
  if (cfg.opening == Opening::activation) {
    with_activation(cfg.activation, cfg.eta, [&](auto act) {
      launch_cpu(n, w, AdjointScaleKernel<decltype(act), false>{act, w, nullptr, lam0, z0});
    });
    factor = z0;
  }
  blas::gemm(true, false, w, d, n, 1.0, factor, w, X, d, 0.0, grad.W_in(), d);
  std::fill(grad.b_in(), grad.b_in() + w, 0.0);
  add_column_sums(factor, n, w, grad.b_in());
  if (dX) blas::gemm(false, false, n, d, w, 1.0, factor, w, theta.W_in(), d, 0.0, dX, d);
}

}  // namespace layerparallel

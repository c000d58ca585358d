#include "layerparallel/layer.hpp"

#include <algorithm>

#include "layerparallel/blas.hpp"
#include "layerparallel/kernels.hpp"

namespace layerparallel {

void layer_forward(const NetConfig& cfg, const double* W, const double* b, double h,
                   const double* u, index_t batch, double* u_next, double* z) {
  const index_t w = cfg.width;
  blas::gemm(false, true, batch, w, w, 1.0, u, w, W, w, 0.0, z, w);  // z = u W^T
  with_activation(cfg.activation, cfg.eta, [&](auto act) {
    launch_cpu(batch, w, StepKernel<decltype(act)>{act, h, w, b, u, z, u_next});
  });
}

void layer_adjoint(const NetConfig& cfg, const double* W, const double* b, double h,
                   const double* u, const double* lam_next, index_t batch, double* lam,
                   double* work, bool z_known) {
  const index_t w = cfg.width;
  if (!z_known) blas::gemm(false, true, batch, w, w, 1.0, u, w, W, w, 0.0, work, w);
  with_activation(cfg.activation, cfg.eta, [&](auto act) {
    using A = decltype(act);
    if (z_known)
      launch_cpu(batch, w, AdjointScaleKernel<A, false>{act, w, b, lam_next, work});
    else
      launch_cpu(batch, w, AdjointScaleKernel<A, true>{act, w, b, lam_next, work});
  });
  if (lam != lam_next) std::copy(lam_next, lam_next + batch * w, lam);
  blas::gemm(false, false, batch, w, w, h, work, w, W, w, 1.0, lam, w);  // lam += h d W
}

void layer_gradient(const NetConfig& cfg, double h, const double* u, const double* d,
                    index_t batch, double* gW, double* gb) {
  const index_t w = cfg.width;
  blas::gemm(true, false, w, w, batch, h, d, w, u, w, 0.0, gW, w);  // gW = h d^T u
  std::fill(gb, gb + w, 0.0);
  for (index_t r = 0; r < batch; ++r) {
    const double* row = d + r * w;
    for (index_t j = 0; j < w; ++j) gb[j] += row[j];
  }
  for (index_t j = 0; j < w; ++j) gb[j] *= h;
}

}  // namespace layerparallel

// One residual layer u_{n+1} = u_n + h sigma(W_n u_n + b_n) on a batch:
// its forward step, its adjoint step and its weight gradient.
// States are row-major (batch x width). Step size h is an argument because
// coarse MGRIT levels step with h c^l.
#pragma once

#include "network.hpp"

namespace layerparallel {

// Work of one product with the layer's weights on one row (2 w^2) plus its
// element-wise pass: the unit in which callers size their parallel blocks.
inline double row_product_flops(index_t width) {
  return 2.0 * static_cast<double>(width) * static_cast<double>(width) + 8.0 * width;
}

// u_next = u + h sigma(W u + b). `z` (batch x width) receives the
// pre-activation W u + b, which the adjoint step can reuse.
void layer_forward(const NetConfig& cfg, const double* W, const double* b, double h,
                   const double* u, index_t batch, double* u_next, double* z);

// lam = lam_next + h W^T (sigma'(z) * lam_next), per row. If `z_known` the
// buffer `work` holds z on entry; otherwise z is recomputed from u.
// On exit `work` holds d = sigma'(z) * lam_next, the gradient's factor.
void layer_adjoint(const NetConfig& cfg, const double* W, const double* b, double h,
                   const double* u, const double* lam_next, index_t batch, double* lam,
                   double* work, bool z_known);

// gW = h d^T u, gb = h sum_rows d: layer n's gradient from u_n and d (the
// factor left by layer_adjoint), independent of every other layer.
void layer_gradient(const NetConfig& cfg, double h, const double* u, const double* d,
                    index_t batch, double* gW, double* gb);

// layer_adjoint then layer_gradient on the same rows (lam, work = d, gW and gb
// as the two calls leave them), fused so that d is used while still in cache.
void layer_adjoint_gradient(const NetConfig& cfg, const double* W, const double* b, double h,
                            const double* u, const double* lam_next, index_t batch, double* lam,
                            double* work, bool z_known, double* gW, double* gb);

// D = sigma'(W u + b) (batch x width): the linearization of the layer at u,
// formed once when many adjoint steps (MGRIT) share the same forward state.
void layer_derivative(const NetConfig& cfg, const double* W, const double* b, const double* u,
                      index_t batch, double* D);

// lam = lam_next + h W^T (D * lam_next), per row, from a cached D; leaves
// d = D * lam_next in `work` (the gradient's factor). One product, not two.
void layer_adjoint_linearized(const NetConfig& cfg, const double* W, double h, const double* D,
                              const double* lam_next, index_t batch, double* lam, double* work);

}  // namespace layerparallel

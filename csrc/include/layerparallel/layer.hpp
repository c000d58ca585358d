// One residual layer u_{n+1} = u_n + h sigma(W_n u_n + b_n) on a batch:
// its forward step, its adjoint step and its weight gradient.
// States are row-major (batch x width). Step size h is an argument because
// coarse MGRIT levels step with h c^l. Every operation is a template on the
// scalar T (float or double; explicit instantiations in layer.cpp); h is
// given in double and rounded to T once.
#pragma once

#include <cstdint>

#include "network.hpp"

namespace layerparallel {

// Work of one product with the layer's weights on one row (2 w^2) plus its
// element-wise pass: the unit in which callers size their parallel blocks.
inline double row_product_flops(index_t width) {
  return 2.0 * static_cast<double>(width) * static_cast<double>(width) + 8.0 * width;
}

// u_next = u + h sigma(W u + b). `z` (batch x width) receives the
// pre-activation W u + b, which the adjoint step can reuse.
template <class T>
void layer_forward(const NetConfig& cfg, const T* W, const T* b, double h,
                   const T* u, index_t batch, T* u_next, T* z);

// lam = lam_next + h W^T (sigma'(z) * lam_next), per row. If `z_known` the
// buffer `work` holds z on entry; otherwise z is recomputed from u.
// On exit `work` holds d = sigma'(z) * lam_next, the gradient's factor.
template <class T>
void layer_adjoint(const NetConfig& cfg, const T* W, const T* b, double h,
                   const T* u, const T* lam_next, index_t batch, T* lam,
                   T* work, bool z_known);

// gW = h d^T u, gb = h sum_rows d: layer n's gradient from u_n and d (the
// factor left by layer_adjoint), independent of every other layer.
template <class T>
void layer_gradient(const NetConfig& cfg, double h, const T* u, const T* d,
                    index_t batch, T* gW, T* gb);

// layer_adjoint then layer_gradient on the same rows (lam, work = d, gW and gb
// as the two calls leave them), fused so that d is used while still in cache.
template <class T>
void layer_adjoint_gradient(const NetConfig& cfg, const T* W, const T* b, double h,
                            const T* u, const T* lam_next, index_t batch, T* lam,
                            T* work, bool z_known, T* gW, T* gb);

// Whether a forward may keep the signs of z instead of z for the adjoint:
// ReLU layers (sigma'(z) is z > 0) at a width whose blocked kernel runs
// (use_narrow). The serial sweeps then store one byte per entry, not
// sizeof(T), and the state traffic of a layer falls by about a half.
template <class T>
bool keeps_signs(const NetConfig& cfg);

// layer_forward keeping s = (z > 0) (batch x width bytes) instead of z, and
// layer_adjoint_gradient from those signs (d is not kept). Both throw
// std::logic_error where keeps_signs is false.
template <class T>
void layer_forward_signs(const NetConfig& cfg, const T* W, const T* b, double h, const T* u,
                         index_t batch, T* u_next, std::uint8_t* s);
template <class T>
void layer_adjoint_gradient_signs(const NetConfig& cfg, const T* W, double h, const T* u,
                                  const T* lam_next, index_t batch, T* lam,
                                  const std::uint8_t* s, T* gW, T* gb);

// D = sigma'(W u + b) (batch x width): the linearization of the layer at u,
// formed once when many adjoint steps (MGRIT) share the same forward state.
template <class T>
void layer_derivative(const NetConfig& cfg, const T* W, const T* b, const T* u,
                      index_t batch, T* D);

// lam = lam_next + h W^T (D * lam_next), per row, from a cached D; leaves
// d = D * lam_next in `work` (the gradient's factor). One product, not two.
// work may be null when d is not needed (an MGRIT sweep that forms no
// gradient): the narrow kernels then keep d in registers only.
template <class T>
void layer_adjoint_linearized(const NetConfig& cfg, const T* W, double h, const T* D,
                              const T* lam_next, index_t batch, T* lam, T* work);

}  // namespace layerparallel

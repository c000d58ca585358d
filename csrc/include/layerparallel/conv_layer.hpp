// Convolutions lowered to products (im2col + BLAS GEMM), and the residual
// conv layer u_{n+1} = u_n + h sigma(K_n * u_n + b_n) built from them: its
// forward step, its adjoint step and its kernel/bias gradient. States are
// channels-last blocks of `batch` images (batch, H, W, C), row-major.
#pragma once

#include "conv_network.hpp"

namespace layerparallel {

// A stride-1 "same" convolution from c_in to c_out channels on H x W images.
struct ConvShape {
  index_t height, width, c_in, c_out, kernel;
  index_t pixels() const { return height * width; }
  index_t patch() const { return kernel * kernel * c_in; }
};

// The residual layers' shape (C -> C) and the opening's (C_in -> C).
inline ConvShape layer_shape(const ConvConfig& c) {
  return {c.height, c.width, c.channels, c.channels, c.kernel};
}
inline ConvShape opening_shape(const ConvConfig& c) {
  return {c.height, c.width, c.in_channels, c.channels, c.kernel};
}

// Kp (patch x c_out) with Kp[(i, j, c), o] = K[o, c, i, j], K as (c_out, c_in, k, k):
// the right factor of the lowered product.
void pack_kernel(const ConvShape& s, const double* K, double* Kp);
// The packed kernel of the adjoint convolution (c_out -> c_in channels, the
// kernel transposed in channels and flipped in space), so that the adjoint is
// the same gather-form product as the forward convolution.
void pack_adjoint_kernel(const ConvShape& s, const double* K, double* Kp);

// y += alpha * (K * x) for a block of `batch` images; Kp from pack_kernel (or
// pack_adjoint_kernel with the shape's channels swapped). y must not overlap x.
void conv_accumulate(const ConvShape& s, const double* Kp, double alpha, const double* x,
                     index_t batch, double* y);

// gK = alpha * dJ/dK for y = K * x with dJ/dy = d: gK[o, c, i, j] =
// alpha sum_{b,y,x} d[b, y, x, o] x[b, y+i-p, x+j-p, c] (overwritten).
void conv_kernel_gradient(const ConvShape& s, double alpha, const double* x, const double* d,
                          index_t batch, double* gK);

// ---- the residual layer ------------------------------------------------------

// u_next = u + h sigma(K * u + b); z receives K * u + b. u_next must not be u.
void conv_layer_forward(const ConvConfig& cfg, const double* K, const double* b, double h,
                        const double* u, index_t batch, double* u_next, double* z);

// D = sigma'(K * u + b): the layer's linearization at u.
void conv_layer_derivative(const ConvConfig& cfg, const double* K, const double* b,
                           const double* u, index_t batch, double* D);

// lam = lam_next + h K^T * d with the adjoint factor d = sigma'(z) * lam_next,
// which the caller has formed (conv_adjoint_factor); lam may be lam_next.
void conv_layer_adjoint(const ConvConfig& cfg, const double* K, double h, const double* d,
                        const double* lam_next, index_t batch, double* lam);

// d = D * lam_next elementwise, D = sigma'(z) (or, with `derivative` false, z,
// turned into sigma'(z) on the fly); d may be D.
void conv_adjoint_factor(const ConvConfig& cfg, const double* D, bool derivative,
                         const double* lam_next, index_t batch, double* d);

// gK = h dJ/dK_n, gb = h sum d from u_n and the factor d (overwritten).
void conv_layer_gradient(const ConvConfig& cfg, double h, const double* u, const double* d,
                         index_t batch, double* gK, double* gb);

}  // namespace layerparallel

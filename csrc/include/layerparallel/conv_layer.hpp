// Convolutions lowered to products (im2col + BLAS GEMM), and the residual
// conv layer u_{n+1} = u_n + h sigma(K_n * u_n + b_n) built from them: its
// forward step, its adjoint step and its kernel/bias gradient. States are
// channels-last blocks of `batch` images (batch, H, W, C), row-major. All are
// templates on the scalar T of states and kernels (float or double; explicit
// instantiations in conv_layer.cpp).
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
template <class T>
void pack_kernel(const ConvShape& s, const T* K, T* Kp);
// The packed kernel of the adjoint convolution (c_out -> c_in channels, the
// kernel transposed in channels and flipped in space), so that the adjoint is
// the same gather-form product as the forward convolution.
template <class T>
void pack_adjoint_kernel(const ConvShape& s, const T* K, T* Kp);
// The packed kernel (pack_kernel, or pack_adjoint_kernel when `adjoint`) in
// thread-local scratch, valid until the next call of this thread with the
// same `adjoint`; shared by the im2col and the direct conv paths.
template <class T>
const T* packed_kernel(const ConvShape& s, const T* K, bool adjoint);

// y += alpha * (K * x) for a block of `batch` images; Kp from pack_kernel (or
// pack_adjoint_kernel with the shape's channels swapped). y must not overlap x.
template <class T>
void conv_accumulate(const ConvShape& s, const T* Kp, double alpha, const T* x,
                     index_t batch, T* y);

// gK = alpha * dJ/dK for y = K * x with dJ/dy = d: gK[o, c, i, j] =
// alpha sum_{b,y,x} d[b, y, x, o] x[b, y+i-p, x+j-p, c] (overwritten).
template <class T>
void conv_kernel_gradient(const ConvShape& s, double alpha, const T* x, const T* d,
                          index_t batch, T* gK);

// ---- the residual layer ------------------------------------------------------

// u_next = u + h sigma(K * u + b); z receives K * u + b. u_next must not be u.
template <class T>
void conv_layer_forward(const ConvConfig& cfg, const T* K, const T* b, double h,
                        const T* u, index_t batch, T* u_next, T* z);

// D = sigma'(K * u + b): the layer's linearization at u.
template <class T>
void conv_layer_derivative(const ConvConfig& cfg, const T* K, const T* b,
                           const T* u, index_t batch, T* D);

// lam = lam_next + h K^T * d with the adjoint factor d = sigma'(z) * lam_next,
// which the caller has formed (conv_adjoint_factor); lam may be lam_next.
template <class T>
void conv_layer_adjoint(const ConvConfig& cfg, const T* K, double h, const T* d,
                        const T* lam_next, index_t batch, T* lam);

// d = D * lam_next elementwise, D = sigma'(z) (or, with `derivative` false, z,
// turned into sigma'(z) on the fly); d may be D.
template <class T>
void conv_adjoint_factor(const ConvConfig& cfg, const T* D, bool derivative,
                         const T* lam_next, index_t batch, T* d);

// gK = h dJ/dK_n, gb = h sum d from u_n and the factor d (overwritten).
template <class T>
void conv_layer_gradient(const ConvConfig& cfg, double h, const T* u, const T* d,
                         index_t batch, T* gK, T* gb);

}  // namespace layerparallel

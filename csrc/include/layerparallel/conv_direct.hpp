// Direct 3 x 3 convolution kernels for the residual conv layer at few channels
// (4, 8, 16). Lowered to a product, such a layer is a GEMM with only C columns
// (and the gradient one with C rows), a shape a BLAS runs poorly, and the
// patch matrix costs as much memory traffic as the product does flops. Here
// the channel count is a template parameter and each output pixel's C values
// are computed in registers straight from a zero-padded copy of the image,
// with the bias, the activation and the residual update fused into the same
// pass. Portable C++, no intrinsics (kernel_attributes.hpp).
//
// Whether these or im2col + BLAS run is decided per process, per scalar type
// and channel count, by a short timing of both at first use, under the same
// mode as the dense narrow kernels (LP_NARROW_KERNEL=auto|on|off,
// set_narrow_mode). The lowered product stays the general path.
#pragma once

#include "conv_network.hpp"

namespace layerparallel {

// True when the residual layers of this shape have direct kernels.
bool conv_direct_shape(index_t channels, index_t kernel);

// Whether the residual conv layers of this shape in scalar type T take the
// direct kernels (false for every shape without them): the mode, or under
// `automatic` the cached outcome of one timing of both paths.
template <class T>
bool use_conv_direct(index_t channels, index_t kernel);

// The direct kernels. Each returns false (and does nothing) when
// use_conv_direct says the lowered path runs; arguments and results are those
// of the conv_layer.hpp function of the same name.
template <class T>
bool conv_direct_forward(const ConvConfig& cfg, const T* K, const T* b, double h, const T* u,
                         index_t batch, T* u_next, T* z);
template <class T>
bool conv_direct_derivative(const ConvConfig& cfg, const T* K, const T* b, const T* u,
                            index_t batch, T* D);
template <class T>
bool conv_direct_adjoint(const ConvConfig& cfg, const T* K, double h, const T* d,
                         const T* lam_next, index_t batch, T* lam);
template <class T>
bool conv_direct_gradient(const ConvConfig& cfg, double h, const T* u, const T* d,
                          index_t batch, T* gK, T* gb);

}  // namespace layerparallel

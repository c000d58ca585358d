// Register-blocked residual-layer kernels for widths 32 and 64: the entry
// points kernels_narrow.cpp calls once its selection (the narrow-kernel mode,
// else a timing against the BLAS path) has chosen them. The kernels and why
// they look as they do: kernels_blocked.cpp.
#pragma once

#include <cstdint>

#include "network.hpp"

namespace layerparallel::blocked {

// True for the widths with a blocked kernel (32, 64).
bool covers(index_t w);

// The layer.hpp operations on `rows` rows at a width covers() accepts:
// layer_forward; layer_adjoint with z known (work holds z on entry, d on
// exit), fused with layer_gradient when gW is not null; layer_gradient.
template <class T>
void forward(const NetConfig& cfg, const T* W, const T* b, T h, const T* u, index_t rows,
             T* u_next, T* z);
template <class T>
void adjoint(const NetConfig& cfg, const T* W, T h, const T* u, const T* lam_next, index_t rows,
             T* lam, T* work, T* gW, T* gb);
template <class T>
void gradient(const NetConfig& cfg, T h, const T* u, const T* d, index_t rows, T* gW, T* gb);

// For ReLU (anything else throws std::logic_error): forward keeping the
// signs s = (z > 0) (one byte per entry) instead of z, and the adjoint fused
// with the gradient from those signs (d is not kept).
template <class T>
void forward_signs(const NetConfig& cfg, const T* W, const T* b, T h, const T* u,
                   index_t rows, T* u_next, std::uint8_t* s);
template <class T>
void adjoint_gradient_signs(const NetConfig& cfg, const T* W, T h, const T* u,
                            const T* lam_next, index_t rows, T* lam, const std::uint8_t* s,
                            T* gW, T* gb);

}  // namespace layerparallel::blocked

// Convolutions as products: a chunk of output pixels at a time, its patch
// matrix (pixels x k k c_in, im2col) is formed in a thread-local buffer small
// enough to stay in cache, multiplied by the packed kernel through the BLAS,
// and the element-wise pass of the layer runs on the chunk's result while it
// is still in cache. Channels-last states make each patch row a few
// contiguous copies and the product's result already the state layout.
#include "layerparallel/conv_layer.hpp"

#include <algorithm>
#include <vector>

#include "layerparallel/blas.hpp"
#include "layerparallel/conv_direct.hpp"
#include "layerparallel/kernels.hpp"

namespace layerparallel {

namespace {

// Output pixels per chunk: a patch matrix of about 256 KiB.
template <class T>
index_t chunk_pixels(index_t patch) {
  return std::max<index_t>(64, static_cast<index_t>((256 << 10) / sizeof(T)) / patch);
}

// cols (rows x patch) for the output pixels q0 .. q0 + rows - 1 of a block of
// images x (pixel q = (image, y, x) in row-major order); zero outside.
template <class T>
void im2col(const ConvShape& s, const T* x, index_t q0, index_t rows, T* cols) {
  const index_t H = s.height, W = s.width, C = s.c_in, k = s.kernel, p = k / 2;
  const index_t HW = H * W, patch = s.patch();
  for (index_t r = 0; r < rows; ++r) {
    const index_t q = q0 + r, img = q / HW, yx = q % HW, y = yx / W, xc = yx % W;
    const T* src = x + img * HW * C;
    T* row = cols + r * patch;
    // Kernel columns j with 0 <= xc + j - p < W: one contiguous run per kernel row.
    const index_t j0 = std::max<index_t>(0, p - xc), j1 = std::min<index_t>(k, W + p - xc);
    for (index_t i = 0; i < k; ++i) {
      T* dst = row + i * k * C;
      const index_t yy = y + i - p;
      if (yy < 0 || yy >= H || j1 <= j0) {
        std::fill(dst, dst + k * C, T(0));
        continue;
      }
      std::fill(dst, dst + j0 * C, T(0));
      const T* in = src + (yy * W + xc + j0 - p) * C;
      std::copy(in, in + (j1 - j0) * C, dst + j0 * C);
      std::fill(dst + j1 * C, dst + k * C, T(0));
    }
  }
}

// f(q0, rows, cols) over the block's output pixels in chunks, cols = im2col(x).
template <class T, class F>
void for_patch_chunks(const ConvShape& s, const T* x, index_t batch, F&& f) {
  const index_t n = batch * s.pixels(), patch = s.patch(), chunk = chunk_pixels<T>(patch);
  thread_local std::vector<T> cols;
  cols.resize(static_cast<std::size_t>(std::min(chunk, n) * patch));
  for (index_t q0 = 0; q0 < n; q0 += chunk) {
    const index_t rows = std::min(chunk, n - q0);
    im2col(s, x, q0, rows, cols.data());
    f(q0, rows, cols.data());
  }
}

// z = b + K * u for the rows of one chunk (bias folded into the product).
template <class T>
void affine_chunk(const ConvShape& s, const T* Kp, const T* b, const T* cols,
                  index_t rows, T* z) {
  const index_t C = s.c_out;
  for (index_t r = 0; r < rows; ++r) std::copy(b, b + C, z + r * C);
  blas::gemm(false, false, rows, C, s.patch(), 1.0, cols, s.patch(), Kp, C, 1.0, z, C);
}

}  // namespace

template <class T>
void pack_kernel(const ConvShape& s, const T* K, T* Kp) {
  const index_t k = s.kernel, ci = s.c_in, co = s.c_out;
  for (index_t o = 0; o < co; ++o)
    for (index_t c = 0; c < ci; ++c)
      for (index_t i = 0; i < k; ++i)
        for (index_t j = 0; j < k; ++j)
          Kp[((i * k + j) * ci + c) * co + o] = K[((o * ci + c) * k + i) * k + j];
}

// The adjoint of y = K * x is x' = K' * y' with K'[c, o, i, j] = K[o, c, k-1-i, k-1-j].
template <class T>
void pack_adjoint_kernel(const ConvShape& s, const T* K, T* Kp) {
  const index_t k = s.kernel, ci = s.c_in, co = s.c_out;
  for (index_t o = 0; o < co; ++o)
    for (index_t c = 0; c < ci; ++c)
      for (index_t i = 0; i < k; ++i)
        for (index_t j = 0; j < k; ++j)
          Kp[(((k - 1 - i) * k + (k - 1 - j)) * co + o) * ci + c] =
              K[((o * ci + c) * k + i) * k + j];
}

template <class T>
const T* packed_kernel(const ConvShape& s, const T* K, bool adjoint) {
  thread_local std::vector<T> kp[2];
  auto& buf = kp[adjoint ? 1 : 0];
  buf.resize(static_cast<std::size_t>(s.patch() * s.c_out));
  if (adjoint)
    pack_adjoint_kernel(s, K, buf.data());
  else
    pack_kernel(s, K, buf.data());
  return buf.data();
}

template <class T>
void conv_accumulate(const ConvShape& s, const T* Kp, double alpha, const T* x,
                     index_t batch, T* y) {
  const index_t C = s.c_out, patch = s.patch();
  for_patch_chunks(s, x, batch, [&](index_t q0, index_t rows, const T* cols) {
    blas::gemm(false, false, rows, C, patch, alpha, cols, patch, Kp, C, 1.0, y + q0 * C, C);
  });
}

template <class T>
void conv_kernel_gradient(const ConvShape& s, double alpha, const T* x, const T* d,
                          index_t batch, T* gK) {
  const index_t co = s.c_out, ci = s.c_in, k = s.kernel, patch = s.patch();
  thread_local std::vector<T> G;  // (c_out x patch), columns in (i, j, c) order
  G.assign(static_cast<std::size_t>(co * patch), T(0));
  for_patch_chunks(s, x, batch, [&](index_t q0, index_t rows, const T* cols) {
    blas::gemm(true, false, co, patch, rows, 1.0, d + q0 * co, co, cols, patch, 1.0, G.data(),
               patch);
  });
  for (index_t o = 0; o < co; ++o)
    for (index_t c = 0; c < ci; ++c)
      for (index_t i = 0; i < k; ++i)
        for (index_t j = 0; j < k; ++j)
          gK[((o * ci + c) * k + i) * k + j] = alpha * G[o * patch + (i * k + j) * ci + c];
}

template <class T>
void conv_layer_forward(const ConvConfig& cfg, const T* K, const T* b, double h,
                        const T* u, index_t batch, T* u_next, T* z) {
  if (batch <= 0 || conv_direct_forward(cfg, K, b, h, u, batch, u_next, z)) return;
  const ConvShape s = layer_shape(cfg);
  const index_t C = s.c_out;
  const T* Kp = packed_kernel(s, K, false);
  with_activation(cfg.activation, cfg.eta, [&](auto act) {
    for_patch_chunks(s, u, batch, [&](index_t q0, index_t rows, const T* cols) {
      affine_chunk(s, Kp, b, cols, rows, z + q0 * C);
      step_update(act, h, rows * C, u + q0 * C, z + q0 * C, u_next + q0 * C);
    });
  });
}

template <class T>
void conv_layer_derivative(const ConvConfig& cfg, const T* K, const T* b,
                           const T* u, index_t batch, T* D) {
  if (batch <= 0 || conv_direct_derivative(cfg, K, b, u, batch, D)) return;
  const ConvShape s = layer_shape(cfg);
  const index_t C = s.c_out;
  const T* Kp = packed_kernel(s, K, false);
  with_activation(cfg.activation, cfg.eta, [&](auto act) {
    for_patch_chunks(s, u, batch, [&](index_t q0, index_t rows, const T* cols) {
      affine_chunk(s, Kp, b, cols, rows, D + q0 * C);
      derivative_in_place(act, rows * C, D + q0 * C);
    });
  });
}

template <class T>
void conv_adjoint_factor(const ConvConfig& cfg, const T* D, bool derivative,
                         const T* lam_next, index_t batch, T* d) {
  const index_t n = batch * cfg.state_size();
  if (derivative) {
    scale_by(n, D, lam_next, d);
    return;
  }
  if (d != D) std::copy(D, D + n, d);
  with_activation(cfg.activation, cfg.eta,
                  [&](auto act) { adjoint_scale(act, n, lam_next, d); });
}

template <class T>
void conv_layer_adjoint(const ConvConfig& cfg, const T* K, double h, const T* d,
                        const T* lam_next, index_t batch, T* lam) {
  if (batch <= 0 || conv_direct_adjoint(cfg, K, h, d, lam_next, batch, lam)) return;
  const ConvShape s = layer_shape(cfg);
  if (lam != lam_next) std::copy(lam_next, lam_next + batch * cfg.state_size(), lam);
  conv_accumulate(s, packed_kernel(s, K, true), h, d, batch, lam);
}

template <class T>
void conv_layer_gradient(const ConvConfig& cfg, double h, const T* u, const T* d,
                         index_t batch, T* gK, T* gb) {
  const ConvShape s = layer_shape(cfg);
  if (batch <= 0) {
    std::fill(gK, gK + s.c_out * s.patch(), T(0));
    std::fill(gb, gb + s.c_out, T(0));
    return;
  }
  if (conv_direct_gradient(cfg, h, u, d, batch, gK, gb)) return;
  conv_kernel_gradient(s, h, u, d, batch, gK);
  column_sums(d, batch * s.pixels(), s.c_out, h, gb);
}

#define LP_CONV_LAYER_INSTANTIATE(T)                                                          \
  template void pack_kernel<T>(const ConvShape&, const T*, T*);                               \
  template void pack_adjoint_kernel<T>(const ConvShape&, const T*, T*);                       \
  template const T* packed_kernel<T>(const ConvShape&, const T*, bool);                       \
  template void conv_accumulate<T>(const ConvShape&, const T*, double, const T*, index_t, T*); \
  template void conv_kernel_gradient<T>(const ConvShape&, double, const T*, const T*, index_t, \
                                        T*);                                                  \
  template void conv_layer_forward<T>(const ConvConfig&, const T*, const T*, double, const T*, \
                                      index_t, T*, T*);                                       \
  template void conv_layer_derivative<T>(const ConvConfig&, const T*, const T*, const T*,     \
                                         index_t, T*);                                        \
  template void conv_layer_adjoint<T>(const ConvConfig&, const T*, double, const T*,          \
                                      const T*, index_t, T*);                                 \
  template void conv_adjoint_factor<T>(const ConvConfig&, const T*, bool, const T*, index_t,  \
                                       T*);                                                   \
  template void conv_layer_gradient<T>(const ConvConfig&, double, const T*, const T*, index_t, \
                                       T*, T*);
LP_CONV_LAYER_INSTANTIATE(float)
LP_CONV_LAYER_INSTANTIATE(double)
#undef LP_CONV_LAYER_INSTANTIATE

}  // namespace layerparallel

// One residual layer on a batch: forward step, adjoint step, weight gradient.
//
// The dense products go through the BLAS; the element-wise passes run on
// chunks of rows small enough for OpenBLAS's small-matrix kernels (no packing
// of the batch operand) and for the chunk's z to stay in cache between the
// product and the pass that follows it. Chunk sizes come from the cache sizes
// of the machine the code runs on (cache_bytes), not from one processor's tuning.
#include "layerparallel/layer.hpp"

#include <algorithm>
#include <stdexcept>
#include <vector>

#include "layerparallel/blas.hpp"
#include "layerparallel/kernels.hpp"
#include "layerparallel/kernels_blocked.hpp"
#include "layerparallel/kernels_narrow.hpp"
#include "layerparallel/parallel.hpp"

namespace layerparallel {

namespace {

// Narrow layers are those whose weight matrix takes at most a quarter of the
// level-2 cache (w <= 128 with 512 KiB): their products run on chunks of rows
// and on a transposed copy of W. Wide layers go to the BLAS whole, where its
// packed kernels are faster and chunks only add calls.
template <class T>
bool narrow(index_t w) {
  return 4 * w * w * static_cast<index_t>(sizeof(T)) <= cache_bytes(2);
}

// Rows per BLAS call for narrow layers: the chunk's u, z and u_next (3 rows x
// w entries each) fill at most half the level-2 cache, so the element-wise pass
// after the product finds z still in cache; at least 16 rows.
template <class T>
index_t chunk_rows(index_t w, index_t batch) {
  if (!narrow<T>(w)) return batch;
  const index_t fit = cache_bytes(2) / 2 / (3 * w * static_cast<index_t>(sizeof(T)));
  const index_t c = std::max<index_t>(16, fit / 8 * 8);
  return std::min(c, batch);
}

// f(rows, offset) over the batch in chunk_rows-sized pieces.
template <class T, class F>
void for_chunks(index_t w, index_t batch, F&& f) {
  const index_t chunk = chunk_rows<T>(w, batch);
  for (index_t r0 = 0; r0 < batch; r0 += chunk) f(std::min(chunk, batch - r0), r0 * w);
}

// z = b (each row) + u W^T for `rows` rows; with `wt` = W^T the product is the
// plain NN form, which OpenBLAS runs much faster than NT for narrow layers.
template <class T>
void affine(index_t w, const T* W, const T* wt, const T* b, const T* u, index_t rows, T* z) {
  for (index_t r = 0; r < rows; ++r) std::copy(b, b + w, z + r * w);
  if (wt)
    blas::gemm(false, false, rows, w, w, 1.0, u, w, wt, w, 1.0, z, w);
  else
    blas::gemm(false, true, rows, w, w, 1.0, u, w, W, w, 1.0, z, w);
}

// W^T in thread-local scratch for narrow layers (see affine), else null.
template <class T>
const T* transposed(index_t w, const T* W) {
  if (!narrow<T>(w)) return nullptr;
  thread_local std::vector<T> wt;
  wt.resize(w * w);
  blas::transpose(w, w, W, w, wt.data());
  return wt.data();
}

}  // namespace

template <class T>
void layer_forward(const NetConfig& cfg, const T* W, const T* b, double h,
                   const T* u, index_t batch, T* u_next, T* z) {
  const index_t w = cfg.width;
  if (batch <= 0 || narrow_forward<T>(cfg, W, b, h, u, batch, u_next, z)) return;
  const T* wt = transposed(w, W);
  with_activation(cfg.activation, cfg.eta, [&](auto act) {
    for_chunks<T>(w, batch, [&](index_t rows, index_t off) {
      affine(w, W, wt, b, u + off, rows, z + off);
      step_update(act, h, rows * w, u + off, z + off, u_next + off);
    });
  });
}

template <class T>
void layer_adjoint(const NetConfig& cfg, const T* W, const T* b, double h,
                   const T* u, const T* lam_next, index_t batch, T* lam,
                   T* work, bool z_known) {
  const index_t w = cfg.width;
  if (batch <= 0 || narrow_adjoint<T>(cfg, W, b, h, u, lam_next, batch, lam, work, z_known))
    return;
  const T* wt = z_known ? nullptr : transposed(w, W);
  with_activation(cfg.activation, cfg.eta, [&](auto act) {
    for_chunks<T>(w, batch, [&](index_t rows, index_t off) {
      if (!z_known) affine(w, W, wt, b, u + off, rows, work + off);
      adjoint_scale(act, rows * w, lam_next + off, work + off);
      if (lam != lam_next) std::copy(lam_next + off, lam_next + off + rows * w, lam + off);
      blas::gemm(false, false, rows, w, w, h, work + off, w, W, w, 1.0, lam + off, w);
    });
  });
}

template <class T>
void layer_gradient(const NetConfig& cfg, double h, const T* u, const T* d,
                    index_t batch, T* gW, T* gb) {
  const index_t w = cfg.width;
  if (batch <= 0) {
    std::fill(gW, gW + w * w, T(0));
    std::fill(gb, gb + w, T(0));
    return;
  }
  if (narrow_gradient<T>(cfg, h, u, d, batch, gW, gb)) return;
  for_chunks<T>(w, batch, [&](index_t rows, index_t off) {
    blas::gemm(true, false, w, w, rows, h, d + off, w, u + off, w, off == 0 ? 0.0 : 1.0, gW, w);
  });
  column_sums(d, batch, w, h, gb);
}

template <class T>
void layer_adjoint_gradient(const NetConfig& cfg, const T* W, const T* b, double h,
                            const T* u, const T* lam_next, index_t batch, T* lam,
                            T* work, bool z_known, T* gW, T* gb) {
  if (batch > 0 && narrow_adjoint_gradient<T>(cfg, W, b, h, u, lam_next, batch, lam, work,
                                              z_known, gW, gb))
    return;
  layer_adjoint(cfg, W, b, h, u, lam_next, batch, lam, work, z_known);
  layer_gradient(cfg, h, u, work, batch, gW, gb);
}

template <class T>
bool keeps_signs(const NetConfig& cfg) {
  return cfg.activation == Activation::relu && blocked::covers(cfg.width) &&
         use_narrow<T>(cfg.width);
}

template <class T>
void layer_forward_signs(const NetConfig& cfg, const T* W, const T* b, double h, const T* u,
                         index_t batch, T* u_next, std::uint8_t* s) {
  if (!keeps_signs<T>(cfg))
    throw std::logic_error("layer_forward_signs: this layer keeps z, not its signs");
  if (batch > 0) blocked::forward_signs(cfg, W, b, static_cast<T>(h), u, batch, u_next, s);
}

template <class T>
void layer_adjoint_gradient_signs(const NetConfig& cfg, const T* W, double h, const T* u,
                                  const T* lam_next, index_t batch, T* lam,
                                  const std::uint8_t* s, T* gW, T* gb) {
  if (!keeps_signs<T>(cfg))
    throw std::logic_error("layer_adjoint_gradient_signs: this layer keeps z, not its signs");
  const index_t w = cfg.width;
  if (batch <= 0) {
    std::fill(gW, gW + w * w, T(0));
    std::fill(gb, gb + w, T(0));
    return;
  }
  blocked::adjoint_gradient_signs(cfg, W, static_cast<T>(h), u, lam_next, batch, lam, s, gW, gb);
}

template <class T>
void layer_derivative(const NetConfig& cfg, const T* W, const T* b, const T* u,
                      index_t batch, T* D) {
  const index_t w = cfg.width;
  if (batch <= 0 || narrow_derivative<T>(cfg, W, b, u, batch, D)) return;
  const T* wt = transposed(w, W);
  with_activation(cfg.activation, cfg.eta, [&](auto act) {
    for_chunks<T>(w, batch, [&](index_t rows, index_t off) {
      affine(w, W, wt, b, u + off, rows, D + off);
      derivative_in_place(act, rows * w, D + off);
    });
  });
}

template <class T>
void layer_adjoint_linearized(const NetConfig& cfg, const T* W, double h, const T* D,
                              const T* lam_next, index_t batch, T* lam, T* work) {
  const index_t w = cfg.width;
  if (batch <= 0 || narrow_adjoint_linearized<T>(cfg, W, h, D, lam_next, batch, lam, work))
    return;
  thread_local std::vector<T> scratch;  // d, when the caller keeps none
  for_chunks<T>(w, batch, [&](index_t rows, index_t off) {
    T* d = work ? work + off : nullptr;
    if (!d) {
      if (static_cast<index_t>(scratch.size()) < rows * w) scratch.resize(rows * w);
      d = scratch.data();
    }
    scale_by(rows * w, D + off, lam_next + off, d);
    if (lam != lam_next) std::copy(lam_next + off, lam_next + off + rows * w, lam + off);
    blas::gemm(false, false, rows, w, w, h, d, w, W, w, 1.0, lam + off, w);
  });
}

#define LP_LAYER_INSTANTIATE(T)                                                              \
  template void layer_forward<T>(const NetConfig&, const T*, const T*, double, const T*,      \
                                 index_t, T*, T*);                                            \
  template void layer_adjoint<T>(const NetConfig&, const T*, const T*, double, const T*,      \
                                 const T*, index_t, T*, T*, bool);                            \
  template void layer_gradient<T>(const NetConfig&, double, const T*, const T*, index_t, T*, \
                                  T*);                                                        \
  template void layer_adjoint_gradient<T>(const NetConfig&, const T*, const T*, double,      \
                                          const T*, const T*, index_t, T*, T*, bool, T*, T*); \
  template bool keeps_signs<T>(const NetConfig&);                                            \
  template void layer_forward_signs<T>(const NetConfig&, const T*, const T*, double, const T*, \
                                       index_t, T*, std::uint8_t*);                           \
  template void layer_adjoint_gradient_signs<T>(const NetConfig&, const T*, double, const T*, \
                                                const T*, index_t, T*, const std::uint8_t*,   \
                                                T*, T*);                                      \
  template void layer_derivative<T>(const NetConfig&, const T*, const T*, const T*, index_t,  \
                                    T*);                                                      \
  template void layer_adjoint_linearized<T>(const NetConfig&, const T*, double, const T*,    \
                                            const T*, index_t, T*, T*);
LP_LAYER_INSTANTIATE(float)
LP_LAYER_INSTANTIATE(double)
#undef LP_LAYER_INSTANTIATE

}  // namespace layerparallel

// One residual layer on a batch: forward step, adjoint step, weight gradient.
//
// Two implementations of the same contracts (layer.hpp):
//  * AVX-512 kernels for narrow layers (1 <= width <= 128) on CPUs that have
//    AVX-512 (checked at run time; the functions carry per-function target
//    attributes, so the rest of the build stays portable). There the dense
//    products are small enough that a GEMM library spends much of its time
//    packing operands, and the element-wise work after each product costs
//    another pass over memory; these kernels compute the product in registers
//    straight from the row-major operands and apply bias, activation and
//    residual update while the tile is still in L1. LAYERPARALLEL_KERNELS=blas
//    in the environment turns them off.
//  * BLAS (OpenBLAS) products with the element-wise passes chunked to stay in
//    cache: every other CPU and every wider layer.
#include "layerparallel/layer.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "layerparallel/blas.hpp"
#include "layerparallel/kernels.hpp"

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__)) && \
    !defined(LP_NO_AVX512)
#define LP_AVX512_KERNELS 1
#include <immintrin.h>
#define LP_AVX512 __attribute__((target("avx512f,avx512dq,avx2,fma")))
#endif

namespace layerparallel {

// ============================ BLAS path ======================================
namespace {

// Rows per BLAS call. For narrow layers the batch is cut into chunks small
// enough for OpenBLAS's small-matrix kernels (no packing of the batch operand;
// m*n*k <= 100^3 on x86-64) and for the chunk's z to stay in L1/L2 between the
// GEMM and the element-wise pass that follows it. Wide layers are run whole:
// there the packed kernels are faster and chunking only adds calls.
index_t blas_chunk_rows(index_t w, index_t batch) {
  if (w > 128) return batch;
  const index_t c = std::max<index_t>(16, 1000000 / (w * w) / 8 * 8);
  return std::min(c, batch);
}

// z = b (each row) + u W^T for `rows` rows. For narrow layers W^T is formed
// once (thread-local scratch) so the product is a plain NN GEMM, which
// OpenBLAS's small kernels handle much faster than the NT form; `wt` is then
// W^T, else null.
void affine(index_t w, const double* W, const double* wt, const double* b, const double* u,
            index_t rows, double* z) {
  for (index_t r = 0; r < rows; ++r) std::copy(b, b + w, z + r * w);
  if (wt)
    blas::gemm(false, false, rows, w, w, 1.0, u, w, wt, w, 1.0, z, w);
  else
    blas::gemm(false, true, rows, w, w, 1.0, u, w, W, w, 1.0, z, w);
}

// W^T in thread-local scratch when the NN form pays (see affine), else null.
const double* blas_transposed(index_t w, const double* W) {
  if (w > 128) return nullptr;
  thread_local std::vector<double> wt;
  wt.resize(w * w);
  double* t = wt.data();
  for (index_t i = 0; i < w; ++i)
    for (index_t j = 0; j < w; ++j) t[j * w + i] = W[i * w + j];
  return t;
}

}  // namespace

// ============================ AVX-512 path ===================================
//
// Register tiles: MR rows x NV vectors of 8 doubles (NV <= 4, MR*NV <= 24
// accumulators). The k loop runs over the full width in order, one FMA per
// term, so every output element is summed the same way whatever the batch
// size, row block or thread count. The last vector of a tile may be partial
// (width not a multiple of 8): it is loaded and stored under a mask.
namespace {
namespace avx512 {

constexpr index_t kMaxWidth = 128;

#ifndef LP_AVX512_KERNELS

bool usable(index_t) { return false; }
void forward(const NetConfig&, const double*, const double*, double, const double*, index_t,
             double*, double*) {}
void adjoint(const NetConfig&, const double*, const double*, double, const double*,
             const double*, index_t, double*, double*, bool) {}
void gradient(const NetConfig&, double, const double*, const double*, index_t, double*,
              double*) {}
void adjoint_gradient(const NetConfig&, const double*, const double*, double, const double*,
                      const double*, index_t, double*, double*, bool, double*, double*) {}

#else

bool cpu_ok() {
  static const bool ok = [] {
    const char* env = std::getenv("LAYERPARALLEL_KERNELS");
    if (env && std::strcmp(env, "blas") == 0) return false;
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
  }();
  return ok;
}

// Mask of the valid lanes of vector v in a tile of nv vectors whose last
// vector holds `tail` (1..8) lanes.
inline __mmask8 lane_mask(int v, int nv, int tail) {
  return v == nv - 1 ? static_cast<__mmask8>((1u << tail) - 1u) : static_cast<__mmask8>(0xFF);
}

// ---- the register tile: acc[i][v] (+)= sum_k a[i, k] * B[k, j0 + 8v ...] ----
//
// a is row-major with row stride lda (the tile's MR rows), B row-major with row
// stride ldb, already offset to column j0. Init: from `c0` rows (stride ldc0,
// broadcast when ldc0 == 0), or zero when c0 is null.
enum class Store { plain, axpy };  // plain: c = acc; axpy: c = y + alpha * acc

template <int MR, int NV, Store S>
LP_AVX512 inline void tile(index_t K, const double* a, index_t lda, const double* B, index_t ldb,
                           const double* c0, index_t ldc0, double* c, index_t ldc,
                           const double* y, double alpha, int tail) {
  __m512d acc[MR][NV];
  __mmask8 m[NV];
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v) m[v] = lane_mask(v, NV, tail);
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v)
      acc[i][v] = c0 ? _mm512_maskz_loadu_pd(m[v], c0 + i * ldc0 + 8 * v) : _mm512_setzero_pd();
  for (index_t k = 0; k < K; ++k) {
    __m512d bk[NV];
    const double* Bk = B + k * ldb;
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) bk[v] = _mm512_maskz_loadu_pd(m[v], Bk + 8 * v);
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      const __m512d ai = _mm512_set1_pd(a[i * lda + k]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_fmadd_pd(ai, bk[v], acc[i][v]);
    }
  }
  const __m512d al = _mm512_set1_pd(alpha);
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      __m512d r = acc[i][v];
      if (S == Store::axpy)
        r = _mm512_fmadd_pd(al, r, _mm512_maskz_loadu_pd(m[v], y + i * ldc + 8 * v));
      _mm512_mask_storeu_pd(c + i * ldc + 8 * v, m[v], r);
    }
}

// Rows per register tile for NV vectors: MR*NV <= 24 accumulators.
constexpr int rows_for(int nv) { return nv == 4 ? 6 : 8; }

// Runs the tile over `rows` rows (any count) for one column panel of nv vectors.
template <int NV, Store S>
LP_AVX512 void panel_rows(index_t rows, index_t K, const double* a, index_t lda, const double* B,
                          index_t ldb, const double* c0, index_t ldc0, double* c, index_t ldc,
                          const double* y, double alpha, int tail) {
  constexpr int MR = rows_for(NV);
  index_t r = 0;
  for (; r + MR <= rows; r += MR)
    tile<MR, NV, S>(K, a + r * lda, lda, B, ldb, c0 ? c0 + r * ldc0 : nullptr, ldc0,
                    c + r * ldc, ldc, y ? y + r * ldc : nullptr, alpha, tail);
  const index_t rest = rows - r;
  if (rest == 0) return;
  const double* a_ = a + r * lda;
  const double* c0_ = c0 ? c0 + r * ldc0 : nullptr;
  double* c_ = c + r * ldc;
  const double* y_ = y ? y + r * ldc : nullptr;
  switch (rest) {
#define LP_CASE(n) \
  case n: return tile<(n < MR ? n : 1), NV, S>(K, a_, lda, B, ldb, c0_, ldc0, c_, ldc, y_, alpha, tail);
    LP_CASE(1) LP_CASE(2) LP_CASE(3) LP_CASE(4) LP_CASE(5) LP_CASE(6) LP_CASE(7)
#undef LP_CASE
    default: return;
  }
}

// C[rows x n] (=|+=) a[rows x K] B[K x n] over all column panels of up to 4
// vectors (see tile for c0 / y / alpha).
template <Store S>
LP_AVX512 void product(index_t rows, index_t n, index_t K, const double* a, index_t lda,
                       const double* B, index_t ldb, const double* c0, index_t ldc0, double* c,
                       index_t ldc, const double* y, double alpha) {
  for (index_t j0 = 0; j0 < n; j0 += 32) {
    const index_t cols = std::min<index_t>(32, n - j0);
    const int nv = static_cast<int>((cols + 7) / 8);
    const int tail = static_cast<int>(cols - 8 * (nv - 1));
    const double* c0j = c0 ? c0 + j0 : nullptr;
    const double* yj = y ? y + j0 : nullptr;
    switch (nv) {
      case 1: panel_rows<1, S>(rows, K, a, lda, B + j0, ldb, c0j, ldc0, c + j0, ldc, yj, alpha, tail); break;
      case 2: panel_rows<2, S>(rows, K, a, lda, B + j0, ldb, c0j, ldc0, c + j0, ldc, yj, alpha, tail); break;
      case 3: panel_rows<3, S>(rows, K, a, lda, B + j0, ldb, c0j, ldc0, c + j0, ldc, yj, alpha, tail); break;
      default: panel_rows<4, S>(rows, K, a, lda, B + j0, ldb, c0j, ldc0, c + j0, ldc, yj, alpha, tail); break;
    }
  }
}

// Rows per chunk: the chunk's operands stay in L1/L2 between the product and
// the element-wise pass that follows it.
// Rows per chunk of the forward and adjoint passes: the chunk's operands stay
// in L1/L2 between the product and the element-wise pass that follows it.
index_t chunk_rows(index_t w) { return std::max<index_t>(24, (8192 / w) / 24 * 24); }

// Rows per chunk of the fused adjoint + gradient pass (d, u and the chunk's
// part of lam within L2), and rows per pass of the gradient tiles (the chunk
// of d and u within L1 while every tile of gW runs over it).
index_t fused_chunk_rows(index_t w) { return std::max<index_t>(24, (6144 / w) / 24 * 24); }
index_t gradient_chunk_rows(index_t w) { return std::max<index_t>(8, 2048 / w); }

// W^T in thread-local scratch (the forward product reads W by columns).
const double* transposed(index_t w, const double* W) {
  thread_local std::vector<double> wt;
  if (static_cast<index_t>(wt.size()) < w * w) wt.resize(w * w);
  double* t = wt.data();
  for (index_t i = 0; i < w; ++i)
    for (index_t j = 0; j < w; ++j) t[j * w + i] = W[i * w + j];
  return t;
}

template <class Act>
LP_AVX512 void forward_impl(const Act act, index_t w, const double* wt, const double* b, double h,
                            const double* u, index_t batch, double* u_next, double* z) {
  const index_t chunk = chunk_rows(w);
  for (index_t r0 = 0; r0 < batch; r0 += chunk) {
    const index_t rows = std::min(chunk, batch - r0), off = r0 * w, n = rows * w;
    // z = b + u W^T
    product<Store::plain>(rows, w, w, u + off, w, wt, w, b, 0, z + off, w, nullptr, 0.0);
    const double* __restrict zr = z + off;
    if (u == u_next) {
      double* __restrict ur = u_next + off;
      for (index_t i = 0; i < n; ++i) ur[i] += h * act.value(zr[i]);
    } else {
      const double* __restrict ur = u + off;
      double* __restrict nr = u_next + off;
      for (index_t i = 0; i < n; ++i) nr[i] = ur[i] + h * act.value(zr[i]);
    }
  }
}

template <class Act>
LP_AVX512 void adjoint_impl(const Act act, index_t w, const double* W, const double* wt,
                            const double* b, double h, const double* u, const double* lam_next,
                            index_t batch, double* lam, double* work) {
  const index_t chunk = chunk_rows(w);
  for (index_t r0 = 0; r0 < batch; r0 += chunk) {
    const index_t rows = std::min(chunk, batch - r0), off = r0 * w, n = rows * w;
    if (wt)  // z was not kept: work = b + u W^T
      product<Store::plain>(rows, w, w, u + off, w, wt, w, b, 0, work + off, w, nullptr, 0.0);
    {
      const double* __restrict lr = lam_next + off;
      double* __restrict dr = work + off;
      for (index_t i = 0; i < n; ++i) dr[i] = act.derivative(dr[i]) * lr[i];
    }
    // lam = lam_next + h d W (lam may be lam_next)
    product<Store::axpy>(rows, w, w, work + off, w, W, w, nullptr, 0, lam + off, w,
                         lam_next + off, h);
  }
}

// gW (+)= d^T u over `rows` rows: gW[i, j] = sum_r d[r, i] u[r, j]. Tiles of
// MR rows of gW (broadcasts of d) by NV vectors of u; acc starts at zero for
// the first chunk, else from gW.
template <int MR, int NV>
LP_AVX512 inline void grad_tile(index_t rows, index_t w, const double* d, const double* u,
                                double* g, bool first, int tail) {
  __m512d acc[MR][NV];
  __mmask8 m[NV];
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v) m[v] = lane_mask(v, NV, tail);
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v)
      acc[i][v] = first ? _mm512_setzero_pd() : _mm512_maskz_loadu_pd(m[v], g + i * w + 8 * v);
  for (index_t r = 0; r < rows; ++r) {
    __m512d ur[NV];
    const double* urow = u + r * w;
    const double* drow = d + r * w;
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) ur[v] = _mm512_maskz_loadu_pd(m[v], urow + 8 * v);
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      const __m512d di = _mm512_set1_pd(drow[i]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_fmadd_pd(di, ur[v], acc[i][v]);
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) _mm512_mask_storeu_pd(g + i * w + 8 * v, m[v], acc[i][v]);
}

template <int NV>
LP_AVX512 void grad_panel(index_t rows, index_t w, const double* d, const double* u, double* g,
                          bool first, int tail) {
  constexpr int MR = rows_for(NV);
  index_t i0 = 0;
  for (; i0 + MR <= w; i0 += MR) grad_tile<MR, NV>(rows, w, d + i0, u, g + i0 * w, first, tail);
  const index_t rest = w - i0;
  const double* d_ = d + i0;
  double* g_ = g + i0 * w;
  switch (rest) {
#define LP_CASE(n) \
  case n: return grad_tile<(n < MR ? n : 1), NV>(rows, w, d_, u, g_, first, tail);
    LP_CASE(1) LP_CASE(2) LP_CASE(3) LP_CASE(4) LP_CASE(5) LP_CASE(6) LP_CASE(7)
#undef LP_CASE
    default: return;
  }
}

// gW (+)= d^T u and gb (+)= sum_rows d over `batch` rows (unscaled; `first`
// starts the sums from zero).
LP_AVX512 void gradient_rows(index_t w, const double* u, const double* d, index_t batch,
                             double* gW, double* gb, bool first) {
  const index_t chunk = gradient_chunk_rows(w);
  double* __restrict sb = gb;
  if (first)
    for (index_t j = 0; j < w; ++j) sb[j] = 0.0;
  for (index_t r0 = 0; r0 < batch; r0 += chunk) {
    const index_t rows = std::min(chunk, batch - r0), off = r0 * w;
    const bool zero = first && r0 == 0;
    for (index_t j0 = 0; j0 < w; j0 += 32) {
      const index_t cols = std::min<index_t>(32, w - j0);
      const int nv = static_cast<int>((cols + 7) / 8);
      const int tail = static_cast<int>(cols - 8 * (nv - 1));
      const double* uj = u + off + j0;
      double* gj = gW + j0;
      switch (nv) {
        case 1: grad_panel<1>(rows, w, d + off, uj, gj, zero, tail); break;
        case 2: grad_panel<2>(rows, w, d + off, uj, gj, zero, tail); break;
        case 3: grad_panel<3>(rows, w, d + off, uj, gj, zero, tail); break;
        default: grad_panel<4>(rows, w, d + off, uj, gj, zero, tail); break;
      }
    }
    for (index_t r = 0; r < rows; ++r) {
      const double* __restrict dr = d + off + r * w;
      for (index_t j = 0; j < w; ++j) sb[j] += dr[j];
    }
  }
}

LP_AVX512 void scale_gradient(index_t w, double h, double* gW, double* gb) {
  double* __restrict g = gW;
  for (index_t i = 0; i < w * w; ++i) g[i] *= h;
  double* __restrict sb = gb;
  for (index_t j = 0; j < w; ++j) sb[j] *= h;
}

// layer_adjoint followed by layer_gradient on the same rows, chunk by chunk
// while the chunk's d is in L1: d = sigma'(z) lam_next (into work),
// lam = lam_next + h d W, gW = h d^T u, gb = h sum_rows d.
template <class Act>
LP_AVX512 void adjoint_gradient_impl(const Act act, index_t w, const double* W, const double* wt,
                                     const double* b, double h, const double* u,
                                     const double* lam_next, index_t batch, double* lam,
                                     double* work, double* gW, double* gb) {
  const index_t chunk = fused_chunk_rows(w);
  double* __restrict sb = gb;
  for (index_t j = 0; j < w; ++j) sb[j] = 0.0;
  for (index_t r0 = 0; r0 < batch; r0 += chunk) {
    const index_t rows = std::min(chunk, batch - r0), off = r0 * w, n = rows * w;
    if (wt)
      product<Store::plain>(rows, w, w, u + off, w, wt, w, b, 0, work + off, w, nullptr, 0.0);
    {
      const double* __restrict lr = lam_next + off;
      double* __restrict dr = work + off;
      for (index_t i = 0; i < n; ++i) dr[i] = act.derivative(dr[i]) * lr[i];
    }
    product<Store::axpy>(rows, w, w, work + off, w, W, w, nullptr, 0, lam + off, w,
                         lam_next + off, h);
    gradient_rows(w, u + off, work + off, rows, gW, sb, r0 == 0);
  }
  scale_gradient(w, h, gW, sb);
}

bool usable(index_t w) { return w >= 1 && w <= kMaxWidth && cpu_ok(); }

void forward(const NetConfig& cfg, const double* W, const double* b, double h, const double* u,
             index_t batch, double* u_next, double* z) {
  const index_t w = cfg.width;
  const double* wt = transposed(w, W);
  with_activation(cfg.activation, cfg.eta, [&](auto act) {
    forward_impl(act, w, wt, b, h, u, batch, u_next, z);
  });
}

void adjoint(const NetConfig& cfg, const double* W, const double* b, double h, const double* u,
             const double* lam_next, index_t batch, double* lam, double* work, bool z_known) {
  const index_t w = cfg.width;
  const double* wt = z_known ? nullptr : transposed(w, W);
  with_activation(cfg.activation, cfg.eta, [&](auto act) {
    adjoint_impl(act, w, W, wt, b, h, u, lam_next, batch, lam, work);
  });
}

void gradient(const NetConfig& cfg, double h, const double* u, const double* d, index_t batch,
              double* gW, double* gb) {
  const index_t w = cfg.width;
  if (batch <= 0) {
    std::fill(gW, gW + w * w, 0.0);
    std::fill(gb, gb + w, 0.0);
    return;
  }
  gradient_rows(w, u, d, batch, gW, gb, true);
  scale_gradient(w, h, gW, gb);
}

void adjoint_gradient(const NetConfig& cfg, const double* W, const double* b, double h,
                      const double* u, const double* lam_next, index_t batch, double* lam,
                      double* work, bool z_known, double* gW, double* gb) {
  const index_t w = cfg.width;
  if (batch <= 0) {
    std::fill(gW, gW + w * w, 0.0);
    std::fill(gb, gb + w, 0.0);
    return;
  }
  const double* wt = z_known ? nullptr : transposed(w, W);
  with_activation(cfg.activation, cfg.eta, [&](auto act) {
    adjoint_gradient_impl(act, w, W, wt, b, h, u, lam_next, batch, lam, work, gW, gb);
  });
}

#endif  // LP_AVX512_KERNELS

}  // namespace avx512
}  // namespace

// ============================ the layer functions ============================

void layer_forward(const NetConfig& cfg, const double* W, const double* b, double h,
                   const double* u, index_t batch, double* u_next, double* z) {
  const index_t w = cfg.width;
  if (batch <= 0) return;
  if (avx512::usable(w)) return avx512::forward(cfg, W, b, h, u, batch, u_next, z);
  const index_t chunk = blas_chunk_rows(w, batch);
  const double* wt = blas_transposed(w, W);
  with_activation(cfg.activation, cfg.eta, [&](auto act) {
    for (index_t r0 = 0; r0 < batch; r0 += chunk) {
      const index_t rows = std::min(chunk, batch - r0), off = r0 * w;
      affine(w, W, wt, b, u + off, rows, z + off);
      step_update(act, h, rows * w, u + off, z + off, u_next + off);
    }
  });
}

void layer_adjoint(const NetConfig& cfg, const double* W, const double* b, double h,
                   const double* u, const double* lam_next, index_t batch, double* lam,
                   double* work, bool z_known) {
  const index_t w = cfg.width;
  if (batch <= 0) return;
  if (avx512::usable(w))
    return avx512::adjoint(cfg, W, b, h, u, lam_next, batch, lam, work, z_known);
  const index_t chunk = blas_chunk_rows(w, batch);
  const double* wt = z_known ? nullptr : blas_transposed(w, W);
  with_activation(cfg.activation, cfg.eta, [&](auto act) {
    for (index_t r0 = 0; r0 < batch; r0 += chunk) {
      const index_t rows = std::min(chunk, batch - r0), off = r0 * w;
      if (!z_known) affine(w, W, wt, b, u + off, rows, work + off);
      adjoint_scale(act, rows * w, lam_next + off, work + off);
      if (lam != lam_next) std::copy(lam_next + off, lam_next + off + rows * w, lam + off);
      blas::gemm(false, false, rows, w, w, h, work + off, w, W, w, 1.0, lam + off, w);
    }
  });
}

void layer_gradient(const NetConfig& cfg, double h, const double* u, const double* d,
                    index_t batch, double* gW, double* gb) {
  const index_t w = cfg.width;
  if (batch <= 0) {
    std::fill(gW, gW + w * w, 0.0);
    std::fill(gb, gb + w, 0.0);
    return;
  }
  if (avx512::usable(w)) return avx512::gradient(cfg, h, u, d, batch, gW, gb);
  const index_t chunk = blas_chunk_rows(w, batch);
  for (index_t r0 = 0; r0 < batch; r0 += chunk) {
    const index_t rows = std::min(chunk, batch - r0), off = r0 * w;
    blas::gemm(true, false, w, w, rows, h, d + off, w, u + off, w, r0 == 0 ? 0.0 : 1.0, gW, w);
  }
  column_sums(d, batch, w, h, gb);
}

void layer_adjoint_gradient(const NetConfig& cfg, const double* W, const double* b, double h,
                            const double* u, const double* lam_next, index_t batch, double* lam,
                            double* work, bool z_known, double* gW, double* gb) {
  if (avx512::usable(cfg.width))
    return avx512::adjoint_gradient(cfg, W, b, h, u, lam_next, batch, lam, work, z_known, gW, gb);
  layer_adjoint(cfg, W, b, h, u, lam_next, batch, lam, work, z_known);
  layer_gradient(cfg, h, u, work, batch, gW, gb);
}

}  // namespace layerparallel

// Register-blocked residual-layer kernels for widths 32 and 64 (selected in
// kernels_narrow.cpp like the narrow kernels).
//
// At these widths the BLAS's own kernels are fast, but each call packs both
// operands and the element-wise passes (bias, activation, update, sigma'(z) *
// lam) run as separate sweeps over memory. Here the weights are packed once
// per call into column panels of one cache line's width, the batch operand is
// read in place, and the element-wise work runs in the product's epilogue
// while a tile of R rows x C columns is in registers:
//   forward:  z = b + W u and u_next = u + h sigma(z), tile by tile;
//   backward: d = sigma'(z) * lam_next for R rows into `work` and a local
//             block, lam = lam_next + h W^T d from that block, and per chunk
//             of rows (sized by the level-2 cache) gW += d^T u, gb += sum d
//             from packed copies of the chunk's d and u while in cache.
// For ReLU the forward can keep the sign bytes z > 0 instead of z (sigma' is
// that sign): the serial sweeps store one byte per entry, not eight, and the
// backward leaves d in a chunk's scratch, not over z. Of the per-layer state
// traffic (u and z out, u, z and d back) that removes a half.
// The width is a template parameter, so every loop has a fixed trip count and
// GCC keeps the R x C accumulators in vector registers (the product loops are
// `omp simd` over the C columns, the rows unrolled, the k loop kept rolled:
// with other forms GCC 12 vectorized across k or spilled accumulators).
// Portable C++, no intrinsics.
#include "layerparallel/kernels_blocked.hpp"

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include "layerparallel/activations.hpp"
#include "layerparallel/kernel_attributes.hpp"
#include "layerparallel/parallel.hpp"

namespace layerparallel::blocked {

namespace {

// Columns of a tile: one 64-byte cache line of T (8 doubles, 16 floats).
template <class T>
constexpr int tile_cols() {
  return static_cast<int>(64 / sizeof(T));
}
// Rows of a tile: R x C accumulators (12 vectors of 32 bytes for R = 6)
// leave room in a 16-register file (the smallest of the x86-64-v3 clone) for
// the panel row and the broadcast. The adjoint keeps one more value live and
// uses R - 1 rows (with R rows GCC spilled an accumulator there).
constexpr int kTileRows = 6;

// Wp[p][k][c] = M(k, p * C + c): N / C column panels of N rows each.
// Transposed: M(k, j) = W[j][k] (the forward's W^T); else M(k, j) = W[k][j].
template <class T, int N, bool Transposed>
inline void pack_panels(const T* W, T* Wp) {
  constexpr int C = tile_cols<T>();
  for (int p = 0; p < N / C; ++p)
    for (int k = 0; k < N; ++k)
      for (int c = 0; c < C; ++c)
        Wp[(p * N + k) * C + c] = Transposed ? W[(p * C + c) * N + k] : W[k * N + p * C + c];
}

// acc[r][c] = sum_k x[r * N + k] Wp[k * C + c] for R rows of x. (Starting
// from zero, not from a bias: a copy into the accumulators goes through memory
// in pieces the following vector loads cannot forward from.)
template <class T, int N, int R>
inline void tile_product(const T* __restrict x, const T* __restrict Wp,
                         T (&acc)[R][tile_cols<T>()]) {
  constexpr int C = tile_cols<T>();
  LP_UNROLL for (int r = 0; r < R; ++r) LP_SIMD for (int c = 0; c < C; ++c) acc[r][c] = T(0);
#pragma GCC unroll 1
  for (int k = 0; k < N; ++k) {
    const T* __restrict wk = Wp + k * C;
    LP_UNROLL for (int r = 0; r < R; ++r) {
      const T xk = x[r * N + k];
      LP_SIMD for (int c = 0; c < C; ++c) acc[r][c] += xk * wk[c];
    }
  }
}

// What the forward keeps of z = W u + b for the adjoint: z itself (Z = T),
// or for ReLU the sign z > 0 (Z = std::uint8_t).
template <class T, class Z>
constexpr bool keeps_z() {
  return std::is_same_v<Z, T>;
}

// sigma'(z) from what the forward kept.
template <class T, class Act, class Z>
inline T slope(const Act& act, Z kept) {
  if constexpr (keeps_z<T, Z>())
    return act.derivative(kept);
  else
    return static_cast<T>(kept);
}

// Forward on R rows: z = W u + b, u_next = u + h sigma(z). With InPlace
// (u_next == u) the new rows are gathered in `un` and written after every
// panel has read u.
template <class T, int N, int R, bool InPlace, class Act>
inline void forward_tile(const Act& act, const T* __restrict Wp, const T* __restrict b, T h,
                         const T* __restrict u, T* __restrict u_next, T* __restrict z) {
  constexpr int C = tile_cols<T>();
  alignas(64) T un[InPlace ? R : 1][InPlace ? N : 1];
  for (int p = 0; p < N / C; ++p) {
    T acc[R][C];
    tile_product<T, N, R>(u, Wp + p * N * C, acc);
    LP_UNROLL for (int r = 0; r < R; ++r) LP_SIMD for (int c = 0; c < C; ++c) {
      const index_t i = r * N + p * C + c;
      const T zi = acc[r][c] + b[p * C + c];
      z[i] = zi;
      const T next = u[i] + h * act.value(zi);
      if constexpr (InPlace)
        un[r][p * C + c] = next;
      else
        u_next[i] = next;
    }
  }
  if constexpr (InPlace)
    LP_UNROLL for (int r = 0; r < R; ++r) LP_SIMD for (int j = 0; j < N; ++j)
      u_next[r * N + j] = un[r][j];
}

template <class T, int N, bool InPlace, class Act>
inline void forward_all(const Act& act, const T* Wp, const T* bb, T h, const T* u,
                        index_t rows, T* u_next, T* z) {
  constexpr int R = kTileRows;
  index_t r = 0;
  for (; r + R <= rows; r += R)
    forward_tile<T, N, R, InPlace>(act, Wp, bb, h, u + r * N, u_next + r * N, z + r * N);
  for (; r < rows; ++r)
    forward_tile<T, N, 1, InPlace>(act, Wp, bb, h, u + r * N, u_next + r * N, z + r * N);
}

// s = (z > 0) on n entries. Kept out of line: inlined into the forward, the
// constants of its byte packing took registers the product's accumulators
// need (GCC spilled two).
template <class T>
__attribute__((noinline)) LP_NARROW_TARGETS void signs_of(const T* __restrict z, index_t n,
                                                          std::uint8_t* __restrict s) {
  LP_SIMD for (index_t i = 0; i < n; ++i) s[i] = z[i] > T(0);
}

// Rows per block when the forward keeps signs: z of the block goes to a stack
// buffer of at most 16 KiB (in the level-1 cache) and is reduced to signs there.
template <class T, int N>
constexpr int sign_block_rows() {
  constexpr int fit = 16384 / (N * static_cast<int>(sizeof(T)));
  return std::max(kTileRows, fit / kTileRows * kTileRows);
}

template <class T, int N, class Act, class Z>
LP_NARROW_TARGETS void forward_rows(const Act& act, const T* W, const T* b, T h, const T* u,
                                    index_t rows, T* u_next, Z* z) {
  alignas(64) T Wp[N * N];
  alignas(64) T bb[N];
  pack_panels<T, N, true>(W, Wp);
  std::copy(b, b + N, bb);
  const bool apart = u_next + rows * N <= u || u + rows * N <= u_next;
  auto all = [&](const T* ub, index_t n, T* unb, T* zb) {
    if (apart)
      forward_all<T, N, false>(act, Wp, bb, h, ub, n, unb, zb);
    else
      forward_all<T, N, true>(act, Wp, bb, h, ub, n, unb, zb);
  };
  if constexpr (keeps_z<T, Z>()) {
    all(u, rows, u_next, z);
  } else {
    constexpr int B = sign_block_rows<T, N>();
    alignas(64) T zb[B * N];
    for (index_t r0 = 0; r0 < rows; r0 += B) {
      const index_t n = std::min<index_t>(B, rows - r0);
      all(u + r0 * N, n, u_next + r0 * N, zb);
      signs_of(zb, n * N, z + r0 * N);
    }
  }
}

// Adjoint on R rows: d = sigma'(z) * lam_next into dout, lam = lam_next +
// h W^T d (lam may be lam_next: each element is read before it is written;
// dout may be z, as it is when z is kept).
// Both stores are made where the value is formed: a separate copy of d became
// `rep movsq`, and lam_next staged in a local block went through the stack in
// 16-byte halves that the 32-byte reloads could not forward from.
template <class T, int N, int R, class Act, class Z>
inline void adjoint_tile(const Act& act, const T* __restrict Wp, T h, const T* lam_next,
                         T* lam, const Z* z, T* dout) {
  constexpr int C = tile_cols<T>();
  alignas(64) T d[R][N];
  LP_UNROLL for (int r = 0; r < R; ++r) LP_SIMD for (int j = 0; j < N; ++j) {
    const T dj = slope<T>(act, z[r * N + j]) * lam_next[r * N + j];
    d[r][j] = dj;
    dout[r * N + j] = dj;
  }
  for (int p = 0; p < N / C; ++p) {
    T acc[R][C];
    tile_product<T, N, R>(&d[0][0], Wp + p * N * C, acc);
    LP_UNROLL for (int r = 0; r < R; ++r) LP_SIMD for (int c = 0; c < C; ++c)
      lam[r * N + p * C + c] = lam_next[r * N + p * C + c] + h * acc[r][c];
  }
}

// acc[j][c] = sum_r a[r * J + j] b[r * C + c] over `rows` rows of two packed
// panels (J entries of d, C of u per row, contiguous).
template <class T, int J>
inline void gradient_tile(const T* __restrict a, const T* __restrict b, index_t rows,
                          T (&acc)[J][tile_cols<T>()]) {
  constexpr int C = tile_cols<T>();
  LP_UNROLL for (int j = 0; j < J; ++j) LP_SIMD for (int c = 0; c < C; ++c) acc[j][c] = T(0);
#pragma GCC unroll 1
  for (index_t r = 0; r < rows; ++r) {
    LP_UNROLL for (int j = 0; j < J; ++j) {
      const T aj = a[r * J + j];
      LP_SIMD for (int c = 0; c < C; ++c) acc[j][c] += aj * b[r * C + c];
    }
  }
}

// Rows per gradient chunk: the chunk's d and u (and their packed copies) fill
// a quarter of the level-2 cache; a multiple of the tile rows.
template <class T, int N>
index_t gradient_chunk_rows() {
  const index_t fit = cache_bytes(2) / 8 / (2 * N * static_cast<index_t>(sizeof(T)));
  return std::max<index_t>(kTileRows, fit / kTileRows * kTileRows);
}

// gW = h d^T u, gb = h sum_rows d, summed over chunks of rows. Each chunk's
// d and u are first packed into panels (J columns of d, C of u per row,
// rows contiguous) so the tile loops read both sequentially; the panel of d
// past column N is zero.
template <class T, int N>
struct GradientSum {
  static constexpr int C = tile_cols<T>();
  static constexpr int J = kTileRows, NJ = (N + J - 1) / J;  // tiles of J rows of gW
  alignas(64) T g[N * N] = {};
  alignas(64) double s[N] = {};  // in double, as column_sums: float sums of a batch lose digits
  T* a;  // NJ panels of rows x J
  T* b;  // N / C panels of rows x C
  explicit GradientSum(index_t chunk) {
    thread_local std::vector<T> buf;
    buf.resize(static_cast<std::size_t>(chunk) * (NJ * J + N));
    a = buf.data();
    b = a + chunk * NJ * J;
  }
  void add(const T* __restrict d, const T* __restrict u, index_t rows) {
    for (index_t r = 0; r < rows; ++r) {
      LP_SIMD for (int j = 0; j < N; ++j) s[j] += d[r * N + j];
      for (int t = 0; t < NJ; ++t)
        LP_UNROLL for (int j = 0; j < J; ++j)
          a[(t * rows + r) * J + j] = t * J + j < N ? d[r * N + t * J + j] : T(0);
      for (int p = 0; p < N / C; ++p)
        LP_SIMD for (int c = 0; c < C; ++c) b[(p * rows + r) * C + c] = u[r * N + p * C + c];
    }
    for (int t = 0; t < NJ; ++t)
      for (int p = 0; p < N / C; ++p) {
        T acc[J][C];
        gradient_tile<T, J>(a + t * rows * J, b + p * rows * C, rows, acc);
        LP_UNROLL for (int j = 0; j < J; ++j) {
          if (t * J + j >= N) break;
          LP_SIMD for (int c = 0; c < C; ++c) g[(t * J + j) * N + p * C + c] += acc[j][c];
        }
      }
  }
  void store(T h, T* gW, T* gb) const {
    for (int i = 0; i < N * N; ++i) gW[i] = h * g[i];
    for (int j = 0; j < N; ++j) gb[j] = static_cast<T>(static_cast<double>(h) * s[j]);
  }
};

template <class T, int N>
LP_NARROW_TARGETS void gradient_rows(T h, const T* u, const T* d, index_t rows, T* gW, T* gb) {
  const index_t chunk = gradient_chunk_rows<T, N>();
  GradientSum<T, N> sum(chunk);
  for (index_t c0 = 0; c0 < rows; c0 += chunk)
    sum.add(d + c0 * N, u + c0 * N, std::min(chunk, rows - c0));
  sum.store(h, gW, gb);
}

// The adjoint from what the forward kept of z and, with Gradient, gW = h d^T u
// and gb = h sum_rows d from each chunk's d while it is in cache. With z kept
// (Z = T) `work` holds z on entry and d on exit; with signs d lives in a
// chunk's scratch only (the gradient is its one use) and work is not touched.
template <class T, int N, bool Gradient, class Act, class Z>
LP_NARROW_TARGETS void adjoint_rows(const Act& act, const T* W, T h, const T* u,
                                    const T* lam_next, index_t rows, T* lam, const Z* z,
                                    T* work, T* gW, T* gb) {
  constexpr int R = kTileRows - 1;
  constexpr bool z_kept = keeps_z<T, Z>();
  alignas(64) T Wp[N * N];
  pack_panels<T, N, false>(W, Wp);
  const index_t chunk = gradient_chunk_rows<T, N>();
  GradientSum<T, N> sum(chunk);
  thread_local std::vector<T> scratch;
  if constexpr (!z_kept) scratch.resize(static_cast<std::size_t>(chunk) * N);
  for (index_t c0 = 0; c0 < rows; c0 += chunk) {
    const index_t n = std::min(chunk, rows - c0);
    const index_t off = c0 * N;
    T* d = z_kept ? work + off : scratch.data();
    index_t r = 0;
    for (; r + R <= n; r += R)
      adjoint_tile<T, N, R>(act, Wp, h, lam_next + off + r * N, lam + off + r * N,
                            z + off + r * N, d + r * N);
    for (; r < n; ++r)
      adjoint_tile<T, N, 1>(act, Wp, h, lam_next + off + r * N, lam + off + r * N,
                            z + off + r * N, d + r * N);
    if constexpr (Gradient) sum.add(d, u + off, n);
  }
  if constexpr (Gradient) sum.store(h, gW, gb);
}

}  // namespace

bool covers(index_t w) { return w == 32 || w == 64; }

namespace {
// f(integral width) for the widths with a kernel.
template <class F>
void with_width(index_t w, F&& f) {
  if (w == 32) f(std::integral_constant<int, 32>{});
  if (w == 64) f(std::integral_constant<int, 64>{});
}
}  // namespace

template <class T>
void forward(const NetConfig& cfg, const T* W, const T* b, T h, const T* u, index_t rows,
             T* u_next, T* z) {
  with_activation(cfg.activation, cfg.eta, [&](auto act) {
    with_width(cfg.width, [&](auto n) {
      forward_rows<T, decltype(n)::value>(act, W, b, h, u, rows, u_next, z);
    });
  });
}

template <class T>
void adjoint(const NetConfig& cfg, const T* W, T h, const T* u, const T* lam_next, index_t rows,
             T* lam, T* work, T* gW, T* gb) {
  with_activation(cfg.activation, cfg.eta, [&](auto act) {
    with_width(cfg.width, [&](auto n) {
      constexpr int N = decltype(n)::value;
      if (gW)
        adjoint_rows<T, N, true>(act, W, h, u, lam_next, rows, lam, work, work, gW, gb);
      else
        adjoint_rows<T, N, false>(act, W, h, u, lam_next, rows, lam, work, work, gW, gb);
    });
  });
}

template <class T>
void forward_signs(const NetConfig& cfg, const T* W, const T* b, T h, const T* u,
                   index_t rows, T* u_next, std::uint8_t* s) {
  if (cfg.activation != Activation::relu)
    throw std::logic_error("blocked::forward_signs: sign records need ReLU");
  with_width(cfg.width, [&](auto n) {
    forward_rows<T, decltype(n)::value>(Relu{}, W, b, h, u, rows, u_next, s);
  });
}

template <class T>
void adjoint_gradient_signs(const NetConfig& cfg, const T* W, T h, const T* u,
                            const T* lam_next, index_t rows, T* lam, const std::uint8_t* s,
                            T* gW, T* gb) {
  if (cfg.activation != Activation::relu)
    throw std::logic_error("blocked::adjoint_gradient_signs: sign records need ReLU");
  with_width(cfg.width, [&](auto n) {
    adjoint_rows<T, decltype(n)::value, true>(Relu{}, W, h, u, lam_next, rows, lam, s,
                                              static_cast<T*>(nullptr), gW, gb);
  });
}

template <class T>
void gradient(const NetConfig& cfg, T h, const T* u, const T* d, index_t rows, T* gW, T* gb) {
  with_width(cfg.width, [&](auto n) {
    gradient_rows<T, decltype(n)::value>(h, u, d, rows, gW, gb);
  });
}

#define LP_BLOCKED_INSTANTIATE(T)                                                             \
  template void forward<T>(const NetConfig&, const T*, const T*, T, const T*, index_t, T*, T*); \
  template void adjoint<T>(const NetConfig&, const T*, T, const T*, const T*, index_t, T*, T*,  \
                           T*, T*);                                                           \
  template void gradient<T>(const NetConfig&, T, const T*, const T*, index_t, T*, T*);        \
  template void forward_signs<T>(const NetConfig&, const T*, const T*, T, const T*, index_t,  \
                                 T*, std::uint8_t*);                                          \
  template void adjoint_gradient_signs<T>(const NetConfig&, const T*, T, const T*, const T*,  \
                                          index_t, T*, const std::uint8_t*, T*, T*);
LP_BLOCKED_INSTANTIATE(double)
LP_BLOCKED_INSTANTIATE(float)
#undef LP_BLOCKED_INSTANTIATE

}  // namespace layerparallel::blocked

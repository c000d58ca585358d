// Narrow-width residual-layer kernels and their selection against the BLAS.
#include "layerparallel/kernels_narrow.hpp"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <type_traits>
#include <vector>

#include "layerparallel/kernel_attributes.hpp"
#include "layerparallel/kernels_blocked.hpp"
#include "layerparallel/kernel_choice.hpp"
#include "layerparallel/layer.hpp"

namespace layerparallel {

// ---- mode -------------------------------------------------------------------
namespace {

NarrowMode mode_from_env() {
  const char* v = std::getenv("LP_NARROW_KERNEL");
  if (!v || !*v || std::strcmp(v, "auto") == 0) return NarrowMode::automatic;
  if (std::strcmp(v, "on") == 0 || std::strcmp(v, "1") == 0) return NarrowMode::on;
  if (std::strcmp(v, "off") == 0 || std::strcmp(v, "0") == 0) return NarrowMode::off;
  return NarrowMode::automatic;  // the Python package rejects other values first
}

std::atomic<int>& mode_slot() {
  static std::atomic<int> m{static_cast<int>(mode_from_env())};
  return m;
}

// Bumped by set_narrow_mode: cached measurements older than this are stale.
std::atomic<int>& generation() {
  static std::atomic<int> g{1};
  return g;
}

thread_local int forced = -1;  // NarrowForce: 1 narrow, 0 BLAS, -1 none

// 2-16: the narrow kernels below; 32, 64: the register-blocked ones
// (kernels_blocked.hpp).
constexpr int kWidths[] = {2, 4, 8, 16, 32, 64};
constexpr int kSlots = 6;
int width_slot(index_t w) {
  for (int i = 0; i < kSlots; ++i)
    if (kWidths[i] == w) return i;
  return -1;
}

}  // namespace

NarrowMode narrow_mode() { return static_cast<NarrowMode>(mode_slot().load()); }

void set_narrow_mode(NarrowMode m) {
  mode_slot().store(static_cast<int>(m));
  generation().fetch_add(1);
}

bool narrow_width(index_t w) { return width_slot(w) >= 0; }

int narrow_generation() { return generation().load(); }
int narrow_forced() { return forced; }

NarrowForce::NarrowForce(bool on) : saved(forced) { forced = on ? 1 : 0; }
NarrowForce::~NarrowForce() { forced = saved; }

// ---- the kernels --------------------------------------------------------------
// Blocks of R rows: for each k one row of the (transposed) weights is loaded
// and used for all R rows, as a BLAS micro-kernel does, with the width fixed
// so every loop unrolls completely (LP_UNROLL) and the accumulators stay in
// vector registers. In-place calls (u_next == u, lam == lam_next) are safe:
// a block is read completely before it is written.
namespace {

// Rows per block: enough independent accumulators to hide the FMA latency,
// few enough that they fit the vector registers (R x N = 16 values).
template <int N>
constexpr int block_rows() {
  return N >= 16 ? 1 : 16 / N;
}

// The adjoint's rows per block at width 8: 4 double or 8 float rows (256
// bytes per row array of the block, e.g. 8 AVX2 vectors). More independent
// rows per block than block_rows keep more products in flight; measured
// (GCC 12, x86-64-v3 clone) 1.4-2.5x faster than 16 / N rows for both z
// sources. Other widths keep block_rows.
template <class T, int N>
constexpr int adjoint_block_rows() {
  return N == 8 ? static_cast<int>(32 / sizeof(T)) : block_rows<N>();
}

template <class T, int N>
inline void transpose_into(const T* W, T* Wt) {
  for (int j = 0; j < N; ++j)
    for (int k = 0; k < N; ++k) Wt[k * N + j] = W[j * N + k];
}

// acc[r][j] = c[j] + sum_k x(r, k) M[k][j] on R rows (x an expression in r
// and k). The r and k loops unroll completely; the j loops either unroll too
// (JLOOP = LP_UNROLL: GCC's SLP vectorizer makes whole-register operations of
// them, the fastest form for the forward product) or stay loops for the loop
// vectorizer (JLOOP = LP_SIMD: the form GCC vectorizes in the adjoint, where
// the unrolled form stays scalar). Chosen by measurement with GCC 12.
#define LP_BLOCK_PRODUCT(acc, c, x, M, JLOOP)                                          \
  LP_UNROLL for (int r = 0; r < R; ++r) JLOOP for (int j = 0; j < N; ++j) acc[r][j] = c; \
  LP_UNROLL for (int k = 0; k < N; ++k) {                                              \
    LP_UNROLL for (int r = 0; r < R; ++r) {                                            \
      const T xk = (x);                                                                \
      JLOOP for (int j = 0; j < N; ++j) acc[r][j] += xk * M[k * N + j];                \
    }                                                                                  \
  }

// z = b + W u, u_next = u + h sigma(z) on R rows. (The stores come before the
// reads of u in the last loop: with u read first GCC gives up vectorizing.)
template <class T, int N, int R, class Act>
inline void forward_block(const Act& act, const T* __restrict Wt, const T* __restrict bb, T h,
                          const T* u, T* u_next, T* z) {
  T acc[R][N];
  LP_BLOCK_PRODUCT(acc, bb[j], u[r * N + k], Wt, LP_UNROLL)
  LP_UNROLL for (int r = 0; r < R; ++r) LP_UNROLL for (int j = 0; j < N; ++j) {
    z[r * N + j] = acc[r][j];
    u_next[r * N + j] = u[r * N + j] + h * act.value(acc[r][j]);
  }
}

#if LP_PACKS
// ReLU layers in 32-byte packs (the activation is a compare and a select on
// whole packs; other activations keep the plain loops, where a scalar
// epilogue after packed products measured slower). R x N / V accumulators,
// R chosen so that they, a row of W^T and the broadcast fit 16 vector
// registers. Against the plain loops (GCC 12, AMD EPYC, 1000 and 5000 rows):
// 1.07-1.31x at widths 4-16 in double, 0.98-1.11x in float. Same bits.
// Whether a row of width N is a whole number of packs.
template <class T, int N>
constexpr bool fills_packs() {
  return N % Pack<T>::size == 0;
}
template <class T, int N>
constexpr int pack_rows() {
  return 8 * Pack<T>::size / N;
}

// acc[r] = b + sum_k x_r[k] M[k] on R rows x_r (row stride N), as packs; M
// row-major N x N (W^T for W x + b); no b (null): from zero.
template <class T, int N, int R>
inline void pack_product(const T* __restrict M, const T* __restrict bb, const T* x,
                         typename Pack<T>::type (&acc)[R][N / Pack<T>::size]) {
  using P = Pack<T>;
  constexpr int V = P::size, NV = N / V;
  typename P::type bv[NV] = {};
  if (bb) LP_UNROLL for (int v = 0; v < NV; ++v) P::load(bv[v], bb + v * V);
  LP_UNROLL for (int r = 0; r < R; ++r) LP_UNROLL for (int v = 0; v < NV; ++v) acc[r][v] = bv[v];
  LP_UNROLL for (int k = 0; k < N; ++k) {
    typename P::type wk[NV];
    LP_UNROLL for (int v = 0; v < NV; ++v) P::load(wk[v], M + k * N + v * V);
    LP_UNROLL for (int r = 0; r < R; ++r) {
      const T xk = x[r * N + k];
      LP_UNROLL for (int v = 0; v < NV; ++v) acc[r][v] += xk * wk[v];
    }
  }
}

// All loads (the product's and u's) before the stores: u_next may be u.
template <class T, int N, int R>
inline void relu_forward_block(const T* __restrict Wt, const T* __restrict bb, T h, const T* u,
                               T* u_next, T* z) {
  using P = Pack<T>;
  using vec = typename P::type;
  constexpr int V = P::size, NV = N / V;
  vec acc[R][NV], un[R][NV];
  pack_product<T, N, R>(Wt, bb, u, acc);
  LP_UNROLL for (int r = 0; r < R; ++r) LP_UNROLL for (int v = 0; v < NV; ++v) {
    vec ur;
    P::load(ur, u + r * N + v * V);
    un[r][v] = ur + h * (acc[r][v] > T(0) ? acc[r][v] : vec{});
  }
  LP_UNROLL for (int r = 0; r < R; ++r) LP_UNROLL for (int v = 0; v < NV; ++v) {
    P::store(z + r * N + v * V, acc[r][v]);
    P::store(u_next + r * N + v * V, un[r][v]);
  }
}

template <class T, int N, int R>
inline void relu_derivative_block(const T* __restrict Wt, const T* __restrict bb, const T* u,
                                  T* D) {
  using P = Pack<T>;
  using vec = typename P::type;
  constexpr int V = P::size, NV = N / V;
  vec acc[R][NV];
  pack_product<T, N, R>(Wt, bb, u, acc);
  vec one = vec{} + T(1);
  LP_UNROLL for (int r = 0; r < R; ++r) LP_UNROLL for (int v = 0; v < NV; ++v)
    P::store(D + r * N + v * V, acc[r][v] > T(0) ? one : vec{});
}
#endif

template <class T, int N, class Act>
LP_NARROW_TARGETS void forward_rows(const Act& act, const T* W, const T* b, T h, const T* u,
                                    index_t rows, T* u_next, T* z) {
  constexpr int R = block_rows<N>();
  alignas(64) T Wt[N * N];
  alignas(64) T bb[N];
  transpose_into<T, N>(W, Wt);
  std::copy(b, b + N, bb);
  index_t r = 0;
#if LP_PACKS
  if constexpr (std::is_same_v<Act, Relu> && fills_packs<T, N>()) {
    constexpr int RP = pack_rows<T, N>();
    for (; r + RP <= rows; r += RP)
      relu_forward_block<T, N, RP>(Wt, bb, h, u + r * N, u_next + r * N, z + r * N);
  }
#endif
  for (; r + R <= rows; r += R)
    forward_block<T, N, R>(act, Wt, bb, h, u + r * N, u_next + r * N, z + r * N);
  for (; r < rows; ++r) forward_block<T, N, 1>(act, Wt, bb, h, u + r * N, u_next + r * N, z + r * N);
}

// The adjoint on R rows: d = sigma'(z) * lam_next (z from work, or W u + b;
// or sigma'(z) = D given), lam = lam_next + h W^T d, d left in work (KeepD).
// Every load of lam_next and work comes before the first store (in-place
// calls). The product lam_next + h W^T d: as 32-byte packs where the width
// fills them (with plain loops GCC staged lam_next and d through the stack
// in 16-byte halves and reloaded them whole, stalling store forwarding:
// 1.8x slower at width 8), else plain loops.
enum class ZFrom { work, product, cached };
template <class T, int N, int R>
inline void adjoint_product(const T* __restrict Wm, T h, const T (&d)[R][N], const T* lam_next,
                            T* lam) {
#if LP_PACKS
  if constexpr (fills_packs<T, N>()) {
    using P = Pack<T>;
    constexpr int V = P::size, NV = N / V;
    using vec = typename P::type;
    vec acc[R][NV];
    pack_product<T, N, R>(Wm, nullptr, &d[0][0], acc);
    LP_UNROLL for (int r = 0; r < R; ++r) LP_UNROLL for (int v = 0; v < NV; ++v) {
      vec ln;
      P::load(ln, lam_next + r * N + v * V);
      acc[r][v] = ln + h * acc[r][v];
    }
    LP_UNROLL for (int r = 0; r < R; ++r) LP_UNROLL for (int v = 0; v < NV; ++v)
      P::store(lam + r * N + v * V, acc[r][v]);
    return;
  }
#endif
  T ln[R][N], acc[R][N];
  LP_UNROLL for (int r = 0; r < R; ++r) LP_SIMD for (int j = 0; j < N; ++j)
    ln[r][j] = lam_next[r * N + j];
  LP_BLOCK_PRODUCT(acc, T(0), d[r][k], Wm, LP_SIMD)
  LP_UNROLL for (int r = 0; r < R; ++r) LP_SIMD for (int j = 0; j < N; ++j)
    lam[r * N + j] = ln[r][j] + h * acc[r][j];
}

template <class T, int N, int R, class Act, ZFrom Z, bool KeepD = true>
inline void adjoint_block(const Act& act, const T* __restrict Wm, const T* __restrict Wt,
                          const T* __restrict bb, T h, const T* u, const T* D,
                          const T* lam_next, T* lam, T* work) {
  alignas(32) T d[R][N];
  if constexpr (Z == ZFrom::product) {
    LP_BLOCK_PRODUCT(d, bb[j], u[r * N + k], Wt, LP_SIMD)
  }
  LP_UNROLL for (int r = 0; r < R; ++r) LP_SIMD for (int j = 0; j < N; ++j) {
    if constexpr (Z == ZFrom::work) d[r][j] = act.derivative(work[r * N + j]) * lam_next[r * N + j];
    if constexpr (Z == ZFrom::cached) d[r][j] = D[r * N + j] * lam_next[r * N + j];
    if constexpr (Z == ZFrom::product) d[r][j] = act.derivative(d[r][j]) * lam_next[r * N + j];
  }
  adjoint_product<T, N, R>(Wm, h, d, lam_next, lam);
  if constexpr (KeepD) {
    LP_UNROLL for (int r = 0; r < R; ++r) LP_SIMD for (int j = 0; j < N; ++j)
      work[r * N + j] = d[r][j];
  }
}

template <class T, int N, class Act, ZFrom Z>
LP_NARROW_TARGETS void adjoint_rows(const Act& act, const T* W, const T* b, T h, const T* u,
                                    const T* D, const T* lam_next, index_t rows, T* lam,
                                    T* work) {
  constexpr int R = adjoint_block_rows<T, N>();
  alignas(64) T Wm[N * N], Wt[N * N];
  alignas(64) T bb[N] = {};
  std::copy(W, W + N * N, Wm);
  if constexpr (Z == ZFrom::product) {
    transpose_into<T, N>(W, Wt);
    std::copy(b, b + N, bb);
  }
  // u is unused (null) unless z is recomputed, D unless it is cached, work
  // when the caller needs no d (then d is never stored: one array less).
  auto at = [](auto* p, index_t off) { return p ? p + off : p; };
  auto sweep = [&](auto keep) {
    constexpr bool K = decltype(keep)::value;
    index_t r = 0;
    for (; r + R <= rows; r += R)
      adjoint_block<T, N, R, Act, Z, K>(act, Wm, Wt, bb, h, at(u, r * N), at(D, r * N),
                                        lam_next + r * N, lam + r * N, at(work, r * N));
    for (; r < rows; ++r)
      adjoint_block<T, N, 1, Act, Z, K>(act, Wm, Wt, bb, h, at(u, r * N), at(D, r * N),
                                        lam_next + r * N, lam + r * N, at(work, r * N));
  };
  if (work)
    sweep(std::true_type{});
  else
    sweep(std::false_type{});
}

// gW = h d^T u, gb = h sum_rows d: JB rows of gW at a time accumulate in
// registers over all rows of the batch (u is read N / JB times, from cache).
template <class T, int N>
LP_NARROW_TARGETS void gradient_rows(T h, const T* u, const T* d, index_t rows, T* gW, T* gb) {
  constexpr int JB = N >= 16 ? 2 : (N >= 8 ? 4 : N);
  for (int j0 = 0; j0 < N; j0 += JB) {
    T g[JB][N] = {};
    T s[JB] = {};
    for (index_t r = 0; r < rows; ++r) {
      LP_UNROLL for (int jj = 0; jj < JB; ++jj) {
        const T dj = d[r * N + j0 + jj];
        LP_SIMD for (int k = 0; k < N; ++k) g[jj][k] += dj * u[r * N + k];
        s[jj] += dj;
      }
    }
    for (int jj = 0; jj < JB; ++jj) {
      for (int k = 0; k < N; ++k) gW[(j0 + jj) * N + k] = h * g[jj][k];
      gb[j0 + jj] = h * s[jj];
    }
  }
}

template <class T, int N, int R, class Act>
inline void derivative_block(const Act& act, const T* __restrict Wt, const T* __restrict bb,
                             const T* u, T* D) {
  T acc[R][N];
  LP_BLOCK_PRODUCT(acc, bb[j], u[r * N + k], Wt, LP_UNROLL)
  LP_UNROLL for (int r = 0; r < R; ++r) LP_UNROLL for (int j = 0; j < N; ++j)
    D[r * N + j] = act.derivative(acc[r][j]);
}

template <class T, int N, class Act>
LP_NARROW_TARGETS void derivative_rows(const Act& act, const T* W, const T* b, const T* u,
                                       index_t rows, T* D) {
  constexpr int R = block_rows<N>();
  alignas(64) T Wt[N * N];
  alignas(64) T bb[N];
  transpose_into<T, N>(W, Wt);
  std::copy(b, b + N, bb);
  index_t r = 0;
#if LP_PACKS
  if constexpr (std::is_same_v<Act, Relu> && fills_packs<T, N>()) {
    constexpr int RP = pack_rows<T, N>();
    for (; r + RP <= rows; r += RP) relu_derivative_block<T, N, RP>(Wt, bb, u + r * N, D + r * N);
  }
#endif
  for (; r + R <= rows; r += R) derivative_block<T, N, R>(act, Wt, bb, u + r * N, D + r * N);
  for (; r < rows; ++r) derivative_block<T, N, 1>(act, Wt, bb, u + r * N, D + r * N);
}
#undef LP_BLOCK_PRODUCT

// f(integral width) for the widths with a kernel.
template <class F>
void with_width(index_t w, F&& f) {
  with_one_of<2, 4, 8, 16>(w, std::forward<F>(f));
}

// ---- selection ------------------------------------------------------------------
// One timing per (type, width): forward then adjoint with the gradient on a
// block of rows as the serial sweeps run it (kernel_choice.hpp).
template <class T>
bool measure(index_t w) {
  const index_t rows = 512;
  NetConfig cfg;
  cfg.width = w;
  cfg.n_layers = 1;
  cfg.activation = Activation::relu;
  std::vector<T> W(w * w), b(w), u(rows * w), un(rows * w), z(rows * w), lam(rows * w),
      gW(w * w), gb(w);
  for (index_t i = 0; i < w * w; ++i) W[i] = static_cast<T>(((i * 7) % 11) - 5) / (4 * w);
  for (index_t i = 0; i < rows * w; ++i) {
    u[i] = static_cast<T>(((i * 13) % 17) - 8) / 8;
    lam[i] = static_cast<T>(((i * 5) % 9) - 4) / 8;
  }
  const T h = static_cast<T>(0.1);
  // 8 calls per timing up to width 16; fewer above, where a call's work
  // grows as w^2, so that the timing stays short.
  const int reps = static_cast<int>(std::clamp<index_t>(8 * 16 * 16 / (w * w), 2, 8));
  return special_path_faster(
      [&] {
        layer_forward(cfg, W.data(), b.data(), h, u.data(), rows, un.data(), z.data());
        layer_adjoint_gradient(cfg, W.data(), b.data(), h, u.data(), lam.data(), rows,
                               un.data(), z.data(), true, gW.data(), gb.data());
      },
      reps);
}

}  // namespace

template <class T>
bool use_narrow(index_t w) {
  const int slot = width_slot(w);
  if (slot < 0) return false;
  static KernelChoice<kSlots> choice;  // one per scalar type
  return choice.special(slot, [w] { return measure<T>(w); });
}

// ---- entry points -------------------------------------------------------------------
template <class T>
bool narrow_forward(const NetConfig& cfg, const T* W, const T* b, T h, const T* u,
                    index_t batch, T* u_next, T* z) {
  if (!use_narrow<T>(cfg.width)) return false;
  with_activation(cfg.activation, cfg.eta, [&](auto act) {
    with_width(cfg.width, [&](auto n) {
      forward_rows<T, decltype(n)::value>(act, W, b, h, u, batch, u_next, z);
    });
  });
  if (blocked::covers(cfg.width)) blocked::forward(cfg, W, b, h, u, batch, u_next, z);
  return true;
}

template <class T>
bool narrow_adjoint(const NetConfig& cfg, const T* W, const T* b, T h, const T* u,
                    const T* lam_next, index_t batch, T* lam, T* work, bool z_known) {
  if (!use_narrow<T>(cfg.width)) return false;
  if (blocked::covers(cfg.width)) {
    if (!z_known) return false;  // z recomputed: the BLAS path
    blocked::adjoint<T>(cfg, W, h, u, lam_next, batch, lam, work, nullptr, nullptr);
    return true;
  }
  with_activation(cfg.activation, cfg.eta, [&](auto act) {
    with_width(cfg.width, [&](auto n) {
      constexpr int N = decltype(n)::value;
      if (z_known)
        adjoint_rows<T, N, decltype(act), ZFrom::work>(act, W, b, h, nullptr, nullptr, lam_next,
                                                       batch, lam, work);
      else
        adjoint_rows<T, N, decltype(act), ZFrom::product>(act, W, b, h, u, nullptr, lam_next,
                                                          batch, lam, work);
    });
  });
  return true;
}

template <class T>
bool narrow_gradient(const NetConfig& cfg, T h, const T* u, const T* d, index_t batch, T* gW,
                     T* gb) {
  if (!use_narrow<T>(cfg.width)) return false;
  with_width(cfg.width, [&](auto n) {
    gradient_rows<T, decltype(n)::value>(h, u, d, batch, gW, gb);
  });
  if (blocked::covers(cfg.width)) blocked::gradient(cfg, h, u, d, batch, gW, gb);
  return true;
}

// Two passes (the adjoint, then the gradient from the d it leaves): fusing
// the gradient's outer products into the adjoint's row blocks kept GCC from
// vectorizing either, and both passes find the rows in cache.
template <class T>
bool narrow_adjoint_gradient(const NetConfig& cfg, const T* W, const T* b, T h, const T* u,
                             const T* lam_next, index_t batch, T* lam, T* work, bool z_known,
                             T* gW, T* gb) {
  if (blocked::covers(cfg.width)) {  // one pass: the gradient from each chunk's d in cache
    if (!z_known || !use_narrow<T>(cfg.width)) return false;
    blocked::adjoint(cfg, W, h, u, lam_next, batch, lam, work, gW, gb);
    return true;
  }
  if (!narrow_adjoint(cfg, W, b, h, u, lam_next, batch, lam, work, z_known)) return false;
  return narrow_gradient(cfg, h, u, work, batch, gW, gb);
}

template <class T>
bool narrow_derivative(const NetConfig& cfg, const T* W, const T* b, const T* u, index_t batch,
                       T* D) {
  // The blocked widths keep the BLAS path for MGRIT's cached linearization.
  if (blocked::covers(cfg.width) || !use_narrow<T>(cfg.width)) return false;
  with_activation(cfg.activation, cfg.eta, [&](auto act) {
    with_width(cfg.width, [&](auto n) {
      derivative_rows<T, decltype(n)::value>(act, W, b, u, batch, D);
    });
  });
  return true;
}

template <class T>
bool narrow_adjoint_linearized(const NetConfig& cfg, const T* W, T h, const T* D,
                               const T* lam_next, index_t batch, T* lam, T* work) {
  if (blocked::covers(cfg.width) || !use_narrow<T>(cfg.width)) return false;
  with_width(cfg.width, [&](auto n) {
    adjoint_rows<T, decltype(n)::value, Relu, ZFrom::cached>(Relu{}, W, nullptr, h, nullptr, D,
                                                             lam_next, batch, lam, work);
  });
  return true;
}

// Instantiated for each scalar type the layer functions (layer.hpp) exist for:
// the selection times both paths through them.
#define LP_NARROW_INSTANTIATE(T)                                                              \
  template bool use_narrow<T>(index_t);                                                       \
  template bool narrow_forward<T>(const NetConfig&, const T*, const T*, T, const T*, index_t, \
                                  T*, T*);                                                    \
  template bool narrow_adjoint<T>(const NetConfig&, const T*, const T*, T, const T*,          \
                                  const T*, index_t, T*, T*, bool);                           \
  template bool narrow_gradient<T>(const NetConfig&, T, const T*, const T*, index_t, T*, T*); \
  template bool narrow_adjoint_gradient<T>(const NetConfig&, const T*, const T*, T, const T*, \
                                           const T*, index_t, T*, T*, bool, T*, T*);          \
  template bool narrow_derivative<T>(const NetConfig&, const T*, const T*, const T*, index_t, \
                                     T*);                                                     \
  template bool narrow_adjoint_linearized<T>(const NetConfig&, const T*, T, const T*,         \
                                             const T*, index_t, T*, T*);
LP_NARROW_INSTANTIATE(double)
LP_NARROW_INSTANTIATE(float)
#undef LP_NARROW_INSTANTIATE

}  // namespace layerparallel

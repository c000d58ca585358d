// Direct 3 x 3 conv kernels at 4, 8 or 16 channels and their selection
// against im2col + BLAS.
#include "layerparallel/conv_direct.hpp"

#include <algorithm>
#include <vector>

#include "layerparallel/conv_layer.hpp"
#include "layerparallel/kernel_attributes.hpp"
#include "layerparallel/kernel_choice.hpp"
#include "layerparallel/kernels_narrow.hpp"

namespace layerparallel {

namespace {

constexpr int kChannels[] = {4, 8, 16};
int channel_slot(index_t c) {
  for (int i = 0; i < 3; ++i)
    if (kChannels[i] == c) return i;
  return -1;
}

// Register blocks of the forward and adjoint: CO output channels (at most two
// 256-bit vectors' worth, so that the kernel's rows for one input channel
// stay in two registers) of R = 4 neighbouring pixels of a row: R x CO
// accumulators, eight vectors at 16 channels, half the AVX register file, are
// enough independent FMA chains to hide their latency, and each loaded
// kernel row serves 4 pixels. More pixels would add one load (the pixel's
// input value) per FMA row and make the loads, not the FMAs, the limit.
constexpr int kBlockPixels = 4;
template <class T, int C>
constexpr int block_outputs() {
  return std::min(C, static_cast<int>(64 / sizeof(T)));
}

// Input channels per pass of the kernel gradient: CB x C accumulators of 256
// bytes (eight 256-bit vectors), each row of d loaded once for CB channels.
template <class T, int C>
constexpr int block_channels() {
  return std::max(1, std::min(C, static_cast<int>(256 / sizeof(T)) / C));
}

// One image x (H x W x C) copied into P ((H + 2) x (W + 2) x C) with a zero
// border, so that every output pixel reads a full 3 x 3 window.
template <class T>
void pad_image(const T* x, index_t H, index_t W, index_t C, T* P) {
  const index_t PW = W + 2;
  std::fill(P, P + PW * C, T(0));
  for (index_t y = 0; y < H; ++y) {
    T* row = P + (y + 1) * PW * C;
    std::fill(row, row + C, T(0));
    std::copy(x + y * W * C, x + (y + 1) * W * C, row + C);
    std::fill(row + (W + 1) * C, row + PW * C, T(0));
  }
  std::fill(P + (H + 1) * PW * C, P + (H + 2) * PW * C, T(0));
}

// acc[r][o] = c[o0 + o] + sum_{i,j,ch} P[(i, r + j), ch] Kp[((i 3 + j) C + ch) C + o0 + o]
// for R neighbouring output pixels whose window starts at P (row stride PWC)
// and the CO output channels from o0. The channel, pixel and output loops
// unroll completely (LP_UNROLL).
template <class T, int C, int CO, int R>
inline void window_block(const T* __restrict P, index_t PWC, const T* __restrict Kp,
                         const T* __restrict c, int o0, T (&acc)[R][CO]) {
  LP_UNROLL for (int r = 0; r < R; ++r) LP_SIMD for (int o = 0; o < CO; ++o) acc[r][o] = c[o0 + o];
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) {
      const T* src = P + i * PWC + j * C;
      const T* kij = Kp + (i * 3 + j) * C * C + o0;
      LP_UNROLL for (int ch = 0; ch < C; ++ch) {
        LP_UNROLL for (int r = 0; r < R; ++r) {
          const T xk = src[r * C + ch];
          LP_SIMD for (int o = 0; o < CO; ++o) acc[r][o] += xk * kij[ch * C + o];
        }
      }
    }
}

// For every output pixel q of the images: out(q, o, a) with a the value
// (c + Kp * x)(q, o). x is padded one image at a time into thread-local scratch.
template <class T, int C, int R, class Out>
inline void conv_pixels_block(const T* P, index_t PWC, const T* Kp, const T* c, index_t q,
                              Out& out) {
  constexpr int CO = block_outputs<T, C>();
  for (int o0 = 0; o0 < C; o0 += CO) {
    T acc[R][CO];
    window_block<T, C, CO, R>(P, PWC, Kp, c, o0, acc);
    LP_UNROLL for (int r = 0; r < R; ++r) LP_SIMD for (int o = 0; o < CO; ++o)
      out(q + r, o0 + o, acc[r][o]);
  }
}

template <class T, int C, class Out>
inline void conv_pixels(index_t H, index_t W, const T* Kp, const T* c, const T* x,
                        index_t batch, Out&& out) {
  constexpr int R = kBlockPixels;
  thread_local std::vector<T> pad;
  const index_t PWC = (W + 2) * C;
  pad.resize(static_cast<std::size_t>((H + 2) * PWC));
  for (index_t img = 0; img < batch; ++img) {
    pad_image(x + img * H * W * C, H, W, C, pad.data());
    for (index_t y = 0; y < H; ++y) {
      const T* P = pad.data() + y * PWC;
      const index_t q = (img * H + y) * W;
      index_t xc = 0;
      for (; xc + R <= W; xc += R)
        conv_pixels_block<T, C, R>(P + xc * C, PWC, Kp, c, q + xc, out);
      for (; xc < W; ++xc) conv_pixels_block<T, C, 1>(P + xc * C, PWC, Kp, c, q + xc, out);
    }
  }
}

template <class T, int C, class Act>
LP_NARROW_TARGETS void forward_images(const Act& act, index_t H, index_t W, const T* Kp,
                                      const T* b, T h, const T* u, index_t batch, T* u_next,
                                      T* z) {
  conv_pixels<T, C>(H, W, Kp, b, u, batch, [&](index_t q, int o, T a) {
    z[q * C + o] = a;
    u_next[q * C + o] = u[q * C + o] + h * act.value(a);
  });
}

template <class T, int C, class Act>
LP_NARROW_TARGETS void derivative_images(const Act& act, index_t H, index_t W, const T* Kp,
                                         const T* b, const T* u, index_t batch, T* D) {
  conv_pixels<T, C>(H, W, Kp, b, u, batch,
                    [&](index_t q, int o, T a) { D[q * C + o] = act.derivative(a); });
}

// lam = lam_next + h K^T * d (Kp the adjoint's packed kernel); lam may be lam_next.
template <class T, int C>
LP_NARROW_TARGETS void adjoint_images(index_t H, index_t W, const T* Kp, T h, const T* d,
                                      const T* lam_next, index_t batch, T* lam) {
  alignas(64) const T zero[C] = {};
  conv_pixels<T, C>(H, W, Kp, zero, d, batch, [&](index_t q, int o, T a) {
    lam[q * C + o] = lam_next[q * C + o] + h * a;
  });
}

// G[(i 3 + j) C + c][o] += sum_q P[q + (i, j), c] d[q, o] over the images, for
// each kernel tap and CB input channels at a time accumulated in registers
// over one image's pixels (the image's u and d stay in cache for the passes).
template <class T, int C>
LP_NARROW_TARGETS void gradient_images(index_t H, index_t W, const T* u, const T* d,
                                       index_t batch, T* G, T* s) {
  constexpr int CB = block_channels<T, C>();
  thread_local std::vector<T> pad;
  const index_t PWC = (W + 2) * C, HW = H * W;
  pad.resize(static_cast<std::size_t>((H + 2) * PWC));
  for (index_t img = 0; img < batch; ++img) {
    pad_image(u + img * HW * C, H, W, C, pad.data());
    const T* di = d + img * HW * C;
    for (int ij = 0; ij < 9; ++ij) {
      const T* P = pad.data() + (ij / 3) * PWC + (ij % 3) * C;
      for (int c0 = 0; c0 < C; c0 += CB) {
        T acc[CB][C] = {};
        for (index_t y = 0; y < H; ++y)
          for (index_t x = 0; x < W; ++x) {
            const T* src = P + y * PWC + x * C + c0;
            const T* dq = di + (y * W + x) * C;
            LP_UNROLL for (int cc = 0; cc < CB; ++cc) {
              const T v = src[cc];
              LP_SIMD for (int o = 0; o < C; ++o) acc[cc][o] += v * dq[o];
            }
          }
        for (int cc = 0; cc < CB; ++cc)
          for (int o = 0; o < C; ++o) G[(ij * C + c0 + cc) * C + o] += acc[cc][o];
      }
    }
    for (index_t q = 0; q < HW; ++q)
      LP_UNROLL for (int o = 0; o < C; ++o) s[o] += di[q * C + o];
  }
}

// f(integral channel count) for the counts with kernels.
template <class F>
void with_channels(index_t c, F&& f) {
  with_one_of<4, 8, 16>(c, std::forward<F>(f));
}

// ---- selection ------------------------------------------------------------------
// One timing per (type, channels): the three products of a layer (forward,
// gradient, adjoint) on a few small images (kernel_choice.hpp).
template <class T>
bool measure(index_t C) {
  ConvConfig cfg;
  cfg.height = cfg.width = 12;
  cfg.channels = C;
  cfg.kernel = 3;
  cfg.n_layers = 1;
  cfg.activation = Activation::relu;
  const index_t batch = 2, n = batch * cfg.state_size();
  std::vector<T> K(9 * C * C), b(C), u(n), un(n), z(n), lam(n), gK(9 * C * C), gb(C);
  for (index_t i = 0; i < 9 * C * C; ++i) K[i] = static_cast<T>(((i * 7) % 11) - 5) / (12 * C);
  for (index_t i = 0; i < n; ++i) {
    u[i] = static_cast<T>(((i * 13) % 17) - 8) / 8;
    lam[i] = static_cast<T>(((i * 5) % 9) - 4) / 8;
  }
  return special_path_faster(
      [&] {
        conv_layer_forward(cfg, K.data(), b.data(), 0.1, u.data(), batch, un.data(), z.data());
        conv_layer_gradient(cfg, 0.1, u.data(), z.data(), batch, gK.data(), gb.data());
        conv_layer_adjoint(cfg, K.data(), 0.1, z.data(), lam.data(), batch, un.data());
      },
      4);
}

}  // namespace

bool conv_direct_shape(index_t channels, index_t kernel) {
  return kernel == 3 && channel_slot(channels) >= 0;
}

template <class T>
bool use_conv_direct(index_t channels, index_t kernel) {
  if (!conv_direct_shape(channels, kernel)) return false;
  static KernelChoice<3> choice;  // one per scalar type
  return choice.special(channel_slot(channels), [channels] { return measure<T>(channels); });
}

template <class T>
bool conv_direct_forward(const ConvConfig& cfg, const T* K, const T* b, double h, const T* u,
                         index_t batch, T* u_next, T* z) {
  if (!use_conv_direct<T>(cfg.channels, cfg.kernel)) return false;
  const T* Kp = packed_kernel(layer_shape(cfg), K, false);
  with_activation(cfg.activation, cfg.eta, [&](auto act) {
    with_channels(cfg.channels, [&](auto c) {
      forward_images<T, decltype(c)::value>(act, cfg.height, cfg.width, Kp, b,
                                            static_cast<T>(h), u, batch, u_next, z);
    });
  });
  return true;
}

template <class T>
bool conv_direct_derivative(const ConvConfig& cfg, const T* K, const T* b, const T* u,
                            index_t batch, T* D) {
  if (!use_conv_direct<T>(cfg.channels, cfg.kernel)) return false;
  const T* Kp = packed_kernel(layer_shape(cfg), K, false);
  with_activation(cfg.activation, cfg.eta, [&](auto act) {
    with_channels(cfg.channels, [&](auto c) {
      derivative_images<T, decltype(c)::value>(act, cfg.height, cfg.width, Kp, b, u, batch, D);
    });
  });
  return true;
}

template <class T>
bool conv_direct_adjoint(const ConvConfig& cfg, const T* K, double h, const T* d,
                         const T* lam_next, index_t batch, T* lam) {
  if (!use_conv_direct<T>(cfg.channels, cfg.kernel)) return false;
  const T* Kp = packed_kernel(layer_shape(cfg), K, true);
  with_channels(cfg.channels, [&](auto c) {
    adjoint_images<T, decltype(c)::value>(cfg.height, cfg.width, Kp, static_cast<T>(h), d,
                                          lam_next, batch, lam);
  });
  return true;
}

template <class T>
bool conv_direct_gradient(const ConvConfig& cfg, double h, const T* u, const T* d,
                          index_t batch, T* gK, T* gb) {
  if (!use_conv_direct<T>(cfg.channels, cfg.kernel)) return false;
  const index_t C = cfg.channels;
  thread_local std::vector<T> G;  // (9 C) x C, rows in (i, j, c) order
  G.assign(static_cast<std::size_t>(9 * C * C), T(0));
  std::vector<T> s(C, T(0));
  with_channels(C, [&](auto c) {
    gradient_images<T, decltype(c)::value>(cfg.height, cfg.width, u, d, batch, G.data(),
                                           s.data());
  });
  for (index_t o = 0; o < C; ++o) {
    for (index_t c = 0; c < C; ++c)
      for (index_t ij = 0; ij < 9; ++ij)
        gK[(o * C + c) * 9 + ij] = static_cast<T>(h * G[(ij * C + c) * C + o]);
    gb[o] = static_cast<T>(h * s[o]);
  }
  return true;
}

#define LP_CONV_DIRECT_INSTANTIATE(T)                                                         \
  template bool use_conv_direct<T>(index_t, index_t);                                        \
  template bool conv_direct_forward<T>(const ConvConfig&, const T*, const T*, double,         \
                                       const T*, index_t, T*, T*);                            \
  template bool conv_direct_derivative<T>(const ConvConfig&, const T*, const T*, const T*,    \
                                          index_t, T*);                                       \
  template bool conv_direct_adjoint<T>(const ConvConfig&, const T*, double, const T*,         \
                                       const T*, index_t, T*);                                \
  template bool conv_direct_gradient<T>(const ConvConfig&, double, const T*, const T*,        \
                                        index_t, T*, T*);
LP_CONV_DIRECT_INSTANTIATE(double)
LP_CONV_DIRECT_INSTANTIATE(float)
#undef LP_CONV_DIRECT_INSTANTIATE

}  // namespace layerparallel

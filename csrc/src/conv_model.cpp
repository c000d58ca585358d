// Opening, head, regularization and serial sweeps of the convolutional ODE-ResNet.
#include "layerparallel/conv_model.hpp"

#include <algorithm>

#include "layerparallel/blas.hpp"
#include "layerparallel/conv_layer.hpp"
#include "layerparallel/kernels.hpp"
#include "layerparallel/model.hpp"
#include "layerparallel/parallel.hpp"

namespace layerparallel {

namespace {

template <class T>
double tikhonov_block(double gamma, const T* x, index_t len, T* g) {
  double s = 0.0;
  for (index_t i = 0; i < len; ++i) {
    const double xi = x[i];
    s += xi * xi;
    if (g) g[i] += gamma * xi;
  }
  return 0.5 * gamma * s;
}
}  // namespace

template <class T>
void images_to_channels_last(const ConvConfig& cfg, const T* X, index_t n, T* Xt) {
  const index_t C = cfg.in_channels, HW = cfg.pixels();
  for (index_t b = 0; b < n; ++b)
    blas::transpose(C, HW, X + b * C * HW, HW, Xt + b * C * HW);
}

template <class T>
void conv_opening_forward(const ConvConfig& cfg, const ConvView<const T>& theta,
                          const T* Xt, index_t n, T* u0, T* z0) {
  const index_t C = cfg.channels, Ci = cfg.in_channels, P = n * cfg.pixels();
  if (cfg.opening == Opening::padding) {
    for (index_t q = 0; q < P; ++q) {
      std::copy(Xt + q * Ci, Xt + (q + 1) * Ci, u0 + q * C);
      std::fill(u0 + q * C + Ci, u0 + (q + 1) * C, T(0));
    }
    return;
  }
  const ConvShape s = opening_shape(cfg);
  std::vector<T> Kp(s.patch() * C);
  pack_kernel(s, theta.W_in(), Kp.data());
  const T* b = theta.b_in();
  for (index_t q = 0; q < P; ++q) std::copy(b, b + C, z0 + q * C);
  conv_accumulate(s, Kp.data(), 1.0, Xt, n, z0);
  if (cfg.opening == Opening::linear) {
    std::copy(z0, z0 + P * C, u0);
    return;
  }
  with_activation(cfg.activation, cfg.eta, [&](auto act) {
    for (index_t i = 0; i < P * C; ++i) u0[i] = act.value(z0[i]);
  });
}

template <class T>
void conv_opening_backward(const ConvConfig& cfg, const ConvView<const T>&,
                           const T* Xt, index_t n, T* z0, const T* lam0,
                           const ConvView<T>& grad) {
  if (cfg.opening == Opening::padding) return;
  const index_t C = cfg.channels, P = n * cfg.pixels();
  const T* factor = lam0;
  if (cfg.opening == Opening::activation) {
    with_activation(cfg.activation, cfg.eta,
                    [&](auto act) { adjoint_scale(act, P * C, lam0, z0); });
    factor = z0;
  }
  conv_kernel_gradient(opening_shape(cfg), 1.0, Xt, factor, n, grad.W_in());
  column_sums(factor, P, C, 1.0, grad.b_in());
}

template <class T>
void conv_features(const ConvConfig& cfg, const T* uN, index_t n, T* f) {
  const index_t C = cfg.channels, HW = cfg.pixels(), S = cfg.state_size();
  if (cfg.pooling == ConvPooling::flatten) {
    for (index_t b = 0; b < n; ++b) blas::transpose(HW, C, uN + b * S, C, f + b * S);
    return;
  }
  for (index_t b = 0; b < n; ++b) column_sums(uN + b * S, HW, C, 1.0 / HW, f + b * C);
}

template <class T>
void conv_head_output(const ConvConfig& cfg, const ConvView<const T>& theta,
                      const T* uN, index_t n, T* f, T* out) {
  conv_features(cfg, uN, n, f);
  head_output(cfg.head_config(), theta.head(cfg.features()), f, n, out);
}

template <class T>
double conv_head_loss(const ConvConfig& cfg, const ConvView<const T>& theta,
                      const T* uN, const T* Y, index_t n, T* f, T* work,
                      nondeduced<T>* lamN, const nondeduced<ConvView<T>>* grad) {
  const index_t F = cfg.features(), C = cfg.channels, HW = cfg.pixels(), S = cfg.state_size();
  conv_features(cfg, uN, n, f);
  std::vector<T> df(lamN ? n * F : 0);
  ParamView<T> gh{nullptr, {}, F};
  if (grad) gh = grad->head(F);
  const double J = head_loss(cfg.head_config(), theta.head(F), f, Y, n, work,
                             lamN ? df.data() : nullptr, grad ? &gh : nullptr);
  if (!lamN) return J;
  // dJ/du_N: the features' adjoint spread back over the pixels.
  for (index_t b = 0; b < n; ++b) {
    T* lb = lamN + b * S;
    if (cfg.pooling == ConvPooling::flatten) {
      blas::transpose(C, HW, df.data() + b * S, HW, lb);
    } else {
      const T* d = df.data() + b * C;
      for (index_t q = 0; q < HW; ++q)
        for (index_t c = 0; c < C; ++c) lb[q * C + c] = d[c] / static_cast<double>(HW);
    }
  }
  return J;
}

template <class T>
double conv_regularization(const ConvConfig& cfg, const ConvView<const T>& theta,
                           const nondeduced<ConvView<T>>* grad) {
  const ConvLayout& lay = theta.layout;
  const index_t L = lay.n_stored;
  const double h = cfg.h();
  double J = 0.0;
  const struct { index_t off, per_layer; } blocks[2] = {{lay.W, lay.per_kernel},
                                                        {lay.b, lay.per_bias}};
  for (const auto& blk : blocks) {
    const T* x = theta.data + blk.off;
    T* g = grad ? grad->data + blk.off : nullptr;
    if (cfg.gamma_tik != 0.0) J += tikhonov_block(cfg.gamma_tik * h, x, L * blk.per_layer, g);
    if (cfg.gamma_ddt != 0.0) {
      const double c = cfg.gamma_ddt / h;
      for (index_t n = 0; n + 1 < L; ++n) {
        const T* a = x + n * blk.per_layer;
        const T* b = a + blk.per_layer;
        double s = 0.0;
        for (index_t i = 0; i < blk.per_layer; ++i) {
          const double d = b[i] - a[i];
          s += d * d;
          if (g) {
            g[n * blk.per_layer + i] -= c * d;
            g[(n + 1) * blk.per_layer + i] += c * d;
          }
        }
        J += 0.5 * c * s;
      }
    }
  }
  if (cfg.gamma_out != 0.0) {
    // Opening and head: everything outside the residual layers' blocks.
    const T* x = theta.data;
    T* g = grad ? grad->data : nullptr;
    J += tikhonov_block(cfg.gamma_out, x, lay.W, g);
    J += tikhonov_block(cfg.gamma_out, x + lay.W_out, lay.size - lay.W_out,
                        g ? g + lay.W_out : nullptr);
  }
  return J;
}

template <class T>
void conv_forward_sweep(const ConvConfig& cfg, const ConvView<const T>& theta, index_t n,
                        T* U, T* Z) {
  const index_t S = cfg.state_size(), sz = n * S;
  const double h = cfg.h();
  parallel_blocks(n, cfg.n_layers * cfg.image_product_flops(), [&](index_t r0, index_t r1) {
    const index_t off = r0 * S;
    for (index_t l = 0; l < cfg.n_layers; ++l)
      conv_layer_forward(cfg, theta.W(l), theta.b(l), h, U + l * sz + off, r1 - r0,
                         U + (l + 1) * sz + off, Z + l * sz + off);
  });
}

// By blocks of images through all layers; each block forms its share of every
// layer's gradient while its factor d is in cache (block 0 into grad, the
// others into partials summed afterwards), as the dense sweep does.
template <class T>
void conv_backward_sweep(const ConvConfig& cfg, const ConvView<const T>& theta, index_t n,
                         const T* U, T* Z, T* lam, const ConvView<T>& grad) {
  const index_t S = cfg.state_size(), sz = n * S, L = cfg.n_layers;
  const index_t nk = theta.layout.per_kernel, C = cfg.channels, gsz = nk + C;
  const double h = cfg.h();
  const double flops_per_image = 2 * L * cfg.image_product_flops();  // adjoint and gradient
  const int blocks = block_count(n, flops_per_image);
  std::vector<T> partials(static_cast<std::size_t>(blocks - 1) * L * gsz);
  T* P = partials.data();
  run_blocks(blocks, n, flops_per_image, [&](int t, index_t r0, index_t r1) {
    const index_t off = r0 * S, rows = r1 - r0;
    for (index_t l = L - 1; l >= 0; --l) {
      T* gK = t == 0 ? grad.W(l) : P + ((t - 1) * L + l) * gsz;
      T* gb = t == 0 ? grad.b(l) : gK + nk;
      T* d = Z + l * sz + off;
      conv_adjoint_factor(cfg, d, false, lam + off, rows, d);
      conv_layer_gradient(cfg, h, U + l * sz + off, d, rows, gK, gb);
      conv_layer_adjoint(cfg, theta.W(l), h, d, lam + off, rows, lam + off);
    }
  });
  if (blocks > 1)
    parallel_for(L, [&](index_t l) {
      T* gK = grad.W(l);
      T* gb = grad.b(l);
      for (int t = 1; t < blocks; ++t) {
        const T* p = P + ((t - 1) * L + l) * gsz;
        for (index_t i = 0; i < nk; ++i) gK[i] += p[i];
        for (index_t j = 0; j < C; ++j) gb[j] += p[nk + j];
      }
    });
}

template <class T>
BasicConvSerialModel<T>::BasicConvSerialModel(const ConvConfig& cfg)
    : cfg_(cfg), layout_(ConvLayout::of(cfg)) {}

template <class T>
void BasicConvSerialModel<T>::propagate(const T* theta, const T* X, index_t n) {
  const index_t sz = n * cfg_.state_size();
  Xt_.resize(n * cfg_.input_size());
  U_.resize((cfg_.n_layers + 1) * sz);
  Z_.resize(cfg_.n_layers * sz);
  z0_.resize(sz);
  const ConvView<const T> p{theta, layout_};
  images_to_channels_last(cfg_, X, n, Xt_.data());
  conv_opening_forward(cfg_, p, Xt_.data(), n, U_.data(), z0_.data());
  conv_forward_sweep(cfg_, p, n, U_.data(), Z_.data());
}

template <class T>
void BasicConvSerialModel<T>::forward(const T* theta, const T* X, index_t n, T* uN) {
  std::lock_guard<std::mutex> lock(mutex_);
  propagate(theta, X, n);
  const index_t sz = n * cfg_.state_size();
  std::copy(U_.begin() + cfg_.n_layers * sz, U_.begin() + (cfg_.n_layers + 1) * sz, uN);
}

template <class T>
void BasicConvSerialModel<T>::predict(const T* theta, const T* X, index_t n, T* out) {
  std::lock_guard<std::mutex> lock(mutex_);
  propagate(theta, X, n);
  f_.resize(n * cfg_.features());
  const ConvView<const T> p{theta, layout_};
  conv_head_output(cfg_, p, U_.data() + cfg_.n_layers * n * cfg_.state_size(), n, f_.data(),
                   out);
}

template <class T>
double BasicConvSerialModel<T>::loss_and_grad(const T* theta, const T* X, const T* Y,
                                      index_t n, T* grad) {
  std::lock_guard<std::mutex> lock(mutex_);
  propagate(theta, X, n);
  const index_t sz = n * cfg_.state_size();
  const ConvView<const T> p{theta, layout_};
  f_.resize(n * cfg_.features());
  work_.resize(n * cfg_.n_out);
  const T* uN = U_.data() + cfg_.n_layers * sz;
  if (!grad)
    return conv_head_loss(cfg_, p, uN, Y, n, f_.data(), work_.data(), nullptr, nullptr) +
           conv_regularization(cfg_, p, nullptr);
  std::fill(grad, grad + layout_.size, T(0));
  const ConvView<T> g{grad, layout_};
  lam_.resize(sz);
  double J = conv_head_loss(cfg_, p, uN, Y, n, f_.data(), work_.data(), lam_.data(), &g);
  conv_backward_sweep(cfg_, p, n, U_.data(), Z_.data(), lam_.data(), g);
  conv_opening_backward(cfg_, p, Xt_.data(), n, z0_.data(), lam_.data(), g);
  J += conv_regularization(cfg_, p, &g);
  return J;
}

#define LP_CONV_MODEL_INSTANTIATE(T)                                                           \
  template void images_to_channels_last<T>(const ConvConfig&, const T*, index_t, T*);          \
  template void conv_opening_forward<T>(const ConvConfig&, const ConvView<const T>&, const T*, \
                                        index_t, T*, T*);                                      \
  template void conv_opening_backward<T>(const ConvConfig&, const ConvView<const T>&,          \
                                         const T*, index_t, T*, const T*, const ConvView<T>&); \
  template void conv_features<T>(const ConvConfig&, const T*, index_t, T*);                    \
  template void conv_head_output<T>(const ConvConfig&, const ConvView<const T>&, const T*,     \
                                    index_t, T*, T*);                                          \
  template double conv_head_loss<T>(const ConvConfig&, const ConvView<const T>&, const T*,     \
                                    const T*, index_t, T*, T*, T*, const ConvView<T>*);        \
  template double conv_regularization<T>(const ConvConfig&, const ConvView<const T>&,          \
                                         const ConvView<T>*);                                  \
  template void conv_forward_sweep<T>(const ConvConfig&, const ConvView<const T>&, index_t,    \
                                      T*, T*);                                                 \
  template void conv_backward_sweep<T>(const ConvConfig&, const ConvView<const T>&, index_t,   \
                                       const T*, T*, T*, const ConvView<T>&);                  \
  template class BasicConvSerialModel<T>;
LP_CONV_MODEL_INSTANTIATE(float)
LP_CONV_MODEL_INSTANTIATE(double)
#undef LP_CONV_MODEL_INSTANTIATE

}  // namespace layerparallel

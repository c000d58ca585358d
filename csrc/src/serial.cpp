// Serial propagation: the reference every MGRIT solve converges to.
#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "layerparallel/layer.hpp"
#include "layerparallel/model.hpp"
#include "layerparallel/parallel.hpp"

namespace layerparallel {

namespace {
// Widest layers whose gradient is formed inside the adjoint sweep.
constexpr index_t kFusedMaxWidth = 128;
}  // namespace

// One layer's forward and fused adjoint-gradient for what the forward keeps
// for the adjoint: z (T), or its signs (std::uint8_t, see keeps_signs).
template <class T>
void forward_keeping(const NetConfig& cfg, const T* W, const T* b, double h, const T* u,
                     index_t rows, T* u_next, T* z) {
  layer_forward(cfg, W, b, h, u, rows, u_next, z);
}
template <class T>
void forward_keeping(const NetConfig& cfg, const T* W, const T* b, double h, const T* u,
                     index_t rows, T* u_next, std::uint8_t* s) {
  layer_forward_signs(cfg, W, b, h, u, rows, u_next, s);
}
template <class T>
void adjoint_gradient_from(const NetConfig& cfg, const T* W, const T* b, double h, const T* u,
                           T* lam, index_t rows, T* z, T* gW, T* gb) {
  layer_adjoint_gradient(cfg, W, b, h, u, lam, rows, lam, z, true, gW, gb);
}
template <class T>
void adjoint_gradient_from(const NetConfig& cfg, const T* W, const T*, double h, const T* u,
                           T* lam, index_t rows, const std::uint8_t* s, T* gW, T* gb) {
  layer_adjoint_gradient_signs(cfg, W, h, u, lam, rows, lam, s, gW, gb);
}

// Samples propagate independently: each block of rows runs through all layers.
template <class T, class K>
void forward_sweep(const NetConfig& cfg, const ParamView<const T>& theta, index_t n, T* U,
                   K* Z) {
  const index_t w = cfg.width, sz = n * w;
  const double h = cfg.h();
  const double flops_per_row = cfg.n_layers * row_product_flops(w);
  parallel_blocks(n, flops_per_row, [&](index_t r0, index_t r1) {
    const index_t off = r0 * w;
    for (index_t l = 0; l < cfg.n_layers; ++l)
      forward_keeping(cfg, theta.W(l), theta.b(l), h, U + l * sz + off, r1 - r0,
                      U + (l + 1) * sz + off, Z + l * sz + off);
  });
}

// The adjoint recursion by row blocks, leaving each layer's factor
// d_l = sigma'(z_l) * lam_{l+1} in Z (signs, K = std::uint8_t, are only
// read), and every layer's gradient.
//
// Narrow layers (w <= kFusedMaxWidth): each block also forms its share of every
// layer's gradient while d_l is still in cache (block 0 straight into grad,
// the others into per-block partials added after the sweep), instead of
// reading all of U and Z back for a separate gradient pass. Wide layers keep
// the separate pass, one layer per task over the whole batch: there the
// products dominate and the partials would cost L w^2 doubles per block.
template <class T, class K>
void backward_sweep(const NetConfig& cfg, const ParamView<const T>& theta, index_t n,
                    const T* U, K* Z, T* lam, const ParamView<T>& grad) {
  const index_t w = cfg.width, sz = n * w, L = cfg.n_layers;
  const double h = cfg.h();
  const double layer_flops = row_product_flops(w);  // per row and product
  // (Signs are kept at blocked widths only, all fused.)
  if constexpr (std::is_same_v<K, T>) if (w > kFusedMaxWidth) {
    parallel_blocks(n, L * layer_flops, [&](index_t r0, index_t r1) {
      const index_t off = r0 * w;
      for (index_t l = L - 1; l >= 0; --l)
        layer_adjoint(cfg, theta.W(l), theta.b(l), h, U + l * sz + off, lam + off, r1 - r0,
                      lam + off, Z + l * sz + off, true);
    });
    parallel_for(L, [&](index_t l) {
      layer_gradient(cfg, h, U + l * sz, Z + l * sz, n, grad.W(l), grad.b(l));
    }, n * layer_flops);
    return;
  }
  const index_t gsz = w * w + w;  // one layer's partial: gW then gb
  const double flops_per_row = 2 * L * layer_flops;  // adjoint and gradient products
  const int blocks = block_count(n, flops_per_row);
  thread_local std::vector<T> partials;
  partials.resize(static_cast<std::size_t>(blocks - 1) * L * gsz);
  T* P = partials.data();
  run_blocks(blocks, n, flops_per_row, [&](int t, index_t r0, index_t r1) {
    const index_t off = r0 * w;
    for (index_t l = L - 1; l >= 0; --l) {
      T* gW = t == 0 ? grad.W(l) : P + ((t - 1) * L + l) * gsz;
      T* gb = t == 0 ? grad.b(l) : gW + w * w;
      adjoint_gradient_from(cfg, theta.W(l), theta.b(l), h, U + l * sz + off, lam + off,
                            r1 - r0, Z + l * sz + off, gW, gb);
    }
  });
  if (blocks > 1)
    parallel_for(L, [&](index_t l) {
      T* __restrict gW = grad.W(l);
      T* __restrict gb = grad.b(l);
      for (int t = 1; t < blocks; ++t) {
        const T* __restrict p = P + ((t - 1) * L + l) * gsz;
        for (index_t i = 0; i < w * w; ++i) gW[i] += p[i];
        for (index_t j = 0; j < w; ++j) gb[j] += p[w * w + j];
      }
    }, blocks * (w * w + w));
}

template <class T>
BasicSerialModel<T>::BasicSerialModel(const NetConfig& cfg) : cfg_(cfg), layout_(ParamLayout::of(cfg)) {}

template <class T>
void BasicSerialModel<T>::propagate(const T* theta, const T* X, index_t n) {
  const index_t sz = n * cfg_.width;
  U_.resize((cfg_.n_layers + 1) * sz);
  signs_ = keeps_signs<T>(cfg_);
  if (signs_) {
    S_.resize(cfg_.n_layers * sz);
    std::vector<T>().swap(Z_);
  } else {
    Z_.resize(cfg_.n_layers * sz);
    std::vector<std::uint8_t>().swap(S_);
  }
  z0_.resize(sz);
  const ParamView<const T> p{theta, layout_, cfg_.width};
  opening_forward(cfg_, p, X, n, U_.data(), z0_.data());
  if (signs_)
    forward_sweep(cfg_, p, n, U_.data(), S_.data());
  else
    forward_sweep(cfg_, p, n, U_.data(), Z_.data());
  tape_ = next_tape_++;
  tape_rows_ = n;
}

template <class T>
void BasicSerialModel<T>::backward_from_tape(const ParamView<const T>& p, index_t n,
                                             const ParamView<T>& g) {
  if (signs_)
    backward_sweep(cfg_, p, n, U_.data(), S_.data(), lam_.data(), g);
  else
    backward_sweep(cfg_, p, n, U_.data(), Z_.data(), lam_.data(), g);
}

template <class T>
std::uint64_t BasicSerialModel<T>::forward(const T* theta, const T* X, index_t n, T* uN) {
  std::lock_guard<std::mutex> lock(mutex_);
  propagate(theta, X, n);
  const index_t sz = n * cfg_.width;
  std::copy(U_.begin() + cfg_.n_layers * sz, U_.begin() + (cfg_.n_layers + 1) * sz, uN);
  return tape_;
}

template <class T>
void BasicSerialModel<T>::predict(const T* theta, const T* X, index_t n, T* out) {
  std::lock_guard<std::mutex> lock(mutex_);
  propagate(theta, X, n);
  const ParamView<const T> p{theta, layout_, cfg_.width};
  head_output(cfg_, p, U_.data() + cfg_.n_layers * n * cfg_.width, n, out);
}

template <class T>
double BasicSerialModel<T>::loss_and_grad(const T* theta, const T* X, const T* Y,
                                  index_t n, T* grad) {
  std::lock_guard<std::mutex> lock(mutex_);
  propagate(theta, X, n);
  const index_t sz = n * cfg_.width;
  const ParamView<const T> p{theta, layout_, cfg_.width};
  work_.resize(n * cfg_.n_out);
  const T* uN = U_.data() + cfg_.n_layers * sz;
  if (!grad) return head_loss(cfg_, p, uN, Y, n, work_.data(), nullptr, nullptr) +
                    regularization(cfg_, p, nullptr);
  const ParamView<T> g{grad, layout_, cfg_.width};
  lam_.resize(sz);
  double J = head_loss(cfg_, p, uN, Y, n, work_.data(), lam_.data(), &g);
  tape_ = 0;  // the sweeps below consume Z_ and z0_
  backward_from_tape(p, n, g);
  opening_backward(cfg_, p, X, n, z0_.data(), lam_.data(), g);
  J += regularization(cfg_, p, &g);
  return J;
}

template <class T>
void BasicSerialModel<T>::backward(const T* theta, const T* X, index_t n, const T* lamN,
                           std::uint64_t tape, T* grad, T* dX) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (tape == 0 || tape != tape_ || n != tape_rows_) propagate(theta, X, n);
  tape_ = 0;
  const index_t sz = n * cfg_.width;
  const ParamView<const T> p{theta, layout_, cfg_.width};
  const ParamView<T> g{grad, layout_, cfg_.width};
  std::fill(grad, grad + layout_.size, T(0));
  lam_.assign(lamN, lamN + sz);
  backward_from_tape(p, n, g);
  opening_backward(cfg_, p, X, n, z0_.data(), lam_.data(), g, dX);
}

#define LP_SWEEP_INSTANTIATE(T, K)                                                          \
  template void forward_sweep<T, K>(const NetConfig&, const ParamView<const T>&, index_t, T*, \
                                    K*);                                                      \
  template void backward_sweep<T, K>(const NetConfig&, const ParamView<const T>&, index_t,    \
                                     const T*, K*, T*, const ParamView<T>&);
LP_SWEEP_INSTANTIATE(float, float)
LP_SWEEP_INSTANTIATE(double, double)
LP_SWEEP_INSTANTIATE(float, std::uint8_t)
LP_SWEEP_INSTANTIATE(double, std::uint8_t)
#undef LP_SWEEP_INSTANTIATE
template class BasicSerialModel<float>;
template class BasicSerialModel<double>;

}  // namespace layerparallel

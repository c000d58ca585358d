#include "layerparallel/conv_apps.hpp"

#include <algorithm>

#include "layerparallel/conv_layer.hpp"
#include "layerparallel/parallel.hpp"

namespace layerparallel {

namespace {
template <class T>
T* thread_buffer(std::vector<std::vector<T>>& per_thread, index_t size) {
  auto& b = per_thread[thread_id()];
  if (static_cast<index_t>(b.size()) < size) b.assign(size, T(0));
  return b.data();
}
}  // namespace

template <class T>
void BasicConvForwardApp<T>::bind(const ConvView<const T>& theta) {
  theta_ = theta;
  if (static_cast<int>(z_.size()) < num_threads()) z_.resize(num_threads());
}

template <class T>
void BasicConvAdjointApp<T>::bind(const ConvView<const T>& theta, const BasicStateSource<T>* forward) {
  theta_ = theta;
  forward_ = forward;
  if (static_cast<int>(cache_.size()) < num_threads()) cache_.resize(num_threads());
  for (auto& c : cache_) c.first = -1;
}

template <class T>
void BasicConvForwardApp<T>::step(int, index_t from, index_t to, const T* in, T* out,
                          bool inner) {
  const index_t S = cfg_.state_size();
  const double h = cfg_.h() * static_cast<double>(to - from);
  const T* K = theta_.W(from);
  const T* b = theta_.b(from);
  if (inner) {
    T* z = thread_buffer(z_, batch_ * S);
    parallel_blocks(batch_, cfg_.image_product_flops(), [&](index_t r0, index_t r1) {
      conv_layer_forward(cfg_, K, b, h, in + r0 * S, r1 - r0, out + r0 * S, z + r0 * S);
    });
  } else {
    conv_layer_forward(cfg_, K, b, h, in, batch_, out, thread_buffer(z_, batch_ * S));
  }
}

// Forward state u_n: stored, or recomputed from the stored point before it into this
// thread's cache of one forward interval (storage "C").
template <class T>
const T* BasicConvAdjointApp<T>::forward_state(index_t n) {
  if (forward_->stored(n)) return forward_->state(n);
  const index_t S = batch_ * cfg_.state_size(), c = forward_->stored_spacing();
  Cache& cache = cache_[thread_id()];
  const index_t first = std::max((n / c) * c, forward_->first_point());
  if (cache.first != first) {
    cache.states.resize(c * S);
    std::copy(forward_->state(first), forward_->state(first) + S, cache.states.data());
    const index_t last = std::min(first + c - 1, forward_->last_point());
    for (index_t q = first + 1; q <= last; ++q)
      fwd_app_.step(0, q - 1, q, cache.states.data() + (q - 1 - first) * S,
                    cache.states.data() + (q - first) * S, false);
    cache.first = first;
  }
  return cache.states.data() + (n - first) * S;
}

template <class T>
void BasicConvAdjointApp<T>::step(int level, index_t from, index_t to, const T* in, T* out,
                          bool inner) {
  const index_t S1 = cfg_.state_size(), S = batch_ * S1;
  const index_t n = cfg_.n_layers - to;
  const double h = cfg_.h() * static_cast<double>(to - from);
  const T* K = theta_.W(n);
  const T* b = theta_.b(n);
  Cache& cache = cache_[thread_id()];
  const T* u = forward_state(n);
  if (static_cast<index_t>(cache.d.size()) < S) cache.d.assign(S, T(0));
  T* d = cache.d.data();
  const T* D = D_ ? D_ + (n - D_first_) * S : nullptr;
  auto rows = [&](index_t r0, index_t r1) {
    const index_t off = r0 * S1, m = r1 - r0;
    if (D) {
      conv_adjoint_factor(cfg_, D + off, true, in + off, m, d + off);
    } else {
      conv_layer_derivative(cfg_, K, b, u + off, m, d + off);
      conv_adjoint_factor(cfg_, d + off, true, in + off, m, d + off);
    }
    conv_layer_adjoint(cfg_, K, h, d + off, in + off, m, out + off);
  };
  if (inner)
    parallel_blocks(batch_, (D ? 1 : 2) * cfg_.image_product_flops(), rows);
  else
    rows(0, batch_);
  if (grad_ && level == 0) conv_layer_gradient(cfg_, h, u, d, batch_, grad_->W(n), grad_->b(n));
}

template class BasicConvForwardApp<float>;
template class BasicConvForwardApp<double>;
template class BasicConvAdjointApp<float>;
template class BasicConvAdjointApp<double>;

}  // namespace layerparallel

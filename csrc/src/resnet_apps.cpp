#include "layerparallel/resnet_apps.hpp"

#include <algorithm>

#include "layerparallel/layer.hpp"
#include "layerparallel/parallel.hpp"

namespace layerparallel {

namespace {
template <class T>
std::vector<T>& thread_buffer(std::vector<std::vector<T>>& per_thread, index_t size) {
  const int t = thread_id();
  auto& b = per_thread[t];
  if (static_cast<index_t>(b.size()) < size) b.assign(size, T(0));
  return b;
}
}  // namespace

template <class T>
void BasicForwardApp<T>::bind(const ParamView<const T>& theta) {
  theta_ = theta;
  if (static_cast<int>(z_.size()) < num_threads()) z_.resize(num_threads());
  if (dev_) z_dev_.reserve(*dev_, batch_ * cfg_.width);
}

template <class T>
std::uint64_t BasicForwardApp<T>::replay_key() const {
  if (!dev_) return 0;
  return replay_hash({this->instance(), key_of(theta_.data), key_of(z_dev_.data()),
                      static_cast<std::uint64_t>(batch_), static_cast<std::uint64_t>(cfg_.width),
                      static_cast<std::uint64_t>(cfg_.n_layers)});
}

template <class T>
std::uint64_t BasicAdjointApp<T>::replay_key() const {
  if (!dev_ || !forward_ || forward_->stored_spacing() != 1) return 0;
  const Cache& c = cache_[0];  // a device app steps on the driver thread only
  return replay_hash({this->instance(), key_of(theta_.data), key_of(D_),
                      static_cast<std::uint64_t>(D_first_),
                      key_of(grad_ ? grad_->data : nullptr),
                      key_of(forward_->state(forward_->first_point())), key_of(c.d.data()),
                      static_cast<std::uint64_t>(batch_), static_cast<std::uint64_t>(cfg_.width),
                      static_cast<std::uint64_t>(cfg_.n_layers)});
}

template <class T>
void BasicAdjointApp<T>::bind(const ParamView<const T>& theta,
                              const BasicStateSource<T>* forward) {
  theta_ = theta;
  forward_ = forward;
  if (static_cast<int>(cache_.size()) < num_threads()) cache_.resize(num_threads());
  for (auto& c : cache_) c.first = -1;  // forward states changed
  // On a device the step's scratch exists before any step (a stable address
  // for recorded chains).
  if (dev_) cache_[0].d.reserve(*dev_, batch_ * cfg_.width);
}

template <class T>
void BasicForwardApp<T>::step(int, index_t from, index_t to, const T* in, T* out, bool inner) {
  const index_t w = cfg_.width;
  const double h = cfg_.h() * static_cast<double>(to - from);
  const T* W = theta_.W(from);
  const T* b = theta_.b(from);
  if (dev_) {
    layer_->forward(cfg_, W, b, h, in, batch_, out, z_dev_.data());
  } else if (inner) {
    T* z = thread_buffer(z_, batch_ * w).data();
    parallel_blocks(batch_, row_product_flops(w), [&](index_t r0, index_t r1) {
      layer_forward(cfg_, W, b, h, in + r0 * w, r1 - r0, out + r0 * w, z + r0 * w);
    });
  } else {
    layer_forward(cfg_, W, b, h, in, batch_, out, thread_buffer(z_, batch_ * w).data());
  }
}

template <class T>
void BasicForwardApp<T>::step_batch(int level, const BasicStepTask<T>* t, index_t count) {
  if (!dev_ || !batched_ || count == 1) {
    BasicApp<T>::step_batch(level, t, count);
    return;
  }
  const index_t S = batch_ * cfg_.width;
  z_batch_.reserve(*dev_, count * S);
  std::vector<const T*> W(count), b(count), in(count);
  std::vector<T*> out(count);
  for (index_t i = 0; i < count; ++i) {
    W[i] = theta_.W(t[i].from);
    b[i] = theta_.b(t[i].from);
    in[i] = t[i].in;
    out[i] = t[i].out;
  }
  const double h = cfg_.h() * static_cast<double>(t[0].to - t[0].from);
  batched_->forward(cfg_, count, W.data(), b.data(), h, in.data(), batch_, out.data(),
                    z_batch_.data());
}

template <class T>
void BasicAdjointApp<T>::step_batch(int level, const BasicStepTask<T>* t, index_t count) {
  const index_t N = cfg_.n_layers, S = batch_ * cfg_.width;
  bool all_stored = dev_ && batched_ && count > 1;
  for (index_t i = 0; all_stored && i < count; ++i) all_stored = forward_->stored(N - t[i].to);
  if (!all_stored) {  // host, or forward states to recompute: one step at a time
    BasicApp<T>::step_batch(level, t, count);
    return;
  }
  d_batch_.reserve(*dev_, count * S);
  std::vector<const T*> W(count), b(count), u(count), D(count), in(count);
  std::vector<T*> out(count), gW(count), gb(count);
  for (index_t i = 0; i < count; ++i) {
    const index_t n = N - t[i].to;
    W[i] = theta_.W(n);
    b[i] = theta_.b(n);
    u[i] = forward_->state(n);
    D[i] = D_ ? D_ + (n - D_first_) * S : nullptr;
    in[i] = t[i].in;
    out[i] = t[i].out;
    if (grad_) {
      gW[i] = grad_->W(n);
      gb[i] = grad_->b(n);
    }
  }
  const double h = cfg_.h() * static_cast<double>(t[0].to - t[0].from);
  batched_->adjoint(cfg_, count, W.data(), b.data(), h, u.data(), D_ ? D.data() : nullptr,
                    in.data(), batch_, out.data(), d_batch_.data());
  if (grad_ && level == 0)
    batched_->gradient(cfg_, count, h, u.data(), d_batch_.data(), batch_, gW.data(), gb.data());
}

template <class T>
const T* BasicAdjointApp<T>::forward_state(index_t n) {
  if (forward_->stored(n)) return forward_->state(n);
  Executor& ex = this->executor();
  const index_t S = batch_ * cfg_.width, c = forward_->stored_spacing();
  Cache& cache = cache_[thread_id()];
  const index_t first = std::max((n / c) * c, forward_->first_point());
  if (cache.first != first) {
    cache.states.reserve(ex, c * S);
    T* st = cache.states.data();
    ex.copy(S, forward_->state(first), st);
    const index_t last = std::min(first + c - 1, forward_->last_point());
    for (index_t q = first + 1; q <= last; ++q)
      fwd_app_.step(0, q - 1, q, st + (q - 1 - first) * S, st + (q - first) * S, false);
    cache.first = first;
  }
  return cache.states.data() + (n - first) * S;
}

// Engine time t = N - n: the step from t_from to t_to computes lambda at
// n_dst = N - t_to from lambda at N - t_from, with layer n_dst and u_{n_dst}.
template <class T>
void BasicAdjointApp<T>::step(int level, index_t from, index_t to, const T* in, T* out,
                              bool inner) {
  const index_t w = cfg_.width, N = cfg_.n_layers, S = batch_ * w;
  const index_t n = N - to;
  const double h = cfg_.h() * static_cast<double>(to - from);
  const T* W = theta_.W(n);
  const T* b = theta_.b(n);
  Cache& cache = cache_[thread_id()];
  const T* u = forward_state(n);
  cache.d.reserve(this->executor(), S);
  T* d = cache.d.data();
  const T* D = D_ ? D_ + (n - D_first_) * S : nullptr;
  if (dev_) {
    if (D)
      layer_->adjoint_linearized(cfg_, W, h, D, in, batch_, out, d);
    else
      layer_->adjoint(cfg_, W, b, h, u, in, batch_, out, d);
    if (grad_ && level == 0) layer_->gradient(cfg_, h, u, d, batch_, grad_->W(n), grad_->b(n));
    return;
  }
  // d (the gradient's factor) only where a gradient is formed from it.
  const bool keep_d = grad_ && level == 0;
  auto rows = [&](index_t r0, index_t r1) {
    const index_t off = r0 * w;
    if (D)
      layer_adjoint_linearized(cfg_, W, h, D + off, in + off, r1 - r0, out + off,
                               keep_d ? d + off : nullptr);
    else
      layer_adjoint(cfg_, W, b, h, u + off, in + off, r1 - r0, out + off, d + off, false);
  };
  if (inner)
    parallel_blocks(batch_, (D ? 1 : 2) * row_product_flops(w), rows);
  else
    rows(0, batch_);
  if (grad_ && level == 0) layer_gradient(cfg_, h, u, d, batch_, grad_->W(n), grad_->b(n));
}

template class BasicForwardApp<float>;
template class BasicForwardApp<double>;
template class BasicAdjointApp<float>;
template class BasicAdjointApp<double>;

}  // namespace layerparallel

#include "layerparallel/conv_parallel_model.hpp"

#include <algorithm>
#include <stdexcept>

#include "layerparallel/conv_layer.hpp"
#include "layerparallel/conv_model.hpp"
#include "layerparallel/kernels.hpp"
#include "layerparallel/parallel.hpp"

namespace layerparallel {

namespace {
enum Tags { kTagDdtLeft = 60, kTagDdtRight = 61, kTagLambda = 62 };
}

template <class T>
BasicConvLayerParallelModel<T>::BasicConvLayerParallelModel(const ConvConfig& cfg, const Comm& comm,
                                               const MGRITOptions& opt)
    : cfg_(cfg), comm_(comm), opt_(opt) {
  if (comm.size() > cfg.n_layers)
    throw std::invalid_argument("more ranks than layers: every rank needs at least one layer");
  first_ = LayerParallelModel::first_layers(cfg.n_layers, comm.size());
  const int r = comm.rank();
  const index_t end = r + 1 < comm.size() ? first_[r + 1] : cfg.n_layers;
  layout_ = ConvLayout::of(cfg, first_[r], end - first_[r]);
}

template <class T>
void BasicConvLayerParallelModel<T>::setup(index_t n) {
  if (n == batch_) return;
  const index_t S = n * cfg_.state_size(), N = cfg_.n_layers;
  fwd_app_ = std::make_unique<BasicConvForwardApp<T>>(cfg_, n);
  adj_app_ = std::make_unique<BasicConvAdjointApp<T>>(cfg_, n, *fwd_app_);
  fwd_ = std::make_unique<BasicMGRIT<T>>(*fwd_app_, N, opt_, comm_,
                                 Distribution::blocks(first_, N, false));
  adj_ = std::make_unique<BasicMGRIT<T>>(*adj_app_, N, opt_, comm_,
                                 Distribution::blocks(first_, N, true));
  Xt_.assign(n * cfg_.input_size(), T(0));
  u0_.assign(S, T(0));
  z0_.assign(S, T(0));
  uN_.assign(S, T(0));
  lam_.assign(S, T(0));
  tmp_.assign(S, T(0));
  f_.assign(n * cfg_.features(), T(0));
  work_.assign(n * cfg_.n_out, T(0));
  batch_ = n;
}

template <class T>
index_t BasicConvLayerParallelModel<T>::warm_state_size(index_t n) {
  std::lock_guard<std::mutex> lock(mutex_);
  setup(n);
  return fwd_->stored_size() + adj_->stored_size();
}

template <class T>
void BasicConvLayerParallelModel<T>::get_warm_state(T* out) {
  std::lock_guard<std::mutex> lock(mutex_);
  fwd_->export_states(out);
  adj_->export_states(out + fwd_->stored_size());
}

template <class T>
void BasicConvLayerParallelModel<T>::set_warm_state(index_t n, const T* in) {
  std::lock_guard<std::mutex> lock(mutex_);
  setup(n);
  fwd_->import_states(in);
  adj_->import_states(in + fwd_->stored_size());
}

template <class T>
void BasicConvLayerParallelModel<T>::solve_forward(const ConvView<const T>& p, const T* X,
                                           bool warm, SolveInfo* info) {
  images_to_channels_last(cfg_, X, batch_, Xt_.data());
  conv_opening_forward(cfg_, p, Xt_.data(), batch_, u0_.data(), z0_.data());
  fwd_app_->bind(p);
  SolveInfo si = fwd_->solve(u0_.data(), warm, u0_.data());
  if (info) *info = si;
  if (comm_.rank() == last_rank()) fwd_->state_into(cfg_.n_layers, uN_.data(), tmp_.data());
}

template <class T>
void BasicConvLayerParallelModel<T>::forward(const T* theta, const T* X, index_t n,
                                     T* uN, bool warm, SolveInfo* info) {
  std::lock_guard<std::mutex> lock(mutex_);
  const bool fresh = n != batch_;
  setup(n);
  const ConvView<const T> p{theta, layout_};
  solve_forward(p, X, warm && !fresh, info);
  comm_.broadcast(last_rank(), uN_.data(), n * cfg_.state_size());
  std::copy(uN_.begin(), uN_.end(), uN);
}

template <class T>
double BasicConvLayerParallelModel<T>::loss_and_grad(const T* theta, const T* X,
                                             const T* Y, index_t n, T* grad,
                                             bool warm, ModelSolveInfo* info) {
  std::lock_guard<std::mutex> lock(mutex_);
  const bool fresh = n != batch_;
  setup(n);
  warm = warm && !fresh;
  const ConvView<const T> p{theta, layout_};
  SolveInfo fwd_info, adj_info;
  solve_forward(p, X, warm, &fwd_info);

  // Head on the last rank (it holds u_N); loss and head gradient to all in
  // one double message (float gradients convert to double and back exactly).
  const index_t n_head = layout_.size - layout_.W_out;
  std::vector<double> head(1 + n_head, 0.0);
  std::unique_ptr<ConvView<T>> g;
  if (grad) {
    std::fill(grad, grad + layout_.size, T(0));
    g = std::make_unique<ConvView<T>>(ConvView<T>{grad, layout_});
  }
  if (comm_.rank() == last_rank()) {
    head[0] = conv_head_loss(cfg_, p, uN_.data(), Y, n, f_.data(), work_.data(),
                             grad ? lam_.data() : nullptr, g.get());
    if (grad) std::copy(grad + layout_.W_out, grad + layout_.size, head.begin() + 1);
  }
  comm_.broadcast(last_rank(), head.data(), static_cast<index_t>(head.size()));
  double J = head[0];
  if (grad) {
    std::copy(head.begin() + 1, head.end(), grad + layout_.W_out);
    adj_app_->bind(p, fwd_.get());
    cache_derivatives(p);
    const bool one_level = adj_->n_levels() == 1;
    adj_app_->set_gradient(one_level ? g.get() : nullptr);
    adj_info = adj_->solve(lam_.data(), warm, nullptr);
    adj_app_->set_gradient(nullptr);
    if (!one_level && opt_.store_fine_f) {
      layer_gradients(*g);
    } else if (!one_level) {
      adj_app_->set_gradient(g.get());
      adj_->sweep_steps();
      adj_app_->set_gradient(nullptr);
    }
    // Opening layer on rank 0 (it holds lambda_0), then to all.
    const index_t n_open = layout_.W - layout_.W_in;
    std::vector<T> open(n_open, T(0));
    if (comm_.rank() == 0) {
      adj_->state_into(cfg_.n_layers, lam_.data(), tmp_.data());
      conv_opening_backward(cfg_, p, Xt_.data(), n, z0_.data(), lam_.data(), *g);
      std::copy(grad + layout_.W_in, grad + layout_.W, open.begin());
    }
    comm_.broadcast(0, open.data(), n_open);
    std::copy(open.begin(), open.end(), grad + layout_.W_in);
  }
  J += regularization_all(p, g.get());
  if (info) {
    info->forward = fwd_info;
    info->adjoint = adj_info;
  }
  return J;
}

template <class T>
void BasicConvLayerParallelModel<T>::cache_derivatives(const ConvView<const T>& p) {
  if (!opt_.store_fine_f || fwd_->n_levels() == 1) {
    adj_app_->set_derivatives(nullptr, 0);
    return;
  }
  const index_t S = batch_ * cfg_.state_size(), L = layout_.n_stored, first = layout_.first_layer;
  D_.resize(L * S);
  parallel_for(L, [&](index_t i) {
    const index_t n = first + i;
    conv_layer_derivative(cfg_, p.W(n), p.b(n), fwd_->state(n), batch_, D_.data() + i * S);
  });
  adj_app_->set_derivatives(D_.data(), first);
}

template <class T>
void BasicConvLayerParallelModel<T>::layer_gradients(const ConvView<T>& g) {
  const index_t N = cfg_.n_layers, S = batch_ * cfg_.state_size();
  const index_t first = layout_.first_layer, L = layout_.n_stored;
  const int r = comm_.rank(), P = comm_.size();
  Request req;
  if (r > 0) comm_.isend(r - 1, kTagLambda, adj_->state(N - first), S, req);
  if (r + 1 < P) comm_.recv(r + 1, kTagLambda, tmp_.data(), S);
  const double h = cfg_.h();
  parallel_for(L, [&](index_t i) {
    const index_t n = first + i;
    const T* lam_next = adj_->stored(N - n - 1) ? adj_->state(N - n - 1) : tmp_.data();
    thread_local std::vector<T> d;
    d.resize(S);
    scale_by(S, D_.data() + i * S, lam_next, d.data());
    conv_layer_gradient(cfg_, h, fwd_->state(n), d.data(), batch_, g.W(n), g.b(n));
  });
  comm_.wait(req);
}

template <class T>
double BasicConvLayerParallelModel<T>::regularization_all(const ConvView<const T>& p,
                                                  const ConvView<T>* g) {
  ConvConfig layers_only = cfg_, outer_only = cfg_;
  layers_only.gamma_out = 0.0;
  outer_only.gamma_tik = outer_only.gamma_ddt = 0.0;
  double J = conv_regularization(layers_only, p, g);
  if (cfg_.gamma_ddt != 0.0 && comm_.distributed()) {
    const index_t nk = layout_.per_kernel, C = layout_.per_bias, m = nk + C;
    const index_t first = layout_.first_layer, last = first + layout_.n_stored - 1;
    const int r = comm_.rank(), P = comm_.size();
    auto pack = [&](index_t n, std::vector<T>& msg) {
      msg.resize(m);
      std::copy(p.W(n), p.W(n) + nk, msg.begin());
      std::copy(p.b(n), p.b(n) + C, msg.begin() + nk);
    };
    std::vector<T> mine_first, mine_last, left_last, right_first;
    Request r1, r2;
    if (r > 0) {
      pack(first, mine_first);
      comm_.isend(r - 1, kTagDdtLeft, mine_first.data(), m, r1);
    }
    if (r + 1 < P) {
      pack(last, mine_last);
      comm_.isend(r + 1, kTagDdtRight, mine_last.data(), m, r2);
    }
    const double c = cfg_.gamma_ddt / cfg_.h();
    auto pair = [&](const T* a, const T* b, T* ga, T* gb, index_t len) {
      double s = 0.0;
      for (index_t i = 0; i < len; ++i) {
        const double d = b[i] - a[i];
        s += d * d;
        if (ga) ga[i] -= c * d;
        if (gb) gb[i] += c * d;
      }
      return 0.5 * c * s;
    };
    if (r > 0) {
      left_last.resize(m);
      comm_.recv(r - 1, kTagDdtRight, left_last.data(), m);
      J += pair(left_last.data(), p.W(first), nullptr, g ? g->W(first) : nullptr, nk);
      J += pair(left_last.data() + nk, p.b(first), nullptr, g ? g->b(first) : nullptr, C);
    }
    if (r + 1 < P) {
      right_first.resize(m);
      comm_.recv(r + 1, kTagDdtLeft, right_first.data(), m);
      if (g) {
        pair(p.W(last), right_first.data(), g->W(last), nullptr, nk);
        pair(p.b(last), right_first.data() + nk, g->b(last), nullptr, C);
      }
    }
    comm_.wait(r1);
    comm_.wait(r2);
  }
  J = comm_.allreduce_sum(J);
  return J + conv_regularization(outer_only, p, g);
}

template class BasicConvLayerParallelModel<float>;
template class BasicConvLayerParallelModel<double>;

}  // namespace layerparallel

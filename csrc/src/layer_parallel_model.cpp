#include "layerparallel/layer_parallel_model.hpp"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

#include "layerparallel/layer.hpp"
#include "layerparallel/model.hpp"
#include "layerparallel/kernels.hpp"
#include "layerparallel/parallel.hpp"

namespace layerparallel {

namespace {
enum Tags { kTagDdtLeft = 50, kTagDdtRight = 51, kTagLambda = 52 };
static_assert(kTagDdtLeft >= kModelTagFirst && kTagLambda <= kModelTagLast,
              "the model's tags must stay in its range (app.hpp)");
}

std::vector<index_t> LayerParallelModel::first_layers(index_t n_layers, int n_ranks) {
  std::vector<index_t> f(n_ranks);
  for (int r = 0; r < n_ranks; ++r) f[r] = n_layers * r / n_ranks;
  return f;
}

LayerParallelModel::LayerParallelModel(const NetConfig& cfg, const Comm& comm,
                                       const MGRITOptions& opt, std::shared_ptr<Executor> device)
    : cfg_(cfg), comm_(comm), opt_(opt), dev_(std::move(device)) {
  if (dev_ && dev_->device() == Device::cpu) dev_.reset();
  if (dev_) dev_layer_ = make_device_layer(*dev_);
  if (dev_) dev_batch_ = make_device_batch_layer(*dev_);
  if (comm.size() > cfg.n_layers)
    throw std::invalid_argument("more ranks than layers: every rank needs at least one layer");
  first_ = first_layers(cfg.n_layers, comm.size());
  const int r = comm.rank();
  const index_t end = r + 1 < comm.size() ? first_[r + 1] : cfg.n_layers;
  layout_ = ParamLayout::of(cfg, first_[r], end - first_[r]);
}

void LayerParallelModel::setup(index_t n) {
  if (n == batch_) return;
  const index_t S = n * cfg_.width;
  fwd_app_ = std::make_unique<ForwardApp>(cfg_, n);
  adj_app_ = std::make_unique<AdjointApp>(cfg_, n, *fwd_app_);
  if (dev_) {
    fwd_app_->use_device(*dev_, *dev_layer_, dev_batch_.get());
    adj_app_->use_device(*dev_, *dev_layer_, dev_batch_.get());
    theta_dev_ = Buffer(*dev_, layout_.size);
    grad_dev_ = Buffer(*dev_, layout_.size);
    u0_dev_ = Buffer(*dev_, S);
    uN_dev_ = Buffer(*dev_, S);
    lam_dev_ = Buffer(*dev_, S);
    tmp_dev_ = Buffer(*dev_, S);
  }
  const auto N = cfg_.n_layers;
  fwd_ = std::make_unique<MGRIT>(*fwd_app_, N, opt_, comm_,
                                 Distribution::blocks(first_, N, false));
  adj_ = std::make_unique<MGRIT>(*adj_app_, N, opt_, comm_,
                                 Distribution::blocks(first_, N, true));
  u0_.assign(S, 0.0);
  z0_.assign(S, 0.0);
  uN_.assign(S, 0.0);
  lam_.assign(S, 0.0);
  tmp_.assign(S, 0.0);
  work_.assign(n * cfg_.n_out, 0.0);
  batch_ = n;
}

void LayerParallelModel::set_max_iter(int n) {
  std::lock_guard<std::mutex> lock(mutex_);
  opt_.max_iter = n;
  if (fwd_) fwd_->set_max_iter(n);
  if (adj_) adj_->set_max_iter(n);
}

index_t LayerParallelModel::warm_state_size(index_t n) {
  std::lock_guard<std::mutex> lock(mutex_);
  setup(n);
  return fwd_->stored_size() + adj_->stored_size();
}

void LayerParallelModel::get_warm_state(double* out) {
  std::lock_guard<std::mutex> lock(mutex_);
  fwd_->export_states(out);
  adj_->export_states(out + fwd_->stored_size());
}

void LayerParallelModel::set_warm_state(index_t n, const double* in) {
  std::lock_guard<std::mutex> lock(mutex_);
  setup(n);
  fwd_->import_states(in);
  adj_->import_states(in + fwd_->stored_size());
}

double* LayerParallelModel::twin(std::vector<double>& host, Buffer& dev) {
  return dev_ ? dev.data() : host.data();
}

ParamView<const double> LayerParallelModel::layers_on_executor(const double* theta) {
  if (!dev_) return {theta, layout_, cfg_.width};
  dev_->from_host(layout_.size, theta, theta_dev_.data());
  return {theta_dev_.data(), layout_, cfg_.width};
}

void LayerParallelModel::solve_forward(const ParamView<const double>& p,
                                       const ParamView<const double>& pe, const double* X,
                                       bool warm, SolveInfo* info) {
  // The opening layer is replicated: every rank has u_0, the initial guess.
  const index_t S = batch_ * cfg_.width;
  opening_forward(cfg_, p, X, batch_, u0_.data(), z0_.data());
  double* u0 = twin(u0_, u0_dev_);
  if (dev_) dev_->from_host(S, u0_.data(), u0);
  fwd_app_->bind(pe);
  SolveInfo si = fwd_->solve(u0, warm, u0);
  if (info) *info = si;
  if (comm_.rank() == last_rank()) {
    double* uN = twin(uN_, uN_dev_);
    fwd_->state_into(cfg_.n_layers, uN, twin(tmp_, tmp_dev_));
    if (dev_) dev_->to_host(S, uN, uN_.data());
  }
  tape_ = next_tape_++;
}

std::uint64_t LayerParallelModel::forward(const double* theta, const double* X, index_t n,
                                          double* uN, bool warm, SolveInfo* info) {
  std::lock_guard<std::mutex> lock(mutex_);
  const bool fresh = n != batch_;
  setup(n);
  const ParamView<const double> p{theta, layout_, cfg_.width};
  solve_forward(p, layers_on_executor(theta), X, warm && !fresh, info);
  comm_.broadcast(last_rank(), uN_.data(), n * cfg_.width);
  std::copy(uN_.begin(), uN_.end(), uN);
  return tape_;
}

void LayerParallelModel::backward(const double* theta, const double* X, index_t n,
                                  const double* lamN, std::uint64_t tape, double* grad,
                                  double* dX, bool warm, SolveInfo* info) {
  std::lock_guard<std::mutex> lock(mutex_);
  const bool fresh = n != batch_;
  setup(n);
  warm = warm && !fresh;
  const ParamView<const double> p{theta, layout_, cfg_.width};
  const ParamView<const double> pe = layers_on_executor(theta);
  // Every rank made the same calls, so every rank takes the same branch.
  if (fresh || tape == 0 || tape != tape_) solve_forward(p, pe, X, warm, nullptr);
  tape_ = 0;  // the opening's backward consumes z0_
  std::fill(grad, grad + layout_.size, 0.0);
  std::copy(lamN, lamN + n * cfg_.width, lam_.begin());
  adjoint_gradients(p, pe, X, warm, ParamView<double>{grad, layout_, cfg_.width}, dX, info);
}

double LayerParallelModel::loss_and_grad(const double* theta, const double* X, const double* Y,
                                         index_t n, double* grad, bool warm,
                                         ModelSolveInfo* info) {
  std::lock_guard<std::mutex> lock(mutex_);
  const bool fresh = n != batch_;
  setup(n);
  warm = warm && !fresh;
  const ParamView<const double> p{theta, layout_, cfg_.width};
  const ParamView<const double> pe = layers_on_executor(theta);
  SolveInfo fwd_info, adj_info;
  solve_forward(p, pe, X, warm, &fwd_info);

  // Head on the last rank (it holds u_N); loss and head gradient to all.
  const index_t w = cfg_.width, K = cfg_.n_out;
  std::vector<double> head(1 + K * w + K, 0.0);
  std::unique_ptr<ParamView<double>> g;
  if (grad) {
    std::fill(grad, grad + layout_.size, 0.0);
    g = std::make_unique<ParamView<double>>(ParamView<double>{grad, layout_, w});
  }
  if (comm_.rank() == last_rank()) {
    head[0] = head_loss(cfg_, p, uN_.data(), Y, n, work_.data(), grad ? lam_.data() : nullptr,
                        g.get());
    if (grad) {
      std::copy(g->W_out(), g->W_out() + K * w, head.begin() + 1);
      std::copy(g->b_out(), g->b_out() + K, head.begin() + 1 + K * w);
    }
  }
  comm_.broadcast(last_rank(), head.data(), static_cast<index_t>(head.size()));
  double J = head[0];
  if (grad) {
    std::copy(head.begin() + 1, head.begin() + 1 + K * w, g->W_out());
    std::copy(head.begin() + 1 + K * w, head.end(), g->b_out());
    tape_ = 0;  // the opening's backward consumes z0_
    adjoint_gradients(p, pe, X, warm, *g, nullptr, &adj_info);
  }
  J += regularization_all(p, g.get());
  if (info) {
    info->forward = fwd_info;
    info->adjoint = adj_info;
  }
  return J;
}

bool LayerParallelModel::owns(index_t n, bool adjoint) const {
  if (!fwd_ || n < 0 || n > cfg_.n_layers) return false;
  const MGRIT& m = adjoint ? *adj_ : *fwd_;
  const index_t p = adjoint ? cfg_.n_layers - n : n;
  return p >= m.first_point() && p <= m.last_point();
}

void LayerParallelModel::state(index_t n, bool adjoint, double* out) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!owns(n, adjoint))
    throw std::out_of_range("layer point " + std::to_string(n) + " is not held on this rank" +
                            (fwd_ ? "" : " (no solve yet)"));
  MGRIT& m = adjoint ? *adj_ : *fwd_;
  const index_t p = adjoint ? cfg_.n_layers - n : n;
  if (!dev_) {
    m.state_into(p, out, tmp_.data());
    return;
  }
  const index_t S = batch_ * cfg_.width;
  d_dev_.reserve(*dev_, S);
  m.state_into(p, d_dev_.data(), tmp_dev_.data());
  dev_->to_host(S, d_dev_.data(), out);
}

void LayerParallelModel::adjoint_gradients(const ParamView<const double>& p,
                                           const ParamView<const double>& pe, const double* X,
                                           bool warm, const ParamView<double>& g, double* dX,
                                           SolveInfo* info) {
  // The adjoint, backward in layer index, linearized at the forward states.
  // On one level the gradients ride on its steps; on many they follow from
  // u_n and lambda_{n+1} (storage "all"), or from one more sweep ("C").
  // The layer gradients are formed where the layers run (ge), then the
  // device's come back to the host in one copy.
  const index_t w = cfg_.width, n = batch_, S = n * w;
  double* lam = twin(lam_, lam_dev_);
  if (dev_) {
    dev_->from_host(S, lam_.data(), lam);
    dev_->fill(layout_.size, 0.0, grad_dev_.data());
  }
  const ParamView<double> ge = dev_ ? ParamView<double>{grad_dev_.data(), layout_, w} : g;
  adj_app_->bind(pe, fwd_.get());
  cache_derivatives(pe);
  const bool one_level = adj_->n_levels() == 1;
  adj_app_->set_gradient(one_level ? &ge : nullptr);
  SolveInfo si = adj_->solve(lam, warm, nullptr);
  if (info) *info = si;
  adj_app_->set_gradient(nullptr);
  if (!one_level && opt_.store_fine_f) {
    layer_gradients(ge);
  } else if (!one_level) {
    adj_app_->set_gradient(&ge);
    adj_->sweep_steps();
    adj_app_->set_gradient(nullptr);
  }
  if (dev_)
    dev_->to_host(layout_.W_out - layout_.W, grad_dev_.data() + layout_.W, g.data + layout_.W);

  // Opening layer (and dJ/dX) on rank 0, which holds lambda_0, then to all.
  const index_t n_open = layout_.W - layout_.W_in, n_x = dX ? n * cfg_.n_in : 0;
  std::vector<double> open(n_open + n_x, 0.0);
  if (comm_.rank() == 0) {
    adj_->state_into(cfg_.n_layers, lam, twin(tmp_, tmp_dev_));
    if (dev_) dev_->to_host(S, lam, lam_.data());
    opening_backward(cfg_, p, X, n, z0_.data(), lam_.data(), g, dX);
    std::copy(g.data + layout_.W_in, g.data + layout_.W, open.begin());
    if (dX) std::copy(dX, dX + n_x, open.begin() + n_open);
  }
  comm_.broadcast(0, open.data(), n_open + n_x);
  std::copy(open.begin(), open.begin() + n_open, g.data + layout_.W_in);
  if (dX) std::copy(open.begin() + n_open, open.end(), dX);
}

// sigma'(z_n) for every layer here, once per forward solution: every adjoint
// step (on any level) then costs one product instead of two.
void LayerParallelModel::cache_derivatives(const ParamView<const double>& p) {
  if (!opt_.store_fine_f || fwd_->n_levels() == 1) {
    adj_app_->set_derivatives(nullptr, 0);
    return;
  }
  const index_t S = batch_ * cfg_.width, L = layout_.n_stored, first = layout_.first_layer;
  D_.reserve(executor(), L * S);
  if (dev_) {
    for (index_t i = 0; i < L; ++i)
      dev_layer_->derivative(cfg_, p.W(first + i), p.b(first + i), fwd_->state(first + i),
                             batch_, D_.data() + i * S);
    adj_app_->set_derivatives(D_.data(), first);
    return;
  }
  parallel_for(L, [&](index_t i) {
    const index_t n = first + i;
    layer_derivative(cfg_, p.W(n), p.b(n), fwd_->state(n), batch_, D_.data() + i * S);
  }, batch_ * row_product_flops(cfg_.width));
  adj_app_->set_derivatives(D_.data(), first);
}

// dJ/dW_n = h (D_n * lambda_{n+1})^T u_n and dJ/db_n for every layer here, all
// independent; lambda at the first point of the next rank comes from it.
void LayerParallelModel::layer_gradients(const ParamView<double>& g) {
  const index_t N = cfg_.n_layers, w = cfg_.width, S = batch_ * w;
  const index_t first = layout_.first_layer, L = layout_.n_stored;
  const int r = comm_.rank(), P = comm_.size();
  // lambda_n sits at adjoint point N - n; rank r's first forward point is first.
  Request req;
  if (r > 0) {
    const double* mine = adj_->state(N - first);
    if (dev_) {
      msg_.resize(S);
      dev_->to_host(S, mine, msg_.data());
      mine = msg_.data();
    }
    comm_.isend(r - 1, kTagLambda, mine, S, req);
  }
  double* next = twin(tmp_, tmp_dev_);
  if (r + 1 < P) {
    comm_.recv(r + 1, kTagLambda, tmp_.data(), S);
    if (dev_) dev_->from_host(S, tmp_.data(), next);
  }
  const double h = cfg_.h();
  if (dev_) {
    d_dev_.reserve(*dev_, S);
    for (index_t i = 0; i < L; ++i) {
      const index_t n = first + i;
      const double* lam_next = adj_->stored(N - n - 1) ? adj_->state(N - n - 1) : next;
      dev_layer_->scale(S, D_.data() + i * S, lam_next, d_dev_.data());
      dev_layer_->gradient(cfg_, h, fwd_->state(n), d_dev_.data(), batch_, g.W(n), g.b(n));
    }
    comm_.wait(req);
    return;
  }
  parallel_for(L, [&](index_t i) {
    const index_t n = first + i;
    const double* lam_next = adj_->stored(N - n - 1) ? adj_->state(N - n - 1) : tmp_.data();
    thread_local std::vector<double> d;
    d.resize(S);
    scale_by(S, D_.data() + i * S, lam_next, d.data());
    layer_gradient(cfg_, h, fwd_->state(n), d.data(), batch_, g.W(n), g.b(n));
  }, batch_ * row_product_flops(cfg_.width));
  comm_.wait(req);
}

// Regularization of the distributed layers: local terms, the time-derivative
// pair across each rank boundary (one layer's weights to each neighbour), and
// the replicated opening/head term counted once.
double LayerParallelModel::regularization_all(const ParamView<const double>& p,
                                              const ParamView<double>* g) {
  NetConfig layers_only = cfg_, outer_only = cfg_;
  layers_only.gamma_out = 0.0;
  outer_only.gamma_tik = outer_only.gamma_ddt = 0.0;
  double J = regularization(layers_only, p, g);
  if (cfg_.gamma_ddt != 0.0 && comm_.distributed()) {
    const index_t w = cfg_.width, L = layout_.n_stored;
    const index_t first = layout_.first_layer, last = first + L - 1;
    const int r = comm_.rank(), P = comm_.size();
    // One layer theta_n = (W_n, b_n) as a contiguous message.
    auto pack = [&](index_t n, std::vector<double>& m) {
      m.resize(w * w + w);
      std::copy(p.W(n), p.W(n) + w * w, m.begin());
      std::copy(p.b(n), p.b(n) + w, m.begin() + w * w);
    };
    std::vector<double> mine_first, mine_last, left_last, right_first;
    Request r1, r2;
    if (r > 0) {
      pack(first, mine_first);
      comm_.isend(r - 1, kTagDdtLeft, mine_first.data(), w * w + w, r1);
    }
    if (r + 1 < P) {
      pack(last, mine_last);
      comm_.isend(r + 1, kTagDdtRight, mine_last.data(), w * w + w, r2);
    }
    const double c = cfg_.gamma_ddt / cfg_.h();
    auto pair = [&](const double* a, const double* b, double* ga, double* gb, index_t len) {
      double s = 0.0;  // gamma/(2h) ||b - a||^2 and its gradient
      for (index_t i = 0; i < len; ++i) {
        const double d = b[i] - a[i];
        s += d * d;
        if (ga) ga[i] -= c * d;
        if (gb) gb[i] += c * d;
      }
      return 0.5 * c * s;
    };
    if (r > 0) {  // pair (first-1, first): its value is counted here
      left_last.resize(w * w + w);
      comm_.recv(r - 1, kTagDdtRight, left_last.data(), w * w + w);
      J += pair(left_last.data(), p.W(first), nullptr, g ? g->W(first) : nullptr, w * w);
      J += pair(left_last.data() + w * w, p.b(first), nullptr, g ? g->b(first) : nullptr, w);
    }
    if (r + 1 < P) {  // pair (last, last+1): only its gradient here
      right_first.resize(w * w + w);
      comm_.recv(r + 1, kTagDdtLeft, right_first.data(), w * w + w);
      if (g) {
        pair(p.W(last), right_first.data(), g->W(last), nullptr, w * w);
        pair(p.b(last), right_first.data() + w * w, g->b(last), nullptr, w);
      }
    }
    comm_.wait(r1);
    comm_.wait(r2);
  }
  J = comm_.allreduce_sum(J);
  return J + regularization(outer_only, p, g);
}

}  // namespace layerparallel

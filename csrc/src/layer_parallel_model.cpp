#include "layerparallel/layer_parallel_model.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <string>

#include "layerparallel/layer.hpp"
#include "layerparallel/model.hpp"
#include "layerparallel/kernels.hpp"
#include "layerparallel/parallel.hpp"

namespace layerparallel {

namespace {
enum Tags { kTagDdtLeft = 50, kTagDdtRight = 51, kTagLambda = 52 };
// Device scratch for the batched layer gradients: this many bytes of scaled
// adjoints at a time (at least one layer's).
constexpr index_t kGradientChunkBytes = index_t(64) << 20;
static_assert(kTagDdtLeft >= kModelTagFirst && kTagLambda <= kModelTagLast,
              "the model's tags must stay in its range (app.hpp)");

// One solve's outcome from its blocks' (the same cycles on disjoint rows): the
// residual 2-norms combine as the root of their squares; steps and batches
// count whole-batch applications, which every block makes alike.
void combine(SolveInfo& total, const SolveInfo& part, bool first) {
  if (first) {
    total = part;
    return;
  }
  total.blocks += 1;
  total.converged = total.converged && part.converged;
  total.iterations = std::max(total.iterations, part.iterations);
  const std::size_t m = std::min(total.residuals.size(), part.residuals.size());
  total.residuals.resize(m);
  for (std::size_t i = 0; i < m; ++i)
    total.residuals[i] = std::sqrt(total.residuals[i] * total.residuals[i] +
                                   part.residuals[i] * part.residuals[i]);
}
}  // namespace

// f(k) for every block k. On one rank on the host the blocks' solves are
// independent and run on the core's threads, one block per thread (no
// fork/join per step, each block in its thread's cache; the steps inside
// stay serial); an error in any block is raised after all have run.
template <class T>
template <class F>
void BasicLayerParallelModel<T>::for_parts(F&& f) {
  const index_t P = static_cast<index_t>(parts_.size());
  if (P == 1 || comm_.distributed() || dev_) {
    for (index_t k = 0; k < P; ++k) f(static_cast<std::size_t>(k));
    return;
  }
  std::vector<std::exception_ptr> errors(P);
  parallel_for(P, [&](index_t k) {
    try {
      f(static_cast<std::size_t>(k));
    } catch (...) {
      errors[k] = std::current_exception();
    }
  });
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}

template <class T>
std::vector<index_t> BasicLayerParallelModel<T>::first_layers(index_t n_layers, int n_ranks) {
  std::vector<index_t> f(n_ranks);
  for (int r = 0; r < n_ranks; ++r) f[r] = n_layers * r / n_ranks;
  return f;
}

template <class T>
BasicLayerParallelModel<T>::BasicLayerParallelModel(const NetConfig& cfg, const Comm& comm,
                                                    const MGRITOptions& opt,
                                                    std::shared_ptr<Executor> device)
    : cfg_(cfg), comm_(comm), opt_(opt), dev_(std::move(device)) {
  if (dev_ && dev_->device() == Device::cpu) dev_.reset();
  if (dev_) dev_layer_ = make_device_layer<T>(*dev_);
  if (dev_) dev_batch_ = make_device_batch_layer<T>(*dev_);
  if (comm.size() > cfg.n_layers)
    throw std::invalid_argument("more ranks than layers: every rank needs at least one layer");
  first_ = first_layers(cfg.n_layers, comm.size());
  const int r = comm.rank();
  const index_t end = r + 1 < comm.size() ? first_[r + 1] : cfg.n_layers;
  layout_ = ParamLayout::of(cfg, first_[r], end - first_[r]);
}

// Blocks pay where the states of a step stream through memory: narrow layers,
// whose products are cheap against their states. A block's state takes an
// eighth of a core's level-2 cache, so that a step's input, output and
// pre-activation and the states the engine reads next are still there (each
// block runs on one thread: for_parts); at least 256 rows, so that a step's
// fixed costs stay small, and only while a block is many rows per weight
// (>= 16 w rows: every block's steps read the layers' weights). (Measured at
// width 8, 32 layers, 5000 rows, one thread: 500- to 1000-row blocks 1.35x
// faster than the whole batch.)
template <class T>
index_t BasicLayerParallelModel<T>::block_rows(index_t n) const {
  index_t rows = opt_.batch_block;
  if (rows < 0) {
    const bool fixed = !(opt_.tol > 0.0) && !(opt_.rtol > 0.0);
    if (dev_ || comm_.distributed() || !fixed) return n;
    const index_t w = cfg_.width, state_row = w * static_cast<index_t>(sizeof(T));
    rows = std::max<index_t>(256, cache_bytes(2) / (8 * state_row));
    if (rows < 16 * w) return n;
  }
  if (rows == 0 || dev_) return n;
  return std::min(rows, n);
}

template <class T>
void BasicLayerParallelModel<T>::setup(index_t n) {
  if (n == batch_) return;
  const index_t S = n * cfg_.width;
  // Blocks of at least `rows` (the last may be up to twice that): near-equal sizes.
  const index_t blocks = std::max<index_t>(1, n / block_rows(n));
  parts_.clear();
  const auto N = cfg_.n_layers;
  // On one rank the blocks' solvers get no MPI communicator: they may run on
  // several threads at once (for_parts), and they send nothing anyway.
  const Comm part_comm = comm_.distributed() ? comm_ : Comm();
  for (index_t k = 0; k < blocks; ++k) {
    auto q = std::make_unique<Part>();
    q->r0 = n * k / blocks;
    q->rows = n * (k + 1) / blocks - q->r0;
    q->fwd_app = std::make_unique<BasicForwardApp<T>>(cfg_, q->rows);
    q->adj_app = std::make_unique<BasicAdjointApp<T>>(cfg_, q->rows, *q->fwd_app);
    if (dev_) {
      q->fwd_app->use_device(*dev_, *dev_layer_, dev_batch_.get());
      q->adj_app->use_device(*dev_, *dev_layer_, dev_batch_.get());
    }
    q->fwd = std::make_unique<BasicMGRIT<T>>(*q->fwd_app, N, opt_, part_comm,
                                             Distribution::blocks(first_, N, false));
    q->adj = std::make_unique<BasicMGRIT<T>>(*q->adj_app, N, opt_, part_comm,
                                             Distribution::blocks(first_, N, true));
    parts_.push_back(std::move(q));
  }
  if (dev_) {
    theta_dev_ = BasicBuffer<T>(*dev_, layout_.size);
    grad_dev_ = BasicBuffer<T>(*dev_, layout_.size);
    u0_dev_ = BasicBuffer<T>(*dev_, S);
    uN_dev_ = BasicBuffer<T>(*dev_, S);
    lam_dev_ = BasicBuffer<T>(*dev_, S);
    tmp_dev_ = BasicBuffer<T>(*dev_, S);
  }
  u0_.assign(S, T(0));
  z0_.assign(S, T(0));
  uN_.assign(S, T(0));
  lam_.assign(S, T(0));
  tmp_.assign(S, T(0));
  work_.assign(n * cfg_.n_out, T(0));
  batch_ = n;
}

template <class T>
void BasicLayerParallelModel<T>::set_max_iter(int n) {
  std::lock_guard<std::mutex> lock(mutex_);
  opt_.max_iter = n;
  for (auto& q : parts_) {
    q->fwd->set_max_iter(n);
    q->adj->set_max_iter(n);
  }
}

template <class T>
index_t BasicLayerParallelModel<T>::stored_size(bool adjoint) const {
  index_t size = 0;
  for (auto& q : parts_) size += (adjoint ? q->adj : q->fwd)->stored_size();
  return size;
}

template <class T>
void BasicLayerParallelModel<T>::warm_states(bool adjoint, T* out) {
  if (parts_.size() == 1) {
    (adjoint ? parts_[0]->adj : parts_[0]->fwd)->export_states(out);
    return;
  }
  const index_t w = cfg_.width, S = batch_ * w;
  std::vector<T> part;
  for (auto& q : parts_) {
    const BasicMGRIT<T>& m = adjoint ? *q->adj : *q->fwd;
    const index_t Sq = q->rows * w, slots = m.stored_size() / Sq;
    part.resize(m.stored_size());
    m.export_states(part.data());
    for (index_t i = 0; i < slots; ++i)
      std::copy(part.begin() + i * Sq, part.begin() + (i + 1) * Sq, out + i * S + q->r0 * w);
  }
}

template <class T>
void BasicLayerParallelModel<T>::set_warm_states(bool adjoint, const T* in) {
  if (parts_.size() == 1) {
    (adjoint ? parts_[0]->adj : parts_[0]->fwd)->import_states(in);
    return;
  }
  const index_t w = cfg_.width, S = batch_ * w;
  std::vector<T> part;
  for (auto& q : parts_) {
    BasicMGRIT<T>& m = adjoint ? *q->adj : *q->fwd;
    const index_t Sq = q->rows * w, slots = m.stored_size() / Sq;
    part.resize(m.stored_size());
    for (index_t i = 0; i < slots; ++i)
      std::copy(in + i * S + q->r0 * w, in + i * S + q->r0 * w + Sq, part.begin() + i * Sq);
    m.import_states(part.data());
  }
}

template <class T>
index_t BasicLayerParallelModel<T>::warm_state_size(index_t n) {
  std::lock_guard<std::mutex> lock(mutex_);
  setup(n);
  return stored_size(false) + stored_size(true);
}

template <class T>
void BasicLayerParallelModel<T>::get_warm_state(T* out) {
  std::lock_guard<std::mutex> lock(mutex_);
  warm_states(false, out);
  warm_states(true, out + stored_size(false));
}

template <class T>
void BasicLayerParallelModel<T>::set_warm_state(index_t n, const T* in) {
  std::lock_guard<std::mutex> lock(mutex_);
  setup(n);
  set_warm_states(false, in);
  set_warm_states(true, in + stored_size(false));
}

template <class T>
T* BasicLayerParallelModel<T>::twin(std::vector<T>& host, BasicBuffer<T>& dev) {
  return dev_ ? dev.data() : host.data();
}

template <class T>
ParamView<const T> BasicLayerParallelModel<T>::layers_on_executor(const T* theta) {
  if (!dev_) return {theta, layout_, cfg_.width};
  dev_->from_host(layout_.size, theta, theta_dev_.data());
  return {theta_dev_.data(), layout_, cfg_.width};
}

template <class T>
void BasicLayerParallelModel<T>::solve_forward(const ParamView<const T>& p,
                                       const ParamView<const T>& pe, const T* X,
                                       bool warm, SolveInfo* info) {
  // The opening layer is replicated: every rank has u_0, the initial guess.
  const index_t S = batch_ * cfg_.width;
  opening_forward(cfg_, p, X, batch_, u0_.data(), z0_.data());
  T* u0 = twin(u0_, u0_dev_);
  if (dev_) dev_->from_host(S, u0_.data(), u0);
  std::vector<SolveInfo> infos(parts_.size());
  for_parts([&](std::size_t k) {
    Part& q = *parts_[k];
    const index_t off = q.r0 * cfg_.width;
    q.fwd_app->bind(pe);
    infos[k] = q.fwd->solve(u0 + off, warm, u0 + off);
    if (comm_.rank() == last_rank())
      q.fwd->state_into(cfg_.n_layers, twin(uN_, uN_dev_) + off, twin(tmp_, tmp_dev_) + off);
  });
  SolveInfo total;
  for (std::size_t k = 0; k < infos.size(); ++k) combine(total, infos[k], k == 0);
  if (info) *info = total;
  if (dev_ && comm_.rank() == last_rank()) dev_->to_host(S, uN_dev_.data(), uN_.data());
  tape_ = next_tape_++;
}

template <class T>
std::uint64_t BasicLayerParallelModel<T>::forward(const T* theta, const T* X, index_t n,
                                          T* uN, bool warm, SolveInfo* info) {
  std::lock_guard<std::mutex> lock(mutex_);
  const bool fresh = n != batch_;
  setup(n);
  const ParamView<const T> p{theta, layout_, cfg_.width};
  solve_forward(p, layers_on_executor(theta), X, warm && !fresh, info);
  comm_.broadcast(last_rank(), uN_.data(), n * cfg_.width);
  std::copy(uN_.begin(), uN_.end(), uN);
  return tape_;
}

template <class T>
void BasicLayerParallelModel<T>::backward(const T* theta, const T* X, index_t n,
                                  const T* lamN, std::uint64_t tape, T* grad,
                                  T* dX, bool warm, SolveInfo* info) {
  std::lock_guard<std::mutex> lock(mutex_);
  const bool fresh = n != batch_;
  setup(n);
  warm = warm && !fresh;
  const ParamView<const T> p{theta, layout_, cfg_.width};
  const ParamView<const T> pe = layers_on_executor(theta);
  // Every rank made the same calls, so every rank takes the same branch.
  if (fresh || tape == 0 || tape != tape_) solve_forward(p, pe, X, warm, nullptr);
  tape_ = 0;  // the opening's backward consumes z0_
  std::fill(grad, grad + layout_.size, T(0));
  std::copy(lamN, lamN + n * cfg_.width, lam_.begin());
  adjoint_gradients(p, pe, X, warm, ParamView<T>{grad, layout_, cfg_.width}, dX, info);
}

template <class T>
double BasicLayerParallelModel<T>::loss_and_grad(const T* theta, const T* X, const T* Y,
                                         index_t n, T* grad, bool warm,
                                         ModelSolveInfo* info) {
  std::lock_guard<std::mutex> lock(mutex_);
  const bool fresh = n != batch_;
  setup(n);
  warm = warm && !fresh;
  const ParamView<const T> p{theta, layout_, cfg_.width};
  const ParamView<const T> pe = layers_on_executor(theta);
  SolveInfo fwd_info, adj_info;
  solve_forward(p, pe, X, warm, &fwd_info);

  // Head on the last rank (it holds u_N); loss and head gradient to all, in
  // one double message (float gradients convert to double and back exactly).
  const index_t w = cfg_.width, K = cfg_.n_out;
  std::vector<double> head(1 + K * w + K, 0.0);
  std::unique_ptr<ParamView<T>> g;
  if (grad) {
    std::fill(grad, grad + layout_.size, T(0));
    g = std::make_unique<ParamView<T>>(ParamView<T>{grad, layout_, w});
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

template <class T>
bool BasicLayerParallelModel<T>::owns(index_t n, bool adjoint) const {
  if (parts_.empty() || n < 0 || n > cfg_.n_layers) return false;
  const BasicMGRIT<T>& m = adjoint ? *parts_[0]->adj : *parts_[0]->fwd;
  const index_t p = adjoint ? cfg_.n_layers - n : n;
  return p >= m.first_point() && p <= m.last_point();
}

template <class T>
void BasicLayerParallelModel<T>::state(index_t n, bool adjoint, T* out) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!owns(n, adjoint))
    throw std::out_of_range("layer point " + std::to_string(n) + " is not held on this rank" +
                            (parts_.empty() ? " (no solve yet)" : ""));
  const index_t p = adjoint ? cfg_.n_layers - n : n;
  if (!dev_) {
    for (auto& q : parts_) {
      const index_t off = q->r0 * cfg_.width;
      (adjoint ? *q->adj : *q->fwd).state_into(p, out + off, tmp_.data() + off);
    }
    return;
  }
  const index_t S = batch_ * cfg_.width;
  d_dev_.reserve(*dev_, S);
  (adjoint ? *parts_[0]->adj : *parts_[0]->fwd).state_into(p, d_dev_.data(), tmp_dev_.data());
  dev_->to_host(S, d_dev_.data(), out);
}

template <class T>
void BasicLayerParallelModel<T>::adjoint_gradients(const ParamView<const T>& p,
                                           const ParamView<const T>& pe, const T* X,
                                           bool warm, const ParamView<T>& g, T* dX,
                                           SolveInfo* info) {
  // The adjoint, backward in layer index, linearized at the forward states.
  // On one level the gradients ride on its steps; on many they follow from
  // u_n and lambda_{n+1} (storage "all"), or from one more sweep ("C").
  // The layer gradients are formed where the layers run (ge), then the
  // device's come back to the host in one copy.
  const index_t w = cfg_.width, n = batch_, S = n * w;
  T* lam = twin(lam_, lam_dev_);
  if (dev_) {
    dev_->from_host(S, lam_.data(), lam);
    dev_->fill(layout_.size, T(0), grad_dev_.data());
  }
  const ParamView<T> ge = dev_ ? ParamView<T>{grad_dev_.data(), layout_, w} : g;
  // Block 0's layer gradients go straight into ge, block k's into slot k - 1
  // of part_grad_ (host: blocks only run there), added in block order after.
  const std::size_t P = parts_.size();
  if (P > 1) part_grad_.assign((P - 1) * layout_.size, T(0));
  std::vector<SolveInfo> infos(P);
  for_parts([&](std::size_t k) {
    Part& q = *parts_[k];
    const ParamView<T> gk =
        k == 0 ? ge : ParamView<T>{part_grad_.data() + (k - 1) * layout_.size, layout_, w};
    q.adj_app->bind(pe, q.fwd.get());
    cache_derivatives(q, pe);
    const bool one_level = q.adj->n_levels() == 1;
    q.adj_app->set_gradient(one_level ? &gk : nullptr);
    infos[k] = q.adj->solve(lam + q.r0 * w, warm, nullptr);
    q.adj_app->set_gradient(nullptr);
    if (!one_level && opt_.store_fine_f) {
      layer_gradients(q, gk);
    } else if (!one_level) {
      q.adj_app->set_gradient(&gk);
      q.adj->sweep_steps();
      q.adj_app->set_gradient(nullptr);
    }
  });
  SolveInfo total;
  for (std::size_t k = 0; k < P; ++k) {
    combine(total, infos[k], k == 0);
    if (k > 0) {
      const T* part = part_grad_.data() + (k - 1) * layout_.size;
      for (index_t i = layout_.W; i < layout_.W_out; ++i) g.data[i] += part[i];
    }
  }
  if (info) *info = total;
  if (dev_)
    dev_->to_host(layout_.W_out - layout_.W, grad_dev_.data() + layout_.W, g.data + layout_.W);

  // Opening layer (and dJ/dX) on rank 0, which holds lambda_0, then to all.
  const index_t n_open = layout_.W - layout_.W_in, n_x = dX ? n * cfg_.n_in : 0;
  std::vector<T> open(n_open + n_x, T(0));
  if (comm_.rank() == 0) {
    for (auto& q : parts_)
      q->adj->state_into(cfg_.n_layers, lam + q->r0 * w, twin(tmp_, tmp_dev_) + q->r0 * w);
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
template <class T>
void BasicLayerParallelModel<T>::cache_derivatives(Part& q, const ParamView<const T>& p) {
  if (!opt_.store_fine_f || q.fwd->n_levels() == 1) {
    q.adj_app->set_derivatives(nullptr, 0);
    return;
  }
  const index_t S = q.rows * cfg_.width, L = layout_.n_stored, first = layout_.first_layer;
  q.D.reserve(executor(), L * S);
  if (dev_) {  // every layer in one batched product and one element-wise launch
    std::vector<const T*> W(L), b(L), u(L);
    std::vector<T*> D(L);
    for (index_t i = 0; i < L; ++i) {
      W[i] = p.W(first + i);
      b[i] = p.b(first + i);
      u[i] = q.fwd->state(first + i);
      D[i] = q.D.data() + i * S;
    }
    dev_batch_->derivative(cfg_, L, W.data(), b.data(), u.data(), q.rows, D.data());
    q.adj_app->set_derivatives(q.D.data(), first);
    return;
  }
  parallel_for(L, [&](index_t i) {
    const index_t n = first + i;
    layer_derivative(cfg_, p.W(n), p.b(n), q.fwd->state(n), q.rows, q.D.data() + i * S);
  }, q.rows * row_product_flops(cfg_.width));
  q.adj_app->set_derivatives(q.D.data(), first);
}

// dJ/dW_n = h (D_n * lambda_{n+1})^T u_n and dJ/db_n for every layer here, all
// independent; lambda at the first point of the next rank comes from it.
template <class T>
void BasicLayerParallelModel<T>::layer_gradients(Part& q, const ParamView<T>& g) {
  const index_t N = cfg_.n_layers, w = cfg_.width, S = q.rows * w;
  const index_t first = layout_.first_layer, L = layout_.n_stored;
  const int r = comm_.rank(), P = comm_.size();
  // lambda_n sits at adjoint point N - n; rank r's first forward point is first.
  Request req;
  if (r > 0) {
    const T* mine = q.adj->state(N - first);
    if (dev_) {
      msg_.resize(S);
      dev_->to_host(S, mine, msg_.data());
      mine = msg_.data();
    }
    comm_.isend(r - 1, kTagLambda, mine, S, req);
  }
  T* next = twin(tmp_, tmp_dev_);
  if (r + 1 < P) {
    comm_.recv(r + 1, kTagLambda, tmp_.data(), S);
    if (dev_) dev_->from_host(S, tmp_.data(), next);
  }
  const double h = cfg_.h();
  if (dev_) {  // layers in chunks: one batched scale and product per chunk
    const index_t chunk = std::clamp<index_t>(
        kGradientChunkBytes / (S * static_cast<index_t>(sizeof(T))), 1, std::max<index_t>(L, 1));
    d_dev_.reserve(*dev_, chunk * S);
    std::vector<const T*> D(chunk), lam(chunk), u(chunk);
    std::vector<T*> gW(chunk), gb(chunk);
    for (index_t i0 = 0; i0 < L; i0 += chunk) {
      const index_t count = std::min(chunk, L - i0);
      for (index_t i = 0; i < count; ++i) {
        const index_t n = first + i0 + i;
        D[i] = q.D.data() + (i0 + i) * S;
        lam[i] = q.adj->stored(N - n - 1) ? q.adj->state(N - n - 1) : next;
        u[i] = q.fwd->state(n);
        gW[i] = g.W(n);
        gb[i] = g.b(n);
      }
      dev_batch_->scale(count, S, D.data(), lam.data(), d_dev_.data());
      dev_batch_->gradient(cfg_, count, h, u.data(), d_dev_.data(), q.rows, gW.data(), gb.data());
    }
    comm_.wait(req);
    return;
  }
  parallel_for(L, [&](index_t i) {
    const index_t n = first + i;
    const T* lam_next = q.adj->stored(N - n - 1) ? q.adj->state(N - n - 1) : tmp_.data();
    thread_local std::vector<T> d;
    d.resize(S);
    scale_by(S, q.D.data() + i * S, lam_next, d.data());
    layer_gradient(cfg_, h, q.fwd->state(n), d.data(), q.rows, g.W(n), g.b(n));
  }, q.rows * row_product_flops(cfg_.width));
  comm_.wait(req);
}

// Regularization of the distributed layers: local terms, the time-derivative
// pair across each rank boundary (one layer's weights to each neighbour), and
// the replicated opening/head term counted once.
template <class T>
double BasicLayerParallelModel<T>::regularization_all(const ParamView<const T>& p,
                                              const ParamView<T>* g) {
  NetConfig layers_only = cfg_, outer_only = cfg_;
  layers_only.gamma_out = 0.0;
  outer_only.gamma_tik = outer_only.gamma_ddt = 0.0;
  double J = regularization(layers_only, p, g);
  if (cfg_.gamma_ddt != 0.0 && comm_.distributed()) {
    const index_t w = cfg_.width, L = layout_.n_stored;
    const index_t first = layout_.first_layer, last = first + L - 1;
    const int r = comm_.rank(), P = comm_.size();
    // One layer theta_n = (W_n, b_n) as a contiguous message.
    auto pack = [&](index_t n, std::vector<T>& m) {
      m.resize(w * w + w);
      std::copy(p.W(n), p.W(n) + w * w, m.begin());
      std::copy(p.b(n), p.b(n) + w, m.begin() + w * w);
    };
    std::vector<T> mine_first, mine_last, left_last, right_first;
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
    auto pair = [&](const T* a, const T* b, T* ga, T* gb, index_t len) {
      double s = 0.0;  // gamma/(2h) ||b - a||^2 and its gradient
      for (index_t i = 0; i < len; ++i) {
        const double d = static_cast<double>(b[i]) - static_cast<double>(a[i]);
        s += d * d;
        if (ga) ga[i] -= static_cast<T>(c * d);
        if (gb) gb[i] += static_cast<T>(c * d);
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

template class BasicLayerParallelModel<float>;
template class BasicLayerParallelModel<double>;

}  // namespace layerparallel

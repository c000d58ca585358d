#include "layerparallel/steps_apps.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#include "layerparallel/blas.hpp"

namespace layerparallel {

namespace {
inline double sigmoid(double z) { return 1.0 / (1.0 + std::exp(-z)); }
}  // namespace

index_t MLPStepsConfig::n_weights() const {
  index_t n = 0;
  for (std::size_t l = 1; l < sizes.size(); ++l) n += sizes[l - 1] * sizes[l];
  return n;
}

MLPStepsApp::MLPStepsApp(const MLPStepsConfig& cfg, const double* X, const double* Y, index_t n)
    : cfg_(cfg), n_(n) {
  if (cfg.sizes.size() < 2) throw std::invalid_argument("sizes: need at least two layers");
  for (auto s : cfg.sizes)
    if (s < 1) throw std::invalid_argument("sizes: every layer needs at least one unit");
  if (n < 1) throw std::invalid_argument("X: no examples");
  if (cfg.unit < 1 || cfg.unit > n || n % cfg.unit != 0)
    throw std::invalid_argument("unit must divide the number of examples (" + std::to_string(n) +
                                "), got " + std::to_string(cfg.unit));
  if (!(cfg.alpha_base > 0.0) || !(cfg.alpha_max > 0.0))
    throw std::invalid_argument("alpha_base and alpha_max must be positive");
  n_weights_ = cfg.n_weights();
  batch_ = cfg.batch_size > 0 ? std::min(cfg.batch_size, n) : n;
  const std::size_t L = cfg.sizes.size() - 1;
  w_off_.assign(L + 1, 0);
  a_off_.assign(L + 1, 0);
  for (std::size_t l = 1; l <= L; ++l) {
    w_off_[l] = w_off_[l - 1] + (l > 1 ? cfg.sizes[l - 2] * cfg.sizes[l - 1] : 0);
    a_off_[l] = a_off_[l - 1] + (l > 1 ? batch_ * cfg.sizes[l - 1] : 0);
  }
  // About 6 flops per weight and example (forward, delta, gradient).
  const index_t examples = cfg.data == StepData::all ? n : cfg.unit;
  concurrent_ = 6.0 * static_cast<double>(examples) * static_cast<double>(n_weights_) >= 5e4;
  X_.assign(X, X + n * cfg.n_in());
  Y_.assign(Y, Y + n * cfg.n_out());
}

MLPStepsApp::Scratch& MLPStepsApp::scratch() const {
  thread_local Scratch s;
  index_t acts = 0, widest = 0;
  for (std::size_t l = 1; l < cfg_.sizes.size(); ++l) {
    acts += cfg_.sizes[l];
    widest = std::max(widest, std::max(cfg_.sizes[l], cfg_.sizes[l - 1]));
  }
  const auto need_a = static_cast<std::size_t>(batch_ * acts);
  const auto need_d = static_cast<std::size_t>(batch_ * widest);
  if (s.act.size() < need_a) s.act.resize(need_a);
  if (s.da.size() < need_d) s.da.resize(need_d);
  if (s.db.size() < need_d) s.db.resize(need_d);
  return s;
}

double MLPStepsApp::alpha(index_t from, index_t to) const {
  if (!cfg_.scale_alpha) return cfg_.alpha_base;
  return std::min(static_cast<double>(to - from) * cfg_.alpha_base, cfg_.alpha_max);
}

std::pair<index_t, index_t> MLPStepsApp::data_range(index_t from, index_t to) const {
  if (cfg_.data == StepData::all) return {0, n_};
  const index_t stride = to - from;
  const index_t point = cfg_.index_at_end ? to : from;
  const index_t i = cfg_.index == StepIndex::local ? point / stride : point;
  const index_t K = n_units();
  const index_t j = (cfg_.data == StepData::cycle ? i : i / 2) % K;
  return {j * cfg_.unit, cfg_.unit};
}

void MLPStepsApp::forward(const double* w, index_t first, index_t rows, Scratch& s) const {
  const auto& sz = cfg_.sizes;
  const double* prev = X_.data() + first * sz[0];
  for (std::size_t l = 1; l < sz.size(); ++l) {
    double* a = s.act.data() + a_off_[l];
    blas::gemm(false, false, rows, sz[l], sz[l - 1], 1.0, prev, sz[l - 1], w + w_off_[l], sz[l],
               0.0, a, sz[l]);
    for (index_t k = 0; k < rows * sz[l]; ++k) a[k] = sigmoid(a[k]);
    prev = a;
  }
}

void MLPStepsApp::pass(const double* in, double* out, index_t first, index_t count, double alpha,
                       Scratch& s) const {
  if (out != in) std::memcpy(out, in, n_weights_ * sizeof(double));
  const auto& sz = cfg_.sizes;
  const std::size_t L = sz.size() - 1;
  for (index_t b0 = first; b0 < first + count; b0 += batch_) {
    const index_t rows = std::min(batch_, first + count - b0);
    const double rate = cfg_.mean ? alpha / static_cast<double>(rows) : alpha;
    forward(out, b0, rows, s);
    // Output delta: dE/dz_L = (a_L - y) a_L (1 - a_L).
    {
      const double* a = s.act.data() + a_off_[L];
      const double* y = Y_.data() + b0 * sz[L];
      for (index_t k = 0; k < rows * sz[L]; ++k) s.da[k] = (a[k] - y[k]) * a[k] * (1.0 - a[k]);
    }
    double* d = s.da.data();
    double* dn = s.db.data();
    for (std::size_t l = L; l >= 1; --l) {
      const double* prev = l > 1 ? s.act.data() + a_off_[l - 1] : X_.data() + b0 * sz[0];
      double* W = out + w_off_[l];
      if (l > 1) {  // the delta below, with W_l before this step's update
        blas::gemm(false, true, rows, sz[l - 1], sz[l], 1.0, d, sz[l], W, sz[l], 0.0, dn,
                   sz[l - 1]);
        for (index_t k = 0; k < rows * sz[l - 1]; ++k) dn[k] *= prev[k] * (1.0 - prev[k]);
      }
      // W_l -= alpha a_{l-1}^T delta_l
      blas::gemm(true, false, sz[l - 1], sz[l], rows, -rate, prev, sz[l - 1], d, sz[l], 1.0, W,
                 sz[l]);
      std::swap(d, dn);
    }
  }
}

void MLPStepsApp::step(int, index_t from, index_t to, const double* in, double* out, bool) {
  const auto r = data_range(from, to);
  pass(in, out, r.first, r.second, alpha(from, to), scratch());
}

void MLPStepsApp::train(index_t n_steps, const double* w0, double* out, bool all_states) {
  const index_t S = n_weights_;
  Scratch& s = scratch();
  if (all_states) {
    std::memcpy(out, w0, S * sizeof(double));
    for (index_t i = 0; i < n_steps; ++i) {
      const auto r = data_range(i, i + 1);
      pass(out + i * S, out + (i + 1) * S, r.first, r.second, alpha(i, i + 1), s);
    }
    return;
  }
  std::vector<double> a(w0, w0 + S), b(S);
  for (index_t i = 0; i < n_steps; ++i) {
    const auto r = data_range(i, i + 1);
    pass(a.data(), b.data(), r.first, r.second, alpha(i, i + 1), s);
    a.swap(b);
  }
  std::memcpy(out, a.data(), S * sizeof(double));
}

double MLPStepsApp::loss(const double* w) const {
  Scratch& s = scratch();
  const auto& sz = cfg_.sizes;
  const std::size_t L = sz.size() - 1;
  double e = 0.0;
  for (index_t b0 = 0; b0 < n_; b0 += batch_) {
    const index_t rows = std::min(batch_, n_ - b0);
    forward(w, b0, rows, s);
    const double* a = s.act.data() + a_off_[L];
    const double* y = Y_.data() + b0 * sz[L];
    for (index_t k = 0; k < rows * sz[L]; ++k) e += 0.5 * (a[k] - y[k]) * (a[k] - y[k]);
  }
  return cfg_.mean ? e / static_cast<double>(n_) : e;
}

}  // namespace layerparallel

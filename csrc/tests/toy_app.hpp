// A linear toy propagator with a known solution, on any executor:
//   u_{n+1} = u_n + dt (-lambda_k u_n + f_n)  on block k of the state,
// with dt = h (to - from) on coarse levels (a longer step of the same ODE).
// Level 0 is u_{n+1} = A u_n + f_n with A = diag(1 - h lambda_k), f_n = h f(n):
// serial propagation (exact_solution) is what MGRIT must converge to.
#pragma once

#include <cmath>
#include <vector>

#include "layerparallel/app.hpp"
#include "layerparallel/backend.hpp"

namespace lptest {

using layerparallel::App;
using layerparallel::Buffer;
using layerparallel::Executor;
using layerparallel::index_t;

class ToyApp : public App {
 public:
  // at_source: which rank steps across a rank boundary (both paths of the engine).
  ToyApp(Executor& ex, index_t blocks, index_t block_size, index_t n_steps, double h,
         bool at_source = true)
      : ex_(ex), blocks_(blocks), m_(block_size), h_(h), at_source_(at_source), lambda_(blocks) {
    for (index_t k = 0; k < blocks; ++k) lambda_[k] = 0.5 + 1.5 * k / std::max<index_t>(1, blocks - 1);
    f_host_.resize((n_steps + 1) * state_size());
    for (index_t n = 0; n <= n_steps; ++n)
      for (index_t i = 0; i < state_size(); ++i)
        f_host_[n * state_size() + i] = std::sin(0.1 * n + 0.7 * i) + 0.3;
    f_ = Buffer(ex, static_cast<index_t>(f_host_.size()));
    ex.from_host(f_.size(), f_host_.data(), f_.data());
  }
  index_t state_size() const override { return blocks_ * m_; }
  Executor& executor() const override { return ex_; }
  bool step_at_source() const override { return at_source_; }
  void step(int, index_t from, index_t to, const double* in, double* out, bool) override {
    const double dt = h_ * static_cast<double>(to - from);
    for (index_t k = 0; k < blocks_; ++k) {
      double* o = out + k * m_;
      ex_.fill(m_, 0.0, o);
      ex_.axpy(m_, 1.0 - dt * lambda_[k], in + k * m_, o);
      ex_.axpy(m_, dt, f_.data() + from * state_size() + k * m_, o);
    }
  }
  // u_0 .. u_N by serial propagation on the host, (N + 1) x state_size().
  std::vector<double> exact_solution(const std::vector<double>& u0, index_t n_steps) const {
    const index_t S = state_size();
    std::vector<double> u((n_steps + 1) * S);
    std::copy(u0.begin(), u0.end(), u.begin());
    for (index_t n = 0; n < n_steps; ++n)
      for (index_t k = 0; k < blocks_; ++k)
        for (index_t j = 0; j < m_; ++j) {
          const index_t i = k * m_ + j;
          u[(n + 1) * S + i] = (1.0 - h_ * lambda_[k]) * u[n * S + i] +
                               h_ * f_host_[n * S + i];
        }
    return u;
  }

 private:
  Executor& ex_;
  index_t blocks_, m_;
  double h_;
  bool at_source_;
  std::vector<double> lambda_;
  std::vector<double> f_host_;
  Buffer f_;
};

}  // namespace lptest

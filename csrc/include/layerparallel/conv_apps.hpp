// The convolutional ODE-ResNet as MGRIT apps, the same pair as the dense
// network's: the forward u_{n+1} = u_n + h sigma(K_n * u_n + b_n) and the
// adjoint lambda_n = lambda_{n+1} + h K_n^T * (sigma'(z_n) lambda_{n+1}),
// backward in layer index (engine time t = N - n). Coarse steps span h c^l
// with the left layer's weights.
#pragma once

#include <vector>

#include "app.hpp"
#include "conv_network.hpp"
#include "mgrit.hpp"

namespace layerparallel {

class ConvForwardApp : public App {
 public:
  ConvForwardApp(const ConvConfig& cfg, index_t batch) : cfg_(cfg), batch_(batch) {}
  void bind(const ConvView<const double>& theta);
  index_t state_size() const override { return batch_ * cfg_.state_size(); }
  void step(int level, index_t from, index_t to, const double* in, double* out,
            bool inner) override;

 private:
  ConvConfig cfg_;
  index_t batch_;
  ConvView<const double> theta_{nullptr, {}};
  std::vector<std::vector<double>> z_;  // per thread
};

class ConvAdjointApp : public App {
 public:
  ConvAdjointApp(const ConvConfig& cfg, index_t batch, ConvForwardApp& fwd)
      : cfg_(cfg), batch_(batch), fwd_app_(fwd) {}
  void bind(const ConvView<const double>& theta, MGRIT* forward);
  // While set, every level-0 step also writes layer n's gradient into grad.
  void set_gradient(const ConvView<double>* grad) { grad_ = grad; }
  // sigma'(z_n) of the stored layers [first, first + count) (storage "all").
  void set_derivatives(const double* D, index_t first) {
    D_ = D;
    D_first_ = first;
  }
  index_t state_size() const override { return batch_ * cfg_.state_size(); }
  bool step_at_source() const override { return false; }
  void step(int level, index_t from, index_t to, const double* in, double* out,
            bool inner) override;

 private:
  const double* forward_state(index_t n);

  ConvConfig cfg_;
  index_t batch_;
  ConvForwardApp& fwd_app_;
  ConvView<const double> theta_{nullptr, {}};
  MGRIT* forward_ = nullptr;
  const ConvView<double>* grad_ = nullptr;
  const double* D_ = nullptr;
  index_t D_first_ = 0;
  struct Cache {
    index_t first = -1;
    std::vector<double> states, d;
  };
  std::vector<Cache> cache_;  // per thread
};

}  // namespace layerparallel

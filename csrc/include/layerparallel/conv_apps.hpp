// The convolutional ODE-ResNet as MGRIT apps, the same pair as the dense
// network's: the forward u_{n+1} = u_n + h sigma(K_n * u_n + b_n) and the
// adjoint lambda_n = lambda_{n+1} + h K_n^T * (sigma'(z_n) lambda_{n+1}),
// backward in layer index (engine time t = N - n). Coarse steps span h c^l
// with the left layer's weights. Templates on the scalar T of the states
// (float or double; instantiated in conv_apps.cpp).
#pragma once

#include <vector>

#include "app.hpp"
#include "conv_network.hpp"
#include "state_source.hpp"

namespace layerparallel {

template <class T>
class BasicConvForwardApp : public BasicApp<T> {
 public:
  BasicConvForwardApp(const ConvConfig& cfg, index_t batch) : cfg_(cfg), batch_(batch) {}
  void bind(const ConvView<const T>& theta);
  index_t state_size() const override { return batch_ * cfg_.state_size(); }
  void step(int level, index_t from, index_t to, const T* in, T* out,
            bool inner) override;

 private:
  ConvConfig cfg_;
  index_t batch_;
  ConvView<const T> theta_{nullptr, {}};
  std::vector<std::vector<T>> z_;  // per thread
};

template <class T>
class BasicConvAdjointApp : public BasicApp<T> {
 public:
  BasicConvAdjointApp(const ConvConfig& cfg, index_t batch, BasicConvForwardApp<T>& fwd)
      : cfg_(cfg), batch_(batch), fwd_app_(fwd) {}
  // forward: the solved forward propagation whose states this adjoint reads.
  void bind(const ConvView<const T>& theta, const BasicStateSource<T>* forward);
  // While set, every level-0 step also writes layer n's gradient into grad.
  void set_gradient(const ConvView<T>* grad) { grad_ = grad; }
  // sigma'(z_n) of the stored layers [first, first + count) (storage "all").
  void set_derivatives(const T* D, index_t first) {
    D_ = D;
    D_first_ = first;
  }
  index_t state_size() const override { return batch_ * cfg_.state_size(); }
  bool step_at_source() const override { return false; }
  void step(int level, index_t from, index_t to, const T* in, T* out,
            bool inner) override;

 private:
  const T* forward_state(index_t n);

  ConvConfig cfg_;
  index_t batch_;
  BasicConvForwardApp<T>& fwd_app_;
  ConvView<const T> theta_{nullptr, {}};
  const BasicStateSource<T>* forward_ = nullptr;
  const ConvView<T>* grad_ = nullptr;
  const T* D_ = nullptr;
  index_t D_first_ = 0;
  struct Cache {
    index_t first = -1;
    std::vector<T> states, d;
  };
  std::vector<Cache> cache_;  // per thread
};

using ConvForwardApp = BasicConvForwardApp<double>;
using ConvAdjointApp = BasicConvAdjointApp<double>;

}  // namespace layerparallel

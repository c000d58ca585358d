// The ODE-ResNet as MGRIT apps: the forward propagation u_{n+1} = Phi_n(u_n)
// and the adjoint lambda_n = lambda_{n+1} + h W_n^T (sigma'(z_n) * lambda_{n+1}),
// which runs backward in layer index (engine time t = N - n). On coarse
// levels a step spans h c^l with the weights of its left layer (injection).
//
// On the host the steps run layer.hpp's kernels (row blocks on the core's
// threads when the engine allows); with a device executor (use_device) the
// weights, states and scratch are device memory and the steps run the
// DeviceLayer kernels, one at a time in stream order; a batch of steps
// (interval-batched MGRIT) runs as the DeviceBatchLayer's batched products.
// On the host a batch is App's default: one step per interval, threads over
// the intervals (the same bits as the unbatched sweep).
#pragma once

#include <vector>

#include "app.hpp"
#include "backend.hpp"
#include "device_batch.hpp"
#include "device_layer.hpp"
#include "network.hpp"
#include "state_source.hpp"

namespace layerparallel {

class ForwardApp : public App {
 public:
  ForwardApp(const NetConfig& cfg, index_t batch) : cfg_(cfg), batch_(batch) {}
  // Steps on a device: `ex` holds the states, `layer` runs the kernels; both
  // outlive the app. Call before the first bind.
  void use_device(Executor& ex, DeviceLayer& layer, DeviceBatchLayer* batched = nullptr) {
    dev_ = &ex;
    layer_ = &layer;
    batched_ = batched;
  }
  // Call before a solve, outside parallel regions: sizes per-thread buffers.
  // theta is in the executor's memory.
  void bind(const ParamView<const double>& theta);
  index_t state_size() const override { return batch_ * cfg_.width; }
  Executor& executor() const override { return dev_ ? *dev_ : cpu_executor(); }
  bool concurrent_steps() const override { return dev_ == nullptr; }
  // On a device: steps depend on theta's address, the scratch and the sizes.
  std::uint64_t replay_key() const override;
  void step(int level, index_t from, index_t to, const double* in, double* out,
            bool inner) override;
  void step_batch(int level, const StepTask* tasks, index_t count) override;

 private:
  NetConfig cfg_;
  index_t batch_;
  ParamView<const double> theta_{nullptr, {}, 0};
  std::vector<std::vector<double>> z_;  // per thread (host)
  Executor* dev_ = nullptr;
  DeviceLayer* layer_ = nullptr;
  DeviceBatchLayer* batched_ = nullptr;
  Buffer z_dev_, z_batch_;
};

class AdjointApp : public App {
 public:
  AdjointApp(const NetConfig& cfg, index_t batch, ForwardApp& fwd)
      : cfg_(cfg), batch_(batch), fwd_app_(fwd) {}
  void use_device(Executor& ex, DeviceLayer& layer, DeviceBatchLayer* batched = nullptr) {
    dev_ = &ex;
    layer_ = &layer;
    batched_ = batched;
  }
  // Call before a solve (after the forward solve), outside parallel regions.
  // `forward` gives the forward states u_n at forward points n.
  void bind(const ParamView<const double>& theta, const StateSource* forward);
  // While set, every level-0 step also writes layer n's gradient into grad.
  void set_gradient(const ParamView<double>* grad) { grad_ = grad; }
  // sigma'(z_n) of the stored layers [first, first + count), batch x width
  // each (storage "all"): each step is then one product instead of two.
  // Null: recompute z_n in every step.
  void set_derivatives(const double* D, index_t first) {
    D_ = D;
    D_first_ = first;
  }
  index_t state_size() const override { return batch_ * cfg_.width; }
  Executor& executor() const override { return dev_ ? *dev_ : cpu_executor(); }
  bool concurrent_steps() const override { return dev_ == nullptr; }
  bool step_at_source() const override { return false; }
  // On a device with every forward state stored (no recomputation).
  std::uint64_t replay_key() const override;
  void step(int level, index_t from, index_t to, const double* in, double* out,
            bool inner) override;
  // On a device with every forward state stored: the batched kernels (else
  // one step at a time).
  void step_batch(int level, const StepTask* tasks, index_t count) override;

 private:
  // Forward state u_n: stored by the forward solve, or recomputed from its
  // stored point into this thread's cache of one forward interval.
  const double* forward_state(index_t n);

  NetConfig cfg_;
  index_t batch_;
  ForwardApp& fwd_app_;
  ParamView<const double> theta_{nullptr, {}, 0};
  const StateSource* forward_ = nullptr;
  const ParamView<double>* grad_ = nullptr;
  const double* D_ = nullptr;
  index_t D_first_ = 0;
  struct Cache {
    index_t first = -1;
    Buffer states, d;
  };
  std::vector<Cache> cache_;  // per thread
  Executor* dev_ = nullptr;
  DeviceLayer* layer_ = nullptr;
  DeviceBatchLayer* batched_ = nullptr;
  Buffer d_batch_;
};

}  // namespace layerparallel

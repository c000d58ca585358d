// The ODE-ResNet as MGRIT apps: the forward propagation u_{n+1} = Phi_n(u_n)
// and the adjoint lambda_n = lambda_{n+1} + h W_n^T (sigma'(z_n) * lambda_{n+1}),
// which runs backward in layer index (engine time t = N - n). On coarse
// levels a step spans h c^l with the weights of its left layer (injection).
//
// On the host the steps run layer.hpp's kernels (row blocks on the core's
// threads when the engine allows); with a device executor (use_device) the
// weights, states and scratch are device memory and the steps run the
// DeviceLayer kernels, one at a time in stream order; a batch of steps
// (interval-batched MGRIT) runs as the DeviceBatchLayer's batched products
// (on the host: App's default, one step per interval, threads over them). Both apps are templates
// on the scalar T (float or double; ForwardApp and AdjointApp are the double
// ones).
#pragma once

#include <vector>

#include "app.hpp"
#include "backend.hpp"
#include "device_batch.hpp"
#include "device_layer.hpp"
#include "network.hpp"
#include "state_source.hpp"

namespace layerparallel {

template <class T>
class BasicForwardApp : public BasicApp<T> {
 public:
  BasicForwardApp(const NetConfig& cfg, index_t batch) : cfg_(cfg), batch_(batch) {}
  // Steps on a device: `ex` holds the states, `layer` runs the kernels; both
  // outlive the app. Call before the first bind.
  void use_device(Executor& ex, BasicDeviceLayer<T>& layer,
                  BasicDeviceBatchLayer<T>* batched = nullptr) {
    dev_ = &ex;
    layer_ = &layer;
    batched_ = batched;
  }
  // Call before a solve, outside parallel regions: sizes per-thread buffers.
  // theta is in the executor's memory.
  void bind(const ParamView<const T>& theta);
  index_t state_size() const override { return batch_ * cfg_.width; }
  Executor& executor() const override { return dev_ ? *dev_ : cpu_executor(); }
  bool concurrent_steps() const override { return dev_ == nullptr; }
  // On a device: steps depend on theta's address, the scratch and the sizes.
  std::uint64_t replay_key() const override;
  void step(int level, index_t from, index_t to, const T* in, T* out, bool inner) override;
  // On a device: the batched kernels (one batched product per batch).
  void step_batch(int level, const BasicStepTask<T>* tasks, index_t count) override;

 private:
  NetConfig cfg_;
  index_t batch_;
  ParamView<const T> theta_{nullptr, {}, 0};
  std::vector<std::vector<T>> z_;  // per thread (host)
  Executor* dev_ = nullptr;
  BasicDeviceLayer<T>* layer_ = nullptr;
  BasicDeviceBatchLayer<T>* batched_ = nullptr;
  BasicBuffer<T> z_dev_, z_batch_;
};
using ForwardApp = BasicForwardApp<double>;

template <class T>
class BasicAdjointApp : public BasicApp<T> {
 public:
  BasicAdjointApp(const NetConfig& cfg, index_t batch, BasicForwardApp<T>& fwd)
      : cfg_(cfg), batch_(batch), fwd_app_(fwd) {}
  void use_device(Executor& ex, BasicDeviceLayer<T>& layer,
                  BasicDeviceBatchLayer<T>* batched = nullptr) {
    dev_ = &ex;
    layer_ = &layer;
    batched_ = batched;
  }
  // Call before a solve (after the forward solve), outside parallel regions.
  // `forward` gives the forward states u_n at forward points n.
  void bind(const ParamView<const T>& theta, const BasicStateSource<T>* forward);
  // While set, every level-0 step also writes layer n's gradient into grad.
  void set_gradient(const ParamView<T>* grad) { grad_ = grad; }
  // sigma'(z_n) of the stored layers [first, first + count), batch x width
  // each (storage "all"): each step is then one product instead of two.
  // Null: recompute z_n in every step.
  void set_derivatives(const T* D, index_t first) {
    D_ = D;
    D_first_ = first;
  }
  index_t state_size() const override { return batch_ * cfg_.width; }
  Executor& executor() const override { return dev_ ? *dev_ : cpu_executor(); }
  bool concurrent_steps() const override { return dev_ == nullptr; }
  bool step_at_source() const override { return false; }
  // On a device with every forward state stored (no recomputation).
  std::uint64_t replay_key() const override;
  void step(int level, index_t from, index_t to, const T* in, T* out, bool inner) override;
  // On a device with every forward state stored: the batched kernels (else
  // one step at a time).
  void step_batch(int level, const BasicStepTask<T>* tasks, index_t count) override;

 private:
  // Forward state u_n: stored by the forward solve, or recomputed from its
  // stored point into this thread's cache of one forward interval.
  const T* forward_state(index_t n);

  NetConfig cfg_;
  index_t batch_;
  BasicForwardApp<T>& fwd_app_;
  ParamView<const T> theta_{nullptr, {}, 0};
  const BasicStateSource<T>* forward_ = nullptr;
  const ParamView<T>* grad_ = nullptr;
  const T* D_ = nullptr;
  index_t D_first_ = 0;
  struct Cache {
    index_t first = -1;
    BasicBuffer<T> states, d;
  };
  std::vector<Cache> cache_;  // per thread
  Executor* dev_ = nullptr;
  BasicDeviceLayer<T>* layer_ = nullptr;
  BasicDeviceBatchLayer<T>* batched_ = nullptr;
  BasicBuffer<T> d_batch_;
};
using AdjointApp = BasicAdjointApp<double>;

}  // namespace layerparallel

// The whole ODE-ResNet: opening layer, residual layers, head, regularization,
// and the serial forward and backward sweeps that are the reference for MGRIT.
#pragma once

#include <cstdint>
#include <mutex>
#include <vector>

#include "network.hpp"

namespace layerparallel {

// u_0 from the data X (n x n_in). `z0` (n x width) keeps the opening's
// pre-activation for the backward pass.
void opening_forward(const NetConfig& cfg, const ParamView<const double>& theta, const double* X,
                     index_t n, double* u0, double* z0);

// Opening-layer gradient from lam_0 = dJ/du_0, and dJ/dX (n x n_in) into dX
// when non-null (a block inside a larger model). Destroys z0.
void opening_backward(const NetConfig& cfg, const ParamView<const double>& theta, const double* X,
                      index_t n, double* z0, const double* lam0, const ParamView<double>& grad,
                      double* dX = nullptr);

// Head output: logits (classification) or prediction (regression), n x n_out.
void head_output(const NetConfig& cfg, const ParamView<const double>& theta, const double* uN,
                 index_t n, double* out);

// Data term of J: softmax cross-entropy or half mean squared error, averaged
// over the n samples. If lamN is non-null it receives dloss/du_N and the head's
// gradient is written into grad. `work` holds n x n_out doubles.
double head_loss(const NetConfig& cfg, const ParamView<const double>& theta, const double* uN,
                 const double* Y, index_t n, double* work, double* lamN,
                 const ParamView<double>* grad);

// Tikhonov, time-derivative and output regularization of the stored layers;
// adds their gradient to grad when non-null.
double regularization(const NetConfig& cfg, const ParamView<const double>& theta,
                      const ParamView<double>* grad);

// Serial propagation u_{n+1} = Phi(u_n) over all layers; U holds N+1 states
// (U[0] given), Z receives the N pre-activations.
void forward_sweep(const NetConfig& cfg, const ParamView<const double>& theta, index_t n,
                   double* U, double* Z);

// Serial backward recursion from lam_N to lam_0 with every layer's gradient.
// Consumes Z (overwritten by the adjoint factors); lam holds lam_N on entry and
// lam_0 on exit.
void backward_sweep(const NetConfig& cfg, const ParamView<const double>& theta, index_t n,
                    const double* U, double* Z, double* lam, const ParamView<double>& grad);

// The serial model with its reusable workspace: the buffers for N+1 states are
// large, so they are kept between calls instead of being faulted in each time.
// Calls on one model are serialized (the workspace is shared).
class SerialModel {
 public:
  explicit SerialModel(const NetConfig& cfg);
  const NetConfig& config() const { return cfg_; }
  const ParamLayout& layout() const { return layout_; }

  // Final states u_N (n x width); returns the id of this propagation's tape.
  std::uint64_t forward(const double* theta, const double* X, index_t n, double* uN);
  // Head output for X (n x n_out).
  void predict(const double* theta, const double* X, index_t n, double* out);
  // J(theta) on (X, Y); fills grad (layout().size doubles) when non-null.
  double loss_and_grad(const double* theta, const double* X, const double* Y, index_t n,
                       double* grad);

  // The network up to u_N as a block inside a larger model: from lam_N =
  // dL/du_N (n x width), dL/dtheta (opening and residual layers; the head's
  // entries zero, no regularization) and dL/dX into dX (n x n_in) when
  // non-null. Reuses the states of forward() `tape` while the workspace still
  // holds them, else propagates again.
  void backward(const double* theta, const double* X, index_t n, const double* lamN,
                std::uint64_t tape, double* grad, double* dX);

 private:
  void propagate(const double* theta, const double* X, index_t n);
  NetConfig cfg_;
  ParamLayout layout_;
  std::mutex mutex_;
  std::vector<double> U_, Z_, z0_, lam_, work_;
  // Id of the propagation whose states U_, Z_, z0_ hold (0: none usable).
  std::uint64_t tape_ = 0, next_tape_ = 1;
  index_t tape_rows_ = 0;
};

}  // namespace layerparallel

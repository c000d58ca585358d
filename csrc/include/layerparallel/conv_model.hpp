// The whole convolutional ODE-ResNet: opening, residual conv layers, head,
// regularization, and the serial sweeps that are the reference for MGRIT.
// Data X arrive as (n, C_in, H, W); states are channels-last (see conv_network.hpp).
#pragma once

#include <mutex>
#include <vector>

#include "conv_network.hpp"

namespace layerparallel {

// Xt (n, H, W, C_in) from X (n, C_in, H, W).
void images_to_channels_last(const ConvConfig& cfg, const double* X, index_t n, double* Xt);

// u_0 from the channels-last input Xt; z0 keeps the opening's pre-activation.
void conv_opening_forward(const ConvConfig& cfg, const ConvView<const double>& theta,
                          const double* Xt, index_t n, double* u0, double* z0);
// Opening gradient from lam_0 = dJ/du_0. Destroys z0.
void conv_opening_backward(const ConvConfig& cfg, const ConvView<const double>& theta,
                           const double* Xt, index_t n, double* z0, const double* lam0,
                           const ConvView<double>& grad);

// Head features f(u_N) (n x features): channel means, or u_N flattened in (C, H, W) order.
void conv_features(const ConvConfig& cfg, const double* uN, index_t n, double* f);
// Logits W_out f(u_N) + b_out (n x n_out); `f` is n x features scratch.
void conv_head_output(const ConvConfig& cfg, const ConvView<const double>& theta,
                      const double* uN, index_t n, double* f, double* out);
// Softmax cross-entropy averaged over the n samples. With lamN, also dJ/du_N
// and the head's gradient into grad. `f` holds n x features, `work` n x n_out.
double conv_head_loss(const ConvConfig& cfg, const ConvView<const double>& theta,
                      const double* uN, const double* Y, index_t n, double* f, double* work,
                      double* lamN, const ConvView<double>* grad);

// Tikhonov, time-derivative and opening/head regularization of the stored
// layers (as for the dense network); adds the gradient to grad when non-null.
double conv_regularization(const ConvConfig& cfg, const ConvView<const double>& theta,
                           const ConvView<double>* grad);

// Serial propagation over all layers; U holds N+1 states, Z the pre-activations.
void conv_forward_sweep(const ConvConfig& cfg, const ConvView<const double>& theta, index_t n,
                        double* U, double* Z);
// Serial adjoint recursion lam_N -> lam_0 with every layer's gradient; consumes Z.
void conv_backward_sweep(const ConvConfig& cfg, const ConvView<const double>& theta, index_t n,
                         const double* U, double* Z, double* lam, const ConvView<double>& grad);

class ConvSerialModel {
 public:
  explicit ConvSerialModel(const ConvConfig& cfg);
  const ConvConfig& config() const { return cfg_; }
  const ConvLayout& layout() const { return layout_; }

  // Final states u_N (n, H, W, C).
  void forward(const double* theta, const double* X, index_t n, double* uN);
  // Logits (n x n_out).
  void predict(const double* theta, const double* X, index_t n, double* out);
  double loss_and_grad(const double* theta, const double* X, const double* Y, index_t n,
                       double* grad);

 private:
  void propagate(const double* theta, const double* X, index_t n);
  ConvConfig cfg_;
  ConvLayout layout_;
  std::mutex mutex_;
  std::vector<double> Xt_, U_, Z_, z0_, lam_, f_, work_;
};

}  // namespace layerparallel

// The whole convolutional ODE-ResNet: opening, residual conv layers, head,
// regularization, and the serial sweeps that are the reference for MGRIT.
// Data X arrive as (n, C_in, H, W); states are channels-last (see conv_network.hpp).
// Templates on the scalar T (float or double; instantiated in conv_model.cpp);
// losses and regularization are summed and returned in double.
#pragma once

#include <mutex>
#include <vector>

#include "conv_network.hpp"

namespace layerparallel {

// Xt (n, H, W, C_in) from X (n, C_in, H, W).
template <class T>
void images_to_channels_last(const ConvConfig& cfg, const T* X, index_t n, T* Xt);

// u_0 from the channels-last input Xt; z0 keeps the opening's pre-activation.
template <class T>
void conv_opening_forward(const ConvConfig& cfg, const ConvView<const T>& theta,
                          const T* Xt, index_t n, T* u0, T* z0);
// Opening gradient from lam_0 = dJ/du_0. Destroys z0.
template <class T>
void conv_opening_backward(const ConvConfig& cfg, const ConvView<const T>& theta,
                           const T* Xt, index_t n, T* z0, const T* lam0,
                           const ConvView<T>& grad);

// Head features f(u_N) (n x features): channel means, or u_N flattened in (C, H, W) order.
template <class T>
void conv_features(const ConvConfig& cfg, const T* uN, index_t n, T* f);
// Logits W_out f(u_N) + b_out (n x n_out); `f` is n x features scratch.
template <class T>
void conv_head_output(const ConvConfig& cfg, const ConvView<const T>& theta,
                      const T* uN, index_t n, T* f, T* out);
// Softmax cross-entropy averaged over the n samples. With lamN, also dJ/du_N
// and the head's gradient into grad. `f` holds n x features, `work` n x n_out.
template <class T>
double conv_head_loss(const ConvConfig& cfg, const ConvView<const T>& theta,
                      const T* uN, const T* Y, index_t n, T* f, T* work,
                      nondeduced<T>* lamN, const nondeduced<ConvView<T>>* grad);

// Tikhonov, time-derivative and opening/head regularization of the stored
// layers (as for the dense network); adds the gradient to grad when non-null.
template <class T>
double conv_regularization(const ConvConfig& cfg, const ConvView<const T>& theta,
                           const nondeduced<ConvView<T>>* grad);

// Serial propagation over all layers; U holds N+1 states, Z the pre-activations.
template <class T>
void conv_forward_sweep(const ConvConfig& cfg, const ConvView<const T>& theta, index_t n,
                        T* U, T* Z);
// Serial adjoint recursion lam_N -> lam_0 with every layer's gradient; consumes Z.
template <class T>
void conv_backward_sweep(const ConvConfig& cfg, const ConvView<const T>& theta, index_t n,
                         const T* U, T* Z, T* lam, const ConvView<T>& grad);

template <class T>
class BasicConvSerialModel {
 public:
  explicit BasicConvSerialModel(const ConvConfig& cfg);
  const ConvConfig& config() const { return cfg_; }
  const ConvLayout& layout() const { return layout_; }

  // Final states u_N (n, H, W, C).
  void forward(const T* theta, const T* X, index_t n, T* uN);
  // Logits (n x n_out).
  void predict(const T* theta, const T* X, index_t n, T* out);
  double loss_and_grad(const T* theta, const T* X, const T* Y, index_t n,
                       T* grad);

 private:
  void propagate(const T* theta, const T* X, index_t n);
  ConvConfig cfg_;
  ConvLayout layout_;
  std::mutex mutex_;
  std::vector<T> Xt_, U_, Z_, z0_, lam_, f_, work_;
};
using ConvSerialModel = BasicConvSerialModel<double>;

}  // namespace layerparallel

// The whole ODE-ResNet: opening layer, residual layers, head, regularization,
// and the serial forward and backward sweeps that are the reference for MGRIT.
// All are templates on the scalar T of data, parameters and states (float or
// double; explicit instantiations in the .cpp files). Losses and
// regularization terms are summed and returned in double.
#pragma once

#include <cstdint>
#include <mutex>
#include <vector>

#include "network.hpp"

namespace layerparallel {

// u_0 from the data X (n x n_in). `z0` (n x width) keeps the opening's
// pre-activation for the backward pass.
template <class T>
void opening_forward(const NetConfig& cfg, const ParamView<const T>& theta, const T* X,
                     index_t n, T* u0, T* z0);

// Opening-layer gradient from lam_0 = dJ/du_0, and dJ/dX (n x n_in) into dX
// when non-null (a block inside a larger model). Destroys z0.
template <class T>
void opening_backward(const NetConfig& cfg, const ParamView<const T>& theta, const T* X,
                      index_t n, T* z0, const T* lam0, const ParamView<T>& grad,
                      nondeduced<T>* dX = nullptr);

// Head output: logits (classification) or prediction (regression), n x n_out.
template <class T>
void head_output(const NetConfig& cfg, const ParamView<const T>& theta, const T* uN,
                 index_t n, T* out);

// Data term of J: softmax cross-entropy or half mean squared error, averaged
// over the n samples. If lamN is non-null it receives dloss/du_N and the head's
// gradient is written into grad. `work` holds n x n_out entries.
template <class T>
double head_loss(const NetConfig& cfg, const ParamView<const T>& theta, const T* uN,
                 const T* Y, index_t n, T* work, nondeduced<T>* lamN,
                 const nondeduced<ParamView<T>>* grad);

// Tikhonov, time-derivative and output regularization of the stored layers;
// adds their gradient to grad when non-null.
template <class T>
double regularization(const NetConfig& cfg, const ParamView<const T>& theta,
                      const nondeduced<ParamView<T>>* grad);

// Serial propagation u_{n+1} = Phi(u_n) over all layers; U holds N+1 states
// (U[0] given), Z the N pre-activations (K = T) or, where keeps_signs
// (layer.hpp) holds, only their signs (K = std::uint8_t, one byte per entry).
template <class T, class K>
void forward_sweep(const NetConfig& cfg, const ParamView<const T>& theta, index_t n,
                   T* U, K* Z);

// Serial backward recursion from lam_N to lam_0 with every layer's gradient,
// from what forward_sweep kept. Consumes z (overwritten by the adjoint
// factors; signs are only read); lam holds lam_N on entry and lam_0 on exit.
template <class T, class K>
void backward_sweep(const NetConfig& cfg, const ParamView<const T>& theta, index_t n,
                    const T* U, K* Z, T* lam, const ParamView<T>& grad);

// The serial model with its reusable workspace: the buffers for N+1 states are
// large, so they are kept between calls instead of being faulted in each time.
// Calls on one model are serialized (the workspace is shared).
template <class T>
class BasicSerialModel {
 public:
  explicit BasicSerialModel(const NetConfig& cfg);
  const NetConfig& config() const { return cfg_; }
  const ParamLayout& layout() const { return layout_; }

  // Final states u_N (n x width); returns the id of this propagation's tape.
  std::uint64_t forward(const T* theta, const T* X, index_t n, T* uN);
  // Head output for X (n x n_out).
  void predict(const T* theta, const T* X, index_t n, T* out);
  // J(theta) on (X, Y); fills grad (layout().size entries) when non-null.
  double loss_and_grad(const T* theta, const T* X, const T* Y, index_t n,
                       T* grad);

  // The network up to u_N as a block inside a larger model: from lam_N =
  // dL/du_N (n x width), dL/dtheta (opening and residual layers; the head's
  // entries zero, no regularization) and dL/dX into dX (n x n_in) when
  // non-null. Reuses the states of forward() `tape` while the workspace still
  // holds them, else propagates again.
  void backward(const T* theta, const T* X, index_t n, const T* lamN,
                std::uint64_t tape, T* grad, T* dX);

 private:
  void propagate(const T* theta, const T* X, index_t n);
  void backward_from_tape(const ParamView<const T>& p, index_t n, const ParamView<T>& g);
  NetConfig cfg_;
  ParamLayout layout_;
  std::mutex mutex_;
  std::vector<T> U_, Z_, z0_, lam_, work_;
  std::vector<std::uint8_t> S_;  // the signs of z instead of Z_ where keeps_signs
  bool signs_ = false;           // which of the two the last propagation kept
  // Id of the propagation whose states U_, Z_ (or S_), z0_ hold (0: none usable).
  std::uint64_t tape_ = 0, next_tape_ = 1;
  index_t tape_rows_ = 0;
};
using SerialModel = BasicSerialModel<double>;

}  // namespace layerparallel

// The convolutional ODE-ResNet solved by MGRIT across layers, on one rank or
// many, with the dense model's layout: rank r holds layers [f_r, f_{r+1}),
// f_r = floor(N r / P); opening and head are replicated; states cross each
// rank boundary once per sweep. A template on the scalar T of states and
// parameters (float or double; instantiated in conv_parallel_model.cpp).
#pragma once

#include <memory>
#include <mutex>
#include <vector>

#include "comm.hpp"
#include "conv_apps.hpp"
#include "conv_network.hpp"
#include "layer_parallel_model.hpp"
#include "mgrit.hpp"

namespace layerparallel {

template <class T>
class BasicConvLayerParallelModel {
 public:
  BasicConvLayerParallelModel(const ConvConfig& cfg, const Comm& comm, const MGRITOptions& opt);

  const ConvLayout& layout() const { return layout_; }
  const ConvConfig& config() const { return cfg_; }
  int levels() const { return fwd_ ? fwd_->n_levels() : 0; }
  index_t batch() const { return batch_; }

  index_t warm_state_size(index_t n);
  void get_warm_state(T* out);
  void set_warm_state(index_t n, const T* in);

  // u_N (n, H, W, C) on every rank.
  void forward(const T* theta, const T* X, index_t n, T* uN, bool warm,
               SolveInfo* info);
  // J(theta), identical on every rank; grad (this rank's layout) when non-null.
  double loss_and_grad(const T* theta, const T* X, const T* Y, index_t n,
                       T* grad, bool warm, ModelSolveInfo* info);

 private:
  void setup(index_t n);
  void solve_forward(const ConvView<const T>& p, const T* X, bool warm,
                     SolveInfo* info);
  double regularization_all(const ConvView<const T>& p, const ConvView<T>* g);
  void cache_derivatives(const ConvView<const T>& p);
  void layer_gradients(const ConvView<T>& g);
  int last_rank() const { return comm_.size() - 1; }

  ConvConfig cfg_;
  Comm comm_;
  MGRITOptions opt_;
  ConvLayout layout_;
  std::vector<index_t> first_;
  index_t batch_ = -1;
  std::unique_ptr<BasicConvForwardApp<T>> fwd_app_;
  std::unique_ptr<BasicConvAdjointApp<T>> adj_app_;
  std::unique_ptr<BasicMGRIT<T>> fwd_, adj_;
  std::vector<T> Xt_, u0_, z0_, uN_, lam_, f_, work_, tmp_;
  std::vector<T> D_;  // sigma'(z_n) of this rank's layers (storage "all")
  std::mutex mutex_;
};
using ConvLayerParallelModel = BasicConvLayerParallelModel<double>;

}  // namespace layerparallel

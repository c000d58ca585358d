// The convolutional ODE-ResNet solved by MGRIT across layers, on one rank or
// many, with the dense model's layout: rank r holds layers [f_r, f_{r+1}),
// f_r = floor(N r / P); opening and head are replicated; states cross each
// rank boundary once per sweep.
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

class ConvLayerParallelModel {
 public:
  ConvLayerParallelModel(const ConvConfig& cfg, const Comm& comm, const MGRITOptions& opt);

  const ConvLayout& layout() const { return layout_; }
  const ConvConfig& config() const { return cfg_; }
  int levels() const { return fwd_ ? fwd_->n_levels() : 0; }
  index_t batch() const { return batch_; }

  index_t warm_state_size(index_t n);
  void get_warm_state(double* out);
  void set_warm_state(index_t n, const double* in);

  // u_N (n, H, W, C) on every rank.
  void forward(const double* theta, const double* X, index_t n, double* uN, bool warm,
               SolveInfo* info);
  // J(theta), identical on every rank; grad (this rank's layout) when non-null.
  double loss_and_grad(const double* theta, const double* X, const double* Y, index_t n,
                       double* grad, bool warm, ModelSolveInfo* info);

 private:
  void setup(index_t n);
  void solve_forward(const ConvView<const double>& p, const double* X, bool warm,
                     SolveInfo* info);
  double regularization_all(const ConvView<const double>& p, const ConvView<double>* g);
  void cache_derivatives(const ConvView<const double>& p);
  void layer_gradients(const ConvView<double>& g);
  int last_rank() const { return comm_.size() - 1; }

  ConvConfig cfg_;
  Comm comm_;
  MGRITOptions opt_;
  ConvLayout layout_;
  std::vector<index_t> first_;
  index_t batch_ = -1;
  std::unique_ptr<ConvForwardApp> fwd_app_;
  std::unique_ptr<ConvAdjointApp> adj_app_;
  std::unique_ptr<MGRIT> fwd_, adj_;
  std::vector<double> Xt_, u0_, z0_, uN_, lam_, f_, work_, tmp_;
  std::vector<double> D_;  // sigma'(z_n) of this rank's layers (storage "all")
  std::mutex mutex_;
};

}  // namespace layerparallel

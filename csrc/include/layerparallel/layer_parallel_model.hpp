// The ODE-ResNet solved by MGRIT across layers, on one rank or many.
// Rank r holds layers [f_r, f_{r+1}) with f_r = floor(N r / P) (and forward
// points f_r .. f_{r+1} - 1, the last rank also point N); the opening layer
// and the head are replicated. Weights never travel; states cross each rank
// boundary once per sweep.
//
// With a device executor the residual layers run there: theta goes to the
// device once per call, the states, adjoints, sigma' cache and layer
// gradients stay there, and only u_0, u_N, lambda_N, lambda_0 and the layer
// gradients cross (the opening layer, head and regularization are small and
// stay on the host).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "backend.hpp"
#include "comm.hpp"
#include "device_layer.hpp"
#include "mgrit.hpp"
#include "network.hpp"
#include "resnet_apps.hpp"

namespace layerparallel {

struct ModelSolveInfo {
  SolveInfo forward, adjoint;
};

class LayerParallelModel {
 public:
  // `device`: the executor of the residual layers (null: the host).
  LayerParallelModel(const NetConfig& cfg, const Comm& comm, const MGRITOptions& opt,
                     std::shared_ptr<Executor> device = nullptr);

  static std::vector<index_t> first_layers(index_t n_layers, int n_ranks);
  const ParamLayout& layout() const { return layout_; }
  const NetConfig& config() const { return cfg_; }
  int levels() const { return fwd_ ? fwd_->n_levels() : 0; }
  Executor& executor() const { return dev_ ? *dev_ : cpu_executor(); }
  index_t batch() const { return batch_; }
  // Cycles per forward and adjoint solve from now on, keeping the warm states.
  void set_max_iter(int n);

  // The forward and adjoint solvers' stored states for batch n (checkpoints
  // of warm-started runs): their size, a copy out, and a copy in.
  index_t warm_state_size(index_t n);
  void get_warm_state(double* out);
  void set_warm_state(index_t n, const double* in);

  // u_N (n x width) on every rank; returns the id of this solve's tape.
  std::uint64_t forward(const double* theta, const double* X, index_t n, double* uN, bool warm,
                        SolveInfo* info);
  // J(theta), identical on every rank; grad (this rank's layout) when non-null.
  double loss_and_grad(const double* theta, const double* X, const double* Y, index_t n,
                       double* grad, bool warm, ModelSolveInfo* info);
  // The network up to u_N as a block inside a larger model: from lam_N =
  // dL/du_N (n x width, the same on every rank), this rank's dL/dtheta
  // (opening and residual layers; head entries zero, no regularization) and
  // dL/dX (n x n_in, every rank) when dX is non-null. Reuses forward solve
  // `tape` while the solver still holds it, else solves the forward again.
  void backward(const double* theta, const double* X, index_t n, const double* lamN,
                std::uint64_t tape, double* grad, double* dX, bool warm, SolveInfo* info);

  // Whether layer point n (0..N) is owned here: the forward state u_n (or,
  // with adjoint, lambda_n) of the last solve can then be read by state().
  bool owns(index_t n, bool adjoint) const;
  // u_n or lambda_n (n x width) of the last solve into out; lambda needs a
  // loss_and_grad with a gradient. Subdomain methods read their boundary
  // data here instead of propagating again.
  void state(index_t n, bool adjoint, double* out);

 private:
  void setup(index_t n);
  void solve_forward(const ParamView<const double>& p, const ParamView<const double>& pe,
                     const double* X, bool warm, SolveInfo* info);
  // theta's residual layers in the executor's memory (a view of theta itself on the host).
  ParamView<const double> layers_on_executor(const double* theta);
  // A host array's executor-side twin (the array itself on the host).
  double* twin(std::vector<double>& host, Buffer& dev);
  // From lam_ (= lambda_N on the last rank): the adjoint solve, every layer's
  // gradient and the opening's (on all ranks), dJ/dX on all ranks if dX.
  void adjoint_gradients(const ParamView<const double>& p, const ParamView<const double>& pe,
                         const double* X, bool warm, const ParamView<double>& g, double* dX,
                         SolveInfo* info);
  double regularization_all(const ParamView<const double>& p, const ParamView<double>* g);
  void cache_derivatives(const ParamView<const double>& pe);
  void layer_gradients(const ParamView<double>& ge);
  int last_rank() const { return comm_.size() - 1; }

  NetConfig cfg_;
  Comm comm_;
  MGRITOptions opt_;
  ParamLayout layout_;
  std::vector<index_t> first_;
  index_t batch_ = -1;
  std::unique_ptr<ForwardApp> fwd_app_;
  std::unique_ptr<AdjointApp> adj_app_;
  std::unique_ptr<MGRIT> fwd_, adj_;
  std::vector<double> u0_, z0_, uN_, lam_, work_, tmp_;
  Buffer D_;  // sigma'(z_n) of this rank's layers (storage "all"), executor memory
  std::shared_ptr<Executor> dev_;
  std::unique_ptr<DeviceLayer> dev_layer_;
  std::unique_ptr<DeviceBatchLayer> dev_batch_;  // interval-batched steps
  // Executor-side twins of theta, the gradient, u_0, u_N, lambda and scratch.
  Buffer theta_dev_, grad_dev_, u0_dev_, uN_dev_, lam_dev_, tmp_dev_, d_dev_;
  std::vector<double> msg_;  // host staging of a device state for MPI
  std::mutex mutex_;
  // Id of the forward solve the solver's states and z0_ belong to (0: none).
  std::uint64_t tape_ = 0, next_tape_ = 1;
};

}  // namespace layerparallel

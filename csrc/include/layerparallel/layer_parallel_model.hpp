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
//
// Samples propagate independently, so with a fixed number of cycles (no
// tolerance) the batch can be solved in blocks of rows, each by its own pair
// of MGRIT solvers: the same cycles and the same numbers (up to the order of
// the gradient's sums), but a block's states stay in cache from one step to
// the next instead of streaming the whole batch through memory every step
// (MGRITOptions::batch_block; by default on one rank, on the host, for
// narrow layers, with blocks sized from the level-2 cache). Residual norms
// are combined over the blocks; warm states keep the whole batch's layout.
//
// BasicLayerParallelModel<T> runs a network of scalar T (float or double;
// instantiated for both); LayerParallelModel is the double one. Losses and
// residual norms are double for both.
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

template <class T>
class BasicLayerParallelModel {
 public:
  // `device`: the executor of the residual layers (null: the host).
  BasicLayerParallelModel(const NetConfig& cfg, const Comm& comm, const MGRITOptions& opt,
                          std::shared_ptr<Executor> device = nullptr);

  static std::vector<index_t> first_layers(index_t n_layers, int n_ranks);
  const ParamLayout& layout() const { return layout_; }
  const NetConfig& config() const { return cfg_; }
  int levels() const { return parts_.empty() ? 0 : parts_[0]->fwd->n_levels(); }
  // Blocks of rows the batch of the last call is solved in (0 before any call).
  index_t batch_blocks() const { return static_cast<index_t>(parts_.size()); }
  // Rows per block the batch_block option gives for a batch of n rows here
  // (n: one block).
  index_t block_rows(index_t n) const;
  Executor& executor() const { return dev_ ? *dev_ : cpu_executor(); }
  index_t batch() const { return batch_; }
  // Cycles per forward and adjoint solve from now on, keeping the warm states.
  void set_max_iter(int n);

  // The forward and adjoint solvers' stored states for batch n (checkpoints
  // of warm-started runs): their size, a copy out, and a copy in.
  index_t warm_state_size(index_t n);
  void get_warm_state(T* out);
  void set_warm_state(index_t n, const T* in);

  // u_N (n x width) on every rank; returns the id of this solve's tape.
  std::uint64_t forward(const T* theta, const T* X, index_t n, T* uN, bool warm,
                        SolveInfo* info);
  // J(theta), identical on every rank; grad (this rank's layout) when non-null.
  double loss_and_grad(const T* theta, const T* X, const T* Y, index_t n,
                       T* grad, bool warm, ModelSolveInfo* info);
  // The network up to u_N as a block inside a larger model: from lam_N =
  // dL/du_N (n x width, the same on every rank), this rank's dL/dtheta
  // (opening and residual layers; head entries zero, no regularization) and
  // dL/dX (n x n_in, every rank) when dX is non-null. Reuses forward solve
  // `tape` while the solver still holds it, else solves the forward again.
  void backward(const T* theta, const T* X, index_t n, const T* lamN,
                std::uint64_t tape, T* grad, T* dX, bool warm, SolveInfo* info);

  // Whether layer point n (0..N) is owned here: the forward state u_n (or,
  // with adjoint, lambda_n) of the last solve can then be read by state().
  bool owns(index_t n, bool adjoint) const;
  // u_n or lambda_n (n x width) of the last solve into out; lambda needs a
  // loss_and_grad with a gradient. Subdomain methods read their boundary
  // data here instead of propagating again.
  void state(index_t n, bool adjoint, T* out);

 private:
  // One block of rows [r0, r0 + rows) with its own solvers and sigma' cache.
  struct Part {
    index_t r0 = 0, rows = 0;
    std::unique_ptr<BasicForwardApp<T>> fwd_app;
    std::unique_ptr<BasicAdjointApp<T>> adj_app;
    std::unique_ptr<BasicMGRIT<T>> fwd, adj;
    BasicBuffer<T> D;  // sigma'(z_n) of this rank's layers (storage "all"), executor memory
  };

  void setup(index_t n);
  template <class F>
  void for_parts(F&& f);
  void solve_forward(const ParamView<const T>& p, const ParamView<const T>& pe,
                     const T* X, bool warm, SolveInfo* info);
  // theta's residual layers in the executor's memory (a view of theta itself on the host).
  ParamView<const T> layers_on_executor(const T* theta);
  // A host array's executor-side twin (the array itself on the host).
  T* twin(std::vector<T>& host, BasicBuffer<T>& dev);
  // From lam_ (= lambda_N on the last rank): the adjoint solve, every layer's
  // gradient and the opening's (on all ranks), dJ/dX on all ranks if dX.
  void adjoint_gradients(const ParamView<const T>& p, const ParamView<const T>& pe,
                         const T* X, bool warm, const ParamView<T>& g, T* dX,
                         SolveInfo* info);
  double regularization_all(const ParamView<const T>& p, const ParamView<T>* g);
  void cache_derivatives(Part& q, const ParamView<const T>& pe);
  void layer_gradients(Part& q, const ParamView<T>& ge);
  // Level-0 states the blocks' forward (or adjoint) solvers store, in all.
  index_t stored_size(bool adjoint) const;
  // The level-0 states of every block in the whole batch's layout ([slot][n x width]).
  void warm_states(bool adjoint, T* out);
  void set_warm_states(bool adjoint, const T* in);
  int last_rank() const { return comm_.size() - 1; }

  NetConfig cfg_;
  Comm comm_;
  MGRITOptions opt_;
  ParamLayout layout_;
  std::vector<index_t> first_;
  index_t batch_ = -1;
  std::vector<std::unique_ptr<Part>> parts_;
  std::vector<T> u0_, z0_, uN_, lam_, work_, tmp_;
  std::vector<T> part_grad_;  // blocks 1.. : their layer gradients before they are added
  std::shared_ptr<Executor> dev_;
  std::unique_ptr<BasicDeviceLayer<T>> dev_layer_;
  std::unique_ptr<BasicDeviceBatchLayer<T>> dev_batch_;  // interval-batched steps
  // Executor-side twins of theta, the gradient, u_0, u_N, lambda and scratch.
  BasicBuffer<T> theta_dev_, grad_dev_, u0_dev_, uN_dev_, lam_dev_, tmp_dev_, d_dev_;
  std::vector<T> msg_;  // host staging of a device state for MPI
  std::mutex mutex_;
  // Id of the forward solve the solver's states and z0_ belong to (0: none).
  std::uint64_t tape_ = 0, next_tape_ = 1;
};
using LayerParallelModel = BasicLayerParallelModel<double>;

}  // namespace layerparallel

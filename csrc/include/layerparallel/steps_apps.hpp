// Training steps as an MGRIT app: serial training
// w_{i+1} = Phi_i(w_i), i = 0..N-1, is a lower-bidiagonal system over the
// training steps with the weight vector as state, so the engine of the layers
// (mgrit.hpp) solves it unchanged.
//
// The state is the flat weight vector of a bias-free sigmoid MLP
// n_0 - n_1 - ... - n_L: W_1 (n_0 x n_1, row-major), then W_2 (n_1 x n_2), ...
// (a bias is a constant input column of the data, as in the classic XOR code
// with X = [x1, x2, 1]). Forward a_0 = x, a_l = sigmoid(a_{l-1} W_l); loss
// E = 1/2 sum_examples sum_outputs (a_L - y)^2 (summed over the mini-batch, or
// averaged with `mean`: the sum divided by the mini-batch's examples); one
// gradient step W_l <- W_l - alpha dE/dW_l with every gradient taken at the
// same weights (full backpropagation before the update).
//
// Phi on level l from level-0 point `from` to `to` (stride s = to - from):
//   learning rate  alpha = alpha_base, or min(s alpha_base, alpha_max) with
//                  scale_alpha (s = 2^l for coarsening factor 2);
//   data           all examples (StepData::all), or data unit j of K = n/unit
//                  consecutive blocks of `unit` examples with j = i mod K
//                  (StepData::cycle) or j = floor(i/2) mod K
//                  (StepData::cycle_twice), where the step index i is that of
//                  the step's start point `from` (default) or, with
//                  index_at_end, of its end point `to` (the block row of the
//                  step in the global system), level-local (p/s,
//                  StepIndex::local) or the level-0 index p injected from the
//                  fine grid (StepIndex::injected);
//   mini-batches   the step's examples are visited in order in mini-batches of
//                  batch_size, one gradient step each (one Phi = one pass).
#pragma once

#include <utility>
#include <vector>

#include "app.hpp"

namespace layerparallel {

enum class StepData { all, cycle, cycle_twice };
enum class StepIndex { local, injected };

struct MLPStepsConfig {
  std::vector<index_t> sizes;  // n_0 (inputs, bias column included) .. n_L (outputs)
  index_t batch_size = 0;      // mini-batch inside one step; <= 0: the whole step's data
  index_t unit = 1;            // examples per data unit of the serialized modes
  double alpha_base = 1.0;
  double alpha_max = 1.0;
  bool scale_alpha = false;
  bool mean = false;            // loss averaged over the mini-batch instead of summed
  StepData data = StepData::all;
  StepIndex index = StepIndex::local;
  bool index_at_end = false;    // the data index from the step's end point, not its start

  index_t n_weights() const;
  index_t n_in() const { return sizes.front(); }
  index_t n_out() const { return sizes.back(); }
};

class MLPStepsApp : public App {
 public:
  // X (n x n_in) and Y (n x n_out), row-major, are copied.
  MLPStepsApp(const MLPStepsConfig& cfg, const double* X, const double* Y, index_t n);

  const MLPStepsConfig& config() const { return cfg_; }
  index_t n_examples() const { return n_; }
  index_t n_units() const { return n_ / cfg_.unit; }

  index_t state_size() const override { return n_weights_; }
  void step(int level, index_t from, index_t to, const double* in, double* out,
            bool inner_parallel) override;
  // Steps too small to pay for a thread fork (XOR: ~100 flops) run on the
  // calling thread; larger ones run concurrently across intervals.
  bool concurrent_steps() const override { return concurrent_; }

  // The learning rate and the examples [first, first + count) of a step.
  double alpha(index_t from, index_t to) const;
  std::pair<index_t, index_t> data_range(index_t from, index_t to) const;

  // Serial training: n_steps level-0 steps from w0. `out` receives w_N, or
  // with all_states the states w_0..w_N ((n_steps + 1) x state_size()).
  void train(index_t n_steps, const double* w0, double* out, bool all_states);

  // E(w) = 1/2 sum of squared errors over all examples (divided by their number with mean).
  double loss(const double* w) const;

 private:
  struct Scratch {  // one per thread (thread_local): steps run concurrently
    std::vector<double> act;     // a_1 .. a_L of one mini-batch
    std::vector<double> da, db;  // deltas
  };
  Scratch& scratch() const;
  // out = w after gradient steps over examples [first, first + count) in mini-batches.
  void pass(const double* in, double* out, index_t first, index_t count, double alpha,
            Scratch& s) const;
  // Forward of `rows` examples starting at `first` into s.act.
  void forward(const double* w, index_t first, index_t rows, Scratch& s) const;

  MLPStepsConfig cfg_;
  index_t n_;
  index_t n_weights_;
  index_t batch_;  // effective mini-batch cap
  bool concurrent_ = true;
  std::vector<index_t> w_off_, a_off_;
  std::vector<double> X_, Y_;
};

}  // namespace layerparallel

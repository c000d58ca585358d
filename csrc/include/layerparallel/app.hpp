// The contract between the MGRIT engine and a propagator ("app").
//
// The engine never knows what a state is: it sees flat double vectors of
// state_size() entries and moves, adds and measures them itself. All it asks
// of the app is the step Phi between two level-0 points. Apps: the ODE-ResNet
// forward and adjoint (resnet_apps.hpp), a training step (steps), and a
// Python callable (bindings).
#pragma once

#include "config.hpp"

namespace layerparallel {

class App {
 public:
  virtual ~App() = default;

  // Entries of one state vector.
  virtual index_t state_size() const = 0;

  // out = Phi(in): the step on `level` from level-0 point `from` to level-0
  // point `to` (to - from = the level's stride). `inner_parallel` says the
  // caller runs nothing else concurrently, so the step may use the core's
  // threads itself; otherwise it must run on the calling thread.
  virtual void step(int level, index_t from, index_t to, const double* in, double* out,
                    bool inner_parallel) = 0;

  // Whether steps may run concurrently on different threads.
  virtual bool concurrent_steps() const { return true; }

  // Which rank evaluates the step across a rank boundary: the owner of the
  // point stepped from (true; it holds that step's data, e.g. layer n for the
  // forward u_n -> u_{n+1}) or the owner of the point stepped to (false; the
  // adjoint lambda_{n+1} -> lambda_n needs layer n and u_n at the target).
  virtual bool step_at_source() const { return true; }

  // An error raised inside step() (e.g. by a Python callable) that the engine
  // could not throw without leaving other ranks waiting: the app records it,
  // fills `out` with NaN, and the engine rethrows after the next residual
  // reduction, on every rank alike.
  virtual bool failed() const { return false; }
};

}  // namespace layerparallel

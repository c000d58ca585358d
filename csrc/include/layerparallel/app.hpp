// The contract between the MGRIT engine and a propagator ("app").
//
// The engine never knows what a state is: it sees flat vectors of T (double or
// float; BasicApp<T>, and App = BasicApp<double>) of
// state_size() entries, kept in the memory of the app's executor, and moves,
// adds and measures them through that executor (backend.hpp). All it asks of
// the app is the step Phi between two level-0 points. Apps: the ODE-ResNet
// forward and adjoint (resnet_apps.hpp), a training step (steps_apps.hpp),
// and a Python callable (bindings).
//
// Rules every app keeps (check_app.hpp tests the first three):
//  - Determinism: step() with the same arguments returns the same bits, every
//    time and on every thread; the engine's "converged to serial propagation
//    exactly" rests on it.
//  - Aliasing: `in` is read-only and is never modified; `out` never overlaps
//    `in` (the engine passes distinct state slots). The app keeps no pointer to
//    either after step() returns.
//  - Thread safety: when concurrent_steps() is true, step() may run on several
//    threads at once (inner_parallel = false) on different (in, out) pairs; the
//    app keeps per-thread scratch. When false, steps run one at a time on the
//    engine's driver thread with inner_parallel = true.
//  - Memory: `in` and `out` are in the app's executor's memory (device
//    pointers for a device executor); so are g0 and the initial guess given
//    to MGRIT::solve.
//  - Batches: step_batch(level, tasks, count) hands the app independent steps
//    at once (every interval of a level on this rank; the engine does so when
//    batching is on, e.g. on a device). The tasks' outputs are distinct and
//    never overlap any task's input, so they may run in any order or at once.
//    Each task's `out` must get the same bits as step() would give it (the
//    engine's batched and unbatched sweeps agree exactly); the default loops
//    over step() (threads over tasks when concurrent_steps()). A device app
//    overrides it to run step j of all intervals as one batched product and
//    one element-wise launch. Called from the engine's driver thread only.
//  - No MPI: an app never communicates; the engine owns every message. The
//    model around the apps (e.g. layer_parallel_model) uses the tags in
//    [kModelTagFirst, kModelTagLast], the engine [kEngineTagFirst, ...]:
//    4 tags per level (relaxation, restriction, coarsest solve).
#pragma once

#include <atomic>
#include <cstdint>
#include <initializer_list>

#include "backend.hpp"
#include "config.hpp"

namespace layerparallel {

constexpr int kModelTagFirst = 0;
constexpr int kModelTagLast = 999;
constexpr int kEngineTagFirst = 1000;

// One step of a batch: out = Phi(in) from level-0 point `from` to `to`.
template <class T>
struct BasicStepTask {
  index_t from, to;
  const T* in;
  T* out;
};
using StepTask = BasicStepTask<double>;

// A replay key from the values a recorded sequence depends on (FNV-1a
// style mixing; never 0, which means "not replayable").
inline std::uint64_t replay_hash(std::initializer_list<std::uint64_t> values) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (std::uint64_t v : values) h = (h ^ v) * 0x100000001b3ULL;
  return h == 0 ? 1 : h;
}
template <class T>
std::uint64_t key_of(const T* p) {
  return reinterpret_cast<std::uint64_t>(p);
}

template <class T>
class BasicApp {
 public:
  using scalar = T;
  virtual ~BasicApp() = default;

  // Entries of one state vector.
  virtual index_t state_size() const = 0;

  // Where the states live and the engine's vector arithmetic runs.
  virtual Executor& executor() const { return cpu_executor(); }

  // out = Phi(in): the step on `level` from level-0 point `from` to level-0
  // point `to` (to - from = the level's stride). `inner_parallel` says the
  // caller runs nothing else concurrently, so the step may use the core's
  // threads itself; otherwise it must run on the calling thread.
  virtual void step(int level, index_t from, index_t to, const T* in, T* out,
                    bool inner_parallel) = 0;

  // The steps tasks[0..count) on `level` (all with to - from = the level's
  // stride), independent of each other; see the rules above.
  virtual void step_batch(int level, const BasicStepTask<T>* tasks, index_t count);

  // Nonzero when every step() of this app queues only work on a device
  // executor, and the same work for the same arguments until the key
  // changes (it must change with everything the steps read besides `in`:
  // weights, scratch, sizes). The engine then records chains of steps once
  // and replays them (Executor::record_or_replay). 0: never replayed.
  // Recordings live in the executor and outlive the app, and a later app's
  // buffers may reuse the addresses of an earlier one's: mix instance() in.
  virtual std::uint64_t replay_key() const { return 0; }
  // This app object's number, never reused in the process.
  std::uint64_t instance() const { return instance_; }

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

 private:
  static std::uint64_t next_instance() {
    static std::atomic<std::uint64_t> count{0};
    return ++count;
  }
  const std::uint64_t instance_ = next_instance();
};
using App = BasicApp<double>;

}  // namespace layerparallel

// MGRIT: multigrid reduction in time, written once for every propagator.
// Solves u_0 = g_0, u_{p+1} = Phi_p(u_p) (+ g_{p+1})
// for p = 0..N-1 with FAS, F/FCF relaxation, V- and F-cycles over any number
// of levels, distributed over the ranks of a Comm by contiguous blocks of
// level-0 points. The engine owns the states (in the memory of the app's
// executor) and does all vector arithmetic through that executor; the App
// only steps. Messages go through host buffers (one copy each way on a device).
// BasicMGRIT<T> runs on states of T (float or double; instantiated for both in
// mgrit.cpp); MGRIT is the double engine. Residual norms are double for both.
#pragma once

#include <atomic>
#include <stdexcept>
#include <string>
#include <vector>

#include "app.hpp"
#include "backend.hpp"
#include "comm.hpp"
#include "state_source.hpp"

namespace layerparallel {

struct MGRITOptions {
  std::vector<index_t> cfactor{4};  // per level; the last entry repeats
  int max_levels = 10;
  index_t min_coarse = 2;   // stop coarsening at a level with <= this many intervals
  int relax_cf = 1;         // C-then-F sweeps after the first F: 0 = F, 1 = FCF, ...
  bool fcycle = false;      // F-cycles instead of V-cycles
  double tol = 1e-9;        // absolute residual tolerance (<= 0: off)
  double rtol = 0.0;        // tolerance relative to the first residual (<= 0: off)
  int max_iter = 50;
  bool store_fine_f = true; // keep level-0 F-point states ("all"), or C-points only ("C")
  double divergence = 1e8;  // residual growth over the first residual that counts as divergence
  // XBraid's default start: before the first cycle, inject the initial guess
  // down to the coarsest level, solve there, and interpolate up (no residual).
  bool skip_first_down = false;
  // XBraid's conventions: the start (with skip_first_down) runs F-cycles'
  // V-cycles on the way up and counts as an iteration; every residual is
  // followed by its cycle, which counts, before the check.
  bool xbraid = false;
  // Interval-batched sweeps: each relaxation hands the app step j of every
  // interval of the level at once (App::step_batch), and the engine's vector
  // updates run as batched executor operations. 1 = on, 0 = off (one step
  // call per step), -1 = on exactly when the app's states live on a device.
  // Both give the same bits.
  int batch_intervals = -1;
  // Models whose samples propagate independently (the dense ODE-ResNet) may
  // solve the batch in blocks of this many rows, each with its own solvers:
  // only with a fixed number of cycles (tol and rtol off). 0 = the whole
  // batch at once, -1 = chosen by the model (from the cache, one rank, host).
  index_t batch_block = -1;
  // On a device and one rank: the serial chain of the coarsest level (all of
  // a one-level, i.e. serial, solve) is recorded once and replayed as one
  // launch (a CUDA graph) when the app allows it (App::replay_key).
  bool graphs = true;
  // Boundary messages of a device solve: false = staged through page-locked
  // host buffers (any MPI), true = device pointers handed to MPI (needs a
  // CUDA-aware MPI; see devices.py for the detection and its override).
  bool device_messages = false;
};

// The level hierarchy an MGRIT of n_steps builds with these options: level
// l+1 keeps every cf-th point of level l. intervals[l] = N / prod of the
// factors above; cfactor[l] the factor to level l+1 (1 on the coarsest).
struct Hierarchy {
  std::vector<index_t> intervals, cfactor, stride;
};
Hierarchy build_hierarchy(index_t n_steps, const MGRITOptions& opt);

// Raised on every rank alike when the residual grows past the bound or is not finite.
struct MGRITDiverged : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct SolveInfo {
  int iterations = 0;
  bool converged = false;
  std::vector<double> residuals;  // 2-norm over level-0 C-points, one per cycle
  long long steps = 0;            // step applications on this rank
  long long batches = 0;          // App::step_batch calls on this rank (batched sweeps)
  long long replays = 0;          // serial chains replayed from a recording (device graphs)
  int blocks = 1;                 // blocks of the batch solved one after the other (models)
};

// Where each rank's points lie, in the engine's time direction.
struct Distribution {
  std::vector<index_t> start;  // start[q] = first level-0 point of position q; start[P] = N + 1
  std::vector<int> rank;       // MPI rank at position q
  // Balanced contiguous blocks; `reversed` maps position q to rank P-1-q.
  static Distribution blocks(const std::vector<index_t>& first_points, index_t n_steps,
                             bool reversed);
};

template <class T>
class BasicMGRIT : public BasicStateSource<T> {
 public:
  BasicMGRIT(BasicApp<T>& app, index_t n_steps, const MGRITOptions& opt, const Comm& comm,
             const Distribution& dist);

  // Solve with initial condition g0 (read on the owner of point 0 only).
  // Without warm start the level-0 states start from init_guess (every
  // owned point), else from the previous solution. Both are in the memory of
  // the app's executor.
  SolveInfo solve(const T* g0, bool warm_start, const T* init_guess);
  // Cycles per solve from now on (adaptive one-shot training); states are kept.
  void set_max_iter(int n) { opt_.max_iter = n; }

  // Level-0 points owned here: [first_point(), last_point()].
  index_t first_point() const override { return levels_[0].p0; }
  index_t last_point() const override { return levels_[0].p1; }
  index_t n_steps() const { return levels_[0].n; }
  int n_levels() const { return static_cast<int>(levels_.size()); }
  // Whether sweeps hand the app whole batches of intervals (batch_intervals).
  bool batched() const { return batched_; }
  index_t cfactor(int level) const { return levels_[level].cf; }
  index_t level_intervals(int level) const { return levels_[level].n; }

  // One step into every owned level-0 point p >= 1 from the current states
  // (an F-relaxation with C-point candidates; states do not change once
  // converged). Apps hook into it, e.g. the adjoint computes the gradients.
  // Needs at least two levels (on one level the solve itself is that sweep).
  void sweep_steps();

  // The stored level-0 states (what a warm start begins from), for
  // checkpoints, as host arrays; import_states makes the next warm solve
  // start from them.
  index_t stored_size() const { return static_cast<index_t>(levels_[0].u.size()); }
  void export_states(T* out) const;
  void import_states(const T* in);

  // Whether level-0 point p (owned) has a stored state, and that state.
  bool stored(index_t p) const override;
  const T* state(index_t p) const override;  // executor memory
  index_t stored_spacing() const override { return levels_[0].cf; }
  // The state at owned level-0 point p into out: stored, or recomputed from
  // its C-point (storage "C").
  void state_into(index_t p, T* out, T* work);

 private:
  struct Level {
    index_t stride = 1, cf = 1, n = 0, p0 = 0, p1 = -1;
    int left = -1, right = -1;  // neighbour ranks holding points of this level
    bool store_f = true;
    // F-points hold exactly what F-relaxation from the current C-points gives
    // (then a relaxation only needs the C-point steps).
    bool consistent = false;
    // u: level 0's states (every point, or storage "C": the C-points and the
    // anchor); coarser levels share them (u_ptr). g only on levels >= 1.
    BasicBuffer<T> u, g;
    BasicHostBuffer<T> send_buf, recv_buf;  // host: what MPI sends and receives (staged)
    BasicBuffer<T> send_dev, recv_dev;  // their executor-side copies (device executors only)
    bool recv_copying = false;  // a copy from recv_buf to the device may be in flight
    Request send_req;
  };

  bool is_c(const Level& L, index_t p) const { return L.cf > 1 && p % L.cf == 0; }
  T* u_ptr(int l, index_t p);
  const T* g_ptr(int l, index_t p) const;  // null for zero
  void phi(int l, index_t p, const T* in, T* out, bool inner);  // Phi_p(in)+g_{p+1}
  void phi_plain(int l, index_t p, const T* in, T* out, bool inner);
  void send_boundary(int l, int tag, const T* u_last);
  // Phi(u_{p0-1}) (+ g_{p0} if add_g) from the left neighbour's message.
  void recv_boundary(int l, int tag, T* out, bool add_g);
  T* work(int slot);

  const T* propagate(int l, index_t s, const T* x, index_t e, T* wa, T* wb, bool inner);
  T* coarse_slot(int l, index_t p);  // level l+1's g at C-point p of level l
  void relax_f(int l, bool candidates);
  // The batched forms: step j of every interval in one App::step_batch.
  void phi_batch(int l, std::vector<BasicStepTask<T>>& tasks, bool add_g);
  void relax_f_batched(int l, bool candidates);
  // The leading F-points before this rank's first C-point (after the receive).
  void relax_leading(int l, bool candidates, bool send_out, int tg);
  T* batch_work(index_t states);
  // dst[i] = src[i] for every pair (one batched copy when batching).
  void copy_all(const std::vector<const T*>& src, const std::vector<T*>& dst);
  void candidates_only(int l);
  void apply_candidates(int l);
  double residual_into_coarse(int l);
  void restrict_to(int l);
  void correct_from(int l);
  void coarsest_solve(int l);
  void cycle(int l, bool fcycle, double* fine_residual);
  void nested_start();
  void check_steps();  // collective: throws on every rank if a step failed on any
  void inject_start(int l);
  void xbraid_start();

  BasicApp<T>& app_;
  Executor& ex_;
  bool host_;  // the executor's memory is host memory (no staging for messages)
  bool batched_ = false;
  MGRITOptions opt_;
  Comm comm_;
  Distribution dist_;
  index_t S_;
  std::vector<Level> levels_;
  std::vector<BasicBuffer<T>> work_;  // per thread: 3 states
  BasicBuffer<T> g0_;
  BasicBuffer<T> batch_work_;  // batched sweeps: a state per interval (storage "C": two)
  bool have_solution_ = false;
  std::atomic<long long> steps_{0};
  long long batches_ = 0, replays_ = 0;
};
using MGRIT = BasicMGRIT<double>;

}  // namespace layerparallel

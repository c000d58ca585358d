// Bindings for the layer-parallel GPU work: the MPI library's CUDA support,
// the App contract checker on a net's forward and adjoint apps (any backend),
// and the device timings the crossover model takes (bench/gpu_layer_parallel.py).
#include <pybind11/stl.h>

#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "arrays.hpp"
#include "layerparallel/backend.hpp"
#include "layerparallel/check_app.hpp"
#include "layerparallel/comm.hpp"
#include "layerparallel/device_batch.hpp"
#include "layerparallel/device_layer.hpp"
#include "layerparallel/device_timing.hpp"
#include "layerparallel/resnet_apps.hpp"

namespace layerparallel::bind {

namespace {

std::shared_ptr<Executor> executor_for(int device) {
  if (device < 0) return std::shared_ptr<Executor>(&cpu_executor(), [](Executor*) {});
  return cuda_executor(device);
}

// Forward states u_0..u_N in one executor array, every `spacing`-th one
// "stored" (storage C), the others recomputed by the adjoint app.
class SerialStates : public StateSource {
 public:
  SerialStates(Buffer&& all, index_t S, index_t N, index_t spacing)
      : buf_(std::move(all)), S_(S), N_(N), c_(spacing) {}
  index_t first_point() const override { return 0; }
  index_t last_point() const override { return N_; }
  bool stored(index_t p) const override { return p % c_ == 0; }
  const double* state(index_t p) const override { return buf_.data() + p * S_; }
  index_t stored_spacing() const override { return c_; }

 private:
  Buffer buf_;
  index_t S_, N_, c_;
};

using Calls = std::vector<std::tuple<int, index_t, index_t>>;

std::vector<StepCall> step_calls(const Calls& calls, index_t N) {
  std::vector<StepCall> out;
  for (const auto& [level, from, to] : calls) {
    if (level < 0 || from < 0 || to <= from || to > N)
      throw std::invalid_argument("step calls need 0 <= from < to <= n_layers and level >= 0");
    out.push_back({level, from, to});
  }
  return out;
}

// check_app on the forward and the adjoint app of a net: theta (full
// layout), u0 and lam (batch x width), the calls in forward layer points for
// the forward app and engine time (N - n) for the adjoint.
py::dict check_resnet_apps(const NetConfig& cfg, int device, const carray& theta,
                           const carray& u0, const carray& lam, const Calls& fcalls,
                           const Calls& acalls, index_t spacing) {
  const ParamLayout layout = ParamLayout::of(cfg);
  require_size(theta, "theta", layout.size);
  if (u0.size() % cfg.width != 0 || u0.size() == 0)
    throw std::invalid_argument("u0 must hold batch x width entries");
  const index_t batch = u0.size() / cfg.width, S = batch * cfg.width, N = cfg.n_layers;
  require_size(lam, "lam", S);
  if (spacing < 1) throw std::invalid_argument("spacing must be >= 1");
  const auto fc = step_calls(fcalls, N), ac = step_calls(acalls, N);
  auto exp = executor_for(device);
  Executor& ex = *exp;
  py::dict out;
  py::gil_scoped_release nogil;
  Buffer th(ex, layout.size);
  ex.from_host(layout.size, theta.data(), th.data());
  const ParamView<const double> view{th.data(), layout, cfg.width};
  std::unique_ptr<DeviceLayer> layer;
  std::unique_ptr<DeviceBatchLayer> batched;
  if (ex.device() != Device::cpu) {
    layer = make_device_layer<double>(ex);
    batched = make_device_batch_layer<double>(ex);
  }
  ForwardApp fwd(cfg, batch);
  if (layer) fwd.use_device(ex, *layer, batched.get());
  fwd.bind(view);
  const auto fproblems = check_app(fwd, fc, u0.data());
  Buffer all(ex, (N + 1) * S);
  ex.from_host(S, u0.data(), all.data());
  for (index_t n = 0; n < N; ++n) fwd.step(0, n, n + 1, all.data() + n * S, all.data() + (n + 1) * S, true);
  SerialStates states(std::move(all), S, N, spacing);
  AdjointApp adj(cfg, batch, fwd);
  if (layer) adj.use_device(ex, *layer, batched.get());
  adj.bind(view, &states);
  const auto aproblems = check_app(adj, ac, lam.data());
  py::gil_scoped_acquire gil;
  out["forward"] = fproblems;
  out["adjoint"] = aproblems;
  return out;
}

// Device and host seconds of one batched forward step over `count` intervals
// (width x width weights each, batch rows), and of one single step.
py::dict time_batched_step(const NetConfig& cfg, int device, index_t batch, index_t count,
                           int reps) {
  if (count < 1 || batch < 1) throw std::invalid_argument("count and batch must be >= 1");
  auto exp = executor_for(device);
  Executor& ex = *exp;
  py::gil_scoped_release nogil;
  const index_t w = cfg.width, S = batch * w;
  auto layer = make_device_layer<double>(ex);
  auto batched = make_device_batch_layer<double>(ex);
  Buffer W(ex, count * w * w), b(ex, count * w), u(ex, count * S), out(ex, count * S),
      z(ex, count * S);
  ex.fill(count * w * w, 0.01, W.data());
  ex.fill(count * S, 0.5, u.data());
  std::vector<const double*> Wp(count), bp(count), up(count);
  std::vector<double*> op(count);
  for (index_t t = 0; t < count; ++t) {
    Wp[t] = W.data() + t * w * w;
    bp[t] = b.data() + t * w;
    up[t] = u.data() + t * S;
    op[t] = out.data() + t * S;
  }
  const double h = cfg.h();
  const DeviceTiming many = time_on_device(
      ex,
      [&] { batched->forward(cfg, count, Wp.data(), bp.data(), h, up.data(), batch, op.data(), z.data()); },
      reps);
  const DeviceTiming one = time_on_device(
      ex, [&] { layer->forward(cfg, W.data(), b.data(), h, u.data(), batch, out.data(), z.data()); },
      reps);
  const std::vector<const double*> in(up.begin(), up.end());
  const DeviceTiming update = time_on_device(
      ex, [&] { ex.axpy_batch(S, count, 1.0, in.data(), op.data()); }, reps);
  const DeviceTiming fill = time_on_device(ex, [&] { ex.fill(1, 0.0, z.data()); }, reps);
  py::gil_scoped_acquire gil;
  py::dict d;
  d["batched_device"] = many.device_seconds;
  d["batched_host"] = many.host_seconds;
  d["single_device"] = one.device_seconds;
  d["single_host"] = one.host_seconds;
  d["update_device"] = update.device_seconds;  // one batched axpy over the count states
  d["update_host"] = update.host_seconds;
  d["launch"] = fill.host_seconds;  // host seconds to queue one small kernel
  return d;
}

}  // namespace

void bind_gpu(py::module_& m) {
  m.def("mpi_cuda_support", &mpi_cuda_support,
        "Whether the MPI library takes CUDA device pointers: 1, 0, or -1 (cannot say).");
  m.def("_check_resnet_apps", &check_resnet_apps, py::arg("config"), py::arg("device"),
        py::arg("theta").noconvert(), py::arg("u0").noconvert(), py::arg("lam").noconvert(),
        py::arg("forward_calls"), py::arg("adjoint_calls"), py::arg("spacing") = 1,
        "The App contract checker on the net's forward and adjoint apps: problems found.");
  m.def("_time_batched_step", &time_batched_step, py::arg("config"), py::arg("device"),
        py::arg("batch"), py::arg("count"), py::arg("reps") = 50,
        "Device and host seconds of one batched forward step over `count` intervals.");
}

}  // namespace layerparallel::bind

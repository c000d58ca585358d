// The App contract checker on every app of the package: the ODE-ResNet
// forward and adjoint (host, and the device when one is visible; the adjoint
// both with stored and with recomputed forward states), the MLP training
// steps and the toy app; and on two broken apps, which it must catch.
#include <algorithm>
#include <cmath>
#include <string>

#include "layerparallel/check_app.hpp"
#include "layerparallel/device_batch.hpp"
#include "layerparallel/device_layer.hpp"
#include "layerparallel/parallel.hpp"
#include "layerparallel/resnet_apps.hpp"
#include "layerparallel/steps_apps.hpp"
#include "test_main.hpp"
#include "toy_app.hpp"

using namespace layerparallel;

namespace {

std::vector<double> pseudo_random(index_t n, double seed) {
  std::vector<double> v(n);
  for (index_t i = 0; i < n; ++i) v[i] = std::sin(seed + 1.37 * i) * 0.8;
  return v;
}

// Forward states u_0..u_N held on an executor; with spacing c only the
// multiples of c are "stored" (storage C), the rest recomputed by the app.
class States : public StateSource {
 public:
  States(Executor& ex, const std::vector<double>& host, index_t S, index_t N, index_t c)
      : buf_(ex, (N + 1) * S), S_(S), N_(N), c_(c) {
    ex.from_host(buf_.size(), host.data(), buf_.data());
  }
  index_t first_point() const override { return 0; }
  index_t last_point() const override { return N_; }
  bool stored(index_t p) const override { return p % c_ == 0; }
  const double* state(index_t p) const override { return buf_.data() + p * S_; }
  index_t stored_spacing() const override { return c_; }

 private:
  Buffer buf_;
  index_t S_, N_, c_;
};

// Breaks the rules on purpose: changes its input, and every call differs.
class BrokenApp : public App {
 public:
  index_t state_size() const override { return 4; }
  void step(int, index_t, index_t, const double* in, double* out, bool) override {
    for (int i = 0; i < 4; ++i) out[i] = in[i] + counter_;
    counter_ += 1.0;
    const_cast<double*>(in)[0] += 1.0;
  }

 private:
  double counter_ = 0.0;
};

void report(lptest::Session& t, const std::string& app, const std::vector<std::string>& found) {
  for (const auto& p : found) t.fail(app + ": " + p);
}

void resnet_apps(lptest::Session& t, Executor& ex) {
  NetConfig cfg;
  cfg.n_in = 3;
  cfg.width = 6;
  cfg.n_layers = 8;
  cfg.n_out = 2;
  cfg.T = 2.0;
  cfg.activation = Activation::smoothrelu;
  const index_t batch = 150, S = batch * cfg.width, N = cfg.n_layers;
  const ParamLayout layout = ParamLayout::of(cfg);
  const auto theta_host = pseudo_random(layout.size, 0.3);
  Buffer theta(ex, layout.size);
  ex.from_host(layout.size, theta_host.data(), theta.data());
  const ParamView<const double> view{theta.data(), layout, cfg.width};
  std::unique_ptr<DeviceLayer> layer =
      ex.device() == Device::cpu ? nullptr : make_device_layer<double>(ex);
  std::unique_ptr<DeviceBatchLayer> batched =
      ex.device() == Device::cpu ? nullptr : make_device_batch_layer<double>(ex);

  ForwardApp fwd(cfg, batch);
  if (layer) fwd.use_device(ex, *layer, batched.get());
  fwd.bind(view);
  const std::vector<StepCall> fcalls{{0, 0, 1}, {0, 3, 4}, {1, 2, 4}, {2, 0, 4}, {0, 7, 8}};
  const auto u0 = pseudo_random(S, 1.1);
  report(t, "forward app on " + ex.name(), check_app(fwd, fcalls, u0.data()));

  // Forward states by serial propagation for the adjoint.
  std::vector<double> U((N + 1) * S);
  std::copy(u0.begin(), u0.end(), U.begin());
  {
    Buffer a(ex, S), b(ex, S);
    ex.from_host(S, u0.data(), a.data());
    for (index_t n = 0; n < N; ++n) {
      fwd.step(0, n, n + 1, a.data(), b.data(), true);
      ex.to_host(S, b.data(), U.data() + (n + 1) * S);
      std::swap(a, b);
    }
  }
  const auto lam = pseudo_random(S, 2.3);
  const std::vector<StepCall> acalls{{0, 0, 1}, {0, 2, 3}, {0, 5, 6}, {1, 2, 4}, {0, 7, 8}};
  for (index_t c : {1, 4}) {
    States states(ex, U, S, N, c);
    AdjointApp adj(cfg, batch, fwd);
    if (layer) adj.use_device(ex, *layer, batched.get());
    adj.bind(view, &states);
    report(t, "adjoint app (states every " + std::to_string(c) + ") on " + ex.name(),
           check_app(adj, acalls, lam.data()));
  }
}

void steps_app(lptest::Session& t) {
  MLPStepsConfig cfg;
  cfg.sizes = {3, 4, 1};
  cfg.alpha_base = 0.5;
  cfg.batch_size = 2;
  const std::vector<double> X{0, 0, 1, 0, 1, 1, 1, 0, 1, 1, 1, 1};
  const std::vector<double> Y{0, 1, 1, 0};
  MLPStepsApp app(cfg, X.data(), Y.data(), 4);
  const auto w = pseudo_random(app.state_size(), 0.9);
  report(t, "steps app", check_app(app, {{0, 0, 1}, {0, 5, 6}, {1, 2, 4}, {0, 9, 10}}, w.data()));
}

}  // namespace

int main(int argc, char** argv) {
  lptest::Session t(argc, argv);
  set_num_threads(2);  // concurrent steps really run concurrently
  for (auto& ex : t.executors) {
    resnet_apps(t, *ex);
    lptest::ToyApp toy(*ex, 2, 3, 10, 0.1);
    const auto u = pseudo_random(toy.state_size(), 0.5);
    report(t, "toy app on " + ex->name(), check_app(toy, {{0, 0, 1}, {1, 2, 4}, {0, 9, 10}}, u.data()));
  }
  steps_app(t);
  BrokenApp broken;
  const std::vector<double> in{1, 2, 3, 4};
  const auto found = check_app(broken, {{0, 0, 1}, {0, 1, 2}}, in.data());
  const auto has = [&](const char* what) {
    return std::any_of(found.begin(), found.end(),
                       [&](const std::string& s) { return s.find(what) != std::string::npos; });
  };
  t.expect(has("modified its input"), "check_app missed an app that modifies its input");
  t.expect(has("not deterministic"), "check_app missed a nondeterministic app");
  return t.finish();
}

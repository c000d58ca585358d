#include "layerparallel/check_app.hpp"

#include <cstring>

#include "layerparallel/backend.hpp"
#include "layerparallel/parallel.hpp"

namespace layerparallel {

namespace {
bool same_bits(const std::vector<double>& a, const std::vector<double>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0;
}
std::string name(const StepCall& c) {
  return "step(level " + std::to_string(c.level) + ", " + std::to_string(c.from) + " -> " +
         std::to_string(c.to) + ")";
}
}  // namespace

std::vector<std::string> check_app(App& app, const std::vector<StepCall>& calls,
                                   const double* in) {
  std::vector<std::string> problems;
  Executor& ex = app.executor();
  const index_t S = app.state_size();
  const index_t K = static_cast<index_t>(calls.size());
  std::vector<double> host_in(in, in + S);
  // One input and one output slot per call, so concurrent steps share nothing.
  Buffer inputs(ex, K * S), outputs(ex, K * S);
  for (index_t k = 0; k < K; ++k) ex.from_host(S, in, inputs.data() + k * S);
  auto result = [&](index_t k) {
    std::vector<double> r(S);
    ex.to_host(S, outputs.data() + k * S, r.data());
    return r;
  };
  auto input = [&](index_t k) {
    std::vector<double> r(S);
    ex.to_host(S, inputs.data() + k * S, r.data());
    return r;
  };
  auto run = [&](index_t k, bool inner) {
    const StepCall& c = calls[k];
    app.step(c.level, c.from, c.to, inputs.data() + k * S, outputs.data() + k * S, inner);
  };

  std::vector<std::vector<double>> first(K);
  const bool inner = !app.concurrent_steps();
  for (index_t k = 0; k < K; ++k) {
    run(k, inner);
    first[k] = result(k);
    if (!same_bits(input(k), host_in)) problems.push_back(name(calls[k]) + " modified its input");
    ex.fill(S, 0.0, outputs.data() + k * S);
    run(k, inner);
    if (!same_bits(result(k), first[k]))
      problems.push_back(name(calls[k]) + " is not deterministic: two calls differ");
  }
  if (app.concurrent_steps() && K > 1) {
    ex.fill(K * S, 0.0, outputs.data());
    parallel_for(K, [&](index_t k) { run(k, false); });
    for (index_t k = 0; k < K; ++k)
      if (!same_bits(result(k), first[k]))
        problems.push_back(name(calls[k]) + " run concurrently differs from the serial run");
  }
  // The batch hook: every call of one level and stride in one step_batch
  // (distinct outputs), which must give each output the bits of step().
  std::vector<bool> done(K, false);
  for (index_t k0 = 0; k0 < K; ++k0) {
    if (done[k0]) continue;
    std::vector<StepTask> tasks;
    std::vector<index_t> which;
    for (index_t k = k0; k < K; ++k) {
      const StepCall& c = calls[k];
      if (done[k] || c.level != calls[k0].level || c.to - c.from != calls[k0].to - calls[k0].from)
        continue;
      done[k] = true;
      ex.fill(S, 0.0, outputs.data() + k * S);
      tasks.push_back({c.from, c.to, inputs.data() + k * S, outputs.data() + k * S});
      which.push_back(k);
    }
    app.step_batch(calls[k0].level, tasks.data(), static_cast<index_t>(tasks.size()));
    for (index_t k : which) {
      if (!same_bits(result(k), first[k]))
        problems.push_back(name(calls[k]) + " in step_batch differs from step()");
      if (!same_bits(input(k), host_in))
        problems.push_back(name(calls[k]) + " in step_batch modified its input");
    }
  }
  if (app.failed()) problems.push_back("the app reports a failed step");
  return problems;
}

}  // namespace layerparallel

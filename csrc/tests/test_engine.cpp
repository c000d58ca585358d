// The MGRIT engine on the linear toy app, on every backend: V- and F-cycles,
// c = 2, 3, 4, storage all and C, step counts not divisible by c, both
// boundary paths (step at the source or the target rank). Run under mpiexec
// the intervals cross rank boundaries. Converged MGRIT must equal serial
// propagation, and the interval-batched sweeps (App::step_batch and the
// executor's batched operations) must give the unbatched sweeps' bits.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>

#include "layerparallel/mgrit.hpp"
#include "test_main.hpp"
#include "toy_app.hpp"

using namespace layerparallel;

int main(int argc, char** argv) {
  lptest::Session t(argc, argv);
  const int P = t.comm.size();
  for (auto& exp : t.executors) {
    Executor& ex = *exp;
    for (index_t N : {37, 64}) {
      std::vector<index_t> first(P);
      for (int r = 0; r < P; ++r) first[r] = N * r / P;
      for (bool fcycle : {false, true})
        for (index_t c : {2, 3, 4})
          for (bool store_all : {true, false})
            for (bool at_source : {true, false}) {
              std::vector<double> unbatched;  // this rank's states without batching
              int unbatched_iterations = -1;
              for (int batch : {0, 1}) {
              const std::string what = ex.name() + " N=" + std::to_string(N) + " c=" +
                                       std::to_string(c) + (fcycle ? " F" : " V") +
                                       (store_all ? " all" : " C") +
                                       (at_source ? " source" : " target") +
                                       (batch ? " batched" : "");
              lptest::ToyApp app(ex, 3, 4, N, 0.05, at_source);
              const index_t S = app.state_size();
              MGRITOptions opt;
              opt.cfactor = {c};
              opt.fcycle = fcycle;
              opt.store_fine_f = store_all;
              opt.tol = 1e-13;
              opt.max_iter = 40;
              opt.batch_intervals = batch;
              MGRIT mg(app, N, opt, t.comm, Distribution::blocks(first, N, !at_source));
              std::vector<double> u0(S);
              for (index_t i = 0; i < S; ++i) u0[i] = 1.0 + 0.1 * i;
              Buffer g0(ex, S);
              ex.from_host(S, u0.data(), g0.data());
              SolveInfo info = mg.solve(g0.data(), false, g0.data());
              t.expect(mg.n_levels() > 1, what + ": only one level");
              t.expect(info.converged, what + ": did not converge in " +
                                           std::to_string(info.iterations) + " cycles");
              const auto exact = app.exact_solution(u0, N);
              double err = 0.0, scale = 0.0;
              Buffer out(ex, S), work(ex, S);
              std::vector<double> h(S);
              for (index_t p = mg.first_point(); p <= mg.last_point(); ++p) {
                mg.state_into(p, out.data(), work.data());
                ex.to_host(S, out.data(), h.data());
                for (index_t i = 0; i < S; ++i) {
                  err = std::max(err, std::abs(h[i] - exact[p * S + i]));
                  scale = std::max(scale, std::abs(exact[p * S + i]));
                }
              }
              char rel[32];
              std::snprintf(rel, sizeof rel, "%.3g", err / scale);
              t.expect(err <= 1e-11 * scale,
                       what + ": differs from serial propagation by " + rel + " (relative)");
              std::vector<double> mine(mg.stored_size());
              mg.export_states(mine.data());
              if (!batch) {
                unbatched = mine;
                unbatched_iterations = info.iterations;
              } else {
                t.expect(info.batches > 0, what + ": no batched step calls");
                t.expect(info.iterations == unbatched_iterations &&
                             std::memcmp(mine.data(), unbatched.data(),
                                         mine.size() * sizeof(double)) == 0,
                         what + ": batched and unbatched sweeps differ");
              }
              // A warm start from the solution converges at once.
              SolveInfo again = mg.solve(g0.data(), true, nullptr);
              t.expect(again.converged && again.iterations == 0,
                       what + ": warm start from the solution needed cycles");
              }
            }
    }
  }
  return t.finish();
}

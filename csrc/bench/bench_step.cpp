// Microbenchmark of one residual layer's kernels: forward step, adjoint step
// and weight gradient, for widths 8, 64, 256 on a batch of 1000.
// Prints one JSON row per (kernel, width) on stdout:
//   {"bench":"step","kernel":...,"width":...,"batch":...,"reps":...,
//    "median_s":...,"gflops":...}
// Usage: bench_step [batch] [min_seconds_per_case] [widths...]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "layerparallel/blas.hpp"
#include "layerparallel/layer.hpp"

using namespace layerparallel;

template <class F>
static void time_case(const char* kernel, index_t width, index_t batch, double flops,
                      double min_seconds, F&& f) {
  using clock = std::chrono::steady_clock;
  for (int i = 0; i < 3; ++i) f();  // warm caches and the BLAS thread pool
  std::vector<double> t;
  const auto start = clock::now();
  while (t.size() < 5 ||
         std::chrono::duration<double>(clock::now() - start).count() < min_seconds) {
    const auto a = clock::now();
    f();
    t.push_back(std::chrono::duration<double>(clock::now() - a).count());
  }
  std::nth_element(t.begin(), t.begin() + t.size() / 2, t.end());
  const double med = t[t.size() / 2];
  std::printf(
      "{\"bench\":\"step\",\"kernel\":\"%s\",\"width\":%lld,\"batch\":%lld,\"reps\":%zu,"
      "\"median_s\":%.4e,\"gflops\":%.3f}\n",
      kernel, static_cast<long long>(width), static_cast<long long>(batch), t.size(), med,
      flops / med * 1e-9);
}

int main(int argc, char** argv) {
  const index_t batch = argc > 1 ? std::atoll(argv[1]) : 1000;
  const double min_seconds = argc > 2 ? std::atof(argv[2]) : 0.5;
  std::vector<index_t> widths;
  for (int i = 3; i < argc; ++i) widths.push_back(std::atoll(argv[i]));
  if (widths.empty()) widths = {8, 64, 256};

  std::mt19937_64 rng(0);
  std::normal_distribution<double> normal(0.0, 1.0);
  for (index_t w : widths) {
    NetConfig cfg;
    cfg.width = w;
    cfg.activation = Activation::smoothrelu;
    const index_t sz = batch * w;
    std::vector<double> W(w * w), b(w), u(sz), un(sz), z(sz), lam(sz), lam_prev(sz), gW(w * w),
        gb(w);
    for (auto* v : {&W, &b, &u, &lam}) {
      for (auto& x : *v) x = normal(rng) / std::sqrt(static_cast<double>(w));
    }
    const double h = 0.1;
    const double gemm_flops = 2.0 * batch * w * w;
    time_case("forward", w, batch, gemm_flops + 3.0 * sz, min_seconds,
              [&] { layer_forward(cfg, W.data(), b.data(), h, u.data(), batch, un.data(), z.data()); });
    time_case("adjoint", w, batch, gemm_flops + 2.0 * sz, min_seconds, [&] {
      std::copy(un.begin(), un.end(), z.begin());
      layer_adjoint(cfg, W.data(), b.data(), h, u.data(), lam.data(), batch, lam_prev.data(),
                    z.data(), true);
    });
    time_case("adjoint_recompute", w, batch, 2.0 * gemm_flops + 2.0 * sz, min_seconds, [&] {
      layer_adjoint(cfg, W.data(), b.data(), h, u.data(), lam.data(), batch, lam_prev.data(),
                    z.data(), false);
    });
    time_case("gradient", w, batch, gemm_flops + sz, min_seconds,
              [&] { layer_gradient(cfg, h, u.data(), z.data(), batch, gW.data(), gb.data()); });
  }
  return 0;
}

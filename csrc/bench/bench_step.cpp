// Microbenchmark of one residual layer's kernels: forward step, adjoint step
// and weight gradient, for widths 8, 64, 256 on a batch of 1000.
// Prints one JSON row per (kernel, width) on stdout:
//   {"bench":"step","kernel":...,"width":...,"batch":...,"threads":...,
//    "reps":...,"median_s":...,"gflops":...}
// threads: the core's threads (OMP_NUM_THREADS); the BLAS runs inside them.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "layerparallel/blas.hpp"
#include "layerparallel/layer.hpp"
#include "layerparallel/parallel.hpp"

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
      "{\"bench\":\"step\",\"kernel\":\"%s\",\"width\":%lld,\"batch\":%lld,"
      "\"threads\":%d,\"reps\":%zu,\"median_s\":%.4e,\"gflops\":%.3f}\n",
      kernel, static_cast<long long>(width), static_cast<long long>(batch), num_threads(),
      t.size(), med, flops / med * 1e-9);
}

static const char* const kUsage =
    "usage: bench_step [BATCH [MIN_SECONDS [WIDTH ...]]]\n"
    "  BATCH        samples per kernel call, 1 .. 10^7 (default 1000)\n"
    "  MIN_SECONDS  seconds of timing per case, up to 3600 (default 0.5)\n"
    "  WIDTH        layer widths, 1 .. 4096 (default 8 64 256)\n"
    "One JSON row per (kernel, width) on stdout.\n";

static int usage_error(const std::string& what) {
  std::fprintf(stderr, "bench_step: error: %s\n%s", what.c_str(), kUsage);
  return 2;
}

// A whole-string positive number, or <= 0 when it is not one.
static double positive(const char* s) {
  char* end = nullptr;
  const double v = std::strtod(s, &end);
  return (end != s && *end == '\0' && std::isfinite(v) && v > 0) ? v : -1.0;
}

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "-h") || !std::strcmp(argv[i], "--help")) {
      std::fputs(kUsage, stdout);
      return 0;
    }
  }
  index_t batch = 1000;
  double min_seconds = 0.5;
  std::vector<index_t> widths;
  for (int i = 1; i < argc; ++i) {
    const double v = positive(argv[i]);
    const double most = i == 1 ? 1e7 : i == 2 ? 3600 : 4096;
    const char* name = i == 1 ? "BATCH" : i == 2 ? "MIN_SECONDS" : "WIDTH";
    if (v <= 0 || v > most || (i != 2 && v != std::floor(v)))
      return usage_error(std::string(name) + " must be a positive " +
                         (i == 2 ? "number" : "integer") + " up to " +
                         std::to_string(static_cast<long long>(most)) + ", got '" + argv[i] +
                         "'");
    if (i == 2) {
      min_seconds = v;
    } else if (i == 1) {
      batch = static_cast<index_t>(v);
    } else {
      widths.push_back(static_cast<index_t>(v));
    }
  }
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

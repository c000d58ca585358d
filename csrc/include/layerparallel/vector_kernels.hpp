// The engine's element-wise vector operations, written once for every
// backend: each functor's operator()(i) updates entry i from pointers it
// receives as members; the CPU launcher loops over i, the CUDA launcher runs
// one thread per entry. Reductions (the residual's squared norm) return the
// entry's contribution, which each launcher sums its own way.
#pragma once

#include "config.hpp"

namespace layerparallel::vk {

struct Fill {
  double a;
  double* x;
  LP_HD void operator()(index_t i) const { x[i] = a; }
};

struct Axpy {
  double a;
  const double* x;
  double* y;
  LP_HD void operator()(index_t i) const { y[i] += a * x[i]; }
};

// g += v - phi (FAS: the coarse right-hand side from the restricted state).
struct FasUpdate {
  const double* v;
  const double* phi;
  double* g;
  LP_HD void operator()(index_t i) const { g[i] += v[i] - phi[i]; }
};

// r -= u, returning r^2 (the residual and its squared norm).
struct ResidualSq {
  const double* u;
  double* r;
  LP_HD double operator()(index_t i) const {
    const double ri = r[i] - u[i];
    r[i] = ri;
    return ri * ri;
  }
};

}  // namespace layerparallel::vk

// The engine's element-wise vector operations, written once for every
// backend: each functor's operator()(i) updates entry i from pointers it
// receives as members; the CPU launcher loops over i, the CUDA launcher runs
// one thread per entry. Reductions (the residual's squared norm) return the
// entry's contribution, which each launcher sums its own way.
#pragma once

#include "config.hpp"

namespace layerparallel::vk {

// Templated on the state's scalar T (float or double); the residual's
// squared norm is returned in double (see ResidualSq).
template <class T>
struct Fill {
  T a;
  T* x;
  LP_HD void operator()(index_t i) const { x[i] = a; }
};

template <class T>
struct Axpy {
  T a;
  const T* x;
  T* y;
  LP_HD void operator()(index_t i) const { y[i] += a * x[i]; }
};

// g += v - phi (FAS: the coarse right-hand side from the restricted state).
template <class T>
struct FasUpdate {
  const T* v;
  const T* phi;
  T* g;
  LP_HD void operator()(index_t i) const { g[i] += v[i] - phi[i]; }
};

// r -= u, returning r^2 (the residual and its squared norm). The square is
// formed and returned in double even for float states: the norm sums up to
// millions of entries, where float accumulation would lose most digits of the
// convergence test's number (and the engine compares it across cycles).
template <class T>
struct ResidualSq {
  const T* u;
  T* r;
  LP_HD double operator()(index_t i) const {
    const T ri = r[i] - u[i];
    r[i] = ri;
    const double d = static_cast<double>(ri);
    return d * d;
  }
};

}  // namespace layerparallel::vk

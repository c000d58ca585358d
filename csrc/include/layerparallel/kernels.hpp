// Element-wise kernels of the residual layer, written once for every backend.
//
// Each kernel is a functor with `LP_HD void operator()(index_t i, index_t j)`
// for element (row i, column j) of a row-major (rows x width) array; the CPU
// launcher runs rows then columns (so the inner loop vectorizes and no index is
// divided), a CUDA launcher runs one thread per element.
#pragma once

#include "config.hpp"

namespace layerparallel {

// z += b (broadcast over rows); u_next = u + h * sigma(z).
template <class Act>
struct StepKernel {
  Act act;
  double h;
  index_t width;
  const double* b;
  const double* u;
  double* z;
  double* u_next;
  LP_HD void operator()(index_t r, index_t j) const {
    const index_t i = r * width + j;
    const double zi = z[i] + b[j];
    z[i] = zi;
    u_next[i] = u[i] + h * act.value(zi);
  }
};

// d = sigma'(z + b) * lam: the adjoint's local Jacobian-vector product.
// WithBias = false when z already includes the bias.
template <class Act, bool WithBias>
struct AdjointScaleKernel {
  Act act;
  index_t width;
  const double* b;
  const double* lam;
  double* z;  // in: W u (+ b), out: d
  LP_HD void operator()(index_t r, index_t j) const {
    const index_t i = r * width + j;
    const double zi = WithBias ? z[i] + b[j] : z[i];
    z[i] = act.derivative(zi) * lam[i];
  }
};

// u = sigma(z + b) (opening layer with activation).
template <class Act>
struct BiasActivationKernel {
  Act act;
  index_t width;
  const double* b;
  double* z;  // in: W y, out: z + b
  double* u;
  LP_HD void operator()(index_t r, index_t j) const {
    const index_t i = r * width + j;
    const double zi = z[i] + b[j];
    z[i] = zi;
    u[i] = act.value(zi);
  }
};

// The CPU launcher over a (rows x width) array.
template <class K>
inline void launch_cpu(index_t rows, index_t width, const K& k) {
  for (index_t r = 0; r < rows; ++r)
    for (index_t j = 0; j < width; ++j) k(r, j);
}

}  // namespace layerparallel

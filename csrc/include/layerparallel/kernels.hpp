// Element-wise kernels of the residual layer, written once for every backend.
//
// Each kernel is a functor with `LP_HD void operator()(index_t i, index_t j)`
// for element (row i, column j) of a row-major (rows x width) array; the CPU
// launcher runs rows then columns (so the inner loop vectorizes and no index is
// divided), a CUDA launcher runs one thread per element. Everything is
// templated on the scalar T of the states and weights (float or double).
#pragma once

#include <algorithm>
#include <vector>

#include "config.hpp"

namespace layerparallel {

// d = sigma'(z + b) * lam: the adjoint's local Jacobian-vector product.
// WithBias = false when z already includes the bias.
template <class T, class Act, bool WithBias>
struct AdjointScaleKernel {
  Act act;
  index_t width;
  const T* b;
  const T* lam;
  T* z;  // in: W u (+ b), out: d
  LP_HD void operator()(index_t r, index_t j) const {
    const index_t i = r * width + j;
    const T zi = WithBias ? z[i] + b[j] : z[i];
    z[i] = act.derivative(zi) * lam[i];
  }
};

// u = sigma(z + b) (opening layer with activation).
template <class T, class Act>
struct BiasActivationKernel {
  Act act;
  index_t width;
  const T* b;
  T* z;  // in: W y, out: z + b
  T* u;
  LP_HD void operator()(index_t r, index_t j) const {
    const index_t i = r * width + j;
    const T zi = z[i] + b[j];
    z[i] = zi;
    u[i] = act.value(zi);
  }
};

// z[r, j] = b[j]: the bias the product then accumulates onto.
template <class T>
struct BiasFillKernel {
  index_t width;
  const T* b;
  T* z;
  LP_HD void operator()(index_t r, index_t j) const { z[r * width + j] = b[j]; }
};

// u_next = u + h sigma(z). u_next may be u.
template <class T, class Act>
struct StepUpdateKernel {
  Act act;
  index_t width;
  T h;
  const T* u;
  const T* z;
  T* u_next;
  LP_HD void operator()(index_t r, index_t j) const {
    const index_t i = r * width + j;
    u_next[i] = u[i] + h * act.value(z[i]);
  }
};

// D = sigma'(D) in place (z on entry).
template <class T, class Act>
struct DerivativeKernel {
  Act act;
  index_t width;
  T* D;
  LP_HD void operator()(index_t r, index_t j) const {
    const index_t i = r * width + j;
    D[i] = act.derivative(D[i]);
  }
};

// out = D * lam (the adjoint's factor from a cached sigma').
template <class T>
struct ScaleByKernel {
  index_t width;
  const T* D;
  const T* lam;
  T* out;
  LP_HD void operator()(index_t r, index_t j) const {
    const index_t i = r * width + j;
    out[i] = D[i] * lam[i];
  }
};

// The CPU launcher over a (rows x width) array.
template <class K>
inline void launch_cpu(index_t rows, index_t width, const K& k) {
  for (index_t r = 0; r < rows; ++r)
    for (index_t j = 0; j < width; ++j) k(r, j);
}

// ---- CPU loops of the residual layer's hot path -----------------------------
// Flat loops over contiguous (rows x width) chunks with __restrict__ locals:
// the functors above hold their pointers as members, which the compiler must
// assume may alias, so their loops vectorize only behind run-time overlap
// checks (or not at all). These are the CPU forms used by layer.cpp; the bias
// is folded into the GEMM (z is prefilled with b), so no pass adds it.

// u_next = u + h sigma(z) on n elements. u_next may be u (in place).
template <class Act, class T>
inline void step_update(const Act& act, double h_in, index_t n, const T* u, const T* z,
                        T* u_next) {
  const T h = static_cast<T>(h_in);
  const T* __restrict zr = z;
  if (u == u_next) {
    T* __restrict ur = u_next;
    for (index_t i = 0; i < n; ++i) ur[i] += h * act.value(zr[i]);
  } else {
    const T* __restrict ur = u;
    T* __restrict nr = u_next;
    for (index_t i = 0; i < n; ++i) nr[i] = ur[i] + h * act.value(zr[i]);
  }
}

// work = sigma'(work) * lam on n elements (work holds z on entry, d on exit).
template <class Act, class T>
inline void adjoint_scale(const Act& act, index_t n, const T* lam, T* work) {
  const T* __restrict lr = lam;
  T* __restrict wr = work;
  for (index_t i = 0; i < n; ++i) wr[i] = act.derivative(wr[i]) * lr[i];
}

// work = D * lam on n elements (the adjoint's factor from a cached sigma').
template <class T>
inline void scale_by(index_t n, const T* D, const T* lam, T* work) {
  const T* __restrict dr = D;
  const T* __restrict lr = lam;
  T* __restrict wr = work;
  for (index_t i = 0; i < n; ++i) wr[i] = dr[i] * lr[i];
}

// work = sigma'(work) on n elements (z on entry).
template <class Act, class T>
inline void derivative_in_place(const Act& act, index_t n, T* work) {
  T* __restrict wr = work;
  for (index_t i = 0; i < n; ++i) wr[i] = act.derivative(wr[i]);
}

// out[j] = scale * sum_r a[r, j] for a row-major (rows x w) array.
inline void column_sums(const double* a, index_t rows, index_t w, double scale, double* out) {
  double* __restrict o = out;
  std::fill(o, o + w, 0.0);
  for (index_t r = 0; r < rows; ++r) {
    const double* __restrict row = a + r * w;
    for (index_t j = 0; j < w; ++j) o[j] += row[j];
  }
  for (index_t j = 0; j < w; ++j) o[j] *= scale;
}

// The same for float rows, summed in double (a batch of thousands of rows
// would lose digits in a float sum) and rounded once.
inline void column_sums(const float* a, index_t rows, index_t w, double scale, float* out) {
  thread_local std::vector<double> acc;
  acc.assign(static_cast<std::size_t>(w), 0.0);
  double* __restrict o = acc.data();
  for (index_t r = 0; r < rows; ++r) {
    const float* __restrict row = a + r * w;
    for (index_t j = 0; j < w; ++j) o[j] += row[j];
  }
  for (index_t j = 0; j < w; ++j) out[j] = static_cast<float>(o[j] * scale);
}

}  // namespace layerparallel

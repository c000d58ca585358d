// The executor's batched vector operations, default form: a loop over the
// single operations (a device backend overrides them with one launch each).
#include "layerparallel/backend.hpp"

namespace layerparallel {

namespace {
template <class T>
void copies(Executor& ex, index_t n, index_t count, const T* const* src, T* const* dst) {
  for (index_t i = 0; i < count; ++i) ex.copy(n, src[i], dst[i]);
}
template <class T>
void axpys(Executor& ex, index_t n, index_t count, T a, const T* const* x, T* const* y) {
  for (index_t i = 0; i < count; ++i) ex.axpy(n, a, x[i], y[i]);
}
template <class T>
void fas_updates(Executor& ex, index_t n, index_t count, const T* const* v, const T* const* phi,
                 T* const* g) {
  for (index_t i = 0; i < count; ++i) ex.fas_update(n, v[i], phi[i], g[i]);
}
template <class T>
void residuals(Executor& ex, index_t n, index_t count, const T* const* u, T* const* r) {
  for (index_t i = 0; i < count; ++i) ex.residual_accumulate(n, u[i], r[i]);
}
}  // namespace

void Executor::copy_batch(index_t n, index_t count, const double* const* src, double* const* dst) {
  copies(*this, n, count, src, dst);
}
void Executor::copy_batch(index_t n, index_t count, const float* const* src, float* const* dst) {
  copies(*this, n, count, src, dst);
}
void Executor::axpy_batch(index_t n, index_t count, double a, const double* const* x,
                          double* const* y) {
  axpys(*this, n, count, a, x, y);
}
void Executor::axpy_batch(index_t n, index_t count, float a, const float* const* x,
                          float* const* y) {
  axpys(*this, n, count, a, x, y);
}
void Executor::fas_update_batch(index_t n, index_t count, const double* const* v,
                                const double* const* phi, double* const* g) {
  fas_updates(*this, n, count, v, phi, g);
}
void Executor::fas_update_batch(index_t n, index_t count, const float* const* v,
                                const float* const* phi, float* const* g) {
  fas_updates(*this, n, count, v, phi, g);
}
void Executor::residual_accumulate_batch(index_t n, index_t count, const double* const* u,
                                         double* const* r) {
  residuals(*this, n, count, u, r);
}
void Executor::residual_accumulate_batch(index_t n, index_t count, const float* const* u,
                                         float* const* r) {
  residuals(*this, n, count, u, r);
}

}  // namespace layerparallel

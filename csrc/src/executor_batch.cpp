// The executor's batched vector operations, default form: a loop over the
// single operations (a device backend overrides them with one launch each).
#include "layerparallel/backend.hpp"

namespace layerparallel {

void Executor::copy_batch(index_t n, index_t count, const double* const* src,
                          double* const* dst) {
  for (index_t i = 0; i < count; ++i) copy(n, src[i], dst[i]);
}

void Executor::axpy_batch(index_t n, index_t count, double a, const double* const* x,
                          double* const* y) {
  for (index_t i = 0; i < count; ++i) axpy(n, a, x[i], y[i]);
}

void Executor::fas_update_batch(index_t n, index_t count, const double* const* v,
                                const double* const* phi, double* const* g) {
  for (index_t i = 0; i < count; ++i) fas_update(n, v[i], phi[i], g[i]);
}

void Executor::residual_accumulate_batch(index_t n, index_t count, const double* const* u,
                                         double* const* r) {
  for (index_t i = 0; i < count; ++i) residual_accumulate(n, u[i], r[i]);
}

}  // namespace layerparallel

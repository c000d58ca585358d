// The dense products, through a real BLAS (row-major CBLAS dgemm, and sgemm
// for float networks).
//
// The default build links the OpenBLAS shipped by the `scipy-openblas32`
// wheel, whose symbols carry a `scipy_` prefix; BLAS_SYMBOL_PREFIX selects it.
// Any other CBLAS works by building with -DLP_BLAS=<vendor> (see CMakeLists).
#pragma once

#include "config.hpp"

namespace layerparallel::blas {

// C = alpha * op(A) op(B) + beta * C, all row-major.
// op(A) is m x k, op(B) is k x n, C is m x n.
void gemm(bool trans_a, bool trans_b, index_t m, index_t n, index_t k, double alpha,
          const double* a, index_t lda, const double* b, index_t ldb, double beta, double* c,
          index_t ldc);
// The same in single precision (alpha and beta are rounded to float).
void gemm(bool trans_a, bool trans_b, index_t m, index_t n, index_t k, double alpha,
          const float* a, index_t lda, const float* b, index_t ldb, double beta, float* c,
          index_t ldc);

// out (cols x rows, row-major) = a^T for a (rows x cols, leading dimension lda).
void transpose(index_t rows, index_t cols, const double* a, index_t lda, double* out);
void transpose(index_t rows, index_t cols, const float* a, index_t lda, float* out);

// Threads the BLAS may use (0 leaves the library's default).
void set_num_threads(int n);
int get_num_threads();

}  // namespace layerparallel::blas

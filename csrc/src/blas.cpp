#include "layerparallel/blas.hpp"

#include <cblas.h>

#include <vector>

// The scipy-openblas wheels prefix every symbol with `scipy_`; a plain CBLAS
// has no prefix. BLAS_SYMBOL_PREFIX is set by CMake to match the library.
#define LP_CONCAT2(a, b) a##b
#define LP_CONCAT(a, b) LP_CONCAT2(a, b)
#ifdef BLAS_SYMBOL_PREFIX
#define LP_BLAS(name) LP_CONCAT(BLAS_SYMBOL_PREFIX, name)
#else
#define LP_BLAS(name) name
#endif

namespace layerparallel::blas {

namespace {
constexpr index_t kTransposeLimit = 32 * 32;

template <class T>
void transpose_t(index_t rows, index_t cols, const T* a, index_t lda, T* out) {
  for (index_t i = 0; i < rows; ++i)
    for (index_t j = 0; j < cols; ++j) out[j * rows + i] = a[i * lda + j];
}

inline void cblas_gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, blasint m, blasint n, blasint k,
                       double alpha, const double* a, blasint lda, const double* b, blasint ldb,
                       double beta, double* c, blasint ldc) {
  LP_BLAS(cblas_dgemm)(CblasRowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
inline void cblas_gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, blasint m, blasint n, blasint k,
                       double alpha, const float* a, blasint lda, const float* b, blasint ldb,
                       double beta, float* c, blasint ldc) {
  LP_BLAS(cblas_sgemm)(CblasRowMajor, ta, tb, m, n, k, static_cast<float>(alpha), a, lda, b,
                       ldb, static_cast<float>(beta), c, ldc);
}

template <class T>
void gemm_t(bool trans_a, bool trans_b, index_t m, index_t n, index_t k, double alpha,
            const T* a, index_t lda, const T* b, index_t ldb, double beta, T* c, index_t ldc) {
  if (m == 0 || n == 0) return;
  // OpenBLAS's row-major A B^T with a small B (a narrow layer's u W^T) runs
  // several times slower than A B on the transposed copy (bench/RESULTS.md);
  // the copy of a <= 32x32 block is free next to the product.
  if (trans_b && k * n <= kTransposeLimit) {
    thread_local std::vector<T> bt;
    bt.resize(static_cast<std::size_t>(k * n));
    transpose_t(n, k, b, ldb, bt.data());
    b = bt.data();
    ldb = n;
    trans_b = false;
  }
  cblas_gemm(trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
             static_cast<blasint>(m), static_cast<blasint>(n), static_cast<blasint>(k), alpha, a,
             static_cast<blasint>(lda), b, static_cast<blasint>(ldb), beta, c,
             static_cast<blasint>(ldc));
}
}  // namespace

void gemm(bool trans_a, bool trans_b, index_t m, index_t n, index_t k, double alpha,
          const double* a, index_t lda, const double* b, index_t ldb, double beta, double* c,
          index_t ldc) {
  gemm_t(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void gemm(bool trans_a, bool trans_b, index_t m, index_t n, index_t k, double alpha,
          const float* a, index_t lda, const float* b, index_t ldb, double beta, float* c,
          index_t ldc) {
  gemm_t(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void transpose(index_t rows, index_t cols, const double* a, index_t lda, double* out) {
  transpose_t(rows, cols, a, lda, out);
}
void transpose(index_t rows, index_t cols, const float* a, index_t lda, float* out) {
  transpose_t(rows, cols, a, lda, out);
}

#ifdef LP_OPENBLAS
extern "C" {
void LP_BLAS(openblas_set_num_threads)(int);
int LP_BLAS(openblas_get_num_threads)(void);
}
void set_num_threads(int n) {
  if (n > 0) LP_BLAS(openblas_set_num_threads)(n);
}
int get_num_threads() { return LP_BLAS(openblas_get_num_threads)(); }
#else
void set_num_threads(int) {}
int get_num_threads() { return 0; }
#endif

}  // namespace layerparallel::blas

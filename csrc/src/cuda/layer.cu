// The residual layer on a CUDA device: products through cuBLAS on the
// executor's stream, element-wise passes as the LP_HD functors of kernels.hpp
// launched one thread per entry. States are row-major (batch x width), which
// cuBLAS (column-major) sees as their transposes:
//   z^T = W u^T + b          gemm(T, N) with A = W (row-major = W^T col-major)
//   lam^T += h W^T d^T       gemm(N, N)
//   gW^T = h u^T d           gemm(N, T), gb = h d^T 1 (gemv with a ones vector)
// Templated on the scalar: cuBLAS's D routines for double, S for float.
#include <vector>

#include "cuda_executor.cuh"
#include "layerparallel/activations.hpp"
#include "layerparallel/device_layer.hpp"
#include "layerparallel/kernels.hpp"

namespace layerparallel {

namespace cuda {

namespace {

int as_int(index_t n) {
  if (n > 2147483647) throw std::invalid_argument("cuBLAS: dimension above 2^31 - 1");
  return static_cast<int>(n);
}

cublasStatus_t gemm(cublasHandle_t hd, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                    int k, const double* alpha, const double* a, int lda, const double* b,
                    int ldb, const double* beta, double* c, int ldc) {
  return cublasDgemm(hd, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
cublasStatus_t gemm(cublasHandle_t hd, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                    int k, const float* alpha, const float* a, int lda, const float* b, int ldb,
                    const float* beta, float* c, int ldc) {
  return cublasSgemm(hd, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
cublasStatus_t gemv(cublasHandle_t hd, cublasOperation_t t, int m, int n, const double* alpha,
                    const double* a, int lda, const double* x, int incx, const double* beta,
                    double* y, int incy) {
  return cublasDgemv(hd, t, m, n, alpha, a, lda, x, incx, beta, y, incy);
}
cublasStatus_t gemv(cublasHandle_t hd, cublasOperation_t t, int m, int n, const float* alpha,
                    const float* a, int lda, const float* x, int incx, const float* beta,
                    float* y, int incy) {
  return cublasSgemv(hd, t, m, n, alpha, a, lda, x, incx, beta, y, incy);
}

template <class T>
class CudaLayer final : public BasicDeviceLayer<T> {
 public:
  explicit CudaLayer(CudaExecutor& ex) : ex_(ex) {}

  void forward(const NetConfig& cfg, const T* W, const T* b, double h,
               const T* u, index_t batch, T* u_next, T* z) override {
    if (batch <= 0) return;
    affine(cfg.width, W, b, u, batch, z);
    with_activation(cfg.activation, cfg.eta, [&](auto act) {
      launch2d(ex_.stream(), batch, cfg.width,
               StepUpdateKernel<T, decltype(act)>{act, cfg.width, static_cast<T>(h), u, z,
                                                  u_next});
    });
  }

  void adjoint(const NetConfig& cfg, const T* W, const T* b, double h,
               const T* u, const T* lam_next, index_t batch, T* lam,
               T* work) override {
    if (batch <= 0) return;
    affine(cfg.width, W, b, u, batch, work);
    with_activation(cfg.activation, cfg.eta, [&](auto act) {
      launch2d(ex_.stream(), batch, cfg.width,
               AdjointScaleKernel<T, decltype(act), false>{act, cfg.width, nullptr, lam_next, work});
    });
    transpose_apply(cfg.width, W, h, work, lam_next, batch, lam);
  }

  void derivative(const NetConfig& cfg, const T* W, const T* b, const T* u,
                  index_t batch, T* D) override {
    if (batch <= 0) return;
    affine(cfg.width, W, b, u, batch, D);
    with_activation(cfg.activation, cfg.eta, [&](auto act) {
      launch2d(ex_.stream(), batch, cfg.width, DerivativeKernel<T, decltype(act)>{act, cfg.width, D});
    });
  }

  void adjoint_linearized(const NetConfig& cfg, const T* W, double h, const T* D,
                          const T* lam_next, index_t batch, T* lam,
                          T* work) override {
    if (batch <= 0) return;
    launch2d(ex_.stream(), batch, cfg.width, ScaleByKernel<T>{cfg.width, D, lam_next, work});
    transpose_apply(cfg.width, W, h, work, lam_next, batch, lam);
  }

  void gradient(const NetConfig& cfg, double h, const T* u, const T* d,
                index_t batch, T* gW, T* gb) override {
    const int w = as_int(cfg.width), n = as_int(batch);
    const T zero = 0, hh = static_cast<T>(h);
    if (batch <= 0) {
      ex_.fill(cfg.width * cfg.width, T(0), gW);
      ex_.fill(cfg.width, T(0), gb);
      return;
    }
    check(gemm(ex_.blas(), CUBLAS_OP_N, CUBLAS_OP_T, w, w, n, &hh, u, w, d, w, &zero, gW, w),
          "gemm (gradient)");
    check(gemv(ex_.blas(), CUBLAS_OP_N, w, n, &hh, d, w, ones(batch), 1, &zero, gb, 1),
          "gemv (bias gradient)");
  }

 private:
  // z = u W^T + b (each row).
  void affine(index_t width, const T* W, const T* b, const T* u, index_t batch,
              T* z) {
    launch2d(ex_.stream(), batch, width, BiasFillKernel<T>{width, b, z});
    const int w = as_int(width), n = as_int(batch);
    const T one = 1;
    check(gemm(ex_.blas(), CUBLAS_OP_T, CUBLAS_OP_N, w, n, w, &one, W, w, u, w, &one, z, w),
          "gemm (affine)");
  }
  // lam = lam_next + h d W (row-major), i.e. h W^T d per sample.
  void transpose_apply(index_t width, const T* W, double h, const T* d,
                       const T* lam_next, index_t batch, T* lam) {
    ex_.copy(batch * width, lam_next, lam);
    const int w = as_int(width), n = as_int(batch);
    const T one = 1, hh = static_cast<T>(h);
    check(gemm(ex_.blas(), CUBLAS_OP_N, CUBLAS_OP_N, w, n, w, &hh, W, w, d, w, &one, lam, w),
          "gemm (adjoint)");
  }
  const T* ones(index_t n) {
    if (ones_.size() < n) {
      ones_.reserve(ex_, n);
      ex_.fill(n, T(1), ones_.data());
    }
    return ones_.data();
  }

  CudaExecutor& ex_;
  BasicBuffer<T> ones_;
};

}  // namespace

}  // namespace cuda

template <class T>
std::unique_ptr<BasicDeviceLayer<T>> make_device_layer(Executor& ex) {
  auto* cu = dynamic_cast<cuda::CudaExecutor*>(&ex);
  if (!cu) throw std::invalid_argument("device layer kernels need a CUDA executor");
  return std::make_unique<cuda::CudaLayer<T>>(*cu);
}
template std::unique_ptr<BasicDeviceLayer<float>> make_device_layer<float>(Executor&);
template std::unique_ptr<BasicDeviceLayer<double>> make_device_layer<double>(Executor&);

}  // namespace layerparallel

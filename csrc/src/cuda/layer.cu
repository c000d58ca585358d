// The residual layer on a CUDA device: products through cuBLAS on the
// executor's stream, element-wise passes as the LP_HD functors of kernels.hpp
// launched one thread per entry. States are row-major (batch x width), which
// cuBLAS (column-major) sees as their transposes:
//   z^T = W u^T + b          gemm(T, N) with A = W (row-major = W^T col-major)
//   lam^T += h W^T d^T       gemm(N, N)
//   gW^T = h u^T d           gemm(N, T), gb = h d^T 1 (gemv with a ones vector)
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

class CudaLayer final : public DeviceLayer {
 public:
  explicit CudaLayer(CudaExecutor& ex) : ex_(ex) {}

  void forward(const NetConfig& cfg, const double* W, const double* b, double h,
               const double* u, index_t batch, double* u_next, double* z) override {
    if (batch <= 0) return;
    affine(cfg.width, W, b, u, batch, z);
    with_activation(cfg.activation, cfg.eta, [&](auto act) {
      launch2d(ex_.stream(), batch, cfg.width,
               StepUpdateKernel<decltype(act)>{act, cfg.width, h, u, z, u_next});
    });
  }

  void adjoint(const NetConfig& cfg, const double* W, const double* b, double h,
               const double* u, const double* lam_next, index_t batch, double* lam,
               double* work) override {
    if (batch <= 0) return;
    affine(cfg.width, W, b, u, batch, work);
    with_activation(cfg.activation, cfg.eta, [&](auto act) {
      launch2d(ex_.stream(), batch, cfg.width,
               AdjointScaleKernel<decltype(act), false>{act, cfg.width, nullptr, lam_next, work});
    });
    transpose_apply(cfg.width, W, h, work, lam_next, batch, lam);
  }

  void derivative(const NetConfig& cfg, const double* W, const double* b, const double* u,
                  index_t batch, double* D) override {
    if (batch <= 0) return;
    affine(cfg.width, W, b, u, batch, D);
    with_activation(cfg.activation, cfg.eta, [&](auto act) {
      launch2d(ex_.stream(), batch, cfg.width, DerivativeKernel<decltype(act)>{act, cfg.width, D});
    });
  }

  void adjoint_linearized(const NetConfig& cfg, const double* W, double h, const double* D,
                          const double* lam_next, index_t batch, double* lam,
                          double* work) override {
    if (batch <= 0) return;
    launch2d(ex_.stream(), batch, cfg.width, ScaleByKernel{cfg.width, D, lam_next, work});
    transpose_apply(cfg.width, W, h, work, lam_next, batch, lam);
  }

  void gradient(const NetConfig& cfg, double h, const double* u, const double* d,
                index_t batch, double* gW, double* gb) override {
    const int w = as_int(cfg.width), n = as_int(batch);
    const double zero = 0.0;
    if (batch <= 0) {
      ex_.fill(cfg.width * cfg.width, 0.0, gW);
      ex_.fill(cfg.width, 0.0, gb);
      return;
    }
    check(cublasDgemm(ex_.blas(), CUBLAS_OP_N, CUBLAS_OP_T, w, w, n, &h, u, w, d, w, &zero, gW,
                      w),
          "dgemm (gradient)");
    check(cublasDgemv(ex_.blas(), CUBLAS_OP_N, w, n, &h, d, w, ones(batch), 1, &zero, gb, 1),
          "dgemv (bias gradient)");
  }

  void scale(index_t n, const double* D, const double* lam, double* out) override {
    launch2d(ex_.stream(), n, 1, ScaleByKernel{1, D, lam, out});
  }

 private:
  // z = u W^T + b (each row).
  void affine(index_t width, const double* W, const double* b, const double* u, index_t batch,
              double* z) {
    launch2d(ex_.stream(), batch, width, BiasFillKernel{width, b, z});
    const int w = as_int(width), n = as_int(batch);
    const double one = 1.0;
    check(cublasDgemm(ex_.blas(), CUBLAS_OP_T, CUBLAS_OP_N, w, n, w, &one, W, w, u, w, &one, z,
                      w),
          "dgemm (affine)");
  }
  // lam = lam_next + h d W (row-major), i.e. h W^T d per sample.
  void transpose_apply(index_t width, const double* W, double h, const double* d,
                       const double* lam_next, index_t batch, double* lam) {
    ex_.copy(batch * width, lam_next, lam);
    const int w = as_int(width), n = as_int(batch);
    const double one = 1.0;
    check(cublasDgemm(ex_.blas(), CUBLAS_OP_N, CUBLAS_OP_N, w, n, w, &h, W, w, d, w, &one, lam,
                      w),
          "dgemm (adjoint)");
  }
  const double* ones(index_t n) {
    if (ones_.size() < n) {
      ones_.reserve(ex_, n);
      ex_.fill(n, 1.0, ones_.data());
    }
    return ones_.data();
  }

  CudaExecutor& ex_;
  Buffer ones_;
};

}  // namespace

}  // namespace cuda

std::unique_ptr<DeviceLayer> make_device_layer(Executor& ex) {
  auto* cu = dynamic_cast<cuda::CudaExecutor*>(&ex);
  if (!cu) throw std::invalid_argument("device layer kernels need a CUDA executor");
  return std::make_unique<cuda::CudaLayer>(*cu);
}

}  // namespace layerparallel

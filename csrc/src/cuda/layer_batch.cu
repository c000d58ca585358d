// Interval-batched residual layer steps on a CUDA device: task t has its own
// weights W[t], b[t] and states; the products of all tasks are one
// cublasDgemmBatched (pointer arrays, so each interval keeps its own layer's
// weights where they are), the element-wise passes one launch over all tasks.
// Each call uploads its pointer arrays in one host-to-device copy through the
// executor (stream ordered, so the next call may reuse the device array).
#include <vector>

#include "cuda_executor.cuh"
#include "layerparallel/activations.hpp"
#include "layerparallel/device_batch.hpp"

namespace layerparallel {

namespace cuda {

namespace {

int as_int(index_t n) {
  if (n > 2147483647) throw std::invalid_argument("cuBLAS: dimension above 2^31 - 1");
  return static_cast<int>(n);
}

cublasStatus_t gemm_batched(cublasHandle_t hd, cublasOperation_t ta, cublasOperation_t tb, int m,
                            int n, int k, const double* alpha, const double* const* a, int lda,
                            const double* const* b, int ldb, const double* beta,
                            double* const* c, int ldc, int count) {
  return cublasDgemmBatched(hd, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, count);
}
cublasStatus_t gemm_batched(cublasHandle_t hd, cublasOperation_t ta, cublasOperation_t tb, int m,
                            int n, int k, const float* alpha, const float* const* a, int lda,
                            const float* const* b, int ldb, const float* beta,
                            float* const* c, int ldc, int count) {
  return cublasSgemmBatched(hd, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, count);
}

// out[t][k] = u[t][k] + h sigma(z[t S + k] + b[t][k % w]) for t < count, k < S.
template <class T, class Act>
struct StepUpdateBatch {
  Act act;
  index_t S, width;
  T h;
  const T* const* u;
  const T* const* b;
  const T* z;
  T* const* out;
  __device__ void operator()(index_t i) const {
    const index_t t = i / S, k = i % S;
    out[t][k] = u[t][k] + h * act.value(z[i] + b[t][k % width]);
  }
};

// d = factor * lam_next into work[t S + k] (factor: D[t][k], or
// sigma'(work + b[t]) with work = W u on entry), and lam[t][k] = lam_next[t][k].
template <class T, class Act, bool Cached>
struct AdjointScaleBatch {
  Act act;
  index_t S, width;
  const T* const* b;
  const T* const* D;
  const T* const* lam_next;
  T* const* lam;
  T* work;
  __device__ void operator()(index_t i) const {
    const index_t t = i / S, k = i % S;
    const T ln = lam_next[t][k];
    const T f = Cached ? D[t][k] : act.derivative(work[i] + b[t][k % width]);
    work[i] = f * ln;
    lam[t][k] = ln;
  }
};

// D[t][k] = sigma'(D[t][k] + b[t][k % w]) (D[t] = W[t] u[t] on entry).
template <class T, class Act>
struct DerivativeBatch {
  Act act;
  index_t S, width;
  const T* const* b;
  T* const* D;
  __device__ void operator()(index_t i) const {
    const index_t t = i / S, k = i % S;
    D[t][k] = act.derivative(D[t][k] + b[t][k % width]);
  }
};

// work[t S + k] = D[t][k] * lam[t][k].
template <class T>
struct ScaleBatch {
  index_t S;
  const T* const* D;
  const T* const* lam;
  T* work;
  __device__ void operator()(index_t i) const {
    const index_t t = i / S, k = i % S;
    work[i] = D[t][k] * lam[t][k];
  }
};

// Packs several host pointer arrays of `count` entries into one upload; get(k)
// is the device address of the k-th array.
class Pack {
 public:
  explicit Pack(index_t count) : count_(count) {}
  template <class T>
  int add(const T* const* p) {
    for (index_t i = 0; i < count_; ++i) host_.push_back(p ? p[i] : nullptr);
    return arrays_++;
  }
  template <class T>
  int add_strided(const T* base, index_t stride) {
    for (index_t i = 0; i < count_; ++i) host_.push_back(base + i * stride);
    return arrays_++;
  }
  void send(CudaExecutor& ex) { dev_ = ex.upload_pointers(host_); }
  template <class T>
  T* const* get(int k) const {
    return reinterpret_cast<T* const*>(dev_ + k * count_);
  }

 private:
  index_t count_;
  int arrays_ = 0;
  std::vector<const void*> host_;
  void** dev_ = nullptr;
};

template <class T>
class CudaBatchLayer final : public BasicDeviceBatchLayer<T> {
 public:
  explicit CudaBatchLayer(CudaExecutor& ex) : ex_(ex) {}

  void forward(const NetConfig& cfg, index_t count, const T* const* W, const T* const* b,
               double h, const T* const* u, index_t batch, T* const* u_next, T* z) override {
    if (count <= 0 || batch <= 0) return;
    const index_t w = cfg.width, S = batch * w;
    Pack pk(count);
    const int iW = pk.add(W), ib = pk.add(b), iu = pk.add(u), io = pk.add(u_next),
              iz = pk.add_strided(z, S);
    pk.send(ex_);
    const T hh = static_cast<T>(h);
    affine_products(pk, iW, iu, iz, w, batch, count, "gemmBatched (forward)");
    with_activation(cfg.activation, cfg.eta, [&](auto act) {
      launch(ex_.stream(), count * S,
             StepUpdateBatch<T, decltype(act)>{act, S, w, hh, pk.template get<const T>(iu),
                                            pk.template get<const T>(ib), z, pk.template get<T>(io)});
    });
  }

  void adjoint(const NetConfig& cfg, index_t count, const T* const* W, const T* const* b,
               double h, const T* const* u, const T* const* D, const T* const* lam_next,
               index_t batch, T* const* lam, T* work) override {
    if (count <= 0 || batch <= 0) return;
    const index_t w = cfg.width, S = batch * w;
    Pack pk(count);
    const int iW = pk.add(W), ib = pk.add(b), iu = pk.add(u), iD = pk.add(D),
              iln = pk.add(lam_next), il = pk.add(lam), iw = pk.add_strided(work, S);
    pk.send(ex_);
    const int wi = as_int(w), n = as_int(batch);
    const T one = T(1), hh = static_cast<T>(h);
    if (!D)  // work = W u (the bias is added in the scale pass)
      affine_products(pk, iW, iu, iw, w, batch, count, "gemmBatched (adjoint affine)");
    with_activation(cfg.activation, cfg.eta, [&](auto act) {
      if (D)
        launch(ex_.stream(), count * S,
               AdjointScaleBatch<T, decltype(act), true>{
                   act, S, w, nullptr, pk.template get<const T>(iD), pk.template get<const T>(iln),
                   pk.template get<T>(il), work});
      else
        launch(ex_.stream(), count * S,
               AdjointScaleBatch<T, decltype(act), false>{
                   act, S, w, pk.template get<const T>(ib), nullptr, pk.template get<const T>(iln),
                   pk.template get<T>(il), work});
    });
    // lam[t]^T += h W[t]^T d[t]^T
    check(gemm_batched(ex_.blas(), CUBLAS_OP_N, CUBLAS_OP_N, wi, n, wi, &hh,
                             pk.template get<const T>(iW), wi, pk.template get<const T>(iw), wi, &one,
                             pk.template get<T>(il), wi, as_int(count)),
          "gemmBatched (adjoint)");
  }

  void gradient(const NetConfig& cfg, index_t count, double h, const T* const* u, const T* work,
                index_t batch, T* const* gW, T* const* gb) override {
    if (count <= 0) return;
    const index_t w = cfg.width, S = batch * w;
    if (batch <= 0) {
      for (index_t t = 0; t < count; ++t) {
        ex_.fill(w * w, T(0), gW[t]);
        ex_.fill(w, T(0), gb[t]);
      }
      return;
    }
    if (ones_.size() < batch) {
      ones_.reserve(ex_, batch);
      ex_.fill(batch, T(1), ones_.data());
    }
    Pack pk(count);
    const int iu = pk.add(u), id = pk.add_strided(work, S), igW = pk.add(gW), igb = pk.add(gb),
              i1 = pk.add_strided(ones_.data(), 0);
    pk.send(ex_);
    const int wi = as_int(w), n = as_int(batch);
    const T zero = T(0), hh = static_cast<T>(h);
    // gW[t]^T = h u[t]^T d[t] (column-major), gb[t] = h d[t]^T 1
    check(gemm_batched(ex_.blas(), CUBLAS_OP_N, CUBLAS_OP_T, wi, wi, n, &hh,
                             pk.template get<const T>(iu), wi, pk.template get<const T>(id), wi, &zero,
                             pk.template get<T>(igW), wi, as_int(count)),
          "gemmBatched (gradient)");
    check(gemm_batched(ex_.blas(), CUBLAS_OP_N, CUBLAS_OP_N, wi, 1, n, &hh,
                             pk.template get<const T>(id), wi, pk.template get<const T>(i1), n, &zero,
                             pk.template get<T>(igb), wi, as_int(count)),
          "gemmBatched (bias gradient)");
  }

  void derivative(const NetConfig& cfg, index_t count, const T* const* W, const T* const* b,
                  const T* const* u, index_t batch, T* const* D) override {
    if (count <= 0 || batch <= 0) return;
    const index_t w = cfg.width, S = batch * w;
    Pack pk(count);
    const int iW = pk.add(W), ib = pk.add(b), iu = pk.add(u), iD = pk.add(D);
    pk.send(ex_);
    // D[t] = W[t] u[t], then sigma'(. + b[t]) in place
    affine_products(pk, iW, iu, iD, w, batch, count, "gemmBatched (derivative)");
    with_activation(cfg.activation, cfg.eta, [&](auto act) {
      launch(ex_.stream(), count * S,
             DerivativeBatch<T, decltype(act)>{act, S, w, pk.template get<const T>(ib),
                                               pk.template get<T>(iD)});
    });
  }

  void scale(index_t count, index_t S, const T* const* D, const T* const* lam,
             T* work) override {
    if (count <= 0 || S <= 0) return;
    Pack pk(count);
    const int iD = pk.add(D), il = pk.add(lam);
    pk.send(ex_);
    launch(ex_.stream(), count * S,
           ScaleBatch<T>{S, pk.template get<const T>(iD), pk.template get<const T>(il), work});
  }

 private:
  // out[t]^T = W[t] u[t]^T for the pointer arrays iW, iu, iout of pk (the
  // column-major view of row-major states; see layer.cu): z = u W^T per row.
  void affine_products(const Pack& pk, int iW, int iu, int iout, index_t width, index_t batch,
                       index_t count, const char* what) {
    const int wi = as_int(width), n = as_int(batch);
    const T one = T(1), zero = T(0);
    check(gemm_batched(ex_.blas(), CUBLAS_OP_T, CUBLAS_OP_N, wi, n, wi, &one,
                       pk.template get<const T>(iW), wi, pk.template get<const T>(iu), wi, &zero,
                       pk.template get<T>(iout), wi, as_int(count)),
          what);
  }

  CudaExecutor& ex_;
  BasicBuffer<T> ones_;
};

}  // namespace

}  // namespace cuda

template <class T>
std::unique_ptr<BasicDeviceBatchLayer<T>> make_device_batch_layer(Executor& ex) {
  auto* cu = dynamic_cast<cuda::CudaExecutor*>(&ex);
  if (!cu) throw std::invalid_argument("device layer kernels need a CUDA executor");
  return std::make_unique<cuda::CudaBatchLayer<T>>(*cu);
}
template std::unique_ptr<BasicDeviceBatchLayer<float>> make_device_batch_layer<float>(Executor&);
template std::unique_ptr<BasicDeviceBatchLayer<double>> make_device_batch_layer<double>(Executor&);

}  // namespace layerparallel

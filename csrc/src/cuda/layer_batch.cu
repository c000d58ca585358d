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

// out[t][k] = u[t][k] + h sigma(z[t S + k] + b[t][k % w]) for t < count, k < S.
template <class Act>
struct StepUpdateBatch {
  Act act;
  index_t S, width;
  double h;
  const double* const* u;
  const double* const* b;
  const double* z;
  double* const* out;
  __device__ void operator()(index_t i) const {
    const index_t t = i / S, k = i % S;
    out[t][k] = u[t][k] + h * act.value(z[i] + b[t][k % width]);
  }
};

// d = factor * lam_next into work[t S + k] (factor: D[t][k], or
// sigma'(work + b[t]) with work = W u on entry), and lam[t][k] = lam_next[t][k].
template <class Act, bool Cached>
struct AdjointScaleBatch {
  Act act;
  index_t S, width;
  const double* const* b;
  const double* const* D;
  const double* const* lam_next;
  double* const* lam;
  double* work;
  __device__ void operator()(index_t i) const {
    const index_t t = i / S, k = i % S;
    const double ln = lam_next[t][k];
    const double f = Cached ? D[t][k] : act.derivative(work[i] + b[t][k % width]);
    work[i] = f * ln;
    lam[t][k] = ln;
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
  int add_strided(const double* base, index_t stride) {
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

class CudaBatchLayer final : public DeviceBatchLayer {
 public:
  explicit CudaBatchLayer(CudaExecutor& ex) : ex_(ex) {}

  void forward(const NetConfig& cfg, index_t count, const double* const* W,
               const double* const* b, double h, const double* const* u, index_t batch,
               double* const* u_next, double* z) override {
    if (count <= 0 || batch <= 0) return;
    const index_t w = cfg.width, S = batch * w;
    Pack pk(count);
    const int iW = pk.add(W), ib = pk.add(b), iu = pk.add(u), io = pk.add(u_next),
              iz = pk.add_strided(z, S);
    pk.send(ex_);
    const int wi = as_int(w), n = as_int(batch);
    const double one = 1.0, zero = 0.0;
    // z[t]^T = W[t] u[t]^T (column-major view of row-major states; see layer.cu)
    check(cublasDgemmBatched(ex_.blas(), CUBLAS_OP_T, CUBLAS_OP_N, wi, n, wi, &one,
                             pk.get<const double>(iW), wi, pk.get<const double>(iu), wi, &zero,
                             pk.get<double>(iz), wi, as_int(count)),
          "dgemmBatched (forward)");
    with_activation(cfg.activation, cfg.eta, [&](auto act) {
      launch(ex_.stream(), count * S,
             StepUpdateBatch<decltype(act)>{act, S, w, h, pk.get<const double>(iu),
                                            pk.get<const double>(ib), z, pk.get<double>(io)});
    });
  }

  void adjoint(const NetConfig& cfg, index_t count, const double* const* W,
               const double* const* b, double h, const double* const* u,
               const double* const* D, const double* const* lam_next, index_t batch,
               double* const* lam, double* work) override {
    if (count <= 0 || batch <= 0) return;
    const index_t w = cfg.width, S = batch * w;
    Pack pk(count);
    const int iW = pk.add(W), ib = pk.add(b), iu = pk.add(u), iD = pk.add(D),
              iln = pk.add(lam_next), il = pk.add(lam), iw = pk.add_strided(work, S);
    pk.send(ex_);
    const int wi = as_int(w), n = as_int(batch);
    const double one = 1.0, zero = 0.0;
    if (!D)  // work = W u (the bias is added in the scale pass)
      check(cublasDgemmBatched(ex_.blas(), CUBLAS_OP_T, CUBLAS_OP_N, wi, n, wi, &one,
                               pk.get<const double>(iW), wi, pk.get<const double>(iu), wi,
                               &zero, pk.get<double>(iw), wi, as_int(count)),
            "dgemmBatched (adjoint affine)");
    with_activation(cfg.activation, cfg.eta, [&](auto act) {
      if (D)
        launch(ex_.stream(), count * S,
               AdjointScaleBatch<decltype(act), true>{
                   act, S, w, nullptr, pk.get<const double>(iD), pk.get<const double>(iln),
                   pk.get<double>(il), work});
      else
        launch(ex_.stream(), count * S,
               AdjointScaleBatch<decltype(act), false>{
                   act, S, w, pk.get<const double>(ib), nullptr, pk.get<const double>(iln),
                   pk.get<double>(il), work});
    });
    // lam[t]^T += h W[t]^T d[t]^T
    check(cublasDgemmBatched(ex_.blas(), CUBLAS_OP_N, CUBLAS_OP_N, wi, n, wi, &h,
                             pk.get<const double>(iW), wi, pk.get<const double>(iw), wi, &one,
                             pk.get<double>(il), wi, as_int(count)),
          "dgemmBatched (adjoint)");
  }

  void gradient(const NetConfig& cfg, index_t count, double h, const double* const* u,
                const double* work, index_t batch, double* const* gW,
                double* const* gb) override {
    if (count <= 0) return;
    const index_t w = cfg.width, S = batch * w;
    if (batch <= 0) {
      for (index_t t = 0; t < count; ++t) {
        ex_.fill(w * w, 0.0, gW[t]);
        ex_.fill(w, 0.0, gb[t]);
      }
      return;
    }
    if (ones_.size() < batch) {
      ones_.reserve(ex_, batch);
      ex_.fill(batch, 1.0, ones_.data());
    }
    Pack pk(count);
    const int iu = pk.add(u), id = pk.add_strided(work, S), igW = pk.add(gW), igb = pk.add(gb),
              i1 = pk.add_strided(ones_.data(), 0);
    pk.send(ex_);
    const int wi = as_int(w), n = as_int(batch);
    const double zero = 0.0;
    // gW[t]^T = h u[t]^T d[t] (column-major), gb[t] = h d[t]^T 1
    check(cublasDgemmBatched(ex_.blas(), CUBLAS_OP_N, CUBLAS_OP_T, wi, wi, n, &h,
                             pk.get<const double>(iu), wi, pk.get<const double>(id), wi, &zero,
                             pk.get<double>(igW), wi, as_int(count)),
          "dgemmBatched (gradient)");
    check(cublasDgemmBatched(ex_.blas(), CUBLAS_OP_N, CUBLAS_OP_N, wi, 1, n, &h,
                             pk.get<const double>(id), wi, pk.get<const double>(i1), n, &zero,
                             pk.get<double>(igb), wi, as_int(count)),
          "dgemmBatched (bias gradient)");
  }

 private:
  CudaExecutor& ex_;
  Buffer ones_;
};

}  // namespace

}  // namespace cuda

std::unique_ptr<DeviceBatchLayer> make_device_batch_layer(Executor& ex) {
  auto* cu = dynamic_cast<cuda::CudaExecutor*>(&ex);
  if (!cu) throw std::invalid_argument("device layer kernels need a CUDA executor");
  return std::make_unique<cuda::CudaBatchLayer>(*cu);
}

}  // namespace layerparallel

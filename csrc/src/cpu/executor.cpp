// The host backend: the engine's vector kernels run in plain loops on the
// calling thread (the engine already runs intervals on different threads).
#include <cstring>
#include <new>

#include "layerparallel/backend.hpp"
#include "layerparallel/vector_kernels.hpp"

namespace layerparallel {

namespace {

template <class K>
void launch(index_t n, const K& k) {
  for (index_t i = 0; i < n; ++i) k(i);
}

class CpuExecutor final : public Executor {
 public:
  Device device() const override { return Device::cpu; }
  std::string name() const override { return "cpu"; }
  void* alloc_bytes(std::size_t bytes) override {
    void* p = ::operator new(bytes > 0 ? bytes : 1);
    std::memset(p, 0, bytes);
    return p;
  }
  void free(void* p) noexcept override { ::operator delete(p); }
  void copy(index_t n, const double* src, double* dst) override { copy_t(n, src, dst); }
  void copy(index_t n, const float* src, float* dst) override { copy_t(n, src, dst); }
  void fill(index_t n, double a, double* x) override { launch(n, vk::Fill<double>{a, x}); }
  void fill(index_t n, float a, float* x) override { launch(n, vk::Fill<float>{a, x}); }
  void axpy(index_t n, double a, const double* x, double* y) override {
    launch(n, vk::Axpy<double>{a, x, y});
  }
  void axpy(index_t n, float a, const float* x, float* y) override {
    launch(n, vk::Axpy<float>{a, x, y});
  }
  void fas_update(index_t n, const double* v, const double* phi, double* g) override {
    launch(n, vk::FasUpdate<double>{v, phi, g});
  }
  void fas_update(index_t n, const float* v, const float* phi, float* g) override {
    launch(n, vk::FasUpdate<float>{v, phi, g});
  }
  void residual_accumulate(index_t n, const double* u, double* r) override {
    accumulate(n, vk::ResidualSq<double>{u, r});
  }
  void residual_accumulate(index_t n, const float* u, float* r) override {
    accumulate(n, vk::ResidualSq<float>{u, r});
  }
  double take_sum() override {
    const double s = sum_;
    sum_ = 0.0;
    return s;
  }
  // (The sum is per thread: this one executor serves every engine in the
  // process, and engines may run on several threads at once: blocks of a
  // batch, or networks used from several Python threads.)
  void to_host(index_t n, const double* src, double* host) override { copy(n, src, host); }
  void from_host(index_t n, const double* host, double* dst) override { copy(n, host, dst); }
  void to_host(index_t n, const float* src, float* host) override { copy(n, src, host); }
  void from_host(index_t n, const float* host, float* dst) override { copy(n, host, dst); }
  void synchronize() override {}

 private:
  template <class T>
  static void copy_t(index_t n, const T* src, T* dst) {
    if (dst != src) std::memcpy(dst, src, static_cast<std::size_t>(n) * sizeof(T));
  }
  template <class K>
  void accumulate(index_t n, const K& k) {
    double s = sum_;
    for (index_t i = 0; i < n; ++i) s += k(i);
    sum_ = s;
  }
  static thread_local double sum_;
};

thread_local double CpuExecutor::sum_ = 0.0;

}  // namespace

Executor& cpu_executor() {
  static CpuExecutor ex;
  return ex;
}

}  // namespace layerparallel

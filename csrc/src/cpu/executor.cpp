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
  double* alloc(index_t n) override { return new double[static_cast<std::size_t>(n)](); }
  void free(double* p) noexcept override { delete[] p; }
  void copy(index_t n, const double* src, double* dst) override {
    if (dst != src) std::memcpy(dst, src, static_cast<std::size_t>(n) * sizeof(double));
  }
  void fill(index_t n, double a, double* x) override { launch(n, vk::Fill{a, x}); }
  void axpy(index_t n, double a, const double* x, double* y) override {
    launch(n, vk::Axpy{a, x, y});
  }
  void fas_update(index_t n, const double* v, const double* phi, double* g) override {
    launch(n, vk::FasUpdate{v, phi, g});
  }
  void residual_accumulate(index_t n, const double* u, double* r) override {
    const vk::ResidualSq k{u, r};
    double s = sum_;
    for (index_t i = 0; i < n; ++i) s += k(i);
    sum_ = s;
  }
  double take_sum() override {
    const double s = sum_;
    sum_ = 0.0;
    return s;
  }
  void to_host(index_t n, const double* src, double* host) override { copy(n, src, host); }
  void from_host(index_t n, const double* host, double* dst) override { copy(n, host, dst); }
  void synchronize() override {}

 private:
  double sum_ = 0.0;
};

}  // namespace

Executor& cpu_executor() {
  static CpuExecutor ex;
  return ex;
}

}  // namespace layerparallel

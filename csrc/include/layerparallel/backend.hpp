// Backends: where states live and how the engine's vector arithmetic runs.
//
// An Executor owns one kind of memory (host, or one CUDA device) and runs the
// MGRIT engine's element-wise operations on it: copy, fill, axpy, the FAS
// update and the residual with its squared norm. The element-wise math is
// written once as LP_HD functors (vector_kernels.hpp); each backend has one
// launcher (src/cpu/, src/cuda/). Reductions accumulate on the executor and
// come back to the host only in take_sum(): one synchronization per residual.
//
// Every operation comes for double and for float states (the scalar of the
// network); the accumulator is double for both (see ResidualSq).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "config.hpp"

namespace layerparallel {

enum class Device : int { cpu = 0, cuda = 1 };

class Executor {
 public:
  virtual ~Executor() = default;
  virtual Device device() const = 0;
  virtual std::string name() const = 0;

  // `bytes` of this executor's memory, zero-filled; free() returns them.
  virtual void* alloc_bytes(std::size_t bytes) = 0;
  virtual void free(void* p) noexcept = 0;
  // n entries of T (double by default), zero-filled.
  template <class T = double>
  T* alloc(index_t n) {
    return static_cast<T*>(alloc_bytes(static_cast<std::size_t>(n) * sizeof(T)));
  }

  // Vector arithmetic on this executor's memory (n entries each).
  virtual void copy(index_t n, const double* src, double* dst) = 0;  // dst may equal src
  virtual void fill(index_t n, double a, double* x) = 0;
  virtual void axpy(index_t n, double a, const double* x, double* y) = 0;  // y += a x
  // FAS right-hand side: g += v - phi.
  virtual void fas_update(index_t n, const double* v, const double* phi, double* g) = 0;
  // Residual at a C-point: r -= u, and sum(r^2) added to the accumulator.
  virtual void residual_accumulate(index_t n, const double* u, double* r) = 0;
  // The same on float states (the accumulator stays double).
  virtual void copy(index_t n, const float* src, float* dst) = 0;
  virtual void fill(index_t n, float a, float* x) = 0;
  virtual void axpy(index_t n, float a, const float* x, float* y) = 0;
  virtual void fas_update(index_t n, const float* v, const float* phi, float* g) = 0;
  virtual void residual_accumulate(index_t n, const float* u, float* r) = 0;
  // The accumulator's value (reset to 0): the only host synchronization.
  virtual double take_sum() = 0;

  // Batched forms for the engine's interval-batched sweeps: the operation on
  // `count` vectors given by host arrays of pointers into this executor's
  // memory. The defaults loop over the single operations (so the host gives
  // the same bits, and the residual the same summation order, as unbatched
  // calls); a device runs each as one launch.
  virtual void copy_batch(index_t n, index_t count, const double* const* src,
                          double* const* dst);
  virtual void axpy_batch(index_t n, index_t count, double a, const double* const* x,
                          double* const* y);
  virtual void fas_update_batch(index_t n, index_t count, const double* const* v,
                                const double* const* phi, double* const* g);
  virtual void residual_accumulate_batch(index_t n, index_t count, const double* const* u,
                                         double* const* r);
  virtual void copy_batch(index_t n, index_t count, const float* const* src, float* const* dst);
  virtual void axpy_batch(index_t n, index_t count, float a, const float* const* x,
                          float* const* y);
  virtual void fas_update_batch(index_t n, index_t count, const float* const* v,
                                const float* const* phi, float* const* g);
  virtual void residual_accumulate_batch(index_t n, index_t count, const float* const* u,
                                         float* const* r);

  // A fixed sequence of work, replayed without per-step host overhead:
  // `work` only queues operations on this executor, always the same ones for
  // the same `key` (same pointers, sizes and values). The host runs it.
  // A device runs it normally the first time it sees `key`, records it as a
  // graph the second time (CUDA graphs) and afterwards replays the recording
  // with one launch instead of calling `work`. Returns whether `work` was
  // called. A recording that fails falls back to running `work`.
  virtual bool record_or_replay(std::uint64_t key, const std::function<void()>& work) {
    work();
    (void)key;
    return true;
  }

  // Between host memory and this executor's memory (plain copies on the CPU).
  // to_host returns with the data on the host (a synchronization); after
  // from_host the host array may be reused at once (no synchronization).
  virtual void to_host(index_t n, const double* src, double* host) = 0;
  virtual void from_host(index_t n, const double* host, double* dst) = 0;
  virtual void to_host(index_t n, const float* src, float* host) = 0;
  virtual void from_host(index_t n, const float* host, float* dst) = 0;
  // Host memory for messages to and from this executor: page-locked on a
  // device (fast copies; a copy from it is asynchronous, so the caller keeps
  // it unchanged until synchronize()), plain on the host.
  virtual void* alloc_host_bytes(std::size_t bytes) { return ::operator new(bytes); }
  virtual void free_host(void* p) noexcept { ::operator delete(p); }
  // Wait for all work queued on this executor.
  virtual void synchronize() = 0;
};

// The host executor (one per process; thread-safe: its operations keep no
// state but the accumulator, which is only used by the engine's driver thread).
Executor& cpu_executor();

// Whether the core was built with the CUDA backend, how many devices are
// visible, and the executor of device `id` (throws std::invalid_argument
// when CUDA is not built in or the device does not exist).
bool cuda_built();
int cuda_device_count();
std::shared_ptr<Executor> cuda_executor(int id);

// n entries of T of an executor's host message memory (alloc_host_bytes),
// released with it.
template <class T>
class BasicHostBuffer {
 public:
  BasicHostBuffer() = default;
  BasicHostBuffer(Executor& ex, index_t n)
      : ex_(&ex), n_(n),
        p_(n > 0 ? static_cast<T*>(ex.alloc_host_bytes(static_cast<std::size_t>(n) * sizeof(T)))
                 : nullptr) {
    for (index_t i = 0; i < n; ++i) p_[i] = T(0);
  }
  BasicHostBuffer(const BasicHostBuffer&) = delete;
  BasicHostBuffer& operator=(const BasicHostBuffer&) = delete;
  BasicHostBuffer(BasicHostBuffer&& o) noexcept
      : ex_(std::exchange(o.ex_, nullptr)), n_(std::exchange(o.n_, 0)),
        p_(std::exchange(o.p_, nullptr)) {}
  BasicHostBuffer& operator=(BasicHostBuffer&& o) noexcept {
    if (this != &o) {
      if (p_) ex_->free_host(p_);
      ex_ = std::exchange(o.ex_, nullptr);
      n_ = std::exchange(o.n_, 0);
      p_ = std::exchange(o.p_, nullptr);
    }
    return *this;
  }
  ~BasicHostBuffer() {
    if (p_) ex_->free_host(p_);
  }
  T* data() { return p_; }
  index_t size() const { return n_; }

 private:
  Executor* ex_ = nullptr;
  index_t n_ = 0;
  T* p_ = nullptr;
};

// n entries of T on an executor, released with it (the engine's state arrays).
template <class T>
class BasicBuffer {
 public:
  BasicBuffer() = default;
  BasicBuffer(Executor& ex, index_t n)
      : ex_(&ex), n_(n), p_(n > 0 ? ex.alloc<T>(n) : nullptr) {}
  BasicBuffer(const BasicBuffer&) = delete;
  BasicBuffer& operator=(const BasicBuffer&) = delete;
  BasicBuffer(BasicBuffer&& o) noexcept { swap(o); }
  BasicBuffer& operator=(BasicBuffer&& o) noexcept {
    BasicBuffer t(std::move(o));
    swap(t);
    return *this;
  }
  ~BasicBuffer() {
    if (p_) ex_->free(p_);
  }
  T* data() { return p_; }
  const T* data() const { return p_; }
  index_t size() const { return n_; }
  bool empty() const { return n_ == 0; }
  // Grow (contents lost) to at least n entries.
  void reserve(Executor& ex, index_t n) {
    if (n > n_ || ex_ != &ex) *this = BasicBuffer(ex, n);
  }

 private:
  void swap(BasicBuffer& o) noexcept {
    std::swap(ex_, o.ex_);
    std::swap(n_, o.n_);
    std::swap(p_, o.p_);
  }
  Executor* ex_ = nullptr;
  index_t n_ = 0;
  T* p_ = nullptr;
};
using Buffer = BasicBuffer<double>;

}  // namespace layerparallel

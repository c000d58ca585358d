// Backends: where states live and how the engine's vector arithmetic runs.
//
// An Executor owns one kind of memory (host, or one CUDA device) and runs the
// MGRIT engine's element-wise operations on it: copy, fill, axpy, the FAS
// update and the residual with its squared norm. The element-wise math is
// written once as LP_HD functors (vector_kernels.hpp); each backend has one
// launcher (src/cpu/, src/cuda/). Reductions accumulate on the executor and
// come back to the host only in take_sum(): one synchronization per residual.
#pragma once

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

  // n doubles of this executor's memory, zero-filled; free() returns them.
  virtual double* alloc(index_t n) = 0;
  virtual void free(double* p) noexcept = 0;

  // Vector arithmetic on this executor's memory (n entries each).
  virtual void copy(index_t n, const double* src, double* dst) = 0;  // dst may equal src
  virtual void fill(index_t n, double a, double* x) = 0;
  virtual void axpy(index_t n, double a, const double* x, double* y) = 0;  // y += a x
  // FAS right-hand side: g += v - phi.
  virtual void fas_update(index_t n, const double* v, const double* phi, double* g) = 0;
  // Residual at a C-point: r -= u, and sum(r^2) added to the accumulator.
  virtual void residual_accumulate(index_t n, const double* u, double* r) = 0;
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
  // n doubles of host memory for messages to and from this executor: page-
  // locked on a device (fast copies; a copy from it is asynchronous, so the
  // caller keeps it unchanged until synchronize()), plain on the host.
  virtual double* alloc_host(index_t n) { return new double[static_cast<std::size_t>(n)](); }
  virtual void free_host(double* p) noexcept { delete[] p; }
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

// n doubles of an executor's host message memory (alloc_host), released with it.
class HostBuffer {
 public:
  HostBuffer() = default;
  HostBuffer(Executor& ex, index_t n) : ex_(&ex), n_(n), p_(n > 0 ? ex.alloc_host(n) : nullptr) {}
  HostBuffer(const HostBuffer&) = delete;
  HostBuffer& operator=(const HostBuffer&) = delete;
  HostBuffer(HostBuffer&& o) noexcept
      : ex_(std::exchange(o.ex_, nullptr)), n_(std::exchange(o.n_, 0)),
        p_(std::exchange(o.p_, nullptr)) {}
  HostBuffer& operator=(HostBuffer&& o) noexcept {
    if (this != &o) {
      if (p_) ex_->free_host(p_);
      ex_ = std::exchange(o.ex_, nullptr);
      n_ = std::exchange(o.n_, 0);
      p_ = std::exchange(o.p_, nullptr);
    }
    return *this;
  }
  ~HostBuffer() {
    if (p_) ex_->free_host(p_);
  }
  double* data() { return p_; }
  index_t size() const { return n_; }

 private:
  Executor* ex_ = nullptr;
  index_t n_ = 0;
  double* p_ = nullptr;
};

// n doubles on an executor, released with it (the engine's state arrays).
class Buffer {
 public:
  Buffer() = default;
  Buffer(Executor& ex, index_t n) : ex_(&ex), n_(n), p_(n > 0 ? ex.alloc(n) : nullptr) {}
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  Buffer(Buffer&& o) noexcept { swap(o); }
  Buffer& operator=(Buffer&& o) noexcept {
    Buffer t(std::move(o));
    swap(t);
    return *this;
  }
  ~Buffer() {
    if (p_) ex_->free(p_);
  }
  double* data() { return p_; }
  const double* data() const { return p_; }
  index_t size() const { return n_; }
  bool empty() const { return n_ == 0; }
  // Grow (contents lost) to at least n entries.
  void reserve(Executor& ex, index_t n) {
    if (n > n_ || ex_ != &ex) *this = Buffer(ex, n);
  }

 private:
  void swap(Buffer& o) noexcept {
    std::swap(ex_, o.ex_);
    std::swap(n_, o.n_);
    std::swap(p_, o.p_);
  }
  Executor* ex_ = nullptr;
  index_t n_ = 0;
  double* p_ = nullptr;
};

}  // namespace layerparallel

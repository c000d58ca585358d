#include "layerparallel/comm.hpp"

#include <algorithm>
#include <cstring>
#include <stdexcept>

#ifdef LP_WITH_MPI
#include <mpi.h>
#endif

namespace layerparallel {

#ifdef LP_WITH_MPI
namespace {
// MPI_Comm is an int (MPICH) or a pointer (Open MPI); keep it in 8 bytes.
static_assert(sizeof(MPI_Comm) <= sizeof(long long), "MPI_Comm does not fit");
MPI_Comm to_mpi(long long h) {
  MPI_Comm c;
  std::memcpy(&c, &h, sizeof(MPI_Comm));
  return c;
}
void check(int rc, const char* what) {
  if (rc != MPI_SUCCESS) throw std::runtime_error(std::string("MPI error in ") + what);
}
constexpr index_t kChunk = 1 << 30;  // MPI counts are int
}  // namespace

Comm Comm::from_fortran(long long handle) {
  int init = 0;
  MPI_Initialized(&init);
  if (!init) throw std::runtime_error("MPI is not initialized (import mpi4py.MPI first)");
  Comm c;
  MPI_Comm mc = MPI_Comm_f2c(static_cast<MPI_Fint>(handle));
  long long h = 0;
  std::memcpy(&h, &mc, sizeof(MPI_Comm));
  c.handle_ = h;
  c.has_mpi_ = true;
  check(MPI_Comm_rank(mc, &c.rank_), "MPI_Comm_rank");
  check(MPI_Comm_size(mc, &c.size_), "MPI_Comm_size");
  return c;
}

bool Comm::mpi_available() { return true; }

namespace {
MPI_Datatype mpi_type(const double*) { return MPI_DOUBLE; }
MPI_Datatype mpi_type(const float*) { return MPI_FLOAT; }

template <class T>
void send_t(long long h, int dest, int tag, const T* data, index_t n) {
  for (index_t off = 0; off < n; off += kChunk) {
    const int cnt = static_cast<int>(std::min(kChunk, n - off));
    check(MPI_Send(data + off, cnt, mpi_type(data), dest, tag, to_mpi(h)), "MPI_Send");
  }
}
template <class T>
void recv_t(long long h, int src, int tag, T* data, index_t n) {
  for (index_t off = 0; off < n; off += kChunk) {
    const int cnt = static_cast<int>(std::min(kChunk, n - off));
    check(MPI_Recv(data + off, cnt, mpi_type(data), src, tag, to_mpi(h), MPI_STATUS_IGNORE),
          "MPI_Recv");
  }
}
template <class T>
void isend_t(long long h, int dest, int tag, const T* data, index_t n, Request& req) {
  if (n > kChunk) throw std::invalid_argument("isend: message too large");
  MPI_Request r;
  check(MPI_Isend(data, static_cast<int>(n), mpi_type(data), dest, tag, to_mpi(h), &r),
        "MPI_Isend");
  static_assert(sizeof(MPI_Request) <= sizeof(long long), "MPI_Request does not fit");
  std::memcpy(&req.handle, &r, sizeof(MPI_Request));
  req.active = true;
}
template <class T>
void broadcast_t(long long h, int root, T* data, index_t n) {
  for (index_t off = 0; off < n; off += kChunk) {
    const int cnt = static_cast<int>(std::min(kChunk, n - off));
    check(MPI_Bcast(data + off, cnt, mpi_type(data), root, to_mpi(h)), "MPI_Bcast");
  }
}
}  // namespace

void Comm::send(int dest, int tag, const double* data, index_t n) const {
  send_t(handle_, dest, tag, data, n);
}
void Comm::send(int dest, int tag, const float* data, index_t n) const {
  send_t(handle_, dest, tag, data, n);
}
void Comm::recv(int src, int tag, double* data, index_t n) const {
  recv_t(handle_, src, tag, data, n);
}
void Comm::recv(int src, int tag, float* data, index_t n) const {
  recv_t(handle_, src, tag, data, n);
}
void Comm::isend(int dest, int tag, const double* data, index_t n, Request& req) const {
  isend_t(handle_, dest, tag, data, n, req);
}
void Comm::isend(int dest, int tag, const float* data, index_t n, Request& req) const {
  isend_t(handle_, dest, tag, data, n, req);
}
void Comm::wait(Request& req) const {
  if (!req.active) return;
  MPI_Request r;
  std::memcpy(&r, &req.handle, sizeof(MPI_Request));
  check(MPI_Wait(&r, MPI_STATUS_IGNORE), "MPI_Wait");
  req.active = false;
}
double Comm::allreduce_sum(double x) const {
  if (!has_mpi_) return x;
  double y = 0;
  check(MPI_Allreduce(&x, &y, 1, MPI_DOUBLE, MPI_SUM, to_mpi(handle_)), "MPI_Allreduce");
  return y;
}
void Comm::allreduce_sum(double* data, index_t n) const {
  if (!has_mpi_) return;
  for (index_t off = 0; off < n; off += kChunk) {
    const int cnt = static_cast<int>(std::min(kChunk, n - off));
    check(MPI_Allreduce(MPI_IN_PLACE, data + off, cnt, MPI_DOUBLE, MPI_SUM, to_mpi(handle_)),
          "MPI_Allreduce");
  }
}
double Comm::allreduce_max(double x) const {
  if (!has_mpi_) return x;
  double y = 0;
  check(MPI_Allreduce(&x, &y, 1, MPI_DOUBLE, MPI_MAX, to_mpi(handle_)), "MPI_Allreduce");
  return y;
}
void Comm::broadcast(int root, double* data, index_t n) const {
  if (has_mpi_) broadcast_t(handle_, root, data, n);
}
void Comm::broadcast(int root, float* data, index_t n) const {
  if (has_mpi_) broadcast_t(handle_, root, data, n);
}
void Comm::barrier() const {
  if (has_mpi_) check(MPI_Barrier(to_mpi(handle_)), "MPI_Barrier");
}

#else  // built without MPI: one rank

Comm Comm::from_fortran(long long) {
  throw std::runtime_error("layerparallel was built without MPI; rebuild with MPI to use comm");
}
bool Comm::mpi_available() { return false; }
void Comm::send(int, int, const double*, index_t) const {
  throw std::logic_error("send on a single-rank communicator");
}
void Comm::recv(int, int, double*, index_t) const {
  throw std::logic_error("recv on a single-rank communicator");
}
void Comm::isend(int, int, const double*, index_t, Request&) const {
  throw std::logic_error("isend on a single-rank communicator");
}
void Comm::send(int, int, const float*, index_t) const {
  throw std::logic_error("send on a single-rank communicator");
}
void Comm::recv(int, int, float*, index_t) const {
  throw std::logic_error("recv on a single-rank communicator");
}
void Comm::isend(int, int, const float*, index_t, Request&) const {
  throw std::logic_error("isend on a single-rank communicator");
}
void Comm::wait(Request&) const {}
double Comm::allreduce_sum(double x) const { return x; }
void Comm::allreduce_sum(double*, index_t) const {}
double Comm::allreduce_max(double x) const { return x; }
void Comm::broadcast(int, double*, index_t) const {}
void Comm::broadcast(int, float*, index_t) const {}
void Comm::barrier() const {}

#endif

}  // namespace layerparallel

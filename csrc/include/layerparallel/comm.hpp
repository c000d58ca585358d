// The one door MPI enters through. The core takes a Comm built from an
// mpi4py communicator (any sub-communicator); without MPI it is one rank.
#pragma once

#include <memory>
#include <vector>

#include "config.hpp"

namespace layerparallel {

// A pending non-blocking send.
struct Request {
  long long handle = 0;
  bool active = false;
};

class Comm {
 public:
  // A single-rank communicator (no MPI needed).
  Comm() = default;
  // From a Fortran handle (mpi4py: comm.py2f()); MPI_Comm_f2c makes it
  // independent of the MPI implementation's handle type.
  static Comm from_fortran(long long handle);

  int rank() const { return rank_; }
  int size() const { return size_; }
  bool distributed() const { return size_ > 1; }

  void send(int dest, int tag, const double* data, index_t n) const;
  void recv(int src, int tag, double* data, index_t n) const;
  // Non-blocking send of at most 2^31-1 entries; `data` must live until wait().
  void isend(int dest, int tag, const double* data, index_t n, Request& req) const;
  void wait(Request& req) const;
  double allreduce_sum(double x) const;
  void allreduce_sum(double* data, index_t n) const;
  double allreduce_max(double x) const;
  void broadcast(int root, double* data, index_t n) const;
  // The point-to-point messages and broadcasts of float networks (sums and
  // maxima stay double).
  void send(int dest, int tag, const float* data, index_t n) const;
  void recv(int src, int tag, float* data, index_t n) const;
  void isend(int dest, int tag, const float* data, index_t n, Request& req) const;
  void broadcast(int root, float* data, index_t n) const;
  void barrier() const;

  static bool mpi_available();

 private:
  int rank_ = 0, size_ = 1;
  long long handle_ = 0;  // the MPI_Comm, as an integer-sized value
  bool has_mpi_ = false;
};

// Whether the MPI library takes device (CUDA) pointers: 1 yes, 0 no, -1 it
// cannot say (no query in this MPI, or MPI not initialized).
int mpi_cuda_support();

}  // namespace layerparallel

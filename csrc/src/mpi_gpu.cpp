// Whether the MPI library passes device pointers itself (CUDA-aware), asked
// of the library where it can answer: MPICH's MPIX_GPU_query_support, Open
// MPI's MPIX_Query_cuda_support (mpi-ext.h).
#include "layerparallel/comm.hpp"

#ifdef LP_WITH_MPI
#include <mpi.h>
#if defined(OPEN_MPI) && __has_include(<mpi-ext.h>)
#include <mpi-ext.h>
#endif
#endif

namespace layerparallel {

int mpi_cuda_support() {
#ifdef LP_WITH_MPI
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) return -1;
#if defined(MPIX_GPU_SUPPORT_CUDA)
  int supported = 0;
  if (MPIX_GPU_query_support(MPIX_GPU_SUPPORT_CUDA, &supported) != MPI_SUCCESS) return -1;
  return supported ? 1 : 0;
#elif defined(MPIX_CUDA_AWARE_SUPPORT)
  return MPIX_Query_cuda_support() ? 1 : 0;
#else
  return -1;
#endif
#else
  return -1;
#endif
}

}  // namespace layerparallel

// Build-wide definitions shared by every backend.
#pragma once

#include <cstddef>
#include <cstdint>

// Element-wise math is written once and compiled for the host and, when the
// CUDA backend is enabled, for the device as well.
#if defined(__CUDACC__)
#define LP_HD __host__ __device__ __forceinline__
#else
#define LP_HD inline
#endif

namespace layerparallel {

using index_t = std::int64_t;

}  // namespace layerparallel

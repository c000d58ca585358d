// Compiler hints shared by the narrow kernels (dense and conv): full unrolling
// of fixed-size loops, simd loops, and the x86-64-v3 clone.
#pragma once

// LP_NARROW_TARGETS: on x86-64 with GCC or Clang the kernels are also compiled
// for x86-64-v3 (AVX2, FMA) and the loader picks the clone the processor runs
// (target_clones); the default clone keeps the package portable. Only a
// compiler attribute: the code stays plain C++.
#if defined(__GNUC__)
#define LP_UNROLL _Pragma("GCC unroll 16")
#else
#define LP_UNROLL
#endif
#if defined(_OPENMP)
#define LP_SIMD _Pragma("omp simd")
#else
#define LP_SIMD
#endif
#if defined(__x86_64__) && defined(__linux__) &&                            \
    ((defined(__clang__) && __clang_major__ >= 14) ||                       \
     (!defined(__clang__) && defined(__GNUC__) && __GNUC__ >= 11))
#define LP_NARROW_TARGETS __attribute__((target_clones("arch=x86-64-v3", "default"), flatten))
#else
#define LP_NARROW_TARGETS
#endif


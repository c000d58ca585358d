// Compiler hints shared by the narrow kernels (dense and conv): full unrolling
// of fixed-size loops, simd loops, the x86-64-v3 clone, and 32-byte packs.
#pragma once

#include <cstring>

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


// Pack<T>::type: 32 bytes of T as one value (GCC/Clang vector extensions;
// on the default clone the compiler splits it into narrower registers). For
// the products whose operands GCC otherwise stages through the stack in
// halves (store-forwarding stalls). Without the extension (LP_PACKS 0) the
// kernels keep their plain loops.
#if defined(__GNUC__)
#define LP_PACKS 1
namespace layerparallel {
template <class T>
struct Pack {
  typedef T type __attribute__((vector_size(32)));
  static constexpr int size = static_cast<int>(32 / sizeof(T));
  // By reference, not returned: a returned 32-byte vector changes the ABI of
  // the default clone (GCC's -Wpsabi).
  static void load(type& v, const T* p) { std::memcpy(&v, p, sizeof v); }
  static void store(T* p, const type& v) { std::memcpy(p, &v, sizeof v); }
};
}  // namespace layerparallel
#else
#define LP_PACKS 0
#endif

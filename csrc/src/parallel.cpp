#include "layerparallel/parallel.hpp"

#include <thread>

#include "layerparallel/blas.hpp"

namespace layerparallel {

namespace {
int initial_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}
int& thread_setting() {
  static int n = [] {
    blas::set_num_threads(1);  // the core parallelizes around the BLAS, not inside it
    return initial_threads();
  }();
  return n;
}
}  // namespace

int num_threads() { return thread_setting(); }

void set_num_threads(int n) {
  if (n < 1) n = 1;
  thread_setting() = n;
}

}  // namespace layerparallel

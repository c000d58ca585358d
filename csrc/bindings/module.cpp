// layerparallel._core: the compiled kernels and solvers. Users import the
// Python package; this module is private.
#include <pybind11/pybind11.h>

#include "layerparallel/blas.hpp"

namespace py = pybind11;

namespace layerparallel::bind {
void bind_model(py::module_& m);
}

PYBIND11_MODULE(_core, m) {
  m.doc() = "layerparallel compiled core (private; use the layerparallel package)";
  layerparallel::bind::bind_model(m);
  m.def("blas_set_num_threads", &layerparallel::blas::set_num_threads, py::arg("n"),
        "Threads the BLAS may use (the process-wide OpenBLAS pool).");
  m.def("blas_get_num_threads", &layerparallel::blas::get_num_threads);
}

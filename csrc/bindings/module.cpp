// layerparallel._core: the compiled kernels and solvers. Users import the
// Python package; this module is private.
#include <pybind11/pybind11.h>

#include "layerparallel/conv_direct.hpp"
#include "layerparallel/kernels_narrow.hpp"
#include "layerparallel/parallel.hpp"

namespace py = pybind11;

namespace layerparallel::bind {
void bind_model(py::module_& m);
void bind_mgrit(py::module_& m);
void bind_steps(py::module_& m);
void bind_conv(py::module_& m);
void bind_backend(py::module_& m);
void bind_gpu(py::module_& m);
}

PYBIND11_MODULE(_core, m) {
  m.doc() = "layerparallel compiled core (private; use the layerparallel package)";
  layerparallel::bind::bind_model(m);
  layerparallel::bind::bind_mgrit(m);
  layerparallel::bind::bind_steps(m);
  layerparallel::bind::bind_conv(m);
  layerparallel::bind::bind_backend(m);
  layerparallel::bind::bind_gpu(m);
  m.def("set_num_threads", &layerparallel::set_num_threads, py::arg("n"),
        "Threads the core may use (row blocks and layers; the BLAS runs inside them).");
  m.def("get_num_threads", &layerparallel::num_threads);
  m.def("min_parallel_flops", &layerparallel::min_parallel_flops, py::arg("threads"),
        "Work (flops) a block needs before a team of `threads` pays for itself (measured once).");
  m.def("cache_bytes", &layerparallel::cache_bytes, py::arg("level"),
        "Bytes of the level-1 data / level-2 cache the kernels size their chunks by.");
  m.def("row_block_regions", &layerparallel::row_block_regions,
        "Row-block regions run in parallel so far in this process (whether sweeps split).");
  m.def("set_min_parallel_flops", &layerparallel::set_min_parallel_flops, py::arg("flops"),
        "Override min_parallel_flops (a negative value measures again); either way "
        "forgets the run-time feedback of every kind of region.");
  m.def("threshold_scale", &layerparallel::threshold_scale, py::arg("flops_per_row"),
        "The run-time feedback's scale on the threshold for regions of this work per row.");
  m.def("needs_calibration", &layerparallel::needs_calibration, py::arg("flops_per_row"),
        "Whether the next region of this work per row runs on one thread to measure its "
        "one-thread rate (the first one a team would pay for; never under a forced threshold).");
  m.def("_report_region", &layerparallel::report_region, py::arg("flops_per_row"),
        py::arg("flops"), py::arg("seconds"), py::arg("blocks"),
        "Feed one region's timing to the threshold's feedback (tests).");
  m.def("set_narrow_mode",
        [](int mode) { layerparallel::set_narrow_mode(static_cast<layerparallel::NarrowMode>(mode)); },
        py::arg("mode"), "Narrow-width kernels: 0 measure at first use, 1 always, 2 never.");
  m.def("narrow_mode", [] { return static_cast<int>(layerparallel::narrow_mode()); });
  m.def("uses_narrow", &layerparallel::use_narrow<double>, py::arg("width"),
        "Whether float64 layers of this width take the narrow kernels (measures once under auto).");
  m.def("uses_narrow32", &layerparallel::use_narrow<float>, py::arg("width"),
        "Whether float32 layers of this width take the narrow kernels (measures once under auto).");
  m.def("conv_direct_shape", &layerparallel::conv_direct_shape, py::arg("channels"),
        py::arg("kernel"), "Whether residual conv layers of this shape have direct kernels.");
  m.def("uses_conv_direct", &layerparallel::use_conv_direct<double>, py::arg("channels"),
        py::arg("kernel"),
        "Whether float64 residual conv layers of this shape take the direct kernels (measures once under auto).");
  m.def("uses_conv_direct32", &layerparallel::use_conv_direct<float>, py::arg("channels"),
        py::arg("kernel"),
        "Whether float32 residual conv layers of this shape take the direct kernels (measures once under auto).");
}

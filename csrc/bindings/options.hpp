// Conversions shared by the solver bindings: lp.MGRIT.options() -> MGRITOptions
// and an mpi4py communicator's Fortran handle -> Comm.
#pragma once

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <stdexcept>
#include <vector>

#include "layerparallel/comm.hpp"
#include "layerparallel/mgrit.hpp"

namespace layerparallel::bind {

namespace py = pybind11;

inline Comm make_comm(py::object handle) {
  if (handle.is_none()) return Comm();
  return Comm::from_fortran(handle.cast<long long>());
}

// The dict of lp.MGRIT.options() (validated in Python; checked again here so
// C++ never runs with impossible options).
inline MGRITOptions make_options(const py::dict& o) {
  MGRITOptions opt;
  opt.cfactor = o["cfactor"].cast<std::vector<index_t>>();
  if (opt.cfactor.empty()) throw std::invalid_argument("cfactor is empty");
  for (auto c : opt.cfactor)
    if (c < 2) throw std::invalid_argument("cfactor must be >= 2");
  opt.max_levels = o["max_levels"].cast<int>();
  opt.min_coarse = o["min_coarse"].cast<index_t>();
  opt.relax_cf = o["relax_cf"].cast<int>();
  opt.fcycle = o["fcycle"].cast<bool>();
  opt.tol = o["tol"].cast<double>();
  opt.rtol = o["rtol"].cast<double>();
  opt.max_iter = o["max_iter"].cast<int>();
  opt.store_fine_f = o["store_fine_f"].cast<bool>();
  opt.divergence = o["divergence"].cast<double>();
  if (o.contains("skip_first_down")) opt.skip_first_down = o["skip_first_down"].cast<bool>();
  if (opt.max_levels < 1 || opt.min_coarse < 1 || opt.relax_cf < 0 || opt.max_iter < 0)
    throw std::invalid_argument("invalid MGRIT options");
  return opt;
}

}  // namespace layerparallel::bind

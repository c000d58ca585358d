// Conversions shared by the solver bindings: lp.MGRIT.options() -> MGRITOptions
// and an mpi4py communicator's Fortran handle -> Comm.
#pragma once

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <pybind11/numpy.h>

#include <stdexcept>
#include <string>
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
  if (o.contains("xbraid")) opt.xbraid = o["xbraid"].cast<bool>();
  if (o.contains("batch_intervals")) opt.batch_intervals = o["batch_intervals"].cast<int>();
  if (o.contains("batch_block")) opt.batch_block = o["batch_block"].cast<index_t>();
  if (opt.batch_block > 0 && (opt.tol > 0.0 || opt.rtol > 0.0))
    throw std::invalid_argument("batch_block needs a fixed number of cycles (tol and rtol off)");
  if (o.contains("graphs")) opt.graphs = o["graphs"].cast<bool>();
  if (o.contains("device_messages")) opt.device_messages = o["device_messages"].cast<bool>();
  if (opt.max_levels < 1 || opt.min_coarse < 1 || opt.relax_cf < 0 || opt.max_iter < 0)
    throw std::invalid_argument("invalid MGRIT options");
  return opt;
}

// A solve's outcome as the Python side reads it.
inline py::dict info_dict(const SolveInfo& s) {
  py::dict d;
  d["iterations"] = s.iterations;
  d["converged"] = s.converged;
  d["residuals"] = s.residuals;
  d["steps"] = s.steps;
  d["batches"] = s.batches;
  d["replays"] = s.replays;
  d["blocks"] = s.blocks;
  return d;
}

// The state at level-0 point p, which this rank must own (stored or recomputed).
inline py::array_t<double> owned_state(MGRIT& mg, index_t size, index_t p) {
  if (p < mg.first_point() || p > mg.last_point())
    throw std::invalid_argument("point " + std::to_string(p) + " is not on this rank");
  py::array_t<double> out(size);
  std::vector<double> work(size);
  {
    py::gil_scoped_release nogil;
    mg.state_into(p, out.mutable_data(), work.data());
  }
  return out;
}

}  // namespace layerparallel::bind

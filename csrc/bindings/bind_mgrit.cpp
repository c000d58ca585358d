// Bindings of the MGRIT engine: options, the layer-parallel ODE-ResNet model,
// and MGRIT over any Python propagator phi(level, step, w).
#include <pybind11/functional.h>
#include <pybind11/stl.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>

#include "arrays.hpp"
#include "options.hpp"
#include "layerparallel/layer_parallel_model.hpp"
#include "layerparallel/mgrit.hpp"

namespace layerparallel::bind {

namespace {

// A Python callable as the app. Steps run one at a time under the GIL; an
// exception is kept and NaN returned, so every rank learns of it through the
// residual reduction instead of waiting forever on this one.
class PyApp : public App {
 public:
  PyApp(py::function phi, index_t size) : phi_(std::move(phi)), size_(size) {}
  index_t state_size() const override { return size_; }
  bool concurrent_steps() const override { return false; }
  bool failed() const override { return static_cast<bool>(error_); }
  void step(int level, index_t from, index_t, const double* in, double* out, bool) override {
    py::gil_scoped_acquire gil;
    if (error_) {
      std::fill(out, out + size_, std::numeric_limits<double>::quiet_NaN());
      return;
    }
    try {
      carray w(size_);
      std::copy(in, in + size_, w.mutable_data());
      py::object r = phi_(level, from, w);
      auto a = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(r);
      if (!a || a.ndim() != 1 || a.shape(0) != size_)
        throw py::value_error("phi must return a 1-d float array of length " +
                              std::to_string(size_));
      std::copy(a.data(), a.data() + size_, out);
    } catch (py::error_already_set& e) {
      error_ = std::make_unique<py::error_already_set>(std::move(e));
      std::fill(out, out + size_, std::numeric_limits<double>::quiet_NaN());
    } catch (py::builtin_exception& e) {  // the shape check above: kept like phi's own errors
      e.set_error();
      error_ = std::make_unique<py::error_already_set>();
      std::fill(out, out + size_, std::numeric_limits<double>::quiet_NaN());
    }
  }
  void rethrow() {
    if (error_) {
      auto e = std::move(error_);
      e->restore();
      throw py::error_already_set();
    }
  }
  void reset() { error_.reset(); }

 private:
  py::function phi_;
  index_t size_;
  std::unique_ptr<py::error_already_set> error_;
};

class PropagatorSolver {
 public:
  PropagatorSolver(py::function phi, index_t state_size, index_t n_steps, const py::dict& opt,
                   py::object comm, std::vector<index_t> first_points)
      : comm_(make_comm(comm)), app_(std::move(phi), state_size) {
    if (first_points.empty()) first_points = LayerParallelModel::first_layers(n_steps, comm_.size());
    if (static_cast<int>(first_points.size()) != comm_.size())
      throw std::invalid_argument("first_points needs one entry per rank");
    mg_ = std::make_unique<MGRIT>(app_, n_steps, make_options(opt), comm_,
                                  Distribution::blocks(first_points, n_steps, false));
  }
  py::dict solve(const carray& g0, bool warm, py::object guess) {
    require_size(g0, "w0", app_.state_size());
    carray gs = guess.is_none() ? g0 : guess.cast<carray>();
    require_size(gs, "init_guess", app_.state_size());
    app_.reset();
    SolveInfo info;
    try {
      py::gil_scoped_release nogil;
      info = mg_->solve(g0.data(), warm, gs.data());
    } catch (MGRITDiverged&) {
      app_.rethrow();  // this rank's own error first
      throw;
    }
    return info_dict(info);
  }
  carray state(index_t p) {
    carray out = owned_state(*mg_, app_.state_size(), p);
    app_.rethrow();
    return out;
  }
  index_t first_point() const { return mg_->first_point(); }
  index_t last_point() const { return mg_->last_point(); }
  int levels() const { return mg_->n_levels(); }

 private:
  Comm comm_;
  PyApp app_;
  std::unique_ptr<MGRIT> mg_;
};

// u_N, the solve's info and its tape id.
template <class T>
py::tuple parallel_forward(BasicLayerParallelModel<T>& s, const tarray<T>& theta,
                           const tarray<T>& X, bool warm) {
  const auto& c = s.config();
  require_size(theta, "theta", s.layout().size);
  const auto n = rows_of(X, "X");
  require_shape(X, "X", n, c.n_in);
  tarray<T> out({n, static_cast<py::ssize_t>(c.width)});
  SolveInfo info;
  std::uint64_t tape;
  {
    py::gil_scoped_release nogil;
    tape = s.forward(theta.data(), X.data(), n, out.mutable_data(), warm, &info);
  }
  return py::make_tuple(out, info_dict(info), tape);
}

// The layer-parallel model of scalar T as the Python class `name`.
template <class T>
void bind_parallel(py::module_& m, const char* name) {
  using M = BasicLayerParallelModel<T>;
  using A = tarray<T>;
  py::class_<M>(m, name)
      .def(py::init([](const NetConfig& c, const py::dict& opt, py::object comm, int device) {
             // device: -1 the host, k >= 0 CUDA device k.
             return std::make_unique<M>(
                 c, make_comm(comm), make_options(opt),
                 device < 0 ? nullptr : cuda_executor(device));
           }),
           py::arg("config"), py::arg("options"), py::arg("comm"), py::arg("device") = -1)
      .def_property_readonly("size", [](const M& s) { return s.layout().size; })
      .def_property_readonly("levels", &M::levels)
      .def_property_readonly("batch_blocks", &M::batch_blocks,
                             "Blocks of rows the last call's batch was solved in.")
      .def("set_max_iter", &M::set_max_iter, py::arg("n"),
           "Cycles per solve from now on (the warm states are kept).")
      .def("warm_state",
           [](M& s) -> py::object {
             if (s.batch() < 0) return py::none();
             A out(s.warm_state_size(s.batch()));
             s.get_warm_state(out.mutable_data());
             return py::make_tuple(s.batch(), out);
           },
           "(batch, states) the next warm start begins from, or None before any solve.")
      .def("set_warm_state",
           [](M& s, index_t n, const A& states) {
             if (n < 1) throw std::invalid_argument("batch must be positive");
             require_size(states, "states", s.warm_state_size(n));
             s.set_warm_state(n, states.data());
           },
           py::arg("batch"), py::arg("states").noconvert())
      .def("owns", &M::owns, py::arg("n"), py::arg("adjoint"))
      .def("state",
           [](M& s, index_t n, bool adjoint) {
             if (s.batch() < 0 || !s.owns(n, adjoint))
               throw std::out_of_range("layer point " + std::to_string(n) +
                                       " is not held on this rank or nothing was solved yet");
             A out({static_cast<py::ssize_t>(s.batch()),
                         static_cast<py::ssize_t>(s.config().width)});
             {
               py::gil_scoped_release nogil;
               s.state(n, adjoint, out.mutable_data());
             }
             return out;
           },
           py::arg("n"), py::arg("adjoint"),
           "u_n (adjoint=False) or lambda_n of the last solve, (batch, width); n owned here.")
      .def("forward",
           [](M& s, const A& theta, const A& X, bool warm) {
             auto r = parallel_forward<T>(s, theta, X, warm);
             return py::make_tuple(r[0], r[1]);
           },
           py::arg("theta").noconvert(), py::arg("X").noconvert(), py::arg("warm"))
      .def("forward_tape", &parallel_forward<T>, py::arg("theta").noconvert(),
           py::arg("X").noconvert(), py::arg("warm"),
           "(u_N, info, tape): the tape id lets backward() reuse this solve's states.")
      .def("backward",
           [](M& s, const A& theta, const A& X, const A& lamN,
              std::uint64_t tape, py::object grad, py::object dX, bool warm) {
             const auto& c = s.config();
             require_size(theta, "theta", s.layout().size);
             const auto n = rows_of(X, "X");
             require_shape(X, "X", n, c.n_in);
             require_shape(lamN, "lamN", n, c.width);
             T* g = inplace_output<T>(grad, "grad", s.layout().size);
             if (!g) throw std::invalid_argument("grad: an output array is required");
             T* dx = inplace_output<T>(dX, "dX", n * c.n_in);
             SolveInfo info;
             {
               py::gil_scoped_release nogil;
               s.backward(theta.data(), X.data(), n, lamN.data(), tape, g, dx, warm, &info);
             }
             return info_dict(info);
           },
           py::arg("theta").noconvert(), py::arg("X").noconvert(), py::arg("lamN").noconvert(),
           py::arg("tape"), py::arg("grad"), py::arg("dX"), py::arg("warm"),
           "From lam_N = dL/du_N: this rank's dL/dtheta into grad (head entries zero), "
           "dL/dX into dX (flat, n * n_in) when given; the adjoint solve's info.")
      .def("loss_and_grad",
           [](M& s, const A& theta, const A& X, const A& Y,
              py::object grad, bool warm) {
             const auto& c = s.config();
             require_size(theta, "theta", s.layout().size);
             const auto n = rows_of(X, "X");
             require_shape(X, "X", n, c.n_in);
             require_shape(Y, "Y", n, c.n_out);
             T* g = inplace_output<T>(grad, "grad", s.layout().size);
             ModelSolveInfo info;
             double J;
             {
               py::gil_scoped_release nogil;
               J = s.loss_and_grad(theta.data(), X.data(), Y.data(), n, g, warm, &info);
             }
             py::dict d;
             d["forward"] = info_dict(info.forward);
             d["adjoint"] = info_dict(info.adjoint);
             return py::make_tuple(J, d);
           },
           py::arg("theta").noconvert(), py::arg("X").noconvert(), py::arg("Y").noconvert(),
           py::arg("grad"), py::arg("warm"));
}

}  // namespace

void bind_mgrit(py::module_& m) {
  py::register_exception<MGRITDiverged>(m, "MGRITDiverged", PyExc_RuntimeError);
  m.attr("mpi_available") = Comm::mpi_available();
  m.def("comm_rank_size", [](py::object h) {
    Comm c = make_comm(h);
    return py::make_tuple(c.rank(), c.size());
  });
  m.def(
      "mgrit_hierarchy",
      [](index_t n_steps, const py::dict& options) {
        if (n_steps < 1) throw py::value_error("n_steps must be >= 1");
        const Hierarchy h = build_hierarchy(n_steps, make_options(options));
        py::dict d;
        d["intervals"] = h.intervals;
        d["cfactor"] = h.cfactor;
        d["stride"] = h.stride;
        return d;
      },
      py::arg("n_steps"), py::arg("options"),
      "The levels an MGRIT of n_steps builds with these options: intervals, "
      "cfactor (to the next level; 1 on the coarsest) and stride per level.");
  m.def("first_layers", &LayerParallelModel::first_layers);

  bind_parallel<double>(m, "LayerParallelModel");
  bind_parallel<float>(m, "LayerParallelModel32");

  py::class_<PropagatorSolver>(m, "PropagatorSolver")
      .def(py::init<py::function, index_t, index_t, const py::dict&, py::object,
                    std::vector<index_t>>(),
           py::arg("phi"), py::arg("state_size"), py::arg("n_steps"), py::arg("options"),
           py::arg("comm"), py::arg("first_points"))
      .def("solve", &PropagatorSolver::solve, py::arg("w0").noconvert(), py::arg("warm"),
           py::arg("init_guess"))
      .def("state", &PropagatorSolver::state, py::arg("point"))
      .def_property_readonly("first_point", &PropagatorSolver::first_point)
      .def_property_readonly("last_point", &PropagatorSolver::last_point)
      .def_property_readonly("levels", &PropagatorSolver::levels);
}

}  // namespace layerparallel::bind

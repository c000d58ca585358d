// Bindings of MGRIT over training steps: the built-in MLP
// training step as an app of the shared engine (layerparallel::MGRIT).
#include <pybind11/stl.h>

#include <memory>
#include <string>

#include "arrays.hpp"
#include "options.hpp"
#include "layerparallel/layer_parallel_model.hpp"
#include "layerparallel/mgrit.hpp"
#include "layerparallel/steps_apps.hpp"

namespace layerparallel::bind {

namespace {

StepData parse_data(const std::string& s) {
  if (s == "all") return StepData::all;
  if (s == "cycle") return StepData::cycle;
  if (s == "cycle_twice") return StepData::cycle_twice;
  throw std::invalid_argument("data must be 'all', 'cycle' or 'cycle_twice', got '" + s + "'");
}

StepIndex parse_index(const std::string& s) {
  if (s == "local") return StepIndex::local;
  if (s == "injected") return StepIndex::injected;
  throw std::invalid_argument("mapping must be 'local' or 'injected', got '" + s + "'");
}

// MGRIT over the training steps of an MLPStepsApp, distributed over the
// ranks of `comm` by contiguous blocks of steps (as the layers are).
class StepsSolver {
 public:
  StepsSolver(MLPStepsApp& app, index_t n_steps, const py::dict& opt, py::object comm)
      : app_(app) {
    comm_ = make_comm(comm);
    if (comm_.size() > n_steps) throw std::invalid_argument("more ranks than steps");
    const auto first = LayerParallelModel::first_layers(n_steps, comm_.size());
    mg_ = std::make_unique<MGRIT>(app_, n_steps, make_options(opt), comm_,
                                  Distribution::blocks(first, n_steps, false));
  }
  py::dict solve(const carray& w0, const carray& guess) {
    require_size(w0, "w0", app_.state_size());
    require_size(guess, "init_guess", app_.state_size());
    SolveInfo info;
    {
      py::gil_scoped_release nogil;
      info = mg_->solve(w0.data(), false, guess.data());
    }
    return info_dict(info);
  }
  carray state(index_t p) { return owned_state(*mg_, app_.state_size(), p); }
  index_t first_point() const { return mg_->first_point(); }
  index_t last_point() const { return mg_->last_point(); }
  int levels() const { return mg_->n_levels(); }

 private:
  MLPStepsApp& app_;
  Comm comm_;
  std::unique_ptr<MGRIT> mg_;
};

}  // namespace

void bind_steps(py::module_& m) {
  py::class_<MLPStepsApp>(m, "MLPSteps")
      .def(py::init([](std::vector<index_t> sizes, const carray& X, const carray& Y,
                       index_t batch_size, index_t unit, double alpha_base, double alpha_max,
                       bool scale_alpha, const std::string& data, const std::string& mapping,
                       bool mean, const std::string& index_point) {
             MLPStepsConfig cfg;
             cfg.sizes = std::move(sizes);
             if (cfg.sizes.size() < 2) throw std::invalid_argument("sizes: need two or more");
             const auto n = rows_of(X, "X");
             require_shape(X, "X", n, cfg.sizes.front());
             require_shape(Y, "Y", n, cfg.sizes.back());
             cfg.batch_size = batch_size;
             cfg.unit = unit;
             cfg.alpha_base = alpha_base;
             cfg.alpha_max = alpha_max;
             cfg.scale_alpha = scale_alpha;
             cfg.data = parse_data(data);
             cfg.index = parse_index(mapping);
             cfg.mean = mean;
             if (index_point != "start" && index_point != "end")
               throw std::invalid_argument("index_point must be 'start' or 'end', got '" +
                                           index_point + "'");
             cfg.index_at_end = index_point == "end";
             return std::make_unique<MLPStepsApp>(cfg, X.data(), Y.data(), n);
           }),
           py::arg("sizes"), py::arg("X").noconvert(), py::arg("Y").noconvert(),
           py::arg("batch_size"), py::arg("unit"), py::arg("alpha_base"), py::arg("alpha_max"),
           py::arg("scale_alpha"), py::arg("data"), py::arg("mapping"), py::arg("mean"),
           py::arg("index_point") = "start")
      .def_property_readonly("state_size", &MLPStepsApp::state_size)
      .def_property_readonly("n_units", &MLPStepsApp::n_units)
      .def("alpha", &MLPStepsApp::alpha, py::arg("from_point"), py::arg("to_point"))
      .def("data_range", &MLPStepsApp::data_range, py::arg("from_point"), py::arg("to_point"))
      .def("step",
           [](MLPStepsApp& a, int level, index_t from, index_t to, const carray& w) {
             require_size(w, "w", a.state_size());
             if (from < 0 || to <= from) throw std::invalid_argument("need 0 <= from < to");
             carray out(a.state_size());
             {
               py::gil_scoped_release nogil;
               a.step(level, from, to, w.data(), out.mutable_data(), true);
             }
             return out;
           },
           py::arg("level"), py::arg("from_point"), py::arg("to_point"), py::arg("w").noconvert())
      .def("train",
           [](MLPStepsApp& a, index_t n_steps, const carray& w0, bool all_states) {
             require_size(w0, "w0", a.state_size());
             if (n_steps < 0) throw std::invalid_argument("n_steps must be >= 0");
             carray out = all_states ? carray({n_steps + 1, a.state_size()})
                                     : carray(a.state_size());
             {
               py::gil_scoped_release nogil;
               a.train(n_steps, w0.data(), out.mutable_data(), all_states);
             }
             return out;
           },
           py::arg("n_steps"), py::arg("w0").noconvert(), py::arg("all_states"))
      .def("loss",
           [](const MLPStepsApp& a, const carray& w) {
             require_size(w, "w", a.state_size());
             return a.loss(w.data());
           },
           py::arg("w").noconvert());

  py::class_<StepsSolver>(m, "StepsSolver")
      .def(py::init<MLPStepsApp&, index_t, const py::dict&, py::object>(), py::arg("app"),
           py::arg("n_steps"), py::arg("options"), py::arg("comm"), py::keep_alive<1, 2>())
      .def("solve", &StepsSolver::solve, py::arg("w0").noconvert(),
           py::arg("init_guess").noconvert())
      .def("state", &StepsSolver::state, py::arg("point"))
      .def_property_readonly("first_point", &StepsSolver::first_point)
      .def_property_readonly("last_point", &StepsSolver::last_point)
      .def_property_readonly("levels", &StepsSolver::levels);
}

}  // namespace layerparallel::bind

// Bindings of the serial ODE-ResNet model.
#include <pybind11/stl.h>

#include <cstdint>
#include <memory>
#include <utility>
#include <string>

#include "arrays.hpp"
#include "layerparallel/layer.hpp"
#include "layerparallel/model.hpp"

namespace layerparallel::bind {

namespace {

Activation parse_activation(const std::string& s) {
  if (s == "relu") return Activation::relu;
  if (s == "tanh") return Activation::tanh;
  if (s == "smoothrelu") return Activation::smoothrelu;
  throw std::invalid_argument("activation: unknown '" + s + "'");
}
Opening parse_opening(const std::string& s) {
  if (s == "activation") return Opening::activation;
  if (s == "linear") return Opening::linear;
  if (s == "padding") return Opening::padding;
  throw std::invalid_argument("opening: unknown '" + s + "'");
}
Head parse_head(const std::string& s) {
  if (s == "classification") return Head::classification;
  if (s == "regression") return Head::regression;
  throw std::invalid_argument("head: unknown '" + s + "'");
}

// u_N and the tape id of one serial propagation.
template <class T>
std::pair<tarray<T>, std::uint64_t> serial_forward(BasicSerialModel<T>& s, const tarray<T>& theta,
                                                   const tarray<T>& X) {
  const auto& c = s.config();
  require_size(theta, "theta", s.layout().size);
  const auto n = rows_of(X, "X");
  require_shape(X, "X", n, c.n_in);
  tarray<T> out({n, static_cast<py::ssize_t>(c.width)});
  const T* t = theta.data();
  const T* x = X.data();
  T* o = out.mutable_data();
  std::uint64_t tape;
  {
    py::gil_scoped_release nogil;
    tape = s.forward(t, x, n, o);
  }
  return {out, tape};
}

NetConfig make_config(index_t n_in, index_t width, index_t n_layers, index_t n_out, double T,
                      const std::string& activation, double eta, const std::string& opening,
                      const std::string& head, double gamma_tik, double gamma_ddt,
                      double gamma_out) {
  if (n_in < 1 || width < 1 || n_layers < 1 || n_out < 1)
    throw std::invalid_argument("n_in, width, n_layers and n_out must be positive");
  if (!(T > 0.0)) throw std::invalid_argument("T must be positive");
  NetConfig c;
  c.n_in = n_in;
  c.width = width;
  c.n_layers = n_layers;
  c.n_out = n_out;
  c.T = T;
  c.activation = parse_activation(activation);
  c.eta = eta;
  c.opening = parse_opening(opening);
  if (c.opening == Opening::padding && n_in > width)
    throw std::invalid_argument("opening='padding' needs n_in <= width");
  c.head = parse_head(head);
  c.gamma_tik = gamma_tik;
  c.gamma_ddt = gamma_ddt;
  c.gamma_out = gamma_out;
  return c;
}

}  // namespace

py::dict layout_dict(const NetConfig& c, const ParamLayout& p) {
  const index_t w = c.width, din = c.has_opening_params() ? c.n_in : 0;
  const index_t wo = c.has_opening_params() ? w : 0;
  py::dict d;
  d["W_in"] = py::make_tuple(p.W_in, py::make_tuple(wo, din));
  d["b_in"] = py::make_tuple(p.b_in, py::make_tuple(wo));
  d["W"] = py::make_tuple(p.W, py::make_tuple(p.n_stored, w, w));
  d["b"] = py::make_tuple(p.b, py::make_tuple(p.n_stored, w));
  d["W_out"] = py::make_tuple(p.W_out, py::make_tuple(c.n_out, w));
  d["b_out"] = py::make_tuple(p.b_out, py::make_tuple(c.n_out));
  return d;
}

// The serial model of scalar T as the Python class `name`.
template <class T>
void bind_serial(py::module_& m, const char* name) {
  using M = BasicSerialModel<T>;
  using A = tarray<T>;
  py::class_<M>(m, name, "Serial ODE-ResNet: forward and backward sweeps in one call each.")
      .def(py::init([](const NetConfig& c) { return std::make_unique<M>(c); }),
           py::arg("config"))
      .def_property_readonly("size", [](const M& s) { return s.layout().size; })
      .def("layout", [](const M& s) { return layout_dict(s.config(), s.layout()); })
      .def(
          "forward",
          [](M& s, const A& theta, const A& X) {
            return serial_forward<T>(s, theta, X).first;
          },
          py::arg("theta").noconvert(), py::arg("X").noconvert())
      .def(
          "forward_tape",
          [](M& s, const A& theta, const A& X) {
            auto r = serial_forward<T>(s, theta, X);
            return py::make_tuple(r.first, r.second);
          },
          py::arg("theta").noconvert(), py::arg("X").noconvert(),
          "(u_N, tape): the tape id lets backward() reuse this propagation's states.")
      .def(
          "backward",
          [](M& s, const A& theta, const A& X, const A& lamN,
             std::uint64_t tape, py::object grad, py::object dX) {
            const auto& c = s.config();
            require_size(theta, "theta", s.layout().size);
            const auto n = rows_of(X, "X");
            require_shape(X, "X", n, c.n_in);
            require_shape(lamN, "lamN", n, c.width);
            T* g = inplace_output<T>(grad, "grad", s.layout().size);
            if (!g) throw std::invalid_argument("grad: an output array is required");
            T* dx = inplace_output<T>(dX, "dX", n * c.n_in);
            const T* t = theta.data();
            const T* x = X.data();
            const T* l = lamN.data();
            py::gil_scoped_release nogil;
            s.backward(t, x, n, l, tape, g, dx);
          },
          py::arg("theta").noconvert(), py::arg("X").noconvert(), py::arg("lamN").noconvert(),
          py::arg("tape"), py::arg("grad"), py::arg("dX") = py::none(),
          "From lam_N = dL/du_N: dL/dtheta into grad (head entries zero) and dL/dX "
          "into dX (flat, n * n_in) when given.")
      .def(
          "predict",
          [](M& s, const A& theta, const A& X) {
            const auto& c = s.config();
            require_size(theta, "theta", s.layout().size);
            const auto n = rows_of(X, "X");
            require_shape(X, "X", n, c.n_in);
            A out({n, static_cast<py::ssize_t>(c.n_out)});
            const T* t = theta.data();
            const T* x = X.data();
            T* o = out.mutable_data();
            {
              py::gil_scoped_release nogil;
              s.predict(t, x, n, o);
            }
            return out;
          },
          py::arg("theta").noconvert(), py::arg("X").noconvert())
      .def(
          "loss_and_grad",
          [](M& s, const A& theta, const A& X, const A& Y,
             py::object grad) {
            const auto& c = s.config();
            require_size(theta, "theta", s.layout().size);
            const auto n = rows_of(X, "X");
            require_shape(X, "X", n, c.n_in);
            require_shape(Y, "Y", n, c.n_out);
            T* g = inplace_output<T>(grad, "grad", s.layout().size);
            const T* t = theta.data();
            const T* x = X.data();
            const T* y = Y.data();
            py::gil_scoped_release nogil;
            return s.loss_and_grad(t, x, y, n, g);
          },
          py::arg("theta").noconvert(), py::arg("X").noconvert(), py::arg("Y").noconvert(),
          py::arg("grad") = py::none(),
          "J(theta) on (X, Y); writes the gradient into `grad` in place when given.");
}

void bind_model(py::module_& m) {
  // The network's configuration crosses into C++ once, as this object; the
  // models and the layout take it whole.
  py::class_<NetConfig>(m, "NetConfig", "The ODE-ResNet's configuration (validated).")
      .def(py::init(&make_config), py::kw_only(), py::arg("n_in"), py::arg("width"),
           py::arg("n_layers"), py::arg("n_out"), py::arg("T"), py::arg("activation"),
           py::arg("eta"), py::arg("opening"), py::arg("head"), py::arg("gamma_tik"),
           py::arg("gamma_ddt"), py::arg("gamma_out"))
      .def_readonly("n_in", &NetConfig::n_in)
      .def_readonly("width", &NetConfig::width)
      .def_readonly("n_layers", &NetConfig::n_layers)
      .def_readonly("n_out", &NetConfig::n_out)
      .def_readonly("T", &NetConfig::T);
  m.def("keeps_signs",
        [](const NetConfig& c, bool float32) {
          return float32 ? keeps_signs<float>(c) : keeps_signs<double>(c);
        },
        py::arg("config"), py::arg("float32") = false,
        "Whether serial propagation keeps only the signs of z for this network's layers "
        "(ReLU at a width whose blocked kernel runs): one byte per entry instead of z.");
  m.def("param_layout",
        [](const NetConfig& c, index_t first_layer, index_t n_stored) {
          if (first_layer < 0 || n_stored < 0 || first_layer + n_stored > c.n_layers)
            throw std::invalid_argument("layer block out of range");
          return layout_dict(c, ParamLayout::of(c, first_layer, n_stored));
        },
        py::arg("config"), py::arg("first_layer"), py::arg("n_stored"),
        "Layout {block: (offset, shape)} of a parameter vector holding layers "
        "[first_layer, first_layer + n_stored).");
  bind_serial<double>(m, "SerialModel");
  bind_serial<float>(m, "SerialModel32");
}

}  // namespace layerparallel::bind

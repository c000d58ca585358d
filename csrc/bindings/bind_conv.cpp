// Bindings of the convolutional ODE-ResNet: serial and layer-parallel models
// (float64 classes and float32 ones with the suffix 32) and the parameter
// layout. Images cross as (n, C_in * H * W) rows in
// (C, H, W) order; final states come back channels-last (n, H * W * C).
#include <pybind11/stl.h>

#include <memory>
#include <string>

#include "arrays.hpp"
#include "options.hpp"
#include "layerparallel/conv_model.hpp"
#include "layerparallel/conv_parallel_model.hpp"

namespace layerparallel::bind {

namespace {

ConvConfig make_conv_config(const py::dict& d) {
  ConvConfig c;
  c.in_channels = d["in_channels"].cast<index_t>();
  c.height = d["height"].cast<index_t>();
  c.width = d["width"].cast<index_t>();
  c.channels = d["channels"].cast<index_t>();
  c.n_layers = d["n_layers"].cast<index_t>();
  c.n_out = d["n_out"].cast<index_t>();
  c.kernel = d["kernel_size"].cast<index_t>();
  c.T = d["T"].cast<double>();
  c.eta = d["eta"].cast<double>();
  c.gamma_tik = d["gamma_tik"].cast<double>();
  c.gamma_ddt = d["gamma_ddt"].cast<double>();
  c.gamma_out = d["gamma_out"].cast<double>();
  if (c.in_channels < 1 || c.height < 1 || c.width < 1 || c.channels < 1 || c.n_layers < 1 ||
      c.n_out < 1)
    throw std::invalid_argument("image shape, channels, n_layers and n_out must be positive");
  if (c.kernel < 1 || c.kernel % 2 == 0) throw std::invalid_argument("kernel_size must be odd");
  if (!(c.T > 0.0) || !(c.eta > 0.0)) throw std::invalid_argument("T and eta must be positive");
  const auto act = d["activation"].cast<std::string>();
  if (act == "relu") c.activation = Activation::relu;
  else if (act == "tanh") c.activation = Activation::tanh;
  else if (act == "smoothrelu") c.activation = Activation::smoothrelu;
  else throw std::invalid_argument("activation: unknown '" + act + "'");
  const auto open = d["opening"].cast<std::string>();
  if (open == "activation") c.opening = Opening::activation;
  else if (open == "linear") c.opening = Opening::linear;
  else if (open == "padding") c.opening = Opening::padding;
  else throw std::invalid_argument("opening: unknown '" + open + "'");
  if (c.opening == Opening::padding && c.in_channels > c.channels)
    throw std::invalid_argument("opening='padding' needs in_channels <= channels");
  const auto pool = d["pooling"].cast<std::string>();
  if (pool == "average") c.pooling = ConvPooling::average;
  else if (pool == "flatten") c.pooling = ConvPooling::flatten;
  else throw std::invalid_argument("pooling: unknown '" + pool + "'");
  return c;
}

py::dict conv_layout_dict(const ConvConfig& c, const ConvLayout& p) {
  const index_t C = c.channels, k = c.kernel, co = c.has_opening_params() ? C : 0;
  py::dict d;
  d["W_in"] = py::make_tuple(p.W_in, py::make_tuple(co, c.in_channels, k, k));
  d["b_in"] = py::make_tuple(p.b_in, py::make_tuple(co));
  d["W"] = py::make_tuple(p.W, py::make_tuple(p.n_stored, C, C, k, k));
  d["b"] = py::make_tuple(p.b, py::make_tuple(p.n_stored, C));
  d["W_out"] = py::make_tuple(p.W_out, py::make_tuple(c.n_out, c.features()));
  d["b_out"] = py::make_tuple(p.b_out, py::make_tuple(c.n_out));
  return d;
}

// X as (n, C_in H W) rows; returns n.
template <class A>
py::ssize_t image_rows(const ConvConfig& c, const A& X) {
  const auto n = rows_of(X, "X");
  require_shape(X, "X", n, c.input_size());
  return n;
}

// The serial conv model of scalar T as the Python class `name`.
template <class T>
void bind_conv_serial(py::module_& m, const char* name) {
  using M = BasicConvSerialModel<T>;
  using A = tarray<T>;
  py::class_<M>(m, name, "Serial conv ODE-ResNet: forward and backward sweeps in one call each.")
      .def(py::init([](const py::dict& config) {
             return std::make_unique<M>(make_conv_config(config));
           }),
           py::arg("config"))
      .def_property_readonly("size", [](const M& s) { return s.layout().size; })
      .def("layout",
           [](const M& s) { return conv_layout_dict(s.config(), s.layout()); })
      .def("forward",
           [](M& s, const A& theta, const A& X) {
             require_size(theta, "theta", s.layout().size);
             const auto n = image_rows(s.config(), X);
             A out({n, static_cast<py::ssize_t>(s.config().state_size())});
             const T* t = theta.data();
             const T* x = X.data();
             T* o = out.mutable_data();
             {
               py::gil_scoped_release nogil;
               s.forward(t, x, n, o);
             }
             return out;
           },
           py::arg("theta").noconvert(), py::arg("X").noconvert())
      .def("predict",
           [](M& s, const A& theta, const A& X) {
             require_size(theta, "theta", s.layout().size);
             const auto n = image_rows(s.config(), X);
             A out({n, static_cast<py::ssize_t>(s.config().n_out)});
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
      .def("loss_and_grad",
           [](M& s, const A& theta, const A& X, const A& Y,
              py::object grad) {
             require_size(theta, "theta", s.layout().size);
             const auto n = image_rows(s.config(), X);
             require_shape(Y, "Y", n, s.config().n_out);
             T* g = inplace_output<T>(grad, "grad", s.layout().size);
             const T* t = theta.data();
             const T* x = X.data();
             const T* y = Y.data();
             py::gil_scoped_release nogil;
             return s.loss_and_grad(t, x, y, n, g);
           },
           py::arg("theta").noconvert(), py::arg("X").noconvert(), py::arg("Y").noconvert(),
           py::arg("grad") = py::none());
}

// The layer-parallel conv model of scalar T as the Python class `name`.
template <class T>
void bind_conv_parallel(py::module_& m, const char* name) {
  using M = BasicConvLayerParallelModel<T>;
  using A = tarray<T>;
  py::class_<M>(m, name)
      .def(py::init([](const py::dict& config, const py::dict& opt, py::object comm) {
             return std::make_unique<M>(make_conv_config(config), make_comm(comm),
                                        make_options(opt));
           }),
           py::arg("config"), py::arg("options"), py::arg("comm"))
      .def_property_readonly("size", [](const M& s) { return s.layout().size; })
      .def_property_readonly("levels", &M::levels)
      .def("warm_state",
           [](M& s) -> py::object {
             if (s.batch() < 0) return py::none();
             A out(s.warm_state_size(s.batch()));
             s.get_warm_state(out.mutable_data());
             return py::make_tuple(s.batch(), out);
           })
      .def("set_warm_state",
           [](M& s, index_t n, const A& states) {
             if (n < 1) throw std::invalid_argument("batch must be positive");
             require_size(states, "states", s.warm_state_size(n));
             s.set_warm_state(n, states.data());
           },
           py::arg("batch"), py::arg("states").noconvert())
      .def("forward",
           [](M& s, const A& theta, const A& X, bool warm) {
             require_size(theta, "theta", s.layout().size);
             const auto n = image_rows(s.config(), X);
             A out({n, static_cast<py::ssize_t>(s.config().state_size())});
             SolveInfo info;
             {
               py::gil_scoped_release nogil;
               s.forward(theta.data(), X.data(), n, out.mutable_data(), warm, &info);
             }
             return py::make_tuple(out, info_dict(info));
           },
           py::arg("theta").noconvert(), py::arg("X").noconvert(), py::arg("warm"))
      .def("loss_and_grad",
           [](M& s, const A& theta, const A& X, const A& Y,
              py::object grad, bool warm) {
             require_size(theta, "theta", s.layout().size);
             const auto n = image_rows(s.config(), X);
             require_shape(Y, "Y", n, s.config().n_out);
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

void bind_conv(py::module_& m) {
  m.def("conv_layout",
        [](const py::dict& config, index_t first_layer, index_t n_stored) {
          const ConvConfig c = make_conv_config(config);
          if (first_layer < 0 || n_stored < 0 || first_layer + n_stored > c.n_layers)
            throw std::invalid_argument("layer block out of range");
          return conv_layout_dict(c, ConvLayout::of(c, first_layer, n_stored));
        },
        py::arg("config"), py::arg("first_layer"), py::arg("n_stored"));
  bind_conv_serial<double>(m, "ConvSerialModel");
  bind_conv_serial<float>(m, "ConvSerialModel32");
  bind_conv_parallel<double>(m, "ConvLayerParallelModel");
  bind_conv_parallel<float>(m, "ConvLayerParallelModel32");
}

}  // namespace layerparallel::bind

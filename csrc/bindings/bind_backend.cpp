// Bindings of the backends: which are built and visible, and each backend's
// kernels one at a time (the GPU tests compare them with the host's).
#include <pybind11/stl.h>

#include <memory>
#include <string>

#include "arrays.hpp"
#include "layerparallel/backend.hpp"
#include "layerparallel/device_layer.hpp"
#include "layerparallel/layer.hpp"

namespace layerparallel::bind {

namespace {

std::shared_ptr<Executor> executor_of(int device) {
  if (device < 0) return std::shared_ptr<Executor>(&cpu_executor(), [](Executor*) {});
  return cuda_executor(device);
}

// Arrays copied onto an executor and back.
struct Staged {
  Executor& ex;
  std::vector<Buffer> bufs;
  double* put(const carray& a) {
    bufs.emplace_back(ex, a.size());
    ex.from_host(a.size(), a.data(), bufs.back().data());
    return bufs.back().data();
  }
  double* zeros(index_t n) {
    bufs.emplace_back(ex, n);
    return bufs.back().data();
  }
  carray get(const double* p, index_t n) {
    carray out(n);
    ex.to_host(n, p, out.mutable_data());
    return out;
  }
};

// One engine vector op on `device`: returns (y after the op, accumulated sum).
py::tuple vector_op(int device, const std::string& op, const carray& x, const carray& y,
                    const carray& z, double a) {
  const index_t n = x.size();
  if (y.size() != n || z.size() != n) throw std::invalid_argument("x, y, z: sizes differ");
  auto ex = executor_of(device);
  Staged s{*ex, {}};
  double* dx = s.put(x);
  double* dy = s.put(y);
  double* dz = s.put(z);
  double sum = 0.0;
  if (op == "copy")
    ex->copy(n, dx, dy);
  else if (op == "fill")
    ex->fill(n, a, dy);
  else if (op == "axpy")
    ex->axpy(n, a, dx, dy);
  else if (op == "fas_update")
    ex->fas_update(n, dx, dz, dy);  // y += x - z
  else if (op == "residual") {
    ex->residual_accumulate(n, dx, dy);  // y -= x
    ex->residual_accumulate(n, dz, dy);  // y -= z, twice accumulated
    sum = ex->take_sum();
  } else
    throw std::invalid_argument("unknown vector op '" + op + "'");
  return py::make_tuple(s.get(dy, n), sum);
}

// One residual-layer op on `device` (host: layer.hpp, device: DeviceLayer).
py::dict layer_op(int device, const std::string& op, const std::string& activation, double eta,
                  const carray& W, const carray& b, double h, const carray& u, const carray& lam,
                  const carray& D) {
  NetConfig cfg;
  cfg.width = b.size();
  cfg.n_layers = 1;
  cfg.activation = activation == "relu"   ? Activation::relu
                   : activation == "tanh" ? Activation::tanh
                                          : Activation::smoothrelu;
  cfg.eta = eta;
  const index_t w = cfg.width, batch = u.size() / std::max<index_t>(w, 1), S = batch * w;
  if (W.size() != w * w || u.size() != S || lam.size() != S || D.size() != S)
    throw std::invalid_argument("layer_op: sizes do not match the width");
  auto ex = executor_of(device);
  Staged s{*ex, {}};
  const double *dW = s.put(W), *db = s.put(b), *du = s.put(u), *dl = s.put(lam), *dD = s.put(D);
  double* out = s.zeros(S);
  double* work = s.zeros(S);
  double* gW = s.zeros(w * w);
  double* gb = s.zeros(w);
  std::unique_ptr<DeviceLayer> dl_ops = device < 0 ? nullptr : make_device_layer<double>(*ex);
  if (op == "forward") {
    if (dl_ops) dl_ops->forward(cfg, dW, db, h, du, batch, out, work);
    else layer_forward(cfg, dW, db, h, du, batch, out, work);
  } else if (op == "adjoint") {
    if (dl_ops) dl_ops->adjoint(cfg, dW, db, h, du, dl, batch, out, work);
    else layer_adjoint(cfg, dW, db, h, du, dl, batch, out, work, false);
  } else if (op == "derivative") {
    if (dl_ops) dl_ops->derivative(cfg, dW, db, du, batch, out);
    else layer_derivative(cfg, dW, db, du, batch, out);
  } else if (op == "adjoint_linearized") {
    if (dl_ops) dl_ops->adjoint_linearized(cfg, dW, h, dD, dl, batch, out, work);
    else layer_adjoint_linearized(cfg, dW, h, dD, dl, batch, out, work);
  } else if (op == "gradient") {  // d = lam
    if (dl_ops) dl_ops->gradient(cfg, h, du, dl, batch, gW, gb);
    else layer_gradient(cfg, h, du, dl, batch, gW, gb);
  } else {
    throw std::invalid_argument("unknown layer op '" + op + "'");
  }
  py::dict r;
  r["out"] = s.get(out, S);
  r["work"] = s.get(work, S);
  r["gW"] = s.get(gW, w * w);
  r["gb"] = s.get(gb, w);
  return r;
}

}  // namespace

void bind_backend(py::module_& m) {
  m.attr("cuda_built") = cuda_built();
  m.def("cuda_device_count", &cuda_device_count,
        "CUDA devices visible to this process (0 without CUDA, driver or device).");
  m.def("device_name", [](int device) { return executor_of(device)->name(); },
        py::arg("device"));
  m.def("_vector_op", &vector_op, py::arg("device"), py::arg("op"), py::arg("x").noconvert(),
        py::arg("y").noconvert(), py::arg("z").noconvert(), py::arg("a"));
  m.def("_layer_op", &layer_op, py::arg("device"), py::arg("op"), py::arg("activation"),
        py::arg("eta"), py::arg("W").noconvert(), py::arg("b").noconvert(), py::arg("h"),
        py::arg("u").noconvert(), py::arg("lam").noconvert(), py::arg("D").noconvert());
}

}  // namespace layerparallel::bind

// Array checks at the binding boundary. The Python layer validates first and
// gives the friendly message; these checks guarantee C++ never reads past a
// buffer whatever the caller does.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <stdexcept>
#include <string>

namespace layerparallel::bind {

namespace py = pybind11;
using carray = py::array_t<double, py::array::c_style>;

inline void require_shape(const carray& a, const char* name, py::ssize_t rows, py::ssize_t cols) {
  if (a.ndim() != 2 || a.shape(0) != rows || a.shape(1) != cols)
    throw std::invalid_argument(std::string(name) + ": expected shape (" + std::to_string(rows) +
                                ", " + std::to_string(cols) + ")");
}

inline void require_size(const carray& a, const char* name, py::ssize_t size) {
  if (a.ndim() != 1 || a.shape(0) != size)
    throw std::invalid_argument(std::string(name) + ": expected a 1-d array of length " +
                                std::to_string(size));
}

inline py::ssize_t rows_of(const carray& a, const char* name) {
  if (a.ndim() != 2) throw std::invalid_argument(std::string(name) + ": expected a 2-d array");
  if (a.shape(0) < 1) throw std::invalid_argument(std::string(name) + ": no rows");
  return a.shape(0);
}

// The data of an output array written in place (null for None). A converted
// copy would silently drop the result, so only a writeable C-contiguous
// float64 array of the right length is taken.
inline double* inplace_output(const py::object& obj, const char* name, py::ssize_t size) {
  if (obj.is_none()) return nullptr;
  if (!py::isinstance<carray>(obj))
    throw std::invalid_argument(std::string(name) + ": expected a C-contiguous float64 array");
  auto a = obj.cast<carray>();
  if (!a.writeable()) throw std::invalid_argument(std::string(name) + ": array is read-only");
  require_size(a, name, size);
  return a.mutable_data();
}

}  // namespace layerparallel::bind

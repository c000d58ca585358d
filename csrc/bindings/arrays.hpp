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
template <class T>
using tarray = py::array_t<T, py::array::c_style>;
using carray = tarray<double>;

// numpy's name of a scalar type, for messages.
template <class T>
constexpr const char* dtype_name() {
  return sizeof(T) == sizeof(float) ? "float32" : "float64";
}

template <class A>
inline void require_shape(const A& a, const char* name, py::ssize_t rows, py::ssize_t cols) {
  if (a.ndim() != 2 || a.shape(0) != rows || a.shape(1) != cols)
    throw std::invalid_argument(std::string(name) + ": expected shape (" + std::to_string(rows) +
                                ", " + std::to_string(cols) + ")");
}

template <class A>
inline void require_size(const A& a, const char* name, py::ssize_t size) {
  if (a.ndim() != 1 || a.shape(0) != size)
    throw std::invalid_argument(std::string(name) + ": expected a 1-d array of length " +
                                std::to_string(size));
}

template <class A>
inline py::ssize_t rows_of(const A& a, const char* name) {
  if (a.ndim() != 2) throw std::invalid_argument(std::string(name) + ": expected a 2-d array");
  if (a.shape(0) < 1) throw std::invalid_argument(std::string(name) + ": no rows");
  return a.shape(0);
}

// The data of an output array written in place (null for None). A converted
// copy would silently drop the result, so only a writeable C-contiguous
// float64 (float32 for T = float) array of the right length is taken.
template <class T = double>
inline T* inplace_output(const py::object& obj, const char* name, py::ssize_t size) {
  if (obj.is_none()) return nullptr;
  if (!py::isinstance<tarray<T>>(obj))
    throw std::invalid_argument(std::string(name) + ": expected a C-contiguous " +
                                dtype_name<T>() + " array");
  auto a = obj.cast<tarray<T>>();
  if (!a.writeable()) throw std::invalid_argument(std::string(name) + ": array is read-only");
  require_size(a, name, size);
  return a.mutable_data();
}

}  // namespace layerparallel::bind

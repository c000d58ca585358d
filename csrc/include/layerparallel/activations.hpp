// Activation functions sigma and their derivatives.
//
// Each activation is a small functor with value() and derivative(); hot loops
// are templated on the functor so the choice is made once per sweep, not once
// per element. The same functors serve the CPU and CUDA launchers.
#pragma once

#include <cmath>
#include <stdexcept>
#include <string>

#include "config.hpp"

namespace layerparallel {

enum class Activation : int { relu = 0, tanh = 1, smoothrelu = 2 };

// Branch-free forms: the CPU loops vectorize, GPU warps do not diverge.
// Each method is a template on the scalar (float or double): the arithmetic
// runs in the state's own precision.
struct Relu {
  template <class T>
  LP_HD T value(T x) const { return x > T(0) ? x : T(0); }
  template <class T>
  LP_HD T derivative(T x) const { return x > T(0) ? T(1) : T(0); }
};

struct Tanh {
  template <class T>
  LP_HD T value(T x) const { return std::tanh(x); }
  template <class T>
  LP_HD T derivative(T x) const {
    const T t = std::tanh(x);
    return T(1) - t * t;
  }
};

// ReLU with the kink replaced by the quadratic (x + eta)^2 / (4 eta) on
// |x| < eta: continuous with a continuous derivative (C^1). With c = x clamped
// to [-eta, eta]: sigma = (c + eta)^2 / (4 eta) + max(x - eta, 0) and
// sigma' = (c + eta) / (2 eta), which covers all three pieces without a branch.
struct SmoothRelu {
  double eta;
  template <class T>
  LP_HD T clamp(T x) const {
    const T e = static_cast<T>(eta);
    return x < -e ? -e : (x > e ? e : x);
  }
  template <class T>
  LP_HD T value(T x) const {
    const T e = static_cast<T>(eta);
    const T c = clamp(x) + e;
    const T r = x - e;
    return c * c * (T(0.25) / e) + (r > T(0) ? r : T(0));
  }
  template <class T>
  LP_HD T derivative(T x) const {
    const T e = static_cast<T>(eta);
    return (clamp(x) + e) * (T(0.5) / e);
  }
};

// Calls f(functor) with the functor for `a`: the single point where the
// runtime choice becomes a compile-time type.
template <class F>
decltype(auto) with_activation(Activation a, double eta, F&& f) {
  switch (a) {
    case Activation::relu: return f(Relu{});
    case Activation::tanh: return f(Tanh{});
    case Activation::smoothrelu: return f(SmoothRelu{eta});
  }
  throw std::invalid_argument("unknown activation");
}

}  // namespace layerparallel

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
struct Relu {
  LP_HD double value(double x) const { return x > 0.0 ? x : 0.0; }
  LP_HD double derivative(double x) const { return x > 0.0 ? 1.0 : 0.0; }
};

struct Tanh {
  LP_HD double value(double x) const { return std::tanh(x); }
  LP_HD double derivative(double x) const {
    const double t = std::tanh(x);
    return 1.0 - t * t;
  }
};

// ReLU with the kink replaced by the quadratic (x + eta)^2 / (4 eta) on
// |x| < eta: continuous with a continuous derivative (C^1). With c = x clamped
// to [-eta, eta]: sigma = (c + eta)^2 / (4 eta) + max(x - eta, 0) and
// sigma' = (c + eta) / (2 eta), which covers all three pieces without a branch.
struct SmoothRelu {
  double eta;
  LP_HD double clamp(double x) const { return x < -eta ? -eta : (x > eta ? eta : x); }
  LP_HD double value(double x) const {
    const double c = clamp(x) + eta;
    const double r = x - eta;
    return c * c * (0.25 / eta) + (r > 0.0 ? r : 0.0);
  }
  LP_HD double derivative(double x) const { return (clamp(x) + eta) * (0.5 / eta); }
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

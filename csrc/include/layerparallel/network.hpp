// The ODE-ResNet's configuration and the layout of its flat parameter vector.
#pragma once

#include <stdexcept>

#include "activations.hpp"
#include "config.hpp"

namespace layerparallel {

enum class Opening : int { activation = 0, linear = 1, padding = 2 };
enum class Head : int { classification = 0, regression = 1 };

struct NetConfig {
  index_t n_in = 0, width = 0, n_layers = 0, n_out = 0;
  double T = 1.0;
  Activation activation = Activation::relu;
  double eta = 0.1;  // smoothrelu blend half-width
  Opening opening = Opening::activation;
  Head head = Head::classification;
  double gamma_tik = 0.0, gamma_ddt = 0.0, gamma_out = 0.0;

  double h() const { return T / static_cast<double>(n_layers); }
  bool has_opening_params() const { return opening != Opening::padding; }
};

// Offsets of each block in theta: W_in (w, n_in), b_in (w), W (L, w, w),
// b (L, w), W_out (n_out, w), b_out (n_out). L is the number of residual
// layers stored here, starting at global layer `first_layer`.
struct ParamLayout {
  index_t W_in = 0, b_in = 0, W = 0, b = 0, W_out = 0, b_out = 0, size = 0;
  index_t first_layer = 0, n_stored = 0;

  static ParamLayout of(const NetConfig& c, index_t first_layer, index_t n_stored) {
    ParamLayout p;
    const index_t w = c.width;
    const index_t n_open = c.has_opening_params() ? w * c.n_in : 0;
    const index_t n_open_b = c.has_opening_params() ? w : 0;
    p.first_layer = first_layer;
    p.n_stored = n_stored;
    p.W_in = 0;
    p.b_in = p.W_in + n_open;
    p.W = p.b_in + n_open_b;
    p.b = p.W + n_stored * w * w;
    p.W_out = p.b + n_stored * w;
    p.b_out = p.W_out + c.n_out * w;
    p.size = p.b_out + c.n_out;
    return p;
  }
  static ParamLayout of(const NetConfig& c) { return of(c, 0, c.n_layers); }
};

// T itself, in a form template deduction skips: optional pointer arguments
// (often nullptr) then take their scalar from the other arguments.
template <class T>
struct type_identity {
  using type = T;
};
template <class T>
using nondeduced = typename type_identity<T>::type;

// Typed pointers into one theta (or gradient) buffer.
template <class T>
struct ParamView {
  T* data;
  ParamLayout layout;
  index_t width;

  T* W_in() const { return data + layout.W_in; }
  T* b_in() const { return data + layout.b_in; }
  T* W(index_t n) const { return data + layout.W + (n - layout.first_layer) * width * width; }
  T* b(index_t n) const { return data + layout.b + (n - layout.first_layer) * width; }
  T* W_out() const { return data + layout.W_out; }
  T* b_out() const { return data + layout.b_out; }
};

}  // namespace layerparallel

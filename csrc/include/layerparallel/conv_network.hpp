// The convolutional ODE-ResNet's configuration and the layout of its flat
// parameter vector.
//
//   u_0     = sigma(K_in * y + b_in)      opening (or linear, or channel padding)
//   u_{n+1} = u_n + h sigma(K_n * u_n + b_n)
//   J       = loss(W_out f(u_N) + b_out)  f: global average pooling or flatten
//
// `*` is a stride-1 cross-correlation with a k x k kernel (k odd) and zero
// "same" padding. Inside the core every state is stored channels-last
// (batch, H, W, C), so a convolution is one product of the patch matrix
// (pixels x k k C) with the packed kernel (k k C x C) and its result is
// already in state layout; the parameters keep the usual (C_out, C_in, k, k)
// order and the head flattens in (C, H, W) order.
#pragma once

#include "network.hpp"

namespace layerparallel {

enum class ConvPooling : int { average = 0, flatten = 1 };

struct ConvConfig {
  index_t in_channels = 1, height = 1, width = 1, channels = 1, n_layers = 1, n_out = 1;
  index_t kernel = 3;
  double T = 1.0;
  Activation activation = Activation::relu;
  double eta = 0.1;
  Opening opening = Opening::activation;
  ConvPooling pooling = ConvPooling::average;
  double gamma_tik = 0.0, gamma_ddt = 0.0, gamma_out = 0.0;

  double h() const { return T / static_cast<double>(n_layers); }
  index_t pixels() const { return height * width; }
  // Entries of one sample's state, and of the input image.
  index_t state_size() const { return pixels() * channels; }
  index_t input_size() const { return pixels() * in_channels; }
  // Columns of the patch matrix of a C-channel state, and of the input.
  index_t patch() const { return kernel * kernel * channels; }
  index_t input_patch() const { return kernel * kernel * in_channels; }
  // Flops of one residual layer's product for one image (what decides whether a
  // block of images pays for a thread: parallel.hpp's flops per row).
  double image_product_flops() const {
    return 2.0 * static_cast<double>(pixels()) * static_cast<double>(patch()) *
               static_cast<double>(channels) + 8.0 * static_cast<double>(state_size());
  }
  index_t features() const { return pooling == ConvPooling::average ? channels : state_size(); }
  bool has_opening_params() const { return opening != Opening::padding; }
  // The dense head as the shared head code sees it: width = features.
  NetConfig head_config() const {
    NetConfig c;
    c.n_in = features();
    c.width = features();
    c.n_layers = 1;
    c.n_out = n_out;
    c.head = Head::classification;
    return c;
  }
};

// Offsets of each block in theta: K_in (C, C_in, k, k), b_in (C),
// K (L, C, C, k, k), b (L, C), W_out (n_out, F), b_out (n_out); L residual
// layers stored here, from global layer `first_layer`.
struct ConvLayout {
  index_t W_in = 0, b_in = 0, W = 0, b = 0, W_out = 0, b_out = 0, size = 0;
  index_t first_layer = 0, n_stored = 0;
  index_t per_kernel = 0, per_bias = 0;  // one residual layer's K and b

  static ConvLayout of(const ConvConfig& c, index_t first_layer, index_t n_stored) {
    ConvLayout p;
    const index_t C = c.channels, kk = c.kernel * c.kernel;
    const bool open = c.has_opening_params();
    p.first_layer = first_layer;
    p.n_stored = n_stored;
    p.per_kernel = C * C * kk;
    p.per_bias = C;
    p.W_in = 0;
    p.b_in = p.W_in + (open ? C * c.in_channels * kk : 0);
    p.W = p.b_in + (open ? C : 0);
    p.b = p.W + n_stored * p.per_kernel;
    p.W_out = p.b + n_stored * C;
    p.b_out = p.W_out + c.n_out * c.features();
    p.size = p.b_out + c.n_out;
    return p;
  }
  static ConvLayout of(const ConvConfig& c) { return of(c, 0, c.n_layers); }

  // The head's blocks in the dense layout the shared head code reads.
  ParamLayout head_layout() const {
    ParamLayout h;
    h.W_out = W_out;
    h.b_out = b_out;
    h.size = size;
    return h;
  }
};

template <class T>
struct ConvView {
  T* data;
  ConvLayout layout;

  T* W_in() const { return data + layout.W_in; }
  T* b_in() const { return data + layout.b_in; }
  T* W(index_t n) const { return data + layout.W + (n - layout.first_layer) * layout.per_kernel; }
  T* b(index_t n) const { return data + layout.b + (n - layout.first_layer) * layout.per_bias; }
  T* W_out() const { return data + layout.W_out; }
  T* b_out() const { return data + layout.b_out; }
  // The head as a dense-network view (only W_out and b_out are meaningful).
  ParamView<T> head(index_t features) const { return {data, layout.head_layout(), features}; }
};

}  // namespace layerparallel

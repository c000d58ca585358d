// J_reg = gamma_tik/2 h sum_n ||theta_n||^2
//       + gamma_ddt/2 h sum_n ||(theta_{n+1} - theta_n)/h||^2
//       + gamma_out/2 (||W_in||^2 + ||b_in||^2 + ||W_out||^2 + ||b_out||^2)
// where theta_n = (W_n, b_n) are the residual layers' parameters. The sums are
// formed in double for float parameters too (they run over every weight).
#include "layerparallel/model.hpp"

namespace layerparallel {

namespace {
// gamma/2 ||x||^2 over a block, adding gamma x to g.
template <class T>
double tikhonov_block(double gamma, const T* x, index_t len, T* g) {
  double s = 0.0;
  for (index_t i = 0; i < len; ++i) {
    const double xi = x[i];
    s += xi * xi;
    if (g) g[i] += static_cast<T>(gamma * xi);
  }
  return 0.5 * gamma * s;
}
}  // namespace

template <class T>
double regularization(const NetConfig& cfg, const ParamView<const T>& theta,
                      const nondeduced<ParamView<T>>* grad) {
  const index_t w = cfg.width, L = theta.layout.n_stored;
  const double h = cfg.h();
  double J = 0.0;
  // W and b of the stored layers are contiguous blocks: [W_0..W_{L-1}], [b_0..b_{L-1}].
  const struct { index_t off, per_layer; } blocks[2] = {{theta.layout.W, w * w},
                                                        {theta.layout.b, w}};
  for (const auto& blk : blocks) {
    const T* x = theta.data + blk.off;
    T* g = grad ? grad->data + blk.off : nullptr;
    if (cfg.gamma_tik != 0.0) J += tikhonov_block(cfg.gamma_tik * h, x, L * blk.per_layer, g);
    if (cfg.gamma_ddt != 0.0) {
      const double c = cfg.gamma_ddt / h;  // gamma/2 h ||d/h||^2 = gamma/(2h) ||d||^2
      for (index_t n = 0; n + 1 < L; ++n) {
        const T* a = x + n * blk.per_layer;
        const T* b = a + blk.per_layer;
        double s = 0.0;
        for (index_t i = 0; i < blk.per_layer; ++i) {
          const double d = static_cast<double>(b[i]) - static_cast<double>(a[i]);
          s += d * d;
          if (g) {
            g[n * blk.per_layer + i] -= static_cast<T>(c * d);
            g[(n + 1) * blk.per_layer + i] += static_cast<T>(c * d);
          }
        }
        J += 0.5 * c * s;
      }
    }
  }
  if (cfg.gamma_out != 0.0) {
    const index_t w_in = cfg.has_opening_params() ? w * cfg.n_in : 0;
    const index_t b_in = cfg.has_opening_params() ? w : 0;
    const T* x = theta.data;
    T* g = grad ? grad->data : nullptr;
    J += tikhonov_block(cfg.gamma_out, x + theta.layout.W_in, w_in,
                        g ? g + theta.layout.W_in : nullptr);
    J += tikhonov_block(cfg.gamma_out, x + theta.layout.b_in, b_in,
                        g ? g + theta.layout.b_in : nullptr);
    J += tikhonov_block(cfg.gamma_out, x + theta.layout.W_out, cfg.n_out * w,
                        g ? g + theta.layout.W_out : nullptr);
    J += tikhonov_block(cfg.gamma_out, x + theta.layout.b_out, cfg.n_out,
                        g ? g + theta.layout.b_out : nullptr);
  }
  return J;
}

template double regularization<float>(const NetConfig&, const ParamView<const float>&,
                                      const ParamView<float>*);
template double regularization<double>(const NetConfig&, const ParamView<const double>&,
                                       const ParamView<double>*);

}  // namespace layerparallel

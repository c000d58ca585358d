// Heads: softmax cross-entropy of W_out u_N + b_out (classification) and half
// the mean squared error of the same affine output (regression).
#include <algorithm>
#include <cmath>

#include "layerparallel/blas.hpp"
#include "layerparallel/model.hpp"

namespace layerparallel {

void head_output(const NetConfig& cfg, const ParamView<const double>& theta, const double* uN,
                 index_t n, double* out) {
  const index_t w = cfg.width, K = cfg.n_out;
  blas::gemm(false, true, n, K, w, 1.0, uN, w, theta.W_out(), w, 0.0, out, K);
  const double* b = theta.b_out();
  for (index_t r = 0; r < n; ++r)
    for (index_t j = 0; j < K; ++j) out[r * K + j] += b[j];
}

double head_loss(const NetConfig& cfg, const ParamView<const double>& theta, const double* uN,
                 const double* Y, index_t n, double* work, double* lamN,
                 const ParamView<double>* grad) {
  const index_t w = cfg.width, K = cfg.n_out;
  head_output(cfg, theta, uN, n, work);
  const double inv_n = 1.0 / static_cast<double>(n);
  double loss = 0.0;
  for (index_t r = 0; r < n; ++r) {
    double* o = work + r * K;  // becomes dloss/d(output) for this row
    const double* y = Y + r * K;
    if (cfg.head == Head::classification) {
      // -sum_j y_j log softmax_j, stable via log-sum-exp.
      const double m = *std::max_element(o, o + K);
      double s = 0.0, ysum = 0.0, yo = 0.0;
      for (index_t j = 0; j < K; ++j) {
        s += std::exp(o[j] - m);
        ysum += y[j];
        yo += y[j] * o[j];
      }
      const double lse = m + std::log(s);
      loss += ysum * lse - yo;
      for (index_t j = 0; j < K; ++j) o[j] = (std::exp(o[j] - lse) * ysum - y[j]) * inv_n;
    } else {
      for (index_t j = 0; j < K; ++j) {
        const double e = o[j] - y[j];
        loss += 0.5 * e * e;
        o[j] = e * inv_n;
      }
    }
  }
  if (lamN) {
    blas::gemm(false, false, n, w, K, 1.0, work, K, theta.W_out(), w, 0.0, lamN, w);
    if (grad) {
      blas::gemm(true, false, K, w, n, 1.0, work, K, uN, w, 0.0, grad->W_out(), w);
      double* gb = grad->b_out();
      std::fill(gb, gb + K, 0.0);
      for (index_t r = 0; r < n; ++r)
        for (index_t j = 0; j < K; ++j) gb[j] += work[r * K + j];
    }
  }
  return loss * inv_n;
}

}  // namespace layerparallel

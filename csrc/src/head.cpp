// Heads: softmax cross-entropy of W_out u_N + b_out (classification) and half
// the mean squared error of the same affine output (regression). The loss is
// summed in double for float networks too (a mean over thousands of samples);
// each row's softmax runs in double and its derivative is rounded to T once.
#include <algorithm>
#include <cmath>

#include "layerparallel/blas.hpp"
#include "layerparallel/model.hpp"

namespace layerparallel {

template <class T>
void head_output(const NetConfig& cfg, const ParamView<const T>& theta, const T* uN, index_t n,
                 T* out) {
  const index_t w = cfg.width, K = cfg.n_out;
  blas::gemm(false, true, n, K, w, 1.0, uN, w, theta.W_out(), w, 0.0, out, K);
  const T* b = theta.b_out();
  for (index_t r = 0; r < n; ++r)
    for (index_t j = 0; j < K; ++j) out[r * K + j] += b[j];
}

template <class T>
double head_loss(const NetConfig& cfg, const ParamView<const T>& theta, const T* uN, const T* Y,
                 index_t n, T* work, nondeduced<T>* lamN, const nondeduced<ParamView<T>>* grad) {
  const index_t w = cfg.width, K = cfg.n_out;
  head_output(cfg, theta, uN, n, work);
  const double inv_n = 1.0 / static_cast<double>(n);
  double loss = 0.0;
  for (index_t r = 0; r < n; ++r) {
    T* o = work + r * K;  // becomes dloss/d(output) for this row
    const T* y = Y + r * K;
    if (cfg.head == Head::classification) {
      // -sum_j y_j log softmax_j, stable via log-sum-exp.
      const double m = *std::max_element(o, o + K);
      double s = 0.0, ysum = 0.0, yo = 0.0;
      for (index_t j = 0; j < K; ++j) {
        const double oj = o[j], yj = y[j];
        s += std::exp(oj - m);
        ysum += yj;
        yo += yj * oj;
      }
      const double lse = m + std::log(s);
      loss += ysum * lse - yo;
      for (index_t j = 0; j < K; ++j)
        o[j] = static_cast<T>((std::exp(static_cast<double>(o[j]) - lse) * ysum - y[j]) * inv_n);
    } else {
      for (index_t j = 0; j < K; ++j) {
        const double e = static_cast<double>(o[j]) - static_cast<double>(y[j]);
        loss += 0.5 * e * e;
        o[j] = static_cast<T>(e * inv_n);
      }
    }
  }
  if (lamN) {
    blas::gemm(false, false, n, w, K, 1.0, work, K, theta.W_out(), w, 0.0, lamN, w);
    if (grad) {
      blas::gemm(true, false, K, w, n, 1.0, work, K, uN, w, 0.0, grad->W_out(), w);
      T* gb = grad->b_out();
      std::fill(gb, gb + K, T(0));
      for (index_t r = 0; r < n; ++r)
        for (index_t j = 0; j < K; ++j) gb[j] += work[r * K + j];
    }
  }
  return loss * inv_n;
}

template void head_output<float>(const NetConfig&, const ParamView<const float>&, const float*,
                                 index_t, float*);
template void head_output<double>(const NetConfig&, const ParamView<const double>&,
                                  const double*, index_t, double*);
template double head_loss<float>(const NetConfig&, const ParamView<const float>&, const float*,
                                 const float*, index_t, float*, float*,
                                 const ParamView<float>*);
template double head_loss<double>(const NetConfig&, const ParamView<const double>&,
                                  const double*, const double*, index_t, double*, double*,
                                  const ParamView<double>*);

}  // namespace layerparallel

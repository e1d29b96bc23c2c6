// Optimizer kernels on the CPU: a deterministic sum of squares (fixed-size chunks summed in index
// order, independent of the thread count) for the global gradient norm, and the AdamW update with
// decoupled weight decay, writing the fp32/fp64 master weights and the working copy.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include "../contract.hpp"

namespace lightgpt::cpu {

struct OptimOps {
  static constexpr std::size_t kNormChunk = 1 << 14;

  template <class A>
  static double sum_of_squares(const A* values, std::size_t count) {
    const std::ptrdiff_t chunks =
        static_cast<std::ptrdiff_t>((count + kNormChunk - 1) / kNormChunk);
    std::vector<double> partial(static_cast<std::size_t>(chunks), 0.0);
#pragma omp parallel for schedule(static)
    for (std::ptrdiff_t chunk = 0; chunk < chunks; ++chunk) {
      const std::size_t begin = static_cast<std::size_t>(chunk) * kNormChunk;
      const std::size_t end = std::min(count, begin + kNormChunk);
      double sum = 0;
      for (std::size_t i = begin; i < end; ++i) sum += double(values[i]) * double(values[i]);
      partial[static_cast<std::size_t>(chunk)] = sum;
    }
    double total = 0;
    for (double p : partial) total += p;
    return total;
  }

  // master/m/v/grads are accum-typed; params is the working (storage-typed) copy, which may be the
  // same memory as master when the two types agree.
  template <class T, class A>
  static void adamw_update(T* params, A* master, A* m, A* v, const A* grads, std::size_t count,
                           const AdamWStep<A>& step) {
#pragma omp parallel for schedule(static)
    for (std::ptrdiff_t i = 0; i < static_cast<std::ptrdiff_t>(count); ++i) {
      A g = grads[i] * step.grad_scale;
      m[i] = step.beta1 * m[i] + (A(1) - step.beta1) * g;
      v[i] = step.beta2 * v[i] + (A(1) - step.beta2) * g * g;
      A m_hat = m[i] / step.bias_correction1;
      A v_hat = v[i] / step.bias_correction2;
      A w = master[i];
      w -= step.lr * (m_hat / (std::sqrt(v_hat) + step.eps) + step.weight_decay * w);
      master[i] = w;
      params[i] = T(w);
    }
  }
};

}  // namespace lightgpt::cpu

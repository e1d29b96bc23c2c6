// Softmax cross-entropy over a tied output layer, fused the llm.c way: the forward keeps only the
// per-row log-sum-exp next to the logits, and the backward turns the logits into their gradient
// in place, so probabilities are never stored. Columns V..Vp-1 (vocabulary padding) are excluded
// from the softmax and receive zero gradient.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>

#include "../../core/elementwise.hpp"
#include "eigen.hpp"

namespace lightgpt::cpu {

struct LossOps {
  template <class T, class A>
  static void row_logsumexp(A* lse, const T* logits, int N, int V, int Vp) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; ++n) {
      const T* row = logits + static_cast<std::size_t>(n) * Vp;
      A row_max = A(row[0]);
      for (int v = 1; v < V; ++v) row_max = std::max(row_max, A(row[v]));
      A sum = 0;
      for (int v = 0; v < V; ++v) sum += std::exp(A(row[v]) - row_max);
      lse[n] = row_max + std::log(sum);
    }
  }

  // losses[b·T + t] = lse - logit of the target token targets[b·row_stride + t].
  template <class T, class A, class Tok>
  static void cross_entropy(A* losses, const A* lse, const T* logits, const Tok* targets,
                            int row_stride, int B, int T_, int Vp) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < B * T_; ++n) {
      const std::size_t target = static_cast<std::size_t>(targets[(n / T_) * row_stride + n % T_]);
      losses[n] = lse[n] - A(logits[static_cast<std::size_t>(n) * Vp + target]);
    }
  }

  // In place: logits -> d(objective)/d(logits) for an objective Σ_j weight_j · Σ_n CE_j(n) · scale,
  // where depth j's targets start at targets + j. With W = Σ_j weight_j the gradient of one row is
  // scale · (W · softmax - Σ_j weight_j · onehot(target_j)).
  template <class T, class A, class Tok>
  static void cross_entropy_backward_inplace(T* logits, const A* lse, const Tok* targets,
                                             int row_stride, const A* depth_weights, int depths,
                                             A scale, int B, int T_, int V, int Vp) {
    A total_weight = 0;
    for (int j = 0; j < depths; ++j) total_weight += depth_weights[j];
#pragma omp parallel for schedule(static)
    for (int n = 0; n < B * T_; ++n) {
      T* row = logits + static_cast<std::size_t>(n) * Vp;
      const A row_lse = lse[n];
      for (int v = 0; v < V; ++v) row[v] = T(scale * total_weight * std::exp(A(row[v]) - row_lse));
      for (int v = V; v < Vp; ++v) row[v] = T(0);
      const int b = n / T_, t = n % T_;
      for (int j = 0; j < depths; ++j) {
        const std::size_t target = static_cast<std::size_t>(targets[b * row_stride + t + j]);
        row[target] = T(A(row[target]) - scale * depth_weights[j]);
      }
    }
  }

  // out[n, v] = logit - lse for the V real tokens (out is N x V, densely packed).
  template <class T, class A>
  static void log_softmax(A* out, const T* logits, const A* lse, int N, int V, int Vp) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; ++n) {
      const T* row = logits + static_cast<std::size_t>(n) * Vp;
      A* target = out + static_cast<std::size_t>(n) * V;
      for (int v = 0; v < V; ++v) target[v] = A(row[v]) - lse[n];
    }
  }

  // Mean of count values, summed in index order (deterministic).
  template <class A>
  static A mean(const A* values, std::size_t count) {
    A sum = 0;
    for (std::size_t i = 0; i < count; ++i) sum += values[i];
    return sum / A(count);
  }
};

}  // namespace lightgpt::cpu

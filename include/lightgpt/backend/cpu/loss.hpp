// Softmax cross-entropy over a tied output layer, fused the llm.c way: the forward keeps only the
// per-row log-sum-exp next to the logits, and the backward turns the logits into their gradient
// in place, so probabilities are never stored. Columns V..Vp-1 (vocabulary padding) are excluded
// from the softmax and receive zero gradient. CoCoNT (loss/cocont.hpp) enters the backward as a
// soft target for the first depth and the forward as a separate KL per position; both touch only
// the ≤ K listed entries of a row, never the whole vocabulary.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <type_traits>
#include <vector>

#include "../../core/elementwise.hpp"
#include "../contract.hpp"
#include "eigen.hpp"

namespace lightgpt::cpu {
namespace detail {

// One row of the fused backward after the softmax term: subtracts scale · weight_j at each
// depth's target (targets[j]), depth 0's soft target replacing its one-hot when the context
// has a list. Shared with the LightRNN row backward.
template <class T, class A, class Tok, class ClassOf>
void subtract_targets(T* row, const Tok* targets, const A* depth_weights, int depths, A scale,
                      const Tok* context, NgramTargets<A> ngram, ClassOf class_of) {
  int begin = 0, end = 0;
  if (ngram && context) {
    begin = ngram.offsets[*context];
    end = ngram.offsets[*context + 1];
  }
  const A smoothing = begin < end ? ngram.alpha : A(0);
  for (int j = 0; j < depths; ++j) {
    const std::size_t target = static_cast<std::size_t>(class_of(targets[j]));
    const A weight =
        j == 0 ? scale * depth_weights[0] * (A(1) - smoothing) : scale * depth_weights[j];
    row[target] = T(A(row[target]) - weight);
  }
  if (smoothing != A(0)) {
    const A weight = scale * depth_weights[0] * smoothing;
    for (int k = begin; k < end; ++k) {
      T& entry = row[ngram.classes[k]];
      entry = T(A(entry) - weight * ngram.probs[k]);
    }
  }
}
template <class T, class A, class Tok>
void subtract_targets(T* row, const Tok* targets, const A* depth_weights, int depths, A scale,
                      const Tok* context, NgramTargets<A> ngram) {
  subtract_targets(row, targets, depth_weights, depths, scale, context, ngram,
                   [](Tok id) { return static_cast<std::size_t>(id); });
}

}  // namespace detail

struct LossOps {
  // Rows are single Eigen array expressions (vectorised max and exp); a 50304-wide fp32 row is
  // 200 KB, so the pass after the first reads it from the core's L2.
  template <class T, class A>
  static void row_logsumexp(A* lse, const T* logits, int N, int V, int Vp) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; ++n) {
      const auto row = accum_row<A>(logits + static_cast<std::size_t>(n) * Vp, V);
      const A row_max = row.maxCoeff();
      lse[n] = row_max + std::log((row - row_max).exp().sum());
    }
  }

  // losses[b·T + t] = lse - logit of the target token targets[b·row_stride + t].
  template <class T, class A, class Tok>
  static void cross_entropy(A* losses, const A* lse, const T* logits, const Tok* targets,
                            int row_stride, int B, int seq_len, int Vp) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < B * seq_len; ++n) {
      const std::size_t target =
          static_cast<std::size_t>(targets[(n / seq_len) * row_stride + n % seq_len]);
      losses[n] = lse[n] - A(logits[static_cast<std::size_t>(n) * Vp + target]);
    }
  }

  // In place: logits -> d(objective)/d(logits) for an objective Σ_j weight_j · Σ_n CE_j(n) · scale,
  // where depth j's targets start at targets + j. With W = Σ_j weight_j the gradient of one row is
  // scale · (W · softmax - Σ_j weight_j · onehot(target_j)). With CoCoNT (`ngram` non-empty),
  // depth 0 of a position whose context token contexts[b·row_stride + t] has a list scores the
  // soft target (1 - α)·onehot + α·P_ngram instead of the one-hot (the gradient of
  // (1 - α)·CE + α·KL(P_ngram ‖ softmax)).
  template <class T, class A, class Tok>
  static void cross_entropy_backward_inplace(T* logits, const A* lse, const Tok* targets,
                                             int row_stride, const A* depth_weights, int depths,
                                             A scale, int B, int seq_len, int V, int Vp,
                                             const Tok* contexts = nullptr,
                                             NgramTargets<A> ngram = {}) {
    A total_weight = 0;
    for (int j = 0; j < depths; ++j) total_weight += depth_weights[j];
#pragma omp parallel for schedule(static)
    for (int n = 0; n < B * seq_len; ++n) {
      T* row = logits + static_cast<std::size_t>(n) * Vp;
      const A row_lse = lse[n];
      if constexpr (std::is_same_v<T, A>) {
        auto values = Eigen::Map<Eigen::Array<A, Eigen::Dynamic, 1>>(row, V);
        values = (values - row_lse).exp() * (scale * total_weight);
      } else {
        const auto probs = (accum_row<A>(row, V) - row_lse).exp() * (scale * total_weight);
        for (int v = 0; v < V; ++v) row[v] = T(probs[v]);
      }
      for (int v = V; v < Vp; ++v) row[v] = T(0);
      const int b = n / seq_len, t = n % seq_len;
      detail::subtract_targets(row, targets + b * row_stride + t, depth_weights, depths, scale,
                               contexts ? contexts + b * row_stride + t : nullptr, ngram);
    }
  }

  // Per position n = b·T + t with context a = contexts[b·row_stride + t]:
  // kl[n] = KL(P_ngram(· | a) ‖ softmax(logits_n)) = Σ p·log p - Σ_k p_k·(logit[class_k] - lse[n])
  // and kl[N + n] = 1 when a has a list; both 0 when it has none. `stride` is the row length of
  // logits (Vp for token logits, R for LightRNN row logits).
  template <class T, class A, class Tok>
  static void ngram_kl(A* kl, const A* lse, const T* logits, int stride, const Tok* contexts,
                       int row_stride, NgramTargets<A> ngram, int B, int seq_len) {
    const int N = B * seq_len;
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; ++n) {
      const int a = static_cast<int>(contexts[(n / seq_len) * row_stride + n % seq_len]);
      const int begin = ngram.offsets[a], end = ngram.offsets[a + 1];
      const T* row = logits + static_cast<std::size_t>(n) * stride;
      A cross = 0;
      for (int k = begin; k < end; ++k)
        cross += ngram.probs[k] * (A(row[ngram.classes[k]]) - lse[n]);
      kl[n] = begin < end ? ngram.neg_entropy[a] - cross : A(0);
      kl[N + n] = begin < end ? A(1) : A(0);
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
  // *dst += mean(values, count), dst in backend memory: a step's loss, summed where it stays.
  template <class A>
  static void add_mean(double* dst, const A* values, std::size_t count) {
    *dst += double(mean(values, count));
  }

 private:
  // The first V values of a row of logits as an Eigen array of A: the row itself when T is A,
  // else a copy widened into a buffer of the calling thread (valid until its next call).
  template <class A, class T>
  static Eigen::Map<const Eigen::Array<A, Eigen::Dynamic, 1>> accum_row(const T* row, int V) {
    if constexpr (std::is_same_v<T, A>) {
      return {row, V};
    } else {
      thread_local std::vector<A> widened;
      if (widened.size() < static_cast<std::size_t>(V)) widened.resize(static_cast<std::size_t>(V));
      for (int v = 0; v < V; ++v) widened[static_cast<std::size_t>(v)] = A(row[v]);
      return {widened.data(), V};
    }
  }
};

}  // namespace lightgpt::cpu

// LightRNN head kernels on the CPU, LightRnnKernels<Cpu> (docs/heads.md, "LightRnnHead"). A token w
// sits in cell token_cell[w] = r·R + c of an R × R table; cell_token[r·R + c] is the token of a
// cell or -1 when empty, row_count[r] the number of tokens in row r. Empty rows are masked out of
// the row softmax and empty cells out of the column softmax, so probabilities cover exactly the V
// real tokens. Every scatter into a table (embedding and conditioning backward, reallocation
// statistics) is split by column blocks or table columns, each walked in position order, so results
// do not depend on the thread count. CoCoNT's row targets share the dense head's soft-target step
// (backend/cpu/loss.hpp).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include "../../core/precision.hpp"
#include "../../backend/contract.hpp"
#include "../../backend/cpu/eigen.hpp"
#include "../../backend/cpu/loss.hpp"
#include "kernels.hpp"

namespace lightgpt::cpu {

struct LightRnnOps {
  // out[b, t, :] = row_table[r(w)] + col_table[c(w)] (+ token_table[w]) + wpe[t] for
  // w = inputs.tokens[b·row_stride + t]; token_table (V × C) may be null.
  template <class T, class Tok>
  static void lightrnn_embedding_forward(T* out, LightRnnWindows<Tok> inputs,
                                         LightRnnCodebookView codebook, const T* row_table,
                                         const T* col_table, const T* token_table, const T* wpe,
                                         int C) {
    const int R = codebook.R;
#pragma omp parallel for schedule(static)
    for (int bt = 0; bt < inputs.positions(); ++bt) {
      const int t = bt % inputs.seq_len;
      const std::size_t token = static_cast<std::size_t>(inputs.tokens[inputs.index(bt)]);
      const int cell = codebook.token_cell[token];
      const T* row = row_table + static_cast<std::size_t>(cell / R) * C;
      const T* col = col_table + static_cast<std::size_t>(cell % R) * C;
      const T* position = wpe + static_cast<std::size_t>(t) * C;
      T* y = out + static_cast<std::size_t>(bt) * C;
      using lightgpt::detail::widen;
      if (token_table == nullptr) {
        for (int c = 0; c < C; ++c) y[c] = T(widen(row[c]) + widen(col[c]) + widen(position[c]));
      } else {
        const T* own = token_table + token * C;
        for (int c = 0; c < C; ++c) {
          y[c] = T(widen(row[c]) + widen(col[c]) + widen(own[c]) + widen(position[c]));
        }
      }
    }
  }

  // Accumulates dout into the table rows, token rows (dtoken_table may be null) and wpe rows the
  // forward read.
  template <class T, class A, class Tok>
  static void lightrnn_embedding_backward(A* drow_table, A* dcol_table, A* dtoken_table, A* dwpe,
                                          const T* dout, LightRnnWindows<Tok> inputs,
                                          LightRnnCodebookView codebook, int C) {
    const int R = codebook.R;
    const int blocks = (C + detail::kColumnBlock - 1) / detail::kColumnBlock;
#pragma omp parallel for schedule(static)
    for (int block = 0; block < blocks; ++block) {
      const int c0 = block * detail::kColumnBlock;
      const int c1 = std::min(C, c0 + detail::kColumnBlock);
      for (int bt = 0; bt < inputs.positions(); ++bt) {
        const int t = bt % inputs.seq_len;
        const std::size_t token = static_cast<std::size_t>(inputs.tokens[inputs.index(bt)]);
        const int cell = codebook.token_cell[token];
        const T* g = dout + static_cast<std::size_t>(bt) * C;
        A* row = drow_table + static_cast<std::size_t>(cell / R) * C;
        A* col = dcol_table + static_cast<std::size_t>(cell % R) * C;
        A* position = dwpe + static_cast<std::size_t>(t) * C;
        for (int c = c0; c < c1; ++c) {
          row[c] += A(g[c]);
          col[c] += A(g[c]);
          position[c] += A(g[c]);
        }
        if (dtoken_table != nullptr) {
          A* own = dtoken_table + token * C;
          for (int c = c0; c < c1; ++c) own[c] += A(g[c]);
        }
      }
    }
  }

  // lse[n] = log Σ_{r: row_count[r] > 0} exp(logits[n, r]).
  template <class T, class A>
  static void lightrnn_row_logsumexp(A* lse, const T* logits, const std::int32_t* row_count, int N,
                                     int R) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; ++n) {
      lse[n] = masked_lse<T, A>(logits + static_cast<std::size_t>(n) * R, row_count, R, 1);
    }
  }

  // The row-conditioned state of every position for its target's row: with
  // pre = base + row_table[r], state = GELU(pre) and slope = GELU'(pre), which is all the backward
  // needs (one tanh per element serves both).
  template <class T, class Tok>
  static void lightrnn_condition_forward(T* slope, T* state, const T* base, const T* row_table,
                                         LightRnnWindows<Tok> targets,
                                         LightRnnCodebookView codebook, int C) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < targets.positions(); ++n) {
      const int r = codebook.token_cell[targets.tokens[targets.index(n)]] / codebook.R;
      condition_one(slope, state, base, row_table + static_cast<std::size_t>(r) * C, n, C);
    }
  }

  // state[(g·N + n)·C + c] = GELU(base[n·C + c] + row_table[(first_row + g)·C + c]) for g < rows:
  // every position's state conditioned on each of `rows` consecutive table rows (full-vocabulary
  // log_probs and decoding, which condition on many rows per call; no slope is kept).
  template <class T>
  static void lightrnn_condition_rows(T* state, const T* base, const T* row_table, int first_row,
                                      int rows, int N, int C) {
#pragma omp parallel for schedule(static)
    for (int pair = 0; pair < rows * N; ++pair) {
      const int g = pair / N, n = pair % N;
      condition_one(static_cast<T*>(nullptr), state + static_cast<std::size_t>(g) * N * C, base,
                    row_table + static_cast<std::size_t>(first_row + g) * C, n, C);
    }
  }

  // Per position: col_lse over the non-empty cells of the target's row, and the token NLL
  // losses[n] = row_lse - row_logit[r] + col_lse - col_logit[c].
  template <class T, class A, class Tok>
  static void lightrnn_cross_entropy(A* losses, A* col_lse, const T* row_logits, const A* row_lse,
                                     const T* col_logits, LightRnnWindows<Tok> targets,
                                     LightRnnCodebookView codebook) {
    const int R = codebook.R;
#pragma omp parallel for schedule(static)
    for (int n = 0; n < targets.positions(); ++n) {
      const int cell = codebook.token_cell[targets.tokens[targets.index(n)]];
      const int r = cell / R, c = cell % R;
      const T* cols = col_logits + static_cast<std::size_t>(n) * R;
      const A lse =
          masked_lse<T, A>(cols, codebook.cell_token + static_cast<std::size_t>(r) * R, R, 0);
      col_lse[n] = lse;
      losses[n] =
          row_lse[n] - A(row_logits[static_cast<std::size_t>(n) * R + r]) + lse - A(cols[c]);
    }
  }

  // In place: row logits -> gradient of Σ_j depth_weights[j] · scale · CE(row of target j), where
  // target j of position (b, t) is targets.tokens[b·row_stride + t + j]. Empty rows get zero. With
  // CoCoNT (`ngram` over rows, non-empty), depth 0 of a position whose context token
  // contexts[b·row_stride + t] has a list scores the soft target (1 - α)·onehot(row) +
  // α·P_ngram,row: the gradient of (1 - α)·CE(row) + α·KL(P_ngram,row ‖ P_row).
  template <class T, class A, class Tok>
  static void lightrnn_row_backward_inplace(T* logits, const A* lse, LightRnnWindows<Tok> targets,
                                            LightRnnCodebookView codebook, const A* depth_weights,
                                            int depths, A scale, const Tok* contexts = nullptr,
                                            NgramTargets<A> ngram = {}) {
    const int R = codebook.R;
    const std::int32_t* row_count = codebook.row_count;
    A total_weight = 0;
    for (int j = 0; j < depths; ++j) total_weight += depth_weights[j];
#pragma omp parallel for schedule(static)
    for (int n = 0; n < targets.positions(); ++n) {
      T* row = logits + static_cast<std::size_t>(n) * R;
      for (int r = 0; r < R; ++r) {
        row[r] = row_count[r] > 0 ? T(scale * total_weight * std::exp(A(row[r]) - lse[n])) : T(0);
      }
      const int at = targets.index(n);
      detail::subtract_targets(row, targets.tokens + at, depth_weights, depths, scale,
                               contexts ? contexts + at : nullptr, ngram,
                               [&](Tok id) { return codebook.token_cell[id] / R; });
    }
  }

  // In place: column logits -> gradient of weight · CE(column | target's row); empty cells get 0.
  template <class T, class A, class Tok>
  static void lightrnn_column_backward_inplace(T* logits, const A* lse,
                                               LightRnnWindows<Tok> targets,
                                               LightRnnCodebookView codebook, A weight) {
    const int R = codebook.R;
#pragma omp parallel for schedule(static)
    for (int n = 0; n < targets.positions(); ++n) {
      const int cell = codebook.token_cell[targets.tokens[targets.index(n)]];
      const std::int32_t* cells = codebook.cell_token + static_cast<std::size_t>(cell / R) * R;
      T* row = logits + static_cast<std::size_t>(n) * R;
      for (int c = 0; c < R; ++c) {
        row[c] = cells[c] >= 0 ? T(weight * std::exp(A(row[c]) - lse[n])) : T(0);
      }
      row[cell % R] = T(A(row[cell % R]) - weight);
    }
  }

  // In place: dpre = dstate ⊙ slope (GELU' at pre, from the forward); then row_table's gradient
  // gets dpre at each position's target row (accumulated).
  template <class T, class A, class Tok>
  static void lightrnn_condition_backward(T* dpre, const T* slope, A* drow_table,
                                          LightRnnWindows<Tok> targets,
                                          LightRnnCodebookView codebook, int C) {
    const std::ptrdiff_t count = static_cast<std::ptrdiff_t>(targets.B) * targets.seq_len * C;
#pragma omp parallel for schedule(static)
    for (std::ptrdiff_t i = 0; i < count; ++i) dpre[i] = T(A(dpre[i]) * A(slope[i]));
    const int blocks = (C + detail::kColumnBlock - 1) / detail::kColumnBlock;
#pragma omp parallel for schedule(static)
    for (int block = 0; block < blocks; ++block) {
      const int c0 = block * detail::kColumnBlock;
      const int c1 = std::min(C, c0 + detail::kColumnBlock);
      for (int n = 0; n < targets.positions(); ++n) {
        const int r = codebook.token_cell[targets.tokens[targets.index(n)]] / codebook.R;
        const T* g = dpre + static_cast<std::size_t>(n) * C;
        A* target_row = drow_table + static_cast<std::size_t>(r) * C;
        for (int c = c0; c < c1; ++c) target_row[c] += A(g[c]);
      }
    }
  }

  // out[n, token] = log P(row) + log P(column | row) for every token of the table rows
  // [first_row, first_row + rows), given the row logits/lse and col_logits[(g·N + n)·R + c], the
  // column logits of position n's state conditioned on row first_row + g (out is N × V).
  template <class T, class A>
  static void lightrnn_log_probs_rows(A* out, const T* row_logits, const A* row_lse,
                                      const T* col_logits, LightRnnCodebookView codebook,
                                      int first_row, int rows, int N) {
    const int R = codebook.R, V = codebook.V;
#pragma omp parallel for schedule(static)
    for (int pair = 0; pair < rows * N; ++pair) {
      const int row = first_row + pair / N, n = pair % N;
      const std::int32_t* cells = codebook.cell_token + static_cast<std::size_t>(row) * R;
      const T* cols = col_logits + static_cast<std::size_t>(pair) * R;
      const A row_log_prob = A(row_logits[static_cast<std::size_t>(n) * R + row]) - row_lse[n];
      const A lse = masked_lse<T, A>(cols, cells, R, 0);
      for (int c = 0; c < R; ++c) {
        if (cells[c] >= 0) {
          out[static_cast<std::size_t>(n) * V + cells[c]] = row_log_prob + A(cols[c]) - lse;
        }
      }
    }
  }

  // Reallocation statistics: for each position with target w, row_loss[w, i] += -log softmax_i of
  // the row logits and col_loss[w, j] += -log softmax_j of the column logits (the state conditioned
  // on w's current row), both over all R entries so that every cell, empty or not, gets a finite
  // estimate. lse_scratch holds 2·N values.
  template <class T, class A, class Tok>
  static void lightrnn_accumulate_statistics(A* row_loss, A* col_loss, A* lse_scratch,
                                             const T* row_logits, const T* col_logits,
                                             LightRnnWindows<Tok> targets, int R) {
    const int N = targets.positions();
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; ++n) {
      lse_scratch[n] = masked_lse<T, A>(row_logits + static_cast<std::size_t>(n) * R,
                                        static_cast<const std::int32_t*>(nullptr), R, 0);
      lse_scratch[N + n] = masked_lse<T, A>(col_logits + static_cast<std::size_t>(n) * R,
                                            static_cast<const std::int32_t*>(nullptr), R, 0);
    }
#pragma omp parallel for schedule(static)
    for (int i = 0; i < R; ++i) {
      for (int n = 0; n < N; ++n) {
        const std::size_t w = static_cast<std::size_t>(targets.tokens[targets.index(n)]);
        const std::size_t at = static_cast<std::size_t>(n) * R + i;
        row_loss[w * R + i] += lse_scratch[n] - A(row_logits[at]);
        col_loss[w * R + i] += lse_scratch[N + n] - A(col_logits[at]);
      }
    }
  }

 private:
  // log Σ exp(logits[i]) over the i with mask[i] >= threshold (all i when mask is null).
  template <class T, class A>
  static A masked_lse(const T* logits, const std::int32_t* mask, int count, int threshold) {
    A max = -std::numeric_limits<A>::infinity();
    for (int i = 0; i < count; ++i) {
      if (!mask || mask[i] >= threshold) max = std::max(max, A(logits[i]));
    }
    A sum = 0;
    for (int i = 0; i < count; ++i) {
      if (!mask || mask[i] >= threshold) sum += std::exp(A(logits[i]) - max);
    }
    return max + std::log(sum);
  }

  // GELU and its slope (core/elementwise.hpp's gelu and gelu_grad, term for term) from one tanh
  // per element, the row's tanh vectorised (detail::gelu_tanh) and staged in `state`; 16-bit
  // storage stages it in fp32.
  template <class T>
  static void condition_one(T* slope, T* state, const T* base, const T* row, int n, int C) {
    using W = lightgpt::detail::widened_t<T>;
    constexpr W kSqrt2OverPi = W(0.7978845608028654);
    constexpr W kCubic = W(0.044715);
    const std::size_t offset = static_cast<std::size_t>(n) * C;
    const T* b = base + offset;
    T* y = state + offset;
    auto x_of = [&](int c) {
      return W(lightgpt::detail::widen(b[c]) + lightgpt::detail::widen(row[c]));
    };
    auto finish = [&](int c, W th) {
      const W x = x_of(c);
      y[c] = T(W(0.5) * x * (W(1) + th));
      if (slope) {
        slope[offset + c] = T(W(0.5) * (W(1) + th) + W(0.5) * x * (W(1) - th * th) * kSqrt2OverPi *
                                                         (W(1) + W(3) * kCubic * x * x));
      }
    };
    if constexpr (std::is_same_v<T, W>) {
      detail::gelu_tanh(y, C, x_of);
      for (int c = 0; c < C; ++c) finish(c, y[c]);
    } else {
      std::vector<W> th(static_cast<std::size_t>(C));
      detail::gelu_tanh(th.data(), C, x_of);
      for (int c = 0; c < C; ++c) finish(c, th[c]);
    }
  }
};

}  // namespace lightgpt::cpu

namespace lightgpt {

template <>
struct LightRnnKernels<Cpu> : cpu::LightRnnOps {};

}  // namespace lightgpt

// LightRNN head kernels on the GPU, LightRnnKernels<Cuda>: the formulas of cpu.hpp (same masking of
// empty rows and cells, same rounding points, CoCoNT's row soft target in the row backward).
// Row-wise work over the R entries of a row or column distribution is one warp per position. Every
// scatter into a table (embedding and conditioning backward, reallocation statistics) is a keyed
// sum (backend/cuda/norm_act.cuh): sorted by table row over ⌈log₂ R⌉ key bits, or by token id over
// ⌈log₂ R²⌉ bits (every token has its own cell, so V ≤ R²), summed in fixed chunks. The
// full-vocabulary log-probabilities condition every position on a whole range of rows per launch,
// so decoding one token takes a handful of launches, not three per row.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <cub/device/device_radix_sort.cuh>
#include <type_traits>

#include "../../core/elementwise.hpp"
#include "../../core/error.hpp"
#include "../../core/precision.hpp"
#include "../../core/losses.hpp"
#include "../../backend/cuda/context.cuh"
#include "../../backend/cuda/loss.cuh"
#include "../../backend/cuda/norm_act.cuh"
#include "../../backend/cuda/reduce.cuh"
#include "kernels.hpp"

namespace lightgpt::cuda {
namespace kernels {

constexpr int kLightRnnWarps = 8;  // positions per 256-thread block, one warp each

// log Σ exp(row[i]) over the i < count with mask[i] >= threshold (every i when mask is null),
// computed by one warp; every lane gets the result (-inf when nothing is unmasked).
template <class A, class T>
__device__ inline A warp_masked_lse(const T* row, const std::int32_t* mask, int threshold,
                                    int count) {
  lightgpt::detail::OnlineSoftmax<A> state;
  for (int i = threadIdx.x % 32; i < count; i += 32) {
    if (mask == nullptr || mask[i] >= threshold) state.add(A(load(row, i)));
  }
  A max = state.max, sum = state.sum;
  for (int offset = 16; offset > 0; offset /= 2) {
    const A max2 = __shfl_xor_sync(0xffffffffu, max, offset);
    const A sum2 = __shfl_xor_sync(0xffffffffu, sum, offset);
    combine_softmax(max, sum, max2, sum2);
  }
  return max + log(sum);
}

template <class T, class Tok>
__global__ void lightrnn_embedding_forward_kernel(T* out, const Tok* tokens, int row_stride,
                                                  const std::int32_t* token_cell,
                                                  const T* row_table, const T* col_table,
                                                  const T* token_table, const T* wpe, int seq_len,
                                                  int C, int R, std::size_t total) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < total;
       i += std::size_t(gridDim.x) * blockDim.x) {
    const int n = static_cast<int>(i / C), c = static_cast<int>(i % C);
    const std::size_t token = static_cast<std::size_t>(tokens[token_index(n, seq_len, row_stride)]);
    const int cell = token_cell[token];
    float sum = load(row_table, std::size_t(cell / R) * C + c) +
                load(col_table, std::size_t(cell % R) * C + c);
    if (token_table != nullptr) sum += load(token_table, token * C + c);
    out[i] = T(sum + load(wpe, std::size_t(n % seq_len) * C + c));
  }
}

// lse[n] over the entries r with row_count[r] > 0 (all entries when row_count is null).
template <class T, class A>
__global__ void lightrnn_row_logsumexp_kernel(A* lse, const T* logits,
                                              const std::int32_t* row_count, int N, int R) {
  const int n = blockIdx.x * kLightRnnWarps + threadIdx.x / 32;
  if (n >= N) return;  // the whole warp leaves together
  const A value = warp_masked_lse<A>(logits + static_cast<std::size_t>(n) * R, row_count, 1, R);
  if (threadIdx.x % 32 == 0) lse[n] = value;
}

// state = GELU(pre), slope = GELU'(pre) (when non-null) with pre = base + row_table[r], r the row
// of position n's target.
template <class T, class Tok>
__global__ void lightrnn_condition_kernel(T* slope, T* state, const T* base, const T* row_table,
                                          const Tok* targets, int row_stride,
                                          const std::int32_t* token_cell, int seq_len, int C, int R,
                                          std::size_t total) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < total;
       i += std::size_t(gridDim.x) * blockDim.x) {
    const int n = static_cast<int>(i / C), c = static_cast<int>(i % C);
    const int r = token_cell[targets[token_index(n, seq_len, row_stride)]] / R;
    const float x = load(base, i) + load(row_table, std::size_t(r) * C + c);
    state[i] = T(lightgpt::detail::gelu(x));
    if (slope != nullptr) slope[i] = T(lightgpt::detail::gelu_grad(x));
  }
}

// Block row y: state[y·N·C + i] = GELU(base[i] + row_table[(first_row + y)·C + i % C]) for the
// N·C elements i of the positions' states conditioned on row first_row + y.
template <class T>
__global__ void lightrnn_condition_rows_kernel(T* state, const T* base, const T* row_table,
                                               int first_row, int C, std::size_t per_row) {
  const T* row = row_table + (static_cast<std::size_t>(first_row) + blockIdx.y) * C;
  T* out = state + blockIdx.y * per_row;
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < per_row;
       i += std::size_t(gridDim.x) * blockDim.x) {
    out[i] = T(lightgpt::detail::gelu(load(base, i) + load(row, i % C)));
  }
}

template <class T, class A, class Tok>
__global__ void lightrnn_cross_entropy_kernel(A* losses, A* col_lse, const T* row_logits,
                                              const A* row_lse, const T* col_logits,
                                              const Tok* targets, int row_stride,
                                              const std::int32_t* token_cell,
                                              const std::int32_t* cell_token, int N, int seq_len,
                                              int R) {
  const int n = blockIdx.x * kLightRnnWarps + threadIdx.x / 32;
  if (n >= N) return;
  const int cell = token_cell[targets[token_index(n, seq_len, row_stride)]];
  const int r = cell / R, c = cell % R;
  const T* cols = col_logits + static_cast<std::size_t>(n) * R;
  const A lse = warp_masked_lse<A>(cols, cell_token + static_cast<std::size_t>(r) * R, 0, R);
  if (threadIdx.x % 32 == 0) {
    col_lse[n] = lse;
    losses[n] = row_lse[n] - A(load(row_logits, static_cast<std::size_t>(n) * R + r)) + lse -
                A(load(cols, c));
  }
}

// The row half of the fused backward: the softmax term over non-empty rows by the warp, then one
// lane subtracts the depth targets and CoCoNT's listed rows in the CPU's order (targets may
// coincide, and every update rounds to the storage type).
template <class T, class A, class Tok, class Ngram>
__global__ void lightrnn_row_backward_kernel(T* logits, const A* lse, const std::int32_t* row_count,
                                             const Tok* targets, int row_stride,
                                             const std::int32_t* token_cell,
                                             DepthWeights<A> weights, int depths, A scale,
                                             A scaled_total, int N, int seq_len, int R,
                                             const Tok* contexts, Ngram ngram) {
  const int n = blockIdx.x * kLightRnnWarps + threadIdx.x / 32;
  if (n >= N) return;
  T* row = logits + static_cast<std::size_t>(n) * R;
  const A row_lse = lse[n];
  for (int r = threadIdx.x % 32; r < R; r += 32) {
    row[r] = row_count[r] > 0 ? T(scaled_total * exp(A(load(row, r)) - row_lse)) : T(0);
  }
  __syncwarp();
  if (threadIdx.x % 32 != 0) return;
  const std::size_t position = token_index(n, seq_len, row_stride);
  int begin = 0, end = 0;
  if (ngram.offsets != nullptr && contexts != nullptr) {
    begin = ngram.offsets[contexts[position]];
    end = ngram.offsets[contexts[position] + 1];
  }
  const A smoothing = begin < end ? A(ngram.alpha) : A(0);
  for (int j = 0; j < depths; ++j) {
    const int target_row = token_cell[targets[position + j]] / R;
    const A weight =
        j == 0 ? scale * weights.weight[0] * (A(1) - smoothing) : scale * weights.weight[j];
    row[target_row] = T(A(load(row, target_row)) - weight);
  }
  if (smoothing != A(0)) {
    const A weight = scale * weights.weight[0] * smoothing;
    for (int k = begin; k < end; ++k) {
      const int listed = ngram.classes[k];
      row[listed] = T(A(load(row, listed)) - weight * A(ngram.probs[k]));
    }
  }
}

template <class T, class A, class Tok>
__global__ void lightrnn_column_backward_kernel(T* logits, const A* lse, const Tok* targets,
                                                int row_stride, const std::int32_t* token_cell,
                                                const std::int32_t* cell_token, A weight, int N,
                                                int seq_len, int R) {
  const int n = blockIdx.x * kLightRnnWarps + threadIdx.x / 32;
  if (n >= N) return;
  const int cell = token_cell[targets[token_index(n, seq_len, row_stride)]];
  const std::int32_t* cells = cell_token + static_cast<std::size_t>(cell / R) * R;
  const int target_col = cell % R;
  T* row = logits + static_cast<std::size_t>(n) * R;
  const A col_lse = lse[n];
  for (int c = threadIdx.x % 32; c < R; c += 32) {
    T value = cells[c] >= 0 ? T(weight * exp(A(load(row, c)) - col_lse)) : T(0);
    if (c == target_col) value = T(A(load(&value, 0)) - weight);
    row[c] = value;
  }
}

template <class T, class A>
__global__ void scale_by_slope_kernel(T* dpre, const T* slope, std::size_t count) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < count;
       i += std::size_t(gridDim.x) * blockDim.x) {
    dpre[i] = T(A(load(dpre, i)) * A(load(slope, i)));
  }
}

// Block row y, one warp per position n: out[n, token] = log P(row) + log P(column | row) for the
// tokens of row first_row + y, whose column logits are col_logits[(y·N + n)·R ...].
template <class T, class A>
__global__ void lightrnn_log_probs_rows_kernel(A* out, const T* row_logits, const A* row_lse,
                                               const T* col_logits, const std::int32_t* cell_token,
                                               int first_row, int N, int R, int V) {
  const int n = blockIdx.x * kLightRnnWarps + threadIdx.x / 32;
  if (n >= N) return;
  const int row = first_row + static_cast<int>(blockIdx.y);
  const std::int32_t* cells = cell_token + static_cast<std::size_t>(row) * R;
  const T* cols = col_logits + (static_cast<std::size_t>(blockIdx.y) * N + n) * R;
  const A row_log_prob = A(load(row_logits, static_cast<std::size_t>(n) * R + row)) - row_lse[n];
  const A lse = warp_masked_lse<A>(cols, cells, 0, R);
  for (int c = threadIdx.x % 32; c < R; c += 32) {
    if (cells[c] >= 0) {
      out[static_cast<std::size_t>(n) * V + cells[c]] = row_log_prob + A(load(cols, c)) - lse;
    }
  }
}

// ------------------------------------------------------------------------- keyed sum terms

// The table row of position n: the row (or column) of the cell of token tokens[n's window index].
template <class Tok>
struct CellKey {
  const Tok* tokens;
  int row_stride, seq_len;
  const std::int32_t* token_cell;
  int R;
  bool column;
  __device__ std::uint32_t operator()(int n) const {
    const int cell = token_cell[tokens[token_index(n, seq_len, row_stride)]];
    return static_cast<std::uint32_t>(column ? cell % R : cell / R);
  }
};

// Terms of the reallocation statistics: a = -log softmax_i of the row logits, b = the same for
// the column logits (lse holds the N row log-sum-exps, then the N column ones).
template <class T, class A>
struct StatisticsTerms {
  const T* row_logits;
  const T* col_logits;
  const A* lse;
  int N, R;
  __device__ void operator()(int n, int i, float& a, float& b) const {
    const std::size_t at = static_cast<std::size_t>(n) * R + i;
    a += float(lse[n]) - load(row_logits, at);
    b += float(lse[N + n]) - load(col_logits, at);
  }
};

inline unsigned lightrnn_blocks(int N) {
  return static_cast<unsigned>((N + kLightRnnWarps - 1) / kLightRnnWarps);
}

}  // namespace kernels

struct LightRnnOps {
  // out[b, t, :] = row_table[r(w)] + col_table[c(w)] (+ token_table[w]) + wpe[t] for
  // w = inputs.tokens[b·row_stride + t]; token_table (V × C) may be null.
  template <class T, class Tok>
  static void lightrnn_embedding_forward(T* out, LightRnnWindows<Tok> inputs,
                                         LightRnnCodebookView codebook, const T* row_table,
                                         const T* col_table, const T* token_table, const T* wpe,
                                         int C) {
    const std::size_t count = static_cast<std::size_t>(inputs.B) * inputs.seq_len * C;
    if (count == 0) return;
    kernels::lightrnn_embedding_forward_kernel<<<elementwise_blocks(count), 256, 0,
                                                 context().stream()>>>(
        out, inputs.tokens, inputs.row_stride, codebook.token_cell, row_table, col_table,
        token_table, wpe, inputs.seq_len, C, codebook.R, count);
    LIGHTGPT_CUDA_CHECK_LAUNCH();
  }

  // Accumulates dout into the table rows, token rows (dtoken_table may be null) and wpe rows the
  // forward read (deterministic).
  template <class T, class A, class Tok>
  static void lightrnn_embedding_backward(A* drow_table, A* dcol_table, A* dtoken_table, A* dwpe,
                                          const T* dout, LightRnnWindows<Tok> inputs,
                                          LightRnnCodebookView codebook, int C) {
    static_assert(std::is_same_v<A, float>, "CUDA layers keep fp32 parameter gradients");
    const auto [tokens, row_stride, B, seq_len] = inputs;
    const int N = B * seq_len, R = codebook.R;
    if (N == 0) return;
    const int bits = kernels::key_bits_for(R);
    const kernels::RowSum<T> rows{dout, C};
    kernels::keyed_sums(
        kernels::CellKey<Tok>{tokens, row_stride, seq_len, codebook.token_cell, R, false}, bits,
        rows, N, C, drow_table, static_cast<float*>(nullptr));
    kernels::keyed_sums(
        kernels::CellKey<Tok>{tokens, row_stride, seq_len, codebook.token_cell, R, true}, bits,
        rows, N, C, dcol_table, static_cast<float*>(nullptr));
    if (dtoken_table != nullptr) {
      kernels::keyed_sums(kernels::TokenKey<Tok>{tokens, row_stride, seq_len},
                          kernels::key_bits_for(std::int64_t(R) * R), rows, N, C, dtoken_table,
                          static_cast<float*>(nullptr));
    }
    if (dwpe != nullptr) {
      const std::size_t count = static_cast<std::size_t>(seq_len) * C;
      kernels::position_embedding_backward_kernel<<<elementwise_blocks(count), 256, 0,
                                                    context().stream()>>>(dwpe, dout, B, seq_len,
                                                                          C);
      LIGHTGPT_CUDA_CHECK_LAUNCH();
    }
  }

  // lse[n] = log Σ_{r: row_count[r] > 0} exp(logits[n, r]).
  template <class T, class A>
  static void lightrnn_row_logsumexp(A* lse, const T* logits, const std::int32_t* row_count, int N,
                                     int R) {
    if (N == 0) return;
    kernels::lightrnn_row_logsumexp_kernel<<<kernels::lightrnn_blocks(N),
                                             32 * kernels::kLightRnnWarps, 0, context().stream()>>>(
        lse, logits, row_count, N, R);
    LIGHTGPT_CUDA_CHECK_LAUNCH();
  }

  // state = GELU(base + row_table[r]) and slope = GELU'(·) at every position, r the row of its
  // target targets.tokens[b·row_stride + t].
  template <class T, class Tok>
  static void lightrnn_condition_forward(T* slope, T* state, const T* base, const T* row_table,
                                         LightRnnWindows<Tok> targets,
                                         LightRnnCodebookView codebook, int C) {
    const std::size_t count = static_cast<std::size_t>(targets.B) * targets.seq_len * C;
    if (count == 0) return;
    kernels::lightrnn_condition_kernel<<<elementwise_blocks(count), 256, 0, context().stream()>>>(
        slope, state, base, row_table, targets.tokens, targets.row_stride, codebook.token_cell,
        targets.seq_len, C, codebook.R, count);
    LIGHTGPT_CUDA_CHECK_LAUNCH();
  }

  // state[(g·N + n)·C + c] = GELU(base[n·C + c] + row_table[(first_row + g)·C + c]) for g < rows:
  // every position's state conditioned on each of `rows` consecutive table rows (no slope).
  template <class T>
  static void lightrnn_condition_rows(T* state, const T* base, const T* row_table, int first_row,
                                      int rows, int N, int C) {
    const std::size_t per_row = static_cast<std::size_t>(N) * C;
    if (per_row == 0 || rows == 0) return;
    const dim3 grid((elementwise_blocks(per_row) + rows - 1) / rows, rows);
    kernels::lightrnn_condition_rows_kernel<<<grid, 256, 0, context().stream()>>>(
        state, base, row_table, first_row, C, per_row);
    LIGHTGPT_CUDA_CHECK_LAUNCH();
  }

  // col_lse[n] over the non-empty cells of the target's row, and the token NLL
  // losses[n] = row_lse - row_logit[r] + col_lse - col_logit[c].
  template <class T, class A, class Tok>
  static void lightrnn_cross_entropy(A* losses, A* col_lse, const T* row_logits, const A* row_lse,
                                     const T* col_logits, LightRnnWindows<Tok> targets,
                                     LightRnnCodebookView codebook) {
    const int N = targets.positions();
    if (N == 0) return;
    kernels::lightrnn_cross_entropy_kernel<<<kernels::lightrnn_blocks(N),
                                             32 * kernels::kLightRnnWarps, 0, context().stream()>>>(
        losses, col_lse, row_logits, row_lse, col_logits, targets.tokens, targets.row_stride,
        codebook.token_cell, codebook.cell_token, N, targets.seq_len, codebook.R);
    LIGHTGPT_CUDA_CHECK_LAUNCH();
  }

  // In place: row logits -> gradient of Σ_j depth_weights[j] · scale · CE(row of target j); empty
  // rows get zero. depth_weights is host memory (depths ≤ kMaxMtpDepth values).
  template <class T, class A, class Tok>
  static void lightrnn_row_backward_inplace(T* logits, const A* lse, LightRnnWindows<Tok> targets,
                                            LightRnnCodebookView codebook, const A* depth_weights,
                                            int depths, A scale) {
    lightrnn_row_backward_inplace(logits, lse, targets, codebook, depth_weights, depths, scale,
                                  static_cast<const Tok*>(nullptr), kernels::NoNgram{});
  }

  // With CoCoNT (`ngram` over rows with non-null offsets, device memory), depth 0 of a position
  // whose context token contexts[b·row_stride + t] has a list scores the soft target
  // (1 - α)·onehot(row) + α·P_ngram,row.
  template <class T, class A, class Tok, class Ngram>
  static void lightrnn_row_backward_inplace(T* logits, const A* lse, LightRnnWindows<Tok> targets,
                                            LightRnnCodebookView codebook, const A* depth_weights,
                                            int depths, A scale, const Tok* contexts, Ngram ngram) {
    LIGHTGPT_CHECK(depths >= 1 && depths <= kMaxMtpDepth, "lightrnn_row_backward_inplace: ", depths,
                   " depths, at most ", kMaxMtpDepth);
    const int N = targets.positions();
    if (N == 0) return;
    kernels::DepthWeights<A> weights{};
    A total_weight = 0;
    for (int j = 0; j < depths; ++j) {
      weights.weight[j] = depth_weights[j];
      total_weight += depth_weights[j];
    }
    kernels::lightrnn_row_backward_kernel<<<kernels::lightrnn_blocks(N),
                                            32 * kernels::kLightRnnWarps, 0, context().stream()>>>(
        logits, lse, codebook.row_count, targets.tokens, targets.row_stride, codebook.token_cell,
        weights, depths, scale, scale * total_weight, N, targets.seq_len, codebook.R, contexts,
        ngram);
    LIGHTGPT_CUDA_CHECK_LAUNCH();
  }

  // In place: column logits -> gradient of weight · CE(column | target's row); empty cells get 0.
  template <class T, class A, class Tok>
  static void lightrnn_column_backward_inplace(T* logits, const A* lse,
                                               LightRnnWindows<Tok> targets,
                                               LightRnnCodebookView codebook, A weight) {
    const int N = targets.positions();
    if (N == 0) return;
    kernels::lightrnn_column_backward_kernel<<<
        kernels::lightrnn_blocks(N), 32 * kernels::kLightRnnWarps, 0, context().stream()>>>(
        logits, lse, targets.tokens, targets.row_stride, codebook.token_cell, codebook.cell_token,
        weight, N, targets.seq_len, codebook.R);
    LIGHTGPT_CUDA_CHECK_LAUNCH();
  }

  // In place: dpre = dstate ⊙ slope; then row_table's gradient gets dpre at each position's target
  // row (accumulated, deterministic).
  template <class T, class A, class Tok>
  static void lightrnn_condition_backward(T* dpre, const T* slope, A* drow_table,
                                          LightRnnWindows<Tok> targets,
                                          LightRnnCodebookView codebook, int C) {
    static_assert(std::is_same_v<A, float>, "CUDA layers keep fp32 parameter gradients");
    const int N = targets.positions(), R = codebook.R;
    const std::size_t count = static_cast<std::size_t>(N) * C;
    if (count == 0) return;
    kernels::scale_by_slope_kernel<T, A>
        <<<elementwise_blocks(count), 256, 0, context().stream()>>>(dpre, slope, count);
    LIGHTGPT_CUDA_CHECK_LAUNCH();
    kernels::keyed_sums(kernels::CellKey<Tok>{targets.tokens, targets.row_stride, targets.seq_len,
                                              codebook.token_cell, R, false},
                        kernels::key_bits_for(R), kernels::RowSum<T>{dpre, C}, N, C, drow_table,
                        static_cast<float*>(nullptr));
  }

  // out[n, token] = log P(row) + log P(column | row) for every token of the table rows
  // [first_row, first_row + rows), where col_logits[(g·N + n)·R + c] are the column logits of
  // position n's state conditioned on row first_row + g (out is N × V, device memory).
  template <class T, class A>
  static void lightrnn_log_probs_rows(A* out, const T* row_logits, const A* row_lse,
                                      const T* col_logits, LightRnnCodebookView codebook,
                                      int first_row, int rows, int N) {
    if (N == 0 || rows == 0) return;
    kernels::
        lightrnn_log_probs_rows_kernel<<<dim3(kernels::lightrnn_blocks(N), rows),
                                         32 * kernels::kLightRnnWarps, 0, context().stream()>>>(
            out, row_logits, row_lse, col_logits, codebook.cell_token, first_row, N, codebook.R,
            codebook.V);
    LIGHTGPT_CUDA_CHECK_LAUNCH();
  }

  // Reallocation statistics: row_loss[w, i] += -log softmax_i(row logits) and col_loss[w, j] +=
  // -log softmax_j(column logits) at every position with target w, over all R entries (empty ones
  // included). lse_scratch holds 2·N values.
  template <class T, class A, class Tok>
  static void lightrnn_accumulate_statistics(A* row_loss, A* col_loss, A* lse_scratch,
                                             const T* row_logits, const T* col_logits,
                                             LightRnnWindows<Tok> targets, int R) {
    static_assert(std::is_same_v<A, float>, "CUDA statistics are fp32");
    const int N = targets.positions();
    if (N == 0) return;
    cudaStream_t stream = context().stream();
    const unsigned blocks = kernels::lightrnn_blocks(N);
    const std::int32_t* no_mask = nullptr;
    kernels::lightrnn_row_logsumexp_kernel<<<blocks, 32 * kernels::kLightRnnWarps, 0, stream>>>(
        lse_scratch, row_logits, no_mask, N, R);
    LIGHTGPT_CUDA_CHECK_LAUNCH();
    kernels::lightrnn_row_logsumexp_kernel<<<blocks, 32 * kernels::kLightRnnWarps, 0, stream>>>(
        lse_scratch + N, col_logits, no_mask, N, R);
    LIGHTGPT_CUDA_CHECK_LAUNCH();
    kernels::keyed_sums(kernels::TokenKey<Tok>{targets.tokens, targets.row_stride, targets.seq_len},
                        kernels::key_bits_for(std::int64_t(R) * R),
                        kernels::StatisticsTerms<T, A>{row_logits, col_logits, lse_scratch, N, R},
                        N, R, row_loss, col_loss);
  }
};

}  // namespace lightgpt::cuda

namespace lightgpt {

template <>
struct LightRnnKernels<Cuda> : cuda::LightRnnOps {};

}  // namespace lightgpt

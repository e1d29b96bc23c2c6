// Attention's kernels on the CPU (AttentionKernels<Cpu>): causal multi-head self-attention,
// flash-style: queries are processed in blocks of kQueryBlock rows against the keys they may see,
// with a row softmax per block, so memory is O(T · block) per thread instead of O(T²) per head. The
// forward keeps only the per-row log-sum-exp; the backward recomputes the probabilities from it.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>

#include "../../backend/contract.hpp"
#include "../../backend/cpu/eigen.hpp"
#include "../../core/precision.hpp"
#include "kernels.hpp"

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace lightgpt::cpu {

struct AttentionOps {
  static constexpr int kQueryBlock = 64;

  static int max_threads() {
#if defined(_OPENMP)
    return omp_get_max_threads();
#else
    return 1;
#endif
  }
  static int thread_index() {
#if defined(_OPENMP)
    return omp_get_thread_num();
#else
    return 0;
#endif
  }

  // Scratch elements the attention kernels need for sequences up to seq_len long.
  static std::size_t attention_scratch_size(int seq_len) {
    return static_cast<std::size_t>(max_threads()) * 2 * kQueryBlock * seq_len;
  }
  // The contract's form (the model's call, with its batch's B·T and T): the CPU kernels need
  // per-thread blocks only, so the batch size, width and head count do not enter.
  template <class T>
  static std::size_t attention_scratch_size(std::size_t /*positions*/, int seq_len, int /*C*/,
                                            int /*NH*/) {
    return attention_scratch_size(seq_len);
  }
  // Scratch values attention_decode needs for positions 0..positions−1: one score per head and
  // position.
  template <class A>
  static std::size_t attention_decode_scratch_size(int positions, int /*C*/, int NH) {
    return static_cast<std::size_t>(NH) * positions;
  }

  // qkv[B, T, 3C] holds q | k | v, head h in columns [h·hs, (h+1)·hs) of each; out[B, T, C].
  // lse[B, NH, T] is written when non-null.
  template <class T, class A>
  static void attention_forward(T* out, A* lse, const T* qkv, int B, int seq_len, int C, int NH,
                                T* scratch) {
    if constexpr (is_16bit_v<T>) {
      // 16-bit storage: widen q | k | v, run the fp32 kernel, round the output once.
      (void)scratch;
      const std::size_t positions = std::size_t(B) * seq_len;
      float* q = detail::staging(5, positions * 3 * C);
      float* y = detail::staging(6, positions * C);
      detail::widen_into(q, qkv, positions * 3 * C);
      attention_forward_wide(y, lse, static_cast<const float*>(q), B, seq_len, C, NH,
                             detail::staging(7, attention_scratch_size(seq_len)));
      detail::round_into(out, y, positions * C);
    } else {
      attention_forward_wide(out, lse, qkv, B, seq_len, C, NH, scratch);
    }
  }

  template <class T, class A>
  static void attention_backward(Grad<T> dqkv, const T* dout, const T* qkv, const T* out,
                                 const A* lse, int B, int seq_len, int C, int NH, T* scratch) {
    if constexpr (is_16bit_v<T>) {
      (void)scratch;
      const std::size_t positions = std::size_t(B) * seq_len;
      float* q = detail::staging(5, positions * 3 * C);
      float* y = detail::staging(6, positions * C);
      float* dy = detail::staging(1, positions * C);
      float* dq = detail::staging(4, positions * 3 * C);
      detail::widen_into(q, qkv, positions * 3 * C);
      detail::widen_into(y, out, positions * C);
      detail::widen_into(dy, dout, positions * C);
      attention_backward_wide(overwrite(dq), static_cast<const float*>(dy),
                              static_cast<const float*>(q), static_cast<const float*>(y), lse, B,
                              seq_len, C, NH, detail::staging(7, attention_scratch_size(seq_len)));
      detail::round_into(dqkv.ptr, dq, positions * 3 * C, dqkv.mode);
    } else {
      attention_backward_wide(dqkv, dout, qkv, out, lse, B, seq_len, C, NH, scratch);
    }
  }

 private:
  // The kernels proper, for fp32/fp64 operands.
  template <class T, class A>
  static void attention_forward_wide(T* out, A* lse, const T* qkv, int B, int seq_len, int C,
                                     int NH, T* scratch) {
    using detail::RowMatrix;
    const int hs = C / NH;
    const int blocks = (seq_len + kQueryBlock - 1) / kQueryBlock;
    const T scale = T(1) / std::sqrt(T(hs));
#pragma omp parallel for collapse(2) schedule(dynamic)
    for (int bh = 0; bh < B * NH; ++bh) {
      for (int block = 0; block < blocks; ++block) {
        const int b = bh / NH, h = bh % NH;
        const int t0 = block * kQueryBlock, t1 = std::min(seq_len, t0 + kQueryBlock),
                  rows = t1 - t0;
        const T* base = qkv + static_cast<std::size_t>(b) * seq_len * 3 * C + h * hs;
        auto q = detail::strided(base + static_cast<std::size_t>(t0) * 3 * C, rows, hs, 3 * C);
        auto k = detail::strided(base + C, t1, hs, 3 * C);
        auto v = detail::strided(base + 2 * C, t1, hs, 3 * C);
        auto probs = detail::view(thread_scratch(scratch, seq_len, 0), rows, t1);
        probs.noalias() = (q * k.transpose()) * scale;
        for (int i = 0; i < rows; ++i) {
          const int visible = t0 + i + 1;
          A row_max = -std::numeric_limits<A>::infinity();
          for (int s = 0; s < visible; ++s) row_max = std::max(row_max, A(probs(i, s)));
          A sum = 0;
          for (int s = 0; s < visible; ++s) {
            A e = std::exp(A(probs(i, s)) - row_max);
            probs(i, s) = T(e);
            sum += e;
          }
          for (int s = 0; s < visible; ++s) probs(i, s) = T(A(probs(i, s)) / sum);
          for (int s = visible; s < t1; ++s) probs(i, s) = T(0);
          if (lse) lse[static_cast<std::size_t>(bh) * seq_len + t0 + i] = row_max + std::log(sum);
        }
        auto y = detail::strided(out + (static_cast<std::size_t>(b) * seq_len + t0) * C + h * hs,
                                 rows, hs, C);
        y.noalias() = probs * v;
      }
    }
  }

  template <class T, class A>
  static void attention_backward_wide(Grad<T> dqkv, const T* dout, const T* qkv, const T* out,
                                      const A* lse, int B, int seq_len, int C, int NH, T* scratch) {
    const int hs = C / NH;
    const int blocks = (seq_len + kQueryBlock - 1) / kQueryBlock;
    const T scale = T(1) / std::sqrt(T(hs));
#pragma omp parallel for schedule(dynamic)
    for (int bh = 0; bh < B * NH; ++bh) {
      const int b = bh / NH, h = bh % NH;
      const std::size_t batch_offset = static_cast<std::size_t>(b) * seq_len * 3 * C + h * hs;
      const T* base = qkv + batch_offset;
      T* grad_base = dqkv.ptr + batch_offset;
      if (dqkv.mode == Mode::overwrite) {
        for (int part = 0; part < 3; ++part) {
          detail::strided(grad_base + part * C, seq_len, hs, 3 * C).setZero();
        }
      }
      for (int block = 0; block < blocks; ++block) {
        const int t0 = block * kQueryBlock, t1 = std::min(seq_len, t0 + kQueryBlock),
                  rows = t1 - t0;
        const std::size_t q_offset = static_cast<std::size_t>(t0) * 3 * C;
        auto q = detail::strided(base + q_offset, rows, hs, 3 * C);
        auto k = detail::strided(base + C, t1, hs, 3 * C);
        auto v = detail::strided(base + 2 * C, t1, hs, 3 * C);
        auto dq = detail::strided(grad_base + q_offset, rows, hs, 3 * C);
        auto dk = detail::strided(grad_base + C, t1, hs, 3 * C);
        auto dv = detail::strided(grad_base + 2 * C, t1, hs, 3 * C);
        const std::size_t out_offset = (static_cast<std::size_t>(b) * seq_len + t0) * C + h * hs;
        auto y = detail::strided(out + out_offset, rows, hs, C);
        auto dy = detail::strided(dout + out_offset, rows, hs, C);

        auto probs = detail::view(thread_scratch(scratch, seq_len, 0), rows, t1);
        auto dprobs = detail::view(thread_scratch(scratch, seq_len, 1), rows, t1);
        probs.noalias() = (q * k.transpose()) * scale;
        for (int i = 0; i < rows; ++i) {
          const int visible = t0 + i + 1;
          const A row_lse = lse[static_cast<std::size_t>(bh) * seq_len + t0 + i];
          for (int s = 0; s < visible; ++s) probs(i, s) = T(std::exp(A(probs(i, s)) - row_lse));
          for (int s = visible; s < t1; ++s) probs(i, s) = T(0);
        }
        dv.noalias() += probs.transpose() * dy;
        dprobs.noalias() = dy * v.transpose();
        for (int i = 0; i < rows; ++i) {
          // Softmax backward: dS = P ∘ (dP - <dy, y>), since Σ_s P·dP = <dy, y>.
          A dot = 0;
          for (int d = 0; d < hs; ++d) dot += A(dy(i, d)) * A(y(i, d));
          for (int s = 0; s < t1; ++s) {
            dprobs(i, s) = T(A(probs(i, s)) * (A(dprobs(i, s)) - dot) * A(scale));
          }
        }
        dq.noalias() += dprobs * k;
        dk.noalias() += dprobs.transpose() * q;
      }
    }
  }

 public:
  // Incremental decoding, one sequence: the query of position t against the cached keys and values
  // of positions 0..t. qkv holds rows of q | k | v (3C each) for positions 0..t; out[C]. Scores
  // accumulate in A; `scores` holds attention_decode_scratch_size(t + 1, C, NH) = NH · (t + 1)
  // values of scratch.
  template <class T, class A>
  static void attention_decode(T* out, const T* qkv, int t, int C, int NH, A* scores) {
    const int hs = C / NH;
    const A scale = A(1) / std::sqrt(A(hs));
    const T* q = qkv + static_cast<std::size_t>(t) * 3 * C;
#pragma omp parallel for schedule(static)
    for (int h = 0; h < NH; ++h) {
      A* p = scores + static_cast<std::size_t>(h) * (t + 1);
      A row_max = -std::numeric_limits<A>::infinity();
      for (int s = 0; s <= t; ++s) {
        const T* k = qkv + static_cast<std::size_t>(s) * 3 * C + C + h * hs;
        A dot = 0;
        for (int d = 0; d < hs; ++d) dot += A(q[h * hs + d]) * A(k[d]);
        p[s] = dot * scale;
        row_max = std::max(row_max, p[s]);
      }
      A sum = 0;
      for (int s = 0; s <= t; ++s) sum += (p[s] = std::exp(p[s] - row_max));
      for (int d = 0; d < hs; ++d) {
        A y = 0;
        for (int s = 0; s <= t; ++s)
          y += p[s] * A(qkv[static_cast<std::size_t>(s) * 3 * C + 2 * C + h * hs + d]);
        out[h * hs + d] = T(y / sum);
      }
    }
  }

 private:
  template <class T>
  static T* thread_scratch(T* scratch, int seq_len, int slot) {
    return scratch + (static_cast<std::size_t>(thread_index()) * 2 + slot) * kQueryBlock * seq_len;
  }
};

}  // namespace lightgpt::cpu

namespace lightgpt {

template <>
struct AttentionKernels<Cpu> : cpu::AttentionOps {};

}  // namespace lightgpt

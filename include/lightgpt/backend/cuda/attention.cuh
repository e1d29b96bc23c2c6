// Causal multi-head attention on the GPU, the simple verifiable path (a flash-style kernel is a
// later work item): q | k | v are split into head-major [B, NH, T, hs] copies, the products
// S = scale·Q·Kᵀ and Y = P·V are strided-batched cuBLASLt GEMMs over the B·NH heads, and one fused
// kernel (a warp per query row) applies the causal mask and the softmax in fp32, writing P in the
// storage type and the row's log-sum-exp for backward. The backward recomputes S, forms
// dP = dY·Vᵀ, turns both into P and dS = P∘(dP − Σ P·dP)·scale in one kernel, then
// dV = Pᵀ·dY, dQ = dS·K, dK = dSᵀ·Q. Scores are fp32 (B·NH·T² of them, in the mixer's scratch);
// the masked upper triangle is computed and discarded, the price of the simple path.
#pragma once

#include <cuda_runtime.h>

#include <cmath>
#include <cstddef>
#include <type_traits>

#include "../../core/precision.hpp"
#include "../contract.hpp"
#include "context.cuh"
#include "gemm.cuh"
#include "reduce.cuh"

namespace lightgpt::cuda {
namespace kernels {

// src [B, T, parts, NH, hs] (rows of parts·C) -> part p of dst at dst + p·B·T·C, [B, NH, T, hs].
template <class T>
__global__ void split_heads_kernel(T* dst, const T* src, int B, int T_, int NH, int hs, int parts) {
  const std::size_t C = std::size_t(NH) * hs, positions = std::size_t(B) * T_;
  const std::size_t total = positions * parts * C;
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < total;
       i += std::size_t(gridDim.x) * blockDim.x) {
    const std::size_t bt = i / (parts * C), rest = i % (parts * C);
    const std::size_t p = rest / C, h = (rest % C) / hs, d = rest % hs;
    const std::size_t b = bt / T_, t = bt % T_;
    dst[p * positions * C + ((b * NH + h) * T_ + t) * hs + d] = src[i];
  }
}

// The inverse of split_heads, storing (or adding) into rows of parts·C.
template <class T>
__global__ void merge_heads_kernel(T* dst, bool accumulate, const T* src, int B, int T_, int NH,
                                   int hs, int parts) {
  const std::size_t C = std::size_t(NH) * hs, positions = std::size_t(B) * T_;
  const std::size_t total = positions * parts * C;
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < total;
       i += std::size_t(gridDim.x) * blockDim.x) {
    const std::size_t bt = i / (parts * C), rest = i % (parts * C);
    const std::size_t p = rest / C, h = (rest % C) / hs, d = rest % hs;
    const std::size_t b = bt / T_, t = bt % T_;
    const float value = load(src, p * positions * C + ((b * NH + h) * T_ + t) * hs + d);
    dst[i] = accumulate ? T(load(dst, i) + value) : T(value);
  }
}

// One warp per row r = (b·NH + h)·T + t of the [B·NH, T, T] scores: P = softmax over s ≤ t, zero
// above the diagonal; lse[r] = log Σ_{s≤t} exp(S).
template <class T, class A>
__global__ void causal_softmax_forward_kernel(T* probs, A* lse, const A* scores, int rows, int T_) {
  const int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
  if (row >= rows) return;
  const int t = row % T_;
  const A* s_row = scores + static_cast<std::size_t>(row) * T_;
  T* p_row = probs + static_cast<std::size_t>(row) * T_;
  A row_max = -INFINITY;
  for (int s = lane; s <= t; s += 32) row_max = fmax(row_max, s_row[s]);
  row_max = warp_max(row_max);
  A sum = 0;
  for (int s = lane; s <= t; s += 32) sum += exp(s_row[s] - row_max);
  sum = warp_sum(sum);
  for (int s = lane; s < T_; s += 32) p_row[s] = s <= t ? T(exp(s_row[s] - row_max) / sum) : T(0);
  if (lse && lane == 0) lse[row] = row_max + log(sum);
}

// One warp per row: P = exp(S − lse) (masked), dS = P∘(dP − Σ_s P·dP)·scale.
template <class T, class A>
__global__ void causal_softmax_backward_kernel(T* probs, T* dscores, const A* scores,
                                               const A* dprobs, const A* lse, int rows, int T_,
                                               A scale) {
  const int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
  if (row >= rows) return;
  const int t = row % T_;
  const std::size_t base = static_cast<std::size_t>(row) * T_;
  const A row_lse = lse[row];
  A dot = 0;
  for (int s = lane; s <= t; s += 32) dot += exp(scores[base + s] - row_lse) * dprobs[base + s];
  dot = warp_sum(dot);
  for (int s = lane; s < T_; s += 32) {
    if (s <= t) {
      const A p = exp(scores[base + s] - row_lse);
      probs[base + s] = T(p);
      dscores[base + s] = T(p * (dprobs[base + s] - dot) * scale);
    } else {
      probs[base + s] = T(0);
      dscores[base + s] = T(0);
    }
  }
}

// One block per head: the query of position t against the cached keys and values of 0..t.
template <class T, class A>
__global__ void attention_decode_kernel(T* out, const T* qkv, int t, int C, int NH, A* scores,
                                        A scale) {
  __shared__ A shared[32];
  const int h = blockIdx.x, hs = C / NH;
  const std::size_t row = 3 * std::size_t(C);
  const T* q = qkv + std::size_t(t) * row + std::size_t(h) * hs;
  A* p = scores + std::size_t(h) * (t + 1);
  A local_max = -INFINITY;
  for (int s = threadIdx.x; s <= t; s += blockDim.x) {
    const T* k = qkv + std::size_t(s) * row + C + std::size_t(h) * hs;
    A dot = 0;
    for (int d = 0; d < hs; ++d) dot += A(load(q, d)) * A(load(k, d));
    p[s] = dot * scale;
    local_max = fmax(local_max, p[s]);
  }
  const A row_max = block_max(local_max, shared);
  A local_sum = 0;
  for (int s = threadIdx.x; s <= t; s += blockDim.x) {
    p[s] = exp(p[s] - row_max);
    local_sum += p[s];
  }
  const A sum = block_sum(local_sum, shared);  // synchronises: every p[s] is visible below
  for (int d = threadIdx.x; d < hs; d += blockDim.x) {
    A y = 0;
    for (int s = 0; s <= t; ++s) {
      y += p[s] * A(load(qkv, std::size_t(s) * row + 2 * std::size_t(C) + std::size_t(h) * hs + d));
    }
    out[std::size_t(h) * hs + d] = T(y / sum);
  }
}

}  // namespace kernels

struct AttentionOps {
 private:
  static std::size_t aligned(std::size_t bytes) { return (bytes + 255) / 256 * 256; }

  // The scratch of one call, carved for its actual (B, T): head-major q | k | v, y (or dy),
  // dq | dk | dv, fp32 scores and dprobs, storage-typed probs and dscores.
  template <class T, class A>
  struct Workspace {
    T *q, *k, *v, *y, *dq, *dk, *dv, *probs, *dscores;
    A *scores, *dprobs;

    static std::size_t bytes(std::size_t positions, std::size_t score_count, std::size_t C) {
      return 3 * aligned(positions * C * sizeof(T)) + aligned(positions * C * sizeof(T)) +
             3 * aligned(positions * C * sizeof(T)) + 2 * aligned(score_count * sizeof(A)) +
             2 * aligned(score_count * sizeof(T));
    }

    Workspace(T* scratch, int B, int T_, int C, int NH) {
      const std::size_t positions = std::size_t(B) * T_, P = positions * C;
      const std::size_t score_count = std::size_t(B) * NH * T_ * T_;
      auto* at = reinterpret_cast<unsigned char*>(scratch);
      auto take = [&](std::size_t bytes) {
        unsigned char* ptr = at;
        at += aligned(bytes);
        return ptr;
      };
      // q, k, v (and dq, dk, dv) must be consecutive at P-element offsets: split/merge index
      // part p at p·P.
      q = reinterpret_cast<T*>(take(3 * P * sizeof(T)));
      k = q + P;
      v = q + 2 * P;
      y = reinterpret_cast<T*>(take(P * sizeof(T)));
      dq = reinterpret_cast<T*>(take(3 * P * sizeof(T)));
      dk = dq + P;
      dv = dq + 2 * P;
      scores = reinterpret_cast<A*>(take(score_count * sizeof(A)));
      dprobs = reinterpret_cast<A*>(take(score_count * sizeof(A)));
      probs = reinterpret_cast<T*>(take(score_count * sizeof(T)));
      dscores = reinterpret_cast<T*>(take(score_count * sizeof(T)));
    }
  };

  // The batched product over heads: C[T_q, N] = op(A) · op(B) per head.
  template <class X, class Y, class Z>
  static void heads_gemm(bool trans_a, bool trans_b, int M, int N, int K, const X* a,
                         std::int64_t lda, std::int64_t stride_a, const Y* b, std::int64_t ldb,
                         std::int64_t stride_b, Z* c, std::int64_t ldc, std::int64_t stride_c,
                         int batch, float alpha) {
    GemmCall call;
    call.trans_a = trans_a, call.trans_b = trans_b;
    call.M = M, call.N = N, call.K = K;
    call.A = a, call.a_type = data_type<X>(), call.lda = lda, call.stride_a = stride_a;
    call.B = b, call.b_type = data_type<Y>(), call.ldb = ldb, call.stride_b = stride_b;
    call.C = c, call.c_type = data_type<Z>(), call.ldc = ldc, call.stride_c = stride_c;
    call.batch = batch;
    call.alpha = alpha;
    gemm(call);
  }

  static int warp_rows_blocks(int rows) { return (rows + 7) / 8; }

 public:
  // Scratch elements of T for sequences up to max_T and batches of up to `positions` = B·T.
  template <class T>
  static std::size_t attention_scratch_size(std::size_t positions, int max_T, int C, int NH) {
    const std::size_t score_count = positions * std::size_t(NH) * std::size_t(max_T);
    const std::size_t bytes = Workspace<T, float>::bytes(positions, score_count, std::size_t(C));
    return (bytes + 256 + sizeof(T) - 1) / sizeof(T);
  }

  // qkv[B, T, 3C] holds q | k | v, head h in columns [h·hs, (h+1)·hs) of each; out[B, T, C].
  // lse[B, NH, T] is written when non-null. scratch: attention_scratch_size elements.
  template <class T, class A>
  static void attention_forward(T* out, A* lse, const T* qkv, int B, int T_, int C, int NH,
                                T* scratch) {
    static_assert(std::is_same_v<A, float>, "CUDA attention accumulates in fp32");
    const int hs = C / NH, heads = B * NH, rows = heads * T_;
    if (rows == 0) return;
    const std::size_t positions = std::size_t(B) * T_;
    Workspace<T, A> w(scratch, B, T_, C, NH);
    cudaStream_t stream = context().stream();
    kernels::split_heads_kernel<<<elementwise_blocks(positions * 3 * C), 256, 0, stream>>>(
        w.q, qkv, B, T_, NH, hs, 3);
    LIGHTGPT_CUDA_CHECK_LAUNCH();
    const std::int64_t head_stride = std::int64_t(T_) * hs, score_stride = std::int64_t(T_) * T_;
    const float scale = 1.0f / std::sqrt(float(hs));
    heads_gemm(false, true, T_, T_, hs, w.q, hs, head_stride, w.k, hs, head_stride, w.scores, T_,
               score_stride, heads, scale);
    kernels::causal_softmax_forward_kernel<<<warp_rows_blocks(rows), 256, 0, stream>>>(
        w.probs, lse, w.scores, rows, T_);
    LIGHTGPT_CUDA_CHECK_LAUNCH();
    heads_gemm(false, false, T_, hs, T_, w.probs, T_, score_stride, w.v, hs, head_stride, w.y, hs,
               head_stride, heads, 1.0f);
    kernels::merge_heads_kernel<<<elementwise_blocks(positions * C), 256, 0, stream>>>(
        out, false, w.y, B, T_, NH, hs, 1);
    LIGHTGPT_CUDA_CHECK_LAUNCH();
  }

  template <class T, class A>
  static void attention_backward(Grad<T> dqkv, const T* dout, const T* qkv, const T* out,
                                 const A* lse, int B, int T_, int C, int NH, T* scratch) {
    static_assert(std::is_same_v<A, float>, "CUDA attention accumulates in fp32");
    (void)out;  // Σ_s P·dP replaces <dy, y>: the same value, from the row at hand
    const int hs = C / NH, heads = B * NH, rows = heads * T_;
    if (rows == 0) return;
    const std::size_t positions = std::size_t(B) * T_;
    Workspace<T, A> w(scratch, B, T_, C, NH);
    cudaStream_t stream = context().stream();
    kernels::split_heads_kernel<<<elementwise_blocks(positions * 3 * C), 256, 0, stream>>>(
        w.q, qkv, B, T_, NH, hs, 3);
    LIGHTGPT_CUDA_CHECK_LAUNCH();
    kernels::split_heads_kernel<<<elementwise_blocks(positions * C), 256, 0, stream>>>(
        w.y, dout, B, T_, NH, hs, 1);
    LIGHTGPT_CUDA_CHECK_LAUNCH();
    const std::int64_t head_stride = std::int64_t(T_) * hs, score_stride = std::int64_t(T_) * T_;
    const float scale = 1.0f / std::sqrt(float(hs));
    heads_gemm(false, true, T_, T_, hs, w.q, hs, head_stride, w.k, hs, head_stride, w.scores, T_,
               score_stride, heads, scale);
    heads_gemm(false, true, T_, T_, hs, w.y, hs, head_stride, w.v, hs, head_stride, w.dprobs, T_,
               score_stride, heads, 1.0f);
    kernels::causal_softmax_backward_kernel<<<warp_rows_blocks(rows), 256, 0, stream>>>(
        w.probs, w.dscores, w.scores, w.dprobs, lse, rows, T_, A(scale));
    LIGHTGPT_CUDA_CHECK_LAUNCH();
    // dV = Pᵀ·dY, dQ = dS·K, dK = dSᵀ·Q.
    heads_gemm(true, false, T_, hs, T_, w.probs, T_, score_stride, w.y, hs, head_stride, w.dv, hs,
               head_stride, heads, 1.0f);
    heads_gemm(false, false, T_, hs, T_, w.dscores, T_, score_stride, w.k, hs, head_stride, w.dq,
               hs, head_stride, heads, 1.0f);
    heads_gemm(true, false, T_, hs, T_, w.dscores, T_, score_stride, w.q, hs, head_stride, w.dk, hs,
               head_stride, heads, 1.0f);
    kernels::merge_heads_kernel<<<elementwise_blocks(positions * 3 * C), 256, 0, stream>>>(
        dqkv.ptr, dqkv.mode == Mode::accumulate, w.dq, B, T_, NH, hs, 3);
    LIGHTGPT_CUDA_CHECK_LAUNCH();
  }

  // Incremental decoding, one sequence: the query of position t against the cached keys and
  // values of positions 0..t (qkv: rows of q | k | v for 0..t, device memory); out[C]. `scores`
  // holds NH · (t + 1) values of device scratch.
  template <class T, class A>
  static void attention_decode(T* out, const T* qkv, int t, int C, int NH, A* scores) {
    const int hs = C / NH;
    kernels::attention_decode_kernel<<<NH, 128, 0, context().stream()>>>(out, qkv, t, C, NH, scores,
                                                                         A(1) / std::sqrt(A(hs)));
    LIGHTGPT_CUDA_CHECK_LAUNCH();
  }
};

}  // namespace lightgpt::cuda

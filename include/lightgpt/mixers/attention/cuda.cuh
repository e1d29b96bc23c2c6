// Attention's kernels on the GPU (AttentionKernels<Cuda>): causal multi-head attention, the simple
// verifiable path (a flash-style kernel is a later work item): q | k | v are split into head-major
// [B, NH, T, hs] fp32 copies, the products S = scale·Q·Kᵀ and Y = P·V are strided-batched cuBLASLt
// GEMMs over the B·NH heads, and one fused kernel (a warp per query row) applies the causal mask
// and the softmax in fp32, turning S into P in place and writing the row's log-sum-exp for
// backward. The backward recomputes S, forms dP = dY·Vᵀ, turns them in place into P and dS = P∘(dP
// − <dy, y>)·scale in one kernel, then dV = Pᵀ·dY, dQ = dS·K, dK = dSᵀ·Q, and rounds dq | dk | dv
// once while merging the heads.
//
// Everything between the split and the merge is fp32, for every storage type, because that is
// what the CPU does (mixers/attention/cpu.hpp widens 16-bit q | k | v, runs its fp32 kernel and
// rounds the output once), so the two backends round alike. In particular P and dS stay fp32: in
// fp16, dS = P∘(dP − <dy, y>)·scale of a small gradient lies in the subnormal range and would
// lose most of its bits. cuBLASLt has no product of an fp32 operand with a bf16/fp16 one (mixed
// A/B types exist for FP8 only), so the 16-bit q | k | v and dy are widened when split into heads
// (exactly) rather than P and dS narrowed; every product is then fp32 × fp32 with fp32 output,
// on TF32 tensor cores when Context::allow_tf32() — which keeps the widened 16-bit values exact
// (a 10-bit mantissa holds them) and rounds only P and dS, with fp32's exponent range. The price
// is TF32 instead of 16-bit tensor-core products and fp32 head copies (7·B·T·C floats).
//
// Scratch (attention_scratch_size) is sized by the call's own (B, T): the head copies, and two
// fp32 arrays of B·NH·T² scores (S then P; dP then dS). The masked upper triangle is computed and
// discarded, the price of the simple path.
//
// Decoding one token (attention_decode) is two launches: a block per (head, chunk of 64 cached
// positions) whose warps each read whole contiguous key and value rows (one position per warp,
// lanes along the head's columns) and write the chunk's maximum, exp-sum and unnormalised output;
// then a block per head combines the chunks' partial softmaxes in chunk order.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "../../backend/contract.hpp"
#include "../../backend/cuda/context.cuh"
#include "../../backend/cuda/gemm.cuh"
#include "../../backend/cuda/reduce.cuh"
#include "../../core/precision.hpp"
#include "kernels.hpp"

namespace lightgpt::cuda {
namespace kernels {

// The head split: a block per (group of 8 head segments, position t, sequence b); warps take the
// segments (p, h) of a row, lanes its hs contiguous columns, so reads and writes are coalesced and
// the only division is one 32-bit split of the segment index. Grid y and z stride over T and B.
constexpr int kSplitWarps = 8;

// src [B, T, parts, NH, hs] (rows of parts·C) -> part p of dst at dst + p·B·T·C, [B, NH, T, hs],
// widened to fp32.
template <class T>
__global__ void split_heads_kernel(float* dst, const T* src, int B, int seq_len, int NH, int hs,
                                   int parts) {
  const int segment = blockIdx.x * kSplitWarps + threadIdx.y;
  if (segment >= parts * NH) return;
  const int p = segment / NH, h = segment - p * NH;
  const std::size_t C = std::size_t(NH) * hs, positions = std::size_t(B) * seq_len;
  for (int b = blockIdx.z; b < B; b += gridDim.z) {
    for (int t = blockIdx.y; t < seq_len; t += gridDim.y) {
      const T* from = src + ((std::size_t(b) * seq_len + t) * parts * NH + segment) * hs;
      float* to = dst + p * positions * C + ((std::size_t(b) * NH + h) * seq_len + t) * hs;
      for (int d = threadIdx.x; d < hs; d += 32) to[d] = load(from, d);
    }
  }
}

// The inverse of split_heads, rounding to the storage type as it stores (or adds) into rows of
// parts·C.
template <class T>
__global__ void merge_heads_kernel(T* dst, bool accumulate, const float* src, int B, int seq_len,
                                   int NH, int hs, int parts) {
  const int segment = blockIdx.x * kSplitWarps + threadIdx.y;
  if (segment >= parts * NH) return;
  const int p = segment / NH, h = segment - p * NH;
  const std::size_t C = std::size_t(NH) * hs, positions = std::size_t(B) * seq_len;
  for (int b = blockIdx.z; b < B; b += gridDim.z) {
    for (int t = blockIdx.y; t < seq_len; t += gridDim.y) {
      T* to = dst + ((std::size_t(b) * seq_len + t) * parts * NH + segment) * hs;
      const float* from = src + p * positions * C + ((std::size_t(b) * NH + h) * seq_len + t) * hs;
      for (int d = threadIdx.x; d < hs; d += 32) {
        to[d] = accumulate ? T(load(to, d) + from[d]) : T(from[d]);
      }
    }
  }
}

// One warp per row r = (b·NH + h)·T + t of the [B·NH, T, T] scores, in place: S becomes
// P = softmax over s ≤ t, zero above the diagonal; lse[r] = log Σ_{s≤t} exp(S).
template <class A>
__global__ void causal_softmax_forward_kernel(A* scores, A* lse, int rows, int seq_len) {
  const int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
  if (row >= rows) return;
  const int t = row % seq_len;
  A* s_row = scores + static_cast<std::size_t>(row) * seq_len;
  A row_max = -INFINITY;
  for (int s = lane; s <= t; s += 32) row_max = fmax(row_max, s_row[s]);
  row_max = warp_max(row_max);
  A sum = 0;
  for (int s = lane; s <= t; s += 32) sum += exp(s_row[s] - row_max);
  sum = warp_sum(sum);
  // Each lane rewrites only the elements it read: in place is safe.
  for (int s = lane; s < seq_len; s += 32) s_row[s] = s <= t ? exp(s_row[s] - row_max) / sum : A(0);
  if (lse && lane == 0) lse[row] = row_max + log(sum);
}

// The softmax backward's operands: the [B·NH, T, T] fp32 scores S and dP (rewritten in place into
// P and dS), the forward's log-sum-exps, and the forward output y and its gradient dy ([B, T, C],
// storage type) for the CPU's <dy, y> = Σ_s P·dP.
template <class T, class A>
struct SoftmaxBackwardArgs {
  A* scores;
  A* dprobs;
  const A* lse;
  const T* out;
  const T* dout;
  int rows, seq_len, NH, hs;
  A scale;
};

// One warp per row: P = exp(S − lse) (masked), dS = P∘(dP − <dy, y>)·scale, as the CPU computes it
// (<dy, y> from the stored output, its lanes along the head's contiguous columns).
template <class T, class A>
__global__ void causal_softmax_backward_kernel(SoftmaxBackwardArgs<T, A> args) {
  const int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
  if (row >= args.rows) return;
  const int seq_len = args.seq_len, t = row % seq_len, bh = row / seq_len;
  const int b = bh / args.NH, h = bh - b * args.NH;
  const std::size_t at =
      (std::size_t(b) * seq_len + t) * args.NH * args.hs + std::size_t(h) * args.hs;
  A dot = 0;
  for (int d = lane; d < args.hs; d += 32)
    dot += A(load(args.dout, at + d)) * load(args.out, at + d);
  dot = warp_sum(dot);
  const std::size_t base = static_cast<std::size_t>(row) * seq_len;
  const A row_lse = args.lse[row];
  // Each lane rewrites only the elements it reads: in place is safe.
  for (int s = lane; s < seq_len; s += 32) {
    const A p = s <= t ? exp(args.scores[base + s] - row_lse) : A(0);
    args.dprobs[base + s] = p * (args.dprobs[base + s] - dot) * args.scale;
    args.scores[base + s] = p;
  }
}

constexpr int kDecodeChunk = 64;  // cached positions per block
constexpr int kDecodeWarps = 8;

// Partial softmax of head blockIdx.y over cached positions [chunk·64, chunk·64 + 64) ∩ [0, t]:
// partials[(h·chunks + chunk)·(hs + 2) + ...] = Σ_s exp(S_s − m)·v_s (hs values), m = max S_s,
// Σ_s exp(S_s − m). Shared memory: q (hs), the chunk's scores (64), one hs row per warp.
template <class T>
__global__ void attention_decode_partials_kernel(float* partials, const T* qkv, int t, int C,
                                                 int NH, float scale) {
  extern __shared__ float shared[];
  const int chunk = blockIdx.x, h = blockIdx.y, hs = C / NH;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int begin = chunk * kDecodeChunk, count = min(kDecodeChunk, t + 1 - begin);
  const std::size_t row = 3 * std::size_t(C), head = std::size_t(h) * hs;
  float* q = shared;
  float* scores = q + hs;
  float* acc = scores + kDecodeChunk + warp * hs;
  for (int d = threadIdx.x; d < hs; d += blockDim.x)
    q[d] = load(qkv, std::size_t(t) * row + head + d);
  __syncthreads();
  for (int i = warp; i < count; i += kDecodeWarps) {
    const T* k = qkv + std::size_t(begin + i) * row + C + head;
    float dot = 0;
    for (int d = lane; d < hs; d += 32) dot += q[d] * load(k, d);
    dot = warp_sum(dot);
    if (lane == 0) scores[i] = dot * scale;
  }
  __syncthreads();
  // Every warp reduces the chunk's scores itself (same order, same result): no further barrier.
  float m = -INFINITY;
  for (int i = lane; i < count; i += 32) m = fmax(m, scores[i]);
  m = warp_max(m);
  float l = 0;
  for (int i = lane; i < count; i += 32) l += exp(scores[i] - m);
  l = warp_sum(l);
  for (int d = lane; d < hs; d += 32) acc[d] = 0;
  for (int i = warp; i < count; i += kDecodeWarps) {
    const float p = exp(scores[i] - m);
    const T* v = qkv + std::size_t(begin + i) * row + 2 * std::size_t(C) + head;
    for (int d = lane; d < hs; d += 32) acc[d] += p * load(v, d);
  }
  __syncthreads();
  float* record = partials + (std::size_t(h) * gridDim.x + chunk) * (hs + 2);
  const float* warp_rows = scores + kDecodeChunk;
  for (int d = threadIdx.x; d < hs; d += blockDim.x) {
    float y = 0;
    for (int w = 0; w < kDecodeWarps; ++w) y += warp_rows[w * hs + d];
    record[d] = y;
  }
  if (threadIdx.x == 0) {
    record[hs] = m;
    record[hs + 1] = l;
  }
}

// Head blockIdx.x: out = Σ_c exp(m_c − M)·o_c / Σ_c exp(m_c − M)·l_c over the chunks in order.
template <class T>
__global__ void attention_decode_combine_kernel(T* out, const float* partials, int chunks, int hs) {
  const float* records = partials + std::size_t(blockIdx.x) * chunks * (hs + 2);
  float m = -INFINITY;
  for (int c = 0; c < chunks; ++c) m = fmax(m, records[std::size_t(c) * (hs + 2) + hs]);
  float l = 0;
  for (int c = 0; c < chunks; ++c) {
    const float* record = records + std::size_t(c) * (hs + 2);
    l += record[hs + 1] * exp(record[hs] - m);
  }
  for (int d = threadIdx.x; d < hs; d += blockDim.x) {
    float y = 0;
    for (int c = 0; c < chunks; ++c) {
      const float* record = records + std::size_t(c) * (hs + 2);
      y += record[d] * exp(record[hs] - m);
    }
    out[std::size_t(blockIdx.x) * hs + d] = T(y / l);
  }
}

}  // namespace kernels

struct AttentionOps {
 private:
  static constexpr std::size_t kAlign = 256;
  static std::size_t aligned(std::size_t bytes) { return (bytes + kAlign - 1) / kAlign * kAlign; }

  // The scratch of one call, carved for its (B, T), all fp32: head-major q | k | v, y (or dy),
  // dq | dk | dv, scores (S, then P in place) and dprobs (dP, then dS in place, backward only).
  struct Workspace {
    float *q, *k, *v, *y, *dq, *dk, *dv, *scores, *dprobs;

    static std::size_t bytes(std::size_t positions, std::size_t score_count, std::size_t C) {
      const std::size_t head_copy = positions * C * sizeof(float);
      return aligned(3 * head_copy) + aligned(head_copy) + aligned(3 * head_copy) +
             2 * aligned(score_count * sizeof(float));
    }

    Workspace(void* scratch, int B, int seq_len, int C, int NH) {
      const std::size_t positions = std::size_t(B) * seq_len, P = positions * C;
      const std::size_t score_count = positions * NH * seq_len;
      const auto address = reinterpret_cast<std::uintptr_t>(scratch);
      auto* at = reinterpret_cast<unsigned char*>((address + kAlign - 1) / kAlign * kAlign);
      auto take = [&](std::size_t bytes) {
        float* ptr = reinterpret_cast<float*>(at);
        at += aligned(bytes);
        return ptr;
      };
      // q, k, v (and dq, dk, dv) must be consecutive at P-element offsets: split/merge index
      // part p at p·P.
      q = take(3 * P * sizeof(float));
      k = q + P;
      v = q + 2 * P;
      y = take(P * sizeof(float));
      dq = take(3 * P * sizeof(float));
      dk = dq + P;
      dv = dq + 2 * P;
      scores = take(score_count * sizeof(float));
      dprobs = take(score_count * sizeof(float));
    }
  };

  // The batched fp32 product over heads: C[M, N] = alpha · op(A) · op(B) per head.
  static void heads_gemm(bool trans_a, bool trans_b, int M, int N, int K, const float* a,
                         std::int64_t lda, std::int64_t stride_a, const float* b, std::int64_t ldb,
                         std::int64_t stride_b, float* c, std::int64_t ldc, std::int64_t stride_c,
                         int batch, float alpha) {
    GemmCall call;
    call.trans_a = trans_a, call.trans_b = trans_b;
    call.M = M, call.N = N, call.K = K;
    call.A = a, call.a_type = CUDA_R_32F, call.lda = lda, call.stride_a = stride_a;
    call.B = b, call.b_type = CUDA_R_32F, call.ldb = ldb, call.stride_b = stride_b;
    call.C = c, call.c_type = CUDA_R_32F, call.ldc = ldc, call.stride_c = stride_c;
    call.batch = batch;
    call.alpha = alpha;
    gemm(call);
  }

  // split_heads / merge_heads over `parts` parts of B·T rows.
  template <class T>
  static void split_heads(float* dst, const T* src, int B, int seq_len, int NH, int hs, int parts) {
    kernels::split_heads_kernel<<<heads_grid(B, seq_len, NH, parts), dim3(32, kernels::kSplitWarps),
                                  0, context().stream()>>>(dst, src, B, seq_len, NH, hs, parts);
    LIGHTGPT_CUDA_CHECK_LAUNCH();
  }
  template <class T>
  static void merge_heads(T* dst, bool accumulate, const float* src, int B, int seq_len, int NH,
                          int hs, int parts) {
    kernels::merge_heads_kernel<<<heads_grid(B, seq_len, NH, parts), dim3(32, kernels::kSplitWarps),
                                  0, context().stream()>>>(dst, accumulate, src, B, seq_len, NH, hs,
                                                           parts);
    LIGHTGPT_CUDA_CHECK_LAUNCH();
  }
  static dim3 heads_grid(int B, int seq_len, int NH, int parts) {
    const unsigned segments = (parts * NH + kernels::kSplitWarps - 1) / kernels::kSplitWarps;
    return dim3(segments, static_cast<unsigned>(std::min(seq_len, 65535)),
                static_cast<unsigned>(std::min(B, 65535)));
  }

  static int warp_rows_blocks(int rows) { return (rows + 7) / 8; }

 public:
  // Scratch elements of T for calls of up to `positions` = B·T positions whose sequences are at
  // most seq_len long: the caller passes the T of its batch, not the model's max_T (the B·NH·T²
  // scores dominate, so sizing them by max_T would waste (max_T / T)×). Host-only arithmetic.
  template <class T>
  static std::size_t attention_scratch_size(std::size_t positions, int seq_len, int C, int NH) {
    const std::size_t score_count = positions * std::size_t(NH) * std::size_t(seq_len);
    const std::size_t bytes = Workspace::bytes(positions, score_count, std::size_t(C));
    return (bytes + kAlign + sizeof(T) - 1) / sizeof(T);  // kAlign: room to align the base
  }

  // Device scratch values (A) that attention_decode needs for positions 0..positions−1: one
  // record of hs + 2 floats per (head, chunk of kDecodeChunk positions).
  template <class A>
  static std::size_t attention_decode_scratch_size(int positions, int C, int NH) {
    const std::size_t chunks =
        (std::size_t(positions) + kernels::kDecodeChunk - 1) / kernels::kDecodeChunk;
    return std::size_t(NH) * chunks * (std::size_t(C / NH) + 2);
  }

  // qkv[B, T, 3C] holds q | k | v, head h in columns [h·hs, (h+1)·hs) of each; out[B, T, C].
  // lse[B, NH, T] is written when non-null. scratch: attention_scratch_size(B·T, T, C, NH)
  // elements (or more).
  template <class T, class A>
  static void attention_forward(T* out, A* lse, const T* qkv, int B, int seq_len, int C, int NH,
                                T* scratch) {
    static_assert(std::is_same_v<A, float>, "CUDA attention accumulates in fp32");
    const int hs = C / NH, heads = B * NH, rows = heads * seq_len;
    if (rows == 0) return;
    Workspace w(scratch, B, seq_len, C, NH);
    split_heads(w.q, qkv, B, seq_len, NH, hs, 3);
    const std::int64_t head_stride = std::int64_t(seq_len) * hs,
                       score_stride = std::int64_t(seq_len) * seq_len;
    const float scale = 1.0f / std::sqrt(float(hs));
    heads_gemm(false, true, seq_len, seq_len, hs, w.q, hs, head_stride, w.k, hs, head_stride,
               w.scores, seq_len, score_stride, heads, scale);
    kernels::causal_softmax_forward_kernel<<<warp_rows_blocks(rows), 256, 0, context().stream()>>>(
        w.scores, lse, rows, seq_len);
    LIGHTGPT_CUDA_CHECK_LAUNCH();
    heads_gemm(false, false, seq_len, hs, seq_len, w.scores, seq_len, score_stride, w.v, hs,
               head_stride, w.y, hs, head_stride, heads, 1.0f);
    merge_heads(out, false, w.y, B, seq_len, NH, hs, 1);
  }

  // out is the forward's output (for <dy, y>, as on the CPU); scratch as for the forward.
  template <class T, class A>
  static void attention_backward(Grad<T> dqkv, const T* dout, const T* qkv, const T* out,
                                 const A* lse, int B, int seq_len, int C, int NH, T* scratch) {
    static_assert(std::is_same_v<A, float>, "CUDA attention accumulates in fp32");
    const int hs = C / NH, heads = B * NH, rows = heads * seq_len;
    if (rows == 0) return;
    Workspace w(scratch, B, seq_len, C, NH);
    split_heads(w.q, qkv, B, seq_len, NH, hs, 3);
    split_heads(w.y, dout, B, seq_len, NH, hs, 1);
    const std::int64_t head_stride = std::int64_t(seq_len) * hs,
                       score_stride = std::int64_t(seq_len) * seq_len;
    const float scale = 1.0f / std::sqrt(float(hs));
    heads_gemm(false, true, seq_len, seq_len, hs, w.q, hs, head_stride, w.k, hs, head_stride,
               w.scores, seq_len, score_stride, heads, scale);
    heads_gemm(false, true, seq_len, seq_len, hs, w.y, hs, head_stride, w.v, hs, head_stride,
               w.dprobs, seq_len, score_stride, heads, 1.0f);
    const kernels::SoftmaxBackwardArgs<T, A> args{w.scores, w.dprobs, lse, out, dout,
                                                  rows,     seq_len,  NH,  hs,  scale};
    kernels::causal_softmax_backward_kernel<<<warp_rows_blocks(rows), 256, 0, context().stream()>>>(
        args);
    LIGHTGPT_CUDA_CHECK_LAUNCH();
    // dV = Pᵀ·dY, dQ = dS·K, dK = dSᵀ·Q.
    heads_gemm(true, false, seq_len, hs, seq_len, w.scores, seq_len, score_stride, w.y, hs,
               head_stride, w.dv, hs, head_stride, heads, 1.0f);
    heads_gemm(false, false, seq_len, hs, seq_len, w.dprobs, seq_len, score_stride, w.k, hs,
               head_stride, w.dq, hs, head_stride, heads, 1.0f);
    heads_gemm(true, false, seq_len, hs, seq_len, w.dprobs, seq_len, score_stride, w.q, hs,
               head_stride, w.dk, hs, head_stride, heads, 1.0f);
    merge_heads(dqkv.ptr, dqkv.mode == Mode::accumulate, w.dq, B, seq_len, NH, hs, 3);
  }

  // Incremental decoding, one sequence: the query of position t against the cached keys and
  // values of positions 0..t (qkv: rows of q | k | v for 0..t, device memory); out[C]. `scratch`
  // holds attention_decode_scratch_size(t + 1, C, NH) values of device memory.
  template <class T, class A>
  static void attention_decode(T* out, const T* qkv, int t, int C, int NH, A* scratch) {
    static_assert(std::is_same_v<A, float>, "CUDA attention accumulates in fp32");
    Context& ctx = context();
    const int hs = C / NH, chunks = (t + kernels::kDecodeChunk) / kernels::kDecodeChunk;
    const std::size_t shared =
        (std::size_t(hs) * (1 + kernels::kDecodeWarps) + kernels::kDecodeChunk) * sizeof(float);
    LIGHTGPT_CHECK(shared <= ctx.shared_memory_per_block(), "attention_decode: head size ", hs,
                   " needs ", shared, " bytes of shared memory per block, the device has ",
                   ctx.shared_memory_per_block());
    kernels::attention_decode_partials_kernel<<<dim3(chunks, NH), 32 * kernels::kDecodeWarps,
                                                shared, ctx.stream()>>>(
        scratch, qkv, t, C, NH, 1.0f / std::sqrt(float(hs)));
    LIGHTGPT_CUDA_CHECK_LAUNCH();
    kernels::attention_decode_combine_kernel<<<NH, 64, 0, ctx.stream()>>>(out, scratch, chunks, hs);
    LIGHTGPT_CUDA_CHECK_LAUNCH();
  }
};

}  // namespace lightgpt::cuda

namespace lightgpt {

template <>
struct AttentionKernels<Cuda> : cuda::AttentionOps {};

}  // namespace lightgpt

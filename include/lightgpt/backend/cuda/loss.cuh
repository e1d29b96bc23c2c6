// Softmax cross-entropy over the tied output layer on the GPU, fused the llm.c way (the formulas
// of backend/cpu/loss.hpp): one block per row finds the row's log-sum-exp with per-thread online
// softmax states combined in a fixed tree order, and the backward rewrites the logits in place into
// their gradient, so probabilities are never stored. Columns V..Vp-1 (vocabulary padding) are
// excluded from the softmax and receive zero gradient. Results that the model reads on the host
// (the mean loss) are reduced on the device and copied back as one value. CoCoNT (loss/cocont.hpp)
// enters as a soft target for the first depth in the same backward, and as a per-position KL in
// the forward; both touch only the ≤ K listed entries of a row. The n-gram view is a template
// parameter (NgramTargets<A> in practice) so this header does not depend on the loss module.
#pragma once

#include <cuda_runtime.h>

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "../../core/elementwise.hpp"
#include "../../core/error.hpp"
#include "../../core/losses.hpp"
#include "../../core/precision.hpp"
#include "context.cuh"
#include "reduce.cuh"

namespace lightgpt::cuda {
namespace kernels {

constexpr int kRowThreads = 512;

// Folds the online-softmax state (max2, sum2) into (max, sum).
template <class A>
__device__ inline void combine_softmax(A& max, A& sum, A max2, A sum2) {
  if (max2 == A(-INFINITY)) return;
  if (max == A(-INFINITY)) {
    max = max2;
    sum = sum2;
    return;
  }
  const A new_max = fmax(max, max2);
  sum = sum * exp(max - new_max) + sum2 * exp(max2 - new_max);
  max = new_max;
}

template <class T, class A>
__global__ void row_logsumexp_kernel(A* lse, const T* logits, int V, int Vp) {
  __shared__ A shared_max[32], shared_sum[32];
  const T* row = logits + static_cast<std::size_t>(blockIdx.x) * Vp;
  lightgpt::detail::OnlineSoftmax<A> state;
  for (int v = threadIdx.x; v < V; v += blockDim.x) state.add(A(load(row, v)));
  A max = state.max, sum = state.sum;
  for (int offset = 16; offset > 0; offset /= 2) {
    const A max2 = __shfl_xor_sync(0xffffffffu, max, offset);
    const A sum2 = __shfl_xor_sync(0xffffffffu, sum, offset);
    combine_softmax(max, sum, max2, sum2);
  }
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane == 0) {
    shared_max[warp] = max;
    shared_sum[warp] = sum;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    A total_max = A(-INFINITY), total_sum = 0;
    for (int w = 0; w < static_cast<int>(blockDim.x / 32); ++w) {
      combine_softmax(total_max, total_sum, shared_max[w], shared_sum[w]);
    }
    lse[blockIdx.x] = total_max + log(total_sum);
  }
}

template <class T, class A, class Tok>
__global__ void cross_entropy_kernel(A* losses, const A* lse, const T* logits, const Tok* targets,
                                     int row_stride, int B, int seq_len, int Vp) {
  const int n = blockIdx.x * blockDim.x + threadIdx.x;
  if (n >= B * seq_len) return;
  const std::size_t target = static_cast<std::size_t>(
      targets[static_cast<std::size_t>(n / seq_len) * row_stride + n % seq_len]);
  losses[n] = lse[n] - A(load(logits, static_cast<std::size_t>(n) * Vp + target));
}

template <class A>
struct DepthWeights {
  A weight[kMaxMtpDepth];
};

// Where a row's soft target comes from: no CoCoNT, or NgramTargets<A> (device pointers).
struct NoNgram {
  float alpha = 0;
  const std::int32_t* offsets = nullptr;
  const std::int32_t* classes = nullptr;
  const float* probs = nullptr;
  const float* neg_entropy = nullptr;
};

template <class T, class A, class Tok, class Ngram>
__global__ void cross_entropy_backward_kernel(T* logits, const A* lse, const Tok* targets,
                                              int row_stride, DepthWeights<A> weights, int depths,
                                              A scale, A scaled_total, int seq_len, int V, int Vp,
                                              const Tok* contexts, Ngram ngram) {
  const int n = blockIdx.x;
  T* row = logits + static_cast<std::size_t>(n) * Vp;
  const A row_lse = lse[n];
  for (int v = threadIdx.x; v < Vp; v += blockDim.x) {
    row[v] = v < V ? T(scaled_total * exp(A(load(row, v)) - row_lse)) : T(0);
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    // One thread, in the CPU's order: depth targets may coincide with each other and with listed
    // ids, and every update rounds to the storage type.
    const std::size_t position = static_cast<std::size_t>(n / seq_len) * row_stride + n % seq_len;
    const Tok* row_targets = targets + position;
    int begin = 0, end = 0;
    if (ngram.offsets != nullptr && contexts != nullptr) {
      begin = ngram.offsets[contexts[position]];
      end = ngram.offsets[contexts[position] + 1];
    }
    const A smoothing = begin < end ? A(ngram.alpha) : A(0);
    for (int j = 0; j < depths; ++j) {
      const std::size_t target = static_cast<std::size_t>(row_targets[j]);
      const A weight =
          j == 0 ? scale * weights.weight[0] * (A(1) - smoothing) : scale * weights.weight[j];
      row[target] = T(A(load(row, target)) - weight);
    }
    if (smoothing != A(0)) {
      const A weight = scale * weights.weight[0] * smoothing;
      for (int k = begin; k < end; ++k) {
        const std::size_t id = static_cast<std::size_t>(ngram.classes[k]);
        row[id] = T(A(load(row, id)) - weight * A(ngram.probs[k]));
      }
    }
  }
}

// kl[n] = KL(P_ngram(· | a) ‖ softmax(logits_n)) and kl[N + n] = 1 for a context a with a list;
// both 0 otherwise.
template <class T, class A, class Tok, class Ngram>
__global__ void ngram_kl_kernel(A* kl, const A* lse, const T* logits, int stride,
                                const Tok* contexts, int row_stride, Ngram ngram, int B,
                                int seq_len) {
  const int N = B * seq_len;
  const int n = blockIdx.x * blockDim.x + threadIdx.x;
  if (n >= N) return;
  const int a =
      static_cast<int>(contexts[static_cast<std::size_t>(n / seq_len) * row_stride + n % seq_len]);
  const int begin = ngram.offsets[a], end = ngram.offsets[a + 1];
  const T* row = logits + static_cast<std::size_t>(n) * stride;
  A cross = 0;
  for (int k = begin; k < end; ++k) {
    cross += A(ngram.probs[k]) * (A(load(row, std::size_t(ngram.classes[k]))) - lse[n]);
  }
  kl[n] = begin < end ? A(ngram.neg_entropy[a]) - cross : A(0);
  kl[N + n] = begin < end ? A(1) : A(0);
}

template <class T, class A>
__global__ void log_softmax_kernel(A* out, const T* logits, const A* lse, int N, int V, int Vp) {
  const std::size_t total = static_cast<std::size_t>(N) * V;
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < total;
       i += std::size_t(gridDim.x) * blockDim.x) {
    const std::size_t n = i / V, v = i % V;
    out[i] = A(load(logits, n * Vp + v)) - lse[n];
  }
}

// One block: result[0] = Σ values, in double, in a fixed order.
template <class A>
__global__ void sum_kernel(double* result, const A* values, std::size_t count) {
  __shared__ double shared[32];
  double sum = 0;
  for (std::size_t i = threadIdx.x; i < count; i += blockDim.x) sum += double(values[i]);
  sum = block_sum(sum, shared);
  if (threadIdx.x == 0) result[0] = sum;
}

// *dst += the mean that LossOps::mean returns, from the sum sum_kernel left in *sum.
template <class A>
__global__ void add_mean_kernel(double* dst, const double* sum, std::size_t count) {
  dst[0] += double(A(sum[0] / double(count)));
}

}  // namespace kernels

struct LossOps {
  template <class T, class A>
  static void row_logsumexp(A* lse, const T* logits, int N, int V, int Vp) {
    if (N == 0) return;
    kernels::row_logsumexp_kernel<<<N, kernels::kRowThreads, 0, context().stream()>>>(lse, logits,
                                                                                      V, Vp);
    LIGHTGPT_CUDA_CHECK_LAUNCH();
  }

  // losses[b·T + t] = lse - logit of the target token targets[b·row_stride + t] (device memory).
  template <class T, class A, class Tok>
  static void cross_entropy(A* losses, const A* lse, const T* logits, const Tok* targets,
                            int row_stride, int B, int seq_len, int Vp) {
    const int N = B * seq_len;
    if (N == 0) return;
    kernels::cross_entropy_kernel<<<(N + 255) / 256, 256, 0, context().stream()>>>(
        losses, lse, logits, targets, row_stride, B, seq_len, Vp);
    LIGHTGPT_CUDA_CHECK_LAUNCH();
  }

  // In place: logits -> scale · (W · softmax - Σ_j weight_j · onehot(target_j)), W = Σ_j weight_j.
  // depth_weights is host memory (depths ≤ kMaxMtpDepth values), targets device memory.
  template <class T, class A, class Tok>
  static void cross_entropy_backward_inplace(T* logits, const A* lse, const Tok* targets,
                                             int row_stride, const A* depth_weights, int depths,
                                             A scale, int B, int seq_len, int V, int Vp) {
    cross_entropy_backward_inplace(logits, lse, targets, row_stride, depth_weights, depths, scale,
                                   B, seq_len, V, Vp, static_cast<const Tok*>(nullptr),
                                   kernels::NoNgram{});
  }

  // With CoCoNT (`ngram` non-empty, device memory), depth 0 of a position whose context token
  // contexts[b·row_stride + t] has a list scores the soft target (1 - α)·onehot + α·P_ngram.
  template <class T, class A, class Tok, class Ngram>
  static void cross_entropy_backward_inplace(T* logits, const A* lse, const Tok* targets,
                                             int row_stride, const A* depth_weights, int depths,
                                             A scale, int B, int seq_len, int V, int Vp,
                                             const Tok* contexts, Ngram ngram) {
    LIGHTGPT_CHECK(depths >= 1 && depths <= kMaxMtpDepth,
                   "cross_entropy_backward_inplace: ", depths, " depths, at most ", kMaxMtpDepth);
    const int N = B * seq_len;
    if (N == 0) return;
    kernels::DepthWeights<A> weights{};
    A total_weight = 0;
    for (int j = 0; j < depths; ++j) {
      weights.weight[j] = depth_weights[j];
      total_weight += depth_weights[j];
    }
    kernels::cross_entropy_backward_kernel<<<N, kernels::kRowThreads, 0, context().stream()>>>(
        logits, lse, targets, row_stride, weights, depths, scale, scale * total_weight, seq_len, V,
        Vp, contexts, ngram);
    LIGHTGPT_CUDA_CHECK_LAUNCH();
  }

  // kl[n] = KL(P_ngram(· | context_n) ‖ softmax(logits_n)), kl[N + n] = 1 where the context has
  // a list (both 0 where it has none); `stride` is the row length of logits.
  template <class T, class A, class Tok, class Ngram>
  static void ngram_kl(A* kl, const A* lse, const T* logits, int stride, const Tok* contexts,
                       int row_stride, Ngram ngram, int B, int seq_len) {
    const int N = B * seq_len;
    if (N == 0) return;
    kernels::ngram_kl_kernel<<<(N + 255) / 256, 256, 0, context().stream()>>>(
        kl, lse, logits, stride, contexts, row_stride, ngram, B, seq_len);
    LIGHTGPT_CUDA_CHECK_LAUNCH();
  }

  // out[n, v] = logit - lse for the V real tokens (out is N x V, densely packed, device memory).
  template <class T, class A>
  static void log_softmax(A* out, const T* logits, const A* lse, int N, int V, int Vp) {
    const std::size_t count = static_cast<std::size_t>(N) * V;
    if (count == 0) return;
    kernels::log_softmax_kernel<<<elementwise_blocks(count), 256, 0, context().stream()>>>(
        out, logits, lse, N, V, Vp);
    LIGHTGPT_CUDA_CHECK_LAUNCH();
  }

  // Mean of count device values, returned on the host (deterministic: fixed reduction order).
  template <class A>
  static A mean(const A* values, std::size_t count) {
    LIGHTGPT_CHECK(count > 0, "mean of zero values");
    Context& ctx = context();
    auto* result = static_cast<double*>(ctx.scratch(Scratch::scalar, sizeof(double)));
    kernels::sum_kernel<<<1, 1024, 0, ctx.stream()>>>(result, values, count);
    LIGHTGPT_CUDA_CHECK_LAUNCH();
    double sum = 0;
    LIGHTGPT_CUDA_CHECK(
        cudaMemcpyAsync(&sum, result, sizeof(double), cudaMemcpyDeviceToHost, ctx.stream()));
    ctx.synchronize();
    return A(sum / double(count));
  }

  // *dst += mean(values, count), dst in device memory: a step's loss, summed where it stays.
  template <class A>
  static void add_mean(double* dst, const A* values, std::size_t count) {
    LIGHTGPT_CHECK(count > 0, "mean of zero values");
    Context& ctx = context();
    auto* sum = static_cast<double*>(ctx.scratch(Scratch::scalar, sizeof(double)));
    kernels::sum_kernel<<<1, 1024, 0, ctx.stream()>>>(sum, values, count);
    LIGHTGPT_CUDA_CHECK_LAUNCH();
    kernels::add_mean_kernel<A><<<1, 1, 0, ctx.stream()>>>(dst, sum, count);
    LIGHTGPT_CUDA_CHECK_LAUNCH();
  }
};

}  // namespace lightgpt::cuda

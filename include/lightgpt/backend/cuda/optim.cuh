// Optimizer kernels on the GPU: the global sum of squares of the gradients for norm clipping, and
// the AdamW update of backend/cpu/optim.hpp fused into one element-wise pass that writes the fp32
// master weights and the working (storage-typed) copy. The sum of squares is two passes of
// cub::BlockReduce in double over a grid fixed by the SM count (partials in a grow-only context
// slot, no atomics), so it is run-to-run deterministic. Not cub::DeviceReduce: its kernels name
// ::cuda::std types in nvcc's generated host stubs, which then fail to compile in any translation
// unit that says `using namespace lightgpt;` (lightgpt::cuda makes the name `cuda` ambiguous).
// The clip decision (core/update_status.hpp) runs in one thread and the update kernels read its
// scale and skip flag from device memory, so an update needs no host round trip.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cub/block/block_reduce.cuh>

#include "../../core/precision.hpp"
#include "../../core/update_status.hpp"
#include "../contract.hpp"
#include "context.cuh"

namespace lightgpt::cuda {
namespace kernels {

constexpr int kSquaresThreads = 256;

// Pass 1 (partials[blockIdx.x] = this block's grid-stride share) and pass 2 (one block over the
// partials) of the sum of squares.
template <class A>
__global__ void sum_of_squares_kernel(double* partials, const A* values, std::size_t count) {
  using Reduce = cub::BlockReduce<double, kSquaresThreads>;
  __shared__ typename Reduce::TempStorage temp;
  double sum = 0;
  for (std::size_t i = blockIdx.x * std::size_t(kSquaresThreads) + threadIdx.x; i < count;
       i += std::size_t(gridDim.x) * kSquaresThreads) {
    sum += double(values[i]) * double(values[i]);
  }
  sum = Reduce(temp).Sum(sum);
  if (threadIdx.x == 0) partials[blockIdx.x] = sum;
}

template <class A>
__global__ void sum_partials_kernel(A* result, const A* partials, int count) {
  using Reduce = cub::BlockReduce<A, kSquaresThreads>;
  __shared__ typename Reduce::TempStorage temp;
  A sum = 0;
  for (int i = threadIdx.x; i < count; i += kSquaresThreads) sum += partials[i];
  sum = Reduce(temp).Sum(sum);
  if (threadIdx.x == 0) result[0] = sum;
}

template <class T, class A>
__device__ inline void adamw_element(T* params, A* master, A* m, A* v, const A* grads,
                                     std::size_t i, const AdamWStep<A>& step) {
  const A g = grads[i] * step.grad_scale;
  const A m_i = step.beta1 * m[i] + (A(1) - step.beta1) * g;
  const A v_i = step.beta2 * v[i] + (A(1) - step.beta2) * g * g;
  m[i] = m_i;
  v[i] = v_i;
  const A m_hat = m_i / step.bias_correction1;
  const A v_hat = v_i / step.bias_correction2;
  A w = master[i];
  w -= step.lr * (m_hat / (sqrt(v_hat) + step.eps) + step.weight_decay * w);
  master[i] = w;
  params[i] = T(w);
}

// Templated only so that its definition may sit in a header; D is double.
template <class D>
__global__ void decide_update_kernel(D* status, D grad_multiplier, D grad_clip, const D* watched,
                                     int watched_count) {
  decide_update(status, grad_multiplier, grad_clip, watched, watched_count);
}

// A status (may be null: the step's own grad_scale, never skipped) sets the gradient scale; true
// when it says skip.
template <class A>
__device__ inline bool apply_status(AdamWStep<A>& step, const double* status) {
  if (status == nullptr) return false;
  step.grad_scale = A(status[UpdateStatus::scale]);
  return status[UpdateStatus::skip] != 0;
}

template <class T, class A>
__global__ void adamw_kernel(T* params, A* master, A* m, A* v, const A* grads, std::size_t count,
                             AdamWStep<A> step, const double* status) {
  if (apply_status(step, status)) return;
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < count;
       i += std::size_t(gridDim.x) * blockDim.x) {
    adamw_element(params, master, m, v, grads, i, step);
  }
}

// One warp per row: the CPU's adamw_update_sparse_rows, row by row.
constexpr int kSparseRowWarps = 8;

template <class T, class A>
__global__ void adamw_sparse_rows_kernel(T* params, A* master, A* m, A* v, const A* grads,
                                         std::int64_t* seen, std::size_t rows, std::size_t width,
                                         std::int64_t step_index, int window, AdamWStep<A> step,
                                         const double* status) {
  if (apply_status(step, status)) return;
  const std::size_t r = blockIdx.x * std::size_t(kSparseRowWarps) + threadIdx.x / 32;
  if (r >= rows) return;  // the whole warp leaves together
  const int lane = threadIdx.x % 32;
  const std::size_t begin = r * width, end = begin + width;
  bool mine = false;
  for (std::size_t c = begin + lane; c < end; c += 32) mine |= grads[c] != A(0);
  const bool has_gradient = __any_sync(0xffffffffu, mine);
  const std::int64_t last = seen[r];
  if (has_gradient) {
    const std::int64_t skipped = step_index - 1 - (last + window);
    if (skipped > 0) {
      const A decay1 = A(pow(double(step.beta1), double(skipped)));
      const A decay2 = A(pow(double(step.beta2), double(skipped)));
      for (std::size_t c = begin + lane; c < end; c += 32) {
        m[c] *= decay1;
        v[c] *= decay2;
      }
    }
    __syncwarp();
    if (lane == 0) seen[r] = step_index;
  } else if (step_index - last > window) {
    return;
  }
  for (std::size_t c = begin + lane; c < end; c += 32) {
    adamw_element(params, master, m, v, grads, c, step);
  }
}

}  // namespace kernels

struct OptimOps {
  // Σ values² in double into *dst (device memory), where decide_update reads it.
  template <class A>
  static void sum_of_squares_into(double* dst, const A* values, std::size_t count) {
    Context& ctx = context();
    if (count == 0) {
      LIGHTGPT_CUDA_CHECK(cudaMemsetAsync(dst, 0, sizeof(double), ctx.stream()));
      return;
    }
    const std::size_t needed = (count + kernels::kSquaresThreads - 1) / kernels::kSquaresThreads;
    const int blocks = static_cast<int>(
        std::min<std::size_t>(needed, static_cast<std::size_t>(ctx.sm_count()) * 4));
    auto* partials = static_cast<double*>(ctx.scratch(Scratch::cub_temp, sizeof(double) * blocks));
    kernels::sum_of_squares_kernel<<<blocks, kernels::kSquaresThreads, 0, ctx.stream()>>>(
        partials, values, count);
    LIGHTGPT_CUDA_CHECK_LAUNCH();
    kernels::sum_partials_kernel<<<1, kernels::kSquaresThreads, 0, ctx.stream()>>>(dst, partials,
                                                                                   blocks);
    LIGHTGPT_CUDA_CHECK_LAUNCH();
  }

  // Σ values² in double, returned on the host.
  template <class A>
  static double sum_of_squares(const A* values, std::size_t count) {
    if (count == 0) return 0.0;
    Context& ctx = context();
    auto* result = static_cast<double*>(ctx.scratch(Scratch::scalar, sizeof(double)));
    sum_of_squares_into(result, values, count);
    double sum = 0;
    LIGHTGPT_CUDA_CHECK(
        cudaMemcpyAsync(&sum, result, sizeof(double), cudaMemcpyDeviceToHost, ctx.stream()));
    ctx.synchronize();
    return sum;
  }

  // The status' norm, scale and skip slots from its squares slot, on the device.
  static void decide_update(double* status, double grad_multiplier, double grad_clip,
                            const double* watched, int watched_count) {
    kernels::decide_update_kernel<double><<<1, 1, 0, context().stream()>>>(
        status, grad_multiplier, grad_clip, watched, watched_count);
    LIGHTGPT_CUDA_CHECK_LAUNCH();
  }

  // master/m/v/grads are fp32; params is the working copy, which may be the same memory as master
  // when the two types agree. With an update status (device memory) the gradient scale is its
  // scale slot, and nothing is done when it says skip.
  template <class T, class A>
  static void adamw_update(T* params, A* master, A* m, A* v, const A* grads, std::size_t count,
                           const AdamWStep<A>& step, const double* status = nullptr) {
    if (count == 0) return;
    kernels::adamw_kernel<<<elementwise_blocks(count), 256, 0, context().stream()>>>(
        params, master, m, v, grads, count, step, status);
    LIGHTGPT_CUDA_CHECK_LAUNCH();
  }

  // The CPU's adamw_update_sparse_rows (backend/cpu/optim.hpp); seen and status are device
  // memory.
  template <class T, class A>
  static void adamw_update_sparse_rows(T* params, A* master, A* m, A* v, const A* grads,
                                       std::int64_t* seen, std::size_t rows, std::size_t width,
                                       std::int64_t step_index, int window,
                                       const AdamWStep<A>& step, const double* status = nullptr) {
    if (rows == 0) return;
    const auto blocks = static_cast<unsigned>((rows + kernels::kSparseRowWarps - 1) /
                                              kernels::kSparseRowWarps);
    kernels::adamw_sparse_rows_kernel<<<blocks, 32 * kernels::kSparseRowWarps, 0,
                                        context().stream()>>>(params, master, m, v, grads, seen,
                                                              rows, width, step_index, window,
                                                              step, status);
    LIGHTGPT_CUDA_CHECK_LAUNCH();
  }
};

}  // namespace lightgpt::cuda

// Deterministic reductions shared by the CUDA kernel families. Warp and block reductions combine in
// a fixed tree order (no atomics), so a result depends only on the input and the launch shape.
// Column sums over many rows (bias, LayerNorm and position-embedding gradients) run in two passes:
// fixed row chunks write fp32 partials to context scratch, then one thread per column adds the
// chunks in order and applies the output mode. The chunk count depends on the SM count only.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "../../core/precision.hpp"
#include "context.cuh"

namespace lightgpt::cuda::kernels {

template <class A>
__device__ inline A warp_sum(A value) {
  for (int offset = 16; offset > 0; offset /= 2)
    value += __shfl_xor_sync(0xffffffffu, value, offset);
  return value;
}
template <class A>
__device__ inline A warp_max(A value) {
  for (int offset = 16; offset > 0; offset /= 2) {
    value = fmax(value, __shfl_xor_sync(0xffffffffu, value, offset));
  }
  return value;
}

// Sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets the result.
// `shared` holds 32 values; the call synchronises the block.
template <class A>
__device__ inline A block_sum(A value, A* shared) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  value = warp_sum(value);
  __syncthreads();
  if (lane == 0) shared[warp] = value;
  __syncthreads();
  value = lane < warps ? shared[lane] : A(0);
  return warp_sum(value);
}
template <class A>
__device__ inline A block_max(A value, A* shared) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  value = warp_max(value);
  __syncthreads();
  if (lane == 0) shared[warp] = value;
  __syncthreads();
  value = lane < warps ? shared[lane] : A(-INFINITY);
  return warp_max(value);
}

template <class T>
__device__ inline float load(const T* ptr, std::size_t i) {
  return static_cast<float>(lightgpt::detail::widen(ptr[i]));
}

// Column sum functor: a += row n, column c of a row-major [N, C] matrix.
template <class T>
struct RowSum {
  const T* values;
  int C;
  __device__ void operator()(int n, int c, float& a, float&) const {
    a += load(values, static_cast<std::size_t>(n) * C + c);
  }
};

constexpr int kColumnTile = 32;  // columns per block (threadIdx.x)
constexpr int kRowLanes = 8;     // rows walked in parallel per block (threadIdx.y)

template <class F>
__global__ void column_partials_kernel(float* partials, F f, int N, int C, int rows_per_chunk) {
  __shared__ float shared_a[kRowLanes][kColumnTile + 1];
  __shared__ float shared_b[kRowLanes][kColumnTile + 1];
  const int c = blockIdx.x * kColumnTile + threadIdx.x;
  const int chunk = blockIdx.y;
  const int begin = chunk * rows_per_chunk;
  const int end = min(N, begin + rows_per_chunk);
  float a = 0.0f, b = 0.0f;
  if (c < C) {
    for (int n = begin + threadIdx.y; n < end; n += kRowLanes) f(n, c, a, b);
  }
  shared_a[threadIdx.y][threadIdx.x] = a;
  shared_b[threadIdx.y][threadIdx.x] = b;
  __syncthreads();
  if (threadIdx.y == 0 && c < C) {
    float sum_a = 0.0f, sum_b = 0.0f;
    for (int lane = 0; lane < kRowLanes; ++lane) {
      sum_a += shared_a[lane][threadIdx.x];
      sum_b += shared_b[lane][threadIdx.x];
    }
    partials[(static_cast<std::size_t>(chunk) * 2) * C + c] = sum_a;
    partials[(static_cast<std::size_t>(chunk) * 2 + 1) * C + c] = sum_b;
  }
}

template <class A>
__global__ void column_finish_kernel(A* out_a, bool accumulate_a, A* out_b, bool accumulate_b,
                                     const A* partials, int chunks, int C) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= C) return;
  A sum_a = 0, sum_b = 0;
  for (int chunk = 0; chunk < chunks; ++chunk) {
    sum_a += partials[(static_cast<std::size_t>(chunk) * 2) * C + c];
    sum_b += partials[(static_cast<std::size_t>(chunk) * 2 + 1) * C + c];
  }
  if (out_a) out_a[c] = accumulate_a ? out_a[c] + sum_a : sum_a;
  if (out_b) out_b[c] = accumulate_b ? out_b[c] + sum_b : sum_b;
}

// out_a[c] (+)= Σ_n a(n, c) and out_b[c] (+)= Σ_n b(n, c) for c < C, where f(n, c, a, b) adds row
// n's contributions; either output may be null.
template <class F>
void column_sums(F f, int N, int C, float* out_a, bool accumulate_a, float* out_b,
                 bool accumulate_b) {
  if (C == 0) return;
  Context& ctx = context();
  const int tiles = (C + kColumnTile - 1) / kColumnTile;
  int chunks = (4 * ctx.sm_count() + tiles - 1) / tiles;
  const int max_chunks = (N + 4 * kRowLanes - 1) / (4 * kRowLanes);  // ≥ 32 rows per chunk
  chunks = std::max(1, std::min({chunks, max_chunks, 65535}));
  const int rows_per_chunk = (N + chunks - 1) / chunks;
  float* partials = static_cast<float*>(
      ctx.scratch(Scratch::column_partials, sizeof(float) * 2 * std::size_t(chunks) * C));
  column_partials_kernel<<<dim3(tiles, chunks), dim3(kColumnTile, kRowLanes), 0, ctx.stream()>>>(
      partials, f, N, C, rows_per_chunk);
  LIGHTGPT_CUDA_CHECK_LAUNCH();
  column_finish_kernel<<<(C + 255) / 256, 256, 0, ctx.stream()>>>(
      out_a, accumulate_a, out_b, accumulate_b, partials, chunks, C);
  LIGHTGPT_CUDA_CHECK_LAUNCH();
}

template <class T>
__global__ void add_bias_rows_kernel(T* out, const T* bias, int M, int N, std::int64_t ldc) {
  const std::size_t total = static_cast<std::size_t>(M) * N;
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < total;
       i += std::size_t(gridDim.x) * blockDim.x) {
    const std::size_t row = i / N, col = i % N;
    T& target = out[row * ldc + col];
    target = T(load(&target, 0) + load(bias, col));
  }
}

// C[M, N] += bias per row, for a bias the GEMM epilogue cannot take (misaligned).
inline void add_bias_rows(void* C, cudaDataType_t type, const void* bias, int M, int N,
                          std::int64_t ldc) {
  const unsigned blocks = elementwise_blocks(static_cast<std::size_t>(M) * N);
  cudaStream_t stream = context().stream();
  if (type == CUDA_R_32F) {
    add_bias_rows_kernel<<<blocks, 256, 0, stream>>>(static_cast<float*>(C),
                                                     static_cast<const float*>(bias), M, N, ldc);
  } else if (type == CUDA_R_16BF) {
    add_bias_rows_kernel<<<blocks, 256, 0, stream>>>(static_cast<bfloat16*>(C),
                                                     static_cast<const bfloat16*>(bias), M, N, ldc);
  } else {
    add_bias_rows_kernel<<<blocks, 256, 0, stream>>>(static_cast<float16*>(C),
                                                     static_cast<const float16*>(bias), M, N, ldc);
  }
  LIGHTGPT_CUDA_CHECK_LAUNCH();
}

}  // namespace lightgpt::cuda::kernels

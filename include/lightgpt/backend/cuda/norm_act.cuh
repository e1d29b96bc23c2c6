// LayerNorm, GELU, residual add and the token + position embedding on the GPU, the formulas of
// backend/cpu/norm_act.hpp (and the shared per-element math of core/elementwise.hpp). Row-wise
// work is one warp per row; every sum over rows (LayerNorm parameter gradients, the position
// embedding gradient) is a deterministic column sum (reduce.cuh). The token embedding gradient is
// a scatter made deterministic by sorting (token, position) pairs with CUB's stable radix sort and
// letting the first position of each token sum its run in position order.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <cub/device/device_radix_sort.cuh>
#include <type_traits>

#include "../../core/elementwise.hpp"
#include "../../core/error.hpp"
#include "../../core/precision.hpp"
#include "../contract.hpp"
#include "context.cuh"
#include "reduce.cuh"

namespace lightgpt::cuda {
namespace kernels {

constexpr int kRowsPerBlock = 8;  // warps per 256-thread block, one row each

template <class T, class A>
__device__ inline void store(T* ptr, std::size_t i, A value, bool accumulate) {
  ptr[i] = accumulate ? T(A(load(ptr, i)) + value) : T(value);
}

template <class T, class A>
__global__ void layernorm_forward_kernel(T* out, A* mean, A* rstd, const T* in, const T* weight,
                                         const T* bias, int N, int C, A eps) {
  const int row = blockIdx.x * kRowsPerBlock + threadIdx.x / 32, lane = threadIdx.x % 32;
  if (row >= N) return;
  const T* x = in + static_cast<std::size_t>(row) * C;
  A sum = 0;
  for (int c = lane; c < C; c += 32) sum += A(load(x, c));
  const A m = warp_sum(sum) / A(C);
  A squares = 0;
  for (int c = lane; c < C; c += 32) {
    const A centred = A(load(x, c)) - m;
    squares += centred * centred;
  }
  const A s = A(1) / sqrt(warp_sum(squares) / A(C) + eps);
  T* y = out + static_cast<std::size_t>(row) * C;
  for (int c = lane; c < C; c += 32) {
    y[c] = T((A(load(x, c)) - m) * s * A(load(weight, c)) + A(load(bias, c)));
  }
  if (lane == 0) {
    if (mean) mean[row] = m;
    if (rstd) rstd[row] = s;
  }
}

template <class T, class A>
__global__ void layernorm_backward_input_kernel(T* din, bool accumulate, const T* dout, const T* in,
                                                const T* weight, const A* mean, const A* rstd,
                                                int N, int C) {
  const int row = blockIdx.x * kRowsPerBlock + threadIdx.x / 32, lane = threadIdx.x % 32;
  if (row >= N) return;
  const std::size_t base = static_cast<std::size_t>(row) * C;
  const A m = mean[row], s = rstd[row];
  A dnorm_sum = 0, dnorm_norm_sum = 0;
  for (int c = lane; c < C; c += 32) {
    const A norm = (A(load(in, base + c)) - m) * s;
    const A dnorm = A(load(dout, base + c)) * A(load(weight, c));
    dnorm_sum += dnorm;
    dnorm_norm_sum += dnorm * norm;
  }
  const A dnorm_mean = warp_sum(dnorm_sum) / A(C);
  const A dnorm_norm_mean = warp_sum(dnorm_norm_sum) / A(C);
  for (int c = lane; c < C; c += 32) {
    const A norm = (A(load(in, base + c)) - m) * s;
    const A dnorm = A(load(dout, base + c)) * A(load(weight, c));
    store(din, base + c, (dnorm - dnorm_mean - norm * dnorm_norm_mean) * s, accumulate);
  }
}

// Column sums for the LayerNorm parameter gradients: a = dout·norm, b = dout.
template <class T, class A>
struct LayerNormParameterGrads {
  const T* dout;
  const T* in;
  const A* mean;
  const A* rstd;
  int C;
  __device__ void operator()(int n, int c, float& a, float& b) const {
    const std::size_t i = static_cast<std::size_t>(n) * C + c;
    const float g = load(dout, i);
    a += g * ((load(in, i) - float(mean[n])) * float(rstd[n]));
    b += g;
  }
};

template <class T>
__global__ void gelu_forward_kernel(T* out, const T* in, std::size_t count) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < count;
       i += std::size_t(gridDim.x) * blockDim.x) {
    out[i] = T(lightgpt::detail::gelu(load(in, i)));
  }
}

template <class T>
__global__ void gelu_backward_kernel(T* din, bool accumulate, const T* dout, const T* in,
                                     std::size_t count) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < count;
       i += std::size_t(gridDim.x) * blockDim.x) {
    const float grad = load(dout, i) * lightgpt::detail::gelu_grad(load(in, i));
    store(din, i, grad, accumulate);
  }
}

template <class T>
__global__ void residual_forward_kernel(T* out, const T* a, const T* b, std::size_t count) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < count;
       i += std::size_t(gridDim.x) * blockDim.x) {
    out[i] = T(load(a, i) + load(b, i));
  }
}

template <class T>
__global__ void dropout_kernel(T* out, const T* in, std::size_t count, float scale,
                               std::uint64_t seed, std::uint32_t threshold) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < count;
       i += std::size_t(gridDim.x) * blockDim.x) {
    const bool keep = lightgpt::detail::dropout_keep(seed, i, threshold);
    out[i] = keep ? T(load(in, i) * scale) : T(0.0f);
  }
}

template <class T, class Tok>
__global__ void embedding_forward_kernel(T* out, const Tok* tokens, int row_stride, const T* wte,
                                         const T* wpe, int B, int T_, int C) {
  const std::size_t total = static_cast<std::size_t>(B) * T_ * C;
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < total;
       i += std::size_t(gridDim.x) * blockDim.x) {
    const std::size_t bt = i / C, c = i % C;
    const int b = static_cast<int>(bt / T_), t = static_cast<int>(bt % T_);
    const std::size_t token = static_cast<std::size_t>(tokens[std::size_t(b) * row_stride + t]);
    out[i] = T(load(wte, token * C + c) + load(wpe, std::size_t(t) * C + c));
  }
}

// dwpe[t, c] += Σ_b dout[b, t, c], summed over b in order.
template <class T, class G>
__global__ void position_embedding_backward_kernel(G* dwpe, const T* dout, int B, int T_, int C) {
  const std::size_t total = static_cast<std::size_t>(T_) * C;
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < total;
       i += std::size_t(gridDim.x) * blockDim.x) {
    float sum = 0.0f;
    for (int b = 0; b < B; ++b) sum += load(dout, std::size_t(b) * total + i);
    dwpe[i] = G(float(dwpe[i]) + sum);
  }
}

template <class Tok>
__global__ void gather_tokens_kernel(std::int32_t* keys, std::int32_t* positions, const Tok* tokens,
                                     int row_stride, int B, int T_) {
  const int n = blockIdx.x * blockDim.x + threadIdx.x;
  if (n >= B * T_) return;
  keys[n] = static_cast<std::int32_t>(tokens[std::size_t(n / T_) * row_stride + n % T_]);
  positions[n] = n;
}

// One block per sorted entry; the first entry of each token's run sums the run (positions in
// increasing order) and adds it to the token's row.
template <class T, class G>
__global__ void token_embedding_backward_kernel(G* dwte, const T* dout,
                                                const std::int32_t* sorted_tokens,
                                                const std::int32_t* sorted_positions, int N,
                                                int C) {
  const int i = blockIdx.x;
  const std::int32_t token = sorted_tokens[i];
  if (i > 0 && sorted_tokens[i - 1] == token) return;
  int end = i + 1;
  while (end < N && sorted_tokens[end] == token) ++end;
  G* row = dwte + static_cast<std::size_t>(token) * C;
  for (int c = threadIdx.x; c < C; c += blockDim.x) {
    float sum = 0.0f;
    for (int j = i; j < end; ++j) sum += load(dout, std::size_t(sorted_positions[j]) * C + c);
    row[c] = G(float(row[c]) + sum);
  }
}

}  // namespace kernels

struct NormActOps {
  static constexpr double kLayerNormEps = 1e-5;

  template <class T, class A>
  static void layernorm_forward(T* out, A* mean, A* rstd, const T* in, const T* weight,
                                const T* bias, int N, int C) {
    if (N == 0) return;
    const int blocks = (N + kernels::kRowsPerBlock - 1) / kernels::kRowsPerBlock;
    kernels::
        layernorm_forward_kernel<<<blocks, 32 * kernels::kRowsPerBlock, 0, context().stream()>>>(
            out, mean, rstd, in, weight, bias, N, C, A(kLayerNormEps));
    LIGHTGPT_CUDA_CHECK_LAUNCH();
  }

  template <class T, class G, class A>
  static void layernorm_backward(Grad<T> din, Grad<G> dweight, Grad<G> dbias, const T* dout,
                                 const T* in, const T* weight, const A* mean, const A* rstd, int N,
                                 int C) {
    static_assert(std::is_same_v<G, float>, "CUDA layers keep fp32 parameter gradients");
    if (N == 0) return;
    if (din) {
      const int blocks = (N + kernels::kRowsPerBlock - 1) / kernels::kRowsPerBlock;
      kernels::layernorm_backward_input_kernel<<<blocks, 32 * kernels::kRowsPerBlock, 0,
                                                 context().stream()>>>(
          din.ptr, din.mode == Mode::accumulate, dout, in, weight, mean, rstd, N, C);
      LIGHTGPT_CUDA_CHECK_LAUNCH();
    }
    if (dweight || dbias) {
      kernels::column_sums(kernels::LayerNormParameterGrads<T, A>{dout, in, mean, rstd, C}, N, C,
                           dweight.ptr, dweight.mode == Mode::accumulate, dbias.ptr,
                           dbias.mode == Mode::accumulate);
    }
  }

  template <class T>
  static void gelu_forward(T* out, const T* in, std::size_t count) {
    if (count == 0) return;
    kernels::gelu_forward_kernel<<<elementwise_blocks(count), 256, 0, context().stream()>>>(out, in,
                                                                                            count);
    LIGHTGPT_CUDA_CHECK_LAUNCH();
  }

  template <class T>
  static void gelu_backward(Grad<T> din, const T* dout, const T* in, std::size_t count) {
    if (count == 0) return;
    kernels::gelu_backward_kernel<<<elementwise_blocks(count), 256, 0, context().stream()>>>(
        din.ptr, din.mode == Mode::accumulate, dout, in, count);
    LIGHTGPT_CUDA_CHECK_LAUNCH();
  }

  template <class T>
  static void residual_forward(T* out, const T* a, const T* b, std::size_t count) {
    if (count == 0) return;
    kernels::residual_forward_kernel<<<elementwise_blocks(count), 256, 0, context().stream()>>>(
        out, a, b, count);
    LIGHTGPT_CUDA_CHECK_LAUNCH();
  }

  // Inverted dropout with the CPU's mask (dropout_keep of (seed, i)); out may alias in.
  template <class T>
  static void dropout(T* out, const T* in, std::size_t count, double p, std::uint64_t seed) {
    if (count == 0) return;
    kernels::dropout_kernel<<<elementwise_blocks(count), 256, 0, context().stream()>>>(
        out, in, count, float(1.0 / (1.0 - p)), seed, lightgpt::detail::dropout_threshold(p));
    LIGHTGPT_CUDA_CHECK_LAUNCH();
  }

  // out[b, t, :] = wte[token(b, t)] + wpe[t]; row b of the tokens (device memory) starts at
  // b * row_stride.
  template <class T, class Tok>
  static void embedding_forward(T* out, const Tok* tokens, int row_stride, const T* wte,
                                const T* wpe, int B, int T_, int C) {
    const std::size_t count = static_cast<std::size_t>(B) * T_ * C;
    if (count == 0) return;
    kernels::embedding_forward_kernel<<<elementwise_blocks(count), 256, 0, context().stream()>>>(
        out, tokens, row_stride, wte, wpe, B, T_, C);
    LIGHTGPT_CUDA_CHECK_LAUNCH();
  }

  // Adds dout into the rows of wte and wpe that the forward read; deterministic (no atomics).
  template <class T, class G, class Tok>
  static void embedding_backward(Grad<G> dwte, Grad<G> dwpe, const T* dout, const Tok* tokens,
                                 int row_stride, int B, int T_, int C) {
    LIGHTGPT_CHECK(dwte.mode == Mode::accumulate && dwpe.mode == Mode::accumulate,
                   "embedding_backward only accumulates");
    const int N = B * T_;
    if (N == 0) return;
    Context& ctx = context();
    cudaStream_t stream = ctx.stream();
    if (dwpe) {
      const std::size_t count = static_cast<std::size_t>(T_) * C;
      kernels::position_embedding_backward_kernel<<<elementwise_blocks(count), 256, 0, stream>>>(
          dwpe.ptr, dout, B, T_, C);
      LIGHTGPT_CUDA_CHECK_LAUNCH();
    }
    if (!dwte) return;
    // Scratch: keys and positions in, sorted keys and positions out, then CUB's temporary storage.
    const std::size_t pairs_bytes = (4 * sizeof(std::int32_t) * std::size_t(N) + 255) / 256 * 256;
    std::size_t temp_bytes = 0;
    LIGHTGPT_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(
        nullptr, temp_bytes, static_cast<const std::int32_t*>(nullptr),
        static_cast<std::int32_t*>(nullptr), static_cast<const std::int32_t*>(nullptr),
        static_cast<std::int32_t*>(nullptr), N, 0, 32, stream));
    auto* base =
        static_cast<unsigned char*>(ctx.scratch(Scratch::token_sort, pairs_bytes + temp_bytes));
    auto* keys = reinterpret_cast<std::int32_t*>(base);
    std::int32_t* positions = keys + N;
    std::int32_t* sorted_keys = keys + 2 * N;
    std::int32_t* sorted_positions = keys + 3 * N;
    kernels::gather_tokens_kernel<<<(N + 255) / 256, 256, 0, stream>>>(keys, positions, tokens,
                                                                       row_stride, B, T_);
    LIGHTGPT_CUDA_CHECK_LAUNCH();
    LIGHTGPT_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(base + pairs_bytes, temp_bytes, keys,
                                                        sorted_keys, positions, sorted_positions, N,
                                                        0, 32, stream));
    kernels::token_embedding_backward_kernel<<<N, 256, 0, stream>>>(dwte.ptr, dout, sorted_keys,
                                                                    sorted_positions, N, C);
    LIGHTGPT_CUDA_CHECK_LAUNCH();
  }
};

}  // namespace lightgpt::cuda

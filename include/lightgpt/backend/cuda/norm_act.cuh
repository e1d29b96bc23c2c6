// LayerNorm, GELU, residual add and the token + position embedding on the GPU, the formulas of
// backend/cpu/norm_act.hpp (and the shared per-element math of core/elementwise.hpp). Row-wise
// work is one warp per row; every sum over rows (LayerNorm parameter gradients, the position
// embedding gradient) is a deterministic column sum (reduce.cuh).
//
// Scatters into a table (the token embedding gradient here, the LightRNN tables in
// heads/lightrnn/cuda.cuh) are keyed sums, deterministic without atomics: positions are stably
// radix-sorted by key with CUB, over only the key bits that can be set (16 for GPT-2's vocabulary,
// not 32). The sorted entries are cut into fixed chunks of kKeyedChunk, one block per chunk and
// column tile, so a frequent key (EOT, "the": half the batch in the worst case) is spread over many
// blocks instead of being one block's serial tail. Inside a chunk each thread owns a column and
// walks the entries in sorted (position) order; a run that crosses chunks leaves a partial per
// chunk in scratch, and a second pass adds them in chunk order. The order of every sum depends only
// on the keys.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cub/device/device_radix_sort.cuh>
#include <limits>
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
                                         const T* wpe, int B, int seq_len, int C) {
  const std::size_t total = static_cast<std::size_t>(B) * seq_len * C;
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < total;
       i += std::size_t(gridDim.x) * blockDim.x) {
    const std::size_t bt = i / C, c = i % C;
    const int b = static_cast<int>(bt / seq_len), t = static_cast<int>(bt % seq_len);
    const std::size_t token = static_cast<std::size_t>(tokens[std::size_t(b) * row_stride + t]);
    out[i] = T(load(wte, token * C + c) + load(wpe, std::size_t(t) * C + c));
  }
}

// dwpe[t, c] += Σ_b dout[b, t, c], summed over b in order.
template <class T, class G>
__global__ void position_embedding_backward_kernel(G* dwpe, const T* dout, int B, int seq_len,
                                                   int C) {
  const std::size_t total = static_cast<std::size_t>(seq_len) * C;
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < total;
       i += std::size_t(gridDim.x) * blockDim.x) {
    float sum = 0.0f;
    for (int b = 0; b < B; ++b) sum += load(dout, std::size_t(b) * total + i);
    dwpe[i] = G(float(dwpe[i]) + sum);
  }
}

// ------------------------------------------------------------------------------ keyed sums

constexpr int kKeyedChunk = 32;     // sorted entries per block: a thread's longest serial walk
constexpr int kKeyedColumns = 128;  // columns per block, one per thread
static_assert(kKeyedChunk <= kKeyedColumns, "a block stages its chunk with one entry per thread");

// Position n = b·T + t of a batch whose row b starts at b·row_stride.
__device__ inline std::size_t token_index(int n, int seq_len, int row_stride) {
  return static_cast<std::size_t>(n / seq_len) * row_stride + n % seq_len;
}

// The token id at position n: the key of the token embedding gradient.
template <class Tok>
struct TokenKey {
  const Tok* tokens;
  int row_stride, seq_len;
  __device__ std::uint32_t operator()(int n) const {
    return static_cast<std::uint32_t>(tokens[token_index(n, seq_len, row_stride)]);
  }
};

template <class KeyOf>
__global__ void gather_keys_kernel(std::uint32_t* keys, std::int32_t* positions, KeyOf key_of,
                                   int N) {
  const int n = blockIdx.x * blockDim.x + threadIdx.x;
  if (n >= N) return;
  keys[n] = key_of(n);
  positions[n] = n;
}

// partials[((chunk·2 + slot)·2 + output)·width + column].
__device__ inline std::size_t keyed_partial_index(int chunk, int slot, int output, int column,
                                                  int width) {
  return (static_cast<std::size_t>(chunk) * 4 + slot * 2 + output) * width + column;
}

// Pass 1, block (chunk, column tile): each piece of the chunk (a run of equal keys cut by the
// chunk's ends) is summed by the column's thread in sorted order. A piece with a key change on
// both sides inside the chunk is a whole run and goes to the table directly; the first piece goes
// to partial slot 0 and the last, if different, to slot 1, as their runs may go on in the
// neighbouring chunks.
template <class F>
__global__ void keyed_sums_kernel(float* out_a, float* out_b, float* partials, F f,
                                  const std::uint32_t* sorted_keys,
                                  const std::int32_t* sorted_positions, int N, int width) {
  __shared__ std::uint32_t keys[kKeyedChunk];
  __shared__ std::int32_t positions[kKeyedChunk];
  const int chunk = blockIdx.x, begin = chunk * kKeyedChunk;
  const int count = min(kKeyedChunk, N - begin);
  if (threadIdx.x < count) {
    keys[threadIdx.x] = sorted_keys[begin + threadIdx.x];
    positions[threadIdx.x] = sorted_positions[begin + threadIdx.x];
  }
  __syncthreads();
  const int c = blockIdx.y * kKeyedColumns + threadIdx.x;
  if (c >= width) return;
  float a = 0.0f, b = 0.0f;
  int piece_begin = 0;
  for (int i = 0; i < count; ++i) {
    f(positions[i], c, a, b);
    if (i + 1 < count && keys[i + 1] == keys[i]) continue;
    if (piece_begin == 0 || i + 1 == count) {
      const int slot = piece_begin == 0 ? 0 : 1;
      partials[keyed_partial_index(chunk, slot, 0, c, width)] = a;
      if (out_b != nullptr) partials[keyed_partial_index(chunk, slot, 1, c, width)] = b;
    } else {
      const std::size_t at = static_cast<std::size_t>(keys[i]) * width + c;
      out_a[at] += a;
      if (out_b != nullptr) out_b[at] += b;
    }
    a = 0.0f;
    b = 0.0f;
    piece_begin = i + 1;
  }
}

// Pass 2, block (chunk, column tile): a boundary piece that starts a run (the chunk's first piece
// unless the previous chunk ends with its key; its last piece when different from the first) adds
// its own partial and then slot 0 of every following chunk that begins with the same key, in chunk
// order, to the table. Chunk starts are sorted, so those chunks are found by a binary search and
// the partials of a long run are loaded without waiting on one another.
template <class A>
__global__ void keyed_sums_finish_kernel(A* out_a, A* out_b, const A* partials,
                                         const std::uint32_t* sorted_keys, int N, int width,
                                         int chunks) {
  const int chunk = blockIdx.x;
  const int c = blockIdx.y * kKeyedColumns + threadIdx.x;
  if (c >= width) return;
  const int begin = chunk * kKeyedChunk, last = min(N, begin + kKeyedChunk) - 1;
  auto finish = [&](int slot, std::uint32_t key) {
    int end = chunk + 1, high = chunks;  // end: the first later chunk not beginning with key
    while (end < high) {
      const int middle = (end + high) / 2;
      if (sorted_keys[static_cast<std::size_t>(middle) * kKeyedChunk] == key) {
        end = middle + 1;
      } else {
        high = middle;
      }
    }
    const std::size_t at = static_cast<std::size_t>(key) * width + c;
    A sum = partials[keyed_partial_index(chunk, slot, 0, c, width)];
#pragma unroll 8
    for (int next = chunk + 1; next < end; ++next) {
      sum += partials[keyed_partial_index(next, 0, 0, c, width)];
    }
    out_a[at] += sum;
    if (out_b == nullptr) return;
    sum = partials[keyed_partial_index(chunk, slot, 1, c, width)];
#pragma unroll 8
    for (int next = chunk + 1; next < end; ++next) {
      sum += partials[keyed_partial_index(next, 0, 1, c, width)];
    }
    out_b[at] += sum;
  };
  const std::uint32_t first_key = sorted_keys[begin], last_key = sorted_keys[last];
  if (begin == 0 || sorted_keys[begin - 1] != first_key) finish(0, first_key);
  if (last_key != first_key) finish(1, last_key);
}

// Bits that hold every key below `count` (at least one): what the radix sort has to look at.
inline int key_bits_for(std::int64_t count) {
  int bits = 1;
  while (bits < 32 && (std::int64_t(1) << bits) < count) ++bits;
  return bits;
}

// out_a[key_of(n)·width + c] += Σ_n a(n, c) and out_b likewise (out_b may be null), where
// f(n, c, a, b) adds position n's terms and key_of(n) < 2^key_bits. Deterministic: the order of
// every sum depends only on the keys, never on scheduling. Scratch: Scratch::token_sort.
template <class KeyOf, class F>
void keyed_sums(KeyOf key_of, int key_bits, F f, int N, int width, float* out_a, float* out_b) {
  if (N == 0 || width == 0) return;
  Context& ctx = context();
  cudaStream_t stream = ctx.stream();
  const int chunks = (N + kKeyedChunk - 1) / kKeyedChunk;
  auto aligned = [](std::size_t bytes) { return (bytes + 255) / 256 * 256; };
  const std::size_t ints_bytes = aligned(sizeof(std::uint32_t) * std::size_t(N));
  const std::size_t partials_bytes = aligned(sizeof(float) * 4 * std::size_t(chunks) * width);
  std::size_t temp_bytes = 0;
  LIGHTGPT_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(
      nullptr, temp_bytes, static_cast<const std::uint32_t*>(nullptr),
      static_cast<std::uint32_t*>(nullptr), static_cast<const std::int32_t*>(nullptr),
      static_cast<std::int32_t*>(nullptr), N, 0, key_bits, stream));
  auto* base = static_cast<unsigned char*>(
      ctx.scratch(Scratch::token_sort, 4 * ints_bytes + partials_bytes + temp_bytes));
  auto* keys = reinterpret_cast<std::uint32_t*>(base);
  auto* positions = reinterpret_cast<std::int32_t*>(base + ints_bytes);
  auto* sorted_keys = reinterpret_cast<std::uint32_t*>(base + 2 * ints_bytes);
  auto* sorted_positions = reinterpret_cast<std::int32_t*>(base + 3 * ints_bytes);
  auto* partials = reinterpret_cast<float*>(base + 4 * ints_bytes);
  void* temp = base + 4 * ints_bytes + partials_bytes;

  gather_keys_kernel<<<(N + 255) / 256, 256, 0, stream>>>(keys, positions, key_of, N);
  LIGHTGPT_CUDA_CHECK_LAUNCH();
  LIGHTGPT_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(
      temp, temp_bytes, keys, sorted_keys, positions, sorted_positions, N, 0, key_bits, stream));
  const dim3 grid(chunks, (width + kKeyedColumns - 1) / kKeyedColumns);
  keyed_sums_kernel<<<grid, kKeyedColumns, 0, stream>>>(out_a, out_b, partials, f, sorted_keys,
                                                        sorted_positions, N, width);
  LIGHTGPT_CUDA_CHECK_LAUNCH();
  keyed_sums_finish_kernel<<<grid, kKeyedColumns, 0, stream>>>(out_a, out_b, partials, sorted_keys,
                                                               N, width, chunks);
  LIGHTGPT_CUDA_CHECK_LAUNCH();
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
                                const T* wpe, int B, int seq_len, int C) {
    const std::size_t count = static_cast<std::size_t>(B) * seq_len * C;
    if (count == 0) return;
    kernels::embedding_forward_kernel<<<elementwise_blocks(count), 256, 0, context().stream()>>>(
        out, tokens, row_stride, wte, wpe, B, seq_len, C);
    LIGHTGPT_CUDA_CHECK_LAUNCH();
  }

  // Adds dout into the rows of wte and wpe that the forward read; deterministic (no atomics).
  // Every token id is below V when V > 0: the sort then reads ⌈log₂ V⌉ key bits instead of all
  // the bits a Tok can hold.
  template <class T, class G, class Tok>
  static void embedding_backward(Grad<G> dwte, Grad<G> dwpe, const T* dout, const Tok* tokens,
                                 int row_stride, int B, int seq_len, int C, int V = 0) {
    static_assert(std::is_same_v<G, float>, "CUDA layers keep fp32 parameter gradients");
    LIGHTGPT_CHECK(dwte.mode == Mode::accumulate && dwpe.mode == Mode::accumulate,
                   "embedding_backward only accumulates");
    const int N = B * seq_len;
    if (N == 0) return;
    if (dwpe) {
      const std::size_t count = static_cast<std::size_t>(seq_len) * C;
      kernels::position_embedding_backward_kernel<<<elementwise_blocks(count), 256, 0,
                                                    context().stream()>>>(dwpe.ptr, dout, B,
                                                                          seq_len, C);
      LIGHTGPT_CUDA_CHECK_LAUNCH();
    }
    if (!dwte) return;
    const int key_bits =
        V > 0 ? kernels::key_bits_for(V) : std::min(32, std::numeric_limits<Tok>::digits);
    kernels::keyed_sums(kernels::TokenKey<Tok>{tokens, row_stride, seq_len}, key_bits,
                        kernels::RowSum<T>{dout, C}, N, C, dwte.ptr, static_cast<float*>(nullptr));
  }
};

}  // namespace lightgpt::cuda

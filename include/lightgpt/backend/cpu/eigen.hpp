// Eigen views over the flat row-major buffers that every CPU kernel works on.
#pragma once

#include <Eigen/Core>
#include <cstddef>
#include <vector>

#include "../../core/precision.hpp"
#include "../contract.hpp"

namespace lightgpt::cpu::detail {

template <class T>
using RowMatrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Stride = Eigen::OuterStride<>;

template <class T>
Eigen::Map<RowMatrix<T>> view(T* data, Eigen::Index rows, Eigen::Index cols) {
  return {data, rows, cols};
}
template <class T>
Eigen::Map<const RowMatrix<T>> view(const T* data, Eigen::Index rows, Eigen::Index cols) {
  return {data, rows, cols};
}
// A rows x cols block whose rows are `stride` elements apart (one head inside a fused tensor).
template <class T>
Eigen::Map<RowMatrix<T>, 0, Stride> strided(T* data, Eigen::Index rows, Eigen::Index cols,
                                            Eigen::Index stride) {
  return {data, rows, cols, Stride(stride)};
}
template <class T>
Eigen::Map<const RowMatrix<T>, 0, Stride> strided(const T* data, Eigen::Index rows,
                                                  Eigen::Index cols, Eigen::Index stride) {
  return {data, rows, cols, Stride(stride)};
}
template <class T>
Eigen::Map<const Eigen::Matrix<T, 1, Eigen::Dynamic>> row_vector(const T* data, Eigen::Index n) {
  return {data, n};
}

// Scratch of the calling thread for kernels that widen 16-bit operands to fp32 (Eigen's GEMM on
// bfloat16/half is orders of magnitude slower than staging through fp32). Buffers grow to the
// largest shape seen and are then reused: no allocation in steady state.
inline float* staging(int slot, std::size_t count) {
  thread_local std::vector<float> buffers[8];
  std::vector<float>& buffer = buffers[slot];
  if (buffer.size() < count) buffer.resize(count);
  return buffer.data();
}

// dst[i] = float(src[i]) for a rows x cols block whose rows are `stride` apart.
template <class T>
void widen_block(float* dst, const T* src, std::size_t rows, std::size_t cols, std::size_t stride) {
#pragma omp parallel for schedule(static)
  for (std::ptrdiff_t r = 0; r < static_cast<std::ptrdiff_t>(rows); ++r) {
    for (std::size_t c = 0; c < cols; ++c) dst[r * cols + c] = static_cast<float>(src[r * stride + c]);
  }
}
template <class T>
void widen_into(float* dst, const T* src, std::size_t count) {
  widen_block(dst, src, 1, count, count);
}

// Rounds a dense rows x cols fp32 block into dst (rows `stride` apart), overwriting or adding.
template <class T>
void round_block(T* dst, const float* src, std::size_t rows, std::size_t cols, std::size_t stride,
                 Mode mode = Mode::overwrite) {
#pragma omp parallel for schedule(static)
  for (std::ptrdiff_t r = 0; r < static_cast<std::ptrdiff_t>(rows); ++r) {
    T* out = dst + r * stride;
    const float* in = src + r * cols;
    for (std::size_t c = 0; c < cols; ++c) {
      out[c] = mode == Mode::accumulate ? T(static_cast<float>(out[c]) + in[c]) : T(in[c]);
    }
  }
}
template <class T>
void round_into(T* dst, const float* src, std::size_t count, Mode mode = Mode::overwrite) {
  round_block(dst, src, 1, count, count, mode);
}

// th[i] = tanh(√(2/π)·(x + 0.044715·x³)) for x = x_of(i), i < n: the tanh of GPT-2's GELU, through
// Eigen's vectorised tanh (for float its rational approximation, within a few ulp of std::tanh;
// for double std::tanh). std::tanh element by element is most of a small model's step otherwise.
template <class W, class X>
void gelu_tanh(W* th, int n, X x_of) {
  constexpr W kSqrt2OverPi = W(0.7978845608028654);
  constexpr W kCubic = W(0.044715);
  for (int i = 0; i < n; ++i) {
    const W x = x_of(i);
    th[i] = kSqrt2OverPi * (x + kCubic * x * x * x);
  }
  auto t = Eigen::Map<Eigen::Array<W, Eigen::Dynamic, 1>>(th, n);
  t = t.tanh();
}

// Column blocks for deterministic reductions over rows: each block is owned by one thread, which
// walks the rows in order, so results do not depend on the number of threads.
inline constexpr int kColumnBlock = 32;

}  // namespace lightgpt::cpu::detail

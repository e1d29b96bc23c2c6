// Eigen views over the flat row-major buffers that every CPU kernel works on.
#pragma once

#include <Eigen/Core>

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

// Column blocks for deterministic reductions over rows: each block is owned by one thread, which
// walks the rows in order, so results do not depend on the number of threads.
inline constexpr int kColumnBlock = 32;

}  // namespace lightgpt::cpu::detail

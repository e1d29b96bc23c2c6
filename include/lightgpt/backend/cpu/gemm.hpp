// Dense layers on the CPU: out = in · weightᵀ + bias with weights stored (out, in) row-major as in
// llm.c, and the matching backward. Eigen's GEMM does the work (multi-threaded through OpenMP);
// for a fixed thread count its results are bit-reproducible.
#pragma once

#include <algorithm>
#include <type_traits>

#include "../../core/precision.hpp"
#include "../contract.hpp"
#include "eigen.hpp"

namespace lightgpt::cpu {

struct GemmOps {
  // Rows of the weight widened per pass on the 16-bit path, bounding its fp32 scratch.
  static constexpr int kStagedRows = 2048;

  // out[N, OC] = in[N, IC] · weight[OC, IC]ᵀ + bias[OC] (bias may be null).
  template <class T>
  static void matmul_forward(T* out, const T* in, const T* weight, const T* bias, int N, int IC,
                             int OC) {
    if constexpr (is_16bit_v<T>) {
      matmul_forward_staged(out, in, weight, bias, N, IC, OC);
    } else {
      auto result = detail::view(out, N, OC);
      result.noalias() = detail::view(in, N, IC) * detail::view(weight, OC, IC).transpose();
      if (bias) result.rowwise() += detail::row_vector(bias, OC);
    }
  }

  // din[N, IC] = dout · weight; dweight[OC, IC] = doutᵀ · in; dbias[OC] = Σ_rows dout. The
  // parameter gradients G are the storage type, or fp32 for 16-bit storage.
  template <class T, class G>
  static void matmul_backward(Grad<T> din, Grad<G> dweight, Grad<G> dbias, const T* dout,
                              const T* in, const T* weight, int N, int IC, int OC) {
    if constexpr (is_16bit_v<T>) {
      static_assert(std::is_same_v<G, float>, "16-bit layers keep fp32 parameter gradients");
      matmul_backward_staged(din, dweight, dbias, dout, in, weight, N, IC, OC);
    } else {
      static_assert(std::is_same_v<G, T>, "fp32/fp64 layers keep gradients in their own type");
      auto grad_out = detail::view(dout, N, OC);
      if (din) assign(detail::view(din.ptr, N, IC), grad_out * detail::view(weight, OC, IC),
                      din.mode);
      if (dweight) {
        assign(detail::view(dweight.ptr, OC, IC), grad_out.transpose() * detail::view(in, N, IC),
               dweight.mode);
      }
      if (dbias) {
        Eigen::Map<Eigen::Matrix<T, 1, Eigen::Dynamic>> target(dbias.ptr, OC);
        if (dbias.mode == Mode::accumulate) {
          target += grad_out.colwise().sum();
        } else {
          target = grad_out.colwise().sum();
        }
      }
    }
  }

 private:
  template <class Target, class Product>
  static void assign(Target&& target, const Product& product, Mode mode) {
    if (mode == Mode::accumulate) {
      target.noalias() += product;
    } else {
      target.noalias() = product;
    }
  }

  // 16-bit storage: widen the operands to fp32 (the weight kStagedRows rows at a time), multiply
  // with Eigen's fp32 GEMM, round once on the way out.
  template <class T>
  static void matmul_forward_staged(T* out, const T* in, const T* weight, const T* bias, int N,
                                    int IC, int OC) {
    float* x = detail::staging(0, std::size_t(N) * IC);
    detail::widen_into(x, in, std::size_t(N) * IC);
    const auto input = detail::view(static_cast<const float*>(x), N, IC);
    for (int o0 = 0; o0 < OC; o0 += kStagedRows) {
      const int rows = std::min(kStagedRows, OC - o0);
      float* w = detail::staging(1, std::size_t(rows) * IC);
      float* y = detail::staging(2, std::size_t(N) * rows);
      detail::widen_into(w, weight + std::size_t(o0) * IC, std::size_t(rows) * IC);
      auto result = detail::view(y, N, rows);
      result.noalias() = input * detail::view(static_cast<const float*>(w), rows, IC).transpose();
      if (bias) {
        float* b = detail::staging(3, std::size_t(rows));
        detail::widen_into(b, bias + o0, std::size_t(rows));
        result.rowwise() += detail::row_vector(static_cast<const float*>(b), rows);
      }
      detail::round_block(out + o0, y, std::size_t(N), std::size_t(rows), std::size_t(OC));
    }
  }

  template <class T>
  static void matmul_backward_staged(Grad<T> din, Grad<float> dweight, Grad<float> dbias,
                                     const T* dout, const T* in, const T* weight, int N, int IC,
                                     int OC) {
    float* x = nullptr;
    if (dweight) {
      x = detail::staging(0, std::size_t(N) * IC);
      detail::widen_into(x, in, std::size_t(N) * IC);
    }
    float* dx = nullptr;
    if (din) {
      dx = detail::staging(4, std::size_t(N) * IC);
      detail::view(dx, N, IC).setZero();
    }
    for (int o0 = 0; o0 < OC; o0 += kStagedRows) {
      const int rows = std::min(kStagedRows, OC - o0);
      float* g = detail::staging(2, std::size_t(N) * rows);
      detail::widen_block(g, dout + o0, std::size_t(N), std::size_t(rows), std::size_t(OC));
      const auto grad_out = detail::view(static_cast<const float*>(g), N, rows);
      if (din) {
        float* w = detail::staging(1, std::size_t(rows) * IC);
        detail::widen_into(w, weight + std::size_t(o0) * IC, std::size_t(rows) * IC);
        detail::view(dx, N, IC).noalias() +=
            grad_out * detail::view(static_cast<const float*>(w), rows, IC);
      }
      if (dweight) {
        assign(detail::view(dweight.ptr + std::size_t(o0) * IC, rows, IC),
               grad_out.transpose() * detail::view(static_cast<const float*>(x), N, IC),
               dweight.mode);
      }
      if (dbias) {
        Eigen::Map<Eigen::Matrix<float, 1, Eigen::Dynamic>> target(dbias.ptr + o0, rows);
        if (dbias.mode == Mode::accumulate) {
          target += grad_out.colwise().sum();
        } else {
          target = grad_out.colwise().sum();
        }
      }
    }
    if (din) detail::round_into(din.ptr, dx, std::size_t(N) * IC, din.mode);
  }
};

}  // namespace lightgpt::cpu

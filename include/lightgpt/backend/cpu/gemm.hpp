// Dense layers on the CPU: out = in · weightᵀ + bias with weights stored (out, in) row-major as in
// llm.c, and the matching backward. Eigen's GEMM does the work (multi-threaded through OpenMP);
// for a fixed thread count its results are bit-reproducible.
#pragma once

#include "../contract.hpp"
#include "eigen.hpp"

namespace lightgpt::cpu {

struct GemmOps {
  // out[N, OC] = in[N, IC] · weight[OC, IC]ᵀ + bias[OC] (bias may be null).
  template <class T>
  static void matmul_forward(T* out, const T* in, const T* weight, const T* bias, int N, int IC,
                             int OC) {
    auto result = detail::view(out, N, OC);
    result.noalias() = detail::view(in, N, IC) * detail::view(weight, OC, IC).transpose();
    if (bias) result.rowwise() += detail::row_vector(bias, OC);
  }

  // din[N, IC] = dout · weight; dweight[OC, IC] = doutᵀ · in; dbias[OC] = Σ_rows dout.
  template <class T>
  static void matmul_backward(Grad<T> din, Grad<T> dweight, Grad<T> dbias, const T* dout,
                              const T* in, const T* weight, int N, int IC, int OC) {
    auto grad_out = detail::view(dout, N, OC);
    if (din) {
      auto target = detail::view(din.ptr, N, IC);
      auto product = grad_out * detail::view(weight, OC, IC);
      if (din.mode == Mode::accumulate) {
        target.noalias() += product;
      } else {
        target.noalias() = product;
      }
    }
    if (dweight) {
      auto target = detail::view(dweight.ptr, OC, IC);
      auto product = grad_out.transpose() * detail::view(in, N, IC);
      if (dweight.mode == Mode::accumulate) {
        target.noalias() += product;
      } else {
        target.noalias() = product;
      }
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
};

}  // namespace lightgpt::cpu

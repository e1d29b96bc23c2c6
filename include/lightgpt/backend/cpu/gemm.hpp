// Dense layers on the CPU: out = in · weightᵀ + bias with weights stored (out, in) row-major as in
// llm.c, and the matching backward. Eigen's single-threaded GEMM does the work on contiguous
// slices, one per OpenMP thread (split_rows): Eigen's own threading shares one packed operand
// between threads and, at the B·T = 256-position shapes of a CPU step, ran the 50304-wide logits
// slower on two threads than on one.
//
// Where the slices fall does not change a single bit of the result once every cut across the
// rows of Eigen's left-hand operand is a multiple of the rows its micro-kernel takes at once, and
// every cut across its right-hand columns a multiple of 16 (Eigen computes each output element
// the same way in every whole panel; tests/backend/test_gemm_split.cpp checks it). So the cuts
// follow each thread's measured speed (a core that runs slower, as one of a VM's vCPUs often
// does for minutes, gets fewer rows), and at the shapes large enough for such cuts the results
// are the same for every thread count and every run.
#pragma once

#if defined(_OPENMP)
#include <omp.h>
#endif

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <numeric>
#include <type_traits>

#include "../../core/precision.hpp"
#include "../contract.hpp"
#include "eigen.hpp"

namespace lightgpt::cpu {

struct GemmOps {
  // Rows of the weight widened per pass on the 16-bit path, bounding its fp32 scratch.
  static constexpr int kStagedRows = 2048;

  // Threads one product is split over, at most.
  static constexpr int kMaxBalancedThreads = 256;

  // Relative speeds of the OpenMP threads of the calling thread's team, measured on every split
  // product: rows per second of each slice, normalised to a mean of 1, averaged over products.
  struct ThreadSpeeds {
    // Weight of the history against one product: a slice's time varies by several per cent from
    // product to product, and a noisy estimate moves cuts that need not move.
    static constexpr double kKeep = 0.9;
    int threads = 0;
    std::array<double, kMaxBalancedThreads> speed{};

    void reset(int n) {
      threads = n;
      speed.fill(1.0);
    }
    // Cuts of [0, rows) into `threads` slices proportional to the speeds, multiples of `align`.
    void cut(int rows, int align, int* cuts) const {
      double total = 0;
      for (int t = 0; t < threads; ++t) total += speed[t];
      double before = 0;
      cuts[0] = 0;
      for (int t = 1; t < threads; ++t) {
        before += speed[t - 1];
        const int at = int(std::lround(rows * before / total / align)) * align;
        cuts[t] = std::clamp(at, cuts[t - 1], rows);
      }
      cuts[threads] = rows;
    }
    void record(const int* cuts, const double* seconds) {
      double rate[kMaxBalancedThreads];
      double mean = 0;
      for (int t = 0; t < threads; ++t) {
        if (cuts[t + 1] == cuts[t] || !(seconds[t] > 0)) return;
        rate[t] = (cuts[t + 1] - cuts[t]) / seconds[t];
        mean += rate[t] / threads;
      }
      for (int t = 0; t < threads; ++t) {
        const double relative = std::clamp(rate[t] / mean, 0.5, 2.0);
        speed[t] = kKeep * speed[t] + (1 - kKeep) * relative;
      }
    }
  };

  // One estimate for all products (a slow core is slow for every shape) per calling thread (each
  // has its own OpenMP team). Public for tests and benchmarks, which may set it.
  static ThreadSpeeds& thread_speeds() {
    thread_local ThreadSpeeds speeds;
    return speeds;
  }

  // out[N, OC] = in[N, IC] · weight[OC, IC]ᵀ + bias[OC] (bias may be null).
  template <class T>
  static void matmul_forward(T* out, const T* in, const T* weight, const T* bias, int N, int IC,
                             int OC) {
    if constexpr (is_16bit_v<T>) {
      matmul_forward_staged(out, in, weight, bias, N, IC, OC);
    } else {
      // Eigen's GEMM only accumulates (`=` zero-fills first): start from the bias instead.
      auto product = [&](auto result, const auto& input, const auto& weight_t, int o0) {
        if (bias) {
          result.rowwise() = detail::row_vector(bias + o0, result.cols());
          result.noalias() += input * weight_t;
        } else {
          result.noalias() = input * weight_t;
        }
      };
      if (OC <= N) {
        // Few outputs per position (a small model's layers): each thread takes whole rows of
        // positions and shares the weight, the smaller operand, so the rows it writes are the
        // rows the row-wise kernels after it (LayerNorm, GELU, residual, statically split by
        // positions) give the same thread, and stay in that core's cache.
        const auto weight_t = detail::view(weight, OC, IC).transpose();
        split_rows(N, kSplitAlign, [&](int n0, int rows) {
          product(detail::view(out + std::size_t(n0) * OC, rows, OC),
                  detail::view(in + std::size_t(n0) * IC, rows, IC), weight_t, 0);
        });
      } else {
        const auto input = detail::view(in, N, IC);
        split_rows(OC, kPanelAlign<T>, [&](int o0, int rows) {
          product(detail::strided(out + o0, N, rows, OC), input,
                  detail::view(weight + std::size_t(o0) * IC, rows, IC).transpose(), o0);
        });
      }
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
      if (din) {
        // Each thread packs the whole of the operand it shares with the others: the weight when
        // the positions are split, d(out) when the input columns are. Share the smaller one.
        if (N <= IC) {
          split_rows(IC, kPanelAlign<T>, [&](int c0, int cols) {
            assign(detail::strided(din.ptr + c0, N, cols, IC),
                   detail::view(dout, N, OC) * detail::strided(weight + c0, OC, cols, IC),
                   din.mode);
          });
        } else {
          split_rows(N, kSplitAlign, [&](int n0, int rows) {
            assign(detail::view(din.ptr + std::size_t(n0) * IC, rows, IC),
                   detail::view(dout + std::size_t(n0) * OC, rows, OC) *
                       detail::view(weight, OC, IC),
                   din.mode);
          });
        }
      }
      if (!dweight && !dbias) return;
      const auto input = detail::view(in, N, IC);
      split_rows(OC, kSplitAlign, [&](int o0, int rows) {
        const auto grad_out = detail::strided(dout + o0, N, rows, OC);
        if (dweight) {
          assign(detail::view(dweight.ptr + std::size_t(o0) * IC, rows, IC),
                 grad_out.transpose() * input, dweight.mode);
        }
        if (dbias) column_sums(dbias, dout, N, OC, o0, rows);
      });
    }
  }

 private:
  // Cuts of slices whose rows are output columns are multiples of 16 (one AVX-512 vector of
  // fp32), so every slice but the last starts vector-aligned. Cuts across the rows of Eigen's
  // left-hand operand are also multiples of its micro-kernel's panel (48 rows of fp32 with
  // AVX-512), the condition for results that do not depend on the cuts.
  static constexpr int kSplitAlign = 16;
  template <class T>
  static constexpr int kPanelAlign =
      std::lcm(kSplitAlign, int(Eigen::internal::gebp_traits<T, T>::mr));
  // Cuts follow the threads' speeds when a thread's share is at least this many units of the
  // alignment, so that one unit moves at most a few per cent of the work.
  static constexpr int kBalancedUnits = 8;

  // f(first, count) over contiguous slices of [0, rows), one per OpenMP thread, each slice's GEMM
  // single-threaded (Eigen runs serially inside a parallel region). Slices large enough to be
  // balanced in `align`-row units are sized by the threads' measured speeds; smaller products
  // are split evenly in multiples of kSplitAlign.
  template <class F>
  static void split_rows(int rows, int align, F f) {
    int threads = 1;
#if defined(_OPENMP)
    if (!omp_in_parallel()) threads = omp_get_max_threads();
#endif
    threads = std::min(threads, kMaxBalancedThreads);
    int cuts[kMaxBalancedThreads + 1];
    ThreadSpeeds& speeds = thread_speeds();
    if (threads > 1 && rows >= threads * align * kBalancedUnits) {
      if (speeds.threads != threads) speeds.reset(threads);
      speeds.cut(rows, align, cuts);
    } else {
      const int per_thread =
          ((rows + threads - 1) / threads + kSplitAlign - 1) / kSplitAlign * kSplitAlign;
      threads = std::min(threads, per_thread > 0 ? (rows + per_thread - 1) / per_thread : 1);
      for (int t = 0; t < threads; ++t) cuts[t] = t * per_thread;
      cuts[threads] = rows;
    }
    if (threads <= 1) {
#if defined(_OPENMP)
      // Outside a parallel region Eigen would thread this product itself, with blocking sizes of
      // its own and so other roundings: keep it serial, the same bits as on one thread.
      if (const int team = omp_get_max_threads(); team > 1) {
        omp_set_num_threads(1);
        f(0, rows);
        omp_set_num_threads(team);
        return;
      }
#endif
      f(0, rows);
      return;
    }
    double seconds[kMaxBalancedThreads];
#pragma omp parallel for schedule(static, 1) num_threads(threads)
    for (int part = 0; part < threads; ++part) {
      const auto start = std::chrono::steady_clock::now();
      if (cuts[part + 1] > cuts[part]) f(cuts[part], cuts[part + 1] - cuts[part]);
      seconds[part] =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    }
    if (speeds.threads == threads) speeds.record(cuts, seconds);
  }

  // dbias[o0 + c] (=|+=) Σ_n dout[n, o0 + c] for c < cols, each column summed over n in order
  // (vectorised across columns), so a column's sum does not depend on the slice it is in.
  template <class T>
  static void column_sums(Grad<T> dbias, const T* dout, int N, int OC, int o0, int cols) {
    constexpr int kBlock = 16;
    for (int c0 = 0; c0 < cols; c0 += kBlock) {
      const int width = std::min(kBlock, cols - c0);
      T sum[kBlock] = {};
      for (int n = 0; n < N; ++n) {
        const T* row = dout + std::size_t(n) * OC + o0 + c0;
        for (int c = 0; c < width; ++c) sum[c] += row[c];
      }
      T* target = dbias.ptr + o0 + c0;
      for (int c = 0; c < width; ++c) {
        target[c] = dbias.mode == Mode::accumulate ? target[c] + sum[c] : sum[c];
      }
    }
  }

  template <class Target, class Product>
  static void assign(Target&& target, const Product& product, Mode mode) {
    if (mode == Mode::accumulate) {
      target.noalias() += product;
    } else {
      target.noalias() = product;
    }
  }

  // 16-bit storage: widen the operands to fp32 (the weight kStagedRows rows at a time), multiply
  // with the fp32 products above (split across the threads as they are), round once on the way
  // out. The parameter gradients stay fp32.
  template <class T>
  static void matmul_forward_staged(T* out, const T* in, const T* weight, const T* bias, int N,
                                    int IC, int OC) {
    float* x = detail::staging(0, std::size_t(N) * IC);
    detail::widen_into(x, in, std::size_t(N) * IC);
    for (int o0 = 0; o0 < OC; o0 += kStagedRows) {
      const int rows = std::min(kStagedRows, OC - o0);
      float* w = detail::staging(1, std::size_t(rows) * IC);
      float* y = detail::staging(2, std::size_t(N) * rows);
      detail::widen_into(w, weight + std::size_t(o0) * IC, std::size_t(rows) * IC);
      float* b = nullptr;
      if (bias) {
        b = detail::staging(3, std::size_t(rows));
        detail::widen_into(b, bias + o0, std::size_t(rows));
      }
      matmul_forward<float>(y, x, w, b, N, IC, rows);
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
    float* dx = din ? detail::staging(4, std::size_t(N) * IC) : nullptr;
    for (int o0 = 0; o0 < OC; o0 += kStagedRows) {
      const int rows = std::min(kStagedRows, OC - o0);
      float* g = detail::staging(2, std::size_t(N) * rows);
      detail::widen_block(g, dout + o0, std::size_t(N), std::size_t(rows), std::size_t(OC));
      float* w = nullptr;
      if (din) {
        w = detail::staging(1, std::size_t(rows) * IC);
        detail::widen_into(w, weight + std::size_t(o0) * IC, std::size_t(rows) * IC);
      }
      // d(input) sums over the chunks in fp32, from the first one's overwrite.
      matmul_backward<float, float>(
          Grad<float>{dx, o0 == 0 ? Mode::overwrite : Mode::accumulate},
          Grad<float>{dweight ? dweight.ptr + std::size_t(o0) * IC : nullptr, dweight.mode},
          Grad<float>{dbias ? dbias.ptr + o0 : nullptr, dbias.mode}, g, x, w, N, IC, rows);
    }
    if (din) detail::round_into(din.ptr, dx, std::size_t(N) * IC, din.mode);
  }
};

}  // namespace lightgpt::cpu

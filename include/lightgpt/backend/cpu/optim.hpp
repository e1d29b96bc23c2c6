// Optimizer kernels on the CPU: a deterministic sum of squares for the global gradient norm
// (fixed-size chunks, each summed in kLanes interleaved partial sums that the compiler can keep in
// vector registers, then everything added in a fixed order, independent of the thread count), and
// the AdamW update with decoupled weight decay (Eigen array expressions, vectorised), writing the
// fp32/fp64 master weights and the working copy.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "../../core/layout.hpp"
#include "../../core/update_status.hpp"
#include "../contract.hpp"
#include "eigen.hpp"

namespace lightgpt::cpu {

struct OptimOps {
  static constexpr std::size_t kNormChunk = 1 << 14;
  static constexpr std::size_t kLanes = 8;
  static constexpr std::ptrdiff_t kParallelChunks = 8;

  template <class A>
  static double sum_of_squares(const A* values, std::size_t count) {
    const FlatRange whole{0, count};
    return sum_of_squares(values, count, &whole, 1);
  }
  // The same sum when every value outside `nonzero` (ranges in order, disjoint, within count) is
  // zero, reading only the ranges: each value lands in the same chunk and lane and is added in the
  // same order as by the whole pass, and the values skipped would each add an exact 0, so the two
  // agree bit for bit.
  template <class A>
  static double sum_of_squares(const A* values, std::size_t count, const FlatRange* nonzero,
                               std::size_t ranges) {
    const std::ptrdiff_t chunks =
        static_cast<std::ptrdiff_t>((count + kNormChunk - 1) / kNormChunk);
    std::vector<double> partial(static_cast<std::size_t>(chunks), 0.0);
    const FlatRange* const last = nonzero + ranges;
    // Guided: runs of chunks that start long and shrink, each to whichever thread is free (a
    // partner on a slower core then costs no wait, and each thread still streams long runs);
    // each chunk's sum lands in its own slot, so the total does not depend on who summed it.
#pragma omp parallel for schedule(guided, 4)
    for (std::ptrdiff_t chunk = 0; chunk < chunks; ++chunk) {
      const std::size_t begin = static_cast<std::size_t>(chunk) * kNormChunk;
      const std::size_t end = std::min(count, begin + kNormChunk);
      double lanes[kLanes] = {};
      // The first range that ends after `begin`.
      const FlatRange* range = std::partition_point(
          nonzero, last, [begin](const FlatRange& r) { return r.offset + r.count <= begin; });
      bool any = false;
      for (; range != last && range->offset < end; ++range) {
        any = true;
        std::size_t i = std::max(begin, range->offset);
        const std::size_t stop = std::min(end, range->offset + range->count);
        // Lane (i − begin) mod kLanes, as in a pass over the whole chunk.
        for (; i < stop && (i - begin) % kLanes != 0; ++i) {
          lanes[(i - begin) % kLanes] += double(values[i]) * double(values[i]);
        }
        for (; i + kLanes <= stop; i += kLanes) {
          for (std::size_t k = 0; k < kLanes; ++k) {
            lanes[k] += double(values[i + k]) * double(values[i + k]);
          }
        }
        for (std::size_t k = 0; i < stop; ++i, ++k) {
          lanes[k] += double(values[i]) * double(values[i]);
        }
      }
      if (!any) continue;
      double sum = 0;
      for (double lane : lanes) sum += lane;
      partial[static_cast<std::size_t>(chunk)] = sum;
    }
    double total = 0;
    for (double p : partial) total += p;
    return total;
  }

  // sum_of_squares into *dst (backend memory), where decide_update reads it.
  template <class A>
  static void sum_of_squares_into(double* dst, const A* values, std::size_t count) {
    *dst = sum_of_squares(values, count);
  }
  template <class A>
  static void sum_of_squares_into(double* dst, const A* values, std::size_t count,
                                  const std::vector<FlatRange>& nonzero) {
    *dst = sum_of_squares(values, count, nonzero.data(), nonzero.size());
  }

  // The status' norm, scale and skip slots from its squares slot (core/update_status.hpp).
  static void decide_update(double* status, double grad_multiplier, double grad_clip,
                            const double* watched, int watched_count) {
    lightgpt::decide_update(status, grad_multiplier, grad_clip, watched, watched_count);
  }

  // adamw_update with the gradient scale taken from an update status, and nothing done when the
  // status says skip.
  template <class T, class A>
  static void adamw_update(T* params, A* master, A* m, A* v, const A* grads, std::size_t count,
                           AdamWStep<A> step, const double* status) {
    if (status[UpdateStatus::skip] != 0) return;
    step.grad_scale = A(status[UpdateStatus::scale]);
    adamw_update(params, master, m, v, grads, count, step);
  }
  // `written` (optional, CPU only): row r's gradient is zero where written[r] == 0, so only the
  // rows marked are read to find the ones with a gradient (ParameterStore::track_gradient_rows).
  template <class T, class A>
  static void adamw_update_sparse_rows(T* params, A* master, A* m, A* v, const A* grads,
                                       std::int64_t* seen, std::size_t rows, std::size_t width,
                                       std::int64_t step_index, int window, AdamWStep<A> step,
                                       const double* status,
                                       const std::uint8_t* written = nullptr) {
    if (status[UpdateStatus::skip] != 0) return;
    step.grad_scale = A(status[UpdateStatus::scale]);
    adamw_update_sparse_rows(params, master, m, v, grads, seen, rows, width, step_index, window,
                             step, written);
  }

  // master/m/v/grads are accum-typed; params is the working (storage-typed) copy, which may be the
  // same memory as master when the two types agree.
  template <class T, class A>
  static void adamw_update(T* params, A* master, A* m, A* v, const A* grads, std::size_t count,
                           const AdamWStep<A>& step) {
    constexpr std::size_t kChunk = 4096;
    const auto chunks = static_cast<std::ptrdiff_t>((count + kChunk - 1) / kChunk);
    // A model's biases and norm weights (a few C each) update in less time than a parallel
    // region takes to start and join, which on a loaded machine is a wait for a core. Guided, as
    // in sum_of_squares: long contiguous runs for the memory streams, the last ones short enough
    // that a thread on a slower core costs its partner little waiting.
#pragma omp parallel for schedule(guided, 4) if (chunks >= kParallelChunks)
    for (std::ptrdiff_t chunk = 0; chunk < chunks; ++chunk) {
      const std::size_t begin = static_cast<std::size_t>(chunk) * kChunk;
      adamw_span(params + begin, master + begin, m + begin, v + begin, grads + begin,
                 std::min(kChunk, count - begin), step);
    }
  }

  // adamw_update over a rows × width tensor of which few rows have a gradient in any one step
  // (TensorInfo::sparse_rows). Row r is updated exactly as by adamw_update when it has a gradient
  // now (then seen[r] = step_index) or had one within the last `window` steps; otherwise it is
  // left alone. When a row left alone for k steps next has a gradient, its moments first take the
  // k steps' decay (m·β1^k, v·β2^k: what k zero-gradient updates do to them), so the row differs
  // from plain AdamW only by the weight movement of those k steps, driven by a first moment that
  // had already decayed for `window` steps. Rows never seen have seen[r] = kAdamWNeverSeen.
  template <class T, class A>
  static void adamw_update_sparse_rows(T* params, A* master, A* m, A* v, const A* grads,
                                       std::int64_t* seen, std::size_t rows, std::size_t width,
                                       std::int64_t step_index, int window,
                                       const AdamWStep<A>& step,
                                       const std::uint8_t* written = nullptr) {
    // Token tables put the frequent (busy) rows first: interleaved chunks balance the threads.
    // Each thread first decides which of its rows to update, then updates them with the next
    // rows' moments, weights and gradients prefetched: the rows are scattered over a table far
    // larger than the caches, and without the prefetch the update waits on each row's loads.
#pragma omp parallel
    {
      std::vector<std::size_t> updates;
#pragma omp for schedule(static, 64) nowait
      for (std::ptrdiff_t r = 0; r < static_cast<std::ptrdiff_t>(rows); ++r) {
        const std::size_t begin = static_cast<std::size_t>(r) * width;
        const Eigen::Map<const Eigen::Array<A, Eigen::Dynamic, 1>> g(grads + begin,
                                                                     Eigen::Index(width));
        // Rows the store knows to be zero are not read; for the others a vectorised reduction,
        // not an early exit: most rows are all zero.
        const bool has_gradient =
            (written == nullptr || written[r] != 0) && g.abs().maxCoeff() != A(0);
        if (has_gradient) {
          const std::int64_t skipped = step_index - 1 - (seen[r] + window);
          if (skipped > 0) {
            const A decay1 = A(std::pow(double(step.beta1), double(skipped)));
            const A decay2 = A(std::pow(double(step.beta2), double(skipped)));
            for (std::size_t c = begin; c < begin + width; ++c) {
              m[c] *= decay1;
              v[c] *= decay2;
            }
          }
          seen[r] = step_index;
        } else if (step_index - seen[r] > window) {
          continue;
        }
        updates.push_back(begin);
      }
      constexpr std::size_t kAhead = 2;  // rows
      constexpr std::size_t kLine = 64 / sizeof(A);
      for (std::size_t i = 0; i < updates.size(); ++i) {
        if (i + kAhead < updates.size()) {
          const std::size_t next = updates[i + kAhead];
          for (std::size_t c = 0; c < width; c += kLine) {
            __builtin_prefetch(m + next + c, 1);
            __builtin_prefetch(v + next + c, 1);
            __builtin_prefetch(master + next + c, 1);
            __builtin_prefetch(grads + next + c, 0);
          }
        }
        const std::size_t begin = updates[i];
        adamw_span(params + begin, master + begin, m + begin, v + begin, grads + begin, width,
                   step);
      }
    }
  }

 private:
  // AdamW on n consecutive elements, as Eigen array expressions (vectorised; std::sqrt in a
  // plain loop keeps the compiler from vectorising, for errno's sake):
  //   g = grad · scale; m = β1·m + (1 − β1)·g; v = β2·v + (1 − β2)·g²;
  //   w -= lr · ((m / bc1) / (√(v / bc2) + eps) + wd · w).
  template <class T, class A>
  static void adamw_span(T* params, A* master, A* m, A* v, const A* grads, std::size_t n,
                         const AdamWStep<A>& step) {
    using Array = Eigen::Array<A, Eigen::Dynamic, 1>;
    const auto size = static_cast<Eigen::Index>(n);
    Eigen::Map<Array> first(m, size), second(v, size), weights(master, size);
    const auto g = Eigen::Map<const Array>(grads, size) * step.grad_scale;
    first = step.beta1 * first + (A(1) - step.beta1) * g;
    second = step.beta2 * second + (A(1) - step.beta2) * g * g;
    weights -= step.lr * ((first / step.bias_correction1) /
                              ((second / step.bias_correction2).sqrt() + step.eps) +
                          step.weight_decay * weights);
    if (static_cast<const void*>(params) != static_cast<const void*>(master)) {
      for (std::size_t i = 0; i < n; ++i) params[i] = T(master[i]);
    }
  }
};

}  // namespace lightgpt::cpu

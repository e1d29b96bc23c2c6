// The CPU side of GPT's batch split (GPT::set_batch_split; docs/design.md, "Batch split"): run
// one task per row group on its own OpenMP thread, and add a group's gradients into the model's.
// Kernels called inside a group's task find themselves in a parallel region and run on that
// thread alone (nested regions are inactive; the GEMM split checks omp_in_parallel), so a group
// computes the same bits on whichever thread, and with any number of threads, it runs.
#pragma once

#include <algorithm>
#include <cstddef>
#include <exception>
#include <vector>

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace lightgpt::cpu {

// The threads an OpenMP parallel region started here would have (1 without OpenMP).
inline int max_threads() {
#if defined(_OPENMP)
  return std::max(1, omp_get_max_threads());
#else
  return 1;
#endif
}

// task(k) for k = 0 … groups−1, each on one thread of a team of min(groups, threads); the first
// exception any task throws is rethrown here once all have finished.
template <class Task>
void run_row_groups(int groups, Task&& task) {
  std::vector<std::exception_ptr> failures(static_cast<std::size_t>(groups));
#if defined(_OPENMP)
  const int threads = std::max(1, std::min(groups, max_threads()));
#pragma omp parallel for schedule(static, 1) num_threads(threads)
#endif
  for (int k = 0; k < groups; ++k) {
    try {
      task(k);
    } catch (...) {
      failures[static_cast<std::size_t>(k)] = std::current_exception();
    }
  }
  for (const std::exception_ptr& failure : failures) {
    if (failure) std::rethrow_exception(failure);
  }
}

// to[r.offset + i] += from[r.offset + i], then from[…] = 0, over each range r; each range is cut
// evenly among the threads, so the result does not depend on their number.
template <class A, class Range>
void add_and_clear(A* to, A* from, const std::vector<Range>& ranges) {
  std::size_t total = 0;
  for (const Range& range : ranges) total += range.count;
  constexpr std::size_t kParallelElements = std::size_t(1) << 16;
#if defined(_OPENMP)
#pragma omp parallel if (total >= kParallelElements)
#endif
  {
#if defined(_OPENMP)
    const std::size_t thread = static_cast<std::size_t>(omp_get_thread_num());
    const std::size_t threads = static_cast<std::size_t>(omp_get_num_threads());
#else
    const std::size_t thread = 0, threads = 1;
#endif
    for (const Range& range : ranges) {
      const std::size_t begin = range.offset + range.count * thread / threads;
      const std::size_t end = range.offset + range.count * (thread + 1) / threads;
      for (std::size_t i = begin; i < end; ++i) {
        to[i] += from[i];
        from[i] = A(0);
      }
    }
  }
  (void)total;
}

}  // namespace lightgpt::cpu

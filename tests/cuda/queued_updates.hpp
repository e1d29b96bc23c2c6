// One sequence of AdamW updates queued on either backend, for the CUDA test of the update status
// (test_cuda_step.cu) and its CPU Fp32 reference (reference.cpp): the same store, gradients and
// watched losses on both sides, and what each update decided read back after each one.
#pragma once

#include <cstdint>
#include <lightgpt/core/precision.hpp>
#include <lightgpt/model/parameters.hpp>
#include <lightgpt/optim/adamw.hpp>
#include <vector>

namespace lightgpt::testing {

struct QueuedUpdates {
  std::vector<float> master, first_moment, second_moment;
  std::vector<std::int64_t> last_gradient_steps;
  std::vector<UpdateResult> results;
  std::int64_t steps = 0;
};

// A decayed matrix, a sparse_rows table and a bias: clipping, the sparse rows' skip and plain
// updates all in one layout.
inline ParameterLayout queued_updates_layout() {
  ParameterLayout layout;
  layout.add("matrix", {6, 5}, true, Init::normal(0.1));
  layout.add("rows", {8, 4}, false, Init::normal(0.1), /*sparse_rows=*/true);
  layout.add("bias", {5}, false, Init::zeros());
  return layout;
}

// Update s takes grads[s] (layout-sized) and the watched loss losses[s].
template <class Backend>
QueuedUpdates run_queued_updates(std::uint64_t seed, const std::vector<std::vector<float>>& grads,
                                 const std::vector<double>& losses, double grad_multiplier,
                                 double grad_clip) {
  using O = Ops<Backend>;
  const ParameterLayout layout = queued_updates_layout();
  ParameterStore<Fp32, Backend> store(layout);
  store.initialize(seed);
  AdamWConfig config;
  config.grad_clip = grad_clip;
  config.sparse_rows_window = 1;
  AdamW<Backend, float> optimizer(layout, config);
  Buffer<double, Backend> watched(1);
  QueuedUpdates run;
  for (std::size_t s = 0; s < grads.size(); ++s) {
    O::copy_from_host(store.grads(), grads[s].data(), layout.size());
    O::copy_from_host(watched.data(), &losses[s], 1);
    optimizer.queue_step(store, 1e-2, grad_multiplier, watched.data(), 1);
    run.results.push_back(optimizer.result());
  }
  run.master.resize(layout.size());
  run.first_moment.resize(layout.size());
  run.second_moment.resize(layout.size());
  run.last_gradient_steps.resize(AdamW<Backend, float>::sparse_row_count(layout));
  O::copy_to_host(run.master.data(), store.master(), layout.size());
  O::copy_to_host(run.first_moment.data(), optimizer.first_moment(), layout.size());
  O::copy_to_host(run.second_moment.data(), optimizer.second_moment(), layout.size());
  O::copy_to_host(run.last_gradient_steps.data(), optimizer.last_gradient_steps(),
                  run.last_gradient_steps.size());
  run.steps = optimizer.steps();
  return run;
}

}  // namespace lightgpt::testing

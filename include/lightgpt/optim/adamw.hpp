// AdamW with decoupled weight decay (Loshchilov & Hutter), applied per tensor: only tensors the
// layout flags for decay (matrices) are decayed. Gradients are clipped by their global norm before
// the update. Moments live in two allocations parallel to the parameter layout. Tensors flagged
// sparse_rows (an input embedding table) skip rows idle for longer than sparse_rows_window steps.
// The norm, the clip and the decision to skip a non-finite step are taken in backend memory
// (core/update_status.hpp); the host reads them only when it asks for result().
#pragma once

#include <cmath>
#include <cstdint>
#include <memory>
#include <type_traits>
#include <utility>
#include <vector>

#include "../backend/contract.hpp"
#include "../core/arena.hpp"
#include "../core/backend_tags.hpp"
#include "../core/error.hpp"
#include "../core/layout.hpp"
#include "../core/update_status.hpp"

namespace lightgpt {

struct AdamWConfig {
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  double weight_decay = 0.1;
  double grad_clip = 1.0;  // global-norm clip; 0 disables clipping
  // Tensors flagged sparse_rows: a row is updated for this many steps after its last gradient
  // and then left alone until its next one (Ops::adamw_update_sparse_rows). After 100 steps
  // Adam's step from the remaining momentum is below (β1/√β2)^100 ≈ 3e-4 of its first.
  int sparse_rows_window = 100;
  // Learning-rate multiplier of the sparse_rows tensors. A token's row has a gradient only in the
  // steps whose batch holds the token, so rare tokens' rows move little at the trunk's rate.
  double sparse_rows_lr_scale = 1.0;

  void validate() const {
    LIGHTGPT_CHECK(beta1 >= 0 && beta1 < 1, "AdamW beta1 must lie in [0, 1), got ", beta1);
    LIGHTGPT_CHECK(beta2 >= 0 && beta2 < 1, "AdamW beta2 must lie in [0, 1), got ", beta2);
    LIGHTGPT_CHECK(eps > 0, "AdamW eps must be positive, got ", eps);
    LIGHTGPT_CHECK(weight_decay >= 0, "AdamW weight_decay must be non-negative, got ",
                   weight_decay);
    LIGHTGPT_CHECK(grad_clip >= 0, "AdamW grad_clip must be non-negative, got ", grad_clip);
    LIGHTGPT_CHECK(sparse_rows_window >= 0, "AdamW sparse_rows_window must be non-negative, got ",
                   sparse_rows_window);
    LIGHTGPT_CHECK(sparse_rows_lr_scale > 0 && std::isfinite(sparse_rows_lr_scale),
                   "AdamW sparse_rows_lr_scale must be positive, got ", sparse_rows_lr_scale);
  }

  // The constants of update number `step` (1-based) of `tensor`; the gradient scale (clip and
  // loss-scale multiplier) is the update status', which the update kernels read.
  template <class A>
  AdamWStep<A> step_for(const TensorInfo& tensor, double lr, std::int64_t step) const {
    return {A(tensor.sparse_rows ? lr * sparse_rows_lr_scale : lr),
            A(beta1),
            A(beta2),
            A(eps),
            A(tensor.weight_decay ? weight_decay : 0.0),
            A(1.0 - std::pow(beta1, double(step))),
            A(1.0 - std::pow(beta2, double(step))),
            A(1)};
  }
};

// What one update decided: the global norm of the multiplied gradients before clipping, whether
// the update was skipped (that norm or a watched value not finite), and the skips so far.
struct UpdateResult {
  double norm = 0;
  bool skipped = false;
  std::int64_t skipped_total = 0;
};

// An optimizer's update status in backend memory and its way back to the host: started after
// each queued decision, waited for only when result() is asked.
template <class Backend>
class UpdateTracker {
 public:
  using O = Ops<Backend>;

  UpdateTracker()
      : status_(UpdateStatus::size),
        readback_(std::make_unique<typename O::template HostReadback<double>>()) {
    O::fill_zero(status_.data(), status_.size());
  }

  double* status() { return status_.data(); }
  void queued() {
    readback_->start(status_.data(), UpdateStatus::size);
    pending_ = true;
  }
  // The last decision; `steps` (the optimizer's count of updates taken, which assumed each queued
  // update would be) loses the updates skipped since the previous read.
  UpdateResult result(std::int64_t& steps) {
    if (pending_) {
      const double* status = readback_->wait();
      const std::int64_t skipped_total = std::int64_t(status[UpdateStatus::skipped]);
      steps -= skipped_total - last_.skipped_total;
      last_ = {status[UpdateStatus::norm], status[UpdateStatus::skip] != 0, skipped_total};
      pending_ = false;
    }
    return last_;
  }

 private:
  Buffer<double, Backend> status_;
  std::unique_ptr<typename O::template HostReadback<double>> readback_;
  bool pending_ = false;
  UpdateResult last_;
};

template <class Backend, class A>
class AdamW {
 public:
  using O = Ops<Backend>;

  AdamW(const ParameterLayout& layout, AdamWConfig config = {})
      : layout_(layout), config_(config), m_(layout.size()), v_(layout.size()),
        seen_(sparse_row_count(layout)) {
    config_.validate();
    O::fill_zero(m_.data(), m_.size());
    O::fill_zero(v_.data(), v_.size());
    const std::vector<std::int64_t> never(seen_.size(), kAdamWNeverSeen);
    O::copy_from_host(seen_.data(), never.data(), never.size());
  }

  // One update from the store's gradients times grad_multiplier (1 / loss scale when the loss was
  // scaled), queued without a host read: the global norm, the clip and the skip decision stay in
  // status() (core/update_status.hpp), where the update kernels take them. When the norm, or any of
  // the `watched` values (backend memory: a step's losses), is not finite nothing is updated. The
  // bias corrections count the updates taken, so a caller whose updates may be skipped reads
  // result() before queuing the next one.
  template <class Store>
  void queue_step(Store& store, double lr, double grad_multiplier = 1.0,
                  const double* watched = nullptr, int watched_count = 0) {
    static_assert(std::is_same_v<typename Store::backend, Backend>,
                  "AdamW<Backend, A>::step: the model lives on another backend than the optimizer; "
                  "declare the optimizer as Model::Optimizer");
    static_assert(std::is_same_v<typename Store::A, A>,
                  "AdamW<Backend, A>::step: A must be the model's accumulation type (float for "
                  "Fp32/Bf16/Fp16, double for Fp64); declare the optimizer as Model::Optimizer");
    if constexpr (std::is_same_v<typename Store::backend, Backend> &&
                  std::is_same_v<typename Store::A, A>) {
      // Read through a const store, which keeps the gradient rows known (track_gradient_rows).
      const auto& read = std::as_const(store);
      double* squares = tracker_.status() + UpdateStatus::squares;
      bool summed = false;
      if constexpr (std::is_same_v<Backend, Cpu>) {
        if (read.gradient_rows_known()) {
          O::sum_of_squares_into(squares, read.grads(), layout_.size(),
                                 read.nonzero_gradient_ranges());
          summed = true;
        }
      }
      if (!summed) O::sum_of_squares_into(squares, read.grads(), layout_.size());
      O::decide_update(tracker_.status(), grad_multiplier, config_.grad_clip, watched,
                       watched_count);
      update(store, lr);
      tracker_.queued();
    }
  }

  // The last queued update's decision, waiting for it.
  UpdateResult result() { return tracker_.result(steps_); }

  // queue_step and result() in one: the global norm of the multiplied gradients before clipping;
  // when it is not finite nothing was updated (the caller decides whether to stop or skip).
  template <class Store>
  double step(Store& store, double lr, double grad_multiplier = 1.0) {
    queue_step(store, lr, grad_multiplier);
    return result().norm;
  }

  // Rows of the sparse_rows tensors, in layout order: the step of each row's last gradient (the
  // checkpoint keeps them with the moments).
  static std::size_t sparse_row_count(const ParameterLayout& layout) {
    std::size_t rows = 0;
    for (const TensorInfo& tensor : layout.tensors()) {
      if (tensor.sparse_rows) rows += static_cast<std::size_t>(tensor.shape.front());
    }
    return rows;
  }
  std::int64_t* last_gradient_steps() { return seen_.data(); }
  const std::int64_t* last_gradient_steps() const { return seen_.data(); }

  const AdamWConfig& config() const { return config_; }
  const ParameterLayout& layout() const { return layout_; }
  std::int64_t steps() const { return steps_; }
  void set_steps(std::int64_t steps) { steps_ = steps; }
  A* first_moment() { return m_.data(); }
  A* second_moment() { return v_.data(); }
  const A* first_moment() const { return m_.data(); }
  const A* second_moment() const { return v_.data(); }

 private:
  // The update kernels, which take the gradient scale and the skip flag from the status.
  template <class Store>
  void update(Store& store, double lr) {
    const double* status = tracker_.status();
    ++steps_;
    std::size_t seen_at = 0;
    for (const TensorInfo& tensor : layout_.tensors()) {
      const AdamWStep<A> update = config_.step_for<A>(tensor, lr, steps_);
      const std::size_t at = tensor.offset;
      const A* grads = std::as_const(store).grads() + at;
      if (tensor.sparse_rows) {
        const auto rows = static_cast<std::size_t>(tensor.shape.front());
        if constexpr (std::is_same_v<Backend, Cpu>) {
          O::adamw_update_sparse_rows(
              store.values() + at, store.master() + at, m_.data() + at, v_.data() + at, grads,
              seen_.data() + seen_at, rows, tensor.numel / rows, steps_, config_.sparse_rows_window,
              update, status, store.gradient_rows_known() ? store.gradient_row_mask() : nullptr);
        } else {
          O::adamw_update_sparse_rows(store.values() + at, store.master() + at, m_.data() + at,
                                      v_.data() + at, grads, seen_.data() + seen_at, rows,
                                      tensor.numel / rows, steps_, config_.sparse_rows_window,
                                      update, status);
        }
        seen_at += rows;
      } else {
        O::adamw_update(store.values() + at, store.master() + at, m_.data() + at, v_.data() + at,
                        grads, tensor.numel, update, status);
      }
    }
  }

  ParameterLayout layout_;
  AdamWConfig config_;
  Buffer<A, Backend> m_, v_;
  Buffer<std::int64_t, Backend> seen_;
  UpdateTracker<Backend> tracker_;
  std::int64_t steps_ = 0;
};

}  // namespace lightgpt

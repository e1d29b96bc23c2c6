// AdamW with decoupled weight decay (Loshchilov & Hutter), applied per tensor: only tensors the
// layout flags for decay (matrices) are decayed. Gradients are clipped by their global norm before
// the update. Moments live in two allocations parallel to the parameter layout. Tensors flagged
// sparse_rows (an input embedding table) skip rows idle for longer than sparse_rows_window steps.
#pragma once

#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "../backend/contract.hpp"
#include "../core/arena.hpp"
#include "../core/error.hpp"
#include "../core/layout.hpp"

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

  // What the gradients are multiplied by in an update whose multiplied gradients have the global
  // norm `norm`: grad_multiplier, and the clip to grad_clip when the norm exceeds it.
  double gradient_scale(double norm, double grad_multiplier) const {
    return (grad_clip > 0 && norm > grad_clip ? grad_clip / norm : 1.0) * grad_multiplier;
  }
  // The constants of update number `step` (1-based) of `tensor`.
  template <class A>
  AdamWStep<A> step_for(const TensorInfo& tensor, double lr, std::int64_t step,
                        double gradient_scale) const {
    return {A(tensor.sparse_rows ? lr * sparse_rows_lr_scale : lr),
            A(beta1),
            A(beta2),
            A(eps),
            A(tensor.weight_decay ? weight_decay : 0.0),
            A(1.0 - std::pow(beta1, double(step))),
            A(1.0 - std::pow(beta2, double(step))),
            A(gradient_scale)};
  }
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
  // scaled). Returns the global norm of the multiplied gradients before clipping; when it is not
  // finite nothing is updated (the caller decides whether to stop or skip).
  template <class Store>
  double step(Store& store, double lr, double grad_multiplier = 1.0) {
    static_assert(std::is_same_v<typename Store::backend, Backend>,
                  "AdamW<Backend, A>::step: the model lives on another backend than the optimizer; "
                  "declare the optimizer as Model::Optimizer");
    static_assert(std::is_same_v<typename Store::A, A>,
                  "AdamW<Backend, A>::step: A must be the model's accumulation type (float for "
                  "Fp32/Bf16/Fp16, double for Fp64); declare the optimizer as Model::Optimizer");
    if constexpr (std::is_same_v<typename Store::backend, Backend> &&
                  std::is_same_v<typename Store::A, A>) {
      return update(store, lr, grad_multiplier);
    } else {
      return 0.0;  // never reached: the assertions above stop the build before anything cascades
    }
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
  template <class Store>
  double update(Store& store, double lr, double grad_multiplier) {
    const double norm =
        std::sqrt(O::sum_of_squares(store.grads(), layout_.size())) * grad_multiplier;
    if (!std::isfinite(norm)) return norm;
    ++steps_;
    const double scale = config_.gradient_scale(norm, grad_multiplier);
    std::size_t seen_at = 0;
    for (const TensorInfo& tensor : layout_.tensors()) {
      const AdamWStep<A> update = config_.step_for<A>(tensor, lr, steps_, scale);
      const std::size_t at = tensor.offset;
      if (tensor.sparse_rows) {
        const auto rows = static_cast<std::size_t>(tensor.shape.front());
        O::adamw_update_sparse_rows(store.values() + at, store.master() + at, m_.data() + at,
                                    v_.data() + at, store.grads() + at, seen_.data() + seen_at,
                                    rows, tensor.numel / rows, steps_, config_.sparse_rows_window,
                                    update);
        seen_at += rows;
      } else {
        O::adamw_update(store.values() + at, store.master() + at, m_.data() + at, v_.data() + at,
                        store.grads() + at, tensor.numel, update);
      }
    }
    return norm;
  }

  ParameterLayout layout_;
  AdamWConfig config_;
  Buffer<A, Backend> m_, v_;
  Buffer<std::int64_t, Backend> seen_;
  std::int64_t steps_ = 0;
};

}  // namespace lightgpt

// MTP<K>: multi-token prediction as a head option. K counts the predicted tokens per position:
// MTP<1> is next-token prediction only; MTP<K> adds auxiliary losses for targets t+2 … t+K,
// weighted at run time by w_mtp (docs/design.md, "Training objective": L = L_main + w_mtp · mean_j
// L_aux(j)).
// Also here: MtpSchedule, the w_mtp schedule (linear ramp-up, optional linear decay to 0), and
// MtpAdapters, the optional per-depth adapter h_j = h + W_j·LN_j(h) + b_j (Gloeckle et al. 2024)
// that both heads apply before their shared tables for depths j ≥ 2 (MtpOptions::adapter).
#pragma once

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <tuple>
#include <type_traits>

#include "../backend/contract.hpp"
#include "../core/config.hpp"
#include "../core/error.hpp"
#include "../core/layout.hpp"
#include "../core/losses.hpp"

namespace lightgpt {

template <int K>
struct MTP {
  static_assert(K >= 1,
                "MTP<K>: K is the number of predicted tokens per position (MTP<1> = next token "
                "only) and must be at least 1");
  static constexpr int depth = K;
};

// The settings MTP adds to a head (ModelConfig::part<MtpOptions>()).
struct MtpOptions {
  // "mtp.adapter": a per-depth adapter (LayerNorm + C × C linear + residual) before the shared
  // head tables, for depths j ≥ 2.
  bool adapter = false;

  static constexpr auto fields = std::tuple{option_field("mtp.adapter", &MtpOptions::adapter)};
  void validate(const ModelConfig&) const {}
};

namespace detail {
template <class T>
struct is_mtp : std::false_type {};
template <int K>
struct is_mtp<MTP<K>> : std::true_type {};
}  // namespace detail

template <class T>
concept MtpPolicy = detail::is_mtp<T>::value;

// w_mtp at a training step: weight · min(1, step / rampup_steps), and with decay_to_zero also
// · (total_steps - step) / (total_steps - rampup_steps) once the ramp is over, reaching 0 at
// total_steps. It only produces a number for GPT::set_mtp_weight; nothing is rebuilt when it
// changes.
struct MtpSchedule {
  double weight = kDefaultMtpWeight;  // the model's and the trainer's default too
  std::int64_t rampup_steps = 0;
  bool decay_to_zero = false;
  std::int64_t total_steps = 0;

  void validate() const {
    LIGHTGPT_CHECK(weight >= 0 && weight < 1e30,
                   "MtpSchedule.weight must be finite and "
                   "non-negative, got ",
                   weight);
    LIGHTGPT_CHECK(rampup_steps >= 0, "MtpSchedule.rampup_steps must be non-negative, got ",
                   rampup_steps);
    LIGHTGPT_CHECK(!decay_to_zero || total_steps > rampup_steps, "MtpSchedule.total_steps (",
                   total_steps, ") must exceed rampup_steps (", rampup_steps,
                   ") when decay_to_zero is set");
  }

  double at(std::int64_t step) const {
    validate();
    step = std::max<std::int64_t>(step, 0);
    double factor = 1.0;
    if (rampup_steps > 0 && step < rampup_steps) factor = double(step) / double(rampup_steps);
    if (decay_to_zero && step >= rampup_steps) {
      factor = std::max(0.0, double(total_steps - step) / double(total_steps - rampup_steps));
    }
    return weight * factor;
  }
};

namespace detail {

// The per-depth adapters of MTP<Depth> (slot a = j - 2 for depth j), present only when
// MtpOptions::adapter is set and Depth > 1. Tensors (stacked over the Depth - 1 depths):
// mtp_adapter_lnw, mtp_adapter_lnb, mtp_adapter_w (C × C, weight decay), mtp_adapter_b.
template <class Backend, class P, int Depth>
class MtpAdapters {
 public:
  using T = typename P::storage_t;
  using A = typename P::accum_t;
  using O = Ops<Backend>;

  explicit MtpAdapters(const ModelConfig& config) : enabled_(used(config)), C_(config.d_model) {}

  static bool used(const ModelConfig& config) {
    return Depth > 1 && config.part<MtpOptions>().adapter;
  }

  static void declare(ParameterLayout& layout, const ModelConfig& config) {
    if (!used(config)) return;
    const std::int64_t K = Depth - 1, C = config.d_model;
    layout.add("mtp_adapter_lnw", {K, C}, false, Init::ones());
    layout.add("mtp_adapter_lnb", {K, C}, false, Init::zeros());
    layout.add("mtp_adapter_w", {K, C, C}, true, Init::normal(0.02));
    layout.add("mtp_adapter_b", {K, C}, false, Init::zeros());
  }

  bool enabled() const { return enabled_; }

  void bind_parameters(const ParameterLayout& layout, T* params, A* grads) {
    if (!enabled_) return;
    for (BoundTensor<T, A>* tensor : {&lnw_, &lnb_, &w_, &b_}) tensor->bind(layout, params, grads);
  }

  template <class Bind>
  void bind_activations(Bind& bind, std::size_t positions) {
    if (!enabled_) return;
    const std::size_t K = Depth - 1, per_depth = positions * C_;
    bind(ln_, K * per_depth);
    bind(mean_, K * positions);
    bind(rstd_, K * positions);
    bind(out_, K * per_depth);
    bind(dout_, per_depth);
    bind(dln_, per_depth);
  }

  // h_j = hidden + W_j · LN_j(hidden) + b_j for depth j ≥ 2, keeping what backward needs.
  const T* forward(int j, const T* hidden, int N) {
    const std::size_t a = static_cast<std::size_t>(j - 2), rows = a * N, values = rows * C_;
    O::layernorm_forward(ln_ + values, mean_ + rows, rstd_ + rows, hidden, lnw_.value + a * C_,
                         lnb_.value + a * C_, N, C_);
    T* out = out_ + values;
    O::matmul_forward(out, ln_ + values, w_.value + a * C_ * C_, b_.value + a * C_, N, C_, C_);
    O::residual_forward(out, out, hidden, static_cast<std::size_t>(N) * C_);
    return out;
  }

  // h_j as computed by the last forward(j, ...).
  const T* forward_output(int j, int N) const {
    return out_ + static_cast<std::size_t>(j - 2) * N * C_;
  }

  // Scratch for d(objective)/d(h_j), filled by the head before backward(j, ...).
  T* output_gradient() { return dout_; }

  // Given output_gradient() = d/dh_j, accumulates d/d(hidden) and the adapter's gradients.
  void backward(int j, const T* hidden, T* dhidden, int N) {
    const std::size_t a = static_cast<std::size_t>(j - 2), rows = a * N, values = rows * C_;
    const std::size_t count = static_cast<std::size_t>(N) * C_;
    O::residual_forward(dhidden, dhidden, dout_, count);
    O::matmul_backward(overwrite(dln_), accumulate(w_.grad + a * C_ * C_),
                       accumulate(b_.grad + a * C_), dout_, ln_ + values, w_.value + a * C_ * C_, N,
                       C_, C_);
    O::layernorm_backward(accumulate(dhidden), accumulate(lnw_.grad + a * C_),
                          accumulate(lnb_.grad + a * C_), dln_, hidden, lnw_.value + a * C_,
                          mean_ + rows, rstd_ + rows, N, C_);
  }

 private:
  bool enabled_;
  int C_;
  BoundTensor<T, A> lnw_{"mtp_adapter_lnw"}, lnb_{"mtp_adapter_lnb"}, w_{"mtp_adapter_w"},
      b_{"mtp_adapter_b"};
  T *ln_ = nullptr, *out_ = nullptr, *dout_ = nullptr, *dln_ = nullptr;
  A *mean_ = nullptr, *rstd_ = nullptr;
};

}  // namespace detail
}  // namespace lightgpt

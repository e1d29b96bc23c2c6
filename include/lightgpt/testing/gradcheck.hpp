// Finite-difference gradient checks for models and for the parts an extension author writes: the
// gradient backward() accumulates is compared, element by element, with central differences of
// the objective, for sampled elements of every parameter tensor. Meant for GPT<Fp64, …, Cpu>, where
// a relative error below 1e-6 is expected of a correct backward (docs/extending.md).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "../core/layout.hpp"
#include "../core/rng.hpp"

namespace lightgpt::testing {

struct GradCheckOptions {
  double step = 1e-5;  // h of the central difference
  // 2: (f(x + h) − f(x − h)) / 2h. 4: the fourth-order stencil (truncation O(h⁴)), for objectives
  // whose third derivatives are large (LayerNorm right before a head), with h ≈ 1e-4.
  int order = 2;
  int samples_per_tensor = 8;        // the first and last element, then random ones; 0: every one
  std::uint64_t seed = 3;            // which random elements
  double floor = 1e-4;               // |gradients| below this are compared absolutely, against it
  std::vector<std::string> tensors;  // only these tensors; empty: every tensor of the layout
};

struct GradCheckEntry {
  std::string tensor;
  std::size_t index = 0;
  double analytic = 0, numeric = 0;
  // |numeric − analytic| / max(|numeric|, |analytic|, floor)
  double error = 0;
};

struct GradCheckReport {
  std::vector<GradCheckEntry> entries;

  // The entry with the largest error (entries must not be empty).
  const GradCheckEntry& worst() const {
    return *std::max_element(entries.begin(), entries.end(),
                             [](const auto& a, const auto& b) { return a.error < b.error; });
  }
  double max_error() const { return entries.empty() ? 0.0 : worst().error; }

  // One line per entry whose error reaches `tolerance` ("" when every entry is within it), e.g.
  // EXPECT_EQ(report.failures(1e-6), "").
  std::string failures(double tolerance) const {
    std::ostringstream out;
    out.precision(17);
    for (const GradCheckEntry& e : entries) {
      if (!(e.error < tolerance)) {
        out << e.tensor << "[" << e.index << "]: analytic " << e.analytic << ", numeric "
            << e.numeric << ", error " << e.error << "\n";
      }
    }
    return out.str();
  }
};

// Compares the gradients already in `store` (a ParameterStore, filled by the caller's backward of
// the objective) with central differences of `objective()`, perturbing each sampled element
// through the store (so 16-bit working copies follow) and restoring it.
template <class Store, class Objective>
GradCheckReport check_gradients(Store& store, Objective&& objective,
                                const GradCheckOptions& options = {}) {
  LIGHTGPT_CHECK(options.order == 2 || options.order == 4,
                 "GradCheckOptions::order must be 2 or 4, got ", options.order);
  GradCheckReport report;
  Rng pick(options.seed);
  for (const TensorInfo& tensor : store.layout().tensors()) {
    if (!options.tensors.empty() && std::find(options.tensors.begin(), options.tensors.end(),
                                              tensor.name) == options.tensors.end()) {
      continue;
    }
    const auto grads = store.read_grad(tensor);
    auto values = store.read(tensor);
    using Value = typename decltype(values)::value_type;
    std::vector<std::size_t> samples;
    if (options.samples_per_tensor <= 0) {
      for (std::size_t i = 0; i < tensor.numel; ++i) samples.push_back(i);
    } else {
      samples = {0, tensor.numel - 1};
      for (int i = 2; i < options.samples_per_tensor; ++i) {
        samples.push_back(pick.next_u64() % tensor.numel);
      }
    }
    for (std::size_t index : samples) {
      const double original = double(values[index]);
      auto at = [&](double offset) {
        values[index] = static_cast<Value>(original + offset);
        store.write(tensor, values.data());
        return double(objective());
      };
      const double h = options.step;
      GradCheckEntry entry;
      entry.numeric = options.order == 2
                          ? (at(h) - at(-h)) / (2 * h)
                          : (8 * (at(h) - at(-h)) - (at(2 * h) - at(-2 * h))) / (12 * h);
      values[index] = static_cast<Value>(original);
      store.write(tensor, values.data());
      entry.tensor = tensor.name;
      entry.index = index;
      entry.analytic = double(grads[index]);
      const double scale =
          std::max({std::abs(entry.numeric), std::abs(entry.analytic), options.floor});
      entry.error = std::abs(entry.numeric - entry.analytic) / scale;
      report.entries.push_back(entry);
    }
  }
  return report;
}

// A model's whole gradient: `objective(model)` runs a training forward and returns what
// backward() differentiates (see training_objective below); it must be deterministic (dropout
// reseeded to the same value in every call, say). Runs zero_grad, objective and backward() once,
// then check_gradients over the model's parameter store.
template <class Model, class Objective>
GradCheckReport gradient_check(Model& model, Objective&& objective,
                               const GradCheckOptions& options = {}) {
  model.zero_grad();
  objective(model);
  model.backward();
  return check_gradients(model.parameters(), [&] { return objective(model); }, options);
}

// The objective of GPT's training forward for a given batch: the main loss plus w_mtp · the mean
// of the auxiliary depths, with dropout reseeded so every evaluation draws the same masks.
template <class Model, class Tok>
auto training_objective(const std::vector<Tok>& tokens, int B, int seq_len,
                        std::uint64_t dropout_seed = 5) {
  return [&tokens, B, seq_len, dropout_seed](Model& model) {
    model.set_dropout_seed(dropout_seed);
    model.forward(tokens.data(), B, seq_len);
    const auto& losses = model.losses();
    double auxiliary = 0;
    for (int j = 1; j < losses.depths; ++j) auxiliary += double(losses.depth[j]);
    return double(losses.main) +
           (losses.depths > 1 ? double(model.mtp_weight()) * auxiliary / (losses.depths - 1) : 0.0);
  };
}

}  // namespace lightgpt::testing

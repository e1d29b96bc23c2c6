// Run-to-run determinism, the rule every backend keeps (docs/design.md, "Numerics and
// determinism"): the same model, seed and batches give bit-identical losses and gradients. One
// recorded training run per call; two records of the same setup must compare equal.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "../core/config.hpp"
#include "../optim/adamw.hpp"

namespace lightgpt::testing {

struct TrainingRecord {
  std::vector<double> losses;  // per step: every MTP depth's loss, then the CoCoNT KL
  std::vector<double> grads;   // the last step's gradients, every tensor in layout order

  bool operator==(const TrainingRecord&) const = default;
};

// Builds Model(config, seed), lets `prepare(model)` set it up (CoCoNT, weights, dropout…), then
// trains `steps` steps of AdamW (lr 3e-3) on consecutive batches of `tokens` (B windows of
// T + mtp_depth ids each), recording every loss and the gradients of the last step, which is not
// applied.
template <class Model, class Prepare>
TrainingRecord record_training_run(const ModelConfig& config, std::uint64_t seed,
                                   Prepare&& prepare, const std::vector<std::int32_t>& tokens,
                                   int B, int seq_len, int steps) {
  Model model(config, seed);
  prepare(model);
  AdamW<typename Model::backend, typename Model::A> optimizer(model.parameters().layout());
  const std::size_t batch = std::size_t(B) * (seq_len + Model::mtp_depth);
  LIGHTGPT_CHECK(tokens.size() >= batch * std::size_t(steps), "record_training_run: ",
                 tokens.size(), " tokens for ", steps, " batches of ", batch);
  TrainingRecord record;
  for (int step = 0; step < steps; ++step) {
    model.zero_grad();
    model.forward(tokens.data() + std::size_t(step) * batch, B, seq_len);
    const auto& losses = model.losses();
    for (int j = 0; j < losses.depths; ++j) record.losses.push_back(double(losses.depth[j]));
    record.losses.push_back(double(losses.cocont));
    model.backward();
    if (step + 1 < steps) optimizer.step(model.parameters(), 3e-3);
  }
  for (const TensorInfo& tensor : model.parameters().layout().tensors()) {
    for (auto g : model.parameters().read_grad(tensor)) record.grads.push_back(double(g));
  }
  return record;
}

}  // namespace lightgpt::testing

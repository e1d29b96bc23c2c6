// MTP<k> for both heads: each auxiliary loss scores target t + j (checked against the model's own
// next-token distribution), the dense head without adapters is bit-identical to its earlier
// implementation, and an adapter with zero weights reduces exactly to the shared-state default.
#include <gtest/gtest.h>

#include <cmath>
#include <lightgpt/train/trainer.hpp>
#include <optional>

#include "head_instances.hpp"

namespace lightgpt::testing {
namespace mtp_tests {
namespace {

template <class Model>
void sharpen(Model& model, const char* name, double factor) {
  const TensorInfo& tensor = model.parameters().layout().at(name);
  auto values = model.parameters().read(tensor);
  for (double& v : values) v *= factor;
  model.parameters().write(tensor, values.data());
}

// Without adapters every depth scores the same hidden state, so depth j's loss must be the mean
// of -log P(token t + j | inputs ≤ t) under the next-token distribution of log_probs.
template <class Model>
void check_alignment(const char* table) {
  constexpr int D = Model::mtp_depth;
  const ModelConfig config = tiny_config();
  Model model(config, 17);
  sharpen(model, table, 80.0);
  const int B = 3, T = 8, V = config.vocab_size, window = T + D;
  const auto tokens = random_tokens(B * window, V, 23);
  std::vector<std::int32_t> inputs;
  for (int b = 0; b < B; ++b) {
    inputs.insert(inputs.end(), tokens.begin() + b * window, tokens.begin() + b * window + T);
  }
  std::vector<double> log_probs(std::size_t(B) * T * V);
  model.log_probs(inputs.data(), B, T, log_probs.data());
  model.forward(tokens.data(), B, T);
  const HeadLosses<double> losses = model.losses();
  ASSERT_EQ(losses.depths, D);
  // nll(offset): mean NLL of the token `offset` ids after each input position.
  auto nll = [&](int offset) {
    double sum = 0;
    for (int b = 0; b < B; ++b) {
      for (int t = 0; t < T; ++t) {
        const int target = tokens[b * window + t + offset];
        sum -= log_probs[(std::size_t(b) * T + t) * V + target];
      }
    }
    return sum / (B * T);
  };
  for (int j = 1; j <= D; ++j) {
    EXPECT_NEAR(losses.depth[j - 1], nll(j), 1e-11) << "depth " << j;
    // The check discriminates: the neighbouring targets give clearly different losses.
    for (int other = 1; other <= D; ++other) {
      if (other != j) {
        EXPECT_GT(std::abs(losses.depth[j - 1] - nll(other)), 1e-2);
      }
    }
  }
  EXPECT_EQ(losses.main, losses.depth[0]);
}

TEST(Mtp, DenseAuxiliaryLossesUseTargetTPlusJ) { check_alignment<Mtp3Fp64>("wte"); }
TEST(Mtp, LightRnnAuxiliaryLossesUseTargetTPlusJ) {
  check_alignment<LightRnnMtp3Fp64>("lightrnn_row");
}
TEST(Mtp, LightRnnMtp2AuxiliaryLossUsesTargetTPlus2) {
  check_alignment<LightRnnMtp2Fp64>("lightrnn_col");
}

// Losses and gradients of DenseHead<MTP<k>> without adapters, recorded from the implementation
// before adapters existed; they must not change beyond rounding (relative 1e-12 in Fp64, far
// below any change of what is computed): the CPU kernels may vectorise or reorder sums.
template <class Model>
void expect_unchanged(double weight, const std::vector<double>& depth_losses, double grad_squares,
                      double wte5, double wte100) {
  const ModelConfig config = tiny_config();
  Model model(config, 21);
  model.set_mtp_weight(weight);
  const auto tokens = random_tokens(3 * (7 + Model::mtp_depth), config.vocab_size, 77);
  model.zero_grad();
  model.forward(tokens.data(), 3, 7);
  model.backward();
  const auto expect_close = [](double actual, double expected) {
    EXPECT_NEAR(actual, expected, 1e-12 * std::abs(expected));
  };
  for (int j = 0; j < Model::mtp_depth; ++j) expect_close(model.losses().depth[j], depth_losses[j]);
  double squares = 0;
  for (const TensorInfo& tensor : model.parameters().layout().tensors()) {
    for (double g : model.parameters().read_grad(tensor)) squares += g * g;
  }
  expect_close(squares, grad_squares);
  const auto wte = model.parameters().read_grad(model.parameters().layout().at("wte"));
  expect_close(wte[5], wte5);
  expect_close(wte[100], wte100);
}

TEST(Mtp, DenseWithoutAdapterIsUnchanged) {
  expect_unchanged<Mtp2Fp64>(0.3, {0x1.91370750671d8p+1, 0x1.9509e795cb8e6p+1},
                             0x1.55c36f311fe52p+0, -0x1.19b38d2346ef4p-8, -0x1.35f5ca65657dap-4);
  expect_unchanged<Mtp3Fp64>(0.7,
                             {0x1.92d2835c6e731p+1, 0x1.9423f9206a331p+1, 0x1.9155e2850e2d8p+1},
                             0x1.48af1eb8b03c2p+1, 0x1.05ed80a782515p-5, -0x1.b3b3ee8faca7dp-5);
}

// h_j = h + W_j·LN_j(h) + b_j is h itself when W_j and b_j are zero: the adapted model then has
// the shared-state losses exactly and the same gradients; with W_j ≠ 0 only depths j ≥ 2 change.
template <class Model>
void check_adapter_reduces_to_default() {
  ModelConfig config = tiny_config();
  Model shared(config, 5);
  config.options.set("mtp.adapter", true);
  Model adapted(config, 5);  // same seed: every shared tensor has the same values
  EXPECT_EQ(adapted.num_parameters() - shared.num_parameters(),
            std::size_t(Model::mtp_depth - 1) * (3 * 8 + 8 * 8));
  const TensorInfo& w = adapted.parameters().layout().at("mtp_adapter_w");
  const auto random_w = adapted.parameters().read(w);
  const std::vector<double> zeros(w.numel, 0.0);
  adapted.parameters().write(w, zeros.data());

  const auto tokens = random_tokens(2 * (6 + Model::mtp_depth), config.vocab_size, 31);
  for (Model* model : {&shared, &adapted}) {
    model->set_mtp_weight(0.8);
    model->zero_grad();
    model->forward(tokens.data(), 2, 6);
    model->backward();
  }
  for (int j = 0; j < Model::mtp_depth; ++j) {
    EXPECT_EQ(adapted.losses().depth[j], shared.losses().depth[j]) << "depth " << j + 1;
  }
  for (const TensorInfo& tensor : shared.parameters().layout().tensors()) {
    const auto expected = shared.parameters().read_grad(tensor);
    const auto actual =
        adapted.parameters().read_grad(adapted.parameters().layout().at(tensor.name));
    for (std::size_t i = 0; i < expected.size(); ++i) {
      ASSERT_NEAR(actual[i], expected[i], 1e-12 * (1 + std::abs(expected[i])))
          << tensor.name << "[" << i << "]";
    }
  }

  adapted.parameters().write(w, random_w.data());
  sharpen(adapted, "mtp_adapter_w", 50.0);
  adapted.forward(tokens.data(), 2, 6);
  EXPECT_EQ(adapted.losses().depth[0], shared.losses().depth[0]);
  for (int j = 1; j < Model::mtp_depth; ++j) {
    EXPECT_GT(std::abs(adapted.losses().depth[j] - shared.losses().depth[j]), 1e-6);
  }
}

TEST(Mtp, DenseAdapterWithZeroWeightsIsTheSharedState) {
  check_adapter_reduces_to_default<Mtp3Fp64>();
}
TEST(Mtp, LightRnnAdapterWithZeroWeightsIsTheSharedState) {
  check_adapter_reduces_to_default<LightRnnMtp2Fp64>();
}

// w_mtp is run-time state: changing it changes the gradient, never the losses.
TEST(Mtp, WeightChangesGradientsNotLosses) {
  LightRnnMtp2Fp64 model(tiny_config(), 2);
  const auto tokens = random_tokens(2 * 8, tiny_config().vocab_size, 3);
  const TensorInfo& col = model.parameters().layout().at("lightrnn_col");
  std::vector<std::vector<double>> grads;
  std::vector<double> losses;
  for (double weight : {0.0, 1.0, 0.25}) {
    model.set_mtp_weight(weight);
    model.zero_grad();
    losses.push_back(model.forward(tokens.data(), 2, 6));
    model.backward();
    grads.push_back(model.parameters().read_grad(col));
  }
  EXPECT_EQ(losses[0], losses[1]);
  EXPECT_EQ(losses[0], losses[2]);
  double difference = 0;
  for (std::size_t i = 0; i < grads[0].size(); ++i) {
    difference += std::abs(grads[1][i] - grads[0][i]);
    // The objective is linear in w_mtp.
    EXPECT_NEAR(grads[2][i], 0.75 * grads[0][i] + 0.25 * grads[1][i], 1e-14);
  }
  EXPECT_GT(difference, 1e-6);
}

// A model that names MTP<2> trains with its auxiliary loss from the start: without any setter
// call, the gradient is that of w_mtp = kDefaultMtpWeight (0.35), not of w_mtp = 0.
TEST(Mtp, AuxiliaryLossIsOnByDefault) {
  const auto tokens = random_tokens(2 * 8, tiny_config().vocab_size, 3);
  auto gradient = [&](std::optional<double> weight) {
    LightRnnMtp2Fp64 model(tiny_config(), 2);
    if (weight) model.set_mtp_weight(*weight);
    model.zero_grad();
    model.forward(tokens.data(), 2, 6);
    model.backward();
    return model.parameters().read_grad(model.parameters().layout().at("lightrnn_col"));
  };
  const auto by_default = gradient(std::nullopt);
  EXPECT_EQ(by_default, gradient(kDefaultMtpWeight));
  EXPECT_NE(by_default, gradient(0.0));
  EXPECT_DOUBLE_EQ(LightRnnMtp2Fp64(tiny_config(), 2).mtp_weight(), 0.35);
  EXPECT_DOUBLE_EQ(TrainConfig{}.mtp_weight, 0.35);
}

}  // namespace
}  // namespace mtp_tests
}  // namespace lightgpt::testing

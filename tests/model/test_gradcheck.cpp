// Central finite differences in Fp64 against backward() for sampled elements of every parameter
// tensor, for the next-token objective and for the MTP objective L_main + w · mean_j L_aux(j),
// and with dropout (a fixed mask per seed, so the objective stays smooth).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>

#include <lightgpt/testing/gradcheck.hpp>

#include "instances.hpp"

namespace lightgpt::testing {
namespace gradcheck_tests {
namespace {

constexpr int kB = 2, kT = 7;

template <class Model>
void check_every_tensor(double mtp_weight, double dropout = 0.0) {
  Model model(tiny_config(), 7);
  model.set_mtp_weight(mtp_weight);
  model.set_dropout(dropout);
  const auto tokens = random_tokens(kB * (kT + Model::mtp_depth), tiny_config().vocab_size, 11);
  const GradCheckReport report =
      gradient_check(model, training_objective<Model>(tokens, kB, kT));
  ASSERT_EQ(report.entries.size(), 8 * model.parameters().layout().tensors().size());
  EXPECT_EQ(report.failures(1e-6), "");
}

TEST(GradCheck, DenseHeadAttentionEveryTensor) { check_every_tensor<DenseFp64>(0.0); }
TEST(GradCheck, DenseHeadMtp2EveryTensor) { check_every_tensor<Mtp2Fp64>(0.35); }
TEST(GradCheck, DenseHeadMtp3EveryTensor) { check_every_tensor<Mtp3Fp64>(0.5); }
TEST(GradCheck, DropoutEveryTensor) { check_every_tensor<DenseFp64>(0.0, 0.3); }
TEST(GradCheck, DropoutMtp2EveryTensor) { check_every_tensor<Mtp2Fp64>(0.35, 0.3); }

// Vocabulary padding rows of wte never take part in the softmax: zero gradient.
TEST(GradCheck, PaddedVocabularyRowsGetNoGradient) {
  DenseFp64 model(tiny_config(), 7);
  const auto tokens = random_tokens(kB * (kT + 1), tiny_config().vocab_size, 5);
  model.zero_grad();
  model.forward(tokens.data(), kB, kT);
  model.backward();
  const TensorInfo& wte = model.parameters().layout().at("wte");
  const auto grads = model.parameters().read_grad(wte);
  const std::size_t first_padded = std::size_t(tiny_config().vocab_size) * tiny_config().d_model;
  double real_norm = 0;
  for (std::size_t i = 0; i < first_padded; ++i) real_norm += grads[i] * grads[i];
  EXPECT_GT(real_norm, 0.0);
  for (std::size_t i = first_padded; i < grads.size(); ++i) ASSERT_EQ(grads[i], 0.0) << i;
}

// backward(scale) is scale times backward(): the gradient-accumulation contract.
TEST(GradCheck, BackwardScalesWithGradScale) {
  DenseFp64 model(tiny_config(), 7);
  const auto tokens = random_tokens(kB * (kT + 1), tiny_config().vocab_size, 5);
  const TensorInfo& fcw = model.parameters().layout().at("fcw");
  model.zero_grad();
  model.forward(tokens.data(), kB, kT);
  model.backward();
  const auto full = model.parameters().read_grad(fcw);
  model.zero_grad();
  model.forward(tokens.data(), kB, kT);
  model.backward(0.25);
  model.forward(tokens.data(), kB, kT);
  model.backward(0.75);
  const auto summed = model.parameters().read_grad(fcw);
  for (std::size_t i = 0; i < full.size(); ++i) EXPECT_NEAR(summed[i], full[i], 1e-12);
}

}  // namespace
}  // namespace gradcheck_tests
}  // namespace lightgpt::testing

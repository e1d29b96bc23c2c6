// Central finite differences in Fp64 against backward() for sampled elements of every parameter
// tensor, for the next-token objective and for the MTP objective L_main + w · mean_j L_aux(j),
// and with dropout (a fixed mask per seed, so the objective stays smooth).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "instances.hpp"

namespace lightgpt::testing {
namespace {

constexpr int kB = 2, kT = 7;

template <class Model>
double objective(Model& model, const std::vector<std::int32_t>& tokens, double mtp_weight) {
  model.set_dropout_seed(5);
  model.forward(tokens.data(), kB, kT);
  const auto& losses = model.losses();
  double aux = 0;
  for (int j = 1; j < losses.depths; ++j) aux += losses.depth[j];
  return losses.main + (losses.depths > 1 ? mtp_weight * aux / (losses.depths - 1) : 0.0);
}

template <class Model>
void check_every_tensor(double mtp_weight, double dropout = 0.0) {
  Model model(tiny_config(), 7);
  model.set_mtp_weight(mtp_weight);
  model.set_dropout(dropout);
  const auto tokens = random_tokens(kB * (kT + Model::mtp_depth), tiny_config().vocab_size, 11);
  model.zero_grad();
  objective(model, tokens, mtp_weight);
  model.backward();

  auto& store = model.parameters();
  Rng pick(3);
  for (const TensorInfo& tensor : store.layout().tensors()) {
    const auto grads = store.read_grad(tensor);
    auto values = store.read(tensor);
    std::vector<std::size_t> samples = {0, tensor.numel - 1};
    for (int i = 0; i < 6; ++i) samples.push_back(pick.next_u64() % tensor.numel);
    for (std::size_t index : samples) {
      const double original = values[index];
      const double h = 1e-5;
      values[index] = original + h;
      store.write(tensor, values.data());
      const double plus = objective(model, tokens, mtp_weight);
      values[index] = original - h;
      store.write(tensor, values.data());
      const double minus = objective(model, tokens, mtp_weight);
      values[index] = original;
      store.write(tensor, values.data());

      const double numeric = (plus - minus) / (2 * h);
      const double analytic = grads[index];
      const double scale = std::max({std::abs(numeric), std::abs(analytic), 1e-4});
      EXPECT_LT(std::abs(numeric - analytic) / scale, 1e-6)
          << tensor.name << "[" << index << "]: analytic " << analytic << ", numeric " << numeric;
    }
  }
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
}  // namespace lightgpt::testing

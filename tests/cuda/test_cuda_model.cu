// GPT<P, DenseHead<>, Attention> on the GPU against the CPU Fp32 reference (reference.hpp): one
// whole training step (loss and every parameter gradient), 20 AdamW steps tracking the reference
// loss curve, incremental decoding, and run-to-run determinism; then GPT-2's own shapes
// (V = 50257, T = 1024) and a batch whose logits have more than 2³¹ elements. Both sides build their model from
// the same (config, seed), so they start from the same weights (16-bit working copies rounded).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include <lightgpt/testing/determinism.hpp>

#include "cuda_testing.cuh"
#include "reference.hpp"

namespace lightgpt::testing {
namespace cuda_model {

template <class P>
using CudaDense = GPT<P, DenseHead<>, Attention, Cuda>;

// V = 61 pads to 128 columns; hs = 16; T = max_seq_len.
ModelConfig model_config() {
  ModelConfig config;
  config.vocab_size = 61;
  config.max_seq_len = 16;
  config.n_layer = 2;
  config.n_head = 4;
  config.d_model = 64;
  return config;
}
constexpr int kB = 4, kT = 16;
constexpr std::uint64_t kSeed = 7;

// `count` batches of B windows of T + 1 ids, cycling through five distinct ones so that a few
// steps of training visibly lower the loss (random ids have nothing else to learn).
std::vector<std::int32_t> batches(int count, std::uint32_t seed) {
  const std::size_t batch = std::size_t(kB) * (kT + 1);
  const auto distinct = random_ids(5 * batch, model_config().vocab_size, seed);
  std::vector<std::int32_t> ids(count * batch);
  for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = distinct[i % (5 * batch)];
  return ids;
}

template <class P>
class CudaModel : public CudaTest {};
using Precisions = ::testing::Types<Fp32, Bf16, Fp16>;
struct PrecisionNames {
  template <class P>
  static std::string GetName(int) {
    return std::string(P::name);
  }
};
TYPED_TEST_SUITE(CudaModel, Precisions, PrecisionNames);

// One forward and backward (with dropout p: both sides draw the same masks from seed 0) against
// the CPU Fp32 step.
template <class P>
void expect_training_step_matches_cpu(double dropout) {
  using T = typename P::storage_t;
  const ModelConfig config = model_config();
  const auto tokens = batches(1, 1);
  const reference::StepResult expected =
      reference::training_step(config, kSeed, tokens, kB, kT, dropout);

  CudaDense<P> model(config, kSeed);
  model.set_dropout(float(dropout));
  model.zero_grad();
  const float loss = model.forward(tokens.data(), kB, kT);
  model.backward();
  EXPECT_TRUE(std::isfinite(loss));
  EXPECT_LT(std::abs(loss - expected.loss) / expected.loss, value_tolerance<T>())
      << "cpu " << expected.loss << ", gpu " << loss;
  const auto& tensors = model.parameters().layout().tensors();
  ASSERT_EQ(tensors.size(), expected.grads.size());
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const auto actual = model.parameters().read_grad(tensors[i]);
    EXPECT_LT(relative_error(actual, expected.grads[i]), gradient_tolerance<T>())
        << tensors[i].name;
  }
  // Without dropout, an inference pass over the same inputs gives the training loss.
  if (dropout == 0) {
    const float evaluated = model.evaluate(tokens.data(), kB, kT);
    EXPECT_LT(std::abs(evaluated - loss) / loss, 1e-6);
  }
}

TYPED_TEST(CudaModel, TrainingStepMatchesCpuFp32) {
  LIGHTGPT_REQUIRE_GPU();
  expect_training_step_matches_cpu<TypeParam>(0.0);
}

TYPED_TEST(CudaModel, TrainingStepWithDropoutMatchesCpuFp32) {
  LIGHTGPT_REQUIRE_GPU();
  expect_training_step_matches_cpu<TypeParam>(0.2);
}

// bf16 within 1e-2 of the fp32 CPU curve at every step (issue 10); fp32 within 1e-3 (AdamW's
// normalised updates amplify last-bit differences in near-zero gradients over the steps); fp16
// with a static loss scale of 1024, within 2e-2 as on the CPU.
TYPED_TEST(CudaModel, TwentyStepsTrackTheCpuFp32Curve) {
  LIGHTGPT_REQUIRE_GPU();
  const ModelConfig config = model_config();
  constexpr int steps = 20;
  constexpr double lr = 3e-3;
  const auto tokens = batches(steps, 2);
  const std::vector<float> expected =
      reference::training_curve(config, kSeed, tokens, kB, kT, steps, lr);
  const bool fp16 = std::is_same_v<TypeParam, Fp16>;
  const float loss_scale = fp16 ? 1024.0f : 1.0f;
  const double tolerance = std::is_same_v<TypeParam, Fp32> ? 1e-3 : fp16 ? 2e-2 : 1e-2;

  CudaDense<TypeParam> model(config, kSeed);
  AdamW<Cuda, float> optimizer(model.parameters().layout());
  const std::size_t batch = std::size_t(kB) * (kT + 1);
  for (int step = 0; step < steps; ++step) {
    model.zero_grad();
    const float loss = model.forward(tokens.data() + step * batch, kB, kT);
    model.backward(loss_scale);
    const double norm = optimizer.step(model.parameters(), lr, 1.0 / loss_scale);
    ASSERT_TRUE(std::isfinite(norm)) << "step " << step;
    EXPECT_LT(std::abs(loss - expected[step]) / expected[step], tolerance)
        << "step " << step << ": cpu " << expected[step] << ", gpu " << loss;
  }
  EXPECT_LT(expected.back(), expected.front() - 0.1f) << "the reference did not learn";
}

TYPED_TEST(CudaModel, DecodeMatchesCpuFp32) {
  LIGHTGPT_REQUIRE_GPU();
  using T = typename TypeParam::storage_t;
  const ModelConfig config = model_config();
  const auto sequence = random_ids(12, config.vocab_size, 3);
  const auto expected = reference::decode_log_probs(config, kSeed, sequence);
  CudaDense<TypeParam> model(config, kSeed);
  model.decode_reset();
  for (std::size_t i = 0; i < sequence.size(); ++i) {
    const auto log_probs = model.decode(sequence[i]);
    const std::vector<float> actual(log_probs.begin(), log_probs.end());
    EXPECT_LT(relative_error(actual, expected[i]), value_tolerance<T>()) << "position " << i;
  }
}

// Two models with the same seed on the same batches: bit-identical losses and gradients.
TYPED_TEST(CudaModel, TwoRunsAreBitIdentical) {
  LIGHTGPT_REQUIRE_GPU();
  cuda::context().set_allow_tf32(true);  // the default path must be deterministic too
  const auto run = [] {
    return record_training_run<CudaDense<TypeParam>>(model_config(), kSeed, [](auto&) {},
                                                     batches(5, 4), kB, kT, 5);
  };
  const TrainingRecord first = run();
  EXPECT_TRUE(first == run()) << "losses or gradients differ between runs";
}


// One layer, two heads, width C, at GPT-2's vocabulary and context.
ModelConfig gpt2_vocabulary_config(int C) {
  ModelConfig config;
  config.vocab_size = 50257;
  config.max_seq_len = 1024;
  config.n_layer = 1;
  config.n_head = 2;
  config.d_model = C;
  return config;
}

// GPT-2's vocabulary and context (V = 50257 padded to 50304, T = 1024) with B·T·4C = 1.5 M MLP
// elements, more than one grid-stride pass of the element-wise launches (SMs × 32 blocks × 256
// threads ≈ 1.1 M on an H200): one fp32 training step against the CPU Fp32 reference.
TEST_F(CudaTest, Gpt2VocabularyAndContextStepMatchesCpuFp32) {
  LIGHTGPT_REQUIRE_GPU();
  const ModelConfig config = gpt2_vocabulary_config(96);
  const int B = 4, T = 1024;
  const auto tokens = random_ids(std::size_t(B) * (T + 1), config.vocab_size, 11);
  const reference::StepResult expected = reference::training_step(config, kSeed, tokens, B, T);

  CudaDense<Fp32> model(config, kSeed);
  model.zero_grad();
  const float loss = model.forward(tokens.data(), B, T);
  model.backward();
  EXPECT_LT(std::abs(loss - expected.loss) / expected.loss, value_tolerance<float>())
      << "cpu " << expected.loss << ", gpu " << loss;
  EXPECT_NEAR(loss, std::log(50257.0), 0.5) << "an untrained model is near uniform";
  const auto& tensors = model.parameters().layout().tensors();
  ASSERT_EQ(tensors.size(), expected.grads.size());
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    EXPECT_LT(relative_error(model.parameters().read_grad(tensors[i]), expected.grads[i]),
              gradient_tolerance<float>())
        << tensors[i].name;
  }
}

// B·T·Vp = 44 · 1024 · 50304 ≈ 2.27·10⁹ logits: every index past 2³¹ must be 64-bit. The whole
// batch's loss, per-position losses and gradients must equal those of the same rows taken four at
// a time (small batches whose indices all fit in 31 bits), so a wrapped index cannot pass.
TEST_F(CudaTest, LogitsPastTwoToThe31MatchSmallBatches) {
  LIGHTGPT_REQUIRE_GPU();
  std::size_t free_bytes = 0, total_bytes = 0;
  LIGHTGPT_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  if (free_bytes < (std::size_t(40) << 30)) GTEST_SKIP() << "needs 40 GiB of free device memory";
  const ModelConfig config = gpt2_vocabulary_config(64);
  const int B = 44, T = 1024, chunk = 4;
  ASSERT_GT(double(B) * T * 50304, double(1u << 31));
  const std::size_t window = T + 1;
  const auto tokens = random_ids(B * window, config.vocab_size, 12);

  // fp32 without TF32: the small batches' GEMMs may pick other algorithms, which moves results by
  // rounding only (≈ 1e-7), far below what reading another row's logits would.
  CudaDense<Fp32> model(config, kSeed);
  const auto& tensors = model.parameters().layout().tensors();
  auto gradients = [&] {
    std::vector<float> all;
    for (const TensorInfo& tensor : tensors) {
      const auto g = model.parameters().read_grad(tensor);
      all.insert(all.end(), g.begin(), g.end());
    }
    return all;
  };

  model.zero_grad();
  const float loss = model.forward(tokens.data(), B, T);
  std::vector<float> token_losses(std::size_t(B) * T);
  model.token_losses(token_losses.data());
  model.backward();
  const std::vector<float> whole_grads = gradients();
  ASSERT_TRUE(std::isfinite(loss));
  EXPECT_NEAR(loss, std::log(50257.0), 0.5) << "an untrained model is near uniform";

  // The same rows, `chunk` at a time, each chunk's gradient weighted by its share of positions.
  model.zero_grad();
  double chunk_loss_sum = 0;
  std::vector<float> chunk_token_losses(std::size_t(chunk) * T);
  for (int first = 0; first < B; first += chunk) {
    chunk_loss_sum += model.forward(tokens.data() + first * window, chunk, T);
    model.token_losses(chunk_token_losses.data());
    for (std::size_t i = 0; i < chunk_token_losses.size(); ++i) {
      ASSERT_NEAR(chunk_token_losses[i], token_losses[std::size_t(first) * T + i],
                  1e-4f * std::abs(token_losses[std::size_t(first) * T + i]))
          << "row " << first + int(i / T) << ", position " << i % T;
    }
    model.backward(float(chunk) / float(B));
  }
  EXPECT_NEAR(chunk_loss_sum / (B / chunk), loss, 1e-5 * loss);
  EXPECT_LT(relative_error(gradients(), whole_grads), 1e-4) << "gradients of the whole batch";
}

}  // namespace cuda_model
}  // namespace lightgpt::testing

// Bf16/Fp16 storage on the CPU against the Fp32 reference (docs/design.md, "Numerics and
// determinism": losses within 1e-2 relative, gradients within 5e-2 norm-wise), training curves, and
// fp16 dynamic loss scaling.
#include <gtest/gtest.h>

#include <cmath>
#include <lightgpt/optim/loss_scaler.hpp>
#include <lightgpt/train/trainer.hpp>
#include <vector>

#include "models.hpp"
#include "scratch.hpp"

namespace lightgpt::testing {
namespace {

ModelConfig config16() {
  ModelConfig c = tiny_config();
  c.vocab_size = 61;
  c.max_seq_len = 16;
  c.d_model = 32;
  c.n_head = 4;
  return c;
}

// AfnoMixer with soft-shrink threshold 0: at this width the block MLP's outputs (about 1e-3 at
// initialisation) all fall under the default threshold (0.01), which would leave the MLP without
// gradient and untested; and with any threshold near them, 16-bit rounding moves some across it,
// so those entries' gradients switch on or off, a discontinuity rather than a rounding error
// (test_fft.cpp checks the shrink kernel in 16-bit on its own).
ModelConfig afno_config16() {
  ModelConfig c = config16();
  c.options.set("afno.sparsity_threshold", 0);
  return c;
}

constexpr int kB = 3, kT = 16;

// Every parameter tensor must get a gradient in the reference, or the test would not see it.
template <class Low, class Ref>
void expect_close_to_fp32(const ModelConfig& config = config16(), double loss_tolerance = 1e-2,
                          double grad_tolerance = 5e-2) {
  Ref reference(config, 21);
  Low low(config, 0);
  copy_parameters(reference, low);
  const auto tokens = random_tokens(kB * (kT + Ref::mtp_depth), config.vocab_size, 4);
  reference.set_mtp_weight(0.5f);
  low.set_mtp_weight(0.5f);
  reference.zero_grad();
  low.zero_grad();
  const double ref_loss = reference.forward(tokens.data(), kB, kT);
  const double low_loss = low.forward(tokens.data(), kB, kT);
  EXPECT_TRUE(std::isfinite(low_loss));
  EXPECT_LT(std::abs(low_loss - ref_loss) / ref_loss, loss_tolerance)
      << "fp32 " << ref_loss << ", 16-bit " << low_loss;
  for (int j = 1; j < Ref::mtp_depth; ++j) {
    EXPECT_LT(std::abs(low.losses().depth[j] - reference.losses().depth[j]) /
                  reference.losses().depth[j],
              loss_tolerance);
  }
  reference.backward();
  low.backward();
  for (const TensorInfo& tensor : reference.parameters().layout().tensors()) {
    const auto expected = reference.parameters().read_grad(tensor);
    const auto actual = low.parameters().read_grad(low.parameters().layout().at(tensor.name));
    double diff = 0, norm = 0;
    for (std::size_t i = 0; i < expected.size(); ++i) {
      ASSERT_TRUE(std::isfinite(actual[i])) << tensor.name;
      diff += (double(actual[i]) - expected[i]) * (double(actual[i]) - expected[i]);
      norm += double(expected[i]) * expected[i];
    }
    ASSERT_GT(norm, 0) << tensor.name << " has no gradient in the reference";
    EXPECT_LT(std::sqrt(diff / norm), grad_tolerance) << tensor.name;
  }
}

TEST(MixedPrecision, Bf16MatchesFp32LossAndGradients) {
  expect_close_to_fp32<DenseBf16, DenseFp32>();
}
TEST(MixedPrecision, Fp16MatchesFp32LossAndGradients) {
  expect_close_to_fp32<DenseFp16, DenseFp32>();
}
TEST(MixedPrecision, Bf16MtpMatchesFp32LossAndGradients) {
  expect_close_to_fp32<Mtp2Bf16, Mtp2Fp32>();
}

TEST(MixedPrecision, WorkingWeightsAreRoundedMasterWeightsStayFp32) {
  DenseBf16 model(config16(), 5);
  const TensorInfo& fcw = model.parameters().layout().at("fcw");
  std::vector<float> values(fcw.numel, 1.0f + 0x1.0p-10f);  // not representable in bf16
  model.parameters().write(fcw, values.data());
  EXPECT_EQ(model.parameters().read(fcw)[0], 1.0f + 0x1.0p-10f);  // master: exact
  EXPECT_EQ(static_cast<float>(model.parameters().values()[fcw.offset]), 1.0f);  // working: RNE
}

// AfnoMixer with 16-bit storage: the FFT convolution, the gate and the block MLP.
TEST(MixedPrecision, Bf16AfnoMatchesFp32LossAndGradients) {
  expect_close_to_fp32<AfnoBf16, AfnoFp32>(afno_config16());
}
TEST(MixedPrecision, Fp16AfnoMatchesFp32LossAndGradients) {
  expect_close_to_fp32<AfnoFp16, AfnoFp32>(afno_config16());
}

// 50 AdamW steps on the same batches: the 16-bit loss curves stay within 2 % of fp32's.
template <class Low, class Ref = DenseFp32>
void expect_tracking_curve(float loss_scale, const ModelConfig& config = config16()) {
  Ref reference(config, 8);
  Low low(config, 0);
  copy_parameters(reference, low);
  AdamW<Cpu, float> ref_opt(reference.parameters().layout());
  AdamW<Cpu, float> low_opt(low.parameters().layout());
  for (int step = 0; step < 50; ++step) {
    const auto tokens = random_tokens(kB * (kT + 1), config.vocab_size, 100 + step % 5);
    reference.zero_grad();
    low.zero_grad();
    const double ref_loss = reference.forward(tokens.data(), kB, kT);
    const double low_loss = low.forward(tokens.data(), kB, kT);
    reference.backward();
    low.backward(loss_scale);
    ref_opt.step(reference.parameters(), 3e-3);
    const double norm = low_opt.step(low.parameters(), 3e-3, 1.0 / loss_scale);
    ASSERT_TRUE(std::isfinite(norm)) << "step " << step;
    EXPECT_LT(std::abs(low_loss - ref_loss) / ref_loss, 0.02)
        << "step " << step << ": fp32 " << ref_loss << ", 16-bit " << low_loss;
    if (step == 49) EXPECT_LT(ref_loss, std::log(61.0) - 0.3) << "the reference did not learn";
  }
}

TEST(MixedPrecision, Bf16TrainingTracksFp32) { expect_tracking_curve<DenseBf16>(1.0f); }
TEST(MixedPrecision, Fp16TrainingWithLossScaleTracksFp32) {
  expect_tracking_curve<DenseFp16>(1024.0f);
}
TEST(MixedPrecision, Bf16AfnoTrainingTracksFp32) {
  expect_tracking_curve<AfnoBf16, AfnoFp32>(1.0f, afno_config16());
}
TEST(MixedPrecision, Fp16AfnoTrainingWithLossScaleTracksFp32) {
  expect_tracking_curve<AfnoFp16, AfnoFp32>(1024.0f, afno_config16());
}

TEST(LossScaler, BacksOffOnOverflowAndGrowsAfterTheInterval) {
  LossScalerConfig config;
  config.initial_scale = 1024;
  config.growth_interval = 3;
  LossScaler scaler(config);
  EXPECT_TRUE(scaler.update(1.5));
  EXPECT_TRUE(scaler.update(0.5));
  EXPECT_FALSE(scaler.update(INFINITY));
  EXPECT_EQ(scaler.scale(), 512);
  EXPECT_EQ(scaler.skipped_steps(), 1);
  EXPECT_FALSE(scaler.update(std::nan("")));
  EXPECT_EQ(scaler.scale(), 256);
  for (int i = 0; i < 2; ++i) EXPECT_TRUE(scaler.update(1.0));
  EXPECT_EQ(scaler.scale(), 256);  // two clean steps: not yet
  EXPECT_TRUE(scaler.update(1.0));
  EXPECT_EQ(scaler.scale(), 512);  // the third grows it
  config.backoff_factor = 1.5;
  EXPECT_THROW(LossScaler{config}, Error);
}

TEST(LossScaler, AnOverflowingStepIsSkippedWithWeightsUntouchedAndTheStateIsCheckpointed) {
  TempDir dir;
  const std::vector<std::uint16_t> stream = [] {
    std::vector<std::uint16_t> s(3000);
    for (std::size_t i = 0; i < s.size(); ++i) s[i] = static_cast<std::uint16_t>((i * 7 + i / 13) % 61);
    return s;
  }();
  write_shard(dir / "train.bin", std::span<const std::uint16_t>(stream));
  LoaderOptions o;
  o.B = kB;
  o.T = kT;
  Loader train((dir / "train.bin").string(), o);
  TrainConfig c;
  c.batch_size = kB;
  c.seq_len = kT;
  c.steps = 10;
  c.learning_rate = 1e-3;
  c.out_dir = (dir / "run").string();
  c.console = false;
  DenseFp16 model(config16(), 2);
  Trainer<DenseFp16> trainer(model, c, train, nullptr);
  trainer.loss_scaler().set_scale(1024);
  EXPECT_FALSE(trainer.step().skipped);

  trainer.loss_scaler().set_scale(0x1.0p40);  // gradients of 2^40 × the loss overflow fp16
  const TensorInfo& fcw = model.parameters().layout().at("fcw");
  const auto before = model.parameters().read(fcw);
  const std::int64_t adam_steps = trainer.optimizer().steps();
  const StepMetrics overflow = trainer.step();
  EXPECT_TRUE(overflow.skipped);
  EXPECT_FALSE(std::isfinite(overflow.grad_norm));
  EXPECT_EQ(trainer.loss_scaler().scale(), 0x1.0p39);
  EXPECT_EQ(model.parameters().read(fcw), before);
  EXPECT_EQ(trainer.optimizer().steps(), adam_steps);

  trainer.loss_scaler().set_scale(512);
  const StepMetrics next = trainer.step();
  EXPECT_FALSE(next.skipped);
  EXPECT_NE(model.parameters().read(fcw), before);
  EXPECT_EQ(trainer.optimizer().steps(), adam_steps + 1);

  trainer.save(dir / "fp16.ckpt");
  DenseFp16 other(config16(), 2);
  Loader train2((dir / "train.bin").string(), o);
  Trainer<DenseFp16> resumed(other, c, train2, nullptr);
  resumed.resume(dir / "fp16.ckpt");
  EXPECT_EQ(resumed.loss_scaler().scale(), 512);
  EXPECT_EQ(resumed.loss_scaler().skipped_steps(), 1);
}

// Queued steps read nothing back until last_step(), yet the loss scaler takes each overflow before
// the next step's backward: the step after an overflow runs at the backed-off scale.
TEST(LossScaler, QueuedStepsTakeEachOverflowBeforeTheNextBackward) {
  TempDir dir;
  std::vector<std::uint16_t> stream(3000);
  for (std::size_t i = 0; i < stream.size(); ++i) {
    stream[i] = static_cast<std::uint16_t>((i * 7 + i / 13) % 61);
  }
  write_shard(dir / "train.bin", std::span<const std::uint16_t>(stream));
  LoaderOptions o;
  o.B = kB;
  o.T = kT;
  Loader train((dir / "train.bin").string(), o);
  TrainConfig c;
  c.batch_size = kB;
  c.seq_len = kT;
  c.steps = 10;
  c.out_dir = (dir / "run").string();
  c.console = false;
  DenseFp16 model(config16(), 2);
  Trainer<DenseFp16> trainer(model, c, train, nullptr);
  const TensorInfo& fcw = model.parameters().layout().at("fcw");
  const auto before = model.parameters().read(fcw);
  trainer.loss_scaler().set_scale(0x1.0p41);  // this and half of it overflow fp16
  trainer.queue_step();
  EXPECT_EQ(trainer.loss_scaler().scale(), 0x1.0p41);  // the overflow is not read yet
  trainer.queue_step();
  const StepMetrics second = trainer.last_step();
  EXPECT_EQ(second.loss_scale, 0x1.0p40);
  EXPECT_TRUE(second.skipped);
  EXPECT_EQ(trainer.loss_scaler().scale(), 0x1.0p39);
  EXPECT_EQ(trainer.loss_scaler().skipped_steps(), 2);
  EXPECT_EQ(trainer.optimizer().steps(), 0);
  EXPECT_EQ(model.parameters().read(fcw), before);

  trainer.loss_scaler().set_scale(512);
  EXPECT_FALSE(trainer.step().skipped);
  EXPECT_EQ(trainer.optimizer().steps(), 1);
  EXPECT_NE(model.parameters().read(fcw), before);
}

}  // namespace
}  // namespace lightgpt::testing

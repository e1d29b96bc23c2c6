#include <gtest/gtest.h>

#include <cmath>
#include <lightgpt/train/baselines.hpp>
#include <lightgpt/train/presets.hpp>
#include <string>
#include <vector>

namespace lightgpt {
namespace presets_tests {
namespace {

TEST(Presets, EveryPresetIsValidAndTrainsPastItsSchedule) {
  for (const Preset& p : presets()) {
    SCOPED_TRACE(p.name);
    EXPECT_NO_THROW(p.model.validate());
    EXPECT_NO_THROW(p.train.validate());
    EXPECT_GE(p.train.steps, p.train.warmup + p.train.warmdown);
    EXPECT_LE(p.train.seq_len, p.model.max_seq_len);
    EXPECT_TRUE(p.head == "dense" || p.head == "lightrnn");
    EXPECT_TRUE(p.mixer == "attention" || p.mixer == "afno");
  }
  const Preset& fast = preset("fast-mtp-2step");
  EXPECT_EQ(fast.train.batch_size, 24);
  EXPECT_EQ(fast.train.grad_accum, 16);
  EXPECT_EQ(fast.train.seq_len, 512);
  EXPECT_DOUBLE_EQ(fast.train.learning_rate, 0.0032);
  EXPECT_EQ(fast.mtp_depth, 2);
  EXPECT_DOUBLE_EQ(fast.train.mtp_weight, 0.35);
  EXPECT_EQ(fast.train.mtp_rampup_steps, 32);
  EXPECT_TRUE(fast.use_cocont);
  EXPECT_EQ(preset("afno").mixer, "afno");
  EXPECT_EQ(preset("tiny-cpu").backend, "cpu");
  try {
    preset("fast");
    FAIL() << "no error";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("tiny-cpu"), std::string::npos) << error.what();
  }
}

TEST(NgramBaselines, HandComputedCase) {
  // Train 0 1 0 1 0 2: unigram counts 3, 2, 1 (N = 6); bigrams 0→1 twice, 1→0 twice, 0→2 once.
  const std::vector<std::uint16_t> train = {0, 1, 0, 1, 0, 2};
  const std::vector<std::uint16_t> val = {0, 1};
  const std::span<const std::uint16_t> train_parts[] = {train};
  const std::span<const std::uint16_t> val_parts[] = {val};
  const NgramBaselines b = ngram_baselines(train_parts, val_parts, 3);
  // Only the 1 is scored: the first token of a part is context.
  EXPECT_NEAR(b.unigram, -std::log(3.0 / 9), 1e-12);
  // P(1 | 0) = λ·2/3 + (1 − λ)·3/9 grows with λ: the grid's largest λ wins.
  EXPECT_NEAR(b.lambda, 0.95, 1e-12);
  EXPECT_NEAR(b.bigram, -std::log(0.95 * 2 / 3 + 0.05 * 3 / 9), 1e-12);
  const std::vector<std::uint16_t> bad = {0, 7};
  const std::span<const std::uint16_t> bad_parts[] = {bad};
  EXPECT_THROW(ngram_baselines(train_parts, bad_parts, 3), Error);
}

}  // namespace
}  // namespace presets_tests
}  // namespace lightgpt

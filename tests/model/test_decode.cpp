// Cached incremental decoding against full recomputation, and the sampler.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "instances.hpp"

namespace lightgpt::testing {
namespace decode_tests {
namespace {

TEST(Decode, CachedDecodingEqualsFullRecomputationAtEveryPosition) {
  DenseFp64 model(tiny_config(), 5);
  const int T = tiny_config().max_seq_len, V = tiny_config().vocab_size;
  const auto tokens = random_tokens(T, V, 17);
  std::vector<double> full(static_cast<std::size_t>(T) * V);
  model.log_probs(tokens.data(), 1, T, full.data());
  model.decode_reset();
  for (int t = 0; t < T; ++t) {
    const auto step = model.decode(tokens[t]);
    ASSERT_EQ(step.size(), static_cast<std::size_t>(V));
    for (int v = 0; v < V; ++v) {
      ASSERT_NEAR(step[v], full[static_cast<std::size_t>(t) * V + v], 1e-12)
          << "position " << t << ", token " << v;
    }
  }
  EXPECT_THROW(model.decode(0), Error);  // the window is full
  model.decode_reset();
  const auto again = model.decode(tokens[0]);
  EXPECT_NEAR(again[3], full[3], 1e-12);
}

TEST(Decode, DecodingAfterTrainingForwardStillMatches) {
  DenseFp32 model(tiny_config(), 6);
  const auto batch = random_tokens(2 * 9, tiny_config().vocab_size, 3);
  model.forward(batch.data(), 2, 8);
  model.backward();
  const int T = 6, V = tiny_config().vocab_size;
  std::vector<float> full(static_cast<std::size_t>(T) * V);
  model.log_probs(batch.data(), 1, T, full.data());
  model.decode_reset();
  for (int t = 0; t < T; ++t) {
    const auto step = model.decode(batch[t]);
    for (int v = 0; v < V; ++v) ASSERT_NEAR(step[v], full[std::size_t(t) * V + v], 2e-5);
  }
}

TEST(Generate, GreedyEqualsArgmaxOfFullRecomputationAndRunsPastTheWindow) {
  DenseFp64 model(tiny_config(), 8);
  const int V = tiny_config().vocab_size;
  const std::vector<std::int32_t> prompt = {3, 14, 15};
  SamplingOptions greedy;
  greedy.temperature = 0;
  const auto generated = model.generate(prompt, 5, greedy);
  ASSERT_EQ(generated.size(), 5u);
  std::vector<std::int32_t> context = prompt;
  for (std::int32_t id : generated) {
    const int T = static_cast<int>(context.size());
    std::vector<double> full(static_cast<std::size_t>(T) * V);
    model.log_probs(context.data(), 1, T, full.data());
    const double* last = full.data() + static_cast<std::size_t>(T - 1) * V;
    EXPECT_EQ(id, std::max_element(last, last + V) - last);
    context.push_back(id);
  }
  // 30 tokens from a 12-token window: decoding restarts from the last half of the context.
  int seen = 0;
  const auto long_run = model.generate(prompt, 30, greedy, [&](std::int32_t) { return ++seen > 0; });
  EXPECT_EQ(long_run.size(), 30u);
  EXPECT_EQ(seen, 30);
  const auto stopped = model.generate(prompt, 30, greedy, [](std::int32_t) { return false; });
  EXPECT_EQ(stopped.size(), 1u);
  EXPECT_THROW(model.generate({}, 3, greedy), Error);
}

TEST(Sampling, FrequenciesFollowTheTemperedDistributionAndTopK) {
  const std::vector<double> probs = {0.5, 0.25, 0.15, 0.1};
  std::vector<double> log_probs;
  for (double p : probs) log_probs.push_back(std::log(p));
  Rng rng(42);
  std::vector<int> order;
  std::vector<int> counts(4, 0);
  SamplingOptions options;
  const int draws = 40000;
  for (int i = 0; i < draws; ++i) ++counts[sample_token<double>(log_probs, options, rng, order)];
  for (int v = 0; v < 4; ++v) EXPECT_NEAR(counts[v] / double(draws), probs[v], 0.01) << v;

  // Temperature 0.5 squares the probabilities before renormalising.
  options.temperature = 0.5;
  std::fill(counts.begin(), counts.end(), 0);
  for (int i = 0; i < draws; ++i) ++counts[sample_token<double>(log_probs, options, rng, order)];
  double norm = 0;
  for (double p : probs) norm += p * p;
  for (int v = 0; v < 4; ++v) EXPECT_NEAR(counts[v] / double(draws), probs[v] * probs[v] / norm, 0.01);

  // top_k = 2 keeps tokens 0 and 1 only, renormalised to 2/3 and 1/3.
  options.temperature = 1;
  options.top_k = 2;
  std::fill(counts.begin(), counts.end(), 0);
  for (int i = 0; i < draws; ++i) ++counts[sample_token<double>(log_probs, options, rng, order)];
  EXPECT_EQ(counts[2] + counts[3], 0);
  EXPECT_NEAR(counts[0] / double(draws), 2.0 / 3.0, 0.01);

  options.top_k = -1;
  EXPECT_THROW(options.validate(), Error);
}

}  // namespace
}  // namespace decode_tests
}  // namespace lightgpt::testing

// GPT's batch split (set_batch_split, CPU): the batch run as row groups, each through the whole
// model on its own thread, their gradients added into the model's. Checked against the same model
// unsplit in Fp64 (losses, per-position losses, loss sums, gradients over two micro-batches, for
// even and uneven groups, MTP depths and dropout), for bits that do not depend on the thread
// count, for dropout masks that are the unsplit batch's, and for its errors.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <utility>
#include <vector>

#if defined(_OPENMP)
#include <omp.h>
#endif

#include "instances.hpp"

namespace lightgpt::testing {
namespace batch_split_tests {
namespace {

template <class Model>
std::vector<double> gradients(const Model& model) {
  const auto* g = std::as_const(model.parameters()).grads();
  return {g, g + model.parameters().layout().size()};
}

// The largest |a − b| over the largest |b|: how far two gradients are apart, relatively.
double relative_gap(const std::vector<double>& a, const std::vector<double>& b) {
  double gap = 0, scale = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    gap = std::max(gap, std::abs(a[i] - b[i]));
    scale = std::max(scale, std::abs(b[i]));
  }
  return scale > 0 ? gap / scale : gap;
}

template <class Model>
void expect_split_matches_unsplit(int B, int groups, double dropout = 0) {
  SCOPED_TRACE("B = " + std::to_string(B) + ", groups = " + std::to_string(groups) +
               ", dropout = " + std::to_string(dropout));
  const ModelConfig config = tiny_config();
  const int T = 7, window = T + Model::mtp_depth;
  Model whole(config, 5), split(config, 5);
  split.set_batch_split(groups);
  ASSERT_EQ(split.batch_split(), groups);
  for (Model* model : {&whole, &split}) {
    model->set_mtp_weight(0.4);
    model->set_dropout(dropout);
    model->set_dropout_seed(17);
  }
  whole.zero_grad();
  split.zero_grad();
  for (int micro = 0; micro < 2; ++micro) {
    const auto tokens = random_tokens(B * window, config.vocab_size, 11 + micro);
    const double expected = whole.forward(tokens.data(), B, T);
    const double got = split.forward(tokens.data(), B, T);
    EXPECT_NEAR(got, expected, 1e-12 * std::abs(expected));
    for (int j = 0; j < Model::mtp_depth; ++j) {
      EXPECT_NEAR(split.losses().depth[j], whole.losses().depth[j], 1e-12) << "depth " << j + 1;
    }
    std::vector<double> whole_losses(std::size_t(B) * T), split_losses(whole_losses.size());
    whole.token_losses(whole_losses.data());
    split.token_losses(split_losses.data());
    for (std::size_t i = 0; i < whole_losses.size(); ++i) {
      ASSERT_NEAR(split_losses[i], whole_losses[i], 1e-12) << "position " << i;
    }
    whole.backward(0.5);
    split.backward(0.5);
  }
  const std::vector<double> expected = gradients(whole), got = gradients(split);
  EXPECT_LT(relative_gap(got, expected), 1e-12);
  double size = 0;
  for (double g : expected) size += std::abs(g);
  EXPECT_GT(size, 0.0);

  // forward_summing adds the same means.
  const auto tokens = random_tokens(B * window, config.vocab_size, 21);
  double whole_sums[kMaxMtpDepth] = {}, split_sums[kMaxMtpDepth] = {};
  whole_sums[0] = split_sums[0] = 1.0;
  whole.forward_summing(whole_sums, tokens.data(), B, T);
  split.forward_summing(split_sums, tokens.data(), B, T);
  for (int j = 0; j < Model::mtp_depth; ++j) {
    EXPECT_NEAR(split_sums[j], whole_sums[j], 1e-12) << "depth " << j + 1;
    EXPECT_NEAR(split.losses().depth[j], split_sums[j] - (j == 0 ? 1.0 : 0.0), 1e-12);
  }
  EXPECT_NEAR(split.losses().main, split_sums[0] - 1.0, 1e-12);
}

TEST(BatchSplit, GradientsAndLossesMatchTheUnsplitModel) {
  expect_split_matches_unsplit<DenseFp64>(4, 2);
  expect_split_matches_unsplit<DenseFp64>(5, 3);  // groups of 2, 2 and 1 rows
  expect_split_matches_unsplit<DenseFp64>(2, 5);  // more groups than rows: 2 groups of 1
  expect_split_matches_unsplit<Mtp2Fp64>(5, 2);
  expect_split_matches_unsplit<Mtp3Fp64>(3, 3);
  // Each group draws its rows' part of the batch's dropout masks: the same masks as unsplit.
  expect_split_matches_unsplit<DenseFp64>(5, 3, 0.3);
  expect_split_matches_unsplit<Mtp2Fp64>(4, 2, 0.3);
}

#if defined(_OPENMP)
TEST(BatchSplit, BitsDoNotDependOnTheThreadCount) {
  const ModelConfig config = tiny_config();
  const int B = 6, T = 9;
  const auto tokens = random_tokens(B * (T + 1), config.vocab_size, 3);
  const int saved = omp_get_max_threads();
  std::vector<std::vector<double>> runs;
  for (int threads : {1, 2, 3}) {
    omp_set_num_threads(threads);
    DenseFp32 model(config, 9);
    model.set_batch_split(3);
    model.set_dropout(0.2f);
    model.zero_grad();
    const float loss = model.forward(tokens.data(), B, T);
    model.backward();
    std::vector<double> run{double(loss)};
    const float* g = std::as_const(model.parameters()).grads();
    run.insert(run.end(), g, g + model.parameters().layout().size());
    runs.push_back(std::move(run));
  }
  omp_set_num_threads(saved);
  for (std::size_t r = 1; r < runs.size(); ++r) {
    std::size_t differ = 0;
    for (std::size_t i = 0; i < runs[0].size(); ++i) differ += runs[r][i] != runs[0][i];
    EXPECT_EQ(differ, 0u) << "run " << r << " differs from the 1-thread run";
  }
}
#endif

// A group's masks are its rows' part of the batch's: two identical rows, each the first row of
// its group, lose differently under dropout (one stream per group from its own first element would
// draw the same mask for both) and the same without it.
TEST(BatchSplit, GroupsDrawTheirRowsPartOfTheBatchsMasks) {
  const ModelConfig config = tiny_config();
  const int B = 4, T = 8;
  std::vector<std::int32_t> tokens = random_tokens(B * (T + 1), config.vocab_size, 4);
  std::copy(tokens.begin(), tokens.begin() + (T + 1), tokens.begin() + 2 * (T + 1));
  DenseFp64 model(config, 2);
  model.set_batch_split(2);
  model.set_dropout(0.3);
  model.forward(tokens.data(), B, T);
  std::vector<double> losses(std::size_t(B) * T);
  model.token_losses(losses.data());
  int differ = 0;
  for (int t = 0; t < T; ++t) differ += losses[std::size_t(t)] != losses[std::size_t(2 * T + t)];
  EXPECT_GT(differ, 0);
  model.set_dropout(0.0);
  model.forward(tokens.data(), B, T);
  model.token_losses(losses.data());
  for (int t = 0; t < T; ++t) {
    EXPECT_DOUBLE_EQ(losses[std::size_t(t)], losses[std::size_t(2 * T + t)]);
  }
}

TEST(BatchSplit, Errors) {
  const ModelConfig config = tiny_config();
  DenseFp64 model(config, 1);
  for (int bad : {0, -2}) {
    try {
      model.set_batch_split(bad);
      ADD_FAILURE() << "set_batch_split(" << bad << ") did not throw";
    } catch (const Error& error) {
      EXPECT_NE(std::string(error.what()).find("groups must lie in [1, "), std::string::npos)
          << error.what();
    }
  }
  // A bad id in the second group is reported at its row in the batch.
  model.set_batch_split(2);
  const int B = 4, T = 5;
  std::vector<std::int32_t> tokens = random_tokens(B * (T + 1), config.vocab_size, 6);
  tokens[3 * (T + 1) + 2] = config.vocab_size;
  try {
    model.forward(tokens.data(), B, T);
    ADD_FAILURE() << "forward accepted token id " << config.vocab_size;
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("at row 3, position 2"), std::string::npos)
        << error.what();
  }
  // Back to one group: the model runs unsplit again.
  model.set_batch_split(1);
  EXPECT_EQ(model.batch_split(), 1);
  tokens[3 * (T + 1) + 2] = 0;
  EXPECT_TRUE(std::isfinite(model.forward(tokens.data(), B, T)));
  model.backward();
}

}  // namespace
}  // namespace batch_split_tests
}  // namespace lightgpt::testing

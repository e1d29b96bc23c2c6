// The batch split (GPT::set_batch_split) with LightRnnHead, whose row groups read the model's
// codebook and CoCoNT targets (share_state) and whose reallocation statistics the model gathers
// from them (add_statistics_of): against the same model unsplit in Fp64, with a codebook set
// before and after the split, CoCoNT on, statistics on, MTP and the untied token table, whose
// gradient rows the model must still know.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "head_instances.hpp"

namespace lightgpt::testing {
namespace batch_split_lightrnn_tests {
namespace {

ModelConfig split_config() {
  ModelConfig config = tiny_config();
  config.vocab_size = 40;
  config.d_model = 16;
  config.options.set("lightrnn.token_embedding", true);
  return config;
}

// Every token's two most likely successors under a fixed rule, for CoCoNT.
BigramTable successors(int V) {
  BigramTable table(V, 2);
  for (int a = 0; a < V; ++a) {
    const std::uint32_t ids[2] = {std::uint32_t((a * 7 + 3) % V), std::uint32_t((a + 1) % V)};
    const float probs[2] = {0.7f, 0.3f};
    table.set(a, ids, probs);
  }
  return table;
}

double relative_gap(const double* a, const double* b, std::size_t n) {
  double gap = 0, scale = 0;
  for (std::size_t i = 0; i < n; ++i) {
    gap = std::max(gap, std::abs(a[i] - b[i]));
    scale = std::max(scale, std::abs(b[i]));
  }
  return scale > 0 ? gap / scale : gap;
}

template <class Model>
void expect_split_matches_unsplit(int B, int groups) {
  SCOPED_TRACE("B = " + std::to_string(B) + ", groups = " + std::to_string(groups));
  const ModelConfig config = split_config();
  const int T = 6, window = T + Model::mtp_depth;
  const int V = config.vocab_size, R = lightrnn_table_rows(config);
  Model whole(config, 5), split(config, 5);
  for (Model* model : {&whole, &split}) {
    model->head().set_codebook(LightRnnCodebook::random(V, R, 3));
    model->set_cocont(successors(V));
    model->set_cocont_alpha(0.25);
    model->set_mtp_weight(0.5);
  }
  split.set_batch_split(groups);
  // A codebook set after the split reaches the groups.
  for (Model* model : {&whole, &split}) {
    model->head().set_codebook(LightRnnCodebook::random(V, R, 4));
    model->head().begin_reallocation_statistics();
    model->zero_grad();
  }
  for (int micro = 0; micro < 2; ++micro) {
    const auto tokens = random_tokens(B * window, V, 30 + micro);
    const double expected = whole.forward(tokens.data(), B, T);
    EXPECT_NEAR(split.forward(tokens.data(), B, T), expected, 1e-12 * std::abs(expected));
    EXPECT_NEAR(split.losses().cocont, whole.losses().cocont, 1e-12);
    EXPECT_GT(whole.losses().cocont, 0.0);
    whole.backward(0.5);
    split.backward(0.5);
  }
  const std::size_t size = whole.parameters().layout().size();
  EXPECT_LT(relative_gap(std::as_const(split.parameters()).grads(),
                         std::as_const(whole.parameters()).grads(), size),
            1e-12);
  const std::vector<double> expected = whole.head().reallocation_statistics();
  const std::vector<double> got = split.head().reallocation_statistics();
  ASSERT_EQ(got.size(), expected.size());
  EXPECT_LT(relative_gap(got.data(), expected.data(), got.size()), 1e-12);

  // The token table's rows written are known to the model: zero_grad, visiting only those,
  // leaves every gradient zero, and a second step's gradients match again.
  ASSERT_TRUE(split.parameters().gradient_rows_known());
  split.zero_grad();
  whole.zero_grad();
  const double* g = std::as_const(split.parameters()).grads();
  std::size_t nonzero = 0;
  for (std::size_t i = 0; i < size; ++i) nonzero += g[i] != 0.0;
  EXPECT_EQ(nonzero, 0u);
  const auto tokens = random_tokens(B * window, V, 40);
  whole.forward(tokens.data(), B, T);
  split.forward(tokens.data(), B, T);
  whole.backward();
  split.backward();
  EXPECT_LT(relative_gap(std::as_const(split.parameters()).grads(),
                         std::as_const(whole.parameters()).grads(), size),
            1e-12);
}

TEST(BatchSplitLightRnn, MatchesTheUnsplitModel) {
  expect_split_matches_unsplit<LightRnnFp64>(4, 2);
  expect_split_matches_unsplit<LightRnnFp64>(5, 3);
  expect_split_matches_unsplit<LightRnnMtp2Fp64>(5, 2);
}

// Reallocation from the gathered statistics moves the same tokens, and the groups then read the
// new map: the next split forward matches the unsplit one.
TEST(BatchSplitLightRnn, GroupsFollowAReallocation) {
  const ModelConfig config = split_config();
  const int B = 6, T = 6, V = config.vocab_size;
  LightRnnFp64 whole(config, 8), split(config, 8);
  split.set_batch_split(2);
  for (LightRnnFp64* model : {&whole, &split}) model->head().begin_reallocation_statistics();
  for (int pass = 0; pass < 3; ++pass) {
    const auto tokens = random_tokens(B * (T + 1), V, 50 + pass);
    whole.forward(tokens.data(), B, T);
    split.forward(tokens.data(), B, T);
  }
  const ReallocationReport a = whole.head().reallocate(), b = split.head().reallocate();
  EXPECT_EQ(a.moved, b.moved);
  EXPECT_GT(a.moved, 0);
  for (int w = 0; w < V; ++w) {
    ASSERT_EQ(split.head().codebook().cell(w), whole.head().codebook().cell(w)) << "token " << w;
  }
  const auto tokens = random_tokens(B * (T + 1), V, 60);
  const double expected = whole.forward(tokens.data(), B, T);
  EXPECT_NEAR(split.forward(tokens.data(), B, T), expected, 1e-12 * expected);
}

}  // namespace
}  // namespace batch_split_lightrnn_tests
}  // namespace lightgpt::testing

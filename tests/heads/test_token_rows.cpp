// The token table's gradient rows (ParameterStore::track_gradient_rows): on the CPU a model with
// LightRNN's untied token table reports the rows its backward writes, and zero_grad, the gradient
// norm and AdamW visit only those. Checked against the same model with tracking off, bit for bit,
// and against the ways other writers can reach the gradients: a writable grads(), a data-parallel
// sum. The norm over ranges is checked against the whole pass, and shown not to read outside.
#include <gtest/gtest.h>

#include <cmath>
#include <lightgpt/train/gradient_sync.hpp>
#include <limits>
#include <utility>
#include <vector>

#include "head_instances.hpp"
#include "two_rank_world.hpp"

namespace lightgpt::testing {
namespace token_rows_tests {
namespace {

// 1200 × 16 table rows: the layout spans two of the norm's 16384-value chunks.
ModelConfig table_config() {
  ModelConfig config = tiny_config();
  config.vocab_size = 1200;
  config.d_model = 16;
  config.max_seq_len = 8;
  config.n_layer = 1;
  config.options.set("lightrnn.token_embedding", true);
  return config;
}

// Every gradient and parameter value, as bits compare.
template <class Model>
std::vector<float> all_values(const Model& model) {
  std::vector<float> values;
  for (const TensorInfo& tensor : model.parameters().layout().tensors()) {
    const std::vector<float> v = model.parameters().read(tensor);
    values.insert(values.end(), v.begin(), v.end());
  }
  return values;
}
template <class Model>
std::vector<float> all_grads(const Model& model) {
  const float* g = std::as_const(model.parameters()).grads();
  return {g, g + model.parameters().layout().size()};
}
template <class Model>
bool grads_all_zero(const Model& model) {
  for (float g : all_grads(model)) {
    if (g != 0.0f) return false;
  }
  return true;
}

// Steps of two micro-batches each, drawn afresh every step from a small range of ids, so that
// rows go idle, outlive the AdamW window and come back.
template <class Model>
struct Training {
  ModelConfig config = table_config();
  Model model{config, 7};
  typename Model::Optimizer optimizer;
  std::vector<double> norms;
  static constexpr int B = 3, T = 8;

  explicit Training(bool tracking) : optimizer(model.parameters().layout(), window_config()) {
    if (!tracking) model.parameters().track_gradient_rows(false);
  }
  static AdamWConfig window_config() {
    AdamWConfig config;
    config.sparse_rows_window = 2;
    config.grad_clip = 0.5;  // the norm scales every update
    return config;
  }
  void step(int index) {
    model.zero_grad();
    for (int micro = 0; micro < 2; ++micro) {
      std::vector<std::int32_t> tokens =
          random_tokens(B * (T + Model::mtp_depth), 40, 100 + 2 * index + micro);
      for (std::int32_t& id : tokens) id += 30 * (index % 4);  // rows 0–129
      model.forward(tokens.data(), B, T);
      model.backward(0.5f);
    }
    norms.push_back(optimizer.step(model.parameters(), 1e-2));
  }
};

template <class Model>
void expect_same_training() {
  Training<Model> tracked(true), plain(false);
  for (int step = 0; step < 8; ++step) {
    tracked.step(step);
    plain.step(step);
    ASSERT_TRUE(tracked.model.parameters().gradient_rows_known()) << "step " << step;
    ASSERT_FALSE(plain.model.parameters().gradient_rows_known()) << "step " << step;
    ASSERT_EQ(tracked.norms.back(), plain.norms.back()) << "step " << step;
    ASSERT_GT(tracked.norms.back(), 0.0);
    ASSERT_EQ(all_grads(tracked.model), all_grads(plain.model)) << "step " << step;
    ASSERT_EQ(all_values(tracked.model), all_values(plain.model)) << "step " << step;
  }
  tracked.model.zero_grad();
  EXPECT_TRUE(grads_all_zero(tracked.model));
}

TEST(TokenRows, TrainingMatchesTrackingOffBitForBit) { expect_same_training<LightRnnFp32>(); }
// MTP windows carry target ids past the inputs, which the token table never sees; Bf16 keeps
// master weights apart from the working copy.
TEST(TokenRows, TrainingMatchesTrackingOffWithMtpAndBf16) {
  expect_same_training<LightRnnMtp2Fp32>();
  expect_same_training<LightRnnMtp2Bf16>();
}

TEST(TokenRows, RangesCoverTheRowsWrittenAndEverythingElse) {
  LightRnnFp32 model(table_config(), 3);
  auto& store = model.parameters();
  const TensorInfo& table = store.layout().at("lightrnn_token");
  EXPECT_FALSE(store.gradient_rows_known());  // until the first zero_grad
  store.zero_grad();
  ASSERT_TRUE(store.gradient_rows_known());
  const std::int32_t tokens[] = {5, 9, 5, 1199, 0};  // one window of T = 4: 0 is a target
  model.forward(tokens, 1, 4);
  model.backward();
  const std::size_t width = 16;
  std::vector<FlatRange> expected = {{0, table.offset}};
  expected.push_back({table.offset + 5 * width, width});
  expected.push_back({table.offset + 9 * width, width});
  expected.push_back(
      {table.offset + 1199 * width, store.layout().size() - table.offset - 1199 * width});
  EXPECT_EQ(store.nonzero_gradient_ranges(), expected);
  EXPECT_EQ(store.gradient_row_mask()[5], 1);
  EXPECT_EQ(store.gradient_row_mask()[0], 0);
  // Outside the ranges every gradient is zero, inside the rows written are not.
  const float* g = std::as_const(store).grads();
  for (std::size_t i = table.offset; i < table.offset + table.numel; ++i) {
    const std::size_t row = (i - table.offset) / width;
    if (row != 5 && row != 9 && row != 1199) ASSERT_EQ(g[i], 0.0f) << "row " << row;
  }
  EXPECT_NE(g[table.offset + 5 * width], 0.0f);
  store.zero_grad();
  EXPECT_TRUE(grads_all_zero(model));
  EXPECT_EQ(store.gradient_row_mask()[5], 0);
}

// Whoever takes writable gradients may write any row: the next update reads them all and the
// next zero_grad clears them all.
TEST(TokenRows, WritableGradsMakeTheRowsUnknown) {
  Training<LightRnnFp32> tracked(true), plain(false);
  tracked.step(0);
  plain.step(0);
  for (auto* run : {&tracked, &plain}) {
    run->model.zero_grad();
    const std::int32_t tokens[] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    run->model.forward(tokens, 1, 8);
    run->model.backward();
    const TensorInfo& table = run->model.parameters().layout().at("lightrnn_token");
    run->model.parameters().grads()[table.offset + 700 * 16 + 3] =
        0.75f;  // row 700, not in the batch
  }
  EXPECT_FALSE(tracked.model.parameters().gradient_rows_known());
  const double norm = tracked.optimizer.step(tracked.model.parameters(), 1e-2);
  EXPECT_EQ(norm, plain.optimizer.step(plain.model.parameters(), 1e-2));
  EXPECT_GT(norm, 0.75);
  EXPECT_EQ(all_values(tracked.model), all_values(plain.model));
  tracked.model.zero_grad();
  EXPECT_TRUE(grads_all_zero(tracked.model));
  EXPECT_TRUE(tracked.model.parameters().gradient_rows_known());
}

// A world of two whose peer's gradient is 0.5 everywhere: the sums write rows of the token table
// that this rank's batch never held.
class PeerAddsHalf final : public TwoRankWorld {
 public:
  void all_reduce_sum(void* data, std::size_t count, DataType) override { add(data, count); }
  Request start_all_reduce_sum(void* data, std::size_t count, DataType) override {
    add(data, count);
    return {};
  }

 private:
  static void add(void* data, std::size_t count) {
    float* values = static_cast<float*>(data);
    for (std::size_t i = 0; i < count; ++i) values[i] += 0.5f;
  }
};

TEST(TokenRows, DataParallelSumTurnsTrackingOff) {
  LightRnnFp32 model(table_config(), 3);
  PeerAddsHalf world;
  GradientSync sync(model, world, 1 << 20, {});
  model.zero_grad();
  EXPECT_FALSE(model.parameters().gradient_rows_known());
  const std::int32_t tokens[] = {1, 2, 3, 4, 5};
  model.forward(tokens, 1, 4);
  model.backward();
  sync.finish();
  const TensorInfo& table = model.parameters().layout().at("lightrnn_token");
  EXPECT_EQ(std::as_const(model.parameters()).grads()[table.offset + 900 * 16], 0.5f);
  model.zero_grad();
  EXPECT_TRUE(grads_all_zero(model));
}

// The norm over ranges: the whole pass's value bit for bit when the rest is zero, without reading
// the rest (NaN there changes nothing). Ranges start and end off the 8 lanes and across chunks.
TEST(TokenRows, SumOfSquaresOverRangesMatchesTheWholePass) {
  const std::size_t count = 3 * 16384 + 123;
  const std::vector<FlatRange> ranges = {{3, 5},     {17, 40},           {16380, 9},
                                         {16400, 1}, {2 * 16384 - 1, 2}, {3 * 16384 + 100, 23}};
  std::vector<float> zeros(count, 0.0f), nans(count, std::numeric_limits<float>::quiet_NaN());
  Rng rng(11);
  for (const FlatRange& range : ranges) {
    for (std::size_t i = range.offset; i < range.offset + range.count; ++i) {
      zeros[i] = nans[i] = float(rng.normal() * std::exp(4 * rng.uniform()));
    }
  }
  const double whole = Ops<Cpu>::sum_of_squares(zeros.data(), count);
  EXPECT_GT(whole, 0.0);
  EXPECT_EQ(Ops<Cpu>::sum_of_squares(zeros.data(), count, ranges.data(), ranges.size()), whole);
  EXPECT_EQ(Ops<Cpu>::sum_of_squares(nans.data(), count, ranges.data(), ranges.size()), whole);
  EXPECT_EQ(Ops<Cpu>::sum_of_squares(nans.data(), count, ranges.data(), 0), 0.0);
}

}  // namespace
}  // namespace token_rows_tests
}  // namespace lightgpt::testing

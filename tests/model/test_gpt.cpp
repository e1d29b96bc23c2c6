// Whole-model behaviour of GPT<P, DenseHead<>, Attention, Cpu>: precision agreement, the
// inference paths, causality, learning, determinism and the errors of the user contract.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

#include <lightgpt/testing/determinism.hpp>

#include "instances.hpp"

namespace lightgpt::testing {
namespace gpt_tests {
namespace {

template <class F>
std::string error_message(F&& f) {
  try {
    f();
  } catch (const Error& error) {
    return error.what();
  }
  return "(no lightgpt::Error thrown)";
}

TEST(Gpt, InitialLossIsNearUniform) {
  ModelConfig config = tiny_config();
  DenseFp32 model(config, 1);
  const auto tokens = random_tokens(3 * 9, config.vocab_size, 2);
  const float loss = model.forward(tokens.data(), 3, 8);
  EXPECT_NEAR(loss, std::log(float(config.vocab_size)), 0.1);
}

TEST(Gpt, Fp32MatchesFp64OnTheSameWeights) {
  ModelConfig config = tiny_config();
  config.d_model = 32;
  config.n_head = 4;
  DenseFp64 reference(config, 3);
  DenseFp32 model(config, 99);
  copy_parameters(reference, model);
  const auto tokens = random_tokens(4 * 13, config.vocab_size, 8);
  const double expected = reference.forward(tokens.data(), 4, 12);
  const float actual = model.forward(tokens.data(), 4, 12);
  EXPECT_LT(std::abs(actual - expected) / expected, 1e-5);
  EXPECT_LT(std::abs(model.evaluate(tokens.data(), 4, 12, 13) - expected) / expected, 1e-5);
}

TEST(Gpt, EvaluateEqualsTrainingForwardMainLoss) {
  DenseFp64 model(tiny_config(), 3);
  const auto tokens = random_tokens(2 * 11, tiny_config().vocab_size, 4);
  const double trained = model.forward(tokens.data(), 2, 10);
  EXPECT_DOUBLE_EQ(model.evaluate(tokens.data(), 2, 10), trained);
}

// Dropout acts in training forwards only, draws its masks from the dropout seed (which each
// training forward advances) and leaves evaluate() the undropped NLL.
TEST(Gpt, DropoutActsInTrainingForwardsOnly) {
  DenseFp64 model(tiny_config(), 3);
  const auto tokens = random_tokens(2 * 11, tiny_config().vocab_size, 4);
  const double clean = model.forward(tokens.data(), 2, 10);
  const double clean_eval = model.evaluate(tokens.data(), 2, 10);
  model.set_dropout(0.5);
  model.set_dropout_seed(17);
  const double dropped = model.forward(tokens.data(), 2, 10);
  EXPECT_EQ(model.dropout_seed(), 18u);
  EXPECT_NE(dropped, clean);
  EXPECT_NE(model.forward(tokens.data(), 2, 10), dropped);  // seed 18: another mask
  model.set_dropout_seed(17);
  EXPECT_EQ(model.forward(tokens.data(), 2, 10), dropped);
  EXPECT_EQ(model.evaluate(tokens.data(), 2, 10), clean_eval);
  EXPECT_THROW(model.set_dropout(1.0), Error);
  EXPECT_THROW(model.set_dropout(-0.1), Error);
}

TEST(Gpt, LogProbsSumToOneAndMatchTheLoss) {
  ModelConfig config = tiny_config();
  DenseFp64 model(config, 5);
  const int B = 2, T = 9, V = config.vocab_size;
  const auto tokens = random_tokens(B * (T + 1), V, 6);
  std::vector<std::int32_t> inputs;
  for (int b = 0; b < B; ++b) {
    inputs.insert(inputs.end(), tokens.begin() + b * (T + 1), tokens.begin() + b * (T + 1) + T);
  }
  std::vector<double> log_probs(std::size_t(B) * T * V);
  model.log_probs(inputs.data(), B, T, log_probs.data());
  double nll = 0;
  for (int n = 0; n < B * T; ++n) {
    double total = 0;
    for (int v = 0; v < V; ++v) total += std::exp(log_probs[std::size_t(n) * V + v]);
    EXPECT_NEAR(total, 1.0, 1e-12) << "position " << n;
    const int target = tokens[(n / T) * (T + 1) + n % T + 1];
    nll -= log_probs[std::size_t(n) * V + target];
  }
  EXPECT_NEAR(nll / (B * T), model.evaluate(tokens.data(), B, T), 1e-12);
  // The per-position losses of that evaluate() are the same NLLs, position by position.
  std::vector<double> token_losses(std::size_t(B) * T, -1.0);
  model.token_losses(token_losses.data());
  for (int n = 0; n < B * T; ++n) {
    const int target = tokens[(n / T) * (T + 1) + n % T + 1];
    EXPECT_NEAR(token_losses[n], -log_probs[std::size_t(n) * V + target], 1e-12) << n;
  }
}

// Changing tokens after position t leaves every output at positions <= t bit-identical.
TEST(Gpt, AttentionIsCausal) {
  ModelConfig config = tiny_config();
  config.max_seq_len = 80;  // more than one attention query block
  DenseFp32 model(config, 5);
  const int T = 75, V = config.vocab_size, cut = 40;
  auto inputs = random_tokens(T, V, 7);
  std::vector<float> before(std::size_t(T) * V), after(before.size());
  model.log_probs(inputs.data(), 1, T, before.data());
  for (int t = cut + 1; t < T; ++t) inputs[t] = (inputs[t] + 1 + t) % V;
  model.log_probs(inputs.data(), 1, T, after.data());
  for (std::size_t i = 0; i < std::size_t(cut + 1) * V; ++i) ASSERT_EQ(before[i], after[i]) << i;
  double change = 0;
  for (std::size_t i = std::size_t(cut + 1) * V; i < before.size(); ++i) {
    change += std::abs(before[i] - after[i]);
  }
  EXPECT_GT(change, 1e-3);  // and later positions do see the change
}

TEST(Gpt, Uint16ShardViewsMatchInt32) {
  DenseFp64 model(tiny_config(), 5);
  const auto tokens = random_tokens(3 * 10, tiny_config().vocab_size, 9);
  const std::vector<std::uint16_t> narrow(tokens.begin(), tokens.end());
  // Rows advance by T = 9 inside one stream, as a loader's view into a shard does.
  const double wide = model.forward(tokens.data(), 2, 9, 9);
  EXPECT_DOUBLE_EQ(model.forward(narrow.data(), 2, 9, 9), wide);
}

TEST(Gpt, MemorisesOneBatchWithAdamW) {
  ModelConfig config = tiny_config();
  config.d_model = 32;
  DenseFp32 model(config, 1);
  AdamW<Cpu, float> optimizer(model.parameters().layout());
  const auto tokens = random_tokens(4 * 11, config.vocab_size, 1);
  float loss = 0;
  for (int step = 0; step < 150; ++step) {
    model.zero_grad();
    loss = model.forward(tokens.data(), 4, 10);
    model.backward();
    optimizer.step(model.parameters(), 1e-2);
  }
  EXPECT_LT(loss, 0.1f);
}

// Twenty AdamW steps on a learnable stream (an arithmetic progression mod V from a random start).
TrainingRecord training_run() {
  ModelConfig config = tiny_config();
  config.d_model = 16;
  constexpr int steps = 20, B = 3, T = 10;
  std::vector<std::int32_t> tokens;
  for (int step = 0; step < steps; ++step) {
    auto batch = random_tokens(B * (T + 1), config.vocab_size, 100 + step);
    for (std::size_t i = 1; i < batch.size(); ++i) {
      batch[i] = (batch[i - 1] + 5) % config.vocab_size;
    }
    tokens.insert(tokens.end(), batch.begin(), batch.end());
  }
  return record_training_run<DenseFp32>(config, 42, [](auto&) {}, tokens, B, T, steps);
}

TEST(Gpt, SameSeedGivesBitIdenticalLossesAndGradients) {
  const TrainingRecord first = training_run(), second = training_run();
  ASSERT_EQ(first.losses.size(), second.losses.size());
  for (std::size_t i = 0; i < first.losses.size(); ++i) {
    ASSERT_EQ(first.losses[i], second.losses[i]) << "record " << i;
  }
  EXPECT_TRUE(first.grads == second.grads) << "gradients differ between runs";
  EXPECT_LT(first.losses[first.losses.size() - 2], first.losses.front()) << "it did not learn";
}

TEST(Gpt, ConfigErrorsNameTheField) {
  ModelConfig config = tiny_config();
  config.n_head = 3;
  EXPECT_NE(error_message([&] { DenseFp32 m(config, 1); }).find("n_head"), std::string::npos);
  config = tiny_config();
  config.vocab_size = 0;
  EXPECT_NE(error_message([&] { config.validate(); }).find("vocab_size"), std::string::npos);
  config = tiny_config();
  config.n_layer = -1;
  EXPECT_NE(error_message([&] { config.validate(); }).find("n_layer"), std::string::npos);
  config = tiny_config();
  config.max_seq_len = 0;
  EXPECT_NE(error_message([&] { config.validate(); }).find("max_seq_len"), std::string::npos);
  config = tiny_config();
  config.d_model = 0;
  EXPECT_NE(error_message([&] { config.validate(); }).find("d_model"), std::string::npos);
}

TEST(Gpt, BatchErrorsNameTheProblem) {
  ModelConfig config = tiny_config();
  DenseFp32 model(config, 1);
  auto tokens = random_tokens(64, config.vocab_size, 1);
  EXPECT_NE(error_message([&] { model.forward(tokens.data(), 0, 4); }).find("batch size B"),
            std::string::npos);
  EXPECT_NE(error_message([&] { model.forward(tokens.data(), 1, 0); }).find("sequence length T"),
            std::string::npos);
  EXPECT_NE(error_message([&] { model.forward(tokens.data(), 1, 13); }).find("max_seq_len"),
            std::string::npos);
  EXPECT_NE(error_message([&] { model.forward(tokens.data(), 2, 4, 0); }).find("row_stride"),
            std::string::npos);
  tokens[3] = config.vocab_size;
  EXPECT_NE(error_message([&] { model.forward(tokens.data(), 1, 4); }).find("token id 23"),
            std::string::npos);
  tokens[3] = -1;
  EXPECT_NE(error_message([&] { model.evaluate(tokens.data(), 1, 4); }).find("token id -1"),
            std::string::npos);
  EXPECT_NE(error_message([&] { model.backward(); }).find("forward"), std::string::npos);
}

// The inference paths reuse a training-sized arena for any smaller B·T, and a larger request
// grows it.
TEST(Gpt, ArenaServesSmallerAndLargerBatches) {
  ModelConfig config = tiny_config();
  DenseFp64 model(config, 2);
  const auto tokens = random_tokens(6 * 13, config.vocab_size, 3);
  model.reserve(2, 12);
  const double small = model.evaluate(tokens.data(), 1, 5, 13);
  const double large = model.evaluate(tokens.data(), 6, 12, 13);
  EXPECT_DOUBLE_EQ(model.evaluate(tokens.data(), 1, 5, 13), small);
  EXPECT_DOUBLE_EQ(model.evaluate(tokens.data(), 6, 12, 13), large);
}

TEST(Gpt, LayoutFollowsLlmcOrderAndAlignment) {
  ModelConfig config = tiny_config();
  DenseFp32 model(config, 1);
  const char* expected[] = {"wte",      "wpe",      "ln1w", "ln1b", "qkvw", "qkvb",
                            "attprojw", "attprojb", "ln2w", "ln2b", "fcw",  "fcb",
                            "fcprojw",  "fcprojb",  "lnfw", "lnfb"};
  const auto& tensors = model.parameters().layout().tensors();
  ASSERT_EQ(tensors.size(), std::size(expected));
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    EXPECT_EQ(tensors[i].name, expected[i]);
    EXPECT_EQ(tensors[i].offset * sizeof(float) % 256, 0u) << tensors[i].name;
    EXPECT_EQ(
        reinterpret_cast<std::uintptr_t>(model.parameters().values() + tensors[i].offset) % 256,
        0u);
  }
  EXPECT_EQ(tensors[0].shape, (std::vector<std::int64_t>{128, 8}));    // wte padded to 128 rows
  EXPECT_EQ(tensors[4].shape, (std::vector<std::int64_t>{2, 24, 8}));  // qkvw (L, 3C, C)
  EXPECT_TRUE(tensors[4].weight_decay);
  EXPECT_FALSE(tensors[0].weight_decay);  // embeddings are not decayed
  EXPECT_FALSE(tensors[5].weight_decay);  // nor biases
  const std::size_t C = 8, L = 2, V = 23;
  EXPECT_EQ(model.num_parameters(), 128 * C + 12 * C + L * (12 * C * C + 13 * C) + 2 * C);
  (void)V;
}

TEST(Gpt, InitialisationFollowsGpt2) {
  ModelConfig config = ModelConfig::gpt2_small();
  config.n_layer = 2;
  config.vocab_size = 1000;
  DenseFp32 model(config, 1);
  auto std_of = [&](const char* name) {
    const auto values = model.parameters().read(model.parameters().layout().at(name));
    double sum = 0, squares = 0;
    for (float v : values) sum += v, squares += double(v) * v;
    const double mean = sum / values.size();
    return std::sqrt(squares / values.size() - mean * mean);
  };
  EXPECT_NEAR(std_of("fcw"), 0.02, 0.0005);
  EXPECT_NEAR(std_of("fcprojw"), 0.02 / std::sqrt(4.0), 0.0005);
  const auto ln = model.parameters().read(model.parameters().layout().at("ln1w"));
  EXPECT_TRUE(std::all_of(ln.begin(), ln.end(), [](float v) { return v == 1.0f; }));
  const auto bias = model.parameters().read(model.parameters().layout().at("fcb"));
  EXPECT_TRUE(std::all_of(bias.begin(), bias.end(), [](float v) { return v == 0.0f; }));
}

// The backward's per-layer hook, which data-parallel training starts its sums from: it fires once
// per layer, L−1 … 0, when that layer's gradients hold their final values and the next layer
// down has none yet, and a backward with it computes exactly what one without it does.
TEST(Gpt, BackwardHookFiresPerLayerInReverseWithFinalGradients) {
  ModelConfig config = tiny_config();
  config.n_layer = 3;
  const auto tokens = random_tokens(3 * 9, config.vocab_size, 4);
  DenseFp64 plain(config, 6), hooked(config, 6);
  for (DenseFp64* model : {&plain, &hooked}) {
    model->zero_grad();
    model->forward(tokens.data(), 3, 8);
  }
  plain.backward(0.5);
  const double* grads = hooked.parameters().grads();
  auto copy_of = [&](int layer) {
    std::vector<double> values;
    for (const FlatRange& range : hooked.layer_ranges(layer, layer + 1)) {
      values.insert(values.end(), grads + range.offset, grads + range.offset + range.count);
    }
    return values;
  };
  std::vector<int> order;
  std::vector<std::vector<double>> at_hook(3);
  hooked.backward(0.5, [&](int layer) {
    order.push_back(layer);
    at_hook[std::size_t(layer)] = copy_of(layer);
    if (layer > 0) {
      const std::vector<double> below = copy_of(layer - 1);
      EXPECT_TRUE(std::all_of(below.begin(), below.end(), [](double g) { return g == 0.0; }))
          << "layer " << layer - 1 << " has gradients before layer " << layer << " is reported";
    }
  });
  EXPECT_EQ(order, (std::vector<int>{2, 1, 0}));
  for (int layer = 0; layer < 3; ++layer) {
    EXPECT_EQ(at_hook[std::size_t(layer)], copy_of(layer)) << "layer " << layer << " changed";
    EXPECT_FALSE(std::all_of(at_hook[std::size_t(layer)].begin(),
                             at_hook[std::size_t(layer)].end(), [](double g) { return g == 0.0; }));
  }
  const std::size_t n = hooked.parameters().layout().size();
  EXPECT_TRUE(std::equal(grads, grads + n, plain.parameters().grads()));
}

// The layers' ranges and the shared ones cover every tensor once; a layer's ranges lie in its
// slice of each stacked tensor.
TEST(Gpt, LayerAndSharedRangesPartitionTheParameters) {
  ModelConfig config = tiny_config();
  config.n_layer = 3;
  const DenseFp64 model(config, 1);
  const ParameterLayout& layout = model.parameters().layout();
  std::vector<int> covered(layout.size(), 0);
  std::vector<FlatRange> ranges = model.shared_ranges();
  for (int layer = 0; layer < 3; ++layer) {
    const std::vector<FlatRange> own = model.layer_ranges(layer, layer + 1);
    ranges.insert(ranges.end(), own.begin(), own.end());
  }
  for (const FlatRange& range : ranges) {
    for (std::size_t i = range.offset; i < range.offset + range.count; ++i) ++covered[i];
  }
  for (const TensorInfo& tensor : layout.tensors()) {
    for (std::size_t i = tensor.offset; i < tensor.offset + tensor.numel; ++i) {
      ASSERT_EQ(covered[i], 1) << tensor.name << " element " << i - tensor.offset;
    }
  }
  const TensorInfo& fcw = layout.at("fcw");
  const std::vector<FlatRange> last_two = model.layer_ranges(1, 3);
  EXPECT_NE(std::find(last_two.begin(), last_two.end(),
                      FlatRange{fcw.offset + fcw.numel / 3, fcw.numel / 3 * 2}),
            last_two.end());
  EXPECT_THROW(model.layer_ranges(2, 4), Error);
}

}  // namespace
}  // namespace gpt_tests
}  // namespace lightgpt::testing

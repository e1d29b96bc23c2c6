// AfnoMixer<NumBlocks>: causality (by perturbation and through the backward pass), real token
// mixing, finite-difference gradients of every parameter (mixer alone and whole model), decoding
// equal to the full forward (mixer and model), configuration errors, the parameter layout, and
// that a model learns.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>

#include <lightgpt/testing/gradcheck.hpp>

#include "afno_instances.hpp"

namespace lightgpt::testing {
namespace afno_tests {
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

ModelConfig mixer_config(bool gate = true, int hidden_factor = 1) {
  ModelConfig config = tiny_config();  // d_model 8, max_seq_len 12, 2 layers
  config.options.set("afno.gate", gate);
  config.options.set("afno.hidden_factor", hidden_factor);
  return config;
}

// A longer sequence for causality: several FFT lengths' worth of positions, C not a multiple of
// the kernel's channel group.
ModelConfig long_config() {
  ModelConfig config = tiny_config();
  config.max_seq_len = 70;
  config.d_model = 20;
  config.n_head = 4;
  return config;
}

double norm_at(const std::vector<double>& v, int b, int t, int T, int C) {
  double sum = 0;
  for (int c = 0; c < C; ++c)
    sum += v[(std::size_t(b) * T + t) * C + c] * v[(std::size_t(b) * T + t) * C + c];
  return std::sqrt(sum);
}
double max_abs(const std::vector<double>& v) {
  double m = 0;
  for (double x : v) m = std::max(m, std::abs(x));
  return m;
}

TEST(AfnoMixer, PolicyNamesAndBlocks) {
  EXPECT_EQ(AfnoMixer<8>::name(), "afno<8>");
  EXPECT_EQ(AfnoMixer<8>::num_blocks, 8);
  EXPECT_TRUE(MixerPolicy<AfnoMixer<4>>);
  EXPECT_EQ(AfnoFp64::composition(), "head=dense<mtp=1> mixer=afno<4>");
}

// (1) Perturbing every input at positions ≥ j leaves outputs at < j unchanged to 1e-12 (relative
// to the output scale) and changes every output at ≥ j; batch rows stay independent.
TEST(AfnoMixer, PerturbingTheFutureLeavesThePastUnchanged) {
  const ModelConfig config = long_config();
  const int B = 2, T = 67, C = config.d_model;  // prime T
  AfnoHarness<Fp64, 4> harness(config, std::size_t(B) * T, 1);
  harness.randomize(0.3, 2);
  const auto x = normal_values(std::size_t(B) * T * C, 3);
  const auto y = harness.forward(1, x, B, T);
  const double scale = max_abs(y);
  for (int j : {1, 5, 33, 66}) {
    auto perturbed = x;
    const auto noise = normal_values(perturbed.size(), 4 + j);
    for (int t = j; t < T; ++t)
      for (int c = 0; c < C; ++c) perturbed[(std::size_t(0) * T + t) * C + c] += noise[t * C + c];
    const auto z = harness.forward(1, perturbed, B, T);
    auto diff = z;
    for (std::size_t i = 0; i < diff.size(); ++i) diff[i] -= y[i];
    for (int t = 0; t < j; ++t)
      EXPECT_LE(norm_at(diff, 0, t, T, C), 1e-12 * scale) << "j " << j << ", t " << t;
    for (int t = j; t < T; ++t)
      EXPECT_GT(norm_at(diff, 0, t, T, C), 1e-3 * scale) << "j " << j << ", t " << t;
    for (int t = 0; t < T; ++t) EXPECT_EQ(norm_at(diff, 1, t, T, C), 0.0) << "other row, t " << t;
  }
}

// (2) Through the backward pass: with dout non-zero at position t only, d(in) is zero (≤ 1e-12
// relative) at every s > t and non-zero at s ≤ t. So ∂y_t/∂x_s = 0 for all s > t.
TEST(AfnoMixer, BackwardHasNoGradientFromThePastToTheFuture) {
  const ModelConfig config = long_config();
  const int B = 1, T = 61, C = config.d_model;
  AfnoHarness<Fp64, 4> harness(config, std::size_t(B) * T, 5);
  harness.randomize(0.3, 6);
  const auto x = normal_values(std::size_t(B) * T * C, 7);
  const auto row = normal_values(C, 8);
  for (int t = 0; t < T; ++t) {
    harness.forward(0, x, B, T);
    std::vector<double> dout(x.size(), 0.0);
    std::copy(row.begin(), row.end(), dout.begin() + std::size_t(t) * C);
    const auto din = harness.backward(0, dout, x, B, T);
    const double scale = max_abs(din);
    ASSERT_GT(scale, 0.0);
    for (int s = t + 1; s < T; ++s)
      ASSERT_LE(norm_at(din, 0, s, T, C), 1e-12 * scale) << "t " << t << ", s " << s;
    for (int s = 0; s <= t; ++s)
      EXPECT_GT(norm_at(din, 0, s, T, C), 1e-10 * scale) << "t " << t << ", s " << s;
  }
}

// Tokens really mix, from the decaying initialisation on: a change at position s reaches every
// later output (the original scripts' channel FFT left every other position untouched).
TEST(AfnoMixer, PerturbingOnePositionChangesEveryLaterOutput) {
  const ModelConfig config = long_config();
  const int B = 1, T = 64, C = config.d_model;
  AfnoHarness<Fp64, 4> harness(config, std::size_t(B) * T, 9);  // as initialised
  const auto x = normal_values(std::size_t(B) * T * C, 10);
  const auto y = harness.forward(0, x, B, T);
  for (int s : {0, 10, 40}) {
    auto perturbed = x;
    for (int c = 0; c < C; ++c) perturbed[std::size_t(s) * C + c] += 1.0;
    const auto z = harness.forward(0, perturbed, B, T);
    auto diff = z;
    for (std::size_t i = 0; i < diff.size(); ++i) diff[i] -= y[i];
    for (int t = 0; t < s; ++t)
      EXPECT_LE(norm_at(diff, 0, t, T, C), 1e-12) << "s " << s << ", t " << t;
    for (int t = s; t < T; ++t)
      EXPECT_GT(norm_at(diff, 0, t, T, C), 1e-6) << "s " << s << ", t " << t;
  }
}

// Central differences of J = Σ w ⊙ mixer(x) for every element of every parameter tensor (and
// sampled inputs) against backward(), with gate on/off and hidden factor 1/2.
void check_mixer_gradients(const ModelConfig& base) {
  ModelConfig config = base;
  // A sizeable dead zone, so the shrink mask matters.
  config.options.set("afno.sparsity_threshold", 0.1);
  const int B = 2, T = 11, C = config.d_model, layer = 1;
  AfnoHarness<Fp64, 4> harness(config, std::size_t(B) * T, 11);
  harness.randomize(0.4, 12);
  auto x = normal_values(std::size_t(B) * T * C, 13);
  const auto weights = normal_values(x.size(), 14);
  auto objective = [&](const std::vector<double>& in) {
    const auto y = harness.forward(layer, in, B, T);
    double sum = 0;
    for (std::size_t i = 0; i < y.size(); ++i) sum += weights[i] * y[i];
    return sum;
  };
  auto& store = harness.parameters();
  store.zero_grad();
  objective(x);
  const auto din = harness.backward(layer, weights, x, B, T);

  GradCheckOptions every_element;
  every_element.samples_per_tensor = 0;
  every_element.floor = 1e-3;
  const GradCheckReport report =
      check_gradients(store, [&] { return objective(x); }, every_element);
  EXPECT_EQ(report.failures(1e-6), "");
  EXPECT_TRUE(std::any_of(report.entries.begin(), report.entries.end(),
                          [](const GradCheckEntry& e) { return e.analytic != 0.0; }));
  const double h = 1e-5;
  auto check = [](double numeric, double analytic, const std::string& what) {
    const double scale = std::max({std::abs(numeric), std::abs(analytic), 1e-3});
    EXPECT_LT(std::abs(numeric - analytic) / scale, 1e-6)
        << what << ": analytic " << analytic << ", numeric " << numeric;
  };
  for (std::size_t i = 0; i < x.size(); i += 5) {
    const double original = x[i];
    x[i] = original + h;
    const double plus = objective(x);
    x[i] = original - h;
    const double minus = objective(x);
    x[i] = original;
    check((plus - minus) / (2 * h), din[i], "in[" + std::to_string(i) + "]");
  }
}

TEST(AfnoMixer, GradientsOfEveryParameterMatchFiniteDifferences) {
  check_mixer_gradients(mixer_config());
}
TEST(AfnoMixer, GradientsMatchFiniteDifferencesWithoutGate) {
  check_mixer_gradients(mixer_config(false));
}
TEST(AfnoMixer, GradientsMatchFiniteDifferencesWithHiddenFactorTwo) {
  check_mixer_gradients(mixer_config(true, 2));
}

// Backward honours din's mode and accumulates parameter gradients.
TEST(AfnoMixer, BackwardAccumulatesWhenAskedTo) {
  const ModelConfig config = mixer_config();
  const int B = 1, T = 9;
  AfnoHarness<Fp64, 4> harness(config, std::size_t(B) * T, 15);
  harness.randomize(0.4, 16);
  const auto x = normal_values(std::size_t(B) * T * config.d_model, 17);
  const auto dout = normal_values(x.size(), 18);
  auto& store = harness.parameters();
  const TensorInfo& filter = store.layout().at("afno_filter");
  store.zero_grad();
  harness.forward(0, x, B, T);
  const auto overwritten = harness.backward(0, dout, x, B, T, Mode::overwrite, 5.0);
  const auto once = store.read_grad(filter);
  const auto accumulated = harness.backward(0, dout, x, B, T, Mode::accumulate, 5.0);
  const auto twice = store.read_grad(filter);
  for (std::size_t i = 0; i < x.size(); ++i)
    EXPECT_NEAR(accumulated[i], overwritten[i] + 5.0, 1e-12);
  for (std::size_t i = 0; i < once.size(); ++i) EXPECT_NEAR(twice[i], 2 * once[i], 1e-12);
}

// Decoding position by position (both layers interleaved, as the model does, then a second
// sequence from t = 0) equals the full forward at every position.
TEST(AfnoMixer, DecodingEqualsTheFullForwardAtEveryPosition) {
  for (bool gate : {true, false}) {
    const ModelConfig config = mixer_config(gate, gate ? 1 : 2);
    const int T = config.max_seq_len, C = config.d_model;
    AfnoHarness<Fp64, 4> harness(config, std::size_t(T), 19);
    harness.randomize(0.4, 20);
    for (std::uint64_t sequence : {21, 22}) {
      const auto x0 = normal_values(std::size_t(T) * C, sequence);
      const auto x1 = normal_values(std::size_t(T) * C, sequence + 100);
      const auto y0 = harness.forward(0, x0, 1, T), y1 = harness.forward(1, x1, 1, T);
      std::vector<double> out(C);
      for (int t = 0; t < T; ++t) {
        for (int layer : {0, 1}) {
          const auto& x = layer == 0 ? x0 : x1;
          const auto& y = layer == 0 ? y0 : y1;
          harness.mixer().decode(layer, out.data(), x.data() + std::size_t(t) * C, t);
          for (int c = 0; c < C; ++c) {
            EXPECT_NEAR(out[c], y[std::size_t(t) * C + c],
                        1e-12 * (1 + std::abs(y[std::size_t(t) * C + c])))
                << "gate " << gate << ", layer " << layer << ", t " << t << ", c " << c;
          }
        }
      }
    }
    std::vector<double> out(C), in(C);
    EXPECT_THROW(harness.mixer().decode(0, out.data(), in.data(), T), Error);
  }
}

TEST(AfnoMixer, DModelNotDivisibleByNumBlocksIsAConfigError) {
  ModelConfig config = tiny_config();  // d_model 8
  const std::string message = error_message([&] {
    detail::AfnoMixerImpl<Cpu, Fp64, 3> mixer(config);
    static_cast<void>(mixer);
  });
  EXPECT_NE(message.find("ModelConfig.d_model (8)"), std::string::npos) << message;
  EXPECT_NE(message.find("NumBlocks (3)"), std::string::npos) << message;
  config.d_model = 10;  // divisible by n_head = 2, not by 4 blocks
  const std::string model_message = error_message([&] { AfnoFp64 model(config, 1); });
  EXPECT_NE(model_message.find("must be divisible by AfnoMixer's NumBlocks (4)"), std::string::npos)
      << model_message;
}

// Names start with afno_; filters, biases and gate bias are exempt from weight decay; the
// filters start as decaying, positive, unit-area-or-less moving averages.
TEST(AfnoMixer, ParameterLayoutAndInitialisation) {
  const ModelConfig config = tiny_config();
  AfnoFp64 model(config, 1);
  const ParameterLayout& layout = model.parameters().layout();
  for (const char* name : {"afno_filter", "afno_gateb", "afno_b1", "afno_b2"})
    EXPECT_FALSE(layout.at(name).weight_decay) << name;
  for (const char* name : {"afno_gatew", "afno_w1", "afno_w2"})
    EXPECT_TRUE(layout.at(name).weight_decay) << name;
  EXPECT_EQ(layout.find("qkvw"), nullptr);
  const TensorInfo& filter = layout.at("afno_filter");
  EXPECT_EQ(filter.shape, (std::vector<std::int64_t>{2, 8, 12}));
  EXPECT_EQ(layout.at("afno_w1").shape, (std::vector<std::int64_t>{2, 4, 2, 2}));
  const auto taps = model.parameters().read(filter);
  for (int row = 0; row < 2 * 8; ++row) {
    double area = 0;
    for (int s = 0; s < 12; ++s) {
      const double tap = taps[std::size_t(row) * 12 + s];
      EXPECT_GT(tap, 0.0);
      if (s > 0) {
        EXPECT_LT(tap, taps[std::size_t(row) * 12 + s - 1]);
      }
      area += tap;
    }
    EXPECT_LE(area, 1.0 + 1e-12);
  }
  // The fastest channel (rate 1) and the slowest (rate 1 / max_seq_len).
  EXPECT_NEAR(taps[7 * 12], 1 - std::exp(-1.0), 1e-15);
  EXPECT_NEAR(taps[0], 1 - std::exp(-1.0 / 12), 1e-15);

  ModelConfig ungated = config;
  ungated.options.set("afno.gate", false);
  AfnoFp64 plain(ungated, 1);
  EXPECT_EQ(plain.parameters().layout().find("afno_gatew"), nullptr);
  ungated.options.set("afno.hidden_factor", 2);
  AfnoFp64 wide(ungated, 1);
  EXPECT_EQ(wide.parameters().layout().at("afno_w2").shape,
            (std::vector<std::int64_t>{2, 4, 2, 4}));
}

// The whole model: changing tokens at positions ≥ j leaves the log-probabilities at < j equal
// to 1e-12.
TEST(AfnoModel, LogProbsAreCausal) {
  ModelConfig config = tiny_config();
  config.max_seq_len = 40;
  AfnoFp64 model(config, 3);
  const int T = 37, V = config.vocab_size, cut = 20;
  auto tokens = random_tokens(T, V, 4);
  std::vector<double> before(std::size_t(T) * V), after(before.size());
  model.log_probs(tokens.data(), 1, T, before.data());
  for (int t = cut; t < T; ++t) tokens[t] = (tokens[t] + 1 + t) % V;
  model.log_probs(tokens.data(), 1, T, after.data());
  for (int t = 0; t < T; ++t) {
    double diff = 0;
    for (int v = 0; v < V; ++v)
      diff = std::max(diff, std::abs(after[t * V + v] - before[t * V + v]));
    if (t < cut) {
      EXPECT_LE(diff, 1e-12) << t;
    } else {
      EXPECT_GT(diff, 1e-6) << t;
    }
  }
}

// GPT::decode (the path generate() takes) runs each layer's incremental convolution and equals
// full recomputation at every position, for a new sequence too.
TEST(AfnoModel, CachedDecodingEqualsLogProbsAtEveryPosition) {
  const ModelConfig config = tiny_config();
  AfnoFp64 model(config, 5);
  const int T = config.max_seq_len, V = config.vocab_size;
  for (std::uint64_t seed : {17, 18}) {
    const auto tokens = random_tokens(T, V, seed);
    std::vector<double> full(std::size_t(T) * V);
    model.log_probs(tokens.data(), 1, T, full.data());
    model.decode_reset();
    for (int t = 0; t < T; ++t) {
      const auto step = model.decode(tokens[t]);
      for (int v = 0; v < V; ++v) {
        ASSERT_NEAR(step[v], full[std::size_t(t) * V + v], 1e-12) << "position " << t;
      }
    }
  }
}

// Central differences of the whole model's loss for sampled elements of every tensor, with the
// AFNO tensors drawn away from their (partly degenerate) initialisation.
void check_model_gradients(const ModelConfig& config) {
  constexpr int B = 2, T = 7;
  AfnoFp64 model(config, 7);
  auto& store = model.parameters();
  Rng draw(8);
  for (const TensorInfo& tensor : store.layout().tensors()) {
    if (tensor.name.rfind("afno_", 0) != 0) continue;
    std::vector<double> values(tensor.numel);
    for (double& value : values) value = 0.3 * draw.normal();
    store.write(tensor, values.data());
  }
  const auto tokens = random_tokens(B * (T + 1), config.vocab_size, 11);
  const GradCheckReport report =
      gradient_check(model, training_objective<AfnoFp64>(tokens, B, T));
  EXPECT_EQ(report.failures(1e-6), "");
}

TEST(AfnoModel, GradCheckEveryTensor) { check_model_gradients(tiny_config()); }
TEST(AfnoModel, GradCheckEveryTensorUngatedHiddenFactorTwo) {
  ModelConfig config = tiny_config();
  config.options.set("afno.gate", false);
  config.options.set("afno.hidden_factor", 2);
  check_model_gradients(config);
}

// Fp32 with AdamW: the loss on a learnable stream falls well below its start.
TEST(AfnoModel, Fp32Trains) {
  ModelConfig config = tiny_config();
  config.d_model = 16;
  AfnoFp32 model(config, 42);
  AdamW<Cpu, float> optimizer(model.parameters().layout());
  std::vector<float> losses;
  for (int step = 0; step < 40; ++step) {
    auto tokens = random_tokens(3 * 11, config.vocab_size, 100 + step);
    for (std::size_t i = 1; i < tokens.size(); ++i)
      tokens[i] = (tokens[i - 1] + 5) % config.vocab_size;
    model.zero_grad();
    losses.push_back(model.forward(tokens.data(), 3, 10));
    ASSERT_TRUE(std::isfinite(losses.back())) << step;
    model.backward();
    optimizer.step(model.parameters(), 1e-2);
  }
  EXPECT_LT(losses.back(), 0.5f * losses.front());
}

// Fp32 agrees with Fp64 on the same weights (the FFT runs in the accumulation type).
TEST(AfnoModel, Fp32MatchesFp64OnTheSameWeights) {
  ModelConfig config = tiny_config();
  config.d_model = 32;
  config.n_head = 4;
  AfnoFp64 reference(config, 3);
  AfnoFp32 model(config, 99);
  copy_parameters(reference, model);
  const auto tokens = random_tokens(4 * 13, config.vocab_size, 8);
  const double expected = reference.forward(tokens.data(), 4, 12);
  const float actual = model.forward(tokens.data(), 4, 12);
  EXPECT_LT(std::abs(actual - expected) / expected, 1e-5);
  EXPECT_DOUBLE_EQ(reference.evaluate(tokens.data(), 4, 12, 13), expected);
}

}  // namespace
}  // namespace afno_tests
}  // namespace lightgpt::testing

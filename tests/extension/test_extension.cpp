// Parts written outside the library compose with it: a user mixer (a causal depthwise
// convolution) and a user head (untied embeddings, no optional capabilities), defined in this
// folder only. Both meet the contract concepts, gradient-check in Fp64 alone and beside the
// library's own parts, train through Trainer in Fp32, decode like the full forward, and round-trip
// a checkpoint and a safetensors file — with no library file knowing they exist.
// docs/extending.md walks through them.
#include <gtest/gtest.h>

#include <cmath>
#include <lightgpt/io/safetensors.hpp>
#include <lightgpt/testing/gradcheck.hpp>
#include <lightgpt/train/trainer.hpp>
#include <vector>

#include "../scratch.hpp"
#include "../train/fixture.hpp"
#include "causal_conv_mixer.hpp"
#include "untied_head.hpp"

namespace lightgpt::testing {
namespace extension_tests {
namespace {

using research::CausalConvMixer;
using research::UntiedHead;

template <class P>
using UserModel = GPT<P, UntiedHead, CausalConvMixer<3>, Cpu>;
template <class P>
using MixedModel = GPT<P, DenseHead<MTP<2>>, CausalConvMixer<2>, Cpu>;

static_assert(HeadImplementation<UserModel<Fp64>::HeadImpl, double, double>);
static_assert(MixerImplementation<UserModel<Fp64>::MixerImpl, double, double>);
static_assert(mixer_contract::decodes<UserModel<Fp32>::MixerImpl, float>);
static_assert(!head_contract::smooths_targets<UserModel<Fp32>::HeadImpl, BigramTable>,
              "the user head has no CoCoNT members, and needs none");

template <class Model>
void expect_gradients_match_finite_differences(double mtp_weight) {
  Model model(tiny_config(), 7);
  model.set_mtp_weight(mtp_weight);
  constexpr int B = 2, T = 6;
  const auto tokens = random_tokens(B * (T + Model::mtp_depth), tiny_config().vocab_size, 11);
  const GradCheckReport report = gradient_check(model, training_objective<Model>(tokens, B, T));
  ASSERT_FALSE(report.entries.empty());
  EXPECT_EQ(report.failures(1e-6), "");
  for (const char* name : {"convw", "convb"}) {
    EXPECT_TRUE(std::any_of(report.entries.begin(), report.entries.end(),
                            [&](const GradCheckEntry& e) { return e.tensor == name; }))
        << name << " was not checked";
  }
}

TEST(Extension, UserHeadAndMixerGradientsMatchFiniteDifferences) {
  expect_gradients_match_finite_differences<UserModel<Fp64>>(0.0);
}

TEST(Extension, UserMixerBesideLibraryHeadGradientsMatchFiniteDifferences) {
  expect_gradients_match_finite_differences<MixedModel<Fp64>>(0.35);
}

// Init::custom: the convolution's first tap starts near 1, the others near 0.
TEST(Extension, CustomInitialisationIsDrawnFromTheModelSeed) {
  UserModel<Fp32> a(tiny_config(), 3), b(tiny_config(), 3), c(tiny_config(), 4);
  const TensorInfo& convw = a.parameters().layout().at("convw");
  const auto values = a.parameters().read(convw);
  for (std::size_t i = 0; i < values.size(); ++i) {
    EXPECT_NEAR(values[i], i % 3 == 0 ? 1.0 : 0.0, 0.1) << i;
  }
  EXPECT_EQ(values, b.parameters().read(convw));
  EXPECT_NE(values, c.parameters().read(convw));
}

// Incremental decoding through the user mixer's cache gives the full forward's log-probabilities.
TEST(Extension, DecodeMatchesTheFullForward) {
  UserModel<Fp64> model(tiny_config(), 5);
  const int V = tiny_config().vocab_size, T = 7;
  const auto sequence = random_tokens(T, V, 2);
  std::vector<double> full(std::size_t(T) * V);
  model.log_probs(sequence.data(), 1, T, full.data());
  model.decode_reset();
  for (int t = 0; t < T; ++t) {
    const auto step = model.decode(sequence[t]);
    for (int v = 0; v < V; ++v) ASSERT_NEAR(step[v], full[std::size_t(t) * V + v], 1e-12) << t;
  }
}

// The Trainer drives a model whose head has no CoCoNT, codebook or sections of its own; it
// learns, and its checkpoint loads into a fresh model with identical results.
TEST(Extension, TrainsThroughTrainerAndRoundTripsACheckpoint) {
  Fixture f;
  UserModel<Fp32> model(tiny_config(), 1);
  EXPECT_FALSE(model.cocont_enabled());
  Loader train = f.train_loader(), val = f.val_loader();
  Trainer<UserModel<Fp32>> trainer(model, f.config(20), train, &val);
  const double before = trainer.validate();
  const TrainSummary summary = trainer.run();
  EXPECT_EQ(summary.steps, 20);
  EXPECT_LT(summary.final_val_loss, before - 0.3) << "validation loss did not fall";

  UserModel<Fp32> restored(tiny_config(), 99);
  EXPECT_EQ(load_checkpoint(trainer.checkpoint_path(), restored), 20u);
  const auto tokens = random_tokens(2 * 9, tiny_config().vocab_size, 4);
  EXPECT_EQ(model.evaluate(tokens.data(), 2, 8), restored.evaluate(tokens.data(), 2, 8));
  for (const TensorInfo& tensor : model.parameters().layout().tensors()) {
    EXPECT_EQ(model.parameters().read(tensor), restored.parameters().read(tensor)) << tensor.name;
  }

  // A checkpoint of another composition is refused, naming both.
  GPT<Fp32, UntiedHead, CausalConvMixer<2>, Cpu> other(tiny_config(), 1);
  try {
    load_checkpoint(trainer.checkpoint_path(), other);
    FAIL() << "a causal-conv<3> checkpoint loaded into causal-conv<2>";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("causal-conv<3>"), std::string::npos) << error.what();
  }
}

// A user mixer that reuses a trunk tensor's name: the error names both declaring parts.
template <class Backend, class P>
struct ClashingMixerImpl : research::CausalConvMixerImpl<Backend, P, 2> {
  using research::CausalConvMixerImpl<Backend, P, 2>::CausalConvMixerImpl;
  static void declare(ParameterLayout& layout, const ModelConfig& config) {
    research::CausalConvMixerImpl<Backend, P, 2>::declare(layout, config);
    layout.add("fcw", {1}, false, Init::zeros());
  }
};
struct ClashingMixer {
  static constexpr bool is_mixer = true;
  static std::string name() { return "clashing"; }
  template <class Backend, class P>
  using impl = ClashingMixerImpl<Backend, P>;
};

TEST(Extension, ATensorNameClashNamesBothParts) {
  try {
    GPT<Fp32, UntiedHead, ClashingMixer, Cpu> model(tiny_config(), 1);
    FAIL() << "the clash went unnoticed";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find(
                  "parameter 'fcw' declared twice: by mixer clashing and by trunk"),
              std::string::npos)
        << error.what();
  }
}

ModelConfig dilated_config() {
  ModelConfig config = tiny_config();
  config.options.set("causal-conv.dilation", 2);
  return config;
}

// The user mixer's own setting (its dilation) lives in the model's config: the gradient and the
// decoding honour it, a checkpoint carries it, a model rebuilt from the checkpoint's config gets
// it back, and a model built without it refuses the checkpoint.
TEST(Extension, APartsOwnSettingTravelsWithTheCheckpoint) {
  const ModelConfig config = dilated_config();
  {
    UserModel<Fp64> model(config, 7);
    const auto tokens = random_tokens(2 * 7, config.vocab_size, 11);
    EXPECT_EQ(gradient_check(model, training_objective<UserModel<Fp64>>(tokens, 2, 6)).failures(
                  1e-6),
              "");
    const int V = config.vocab_size, T = 7;
    std::vector<double> full(std::size_t(T) * V);
    model.log_probs(tokens.data(), 1, T, full.data());
    model.decode_reset();
    for (int t = 0; t < T; ++t) {
      const auto step = model.decode(tokens[t]);
      for (int v = 0; v < V; ++v) ASSERT_NEAR(step[v], full[std::size_t(t) * V + v], 1e-12) << t;
    }
  }
  UserModel<Fp32> model(config, 1), undilated(tiny_config(), 1);
  const auto tokens = random_tokens(4 * 9, config.vocab_size, 5);
  EXPECT_NE(model.evaluate(tokens.data(), 4, 8), undilated.evaluate(tokens.data(), 4, 8))
      << "the dilation changed nothing";
  TempDir dir;
  const auto path = dir / "dilated.ckpt";
  save_checkpoint(path, model, 3);
  const ModelConfig stored = read_checkpoint_config(CheckpointReader(path));
  EXPECT_EQ(stored.options.get("causal-conv.dilation", 0), 2);
  UserModel<Fp32> rebuilt(stored, 42);
  EXPECT_EQ(load_checkpoint(path, rebuilt), 3u);
  EXPECT_EQ(rebuilt.evaluate(tokens.data(), 4, 8), model.evaluate(tokens.data(), 4, 8));
  // A safetensors file carries the setting in its metadata in the same way.
  save_safetensors(dir / "dilated.safetensors", model);
  UserModel<Fp32> from_safetensors(read_safetensors_config(dir / "dilated.safetensors"), 43);
  load_safetensors(dir / "dilated.safetensors", from_safetensors);
  EXPECT_EQ(from_safetensors.evaluate(tokens.data(), 4, 8), model.evaluate(tokens.data(), 4, 8));
  EXPECT_THROW(load_safetensors(dir / "dilated.safetensors", undilated), Error);
  try {
    load_checkpoint(path, undilated);
    FAIL() << "a dilated checkpoint loaded into an undilated model";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("option.causal-conv.dilation=2"), std::string::npos)
        << error.what();
  }
}

TEST(Extension, PartOptionsAreCheckedWhereTheyAreRead) {
  ModelConfig config = tiny_config();
  config.options.set("causal-conv.dilation", "two");
  try {
    UserModel<Fp32> model(config, 1);
    FAIL() << "a non-numeric dilation was accepted";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("'causal-conv.dilation': 'two' is not an integer"),
              std::string::npos)
        << error.what();
  }
  // A setting no part of the composition declares is refused, naming the ones it has.
  ModelConfig stray = tiny_config();
  stray.options.set("causal-conv.dilaton", 2);
  try {
    UserModel<Fp32> model(stray, 1);
    FAIL() << "a misspelt option was accepted";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("'causal-conv.dilaton' is not a setting of"),
              std::string::npos)
        << error.what();
    EXPECT_NE(std::string(error.what()).find("causal-conv.dilation"), std::string::npos)
        << error.what();
  }
  // A setting at its default is not stored, so equal settings give equal configs.
  ModelConfig explicit_default = tiny_config();
  explicit_default.options.set("causal-conv.dilation", 1);
  EXPECT_EQ(UserModel<Fp32>(explicit_default, 1).config(),
            UserModel<Fp32>(tiny_config(), 1).config());
  EXPECT_THROW(config.options.set("bad key", "1"), Error);
  EXPECT_THROW(config.options.set("causal-conv.note", "two\nlines"), Error);
  // Options survive the config's text form, and a stray line in it names the file.
  config.options.set("causal-conv.dilation", 3);
  EXPECT_EQ(ModelConfig::parse(config.serialize(), "test"), config);
  EXPECT_THROW(ModelConfig::parse(config.serialize() + "option.=1\n", "test"), Error);
}

}  // namespace
}  // namespace extension_tests
}  // namespace lightgpt::testing

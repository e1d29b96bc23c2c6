#include <gtest/gtest.h>

#include <lightgpt/core/config.hpp>
#include <lightgpt/core/layout.hpp>
#include <string>
#include <tuple>

namespace lightgpt {
namespace config_tests {
namespace {

TEST(ModelConfig, Gpt2SmallPadsTheVocabularyLikeLlmc) {
  const ModelConfig config = ModelConfig::gpt2_small();
  EXPECT_EQ(config.padded_vocab_size(), 50304);
  EXPECT_EQ(config.head_dim(), 64);
  EXPECT_NO_THROW(config.validate());
}

TEST(ModelConfig, SerializeParseRoundTrip) {
  ModelConfig config;
  config.vocab_size = 321;
  config.n_layer = 3;
  EXPECT_EQ(ModelConfig::parse(config.serialize(), "test"), config);
}

// An Options struct of the kind a part declares, with one member of each kind a field can have.
enum class Shape : int { round = 0, square = 1 };
struct ToyOptions {
  int count = 3;
  double scale = 0.25;
  bool enabled = true;
  Shape shape = Shape::round;

  static constexpr auto fields = std::tuple{option_field("toy.count", &ToyOptions::count),
                                            option_field("toy.scale", &ToyOptions::scale),
                                            option_field("toy.enabled", &ToyOptions::enabled),
                                            option_field("toy.shape", &ToyOptions::shape)};
  void validate(const ModelConfig&) const {}
};

TEST(ModelConfig, PartOptionsRoundTripAndOnlyNonDefaultsAreStored) {
  ModelConfig config;
  EXPECT_EQ(config.part<ToyOptions>().count, 3);  // absent: the default
  config.set_part(ToyOptions{.count = 7, .scale = 0.1, .enabled = false, .shape = Shape::square});
  EXPECT_EQ(config.options.entries().size(), 4u);
  EXPECT_EQ(config.options.get("toy.count", std::string()), "7");
  EXPECT_EQ(config.options.get("toy.enabled", std::string()), "0");
  EXPECT_EQ(config.options.get("toy.shape", std::string()), "1");
  const ModelConfig parsed = ModelConfig::parse(config.serialize(), "test");
  EXPECT_EQ(parsed, config);
  const ToyOptions read = parsed.part<ToyOptions>();
  EXPECT_EQ(read.count, 7);
  EXPECT_EQ(read.scale, 0.1);
  EXPECT_FALSE(read.enabled);
  EXPECT_EQ(read.shape, Shape::square);
  config.set_part(ToyOptions{.count = 3});  // back to the defaults: nothing stored
  EXPECT_EQ(config, ModelConfig{});
  EXPECT_TRUE(ModelConfig::declares<ToyOptions>("toy.scale"));
  EXPECT_FALSE(ModelConfig::declares<ToyOptions>("toy.scales"));
  config.options.set("toy.enabled", "yes");
  EXPECT_THROW(config.part<ToyOptions>(), Error);
}

// Configs written before parts declared their options held the built-in parts' settings as plain
// keys, for every model: those at their old defaults vanish, the others become options.
TEST(ModelConfig, OldPlainOptionKeysReadAsOptions) {
  const std::string trunk =
      "vocab_size=50257\nmax_seq_len=1024\nn_layer=12\nn_head=12\nd_model=768\n";
  const ModelConfig defaults = ModelConfig::parse(
      trunk + "lightrnn_rows=0\nlightrnn_conditioning=0\nlightrnn_token_embedding=0\n"
              "mtp_adapter=0\nafno_sparsity_threshold=0.01000000000000000021\n"
              "afno_hidden_factor=1\nafno_gate=1\n",
      "old");
  EXPECT_EQ(defaults, ModelConfig{});
  const ModelConfig set = ModelConfig::parse(
      trunk + "lightrnn_rows=240\nlightrnn_conditioning=1\nlightrnn_token_embedding=1\n"
              "mtp_adapter=1\nafno_sparsity_threshold=0.037\nafno_hidden_factor=2\nafno_gate=0\n",
      "old");
  EXPECT_EQ(set.options.entries().size(), 7u);
  EXPECT_EQ(set.options.get("lightrnn.rows", std::string()), "240");
  EXPECT_EQ(set.options.get("afno.sparsity_threshold", std::string()), "0.037");
  EXPECT_EQ(set.options.get("afno.gate", std::string()), "0");
  EXPECT_THROW(ModelConfig::parse(trunk + "afno_gate=yes\n", "old"), Error);
}

TEST(ModelConfig, ParseRejectsBadText) {
  EXPECT_THROW(ModelConfig::parse("vocab_size=12\n", "src"), Error);  // missing fields
  EXPECT_THROW(ModelConfig::parse(ModelConfig{}.serialize() + "colour=3\n", "src"), Error);
  std::string bad = ModelConfig{}.serialize();
  bad.replace(bad.find("768"), 3, "7x8");
  try {
    ModelConfig::parse(bad, "file.ckpt");
    FAIL() << "no error";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("file.ckpt"), std::string::npos);
    EXPECT_NE(std::string(error.what()).find("d_model"), std::string::npos);
  }
}

TEST(ParameterLayout, AlignsEveryTensorTo128Elements) {
  ParameterLayout layout;
  layout.add("a", {3, 5}, true, Init::zeros());
  layout.add("b", {7}, false, Init::ones());
  EXPECT_EQ(layout.at("a").offset, 0u);
  EXPECT_EQ(layout.at("b").offset, 128u);
  EXPECT_EQ(layout.size(), 256u);
  EXPECT_EQ(layout.num_parameters(), 22u);
  EXPECT_THROW(layout.add("a", {1}, false, Init::zeros()), Error);
  EXPECT_THROW(layout.at("c"), Error);
}

}  // namespace
}  // namespace config_tests
}  // namespace lightgpt

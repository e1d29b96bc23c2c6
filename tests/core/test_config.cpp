#include <gtest/gtest.h>

#include <lightgpt/core/config.hpp>
#include <lightgpt/core/layout.hpp>

namespace lightgpt {
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

TEST(ModelConfig, HeadAndMixerOptionsRoundTripAndDefaultWhenAbsent) {
  ModelConfig config;
  config.lightrnn_rows = 240;
  config.lightrnn_conditioning = RowConditioning::gelu;
  config.lightrnn_token_embedding = true;
  config.mtp_adapter = true;
  config.afno_sparsity_threshold = 0.037;
  config.afno_hidden_factor = 2;
  config.afno_gate = false;
  EXPECT_EQ(ModelConfig::parse(config.serialize(), "test"), config);
  const ModelConfig trunk_only = ModelConfig::parse(
      "vocab_size=50257\nmax_seq_len=1024\nn_layer=12\nn_head=12\nd_model=768\n", "old");
  EXPECT_EQ(trunk_only, ModelConfig{});
  EXPECT_EQ(ModelConfig{}.lightrnn_table_rows(), 225);  // 224² = 50176 < 50257 ≤ 225²
}

TEST(ModelConfig, RejectsTooFewLightRnnRows) {
  ModelConfig config;
  config.lightrnn_rows = 224;
  EXPECT_THROW(config.validate(), Error);
  config.lightrnn_rows = 225;
  EXPECT_NO_THROW(config.validate());
  config.afno_sparsity_threshold = -1;
  EXPECT_THROW(config.validate(), Error);
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
}  // namespace lightgpt

// Shared GPT-2 tokenizer for the tokenizer tests: loaded once per test program from the assets
// the build fetched; tests skip when the build found no assets.
#pragma once

#include <gtest/gtest.h>

#include <memory>

#include <lightgpt/data/bpe.hpp>

namespace lightgpt::test {

class TokenizerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
#ifdef LIGHTGPT_ENCODER_JSON
    if (!tokenizer_)
      tokenizer_ = std::make_unique<Tokenizer>(LIGHTGPT_ENCODER_JSON, LIGHTGPT_VOCAB_BPE);
#endif
  }
  void SetUp() override {
    if (!tokenizer_) GTEST_SKIP() << "GPT-2 vocabulary not available (see LIGHTGPT_ASSET_DIR)";
  }
  const Tokenizer& tok() const { return *tokenizer_; }

  static inline std::unique_ptr<Tokenizer> tokenizer_;
};

}  // namespace lightgpt::test

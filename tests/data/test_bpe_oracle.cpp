// Compares the tokenizer with an independent implementation: the JavaScript encoder of the npm
// package gpt-3-encoder, run by node over the same texts. Skips when node or the package is
// missing.
#include <gtest/gtest.h>

#include <stdio.h>

#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <lightgpt/data/bpe.hpp>
#include <lightgpt/data/brown.hpp>

#include "../scratch.hpp"
#include "tokenizer_fixture.hpp"

namespace bpe_oracle_tests {
namespace {

using lightgpt::test::TokenizerTest;

std::string json_string(const std::string& text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

// Runs node's Encoder.js over `texts`; one vector of ids per text.
std::vector<std::vector<int>> oracle_ids(const std::vector<std::string>& texts) {
#if defined(LIGHTGPT_NODE_EXECUTABLE) && defined(LIGHTGPT_ENCODER_JS)
  lightgpt::testing::TempDir dir;
  {
    std::ofstream input(dir / "texts.jsonl", std::ios::binary);
    for (const auto& text : texts) input << json_string(text) << '\n';
    std::ofstream script(dir / "oracle.js");
    script << "const enc = require(process.argv[2]);\n"
              "const lines = require('fs').readFileSync(process.argv[3], 'utf8').split('\\n');\n"
              "const out = [];\n"
              "for (const line of lines) if (line.length) out.push(enc.encode(JSON.parse(line))"
              ".join(' '));\n"
              "process.stdout.write(out.join('\\n') + '\\n');\n";
  }
  const std::string command = std::string("\"") + LIGHTGPT_NODE_EXECUTABLE + "\" \"" +
                              (dir / "oracle.js").string() + "\" \"" + LIGHTGPT_ENCODER_JS +
                              "\" \"" + (dir / "texts.jsonl").string() + "\"";
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return {};
  std::string output;
  char buffer[65536];
  for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0;)
    output.append(buffer, n);
  if (::pclose(pipe) != 0) return {};
  std::vector<std::vector<int>> result;
  std::istringstream lines(output);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream ids(line);
    result.emplace_back();
    for (int id; ids >> id;) result.back().push_back(id);
  }
  return result;
#else
  (void)texts;
  return {};
#endif
}

void compare_with_oracle(const lightgpt::Tokenizer& tok, const std::vector<std::string>& texts) {
#ifndef LIGHTGPT_NODE_EXECUTABLE
  GTEST_SKIP() << "node was not found at configure time";
#else
  if (!std::filesystem::exists(LIGHTGPT_NODE_EXECUTABLE)) GTEST_SKIP() << "node is gone";
  const auto expected = oracle_ids(texts);
  ASSERT_EQ(expected.size(), texts.size()) << "node did not answer for every text";
  std::size_t tokens = 0;
  for (std::size_t i = 0; i < texts.size(); ++i) {
    ASSERT_EQ(tok.encode(texts[i]), expected[i]) << "text " << i << ": " << json_string(texts[i]);
    tokens += expected[i].size();
  }
  EXPECT_GT(tokens, texts.size());
#endif
}

// Text built from fragments that exercise every branch of GPT-2's regex, plus random code points
// from long-assigned Unicode blocks. U+0085 and U+FEFF are left out on purpose: the JavaScript
// regex disagrees with OpenAI's Python encoder (and this one) on whether they are whitespace.
std::vector<std::string> generated_texts() {
  const std::vector<std::string> fragments = {
      "the",
      "The",
      "THE",
      " quick",
      "brown",
      "fox",
      "'s",
      "'t",
      "'re",
      "'ve",
      "'m",
      "'ll",
      "'d",
      "'S",
      "'LL",
      "''",
      "'",
      "don't",
      "I'd",
      "12",
      "3.5",
      "1,000",
      "0",
      "٣٤",
      "²",
      "½",
      "Ⅻ",
      ".",
      ",",
      "!?",
      "...",
      "--",
      "(",
      ")",
      "\"",
      "#",
      "$",
      "%",
      "&",
      "*",
      "@",
      "[",
      "]",
      "{",
      "}",
      "~",
      "`",
      "^",
      "_",
      "|",
      "\\",
      "/",
      "<",
      ">",
      "=",
      "+",
      " ",
      "  ",
      "   ",
      "\t",
      "\n",
      "\n\n",
      "\r\n",
      "\v",
      "\f",
      " \n",
      "\n ",
      "\xc2\xa0",
      "\xe2\x80\x83",
      "\xe3\x80\x80",
      "\xe2\x80\xa8",
      "\x1c",
      "\x1f",
      "\x7f",
      "\xe2\x80\x8b",
      "café",
      "naïve",
      "Ελληνικά",
      "русский",
      "中文",
      "日本語",
      "한국어",
      "עברית",
      "العربية",
      "हिन्दी",
      "ไทย",
      "😀",
      "👍🏽",
      "👨‍👩‍👧",
      "🇫🇷",
      "∑",
      "→",
      "€",
      "©",
      "ß",
      "ǅ",
      "ﬁ",
      "x",
      "y",
      "<|endoftext|>",
  };
  const std::vector<std::pair<char32_t, char32_t>> blocks = {
      {0x20, 0x7E},     {0xA1, 0x24F},    {0x370, 0x3FF},     {0x400, 0x4FF},
      {0x2010, 0x2027}, {0x2030, 0x205E}, {0x2200, 0x22FF},   {0x3041, 0x3096},
      {0x4E00, 0x9FA5}, {0xAC00, 0xD7A3}, {0x1F600, 0x1F64F},
  };
  std::mt19937 rng(20240520);
  std::vector<std::string> texts;
  for (int t = 0; t < 400; ++t) {
    std::string text;
    const int length = std::uniform_int_distribution<int>(1, 60)(rng);
    for (int i = 0; i < length; ++i) {
      if (std::uniform_int_distribution<int>(0, 4)(rng) == 0) {
        const auto& [lo, hi] =
            blocks[std::uniform_int_distribution<std::size_t>(0, blocks.size() - 1)(rng)];
        lightgpt::append_utf8(text, std::uniform_int_distribution<char32_t>(lo, hi)(rng));
      } else {
        text += fragments[std::uniform_int_distribution<std::size_t>(0, fragments.size() - 1)(rng)];
      }
    }
    texts.push_back(text);
  }
  return texts;
}

TEST_F(TokenizerTest, MatchesJavaScriptEncoderOnGeneratedText) {
  compare_with_oracle(tok(), generated_texts());
}

// Splits text into pieces of about 4 kB at line ends; the JavaScript encoder is quadratic in the
// number of pieces per call, so it is fed short texts.
void append_chunks(const std::string& text, std::vector<std::string>& out) {
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start + 4096);
    end = end == std::string::npos ? text.size() : end + 1;
    out.push_back(text.substr(start, end - start));
    start = end;
  }
}

TEST_F(TokenizerTest, MatchesJavaScriptEncoderOnBrownCorpus) {
#ifndef LIGHTGPT_BROWN_DIR
  GTEST_SKIP() << "Brown corpus not available (see LIGHTGPT_ASSET_DIR)";
#else
  const auto files = lightgpt::brown_files(LIGHTGPT_BROWN_DIR);
  std::vector<std::string> texts;
  // Every 25th file, tagged and detagged: 20 of the 15 genres' files.
  for (std::size_t i = 0; i < files.size(); i += 25) {
    const std::string raw = lightgpt::detail::read_text_file(files[i]);
    append_chunks(raw, texts);
    append_chunks(lightgpt::brown_to_text(raw), texts);
  }
  compare_with_oracle(tok(), texts);
#endif
}

}  // namespace
}  // namespace bpe_oracle_tests

#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <lightgpt/data/bpe.hpp>
#include <lightgpt/data/brown.hpp>

#include "../scratch.hpp"
#include "tokenizer_fixture.hpp"

namespace bpe_tests {
namespace {

using lightgpt::test::TokenizerTest;
using Ids = std::vector<int>;

// Expected ids were produced by the reference JavaScript encoder (gpt-3-encoder 1.1.4); the
// comments give the pieces GPT-2's regex cuts, checked by hand.
TEST_F(TokenizerTest, HandCheckedStrings) {
  const std::vector<std::pair<std::string, Ids>> cases = {
      {"Hello world!", {15496, 995, 0}},
      // "I" "'m" " you" "'re" ... ; upper-case "'M" is no contraction: "'" then "M".
      {"I'm you're we've she'll he'd it's don't I'M",
       {40, 1101, 345, 821, 356, 1053, 673, 1183, 339, 1549, 340, 338, 836, 470, 314, 6, 44}},
      // Digits form their own pieces; "," and "." split numbers.
      {"12345 and 3.14159, 1,000,000",
       {10163, 2231, 290, 513, 13, 1415, 19707, 11, 352, 11, 830, 11, 830}},
      // "a" "  " " b": the space run leaves its last space to the word (\s+(?!\S)).
      {"a   b", {64, 220, 220, 275}},
      {"end   ", {437, 220, 220, 220}},
      {"a\t\tb\n\nc \n d\r\n", {64, 197, 197, 65, 198, 198, 66, 220, 198, 288, 201, 198}},
      {"Привет, мир", {140, 253, 21169, 18849, 38857, 16843, 20375, 11, 12466, 120, 18849, 21169}},
      {"日本語のテキスト", {33768, 98, 17312, 105, 45739, 252, 5641, 24336, 25084, 43302}},
      {"مرحبا بالعالم",
       {25405, 26897, 148, 255, 39848, 12919, 17550, 101, 23525, 44690, 23525, 25405}},
      {"😀👍🏽 🇫🇷",
       {47249, 222, 41840, 235, 8582, 237, 121, 12520, 229, 104, 8582, 229, 115}},
      {"naïve café", {2616, 38776, 40304}},
      // "²" and "½" are numbers (No), "Ⅻ" a letter-number (Nl), "٣" an Arabic-Indic digit.
      {"x²+½ Ⅻ ٣", {87, 31185, 10, 23141, 2343, 227, 104, 18923, 96}},
      {"<|endoftext|>", {27, 91, 437, 1659, 5239, 91, 29}},
      {"", {}},
  };
  for (const auto& [text, ids] : cases) {
    EXPECT_EQ(tok().encode(text), ids) << text;
    EXPECT_EQ(tok().decode(ids), text) << text;
  }
}

TEST_F(TokenizerTest, ByteTokensFollowGpt2ByteTable) {
  EXPECT_EQ(tok().vocab_size(), 50257);
  EXPECT_EQ(tok().eot_id(), 50256);
  // Printable ASCII starts the vocabulary in byte order; space, tab and newline were remapped.
  EXPECT_EQ(tok().encode("!"), Ids{0});
  EXPECT_EQ(tok().encode("~"), Ids{93});
  EXPECT_EQ(tok().encode(" "), Ids{220});
  EXPECT_EQ(tok().encode("\t"), Ids{197});
  EXPECT_EQ(tok().encode("\n"), Ids{198});
  EXPECT_EQ(tok().token_bytes(220), " ");
  EXPECT_EQ(tok().token_bytes(50256), "<|endoftext|>");
}

TEST_F(TokenizerTest, EndOfTextOnlyWhenAsked) {
  const std::string text = "a<|endoftext|>b<|endoftext|>";
  EXPECT_EQ(tok().encode(text, {.allow_endoftext = true}), (Ids{64, 50256, 65, 50256}));
  EXPECT_EQ(tok().encode(text),
            (Ids{64, 27, 91, 437, 1659, 5239, 91, 29, 65, 27, 91, 437, 1659, 5239, 91, 29}));
  EXPECT_EQ(tok().decode(Ids{64, 50256, 65}), "a<|endoftext|>b");
}

TEST_F(TokenizerTest, InvalidUtf8NamesTheOffset) {
  const std::vector<std::pair<std::string, std::size_t>> cases = {
      {"ab\xff", 2},               // never valid
      {"x\xc0\x80", 1},            // overlong NUL
      {"abc\xe2\x82", 3},          // truncated euro sign
      {"\xed\xa0\x80", 0},         // UTF-16 surrogate
      {"ok \xf4\x90\x80\x80", 3},  // past U+10FFFF
      {"\xe2\x82\xac\x80", 3},     // stray continuation byte
      {"caf\xc3", 3},              // truncated at the end
  };
  for (const auto& [text, offset] : cases) {
    EXPECT_EQ(lightgpt::find_invalid_utf8(text), offset);
    try {
      tok().encode(text);
      ADD_FAILURE() << "no error for offset " << offset;
    } catch (const lightgpt::Error& e) {
      EXPECT_NE(std::string(e.what()).find("byte offset " + std::to_string(offset)),
                std::string::npos)
          << e.what();
    }
  }
  EXPECT_EQ(lightgpt::find_invalid_utf8("\xf0\x9f\x98\x80 \xef\xbf\xbf \xc2\x80"),
            std::string_view::npos);
}

TEST_F(TokenizerTest, DecodeRejectsUnknownIds) {
  EXPECT_THROW(tok().decode(Ids{1, 50257}), lightgpt::Error);
  EXPECT_THROW(tok().decode(Ids{-1}), lightgpt::Error);
}

// Random valid UTF-8 drawn from every code point class (ASCII, 2-, 3- and 4-byte forms).
std::string random_utf8(std::mt19937& rng, int length) {
  std::string out;
  std::uniform_int_distribution<int> kind(0, 9);
  for (int i = 0; i < length; ++i) {
    char32_t cp;
    switch (kind(rng)) {
      case 0:
      case 1:
      case 2:
      case 3:
        cp = std::uniform_int_distribution<char32_t>(0, 0x7F)(rng);
        break;
      case 4:
        cp = U" \t\n\r"[std::uniform_int_distribution<int>(0, 3)(rng)];
        break;
      case 5:
        cp = std::uniform_int_distribution<char32_t>(0x80, 0x7FF)(rng);
        break;
      case 6:
      case 7:
        do cp = std::uniform_int_distribution<char32_t>(0x800, 0xFFFF)(rng);
        while (cp >= 0xD800 && cp <= 0xDFFF);
        break;
      default:
        cp = std::uniform_int_distribution<char32_t>(0x10000, 0x10FFFF)(rng);
        break;
    }
    lightgpt::append_utf8(out, cp);
  }
  return out;
}

TEST_F(TokenizerTest, DecodeInvertsEncodeOnRandomUtf8) {
  std::mt19937 rng(1234);
  for (int i = 0; i < 300; ++i) {
    const std::string text = random_utf8(rng, 1 + i);
    ASSERT_EQ(lightgpt::find_invalid_utf8(text), std::string_view::npos);
    const Ids ids = tok().encode(text);
    for (int id : ids) ASSERT_TRUE(id >= 0 && id < 50256) << id;
    ASSERT_EQ(tok().decode(ids), text) << "case " << i;
  }
}

TEST_F(TokenizerTest, LongPiecesEncode) {
  // One piece of 200k letters and one of 200k spaces: the merge step must not be quadratic.
  const std::string letters(200000, 'a'), spaces(200000, ' ');
  const Ids a = tok().encode(letters), s = tok().encode(spaces);
  EXPECT_EQ(tok().decode(a), letters);
  EXPECT_EQ(s, Ids(200000, 220));
}

TEST_F(TokenizerTest, ParallelEncodingMatchesSerial) {
  std::mt19937 rng(99);
  // Text dense in the cases that make cutting unsafe: runs of newlines and spaces.
  const char* pieces[] = {"word", " ", "\n", "\n\n", " \n", "\n ", "x.", "'s", "\t", "7", "é"};
  std::string text;
  while (text.size() < (std::size_t{3} << 20))
    text += pieces[std::uniform_int_distribution<int>(0, 10)(rng)];
  text += "<|endoftext|>\nlast";
  for (bool eot : {false, true}) {
    const Ids serial = tok().encode(text, {.allow_endoftext = eot});
    EXPECT_EQ(tok().encode_parallel(text, {.allow_endoftext = eot}, 5), serial);
  }
#ifdef LIGHTGPT_BROWN_DIR
  std::string brown;
  for (const auto& file : lightgpt::brown_files(LIGHTGPT_BROWN_DIR))
    brown += lightgpt::brown_to_text(lightgpt::detail::read_text_file(file)) + "\n";
  EXPECT_EQ(tok().encode_parallel(brown, {}, 4), tok().encode(brown));
  lightgpt::testing::TempDir dir;
  {
    std::ofstream out(dir / "brown.txt", std::ios::binary);
    out << brown;
  }
  EXPECT_EQ(tok().encode_file(dir / "brown.txt"), tok().encode(brown));
#endif
}

}  // namespace
}  // namespace bpe_tests

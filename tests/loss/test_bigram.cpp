// The bigram top-K builder and its file: exact counts on known streams, chunking, round trip, and
// every corruption the loader must refuse.
#include <gtest/gtest.h>

#include <lightgpt/core/rng.hpp>
#include <lightgpt/loss/bigram.hpp>
#include <fstream>
#include <map>
#include <vector>

#include "scratch.hpp"

namespace lightgpt {
namespace bigram_tests {
namespace {

using testing::TempDir;

BigramTable build(const std::vector<std::uint16_t>& stream, int V, int K) {
  BigramCounter counter(V);
  counter.add(stream);
  return counter.top_k(K);
}

TEST(Bigram, KnownStreamGivesTheExpectedTable) {
  // Pairs: 0→1 ×2, 1→0 ×2, 0→2, 2→3, 3→3 ×2; token 4 never appears, 3 is last.
  const BigramTable t = build({0, 1, 0, 1, 0, 2, 3, 3, 3}, 5, 2);
  EXPECT_EQ(t.tokens_counted(), 9u);
  EXPECT_EQ(t.distinct_bigrams(), 5u);
  ASSERT_EQ(t.successors(0).size(), 2u);
  EXPECT_EQ(t.successors(0)[0], 1u);
  EXPECT_FLOAT_EQ(t.probabilities(0)[0], 2.0f / 3);
  EXPECT_EQ(t.successors(0)[1], 2u);
  EXPECT_FLOAT_EQ(t.probabilities(0)[1], 1.0f / 3);
  ASSERT_EQ(t.successors(1).size(), 1u);
  EXPECT_EQ(t.successors(1)[0], 0u);
  EXPECT_FLOAT_EQ(t.probabilities(1)[0], 1.0f);
  EXPECT_EQ(t.successors(3)[0], 3u);
  EXPECT_TRUE(t.successors(4).empty());  // no successor: an empty list
}

TEST(Bigram, KeepsTheKMostFrequentRenormalisedWithTiesBySmallerId) {
  // After 0: 5 ×3, 2 ×2, 7 ×2, 1 ×1. K = 2 keeps 5 and the tie winner 2: 3/5 and 2/5.
  std::vector<std::uint16_t> stream;
  for (int next : {5, 7, 2, 5, 1, 2, 5, 7}) {
    stream.push_back(0);
    stream.push_back(static_cast<std::uint16_t>(next));
  }
  const BigramTable t = build(stream, 8, 2);
  ASSERT_EQ(t.successors(0).size(), 2u);
  EXPECT_EQ(t.successors(0)[0], 5u);
  EXPECT_EQ(t.successors(0)[1], 2u);
  EXPECT_FLOAT_EQ(t.probabilities(0)[0], 0.6f);
  EXPECT_FLOAT_EQ(t.probabilities(0)[1], 0.4f);
}

TEST(Bigram, CountsAreExactAcrossChunksAndTableGrowth) {
  const int V = 300;
  Rng rng(3);
  std::vector<std::uint16_t> stream(200000);
  for (auto& t : stream) t = static_cast<std::uint16_t>(rng.next_u64() % V);
  std::map<std::pair<int, int>, int> naive;
  for (std::size_t i = 0; i + 1 < stream.size(); ++i) ++naive[{stream[i], stream[i + 1]}];

  BigramCounter counter(V);
  const std::span<const std::uint16_t> all(stream);
  counter.add(all.subspan(0, 12345));  // the pair across the split is still counted
  counter.add(all.subspan(12345));
  EXPECT_EQ(counter.distinct(), naive.size());
  const BigramTable t = counter.top_k(V);  // K = V keeps every successor
  std::vector<double> totals(V, 0.0);
  for (const auto& [pair, count] : naive) totals[pair.first] += count;
  for (int a = 0; a < V; ++a) {
    const double total = totals[a];
    for (std::size_t i = 0; i < t.successors(a).size(); ++i) {
      const int b = static_cast<int>(t.successors(a)[i]);
      const double expected = naive[std::make_pair(a, b)] / total;
      ASSERT_NEAR(t.probabilities(a)[i], expected, 1e-6) << a << "→" << b;
    }
  }
  BigramCounter broken(V);
  broken.add(all.subspan(0, 10));
  broken.break_stream();
  broken.add(all.subspan(10, 10));
  EXPECT_EQ(broken.top_k(4).tokens_counted(), 20u);
  EXPECT_THROW(BigramCounter(5).add(std::vector<std::uint16_t>{1, 9}), Error);
}

// A temporary left by a killed writer is replaced; a directory in its place is an error.
TEST(Bigram, SaveReplacesAStaleTemporary) {
  TempDir dir;
  const BigramTable t = build({0, 1, 0, 1, 0, 2, 3, 3, 3}, 5, 2);
  { std::ofstream(dir / "b.bin.tmp") << "half a table"; }
  t.save(dir / "b.bin");
  EXPECT_FALSE(std::filesystem::exists(dir / "b.bin.tmp"));
  EXPECT_EQ(BigramTable::load(dir / "b.bin", 5, 2).successors(0).size(), t.successors(0).size());
  std::filesystem::create_directory(dir / "d.bin.tmp");
  EXPECT_THROW(t.save(dir / "d.bin"), Error);
}

TEST(Bigram, FileRoundTrip) {
  TempDir dir;
  const BigramTable t = build({0, 1, 0, 1, 0, 2, 3, 3, 3}, 5, 2);
  t.save(dir / "b.bin");
  const BigramTable loaded = BigramTable::load(dir / "b.bin", 5, 2);
  for (int a = 0; a < 5; ++a) {
    ASSERT_EQ(loaded.successors(a).size(), t.successors(a).size());
    for (std::size_t i = 0; i < t.successors(a).size(); ++i) {
      EXPECT_EQ(loaded.successors(a)[i], t.successors(a)[i]);
      EXPECT_EQ(loaded.probabilities(a)[i], t.probabilities(a)[i]);
    }
  }
  EXPECT_EQ(loaded.tokens_counted(), 9u);
}

void expect_rejected(const std::filesystem::path& path, const std::string& fragment,
                     int V = 0, int K = 0) {
  try {
    BigramTable::load(path, V, K);
    FAIL() << "loaded a bad table; expected an error containing '" << fragment << "'";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find(fragment), std::string::npos) << error.what();
  }
}

TEST(Bigram, EveryCorruptOrMismatchedFileIsRefused) {
  TempDir dir;
  const auto good = dir / "good.bin";
  build({0, 1, 0, 1, 0, 2, 3, 3, 3}, 5, 2).save(good);
  const auto bytes = testing::read_bytes(good);
  auto variant = [&](const std::string& name, auto edit) {
    auto copy = bytes;
    edit(copy);
    testing::write_bytes(dir / name, copy);
    return dir / name;
  };
  expect_rejected(dir / "missing.bin", "cannot open");
  expect_rejected(variant("magic", [](auto& b) { b[0] = 'X'; }), "magic");
  expect_rejected(variant("version", [](auto& b) { b[8] = 9; }), "version");
  expect_rejected(variant("short", [](auto& b) { b.resize(b.size() - 8); }), "truncated");
  expect_rejected(variant("header", [](auto& b) { b.resize(20); }), "header");
  expect_rejected(variant("crc", [](auto& b) { b[b.size() - 3] ^= 1; }), "CRC");
  expect_rejected(good, "vocab_size 5, the model has 7", 7);
  expect_rejected(good, "--ngram_k is 16", 5, 16);

  // Content errors in files with a valid CRC.
  auto saved = [&](const std::string& name, auto edit) {
    BigramTable t(5, 2);
    edit(t);
    t.save(dir / name);
    return dir / name;
  };
  const std::uint32_t one[] = {1}, two[] = {1, 1}, far[] = {9};
  const float half[] = {0.5f}, both[] = {0.5f, 0.5f}, full[] = {1.0f}, nan[] = {std::nanf("")};
  expect_rejected(saved("sum", [&](auto& t) { t.set(0, one, half); }), "sum to");
  expect_rejected(saved("id", [&](auto& t) { t.set(0, far, full); }), "outside the vocabulary");
  expect_rejected(saved("dup", [&](auto& t) { t.set(0, two, both); }), "twice");
  expect_rejected(saved("nan", [&](auto& t) { t.set(0, one, nan); }), "finite");
}

}  // namespace
}  // namespace bigram_tests
}  // namespace lightgpt

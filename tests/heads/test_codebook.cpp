// LightRnnCodebook: the allocations, the versioned file (round trip; every corrupt or mismatched
// file is a lightgpt::Error) and bootstrap reallocation on statistics with known structure.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <set>

#include "head_instances.hpp"
#include "scratch.hpp"

namespace lightgpt::testing {
namespace codebook_tests {
namespace {

// Each token in exactly one cell, each cell at most one token, tables consistent.
void expect_bijective(const LightRnnCodebook& codebook) {
  const int V = codebook.vocab_size(), R = codebook.rows();
  std::set<int> cells;
  std::vector<int> per_row(R, 0);
  for (int w = 0; w < V; ++w) {
    ASSERT_GE(codebook.cell(w), 0);
    ASSERT_LT(codebook.cell(w), R * R);
    ASSERT_TRUE(cells.insert(codebook.cell(w)).second) << "cell " << codebook.cell(w) << " twice";
    ASSERT_EQ(codebook.token_at(codebook.row(w), codebook.column(w)), w);
    ++per_row[codebook.row(w)];
  }
  int empty = 0;
  for (int cell = 0; cell < R * R; ++cell) empty += codebook.cell_tokens()[cell] < 0;
  EXPECT_EQ(empty, R * R - V);
  for (int r = 0; r < R; ++r) EXPECT_EQ(codebook.row_counts()[r], per_row[r]);
}

template <class F>
std::string error_message(F&& f) {
  try {
    f();
  } catch (const Error& error) {
    return error.what();
  }
  return "(no lightgpt::Error thrown)";
}

TEST(Codebook, SequentialPlacesIdByRowMajorOrder) {
  const auto codebook = LightRnnCodebook::sequential(23, 5);
  expect_bijective(codebook);
  EXPECT_EQ(codebook.row(17), 3);
  EXPECT_EQ(codebook.column(17), 2);
  EXPECT_EQ(codebook.token_at(4, 2), 22);
  EXPECT_EQ(codebook.token_at(4, 3), -1);
  EXPECT_EQ(codebook.row_counts()[4], 3);
}

// Counts of V = 7 tokens in a 3 × 3 table: order by count, ties by id: 4, 1, 6, 0, 3, 2, 5.
TEST(Codebook, ByFrequencyFillsRowsInOrderOfCount) {
  const auto codebook = LightRnnCodebook::by_frequency({5, 9, 0, 5, 12, 0, 7}, 3);
  expect_bijective(codebook);
  const int expected_cell[7] = {3, 1, 5, 4, 0, 6, 2};
  for (int w = 0; w < 7; ++w) EXPECT_EQ(codebook.cell(w), expected_cell[w]) << "token " << w;
  EXPECT_EQ(codebook.row_counts(), (std::vector<std::int32_t>{3, 3, 1}));
  EXPECT_THROW(LightRnnCodebook::by_frequency(std::vector<std::uint64_t>(10, 1), 3), Error);
}

TEST(Codebook, RandomIsASeededPermutation) {
  const auto a = LightRnnCodebook::random(50257, 225, 1),
             b = LightRnnCodebook::random(50257, 225, 1);
  const auto c = LightRnnCodebook::random(50257, 225, 2);
  expect_bijective(a);
  EXPECT_TRUE(a == b);
  EXPECT_FALSE(a == c);
  EXPECT_FALSE(a == LightRnnCodebook::sequential(50257, 225));
}

TEST(Codebook, InvalidShapesAndMapsAreErrors) {
  EXPECT_NE(error_message([] { LightRnnCodebook::sequential(26, 5); }).find("cannot hold 26"),
            std::string::npos);
  EXPECT_NE(error_message([] {
              LightRnnCodebook::from_cells(3, {0, 4, 4});
            }).find("share cell 4"),
            std::string::npos);
  EXPECT_NE(error_message([] {
              LightRnnCodebook::from_cells(3, {0, 9});
            }).find("outside"),
            std::string::npos);
}

TEST(Codebook, FileRoundTrip) {
  TempDir dir;
  const auto codebook = LightRnnCodebook::random(1000, 32, 7);
  codebook.save(dir / "c.bin");
  EXPECT_FALSE(std::filesystem::exists(dir / "c.bin.tmp"));
  EXPECT_TRUE(LightRnnCodebook::load(dir / "c.bin") == codebook);
  EXPECT_TRUE(LightRnnCodebook::load(dir / "c.bin", 1000, 32) == codebook);
}

// A temporary left by a killed writer is replaced; a directory in its place is an error.
TEST(Codebook, SaveReplacesAStaleTemporary) {
  TempDir dir;
  const auto codebook = LightRnnCodebook::random(100, 10, 3);
  { std::ofstream(dir / "c.bin.tmp") << "half a codebook"; }
  codebook.save(dir / "c.bin");
  EXPECT_FALSE(std::filesystem::exists(dir / "c.bin.tmp"));
  EXPECT_TRUE(LightRnnCodebook::load(dir / "c.bin") == codebook);
  std::filesystem::create_directory(dir / "d.bin.tmp");
  EXPECT_THROW(codebook.save(dir / "d.bin"), Error);
}

TEST(Codebook, CorruptOrMismatchedFilesAreErrors) {
  TempDir dir;
  const auto codebook = LightRnnCodebook::random(100, 11, 3);
  codebook.save(dir / "good.bin");
  const std::vector<char> good = read_bytes(dir / "good.bin");
  auto load_modified = [&](auto&& modify) {
    std::vector<char> bytes = good;
    modify(bytes);
    write_bytes(dir / "bad.bin", bytes);
    return error_message([&] { LightRnnCodebook::load(dir / "bad.bin"); });
  };
  // Rewrites the trailing CRC so that only the intended inconsistency remains.
  auto fix_crc = [](std::vector<char>& bytes) {
    const std::uint32_t crc = detail::crc32_update(0, bytes.data(), bytes.size() - 4);
    std::memcpy(bytes.data() + bytes.size() - 4, &crc, 4);
  };
  auto set_u32 = [](std::vector<char>& bytes, std::size_t offset, std::uint32_t value) {
    std::memcpy(bytes.data() + offset, &value, 4);
  };

  EXPECT_NE(error_message([&] { LightRnnCodebook::load(dir / "missing.bin"); }).find("cannot open"),
            std::string::npos);
  EXPECT_NE(load_modified([](auto& b) { b[0] = 'X'; }).find("bad magic"), std::string::npos);
  EXPECT_NE(load_modified([&](auto& b) { set_u32(b, 8, 2); }).find("version 2"), std::string::npos);
  EXPECT_NE(load_modified([](auto& b) { b.resize(b.size() - 6); }).find("truncated"),
            std::string::npos);
  EXPECT_NE(load_modified([](auto& b) { b.resize(10); }).find("truncated"), std::string::npos);
  EXPECT_NE(load_modified([](auto& b) { b.push_back(0); }).find("trailing"), std::string::npos);
  EXPECT_NE(load_modified([](auto& b) { b[40] ^= 1; }).find("checksum"), std::string::npos);
  // A cell shared by two tokens, or out of the table, with a valid checksum.
  EXPECT_NE(load_modified([&](auto& b) {
              std::memcpy(b.data() + 20 + 4, b.data() + 20, 4);
              fix_crc(b);
            }).find("share cell"),
            std::string::npos);
  EXPECT_NE(load_modified([&](auto& b) {
              set_u32(b, 20, 121);
              fix_crc(b);
            }).find("outside"),
            std::string::npos);
  // A table too small for the vocabulary.
  EXPECT_NE(load_modified([&](auto& b) {
              set_u32(b, 16, 9);
              fix_crc(b);
            }).find("cannot hold"),
            std::string::npos);
  // Valid file, other model.
  EXPECT_NE(error_message([&] {
              LightRnnCodebook::load(dir / "good.bin", 101, 11);
            }).find("vocab_size 101"),
            std::string::npos);
  EXPECT_NE(
      error_message([&] { LightRnnCodebook::load(dir / "good.bin", 100, 12); }).find("12 rows"),
      std::string::npos);
}

// Row and column losses (V × R each) where token w is cheapest in cell target[w].
struct Statistics {
  std::vector<float> rows, cols;
};
Statistics preferring(const std::vector<int>& target, int R, std::uint64_t seed) {
  const int V = static_cast<int>(target.size());
  Rng rng(seed);
  Statistics s{std::vector<float>(std::size_t(V) * R), std::vector<float>(std::size_t(V) * R)};
  for (int w = 0; w < V; ++w) {
    const float weight = float(1 + rng.next_u64() % 20);  // token frequency
    for (int i = 0; i < R; ++i) {
      s.rows[std::size_t(w) * R + i] = weight * float(2.0 + rng.uniform());
      s.cols[std::size_t(w) * R + i] = weight * float(2.0 + rng.uniform());
    }
    s.rows[std::size_t(w) * R + target[w] / R] = weight * 0.1f;
    s.cols[std::size_t(w) * R + target[w] % R] = weight * 0.1f;
  }
  return s;
}

TEST(Codebook, ReallocationFindsAConsistentTargetMap) {
  const int V = 200, R = 15;
  auto codebook = LightRnnCodebook::sequential(V, R);
  const auto target = LightRnnCodebook::random(V, R, 9);
  const Statistics s = preferring(target.token_cells(), R, 4);
  const ReallocationReport report = codebook.reallocate(s.rows.data(), s.cols.data());
  expect_bijective(codebook);
  EXPECT_TRUE(report.accepted);
  EXPECT_TRUE(codebook == target);
  EXPECT_DOUBLE_EQ(report.cost_after, target.cost(s.rows.data(), s.cols.data()));
  EXPECT_DOUBLE_EQ(report.cost_before,
                   LightRnnCodebook::sequential(V, R).cost(s.rows.data(), s.cols.data()));
  EXPECT_LT(report.cost_after, report.cost_before);
  int moved = 0;
  for (int w = 0; w < V; ++w) moved += target.cell(w) != LightRnnCodebook::sequential(V, R).cell(w);
  EXPECT_EQ(report.moved, moved);
}

// Conflicting preferences (many tokens want the same cells) still give a bijection that lowers
// the cost, and the report's cost is the cost of the new map.
TEST(Codebook, ReallocationUnderConflictsLowersTheCost) {
  const int V = 400, R = 21;
  auto codebook = LightRnnCodebook::random(V, R, 1);
  std::vector<int> target(V);
  for (int w = 0; w < V; ++w) target[w] = (w * 7) % 50;  // 8 tokens per wanted cell
  const Statistics s = preferring(target, R, 2);
  const double before = codebook.cost(s.rows.data(), s.cols.data());
  const ReallocationReport report = codebook.reallocate(s.rows.data(), s.cols.data());
  expect_bijective(codebook);
  EXPECT_TRUE(report.accepted);
  EXPECT_DOUBLE_EQ(report.cost_before, before);
  EXPECT_DOUBLE_EQ(report.cost_after, codebook.cost(s.rows.data(), s.cols.data()));
  EXPECT_LT(report.cost_after, 0.9 * before);
  EXPECT_GT(report.moved, 0);
}

// Light tokens that all prefer the cells of heavy tokens already in their best cells: taking
// those cells greedily would push the heavy tokens out at a high cost. The result never costs
// more than the old map; the heavy tokens stay, the light ones still improve where they can.
TEST(Codebook, ReallocationNeverPaysMoreThanTheOldMap) {
  const int V = 60, R = 8;
  auto codebook = LightRnnCodebook::sequential(V, R);
  std::vector<int> target(V);
  for (int w = 0; w < V; ++w) target[w] = w < 6 ? w : (w % 6);  // tokens 0-5 sit in their best
  Statistics s = preferring(target, R, 6);                      // cells; the rest want those
  for (int w = 0; w < 6; ++w) {
    for (int i = 0; i < R; ++i) {
      s.rows[std::size_t(w) * R + i] *= 1000;
      s.cols[std::size_t(w) * R + i] *= 1000;
    }
  }
  // The light tokens' second choice: row 7 (its cells 56-59 hold tokens 56-59 in the old map),
  // cheaper than where they are but dearer than the heavy tokens' cells.
  for (int w = 6; w < V; ++w) s.rows[std::size_t(w) * R + 7] = 0.5f;
  const double before = codebook.cost(s.rows.data(), s.cols.data());
  const ReallocationReport report = codebook.reallocate(s.rows.data(), s.cols.data());
  expect_bijective(codebook);
  EXPECT_TRUE(report.accepted);
  EXPECT_LT(report.cost_after, before);
  EXPECT_DOUBLE_EQ(report.cost_after, codebook.cost(s.rows.data(), s.cols.data()));
  for (int w = 0; w < 6; ++w) EXPECT_EQ(codebook.cell(w), w) << "heavy token " << w;
  int in_row_7 = 0;
  for (int w = 6; w < V; ++w) in_row_7 += codebook.row(w) == 7;
  EXPECT_EQ(in_row_7, R);  // the light tokens fill row 7
}

// Without information (all losses equal) nothing can improve: the map is kept.
TEST(Codebook, ReallocationWithoutGainKeepsTheMap) {
  const int V = 50, R = 8;
  auto codebook = LightRnnCodebook::random(V, R, 3);
  const auto before = codebook;
  const std::vector<double> flat(std::size_t(V) * R, 1.5);
  const ReallocationReport report = codebook.reallocate(flat.data(), flat.data());
  EXPECT_FALSE(report.accepted);
  EXPECT_EQ(report.moved, 0);
  EXPECT_DOUBLE_EQ(report.cost_before, report.cost_after);
  EXPECT_TRUE(codebook == before);
}

}  // namespace
}  // namespace codebook_tests
}  // namespace lightgpt::testing

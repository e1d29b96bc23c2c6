#include <gtest/gtest.h>

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include <lightgpt/data/loader.hpp>

#include "../scratch.hpp"

namespace loader_tests {
namespace {

using lightgpt::testing::TempDir;

// Writes shards whose tokens are their global positions (first, first + 1, ...), so any window's
// contents can be predicted from where it starts.
std::vector<std::filesystem::path> counting_shards(const TempDir& dir,
                                                   const std::vector<int>& sizes,
                                                   const std::string& prefix = "train") {
  std::vector<std::filesystem::path> paths;
  int next = 0;
  for (std::size_t s = 0; s < sizes.size(); ++s) {
    std::vector<std::uint16_t> tokens(static_cast<std::size_t>(sizes[s]));
    for (auto& t : tokens) t = static_cast<std::uint16_t>(next++);
    const auto path = dir / (prefix + "_00" + std::to_string(s) + ".bin");
    lightgpt::write_shard(path, std::span<const std::uint16_t>(tokens));
    paths.push_back(path);
  }
  return paths;
}

std::vector<std::vector<int>> rows_of(const lightgpt::Batch& batch, int K) {
  std::vector<std::vector<int>> rows;
  for (int b = 0; b < batch.B; ++b) {
    const std::uint16_t* row = batch.tokens + std::size_t(b) * std::size_t(batch.row_stride);
    rows.emplace_back(row, row + batch.T + K);
  }
  return rows;
}

// Each row must be a window of consecutive positions starting at a multiple of T.
void expect_window(const std::vector<int>& row, int T) {
  ASSERT_FALSE(row.empty());
  EXPECT_EQ(row[0] % T, 0);
  for (std::size_t i = 1; i < row.size(); ++i) ASSERT_EQ(row[i], row[0] + int(i));
}

TEST(LoaderTest, SequentialBatchIsAViewWithShiftedTargets) {
  TempDir dir;
  const auto files = counting_shards(dir, {1000});
  const int B = 3, T = 8, K = 3;
  lightgpt::Loader loader(files, {.B = B, .T = T, .K = K});
  lightgpt::Shard shard(files[0]);
  for (int step = 0; step < 4; ++step) {
    const lightgpt::Batch batch = loader.next();
    EXPECT_EQ(batch.B, B);
    EXPECT_EQ(batch.T, T);
    EXPECT_EQ(batch.row_stride, T);
    for (int b = 0; b < B; ++b) {
      const std::uint16_t* row = batch.tokens + b * batch.row_stride;
      const int start = (step * B + b) * T;
      for (int t = 0; t < T; ++t) {
        EXPECT_EQ(row[t], start + t);
        // Target j of input t is the input j places later.
        for (int j = 1; j <= K; ++j) EXPECT_EQ(row[t + j], row[t] + j);
      }
    }
  }
}

TEST(LoaderTest, BatchCrossingShardsIsGathered) {
  TempDir dir;
  // T = 4, B = 2: a step spans 8 tokens plus K; the first shard ends inside step 1.
  const auto files = counting_shards(dir, {11, 3, 0, 30});
  lightgpt::Loader loader(files, {.B = 2, .T = 4, .K = 2});
  EXPECT_EQ(loader.total_tokens(), 44u);
  EXPECT_EQ(loader.steps_per_epoch(), 5u);  // (44 - 2) / 4 = 10 windows
  const auto first = loader.next();
  EXPECT_EQ(first.row_stride, 4);
  const auto second = loader.next();  // positions 8 .. 18 cross 11 and 14
  EXPECT_EQ(second.row_stride, 6);
  const auto rows = rows_of(second, 2);
  EXPECT_EQ(rows[0], (std::vector<int>{8, 9, 10, 11, 12, 13}));
  EXPECT_EQ(rows[1], (std::vector<int>{12, 13, 14, 15, 16, 17}));
  const auto third = rows_of(loader.next(), 2);
  EXPECT_EQ(third[0], (std::vector<int>{16, 17, 18, 19, 20, 21}));
}

TEST(LoaderTest, GlobExpandsSorted) {
  TempDir dir;
  counting_shards(dir, {20, 20, 20});
  // The stream only counts upward when the expansion is in sorted order.
  lightgpt::Loader loader((dir.path() / "train_*.bin").string(), {.B = 1, .T = 10, .K = 1});
  EXPECT_EQ(loader.num_shards(), 3u);
  EXPECT_EQ(loader.steps_per_epoch(), 5u);
  for (int step = 0; step < 5; ++step) expect_window(rows_of(loader.next(), 1)[0], 10);
  const auto names = lightgpt::expand_shard_pattern((dir.path() / "train_*.bin").string());
  ASSERT_EQ(names.size(), 3u);
  EXPECT_EQ(names[0].filename(), "train_000.bin");
  EXPECT_EQ(names[2].filename(), "train_002.bin");
  EXPECT_THROW(lightgpt::expand_shard_pattern((dir.path() / "val_*.bin").string()),
               lightgpt::Error);
}

TEST(LoaderTest, CountTokensOverEveryShard) {
  TempDir dir;
  const std::uint16_t first[] = {3, 1, 3, 0}, second[] = {3, 2};
  lightgpt::write_shard(dir.path() / "c_000.bin", std::span<const std::uint16_t>(first));
  lightgpt::write_shard(dir.path() / "c_001.bin", std::span<const std::uint16_t>(second));
  const std::string pattern = (dir.path() / "c_*.bin").string();
  EXPECT_EQ(lightgpt::count_tokens(pattern, 5), (std::vector<std::uint64_t>{1, 1, 1, 3, 0}));
  EXPECT_THROW(lightgpt::count_tokens(pattern, 3), lightgpt::Error);  // id 3 is out of range
}

TEST(LoaderTest, EpochWrapsToTheStart) {
  TempDir dir;
  const auto files = counting_shards(dir, {50});
  lightgpt::Loader loader(files, {.B = 2, .T = 5, .K = 1});
  ASSERT_EQ(loader.steps_per_epoch(), 4u);  // (50 - 1) / 5 = 9 windows, 4 steps of 2
  std::vector<std::vector<std::vector<int>>> epoch0;
  for (int s = 0; s < 4; ++s) epoch0.push_back(rows_of(loader.next(), 1));
  EXPECT_EQ(loader.epoch(), 0u);
  EXPECT_EQ(rows_of(loader.next(), 1), epoch0[0]);
  EXPECT_EQ(loader.epoch(), 1u);
  EXPECT_EQ(rows_of(loader.next(), 1), epoch0[1]);
}

TEST(LoaderTest, ShuffleIsAPermutationDeterministicBySeed) {
  TempDir dir;
  const auto files = counting_shards(dir, {300, 301});
  const lightgpt::LoaderOptions options{.B = 4, .T = 10, .K = 2, .shuffle = true, .seed = 7};
  lightgpt::Loader a(files, options), b(files, options);
  auto other_options = options;
  other_options.seed = 8;
  lightgpt::Loader c(files, other_options);
  ASSERT_EQ(a.steps_per_epoch(), 14u);  // (601 - 2) / 10 = 59 windows
  std::set<int> starts;
  std::vector<int> order0, order_c;
  for (std::uint64_t s = 0; s < a.steps_per_epoch(); ++s) {
    const auto batch = a.next();
    EXPECT_EQ(batch.row_stride, 12);
    const auto rows = rows_of(batch, 2);
    EXPECT_EQ(rows, rows_of(b.next(), 2));
    for (const auto& row : rows) {
      expect_window(row, 10);
      starts.insert(row[0]);
      order0.push_back(row[0]);
    }
    for (const auto& row : rows_of(c.next(), 2)) order_c.push_back(row[0]);
  }
  EXPECT_EQ(starts.size(), 56u);  // no window twice in an epoch
  EXPECT_NE(order0, order_c);
  std::vector<int> sorted = order0;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_NE(order0, sorted);
  std::vector<int> order1;  // the next epoch draws a different order
  for (std::uint64_t s = 0; s < a.steps_per_epoch(); ++s)
    for (const auto& row : rows_of(a.next(), 2)) order1.push_back(row[0]);
  EXPECT_NE(order0, order1);
}

TEST(LoaderTest, RanksStrideDisjointly) {
  TempDir dir;
  const auto files = counting_shards(dir, {400});
  for (bool shuffle : {false, true}) {
    lightgpt::LoaderOptions base{.B = 2, .T = 6, .K = 1, .shuffle = shuffle, .seed = 3};
    auto r0 = base, r1 = base, whole = base;
    r0.world_size = r1.world_size = 2;
    r1.rank = 1;
    whole.B = 4;  // one rank that takes both ranks' rows
    lightgpt::Loader l0(files, r0), l1(files, r1), lw(files, whole);
    ASSERT_EQ(l0.steps_per_epoch(), lw.steps_per_epoch());
    for (std::uint64_t s = 0; s < l0.steps_per_epoch(); ++s) {
      auto rows = rows_of(l0.next(), 1);
      const auto more = rows_of(l1.next(), 1);
      rows.insert(rows.end(), more.begin(), more.end());
      EXPECT_EQ(rows, rows_of(lw.next(), 1)) << "shuffle " << shuffle << " step " << s;
    }
  }
  EXPECT_THROW(lightgpt::Loader(files, {.B = 1, .T = 4, .rank = 2, .world_size = 2}),
               lightgpt::Error);
}

TEST(LoaderTest, PositionRestoresTheSameStream) {
  TempDir dir;
  const auto files = counting_shards(dir, {500});
  const lightgpt::LoaderOptions options{.B = 3, .T = 7, .K = 2, .shuffle = true, .seed = 11};
  lightgpt::Loader a(files, options);
  for (int s = 0; s < 30; ++s) a.next();  // crosses an epoch boundary (23 steps)
  const lightgpt::LoaderPosition saved = a.position();
  EXPECT_EQ(saved.epoch, 1u);
  std::vector<std::vector<std::vector<int>>> expected;
  for (int s = 0; s < 25; ++s) expected.push_back(rows_of(a.next(), 2));
  lightgpt::Loader b(files, options);
  b.restore(saved);
  for (int s = 0; s < 25; ++s) EXPECT_EQ(rows_of(b.next(), 2), expected[std::size_t(s)]) << s;

  auto different = options;
  different.T = 8;
  lightgpt::Loader c(files, different);
  EXPECT_THROW(c.restore(saved), lightgpt::Error);
  const auto other = counting_shards(dir, {499}, "other");
  lightgpt::Loader d(other, options);
  EXPECT_THROW(d.restore(saved), lightgpt::Error);
}

TEST(LoaderTest, ValidationGuardNamesTheFix) {
  try {
    lightgpt::validation_steps(10000, 4, 1024);
    FAIL() << "no error";
  } catch (const lightgpt::Error& e) {
    EXPECT_NE(std::string(e.what()).find(
                  "val_tokens 10000 is not a multiple of B*T = 4096: use val_tokens 8192 or 12288"),
              std::string::npos)
        << e.what();
  }
  EXPECT_EQ(lightgpt::validation_steps(8192, 4, 1024), 2);
  EXPECT_EQ(lightgpt::validation_steps(16384, 4, 1024, 2), 2);
  EXPECT_THROW(lightgpt::validation_steps(8192, 4, 1024, 3), lightgpt::Error);
  EXPECT_THROW(lightgpt::validation_steps(100, 4, 1024), lightgpt::Error);
  EXPECT_THROW(lightgpt::validation_steps(0, 4, 1024), lightgpt::Error);

  TempDir dir;
  const auto files = counting_shards(dir, {100});
  lightgpt::Loader val(files, {.B = 2, .T = 8, .K = 1});  // 12 windows, 6 steps
  EXPECT_EQ(val.validation_steps(96), 6);
  EXPECT_THROW(val.validation_steps(112), lightgpt::Error);
}

TEST(LoaderTest, RejectsTooLittleDataAndBadTokens) {
  TempDir dir;
  const auto files = counting_shards(dir, {20});
  EXPECT_THROW(lightgpt::Loader(files, {.B = 2, .T = 10, .K = 1}), lightgpt::Error);
  EXPECT_NO_THROW(lightgpt::Loader(files, {.B = 1, .T = 10, .K = 1}));
  EXPECT_THROW(lightgpt::Loader(files, {.B = 1, .T = 4, .K = 1, .vocab_size = 10}),
               lightgpt::Error);
  EXPECT_THROW(lightgpt::Loader(files, {.B = 0, .T = 4}), lightgpt::Error);
}

}  // namespace
}  // namespace loader_tests

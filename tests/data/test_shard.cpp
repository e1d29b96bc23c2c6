#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <numeric>
#include <string>
#include <vector>

#include <lightgpt/data/shard.hpp>

#include "../scratch.hpp"

namespace shard_tests {
namespace {

using lightgpt::testing::TempDir;

// Writes a shard byte by byte, independently of write_shard, so that the reader is checked
// against the format definition rather than against its own writer.
void write_raw(const std::filesystem::path& path, std::int32_t magic, std::int32_t version,
               std::int32_t count, const std::vector<std::uint16_t>& tokens, int extra_bytes = 0) {
  std::ofstream out(path, std::ios::binary);
  std::vector<std::int32_t> header(256, 0);
  header[0] = magic;
  header[1] = version;
  header[2] = count;
  out.write(reinterpret_cast<const char*>(header.data()), 1024);
  out.write(reinterpret_cast<const char*>(tokens.data()),
            static_cast<std::streamsize>(tokens.size() * 2));
  for (int i = 0; i < extra_bytes; ++i) out.put('\0');
}

std::vector<unsigned char> read_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Expects a lightgpt::Error whose message names the file and contains `fragment`.
void expect_error(const std::filesystem::path& path, const std::string& fragment,
                  int vocab_size = 0) {
  try {
    lightgpt::Shard shard(path, vocab_size);
    FAIL() << "no error for " << path;
  } catch (const lightgpt::Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(path.string()), std::string::npos) << what;
    EXPECT_NE(what.find(fragment), std::string::npos) << what;
  }
}

TEST(ShardTest, WriterProducesTheLlmcLayout) {
  TempDir dir;
  const std::vector<std::uint16_t> tokens = {0, 1, 50256, 65535, 42};
  lightgpt::write_shard(dir / "a.bin", std::span<const std::uint16_t>(tokens));
  const auto bytes = read_bytes(dir / "a.bin");
  ASSERT_EQ(bytes.size(), 1024u + 2 * tokens.size());
  auto i32 = [&](std::size_t k) {
    return std::int32_t(bytes[4 * k] | bytes[4 * k + 1] << 8 | bytes[4 * k + 2] << 16 |
                        bytes[4 * k + 3] << 24);
  };
  EXPECT_EQ(i32(0), 20240520);
  EXPECT_EQ(i32(1), 1);
  EXPECT_EQ(i32(2), 5);
  for (std::size_t k = 3; k < 256; ++k) EXPECT_EQ(i32(k), 0) << k;
  for (std::size_t i = 0; i < tokens.size(); ++i)
    EXPECT_EQ(bytes[1024 + 2 * i] | bytes[1024 + 2 * i + 1] << 8, tokens[i]) << i;
  // The temporary file was renamed away, not left behind.
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()),
                          std::filesystem::directory_iterator()),
            1);
}

TEST(ShardTest, RoundTripAndOverwrite) {
  TempDir dir;
  std::vector<int> tokens(100000);
  for (std::size_t i = 0; i < tokens.size(); ++i) tokens[i] = int((i * 7919) % 50257);
  lightgpt::write_shard(dir / "s.bin", std::span<const int>(tokens));
  {
    lightgpt::Shard shard(dir / "s.bin", 50257);
    ASSERT_EQ(shard.size(), tokens.size());
    for (std::size_t i = 0; i < tokens.size(); ++i) ASSERT_EQ(shard.tokens()[i], tokens[i]) << i;
    lightgpt::Shard moved = std::move(shard);
    EXPECT_EQ(moved.tokens()[1], tokens[1]);
    EXPECT_EQ(shard.size(), 0u);
  }
  const std::vector<std::uint16_t> shorter = {7, 8};
  lightgpt::write_shard(dir / "s.bin", std::span<const std::uint16_t>(shorter));
  lightgpt::Shard again(dir / "s.bin");
  ASSERT_EQ(again.size(), 2u);
  EXPECT_EQ(again.tokens()[1], 8);
}

TEST(ShardTest, ReadsAShardWrittenByHand) {
  TempDir dir;
  write_raw(dir / "h.bin", 20240520, 1, 3, {5, 6, 7});
  lightgpt::Shard shard(dir / "h.bin");
  ASSERT_EQ(shard.size(), 3u);
  EXPECT_EQ(shard.tokens()[0], 5);
  EXPECT_EQ(shard.tokens()[2], 7);
}

TEST(ShardTest, EmptyShardIsValid) {
  TempDir dir;
  lightgpt::write_shard(dir / "e.bin", std::span<const std::uint16_t>());
  EXPECT_EQ(lightgpt::Shard(dir / "e.bin").size(), 0u);
}

TEST(ShardTest, RejectsWrongMagic) {
  TempDir dir;
  write_raw(dir / "m.bin", 20240521, 1, 2, {1, 2});
  expect_error(dir / "m.bin", "magic 20240521");
}

TEST(ShardTest, RejectsWrongVersion) {
  TempDir dir;
  write_raw(dir / "v.bin", 20240520, 2, 2, {1, 2});
  expect_error(dir / "v.bin", "version 2");
}

TEST(ShardTest, RejectsSizeMismatch) {
  TempDir dir;
  write_raw(dir / "short.bin", 20240520, 1, 3, {1, 2});
  expect_error(dir / "short.bin", "says 3 tokens");
  write_raw(dir / "long.bin", 20240520, 1, 2, {1, 2}, 1);
  expect_error(dir / "long.bin", "1029 bytes");
  write_raw(dir / "neg.bin", 20240520, 1, -1, {});
  expect_error(dir / "neg.bin", "negative");
}

TEST(ShardTest, RejectsTokensOutsideTheVocabulary) {
  TempDir dir;
  write_raw(dir / "t.bin", 20240520, 1, 3, {1, 50257, 2});
  EXPECT_NO_THROW(lightgpt::Shard(dir / "t.bin"));
  expect_error(dir / "t.bin", "token 50257 at position 1", 50257);
}

TEST(ShardTest, RejectsEmptyAndTruncatedFiles) {
  TempDir dir;
  std::ofstream(dir / "empty.bin").close();
  expect_error(dir / "empty.bin", "empty");
  {
    std::ofstream out(dir / "tiny.bin", std::ios::binary);
    out << "abc";
  }
  expect_error(dir / "tiny.bin", "fewer than");
  expect_error(dir / "missing.bin", "cannot open");
}

TEST(ShardTest, WriterRejectsIdsBeyondUint16) {
  TempDir dir;
  const std::vector<int> bad = {1, 65536};
  EXPECT_THROW(lightgpt::write_shard(dir / "b.bin", std::span<const int>(bad)), lightgpt::Error);
  const std::vector<int> negative = {-1};
  EXPECT_THROW(lightgpt::write_shard(dir / "b.bin", std::span<const int>(negative)),
               lightgpt::Error);
  EXPECT_FALSE(std::filesystem::exists(dir / "b.bin"));
}

}  // namespace
}  // namespace shard_tests

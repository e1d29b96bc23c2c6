// Checkpoints: bit-exact round trips (parameters, optimizer state, step), resumed training that
// reproduces the uninterrupted run, and clear errors on truncated, corrupted or mismatched files.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "instances.hpp"
#include "scratch.hpp"

namespace lightgpt::testing {
namespace checkpoint_tests {
namespace {

namespace fs = std::filesystem;

std::vector<std::int32_t> batch(int step) {
  return random_tokens(2 * 11, tiny_config().vocab_size, 500 + step);
}

float train_step(DenseFp32& model, AdamW<Cpu, float>& optimizer, int step) {
  const auto tokens = batch(step);
  model.zero_grad();
  const float loss = model.forward(tokens.data(), 2, 10);
  model.backward();
  optimizer.step(model.parameters(), 1e-2);
  return loss;
}

TEST(Checkpoint, RoundTripIsBitExactAndResumeReproducesTheRun) {
  TempDir dir;
  DenseFp32 model(tiny_config(), 1);
  AdamW<Cpu, float> optimizer(model.parameters().layout());
  for (int step = 0; step < 3; ++step) train_step(model, optimizer, step);
  save_checkpoint(dir.path() / "a.ckpt", model, optimizer, 3);
  EXPECT_FALSE(fs::exists(dir.path() / "a.ckpt.tmp"));

  DenseFp32 restored(tiny_config(), 999);
  AdamW<Cpu, float> restored_optimizer(restored.parameters().layout());
  EXPECT_EQ(load_checkpoint(dir.path() / "a.ckpt", restored, restored_optimizer), 3u);
  const std::size_t n = model.parameters().layout().size();
  EXPECT_EQ(std::memcmp(model.parameters().values(), restored.parameters().values(), n * 4), 0);
  EXPECT_EQ(std::memcmp(optimizer.first_moment(), restored_optimizer.first_moment(), n * 4), 0);
  EXPECT_EQ(std::memcmp(optimizer.second_moment(), restored_optimizer.second_moment(), n * 4), 0);
  EXPECT_EQ(restored_optimizer.steps(), 3);

  for (int step = 3; step < 6; ++step) {
    EXPECT_EQ(train_step(model, optimizer, step), train_step(restored, restored_optimizer, step))
        << "step " << step;
  }
}

TEST(Checkpoint, LoadsIntoAnotherPrecision) {
  TempDir dir;
  DenseFp32 model(tiny_config(), 1);
  save_checkpoint(dir.path() / "m.ckpt", model, 0);
  DenseFp64 wide(tiny_config(), 2);
  load_checkpoint(dir.path() / "m.ckpt", wide);
  const auto tokens = batch(0);
  EXPECT_NEAR(wide.evaluate(tokens.data(), 2, 10), model.evaluate(tokens.data(), 2, 10), 1e-5);
}

TEST(Checkpoint, TruncatedOrCorruptedFilesRaiseErrors) {
  TempDir dir;
  DenseFp32 model(tiny_config(), 1);
  AdamW<Cpu, float> optimizer(model.parameters().layout());
  const fs::path path = dir.path() / "c.ckpt";
  save_checkpoint(path, model, optimizer, 1);
  const auto bytes = read_bytes(path);
  for (std::size_t keep :
       {std::size_t(0), std::size_t(5), std::size_t(20), bytes.size() / 2, bytes.size() - 1}) {
    write_bytes(dir.path() / "cut.ckpt", {bytes.begin(), bytes.begin() + std::ptrdiff_t(keep)});
    EXPECT_THROW(load_checkpoint(dir.path() / "cut.ckpt", model, optimizer), Error) << keep;
  }
  for (std::size_t at : {bytes.size() / 3, bytes.size() - 10}) {
    auto flipped = bytes;
    flipped[at] ^= 0x20;
    write_bytes(dir.path() / "flip.ckpt", flipped);
    EXPECT_THROW(load_checkpoint(dir.path() / "flip.ckpt", model, optimizer), Error) << at;
  }
  auto appended = bytes;
  appended.push_back('x');
  write_bytes(dir.path() / "long.ckpt", appended);
  EXPECT_THROW(load_checkpoint(dir.path() / "long.ckpt", model), Error);
  EXPECT_THROW(load_checkpoint(dir.path() / "missing.ckpt", model), Error);
}

TEST(Checkpoint, MismatchedConfigOrCompositionNamesBoth) {
  TempDir dir;
  DenseFp64 model(tiny_config(), 1);
  save_checkpoint(dir.path() / "m.ckpt", model, 0);
  ModelConfig other = tiny_config();
  other.n_layer = 3;
  DenseFp64 deeper(other, 1);
  try {
    load_checkpoint(dir.path() / "m.ckpt", deeper);
    FAIL() << "no error";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("n_layer=2"), std::string::npos) << error.what();
    EXPECT_NE(std::string(error.what()).find("n_layer=3"), std::string::npos) << error.what();
  }
  Mtp2Fp64 mtp(tiny_config(), 1);
  try {
    load_checkpoint(dir.path() / "m.ckpt", mtp);
    FAIL() << "no error";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("dense<mtp=1>"), std::string::npos);
    EXPECT_NE(std::string(error.what()).find("dense<mtp=2>"), std::string::npos);
  }
}

TEST(Checkpoint, ContainerKeepsTheOldFileUntilCommit) {
  TempDir dir;
  const fs::path path = dir.path() / "x.ckpt";
  {
    CheckpointWriter out(path);
    out.add_section("note", "first");
    out.commit();
  }
  {
    CheckpointWriter out(path);
    out.add_section("note", "second");
    // destroyed without commit: as if the process died mid-write
  }
  EXPECT_EQ(CheckpointReader(path).section("note").rest(), "first");
  EXPECT_FALSE(fs::exists(dir.path() / "x.ckpt.tmp"));
  EXPECT_THROW(CheckpointReader(path).section("absent"), Error);
}

}  // namespace
}  // namespace checkpoint_tests
}  // namespace lightgpt::testing

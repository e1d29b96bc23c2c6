// Regression tests of the faults found by feeding lightgpt hostile inputs: size arithmetic that
// wrapped, non-Error exceptions that aborted programs, diverged models that were checkpointed
// and sampled from, and checkpoint temporaries that outlived a killed writer.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "bad_inputs.hpp"

namespace lightgpt::testing {
namespace faults_tests {
namespace {

namespace fs = std::filesystem;

std::string message_of(auto&& action) {
  try {
    action();
  } catch (const Error& error) {
    return error.what();
  }
  return "no error";
}

TEST(CheckedArithmetic, OverflowIsAnErrorNamingTheQuantity) {
  EXPECT_EQ(checked_mul(1ull << 31, 1ull << 32, "x"), 1ull << 63);
  EXPECT_EQ(checked_add(~0ull - 1, 1, "x"), ~0ull);
  EXPECT_NE(message_of([] { checked_mul(1ull << 32, 1ull << 32, "tensor bytes"); })
                .find("tensor bytes: 4294967296 x 4294967296 overflows"),
            std::string::npos);
  EXPECT_NE(message_of([] { checked_add(~0ull, 1, "file size"); }).find("file size"),
            std::string::npos);
}

// The llm.c header whose 64-bit size sum wrapped to exactly its 1024 bytes.
TEST(CheckedArithmetic, TheWrappingLlmcConfigNoLongerWraps) {
  ModelConfig config;
  config.vocab_size = 100;
  config.max_seq_len = 394967166;
  config.n_layer = 300000000;
  config.n_head = 1;
  config.d_model = 1 << 30;
  EXPECT_NE(message_of([&] { detail::llmc_file_bytes(config, LlmcVersion::fp32); })
                .find("overflows 64 bits"),
            std::string::npos);
  EXPECT_NE(message_of([&] { config.validate(); }).find("max_seq_len"), std::string::npos);
  config.max_seq_len = 1024;
  EXPECT_NE(message_of([&] { config.validate(); }).find("n_layer (300000000)"),
            std::string::npos);
}

TEST(ModelConfigBounds, Gpt2SizesPassAndTheLimitsAreReported) {
  ModelConfig xl;  // GPT-2 XL: 1.56 billion parameters with its tied 50304-row table
  xl.n_layer = 48;
  xl.n_head = 25;
  xl.d_model = 1600;
  EXPECT_NO_THROW(xl.validate());
  using Gpt2 = GPT<Fp32, DenseHead<>, Attention, Cpu>;
  EXPECT_EQ(Gpt2::num_parameters(xl),
            50304ull * 1600 + 1024 * 1600 + 48 * (12ull * 1600 * 1600 + 13 * 1600) + 2 * 1600);
  EXPECT_LT(xl.trunk_parameter_count(), 1'500'000'000u);
  ModelConfig lightrnn;
  lightrnn.options.set("lightrnn.rows", 450);  // 2 × ceil(sqrt(50257))
  EXPECT_NO_THROW(lightrnn.part<LightRnnOptions>().validate(lightrnn));
  lightrnn.options.set("lightrnn.rows", 451);
  EXPECT_NE(message_of([&] { lightrnn.part<LightRnnOptions>().validate(lightrnn); })
                .find("at most 2 × ceil(sqrt(vocab_size)) = 450"),
            std::string::npos);
  // A layout past kMaxParameterBytes is refused before anything is allocated: 64 AFNO hidden
  // blocks at d_model 16384 make 16 × 64 × 2 × 16384² ≈ 5.5e11 parameters in 16 layers.
  ModelConfig afno;
  afno.n_layer = 16;
  afno.d_model = afno.n_head = 16384;
  afno.max_seq_len = 16;
  afno.options.set("afno.hidden_factor", 64);
  EXPECT_NO_THROW(afno.validate());
  using Afno = GPT<Fp32, DenseHead<>, AfnoMixer<1>, Cpu>;
  EXPECT_NE(message_of([&] { Afno::num_parameters(afno); })
                .find("exceed the supported"),
            std::string::npos);
}

TEST(Allocating, OutOfMemoryNamesWhatNeededHowMuch) {
  const std::string message = message_of([] {
    allocating("the model's parameters", 3ull << 40, []() -> int { throw std::bad_alloc(); });
  });
  EXPECT_NE(message.find("out of memory: the model's parameters needs about 3298534883328 bytes "
                         "(3.0 TiB)"),
            std::string::npos)
      << message;
  EXPECT_EQ(allocating("x", 1, [] { return 7; }), 7);
  EXPECT_NE(message_of([] {
              allocating("a table", 1ull << 62, [] { std::vector<char>(~std::size_t{0} / 2); });
            }).find("a table needs about"),
            std::string::npos);
}

// Every exception becomes exactly one line "program: …" and exit code 1.
TEST(ReportException, OneLineForEveryKindOfException) {
  auto report = [](auto&& thrower) {
    ::testing::internal::CaptureStderr();
    int code = 0;
    try {
      thrower();
    } catch (...) {
      code = report_exception("prog");
    }
    std::string text = ::testing::internal::GetCapturedStderr();
    EXPECT_EQ(code, 1);
    EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1) << text;
    return text;
  };
  EXPECT_EQ(report([] { throw Error("file 'a.bin': field x"); }),
            "prog: lightgpt: file 'a.bin': field x\n");
  EXPECT_EQ(report([] { throw Error("config\nn_layer=2\n"); }),
            "prog: lightgpt: config n_layer=2 \n");
  const std::string fs_error = report([] {
    throw fs::filesystem_error("create_directories", fs::path("runs/x"),
                               std::make_error_code(std::errc::file_exists));
  });
  EXPECT_NE(fs_error.find("prog: filesystem error: File exists ('runs/x')"), std::string::npos)
      << fs_error;
  EXPECT_NE(report([] { throw std::bad_alloc(); }).find("prog: out of memory"),
            std::string::npos);
  EXPECT_EQ(report([] { throw std::runtime_error("plain"); }), "prog: plain\n");
  EXPECT_EQ(report([] { throw 42; }), "prog: unknown exception\n");
}

TEST(CheckpointWriter, RefusesNonFiniteParametersAndKeepsTheOldFile) {
  TempDir dir;
  DenseFp32 model(tiny_config(), 1);
  save_checkpoint(dir / "model.ckpt", model, 1);
  const std::vector<char> saved = read_bytes(dir / "model.ckpt");
  const TensorInfo& qkvw = model.parameters().layout().at("qkvw");
  std::vector<float> values = model.parameters().read(qkvw);
  values[5] = std::numeric_limits<float>::quiet_NaN();
  model.parameters().write(qkvw, values.data());
  const std::string message = message_of([&] { save_checkpoint(dir / "model.ckpt", model, 2); });
  EXPECT_NE(message.find("refusing to write checkpoint"), std::string::npos) << message;
  EXPECT_NE(message.find("parameter tensor 'qkvw' holds nan at element 5"), std::string::npos)
      << message;
  EXPECT_EQ(read_bytes(dir / "model.ckpt"), saved);
  EXPECT_FALSE(fs::exists(dir / "model.ckpt.tmp"));
}

// A writer killed mid-file leaves `<path>.tmp`; the next save removes it and commits normally.
TEST(CheckpointWriter, RemovesAStaleTemporaryAndRefusesADirectoryInItsPlace) {
  TempDir dir;
  write_bytes(dir / "model.ckpt.tmp", std::vector<char>(1 << 20, 'k'));
  DenseFp32 model(tiny_config(), 1);
  save_checkpoint(dir / "model.ckpt", model, 3);
  EXPECT_FALSE(fs::exists(dir / "model.ckpt.tmp"));
  DenseFp32 loaded(tiny_config(), 2);
  EXPECT_EQ(load_checkpoint(dir / "model.ckpt", loaded), 3u);

  fs::create_directories(dir / "other.ckpt.tmp");
  EXPECT_NE(message_of([&] { save_checkpoint(dir / "other.ckpt", model, 3); })
                .find("other.ckpt.tmp': something other than a file is in the way"),
            std::string::npos);
}

TEST(Sampling, NonFiniteLogProbabilitiesAreAnError) {
  Rng rng(1);
  std::vector<int> order;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  for (double temperature : {0.0, 1.0}) {
    SamplingOptions options;
    options.temperature = temperature;
    const std::vector<float> with_nan = {-1.0f, nan, -2.0f};
    EXPECT_NE(message_of([&] {
                sample_token(std::span<const float>(with_nan), options, rng, order);
              }).find("log-probability of token 1 is nan"),
              std::string::npos);
    const std::vector<float> with_inf = {inf, -1.0f};
    EXPECT_NE(message_of([&] {
                sample_token(std::span<const float>(with_inf), options, rng, order);
              }).find("token 0 is inf"),
              std::string::npos);
    const std::vector<float> all_minus_inf = {-inf, -inf};
    EXPECT_NE(message_of([&] {
                sample_token(std::span<const float>(all_minus_inf), options, rng, order);
              }).find("every token log-probability -inf"),
              std::string::npos);
    const std::vector<float> fine = {-inf, -0.1f, -3.0f};
    EXPECT_EQ(sample_token(std::span<const float>(fine), options, rng, order), 1);
  }
}

// A checkpoint's config is checked against its parameters' length before a program builds the
// model it describes.
TEST(CheckpointConfig, AConfigLargerThanTheFileIsRejectedBeforeBuilding) {
  TempDir dir;
  Sections sections = split_checkpoint(good_checkpoint(dir.path()));
  EXPECT_EQ(read_checkpoint_config(CheckpointReader(dir / "good.ckpt")), tiny_config());
  section(sections, "config") =
      "vocab_size=50257\nmax_seq_len=1024\nn_layer=1000\nn_head=16\nd_model=1024\n";
  write_checkpoint(dir / "hollow.ckpt", sections);
  const std::string message =
      message_of([&] { read_checkpoint_config(CheckpointReader(dir / "hollow.ckpt")); });
  EXPECT_NE(message.find("hollow.ckpt"), std::string::npos) << message;
  EXPECT_NE(message.find("needs at least 33595498496 bytes of parameters"), std::string::npos)
      << message;
}

}  // namespace
}  // namespace faults_tests
}  // namespace lightgpt::testing

// safetensors files of every other composition (LightRNN head with its codebook, AFNO mixer) and
// of the 16-bit precisions: lightgpt's own tensor names, composition and config in __metadata__,
// round trips that restore every value and give the same loss, and a file of one composition
// refused by another with a message that names both.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <lightgpt/io/safetensors.hpp>
#include <string>
#include <vector>

#include "head_instances.hpp"
#include "models.hpp"
#include "scratch.hpp"

namespace lightgpt::testing {
namespace {

namespace fs = std::filesystem;

// The header of a written file, parsed here on its own.
nlohmann::json raw_header(const fs::path& path) {
  const std::vector<char> bytes = read_bytes(path);
  std::uint64_t length;
  std::memcpy(&length, bytes.data(), 8);
  return nlohmann::json::parse(bytes.begin() + 8, bytes.begin() + 8 + std::ptrdiff_t(length));
}

template <class Model>
void expect_round_trip(Model& model, SafetensorsDtype dtype = SafetensorsDtype::f32) {
  TempDir dir;
  const fs::path path = dir / "m.safetensors";
  save_safetensors(path, model, dtype);
  Model restored(read_safetensors_config(path), 99);
  load_safetensors(path, restored);
  for (const TensorInfo& tensor : model.parameters().layout().tensors()) {
    const auto original = model.parameters().read(tensor);
    const auto loaded = restored.parameters().read(tensor);
    for (std::size_t i = 0; i < original.size(); ++i) {
      ASSERT_EQ(loaded[i], original[i])
          << Model::composition() << " " << tensor.name << "[" << i << "]";
    }
  }
  const auto tokens = random_tokens(2 * 9, model.config().vocab_size, 3);
  EXPECT_EQ(restored.evaluate(tokens.data(), 2, 8), model.evaluate(tokens.data(), 2, 8));
}

TEST(SafetensorsCompositions, LightRnnKeepsItsNamesAndItsCodebook) {
  ModelConfig config = tiny_config();
  config.options.set("lightrnn.token_embedding", true);
  LightRnnFp32 model(config, 1);
  // A codebook other than the default one, which a fresh model would already have.
  model.head().set_codebook(
      LightRnnCodebook::random(config.vocab_size, lightrnn_table_rows(config), 8));
  expect_round_trip(model);

  TempDir dir;
  save_safetensors(dir / "m.safetensors", model);
  const nlohmann::json header = raw_header(dir / "m.safetensors");
  const nlohmann::json& metadata = header["__metadata__"];
  EXPECT_EQ(metadata["lightgpt.composition"], LightRnnFp32::composition());
  EXPECT_EQ(metadata["lightgpt.config"], config.serialize());
  EXPECT_EQ(metadata["lightgpt.names"], "lightgpt");
  for (const TensorInfo& tensor : model.parameters().layout().tensors()) {
    ASSERT_TRUE(header.contains(tensor.name)) << tensor.name;
    EXPECT_EQ(header[tensor.name]["shape"], nlohmann::json(tensor.shape)) << tensor.name;
  }
  EXPECT_EQ(header["lightgpt.section.lightrnn_codebook"]["dtype"], "U8");

  LightRnnFp32 restored(config, 2);
  load_safetensors(dir / "m.safetensors", restored);
  EXPECT_EQ(restored.head().codebook(), model.head().codebook());
}

TEST(SafetensorsCompositions, AfnoAndSixteenBitPrecisionsRoundTrip) {
  AfnoFp32 afno(tiny_config(), 1);
  expect_round_trip(afno);
  AfnoFp16 afno_fp16(tiny_config(), 1);
  expect_round_trip(afno_fp16);
  LightRnnMtp2Bf16 lightrnn_bf16(tiny_config(), 1);
  expect_round_trip(lightrnn_bf16);
  DenseBf16 dense_bf16(tiny_config(), 1);
  expect_round_trip(dense_bf16);
  // 16-bit models keep fp32 master weights, which F32 files hold exactly.
  DenseFp16 dense_fp16(tiny_config(), 1);
  expect_round_trip(dense_fp16);
}

template <class Load>
void expect_error(Load&& load, const std::vector<std::string>& needles) {
  try {
    load();
    FAIL() << "no error";
  } catch (const Error& error) {
    const std::string message = error.what();
    for (const std::string& needle : needles) {
      EXPECT_NE(message.find(needle), std::string::npos)
          << "'" << needle << "' not in: " << message;
    }
  }
}

TEST(SafetensorsCompositions, AFileOfAnotherCompositionOrConfigIsRefused) {
  TempDir dir;
  const ModelConfig config = tiny_config();
  AfnoFp32 afno(config, 1);
  LightRnnFp32 lightrnn(config, 1);
  DenseFp32 dense(config, 1);
  save_safetensors(dir / "afno.safetensors", afno);
  save_safetensors(dir / "dense.safetensors", dense);
  expect_error([&] { load_safetensors(dir / "afno.safetensors", lightrnn); },
               {"afno.safetensors", AfnoFp32::composition(), LightRnnFp32::composition()});
  expect_error([&] { load_safetensors(dir / "dense.safetensors", lightrnn); },
               {"dense.safetensors", "composition"});
  ModelConfig wider = config;
  wider.d_model = 16;
  AfnoFp32 wide(wider, 1);
  expect_error([&] { load_safetensors(dir / "afno.safetensors", wide); },
               {"afno.safetensors", "config", "d_model=16"});
}

}  // namespace
}  // namespace lightgpt::testing

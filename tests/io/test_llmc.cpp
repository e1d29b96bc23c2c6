// llm.c model files: bit-exact fp32 round trips, a hand-written file whose loss is recomputed here
// with plain loops (all mixing weights zero, so the residual stream is wte[token] + wpe[t] plus
// the projection biases), bf16 rounding, and errors that name the offending header field.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <utility>

#include "instances.hpp"
#include "scratch.hpp"

namespace lightgpt::testing {
namespace llmc_tests {
namespace {

namespace fs = std::filesystem;

std::int32_t header_field(const std::vector<char>& bytes, int index) {
  std::int32_t value;
  std::memcpy(&value, bytes.data() + 4 * index, 4);
  return value;
}
void set_header_field(std::vector<char>& bytes, int index, std::int32_t value) {
  std::memcpy(bytes.data() + 4 * index, &value, 4);
}

// Expects load_llmc to throw a lightgpt::Error whose message contains every needle.
template <class Model>
void expect_error(const fs::path& path, Model& model, std::vector<std::string> needles) {
  try {
    load_llmc(path, model);
    FAIL() << "no error for " << path;
  } catch (const Error& error) {
    const std::string message = error.what();
    for (const std::string& needle : needles) {
      EXPECT_NE(message.find(needle), std::string::npos) << "'" << needle << "' not in: "
                                                         << message;
    }
  }
}

TEST(Llmc, Fp32RoundTripIsBitExact) {
  TempDir dir;
  DenseFp32 model(tiny_config(), 1);
  const fs::path path = dir.path() / "model.bin";
  save_llmc(path, model);
  EXPECT_FALSE(fs::exists(dir.path() / "model.bin.tmp"));

  const auto bytes = read_bytes(path);
  const ModelConfig config = tiny_config();
  EXPECT_EQ(bytes.size(), 1024 + 4 * model.num_parameters());
  EXPECT_EQ(header_field(bytes, 0), 20240326);
  EXPECT_EQ(header_field(bytes, 1), 3);
  EXPECT_EQ(header_field(bytes, 2), config.max_seq_len);
  EXPECT_EQ(header_field(bytes, 3), config.vocab_size);
  EXPECT_EQ(header_field(bytes, 4), config.n_layer);
  EXPECT_EQ(header_field(bytes, 5), config.n_head);
  EXPECT_EQ(header_field(bytes, 6), config.d_model);
  EXPECT_EQ(header_field(bytes, 7), config.padded_vocab_size());
  for (int i = 8; i < 256; ++i) EXPECT_EQ(header_field(bytes, i), 0) << i;
  EXPECT_EQ(read_llmc_config(path), config);

  DenseFp32 restored(read_llmc_config(path), 2);
  load_llmc(path, restored);
  const std::size_t n = model.parameters().layout().size();
  EXPECT_EQ(std::memcmp(model.parameters().values(), restored.parameters().values(), n * 4), 0);
  const auto tokens = random_tokens(2 * 11, config.vocab_size, 7);
  EXPECT_EQ(model.evaluate(tokens.data(), 2, 10), restored.evaluate(tokens.data(), 2, 10));

  // The same file loads into any precision and any MTP depth of the dense composition.
  Mtp2Fp64 mtp(config, 3);
  load_llmc(path, mtp);
  for (const TensorInfo& tensor : model.parameters().layout().tensors()) {
    const auto expected = model.parameters().read(tensor);
    const auto loaded = mtp.parameters().read(tensor);
    for (std::size_t i = 0; i < expected.size(); ++i) {
      ASSERT_EQ(loaded[i], double(expected[i])) << tensor.name << "[" << i << "]";
    }
  }
}

// A tiny config written by hand: every attention and MLP weight is zero, so each block adds only
// attprojb + fcprojb to the residual stream, and the loss follows from wte, wpe, those biases and
// the final LayerNorm alone.
TEST(Llmc, HandWrittenFileLoadsAndGivesTheReferenceLoss) {
  constexpr int V = 5, Vp = 128, maxT = 4, L = 1, NH = 2, C = 4;
  std::vector<std::pair<std::string, std::vector<float>>> tensors = {
      {"wte", std::vector<float>(Vp * C)},    {"wpe", std::vector<float>(maxT * C)},
      {"ln1w", std::vector<float>(L * C, 1)}, {"ln1b", std::vector<float>(L * C, 0)},
      {"qkvw", std::vector<float>(L * 3 * C * C, 0)},
      {"qkvb", std::vector<float>(L * 3 * C, 0.25f)},
      {"attprojw", std::vector<float>(L * C * C, 0)},
      {"attprojb", {0.1f, -0.2f, 0.3f, 0.05f}},
      {"ln2w", std::vector<float>(L * C, 1)}, {"ln2b", std::vector<float>(L * C, 0)},
      {"fcw", std::vector<float>(L * 4 * C * C, 0)},
      {"fcb", std::vector<float>(L * 4 * C, 0.5f)},
      {"fcprojw", std::vector<float>(L * C * 4 * C, 0)},
      {"fcprojb", {-0.05f, 0.15f, 0.0f, -0.1f}},
      {"lnfw", {1.0f, 1.1f, 0.9f, 1.2f}},     {"lnfb", {0.01f, -0.02f, 0.03f, 0.0f}}};
  std::vector<float>& wte = tensors[0].second;
  std::vector<float>& wpe = tensors[1].second;
  for (int v = 0; v < Vp; ++v) {
    for (int c = 0; c < C; ++c) {
      // Padded rows hold garbage that a correct reader ignores.
      wte[v * C + c] = v < V ? float(std::sin(1.3 * v + 0.7 * c)) : 50.0f;
    }
  }
  for (int t = 0; t < maxT; ++t) {
    for (int c = 0; c < C; ++c) wpe[t * C + c] = float(0.3 * std::cos(t + 2.0 * c));
  }

  TempDir dir;
  const fs::path path = dir.path() / "hand.bin";
  {
    std::int32_t header[256] = {};
    header[0] = 20240326;
    header[1] = 3;
    header[2] = maxT;
    header[3] = V;
    header[4] = L;
    header[5] = NH;
    header[6] = C;
    header[7] = Vp;
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(header), sizeof(header));
    for (const auto& [name, values] : tensors) {
      out.write(reinterpret_cast<const char*>(values.data()),
                std::streamsize(values.size() * sizeof(float)));
    }
  }

  const ModelConfig config = read_llmc_config(path);
  EXPECT_EQ(config.vocab_size, V);
  EXPECT_EQ(config.max_seq_len, maxT);
  EXPECT_EQ(config.n_layer, L);
  EXPECT_EQ(config.n_head, NH);
  EXPECT_EQ(config.d_model, C);
  DenseFp32 model(config, 1);
  load_llmc(path, model);

  for (const auto& [name, values] : tensors) {
    const auto loaded = model.parameters().read(model.parameters().layout().at(name));
    ASSERT_EQ(loaded.size(), values.size()) << name;
    for (std::size_t i = 0; i < values.size(); ++i) {
      const float expected = name == "wte" && i >= std::size_t(V * C) ? 0.0f : values[i];
      ASSERT_EQ(loaded[i], expected) << name << "[" << i << "]";
    }
  }

  constexpr int B = 2, T = 3;
  const std::int32_t tokens[B * (T + 1)] = {0, 3, 1, 4, 2, 2, 4, 0};
  double total = 0;
  for (int b = 0; b < B; ++b) {
    for (int t = 0; t < T; ++t) {
      const int token = tokens[b * (T + 1) + t], target = tokens[b * (T + 1) + t + 1];
      double x[C], mean = 0, var = 0;
      for (int c = 0; c < C; ++c) {
        x[c] = double(wte[token * C + c]) + wpe[t * C + c] + tensors[7].second[c] +
               tensors[13].second[c];
        mean += x[c] / C;
      }
      for (int c = 0; c < C; ++c) var += (x[c] - mean) * (x[c] - mean) / C;
      const double rstd = 1.0 / std::sqrt(var + 1e-5);
      double h[C];
      for (int c = 0; c < C; ++c) {
        h[c] = (x[c] - mean) * rstd * tensors[14].second[c] + tensors[15].second[c];
      }
      double logits[V], max_logit = -1e300;
      for (int v = 0; v < V; ++v) {
        logits[v] = 0;
        for (int c = 0; c < C; ++c) logits[v] += h[c] * wte[v * C + c];
        max_logit = std::max(max_logit, logits[v]);
      }
      double sum = 0;
      for (int v = 0; v < V; ++v) sum += std::exp(logits[v] - max_logit);
      total += max_logit + std::log(sum) - logits[target];
    }
  }
  const double reference = total / (B * T);
  EXPECT_NEAR(model.evaluate(tokens, B, T), reference, 1e-5);
}

TEST(Llmc, Bf16FilesHoldTheRoundedValues) {
  TempDir dir;
  DenseFp32 model(tiny_config(), 1);
  const fs::path path = dir.path() / "model_bf16.bin";
  save_llmc(path, model, LlmcVersion::bf16);
  const auto bytes = read_bytes(path);
  EXPECT_EQ(bytes.size(), 1024 + 2 * model.num_parameters());
  EXPECT_EQ(header_field(bytes, 1), 5);

  DenseFp32 restored(read_llmc_config(path), 2);
  load_llmc(path, restored);
  for (const TensorInfo& tensor : model.parameters().layout().tensors()) {
    const auto original = model.parameters().read(tensor);
    const auto loaded = restored.parameters().read(tensor);
    for (std::size_t i = 0; i < original.size(); ++i) {
      const float rounded = detail::bf16_to_float(detail::float_to_bf16(original[i]));
      ASSERT_EQ(loaded[i], rounded) << tensor.name << "[" << i << "]";
    }
  }
  // Rounding is to nearest even: 1 + 2^-8 lies halfway between 1 and 1 + 2^-7 and goes to 1.
  EXPECT_EQ(detail::bf16_to_float(detail::float_to_bf16(1.0f + 1.0f / 256)), 1.0f);
}

class LlmcErrors : public ::testing::Test {
 protected:
  void SetUp() override {
    save_llmc(path_, model_);
    bytes_ = read_bytes(path_);
  }
  fs::path write_variant(const std::vector<char>& bytes) {
    const fs::path path = dir_.path() / "variant.bin";
    write_bytes(path, bytes);
    return path;
  }

  TempDir dir_;
  DenseFp32 model_{tiny_config(), 1};
  fs::path path_ = dir_.path() / "good.bin";
  std::vector<char> bytes_;
};

TEST_F(LlmcErrors, WrongMagic) {
  set_header_field(bytes_, 0, 20240327);
  expect_error(write_variant(bytes_), model_, {"variant.bin", "magic", "20240327"});
}

TEST_F(LlmcErrors, UnsupportedVersion) {
  set_header_field(bytes_, 1, 4);
  expect_error(write_variant(bytes_), model_, {"variant.bin", "version", "4"});
}

TEST_F(LlmcErrors, TruncatedFile) {
  expect_error(write_variant({bytes_.begin(), bytes_.end() - 4}), model_,
               {"variant.bin", "truncated"});
  expect_error(write_variant({bytes_.begin(), bytes_.begin() + 100}), model_,
               {"variant.bin", "truncated", "header"});
}

TEST_F(LlmcErrors, TrailingBytes) {
  bytes_.insert(bytes_.end(), {'x', 'y', 'z'});
  expect_error(write_variant(bytes_), model_, {"variant.bin", "3 trailing bytes"});
}

TEST_F(LlmcErrors, MismatchedConfigNamesTheField) {
  ModelConfig deeper = tiny_config();
  deeper.n_layer = 3;
  DenseFp32 other(deeper, 1);
  expect_error(path_, other, {"good.bin", "n_layer", "is 2 in the file but 3 in the model"});
}

TEST_F(LlmcErrors, PaddedVocabMustMatch) {
  set_header_field(bytes_, 7, 256);
  expect_error(write_variant(bytes_), model_, {"padded_vocab_size", "256", "128"});
  set_header_field(bytes_, 7, 16);
  expect_error(write_variant(bytes_), model_, {"padded_vocab_size", "smaller than"});
}

TEST_F(LlmcErrors, NonPositiveHeaderField) {
  set_header_field(bytes_, 5, 0);
  expect_error(write_variant(bytes_), model_, {"n_head", "must be positive"});
}

TEST_F(LlmcErrors, NonFiniteValueNamesTheTensor) {
  const float nan = std::nanf("");
  // The first value of qkvw follows the header, wte, wpe, ln1w and ln1b.
  const ModelConfig c = tiny_config();
  const std::size_t offset =
      1024 + 4 * (std::size_t(c.padded_vocab_size()) * c.d_model + c.max_seq_len * c.d_model +
                  2 * c.n_layer * c.d_model);
  std::memcpy(bytes_.data() + offset, &nan, 4);
  expect_error(write_variant(bytes_), model_, {"qkvw", "non-finite"});
}

TEST_F(LlmcErrors, NonzeroPaddedRowsAreIgnored) {
  const float big = 1e30f;
  const std::size_t last_padded = 1024 + 4 * (std::size_t(tiny_config().padded_vocab_size()) *
                                                  tiny_config().d_model -
                                              1);
  std::memcpy(bytes_.data() + last_padded, &big, 4);
  DenseFp32 restored(tiny_config(), 2);
  load_llmc(write_variant(bytes_), restored);
  const std::size_t n = model_.parameters().layout().size();
  EXPECT_EQ(std::memcmp(model_.parameters().values(), restored.parameters().values(), n * 4), 0);
}

TEST_F(LlmcErrors, MissingFileAndUnwritableDirectory) {
  expect_error(dir_.path() / "missing.bin", model_, {"missing.bin"});
  EXPECT_THROW(save_llmc(dir_.path() / "no_such_dir" / "m.bin", model_), Error);
  EXPECT_THROW(read_llmc_config(dir_.path() / "missing.bin"), Error);
}

}  // namespace
}  // namespace llmc_tests
}  // namespace lightgpt::testing

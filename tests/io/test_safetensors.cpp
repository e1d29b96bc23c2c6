// safetensors files of the dense GPT-2: a file assembled here byte by byte (hand-written JSON,
// transformers' names, Conv1D weights stored [in, out], mixed dtypes) loads with every value in
// its place; lightgpt's own files are checked against their raw bytes, round trip in every dtype,
// and give the same loss as the llm.c export; every malformed file is an error that says what.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <lightgpt/io/safetensors.hpp>
#include <map>
#include <string>
#include <vector>

#include "instances.hpp"
#include "scratch.hpp"

namespace lightgpt::testing {
namespace safetensors_tests {
namespace {

namespace fs = std::filesystem;

// One tensor of a hand-made file: the JSON entry is written as text, the data as given.
struct RawTensor {
  std::string name, dtype;
  std::vector<std::int64_t> shape;
  std::vector<char> data;
};

std::vector<char> f32_bytes(const std::vector<float>& values) {
  std::vector<char> bytes(values.size() * 4);
  std::memcpy(bytes.data(), values.data(), bytes.size());
  return bytes;
}

// The header as JSON text, offsets laid out back to back unless `offsets` overrides them.
std::string header_text(const std::vector<RawTensor>& tensors,
                        const std::map<std::string, std::pair<long long, long long>>& offsets = {},
                        const std::string& metadata = "") {
  std::string json = "{";
  if (!metadata.empty()) json += "\"__metadata__\":" + metadata + ",";
  long long at = 0;
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const RawTensor& t = tensors[i];
    long long begin = at, end = at + static_cast<long long>(t.data.size());
    if (const auto it = offsets.find(t.name); it != offsets.end()) {
      begin = it->second.first;
      end = it->second.second;
    }
    at += static_cast<long long>(t.data.size());
    json += (i ? "," : "") + std::string("\"") + t.name + "\":{\"dtype\":\"" + t.dtype +
            "\",\"shape\":[";
    for (std::size_t d = 0; d < t.shape.size(); ++d) {
      json += (d ? "," : "") + std::to_string(t.shape[d]);
    }
    json += "],\"data_offsets\":[" + std::to_string(begin) + "," + std::to_string(end) + "]}";
  }
  return json + "}";
}

std::vector<char> file_bytes(const std::string& header, const std::vector<RawTensor>& tensors) {
  std::vector<char> bytes(8);
  const std::uint64_t length = header.size();
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((length >> (8 * i)) & 0xff);
  bytes.insert(bytes.end(), header.begin(), header.end());
  for (const RawTensor& t : tensors) bytes.insert(bytes.end(), t.data.begin(), t.data.end());
  return bytes;
}

void write_file(const fs::path& path, const std::vector<RawTensor>& tensors) {
  write_bytes(path, file_bytes(header_text(tensors), tensors));
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

// The GPT-2 tensors of a config V = 5, T = 4, L = 2, C = 4, named as transformers names them.
// Value k of tensor number n is n + k / 64 (exact in F32, F16 and BF16 for these sizes).
constexpr int kV = 5, kT = 4, kL = 2, kC = 4;

float hand_value(int tensor, std::size_t k) { return float(tensor) + float(k) / 64.0f; }

std::vector<RawTensor> hand_gpt2(const std::string& prefix = "transformer.") {
  std::vector<RawTensor> tensors;
  auto add = [&](const std::string& name, std::vector<std::int64_t> shape) {
    std::size_t count = 1;
    for (std::int64_t d : shape) count *= std::size_t(d);
    std::vector<float> values(count);
    for (std::size_t k = 0; k < count; ++k) values[k] = hand_value(int(tensors.size()), k);
    tensors.push_back({prefix + name, "F32", shape, f32_bytes(values)});
  };
  add("wte.weight", {kV, kC});
  add("wpe.weight", {kT, kC});
  for (int l = 0; l < kL; ++l) {
    const std::string h = "h." + std::to_string(l) + ".";
    add(h + "ln_1.weight", {kC});
    add(h + "ln_1.bias", {kC});
    add(h + "attn.c_attn.weight", {kC, 3 * kC});
    add(h + "attn.c_attn.bias", {3 * kC});
    add(h + "attn.c_proj.weight", {kC, kC});
    add(h + "attn.c_proj.bias", {kC});
    add(h + "ln_2.weight", {kC});
    add(h + "ln_2.bias", {kC});
    add(h + "mlp.c_fc.weight", {kC, 4 * kC});
    add(h + "mlp.c_fc.bias", {4 * kC});
    add(h + "mlp.c_proj.weight", {4 * kC, kC});
    add(h + "mlp.c_proj.bias", {kC});
  }
  add("ln_f.weight", {kC});
  add("ln_f.bias", {kC});
  return tensors;
}

ModelConfig hand_config() {
  ModelConfig config;
  config.vocab_size = kV;
  config.max_seq_len = kT;
  config.n_layer = kL;
  config.n_head = 2;
  config.d_model = kC;
  return config;
}

std::size_t index_of(const std::vector<RawTensor>& tensors, const std::string& name) {
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    if (tensors[i].name == name) return i;
  }
  ADD_FAILURE() << "no " << name;
  return 0;
}

// Checks every loaded value against the hand-set one, computing where each GPT-2 element lands in
// lightgpt's stacked [L, out, in] tensors independently of the library's mapping table.
void check_hand_values(const DenseFp32& model, const std::vector<RawTensor>& file,
                       const std::string& prefix) {
  const ParameterLayout& layout = model.parameters().layout();
  auto lightgpt = [&](const std::string& name) { return model.parameters().read(layout.at(name)); };
  auto expect_copy = [&](const std::string& ours, const std::string& theirs, int layer,
                         std::size_t slice) {
    const auto values = lightgpt(ours);
    const int n = int(index_of(file, prefix + theirs));
    for (std::size_t k = 0; k < slice; ++k) {
      ASSERT_EQ(values[layer * slice + k], hand_value(n, k)) << ours << " layer " << layer;
    }
  };
  // Conv1D weight [in, out] at (i, j) is lightgpt's [out, in] at (j, i).
  auto expect_transposed = [&](const std::string& ours, const std::string& theirs, int layer,
                               std::size_t in, std::size_t out) {
    const auto values = lightgpt(ours);
    const int n = int(index_of(file, prefix + theirs));
    for (std::size_t i = 0; i < in; ++i) {
      for (std::size_t j = 0; j < out; ++j) {
        ASSERT_EQ(values[layer * in * out + j * in + i], hand_value(n, i * out + j))
            << ours << " layer " << layer << " (" << i << ", " << j << ")";
      }
    }
  };
  expect_copy("wte", "wte.weight", 0, kV * kC);
  const auto wte = lightgpt("wte");
  for (std::size_t k = kV * kC; k < wte.size(); ++k) ASSERT_EQ(wte[k], 0.0f) << "padded row";
  expect_copy("wpe", "wpe.weight", 0, kT * kC);
  for (int l = 0; l < kL; ++l) {
    const std::string h = "h." + std::to_string(l) + ".";
    expect_copy("ln1w", h + "ln_1.weight", l, kC);
    expect_copy("ln1b", h + "ln_1.bias", l, kC);
    expect_transposed("qkvw", h + "attn.c_attn.weight", l, kC, 3 * kC);
    expect_copy("qkvb", h + "attn.c_attn.bias", l, 3 * kC);
    expect_transposed("attprojw", h + "attn.c_proj.weight", l, kC, kC);
    expect_copy("attprojb", h + "attn.c_proj.bias", l, kC);
    expect_copy("ln2w", h + "ln_2.weight", l, kC);
    expect_copy("ln2b", h + "ln_2.bias", l, kC);
    expect_transposed("fcw", h + "mlp.c_fc.weight", l, kC, 4 * kC);
    expect_copy("fcb", h + "mlp.c_fc.bias", l, 4 * kC);
    expect_transposed("fcprojw", h + "mlp.c_proj.weight", l, 4 * kC, kC);
    expect_copy("fcprojb", h + "mlp.c_proj.bias", l, kC);
  }
  expect_copy("lnfw", "ln_f.weight", 0, kC);
  expect_copy("lnfb", "ln_f.bias", 0, kC);
}

TEST(Safetensors, HandWrittenGpt2FileLoadsEveryValueInItsPlace) {
  TempDir dir;
  std::vector<RawTensor> file = hand_gpt2();
  // Buffers of old exports are skipped; a tied lm_head equal to wte is accepted.
  file.push_back({"transformer.h.0.attn.bias", "F32", {1, 1, 2, 2}, f32_bytes({1, 0, 1, 1})});
  file.push_back({"transformer.h.1.attn.masked_bias", "F32", {}, f32_bytes({-1e4f})});
  file.push_back({"lm_head.weight", "F32", {kV, kC}, file[0].data});
  write_file(dir / "model.safetensors", file);
  std::ofstream(dir / "config.json") << R"({"model_type": "gpt2", "n_head": 2, "n_embd": 4})";

  const ModelConfig config = read_safetensors_config(dir / "model.safetensors");
  EXPECT_EQ(config, hand_config());
  DenseFp32 model(config, 1);
  load_safetensors(dir / "model.safetensors", model);
  check_hand_values(model, file, "transformer.");
}

TEST(Safetensors, NamesWithoutTheTransformerPrefixAndOtherDtypesLoad) {
  TempDir dir;
  std::vector<RawTensor> file = hand_gpt2("");
  // wpe as F16 and h.0.ln_1.bias as BF16: their hand values n + k/64 are exact in both.
  auto to16 = [](RawTensor& t, bool bf16) {
    std::vector<char> bytes(t.data.size() / 2);
    for (std::size_t k = 0; k < bytes.size() / 2; ++k) {
      float value;
      std::memcpy(&value, t.data.data() + 4 * k, 4);
      std::uint32_t bits;
      std::memcpy(&bits, &value, 4);
      // Exact values: bf16 is the top half; f16 re-biases the exponent (15 instead of 127).
      const std::uint16_t half =
          bf16 ? std::uint16_t(bits >> 16)
               : std::uint16_t(((bits >> 31) << 15) | ((((bits >> 23) & 0xff) - 112) << 10) |
                               ((bits >> 13) & 0x3ff));
      std::memcpy(bytes.data() + 2 * k, &half, 2);
    }
    t.data = bytes;
    t.dtype = bf16 ? "BF16" : "F16";
  };
  to16(file[index_of(file, "wpe.weight")], false);
  to16(file[index_of(file, "h.0.ln_1.bias")], true);
  // wpe's first value is 1.0 + 0/64 = 1: F16 0x3C00.
  EXPECT_EQ(static_cast<unsigned char>(file[1].data[1]), 0x3C);
  write_file(dir / "model.safetensors", file);

  DenseFp32 model(hand_config(), 1);
  load_safetensors(dir / "model.safetensors", model);
  check_hand_values(model, hand_gpt2(""), "");
}

// The header of a file lightgpt wrote, parsed here independently.
nlohmann::json raw_header(const fs::path& path, std::uint64_t& data_start) {
  const std::vector<char> bytes = read_bytes(path);
  std::uint64_t length;
  std::memcpy(&length, bytes.data(), 8);
  data_start = 8 + length;
  EXPECT_EQ(data_start % 8, 0u);
  return nlohmann::json::parse(bytes.begin() + 8, bytes.begin() + 8 + std::ptrdiff_t(length));
}

TEST(Safetensors, WrittenFileUsesGpt2NamesLayoutsAndTheRealVocabulary) {
  TempDir dir;
  const ModelConfig config = tiny_config();
  DenseFp32 model(config, 1);
  const fs::path path = dir / "model.safetensors";
  save_safetensors(path, model);
  EXPECT_FALSE(fs::exists(dir / "model.safetensors.tmp"));

  std::uint64_t data_start = 0;
  const nlohmann::json header = raw_header(path, data_start);
  EXPECT_EQ(header["__metadata__"]["format"], "pt");
  EXPECT_FALSE(header.contains("lm_head.weight"));
  // 2 embeddings + 12 per layer + ln_f + metadata.
  EXPECT_EQ(header.size(), 2 + 12 * std::size_t(config.n_layer) + 2 + 1);
  const int C = config.d_model;
  EXPECT_EQ(header["transformer.wte.weight"]["shape"],
            nlohmann::json({config.vocab_size, config.d_model}));
  const nlohmann::json& c_attn = header["transformer.h.1.attn.c_attn.weight"];
  EXPECT_EQ(c_attn["dtype"], "F32");
  EXPECT_EQ(c_attn["shape"], nlohmann::json({C, 3 * C}));

  const std::vector<char> bytes = read_bytes(path);
  const auto qkvw = model.parameters().read(model.parameters().layout().at("qkvw"));
  const std::uint64_t begin = c_attn["data_offsets"][0].get<std::uint64_t>();
  for (int i = 0; i < C; ++i) {
    for (int j = 0; j < 3 * C; ++j) {
      float stored;
      std::memcpy(&stored, bytes.data() + data_start + begin + 4 * (i * 3 * C + j), 4);
      ASSERT_EQ(stored, qkvw[std::size_t(3 * C * C) + std::size_t(j) * C + i]) << i << ", " << j;
    }
  }
  const auto wte = header["transformer.wte.weight"]["data_offsets"];
  EXPECT_EQ(wte[1].get<std::uint64_t>() - wte[0].get<std::uint64_t>(),
            4u * config.vocab_size * config.d_model);
  EXPECT_EQ(read_safetensors_config(path), config);
}

template <class Model>
void expect_round_trip(SafetensorsDtype dtype, ModelConfig config, double (*round)(double)) {
  TempDir dir;
  Model model(config, 1);
  save_safetensors(dir / "m.safetensors", model, dtype);
  Model restored(read_safetensors_config(dir / "m.safetensors"), 2);
  load_safetensors(dir / "m.safetensors", restored);
  for (const TensorInfo& tensor : model.parameters().layout().tensors()) {
    const auto original = model.parameters().read(tensor);
    const auto loaded = restored.parameters().read(tensor);
    for (std::size_t i = 0; i < original.size(); ++i) {
      ASSERT_EQ(double(loaded[i]), round(double(original[i]))) << tensor.name << "[" << i << "]";
    }
  }
}

double exact(double x) { return x; }
double to_f32(double x) { return double(float(x)); }
double to_bf16(double x) { return double(detail::bf16_to_float(detail::float_to_bf16(float(x)))); }
double to_f16(double x) { return double(detail::half_to_float_bits(detail::half_bits(float(x)))); }

TEST(Safetensors, DenseRoundTripsInEveryDtype) {
  expect_round_trip<DenseFp32>(SafetensorsDtype::f32, tiny_config(), exact);
  expect_round_trip<DenseFp32>(SafetensorsDtype::bf16, tiny_config(), to_bf16);
  expect_round_trip<DenseFp32>(SafetensorsDtype::f16, tiny_config(), to_f16);
  expect_round_trip<DenseFp64>(SafetensorsDtype::f64, tiny_config(), exact);
  expect_round_trip<DenseFp64>(SafetensorsDtype::f32, tiny_config(), to_f32);
}

TEST(Safetensors, MtpAdaptersTravelUnderLightgptNames) {
  ModelConfig config = tiny_config();
  config.options.set("mtp.adapter", true);
  expect_round_trip<Mtp2Fp64>(SafetensorsDtype::f64, config, exact);
  TempDir dir;
  Mtp2Fp64 model(config, 1);
  save_safetensors(dir / "m.safetensors", model);
  std::uint64_t data_start = 0;
  const nlohmann::json header = raw_header(dir / "m.safetensors", data_start);
  EXPECT_TRUE(header.contains("mtp_adapter_w"));
  EXPECT_TRUE(header.contains("transformer.h.0.attn.c_attn.weight"));
  // Without the adapters' tensors the file does not load into a model that has them.
  DenseFp32 plain(tiny_config(), 1);
  save_safetensors(dir / "plain.safetensors", plain);
  expect_error([&] { load_safetensors(dir / "plain.safetensors", model); },
               {"plain.safetensors", "config"});
}

TEST(Safetensors, SafetensorsAndLlmcExportsGiveTheSameLoss) {
  TempDir dir;
  const ModelConfig config = tiny_config();
  DenseFp32 model(config, 5);
  save_safetensors(dir / "m.safetensors", model);
  save_llmc(dir / "m.bin", model);
  DenseFp32 from_safetensors(config, 6), from_llmc(config, 7);
  load_safetensors(dir / "m.safetensors", from_safetensors);
  load_llmc(dir / "m.bin", from_llmc);
  const auto tokens = random_tokens(3 * 11, config.vocab_size, 9);
  const float loss = from_llmc.evaluate(tokens.data(), 3, 10);
  EXPECT_EQ(from_safetensors.evaluate(tokens.data(), 3, 10), loss);
  EXPECT_EQ(model.evaluate(tokens.data(), 3, 10), loss);
  // And in bf16 both formats round the same way.
  save_safetensors(dir / "b.safetensors", model, SafetensorsDtype::bf16);
  save_llmc(dir / "b.bin", model, LlmcVersion::bf16);
  load_safetensors(dir / "b.safetensors", from_safetensors);
  load_llmc(dir / "b.bin", from_llmc);
  EXPECT_EQ(from_safetensors.evaluate(tokens.data(), 3, 10),
            from_llmc.evaluate(tokens.data(), 3, 10));
}

TEST(Safetensors, HfConfigJsonDescribesTheModel) {
  const nlohmann::json json = nlohmann::json::parse(gpt2_hf_config_json(ModelConfig::gpt2_small()));
  EXPECT_EQ(json["model_type"], "gpt2");
  EXPECT_EQ(json["n_head"], 12);
  EXPECT_EQ(json["n_embd"], 768);
  EXPECT_EQ(json["n_positions"], 1024);
  EXPECT_EQ(json["vocab_size"], 50257);
  EXPECT_EQ(json["eos_token_id"], 50256);
}

class SafetensorsErrors : public ::testing::Test {
 protected:
  // Writes a variant of the hand-made file and loads it.
  void load(const std::vector<RawTensor>& tensors, const std::string& header) {
    write_bytes(path_, file_bytes(header, tensors));
    load_safetensors(path_, model_);
  }
  void load(const std::vector<RawTensor>& tensors) { load(tensors, header_text(tensors)); }
  void load_bytes(const std::vector<char>& bytes) {
    write_bytes(path_, bytes);
    load_safetensors(path_, model_);
  }

  TempDir dir_;
  fs::path path_ = dir_ / "bad.safetensors";
  DenseFp32 model_{hand_config(), 1};
  std::vector<RawTensor> good_ = hand_gpt2();
};

TEST_F(SafetensorsErrors, TruncatedData) {
  std::vector<char> bytes = file_bytes(header_text(good_), good_);
  bytes.resize(bytes.size() - 3);
  expect_error([&] { load_bytes(bytes); },
               {"bad.safetensors", "transformer.ln_f.bias", "past the end of the file"});
  expect_error(
      [&] {
        load_bytes({bytes.begin(), bytes.begin() + 5});
      },
      {"bad.safetensors", "truncated", "8-byte header length"});
}

TEST_F(SafetensorsErrors, HeaderLengthPastTheEnd) {
  std::vector<char> bytes = file_bytes(header_text(good_), good_);
  const std::uint64_t length = bytes.size();
  std::memcpy(bytes.data(), &length, 8);
  expect_error([&] { load_bytes(bytes); }, {"bad.safetensors", "header length", "runs past"});
  const std::uint64_t huge = std::uint64_t{1} << 62;
  std::memcpy(bytes.data(), &huge, 8);
  expect_error([&] { load_bytes(bytes); }, {"bad.safetensors", "exceeds the format's limit"});
}

TEST_F(SafetensorsErrors, OverlappingGappedAndMissizedOffsets) {
  // wpe (16 floats) claims the last 32 bytes of wte's 80.
  expect_error(
      [&] {
        load(good_, header_text(good_, {{"transformer.wpe.weight", {48, 112}}}));
      },
      {"bad.safetensors", "'transformer.wpe.weight'", "overlaps", "transformer.wte"});
  std::vector<RawTensor> gap = good_;
  gap[0].data.resize(gap[0].data.size() + 4);
  expect_error(
      [&] {
        load(gap, header_text(gap, {{"transformer.wte.weight", {0, 80}}}));
      },
      {"transformer.wpe.weight", "unused"});
  expect_error(
      [&] {
        load(good_, header_text(good_, {{"transformer.wte.weight", {0, 76}}}));
      },
      {"'transformer.wte.weight'", "F32", "[5, 4]", "80 bytes", "span 76"});
  expect_error(
      [&] {
        load(good_, header_text(good_, {{"transformer.wte.weight", {80, 0}}}));
      },
      {"'transformer.wte.weight'", "end before they begin"});
}

TEST_F(SafetensorsErrors, UnknownAndNonFloatDtypes) {
  std::vector<RawTensor> tensors = good_;
  tensors[1].dtype = "F7";
  expect_error([&] { load(tensors); },
               {"bad.safetensors", "'transformer.wpe.weight'", "unknown dtype 'F7'"});
  tensors[1].dtype = "I32";
  expect_error([&] { load(tensors); }, {"'transformer.wpe.weight'", "dtype I32", "F32, BF16"});
}

TEST_F(SafetensorsErrors, MissingUnexpectedAndMisshapenTensors) {
  std::vector<RawTensor> missing(good_.begin(), good_.end() - 1);
  expect_error([&] { load(missing); }, {"bad.safetensors", "no tensor 'transformer.ln_f.bias'"});
  std::vector<RawTensor> extra = good_;
  extra.push_back({"transformer.h.0.attn.rotary", "F32", {1}, f32_bytes({1})});
  expect_error([&] { load(extra); }, {"'transformer.h.0.attn.rotary'", "does not have"});
  std::vector<RawTensor> transposed = good_;
  const std::size_t c_attn = index_of(transposed, "transformer.h.0.attn.c_attn.weight");
  transposed[c_attn].shape = {3 * kC, kC};
  expect_error([&] { load(transposed); }, {"c_attn.weight", "[12, 4]", "expects [4, 12]"});
  std::vector<RawTensor> untied = good_;
  std::vector<char> head = untied[0].data;
  head[0] ^= 1;
  untied.push_back({"lm_head.weight", "F32", {kV, kC}, head});
  expect_error([&] { load(untied); }, {"lm_head.weight", "ties"});
}

TEST_F(SafetensorsErrors, MalformedHeaders) {
  expect_error([&] { load(good_, "{\"a\": "); }, {"bad.safetensors", "not valid JSON"});
  expect_error([&] { load({}, "[1, 2]"); }, {"not a JSON object"});
  std::string twice = header_text(good_);
  twice.insert(1,
               "\"transformer.wte.weight\":{\"dtype\":\"F32\",\"shape\":[0],"
               "\"data_offsets\":[0,0]},");
  expect_error([&] { load(good_, twice); }, {"'transformer.wte.weight' twice"});
  expect_error([&] { load(good_, header_text(good_, {}, "{\"format\": 1}")); },
               {"__metadata__", "'format'", "not a string"});
  std::string negative = header_text(good_);
  negative.replace(negative.find("[5,4]"), 5, "[-5,4]");
  expect_error([&] { load(good_, negative); }, {"non-negative integer"});
}

TEST_F(SafetensorsErrors, ConfigFromAFileWithoutMetadataNeedsConfigJson) {
  write_bytes(path_, file_bytes(header_text(good_), good_));
  expect_error([&] { read_safetensors_config(path_); }, {"bad.safetensors", "config.json"});
  std::ofstream(dir_ / "config.json") << "{\"n_head\": \"two\"}";
  expect_error([&] { read_safetensors_config(path_); }, {"config.json", "n_head"});
  std::ofstream(dir_ / "config.json") << "{\"n_head\": 3}";
  expect_error([&] { read_safetensors_config(path_); }, {"bad.safetensors", "divisible"});
}

}  // namespace
}  // namespace safetensors_tests
}  // namespace lightgpt::testing

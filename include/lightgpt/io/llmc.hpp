// llm.c model files (gpt2_124M.bin and friends): a 256 × int32 header, then the 16 parameter
// tensors of the dense GPT-2 in llm.c's order, back to back, in fp32 (version 3) or bf16
// (version 5). The dense composition lays its tensors out in exactly that order, so reading and
// writing is one stream per tensor; the only difference is that lightgpt owns the padded wte rows
// (always zero here), while a file's padded rows are ignored on read.
#pragma once

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <initializer_list>
#include <limits>
#include <string>
#include <system_error>
#include <type_traits>
#include <vector>

#include "../core/config.hpp"
#include "../core/error.hpp"
#include "../core/layout.hpp"
#include "../core/precision.hpp"
#include "../heads/dense.hpp"
#include "../mixers/attention/mixer.hpp"
#include "container.hpp"

namespace lightgpt {

static_assert(std::endian::native == std::endian::little,
              "llm.c files are little-endian; lightgpt/io/llmc.hpp reads them with plain copies");

inline constexpr std::int32_t kLlmcMagic = 20240326;
inline constexpr std::size_t kLlmcHeaderInts = 256;
inline constexpr std::size_t kLlmcHeaderBytes = kLlmcHeaderInts * sizeof(std::int32_t);

// The header's version field: the element type of the parameters (both pad the vocabulary).
enum class LlmcVersion : std::int32_t { fp32 = 3, bf16 = 5 };

struct LlmcHeader {
  ModelConfig config;
  int padded_vocab_size = 0;
  LlmcVersion version = LlmcVersion::fp32;
};

namespace detail {

template <class Head>
struct is_dense_head : std::false_type {};
template <class Mtp>
struct is_dense_head<DenseHead<Mtp>> : std::true_type {};

template <class Model>
inline constexpr bool llmc_compatible =
    is_dense_head<typename Model::head_policy>::value &&
    std::is_same_v<typename Model::mixer_policy, Attention>;

// Header slots of the config fields.
struct LlmcConfigField {
  int index;
  const char* name;
  int ModelConfig::*member;
};
inline constexpr LlmcConfigField kLlmcConfigFields[] = {
    {2, "max_seq_len", &ModelConfig::max_seq_len},
    {3, "vocab_size", &ModelConfig::vocab_size},
    {4, "n_layer", &ModelConfig::n_layer},
    {5, "n_head", &ModelConfig::n_head},
    {6, "d_model", &ModelConfig::d_model}};

struct LlmcTensor {
  const char* name;
  std::size_t numel;
};

// llm.c's parameter order and sizes for a config; the file size and the model's layout are both
// checked against this list. Every product is checked, so no config can wrap a size.
inline std::vector<LlmcTensor> llmc_tensors(const ModelConfig& c) {
  const std::uint64_t V = static_cast<std::uint64_t>(c.padded_vocab_size()),
                      T = static_cast<std::uint64_t>(c.max_seq_len),
                      L = static_cast<std::uint64_t>(c.n_layer),
                      C = static_cast<std::uint64_t>(c.d_model);
  auto n = [](std::initializer_list<std::uint64_t> factors) {
    std::uint64_t product = 1;
    for (std::uint64_t f : factors) product = checked_mul(product, f, "llm.c tensor size");
    LIGHTGPT_CHECK(product <= std::numeric_limits<std::size_t>::max(), "llm.c tensor of ",
                   product, " values does not fit in memory");
    return static_cast<std::size_t>(product);
  };
  return {{"wte", n({V, C})},           {"wpe", n({T, C})},          {"ln1w", n({L, C})},
          {"ln1b", n({L, C})},          {"qkvw", n({L, 3, C, C})},   {"qkvb", n({L, 3, C})},
          {"attprojw", n({L, C, C})},   {"attprojb", n({L, C})},     {"ln2w", n({L, C})},
          {"ln2b", n({L, C})},          {"fcw", n({L, 4, C, C})},    {"fcb", n({L, 4, C})},
          {"fcprojw", n({L, C, 4, C})}, {"fcprojb", n({L, C})},      {"lnfw", n({C})},
          {"lnfb", n({C})}};
}

inline std::size_t llmc_element_bytes(LlmcVersion version) {
  return version == LlmcVersion::bf16 ? 2 : 4;
}

inline std::uint64_t llmc_file_bytes(const ModelConfig& config, LlmcVersion version) {
  std::uint64_t bytes = kLlmcHeaderBytes;
  for (const LlmcTensor& tensor : llmc_tensors(config)) {
    bytes = checked_add(bytes,
                        checked_mul(tensor.numel, llmc_element_bytes(version), "llm.c file size"),
                        "llm.c file size");
  }
  return bytes;
}

inline std::string llmc_source(const std::filesystem::path& path) {
  return "llm.c file '" + path.string() + "'";
}

// The model's tensors must be llm.c's, in llm.c's order; the static_assert on the composition
// makes this hold, the check keeps it honest if a layout ever changes.
inline void check_llmc_layout(const ParameterLayout& layout, const ModelConfig& config) {
  const std::vector<LlmcTensor> expected = llmc_tensors(config);
  LIGHTGPT_CHECK(layout.tensors().size() == expected.size(), "this model has ",
                 layout.tensors().size(), " parameter tensors; llm.c's GPT-2 has ",
                 expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const TensorInfo& tensor = layout.tensors()[i];
    LIGHTGPT_CHECK(tensor.name == expected[i].name && tensor.numel == expected[i].numel,
                   "this model's parameter #", i, " is '", tensor.name, "' (", tensor.numel,
                   " values); llm.c expects '", expected[i].name, "' (", expected[i].numel, ")");
  }
}

// Closes on destruction; a writer also removes its unfinished temporary file.
struct LlmcFile {
  std::FILE* file = nullptr;
  std::filesystem::path remove_on_failure;
  ~LlmcFile() {
    if (file) std::fclose(file);
    if (!remove_on_failure.empty()) {
      std::error_code ignored;
      std::filesystem::remove(remove_on_failure, ignored);
    }
  }
};

}  // namespace detail

// Reads and checks the header: magic, version, every config field, the padded vocabulary, and
// that the file holds exactly the header plus the tensors that config implies.
inline LlmcHeader read_llmc_header(const std::filesystem::path& path) {
  const std::string source = detail::llmc_source(path);
  detail::LlmcFile in;
  in.file = std::fopen(path.c_str(), "rb");
  LIGHTGPT_CHECK(in.file != nullptr, "cannot open ", source, ": ", std::strerror(errno));
  std::error_code error;
  const std::uintmax_t file_bytes = std::filesystem::file_size(path, error);
  LIGHTGPT_CHECK(!error, "cannot stat ", source, ": ", error.message());
  LIGHTGPT_CHECK(file_bytes >= kLlmcHeaderBytes, source, " is truncated: ", file_bytes,
                 " bytes, shorter than the ", kLlmcHeaderBytes, "-byte header");
  std::int32_t header[kLlmcHeaderInts];
  LIGHTGPT_CHECK(std::fread(header, sizeof(header), 1, in.file) == 1, source,
                 ": cannot read the header");

  LIGHTGPT_CHECK(header[0] == kLlmcMagic, source, ": header[0] (magic) is ", header[0],
                 ", expected ", kLlmcMagic, " (not an llm.c model file)");
  const std::int32_t version = header[1];
  LIGHTGPT_CHECK(version == static_cast<std::int32_t>(LlmcVersion::fp32) ||
                     version == static_cast<std::int32_t>(LlmcVersion::bf16),
                 source, ": header[1] (version) is ", version,
                 "; supported are 3 (fp32) and 5 (bf16)");

  LlmcHeader result;
  result.version = static_cast<LlmcVersion>(version);
  for (const detail::LlmcConfigField& field : detail::kLlmcConfigFields) {
    LIGHTGPT_CHECK(header[field.index] > 0, source, ": header[", field.index, "] (", field.name,
                   ") must be positive, got ", header[field.index]);
    result.config.*(field.member) = header[field.index];
  }
  const ModelConfig& config = result.config;
  LIGHTGPT_CHECK(config.d_model % config.n_head == 0, source, ": header[6] (d_model = ",
                 config.d_model, ") is not divisible by header[5] (n_head = ", config.n_head, ")");
  try {
    config.validate();
  } catch (const Error& error) {
    throw Error(detail::concat(source, ": the header's config is not one lightgpt can build: ",
                               error.message()));
  }
  result.padded_vocab_size = header[7];
  LIGHTGPT_CHECK(header[7] >= config.vocab_size, source, ": header[7] (padded_vocab_size = ",
                 header[7], ") is smaller than header[3] (vocab_size = ", config.vocab_size, ")");
  LIGHTGPT_CHECK(header[7] == config.padded_vocab_size(), source,
                 ": header[7] (padded_vocab_size) is ", header[7],
                 "; lightgpt pads vocab_size = ", config.vocab_size, " to a multiple of ",
                 kVocabPadding, ", i.e. ", config.padded_vocab_size());

  const std::uint64_t expected = detail::llmc_file_bytes(config, result.version);
  LIGHTGPT_CHECK(file_bytes >= expected, source, " is truncated: its header implies ", expected,
                 " bytes, the file has ", file_bytes);
  LIGHTGPT_CHECK(file_bytes == expected, source, " has ", file_bytes - expected,
                 " trailing bytes after the ", expected, " bytes its header implies");
  return result;
}

inline ModelConfig read_llmc_config(const std::filesystem::path& path) {
  return read_llmc_header(path).config;
}

// Loads an llm.c file into a model built with the file's config (read_llmc_config). Everything
// structural is checked before any parameter changes; a non-finite value is reported by tensor,
// and then the tensors before it have already been loaded.
template <class Model>
void load_llmc(const std::filesystem::path& path, Model& model) {
  static_assert(detail::llmc_compatible<Model>,
                "load_llmc: llm.c files hold GPT-2's dense model; the model must be "
                "GPT<P, DenseHead<MTP<K>>, Attention, Backend>");
  using A = typename Model::A;
  const std::string source = detail::llmc_source(path);
  const LlmcHeader header = read_llmc_header(path);
  const ModelConfig& file = header.config;
  const ModelConfig& mine = model.config();
  for (const detail::LlmcConfigField& field : detail::kLlmcConfigFields) {
    LIGHTGPT_CHECK(file.*(field.member) == mine.*(field.member), source, ": ", field.name,
                   " (header[", field.index, "]) is ", file.*(field.member),
                   " in the file but ", mine.*(field.member), " in the model");
  }
  const ParameterLayout& layout = model.parameters().layout();
  detail::check_llmc_layout(layout, mine);

  detail::LlmcFile in;
  in.file = std::fopen(path.c_str(), "rb");
  LIGHTGPT_CHECK(in.file != nullptr, "cannot open ", source, ": ", std::strerror(errno));
  LIGHTGPT_CHECK(std::fseek(in.file, static_cast<long>(kLlmcHeaderBytes), SEEK_SET) == 0, source,
                 ": cannot seek past the header");
  const std::size_t element = detail::llmc_element_bytes(header.version);
  const std::size_t real_wte = static_cast<std::size_t>(mine.vocab_size) * mine.d_model;
  std::vector<unsigned char> raw;
  std::vector<A> values;
  for (const TensorInfo& tensor : layout.tensors()) {
    raw.resize(tensor.numel * element);
    LIGHTGPT_CHECK(std::fread(raw.data(), 1, raw.size(), in.file) == raw.size(), source,
                   ": short read of tensor '", tensor.name, "'");
    values.resize(tensor.numel);
    for (std::size_t i = 0; i < tensor.numel; ++i) {
      if (header.version == LlmcVersion::bf16) {
        bfloat16 bits;
        std::memcpy(&bits.bits, raw.data() + 2 * i, 2);
        values[i] = A(detail::bf16_to_float(bits));
      } else {
        float value;
        std::memcpy(&value, raw.data() + 4 * i, 4);
        values[i] = A(value);
      }
    }
    // Padded vocabulary rows never receive probability; lightgpt keeps them zero.
    const std::size_t used = tensor.name == "wte" ? real_wte : tensor.numel;
    std::fill(values.begin() + static_cast<std::ptrdiff_t>(used), values.end(), A(0));
    for (std::size_t i = 0; i < used; ++i) {
      LIGHTGPT_CHECK(std::isfinite(values[i]), source, ": tensor '", tensor.name,
                     "' holds a non-finite value (", values[i], ") at element ", i);
    }
    model.parameters().write(tensor, values.data());
  }
}

// Writes the model as an llm.c file (fp32 or bf16, rounded to nearest even), atomically and
// durably: `path` is replaced only once the whole file is written and synced. Padded wte rows
// are written as zeros.
template <class Model>
void save_llmc(const std::filesystem::path& path, const Model& model,
               LlmcVersion version = LlmcVersion::fp32) {
  static_assert(detail::llmc_compatible<Model>,
                "save_llmc: llm.c files hold GPT-2's dense model; the model must be "
                "GPT<P, DenseHead<MTP<K>>, Attention, Backend>");
  LIGHTGPT_CHECK(version == LlmcVersion::fp32 || version == LlmcVersion::bf16,
                 "save_llmc: version must be LlmcVersion::fp32 (3) or LlmcVersion::bf16 (5), got ",
                 static_cast<std::int32_t>(version));
  const ModelConfig& config = model.config();
  const ParameterLayout& layout = model.parameters().layout();
  detail::check_llmc_layout(layout, config);

  const std::filesystem::path temp = path.string() + ".tmp";
  detail::remove_stale_temporary(temp);
  detail::LlmcFile out;
  out.file = std::fopen(temp.c_str(), "wb");
  LIGHTGPT_CHECK(out.file != nullptr, "cannot open '", temp.string(),
                 "' for writing: ", std::strerror(errno));
  out.remove_on_failure = temp;
  auto put = [&](const void* data, std::size_t bytes) {
    LIGHTGPT_CHECK(std::fwrite(data, 1, bytes, out.file) == bytes, "writing '", temp.string(),
                   "' failed: ", std::strerror(errno));
  };

  std::int32_t header[kLlmcHeaderInts] = {};
  header[0] = kLlmcMagic;
  header[1] = static_cast<std::int32_t>(version);
  header[2] = config.max_seq_len;
  header[3] = config.vocab_size;
  header[4] = config.n_layer;
  header[5] = config.n_head;
  header[6] = config.d_model;
  header[7] = config.padded_vocab_size();
  put(header, sizeof(header));

  const std::size_t real_wte = static_cast<std::size_t>(config.vocab_size) * config.d_model;
  std::vector<unsigned char> raw;
  for (const TensorInfo& tensor : layout.tensors()) {
    const auto values = model.parameters().read(tensor);
    const std::size_t used = tensor.name == "wte" ? real_wte : tensor.numel;
    const std::size_t element = detail::llmc_element_bytes(version);
    raw.assign(tensor.numel * element, 0);
    for (std::size_t i = 0; i < used; ++i) {
      const float value = static_cast<float>(values[i]);
      LIGHTGPT_CHECK(std::isfinite(value), "save_llmc: tensor '", tensor.name, "' holds ",
                     values[i], " at element ", i, ", not a finite fp32 value");
      if (version == LlmcVersion::bf16) {
        const bfloat16 bits = detail::float_to_bf16(value);
        std::memcpy(raw.data() + 2 * i, &bits.bits, 2);
      } else {
        std::memcpy(raw.data() + 4 * i, &value, 4);
      }
    }
    put(raw.data(), raw.size());
  }

  std::FILE* file = out.file;
  out.file = nullptr;
  detail::commit_temporary(file, temp, path);
  out.remove_on_failure.clear();
}

}  // namespace lightgpt

// Hugging Face safetensors files: an 8-byte little-endian header length, a JSON header naming each
// tensor's dtype, shape and [begin, end) byte span in the data that follows (plus a string map
// `__metadata__`), then the raw row-major data. The dense GPT-2 composition is written under
// transformers' GPT2LMHeadModel names and layouts, so `from_pretrained` opens it; every other
// composition keeps lightgpt's tensor names and records its composition and config in the
// metadata. Reading checks every offset, size and shape against the file before allocating.
#pragma once

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "../core/config.hpp"
#include "../core/error.hpp"
#include "../core/layout.hpp"
#include "../core/precision.hpp"
#include "container.hpp"
#include "llmc.hpp"

namespace lightgpt {

static_assert(std::endian::native == std::endian::little,
              "safetensors files are little-endian; lightgpt/io/safetensors.hpp copies bytes");

// The element types lightgpt writes; reading also accepts every float type among them.
enum class SafetensorsDtype { f32, bf16, f16, f64 };

// The spec's bound on the JSON header; checked before the header is read into memory.
inline constexpr std::uint64_t kMaxSafetensorsHeaderBytes = std::uint64_t{100} << 20;

// Metadata keys lightgpt writes ("format" is what transformers requires to be "pt").
inline constexpr const char* kSafetensorsComposition = "lightgpt.composition";
inline constexpr const char* kSafetensorsConfig = "lightgpt.config";
inline constexpr const char* kSafetensorsNames = "lightgpt.names";  // "gpt2" or "lightgpt"
// Head state that is not a parameter (sections of a checkpoint) is stored as a U8 tensor.
inline constexpr std::string_view kSafetensorsSectionPrefix = "lightgpt.section.";

struct SafetensorsTensor {
  std::string name;
  std::string dtype;
  std::vector<std::int64_t> shape;
  std::uint64_t begin = 0, end = 0;  // byte span inside the data, which starts at data_start
};

struct SafetensorsHeader {
  std::map<std::string, std::string> metadata;
  std::vector<SafetensorsTensor> tensors;  // in the order of their data
  std::uint64_t data_start = 0;            // 8 + the header length

  const SafetensorsTensor* find(std::string_view name) const {
    for (const SafetensorsTensor& tensor : tensors) {
      if (tensor.name == name) return &tensor;
    }
    return nullptr;
  }
};

namespace detail {

inline std::string safetensors_source(const std::filesystem::path& path) {
  return "safetensors file '" + path.string() + "'";
}

// Bytes per element of every dtype the spec names; 0 for a name it does not.
inline std::uint64_t safetensors_element_bytes(std::string_view dtype) {
  static const std::map<std::string, std::uint64_t, std::less<>> sizes = {
      {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E5M2", 1}, {"F8_E4M3", 1},
      {"I16", 2},  {"U16", 2}, {"F16", 2}, {"BF16", 2},    {"I32", 4},
      {"U32", 4},  {"F32", 4}, {"F64", 8}, {"I64", 8},     {"U64", 8}};
  const auto it = sizes.find(dtype);
  return it == sizes.end() ? 0 : it->second;
}

inline const char* safetensors_dtype_name(SafetensorsDtype dtype) {
  switch (dtype) {
    case SafetensorsDtype::bf16:
      return "BF16";
    case SafetensorsDtype::f16:
      return "F16";
    case SafetensorsDtype::f64:
      return "F64";
    case SafetensorsDtype::f32:
      break;
  }
  return "F32";
}

inline std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string text = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    text += (i ? ", " : "") + std::to_string(shape[i]);
  }
  return text + "]";
}

// One tensor entry of the header: exactly dtype, shape and data_offsets, each well formed, and a
// span whose length is the dtype's size times the element count (all in checked arithmetic).
inline SafetensorsTensor parse_safetensors_entry(const std::string& name,
                                                 const nlohmann::json& entry,
                                                 const std::string& source) {
  const std::string where = source + ": tensor '" + name + "'";
  LIGHTGPT_CHECK(entry.is_object(), where, " is not a JSON object");
  for (const auto& [key, value] : entry.items()) {
    LIGHTGPT_CHECK(key == "dtype" || key == "shape" || key == "data_offsets", where,
                   " has the unknown field '", key, "'");
  }
  SafetensorsTensor tensor;
  tensor.name = name;
  LIGHTGPT_CHECK(entry.contains("dtype") && entry["dtype"].is_string(), where,
                 " has no string 'dtype'");
  tensor.dtype = entry["dtype"].get<std::string>();
  const std::uint64_t element = safetensors_element_bytes(tensor.dtype);
  LIGHTGPT_CHECK(element > 0, where, " has the unknown dtype '", tensor.dtype, "'");

  LIGHTGPT_CHECK(entry.contains("shape") && entry["shape"].is_array(), where,
                 " has no 'shape' array");
  std::uint64_t count = 1;
  for (const nlohmann::json& dim : entry["shape"]) {
    LIGHTGPT_CHECK(dim.is_number_unsigned(), where, ": shape ", entry["shape"].dump(),
                   " holds something other than a non-negative integer");
    const auto value = dim.get<std::uint64_t>();
    LIGHTGPT_CHECK(value <= std::uint64_t(std::numeric_limits<std::int64_t>::max()), where,
                   ": dimension ", value, " is too large");
    count = checked_mul(count, value, where + " element count");
    tensor.shape.push_back(static_cast<std::int64_t>(value));
  }

  const nlohmann::json* offsets = entry.contains("data_offsets") ? &entry["data_offsets"] : nullptr;
  LIGHTGPT_CHECK(offsets && offsets->is_array() && offsets->size() == 2 &&
                     (*offsets)[0].is_number_unsigned() && (*offsets)[1].is_number_unsigned(),
                 where, " needs 'data_offsets' as two non-negative integers [begin, end]");
  tensor.begin = (*offsets)[0].get<std::uint64_t>();
  tensor.end = (*offsets)[1].get<std::uint64_t>();
  LIGHTGPT_CHECK(tensor.begin <= tensor.end, where, ": data_offsets [", tensor.begin, ", ",
                 tensor.end, "] end before they begin");
  const std::uint64_t bytes = checked_mul(count, element, where + " byte size");
  LIGHTGPT_CHECK(tensor.end - tensor.begin == bytes, where, ": dtype ", tensor.dtype, " x shape ",
                 shape_text(tensor.shape), " is ", bytes, " bytes, but data_offsets [",
                 tensor.begin, ", ", tensor.end, "] span ", tensor.end - tensor.begin);
  return tensor;
}

}  // namespace detail

// Parses and checks a header given its JSON text and the number of data bytes after it: the
// tensors' spans must tile the data exactly (from 0, in order, without overlap, gap or excess),
// names must be unique, and `__metadata__` must map strings to strings. `source` names the file.
inline SafetensorsHeader parse_safetensors_header(std::string_view json, std::uint64_t data_bytes,
                                                  const std::string& source) {
  // Duplicate keys are an error in the spec; nlohmann keeps the last silently, so the parser's
  // callback sees every top-level key first.
  std::set<std::string> seen;
  std::string duplicate;
  const auto on_event = [&](int depth, nlohmann::json::parse_event_t event,
                            nlohmann::json& parsed) {
    if (event == nlohmann::json::parse_event_t::key && depth == 1 &&
        !seen.insert(parsed.get<std::string>()).second && duplicate.empty()) {
      duplicate = parsed.get<std::string>();
    }
    return true;
  };
  nlohmann::json root;
  try {
    root = nlohmann::json::parse(json.begin(), json.end(), on_event);
  } catch (const nlohmann::json::exception& error) {
    throw Error(detail::concat(source, ": the header is not valid JSON: ", error.what()));
  }
  LIGHTGPT_CHECK(root.is_object(), source, ": the header is not a JSON object");
  LIGHTGPT_CHECK(duplicate.empty(), source, ": the header names '", duplicate, "' twice");

  SafetensorsHeader header;
  for (const auto& [name, entry] : root.items()) {
    if (name == "__metadata__") {
      LIGHTGPT_CHECK(entry.is_object(), source, ": __metadata__ is not a JSON object");
      for (const auto& [key, value] : entry.items()) {
        LIGHTGPT_CHECK(value.is_string(), source, ": __metadata__ entry '", key,
                       "' is not a string (the format allows only strings)");
        header.metadata[key] = value.get<std::string>();
      }
      continue;
    }
    header.tensors.push_back(detail::parse_safetensors_entry(name, entry, source));
  }
  std::stable_sort(header.tensors.begin(), header.tensors.end(),
                   [](const SafetensorsTensor& a, const SafetensorsTensor& b) {
                     return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
                   });
  std::uint64_t expected = 0;
  const SafetensorsTensor* previous = nullptr;
  for (const SafetensorsTensor& tensor : header.tensors) {
    LIGHTGPT_CHECK(tensor.end <= data_bytes, source, ": tensor '", tensor.name,
                   "' has data_offsets [", tensor.begin, ", ", tensor.end,
                   "] past the end of the file (its data holds ", data_bytes, " bytes)");
    LIGHTGPT_CHECK(tensor.begin >= expected, source, ": tensor '", tensor.name, "' (data_offsets [",
                   tensor.begin, ", ", tensor.end, "]) overlaps tensor '",
                   previous ? previous->name : "", "' (which ends at ", expected, ")");
    LIGHTGPT_CHECK(tensor.begin == expected, source, ": tensor '", tensor.name, "' begins at ",
                   tensor.begin, ", leaving the bytes [", expected, ", ", tensor.begin,
                   ") of the data unused");
    expected = tensor.end;
    previous = &tensor;
  }
  LIGHTGPT_CHECK(expected == data_bytes, source, ": ", data_bytes - expected,
                 " bytes after the last tensor's data belong to no tensor");
  return header;
}

// Reads and checks the header of a file: the length word against the file size (and the spec's
// bound) before the header is read, then everything parse_safetensors_header checks.
inline SafetensorsHeader read_safetensors_header(const std::filesystem::path& path) {
  const std::string source = detail::safetensors_source(path);
  detail::LlmcFile in;
  in.file = std::fopen(path.c_str(), "rb");
  LIGHTGPT_CHECK(in.file != nullptr, "cannot open ", source, ": ", std::strerror(errno));
  std::error_code error;
  const std::uintmax_t file_bytes = std::filesystem::file_size(path, error);
  LIGHTGPT_CHECK(!error, "cannot stat ", source, ": ", error.message());
  LIGHTGPT_CHECK(file_bytes >= 8, source, " is truncated: ", file_bytes,
                 " bytes, shorter than the 8-byte header length");
  std::uint64_t header_bytes = 0;
  LIGHTGPT_CHECK(std::fread(&header_bytes, 8, 1, in.file) == 1, source,
                 ": cannot read the header length");
  LIGHTGPT_CHECK(header_bytes <= kMaxSafetensorsHeaderBytes, source, ": the header length ",
                 header_bytes, " exceeds the format's limit of ", kMaxSafetensorsHeaderBytes,
                 " bytes (not a safetensors file?)");
  LIGHTGPT_CHECK(header_bytes <= file_bytes - 8, source, " is truncated: the header length ",
                 header_bytes, " runs past the end of the ", file_bytes, "-byte file");
  std::string json(static_cast<std::size_t>(header_bytes), '\0');
  LIGHTGPT_CHECK(std::fread(json.data(), 1, json.size(), in.file) == json.size(), source,
                 ": short read of the header");
  SafetensorsHeader header = parse_safetensors_header(json, file_bytes - 8 - header_bytes, source);
  header.data_start = 8 + header_bytes;
  return header;
}

namespace detail {

// The values of one float tensor of a checked header, converted to A; a non-float dtype or a
// non-finite value is an Error naming the tensor.
template <class A>
std::vector<A> read_safetensors_values(std::FILE* file, const SafetensorsHeader& header,
                                       const SafetensorsTensor& tensor, const std::string& source) {
  const std::string& dtype = tensor.dtype;
  LIGHTGPT_CHECK(dtype == "F32" || dtype == "BF16" || dtype == "F16" || dtype == "F64", source,
                 ": tensor '", tensor.name, "' has dtype ", dtype,
                 "; parameters must be F32, BF16, F16 or F64");
  const std::uint64_t element = safetensors_element_bytes(dtype);
  const std::size_t count = static_cast<std::size_t>((tensor.end - tensor.begin) / element);
  std::vector<unsigned char> raw(static_cast<std::size_t>(tensor.end - tensor.begin));
  const std::uint64_t at = header.data_start + tensor.begin;
  LIGHTGPT_CHECK(at <= std::uint64_t(std::numeric_limits<off_t>::max()) &&
                     ::fseeko(file, static_cast<off_t>(at), SEEK_SET) == 0,
                 source, ": cannot seek to tensor '", tensor.name, "'");
  LIGHTGPT_CHECK(std::fread(raw.data(), 1, raw.size(), file) == raw.size(), source,
                 ": short read of tensor '", tensor.name, "'");
  std::vector<A> values(count);
  for (std::size_t i = 0; i < count; ++i) {
    const unsigned char* bytes = raw.data() + i * element;
    double value = 0;
    if (dtype == "F32") {
      float f;
      std::memcpy(&f, bytes, 4);
      value = f;
    } else if (dtype == "F64") {
      std::memcpy(&value, bytes, 8);
    } else {
      std::uint16_t bits;
      std::memcpy(&bits, bytes, 2);
      value = dtype == "BF16" ? bf16_to_float(bfloat16::from_bits(bits)) : half_to_float_bits(bits);
    }
    LIGHTGPT_CHECK(std::isfinite(value), source, ": tensor '", tensor.name,
                   "' holds a non-finite value (", value, ") at element ", i);
    values[i] = A(value);
  }
  return values;
}

// One tensor to write: its bytes are produced only when the writer reaches it, so a large model
// never holds a second full copy in memory.
struct SafetensorsOutput {
  std::string name;
  std::string dtype;
  std::vector<std::int64_t> shape;
  std::function<void(std::vector<unsigned char>& bytes)> fill;  // resized by the writer
};

// Encodes values as `dtype` (rounding to nearest even), refusing non-finite ones.
template <class V>
void encode_safetensors_values(const V* values, std::size_t count, SafetensorsDtype dtype,
                               std::vector<unsigned char>& bytes, const std::string& name) {
  for (std::size_t i = 0; i < count; ++i) {
    const double value = static_cast<double>(values[i]);
    LIGHTGPT_CHECK(std::isfinite(value), "save_safetensors: tensor '", name, "' holds ", value,
                   " at element ", i, ", not a finite value");
    switch (dtype) {
      case SafetensorsDtype::f64:
        std::memcpy(bytes.data() + 8 * i, &value, 8);
        break;
      case SafetensorsDtype::f32: {
        const float f = static_cast<float>(value);
        std::memcpy(bytes.data() + 4 * i, &f, 4);
        break;
      }
      case SafetensorsDtype::bf16: {
        const std::uint16_t bits = float_to_bf16(static_cast<float>(value)).bits;
        std::memcpy(bytes.data() + 2 * i, &bits, 2);
        break;
      }
      case SafetensorsDtype::f16: {
        const std::uint16_t bits = half_bits(static_cast<float>(value));
        std::memcpy(bytes.data() + 2 * i, &bits, 2);
        break;
      }
    }
  }
}

// Writes a file atomically and durably (the temporary is renamed over `path` once synced). The
// header is padded with spaces to a multiple of 8 bytes so that the data is aligned.
inline void write_safetensors_file(const std::filesystem::path& path,
                                   const std::vector<SafetensorsOutput>& tensors,
                                   const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  header["__metadata__"] = metadata;
  std::uint64_t offset = 0;
  std::vector<std::uint64_t> sizes;
  for (const SafetensorsOutput& tensor : tensors) {
    std::uint64_t bytes = safetensors_element_bytes(tensor.dtype);
    for (std::int64_t dim : tensor.shape) {
      bytes = checked_mul(bytes, static_cast<std::uint64_t>(dim), "safetensors tensor size");
    }
    LIGHTGPT_CHECK(!header.contains(tensor.name), "save_safetensors: tensor '", tensor.name,
                   "' named twice");
    header[tensor.name] = {{"dtype", tensor.dtype},
                           {"shape", tensor.shape},
                           {"data_offsets", {offset, offset + bytes}}};
    offset = checked_add(offset, bytes, "safetensors file size");
    sizes.push_back(bytes);
  }
  std::string json = header.dump();
  json.append((8 - json.size() % 8) % 8, ' ');

  const std::filesystem::path temp = path.string() + ".tmp";
  remove_stale_temporary(temp);
  LlmcFile out;
  out.file = std::fopen(temp.c_str(), "wb");
  LIGHTGPT_CHECK(out.file != nullptr, "cannot open '", temp.string(),
                 "' for writing: ", std::strerror(errno));
  out.remove_on_failure = temp;
  auto put = [&](const void* data, std::size_t bytes) {
    LIGHTGPT_CHECK(std::fwrite(data, 1, bytes, out.file) == bytes, "writing '", temp.string(),
                   "' failed: ", std::strerror(errno));
  };
  const std::uint64_t length = json.size();
  put(&length, 8);
  put(json.data(), json.size());
  std::vector<unsigned char> bytes;
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    bytes.assign(static_cast<std::size_t>(sizes[i]), 0);
    tensors[i].fill(bytes);
    put(bytes.data(), bytes.size());
  }
  std::FILE* file = out.file;
  out.file = nullptr;
  commit_temporary(file, temp, path);
  out.remove_on_failure.clear();
}

// transformers' GPT-2 (Conv1D layers, which store a Linear's weight transposed: [in, out]) for
// each of llm.c's tensors, which are lightgpt's dense layout (llmc.hpp): per-layer tensors are
// stacked over L in lightgpt and split into transformer.h.{i}.* there.
struct Gpt2Name {
  const char* lightgpt;
  const char* gpt2;  // after "transformer." and, per layer, "h.{i}."
  bool per_layer;
  bool transposed;
};
inline constexpr Gpt2Name kGpt2Names[] = {{"wte", "wte.weight", false, false},
                                          {"wpe", "wpe.weight", false, false},
                                          {"ln1w", "ln_1.weight", true, false},
                                          {"ln1b", "ln_1.bias", true, false},
                                          {"qkvw", "attn.c_attn.weight", true, true},
                                          {"qkvb", "attn.c_attn.bias", true, false},
                                          {"attprojw", "attn.c_proj.weight", true, true},
                                          {"attprojb", "attn.c_proj.bias", true, false},
                                          {"ln2w", "ln_2.weight", true, false},
                                          {"ln2b", "ln_2.bias", true, false},
                                          {"fcw", "mlp.c_fc.weight", true, true},
                                          {"fcb", "mlp.c_fc.bias", true, false},
                                          {"fcprojw", "mlp.c_proj.weight", true, true},
                                          {"fcprojb", "mlp.c_proj.bias", true, false},
                                          {"lnfw", "ln_f.weight", false, false},
                                          {"lnfb", "ln_f.bias", false, false}};
inline constexpr std::size_t kGpt2TensorCount = std::size(kGpt2Names);

inline std::string gpt2_name(const Gpt2Name& entry, std::int64_t layer) {
  return std::string("transformer.") +
         (entry.per_layer ? "h." + std::to_string(layer) + "." : std::string()) + entry.gpt2;
}

// One GPT-2 tensor's shape: a layer's slice of the lightgpt tensor, its two dimensions swapped
// for Conv1D weights, and wte cut to the real vocabulary.
inline std::vector<std::int64_t> gpt2_shape(const Gpt2Name& entry, const TensorInfo& tensor,
                                            const ModelConfig& config) {
  std::vector<std::int64_t> shape(tensor.shape.begin() + (entry.per_layer ? 1 : 0),
                                  tensor.shape.end());
  if (entry.transposed) std::swap(shape[0], shape[1]);
  if (std::string_view(entry.lightgpt) == "wte") shape[0] = config.vocab_size;
  return shape;
}

// Pairs each element of a GPT-2 tensor (of `layer`, `gpt2_count` values) with its element in the
// whole lightgpt tensor, calling copy(gpt2 index, lightgpt index): element (i, j) of a transposed
// GPT-2 weight is element (j, i) of the layer's slice.
template <class Copy>
void map_gpt2_tensor(const Gpt2Name& entry, const TensorInfo& tensor, std::int64_t layer,
                     std::size_t gpt2_count, Copy&& copy) {
  const std::size_t slice =
      entry.per_layer ? tensor.numel / std::size_t(tensor.shape[0]) : tensor.numel;
  const std::size_t base = std::size_t(layer) * slice;
  if (!entry.transposed) {
    for (std::size_t k = 0; k < gpt2_count; ++k) copy(k, base + k);
    return;
  }
  const std::size_t rows = std::size_t(tensor.shape[1]), cols = std::size_t(tensor.shape[2]);
  for (std::size_t i = 0; i < cols; ++i) {
    for (std::size_t j = 0; j < rows; ++j) copy(i * rows + j, base + j * cols + i);
  }
}

// The model's first tensors must be llm.c's (the GPT-2 ones, in order); any after them are the
// head's own (MTP adapters) and keep their lightgpt names.
inline void check_gpt2_layout(const ParameterLayout& layout, const ModelConfig& config) {
  const std::vector<LlmcTensor> expected = llmc_tensors(config);
  LIGHTGPT_CHECK(layout.tensors().size() >= expected.size(), "this model has ",
                 layout.tensors().size(), " parameter tensors; GPT-2 has ", expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const TensorInfo& tensor = layout.tensors()[i];
    LIGHTGPT_CHECK(tensor.name == expected[i].name && tensor.numel == expected[i].numel &&
                       tensor.name == kGpt2Names[i].lightgpt,
                   "this model's parameter #", i, " is '", tensor.name, "' (", tensor.numel,
                   " values); GPT-2 expects '", expected[i].name, "' (", expected[i].numel, ")");
  }
}

inline std::map<std::string, std::string> lightgpt_metadata(const std::string& composition,
                                                            const ModelConfig& config,
                                                            const char* names) {
  return {{"format", "pt"},
          {kSafetensorsComposition, composition},
          {kSafetensorsConfig, config.serialize()},
          {kSafetensorsNames, names}};
}

// A checkpoint-section view of a safetensors file, for head state kept outside the parameters
// (write_sections / read_sections of a head): each section is a U8 tensor.
class SafetensorsSectionWriter {
 public:
  explicit SafetensorsSectionWriter(std::vector<SafetensorsOutput>& tensors) : tensors_(tensors) {}
  void add_section(std::string_view name, std::string_view payload) {
    auto bytes = std::make_shared<std::string>(payload);
    tensors_.push_back({std::string(kSafetensorsSectionPrefix) + std::string(name),
                        "U8",
                        {static_cast<std::int64_t>(payload.size())},
                        [bytes](std::vector<unsigned char>& out) {
                          std::memcpy(out.data(), bytes->data(), bytes->size());
                        }});
  }

 private:
  std::vector<SafetensorsOutput>& tensors_;
};

class SafetensorsSectionReader {
 public:
  SafetensorsSectionReader(const std::filesystem::path& path, const SafetensorsHeader& header)
      : path_(path), header_(header) {}
  const std::filesystem::path& path() const { return path_; }
  bool has(std::string_view name) const { return find(name) != nullptr; }
  SectionReader section(std::string_view name) const {
    const SafetensorsTensor* tensor = find(name);
    const std::string source = safetensors_source(path_);
    LIGHTGPT_CHECK(tensor != nullptr, source, " has no tensor '", kSafetensorsSectionPrefix, name,
                   "'");
    LIGHTGPT_CHECK(tensor->dtype == "U8", source, ": tensor '", tensor->name,
                   "' must have dtype U8, not ", tensor->dtype);
    std::vector<char> payload(static_cast<std::size_t>(tensor->end - tensor->begin));
    LlmcFile in;
    in.file = std::fopen(path_.c_str(), "rb");
    LIGHTGPT_CHECK(in.file != nullptr, "cannot open ", source, ": ", std::strerror(errno));
    const std::uint64_t at = header_.data_start + tensor->begin;
    LIGHTGPT_CHECK(::fseeko(in.file, static_cast<off_t>(at), SEEK_SET) == 0 &&
                       std::fread(payload.data(), 1, payload.size(), in.file) == payload.size(),
                   source, ": short read of tensor '", tensor->name, "'");
    return SectionReader(std::move(payload), source + ", tensor '" + tensor->name + "'");
  }

 private:
  const SafetensorsTensor* find(std::string_view name) const {
    return header_.find(std::string(kSafetensorsSectionPrefix) + std::string(name));
  }
  std::filesystem::path path_;
  const SafetensorsHeader& header_;
};

// The lightgpt config a file states in its metadata, if any.
inline std::optional<ModelConfig> safetensors_metadata_config(const SafetensorsHeader& header,
                                                              const std::string& source) {
  const auto it = header.metadata.find(kSafetensorsConfig);
  if (it == header.metadata.end()) return std::nullopt;
  return ModelConfig::parse(it->second, source);
}

template <class Model>
void check_safetensors_config(const SafetensorsHeader& header, const Model& model,
                              const std::string& source) {
  if (const std::optional<ModelConfig> file = safetensors_metadata_config(header, source)) {
    model.check_config(*file, source);
  }
}

template <class Model>
void save_gpt2_safetensors(const std::filesystem::path& path, const Model& model,
                           SafetensorsDtype dtype) {
  const ModelConfig& config = model.config();
  const ParameterLayout& layout = model.parameters().layout();
  check_gpt2_layout(layout, config);
  std::vector<SafetensorsOutput> outputs;
  const char* type = safetensors_dtype_name(dtype);
  auto add = [&](const Gpt2Name& entry, const TensorInfo& tensor, std::int64_t layer) {
    std::vector<std::int64_t> shape = gpt2_shape(entry, tensor, config);
    outputs.push_back(
        {gpt2_name(entry, layer), type, shape,
         [&model, &tensor, entry, layer, dtype, shape](std::vector<unsigned char>& bytes) {
           const auto whole = model.parameters().read(tensor);
           std::size_t count = 1;
           for (std::int64_t dim : shape) count *= std::size_t(dim);
           std::vector<typename Model::A> part(count);
           map_gpt2_tensor(entry, tensor, layer, count,
                           [&](std::size_t g, std::size_t w) { part[g] = whole[w]; });
           encode_safetensors_values(part.data(), count, dtype, bytes, gpt2_name(entry, layer));
         }});
  };
  // transformers' order: embeddings, then each block's tensors, then the final LayerNorm.
  const std::vector<TensorInfo>& tensors = layout.tensors();
  for (std::size_t i : {0, 1}) add(kGpt2Names[i], tensors[i], 0);
  for (std::int64_t layer = 0; layer < config.n_layer; ++layer) {
    for (std::size_t i = 0; i < kGpt2TensorCount; ++i) {
      if (kGpt2Names[i].per_layer) add(kGpt2Names[i], tensors[i], layer);
    }
  }
  for (std::size_t i : {kGpt2TensorCount - 2, kGpt2TensorCount - 1}) {
    add(kGpt2Names[i], tensors[i], 0);
  }
  for (std::size_t i = kGpt2TensorCount; i < tensors.size(); ++i) {
    const TensorInfo& tensor = tensors[i];
    outputs.push_back({tensor.name, type, tensor.shape,
                       [&model, &tensor, dtype](std::vector<unsigned char>& bytes) {
                         const auto values = model.parameters().read(tensor);
                         encode_safetensors_values(values.data(), values.size(), dtype, bytes,
                                                   tensor.name);
                       }});
  }
  write_safetensors_file(path, outputs, lightgpt_metadata(Model::composition(), config, "gpt2"));
}

// GPT-2 names with "transformer." dropped (files saved from GPT2Model lack it), and the buffers
// old exports carry (attn.bias, attn.masked_bias: causal masks, not parameters) left out.
inline bool is_gpt2_buffer(std::string_view name) {
  if (!name.starts_with("h.")) return false;
  return name.ends_with(".attn.bias") || name.ends_with(".attn.masked_bias");
}

template <class Model>
void load_gpt2_safetensors(const std::filesystem::path& path, Model& model) {
  using A = typename Model::A;
  const std::string source = safetensors_source(path);
  const SafetensorsHeader header = read_safetensors_header(path);
  const ModelConfig& config = model.config();
  const ParameterLayout& layout = model.parameters().layout();
  check_gpt2_layout(layout, config);
  check_safetensors_config(header, model, source);

  // Every file tensor by its name without the prefix; the expected ones are then taken out.
  std::map<std::string, const SafetensorsTensor*> by_name;
  for (const SafetensorsTensor& tensor : header.tensors) {
    std::string_view name = tensor.name;
    if (name.starts_with("transformer.")) name.remove_prefix(std::strlen("transformer."));
    if (is_gpt2_buffer(name)) continue;
    LIGHTGPT_CHECK(by_name.emplace(std::string(name), &tensor).second, source, ": tensor '",
                   tensor.name, "' appears both with and without the 'transformer.' prefix");
  }
  auto take = [&](const std::string& name, const std::vector<std::int64_t>& shape) {
    std::string_view key = name;
    if (key.starts_with("transformer.")) key.remove_prefix(std::strlen("transformer."));
    const auto it = by_name.find(std::string(key));
    LIGHTGPT_CHECK(it != by_name.end(), source, " has no tensor '", name, "'");
    const SafetensorsTensor* tensor = it->second;
    by_name.erase(it);
    LIGHTGPT_CHECK(tensor->shape == shape, source, ": tensor '", tensor->name, "' has shape ",
                   shape_text(tensor->shape), ", this model expects ", shape_text(shape));
    return tensor;
  };

  // The lm_head is tied to wte in GPT-2 and in lightgpt; a file may still carry it.
  const SafetensorsTensor* lm_head = nullptr;
  if (const auto it = by_name.find("lm_head.weight"); it != by_name.end()) {
    lm_head = it->second;
    by_name.erase(it);
  }
  // Plan every tensor before reading any value, so that a missing or misshapen tensor leaves the
  // model untouched.
  struct Part {
    const Gpt2Name* entry;
    const TensorInfo* tensor;
    std::int64_t layer;
    const SafetensorsTensor* stored;
  };
  std::vector<Part> parts;
  for (std::size_t i = 0; i < kGpt2TensorCount; ++i) {
    const TensorInfo& tensor = layout.tensors()[i];
    const std::int64_t layers = kGpt2Names[i].per_layer ? config.n_layer : 1;
    for (std::int64_t layer = 0; layer < layers; ++layer) {
      parts.push_back(
          {&kGpt2Names[i], &tensor, layer,
           take(gpt2_name(kGpt2Names[i], layer), gpt2_shape(kGpt2Names[i], tensor, config))});
    }
  }
  std::vector<std::pair<const TensorInfo*, const SafetensorsTensor*>> extras;
  for (std::size_t i = kGpt2TensorCount; i < layout.tensors().size(); ++i) {
    const TensorInfo& tensor = layout.tensors()[i];
    extras.emplace_back(&tensor, take(tensor.name, tensor.shape));
  }
  if (lm_head) {
    LIGHTGPT_CHECK(lm_head->shape == parts.front().stored->shape, source,
                   ": tensor 'lm_head.weight' has shape ", shape_text(lm_head->shape),
                   ", transformer.wte.weight ", shape_text(parts.front().stored->shape));
  }
  if (!by_name.empty()) {
    std::string names;
    for (const auto& [name, tensor] : by_name)
      names += (names.empty() ? "'" : ", '") + tensor->name + "'";
    throw Error(concat(source, " holds tensors a GPT-2 of this config does not have: ", names));
  }

  LlmcFile in;
  in.file = std::fopen(path.c_str(), "rb");
  LIGHTGPT_CHECK(in.file != nullptr, "cannot open ", source, ": ", std::strerror(errno));
  const TensorInfo* current = nullptr;
  std::vector<A> whole;
  for (const Part& part : parts) {
    if (part.tensor != current) {
      if (current) model.parameters().write(*current, whole.data());
      current = part.tensor;
      whole.assign(current->numel, A(0));  // padded vocabulary rows stay zero
    }
    const std::vector<A> values = read_safetensors_values<A>(in.file, header, *part.stored, source);
    map_gpt2_tensor(*part.entry, *part.tensor, part.layer, values.size(),
                    [&](std::size_t g, std::size_t w) { whole[w] = values[g]; });
    if (part.tensor == &layout.tensors().front() && lm_head) {
      const std::vector<A> head = read_safetensors_values<A>(in.file, header, *lm_head, source);
      LIGHTGPT_CHECK(head == values, source, ": 'lm_head.weight' differs from '", part.stored->name,
                     "'; lightgpt ties the output layer to the embedding");
    }
  }
  model.parameters().write(*current, whole.data());
  for (const auto& [tensor, stored] : extras) {
    const std::vector<A> values = read_safetensors_values<A>(in.file, header, *stored, source);
    model.parameters().write(*tensor, values.data());
  }
}

template <class Model>
void save_native_safetensors(const std::filesystem::path& path, const Model& model,
                             SafetensorsDtype dtype) {
  std::vector<SafetensorsOutput> outputs;
  for (const TensorInfo& tensor : model.parameters().layout().tensors()) {
    outputs.push_back({tensor.name, safetensors_dtype_name(dtype), tensor.shape,
                       [&model, &tensor, dtype](std::vector<unsigned char>& bytes) {
                         const auto values = model.parameters().read(tensor);
                         encode_safetensors_values(values.data(), values.size(), dtype, bytes,
                                                   tensor.name);
                       }});
  }
  if constexpr (requires(SafetensorsSectionWriter & out) { model.head().write_sections(out); }) {
    SafetensorsSectionWriter sections(outputs);
    model.head().write_sections(sections);
  }
  write_safetensors_file(path, outputs,
                         lightgpt_metadata(Model::composition(), model.config(), "lightgpt"));
}

template <class Model>
void load_native_safetensors(const std::filesystem::path& path, Model& model) {
  using A = typename Model::A;
  const std::string source = safetensors_source(path);
  const SafetensorsHeader header = read_safetensors_header(path);
  const auto composition = header.metadata.find(kSafetensorsComposition);
  LIGHTGPT_CHECK(composition != header.metadata.end(), source,
                 " states no lightgpt composition in its __metadata__, so it cannot load into '",
                 Model::composition(), "' (files without one load only as GPT-2)");
  LIGHTGPT_CHECK(composition->second == Model::composition(), source,
                 " holds a model of composition '", composition->second, "', but this model is '",
                 Model::composition(), "'");
  check_safetensors_config(header, model, source);
  const ParameterLayout& layout = model.parameters().layout();
  for (const SafetensorsTensor& stored : header.tensors) {
    LIGHTGPT_CHECK(layout.find(stored.name) != nullptr ||
                       std::string_view(stored.name).starts_with(kSafetensorsSectionPrefix),
                   source, " holds the tensor '", stored.name, "', which this model lacks");
  }
  std::vector<std::pair<const TensorInfo*, const SafetensorsTensor*>> planned;
  for (const TensorInfo& tensor : layout.tensors()) {
    const SafetensorsTensor* stored = header.find(tensor.name);
    LIGHTGPT_CHECK(stored != nullptr, source, " has no tensor '", tensor.name, "'");
    LIGHTGPT_CHECK(stored->shape == tensor.shape, source, ": tensor '", tensor.name, "' has shape ",
                   shape_text(stored->shape), ", this model expects ", shape_text(tensor.shape));
    planned.emplace_back(&tensor, stored);
  }
  LlmcFile in;
  in.file = std::fopen(path.c_str(), "rb");
  LIGHTGPT_CHECK(in.file != nullptr, "cannot open ", source, ": ", std::strerror(errno));
  for (const auto& [tensor, stored] : planned) {
    const std::vector<A> values = read_safetensors_values<A>(in.file, header, *stored, source);
    model.parameters().write(*tensor, values.data());
  }
  if constexpr (requires(const SafetensorsSectionReader& sections) {
                  model.head().read_sections(sections);
                }) {
    model.head().read_sections(SafetensorsSectionReader(path, header));
  }
}

}  // namespace detail

// Writes the model as a safetensors file, atomically. The dense GPT-2 composition uses
// transformers' GPT2LMHeadModel names (the tied lm_head.weight is left out, as transformers
// itself saves it; MTP adapters, which GPT-2 lacks, keep their lightgpt names); every other
// composition uses lightgpt's names. The metadata records composition and config either way.
template <class Model>
void save_safetensors(const std::filesystem::path& path, const Model& model,
                      SafetensorsDtype dtype = SafetensorsDtype::f32) {
  if constexpr (detail::llmc_compatible<Model>) {
    detail::save_gpt2_safetensors(path, model, dtype);
  } else {
    detail::save_native_safetensors(path, model, dtype);
  }
}

// Loads a safetensors file into a model built with the file's config (read_safetensors_config).
// Any float dtype converts to the model's master precision. Every name and shape is checked
// before any parameter changes.
template <class Model>
void load_safetensors(const std::filesystem::path& path, Model& model) {
  if constexpr (detail::llmc_compatible<Model>) {
    detail::load_gpt2_safetensors(path, model);
  } else {
    detail::load_native_safetensors(path, model);
  }
}

// The model config of a file: the one lightgpt wrote into its metadata, or, for a GPT-2 file
// from elsewhere, the sizes its tensors imply plus n_head from the config.json beside it (the
// weights alone do not say how many heads there are). Validated before it is returned.
inline ModelConfig read_safetensors_config(const std::filesystem::path& path) {
  const std::string source = detail::safetensors_source(path);
  const SafetensorsHeader header = read_safetensors_header(path);
  ModelConfig config;
  if (const std::optional<ModelConfig> stated =
          detail::safetensors_metadata_config(header, source)) {
    config = *stated;
  } else {
    auto find = [&](const std::string& name) {
      const SafetensorsTensor* tensor = header.find("transformer." + name);
      if (!tensor) tensor = header.find(name);
      LIGHTGPT_CHECK(tensor != nullptr && tensor->shape.size() == 2 &&
                         tensor->shape[0] <= kMaxVocabSize && tensor->shape[1] <= kMaxModelWidth,
                     source, " has no lightgpt config in its metadata and no 2-D GPT-2 tensor '",
                     name, "' to infer one from");
      return tensor;
    };
    const SafetensorsTensor* wte = find("wte.weight");
    const SafetensorsTensor* wpe = find("wpe.weight");
    config.vocab_size = static_cast<int>(wte->shape[0]);
    config.d_model = static_cast<int>(wte->shape[1]);
    config.max_seq_len = static_cast<int>(std::min<std::int64_t>(wpe->shape[0], kMaxSeqLen + 1));
    config.n_layer = 0;
    while (config.n_layer <= kMaxLayers &&
           (header.find("transformer.h." + std::to_string(config.n_layer) + ".ln_1.weight") ||
            header.find("h." + std::to_string(config.n_layer) + ".ln_1.weight"))) {
      ++config.n_layer;
    }
    const std::filesystem::path hf_config = path.parent_path() / "config.json";
    std::ifstream in(hf_config);
    LIGHTGPT_CHECK(in.good(), source,
                   " has no lightgpt config in its metadata, and the number "
                   "of heads needs transformers' config.json beside it ('",
                   hf_config.string(), "' cannot be read)");
    const nlohmann::json parsed = nlohmann::json::parse(in, nullptr, false);
    LIGHTGPT_CHECK(!parsed.is_discarded() && parsed.is_object() && parsed.contains("n_head") &&
                       parsed["n_head"].is_number_unsigned() &&
                       parsed["n_head"].get<std::uint64_t>() <= std::uint64_t(kMaxModelWidth),
                   "'", hf_config.string(), "' is not a JSON object with a positive 'n_head'");
    config.n_head = static_cast<int>(parsed["n_head"].get<std::uint64_t>());
  }
  try {
    config.validate();
  } catch (const Error& error) {
    throw Error(
        detail::concat(source, ": its config is not one lightgpt can build: ", error.message()));
  }
  return config;
}

// transformers' config.json for a dense GPT-2 of this config, so that
// GPT2LMHeadModel.from_pretrained(dir) finds everything it needs beside model.safetensors.
// lightgpt's GPT-2 is transformers' defaults: tanh GELU ("gelu_new"), LayerNorm ε = 1e-5.
inline std::string gpt2_hf_config_json(const ModelConfig& config) {
  nlohmann::ordered_json json = {{"architectures", {"GPT2LMHeadModel"}},
                                 {"model_type", "gpt2"},
                                 {"vocab_size", config.vocab_size},
                                 {"n_positions", config.max_seq_len},
                                 {"n_ctx", config.max_seq_len},
                                 {"n_embd", config.d_model},
                                 {"n_layer", config.n_layer},
                                 {"n_head", config.n_head},
                                 {"activation_function", "gelu_new"},
                                 {"layer_norm_epsilon", 1e-5},
                                 {"tie_word_embeddings", true}};
  // GPT-2's <|endoftext|>, when the vocabulary has it.
  if (config.vocab_size > 50256) {
    json["bos_token_id"] = 50256;
    json["eos_token_id"] = 50256;
  }
  return json.dump(2) + "\n";
}

}  // namespace lightgpt

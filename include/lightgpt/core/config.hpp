// ModelConfig: the run-time shape of a model (the compile-time composition is the GPT<...> type).
// `validate()` turns every inconsistent or implausible field, and a model too large to hold, into a
// lightgpt::Error that names the field; the config serialises to `key=value` lines so checkpoints
// stay human-inspectable.
#pragma once

#include <charconv>
#include <cstdint>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <string_view>
#include <type_traits>

#include "error.hpp"

namespace lightgpt {

// The vocabulary is padded to this many rows so that the logits GEMM has friendly shapes
// (the same choice as llm.c); padded rows never receive probability.
inline constexpr int kVocabPadding = 128;

// Upper bounds of ModelConfig::validate(). They sit far above any model lightgpt trains, and exist
// so that a corrupted header or a mistyped flag is an error before anything is allocated, and so
// that every size derived from a valid config fits comfortably in 64 bits.
inline constexpr int kMaxVocabSize = 1 << 30;
inline constexpr int kMaxSeqLen = 1 << 20;
inline constexpr int kMaxLayers = 1024;
inline constexpr int kMaxModelWidth = 1 << 16;
inline constexpr int kMaxAfnoHiddenFactor = 64;
inline constexpr std::uint64_t kMaxParameterBytes = std::uint64_t{1} << 38;   // 256 GiB of fp32
inline constexpr std::uint64_t kMaxActivationBytes = std::uint64_t{1} << 38;  // one row, fp32

// How LightRnnHead conditions the column distribution on the row (docs/heads.md, "LightRnnHead").
enum class RowConditioning : int {
  linear_gelu = 0,  // s = GELU(W·h + z_r + b): a C × C matrix W, a bias b, a vector per row (default)
  gelu = 1,         // s = GELU(h + E_row[r]), parameter-free, for the smallest models
};

// Settings of a part that keeps its own, such as a head or mixer written outside the library:
// values under "part.key" names ("causal-conv.dilation"), saved in checkpoints with the rest of
// the config as `option.part.key=value` lines, so a model rebuilt from a checkpoint's config gets
// them back and a model built with other values refuses the checkpoint.
class PartOptions {
 public:
  static constexpr std::size_t kMaxEntries = 256, kMaxKeyBytes = 128, kMaxValueBytes = 4096;

  void set(const std::string& key, std::string value) {
    LIGHTGPT_CHECK(!key.empty() && key.size() <= kMaxKeyBytes &&
                       key.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                             "0123456789_.-<>") == std::string::npos,
                   "ModelConfig option name '", key, "' must be 1 to ", kMaxKeyBytes,
                   " letters, digits or _ . - < >");
    LIGHTGPT_CHECK(value.size() <= kMaxValueBytes && value.find('\n') == std::string::npos,
                   "ModelConfig option '", key, "': the value must be one line of at most ",
                   kMaxValueBytes, " bytes");
    LIGHTGPT_CHECK(values_.size() < kMaxEntries || values_.count(key) != 0,
                   "ModelConfig holds at most ", kMaxEntries, " options");
    values_[key] = std::move(value);
  }
  template <class V>
    requires std::is_arithmetic_v<V>
  void set(const std::string& key, V value) {
    std::ostringstream out;
    out.precision(17);
    out << +value;
    set(key, out.str());
  }

  bool contains(std::string_view key) const { return values_.find(key) != values_.end(); }
  const std::map<std::string, std::string, std::less<>>& entries() const { return values_; }

  // The value of `key`, or `fallback` when the config does not set it.
  std::string get(std::string_view key, std::string fallback) const {
    const auto it = values_.find(key);
    return it == values_.end() ? fallback : it->second;
  }
  template <class V>
    requires(std::is_arithmetic_v<V> && !std::is_same_v<V, bool>)
  V get(std::string_view key, V fallback) const {
    const auto it = values_.find(key);
    if (it == values_.end()) return fallback;
    const std::string& text = it->second;
    V value{};
    const auto result = std::from_chars(text.data(), text.data() + text.size(), value);
    LIGHTGPT_CHECK(result.ec == std::errc() && result.ptr == text.data() + text.size(),
                   "ModelConfig option '", key, "': '", text, "' is not ",
                   std::is_integral_v<V> ? "an integer" : "a number");
    return value;
  }

  bool operator==(const PartOptions&) const = default;

 private:
  std::map<std::string, std::string, std::less<>> values_;
};

struct ModelConfig {
  int vocab_size = 50257;
  int max_seq_len = 1024;
  int n_layer = 12;
  int n_head = 12;
  int d_model = 768;

  // LightRnnHead: rows (= columns) of the token table; 0 means ceil(sqrt(vocab_size)).
  int lightrnn_rows = 0;
  RowConditioning lightrnn_conditioning = RowConditioning::linear_gelu;
  // LightRnnHead: add an untied per-token input vector (V × C) to E_row[r] + E_col[c], so that the
  // trunk sees which token it reads and not only its cell's row and column. Costs V·C parameters
  // (the output stays factorised); pays off in small models trained on little data.
  bool lightrnn_token_embedding = false;
  // MTP: a per-depth adapter (LayerNorm + C × C linear + residual) before the shared head tables.
  bool mtp_adapter = false;
  // AfnoMixer: soft-shrink threshold, hidden width factor of the block MLP, multiplicative gate.
  double afno_sparsity_threshold = 0.01;
  int afno_hidden_factor = 1;
  bool afno_gate = true;
  // Settings of parts that keep their own (user heads and mixers).
  PartOptions options;

  // GPT-2 small (124M), llm.c's d12.
  static ModelConfig gpt2_small() { return {}; }

  int padded_vocab_size() const {
    return (vocab_size + kVocabPadding - 1) / kVocabPadding * kVocabPadding;
  }
  int head_dim() const { return d_model / n_head; }
  // R of the LightRNN table: lightrnn_rows, or the smallest R with R² ≥ vocab_size.
  int lightrnn_table_rows() const {
    if (lightrnn_rows > 0) return lightrnn_rows;
    int r = 1;
    while (static_cast<long long>(r) * r < vocab_size) ++r;
    return r;
  }

  // An upper bound on the parameters of any head and mixer built from this config (MTP adapters
  // aside): the dense token table (which also bounds LightRNN's untied one), LightRNN's tables,
  // positions, and per layer attention or AFNO plus the MLP. Checked arithmetic throughout.
  std::uint64_t parameter_bound() const {
    const char* what = "ModelConfig parameter count";
    const std::uint64_t C = std::uint64_t(d_model), L = std::uint64_t(n_layer);
    const std::uint64_t R = std::uint64_t(lightrnn_table_rows());
    const std::uint64_t CC = checked_mul(C, C, what);
    std::uint64_t count = checked_mul(std::uint64_t(padded_vocab_size()), C, what);
    count = checked_add(count, checked_add(checked_mul(3 * R, C, what), CC + C, what), what);
    count = checked_add(count, checked_mul(std::uint64_t(max_seq_len), C, what), what);
    const std::uint64_t per_layer = checked_add(
        checked_mul(12 + 4 * std::uint64_t(afno_hidden_factor), CC, what), 16 * C, what);
    count = checked_add(count, checked_mul(L, per_layer, what), what);
    return checked_add(count, 2 * C, what);
  }
  // The parameters every composition has: positions, two layer norms and the MLP per layer, the
  // final layer norm. A lower bound that file sizes are checked against before allocating.
  std::uint64_t trunk_parameter_count() const {
    const char* what = "ModelConfig parameter count";
    const std::uint64_t C = std::uint64_t(d_model);
    const std::uint64_t per_layer = checked_add(checked_mul(8 * C, C, what), 9 * C, what);
    return checked_add(checked_add(checked_mul(std::uint64_t(max_seq_len), C, what),
                                   checked_mul(std::uint64_t(n_layer), per_layer, what), what),
                       2 * C, what);
  }
  // Bytes of the fp32 activations of one row at full context: per layer the block's vectors and
  // every head's T × T attention scores, plus the logits.
  std::uint64_t activation_bytes_per_row() const {
    const char* what = "ModelConfig activation size";
    const std::uint64_t T = std::uint64_t(max_seq_len), C = std::uint64_t(d_model);
    const std::uint64_t scores = checked_mul(std::uint64_t(n_head), T, what);
    const std::uint64_t per_layer = checked_add(checked_mul(16, C, what), scores, what);
    const std::uint64_t per_position = checked_add(
        checked_mul(std::uint64_t(n_layer), per_layer, what),
        2 * std::uint64_t(padded_vocab_size()), what);
    return checked_mul(checked_mul(T, per_position, what), 4, what);
  }

  void validate() const {
    auto in_range = [](long long value, long long high, const char* field) {
      LIGHTGPT_CHECK(value > 0, "ModelConfig.", field, " must be positive, got ", value);
      LIGHTGPT_CHECK(value <= high, "ModelConfig.", field, " (", value,
                     ") is larger than the supported ", high);
    };
    in_range(vocab_size, kMaxVocabSize, "vocab_size");
    in_range(max_seq_len, kMaxSeqLen, "max_seq_len");
    in_range(n_layer, kMaxLayers, "n_layer");
    in_range(d_model, kMaxModelWidth, "d_model");
    in_range(n_head, d_model, "n_head");
    in_range(afno_hidden_factor, kMaxAfnoHiddenFactor, "afno_hidden_factor");
    LIGHTGPT_CHECK(d_model % n_head == 0, "ModelConfig.d_model (", d_model,
                   ") must be divisible by ModelConfig.n_head (", n_head, ")");
    LIGHTGPT_CHECK(lightrnn_rows >= 0, "ModelConfig.lightrnn_rows must be 0 (automatic) or "
                   "positive, got ", lightrnn_rows);
    LIGHTGPT_CHECK(static_cast<long long>(lightrnn_table_rows()) * lightrnn_table_rows() >=
                       vocab_size,
                   "ModelConfig.lightrnn_rows (", lightrnn_rows, ") is too small: R² = ",
                   static_cast<long long>(lightrnn_rows) * lightrnn_rows,
                   " must be at least vocab_size (", vocab_size, ")");
    // More rows only add empty cells; twice the smallest R already leaves three quarters empty.
    const int smallest_rows = ModelConfig{.vocab_size = vocab_size}.lightrnn_table_rows();
    LIGHTGPT_CHECK(lightrnn_rows <= 2 * smallest_rows, "ModelConfig.lightrnn_rows (",
                   lightrnn_rows, ") is too large: at most 2 × ceil(sqrt(vocab_size)) = ",
                   2 * smallest_rows, " for vocab_size ", vocab_size);
    LIGHTGPT_CHECK(lightrnn_conditioning == RowConditioning::linear_gelu ||
                       lightrnn_conditioning == RowConditioning::gelu,
                   "ModelConfig.lightrnn_conditioning must be 0 (linear_gelu) or 1 (gelu), got ",
                   static_cast<int>(lightrnn_conditioning));
    LIGHTGPT_CHECK(afno_sparsity_threshold >= 0 && afno_sparsity_threshold < 1e30,
                   "ModelConfig.afno_sparsity_threshold must be finite and non-negative, got ",
                   afno_sparsity_threshold);
    const std::uint64_t parameter_bytes = checked_mul(parameter_bound(), 4, "ModelConfig");
    LIGHTGPT_CHECK(parameter_bytes <= kMaxParameterBytes, "ModelConfig: the parameters (",
                   format_bytes(parameter_bytes), " in fp32) exceed the supported ",
                   format_bytes(kMaxParameterBytes), " (n_layer ", n_layer, ", d_model ", d_model,
                   ", vocab_size ", vocab_size, ", max_seq_len ", max_seq_len, ")");
    const std::uint64_t activation_bytes = activation_bytes_per_row();
    LIGHTGPT_CHECK(activation_bytes <= kMaxActivationBytes, "ModelConfig: the activations of one ",
                   "row of max_seq_len ", max_seq_len, " tokens (", format_bytes(activation_bytes),
                   ") exceed the supported ", format_bytes(kMaxActivationBytes));
  }

  bool operator==(const ModelConfig&) const = default;

  // Serialized options start with this prefix; the rest of the key is the option's name.
  static constexpr std::string_view kOptionPrefix = "option.";

  std::string serialize() const {
    std::ostringstream out;
    out.precision(17);
    out << "vocab_size=" << vocab_size << "\nmax_seq_len=" << max_seq_len << "\nn_layer=" << n_layer
        << "\nn_head=" << n_head << "\nd_model=" << d_model << "\nlightrnn_rows=" << lightrnn_rows
        << "\nlightrnn_conditioning=" << static_cast<int>(lightrnn_conditioning)
        << "\nlightrnn_token_embedding=" << int(lightrnn_token_embedding)
        << "\nmtp_adapter=" << int(mtp_adapter)
        << "\nafno_sparsity_threshold=" << afno_sparsity_threshold
        << "\nafno_hidden_factor=" << afno_hidden_factor << "\nafno_gate=" << int(afno_gate) << "\n";
    for (const auto& [key, value] : options.entries()) {
      out << kOptionPrefix << key << '=' << value << '\n';
    }
    return out.str();
  }

  // Inverse of serialize(); `source` names the origin (a checkpoint path) in errors. The five
  // trunk fields are required; head and mixer options default when absent.
  static ModelConfig parse(std::string_view text, std::string_view source) {
    ModelConfig config;
    int conditioning = static_cast<int>(config.lightrnn_conditioning);
    int adapter = config.mtp_adapter, gate = config.afno_gate;
    int token_embedding = config.lightrnn_token_embedding;
    struct Field {
      const char* name;
      int* integer;
      double* real;
      bool required;
      bool seen = false;
    };
    Field fields[] = {{"vocab_size", &config.vocab_size, nullptr, true},
                      {"max_seq_len", &config.max_seq_len, nullptr, true},
                      {"n_layer", &config.n_layer, nullptr, true},
                      {"n_head", &config.n_head, nullptr, true},
                      {"d_model", &config.d_model, nullptr, true},
                      {"lightrnn_rows", &config.lightrnn_rows, nullptr, false},
                      {"lightrnn_conditioning", &conditioning, nullptr, false},
                      {"lightrnn_token_embedding", &token_embedding, nullptr, false},
                      {"mtp_adapter", &adapter, nullptr, false},
                      {"afno_sparsity_threshold", nullptr, &config.afno_sparsity_threshold, false},
                      {"afno_hidden_factor", &config.afno_hidden_factor, nullptr, false},
                      {"afno_gate", &gate, nullptr, false}};
    std::size_t pos = 0;
    while (pos < text.size()) {
      std::size_t end = text.find('\n', pos);
      if (end == std::string_view::npos) end = text.size();
      std::string_view line = text.substr(pos, end - pos);
      pos = end + 1;
      if (line.empty()) continue;
      std::size_t eq = line.find('=');
      LIGHTGPT_CHECK(eq != std::string_view::npos, source, ": config line '", line,
                     "' is not key=value");
      std::string_view key = line.substr(0, eq), value = line.substr(eq + 1);
      if (key.starts_with(kOptionPrefix)) {
        try {
          config.options.set(std::string(key.substr(kOptionPrefix.size())), std::string(value));
        } catch (const Error& error) {
          throw Error(detail::concat(source, ": ", error.message()));
        }
        continue;
      }
      Field* field = nullptr;
      for (Field& candidate : fields) {
        if (key == candidate.name) field = &candidate;
      }
      LIGHTGPT_CHECK(field != nullptr, source, ": unknown config key '", key, "'");
      const char* first = value.data();
      const char* last = value.data() + value.size();
      std::from_chars_result result{};
      if (field->integer != nullptr) {
        result = std::from_chars(first, last, *field->integer);
      } else {
        result = std::from_chars(first, last, *field->real);
      }
      LIGHTGPT_CHECK(result.ec == std::errc() && result.ptr == last, source,
                     ": config value of '", key, "' is not a ",
                     field->integer != nullptr ? "integer" : "number", ": '", value, "'");
      field->seen = true;
    }
    for (const Field& field : fields) {
      LIGHTGPT_CHECK(field.seen || !field.required, source, ": config lacks the field '",
                     field.name, "'");
    }
    config.lightrnn_conditioning = static_cast<RowConditioning>(conditioning);
    config.mtp_adapter = adapter != 0;
    config.lightrnn_token_embedding = token_embedding != 0;
    config.afno_gate = gate != 0;
    try {
      config.validate();
    } catch (const Error& error) {
      throw Error(detail::concat(source, ": ", error.message()));
    }
    return config;
  }
};

}  // namespace lightgpt

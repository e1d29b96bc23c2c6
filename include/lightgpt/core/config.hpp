// ModelConfig: the run-time shape of a model (the compile-time composition is the GPT<...> type).
// `validate()` turns every inconsistent or implausible field, and a model too large to hold, into a
// lightgpt::Error that names the field; the config serialises to `key=value` lines so checkpoints
// stay human-inspectable. A head's or mixer's own settings are not fields here: each part declares
// an Options struct (docs/design.md, "Part options"), stored in ModelConfig::options under the
// part's keys and read back with ModelConfig::part<Options>().
#pragma once

#include <charconv>
#include <cstdint>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <string_view>
#include <tuple>
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
inline constexpr std::uint64_t kMaxParameterBytes = std::uint64_t{1} << 38;   // 256 GiB of fp32
inline constexpr std::uint64_t kMaxActivationBytes = std::uint64_t{1} << 38;  // one row, fp32

// Settings of the parts of a composition (docs/design.md, "Part options"): values under
// "part.key" names ("lightrnn.rows", "causal-conv.dilation"), saved in checkpoints with the rest
// of the config as `option.part.key=value` lines. Parts read and write them through their Options
// struct (ModelConfig::part / set_part), which holds the defaults; a key is present only while
// its value differs from the default, so equal settings always give equal configs.
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
    requires(std::is_arithmetic_v<V> || std::is_enum_v<V>)
  void set(const std::string& key, V value) {
    set(key, format(value));
  }
  void erase(std::string_view key) {
    if (const auto it = values_.find(key); it != values_.end()) values_.erase(it);
  }

  bool contains(std::string_view key) const { return values_.find(key) != values_.end(); }
  const std::map<std::string, std::string, std::less<>>& entries() const { return values_; }

  // The value of `key`, or `fallback` when the config does not set it. Numbers, enums (by their
  // underlying value) and bools (0 or 1) parse strictly; a malformed value is an error naming it.
  std::string get(std::string_view key, std::string fallback) const {
    const auto it = values_.find(key);
    return it == values_.end() ? fallback : it->second;
  }
  template <class V>
    requires(std::is_arithmetic_v<V> || std::is_enum_v<V>)
  V get(std::string_view key, V fallback) const {
    const auto it = values_.find(key);
    if (it == values_.end()) return fallback;
    const std::string& text = it->second;
    if constexpr (std::is_enum_v<V>) {
      return static_cast<V>(get<std::underlying_type_t<V>>(key, {}));
    } else if constexpr (std::is_same_v<V, bool>) {
      LIGHTGPT_CHECK(text == "0" || text == "1", "ModelConfig option '", key, "': '", text,
                     "' is not 0 or 1");
      return text == "1";
    } else {
      V value{};
      const auto result = std::from_chars(text.data(), text.data() + text.size(), value);
      LIGHTGPT_CHECK(result.ec == std::errc() && result.ptr == text.data() + text.size(),
                     "ModelConfig option '", key, "': '", text, "' is not ",
                     std::is_integral_v<V> ? "an integer" : "a number");
      return value;
    }
  }

  // The text a value is stored as: integers and bools in decimal, enums as their underlying
  // value, reals with the 17 digits that round-trip a double.
  template <class V>
    requires(std::is_arithmetic_v<V> || std::is_enum_v<V>)
  static std::string format(V value) {
    if constexpr (std::is_enum_v<V>) {
      return format(static_cast<std::underlying_type_t<V>>(value));
    } else {
      std::ostringstream out;
      out.precision(17);
      out << +value;
      return out.str();
    }
  }

  bool operator==(const PartOptions&) const = default;

 private:
  std::map<std::string, std::string, std::less<>> values_;
};

// One setting of a part's Options struct: its key in ModelConfig::options and the member holding
// it. A part lists them in `static constexpr auto fields = std::tuple{option_field(...), ...}`.
template <class Options, class V>
struct OptionField {
  std::string_view key;
  V Options::*member;
};
template <class Options, class V>
constexpr OptionField<Options, V> option_field(std::string_view key, V Options::*member) {
  return {key, member};
}

struct ModelConfig;

// What a part's Options struct provides (docs/extending.md): default-constructible defaults, the
// field table, and a check against the whole config that names the offending key.
template <class O>
concept PartOptionsType =
    std::is_default_constructible_v<O> && requires(const O& options, const ModelConfig& config) {
      std::tuple_size<std::remove_cvref_t<decltype(O::fields)>>::value;
      options.validate(config);
    };

struct ModelConfig {
  int vocab_size = 50257;
  int max_seq_len = 1024;
  int n_layer = 12;
  int n_head = 12;
  int d_model = 768;
  // Settings of the composition's parts (their Options structs), by key.
  PartOptions options;

  // GPT-2 small (124M), llm.c's d12.
  static ModelConfig gpt2_small() { return {}; }

  int padded_vocab_size() const {
    return (vocab_size + kVocabPadding - 1) / kVocabPadding * kVocabPadding;
  }
  int head_dim() const { return d_model / n_head; }

  // A part's settings: each field from its key, or the Options default when the key is absent.
  template <PartOptionsType O>
  O part() const {
    O result;
    std::apply([&](const auto&... field) {
      ((result.*field.member = options.get(field.key, result.*field.member)), ...);
    }, O::fields);
    return result;
  }
  // Stores a part's settings: the fields that differ from the Options defaults; the keys of the
  // others are removed.
  template <PartOptionsType O>
  void set_part(const O& settings) {
    const O defaults;
    std::apply([&](const auto&... field) {
      ((settings.*field.member == defaults.*field.member
            ? options.erase(field.key)
            : options.set(std::string(field.key), settings.*field.member)),
       ...);
    }, O::fields);
  }
  template <PartOptionsType O>
  static bool declares(std::string_view key) {
    return std::apply([&](const auto&... field) { return ((field.key == key) || ...); },
                      O::fields);
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

  // The trunk's fields. The parts' options are checked by the parts (GPT's constructor), and the
  // whole parameter layout against kMaxParameterBytes before anything is allocated.
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
    LIGHTGPT_CHECK(d_model % n_head == 0, "ModelConfig.d_model (", d_model,
                   ") must be divisible by ModelConfig.n_head (", n_head, ")");
    // The trunk and a vocabulary-sized table, which every built-in head has (the token table).
    const std::uint64_t parameter_bytes = checked_mul(
        checked_add(trunk_parameter_count(),
                    checked_mul(std::uint64_t(padded_vocab_size()), std::uint64_t(d_model),
                                "ModelConfig parameter count"),
                    "ModelConfig parameter count"),
        4, "ModelConfig");
    check_parameter_bytes(parameter_bytes);
    const std::uint64_t activation_bytes = activation_bytes_per_row();
    LIGHTGPT_CHECK(activation_bytes <= kMaxActivationBytes, "ModelConfig: the activations of one ",
                   "row of max_seq_len ", max_seq_len, " tokens (", format_bytes(activation_bytes),
                   ") exceed the supported ", format_bytes(kMaxActivationBytes));
  }
  // `bytes`: fp32 parameters of a model of this config.
  void check_parameter_bytes(std::uint64_t bytes) const {
    LIGHTGPT_CHECK(bytes <= kMaxParameterBytes, "ModelConfig: the parameters (",
                   format_bytes(bytes), " in fp32) exceed the supported ",
                   format_bytes(kMaxParameterBytes), " (n_layer ", n_layer, ", d_model ", d_model,
                   ", vocab_size ", vocab_size, ", max_seq_len ", max_seq_len, ")");
  }

  bool operator==(const ModelConfig&) const = default;

  // Serialized options start with this prefix; the rest of the key is the option's name.
  static constexpr std::string_view kOptionPrefix = "option.";

  std::string serialize() const {
    std::ostringstream out;
    out << "vocab_size=" << vocab_size << "\nmax_seq_len=" << max_seq_len << "\nn_layer=" << n_layer
        << "\nn_head=" << n_head << "\nd_model=" << d_model << "\n";
    for (const auto& [key, value] : options.entries()) {
      out << kOptionPrefix << key << '=' << value << '\n';
    }
    return out.str();
  }

  // Inverse of serialize(); `source` names the origin (a checkpoint path) in errors. The five
  // trunk fields are required. Configs written before parts declared their options held the
  // built-in parts' settings as plain keys (lightrnn_rows=0); they read as today's options, and
  // the keys at their old defaults are dropped, since those settings were written for every
  // model whatever its composition.
  static ModelConfig parse(std::string_view text, std::string_view source) {
    ModelConfig config;
    struct Field {
      const char* name;
      int* value;
      bool seen = false;
    };
    Field fields[] = {{"vocab_size", &config.vocab_size},
                      {"max_seq_len", &config.max_seq_len},
                      {"n_layer", &config.n_layer},
                      {"n_head", &config.n_head},
                      {"d_model", &config.d_model}};
    struct OldKey {
      std::string_view name, option;
      double default_value;
    };
    static constexpr OldKey kOldKeys[] = {
        {"lightrnn_rows", "lightrnn.rows", 0},
        {"lightrnn_conditioning", "lightrnn.conditioning", 0},
        {"lightrnn_token_embedding", "lightrnn.token_embedding", 0},
        {"mtp_adapter", "mtp.adapter", 0},
        {"afno_sparsity_threshold", "afno.sparsity_threshold", 0.01},
        {"afno_hidden_factor", "afno.hidden_factor", 1},
        {"afno_gate", "afno.gate", 1}};
    auto in_source = [&](const auto& body) {
      try {
        body();
      } catch (const Error& error) {
        throw Error(detail::concat(source, ": ", error.message()));
      }
    };
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
        in_source([&] {
          config.options.set(std::string(key.substr(kOptionPrefix.size())), std::string(value));
        });
        continue;
      }
      const OldKey* old = nullptr;
      for (const OldKey& candidate : kOldKeys) {
        if (key == candidate.name) old = &candidate;
      }
      if (old != nullptr) {
        double number = 0;
        const auto result = std::from_chars(value.data(), value.data() + value.size(), number);
        LIGHTGPT_CHECK(result.ec == std::errc() && result.ptr == value.data() + value.size(),
                       source, ": config value of '", key, "' is not a number: '", value, "'");
        if (number != old->default_value) {
          in_source([&] { config.options.set(std::string(old->option), std::string(value)); });
        }
        continue;
      }
      Field* field = nullptr;
      for (Field& candidate : fields) {
        if (key == candidate.name) field = &candidate;
      }
      LIGHTGPT_CHECK(field != nullptr, source, ": unknown config key '", key, "'");
      const auto result = std::from_chars(value.data(), value.data() + value.size(), *field->value);
      LIGHTGPT_CHECK(result.ec == std::errc() && result.ptr == value.data() + value.size(), source,
                     ": config value of '", key, "' is not an integer: '", value, "'");
      field->seen = true;
    }
    for (const Field& field : fields) {
      LIGHTGPT_CHECK(field.seen, source, ": config lacks the field '", field.name, "'");
    }
    in_source([&] { config.validate(); });
    return config;
  }
};

}  // namespace lightgpt

// ModelConfig: the run-time shape of a model (the compile-time composition is the GPT<...> type).
// `validate()` turns every inconsistent field into a lightgpt::Error that names the field, and
// the config serialises to `key=value` lines so checkpoints stay human-inspectable.
#pragma once

#include <charconv>
#include <cstdint>
#include <sstream>
#include <string>
#include <string_view>

#include "error.hpp"

namespace lightgpt {

// The vocabulary is padded to this many rows so that the logits GEMM has friendly shapes
// (the same choice as llm.c); padded rows never receive probability.
inline constexpr int kVocabPadding = 128;

struct ModelConfig {
  int vocab_size = 50257;
  int max_seq_len = 1024;
  int n_layer = 12;
  int n_head = 12;
  int d_model = 768;

  // GPT-2 small (124M), llm.c's d12.
  static ModelConfig gpt2_small() { return {}; }

  int padded_vocab_size() const {
    return (vocab_size + kVocabPadding - 1) / kVocabPadding * kVocabPadding;
  }
  int head_dim() const { return d_model / n_head; }

  void validate() const {
    auto positive = [](int value, const char* field) {
      LIGHTGPT_CHECK(value > 0, "ModelConfig.", field, " must be positive, got ", value);
    };
    positive(vocab_size, "vocab_size");
    positive(max_seq_len, "max_seq_len");
    positive(n_layer, "n_layer");
    positive(n_head, "n_head");
    positive(d_model, "d_model");
    LIGHTGPT_CHECK(d_model % n_head == 0, "ModelConfig.d_model (", d_model,
                   ") must be divisible by ModelConfig.n_head (", n_head, ")");
    LIGHTGPT_CHECK(vocab_size <= (1 << 30), "ModelConfig.vocab_size (", vocab_size,
                   ") is larger than the supported 2^30");
  }

  bool operator==(const ModelConfig&) const = default;

  std::string serialize() const {
    std::ostringstream out;
    out << "vocab_size=" << vocab_size << "\nmax_seq_len=" << max_seq_len << "\nn_layer=" << n_layer
        << "\nn_head=" << n_head << "\nd_model=" << d_model << "\n";
    return out.str();
  }

  // Inverse of serialize(); `source` names the origin (a checkpoint path) in errors.
  static ModelConfig parse(std::string_view text, std::string_view source) {
    struct Field {
      const char* name;
      int ModelConfig::*member;
      bool seen;
    };
    Field fields[] = {{"vocab_size", &ModelConfig::vocab_size, false},
                      {"max_seq_len", &ModelConfig::max_seq_len, false},
                      {"n_layer", &ModelConfig::n_layer, false},
                      {"n_head", &ModelConfig::n_head, false},
                      {"d_model", &ModelConfig::d_model, false}};
    ModelConfig config;
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
      Field* field = nullptr;
      for (Field& candidate : fields) {
        if (key == candidate.name) field = &candidate;
      }
      LIGHTGPT_CHECK(field != nullptr, source, ": unknown config key '", key, "'");
      int parsed = 0;
      auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), parsed);
      LIGHTGPT_CHECK(ec == std::errc() && ptr == value.data() + value.size(), source,
                     ": config value of '", key, "' is not an integer: '", value, "'");
      config.*(field->member) = parsed;
      field->seen = true;
    }
    for (const Field& field : fields) {
      LIGHTGPT_CHECK(field.seen, source, ": config lacks the field '", field.name, "'");
    }
    config.validate();
    return config;
  }
};

}  // namespace lightgpt

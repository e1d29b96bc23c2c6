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

// How LightRnnHead conditions the column distribution on the row (DESIGN §3).
enum class RowConditioning : int {
  linear_gelu = 0,  // s = GELU(W·h + z_r + b): a C × C matrix W, a bias b, a vector per row (default)
  gelu = 1,         // s = GELU(h + E_row[r]), parameter-free, for the smallest models
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

  void validate() const {
    auto positive = [](auto value, const char* field) {
      LIGHTGPT_CHECK(value > 0, "ModelConfig.", field, " must be positive, got ", value);
    };
    positive(vocab_size, "vocab_size");
    positive(max_seq_len, "max_seq_len");
    positive(n_layer, "n_layer");
    positive(n_head, "n_head");
    positive(d_model, "d_model");
    positive(afno_hidden_factor, "afno_hidden_factor");
    LIGHTGPT_CHECK(d_model % n_head == 0, "ModelConfig.d_model (", d_model,
                   ") must be divisible by ModelConfig.n_head (", n_head, ")");
    LIGHTGPT_CHECK(vocab_size <= (1 << 30), "ModelConfig.vocab_size (", vocab_size,
                   ") is larger than the supported 2^30");
    LIGHTGPT_CHECK(lightrnn_rows >= 0, "ModelConfig.lightrnn_rows must be 0 (automatic) or "
                   "positive, got ", lightrnn_rows);
    LIGHTGPT_CHECK(static_cast<long long>(lightrnn_table_rows()) * lightrnn_table_rows() >=
                       vocab_size,
                   "ModelConfig.lightrnn_rows (", lightrnn_rows, ") is too small: R² = ",
                   static_cast<long long>(lightrnn_rows) * lightrnn_rows,
                   " must be at least vocab_size (", vocab_size, ")");
    LIGHTGPT_CHECK(lightrnn_conditioning == RowConditioning::linear_gelu ||
                       lightrnn_conditioning == RowConditioning::gelu,
                   "ModelConfig.lightrnn_conditioning must be 0 (linear_gelu) or 1 (gelu), got ",
                   static_cast<int>(lightrnn_conditioning));
    LIGHTGPT_CHECK(afno_sparsity_threshold >= 0 && afno_sparsity_threshold < 1e30,
                   "ModelConfig.afno_sparsity_threshold must be finite and non-negative, got ",
                   afno_sparsity_threshold);
  }

  bool operator==(const ModelConfig&) const = default;

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
    config.validate();
    return config;
  }
};

}  // namespace lightgpt

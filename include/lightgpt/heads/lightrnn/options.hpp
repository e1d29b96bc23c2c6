// LightRnnOptions: the settings LightRnnHead keeps in ModelConfig::options (docs/heads.md,
// "LightRnnHead"): the table's size R, how the column distribution is conditioned on the row,
// and the optional untied per-token input vector.
#pragma once

#include <tuple>

#include "../../core/config.hpp"
#include "../../core/error.hpp"

namespace lightgpt {

// How LightRnnHead conditions the column distribution on the row.
enum class RowConditioning : int {
  linear_gelu = 0,  // s = GELU(W·h + z_r + b): a C × C matrix W, a bias b, a vector per row (default)
  gelu = 1,         // s = GELU(h + E_row[r]), parameter-free, for the smallest models
};

struct LightRnnOptions {
  // "lightrnn.rows": rows (= columns) of the token table; 0 means ceil(sqrt(vocab_size)).
  int rows = 0;
  // "lightrnn.conditioning": 0 linear_gelu, 1 gelu.
  RowConditioning conditioning = RowConditioning::linear_gelu;
  // "lightrnn.token_embedding": add an untied per-token input vector (V × C) to E_row[r] +
  // E_col[c], so that the trunk sees which token it reads and not only its cell's row and column.
  // Costs V·C parameters (the output stays factorised); pays off in small models trained on
  // little data.
  bool token_embedding = false;

  static constexpr auto fields =
      std::tuple{option_field("lightrnn.rows", &LightRnnOptions::rows),
                 option_field("lightrnn.conditioning", &LightRnnOptions::conditioning),
                 option_field("lightrnn.token_embedding", &LightRnnOptions::token_embedding)};

  // The smallest R with R² ≥ vocab_size.
  static int smallest_rows(int vocab_size) {
    int r = 1;
    while (static_cast<long long>(r) * r < vocab_size) ++r;
    return r;
  }
  // R of the table: `rows`, or the smallest that holds the vocabulary.
  int table_rows(int vocab_size) const { return rows > 0 ? rows : smallest_rows(vocab_size); }

  void validate(const ModelConfig& config) const {
    const int smallest = smallest_rows(config.vocab_size);
    LIGHTGPT_CHECK(rows >= 0, "ModelConfig option 'lightrnn.rows' must be 0 (automatic) or "
                   "positive, got ", rows);
    LIGHTGPT_CHECK(rows == 0 || rows >= smallest, "ModelConfig option 'lightrnn.rows' (", rows,
                   ") is too small: R² = ", static_cast<long long>(rows) * rows,
                   " must be at least vocab_size (", config.vocab_size, ")");
    // More rows only add empty cells; twice the smallest R already leaves three quarters empty.
    LIGHTGPT_CHECK(rows <= 2 * smallest, "ModelConfig option 'lightrnn.rows' (", rows,
                   ") is too large: at most 2 × ceil(sqrt(vocab_size)) = ", 2 * smallest,
                   " for vocab_size ", config.vocab_size);
    LIGHTGPT_CHECK(conditioning == RowConditioning::linear_gelu ||
                       conditioning == RowConditioning::gelu,
                   "ModelConfig option 'lightrnn.conditioning' must be 0 (linear_gelu) or 1 "
                   "(gelu), got ", static_cast<int>(conditioning));
  }
};

// R of the LightRNN table of a model of `config`.
inline int lightrnn_table_rows(const ModelConfig& config) {
  return config.part<LightRnnOptions>().table_rows(config.vocab_size);
}

}  // namespace lightgpt

// LightRnnHead on the GPU against the CPU Fp32 reference (reference_lightrnn.hpp). CudaLightRnnOps:
// every op of the LightRNN kernel family for fp32, bf16 and fp16 storage, on a table with an empty
// row and scattered empty cells, with token streams skewed so that the deterministic scatters see
// runs of equal keys across several chunks; outputs are NaN-poisoned (or random where the op
// accumulates). CudaLightRnnModel: whole models — one training step of LightRnnHead<> and of
// LightRnnHead<MTP<2>> with CoCoNT (loss, every depth, the KL and every parameter gradient),
// log_probs, decoding, reallocation statistics, bit-identical reruns and reproducible sampling.
// Tolerances: docs/design.md, "Numerics and determinism" (fp32 with TF32 off).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <lightgpt/heads/lightrnn/head.hpp>
#include <lightgpt/io/checkpoint.hpp>
#include <lightgpt/loss/bigram.hpp>
#include <lightgpt/loss/cocont.hpp>
#include <random>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include <lightgpt/testing/determinism.hpp>

#include "cuda_testing.cuh"
#include "reference_lightrnn.hpp"

namespace lightgpt::testing {
namespace cuda_lightrnn {

using O = Ops<Cuda>;

using K = LightRnnKernels<Cuda>;
using Windows = LightRnnWindows<std::int32_t>;
namespace ref = reference;

// ------------------------------------------------------------------------------------- inputs

// A token table: V tokens in random cells of an R × R table, row `empty_row` left empty.
struct Table {
  int V = 0, R = 0;
  std::vector<std::int32_t> token_cell, cell_token, row_count;
};

Table make_table(int V, int R, int empty_row, std::uint32_t seed) {
  Table table;
  table.V = V;
  table.R = R;
  std::vector<std::int32_t> cells;
  for (int cell = 0; cell < R * R; ++cell) {
    if (cell / R != empty_row) cells.push_back(cell);
  }
  std::mt19937 engine(seed);
  std::shuffle(cells.begin(), cells.end(), engine);
  table.token_cell.assign(cells.begin(), cells.begin() + V);
  table.cell_token.assign(std::size_t(R) * R, -1);
  table.row_count.assign(R, 0);
  for (int w = 0; w < V; ++w) {
    table.cell_token[table.token_cell[w]] = w;
    ++table.row_count[table.token_cell[w] / R];
  }
  return table;
}

// The table's arrays in host memory, as the reference reads them.
LightRnnCodebookView host_view(const Table& table) {
  return {table.token_cell.data(), table.cell_token.data(), table.row_count.data(), table.R,
          table.V};
}

// The table's arrays in device memory, as LightRnnKernels<Cuda> reads them.
struct DeviceTable {
  explicit DeviceTable(const Table& table)
      : token_cell(table.token_cell),
        cell_token(table.cell_token),
        row_count(table.row_count),
        R(table.R),
        V(table.V) {}
  LightRnnCodebookView view() const {
    return {token_cell.get(), cell_token.get(), row_count.get(), R, V};
  }
  DeviceArray<std::int32_t> token_cell, cell_token, row_count;
  int R, V;
};

// The first token of row 1 (in column order): the frequent token of skewed_ids.
int frequent_token(const Table& table) {
  for (int c = 0; c < table.R; ++c) {
    if (table.cell_token[table.R + c] >= 0) return table.cell_token[table.R + c];
  }
  return 0;
}

// 40% the frequent token, 30% other tokens of its row, the rest uniform: long runs of one key
// (token, row) that cross many of the keyed sums' 32-entry chunks.
std::vector<std::int32_t> skewed_ids(std::size_t count, const Table& table, std::uint32_t seed) {
  std::mt19937 engine(seed);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  std::uniform_int_distribution<int> any(0, table.V - 1), column(0, table.R - 1);
  const int frequent = frequent_token(table);
  std::vector<std::int32_t> ids(count);
  for (auto& id : ids) {
    const double u = uniform(engine);
    if (u < 0.4) {
      id = frequent;
    } else if (u < 0.7) {
      do {
        id = table.cell_token[table.R + column(engine)];
      } while (id < 0);
    } else {
      id = any(engine);
    }
  }
  return ids;
}

// CoCoNT row targets over the non-empty rows of `table`: contexts a with a % 3 != 0 list three
// rows with probabilities 0.5, 0.3, 0.2; the others have no list.
struct RowNgram {
  std::vector<std::int32_t> offsets{0}, classes;
  std::vector<float> probs, neg_entropy;
};

RowNgram make_row_ngram(const Table& table) {
  std::vector<int> rows;
  for (int r = 0; r < table.R; ++r) {
    if (table.row_count[r] > 0) rows.push_back(r);
  }
  RowNgram ngram;
  ngram.neg_entropy.assign(table.V, 0.0f);
  const float p[3] = {0.5f, 0.3f, 0.2f};
  for (int a = 0; a < table.V; ++a) {
    if (a % 3 != 0) {
      for (int k = 0; k < 3; ++k) {
        ngram.classes.push_back(rows[(a * 7 + 5 * k) % rows.size()]);
        ngram.probs.push_back(p[k]);
        ngram.neg_entropy[a] += p[k] * std::log(p[k]);
      }
    }
    ngram.offsets.push_back(static_cast<std::int32_t>(ngram.classes.size()));
  }
  return ngram;
}

template <class T>
class CudaLightRnnOps : public CudaTest {};
TYPED_TEST_SUITE(CudaLightRnnOps, StorageTypes, StorageTypeNames);

// ------------------------------------------------------------------------------------ embedding

// C = 48 leaves a partial column tile; N = 400 positions with skewed ids; with the untied token
// table (V × C) and without it.
TYPED_TEST(CudaLightRnnOps, EmbeddingForwardAndDeterministicBackward) {
  LIGHTGPT_REQUIRE_GPU();
  using T = TypeParam;
  const int V = 300, R = 20, B = 4, seq_len = 100, C = 48, row_stride = seq_len + 3;
  const Table table = make_table(V, R, 3, 1);
  const auto tokens = skewed_ids(std::size_t(B) * row_stride, table, 2);
  const auto row_table = random_values<T>(std::size_t(R) * C, 3);
  const auto col_table = random_values<T>(std::size_t(R) * C, 4);
  const auto token_table = random_values<T>(std::size_t(V) * C, 10);
  const auto wpe = random_values<T>(std::size_t(seq_len) * C, 5);
  const auto dout = random_values<T>(std::size_t(B) * seq_len * C, 6);

  DeviceArray<std::int32_t> d_tokens(tokens);
  const DeviceTable d_table(table);
  const Windows inputs{tokens.data(), row_stride, B, seq_len};
  const Windows d_inputs{d_tokens.get(), row_stride, B, seq_len};
  DeviceArray<T> d_row(row_table), d_col(col_table), d_token(token_table), d_wpe(wpe), d_dout(dout),
      d_out(std::size_t(B) * seq_len * C);
  for (const bool untied : {false, true}) {
    SCOPED_TRACE(untied ? "with token table" : "without token table");
    std::vector<float> out(std::size_t(B) * seq_len * C);
    ref::lightrnn_embedding_forward(out.data(), inputs, host_view(table), row_table.data(),
                                    col_table.data(), untied ? token_table.data() : nullptr,
                                    wpe.data(), C);
    K::lightrnn_embedding_forward(d_out.get(), d_inputs, d_table.view(), d_row.get(), d_col.get(),
                                  untied ? d_token.get() : static_cast<const T*>(nullptr),
                                  d_wpe.get(), C);
    EXPECT_LT(relative_error(d_out.download(), out), value_tolerance<T>());
  }

  auto drow = random_values<float>(std::size_t(R) * C, 7);
  auto dcol = random_values<float>(std::size_t(R) * C, 8);
  auto dtoken = random_values<float>(std::size_t(V) * C, 11);
  auto dwpe = random_values<float>(std::size_t(seq_len) * C, 9);
  DeviceArray<float> d_drow(drow), d_dcol(dcol), d_dtoken(dtoken), d_dwpe(dwpe);
  ref::lightrnn_embedding_backward(drow.data(), dcol.data(), dtoken.data(), dwpe.data(),
                                   dout.data(), inputs, host_view(table), C);
  K::lightrnn_embedding_backward(d_drow.get(), d_dcol.get(), d_dtoken.get(), d_dwpe.get(),
                                 d_dout.get(), d_inputs, d_table.view(), C);
  const auto first_drow = d_drow.download(), first_dcol = d_dcol.download();
  const auto first_dtoken = d_dtoken.download();
  EXPECT_LT(relative_error(first_drow, drow), gradient_tolerance<T>());
  EXPECT_LT(relative_error(first_dcol, dcol), gradient_tolerance<T>());
  EXPECT_LT(relative_error(first_dtoken, dtoken), gradient_tolerance<T>());
  EXPECT_LT(relative_error(d_dwpe.download(), dwpe), gradient_tolerance<T>());

  // Deterministic: the same accumulation from the same start gives the same bits.
  DeviceArray<float> again_row(random_values<float>(std::size_t(R) * C, 7));
  DeviceArray<float> again_col(random_values<float>(std::size_t(R) * C, 8));
  DeviceArray<float> again_token(random_values<float>(std::size_t(V) * C, 11));
  K::lightrnn_embedding_backward(again_row.get(), again_col.get(), again_token.get(),
                                 static_cast<float*>(nullptr), d_dout.get(), d_inputs,
                                 d_table.view(), C);
  EXPECT_EQ(again_row.download(), first_drow);
  EXPECT_EQ(again_col.download(), first_dcol);
  EXPECT_EQ(again_token.download(), first_dtoken);
}

// ------------------------------------------------------------------------ distributions and loss

// Row log-sum-exp over non-empty rows, the per-position loss with the column log-sum-exp over the
// target row's non-empty cells, and the full-vocabulary log-probabilities row by row.
TYPED_TEST(CudaLightRnnOps, RowLogsumexpCrossEntropyAndLogProbs) {
  LIGHTGPT_REQUIRE_GPU();
  using T = TypeParam;
  const int V = 300, R = 20, B = 3, seq_len = 11, N = B * seq_len, row_stride = seq_len + 2;
  const Table table = make_table(V, R, 3, 10);
  const auto tokens = random_ids(std::size_t(B) * row_stride, V, 11);
  const auto row_logits = random_values<T>(std::size_t(N) * R, 12, 3.0f);
  const auto col_logits = random_values<T>(std::size_t(N) * R, 13, 3.0f);

  std::vector<float> row_lse(N), losses(N), col_lse(N);
  ref::lightrnn_row_logsumexp(row_lse.data(), row_logits.data(), table.row_count.data(), N, R);
  ref::lightrnn_cross_entropy(losses.data(), col_lse.data(), row_logits.data(), row_lse.data(),
                              col_logits.data(), {tokens.data() + 1, row_stride, B, seq_len},
                              host_view(table));

  DeviceArray<std::int32_t> d_tokens(tokens);
  const DeviceTable d_table(table);
  const Windows d_targets{d_tokens.get() + 1, row_stride, B, seq_len};
  DeviceArray<T> d_row_logits(row_logits), d_col_logits(col_logits);
  DeviceArray<float> d_row_lse(N), d_losses(N), d_col_lse(N);
  K::lightrnn_row_logsumexp(d_row_lse.get(), d_row_logits.get(), d_table.row_count.get(), N, R);
  K::lightrnn_cross_entropy(d_losses.get(), d_col_lse.get(), d_row_logits.get(), d_row_lse.get(),
                            d_col_logits.get(), d_targets, d_table.view());
  EXPECT_LT(relative_error(d_row_lse.download(), row_lse), 1e-5);
  EXPECT_LT(relative_error(d_col_lse.download(), col_lse), 1e-5);
  EXPECT_LT(relative_error(d_losses.download(), losses), 1e-5);

  // Two calls over row ranges [0, 7) (with the empty row 3) and [7, R), column logits for each
  // (row, position) pair: together they write all V tokens (no NaN left).
  const auto pair_logits = random_values<T>(std::size_t(R) * N * R, 14, 3.0f);
  DeviceArray<T> d_pair_logits(pair_logits);
  std::vector<float> log_probs(std::size_t(N) * V);
  DeviceArray<float> d_log_probs(log_probs.size());
  d_row_lse.upload(row_lse);
  for (const int first : {0, 7}) {
    const int rows = first == 0 ? 7 : R - 7;
    const std::size_t offset = std::size_t(first) * N * R;
    ref::lightrnn_log_probs_rows(log_probs.data(), row_logits.data(), row_lse.data(),
                                 pair_logits.data() + offset, host_view(table), first, rows, N);
    K::lightrnn_log_probs_rows(d_log_probs.get(), d_row_logits.get(), d_row_lse.get(),
                               d_pair_logits.get() + offset, d_table.view(), first, rows, N);
  }
  const auto gpu_log_probs = d_log_probs.download();
  EXPECT_LT(relative_error(gpu_log_probs, log_probs), 1e-5);
  for (int n = 0; n < N; ++n) {
    double total = 0;
    for (int v = 0; v < V; ++v) total += std::exp(double(gpu_log_probs[std::size_t(n) * V + v]));
    EXPECT_NEAR(total, 1.0, 1e-4) << "position " << n;
  }
}

TYPED_TEST(CudaLightRnnOps, ConditionForwardAndRowRange) {
  LIGHTGPT_REQUIRE_GPU();
  using T = TypeParam;
  const int V = 300, R = 20, B = 2, seq_len = 9, N = B * seq_len, C = 40, row_stride = seq_len + 3;
  const Table table = make_table(V, R, 3, 20);
  const auto tokens = random_ids(std::size_t(B) * row_stride, V, 21);
  const auto base = random_values<T>(std::size_t(N) * C, 22, 2.0f);
  const auto row_table = random_values<T>(std::size_t(R) * C, 23);

  std::vector<float> slope(std::size_t(N) * C), state(slope.size());
  ref::lightrnn_condition_forward(slope.data(), state.data(), base.data(), row_table.data(),
                                  {tokens.data() + 2, row_stride, B, seq_len}, host_view(table), C);
  DeviceArray<std::int32_t> d_tokens(tokens);
  const DeviceTable d_table(table);
  DeviceArray<T> d_base(base), d_row_table(row_table), d_slope(slope.size()), d_state(state.size());
  K::lightrnn_condition_forward(d_slope.get(), d_state.get(), d_base.get(), d_row_table.get(),
                                Windows{d_tokens.get() + 2, row_stride, B, seq_len}, d_table.view(),
                                C);
  EXPECT_LT(relative_error(d_slope.download(), slope), value_tolerance<T>());
  EXPECT_LT(relative_error(d_state.download(), state), value_tolerance<T>());

  // Rows 5..17 at once: 13 states per position, more than one block per row.
  const int first = 5, rows = 13;
  std::vector<float> row_states(std::size_t(rows) * N * C);
  ref::lightrnn_condition_rows(row_states.data(), base.data(), row_table.data(), first, rows, N, C);
  DeviceArray<T> d_row_states(row_states.size());
  K::lightrnn_condition_rows(d_row_states.get(), d_base.get(), d_row_table.get(), first, rows, N,
                             C);
  EXPECT_LT(relative_error(d_row_states.download(), row_states), value_tolerance<T>());
}

// ------------------------------------------------------------------------------------- backward

// Two depths (weights 1 and 0.3) sharing the row logits, without and with CoCoNT's soft target.
TYPED_TEST(CudaLightRnnOps, RowBackwardWithDepthsAndCocont) {
  LIGHTGPT_REQUIRE_GPU();
  using T = TypeParam;
  const int V = 300, R = 20, B = 3, seq_len = 10, N = B * seq_len, row_stride = seq_len + 2,
            depths = 2;
  const float weights[depths] = {1.0f, 0.3f};
  const float scale = 1.0f / N, alpha = 0.4f;
  const Table table = make_table(V, R, 3, 30);
  const RowNgram ngram = make_row_ngram(table);
  const auto tokens = random_ids(std::size_t(B) * row_stride, V, 31);
  const auto logits = random_values<T>(std::size_t(N) * R, 32, 3.0f);
  std::vector<float> lse(N);
  ref::lightrnn_row_logsumexp(lse.data(), logits.data(), table.row_count.data(), N, R);

  const Windows targets{tokens.data() + 1, row_stride, B, seq_len};
  DeviceArray<std::int32_t> d_tokens(tokens), d_offsets(ngram.offsets), d_classes(ngram.classes);
  const DeviceTable d_table(table);
  const Windows d_targets{d_tokens.get() + 1, row_stride, B, seq_len};
  DeviceArray<float> d_lse(lse), d_probs(ngram.probs), d_neg_entropy(ngram.neg_entropy);
  for (bool cocont : {false, true}) {
    std::vector<float> expected(logits);
    ref::NgramHost host_ngram;
    if (cocont) {
      host_ngram = {ngram.offsets.data(), ngram.classes.data(), ngram.probs.data(),
                    ngram.neg_entropy.data(), alpha};
    }
    ref::lightrnn_row_backward_inplace(expected.data(), lse.data(), targets, host_view(table),
                                       weights, depths, scale, tokens.data(), host_ngram);
    DeviceArray<T> d_logits(logits);
    if (cocont) {
      const NgramTargets<float> view{d_offsets.get(), d_classes.get(), d_probs.get(),
                                     d_neg_entropy.get(), alpha};
      K::lightrnn_row_backward_inplace(d_logits.get(), d_lse.get(), d_targets, d_table.view(),
                                       weights, depths, scale,
                                       static_cast<const std::int32_t*>(d_tokens.get()), view);
    } else {
      K::lightrnn_row_backward_inplace(d_logits.get(), d_lse.get(), d_targets, d_table.view(),
                                       weights, depths, scale);
    }
    EXPECT_LT(relative_error(d_logits.download(), expected), gradient_tolerance<T>())
        << "cocont " << cocont;
  }
}

TYPED_TEST(CudaLightRnnOps, ColumnBackward) {
  LIGHTGPT_REQUIRE_GPU();
  using T = TypeParam;
  const int V = 300, R = 20, B = 3, seq_len = 10, N = B * seq_len, row_stride = seq_len + 1;
  const float weight = 0.7f / N;
  const Table table = make_table(V, R, 3, 40);
  const auto tokens = random_ids(std::size_t(B) * row_stride, V, 41);
  const auto row_logits = random_values<T>(std::size_t(N) * R, 42, 3.0f);
  const auto col_logits = random_values<T>(std::size_t(N) * R, 43, 3.0f);
  std::vector<float> row_lse(N), losses(N), col_lse(N);
  ref::lightrnn_row_logsumexp(row_lse.data(), row_logits.data(), table.row_count.data(), N, R);
  const Windows targets{tokens.data() + 1, row_stride, B, seq_len};
  ref::lightrnn_cross_entropy(losses.data(), col_lse.data(), row_logits.data(), row_lse.data(),
                              col_logits.data(), targets, host_view(table));
  std::vector<float> expected(col_logits);
  ref::lightrnn_column_backward_inplace(expected.data(), col_lse.data(), targets, host_view(table),
                                        weight);
  DeviceArray<std::int32_t> d_tokens(tokens);
  const DeviceTable d_table(table);
  DeviceArray<T> d_logits(col_logits);
  DeviceArray<float> d_col_lse(col_lse);
  K::lightrnn_column_backward_inplace(d_logits.get(), d_col_lse.get(),
                                      Windows{d_tokens.get() + 1, row_stride, B, seq_len},
                                      d_table.view(), weight);
  EXPECT_LT(relative_error(d_logits.download(), expected), gradient_tolerance<T>());
}

// dpre = dstate ⊙ slope in place, and the row table's gradient accumulated at the target rows;
// N = 400 skewed positions, C = 72 (three column tiles, the last partial).
TYPED_TEST(CudaLightRnnOps, ConditionBackwardIsDeterministic) {
  LIGHTGPT_REQUIRE_GPU();
  using T = TypeParam;
  const int V = 300, R = 20, B = 4, seq_len = 100, N = B * seq_len, C = 72,
            row_stride = seq_len + 1;
  const Table table = make_table(V, R, 3, 50);
  const auto tokens = skewed_ids(std::size_t(B) * row_stride, table, 51);
  const auto dstate = random_values<T>(std::size_t(N) * C, 52);
  const auto slope = random_values<T>(std::size_t(N) * C, 53);
  auto drow = random_values<float>(std::size_t(R) * C, 54);
  std::vector<float> dpre(dstate);
  ref::lightrnn_condition_backward(dpre.data(), slope.data(), drow.data(),
                                   {tokens.data() + 1, row_stride, B, seq_len}, host_view(table),
                                   C);

  DeviceArray<std::int32_t> d_tokens(tokens);
  const DeviceTable d_table(table);
  const Windows d_targets{d_tokens.get() + 1, row_stride, B, seq_len};
  DeviceArray<T> d_dpre(dstate), d_slope(slope);
  DeviceArray<float> d_drow(random_values<float>(std::size_t(R) * C, 54));
  K::lightrnn_condition_backward(d_dpre.get(), d_slope.get(), d_drow.get(), d_targets,
                                 d_table.view(), C);
  const auto first = d_drow.download();
  EXPECT_LT(relative_error(d_dpre.download(), dpre), gradient_tolerance<T>());
  EXPECT_LT(relative_error(first, drow), gradient_tolerance<T>());

  DeviceArray<T> again_dpre(dstate);
  DeviceArray<float> again(random_values<float>(std::size_t(R) * C, 54));
  K::lightrnn_condition_backward(again_dpre.get(), d_slope.get(), again.get(), d_targets,
                                 d_table.view(), C);
  EXPECT_EQ(again.download(), first);
}

// Reallocation statistics: per-token sums over all R entries (empty ones too), keyed by token;
// the frequent token's run crosses chunk boundaries.
TYPED_TEST(CudaLightRnnOps, AccumulateStatisticsIsDeterministic) {
  LIGHTGPT_REQUIRE_GPU();
  using T = TypeParam;
  const int V = 300, R = 20, B = 4, seq_len = 100, N = B * seq_len, row_stride = seq_len + 1;
  const Table table = make_table(V, R, 3, 60);
  const auto tokens = skewed_ids(std::size_t(B) * row_stride, table, 61);
  const auto row_logits = random_values<T>(std::size_t(N) * R, 62, 3.0f);
  const auto col_logits = random_values<T>(std::size_t(N) * R, 63, 3.0f);
  auto row_loss = random_values<float>(std::size_t(V) * R, 64);
  auto col_loss = random_values<float>(std::size_t(V) * R, 65);
  std::vector<float> lse(2 * N);
  ref::lightrnn_accumulate_statistics(row_loss.data(), col_loss.data(), lse.data(),
                                      row_logits.data(), col_logits.data(),
                                      {tokens.data() + 1, row_stride, B, seq_len}, R);

  DeviceArray<std::int32_t> d_tokens(tokens);
  const Windows d_targets{d_tokens.get() + 1, row_stride, B, seq_len};
  DeviceArray<T> d_row_logits(row_logits), d_col_logits(col_logits);
  DeviceArray<float> d_row_loss(random_values<float>(std::size_t(V) * R, 64));
  DeviceArray<float> d_col_loss(random_values<float>(std::size_t(V) * R, 65));
  DeviceArray<float> d_lse(2 * N);
  K::lightrnn_accumulate_statistics(d_row_loss.get(), d_col_loss.get(), d_lse.get(),
                                    d_row_logits.get(), d_col_logits.get(), d_targets, R);
  const auto first_row = d_row_loss.download(), first_col = d_col_loss.download();
  EXPECT_LT(relative_error(d_lse.download(), lse), 1e-5);
  EXPECT_LT(relative_error(first_row, row_loss), gradient_tolerance<T>());
  EXPECT_LT(relative_error(first_col, col_loss), gradient_tolerance<T>());

  DeviceArray<float> again_row(random_values<float>(std::size_t(V) * R, 64));
  DeviceArray<float> again_col(random_values<float>(std::size_t(V) * R, 65));
  K::lightrnn_accumulate_statistics(again_row.get(), again_col.get(), d_lse.get(),
                                    d_row_logits.get(), d_col_logits.get(), d_targets, R);
  EXPECT_EQ(again_row.download(), first_row);
  EXPECT_EQ(again_col.download(), first_col);
}

// --------------------------------------------------------------------------------------- models

template <class P, int K = 1>
using CudaLightRnn = GPT<P, LightRnnHead<MTP<K>>, Attention, Cuda>;

// V = 500 in a 24 × 24 table whose row 5 is empty (and 52 cells elsewhere).
ModelConfig model_config() {
  ModelConfig config;
  config.vocab_size = 500;
  config.max_seq_len = 16;
  config.n_layer = 2;
  config.n_head = 4;
  config.d_model = 64;
  config.options.set("lightrnn.rows", 24);
  return config;
}
constexpr int kB = 4, kT = 16;
constexpr std::uint64_t kSeed = 11;

std::vector<std::int32_t> model_cells() {
  const ModelConfig config = model_config();
  return make_table(config.vocab_size, config.part<LightRnnOptions>().rows, 5, 70).token_cell;
}

// Lists of four successors (probabilities 4:3:2:1 over distinct ids) for three contexts in four.
BigramTable make_bigram(int V) {
  const int K = 4;
  BigramTable table(V, K);
  std::mt19937 engine(71);
  std::uniform_int_distribution<int> any(0, V - 1);
  for (int a = 0; a < V; ++a) {
    if (a % 4 == 0) continue;
    std::vector<std::uint32_t> ids;
    while (static_cast<int>(ids.size()) < K) {
      const auto id = static_cast<std::uint32_t>(any(engine));
      if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
    }
    const std::vector<float> probs{0.4f, 0.3f, 0.2f, 0.1f};
    table.set(a, ids, probs);
  }
  return table;
}

ref::LightRnnSetup base_setup() {
  ref::LightRnnSetup setup;
  setup.token_cells = model_cells();
  return setup;
}

template <class Model>
void apply(Model& model, const ref::LightRnnSetup& setup) {
  model.set_mtp_weight(setup.mtp_weight);
  model.head().set_codebook(
      LightRnnCodebook::from_cells(lightrnn_table_rows(model.config()), setup.token_cells));
  if (setup.cocont != nullptr) {
    model.set_cocont(*setup.cocont);
    model.set_cocont_alpha(setup.cocont_alpha);
  }
}

template <class P>
class CudaLightRnnModel : public CudaTest {};
using Precisions = ::testing::Types<Fp32, Bf16, Fp16>;
struct PrecisionNames {
  template <class P>
  static std::string GetName(int) {
    return std::string(P::name);
  }
};
TYPED_TEST_SUITE(CudaLightRnnModel, Precisions, PrecisionNames);

// One step of `Model` (built with the setup) against the reference step; returns the GPU loss.
template <class Model>
float expect_step_matches(const ref::LightRnnSetup& setup, const std::vector<std::int32_t>& tokens,
                          const ModelConfig& config = model_config()) {
  using T = typename Model::T;
  const ref::LightRnnStep expected =
      ref::lightrnn_training_step(config, kSeed, setup, tokens, kB, kT);
  // fp16 gradients this small need a loss scale (as in training), divided out below.
  const float grad_scale = std::is_same_v<T, float16> ? 1024.0f : 1.0f;
  Model model(config, kSeed);
  apply(model, setup);
  model.zero_grad();
  const float loss = model.forward(tokens.data(), kB, kT);
  model.backward(grad_scale);
  EXPECT_TRUE(std::isfinite(loss));
  EXPECT_LT(std::abs(loss - expected.loss) / expected.loss, value_tolerance<T>())
      << "cpu " << expected.loss << ", gpu " << loss;
  const auto& losses = model.losses();
  EXPECT_EQ(losses.depths, static_cast<int>(expected.depth_losses.size()));
  for (int j = 0; j < losses.depths && j < static_cast<int>(expected.depth_losses.size()); ++j) {
    EXPECT_LT(std::abs(losses.depth[j] - expected.depth_losses[j]) / expected.depth_losses[j],
              value_tolerance<T>())
        << "depth " << j + 1;
  }
  // The KL term is small next to the loss: compared on the loss's scale.
  EXPECT_LT(std::abs(losses.cocont - expected.cocont) / expected.loss, value_tolerance<T>())
      << "cocont: cpu " << expected.cocont << ", gpu " << losses.cocont;
  const auto& tensors = model.parameters().layout().tensors();
  EXPECT_EQ(tensors.size(), expected.grads.size());
  for (std::size_t i = 0; i < tensors.size() && i < expected.grads.size(); ++i) {
    auto grad = model.parameters().read_grad(tensors[i]);
    for (float& g : grad) g /= grad_scale;
    EXPECT_LT(relative_error(grad, expected.grads[i]), gradient_tolerance<T>()) << tensors[i].name;
  }
  return loss;
}

TYPED_TEST(CudaLightRnnModel, TrainingStepMatchesCpuFp32) {
  LIGHTGPT_REQUIRE_GPU();
  const ref::LightRnnSetup setup = base_setup();
  const auto tokens = random_ids(std::size_t(kB) * (kT + 1), model_config().vocab_size, 72);
  const float loss = expect_step_matches<CudaLightRnn<TypeParam>>(setup, tokens);

  // An inference pass over the same windows gives the training loss.
  CudaLightRnn<TypeParam> model(model_config(), kSeed);
  apply(model, setup);
  EXPECT_LT(std::abs(model.evaluate(tokens.data(), kB, kT) - loss) / loss, 1e-6);
}

// MTP<2> (w_mtp = 0.5) with CoCoNT (α = 0.3): depth 1 scores the row soft target.
TYPED_TEST(CudaLightRnnModel, Mtp2WithCocontTrainingStepMatchesCpuFp32) {
  LIGHTGPT_REQUIRE_GPU();
  const BigramTable bigram = make_bigram(model_config().vocab_size);
  ref::LightRnnSetup setup = base_setup();
  setup.mtp_depth = 2;
  setup.mtp_weight = 0.5f;
  setup.cocont = &bigram;
  setup.cocont_alpha = 0.3f;
  const auto tokens = random_ids(std::size_t(kB) * (kT + 2), model_config().vocab_size, 73);
  expect_step_matches<CudaLightRnn<TypeParam, 2>>(setup, tokens);
}

// The untied token table: its gradient is a keyed sum by token id, not by cell.
TYPED_TEST(CudaLightRnnModel, TokenEmbeddingTrainingStepMatchesCpuFp32) {
  LIGHTGPT_REQUIRE_GPU();
  ModelConfig config = model_config();
  config.options.set("lightrnn.token_embedding", true);
  const auto tokens = random_ids(std::size_t(kB) * (kT + 1), config.vocab_size, 74);
  expect_step_matches<CudaLightRnn<TypeParam>>(base_setup(), tokens, config);
}

TYPED_TEST(CudaLightRnnModel, LogProbsMatchCpuFp32) {
  LIGHTGPT_REQUIRE_GPU();
  using T = typename TypeParam::storage_t;
  const ModelConfig config = model_config();
  const ref::LightRnnSetup setup = base_setup();
  const int B = 2, seq_len = 8, V = config.vocab_size;
  const auto inputs = random_ids(std::size_t(B) * seq_len, V, 74);
  const auto expected = ref::lightrnn_log_probs(config, kSeed, setup, inputs, B, seq_len);
  CudaLightRnn<TypeParam> model(config, kSeed);
  apply(model, setup);
  DeviceArray<float> d_out(expected.size());
  model.log_probs(inputs.data(), B, seq_len, d_out.get());
  const auto actual = d_out.download();
  EXPECT_LT(relative_error(actual, expected), value_tolerance<T>());
  for (int n = 0; n < B * seq_len; ++n) {
    double total = 0;
    for (int v = 0; v < V; ++v) total += std::exp(double(actual[std::size_t(n) * V + v]));
    EXPECT_NEAR(total, 1.0, 1e-4) << "position " << n;
  }
}

// Decoding conditions the position on every non-empty row in one batched step (all 24 rows here,
// all 225 at GPT-2's V = 50257 in a 225 × 225 table whose last row is empty): each step's
// distribution matches the CPU's decode and the GPU's own log_probs over the whole sequence, which
// takes the rows a few at a time.
TYPED_TEST(CudaLightRnnModel, DecodeMatchesCpuFp32AndFullForward) {
  LIGHTGPT_REQUIRE_GPU();
  using T = typename TypeParam::storage_t;
  ModelConfig gpt2_vocabulary = model_config();
  gpt2_vocabulary.vocab_size = 50257;
  gpt2_vocabulary.options.set("lightrnn.rows", 0);  // R = 225
  gpt2_vocabulary.n_layer = 1;
  for (const ModelConfig& config : {model_config(), gpt2_vocabulary}) {
    SCOPED_TRACE("V = " + std::to_string(config.vocab_size));
    ref::LightRnnSetup setup = base_setup();
    if (config.vocab_size != model_config().vocab_size) {
      setup.token_cells =
          LightRnnCodebook::sequential(config.vocab_size, lightrnn_table_rows(config))
              .token_cells();
    }
    const int V = config.vocab_size, steps = 10;
    const auto sequence = random_ids(steps, V, 75);
    const auto expected = ref::lightrnn_decode_log_probs(config, kSeed, setup, sequence);
    CudaLightRnn<TypeParam> model(config, kSeed);
    apply(model, setup);
    DeviceArray<float> d_full(std::size_t(steps) * V);
    model.log_probs(sequence.data(), 1, steps, d_full.get());
    const auto full = d_full.download();
    model.decode_reset();
    for (int i = 0; i < steps; ++i) {
      const auto log_probs = model.decode(sequence[i]);
      const std::vector<float> actual(log_probs.begin(), log_probs.end());
      const std::vector<float> forward(full.begin() + std::size_t(i) * V,
                                       full.begin() + std::size_t(i + 1) * V);
      EXPECT_LT(relative_error(actual, expected[i]), value_tolerance<T>()) << "position " << i;
      EXPECT_LT(relative_error(actual, forward), value_tolerance<T>()) << "position " << i;
    }
  }
}

TYPED_TEST(CudaLightRnnModel, ReallocationStatisticsMatchCpuFp32) {
  LIGHTGPT_REQUIRE_GPU();
  using T = typename TypeParam::storage_t;
  const ModelConfig config = model_config();
  const ref::LightRnnSetup setup = base_setup();
  const auto tokens = random_ids(std::size_t(kB) * (kT + 1), config.vocab_size, 76);
  const auto expected = ref::lightrnn_statistics(config, kSeed, setup, tokens, kB, kT);
  CudaLightRnn<TypeParam> model(config, kSeed);
  apply(model, setup);
  model.head().begin_reallocation_statistics();
  model.evaluate(tokens.data(), kB, kT);
  EXPECT_LT(relative_error(model.head().reallocation_statistics(), expected),
            gradient_tolerance<T>());
  // The bootstrap reallocation runs on the host from these statistics and uploads the new map.
  const ReallocationReport report = model.head().reallocate();
  EXPECT_TRUE(std::isfinite(report.cost_before) && std::isfinite(report.cost_after));
  EXPECT_TRUE(std::isfinite(model.evaluate(tokens.data(), kB, kT)));
}

// Two models with the same seed, MTP<2> and CoCoNT on the default (TF32) path: bit-identical
// losses and gradients over three AdamW steps.
TYPED_TEST(CudaLightRnnModel, TwoRunsAreBitIdentical) {
  LIGHTGPT_REQUIRE_GPU();
  cuda::context().set_allow_tf32(true);
  const ModelConfig config = model_config();
  const BigramTable bigram = make_bigram(config.vocab_size);
  ref::LightRnnSetup setup = base_setup();
  setup.mtp_weight = 0.5f;
  setup.cocont = &bigram;
  const std::size_t window = std::size_t(kB) * (kT + 2);
  const auto tokens = random_ids(3 * window, config.vocab_size, 77);
  const auto run = [&] {
    return record_training_run<CudaLightRnn<TypeParam, 2>>(
        config, kSeed, [&](auto& model) { apply(model, setup); }, tokens, kB, kT, 3);
  };
  const TrainingRecord first = run();
  EXPECT_TRUE(first == run()) << "losses (every depth, CoCoNT) or gradients differ between runs";
}

// A model trained on the GPU in 16-bit storage, saved, then evaluated on the CPU in fp32 from the
// checkpoint alone: the same validation loss, to the storage precision's tolerance.
TYPED_TEST(CudaLightRnnModel, CheckpointEvaluatesOnCpu) {
  LIGHTGPT_REQUIRE_GPU();
  using T = typename TypeParam::storage_t;
  const ModelConfig config = model_config();
  CudaLightRnn<TypeParam> model(config, kSeed);
  apply(model, base_setup());
  AdamW<Cuda, float> optimizer(model.parameters().layout());
  const std::size_t window = std::size_t(kB) * (kT + 1);
  const auto tokens = random_ids(4 * window, config.vocab_size, 78);
  for (int step = 0; step < 3; ++step) {
    model.zero_grad();
    model.forward(tokens.data() + step * window, kB, kT);
    model.backward(std::is_same_v<T, float16> ? 1024.0f : 1.0f);
    optimizer.step(model.parameters(), 3e-3, std::is_same_v<T, float16> ? 1.0 / 1024 : 1.0);
  }
  const std::vector<std::int32_t> held_out(tokens.begin() + 3 * window, tokens.end());
  const float gpu = model.evaluate(held_out.data(), kB, kT);
  const std::string path =
      ::testing::TempDir() + "lightgpt_cuda_checkpoint_" + std::string(TypeParam::name) + ".bin";
  save_checkpoint(path, model, 3);
  const float cpu = ref::lightrnn_checkpoint_evaluate(path, held_out, kB, kT);
  std::remove(path.c_str());
  EXPECT_LT(std::abs(cpu - gpu) / cpu, value_tolerance<T>()) << "gpu " << gpu << ", cpu " << cpu;
}

// Sampling from the joint distribution through the decode path: the same seed draws the same
// tokens, all inside the vocabulary, also past max_seq_len (the context restarts).
TYPED_TEST(CudaLightRnnModel, GenerateIsReproducible) {
  LIGHTGPT_REQUIRE_GPU();
  const ModelConfig config = model_config();
  CudaLightRnn<TypeParam> model(config, kSeed);
  apply(model, base_setup());
  const std::vector<std::int32_t> prompt{1, 2, 3, 4};
  SamplingOptions options;
  options.temperature = 0.8;
  options.top_k = 50;
  options.seed = 5;
  const auto first = model.generate(prompt, 20, options);
  const auto second = model.generate(prompt, 20, options);
  ASSERT_EQ(first.size(), 20u);
  EXPECT_EQ(first, second);
  for (std::int32_t id : first) EXPECT_TRUE(id >= 0 && id < config.vocab_size) << id;
}

}  // namespace cuda_lightrnn
}  // namespace lightgpt::testing

// LightRnnHead: a hand-computed loss, full-vocabulary log-probabilities that sum to one over
// exactly the V tokens (with empty rows and cells), the batched ops behind them, decoding against
// log_probs, the parameter count, and bootstrap reallocation in a model: a lower cost on its own
// statistics, training that goes on, and a checkpoint that keeps the new codebook.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <set>

#include "head_instances.hpp"
#include "scratch.hpp"

namespace lightgpt::testing {
namespace lightrnn_tests {
namespace {

double gelu(double x) {
  return 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
}

// The head alone on hand-set hidden states and tables: V = 5 tokens in a 3 × 3 table (sequential:
// row 0 = tokens 0, 1, 2; row 1 = tokens 3, 4 and an empty cell; row 2 empty).
struct TinyHead {
  using Head = detail::LightRnnHeadImpl<Cpu, Fp64, 1>;
  ModelConfig config;
  ParameterLayout layout;
  std::unique_ptr<ParameterStore<Fp64, Cpu>> store;
  std::unique_ptr<Head> head;
  Buffer<std::byte, Cpu> arena;

  explicit TinyHead(RowConditioning conditioning) {
    config.vocab_size = 5;
    config.options.set("lightrnn.rows", 3);
    config.d_model = 2;
    config.n_head = 1;
    config.options.set("lightrnn.conditioning", conditioning);
    Head::declare_input(layout, config);
    Head::declare_output(layout, config);
    store = std::make_unique<ParameterStore<Fp64, Cpu>>(layout);
    set("lightrnn_row", {1, 0, 0, 1, 5, 5});  // the empty row has the largest logits
    set("lightrnn_col", {1, 0, 0, 1, 3, 3});  // so has the empty cell of row 1
    if (conditioning == RowConditioning::linear_gelu) {
      set("lightrnn_w", {0.5, 0, 0, 0.5});
      set("lightrnn_b", {0.1, -0.1});
      set("lightrnn_z", {-1, 2, 0.5, -0.5, 7, 7});  // the empty row's vector is never read
    }
    head = std::make_unique<Head>(config);
    head->bind_parameters(layout, store->values(), store->grads());
    ArenaBinder measure;
    head->bind_activations(measure, 2);
    arena = Buffer<std::byte, Cpu>(measure.bytes());
    ArenaBinder bind(arena.data());
    head->bind_activations(bind, 2);
  }
  void set(const std::string& name, std::vector<double> values) {
    store->write(layout.at(name), values.data());
  }
};

// -log P(r) - log P(c | r) with the row softmax over rows 0, 1 and the column softmax over the
// non-empty cells of the target's row.
double expected_nll(const double h[2], int row, int column, bool linear) {
  const double row_logits[2] = {h[0], h[1]};  // h · E_row[0], h · E_row[1]
  const double log_p_row =
      row_logits[row] - std::log(std::exp(row_logits[0]) + std::exp(row_logits[1]));
  // The row's vector in s: z_r with W (linear), else E_row[r].
  const double row_vector[2][2][2] = {{{1, 0}, {0, 1}}, {{-1, 2}, {0.5, -0.5}}};
  double s[2];
  for (int c = 0; c < 2; ++c) {
    const double base = linear ? 0.5 * h[c] + (c == 0 ? 0.1 : -0.1) : h[c];
    s[c] = gelu(base + row_vector[linear][row][c]);
  }
  const double col_logits[3] = {s[0], s[1], 3 * (s[0] + s[1])};
  const int valid = row == 0 ? 3 : 2;
  double sum = 0;
  for (int c = 0; c < valid; ++c) sum += std::exp(col_logits[c]);
  return -log_p_row - (col_logits[column] - std::log(sum));
}

void check_hand_computed(RowConditioning conditioning) {
  TinyHead tiny(conditioning);
  const bool linear = conditioning == RowConditioning::linear_gelu;
  const double hidden[4] = {1, 2, -1, 0.5};
  // Position 0 predicts token 4 (row 1, column 1), position 1 token 2 (row 0, column 2).
  const std::int32_t tokens[3] = {0, 4, 2};
  const HeadLosses<double> losses = tiny.head->forward(hidden, tokens, 3, 1, 2, 1);
  const double nll0 = expected_nll(hidden, 1, 1, linear),
               nll1 = expected_nll(hidden + 2, 0, 2, linear);
  EXPECT_NEAR(losses.main, (nll0 + nll1) / 2, 1e-14);
  EXPECT_EQ(losses.depth[0], losses.main);

  std::vector<double> log_probs(2 * 5, std::numeric_limits<double>::quiet_NaN());
  tiny.head->log_probs(log_probs.data(), hidden, 2);
  EXPECT_NEAR(log_probs[4], -nll0, 1e-14);
  EXPECT_NEAR(log_probs[5 + 2], -nll1, 1e-14);
  for (int n = 0; n < 2; ++n) {
    double total = 0;
    for (int v = 0; v < 5; ++v) total += std::exp(log_probs[n * 5 + v]);
    EXPECT_NEAR(total, 1.0, 1e-14);
  }
}

TEST(LightRnnHead, HandComputedLossLinearGelu) {
  check_hand_computed(RowConditioning::linear_gelu);
}
TEST(LightRnnHead, HandComputedLossParameterFree) { check_hand_computed(RowConditioning::gelu); }

TEST(LightRnnHead, ParametersAreTwoTablesPlusOneConditioningStep) {
  ModelConfig config = tiny_config();  // V = 23, R = 5, C = 8
  LightRnnFp32 model(config, 1);
  const ParameterLayout& layout = model.parameters().layout();
  EXPECT_EQ(layout.tensors().front().name, "lightrnn_row");
  EXPECT_EQ(layout.at("lightrnn_row").shape, (std::vector<std::int64_t>{5, 8}));
  EXPECT_EQ(layout.at("lightrnn_col").shape, (std::vector<std::int64_t>{5, 8}));
  EXPECT_EQ(layout.at("lightrnn_w").numel, 64u);
  EXPECT_TRUE(layout.at("lightrnn_w").weight_decay);
  EXPECT_EQ(layout.at("lightrnn_b").numel, 8u);
  EXPECT_EQ(layout.at("lightrnn_z").shape, (std::vector<std::int64_t>{5, 8}));
  EXPECT_FALSE(layout.at("lightrnn_z").weight_decay);
  EXPECT_EQ(layout.find("wte"), nullptr);
  EXPECT_EQ(LightRnnFp32::composition(), "head=lightrnn<mtp=1> mixer=attention");

  // GPT-2 small: 3·R·C + C² + C = 1,108,992 head parameters against V·C = 38.6 M.
  const ModelConfig small = ModelConfig::gpt2_small();
  const long long R = lightrnn_table_rows(small), C = small.d_model;
  EXPECT_EQ(R, 225);
  EXPECT_GT(double(small.vocab_size) * C / double(3 * R * C + C * C + C), 34.0);

  config.options.set("lightrnn.conditioning", RowConditioning::gelu);
  LightRnnFp32 parameter_free(config, 1);
  EXPECT_EQ(parameter_free.parameters().layout().find("lightrnn_w"), nullptr);
  EXPECT_EQ(model.num_parameters() - parameter_free.num_parameters(), 64u + 8u + 40u);
}

// The untied token vectors: indexed by token id (not by cell, so a scattered codebook must not
// move them), added to E_row[r] + E_col[c] + wpe[t]; the backward puts each position's gradient
// into its own token's row, summed over repeats. Hand-set tables, V = 5 in a 3 × 3 table.
TEST(LightRnnHead, TokenEmbeddingAddsEachTokensOwnVector) {
  using Head = detail::LightRnnHeadImpl<Cpu, Fp64, 1>;
  ModelConfig config;
  config.vocab_size = 5;
  config.options.set("lightrnn.rows", 3);
  config.d_model = 2;
  config.n_head = 1;
  config.options.set("lightrnn.token_embedding", true);
  // The embedding alone: no W, b, z.
  config.options.set("lightrnn.conditioning", RowConditioning::gelu);
  ParameterLayout layout;
  Head::declare_input(layout, config);
  EXPECT_EQ(layout.at("lightrnn_token").shape, (std::vector<std::int64_t>{5, 2}));
  EXPECT_FALSE(layout.at("lightrnn_token").weight_decay);
  ParameterStore<Fp64, Cpu> store(layout);
  const std::vector<double> rows = {1, 2, 3, 4, 5, 6}, cols = {10, 20, 30, 40, 50, 60},
                            own = {100, 200, 300, 400, 500, 600, 700, 800, 900, 1000};
  store.write(layout.at("lightrnn_row"), rows.data());
  store.write(layout.at("lightrnn_col"), cols.data());
  store.write(layout.at("lightrnn_token"), own.data());
  store.zero_grad();
  Head head(config);
  head.bind_parameters(layout, store.values(), store.grads());
  // Tokens 0 → cell 8 (row 2, column 2), 1 → 3, 2 → 1, 3 → 0, 4 → 5.
  head.set_codebook(LightRnnCodebook::from_cells(3, {8, 3, 1, 0, 5}, "test"));
  const std::int32_t tokens[] = {4, 0, 4};
  const double wpe[] = {0.25, 0.5, 0.75, 1.0, 1.25, 1.5};
  double out[6];
  head.embed_forward(out, tokens, 3, wpe, 1, 3);
  // Token 4 at t = 0: row 1 (3, 4) + column 2 (50, 60) + own (900, 1000) + wpe (0.25, 0.5).
  EXPECT_DOUBLE_EQ(out[0], 3 + 50 + 900 + 0.25);
  EXPECT_DOUBLE_EQ(out[1], 4 + 60 + 1000 + 0.5);
  // Token 0 at t = 1: row 2 (5, 6) + column 2 (50, 60) + own (100, 200) + wpe (0.75, 1).
  EXPECT_DOUBLE_EQ(out[2], 5 + 50 + 100 + 0.75);
  EXPECT_DOUBLE_EQ(out[3], 6 + 60 + 200 + 1.0);
  EXPECT_DOUBLE_EQ(out[4], 3 + 50 + 900 + 1.25);

  const double dout[] = {1, 2, 3, 4, 5, 6};
  std::vector<double> dwpe(6, 0.0);
  head.embed_backward(dout, tokens, 3, dwpe.data(), 1, 3);
  const auto dtoken = store.read_grad(layout.at("lightrnn_token"));
  const std::vector<double> expected = {3, 4, 0, 0, 0, 0, 0, 0, 1 + 5, 2 + 6};
  EXPECT_EQ(dtoken, expected);
  const auto dcol = store.read_grad(layout.at("lightrnn_col"));
  EXPECT_EQ(dcol, (std::vector<double>{0, 0, 0, 0, 1 + 3 + 5, 2 + 4 + 6}));
}

// log_probs over V = 50257 tokens in a 225 × 225 table (368 empty cells, an empty last row when
// sequential): exactly V entries, each written and finite, summing to one; and they match the loss.
void check_full_vocabulary(bool scattered) {
  ModelConfig config;
  config.n_layer = 1;
  config.n_head = 2;
  config.d_model = 8;
  config.max_seq_len = 8;
  LightRnnFp64 model(config, 4);
  const int V = config.vocab_size, R = lightrnn_table_rows(config);
  ASSERT_EQ(R, 225);
  if (scattered) model.head().set_codebook(LightRnnCodebook::random(V, R, 8));
  if (!scattered) {
    ASSERT_EQ(model.head().codebook().row_counts()[224], 0);
  }
  // Larger table entries than the init, so the distribution is far from uniform.
  for (const char* name : {"lightrnn_row", "lightrnn_col"}) {
    const TensorInfo& tensor = model.parameters().layout().at(name);
    auto values = model.parameters().read(tensor);
    for (double& v : values) v *= 60;
    model.parameters().write(tensor, values.data());
  }
  const int B = 1, T = 3;
  const auto tokens = random_tokens(B * (T + 1), V, 6);
  std::vector<double> log_probs(std::size_t(B) * T * V, std::numeric_limits<double>::quiet_NaN());
  model.log_probs(tokens.data(), B, T, log_probs.data());
  double nll = 0;
  for (int n = 0; n < B * T; ++n) {
    double total = 0, largest = 0;
    for (int v = 0; v < V; ++v) {
      const double lp = log_probs[std::size_t(n) * V + v];
      ASSERT_TRUE(std::isfinite(lp)) << "token " << v << " at position " << n;
      total += std::exp(lp);
      largest = std::max(largest, std::exp(lp));
    }
    EXPECT_NEAR(total, 1.0, 1e-12) << "position " << n;
    EXPECT_GT(largest, 20.0 / V);  // not uniform: the test would see a wrong normaliser
    nll -= log_probs[std::size_t(n) * V + tokens[n + 1]];
  }
  EXPECT_NEAR(nll / (B * T), model.evaluate(tokens.data(), B, T), 1e-12);
  std::vector<double> token_losses(std::size_t(B) * T, -1.0);
  model.token_losses(token_losses.data());
  for (int n = 0; n < B * T; ++n) {
    EXPECT_NEAR(token_losses[n], -log_probs[std::size_t(n) * V + tokens[n + 1]], 1e-12) << n;
  }
}

TEST(LightRnnHead, LogProbsSumToOneOverExactlyVTokens) { check_full_vocabulary(false); }
TEST(LightRnnHead, LogProbsSumToOneWithScatteredEmptyCells) { check_full_vocabulary(true); }

// The batched ops of full-vocabulary log_probs on hand-set inputs: R = 4 rows of 4 cells holding
// V = 11 tokens (row 2 empty, scattered empty cells), N = 2 positions conditioned on rows 1..3 in
// one call. Outputs are NaN-poisoned, so the tokens of row 0 (not asked for) must stay NaN.
TEST(LightRnnOps, ConditionRowsAndLogProbsRowsCoverARangeOfRows) {
  using O = Ops<Cpu>;
  using K = LightRnnKernels<Cpu>;
  const int R = 4, C = 3, N = 2, V = 11, first = 1, rows = 3;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  std::vector<std::int32_t> cell_token(R * R, -1);
  const int cells[V] = {0, 1, 3, 4, 6, 7, 13, 14, 15, 12, 2};
  for (int w = 0; w < V; ++w) cell_token[cells[w]] = w;
  const std::vector<double> base = {0.3, -1.2, 0.8, 2.0, -0.1, -0.7};
  const std::vector<double> row_table = {1, 2, 3, -0.5, 0.25, 1.5, 0.6, -0.9, 0.1, -2, 0.4, 0.9};
  std::vector<double> state(rows * N * C, nan);
  K::lightrnn_condition_rows(state.data(), base.data(), row_table.data(), first, rows, N, C);
  for (int g = 0; g < rows; ++g) {
    for (int n = 0; n < N; ++n) {
      for (int c = 0; c < C; ++c) {
        EXPECT_NEAR(state[(g * N + n) * C + c],
                    gelu(base[n * C + c] + row_table[(first + g) * C + c]), 1e-14)
            << "row " << first + g << ", position " << n << ", column " << c;
      }
    }
  }

  const std::vector<double> row_logits = {0.5, -1, 2, 0.25, 1.5, 0.3, -0.4, 0.9};
  const std::vector<double> row_lse = {2.7, 1.9};  // any values: only differences are taken
  std::vector<double> col_logits(rows * N * R);
  for (std::size_t i = 0; i < col_logits.size(); ++i) col_logits[i] = std::sin(1.7 * i);
  std::vector<double> out(N * V, nan);
  const LightRnnCodebookView codebook{nullptr, cell_token.data(), nullptr, R, V};
  K::lightrnn_log_probs_rows(out.data(), row_logits.data(), row_lse.data(), col_logits.data(),
                             codebook, first, rows, N);
  for (int n = 0; n < N; ++n) {
    for (int w = 0; w < V; ++w) {
      const int row = cells[w] / R, column = cells[w] % R;
      const double got = out[n * V + w];
      if (row == 0) {
        EXPECT_TRUE(std::isnan(got)) << "token " << w << " of row 0 was written";
        continue;
      }
      const double* cols = col_logits.data() + ((row - first) * N + n) * R;
      double sum = 0;
      for (int c = 0; c < R; ++c) {
        if (cell_token[row * R + c] >= 0) sum += std::exp(cols[c]);
      }
      const double expected = row_logits[n * R + row] - row_lse[n] + cols[column] - std::log(sum);
      EXPECT_NEAR(got, expected, 1e-14) << "token " << w << ", position " << n;
    }
  }
}

// Decoding one position conditions it on every row at once; log_probs over T = 5 positions takes
// three rows per step. Both must give the same distributions, with an empty row inside the table
// (row 3) and scattered empty cells, for one depth and for MTP<2>.
template <class Model>
void check_decoding_matches_log_probs() {
  ModelConfig config = tiny_config();
  config.vocab_size = 200;  // R = 15
  config.d_model = 16;
  config.max_seq_len = 8;
  Model model(config, 21);
  const int V = config.vocab_size, R = lightrnn_table_rows(config), T = 5;
  std::vector<std::int32_t> cells;
  for (int cell = 0; cell < R * R; ++cell) {
    if (cell / R != 3) cells.push_back(cell);
  }
  std::shuffle(cells.begin(), cells.end(), std::mt19937(5));
  cells.resize(V);
  model.head().set_codebook(LightRnnCodebook::from_cells(R, cells));
  ASSERT_EQ(model.head().codebook().row_counts()[3], 0);
  const auto tokens = random_tokens(T, V, 9);
  std::vector<double> full(std::size_t(T) * V);
  model.log_probs(tokens.data(), 1, T, full.data());
  model.decode_reset();
  for (int t = 0; t < T; ++t) {
    const auto step = model.decode(tokens[t]);
    ASSERT_EQ(step.size(), std::size_t(V));
    double total = 0;
    for (int v = 0; v < V; ++v) {
      ASSERT_NEAR(step[v], full[std::size_t(t) * V + v], 1e-12)
          << "position " << t << ", token " << v;
      total += std::exp(step[v]);
    }
    EXPECT_NEAR(total, 1.0, 1e-12) << "position " << t;
  }
}

TEST(LightRnnHead, DecodingMatchesLogProbs) { check_decoding_matches_log_probs<LightRnnFp64>(); }
TEST(LightRnnHead, Mtp2DecodingMatchesLogProbs) {
  check_decoding_matches_log_probs<LightRnnMtp2Fp64>();
}

TEST(LightRnnHead, CodebookOfAnotherShapeIsRejected) {
  LightRnnFp32 model(tiny_config(), 1);
  EXPECT_THROW(model.head().set_codebook(LightRnnCodebook::sequential(24, 5)), Error);
  EXPECT_THROW(model.head().set_codebook(LightRnnCodebook::sequential(23, 6)), Error);
  EXPECT_FALSE(model.head().collecting_statistics());
  EXPECT_THROW(model.head().reallocate(), Error);
}

// A learnable stream for a V = 200 model: an arithmetic progression mod V from a random start.
std::vector<std::int32_t> progression(int rows, int window, int vocab, std::uint64_t seed) {
  auto tokens = random_tokens(rows * window, vocab, seed);
  for (int b = 0; b < rows; ++b) {
    for (int i = 1; i < window; ++i) {
      tokens[b * window + i] = (tokens[b * window + i - 1] + 7) % vocab;
    }
  }
  return tokens;
}

TEST(LightRnnHead, ReallocationLowersCostTrainsOnAndIsCheckpointed) {
  TempDir dir;
  ModelConfig config = tiny_config();
  config.vocab_size = 200;  // R = 15, 25 empty cells
  config.d_model = 16;
  config.max_seq_len = 16;
  LightRnnFp32 model(config, 3);
  const int V = config.vocab_size, R = lightrnn_table_rows(config), B = 8, T = 16;
  model.head().set_codebook(LightRnnCodebook::random(V, R, 12));
  AdamW<Cpu, float> optimizer(model.parameters().layout());
  auto train = [&](int steps, int first_seed) {
    float loss = 0;
    for (int step = 0; step < steps; ++step) {
      const auto tokens = progression(B, T + 1, V, 1000 + first_seed + step);
      model.zero_grad();
      loss = model.forward(tokens.data(), B, T);
      model.backward();
      optimizer.step(model.parameters(), 1e-2);
    }
    return loss;
  };
  train(30, 0);

  // One pass of data with the statistics on.
  const auto pass = progression(32, T + 1, V, 77);
  model.head().begin_reallocation_statistics();
  ASSERT_TRUE(model.head().collecting_statistics());
  const float loss_before = model.evaluate(pass.data(), 32, T);
  const std::vector<float> statistics = model.head().reallocation_statistics();
  const LightRnnCodebook old_codebook = model.head().codebook();
  const ReallocationReport report = model.head().reallocate();
  EXPECT_FALSE(model.head().collecting_statistics());
  const LightRnnCodebook& new_codebook = model.head().codebook();

  // Never loses or duplicates a token.
  std::set<int> cells;
  for (int w = 0; w < V; ++w) ASSERT_TRUE(cells.insert(new_codebook.cell(w)).second);
  ASSERT_EQ(int(cells.size()), V);
  // Lowers the accumulated cost on the data it was computed from.
  const float* rows = statistics.data();
  const float* cols = statistics.data() + std::size_t(V) * R;
  EXPECT_TRUE(report.accepted);
  EXPECT_GT(report.moved, 0);
  EXPECT_DOUBLE_EQ(report.cost_before, old_codebook.cost(rows, cols));
  EXPECT_DOUBLE_EQ(report.cost_after, new_codebook.cost(rows, cols));
  EXPECT_LT(report.cost_after, report.cost_before);
  // The statistics are per-position losses summed per target, with softmaxes over all R entries:
  // under the old map they bound the pass's summed NLL (masked softmaxes) from above.
  EXPECT_GE(report.cost_before, 32.0 * T * loss_before * (1 - 1e-5));

  // Training goes on from the new map (its loss first rises: tokens sit in new cells).
  const float loss_after = model.evaluate(pass.data(), 32, T);
  const float recovered = train(40, 100);
  EXPECT_TRUE(std::isfinite(loss_after));
  EXPECT_LT(recovered, loss_after);
  EXPECT_LT(model.evaluate(pass.data(), 32, T), loss_after);
  std::printf(
      "reallocation: cost %.1f -> %.1f (%d of %d tokens moved); eval loss %.4f before, "
      "%.4f right after, %.4f after 40 steps\n",
      report.cost_before, report.cost_after, report.moved, V, loss_before, loss_after,
      model.evaluate(pass.data(), 32, T));

  // The checkpoint carries the new codebook.
  save_checkpoint(dir / "m.ckpt", model, 70);
  LightRnnFp32 restored(config, 99);
  EXPECT_FALSE(restored.head().codebook() == model.head().codebook());
  load_checkpoint(dir / "m.ckpt", restored);
  EXPECT_TRUE(restored.head().codebook() == model.head().codebook());
  EXPECT_EQ(restored.evaluate(pass.data(), 32, T), model.evaluate(pass.data(), 32, T));

  // A corrupted codebook section is an error, as is a codebook for another table.
  auto bytes = read_bytes(dir / "m.ckpt");
  const std::string section = "lightrnn_codebook";
  const auto at = std::search(bytes.begin(), bytes.end(), section.begin(), section.end());
  ASSERT_NE(at, bytes.end());
  bytes[std::size_t(at - bytes.begin()) + section.size() + 12 + 30] ^= 1;
  write_bytes(dir / "bad.ckpt", bytes);
  EXPECT_THROW(load_checkpoint(dir / "bad.ckpt", restored), Error);
}

}  // namespace
}  // namespace lightrnn_tests
}  // namespace lightgpt::testing

namespace lightgpt::testing {
namespace lightrnn_tests {
namespace {

// Temperature and top-k act on the joint distribution given by log_probs (model/sampling.hpp).
TEST(LightRnnHead, SamplingUsesTheJointDistribution) {
  const std::vector<double> p = {0.05, 0.4, 0.1, 0.3, 0.15};
  std::vector<double> log_probs;
  for (double v : p) log_probs.push_back(std::log(v));
  Rng rng(1);
  std::vector<int> order;
  auto draw = [&](double temperature, int top_k) {
    SamplingOptions options;
    options.temperature = temperature;
    options.top_k = top_k;
    return sample_token<double>(log_probs, options, rng, order);
  };
  EXPECT_EQ(draw(0.0, 0), 1);
  EXPECT_EQ(draw(1.0, 1), 1);
  // top-k 3 at temperature 0.5: tokens 1, 3, 4 with weights p², renormalised.
  std::vector<int> counts(5, 0);
  const int draws = 40000;
  for (int i = 0; i < draws; ++i) ++counts[draw(0.5, 3)];
  EXPECT_EQ(counts[0] + counts[2], 0);
  const double norm = 0.4 * 0.4 + 0.3 * 0.3 + 0.15 * 0.15;
  EXPECT_NEAR(counts[1] / double(draws), 0.16 / norm, 0.01);
  EXPECT_NEAR(counts[3] / double(draws), 0.09 / norm, 0.01);
  EXPECT_NEAR(counts[4] / double(draws), 0.0225 / norm, 0.01);
}

}  // namespace
}  // namespace lightrnn_tests
}  // namespace lightgpt::testing

namespace lightgpt::testing {
namespace lightrnn_tests {
namespace {

// 16-bit storage (fp32 master weights and reductions) against the Fp32 reference on the same
// weights, with MTP and the adapter: losses within 1e-2, gradients within 5e-2 norm-wise.
TEST(LightRnnHead, Bf16StorageMatchesFp32) {
  ModelConfig config = tiny_config();
  config.d_model = 32;
  config.n_head = 4;
  config.options.set("mtp.adapter", true);
  LightRnnMtp2Fp32 reference(config, 3);
  LightRnnMtp2Bf16 model(config, 99);
  copy_parameters(reference, model);
  const auto tokens = random_tokens(4 * 12, config.vocab_size, 8);
  reference.set_mtp_weight(0.5f);
  model.set_mtp_weight(0.5f);
  reference.zero_grad();
  model.zero_grad();
  const float expected = reference.forward(tokens.data(), 4, 10);
  const float actual = model.forward(tokens.data(), 4, 10);
  EXPECT_LT(std::abs(actual - expected) / expected, 1e-2);
  EXPECT_LT(
      std::abs(model.losses().depth[1] - reference.losses().depth[1]) / reference.losses().depth[1],
      1e-2);
  reference.backward();
  model.backward();
  for (const TensorInfo& tensor : reference.parameters().layout().tensors()) {
    const auto want = reference.parameters().read_grad(tensor);
    const auto got = model.parameters().read_grad(model.parameters().layout().at(tensor.name));
    double difference = 0, norm = 0;
    for (std::size_t i = 0; i < want.size(); ++i) {
      difference += double(got[i] - want[i]) * (got[i] - want[i]);
      norm += double(want[i]) * want[i];
    }
    EXPECT_LT(std::sqrt(difference / norm), 5e-2) << tensor.name;
  }
  std::vector<float> log_probs(std::size_t(2) * config.vocab_size);
  model.log_probs(tokens.data(), 1, 2, log_probs.data());
  double total = 0;
  for (int v = 0; v < config.vocab_size; ++v) total += std::exp(double(log_probs[v]));
  EXPECT_NEAR(total, 1.0, 1e-3);
}

}  // namespace
}  // namespace lightrnn_tests
}  // namespace lightgpt::testing

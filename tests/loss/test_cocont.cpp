// CoCoNT n-gram target smoothing (loss/cocont.hpp) in both heads: the row distribution and its KL
// gradient by hand (V = 9, R = 3), α = 0 and n-gram mass on the true next token/row leave loss and
// gradients as they were (the second catches a context off by one), Fp64 finite differences of the
// objective computed independently from log_probs, validation untouched, the reported KL, the API's
// checks, and row targets that follow a codebook reallocation.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <vector>

#include "head_instances.hpp"

namespace lightgpt::testing {
namespace cocont_tests {
namespace {

constexpr int kB = 2, kT = 6;

// A table from the bigrams of a random stream that never contains tokens 0..2, so those contexts
// have empty lists (plain CE) while the rest keep up to K successors.
BigramTable random_table(int V, int K, std::uint64_t seed) {
  Rng rng(seed);
  std::vector<std::uint16_t> stream(400);
  for (std::uint16_t& id : stream) id = static_cast<std::uint16_t>(3 + rng.next_u64() % (V - 3));
  BigramCounter counter(V);
  counter.add(stream);
  return counter.top_k(K);
}

// Random tokens that include the contexts without a list.
std::vector<std::int32_t> batch_tokens(int window, int V, std::uint64_t seed) {
  auto tokens = random_tokens(kB * window, V, seed);
  tokens[1] = 0;
  tokens[window + 2] = 1;
  return tokens;
}

template <class Model>
std::vector<double> all_grads(Model& model) {
  std::vector<double> out;
  for (const TensorInfo& tensor : model.parameters().layout().tensors()) {
    const auto grads = model.parameters().read_grad(tensor);
    out.insert(out.end(), grads.begin(), grads.end());
  }
  return out;
}

template <class Model>
std::vector<double> train_step(Model& model, const std::vector<std::int32_t>& tokens) {
  model.zero_grad();
  model.forward(tokens.data(), kB, kT);
  model.backward();
  return all_grads(model);
}

double relative_difference(const std::vector<double>& a, const std::vector<double>& b) {
  double diff = 0, norm = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    diff += (a[i] - b[i]) * (a[i] - b[i]);
    norm += b[i] * b[i];
  }
  return std::sqrt(diff / norm);
}

template <class Model>
constexpr bool is_lightrnn = requires(Model& model) {
  model.head().codebook();
};

// The renormalised list of context a, in double.
std::map<int, double> bigram_distribution(const BigramTable& table, int a) {
  std::map<int, double> out;
  double total = 0;
  for (float p : table.probabilities(a)) total += p;
  for (std::size_t k = 0; k < table.successors(a).size(); ++k) {
    out[int(table.successors(a)[k])] += table.probabilities(a)[k] / total;
  }
  return out;
}

// L_main of docs/design.md, "Training objective", and the mean KL over the positions with a list,
// computed from the model's full-vocabulary log_probs: token level for the dense head; for LightRNN
// the row log-probability is the log-sum-exp of its tokens' joint log-probabilities, and CE(col |
// row) the remainder.
struct Reference {
  double objective = 0, nll = 0, kl = 0;
};
template <class Model>
Reference reference(Model& model, const std::vector<std::int32_t>& tokens, const BigramTable& table,
                    double alpha) {
  const int V = model.config().vocab_size, window = kT + Model::mtp_depth;
  std::vector<std::int32_t> inputs;
  for (int b = 0; b < kB; ++b) {
    inputs.insert(inputs.end(), tokens.begin() + b * window, tokens.begin() + b * window + kT);
  }
  std::vector<double> lp(std::size_t(kB) * kT * V);
  model.log_probs(inputs.data(), kB, kT, lp.data());
  Reference out;
  int covered = 0;
  for (int b = 0; b < kB; ++b) {
    for (int t = 0; t < kT; ++t) {
      const double* row = lp.data() + (std::size_t(b) * kT + t) * V;
      const int a = tokens[b * window + t], y = tokens[b * window + t + 1];
      const std::map<int, double> ngram = bigram_distribution(table, a);
      std::map<int, double> class_log_prob;  // log P of each class the KL scores
      std::map<int, double> target;          // P_ngram over those classes
      double ce_class, ce_rest = 0;
      if constexpr (is_lightrnn<Model>) {
        const LightRnnCodebook& codebook = model.head().codebook();
        std::map<int, double> row_sum;
        for (int w = 0; w < V; ++w) row_sum[codebook.row(w)] += std::exp(row[w]);
        for (auto& [r, sum] : row_sum) class_log_prob[r] = std::log(sum);
        for (auto [w, p] : ngram) target[codebook.row(w)] += p;
        ce_class = -class_log_prob[codebook.row(y)];
        ce_rest = -(row[y] - class_log_prob[codebook.row(y)]);
      } else {
        for (int w = 0; w < V; ++w) class_log_prob[w] = row[w];
        target = ngram;
        ce_class = -row[y];
      }
      double kl = 0;
      for (auto [c, p] : target) kl += p * (std::log(p) - class_log_prob[c]);
      out.nll += ce_class + ce_rest;
      if (target.empty()) {
        out.objective += ce_class + ce_rest;
      } else {
        out.objective += (1 - alpha) * ce_class + alpha * kl + ce_rest;
        out.kl += kl;
        ++covered;
      }
    }
  }
  out.objective /= kB * kT;
  out.nll /= kB * kT;
  out.kl = covered ? out.kl / covered : 0;
  return out;
}

TEST(Cocont, RowDistributionKlAndGradientByHand) {
  // V = 9 in a 3 × 3 table, sequential: row(w) = w / 3. Context 0 is followed by 1 (0.5), 4 (0.3)
  // and 2 (0.2): P_ngram,row = (0.5 + 0.2, 0.3, 0) = (0.7, 0.3, 0). No other context has a list.
  BigramTable table(9, 4);
  const std::uint32_t ids[] = {1, 4, 2};
  const float probs[] = {0.5f, 0.3f, 0.2f};
  table.set(0, ids, probs);
  const NgramDistributions rows = row_ngram_targets(table, LightRnnCodebook::sequential(9, 3));
  ASSERT_EQ(rows.classes_of(0).size(), 2u);
  EXPECT_EQ(rows.classes_of(0)[0], 0);
  EXPECT_EQ(rows.classes_of(0)[1], 1);
  EXPECT_NEAR(rows.probs_of(0)[0], 0.7, 1e-7);
  EXPECT_NEAR(rows.probs_of(0)[1], 0.3, 1e-7);
  EXPECT_NEAR(rows.neg_entropy[0], 0.7 * std::log(0.7) + 0.3 * std::log(0.3), 1e-7);
  for (int a = 1; a < 9; ++a) EXPECT_TRUE(rows.classes_of(a).empty());
  // Swapping tokens 0 and 4 puts 4 into row 0 with 1 and 2: all the mass merges there.
  const NgramDistributions merged =
      row_ngram_targets(table, LightRnnCodebook::from_cells(3, {4, 1, 2, 3, 0, 5, 6, 7, 8}));
  ASSERT_EQ(merged.classes_of(0).size(), 1u);
  EXPECT_EQ(merged.classes_of(0)[0], 0);
  EXPECT_DOUBLE_EQ(merged.probs_of(0)[0], 1.0);
  EXPECT_DOUBLE_EQ(merged.neg_entropy[0], 0.0);

  NgramTable<double, Cpu> device;
  device.upload(rows);
  using O = Ops<Cpu>;
  using K = LightRnnKernels<Cpu>;
  // Two positions (B = 1, T = 2), window {0, 5, 3}: position 0 has context 0 and target 5
  // (row 1); position 1 has context 5 (no list) and target 3 (row 1). Row logits (0, ln 2, ln 3):
  // P_row = (1/6, 1/3, 1/2).
  const std::int32_t tokens[] = {0, 5, 3};
  const std::int32_t token_cell[] = {0, 1, 2, 3, 4, 5, 6, 7, 8}, row_count[] = {3, 3, 3};
  std::vector<double> logits = {0, std::log(2.0), std::log(3.0), 0, std::log(2.0), std::log(3.0)};
  const double lse[] = {std::log(6.0), std::log(6.0)};
  double kl[4];
  O::ngram_kl(kl, lse, logits.data(), 3, tokens, 3, device.view(0.0), 1, 2);
  // KL = 0.7·ln(0.7 / (1/6)) + 0.3·ln(0.3 / (1/3)) = 0.7·ln 4.2 + 0.3·ln 0.9.
  EXPECT_NEAR(kl[0], 0.972951013005178, 1e-7);
  EXPECT_EQ(kl[1], 0.0);
  EXPECT_EQ(kl[2], 1.0);
  EXPECT_EQ(kl[3], 0.0);

  // α = 0.25: the soft target at position 0 is (0.25·0.7, 0.75 + 0.25·0.3, 0) = (0.175, 0.825, 0);
  // the gradient is P_row minus it. Position 1 is plain CE: P_row - onehot(1).
  const double weight = 1;
  const LightRnnWindows<std::int32_t> targets{tokens + 1, 3, 1, 2};
  const LightRnnCodebookView codebook{token_cell, nullptr, row_count, 3, 9};
  K::lightrnn_row_backward_inplace(logits.data(), lse, targets, codebook, &weight, 1, 1.0, tokens,
                                   device.view(0.25));
  const double expected[] = {1.0 / 6 - 0.175, 1.0 / 3 - 0.825, 0.5, 1.0 / 6, 1.0 / 3 - 1, 0.5};
  for (int i = 0; i < 6; ++i) EXPECT_NEAR(logits[i], expected[i], 1e-7) << i;
  // The same numbers for the KL part alone: d/dlogits of 0.25·KL + 0.75·CE, by finite differences.
  auto objective = [&](const double* z) {
    const double l = std::log(std::exp(z[0]) + std::exp(z[1]) + std::exp(z[2]));
    const double kl_part = 0.7 * (std::log(0.7) - (z[0] - l)) + 0.3 * (std::log(0.3) - (z[1] - l));
    return 0.75 * (l - z[1]) + 0.25 * kl_part;
  };
  for (int i = 0; i < 3; ++i) {
    double z[3] = {0, std::log(2.0), std::log(3.0)};
    const double h = 1e-6;
    z[i] += h;
    const double up = objective(z);
    z[i] -= 2 * h;
    const double down = objective(z);
    EXPECT_NEAR((up - down) / (2 * h), expected[i], 1e-8) << i;
  }
}

TEST(Cocont, DenseTargetsKeepTheListRenormalised) {
  BigramTable table(5, 3);
  const std::uint32_t ids[] = {3, 1};
  const float probs[] = {0.75f, 0.25f};
  table.set(2, ids, probs);
  const NgramDistributions tokens = token_ngram_targets(table);
  ASSERT_EQ(tokens.classes_of(2).size(), 2u);
  EXPECT_EQ(tokens.classes_of(2)[0], 1);  // ascending ids
  EXPECT_DOUBLE_EQ(tokens.probs_of(2)[0], 0.25);
  EXPECT_DOUBLE_EQ(tokens.probs_of(2)[1], 0.75);
  EXPECT_TRUE(tokens.classes_of(0).empty());
  EXPECT_EQ(tokens.offsets.size(), 6u);
}

template <class Model>
void expect_alpha_zero_is_plain(const ModelConfig& config) {
  const int window = kT + Model::mtp_depth;
  const auto tokens = batch_tokens(window, config.vocab_size, 5);
  Model plain(config, 9), smoothed(config, 9);
  plain.set_mtp_weight(0.5);
  smoothed.set_mtp_weight(0.5);
  smoothed.set_cocont(random_table(config.vocab_size, 4, 3));
  smoothed.set_cocont_alpha(0.0);
  const auto expected = train_step(plain, tokens);
  const auto got = train_step(smoothed, tokens);
  EXPECT_EQ(plain.losses().main, smoothed.losses().main);
  EXPECT_EQ(got, expected);  // bitwise
  EXPECT_GT(smoothed.losses().cocont, 0.0);
  EXPECT_EQ(plain.losses().cocont, 0.0);
}

TEST(Cocont, AlphaZeroIsThePlainLossDense) { expect_alpha_zero_is_plain<DenseFp64>(tiny_config()); }
TEST(Cocont, AlphaZeroIsThePlainLossDenseMtp2) {
  expect_alpha_zero_is_plain<Mtp2Fp64>(tiny_config());
}
TEST(Cocont, AlphaZeroIsThePlainLossLightRnn) {
  expect_alpha_zero_is_plain<LightRnnFp64>(tiny_config());
}
TEST(Cocont, AlphaZeroIsThePlainLossLightRnnMtp2) {
  expect_alpha_zero_is_plain<LightRnnMtp2Fp64>(tiny_config());
}
TEST(Cocont, AlphaZeroIsThePlainLossLightRnnFp32) {
  ModelConfig config = tiny_config();
  const auto tokens = batch_tokens(kT + 1, config.vocab_size, 5);
  LightRnnFp32 plain(config, 9), smoothed(config, 9);
  smoothed.set_cocont(random_table(config.vocab_size, 4, 3));
  smoothed.set_cocont_alpha(0.0f);
  EXPECT_EQ(train_step(smoothed, tokens), train_step(plain, tokens));
}

// Each row of the batch follows a fixed successor function next(a); the table's list of a holds
// next(a) alone (dense) or next(a) and, for LightRNN, other tokens of next(a)'s row, so P_ngram
// sits entirely on the true next token / row. A table built from the token after the target
// (context off by one) must not pass.
template <class Model>
void expect_true_next_is_plain(bool off_by_one) {
  ModelConfig config = tiny_config();
  const int V = config.vocab_size, window = kT + Model::mtp_depth;
  std::vector<int> next(V);
  std::iota(next.begin(), next.end(), 0);
  Rng rng(21);
  for (int i = V - 1; i > 0; --i) std::swap(next[i], next[rng.next_u64() % (i + 1)]);
  std::vector<std::int32_t> tokens(std::size_t(kB) * window);
  for (int b = 0; b < kB; ++b) {
    tokens[b * window] = 3 + 7 * b;
    for (int i = 1; i < window; ++i) tokens[b * window + i] = next[tokens[b * window + i - 1]];
  }
  Model plain(config, 4), smoothed(config, 4);
  if constexpr (is_lightrnn<Model>) {
    const auto codebook = LightRnnCodebook::random(V, lightrnn_table_rows(config), 6);
    plain.head().set_codebook(codebook);
    smoothed.head().set_codebook(codebook);
  }
  BigramTable table(V, 3);
  for (int a = 0; a < V; ++a) {
    const int b = off_by_one ? next[next[a]] : next[a];
    std::vector<std::uint32_t> ids = {std::uint32_t(b)};
    std::vector<float> probs = {1.0f};
    if constexpr (is_lightrnn<Model>) {
      const LightRnnCodebook& codebook = smoothed.head().codebook();
      for (int w = 0; w < V && ids.size() < 3; ++w) {
        if (w != b && codebook.row(w) == codebook.row(b)) ids.push_back(std::uint32_t(w));
      }
      probs.assign(ids.size(), 1.0f / float(ids.size()));
    }
    table.set(a, ids, probs);
  }
  smoothed.set_cocont(table);
  smoothed.set_cocont_alpha(0.7);
  plain.set_mtp_weight(0.4);
  smoothed.set_mtp_weight(0.4);
  const auto expected = train_step(plain, tokens);
  const auto got = train_step(smoothed, tokens);
  EXPECT_EQ(plain.losses().main, smoothed.losses().main);
  if (off_by_one) {
    EXPECT_GT(relative_difference(got, expected), 1e-3);
    return;
  }
  EXPECT_LT(relative_difference(got, expected), 1e-13);
  if constexpr (!is_lightrnn<Model>) {
    // KL(onehot(y) ‖ P_θ) = -log P_θ(y): the reported term is the NLL itself.
    EXPECT_NEAR(smoothed.losses().cocont, smoothed.losses().main, 1e-13);
  }
}

TEST(Cocont, MassOnTheTrueNextTokenIsThePlainLossDense) {
  expect_true_next_is_plain<DenseFp64>(false);
  expect_true_next_is_plain<DenseFp64>(true);
}
TEST(Cocont, MassOnTheTrueNextRowIsThePlainLossLightRnn) {
  expect_true_next_is_plain<LightRnnFp64>(false);
  expect_true_next_is_plain<LightRnnFp64>(true);
}
TEST(Cocont, MassOnTheTrueNextRowIsThePlainLossLightRnnMtp2) {
  expect_true_next_is_plain<LightRnnMtp2Fp64>(false);
  expect_true_next_is_plain<LightRnnMtp2Fp64>(true);
}

// Fourth-order central differences of L_main (from log_probs, independent of the heads' loss
// kernels) + w · mean aux (from forward) against backward(), sampled elements of every tensor.
template <class Model>
void check_gradients(const ModelConfig& config, double alpha, double mtp_weight,
                     bool scatter = false) {
  const int window = kT + Model::mtp_depth;
  Model model(config, 7);
  if constexpr (is_lightrnn<Model>) {
    if (scatter) {
      model.head().set_codebook(
          LightRnnCodebook::random(config.vocab_size, lightrnn_table_rows(config), 5));
    }
  }
  const BigramTable table = random_table(config.vocab_size, 4, 13);
  model.set_cocont(table);
  model.set_cocont_alpha(alpha);
  model.set_mtp_weight(mtp_weight);
  const auto tokens = batch_tokens(window, config.vocab_size, 11);
  auto objective = [&] {
    model.forward(tokens.data(), kB, kT);
    const auto& losses = model.losses();
    double aux = 0;
    for (int j = 1; j < losses.depths; ++j) aux += losses.depth[j];
    const double mtp = losses.depths > 1 ? mtp_weight * aux / (losses.depths - 1) : 0.0;
    return reference(model, tokens, table, alpha).objective + mtp;
  };
  model.zero_grad();
  model.forward(tokens.data(), kB, kT);
  const Reference ref = reference(model, tokens, table, alpha);
  EXPECT_NEAR(model.losses().main, ref.nll, 1e-12);
  EXPECT_NEAR(model.losses().cocont, ref.kl, 1e-12);
  model.forward(tokens.data(), kB, kT);
  model.backward();

  auto& store = model.parameters();
  Rng pick(3);
  for (const TensorInfo& tensor : store.layout().tensors()) {
    const auto grads = store.read_grad(tensor);
    auto values = store.read(tensor);
    std::vector<std::size_t> samples = {0, tensor.numel - 1};
    for (int i = 0; i < 4; ++i) samples.push_back(pick.next_u64() % tensor.numel);
    for (std::size_t index : samples) {
      const double original = values[index];
      auto at = [&](double offset) {
        values[index] = original + offset;
        store.write(tensor, values.data());
        return objective();
      };
      const double h = 1e-4;
      const double numeric = (8 * (at(h) - at(-h)) - (at(2 * h) - at(-2 * h))) / (12 * h);
      values[index] = original;
      store.write(tensor, values.data());
      const double analytic = grads[index];
      const double scale = std::max({std::abs(numeric), std::abs(analytic), 1e-4});
      EXPECT_LT(std::abs(numeric - analytic) / scale, 1e-6)
          << tensor.name << "[" << index << "]: analytic " << analytic << ", numeric " << numeric;
    }
  }
}

TEST(CocontGradCheck, Dense) { check_gradients<DenseFp64>(tiny_config(), 0.3, 0.0); }
TEST(CocontGradCheck, DenseMtp2) { check_gradients<Mtp2Fp64>(tiny_config(), 0.3, 0.35); }
TEST(CocontGradCheck, LightRnn) { check_gradients<LightRnnFp64>(tiny_config(), 0.3, 0.0, true); }
TEST(CocontGradCheck, LightRnnMtp2) {
  check_gradients<LightRnnMtp2Fp64>(tiny_config(), 0.3, 0.35, true);
}
TEST(CocontGradCheck, LightRnnMtp2Adapter) {
  ModelConfig config = tiny_config();
  config.options.set("mtp.adapter", true);
  check_gradients<LightRnnMtp2Fp64>(config, 0.3, 0.35);
}
TEST(CocontGradCheck, DenseMtp2Adapter) {
  ModelConfig config = tiny_config();
  config.options.set("mtp.adapter", true);
  check_gradients<Mtp2Fp64>(config, 0.3, 0.35);
}

template <class Model>
void expect_validation_unchanged() {
  const ModelConfig config = tiny_config();
  const int V = config.vocab_size;
  Model plain(config, 2), smoothed(config, 2);
  smoothed.set_cocont(random_table(V, 4, 8));
  smoothed.set_cocont_alpha(0.5);
  const auto tokens = batch_tokens(kT + Model::mtp_depth, V, 4);
  EXPECT_EQ(smoothed.forward(tokens.data(), kB, kT), plain.forward(tokens.data(), kB, kT));
  EXPECT_GT(smoothed.losses().cocont, 0.0);
  EXPECT_EQ(plain.losses().cocont, 0.0);
  const auto windows = batch_tokens(kT + 1, V, 6);
  EXPECT_EQ(smoothed.evaluate(windows.data(), kB, kT), plain.evaluate(windows.data(), kB, kT));
  std::vector<double> lp_plain(std::size_t(kB) * kT * V), lp_smoothed(lp_plain.size());
  plain.log_probs(windows.data(), kB, kT, lp_plain.data());
  smoothed.log_probs(windows.data(), kB, kT, lp_smoothed.data());
  EXPECT_EQ(lp_plain, lp_smoothed);
}

TEST(Cocont, ValidationAndMainLossUnchangedDense) { expect_validation_unchanged<DenseFp64>(); }
TEST(Cocont, ValidationAndMainLossUnchangedLightRnn) {
  expect_validation_unchanged<LightRnnMtp2Fp64>();
}

TEST(Cocont, ApiChecks) {
  DenseFp64 dense(tiny_config(), 1);
  LightRnnFp64 light(tiny_config(), 1);
  EXPECT_FALSE(dense.cocont_enabled());
  EXPECT_DOUBLE_EQ(dense.cocont_alpha(), 0.1);
  EXPECT_THROW(dense.set_cocont(BigramTable(24, 4)), Error);
  EXPECT_THROW(light.set_cocont(BigramTable(22, 4)), Error);
  EXPECT_THROW(dense.set_cocont_alpha(-0.01), Error);
  EXPECT_THROW(dense.set_cocont_alpha(1.01), Error);
  EXPECT_THROW(dense.set_cocont_alpha(std::nan("")), Error);
  dense.set_cocont_alpha(1.0);
  EXPECT_EQ(dense.cocont_alpha(), 1.0);
  dense.set_cocont(random_table(23, 4, 1));
  light.set_cocont(random_table(23, 4, 1));
  EXPECT_TRUE(dense.cocont_enabled());
  EXPECT_TRUE(light.cocont_enabled());
  const auto tokens = batch_tokens(kT + 1, 23, 3);
  dense.forward(tokens.data(), kB, kT);
  EXPECT_GT(dense.losses().cocont, 0.0);
  dense.clear_cocont();
  light.clear_cocont();
  EXPECT_FALSE(dense.cocont_enabled());
  EXPECT_FALSE(light.cocont_enabled());
  dense.forward(tokens.data(), kB, kT);
  EXPECT_EQ(dense.losses().cocont, 0.0);
}

void expect_same(const NgramDistributions& got, const NgramDistributions& want) {
  EXPECT_EQ(got.offsets, want.offsets);
  EXPECT_EQ(got.classes, want.classes);
  EXPECT_EQ(got.probs, want.probs);
  EXPECT_EQ(got.neg_entropy, want.neg_entropy);
}

TEST(Cocont, RowTargetsFollowTheCodebook) {
  ModelConfig config = tiny_config();
  config.vocab_size = 60;  // R = 8
  config.max_seq_len = 16;
  const int V = config.vocab_size, R = lightrnn_table_rows(config), T = 16;
  LightRnnFp64 model(config, 3);
  model.head().set_codebook(LightRnnCodebook::random(V, R, 12));
  const BigramTable table = random_table(V, 8, 17);
  model.set_cocont(table);
  expect_same(model.head().cocont_targets().download(),
              row_ngram_targets(table, model.head().codebook()));

  model.head().begin_reallocation_statistics();
  const auto pass = random_tokens(16 * (T + 1), V, 19);
  model.evaluate(pass.data(), 16, T);
  const LightRnnCodebook old_codebook = model.head().codebook();
  const ReallocationReport report = model.head().reallocate();
  ASSERT_TRUE(report.accepted);
  ASSERT_GT(report.moved, 0);
  ASSERT_FALSE(model.head().codebook() == old_codebook);
  const NgramDistributions rebuilt = row_ngram_targets(table, model.head().codebook());
  expect_same(model.head().cocont_targets().download(), rebuilt);
  EXPECT_NE(rebuilt.classes, row_ngram_targets(table, old_codebook).classes);

  // Any other codebook change (set_codebook, a checkpoint's codebook) rebuilds them too.
  model.head().set_codebook(LightRnnCodebook::sequential(V, R));
  expect_same(model.head().cocont_targets().download(),
              row_ngram_targets(table, LightRnnCodebook::sequential(V, R)));
  // And training with the new map still matches the independent objective.
  const auto tokens = batch_tokens(kT + 1, V, 23);
  model.forward(tokens.data(), kB, kT);
  EXPECT_NEAR(model.losses().cocont, reference(model, tokens, table, 0.1).kl, 1e-12);
}

}  // namespace
}  // namespace cocont_tests
}  // namespace lightgpt::testing

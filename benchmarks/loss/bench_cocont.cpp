// The cost of CoCoNT n-gram smoothing on a whole training step (forward + backward + AdamW) at the
// vanilla-lightrnn preset's shapes scaled to the CPU: GPT-2 small width (C = 768, 12 heads,
// V = 50257, R = 225) with 2 layers, B·T = 1 × 1024, fp32. Two identical models, one with a full
// top-16 table (every context has 16 successors: the worst case), step in alternation (the order
// within a pair alternates too, so drift and cache effects cancel); the counters are the median
// step times and the overhead of the medians, plus the median of the per-pair ratios. Because a
// whole step on a loaded two-core machine varies by several percent, the head's forward + backward
// alone (hidden states in, d(hidden) out, B·T = 1024) is timed the same way: the extra work of
// CoCoNT is all inside the head, so its overhead there bounds the step's from above.
//
//   bench_cocont --benchmark_filter=LightRnn
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <lightgpt/lightgpt.hpp>
#include <memory>
#include <vector>

namespace {

using namespace lightgpt;

constexpr int kB = 1, kT = 1024, kK = 16;

ModelConfig bench_config() {
  ModelConfig config = ModelConfig::gpt2_small();
  config.n_layer = 2;
  config.max_seq_len = kT;
  return config;
}

// K distinct random successors per context with probabilities ∝ 1/rank.
BigramTable synthetic_table(int V) {
  BigramTable table(V, kK);
  Rng rng(5);
  std::vector<std::uint32_t> ids(kK);
  std::vector<float> probs(kK);
  float total = 0;
  for (int k = 0; k < kK; ++k) total += 1.0f / float(k + 1);
  for (int k = 0; k < kK; ++k) probs[k] = 1.0f / float(k + 1) / total;
  for (int a = 0; a < V; ++a) {
    for (int k = 0; k < kK; ++k) {
      do {
        ids[k] = std::uint32_t(rng.next_u64() % V);
      } while (std::find(ids.begin(), ids.begin() + k, ids[k]) != ids.begin() + k);
    }
    table.set(a, ids, probs);
  }
  return table;
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const std::size_t n = values.size();
  return n % 2 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

template <class Model>
struct Trainee {
  explicit Trainee(const ModelConfig& config)
      : model(config, 1), optimizer(model.parameters().layout()) {}

  double step(const std::vector<std::int32_t>& tokens) {
    const auto start = std::chrono::steady_clock::now();
    model.zero_grad();
    model.forward(tokens.data(), kB, kT);
    model.backward();
    optimizer.step(model.parameters(), 1e-4);
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
        .count();
  }

  Model model;
  AdamW<Cpu, float> optimizer;
};

template <class Model>
void BM_CocontStepOverhead(benchmark::State& state) {
  const ModelConfig config = bench_config();
  Trainee<Model> plain(config), smoothed(config);
  smoothed.model.set_cocont(synthetic_table(config.vocab_size));
  smoothed.model.set_cocont_alpha(0.1f);
  Rng rng(7);
  std::vector<std::int32_t> tokens(std::size_t(kB) * (kT + Model::mtp_depth));
  for (std::int32_t& id : tokens) id = std::int32_t(rng.next_u64() % config.vocab_size);
  plain.step(tokens);
  smoothed.step(tokens);

  const int pairs = int(state.range(0));
  std::vector<double> plain_ms, cocont_ms, ratios;
  for (auto _ : state) {
    double total = 0;
    for (int i = 0; i < pairs; ++i) {
      double a, b;
      if (i % 2 == 0) {
        a = plain.step(tokens);
        b = smoothed.step(tokens);
      } else {
        b = smoothed.step(tokens);
        a = plain.step(tokens);
      }
      plain_ms.push_back(a);
      cocont_ms.push_back(b);
      ratios.push_back(b / a);
      total += a + b;
    }
    state.SetIterationTime(total / 1e3);
  }
  const double plain_median = median(plain_ms), cocont_median = median(cocont_ms);
  state.counters["plain_ms"] = plain_median;
  state.counters["cocont_ms"] = cocont_median;
  state.counters["overhead_%"] = 100.0 * (cocont_median / plain_median - 1.0);
  state.counters["pair_ratio"] = median(ratios);
  state.counters["cocont_kl"] = smoothed.model.losses().cocont;
}

// One head implementation on its own parameters and activations (as in bench_heads.cpp).
template <class Head>
struct HeadAlone {
  using Impl = typename Head::template impl<Cpu, Fp32>;
  static constexpr int D = Head::mtp_depth;

  explicit HeadAlone(const ModelConfig& config) : N(kB * kT) {
    Impl::declare_input(layout, config);
    Impl::declare_output(layout, config);
    store = std::make_unique<ParameterStore<Fp32, Cpu>>(layout);
    store->initialize(1);
    impl = std::make_unique<Impl>(config);
    impl->bind_parameters(layout, store->values(), store->grads());
    ArenaBinder measure;
    impl->bind_activations(measure, std::size_t(N));
    arena = Buffer<std::byte, Cpu>(measure.bytes());
    ArenaBinder bind(arena.data());
    impl->bind_activations(bind, std::size_t(N));
    Rng rng(3);
    hidden.resize(std::size_t(N) * config.d_model);
    for (float& h : hidden) h = float(rng.normal());
    dhidden.resize(hidden.size());
    tokens.resize(std::size_t(N) + D);
    for (std::int32_t& id : tokens) id = std::int32_t(rng.next_u64() % config.vocab_size);
  }

  double step(float alpha) {
    const auto start = std::chrono::steady_clock::now();
    impl->forward(hidden.data(), tokens.data(), N + D, 1, N, D, true);
    impl->backward(overwrite(dhidden.data()), hidden.data(), tokens.data(), N + D, 1, N,
                   1.0f / float(N), 0.5f, alpha);
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
        .count();
  }

  int N;
  ParameterLayout layout;
  std::unique_ptr<ParameterStore<Fp32, Cpu>> store;
  std::unique_ptr<Impl> impl;
  Buffer<std::byte, Cpu> arena;
  std::vector<float> hidden, dhidden;
  std::vector<std::int32_t> tokens;
};

template <class Head>
void BM_CocontHeadOverhead(benchmark::State& state) {
  const ModelConfig config = bench_config();
  HeadAlone<Head> plain(config), smoothed(config);
  smoothed.impl->set_cocont(synthetic_table(config.vocab_size));
  plain.step(0.1f);
  smoothed.step(0.1f);
  const int pairs = int(state.range(0));
  std::vector<double> plain_ms, cocont_ms, ratios;
  for (auto _ : state) {
    double total = 0;
    for (int i = 0; i < pairs; ++i) {
      const bool plain_first = i % 2 == 0;
      const double first = plain_first ? plain.step(0.1f) : smoothed.step(0.1f);
      const double second = plain_first ? smoothed.step(0.1f) : plain.step(0.1f);
      const double a = plain_first ? first : second, b = plain_first ? second : first;
      plain_ms.push_back(a);
      cocont_ms.push_back(b);
      ratios.push_back(b / a);
      total += a + b;
    }
    state.SetIterationTime(total / 1e3);
  }
  const double plain_median = median(plain_ms), cocont_median = median(cocont_ms);
  state.counters["plain_ms"] = plain_median;
  state.counters["cocont_ms"] = cocont_median;
  state.counters["overhead_%"] = 100.0 * (cocont_median / plain_median - 1.0);
  state.counters["pair_ratio"] = median(ratios);
}

BENCHMARK_TEMPLATE(BM_CocontHeadOverhead, LightRnnHead<>)
    ->Arg(200)
    ->Iterations(1)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK_TEMPLATE(BM_CocontStepOverhead, GPT<Fp32, LightRnnHead<>, Attention, Cpu>)
    ->Arg(20)
    ->Iterations(1)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK_TEMPLATE(BM_CocontStepOverhead, GPT<Fp32, DenseHead<>, Attention, Cpu>)
    ->Arg(6)
    ->Iterations(1)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
